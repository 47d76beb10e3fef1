//! Writing one hunt: [`HuntWriter`], one SQLite transaction.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Statement, Transaction, TransactionBehavior};
use tracehunt_report::stix_id;

use crate::records::{
    DetectionRec, HuntRun, HuntStats, IncidentRec, IocHitRec, RuleRec, SourceRec,
};
use crate::{corrupt, sql, ts, Result, Store};

const INSERT_DETECTION: &str = "INSERT OR IGNORE INTO detections \
     (rule_id, event_key, time, host, source, level, incident_id, hunt_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Widens a stored time range: `first = min(old, new)`, `last = max(old, new)`, a NULL side
/// taking the other (SQLite's scalar `min`/`max` return NULL when an argument is NULL).
const WIDEN: &str = "first_seen = coalesce(min(first_seen, ?2), first_seen, ?2), \
     last_seen = coalesce(max(last_seen, ?3), last_seen, ?3)";

/// Whether an incident update changes anything (SET expressions see the old
/// row): `updated_at` moves only then, so re-hunting the same files leaves
/// every incident as it was.
const CHANGED: &str = "(?2 IS NOT NULL AND (first_seen IS NULL OR ?2 < first_seen)) \
     OR (?3 IS NOT NULL AND (last_seen IS NULL OR ?3 > last_seen)) \
     OR hosts IS NOT ?4 OR users IS NOT ?5 OR max_level IS NOT ?6 \
     OR tactics IS NOT ?8 OR techniques IS NOT ?9 OR verdict IS NOT ?10 OR confident IS NOT ?11";

/// Whether a sighting update changes anything (see [`CHANGED`]).
const SIGHTING_CHANGED: &str = "(?2 IS NOT NULL AND (first_seen IS NULL OR ?2 < first_seen)) \
     OR (?3 IS NOT NULL AND (last_seen IS NULL OR ?3 > last_seen)) \
     OR group_name IS NOT ?4 OR (?5 IS NOT NULL AND state IS NOT ?5) OR rank IS NOT ?6 \
     OR confidence IS NOT ?7";

/// SQLite integers are i64; counts above `i64::MAX` saturate.
pub(crate) fn int(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

/// The writer of one hunt, from [`Store::begin_hunt`]: everything it adds is one transaction,
/// made durable by [`HuntWriter::commit`]. Dropping it without `commit` (an error, a `?`, a
/// panic) rolls the whole hunt back, leaving the store as it was.
#[derive(Debug)]
pub struct HuntWriter<'a> {
    // Declared before `tx`: finalised before the transaction ends.
    detection: Statement<'a>,
    tx: Transaction<'a>,
    path: &'a Path,
    hunt_id: i64,
    started: String,
    stats: HuntStats,
    /// Incidents added or updated by this hunt: their detection counts are
    /// recounted from the stored detections at commit.
    touched: HashSet<String>,
}

impl Store {
    /// Starts a hunt: opens an immediate (write-locking) transaction and inserts its
    /// `hunt_runs` row. Only one writer at a time per store (`&mut self`); another process
    /// waiting longer than the busy timeout (5 s) gets [`crate::StoreError::Sqlite`].
    pub fn begin_hunt(&mut self, run: &HuntRun) -> Result<HuntWriter<'_>> {
        let store: &Store = self;
        let path = store.path.as_path();
        let tx = Transaction::new_unchecked(&store.conn, TransactionBehavior::Immediate)
            .map_err(sql(path, "begin hunt"))?;
        let started = ts(run.started_at);
        tx.execute(
            "INSERT INTO hunt_runs \
             (started_at, tool_version, ruleset_hash, attack_version, parameters) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                started,
                run.tool_version,
                run.ruleset_hash,
                run.attack_version,
                run.parameters.to_string()
            ],
        )
        .map_err(sql(path, "insert hunt_runs row"))?;
        let hunt_id = tx.last_insert_rowid();
        let detection = store
            .conn
            .prepare(INSERT_DETECTION)
            .map_err(sql(path, "prepare detection insert"))?;
        Ok(HuntWriter {
            detection,
            tx,
            path,
            hunt_id,
            started,
            stats: HuntStats {
                hunt_id,
                ..HuntStats::default()
            },
            touched: HashSet::new(),
        })
    }
}

