//! What a hunt produces and how it is written out.
//!
//! * [`Detection`]: one rule firing on one event.
//! * [`Summary`]: counts for the run (events, files, what was skipped and
//!   why, rules loaded/failed, detections by level, top rules and hosts).
//! * Writers for the output formats: [`write_jsonl`] (one detection per
//!   line), [`write_csv`] (a Timesketch-compatible timeline), [`ecs_json`]
//!   (Elastic Common Schema 8.17 documents), and [`write_table`] (human
//!   summary); [`write_stix_bundle`] (STIX 2.1 bundle
//!   of sightings and attribution) and [`navigator_layer`] (ATT&CK Navigator
//!   layer 4.5). The `json` format is a single object
//!   built by the CLI from [`detection_json`] and the summary.
//!
//! Writers take any [`std::io::Write`] the caller hands them; the crate
//! opens no files and never prints.
//!
//! ## JSONL wire format (one object per line, stable)
//! | key | type | meaning |
//! |---|---|---|
//! | `timestamp` | string RFC 3339 UTC or null | event time (`System/TimeCreated`) |
//! | `rule_id` | string | Sigma rule `id` |
//! | `rule_title` | string | Sigma rule `title` |
//! | `level` | string | `informational`…`critical` |
//! | `computer` | string or null | `System/Computer` |
//! | `channel` | string or null | `System/Channel` |
//! | `event_id` | integer or null | `System/EventID` |
//! | `record_id` | integer or null | `System/EventRecordID` |
//! | `source` | string | path of the log file |
//! | `techniques` | array of strings | ATT&CK technique ids from the rule's tags |
//! | `tactics` | array of strings | ATT&CK tactic names from the rule's tags |
//! | `tags` | array of strings | every rule tag |
//! | `rule_file` | string | the rule file |
//! | `event` | object | the event's fields (name → value) |
//!
//! The schema is tracehunt's own, not ECS ([`ecs_json`] is). `event` values
//! keep the type the reader gives them (EVTX: the BinXML value type), so a
//! name can be a number in one channel and text in another (Sysmon's
//! `ProcessId` is a UInt32, Security's a `0x…` hex string); keys and the
//! types of the keys above never change.
//!
//! ```
//! use tracehunt_report::Summary;
//! let s = Summary::default();
//! assert_eq!(s.events, 0);
//! ```

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value as J};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;
use tracehunt_engine::{RuleMeta, Ruleset};

mod csv;
mod display;
mod ecs;
pub mod html;
mod navigator;
mod stix;
mod table;
mod table_summary;
pub use csv::{csv_header, csv_row, csv_safe, write_csv, CSV_HEADER};
pub use display::{fit, short_level, text_width, DisplayZone, TableStyle, TimeFormat};
pub use ecs::{ecs_json, severity_score, write_ecs_line, ECS_VERSION};
pub use navigator::{
    navigator_layer, observed_color, LayerTechnique, Overlay, COLOR_BOTH, COLOR_GROUP_ONLY,
    COLOR_OBSERVED_MAX, COLOR_OBSERVED_MIN,
};
pub use stix::{
    adopt_attack_versions, ioc_pattern, stix_bundle, stix_id, write_stix_bundle, GroupAttribution,
    IncidentStix, IndicatorSighting, StixInput, TechniqueSighting, Tlp, ATTACK_MARKING_ID,
    MITRE_IDENTITY_ID, STIX_NAMESPACE, TLP2_EXTENSION,
};
pub use table::{
    ellipsize, table_cells, write_table, write_table_rows, RowGroups, TableRow, DETAILS_CHARS,
};
pub use table_summary::{skipped_more_line, write_table_summary, TableStats, SKIPPED_LISTED};

