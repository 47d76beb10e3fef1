//! The store sink: detections and incidents of the live hunt written to the
//! SQLite store (`--store`), one transaction per checkpoint.

use crate::engine::Sink;
use crate::hunter::{Emitted, IncidentOut};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};
use tracehunt_pipeline::store_sink::{attribution_records, storable};
use tracehunt_store::{DetectionRec, HuntRun, IncidentRec, Store};

/// Most live incident ids remembered with the id they are stored under.
const IDS_KEPT: usize = 100_000;

struct PendingDetection {
    rule_id: String,
    key: [u8; 16],
    time: Option<DateTime<Utc>>,
    host: Option<String>,
    source: String,
    level: &'static str,
    incident: String,
}

/// Writes to the store at most every `interval` (and when forced): each
/// checkpoint is one transaction and one `hunt_runs` row whose parameters
/// say `"mode": "watch"`, the session start and the checkpoint number.
/// Until a checkpoint commits, [`Sink::flush`] reports the output as not
/// durable, so the batches' acknowledgements (followed files' offsets,
/// HTTP answers) wait for it.
pub struct StoreSink {
    store: Store,
    interval: Duration,
    last: Instant,
    session: DateTime<Utc>,
    checkpoint: u64,
    run: HuntRun,
    detections: Vec<PendingDetection>,
    incidents: Vec<IncidentRec>,
    /// Live incident id → stored id (a stored incident overlapping it).
    stored_ids: HashMap<String, String>,
}

impl StoreSink {
    /// A sink over `store`, committing at most every `interval`. `run`
    /// names the tool, rules and ATT&CK version as a batch hunt records
    /// them; each checkpoint's row takes its start time and parameters
    /// from the checkpoint.
    pub fn new(store: Store, interval: Duration, run: HuntRun) -> Self {
        StoreSink {
            store,
            interval,
            last: Instant::now(),
            session: Utc::now(),
            checkpoint: 0,
            run,
            detections: Vec::new(),
            incidents: Vec::new(),
            stored_ids: HashMap::new(),
        }
    }

    fn incident(i: &IncidentOut) -> IncidentRec {
        let (candidates, sightings) = match &i.attribution {
            Some(a) => attribution_records(a),
            None => (Vec::new(), Vec::new()),
        };
        let users = i
            .entities
            .iter()
            .filter(|(k, _)| *k == tracehunt_incidents::EntityKind::User)
            .map(|(_, v)| v.clone())
            .collect();
        IncidentRec {
            id: i.id.clone(),
            first_seen: storable(i.first),
            last_seen: storable(i.last),
            hosts: i.hosts.clone(),
            users,
            entities: i
                .entities
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect(),
            max_level: i.level.to_owned(),
            detections: i.detections,
            tactics: i.tactics.clone(),
            techniques: i.techniques.clone(),
            verdict: i
                .attribution
                .as_ref()
                .map(|a| a.reason.clone())
                .unwrap_or_default(),
            confident: i.confident,
            candidates,
            sightings,
        }
    }

    fn commit(&mut self) -> Result<(), tracehunt_store::StoreError> {
        self.checkpoint += 1;
        let run = HuntRun {
            started_at: Utc::now(),
            parameters: serde_json::json!({
                "mode": "watch",
                "session": self.session.to_rfc3339(),
                "checkpoint": self.checkpoint,
            }),
            ..self.run.clone()
        };
        let mut w = self.store.begin_hunt(&run)?;
        for rec in self.incidents.drain(..) {
            let live = rec.id.clone();
            let mut rec = rec;
            if let Some(s) = self.stored_ids.get(&live) {
                rec.id = s.clone();
            }
            let stored = w.add_incident(&rec)?;
            if self.stored_ids.len() >= IDS_KEPT {
                self.stored_ids.clear();
            }
            self.stored_ids.insert(live, stored);
        }
        for d in self.detections.drain(..) {
            let incident = self.stored_ids.get(&d.incident).unwrap_or(&d.incident);
            w.add_detection(&DetectionRec {
                rule_id: &d.rule_id,
                event_key: d.key,
                time: storable(d.time),
                host: d.host.as_deref(),
                source: &d.source,
                level: d.level,
                incident_id: Some(incident),
            })?;
        }
        // Events are counted by the engine, not here.
        w.commit(Utc::now(), 0)?;
        Ok(())
    }
}

impl Sink for StoreSink {
    fn emit(&mut self, item: &Emitted) -> io::Result<()> {
        match item {
            Emitted::Detection(d) if d.kind != "ioc_hit" => {
                self.detections.push(PendingDetection {
                    rule_id: d.rule_id.clone(),
                    key: d.event_key,
                    time: d.time,
                    host: d.host.clone(),
                    source: d.source.to_string(),
                    level: d.level,
                    incident: d.incident_id.clone(),
                })
            }
            Emitted::Detection(_) => {}
            Emitted::Incident(i) => {
                let rec = Self::incident(i);
                match self.incidents.iter_mut().find(|r| r.id == rec.id) {
                    Some(r) => *r = rec,
                    None => self.incidents.push(rec),
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, force: bool) -> io::Result<bool> {
        if self.detections.is_empty() && self.incidents.is_empty() {
            return Ok(true);
        }
        if !force && self.last.elapsed() < self.interval {
            return Ok(false);
        }
        self.commit().map_err(|e| io::Error::other(e.to_string()))?;
        self.last = Instant::now();
        Ok(true)
    }
}
