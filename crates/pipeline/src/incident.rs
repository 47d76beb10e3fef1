//! The incidents stage: detections grouped into incidents (per host by
//! session gap and span cap, then merged across hosts by shared rare
//! entities; `tracehunt-incidents`), each attributed on its own evidence.
//!
//! The whole-collection attribution of [`crate::attribute`] stays
//! available, labelled as an aggregate: on a collection of unrelated hosts
//! and scenarios it mixes evidence that belongs to different intrusions.

use crate::context::Contexts;
use crate::ioc::IocDetection;
use crate::{PipelineError, Scanned};
use std::collections::BTreeSet;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{Attribution, Attributor, Window};
use tracehunt_engine::Ruleset;
use tracehunt_incidents::{Config, EntityKind, Grouper, Grouping, Incident, Names};

/// One incident with what an analyst triages it by.
#[derive(Debug, Clone)]
pub struct IncidentReport {
    /// Hosts, users, entities, time range, level, detection and rule counts.
    pub incident: Incident,
    /// ATT&CK tactics of the incident's rules (`initial-access`, …), sorted.
    pub tactics: Vec<String>,
    /// ATT&CK techniques of the incident's rules, sorted.
    pub techniques: Vec<String>,
    /// Indexes into [`Scanned::ioc_hits`] of the IOC hits inside the incident
    /// (its hosts, its time range plus the session gap).
    pub ioc_hits: Vec<usize>,
    /// The incident's own attribution: its rules' evidence, its IOC hits'
    /// actors, and its time range as the observation window.
    pub attribution: Attribution,
}

/// The incidents of a hunt.
#[derive(Debug, Clone)]
pub struct Incidents {
    /// Incidents in time order (first detection; untimed last), ties by id.
    pub reports: Vec<IncidentReport>,
    /// The grouping parameters used.
    pub config: Config,
    /// Host groups formed before the merges by shared entities.
    pub host_groups: usize,
    /// Merges of host groups by shared entities.
    pub merges: usize,
    /// Entities not used to merge because they occur in more host groups
    /// than `config.entity_ceiling`.
    pub entities_over_ceiling: usize,
    /// IOC hits outside every incident (a host or time without detections).
    pub ioc_hits_outside: usize,
    /// Detection events left without entities because the context table was
    /// full ([`crate::context::CONTEXT_CAP`]; 0: none); then no entity was used.
    pub contexts_capped: u64,
    /// The context table's capacity.
    pub context_cap: usize,
    grouping: Grouping,
}

impl Incidents {
    /// Index into [`Incidents::reports`] of the incident holding a detection
    /// or IOC hit on `host` at `time` (`None` when it is in none).
    pub fn incident_of(
        &self,
        host: Option<&str>,
        time: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Option<usize> {
        self.grouping.incident_of(host, time)
    }

    /// The reports sorted for triage: highest level first, then time, then id.
    pub fn by_severity(&self) -> Vec<&IncidentReport> {
        let mut v: Vec<&IncidentReport> = self.reports.iter().collect();
        v.sort_by(|a, b| {
            let (x, y) = (&a.incident, &b.incident);
            y.max_level
                .cmp(&x.max_level)
                .then_with(|| match (x.first, y.first) {
                    (Some(p), Some(q)) => p.cmp(&q),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| x.id.cmp(&y.id))
        });
        v
    }
}

/// Makes the whole-collection attribution `a` an honest aggregate: with
/// more than one incident it is a verdict only when every incident's top
/// candidate is its top candidate; otherwise `confident` is false and the
/// reason says which candidates the incidents point to (a collection of
/// unrelated hosts and scenarios gets no single verdict).
pub fn aggregate_verdict(incidents: &Incidents, a: &mut Attribution) {
    if incidents.reports.len() <= 1 {
        return;
    }
    let mut tops: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for r in &incidents.reports {
        if let Some(c) = r.attribution.candidates.first() {
            *tops.entry(c.id.as_str()).or_default() += 1;
        }
    }
    let agg_top = a.candidates.first().map(|c| c.id.as_str());
    if tops.len() == 1 && agg_top.is_some_and(|t| tops.contains_key(t)) {
        return;
    }
    let mut by_count: Vec<(&str, usize)> = tops.into_iter().collect();
    by_count.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    let shown: Vec<String> = by_count
        .iter()
        .take(5)
        .map(|(g, n)| format!("{g} in {n}"))
        .collect();
    a.confident = false;
    a.reason = format!(
        "no verdict for the collection as a whole: its {} incidents point to different candidates (top candidate {}{}); see each incident's own attribution. Ranking of all detections together: {}",
        incidents.reports.len(),
        shown.join(", "),
        if by_count.len() > 5 { ", …" } else { "" },
        a.reason
    );
}

/// Names for the grouper: hosts and entities from the context table (plus
/// hosts seen only in IOC hits), rule ids from the ruleset (plus one pseudo
/// rule `ioc:<type>:<value>` per IOC hit, numbered from the ruleset's length).
struct NameTable<'a> {
    cx: &'a Contexts,
    rs: &'a Ruleset,
    /// Hosts of IOC hits unknown to the context table, from `extra_base`.
    extra_hosts: Vec<&'a str>,
    extra_base: u32,
    /// Rule ids of the IOC pseudo rules.
    ioc_rules: Vec<String>,
}

impl Names for NameTable<'_> {
    fn host(&self, id: u32) -> Option<&str> {
        match id.checked_sub(self.extra_base) {
            Some(k) => self.extra_hosts.get(k as usize).copied(),
            None => self.cx.host_name(id),
        }
    }