/// One rule firing on one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Index of the rule in the [`Ruleset`].
    pub rule: usize,
    /// Event time in UTC.
    pub timestamp: Option<DateTime<Utc>>,
    /// `System/Computer`.
    pub computer: Option<String>,
    /// `System/Channel`.
    pub channel: Option<String>,
    /// `System/EventID`.
    pub event_id: Option<u32>,
    /// `System/EventRecordID` (or the reader's record number).
    pub record_id: Option<u64>,
    /// Path of the file the event came from.
    pub source: Arc<str>,
    /// The event's fields as `(name, JSON value)`, in reader order; shared
    /// by every detection of the same event.
    pub fields: Arc<Vec<(String, serde_json::Value)>>,
}

/// What the summary, the attribution evidence and the aggregate formats
/// (STIX, Navigator) need of one detection: its rule, time and host. A hunt
/// keeps these for every detection and the full [`Detection`] only as long
/// as it takes to render it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionRef<'a> {
    /// Index of the rule in the [`Ruleset`].
    pub rule: usize,
    /// Event time in UTC.
    pub timestamp: Option<DateTime<Utc>>,
    /// `System/Computer`.
    pub computer: Option<&'a str>,
}

impl Detection {
    /// The detection's rule, time and host.
    pub fn view(&self) -> DetectionRef<'_> {
        DetectionRef {
            rule: self.rule,
            timestamp: self.timestamp,
            computer: self.computer.as_deref(),
        }
    }
}

/// The `--from`/`--to` time window of a hunt and the events in it
/// ([`Summary::time_window`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimeWindow {
    /// `--from`, when given (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// `--to`, when given (inclusive).
    pub to: Option<DateTime<Utc>>,
    /// Earliest event time in the window (`None`: no event in it).
    pub first_event: Option<DateTime<Utc>>,
    /// Latest event time in the window.
    pub last_event: Option<DateTime<Utc>>,
    /// Events read that have no time: a window cannot place them, so they
    /// were not scanned (counted in `events`, not in `events_scanned`).
    pub events_without_time: u64,
}

/// A file that was not read, or only partly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Path of the file.
    pub path: String,
    /// Why (unsupported format, I/O error…), or the first record error.
    pub reason: String,
    /// Records lost in this file (0 when the whole file was skipped before
    /// any record could be counted).
    pub records: u64,
}

/// An EVTX file with unused chunk slots holding damaged bytes (skipped,
/// no record there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusedChunks {
    /// Path of the file.
    pub path: String,
    /// Damaged unused chunk slots in it.
    pub chunks: u64,
}

/// A file with events read without a numeric EventID or without a time
/// (scanned, but see [`Summary::events_incomplete`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncompleteEvents {
    /// Path of the file.
    pub path: String,
    /// Such events in it.
    pub events: u64,
    /// The first one: its record id (`EventRecordID`, else the line or
    /// element number the reader gave it) and what it lacks.
    pub first: String,
}

/// Events of one channel that no active rule reads
/// ([`Summary::channels_without_rules`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelEvents {
    /// The channel (route key) in lower case: `security`,
    /// `aws:cloudtrail`, `linux:auditd`…; `""` for events without one.
    pub channel: String,
    /// Events of it scanned.
    pub events: u64,
}

/// The note about [`Summary::channels_without_rules`], `None` when every
/// channel was read by some rule: "no active rule reads 295 events of
/// aws:cloudtrail (…): 0 detections there means nothing looked; add rules
/// for those log types (-r …)". At most five channels are named.
pub fn channels_without_rules_note(s: &Summary) -> Option<String> {
    if s.channels_without_rules.is_empty() {
        return None;
    }
    let total: u64 = s.channels_without_rules.iter().map(|c| c.events).sum();
    let mut named: Vec<String> = s
        .channels_without_rules
        .iter()
        .take(5)
        .map(|c| {
            let ch = if c.channel.is_empty() {
                "(no channel)"
            } else {
                &c.channel
            };
            format!("{ch} {}", c.events)
        })
        .collect();
    if s.channels_without_rules.len() > 5 {
        named.push(format!(
            "{} more channels",
            s.channels_without_rules.len() - 5
        ));
    }
    Some(format!(
        "no active rule reads {} ({}): no detection there means nothing looked; add rules for those log types (-r)",
        if total == 1 { "1 event".to_owned() } else { format!("{total} events") },
        named.join(", ")
    ))
}

