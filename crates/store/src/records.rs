//! What a hunt writes: the records handed to [`crate::HuntWriter`] and its statistics.

use chrono::{DateTime, Utc};

/// One hunt, as given to [`crate::Store::begin_hunt`].
#[derive(Debug, Clone, PartialEq)]
pub struct HuntRun {
    /// When the hunt started (UTC). Also the `created_at` of every incident, sighting and
    /// indicator this hunt stores first, hence their STIX `created`.
    pub started_at: DateTime<Utc>,
    /// tracehunt version (`0.1.0`).
    pub tool_version: String,
    /// Hash of the ruleset used (hex, any length).
    pub ruleset_hash: String,
    /// ATT&CK version of the knowledge base (`18.1`).
    pub attack_version: String,
    /// The hunt's parameters (filters, thresholds, …) as a JSON value; stored as JSON text.
    pub parameters: serde_json::Value,
}

/// One source read by the hunt (coverage). One row per (content_hash, hunt): adding the same
/// content twice in one hunt keeps the first row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceRec {
    /// Path as given to the hunt.
    pub path: String,
    /// SHA-256 of the file content, lowercase hex (64 characters).
    pub content_hash: String,
    /// Format read (`evtx`, `jsonl`, …).
    pub format: String,
    /// Time of the earliest event with a time, `None` when no event had one.
    pub first_event: Option<DateTime<Utc>>,
    /// Time of the latest event with a time.
    pub last_event: Option<DateTime<Utc>>,
    /// Events read.
    pub events_read: u64,
    /// Records lost to damage (the readers' count).
    pub records_lost: u64,
}

/// One rule of the ruleset; stored once per (rule_id, content_hash) across hunts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleRec {
    /// Sigma rule id (UUID text) or the rule's name when it has none.
    pub rule_id: String,
    /// Hash of the rule's YAML (hex): a changed rule is a new row.
    pub content_hash: String,
    /// Rule title.
    pub title: String,
    /// Sigma level (`informational` … `critical`).
    pub level: String,
}

/// One detection: rule `rule_id` fired on the event identified by `event_key`. Borrowed
/// fields, so the hot path ([`crate::HuntWriter::add_detection`]) allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectionRec<'a> {
    /// Sigma rule id (as in [`RuleRec::rule_id`]).
    pub rule_id: &'a str,
    /// The event's identity, 16 bytes computed by the caller (e.g. a hash of source content
    /// hash, record id and event bytes): the same event gives the same key in every hunt.
    pub event_key: [u8; 16],
    /// Event time, `None` when the event had none.
    pub time: Option<DateTime<Utc>>,
    /// Host (`System/Computer`).
    pub host: Option<&'a str>,
    /// Source path the event came from.
    pub source: &'a str,
    /// Level of the detection (the rule's level).
    pub level: &'a str,
    /// Incident the detection belongs to; the incident may be added later in the same hunt
    /// (checked at commit).
    pub incident_id: Option<&'a str>,
}

/// One attribution candidate of an incident.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct CandidateRec {
    /// 1 = best candidate.
    pub rank: u32,
    /// ATT&CK group id (`G0009`).
    pub group_id: String,
    /// Group name (`Deep Panda`).
    pub group_name: String,
    /// Calibrated probability, 0.0–1.0.
    pub probability: f64,
    /// Confidence 0–100 (STIX confidence scale); above 100 is an error at insert.
    pub confidence: u8,
    /// Label of the confidence (`moderate`, …).
    pub confidence_label: String,
    /// The evidence for this candidate (JSON, stored as text).
    pub evidence: serde_json::Value,
}

/// A sighting of a group in an incident: the caller passes one per candidate it wants
/// recorded as sighted (usually those above a confidence threshold). Its first/last seen are
/// the incident's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SightingRec {
    /// ATT&CK group id (`G0009`).
    pub group_id: String,
    /// Group name.
    pub group_name: String,
    /// Suspected state sponsor, if any.
    pub state: Option<String>,
    /// Rank of the group among the incident's candidates (1 = top).
    pub rank: u32,
    /// Confidence 0–100.
    pub confidence: u8,
}

/// One incident: detections grouped by the caller, with its deterministic id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IncidentRec {
    /// Deterministic id computed by the caller from the incident's content
    /// (e.g. `inc-1a2b3c4d5e6f7a8b`): the same incident gets the same id in every hunt.
    pub id: String,
    /// Earliest detection time.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest detection time.
    pub last_seen: Option<DateTime<Utc>>,
    /// Hosts involved.
    pub hosts: Vec<String>,
    /// Users involved.
    pub users: Vec<String>,
    /// Entities `(kind, value)`; kinds `user`, `ip`, `logon_id`, `process_guid`, `hash`,
    /// `domain`.
    pub entities: Vec<(String, String)>,
    /// Highest detection level.
    pub max_level: String,
    /// Number of detections in the incident.
    pub detections: u64,
    /// ATT&CK tactics (`credential-access`).
    pub tactics: Vec<String>,
    /// ATT&CK techniques (`T1003.001`).
    pub techniques: Vec<String>,
    /// Attribution verdict text.
    pub verdict: String,
    /// Whether the attribution is confident.
    pub confident: bool,
    /// Ranked attribution candidates (replace the stored ones).
    pub candidates: Vec<CandidateRec>,
    /// Groups sighted in this incident.
    pub sightings: Vec<SightingRec>,
}

/// One IOC hit. Unique per (indicator_type, value, time, host): re-adding is a no-op.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IocHitRec {
    /// Incident the hit belongs to, if any.
    pub incident_id: Option<String>,
    /// IOC kind: `md5`, `sha1`, `sha256`, `sha512`, `imphash`, `domain`, `url`, `ip` (others
    /// are stored but not exported to STIX).
    pub indicator_type: String,
    /// IOC value.
    pub value: String,
    /// Feed it came from.
    pub feed: String,
    /// ATT&CK group id or name the feed ties it to.
    pub actor: Option<String>,
    /// Event time.
    pub time: Option<DateTime<Utc>>,
    /// Host of the event.
    pub host: Option<String>,
}

/// What [`crate::HuntWriter::commit`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HuntStats {
    /// Row id of the hunt in `hunt_runs`.
    pub hunt_id: i64,
    /// Detections added (new + duplicate).
    pub detections: u64,
    /// Detections not seen before.
    pub detections_new: u64,
    /// Detections already stored (same rule id and event key), not added again.
    pub detections_duplicate: u64,
    /// Incidents added (new or updated).
    pub incidents: u64,
    /// Incidents whose id was not stored before.
    pub incidents_new: u64,
    /// Sightings (group, incident) not stored before.
    pub sightings_new: u64,
}