    fn entity(&self, id: u32) -> (EntityKind, &str) {
        self.cx.entity(id)
    }

    fn rule_id(&self, rule: u32) -> &str {
        match (rule as usize).checked_sub(self.rs.len()) {
            Some(k) => &self.ioc_rules[k],
            None => &self.rs.rule(rule as usize).id,
        }
    }
}

/// Candidates kept per incident attribution (the table shows 1, JSON and
/// STIX 5, the store 5 with 3 sightings).
pub const KEPT_CANDIDATES: usize = 5;

/// Level rank of an IOC hit (reported at level `high`).
const IOC_LEVEL: u8 = 3;

/// Groups the detections of `scanned` and its IOC hits (an IOC hit is a
/// detection too: it joins or opens an incident of its host and time)
/// into incidents with `config` (one pass over the index in output order;
/// memory per open host group, not per detection) and attributes each
/// incident with `kb`.
///
/// # Errors
/// Reading the index back failed.
pub fn group(
    scanned: &Scanned,
    rs: &Ruleset,
    kb: &ActorKb,
    config: Config,
) -> Result<Incidents, PipelineError> {
    group_with(scanned, rs, &Attributor::new(kb), config)
}

/// [`group`] with an attributor built once for the hunt (see
/// [`crate::attribute_with`]). The incidents are attributed in parallel on
/// the caller's rayon pool, each on its own, kept in incident order.
///
/// # Errors
/// Reading the index back failed.
pub fn group_with(
    scanned: &Scanned,
    rs: &Ruleset,
    attributor: &Attributor<'_>,
    config: Config,
) -> Result<Incidents, PipelineError> {
    let cx = scanned.contexts();
    // A full context table gave entities to the detections that came first,
    // which depends on thread scheduling: then no detection's entities are
    // used, so incidents stay a function of the input (grouped by host and
    // time only, no merges across hosts).
    let use_entities = cx.capped() == 0;
    let mut names = NameTable {
        cx,
        rs,
        extra_hosts: Vec::new(),
        extra_base: u32::MAX / 2,
        ioc_rules: Vec::new(),
    };
    // IOC hits in time order (`ioc_hits` is sorted), merged with the
    // detections by time, no time last.
    let mut extra: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    let iocs: Vec<(Option<(i64, u32)>, u32)> = scanned
        .ioc_hits
        .iter()
        .map(|h| {
            let host = match h.computer.as_deref() {
                None => tracehunt_incidents::NO_HOST,
                Some(name) => cx.host_id_of(name).unwrap_or_else(|| {
                    *extra.entry(name).or_insert_with(|| {
                        names.extra_hosts.push(name);
                        names.extra_base + names.extra_hosts.len() as u32 - 1
                    })
                }),
            };
            names
                .ioc_rules
                .push(format!("ioc:{}:{}", h.hit.kind.as_str(), h.hit.value));
            let t = h
                .timestamp
                .map(|t| (t.timestamp(), t.timestamp_subsec_nanos()));
            (t, host)
        })
        .collect();
    let later = |a: Option<(i64, u32)>, b: Option<(i64, u32)>| match (a, b) {
        (Some(x), Some(y)) => x > y,
        (None, Some(_)) => true,
        _ => false,
    };
    let mut grouper = Grouper::new(config);
    let mut next_ioc = 0;
    let mut push_iocs_before = |g: &mut Grouper, t: Option<Option<(i64, u32)>>| {
        while let Some(&(it, host)) = iocs.get(next_ioc) {
            if t.is_some_and(|t| !later(t, it)) {
                break;
            }
            g.push(it, host, (rs.len() + next_ioc) as u32, IOC_LEVEL, &[]);
            next_ioc += 1;
        }
    };
    let mut pass = scanned.entries();
    for e in pass.by_ref() {
        push_iocs_before(&mut grouper, Some(e.time_parts()));
        let ctx = e.context();
        grouper.push(
            e.time_parts(),
            cx.host_id(ctx),
            e.rule() as u32,
            rs.rule(e.rule()).level_rank,
            if use_entities { cx.entities(ctx) } else { &[] },
        );
    }
    pass.finish().map_err(PipelineError::Index)?;
    push_iocs_before(&mut grouper, None);
    let grouping = grouper.finish(&names);
    // IOC hits join the incident of their host and time.
    let mut ioc_of: Vec<Vec<usize>> = vec![Vec::new(); grouping.incidents.len()];
    let mut outside = 0;
    for (i, h) in scanned.ioc_hits.iter().enumerate() {
        match grouping.incident_of(h.computer.as_deref(), h.timestamp) {
            Some(k) => ioc_of[k].push(i),
            None => outside += 1,
        }
    }
    use rayon::prelude::*;
    let reports = grouping
        .incidents
        .par_iter()
        .zip(ioc_of)
        .map(|(inc, ioc_hits)| report(attributor, rs, inc, ioc_hits, &scanned.ioc_hits))
        .collect();
    Ok(Incidents {
        reports,
        config,
        host_groups: grouping.host_groups,
        merges: grouping.merges,
        entities_over_ceiling: grouping.entities_over_ceiling,
        ioc_hits_outside: outside,
        contexts_capped: cx.capped(),
        context_cap: cx.cap(),
        grouping,
    })
}

