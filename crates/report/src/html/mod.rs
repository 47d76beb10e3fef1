//! The self-contained HTML report (`hunt --format html`, `tracehunt report`).
//!
//! [`HtmlReport`] is a plain data model of owned strings and numbers: the
//! hunt fills it from its counts (`tracehunt-pipeline`), `tracehunt report
//! --store` from the store; [`render`] turns it into one HTML document with
//! no network access at all (a Content-Security-Policy forbids every load;
//! no script, no external font or image), readable with JavaScript
//! disabled: the charts are inline SVG written here, details fold with
//! `<details>`.
//!
//! Sections, each an element with a stable id: `summary` (events, files,
//! what was skipped and why, rules, detections and unique detections per
//! level, dates with most detections, top hosts and rules per level),
//! `timeline` (detections per hour/day/month by level, the first high and
//! critical detections), `incidents` (hosts, time span, tactics,
//! attribution with evidence), `heatmap` (ATT&CK tactic × technique),
//! `actors` (actors over time) and `commitments` (the commitment charts).
//! An empty section says why it is empty.
//!
//! Every text is HTML-escaped ([`escape`]): host names, rule titles and
//! command lines come from the logs, i.e. from the attacker.
//!
//! ```
//! use tracehunt_report::html::{render, HtmlReport};
//! let r = HtmlReport { title: "hunt <1>".into(), ..HtmlReport::default() };
//! let page = render(&r);
//! assert!(page.contains("hunt &lt;1&gt;"));
//! assert!(page.contains(r#"id="commitments""#));
//! ```

/// `write!` into a `String`, which cannot fail.
macro_rules! w {
    ($o:expr, $($t:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt($o, format_args!($($t)*));
    }};
}

mod build;
mod charts;
mod sections;
#[cfg(test)]
mod tests;

pub use build::{timeline_from_hours, top_dates_from_hours, TIMELINE_MAX_BUCKETS};

use serde::Serialize;
use std::borrow::Cow;

/// Sigma levels by rank: index 0 informational … 4 critical (the index of
/// every `[u64; 5]` count array in this model).
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// Fill colour of a level rank (0 informational … 4 critical), as Hayabusa:
/// critical red, high orange, medium yellow, low green, informational grey.
pub fn level_colour(rank: usize) -> &'static str {
    match rank {
        4 => "#d62728",
        3 => "#ff7f0e",
        2 => "#e6c200",
        1 => "#2ca02c",
        _ => "#9e9e9e",
    }
}

/// Rank (0 informational … 4 critical) of a Sigma level word; unknown words
/// are informational.
pub fn level_rank(level: &str) -> usize {
    LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level))
        .unwrap_or(0)
}

/// The whole report. Build it field by field (all fields are public; empty
/// vectors render as a sentence saying why the section is empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HtmlReport {
    /// Page title and heading.
    pub title: String,
    /// When the report was made (any readable text, e.g. RFC 3339 UTC);
    /// empty: not shown.
    pub generated_at: String,
    /// `tracehunt <version>`.
    pub tool_version: String,
    /// What was read and loaded.
    pub summary: SummaryView,
    /// Detections and unique detections (distinct rules) per level, most
    /// severe first.
    pub levels: Vec<LevelCount>,
    /// Detections over time by level.
    pub timeline: Timeline,
    /// Per level (most severe first): the dates (`YYYY-MM-DD`, UTC) with
    /// most detections of that level, with their counts.
    pub top_dates: Vec<LevelTop>,
    /// Per level: the hosts with most detections of that level.
    pub top_hosts_per_level: Vec<LevelTop>,
    /// Per level: the rules (titles) that fired most at that level.
    pub top_rules: Vec<LevelTop>,
    /// ATT&CK tactic × technique counts of what fired, in ATT&CK tactic
    /// order (reconnaissance … impact, then any other tactic).
    pub heatmap: Vec<TacticColumn>,
    /// What the heatmap counts, when not the default ("detections per technique of the
    /// rules that fired"): the store's report counts incidents.
    pub heatmap_note: String,
    /// The first detections at level high or critical, capped.
    pub severe: SevereTable,
    /// Incidents, most severe first (may be capped: see `incidents_total`).
    pub incidents: Vec<IncidentView>,
    /// Incidents in the hunt (≥ `incidents.len()`).
    pub incidents_total: u64,
    /// How incidents were grouped (one sentence; empty: not shown).
    pub incidents_note: String,
    /// The attribution of the whole collection taken together.
    pub collection_attribution: Option<AttributionView>,
    /// Actors over time (from the store).
    pub actors: Vec<ActorTimeline>,
    /// Commitment charts (from the store).
    pub commitments: Vec<CommitmentChart>,
}

