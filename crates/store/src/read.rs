//! Reading the store: incidents, actors and their histories, hunts and coverage; triage.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Params, Row};

use crate::records::CandidateRec;
use crate::{corrupt, sql, sql_err, ts, Result, Store};

/// The best-ranked attribution candidate of an incident.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopCandidate {
    /// ATT&CK group id.
    pub group_id: String,
    /// Group name.
    pub group_name: String,
    /// Confidence 0–100.
    pub confidence: u8,
}

/// One stored incident ([`Store::incidents`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentRow {
    /// The caller's deterministic id.
    pub id: String,
    /// Its STIX id (`incident--…`), fixed when first stored.
    pub stix_id: String,
    /// Earliest detection time over all hunts.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest detection time over all hunts.
    pub last_seen: Option<DateTime<Utc>>,
    /// Hosts (union over hunts).
    pub hosts: Vec<String>,
    /// Users (union over hunts).
    pub users: Vec<String>,
    /// Highest level (last hunt's value).
    pub max_level: String,
    /// Detections (maximum over hunts).
    pub detections: u64,
    /// ATT&CK tactics.
    pub tactics: Vec<String>,
    /// ATT&CK techniques.
    pub techniques: Vec<String>,
    /// Attribution verdict (last hunt's).
    pub verdict: String,
    /// Whether the attribution was confident (last hunt's).
    pub confident: bool,
    /// Marked false positive by an analyst.
    pub false_positive: bool,
    /// When the false-positive flag last changed (wall clock), `None` if never.
    pub false_positive_at: Option<DateTime<Utc>>,
    /// Hunt that stored it first.
    pub first_hunt: i64,
    /// Start of that hunt.
    pub created_at: DateTime<Utc>,
    /// Start of the last hunt that stored it.
    pub updated_at: DateTime<Utc>,
    /// The rank-1 (lowest rank) candidate, if any.
    pub top: Option<TopCandidate>,
}

/// Detections of one rule in an incident.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleCount {
    /// Rule id.
    pub rule_id: String,
    /// Its title when the rule was stored (any stored version's, the first by content hash).
    pub title: Option<String>,
    /// Detections of that rule in the incident.
    pub detections: u64,
}

/// One incident with its parts ([`Store::incident`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: IncidentRow,
    /// Attribution candidates by rank.
    pub candidates: Vec<CandidateRec>,
    /// Entities `(kind, value)`, sorted.
    pub entities: Vec<(String, String)>,
    /// Stored detections per rule, most first (then by rule id).
    pub rules: Vec<RuleCount>,
}

/// One ATT&CK group's sightings, aggregated ([`Store::actors`]). Statistics count only
/// sightings whose incident is not false positive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActorRow {
    /// ATT&CK group id.
    pub group_id: String,
    /// Name from its latest sighting.
    pub group_name: String,
    /// Suspected state sponsor from its latest sighting that names one.
    pub state: Option<String>,
    /// Distinct incidents (not false positive) it was sighted in.
    pub incidents: u64,
    /// Distinct hosts over those incidents, sorted.
    pub hosts: Vec<String>,
    /// Earliest first seen over those sightings.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest last seen over those sightings.
    pub last_seen: Option<DateTime<Utc>>,
    /// Highest confidence (0–100) over those sightings; 0 when none.
    pub max_confidence: u8,
    /// Sightings in incidents marked false positive (left out of everything above).
    pub false_positive_incidents: u64,
    /// Incidents per month of their first seen (`"2024-03"` → count).
    pub months: BTreeMap<String, u64>,
}

/// One sighting of a group, in [`ActorHistory`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActorSighting {
    /// Incident id.
    pub incident_id: String,
    /// STIX id of the sighting.
    pub stix_id: String,
    /// First seen (widened over hunts).
    pub first_seen: Option<DateTime<Utc>>,
    /// Last seen.
    pub last_seen: Option<DateTime<Utc>>,
    /// The incident's hosts.
    pub hosts: Vec<String>,
    /// Rank of the group among the incident's candidates.
    pub rank: u32,
    /// Confidence 0–100.
    pub confidence: u8,
    /// The incident is marked false positive (a negative sighting).
    pub false_positive: bool,
    /// The group's candidate entry for the incident, when the incident's current candidates
    /// include it: calibrated probability, …
    pub probability: Option<f64>,
    /// … confidence label …
    pub confidence_label: Option<String>,
    /// … and evidence.
    pub evidence: Option<serde_json::Value>,
}

