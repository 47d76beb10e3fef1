//! The ordered stage: scanned batches in input order → correlations,
//! incidents, attribution → what the sinks get ([`Emitted`]).

use crate::incidents::{IncidentConfig, LiveIncidents, Open};
use crate::rules::Rules;
use crate::scan::{EventHits, Scanned};
use chrono::{DateTime, Utc};
use serde_json::{json, Value as J};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tracehunt_attribution::Attribution;
use tracehunt_attribution::Attributor;
use tracehunt_correlate::{same_field, CorrelationHit, Correlator, Fields, WindowState};
use tracehunt_incidents::EntityKind;
use tracehunt_report::Detection;

/// Something the live hunt reports, with what a sink or a response policy
/// needs to know of it.
#[derive(Debug, Clone)]
pub enum Emitted {
    /// A rule hit, a correlation hit or an IOC hit.
    Detection(DetectionOut),
    /// An incident opened, changed or closed.
    Incident(IncidentOut),
}

impl Emitted {
    /// The JSON line (newline included) of the output stream.
    pub fn line(&self) -> &[u8] {
        match self {
            Emitted::Detection(d) => &d.line,
            Emitted::Incident(i) => &i.line,
        }
    }
}

/// One detection as emitted.
#[derive(Debug, Clone)]
pub struct DetectionOut {
    /// The `hunt --format jsonl` object of the detection (IOC hits: of the
    /// hit) plus `"kind"` (`detection`, `correlation` or `ioc_hit`) and
    /// `"incident_id"`, and a newline.
    pub line: Vec<u8>,
    /// `detection`, `correlation` or `ioc_hit`.
    pub kind: &'static str,
    /// Rule id (`ioc:<type>:<value>` for IOC hits).
    pub rule_id: String,
    /// Rule title.
    pub title: String,
    /// Sigma level word.
    pub level: &'static str,
    /// Rule tags.
    pub tags: Vec<String>,
    /// `Computer` of the event.
    pub host: Option<String>,
    /// Event time.
    pub time: Option<DateTime<Utc>>,
    /// The live incident it joined.
    pub incident_id: String,
    /// Entities of the event (IPs, domains, hashes, users…).
    pub entities: Vec<(EntityKind, String)>,
    /// The IOC (type, value) of an IOC hit.
    pub ioc: Option<(String, String)>,
    /// Event identity (store de-duplication); correlation hits: of their
    /// last contributing event.
    pub event_key: [u8; 16],
    /// Where the event came from.
    pub source: Arc<str>,
}

/// One incident as emitted.
#[derive(Debug, Clone)]
pub struct IncidentOut {
    /// The incident's JSON object (`"kind":"incident"`) and a newline.
    pub line: Vec<u8>,
    /// `opened`, `updated` or `closed`.
    pub status: &'static str,
    /// Its id (`inc-` + 16 hex digits).
    pub id: String,
    /// Hosts, first seen first.
    pub hosts: Vec<String>,
    /// Highest level of its detections.
    pub level: &'static str,
    /// First and last detection time.
    pub first: Option<DateTime<Utc>>,
    /// Last detection time.
    pub last: Option<DateTime<Utc>>,
    /// Detections (IOC hits included).
    pub detections: u64,
    /// Tactics and techniques of its rules.
    pub tactics: Vec<String>,
    /// ATT&CK technique ids.
    pub techniques: Vec<String>,
    /// Entities seen (at most 64).
    pub entities: Vec<(EntityKind, String)>,
    /// Top attribution candidates (at most 3): (ATT&CK id, name, confidence 0–100).
    pub actors: Vec<(String, String, u8)>,
    /// Whether the attribution is confident.
    pub confident: bool,
    /// The attribution (top 3 candidates with evidence), once attributed.
    pub attribution: Option<tracehunt_attribution::Attribution>,
}

/// Correlated detections remembered for correlation hit output (handles).
const RECENT: usize = 100_000;

/// Attribution candidates kept per incident.
const TOP: usize = 3;

pub(crate) struct Hunter {
    rules: Arc<Rules>,
    window: Option<WindowState>,
    incidents: LiveIncidents,
    /// Summaries of recent correlated detections: handle `base + i`.
    recent: VecDeque<J>,
    recent_base: u64,
    min_rank: u8,
    /// Latest event time seen.
    pub(crate) clock: Option<DateTime<Utc>>,
    /// Window groups dropped by reloads.
    pub(crate) reload_dropped: u64,
    /// `Some(i)` for each correlation `i`: resuming the window state on the
    /// same set (once per correlated hit).
    identity: Vec<Option<usize>>,
    /// Attributions by [`evidence_key`] (this generation's rules and knowledge base).
    attributions: HashMap<String, Attribution>,
}

