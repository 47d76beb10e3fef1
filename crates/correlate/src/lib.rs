//! Sigma correlation rules over time-ordered rule hits.
//!
//! Specification: sigmahq/sigma-specification
//! `specification/sigma-correlation-rules-specification.md` (v2.0.x), plus
//! the aggregate types pySigma and rsigma add (`value_sum`, `value_avg`,
//! `value_percentile`, `value_median`).
//!
//! * [`CorrelationSet::compile`] resolves each correlation's `rules` (by
//!   `id` or `name`, base rules of a [`Ruleset`](tracehunt_engine::Ruleset) or other correlations —
//!   chains are allowed, cycles are rejected), its `group-by` fields and
//!   `aliases`, `timespan` and `condition`. The set is immutable and
//!   `Send + Sync`.
//! * A [`Correlator`] owns all window state. Feed it every hit of a
//!   referenced base rule **in non-decreasing time order**
//!   ([`Correlator::feed`]); it returns the correlation hits that fire (a hit
//!   of a correlation referenced by another one is fed on internally). Call
//!   [`Correlator::flush`] at the end of the input to close open windows.
//!
//! ## Example
//!
//! Five failed logons from one address within a minute:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tracehunt_correlate::{CorrelationSet, Correlator, Limits};
//! let yaml = "title: Failed logon\nname: failed\nid: 00000000-0000-4000-8000-0000000000f1\n\
//!   logsource: {product: windows, service: security}\n\
//!   detection:\n  sel:\n    EventID: 4625\n  condition: sel\n---\n\
//!   title: Brute force\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [failed]\n  \
//!   group-by: [IpAddress]\n  timespan: 1m\n  condition: {gte: 5}\n";
//! let f = tracehunt_sigma::load_rules("bf.yml", yaml);
//! let (rs, _) = tracehunt_engine::compile(f.rules, &tracehunt_engine::CompileOptions::default());
//! let (set, diags) = CorrelationSet::compile(&f.correlations, &rs);
//! assert!(diags.is_empty(), "{diags:?}");
//! let mut c = Correlator::new(&set, Limits::default());
//! let ev = vec![("IpAddress".to_string(), "10.0.0.9".to_string())];
//! let mut hits = Vec::new();
//! for i in 0..5 {
//!     let ts = Utc.timestamp_opt(1_700_000_000 + 10 * i, 0).unwrap();
//!     hits.extend(c.feed(0, ts, i as u64, &ev));
//! }
//! hits.extend(c.flush());
//! assert_eq!(hits.len(), 1);
//! ```
//!
//! ## Semantics
//!
//! Windows are per correlation and per group (the tuple of `group-by`
//! values; an event lacking one of the fields does not take part). Two
//! evaluation modes, chosen from the condition:
//!
//! * **Threshold reached** — `event_count`, `value_count`, `value_sum` whose
//!   predicates are only `gt`/`gte`: a sliding window `[t - timespan, t]`
//!   evaluated at each event; when the condition holds the hit is emitted and
//!   the group's window is cleared (one hit per burst, not one per event).
//! * **Window closed** — any condition with `lt`/`lte`/`eq`/`neq`, and
//!   `value_avg`/`value_percentile`/`value_median` always: the window opens at
//!   the group's first event and covers `[start, start + timespan]`; it is
//!   evaluated when an event of the group falls after it, when the stream's
//!   time passes its end, or at [`Correlator::flush`]. A window only exists
//!   once an event opened it, so `lt: 5` means "1 to 4 events".
//!
//! `temporal`: every referenced rule (or, with a threshold, that many
//! distinct rules; with a string condition, that boolean expression over the
//! rule names) has at least one event in a sliding window. The parser
//! defaults a missing condition to `gte: 1`; that default is read as "all
//! referenced rules", the specification's meaning. `temporal_ordered`: the
//! rules' events occur in the order listed, all within `timespan` of the
//! first.
//!
//! Values: `value_count` counts distinct values of `condition.field`
//! (text, case-sensitive); `value_sum`/`value_avg`/percentiles read the field
//! as a number (decimal or `0x` hex) and ignore events where it is not one.
//! Percentiles use the nearest-rank method on the window's values
//! (`percentile`, default 50; `value_median` is 50).
//!
//! Memory is bounded: windows expire as time advances; at most
//! [`Limits::max_groups`] groups live at once (events that would open more
//! are dropped and counted in [`CorrelatorStats::dropped_group_events`]),
//! a window keeps at most [`Limits::max_entries_per_group`] events (oldest
//! dropped first, counted), and a hit lists at most
//! [`Limits::max_events_per_hit`] contributing event handles.

use tracehunt_event::Event;

/// Reads event fields by name for group-by and value fields.
///
/// Names compare ASCII case-insensitively with spaces ignored, like the
/// matcher (`Threat Name` = `ThreatName`).
pub trait Fields {
    /// The first value of field `name` as text, or `None` when absent.
    fn field(&self, name: &str) -> Option<String>;
}

/// Field-name equality used everywhere in tracehunt: ASCII
/// case-insensitive, spaces ignored.
pub fn same_field(a: &str, b: &str) -> bool {
    let mut x = a.bytes().filter(|c| *c != b' ');
    let mut y = b.bytes().filter(|c| *c != b' ');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(&q) => {}
            _ => return false,
        }
    }
}

impl Fields for Event {
    fn field(&self, name: &str) -> Option<String> {
        self.fields()
            .find(|(n, _)| same_field(n, name))
            .map(|(_, v)| v.to_text().into_owned())
    }
}

impl Fields for Vec<(String, String)> {
    fn field(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(n, _)| same_field(n, name))
            .map(|(_, v)| v.clone())
    }
}

mod compile;
mod correlator;
pub use compile::*;
pub use correlator::*;

#[cfg(test)]
mod tests;

mod state;
pub use state::WindowState;
