//! The store sink: one hunt written to a `tracehunt-store` (SQLite) in one
//! transaction: the run, its sources (coverage), rules, detections (once
//! per rule and event identity), incidents with their attributions,
//! sightings of the candidate intrusion sets, and IOC hits.

use crate::hunt::StoreItem;
use crate::incident::{IncidentReport, Incidents};
use crate::incident_out::level_word;
use crate::{Loaded, PipelineError, Scanned};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use tracehunt_attack::ActorKb;
use tracehunt_report::Summary;
use tracehunt_store::{
    CandidateRec, DetectionRec, HuntRun, HuntStats, IncidentRec, IocHitRec, RuleRec, SightingRec,
    SourceRec, Store,
};

/// Candidates of an incident stored with their evidence.
pub const STORED_CANDIDATES: usize = 5;
/// Candidates of an incident recorded as sightings of their intrusion set
/// (rank 1 is the incident's attribution; ranks 2–3 let an analyst see
/// close alternatives over time).
pub const SIGHTED_CANDIDATES: usize = 3;
/// Bytes read from each end of a source file for its content fingerprint:
/// 8 KiB covers an EVTX file header (4 KiB: chunk count, next record id,
/// header CRC) and the first chunk's header with its event-records CRC32.
/// Hashing whole files cost 1.3 s of 10 s on the bench corpus.
pub const HASH_SAMPLE: u64 = 8 << 10;

/// Who ran the hunt and how (the `hunt_runs` row).
pub struct HuntMeta<'a> {
    /// When the hunt started.
    pub started_at: DateTime<Utc>,
    /// `tracehunt <version>`.
    pub tool_version: &'a str,
    /// The hunt's parameters (paths, rule folders, levels, windows…).
    pub parameters: serde_json::Value,
    /// The text of a rule file by its name (built-in rules, or a file to
    /// read again), for the rules' content hashes.
    pub rule_text: &'a dyn Fn(&str) -> Option<Vec<u8>>,
    /// Called with the number of detections written so far, every
    /// `progress_every` (at least 1).
    pub on_rows: &'a dyn Fn(u64),
    /// See `on_rows`.
    pub progress_every: u64,
}

/// A time the store keeps: years 0001–9999 (RFC 3339's four digits, which
/// also keep the stored texts in time order); any other is stored as no
/// time (a breaker's year -1 event made every later read of the store fail).
pub fn storable(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    use chrono::Datelike;
    t.filter(|t| (1..=9999).contains(&t.year()))
}

/// Hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The content fingerprint and format of a source file, from one open: the
/// hex SHA-256 of its size (8 bytes, little-endian), its first and its last
/// [`HASH_SAMPLE`] bytes (the whole file when smaller than twice that). An
/// EVTX header, the first chunk's records checksum and the newest records
/// change whenever the log does, so this identifies a log's content for
/// coverage without reading the file twice; it is not an evidence hash of
/// every byte. The format is told by content (`evtx`, `json-array`,
/// `json-lines`, `unknown`). `None` when the file cannot be read.
pub fn source_info(path: &std::path::Path) -> Option<(String, String)> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    let mut buf = Vec::new();
    if size <= 2 * HASH_SAMPLE {
        f.read_to_end(&mut buf).ok()?;
    } else {
        f.by_ref().take(HASH_SAMPLE).read_to_end(&mut buf).ok()?;
        f.seek(SeekFrom::Start(size - HASH_SAMPLE)).ok()?;
        f.take(HASH_SAMPLE).read_to_end(&mut buf).ok()?;
    }
    h.update(&buf);
    let head = &buf[..buf.len().min(tracehunt_readers::SNIFF_LEN)];
    let format = match tracehunt_readers::sniff(head) {
        Some(tracehunt_readers::Format::Evtx) => "evtx",
        Some(tracehunt_readers::Format::JsonArray) => "json-array",
        Some(tracehunt_readers::Format::JsonLines) => "json-lines",
        _ => "unknown",
    };
    let hash = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some((hash, format.to_owned()))
}