/// An EVTX file read past damaged signatures
/// ([`Summary::files_with_repaired_signatures`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairedSignatures {
    /// Path of the file.
    pub path: String,
    /// Damaged signatures read past in it (the file's, its chunks').
    pub signatures: u64,
    /// The first of them: where and what.
    pub first: String,
}

/// Per-rule count for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// Sigma rule id.
    pub id: String,
    /// Rule title.
    pub title: String,
    /// Rule level.
    pub level: String,
    /// Number of detections.
    pub count: u64,
}

/// Counts for one run. Serialised as the `summary` object of `--format json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Events read (successfully parsed records).
    pub events: u64,
    /// Events that passed the time window and were scanned.
    pub events_scanned: u64,
    /// Log files read (at least partly).
    pub files: u64,
    /// Files not read at all, with reasons.
    pub files_skipped: Vec<Skipped>,
    /// Records that could not be parsed, over all files.
    pub records_skipped: u64,
    /// Records skipped, by reason class.
    pub records_skipped_by_reason: BTreeMap<String, u64>,
    /// Files with at least one skipped record, with the first reason.
    pub files_with_record_errors: Vec<Skipped>,
    /// EVTX chunks skipped because they are byte-for-byte copies of an
    /// earlier chunk of the same file (`RecordErrorKind::DuplicateChunk`):
    /// their records were read once, from the first copy, so nothing is lost
    /// and they are not counted in `records_skipped`. Omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicate_chunks_skipped: u64,
    /// Unused EVTX chunk slots (past the chunk count of an intact file
    /// header) holding damaged bytes but no chunk signature and no record
    /// (`RecordErrorKind::DamagedUnusedChunk`): skipped; nothing is lost and
    /// they are not counted in `records_skipped`. Omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub damaged_unused_chunks_skipped: u64,
    /// The files those slots were in, in input order, with how many each
    /// (`records` is always 0: none lost). Omitted from JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_with_damaged_unused_chunks: Vec<UnusedChunks>,
    /// Events read (counted in `events`) without a numeric EventID or
    /// without a time, which every Windows event has: a record whose shape
    /// kept them where the reader did not find them. They are scanned, but
    /// rules whose logsource names EventIDs cannot match an event without
    /// one, and an event without a time sorts last and is outside every
    /// `--from`/`--to` window. Omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_incomplete: u64,
    /// The files those events are in, in input order. Omitted from JSON
    /// when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_with_incomplete_events: Vec<IncompleteEvents>,
    /// Channels of scanned events that no active rule reads (its logsource
    /// maps to other channels), most events first: a hunt of CloudTrail
    /// with the Windows-only built-in rules found nothing because nothing
    /// looked (fresh-user finding, issue #21). Empty without rules (e.g.
    /// `--parse-only`); at most 1,024 channels per worker are counted.
    /// Omitted from JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels_without_rules: Vec<ChannelEvents>,
    /// Damaged EVTX signatures read past
    /// (`RecordErrorKind::RepairedSignature`): a file header whose
    /// `ElfFile\0` is damaged (the file was recognised by its first chunk)
    /// or a chunk whose `ElfChnk\0` is, read with it restored. The repair
    /// loses nothing (records the damage lost are counted in
    /// `records_skipped`). Omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub evtx_signatures_repaired: u64,
    /// The files those signatures were in, in input order, with how many
    /// each and the first. Omitted from JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files_with_repaired_signatures: Vec<RepairedSignatures>,
    /// Rules loaded: parsed and compiled (the same figure `rules check`
    /// reports as loaded), `rules_active + rules_skipped`.
    pub rules_loaded: u64,
    /// Loaded rules this hunt uses: their logsource is mapped to an event
    /// source and their level is at or above `--min-level`.
    pub rules_active: u64,
    /// Loaded rules this hunt does not use, `rules_loaded - rules_active`.
    pub rules_skipped: u64,
    /// [`Summary::rules_skipped`] by reason: `logsource_not_mapped` (never
    /// evaluated, `TH010`), `below_min_level` (evaluated only for the
    /// correlations that reference them, never reported), `duplicate_id`
    /// (a later copy of a rule id, dropped, `TH013`). Zero counts are left out.
    pub rules_skipped_by_reason: BTreeMap<String, u64>,
    /// Rule documents that failed to load (error diagnostics).
    pub rules_failed: u64,
    /// Loaded rules with an `expand` placeholder that has no value (`TH011`,
    /// pass `--placeholders FILE`): that item never matches, so the rule may
    /// never fire (the item is in a selection) or fire unfiltered (the item
    /// is in a `not` filter) although it counts as active. Omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rules_with_unresolved_placeholder: u64,
    /// Detections written (after `--min-level`).
    pub detections: u64,
    /// Detections left out as duplicates of one already counted (`hunt -X`:
    /// same rule, time, computer, channel, event id and record id, seen in
    /// another file). Omitted from JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicate_detections_removed: u64,
    /// Detections by level name.
    pub by_level: BTreeMap<String, u64>,
    /// Most frequent rules, descending.
    pub top_rules: Vec<RuleCount>,
    /// Every rule at level high or critical that fired, most severe first,
    /// then by count (what to look at first).
    pub severe_rules: Vec<RuleCount>,
    /// Hosts with most detections, descending: `(computer, count)`.
    pub top_hosts: Vec<(String, u64)>,
    /// Earliest event time read, over all input (also outside `--from`/`--to`).
    pub first_event: Option<DateTime<Utc>>,
    /// Latest event time read, over all input (also outside `--from`/`--to`).
    pub last_event: Option<DateTime<Utc>>,
    /// With `--from` and/or `--to`: the window asked for and the time range
    /// of the events in it (those scanned). Omitted from JSON without a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window: Option<TimeWindow>,
    /// Wall time of the run in milliseconds.
    pub elapsed_ms: u64,
}