struct DetFields<'a>(&'a Detection);

impl Fields for DetFields<'_> {
    fn field(&self, name: &str) -> Option<String> {
        let (_, v) = self.0.fields.iter().find(|(n, _)| same_field(n, name))?;
        match v {
            J::Null => None,
            J::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// `obj` (a JSON object's bytes) with `"kind"` and `"incident_id"` added, and a newline.
fn splice(mut obj: Vec<u8>, kind: &str, incident: &str) -> Vec<u8> {
    if obj.last() == Some(&b'}') {
        obj.pop();
        if obj.len() > 1 {
            obj.push(b',');
        }
        obj.extend_from_slice(
            format!("\"kind\":\"{kind}\",\"incident_id\":\"{incident}\"}}\n").as_bytes(),
        );
    }
    obj
}

impl Hunter {
    pub(crate) fn new(rules: Arc<Rules>, cfg: IncidentConfig, min_rank: u8) -> Self {
        Hunter {
            window: None,
            incidents: LiveIncidents::new(cfg),
            recent: VecDeque::new(),
            recent_base: 0,
            min_rank,
            clock: None,
            reload_dropped: 0,
            identity: (0..rules.loaded.correlations.len()).map(Some).collect(),
            attributions: HashMap::new(),
            rules,
        }
    }

    pub(crate) fn open_incidents(&self) -> usize {
        self.incidents.open_count()
    }

    /// The knowledge base of the rules in use (the stage's attributor is built on it).
    pub(crate) fn kb(&self) -> Arc<tracehunt_attack::ActorKb> {
        self.rules.kb.clone()
    }

    /// Switches to `new` rules, keeping the windows of unchanged correlations.
    fn switch(&mut self, new: Arc<Rules>) {
        if let Some(state) = self.window.take() {
            let map = new.correlation_map(&self.rules);
            let (c, dropped) = Correlator::resume(&new.loaded.correlations, state, &map);
            self.reload_dropped += dropped;
            self.window = Some(c.into_state());
        }
        self.identity = (0..new.loaded.correlations.len()).map(Some).collect();
        self.attributions.clear();
        self.rules = new;
    }

    fn remember(&mut self, d: &Detection) -> u64 {
        let rs = &self.rules.loaded.ruleset;
        self.recent.push_back(json!({
            "rule_id": rs.rule(d.rule).id,
            "timestamp": d.timestamp.map(|t| t.to_rfc3339()),
            "source": &*d.source,
            "record_id": d.record_id,
            "computer": d.computer,
        }));
        if self.recent.len() > RECENT {
            self.recent.pop_front();
            self.recent_base += 1;
        }
        self.recent_base + self.recent.len() as u64 - 1
    }

    /// Processes one batch in input order; appends what it emits.
    pub(crate) fn process(
        &mut self,
        b: &mut Scanned,
        out: &mut Vec<Emitted>,
        att: &Attributor<'_>,
    ) {
        if b.rules.generation != self.rules.generation {
            self.switch(b.rules.clone());
        }
        let mut closed = Vec::new();
        let mut detections = 0u64;
        for e in std::mem::take(&mut b.events) {
            detections += self.event(e, &b.source, out, &mut closed);
        }
        // The event clock (closing windows and incidents) follows event
        // times, but not ones more than a day past the wall clock: one
        // event dated 9999 would otherwise close every later incident at
        // once (breaker finding).
        let horizon = Utc::now() + chrono::Duration::days(1);
        if let Some(t) = b.latest.filter(|&t| t <= horizon) {
            self.clock = Some(self.clock.map_or(t, |c| c.max(t)));
        }
        if let Some(now) = self.clock {
            let hits = self.with_correlator(|c| c.advance_to(now));
            detections += self.correlation_hits(hits, out, &mut closed);
            self.incidents.close_idle(now, &mut closed);
        }
        b.result.detections = detections;
        self.emit_incidents(closed, out, att);
    }

    /// Idle time: correlation windows and incidents close as if event time
    /// had moved on to `now`.
    pub(crate) fn tick(
        &mut self,
        now: DateTime<Utc>,
        out: &mut Vec<Emitted>,
        att: &Attributor<'_>,
    ) {
        let mut closed = Vec::new();
        let hits = self.with_correlator(|c| c.advance_to(now));
        self.correlation_hits(hits, out, &mut closed);
        self.incidents.close_idle(now, &mut closed);
        self.emit_incidents(closed, out, att);
    }

    /// End of input: open windows close (what fires on close fires), every
    /// incident closes.
    pub(crate) fn finish(&mut self, out: &mut Vec<Emitted>, att: &Attributor<'_>) {
        let mut closed = Vec::new();
        let hits = self.with_correlator(|c| c.flush());
        self.correlation_hits(hits, out, &mut closed);
        self.incidents.close_all(&mut closed);
        self.emit_incidents(closed, out, att);
    }

    fn with_correlator(
        &mut self,
        f: impl FnOnce(&mut Correlator<'_>) -> Vec<CorrelationHit>,
    ) -> Vec<CorrelationHit> {
        let cs = &self.rules.loaded.correlations;
        if cs.is_empty() {
            return Vec::new();
        }
        let state = self.window.take().unwrap_or_default();
        let (mut c, _) = Correlator::resume(cs, state, &self.identity);
        let hits = f(&mut c);
        self.window = Some(c.into_state());
        hits
    }

    fn event(
        &mut self,
        e: EventHits,
        source: &Arc<str>,
        out: &mut Vec<Emitted>,
        closed: &mut Vec<Open>,
    ) -> u64 {
        let rules = self.rules.clone();
        let rs = &rules.loaded.ruleset;
        let first_rule = e
            .hits
            .iter()
            .find(|h| h.line.is_some())
            .map(|h| rs.rule(h.rule).id.clone())
            .or_else(|| {
                e.iocs
                    .first()
                    .map(|i| format!("ioc:{}:{}", i.hit.kind, i.hit.value))
            });
        let mut n = 0;
        let mut slot = None;
        if let Some(rule_id) = &first_rule {
            let s = self
                .incidents
                .place(e.host.as_deref(), e.time, &e.entities, rule_id, closed);
            slot = Some(s);
        }
        for h in e.hits {
            if let Some(d) = &h.det {
                if let Some(ts) = d.timestamp {
                    let handle = self.remember(d);
                    let hits = self.with_correlator(|c| c.feed(d.rule, ts, handle, &DetFields(d)));
                    n += self.correlation_hits(hits, out, closed);
                }
            }
            let (Some(line), Some(s)) = (h.line, slot) else {
                continue;
            };
            let m = rs.rule(h.rule);
            let o = self.incidents.get_mut(s);
            o.add_rule(m, e.time);
            n += 1;
            out.push(Emitted::Detection(DetectionOut {
                line: splice(line, "detection", &o.id),
                kind: "detection",
                rule_id: m.id.clone(),
                title: m.title.clone(),
                level: m.level,
                tags: m.tags.clone(),
                host: e.host.clone(),
                time: e.time,
                incident_id: o.id.clone(),
                entities: e.entities.clone(),
                ioc: None,
                event_key: e.key,
                source: source.clone(),
            }));
        }
        for d in e.iocs {
            let Some(s) = slot else { break };
            let o = self.incidents.get_mut(s);
            o.add_ioc(&d);
            n += 1;
            let mut obj = Vec::new();
            let _ =
                serde_json::to_writer(&mut obj, &tracehunt_pipeline::ioc::hit_json(&rules.kb, &d));
            let kind = d.hit.kind.to_string();
            out.push(Emitted::Detection(DetectionOut {
                line: splice(obj, "ioc_hit", &o.id),
                kind: "ioc_hit",
                rule_id: format!("ioc:{}:{}", kind, d.hit.value),
                title: format!("IOC {} {}", kind, d.hit.value),
                level: "high",
                tags: vec!["ioc".into(), format!("ioc.{kind}")],
                host: e.host.clone(),
                time: e.time,
                incident_id: o.id.clone(),
                entities: e.entities.clone(),
                ioc: Some((kind, d.hit.value.clone())),
                event_key: e.key,
                source: source.clone(),
            }));
        }
        n
    }

    /// Correlation hits → detections in the incident of their last event's host.
    fn correlation_hits(
        &mut self,
        hits: Vec<CorrelationHit>,
        out: &mut Vec<Emitted>,
        closed: &mut Vec<Open>,
    ) -> u64 {
        let mut n = 0;
        for h in hits {
            let rules = self.rules.clone();
            let rs = &rules.loaded.ruleset;
            let corr = rules.loaded.correlations.correlation(h.correlation);
            let rule = rules.loaded.correlation_rules[h.correlation];
            let m = rs.rule(rule);
            if m.level_rank < self.min_rank {
                continue;
            }
            let events: Vec<J> = h
                .events
                .iter()
                .filter_map(|&i| i.checked_sub(self.recent_base))
                .filter_map(|i| self.recent.get(i as usize).cloned())
                .collect();
            let last = events.last();
            let host = last.and_then(|e| e["computer"].as_str()).map(str::to_owned);
            let source: Arc<str> = Arc::from(last.and_then(|e| e["source"].as_str()).unwrap_or(""));
            let mut fields: Vec<(String, J)> = h
                .group
                .iter()
                .map(|(k, v)| (k.clone(), J::String(v.clone())))
                .collect();
            fields.push(("correlation_type".into(), json!(corr.kind.as_str())));
            fields.push(("correlation_value".into(), json!(h.value)));
            fields.push(("first_timestamp".into(), json!(h.first.to_rfc3339())));
            fields.push(("last_timestamp".into(), json!(h.last.to_rfc3339())));
            fields.push(("event_count".into(), json!(h.event_count)));
            fields.push(("events".into(), J::Array(events.clone())));
            let d = Detection {
                rule,
                timestamp: Some(h.last),
                computer: host.clone(),
                channel: None,
                event_id: None,
                record_id: None,
                source: source.clone(),
                fields: Arc::new(fields),
            };
            let s = self
                .incidents
                .place(host.as_deref(), d.timestamp, &[], &m.id, closed);
            let o = self.incidents.get_mut(s);
            o.add_rule(m, d.timestamp);
            let mut obj = Vec::new();
            let _ = tracehunt_report::write_detection_json(&mut obj, rs, &d);
            // The correlation's identity: its rule, group and window.
            let key = tracehunt_pipeline::keys::correlation_key(&m.id, &d);
            n += 1;
            out.push(Emitted::Detection(DetectionOut {
                line: splice(obj, "correlation", &o.id),
                kind: "correlation",
                rule_id: m.id.clone(),
                title: m.title.clone(),
                level: m.level,
                tags: m.tags.clone(),
                host,
                time: d.timestamp,
                incident_id: o.id.clone(),
                entities: Vec::new(),
                ioc: None,
                event_key: key,
                source,
            }));
        }
        n
    }

    /// Emits incidents closed now, then open ones that changed (re-attributed
    /// when their evidence changed).
    fn emit_incidents(&mut self, closed: Vec<Open>, out: &mut Vec<Emitted>, att: &Attributor<'_>) {
        for mut o in closed {
            if o.evidence_changed {
                attribute(att, &mut self.attributions, &mut o);
            }
            // Opened and closed within one batch: it is announced first, so
            // every incident has an `opened` line (and responses see it).
            if o.new {
                out.push(Emitted::Incident(incident_out(&o, "opened")));
            }
            out.push(Emitted::Incident(incident_out(&o, "closed")));
        }
        for o in self.incidents.changed() {
            let before = top_ids(o);
            let status = if o.new { "opened" } else { "updated" };
            let evidence = o.evidence_changed;
            if evidence {
                attribute(att, &mut self.attributions, o);
            }
            o.changed = false;
            o.new = false;
            // Counts alone moving is not news: only new evidence or a new
            // ranking is emitted (the detections themselves were).
            if status == "updated" && !evidence && before == top_ids(o) {
                continue;
            }
            out.push(Emitted::Incident(incident_out(o, status)));
        }
    }
}

fn top_ids(o: &Open) -> Vec<String> {
    o.attribution
        .as_ref()
        .map(|a| a.candidates.iter().map(|c| c.id.clone()).collect())
        .unwrap_or_default()
}

/// Most attributions remembered by evidence (cleared when full or on reload).
const ATTRIBUTIONS_KEPT: usize = 4096;

/// What an incident's attribution depends on: its rules and their counts,
/// its IOCs, and its window as the attribution reads it (year and month).
/// Equal keys give equal attributions, so a flood of the same activity on
/// many hosts is attributed once (breaker finding: 50,000 hosts spent most
/// of their time in the attribution).
fn evidence_key(o: &Open) -> String {
    let mut k = String::new();
    for (id, r) in &o.rules {
        k.push_str(&format!("{id}:{};", r.count));
    }
    let mut iocs: Vec<String> = o
        .iocs
        .iter()
        .map(|d| format!("{}:{}", d.hit.kind, d.hit.value))
        .collect();
    iocs.sort();
    k.push('|');
    k.push_str(&iocs.join(";"));
    let month =
        |t: Option<DateTime<Utc>>| t.map(|t| t.format("%Y-%m").to_string()).unwrap_or_default();
    k.push_str(&format!("|{}|{}", month(o.first), month(o.last)));
    k
}

fn attribute(attributor: &Attributor<'_>, cache: &mut HashMap<String, Attribution>, o: &mut Open) {
    let key = evidence_key(o);
    let a = match cache.get(&key) {
        Some(a) => a.clone(),
        None => {
            let window = match (o.first, o.last) {
                (Some(f), Some(l)) => {
                    tracehunt_attribution::Window::from_dates(&f.to_rfc3339(), &l.to_rfc3339())
                }
                _ => None,
            };
            let mut a = attributor.attribute_in(&o.evidence(), window);
            a.candidates.truncate(TOP);
            if cache.len() >= ATTRIBUTIONS_KEPT {
                cache.clear();
            }
            cache.insert(key, a.clone());
            a
        }
    };
    o.attribution = Some(a);
    o.evidence_changed = false;
}

/// A time as the detection lines write it (RFC 3339, UTC `Z`, as many
/// fraction digits as needed).
fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The top candidates for an incident line: who, how likely, and which
/// pieces of evidence matched (ids and how), without the per-item
/// statistics `hunt --format json` carries (an incident line stays a few
/// hundred bytes, not 20 KB: fresh-user finding).
fn attribution_brief(a: &tracehunt_attribution::Attribution) -> J {
    J::Array(
        a.candidates
            .iter()
            .take(TOP)
            .map(|c| {
                json!({
                    "rank": c.rank,
                    "id": c.id,
                    "name": c.name,
                    "probability": c.probability,
                    "confidence": c.confidence,
                    "confidence_label": c.confidence_label,
                    "matched": c.matched.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn incident_out(o: &Open, status: &'static str) -> IncidentOut {
    let mut tactics: Vec<String> = o.rules.values().flat_map(|r| r.tactics.clone()).collect();
    tactics.sort();
    tactics.dedup();
    let mut techniques: Vec<String> = o
        .rules
        .values()
        .flat_map(|r| r.techniques.clone())
        .collect();
    techniques.sort();
    techniques.dedup();
    let level = tracehunt_pipeline::incident_out::level_word(o.max_rank);
    let mut by_kind: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (k, v) in &o.entities {
        by_kind.entry(k.as_str()).or_default().push(v);
    }
    let (attribution, confident, reason) = match &o.attribution {
        Some(a) => (attribution_brief(a), a.confident, a.reason.clone()),
        None => (J::Array(Vec::new()), false, String::new()),
    };
    let rules: Vec<J> = o
        .rules
        .iter()
        .map(|(id, r)| json!({"rule_id": id, "title": r.title, "level": r.level, "detections": r.count}))
        .collect();
    let v = json!({
        "kind": "incident",
        "status": status,
        "incident_id": o.id,
        "hosts": o.hosts,
        "first_seen": o.first.map(time_text),
        "last_seen": o.last.map(time_text),
        "level": level,
        "detections": o.detections + o.ioc_hits,
        "ioc_hits": o.ioc_hits,
        "rules": rules,
        "tactics": tactics,
        "techniques": techniques,
        "entities": by_kind,
        "attribution": attribution,
        "confident": confident,
        "verdict": reason,
    });
    let mut line = serde_json::to_vec(&v).unwrap_or_default();
    line.push(b'\n');
    IncidentOut {
        line,
        status,
        id: o.id.clone(),
        hosts: o.hosts.clone(),
        level,
        first: o.first,
        last: o.last,
        detections: o.detections + o.ioc_hits,
        tactics,
        techniques,
        entities: o.entities.iter().cloned().collect(),
        actors: o
            .attribution
            .as_ref()
            .map(|a| {
                a.candidates
                    .iter()
                    .map(|c| (c.id.clone(), c.name.clone(), c.confidence))
                    .collect()
            })
            .unwrap_or_default(),
        confident,
        attribution: o.attribution.clone(),
    }
}
