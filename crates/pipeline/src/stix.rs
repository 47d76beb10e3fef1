//! The STIX sink: assemble the STIX 2.1 bundle from detections, IOC hits and the
//! attribution (the writer is `tracehunt_report::write_stix_bundle`).

use crate::incident::Incidents;
use crate::ioc::IocDetection;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{resolve_actor, Attribution, EvidenceKind, IocObservation};
use tracehunt_engine::Ruleset;
use tracehunt_report::{
    DetectionRef, GroupAttribution, IncidentStix, IndicatorSighting, StixInput, Summary,
    TechniqueSighting, Tlp,
};

/// At most this many candidates are written as `intrusion-set` + `attributed-to`.
const TOP_GROUPS: usize = 5;

fn widen(
    first: &mut Option<DateTime<Utc>>,
    last: &mut Option<DateTime<Utc>>,
    t: Option<DateTime<Utc>>,
) {
    if let Some(t) = t {
        *first = Some(first.map_or(t, |f| f.min(t)));
        *last = Some(last.map_or(t, |l| l.max(t)));
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

/// Observed techniques (canonical ATT&CK ids of the knowledge base; tags that do not resolve
/// are left out), sorted by id, with detection counts, time range, hosts and rule titles.
pub fn technique_sightings<'a>(
    kb: &ActorKb,
    rs: &Ruleset,
    dets: impl IntoIterator<Item = DetectionRef<'a>>,
) -> Vec<TechniqueSighting> {
    let mut m: BTreeMap<String, TechniqueSighting> = BTreeMap::new();
    for d in dets {
        let meta = rs.rule(d.rule);
        let mut ids: Vec<String> = meta
            .techniques
            .iter()
            .filter_map(|t| kb.canonical_technique(t))
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let t = m.entry(id.clone()).or_insert_with(|| TechniqueSighting {
                name: kb
                    .technique(&id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                id,
                count: 0,
                first_seen: None,
                last_seen: None,
                hosts: Vec::new(),
                rules: Vec::new(),
            });
            t.count += 1;
            widen(&mut t.first_seen, &mut t.last_seen, d.timestamp);
            if let Some(h) = d.computer {
                push_unique(&mut t.hosts, h);
            }
            push_unique(&mut t.rules, &meta.title);
        }
    }
    let mut v: Vec<TechniqueSighting> = m.into_values().collect();
    for t in &mut v {
        t.hosts.sort();
    }
    v
}

/// Matched IOCs by (type, value), with the ATT&CK groups their feeds tie them to.
pub fn indicator_sightings(kb: &ActorKb, dets: &[IocDetection]) -> Vec<IndicatorSighting> {
    let mut m: BTreeMap<(String, String), IndicatorSighting> = BTreeMap::new();
    for d in dets {
        let h = &d.hit;
        let s = m
            .entry((h.kind.as_str().to_owned(), h.value.clone()))
            .or_insert_with(|| IndicatorSighting {
                kind: h.kind.as_str().to_owned(),
                value: h.value.clone(),
                count: 0,
                first_seen: None,
                last_seen: None,
                hosts: Vec::new(),
                groups: Vec::new(),
                sources: Vec::new(),
            });
        s.count += 1;
        widen(&mut s.first_seen, &mut s.last_seen, d.timestamp);
        if let Some(c) = &d.computer {
            push_unique(&mut s.hosts, c);
        }
        for a in &h.actors {
            let obs = IocObservation {
                actor: a.name.clone(),
                attack_id: a.attack_id.clone(),
                aliases: a.aliases.clone(),
                ..IocObservation::default()
            };
            if let Some(g) = resolve_actor(kb, &obs) {
                push_unique(&mut s.groups, &g.id);
            }
        }
        for src in &h.sources {
            let text = match &src.title {
                Some(t) => format!("{} {} ({t})", src.format.as_str(), src.id),
                None => format!("{} {}", src.format.as_str(), src.id),
            };
            push_unique(&mut s.sources, &text);
        }
    }
    let mut v: Vec<IndicatorSighting> = m.into_values().collect();
    for s in &mut v {
        s.hosts.sort();
        s.groups.sort();
    }
    v
}

/// The candidates of `attribution` written as `intrusion-set` + relationship: at most
/// [`TOP_GROUPS`], the top one and those with a confidence above 0.
fn group_attributions(attribution: &Attribution) -> Vec<GroupAttribution> {
    attribution
        .candidates
        .iter()
        .take(TOP_GROUPS)
        // "attributed-to with confidence 0" says nothing: keep the top one and those above 0.
        .filter(|c| c.rank == 1 || c.confidence > 0)
        .map(|c| {
            let evidence: Vec<String> = c
                .matched
                .iter()
                .take(6)
                .map(|e| match e.kind {
                    EvidenceKind::Ioc => format!("IOC {}", e.id),
                    _ => e.id.clone(),
                })
                .collect();
            GroupAttribution {
                id: c.id.clone(),
                name: c.name.clone(),
                aliases: c.aliases.clone(),
                confidence: c.confidence,
                description: format!(
                    "rank {} of {} groups, score {:.3}, {} (confidence {}); evidence: {}{}",
                    c.rank,
                    attribution.groups_considered,
                    c.score,
                    c.confidence_label,
                    c.confidence,
                    evidence.join(", "),
                    if c.rank == 1 {
                        format!("; verdict: {}", attribution.reason)
                    } else {
                        String::new()
                    }
                ),
            }
        })
        .collect()
}

/// The `incident` objects of the hunt's incidents, each with its own candidates.
fn incident_objects(incidents: &Incidents, rs: &Ruleset) -> Vec<IncidentStix> {
    incidents
        .reports
        .iter()
        .map(|r| {
            let i = &r.incident;
            let t = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
            let rules: Vec<&str> = i
                .rules
                .iter()
                .take(5)
                .map(|&(k, _)| rs.rule(k as usize).title.as_str())
                .collect();
            IncidentStix {
                id: i.id.clone(),
                name: format!(
                    "{} incident on {}",
                    crate::incident_out::level_word(i.max_level),
                    i.hosts.join(", ")
                ),
                description: format!(
                    "tracehunt incident {}: {} detections from {} to {} on {}; users: {}; rules: {}; verdict: {}",
                    i.id,
                    i.detections,
                    t(i.first),
                    t(i.last),
                    i.hosts.join(", "),
                    if i.users.is_empty() { "-".to_owned() } else { i.users.join(", ") },
                    rules.join("; "),
                    r.attribution.reason
                ),
                first_seen: i.first,
                last_seen: i.last,
                hosts: i.hosts.clone(),
                detections: i.detections,
                groups: group_attributions(&r.attribution),
            }
        })
        .collect()
}

/// ATT&CK's `(created, modified)` by STIX id of every technique and group of `kb` that has
/// both an id and a version (ATT&CK v18.1 snapshot: all of them), for
/// [`StixInput::attack_versions`] and the store's export.
pub fn attack_versions(kb: &ActorKb) -> BTreeMap<String, (String, String)> {
    let pair = |id: &Option<String>, v: &Option<tracehunt_attack::StixVersion>| {
        Some((
            id.clone()?,
            v.as_ref()
                .map(|v| (v.created.clone(), v.modified.clone()))?,
        ))
    };
    kb.techniques()
        .values()
        .filter_map(|t| pair(&t.stix_id, &t.stix_version))
        .chain(
            kb.groups()
                .values()
                .filter_map(|g| pair(&g.stix_id, &g.stix_version)),
        )
        .collect()
}

/// ATT&CK id → ATT&CK's STIX id for every technique and group the bundle names (those the
/// knowledge base has an id for).
fn attack_ids(kb: &ActorKb, input: &StixInput) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for t in &input.techniques {
        if let Some(s) = kb.technique(&t.id).and_then(|t| t.stix_id.clone()) {
            m.insert(t.id.clone(), s);
        }
    }
    let groups = input
        .groups
        .iter()
        .map(|g| &g.id)
        .chain(input.indicators.iter().flat_map(|i| &i.groups))
        .chain(
            input
                .incidents
                .iter()
                .flat_map(|i| i.groups.iter().map(|g| &g.id)),
        );
    for g in groups {
        if let Some(s) = kb.group(g).and_then(|g| g.stix_id.clone()) {
            m.insert(g.clone(), s);
        }
    }
    m
}