/// serde helper: omit a zero count.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Summary {
    /// Fills `detections`, `by_level`, `top_rules` (10) and `top_hosts` (10)
    /// from the detections.
    pub fn count_detections(&mut self, rs: &Ruleset, dets: &[Detection]) {
        self.count(rs, dets.iter().map(Detection::view));
    }

    /// [`Summary::count_detections`] over detection views: fills
    /// `detections`, `by_level`, `severe_rules`, `top_rules` (10) and
    /// `top_hosts` (10).
    pub fn count<'a>(&mut self, rs: &Ruleset, dets: impl IntoIterator<Item = DetectionRef<'a>>) {
        let mut n = 0u64;
        let mut by_rule: BTreeMap<usize, u64> = BTreeMap::new();
        let mut by_host: BTreeMap<&str, u64> = BTreeMap::new();
        self.by_level.clear();
        for d in dets {
            n += 1;
            *by_rule.entry(d.rule).or_default() += 1;
            *by_host.entry(d.computer.unwrap_or("-")).or_default() += 1;
        }
        for (&r, &c) in &by_rule {
            *self
                .by_level
                .entry(rs.rule(r).level.to_owned())
                .or_default() += c;
        }
        self.detections = n;
        let by_host: BTreeMap<String, u64> = by_host
            .into_iter()
            .map(|(h, c)| (h.to_owned(), c))
            .collect();
        let mut rules: Vec<_> = by_rule.into_iter().collect();
        let mut severe: Vec<_> = rules
            .iter()
            .filter(|(r, _)| rs.rule(*r).level_rank >= 3)
            .copied()
            .collect();
        severe.sort_by(|a, b| {
            rs.rule(b.0)
                .level_rank
                .cmp(&rs.rule(a.0).level_rank)
                .then(b.1.cmp(&a.1))
                .then(a.0.cmp(&b.0))
        });
        let count_of = |(r, count): (usize, u64)| {
            let m = rs.rule(r);
            RuleCount {
                id: m.id.clone(),
                title: m.title.clone(),
                level: m.level.to_owned(),
                count,
            }
        };
        self.severe_rules = severe.into_iter().map(count_of).collect();
        rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.top_rules = rules.into_iter().take(10).map(count_of).collect();
        let mut hosts: Vec<_> = by_host.into_iter().collect();
        hosts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hosts.truncate(10);
        self.top_hosts = hosts;
    }
}