/// What was read and loaded (the hunt's `Summary`, as display data).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SummaryView {
    /// Events read.
    pub events: u64,
    /// Events scanned (within the time window).
    pub events_scanned: u64,
    /// Files read.
    pub files: u64,
    /// Files skipped, with the reason.
    pub files_skipped: Vec<SkipView>,
    /// Records lost to damage.
    pub records_skipped: u64,
    /// Records lost, by reason.
    pub records_skipped_by_reason: Vec<(String, u64)>,
    /// Other things left out or repaired (one sentence each).
    pub notes: Vec<String>,
    /// Rule documents loaded.
    pub rules_loaded: u64,
    /// Rules that ran.
    pub rules_active: u64,
    /// Rules kept inactive (unmapped logsource and the like).
    pub rules_skipped: u64,
    /// Inactive rules by reason.
    pub rules_skipped_by_reason: Vec<(String, u64)>,
    /// Rule documents that failed to load.
    pub rules_failed: u64,
    /// Detections in total.
    pub detections: u64,
    /// Time of the first event read (text, UTC).
    pub first_event: Option<String>,
    /// Time of the last event read (text, UTC).
    pub last_event: Option<String>,
    /// The `--from`/`--to` window, when one was given (one sentence).
    pub time_window: Option<String>,
    /// Run time in milliseconds.
    pub elapsed_ms: u64,
}

/// A skipped file and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SkipView {
    /// The file.
    pub path: String,
    /// Why it was skipped.
    pub reason: String,
}

/// Detections of one level.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LevelCount {
    /// Sigma level word.
    pub level: String,
    /// Detections at this level.
    pub detections: u64,
    /// Distinct rules that fired at this level (Hayabusa's "unique detections").
    pub unique: u64,
}

/// A ranked list for one level: `(label, count)`, largest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LevelTop {
    /// Sigma level word.
    pub level: String,
    /// `(label, count)` pairs (a date, a host or a rule title), largest count first.
    pub items: Vec<(String, u64)>,
}

/// Detections over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// Bucket size: `hour`, `day`, `month` or `year`.
    pub unit: String,
    /// Consecutive buckets (empty ones included), oldest first.
    pub buckets: Vec<TimeBucket>,
    /// Detections whose event had no time (not in any bucket).
    pub untimed: u64,
}

/// One bucket of the timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TimeBucket {
    /// Start of the bucket (`2024-03-01 10:00`, `2024-03-01`, `2024-03`, `2024`).
    pub label: String,
    /// Detections by level rank ([`LEVELS`]).
    pub counts: [u64; 5],
}

/// One ATT&CK tactic of the heatmap.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TacticColumn {
    /// Tactic short name (`defense-evasion`).
    pub tactic: String,
    /// Techniques seen under this tactic, most detections first.
    pub techniques: Vec<HeatCell>,
}

/// One technique under one tactic.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HeatCell {
    /// ATT&CK id (`T1059.001`); empty for rules tagged with the tactic only.
    pub id: String,
    /// Technique name (may be empty when unknown).
    pub name: String,
    /// Detections.
    pub count: u64,
    /// Distinct rules that showed it.
    pub rules: u64,
}

/// The first detections at level high or above.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SevereTable {
    /// The rows, in output (time) order.
    pub rows: Vec<DetectionRow>,
    /// High and critical detections in total (≥ `rows.len()`).
    pub total: u64,
}

/// One detection row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DetectionRow {
    /// Event time (text, UTC) or empty.
    pub time: String,
    /// Sigma level word.
    pub level: String,
    /// Host.
    pub host: String,
    /// Rule title.
    pub rule: String,
}

/// A rule that fired in an incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleView {
    /// Rule title.
    pub title: String,
    /// Sigma level word.
    pub level: String,
    /// Detections.
    pub count: u64,
}