/// A group's history ([`Store::actor`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ActorHistory {
    /// ATT&CK group id.
    pub group_id: String,
    /// Name from its latest sighting.
    pub group_name: String,
    /// Suspected state sponsor (latest sighting naming one).
    pub state: Option<String>,
    /// Its sightings by first seen (those without a time last), then incident id.
    pub sightings: Vec<ActorSighting>,
}

/// One committed hunt ([`Store::hunts`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HuntRow {
    /// Row id.
    pub id: i64,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End (`None` only for a store written by a crashed tool version; commits set it).
    pub finished_at: Option<DateTime<Utc>>,
    /// tracehunt version.
    pub tool_version: String,
    /// Ruleset hash.
    pub ruleset_hash: String,
    /// ATT&CK version.
    pub attack_version: String,
    /// Parameters (JSON).
    pub parameters: serde_json::Value,
    /// Events read.
    pub events: u64,
    /// Detections added (new + duplicate).
    pub detections: u64,
    /// New detections.
    pub detections_new: u64,
    /// Incidents added or updated.
    pub incidents: u64,
}

/// One source read by one hunt ([`Store::sources`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceRow {
    /// Hunt that read it.
    pub hunt_id: i64,
    /// Path.
    pub path: String,
    /// SHA-256 of the content (hex).
    pub content_hash: String,
    /// Format.
    pub format: String,
    /// Earliest event time.
    pub first_event: Option<DateTime<Utc>>,
    /// Latest event time.
    pub last_event: Option<DateTime<Utc>>,
    /// Events read.
    pub events_read: u64,
    /// Records lost.
    pub records_lost: u64,
}

/// Typed access to a result row; errors name the store and the column.
pub(crate) struct Cols<'r, 'p> {
    pub(crate) r: &'r Row<'r>,
    pub(crate) path: &'p Path,
}

impl Cols<'_, '_> {
    pub(crate) fn get<T: rusqlite::types::FromSql>(&self, i: usize, what: &str) -> Result<T> {
        self.r
            .get(i)
            .map_err(|e| sql_err(self.path, format!("read {what}"), e))
    }
    pub(crate) fn uint(&self, i: usize, what: &str) -> Result<u64> {
        Ok(self.get::<i64>(i, what)?.max(0) as u64)
    }
    pub(crate) fn time(&self, i: usize, what: &str) -> Result<Option<DateTime<Utc>>> {
        self.get::<Option<String>>(i, what)?
            .map(|s| crate::parse_ts(self.path, what, &s))
            .transpose()
    }
    pub(crate) fn time_req(&self, i: usize, what: &str) -> Result<DateTime<Utc>> {
        let s: String = self.get(i, what)?;
        crate::parse_ts(self.path, what, &s)
    }
    pub(crate) fn json(&self, i: usize, what: &str) -> Result<serde_json::Value> {
        let s: String = self.get(i, what)?;
        serde_json::from_str(&s).map_err(|_| corrupt(self.path, what, &s))
    }
    pub(crate) fn list(&self, i: usize, what: &str) -> Result<Vec<String>> {
        let s: String = self.get(i, what)?;
        serde_json::from_str(&s).map_err(|_| corrupt(self.path, what, &s))
    }
}

const INCIDENT_COLUMNS: &str = "i.id, i.stix_id, i.first_seen, i.last_seen, i.hosts, i.users, \
     i.max_level, i.detections, i.tactics, i.techniques, i.verdict, i.confident, \
     i.false_positive, i.first_hunt, i.created_at, i.updated_at, i.false_positive_at, \
     a.group_id, a.group_name, a.confidence \
     FROM incidents i LEFT JOIN attributions a ON a.incident_id = i.id \
     AND a.rank = (SELECT min(rank) FROM attributions WHERE incident_id = i.id)";

fn incident_row(c: &Cols) -> Result<IncidentRow> {
    let top = match c.get::<Option<String>>(17, "attributions.group_id")? {
        Some(group_id) => Some(TopCandidate {
            group_id,
            group_name: c.get(18, "attributions.group_name")?,
            confidence: c.get(19, "attributions.confidence")?,
        }),
        None => None,
    };
    Ok(IncidentRow {
        id: c.get(0, "incidents.id")?,
        stix_id: c.get(1, "incidents.stix_id")?,
        first_seen: c.time(2, "incidents.first_seen")?,
        last_seen: c.time(3, "incidents.last_seen")?,
        hosts: c.list(4, "incidents.hosts")?,
        users: c.list(5, "incidents.users")?,
        max_level: c.get(6, "incidents.max_level")?,
        detections: c.uint(7, "incidents.detections")?,
        tactics: c.list(8, "incidents.tactics")?,
        techniques: c.list(9, "incidents.techniques")?,
        verdict: c.get(10, "incidents.verdict")?,
        confident: c.get(11, "incidents.confident")?,
        false_positive: c.get(12, "incidents.false_positive")?,
        first_hunt: c.get(13, "incidents.first_hunt")?,
        created_at: c.time_req(14, "incidents.created_at")?,
        updated_at: c.time_req(15, "incidents.updated_at")?,
        false_positive_at: c.time(16, "incidents.false_positive_at")?,
        top,
    })
}