/// The bundle input: techniques, indicators, the top candidates with their STIX confidence,
/// and the incidents with theirs; every object made at `created` and marked `tlp`.
#[allow(clippy::too_many_arguments)]
pub fn input<'a>(
    kb: &ActorKb,
    rs: &Ruleset,
    dets: impl IntoIterator<Item = DetectionRef<'a>>,
    iocs: &[IocDetection],
    attribution: &Attribution,
    summary: &Summary,
    incidents: Option<&Incidents>,
    tlp: Tlp,
    created: DateTime<Utc>,
) -> StixInput {
    // With --from/--to the sightings are of the events in the window: its range.
    let (first_event, last_event) = match &summary.time_window {
        Some(tw) => (tw.first_event, tw.last_event),
        None => (summary.first_event, summary.last_event),
    };
    let mut input = StixInput {
        created,
        tlp,
        attack_ids: BTreeMap::new(),
        attack_versions: BTreeMap::new(),
        first_event,
        last_event,
        techniques: technique_sightings(kb, rs, dets),
        indicators: indicator_sightings(kb, iocs),
        groups: group_attributions(attribution),
        incidents: incidents.map_or_else(Vec::new, |inc| incident_objects(inc, rs)),
    };
    input.attack_ids = attack_ids(kb, &input);
    // Only the versions of the objects the bundle writes.
    let written: std::collections::BTreeSet<&String> = input.attack_ids.values().collect();
    input.attack_versions = attack_versions(kb)
        .into_iter()
        .filter(|(id, _)| written.contains(id))
        .collect();
    input
}