/// One incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentView {
    /// Content id (`inc-…`).
    pub id: String,
    /// Hosts involved.
    pub hosts: Vec<String>,
    /// Users involved.
    pub users: Vec<String>,
    /// First detection time (text, UTC).
    pub first_seen: Option<String>,
    /// Last detection time (text, UTC).
    pub last_seen: Option<String>,
    /// Detections.
    pub detections: u64,
    /// Highest level word.
    pub max_level: String,
    /// ATT&CK tactics.
    pub tactics: Vec<String>,
    /// ATT&CK technique ids.
    pub techniques: Vec<String>,
    /// Its most severe, then most frequent rules.
    pub top_rules: Vec<RuleView>,
    /// Its own attribution, best candidate first.
    pub attribution: Vec<CandidateView>,
    /// The verdict sentence.
    pub verdict: String,
    /// Whether the verdict is confident.
    pub confident: bool,
}

/// One attribution candidate.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CandidateView {
    /// ATT&CK group id (`G0009`).
    pub group_id: String,
    /// Group name.
    pub name: String,
    /// Sponsoring state, when known.
    pub state: Option<String>,
    /// Confidence 0–100.
    pub confidence: u8,
    /// Words-of-estimative-probability label.
    pub label: String,
    /// Evidence, strongest first (one sentence each).
    pub evidence: Vec<String>,
}

/// An attribution: candidates and the verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttributionView {
    /// Best candidates first.
    pub candidates: Vec<CandidateView>,
    /// The verdict sentence.
    pub verdict: String,
    /// Whether the verdict is confident.
    pub confident: bool,
}

/// One actor over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ActorTimeline {
    /// ATT&CK group id.
    pub group_id: String,
    /// Group name.
    pub name: String,
    /// Sponsoring state, when known.
    pub state: Option<String>,
    /// First sighting (text).
    pub first_seen: String,
    /// Last sighting (text).
    pub last_seen: String,
    /// Incidents attributed to it.
    pub incidents: u64,
    /// `(month "YYYY-MM", sightings)`, oldest first; the chart's x axis is
    /// the sorted union of every actor's months.
    pub per_month: Vec<(String, u64)>,
}

/// One commitment chart: counts per period with the commitment dates, the
/// fitted segments and the change points.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CommitmentChart {
    /// Chart title.
    pub title: String,
    /// One label per period (`2024-03`).
    pub period_labels: Vec<String>,
    /// Count per period; `None`: no coverage in that period.
    pub counts: Vec<Option<f64>>,
    /// Exposure per period (the rate's denominator).
    pub exposure: Vec<f64>,
    /// Rate per period (count / exposure); `None` without coverage.
    pub rates: Vec<Option<f64>>,
    /// Commitment dates on the period axis.
    pub dates: Vec<ChartDate>,
    /// Fitted segments, in count units.
    pub fitted: Vec<FittedSegment>,
    /// Change points: `(period index where the new regime starts, label)`.
    pub change_points: Vec<(usize, String)>,
    /// The verdict sentence.
    pub verdict: String,
    /// The assumptions behind it (one sentence each).
    pub assumptions: Vec<String>,
}

/// A date drawn as a vertical line on a commitment chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChartDate {
    /// Fractional period index: 0.0 is the start of the first period, 1.5
    /// the middle of the second.
    pub position: f64,
    /// What happened then.
    pub label: String,
    /// A competing event (drawn dashed and grey) rather than the commitment.
    pub competing: bool,
}

/// A fitted segment of a commitment chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FittedSegment {
    /// Legend text.
    pub label: String,
    /// `(period index, fitted count)` points, drawn as one polyline.
    pub points: Vec<(usize, f64)>,
    /// A counterfactual (drawn dashed).
    pub dashed: bool,
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped for HTML text and attribute
/// values, and control characters other than tab, newline and carriage
/// return replaced by U+FFFD.
pub fn escape(s: &str) -> Cow<'_, str> {
    let needs = s
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || is_bad_control(c));
    if !needs {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_bad_control(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Control characters, and the invisible format characters that reorder or hide text
/// (zero-width marks, bidi embeddings, overrides and isolates: a host named
/// `\u{202E}gnp.exe` displayed as `exe.png`, breaker finding).
fn is_bad_control(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(
            c,
            '\u{FFFE}' | '\u{FFFF}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// The Content-Security-Policy of the page: nothing may load (no script,
/// no font, no remote image); inline styles and `data:` images only.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

/// The whole HTML document of `r` (UTF-8, self-contained).
pub fn render(r: &HtmlReport) -> String {
    let mut out = String::with_capacity(64 * 1024);
    sections::page(&mut out, r);
    out
}