/// One incident's tactics, techniques and attribution.
fn report(
    attributor: &Attributor<'_>,
    rs: &Ruleset,
    inc: &Incident,
    ioc_hits: Vec<usize>,
    all_iocs: &[IocDetection],
) -> IncidentReport {
    // The IOC pseudo rules leave the rule list: IOC hits are listed apart.
    let mut inc = inc.clone();
    let ioc_detections: u64 = inc
        .rules
        .iter()
        .filter(|(r, _)| *r as usize >= rs.len())
        .map(|(_, n)| n)
        .sum();
    inc.rules.retain(|(r, _)| (*r as usize) < rs.len());
    inc.detections -= ioc_detections;
    let mut tactics = BTreeSet::new();
    let mut techniques = BTreeSet::new();
    for &(r, _) in &inc.rules {
        let m = rs.rule(r as usize);
        tactics.extend(m.tactics.iter().cloned());
        techniques.extend(m.techniques.iter().cloned());
    }
    let rules = inc
        .rules
        .iter()
        .flat_map(|&(r, n)| std::iter::repeat_n(r as usize, n as usize));
    let mut observed = crate::evidence(rs, rules);
    let hits: Vec<IocDetection> = ioc_hits.iter().map(|&i| all_iocs[i].clone()).collect();
    observed.iocs = crate::ioc::observations(&hits);
    let window = match (inc.first, inc.last) {
        (Some(f), Some(l)) => Window::from_dates(&f.to_rfc3339(), &l.to_rfc3339()),
        _ => None,
    };
    let mut attribution = attributor.attribute_in(&observed, window);
    // Only the top candidates are shown or stored; the full ranking of every
    // group cost ~40 KB per incident (a breaker's 20,000 hosts: 837 MB).
    attribution.candidates.truncate(KEPT_CANDIDATES);
    // `truncate` keeps the capacity: without this every incident held room
    // for every matched group (~40 KB each; 6 MB of the EVTX bench's peak).
    attribution.candidates.shrink_to_fit();
    IncidentReport {
        incident: inc,
        tactics: tactics.into_iter().collect(),
        techniques: techniques.into_iter().collect(),
        ioc_hits,
        attribution,
    }
}