/// Writes one hunt to `store` in one transaction (nothing of it is kept
/// if any write fails, or the process dies before the commit). Returns
/// what was new.
///
/// # Errors
/// A store error (the path and what failed are in it), or reading the
/// hunt's temporary files back failed.
pub fn write_store(
    store: &mut Store,
    meta: &HuntMeta<'_>,
    loaded: &Loaded,
    kb: &ActorKb,
    scanned: &Scanned,
    incidents: &Incidents,
    summary: &Summary,
) -> Result<HuntStats, PipelineError> {
    let rs = &loaded.ruleset;
    let rules = rule_records(loaded, meta.rule_text);
    let run = HuntRun {
        started_at: meta.started_at,
        tool_version: meta.tool_version.to_owned(),
        ruleset_hash: hash_rules(&rules),
        attack_version: kb.label().unwrap_or("unknown").to_owned(),
        parameters: meta.parameters.clone(),
    };
    // Hashed in parallel before the transaction starts (one open per file).
    let infos: Vec<Option<(String, String)>> = {
        use rayon::prelude::*;
        scanned
            .streams
            .par_iter()
            .map(|s| source_info(std::path::Path::new(&s.name)))
            .collect()
    };
    let mut w = store.begin_hunt(&run)?;
    for (s, info) in scanned.streams.iter().zip(infos) {
        let (content_hash, format) =
            info.unwrap_or_else(|| (sha256_hex(s.name.as_bytes()), "unknown".to_owned()));
        w.add_source(&SourceRec {
            path: s.name.clone(),
            content_hash,
            format,
            first_event: storable(s.first),
            last_event: storable(s.last),
            events_read: s.events,
            records_lost: s.lost,
        })?;
    }
    for r in &rules {
        w.add_rule(r)?;
    }
    // The id each incident is stored under (an overlapping stored incident's, or its own).
    let mut stored_ids = Vec::with_capacity(incidents.reports.len());
    for r in &incidents.reports {
        stored_ids.push(w.add_incident(&incident_record(r))?);
    }
    let cx = scanned.contexts();
    let incident_id = |host: Option<&str>, t: Option<DateTime<Utc>>| {
        incidents
            .incident_of(host, t)
            .map(|k| stored_ids[k].as_str())
    };
    let mut rows = 0u64;
    scanned.for_each_store_record(|item| -> Result<(), PipelineError> {
        let (rule, key, time, host, source) = match item {
            StoreItem::Event(r) => {
                let host = cx.host(r.ctx);
                let name = scanned
                    .streams
                    .binary_search_by_key(&(r.stream as usize), |s| s.stream)
                    .map_or("", |i| scanned.streams[i].name.as_str());
                (r.rule as usize, r.key, r.timestamp(), host, name)
            }
            StoreItem::Correlation(d) => {
                let key = crate::keys::correlation_key(&rs.rule(d.rule).id, d);
                (d.rule, key, d.timestamp, d.computer.as_deref(), &*d.source)
            }
        };
        let m = rs.rule(rule);
        w.add_detection(&DetectionRec {
            rule_id: &m.id,
            event_key: key,
            time: storable(time),
            host,
            source,
            level: m.level,
            incident_id: incident_id(host, time),
        })?;
        rows += 1;
        if rows.is_multiple_of(meta.progress_every.max(1)) {
            (meta.on_rows)(rows);
        }
        Ok(())
    })?;
    for h in &scanned.ioc_hits {
        let actor = h
            .hit
            .actors
            .first()
            .map(|a| a.attack_id.clone().unwrap_or_else(|| a.name.clone()));
        w.add_ioc_hit(&IocHitRec {
            incident_id: incident_id(h.computer.as_deref(), h.timestamp).map(str::to_owned),
            indicator_type: h.hit.kind.as_str().to_owned(),
            value: h.hit.value.clone(),
            feed: h
                .hit
                .sources
                .first()
                .map_or(String::new(), |s| s.feed.clone()),
            actor,
            time: storable(h.timestamp),
            host: h.computer.clone(),
        })?;
    }
    Ok(w.commit(Utc::now(), summary.events)?)
}

