//! Analyses over every event of a set of logs, without rules: what an
//! analyst runs next to a hunt (issue #19, after Hayabusa 4's `search`,
//! `logon-summary`, `eid-metrics`, `computer-metrics`, `log-metrics` and
//! Chainsaw's `search`).
//!
//! * [`search`]: events matching keywords, a regular expression and
//!   `field:value` filters ([`search::Query`]).
//! * [`logon`]: successful (Security 4624) and failed (4625) logons and
//!   RDP sessions (Security 4778/4779, TerminalServices
//!   RemoteConnectionManager 1149) grouped by user, domain, computer, logon
//!   type, source address and workstation ([`logon::LogonSummary`]).
//! * [`metrics`]: the log inventory — EventIDs per channel, computers,
//!   channels/providers, and per file its format, event count, time range,
//!   computers, channels and lost records ([`metrics::Metrics`]).
//!
//! Each analysis is an accumulator fed one work unit at a time
//! ([`tracehunt_pipeline::WorkUnit`]: a file, an EVTX chunk or a JSON-lines
//! range, as `hunt` reads them), merged across threads with `merge`.
//! [`fold_units`] runs one accumulator per thread of a rayon pool over a
//! [`tracehunt_pipeline::Source`]. Events are counted and filtered by a
//! [`Window`] exactly as `hunt` does. Nothing here prints: results are
//! plain data (serde-serialisable) for the CLI to render.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value as J};
use std::collections::BTreeMap;
use tracehunt_event::{Event, Value};
use tracehunt_pipeline::{Records, Source, WorkUnit};
use tracehunt_readers::{RecordError, RecordErrorKind};

pub mod logon;
pub mod metrics;
mod names;
pub mod search;

pub use names::event_name;

/// The `--from`/`--to` time window (inclusive bounds, UTC). With either
/// bound set, an event without a time is outside (as in `hunt`, which
/// cannot place it in the window); with none, every event is inside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// First instant inside the window.
    pub from: Option<DateTime<Utc>>,
    /// Last instant inside the window.
    pub to: Option<DateTime<Utc>>,
}

impl Window {
    /// True when an event at `t` (None: no time) is inside the window.
    pub fn contains(&self, t: Option<DateTime<Utc>>) -> bool {
        match t {
            Some(t) => self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t <= to),
            None => self.from.is_none() && self.to.is_none(),
        }
    }
}

/// What reading cost, per file: the counts every analysis reports so that
/// a short result can be trusted (files are indexed as the
/// [`Source`]'s streams, i.e. the walked, sorted paths).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadStats {
    /// Events read (all of them, in the window or not: `hunt`'s event count).
    pub events: u64,
    /// Events left out by the [`Window`].
    pub outside_window: u64,
    /// Files that could not be read at all: (file index, reason), sorted.
    pub unreadable: Vec<(usize, String)>,
    /// Files with lost records: file index → (records lost, first loss as
    /// `location: reason`). Duplicate EVTX chunks, damaged unused chunk
    /// slots and repaired signatures lose nothing and are not counted.
    pub lost: BTreeMap<usize, (u64, String)>,
}

impl ReadStats {
    /// Adds another thread's counts.
    pub fn merge(&mut self, o: ReadStats) {
        self.events += o.events;
        self.outside_window += o.outside_window;
        self.unreadable.extend(o.unreadable);
        self.unreadable.sort();
        for (f, (n, first)) in o.lost {
            let e = self.lost.entry(f).or_insert((0, first));
            e.0 += n;
        }
    }

    /// Records lost in all files.
    pub fn records_lost(&self) -> u64 {
        self.lost.values().map(|l| l.0).sum()
    }

    /// Counts one record error of file `file`; returns the records it lost.
    fn record_error(&mut self, file: usize, e: &RecordError) -> u64 {
        match e.kind {
            RecordErrorKind::DuplicateChunk
            | RecordErrorKind::DamagedUnusedChunk
            | RecordErrorKind::RepairedSignature => 0,
            _ if e.records == 0 => 0,
            _ => {
                let l = self
                    .lost
                    .entry(file)
                    .or_insert_with(|| (0, format!("{}: {}", e.at, e.reason)));
                l.0 += e.records;
                e.records
            }
        }
    }
}