fn ts(t: &Option<DateTime<Utc>>) -> J {
    t.map_or(J::Null, |t| {
        J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    })
}

/// The JSON object of one detection (the JSONL wire format above).
pub fn detection_json(rs: &Ruleset, d: &Detection) -> J {
    let m: &RuleMeta = rs.rule(d.rule);
    let mut ev = Map::new();
    for (k, v) in d.fields.iter() {
        // Repeated names (unnamed Data items) become arrays.
        match ev.get_mut(k) {
            Some(J::Array(a)) => a.push(v.clone()),
            Some(prev) => {
                let p = prev.take();
                *prev = J::Array(vec![p, v.clone()]);
            }
            None => {
                ev.insert(k.clone(), v.clone());
            }
        }
    }
    json!({
        "timestamp": ts(&d.timestamp),
        "rule_id": m.id,
        "rule_title": m.title,
        "level": m.level,
        "computer": d.computer,
        "channel": d.channel,
        "event_id": d.event_id,
        "record_id": d.record_id,
        "source": &*d.source,
        "techniques": m.techniques,
        "tactics": m.tactics,
        "tags": m.tags,
        "rule_file": m.file,
        "event": J::Object(ev),
    })
}

/// The object of [`detection_json`], serialized straight from the
/// detection and its rule (no intermediate `serde_json::Value` tree: the
/// hunt renders every detection through this, ~85,000 on the bench corpus).
/// Byte-identical to `serde_json::to_writer(w, &detection_json(rs, d))`.
struct DetectionWire<'a> {
    m: &'a RuleMeta,
    d: &'a Detection,
}

/// The event object of [`detection_json`]: names in first-occurrence
/// order; a repeated name (unnamed `Data` items) becomes an array of its
/// values, appended to the first value when that is itself an array.
pub(crate) struct EventWire<'a>(pub(crate) &'a [(String, J)]);

/// Events with at most this many fields find repeated names by scanning
/// (no hash map per detection); larger ones through a hash map, so the
/// work stays linear (breaker finding: a JSON event with 100,000 distinct
/// field names matched by one rule took 38.9 s to render, quadratic).
const SCAN_REPEATS_MAX: usize = 32;

impl Serialize for EventWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        const NONE: usize = usize::MAX;
        /// The values of the name first occurring at `at`, following the
        /// `next` chain of its later occurrences.
        struct Repeated<'a> {
            fields: &'a [(String, J)],
            next: &'a [usize],
            at: usize,
        }
        impl Serialize for Repeated<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(None)?;
                match &self.fields[self.at].1 {
                    J::Array(a) => a.iter().try_for_each(|v| seq.serialize_element(v))?,
                    v => seq.serialize_element(v)?,
                }
                let mut j = self.next[self.at];
                while j != NONE {
                    seq.serialize_element(&self.fields[j].1)?;
                    j = self.next[j];
                }
                seq.end()
            }
        }
        let f = self.0;
        // next[i]: the following field with f[i]'s name; first[i]: no
        // earlier field has it.
        let mut next = vec![NONE; f.len()];
        let mut first = vec![true; f.len()];
        if f.len() <= SCAN_REPEATS_MAX {
            for i in 0..f.len() {
                if let Some(j) = (i + 1..f.len()).find(|&j| f[j].0 == f[i].0) {
                    next[i] = j;
                    first[j] = false;
                }
            }
        } else {
            let mut last: std::collections::HashMap<&str, usize> =
                std::collections::HashMap::with_capacity(f.len());
            for (i, (k, _)) in f.iter().enumerate() {
                if let Some(p) = last.insert(k, i) {
                    next[p] = i;
                    first[i] = false;
                }
            }
        }
        let mut map = s.serialize_map(None)?;
        for (i, (k, v)) in f.iter().enumerate() {
            if !first[i] {
                continue;
            }
            if next[i] == NONE {
                map.serialize_entry(k, v)?;
            } else {
                let r = Repeated {
                    fields: f,
                    next: &next,
                    at: i,
                };
                map.serialize_entry(k, &r)?;
            }
        }
        map.end()
    }
}