/// The `ruleset_hash` of a hunt run: SHA-256 (hex) over every rule's id and
/// the SHA-256 of its file, in ruleset order; `rule_text` gives a rule file's
/// bytes (the built-in pack's from the binary).
pub fn ruleset_hash(loaded: &Loaded, rule_text: &dyn Fn(&str) -> Option<Vec<u8>>) -> String {
    hash_rules(&rule_records(loaded, rule_text))
}

fn hash_rules(rules: &[RuleRec]) -> String {
    let mut all = Sha256::new();
    for r in rules {
        all.update(format!("{}\0{}\0", r.rule_id, r.content_hash).as_bytes());
    }
    all.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every loaded rule with the SHA-256 of the file it came from.
fn rule_records(loaded: &Loaded, rule_text: &dyn Fn(&str) -> Option<Vec<u8>>) -> Vec<RuleRec> {
    let rs = &loaded.ruleset;
    let mut file_hash: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..rs.len() {
        let m = rs.rule(i);
        let hash = file_hash
            .entry(m.file.as_str())
            .or_insert_with(|| {
                rule_text(&m.file).map_or_else(|| sha256_hex(m.file.as_bytes()), |b| sha256_hex(&b))
            })
            .clone();
        if seen.insert((m.id.clone(), hash.clone())) {
            out.push(RuleRec {
                rule_id: m.id.clone(),
                content_hash: hash,
                title: m.title.clone(),
                level: m.level.to_owned(),
            });
        }
    }
    out
}

/// The store's record of one incident: its candidates (top
/// [`STORED_CANDIDATES`]) and sightings (top [`SIGHTED_CANDIDATES`]).
fn incident_record(r: &IncidentReport) -> IncidentRec {
    let i = &r.incident;
    let a = &r.attribution;
    let (candidates, sightings) = attribution_records(a);
    IncidentRec {
        id: i.id.clone(),
        first_seen: storable(i.first),
        last_seen: storable(i.last),
        hosts: i.hosts.clone(),
        users: i.users.clone(),
        entities: i
            .entities
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect(),
        max_level: level_word(i.max_level).to_owned(),
        detections: i.detections,
        tactics: r.tactics.clone(),
        techniques: r.techniques.clone(),
        verdict: a.reason.clone(),
        confident: a.confident,
        candidates,
        sightings,
    }
}

/// The stored attribution of an incident: its top candidates
/// ([`STORED_CANDIDATES`], with evidence) and actor sightings (top
/// [`SIGHTED_CANDIDATES`], each with its suspected state from the MISP galaxy:
/// [`tracehunt_attack::StateSponsors::builtin`]).
pub fn attribution_records(
    a: &tracehunt_attribution::Attribution,
) -> (Vec<CandidateRec>, Vec<SightingRec>) {
    let candidates = a
        .candidates
        .iter()
        .take(STORED_CANDIDATES)
        .map(|c| CandidateRec {
            rank: c.rank as u32,
            group_id: c.id.clone(),
            group_name: c.name.clone(),
            probability: c.probability,
            confidence: c.confidence,
            confidence_label: c.confidence_label.clone(),
            evidence: serde_json::to_value(&c.matched).unwrap_or_default(),
        })
        .collect();
    let sightings = a
        .candidates
        .iter()
        .take(SIGHTED_CANDIDATES)
        .map(|c| SightingRec {
            group_id: c.id.clone(),
            group_name: c.name.clone(),
            state: tracehunt_attack::StateSponsors::builtin()
                .get(&c.id)
                .map(|s| s.state_name()),
            rank: c.rank as u32,
            confidence: c.confidence,
        })
        .collect();
    (candidates, sightings)
}