impl Store {
    /// Runs `query` and decodes each row with `f`.
    pub(crate) fn rows<T>(
        &self,
        what: &str,
        query: &str,
        params: impl Params,
        mut f: impl FnMut(&Cols) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut st = self
            .conn
            .prepare_cached(query)
            .map_err(sql(&self.path, what))?;
        let mut rows = st.query(params).map_err(sql(&self.path, what))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(sql(&self.path, what))? {
            out.push(f(&Cols {
                r,
                path: &self.path,
            })?);
        }
        Ok(out)
    }

    /// Incidents active since `since` (last seen, or first seen when it has no last, at or
    /// after it; `None`: all, including those without times), newest first seen first (no
    /// time last), then by id. Errors: [`crate::StoreError::Sqlite`],
    /// [`crate::StoreError::Corrupt`].
    pub fn incidents(&self, since: Option<DateTime<Utc>>) -> Result<Vec<IncidentRow>> {
        self.rows(
            "list incidents",
            &format!(
                "SELECT {INCIDENT_COLUMNS} \
                 WHERE ?1 IS NULL OR coalesce(i.last_seen, i.first_seen) >= ?1 \
                 ORDER BY i.first_seen IS NULL, i.first_seen DESC, i.id"
            ),
            [since.map(ts)],
            incident_row,
        )
    }

    /// One incident with its candidates, entities and detections per rule; `None` when the id
    /// is unknown. Errors as [`Store::incidents`].
    pub fn incident(&self, id: &str) -> Result<Option<IncidentDetail>> {
        let Some(incident) = self
            .rows(
                "read incident",
                &format!("SELECT {INCIDENT_COLUMNS} WHERE i.id = ?1"),
                [id],
                incident_row,
            )?
            .pop()
        else {
            return Ok(None);
        };
        let candidates = self.rows(
            "read attributions",
            "SELECT rank, group_id, group_name, probability, confidence, confidence_label, \
             evidence FROM attributions WHERE incident_id = ?1 ORDER BY rank",
            [id],
            |c| {
                Ok(CandidateRec {
                    rank: c.get(0, "attributions.rank")?,
                    group_id: c.get(1, "attributions.group_id")?,
                    group_name: c.get(2, "attributions.group_name")?,
                    probability: c.get(3, "attributions.probability")?,
                    confidence: c.get(4, "attributions.confidence")?,
                    confidence_label: c.get(5, "attributions.confidence_label")?,
                    evidence: c.json(6, "attributions.evidence")?,
                })
            },
        )?;
        let entities = self.rows(
            "read entities",
            "SELECT kind, value FROM entities WHERE incident_id = ?1 ORDER BY kind, value",
            [id],
            |c| Ok((c.get(0, "entities.kind")?, c.get(1, "entities.value")?)),
        )?;
        let rules = self.rows(
            "count detections by rule",
            "SELECT d.rule_id, count(*) AS n, (SELECT title FROM rules r \
             WHERE r.rule_id = d.rule_id ORDER BY r.content_hash LIMIT 1) \
             FROM detections d WHERE d.incident_id = ?1 GROUP BY d.rule_id \
             ORDER BY n DESC, d.rule_id",
            [id],
            |c| {
                Ok(RuleCount {
                    rule_id: c.get(0, "detections.rule_id")?,
                    detections: c.uint(1, "count")?,
                    title: c.get(2, "rules.title")?,
                })
            },
        )?;
        Ok(Some(IncidentDetail {
            incident,
            candidates,
            entities,
            rules,
        }))
    }