/// The format of a work unit's file, as a short name: `evtx`, `json-array`,
/// `jsonl`, `auditd`, `syslog`, `zeek-tsv`, `w3c`, `access-log` (what
/// [`tracehunt_readers::sniff`] told).
pub fn unit_format(records: &Records) -> &'static str {
    match records {
        Records::Chunk(_) => "evtx",
        Records::Lines(_) => "jsonl",
        Records::Stream(r) => format_name(r.format()),
        Records::Boxed(_) => "stream",
    }
}

fn format_name(f: tracehunt_readers::Format) -> &'static str {
    use tracehunt_readers::Format as F;
    match f {
        F::Evtx => "evtx",
        F::JsonArray => "json-array",
        F::JsonLines => "jsonl",
        F::Auditd => "auditd",
        F::Syslog => "syslog",
        F::ZeekTsv => "zeek-tsv",
        F::W3c => "w3c",
        F::AccessLog => "access-log",
        _ => "other",
    }
}

/// Reads one work unit: counts its events and record errors in `stats`
/// and calls `f(place, event)` for each event inside `window` (`place`: the
/// event's 0-based position among the unit's events, for a stable order).
/// A unit whose file could not be opened is noted in `stats.unreadable`.
/// Returns the unit's format name ([`unit_format`]) when it was read.
pub fn read_unit(
    unit: WorkUnit,
    window: &Window,
    stats: &mut ReadStats,
    mut f: impl FnMut(u32, Event),
) -> Option<&'static str> {
    let records = match unit.records {
        Ok(r) => r,
        Err(reason) => {
            // Kept sorted as `merge` leaves it: one thread's units need not
            // come in file order (the batch source hands out big files first).
            let entry = (unit.stream, reason);
            let at = stats.unreadable.partition_point(|u| *u < entry);
            stats.unreadable.insert(at, entry);
            return None;
        }
    };
    let format = unit_format(&records);
    let mut place = 0u32;
    for rec in records {
        match rec {
            Ok(ev) => {
                stats.events += 1;
                if window.contains(ev.meta.timestamp) {
                    f(place, ev);
                } else {
                    stats.outside_window += 1;
                }
                place += 1;
            }
            Err(e) => {
                stats.record_error(unit.stream, &e);
            }
        }
    }
    Some(format)
}

/// Runs one accumulator per thread of `pool` (made by `init`), each taking
/// units from `source` until it is exhausted and handing them to `each`;
/// returns the accumulators, to be merged (their order depends on
/// scheduling: merge into results that do not, e.g. by sorting).
pub fn fold_units<A: Send>(
    pool: &rayon::ThreadPool,
    source: &dyn Source,
    init: impl Fn() -> A + Sync,
    each: impl Fn(&mut A, WorkUnit) + Sync,
) -> Vec<A> {
    pool.broadcast(|_| {
        let mut acc = init();
        while let Some(unit) = source.next_unit() {
            each(&mut acc, unit);
        }
        acc
    })
}

/// An RFC 3339 UTC time with the seconds' fraction only when present
/// (`2019-03-19T23:34:25.123Z`), as the JSON outputs write times.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A field value as JSON: strings, integers, floats and booleans as they
/// are, null as null.
pub fn value_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.clone()),
    }
}

/// The event's fields as one JSON object, names in first-occurrence order;
/// a repeated name (unnamed `Data` items) becomes an array of its values —
/// the shape of the `event` object of `hunt`'s JSON lines.
pub fn event_fields_json(ev: &Event) -> J {
    let mut m = Map::new();
    for (k, v) in ev.fields() {
        let v = value_json(v);
        match m.get_mut(k) {
            Some(J::Array(a)) => a.push(v),
            Some(prev) => {
                let p = prev.take();
                *prev = J::Array(vec![p, v]);
            }
            None => {
                m.insert(k.to_owned(), v);
            }
        }
    }
    J::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_leaves_untimed_events_out_only_when_bounded() {
        let t = DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(Window::default().contains(None));
        let w = Window {
            from: Some(t),
            to: None,
        };
        assert!(!w.contains(None));
        assert!(w.contains(Some(t)));
        assert!(!w.contains(Some(t - chrono::Duration::seconds(1))));
    }

    #[test]
    fn repeated_fields_become_arrays() {
        let mut ev = Event::default();
        ev.push("Data", Value::from("a"));
        ev.push("EventID", Value::Int(4));
        ev.push("Data", Value::from("b"));
        assert_eq!(
            event_fields_json(&ev),
            serde_json::json!({"Data": ["a", "b"], "EventID": 4})
        );
    }
}