impl HuntWriter<'_> {
    /// The `hunt_runs` row id of this hunt.
    pub fn hunt_id(&self) -> i64 {
        self.hunt_id
    }

    /// Records a source read by this hunt (coverage). A second source with the same content
    /// hash in this hunt is ignored (the first row is kept).
    pub fn add_source(&mut self, s: &SourceRec) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO sources (path, content_hash, format, first_event, \
                 last_event, events_read, records_lost, hunt_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.path,
                    s.content_hash,
                    s.format,
                    s.first_event.map(ts),
                    s.last_event.map(ts),
                    int(s.events_read),
                    int(s.records_lost),
                    self.hunt_id
                ])
            })
            .map_err(sql(self.path, "insert source"))?;
        Ok(())
    }

    /// Records a rule (once per rule id and content hash, across hunts).
    pub fn add_rule(&mut self, r: &RuleRec) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO rules (rule_id, content_hash, title, level) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![r.rule_id, r.content_hash, r.title, r.level]))
            .map_err(sql(self.path, "insert rule"))?;
        Ok(())
    }

    /// Adds a detection unless (rule_id, event_key) is stored already (by this or an earlier
    /// hunt): returns `true` when it was new, `false` for a duplicate (counted in
    /// [`HuntStats::detections_duplicate`]; the stored row, with its first hunt and incident,
    /// is kept). One cached prepared statement, no allocation besides the time text.
    pub fn add_detection(&mut self, d: &DetectionRec<'_>) -> Result<bool> {
        let changed = self
            .detection
            .execute(params![
                d.rule_id,
                d.event_key,
                d.time.map(ts),
                d.host,
                d.source,
                d.level,
                d.incident_id,
                self.hunt_id
            ])
            .map_err(sql(self.path, "insert detection"))?;
        self.stats.detections += 1;
        if changed == 1 {
            self.stats.detections_new += 1;
        } else {
            self.stats.detections_duplicate += 1;
        }
        Ok(changed == 1)
    }

    /// Adds or updates an incident with its entities, attribution candidates and sightings.
    ///
    /// New id: stored with `stix_id = stix_id("incident", id)`, `first_hunt` = this hunt,
    /// `created_at` = this hunt's start. Known id: keeps its stix id, first hunt, creation time
    /// and false-positive flag; first/last seen widen (never move the first later nor the last
    /// earlier); hosts, users, tactics and techniques become the union (stored order, then new
    /// ones); detections the maximum; level, verdict and confidence flag the new values.
    /// Entities are added (union). Candidates replace the stored ones. Each sighting
    /// `(group, incident)`: new → `stix_id("sighting", "group|incident")`, first/last seen =
    /// the incident's times given here; known → first/last seen widen, rank, confidence, name
    /// the new values, state the new one when given.
    ///
    /// Errors: [`crate::StoreError::Sqlite`], e.g. a confidence above 100 or a rank of 0.
    ///
    /// Returns the id the incident is stored under: its own, or — when its id
    /// is not stored yet but a stored incident shares one of its hosts and
    /// overlaps its time range — the oldest such incident's id. A later hunt
    /// that sees more of the same logs (incremental hunting), or groups them
    /// with other parameters, then extends the stored incident instead of
    /// adding a second one that counts the same activity again. Detections
    /// and IOC hits must name the returned id.
    pub fn add_incident(&mut self, i: &IncidentRec) -> Result<String> {
        let path = self.path;
        let first = i.first_seen.map(ts);
        let last = i.last_seen.map(ts);
        let stored_id = self.stored_incident_id(i, first.as_deref(), last.as_deref())?;
        let renamed;
        let i = match stored_id {
            Some(id) if id != i.id => {
                renamed = IncidentRec { id, ..i.clone() };
                &renamed
            }
            _ => i,
        };
        self.touched.insert(i.id.clone());
        let old: Option<[String; 4]> = self
            .tx
            .prepare_cached("SELECT hosts, users, tactics, techniques FROM incidents WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([&i.id], |r| {
                    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
                })
                .optional()
            })
            .map_err(sql(path, "read incident"))?;
        self.stats.incidents += 1;
        match old {
            None => {
                self.stats.incidents_new += 1;
                self.tx
                    .prepare_cached(
                        "INSERT INTO incidents (id, first_seen, last_seen, hosts, users, \
                         max_level, detections, tactics, techniques, verdict, confident, \
                         stix_id, first_hunt, created_at, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
                    )
                    .and_then(|mut st| {
                        st.execute(params![
                            i.id,
                            first,
                            last,
                            json_list(&[], &i.hosts),
                            json_list(&[], &i.users),
                            i.max_level,
                            int(i.detections),
                            json_list(&[], &i.tactics),
                            json_list(&[], &i.techniques),
                            i.verdict,
                            i.confident,
                            stix_id("incident", &i.id),
                            self.hunt_id,
                            self.started,
                        ])
                    })
                    .map_err(sql(path, "insert incident"))?;
            }
            Some([hosts, users, tactics, techniques]) => {
                let list = |what: &str, stored: &str, new: &[String]| -> Result<String> {
                    let stored: Vec<String> =
                        serde_json::from_str(stored).map_err(|_| corrupt(path, what, stored))?;
                    Ok(json_list(&stored, new))
                };
                let hosts = list("incidents.hosts", &hosts, &i.hosts)?;
                let users = list("incidents.users", &users, &i.users)?;
                let tactics = list("incidents.tactics", &tactics, &i.tactics)?;
                let techniques = list("incidents.techniques", &techniques, &i.techniques)?;
                self.tx
                    .prepare_cached(&format!(
                        "UPDATE incidents SET {WIDEN}, hosts = ?4, users = ?5, max_level = ?6, \
                         detections = max(detections, ?7), tactics = ?8, techniques = ?9, \
                         verdict = ?10, confident = ?11, \
                         updated_at = CASE WHEN {CHANGED} THEN ?12 ELSE updated_at END \
                         WHERE id = ?1"
                    ))
                    .and_then(|mut st| {
                        st.execute(params![
                            i.id,
                            first,
                            last,
                            hosts,
                            users,
                            i.max_level,
                            int(i.detections),
                            tactics,
                            techniques,
                            i.verdict,
                            i.confident,
                            self.started,
                        ])
                    })
                    .map_err(sql(path, "update incident"))?;
            }
        }
        self.add_incident_parts(i, first.as_deref(), last.as_deref())?;
        Ok(i.id.clone())
    }

    /// The id under which `i` is stored: its own when stored; else the oldest
    /// stored incident sharing a host whose time range overlaps `first..=last`
    /// (RFC 3339 texts of one width compare as times); else `None` (new).
    fn stored_incident_id(
        &self,
        i: &IncidentRec,
        first: Option<&str>,
        last: Option<&str>,
    ) -> Result<Option<String>> {
        let path = self.path;
        let known: Option<String> = self
            .tx
            .prepare_cached("SELECT id FROM incidents WHERE id = ?1")
            .and_then(|mut st| st.query_row([&i.id], |r| r.get(0)).optional())
            .map_err(sql(path, "read incident"))?;
        if known.is_some() {
            return Ok(known);
        }
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(None);
        };
        let hosts = serde_json::to_string(&i.hosts).unwrap_or_else(|_| "[]".into());
        self.tx
            .prepare_cached(
                "SELECT id FROM incidents WHERE first_seen IS NOT NULL AND last_seen IS NOT NULL \
                 AND first_seen <= ?2 AND last_seen >= ?1 \
                 AND EXISTS (SELECT 1 FROM json_each(incidents.hosts) h \
                             WHERE h.value IN (SELECT value FROM json_each(?3))) \
                 ORDER BY created_at, id LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row(params![first, last, hosts], |r| r.get(0))
                    .optional()
            })
            .map_err(sql(path, "find overlapping incident"))
    }

    /// Entities, candidates and sightings of [`HuntWriter::add_incident`].
    fn add_incident_parts(
        &mut self,
        i: &IncidentRec,
        first: Option<&str>,
        last: Option<&str>,
    ) -> Result<()> {
        let path = self.path;
        {
            let mut st = self
                .tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO entities (kind, value, incident_id) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql(path, "prepare entity insert"))?;
            for (kind, value) in &i.entities {
                st.execute(params![kind, value, i.id])
                    .map_err(sql(path, "insert entity"))?;
            }
        }
        self.tx
            .execute("DELETE FROM attributions WHERE incident_id = ?1", [&i.id])
            .map_err(sql(path, "replace attributions"))?;
        {
            let mut st = self
                .tx
                .prepare_cached(
                    "INSERT INTO attributions (incident_id, rank, group_id, group_name, \
                     probability, confidence, confidence_label, evidence) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sql(path, "prepare attribution insert"))?;
            for c in &i.candidates {
                st.execute(params![
                    i.id,
                    c.rank,
                    c.group_id,
                    c.group_name,
                    c.probability,
                    c.confidence,
                    c.confidence_label,
                    c.evidence.to_string()
                ])
                .map_err(sql(path, "insert attribution"))?;
            }
        }
        for s in &i.sightings {
            let exists: Option<i64> = self
                .tx
                .prepare_cached("SELECT id FROM sightings WHERE group_id = ?1 AND incident_id = ?2")
                .and_then(|mut st| st.query_row([&s.group_id, &i.id], |r| r.get(0)).optional())
                .map_err(sql(path, "read sighting"))?;
            match exists {
                None => {
                    self.stats.sightings_new += 1;
                    self.tx
                        .prepare_cached(
                            "INSERT INTO sightings (stix_id, first_seen, last_seen, group_id, \
                             group_name, state, incident_id, rank, confidence, created_at, \
                             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                        )
                        .and_then(|mut st| {
                            st.execute(params![
                                stix_id("sighting", &format!("{}|{}", s.group_id, i.id)),
                                first,
                                last,
                                s.group_id,
                                s.group_name,
                                s.state,
                                i.id,
                                s.rank,
                                s.confidence,
                                self.started
                            ])
                        })
                        .map_err(sql(path, "insert sighting"))?;
                }
                Some(id) => {
                    self.tx
                        .prepare_cached(&format!(
                            "UPDATE sightings SET {WIDEN}, group_name = ?4, \
                             state = coalesce(?5, state), rank = ?6, confidence = ?7, \
                             updated_at = CASE WHEN {SIGHTING_CHANGED} THEN ?8 \
                             ELSE updated_at END WHERE id = ?1"
                        ))
                        .and_then(|mut st| {
                            st.execute(params![
                                id,
                                first,
                                last,
                                s.group_name,
                                s.state,
                                s.rank,
                                s.confidence,
                                self.started
                            ])
                        })
                        .map_err(sql(path, "update sighting"))?;
                }
            }
        }
        Ok(())
    }

    /// Adds an IOC hit (ignored when (type, value, time, host) is stored already) and its
    /// indicator, whose STIX id `stix_id("indicator", "type|value")` — the hunt bundle's — is
    /// kept from its first hit.
    pub fn add_ioc_hit(&mut self, h: &IocHitRec) -> Result<()> {
        let path = self.path;
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO indicators (indicator_type, value, stix_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    h.indicator_type,
                    h.value,
                    stix_id("indicator", &format!("{}|{}", h.indicator_type, h.value)),
                    self.started
                ])
            })
            .map_err(sql(path, "insert indicator"))?;
        self.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO ioc_hits (incident_id, indicator_type, value, feed, actor, \
                 time, host, hunt_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    h.incident_id,
                    h.indicator_type,
                    h.value,
                    h.feed,
                    h.actor,
                    h.time.map(ts),
                    h.host,
                    self.hunt_id
                ])
            })
            .map_err(sql(path, "insert IOC hit"))?;
        Ok(())
    }

    /// Fills the hunt's row (`finished` time, `events` read, detection and incident counts)
    /// and commits. Errors: [`crate::StoreError::Sqlite`] — notably a foreign key violation
    /// when a detection or IOC hit names an incident that was never added; the hunt is then
    /// rolled back.
    pub fn commit(self, finished: DateTime<Utc>, events: u64) -> Result<HuntStats> {
        let HuntWriter {
            detection,
            tx,
            path,
            hunt_id,
            stats,
            touched,
            ..
        } = self;
        drop(detection);
        // Detection counts from the stored detections (unique per rule and
        // event), so repeats within a hunt or across hunts count once.
        {
            let mut st = tx
                .prepare(
                    "UPDATE incidents SET detections = \
                     (SELECT count(*) FROM detections d WHERE d.incident_id = incidents.id) \
                     WHERE id = ?1 AND EXISTS \
                     (SELECT 1 FROM detections d WHERE d.incident_id = incidents.id)",
                )
                .map_err(sql(path, "recount incident detections"))?;
            for id in &touched {
                st.execute([id])
                    .map_err(sql(path, "recount incident detections"))?;
            }
        }
        tx.execute(
            "UPDATE hunt_runs SET finished_at = ?2, events = ?3, detections = ?4, \
             detections_new = ?5, incidents = ?6 WHERE id = ?1",
            params![
                hunt_id,
                ts(finished),
                int(events),
                int(stats.detections),
                int(stats.detections_new),
                int(stats.incidents)
            ],
        )
        .map_err(sql(path, "update hunt_runs row"))?;
        tx.commit().map_err(sql(
            path,
            "commit hunt (a foreign key fails when a detection or IOC hit names an incident \
             that was not added)",
        ))?;
        Ok(stats)
    }
}

/// JSON array text of `stored` followed by the items of `new` not in it yet.
fn json_list(stored: &[String], new: &[String]) -> String {
    let mut seen = HashSet::new();
    let all: Vec<&str> = stored
        .iter()
        .chain(new)
        .map(String::as_str)
        .filter(|s| seen.insert(*s))
        .collect();
    serde_json::Value::from(all).to_string()
}