    /// Marks (`fp = true`) or unmarks an incident as false positive; returns whether the
    /// incident exists. A change records the current wall-clock time as `false_positive_at`
    /// (the STIX `modified` of the incident and its sightings); setting the flag it already
    /// has changes nothing. Errors: [`crate::StoreError::Sqlite`].
    pub fn set_false_positive(&mut self, id: &str, fp: bool) -> Result<bool> {
        let changed = self
            .conn
            .execute(
                "UPDATE incidents SET false_positive = ?2, false_positive_at = ?3 \
                 WHERE id = ?1 AND false_positive != ?2",
                rusqlite::params![id, fp, ts(Utc::now())],
            )
            .map_err(sql(&self.path, "set false positive"))?;
        if changed > 0 {
            return Ok(true);
        }
        self.conn
            .query_row("SELECT 1 FROM incidents WHERE id = ?1", [id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(sql(&self.path, "read incident"))
    }

    /// Per ATT&CK group, its sightings of rank ≤ `max_rank` (1 = top candidate only) and
    /// confidence ≥ `min_confidence`, aggregated (see [`ActorRow`]); sightings in
    /// false-positive incidents only counted in `false_positive_incidents`. Sorted by
    /// incidents (descending), then group id. A group whose every sighting is false positive
    /// is listed with 0 incidents. Errors as [`Store::incidents`].
    pub fn actors(&self, max_rank: u32, min_confidence: u8) -> Result<Vec<ActorRow>> {
        struct S {
            group_id: String,
            group_name: String,
            state: Option<String>,
            confidence: u8,
            first: Option<DateTime<Utc>>,
            last: Option<DateTime<Utc>>,
            hosts: Vec<String>,
            fp: bool,
        }
        let sightings = self.rows(
            "list sightings",
            "SELECT s.group_id, s.group_name, s.state, s.confidence, s.first_seen, s.last_seen, \
             i.hosts, i.false_positive FROM sightings s JOIN incidents i ON i.id = s.incident_id \
             WHERE s.rank <= ?1 AND s.confidence >= ?2 ORDER BY s.group_id, s.id",
            rusqlite::params![max_rank, min_confidence],
            |c| {
                Ok(S {
                    group_id: c.get(0, "sightings.group_id")?,
                    group_name: c.get(1, "sightings.group_name")?,
                    state: c.get(2, "sightings.state")?,
                    confidence: c.get(3, "sightings.confidence")?,
                    first: c.time(4, "sightings.first_seen")?,
                    last: c.time(5, "sightings.last_seen")?,
                    hosts: c.list(6, "incidents.hosts")?,
                    fp: c.get(7, "incidents.false_positive")?,
                })
            },
        )?;
        let mut out: Vec<ActorRow> = Vec::new();
        let mut hosts: BTreeSet<String> = BTreeSet::new();
        for s in sightings {
            if out.last().is_none_or(|a| a.group_id != s.group_id) {
                if let Some(a) = out.last_mut() {
                    a.hosts = std::mem::take(&mut hosts).into_iter().collect();
                }
                out.push(ActorRow {
                    group_id: s.group_id.clone(),
                    group_name: String::new(),
                    state: None,
                    incidents: 0,
                    hosts: Vec::new(),
                    first_seen: None,
                    last_seen: None,
                    max_confidence: 0,
                    false_positive_incidents: 0,
                    months: BTreeMap::new(),
                });
            }
            let a = out.last_mut().expect("pushed above");
            a.group_name = s.group_name;
            if s.state.is_some() {
                a.state = s.state;
            }
            if s.fp {
                a.false_positive_incidents += 1;
                continue;
            }
            a.incidents += 1;
            hosts.extend(s.hosts);
            a.first_seen = min_opt(a.first_seen, s.first);
            a.last_seen = max_opt(a.last_seen, s.last);
            a.max_confidence = a.max_confidence.max(s.confidence);
            if let Some(f) = s.first {
                *a.months.entry(f.format("%Y-%m").to_string()).or_default() += 1;
            }
        }
        if let Some(a) = out.last_mut() {
            a.hosts = hosts.into_iter().collect();
        }
        out.sort_by(|a, b| {
            b.incidents
                .cmp(&a.incidents)
                .then_with(|| a.group_id.cmp(&b.group_id))
        });
        Ok(out)
    }

    /// The history of the group whose id (`G0009`, any case) or stored name (any case) is
    /// `query` — an id match wins over a name match; the caller resolves aliases. `None` when no
    /// sighting of it is stored. Every sighting is listed, whatever its rank, confidence or
    /// false-positive flag. Errors as [`Store::incidents`].
    pub fn actor(&self, query: &str) -> Result<Option<ActorHistory>> {
        let Some(group_id) = self
            .rows(
                "find group",
                "SELECT group_id FROM sightings \
                 WHERE group_id = ?1 COLLATE NOCASE OR group_name = ?1 COLLATE NOCASE \
                 ORDER BY group_id = ?1 COLLATE NOCASE DESC, id LIMIT 1",
                [query],
                |c| c.get::<String>(0, "sightings.group_id"),
            )?
            .pop()
        else {
            return Ok(None);
        };
        let mut name = String::new();
        let mut state = None;
        let mut sightings = self.rows(
            "read group history",
            "SELECT s.incident_id, s.stix_id, s.first_seen, s.last_seen, i.hosts, s.rank, \
             s.confidence, i.false_positive, a.probability, a.confidence_label, a.evidence, \
             s.group_name, s.state FROM sightings s JOIN incidents i ON i.id = s.incident_id \
             LEFT JOIN attributions a ON a.incident_id = s.incident_id \
             AND a.group_id = s.group_id AND a.rank = (SELECT min(rank) FROM attributions \
             WHERE incident_id = s.incident_id AND group_id = s.group_id) \
             WHERE s.group_id = ?1 ORDER BY s.id",
            [&group_id],
            |c| {
                // Rows in insertion order: the last name and state win.
                name = c.get(11, "sightings.group_name")?;
                if let Some(s) = c.get::<Option<String>>(12, "sightings.state")? {
                    state = Some(s);
                }
                let evidence = match c.get::<Option<String>>(10, "attributions.evidence")? {
                    Some(_) => Some(c.json(10, "attributions.evidence")?),
                    None => None,
                };
                Ok(ActorSighting {
                    incident_id: c.get(0, "sightings.incident_id")?,
                    stix_id: c.get(1, "sightings.stix_id")?,
                    first_seen: c.time(2, "sightings.first_seen")?,
                    last_seen: c.time(3, "sightings.last_seen")?,
                    hosts: c.list(4, "incidents.hosts")?,
                    rank: c.get(5, "sightings.rank")?,
                    confidence: c.get(6, "sightings.confidence")?,
                    false_positive: c.get(7, "incidents.false_positive")?,
                    probability: c.get(8, "attributions.probability")?,
                    confidence_label: c.get(9, "attributions.confidence_label")?,
                    evidence,
                })
            },
        )?;
        sightings.sort_by(|a, b| {
            (a.first_seen.is_none(), a.first_seen, &a.incident_id).cmp(&(
                b.first_seen.is_none(),
                b.first_seen,
                &b.incident_id,
            ))
        });
        Ok(Some(ActorHistory {
            group_id,
            group_name: name,
            state,
            sightings,
        }))
    }

    /// Every committed hunt, oldest (lowest id) first. Errors as [`Store::incidents`].
    pub fn hunts(&self) -> Result<Vec<HuntRow>> {
        self.rows(
            "list hunts",
            "SELECT id, started_at, finished_at, tool_version, ruleset_hash, attack_version, \
             parameters, events, detections, detections_new, incidents FROM hunt_runs ORDER BY id",
            [],
            |c| {
                Ok(HuntRow {
                    id: c.get(0, "hunt_runs.id")?,
                    started_at: c.time_req(1, "hunt_runs.started_at")?,
                    finished_at: c.time(2, "hunt_runs.finished_at")?,
                    tool_version: c.get(3, "hunt_runs.tool_version")?,
                    ruleset_hash: c.get(4, "hunt_runs.ruleset_hash")?,
                    attack_version: c.get(5, "hunt_runs.attack_version")?,
                    parameters: c.json(6, "hunt_runs.parameters")?,
                    events: c.uint(7, "hunt_runs.events")?,
                    detections: c.uint(8, "hunt_runs.detections")?,
                    detections_new: c.uint(9, "hunt_runs.detections_new")?,
                    incidents: c.uint(10, "hunt_runs.incidents")?,
                })
            },
        )
    }

    /// Coverage: every (hunt, source) row, by hunt then insertion order. Errors as
    /// [`Store::incidents`].
    pub fn sources(&self) -> Result<Vec<SourceRow>> {
        self.rows(
            "list sources",
            "SELECT hunt_id, path, content_hash, format, first_event, last_event, events_read, \
             records_lost FROM sources ORDER BY hunt_id, id",
            [],
            |c| {
                Ok(SourceRow {
                    hunt_id: c.get(0, "sources.hunt_id")?,
                    path: c.get(1, "sources.path")?,
                    content_hash: c.get(2, "sources.content_hash")?,
                    format: c.get(3, "sources.format")?,
                    first_event: c.time(4, "sources.first_event")?,
                    last_event: c.time(5, "sources.last_event")?,
                    events_read: c.uint(6, "sources.events_read")?,
                    records_lost: c.uint(7, "sources.records_lost")?,
                })
            },
        )
    }
}

pub(crate) fn min_opt(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(crate) fn max_opt(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    a.max(b)
}