impl Serialize for DetectionWire<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (m, d) = (self.m, self.d);
        let mut map = s.serialize_map(Some(14))?;
        map.serialize_entry("timestamp", &ts(&d.timestamp))?;
        map.serialize_entry("rule_id", &m.id)?;
        map.serialize_entry("rule_title", &m.title)?;
        map.serialize_entry("level", m.level)?;
        map.serialize_entry("computer", &d.computer)?;
        map.serialize_entry("channel", &d.channel)?;
        map.serialize_entry("event_id", &d.event_id)?;
        map.serialize_entry("record_id", &d.record_id)?;
        map.serialize_entry("source", &*d.source)?;
        map.serialize_entry("techniques", &m.techniques)?;
        map.serialize_entry("tactics", &m.tactics)?;
        map.serialize_entry("tags", &m.tags)?;
        map.serialize_entry("rule_file", &m.file)?;
        map.serialize_entry("event", &EventWire(&d.fields))?;
        map.end()
    }
}

/// Writes the JSON object of one detection (the JSONL wire format, as
/// [`detection_json`] gives it, without a newline).
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_detection_json<W: Write>(w: &mut W, rs: &Ruleset, d: &Detection) -> io::Result<()> {
    let wire = DetectionWire {
        m: rs.rule(d.rule),
        d,
    };
    serde_json::to_writer(w, &wire).map_err(io::Error::other)
}

/// Writes one JSON object per detection, newline-terminated.
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_jsonl<W: Write>(w: &mut W, rs: &Ruleset, dets: &[Detection]) -> io::Result<()> {
    for d in dets {
        write_detection_json(w, rs, d)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Text safe for a terminal row: control characters (ESC, CR, LF, NUL…)
/// from event data become spaces, so a log cannot inject terminal escape
/// sequences or break the table layout.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    // Control characters, and the invisible format characters that reorder
    // or hide text on a terminal (zero-width and bidi controls: `evil\u{202E}txt.exe`).
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if s.chars().any(unsafe_char) {
        std::borrow::Cow::Owned(
            s.chars()
                .map(|c| if unsafe_char(c) { ' ' } else { c })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Short "key: value" rendering of the most telling event fields, for
/// `message` columns and the table.
pub fn details(d: &Detection, max: usize) -> String {
    // Windows names first; then (issue #21) the telling fields of the
    // non-Windows formats under their own names, which Windows events do
    // not carry (names compare exactly).
    const KEYS: &[&str] = &[
        "CommandLine",
        "Image",
        "NewProcessName",
        "ParentImage",
        "TargetFilename",
        "TargetObject",
        "ScriptBlockText",
        "ServiceName",
        "ImagePath",
        "TargetUserName",
        "SubjectUserName",
        "IpAddress",
        "ShareName",
        "DestinationIp",
        // auditd records and syslog lines
        "type",
        "exe",
        "proctitle",
        "message",
        // CloudTrail, Kubernetes, Okta, GCP, GitHub, Azure, M365
        "eventSource",
        "eventName",
        "userIdentity.arn",
        "sourceIPAddress",
        "verb",
        "objectRef.resource",
        "objectRef.name",
        "user.username",
        "eventType",
        "actor.alternateId",
        "protoPayload.methodName",
        "action",
        "actor",
        "operationName",
        "Operation",
        "UserId",
        // Zeek and web servers
        "id.orig_h",
        "id.resp_h",
        "query",
        "cs-method",
        "cs-uri-stem",
        "cs-uri-query",
        "sc-status",
        "c-ip",
    ];
    let mut out = String::new();
    for &k in KEYS {
        if let Some((_, v)) = d.fields.iter().find(|(n, _)| n == k) {
            let text = match v {
                J::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.is_empty() || text == "-" {
                continue;
            }
            if !out.is_empty() {
                out.push_str(" ¦ ");
            }
            out.push_str(k);
            out.push_str(": ");
            out.push_str(&terminal_safe(&text));
            if out.chars().count() > max {
                let cut: String = out.chars().take(max.saturating_sub(1)).collect();
                return cut + "…";
            }
        }
    }
    out
}

/// The rule counts of a run in the words `rules check` uses:
/// `"3754 loaded, 2852 active, 902 skipped (902 logsource not mapped), 0 failed"`,
/// then `"; 2 rules with an `expand` placeholder without value (TH011: …)"`
/// when [`Summary::rules_with_unresolved_placeholder`] is not 0.
pub fn rules_line(s: &Summary) -> String {
    let reasons: Vec<String> = s
        .rules_skipped_by_reason
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| match r.as_str() {
            "logsource_not_mapped" => format!("{n} logsource not mapped"),
            "below_min_level" => format!("{n} below --min-level"),
            "duplicate_id" => format!("{n} duplicate id"),
            // The rule selection's reasons (`excluded_by_status`…) in words.
            other => format!("{n} {}", other.replace('_', " ")),
        })
        .collect();
    format!(
        "{} loaded, {} active, {} skipped{}, {} failed{}",
        s.rules_loaded,
        s.rules_active,
        s.rules_skipped,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        s.rules_failed,
        if s.rules_with_unresolved_placeholder > 0 {
            format!(
                "; {} with an `expand` placeholder without value (TH011: that item never matches; --placeholders FILE)",
                counted(s.rules_with_unresolved_placeholder, "rule", "rules")
            )
        } else {
            String::new()
        }
    )
}

/// The note for [`TimeWindow::events_without_time`]: `"3 events without a
/// time left out of the window (not scanned)"`.
pub fn untimed_note(n: u64) -> String {
    format!(
        "{} without a time left out of the window (not scanned)",
        counted(n, "event", "events")
    )
}

/// The note for one file of [`Summary::files_with_repaired_signatures`]:
/// `"1 damaged EVTX signature repaired in x.evtx (first: file header: …)"`.
pub fn repaired_note(f: &RepairedSignatures) -> String {
    format!(
        "{} repaired in {} (first: {})",
        counted(
            f.signatures,
            "damaged EVTX signature",
            "damaged EVTX signatures"
        ),
        f.path,
        f.first
    )
}

/// `n` with the noun agreeing: `counted(1, "file", "files")` → `"1 file"`, `counted(2, …)` →
/// `"2 files"` (fresh-user finding: "1 entries" and similar in user-facing output).
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_from_event_data_are_neutralised() {
        assert_eq!(terminal_safe("a\x1b[31mb\r\nc"), "a [31mb  c");
        assert_eq!(terminal_safe("plain"), "plain");
    }

    /// The direct serializer the hunt renders with gives the bytes of
    /// `detection_json` for every event shape: repeated names whose first
    /// value is a scalar or an array, nulls, missing header facts.
    /// Regression (breaker): the event object found repeated names by
    /// scanning every other field for each field, so a JSON event with
    /// 100,000 distinct names took 38.9 s to render (quadratic); and the
    /// hash-map path for large events gives the same bytes as
    /// `detection_json` (repeats first as a scalar, as an array, as null;
    /// interleaved).
    #[test]
    fn write_detection_json_was_quadratic_in_distinct_field_names() {
        let yaml = "title: T\nid: 00000000-0000-4000-8000-0000000000cd\nlogsource: {product: windows}\ndetection:\n  k:\n    - 'x'\n  condition: k\nlevel: high\n";
        let f = tracehunt_sigma::load_rules("t.yml", yaml);
        let (rs, _) =
            tracehunt_engine::compile(f.rules, &tracehunt_engine::CompileOptions::default());
        let mut fields: Vec<(String, J)> = Vec::new();
        for i in 0..100_000 {
            fields.push((format!("F{i}"), json!(i)));
            match i % 10_000 {
                0 => fields.push(("Data".into(), json!(["a", i]))),
                1 => fields.push(("Scalar".into(), json!(i))),
                2 => fields.push(("Nul".into(), J::Null)),
                3 => fields.push(("F7".into(), json!("again"))),
                _ => {}
            }
        }
        let d = Detection {
            rule: 0,
            timestamp: None,
            computer: None,
            channel: None,
            event_id: None,
            record_id: None,
            source: Arc::from("big.jsonl"),
            fields: Arc::new(fields),
        };
        let t = std::time::Instant::now();
        let mut got = Vec::new();
        write_detection_json(&mut got, &rs, &d).unwrap();
        let took = t.elapsed();
        let want = serde_json::to_vec(&detection_json(&rs, &d)).unwrap();
        assert!(got == want, "differs from detection_json");
        assert!(took.as_secs() < 5, "{took:?}");
        let v: J = serde_json::from_slice(&got).unwrap();
        // The first `F7` comes from i = 3, before field F7 itself.
        let mut f7 = vec![json!("again"), json!(7)];
        f7.extend(std::iter::repeat_n(json!("again"), 9));
        assert_eq!(v["event"]["F7"], J::Array(f7));
        // The first `Data` array is extended, later arrays are elements.
        assert_eq!(v["event"]["Data"].as_array().unwrap().len(), 2 + 9);
        assert_eq!(v["event"]["Nul"].as_array().unwrap().len(), 10);
        assert_eq!(v["event"].as_object().unwrap().len(), 100_003);
    }

    #[test]
    fn write_detection_json_equals_detection_json() {
        let yaml = "title: T \"q\"\nid: 00000000-0000-4000-8000-0000000000cc\nlogsource: {product: windows}\ndetection:\n  k:\n    - 'x'\n  condition: k\nlevel: high\ntags:\n  - attack.execution\n  - attack.t1059.001\n";
        let f = tracehunt_sigma::load_rules("t.yml", yaml);
        let (rs, _) =
            tracehunt_engine::compile(f.rules, &tracehunt_engine::CompileOptions::default());
        let shapes: Vec<Vec<(String, J)>> = vec![
            vec![],
            vec![
                ("EventID".into(), json!(4624)),
                ("Image".into(), json!("C:\\a \"b\"\n")),
            ],
            vec![
                ("Data".into(), json!("one")),
                ("X".into(), J::Null),
                ("Data".into(), json!(2)),
                ("Data".into(), json!(["three"])),
            ],
            vec![
                ("Data".into(), json!(["a", "b"])),
                ("Data".into(), json!("c")),
                ("F".into(), json!(1.5)),
            ],
        ];
        for (i, fields) in shapes.into_iter().enumerate() {
            let d = Detection {
                rule: 0,
                timestamp: (i % 2 == 1).then(|| "2024-01-02T03:04:05.123Z".parse().unwrap()),
                computer: (i % 2 == 0).then(|| "WS1".into()),
                channel: Some("Security".into()),
                event_id: (i > 0).then_some(4624),
                record_id: (i > 1).then_some(7),
                source: Arc::from("a.evtx"),
                fields: Arc::new(fields),
            };
            let want = serde_json::to_vec(&detection_json(&rs, &d)).unwrap();
            let mut got = Vec::new();
            write_detection_json(&mut got, &rs, &d).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }
}
