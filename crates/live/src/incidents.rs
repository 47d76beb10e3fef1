//! Incidents as they form: a detection joins the open incident of its host
//! (within the session gap and span cap) or of another host it shares a
//! rare entity with, or opens one. The same rules as the batch grouping
//! (`tracehunt-incidents`: host sessions, merges on rare shared entities,
//! a cardinality ceiling), applied online: two incidents that are already
//! open are never merged afterwards, and an incident's id comes from its
//! first detection (host, time, rule), so it is stable while it grows.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tracehunt_attribution::{Attribution, EvidenceSet, Observation, TagObservation};
use tracehunt_engine::RuleMeta;
use tracehunt_incidents::EntityKind;
use tracehunt_pipeline::ioc::IocDetection;

/// How detections are grouped (the batch `hunt`'s flags and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentConfig {
    /// A host's detections further apart than this (seconds) start a new incident.
    pub session_gap_secs: i64,
    /// Longest time (seconds) one incident may span on one host.
    pub max_span_secs: i64,
    /// An entity in more open incidents' hosts than this links none of them.
    pub entity_ceiling: usize,
    /// Most incidents open at once; beyond it the least recently active closes.
    pub max_open: usize,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            session_gap_secs: 3600,
            max_span_secs: 86_400,
            entity_ceiling: 8,
            max_open: 10_000,
        }
    }
}

/// Most entities and IOC hits one incident keeps (attribution evidence and output).
const KEEP: usize = 64;

/// One rule's share of an incident.
#[derive(Debug, Clone)]
pub(crate) struct RuleStat {
    pub(crate) title: String,
    pub(crate) level: &'static str,
    pub(crate) count: u64,
    pub(crate) techniques: Vec<String>,
    pub(crate) tactics: Vec<String>,
    /// Software ids with where each came from (`tag attack.s0002`, `folder "Turla"`).
    pub(crate) software: Vec<(String, String)>,
    /// Group ids, likewise.
    pub(crate) groups: Vec<(String, String)>,
}

/// An open incident.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) id: String,
    pub(crate) hosts: Vec<String>,
    pub(crate) first: Option<DateTime<Utc>>,
    pub(crate) last: Option<DateTime<Utc>>,
    /// By rule id.
    pub(crate) rules: BTreeMap<String, RuleStat>,
    pub(crate) detections: u64,
    pub(crate) max_rank: u8,
    pub(crate) entities: BTreeSet<(EntityKind, String)>,
    pub(crate) iocs: Vec<IocDetection>,
    pub(crate) ioc_hits: u64,
    pub(crate) attribution: Option<Attribution>,
    /// Opened since the last emission.
    pub(crate) new: bool,
    /// Hosts, rules or IOC hits changed since the last emission (re-attribute).
    pub(crate) evidence_changed: bool,
    /// Anything changed since the last emission.
    pub(crate) changed: bool,
}

impl Open {
    /// Counts one rule hit.
    pub(crate) fn add_rule(&mut self, m: &RuleMeta, t: Option<DateTime<Utc>>) {
        self.widen(t);
        self.detections += 1;
        self.max_rank = self.max_rank.max(m.level_rank);
        self.changed = true;
        match self.rules.get_mut(&m.id) {
            Some(r) => r.count += 1,
            None => {
                self.evidence_changed = true;
                self.rules.insert(
                    m.id.clone(),
                    RuleStat {
                        title: m.title.clone(),
                        level: m.level,
                        count: 1,
                        techniques: m.techniques.clone(),
                        tactics: m.tactics.clone(),
                        // Tags, then names from the rule's folder/title
                        // (`Loaded::resolve_names`, issue #18 item 5).
                        software: tag_and_named(&m.software, m, false),
                        groups: tag_and_named(&m.groups, m, true),
                    },
                );
            }
        }
    }

    /// Counts one IOC hit (level high, as in a batch hunt).
    pub(crate) fn add_ioc(&mut self, d: &IocDetection) {
        self.widen(d.timestamp);
        self.ioc_hits += 1;
        self.max_rank = self.max_rank.max(3);
        self.changed = true;
        let known = self
            .iocs
            .iter()
            .any(|k| k.hit.kind == d.hit.kind && k.hit.value == d.hit.value);
        if !known && self.iocs.len() < KEEP {
            let mut slim = d.clone();
            slim.fields = Vec::new();
            self.iocs.push(slim);
            self.evidence_changed = true;
        }
    }

    fn widen(&mut self, t: Option<DateTime<Utc>>) {
        if let Some(t) = t {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
    }

    /// The attribution evidence of the incident: per technique, software
    /// and group tag the rules that showed it and their detections; the
    /// IOC hits' actors.
    pub(crate) fn evidence(&self) -> EvidenceSet {
        type Tags = BTreeMap<String, (Vec<String>, Vec<String>, u64, Vec<String>)>;
        let (mut tech, mut soft, mut grp): (Tags, Tags, Tags) = Default::default();
        let add = |map: &mut Tags, t: &str, rule: &str, r: &RuleStat, origin: Option<&String>| {
            let e = map.entry(t.to_owned()).or_default();
            if !e.0.iter().any(|x| x == rule) {
                e.0.push(rule.to_owned());
                e.1.push(r.title.clone());
                e.2 += r.count;
            }
            if let Some(o) = origin.filter(|o| !e.3.contains(o)) {
                e.3.push(o.clone());
            }
        };
        for (id, r) in &self.rules {
            for t in &r.techniques {
                add(&mut tech, t, id, r, None);
            }
            for (list, map) in [(&r.software, &mut soft), (&r.groups, &mut grp)] {
                for (t, origin) in list {
                    add(map, t, id, r, Some(origin));
                }
            }
        }
        let tags = |m: Tags| -> Vec<TagObservation> {
            m.into_iter()
                .map(
                    |(id, (rule_ids, rule_titles, events, origins))| TagObservation {
                        id,
                        rule_ids,
                        rule_titles,
                        events,
                        origins,
                    },
                )
                .collect()
        };
        EvidenceSet {
            techniques: tech
                .into_iter()
                .map(
                    |(technique, (rule_ids, rule_titles, events, _))| Observation {
                        technique,
                        rule_ids,
                        rule_titles,
                        events,
                    },
                )
                .collect(),
            software: tags(soft),
            groups: tags(grp),
            iocs: tracehunt_pipeline::ioc::observations(&self.iocs),
        }
    }
}

/// A rule's tagged software (`groups` false) or group ids plus those it names in its
/// emerging-threats folder or title ([`RuleMeta::named`]), each with its origin as the batch
/// hunt words it (`tracehunt_pipeline::evidence`: `tag attack.s0002`, `folder "Turla"`,
/// `title "Emotet"`); an id both tagged and named keeps both origins.
fn tag_and_named(tagged: &[String], m: &RuleMeta, groups: bool) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = tagged
        .iter()
        .map(|t| (t.clone(), format!("tag attack.{}", t.to_ascii_lowercase())))
        .collect();
    for r in m.named.iter().filter(|r| r.is_group() == groups) {
        ids.push((
            r.id.clone(),
            format!("{} \"{}\"", r.origin.as_str(), r.name),
        ));
    }
    ids
}

/// The open incidents and the indexes that place a detection.
#[derive(Debug, Default)]
pub(crate) struct LiveIncidents {
    cfg: IncidentConfig,
    slots: Vec<Option<Open>>,
    free: Vec<usize>,
    by_host: HashMap<String, usize>,
    /// Entities of open incidents: the incidents holding each, and on how
    /// many hosts it was seen among them.
    by_entity: HashMap<(EntityKind, String), (Vec<usize>, BTreeSet<String>)>,
    pub(crate) opened: u64,
    pub(crate) closed: u64,
    /// Slots placed into since the last [`LiveIncidents::changed`].
    touched: Vec<usize>,
    /// The event time `close_idle` last scanned at.
    idle_scan: Option<DateTime<Utc>>,
}

/// The content id of an incident opened by a detection of `rule_id` on
/// `host` at `t`: `inc-` and the first 16 hex digits of the SHA-256 of the
/// three, NUL-separated.
pub fn incident_id(host: &str, t: Option<DateTime<Utc>>, rule_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(host.as_bytes());
    h.update([0]);
    h.update(t.map(|t| t.to_rfc3339()).unwrap_or_default().as_bytes());
    h.update([0]);
    h.update(rule_id.as_bytes());
    let d = h.finalize();
    let mut s = String::from("inc-");
    for b in &d[..8] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl LiveIncidents {
    pub(crate) fn new(cfg: IncidentConfig) -> Self {
        LiveIncidents {
            cfg,
            ..Default::default()
        }
    }

    /// Incidents open now.
    pub(crate) fn open_count(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub(crate) fn get_mut(&mut self, slot: usize) -> &mut Open {
        self.slots[slot].as_mut().expect("open slot")
    }

    /// Open incidents that changed since the last call (each once, in
    /// the order they were first touched); the caller clears their flags.
    pub(crate) fn changed(&mut self) -> Vec<&mut Open> {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        let mut out = Vec::new();
        let mut rest: &mut [Option<Open>] = &mut self.slots;
        let mut base = 0;
        for s in touched {
            let tail = std::mem::take(&mut rest);
            let Some((_, after)) = tail.split_at_mut_checked(s - base) else {
                break;
            };
            let Some((slot, after)) = after.split_first_mut() else {
                break;
            };
            if let Some(o) = slot.as_mut().filter(|o| o.changed) {
                out.push(o);
            }
            rest = after;
            base = s + 1;
        }
        out
    }

    fn fits(&self, o: &Open, t: Option<DateTime<Utc>>) -> bool {
        let (Some(t), Some(first), Some(last)) = (t, o.first, o.last) else {
            return true;
        };
        let gap = chrono::Duration::seconds(self.cfg.session_gap_secs);
        let span = chrono::Duration::seconds(self.cfg.max_span_secs);
        // Checked: times at the edge of the calendar must not overflow
        // (breaker finding: a `+262142-12-31` event panicked the stage).
        last.checked_add_signed(gap).is_none_or(|x| t <= x)
            && first.checked_sub_signed(gap).is_none_or(|x| t >= x)
            && t.signed_duration_since(first) <= span
            && last.signed_duration_since(t) <= span
    }

    /// The incident a detection on `host` at `t` with `entities` belongs
    /// to, opening one (id from `rule_id`) when none fits. `out` receives
    /// incidents closed to make room (beyond `max_open`).
    pub(crate) fn place(
        &mut self,
        host: Option<&str>,
        t: Option<DateTime<Utc>>,
        entities: &[(EntityKind, String)],
        rule_id: &str,
        out: &mut Vec<Open>,
    ) -> usize {
        let host = host.unwrap_or("");
        if let Some(&s) = self.by_host.get(host) {
            if self.fits(self.slots[s].as_ref().expect("open"), t) {
                self.note_entities(s, host, entities);
                self.touched.push(s);
                return s;
            }
            // The host's session ended: that incident closes.
            out.push(self.close(s));
        }
        // A rare entity shared with another host's open incident.
        let linked = entities
            .iter()
            .filter(|(k, _)| !matches!(k, EntityKind::LogonId | EntityKind::ProcessGuid))
            .filter_map(|e| self.by_entity.get(e))
            .filter(|(_, hosts)| hosts.len() < self.cfg.entity_ceiling)
            .flat_map(|(slots, _)| slots.iter().copied())
            .find(|&s| self.slots[s].as_ref().is_some_and(|o| self.fits(o, t)));
        let s = match linked {
            Some(s) => {
                let o = self.get_mut(s);
                o.hosts.push(host.to_owned());
                o.evidence_changed = true;
                o.changed = true;
                s
            }
            None => {
                if self.slots.len() - self.free.len() >= self.cfg.max_open {
                    self.close_least_recent(out);
                }
                let o = Open {
                    id: incident_id(host, t, rule_id),
                    hosts: vec![host.to_owned()],
                    first: t,
                    last: t,
                    rules: BTreeMap::new(),
                    detections: 0,
                    max_rank: 0,
                    entities: BTreeSet::new(),
                    iocs: Vec::new(),
                    ioc_hits: 0,
                    attribution: None,
                    new: true,
                    evidence_changed: true,
                    changed: true,
                };
                self.opened += 1;
                match self.free.pop() {
                    Some(s) => {
                        self.slots[s] = Some(o);
                        s
                    }
                    None => {
                        self.slots.push(Some(o));
                        self.slots.len() - 1
                    }
                }
            }
        };
        self.by_host.insert(host.to_owned(), s);
        self.note_entities(s, host, entities);
        self.touched.push(s);
        s
    }

    fn note_entities(&mut self, s: usize, host: &str, entities: &[(EntityKind, String)]) {
        for e in entities {
            let o = self.slots[s].as_mut().expect("open");
            if o.entities.len() >= KEEP && !o.entities.contains(e) {
                continue;
            }
            if o.entities.insert(e.clone()) {
                o.changed = true;
            }
            if matches!(e.0, EntityKind::LogonId | EntityKind::ProcessGuid) {
                continue;
            }
            let (slots, hosts) = self.by_entity.entry(e.clone()).or_default();
            if !slots.contains(&s) {
                slots.push(s);
            }
            if hosts.len() <= self.cfg.entity_ceiling {
                hosts.insert(host.to_owned());
            }
        }
    }

    /// At the open-incident cap: closes the least recently active tenth
    /// (at least one) in one pass, so a flood of new hosts costs O(1)
    /// amortised per incident rather than a scan each.
    fn close_least_recent(&mut self, out: &mut Vec<Open>) {
        let mut by_age: Vec<(Option<DateTime<Utc>>, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().map(|o| (o.last, i)))
            .collect();
        let n = (by_age.len() / 10).max(1).min(by_age.len());
        if n < by_age.len() {
            by_age.select_nth_unstable(n);
        }
        let mut oldest: Vec<(Option<DateTime<Utc>>, usize)> = by_age[..n].to_vec();
        oldest.sort_unstable();
        for (_, s) in oldest {
            out.push(self.close(s));
        }
    }

    /// Closes slot `s`: its host and entity links go.
    fn close(&mut self, s: usize) -> Open {
        let o = self.slots[s].take().expect("open slot");
        self.free.push(s);
        for h in &o.hosts {
            if self.by_host.get(h) == Some(&s) {
                self.by_host.remove(h);
            }
        }
        for e in &o.entities {
            if let Some((slots, _)) = self.by_entity.get_mut(e) {
                slots.retain(|&x| x != s);
                if slots.is_empty() {
                    self.by_entity.remove(e);
                }
            }
        }
        self.closed += 1;
        o
    }

    /// Closes every incident idle for longer than the session gap at event
    /// time `clock`.
    pub(crate) fn close_idle(&mut self, clock: DateTime<Utc>, out: &mut Vec<Open>) {
        // A scan of every open incident, at most once per second of event
        // time (an incident closes up to a second after its gap ends).
        if self.idle_scan.is_some_and(|t| {
            clock >= t
                && t.checked_add_signed(chrono::Duration::seconds(1))
                    .is_none_or(|x| clock < x)
        }) {
            return;
        }
        self.idle_scan = Some(clock);
        let gap = chrono::Duration::seconds(self.cfg.session_gap_secs);
        let idle: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                o.as_ref()
                    .filter(|o| {
                        o.last
                            .is_some_and(|l| l.checked_add_signed(gap).is_some_and(|x| x < clock))
                    })
                    .map(|_| i)
            })
            .collect();
        for s in idle {
            out.push(self.close(s));
        }
    }

    /// Closes all (end of the live hunt).
    pub(crate) fn close_all(&mut self, out: &mut Vec<Open>) {
        for s in 0..self.slots.len() {
            if self.slots[s].is_some() {
                out.push(self.close(s));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue #18 leftover): the live path dropped where a software or group came
    /// from (`tag attack.g0010`, `folder "Turla"`), so watch-mode evidence lines had no origin
    /// while the batch hunt's had. Both now build the same origins for the same rules.
    #[test]
    fn live_evidence_keeps_tag_and_name_origins_like_the_batch_hunt() {
        use tracehunt_engine::{NameOrigin, NamedRef};
        let turla = "title: Turla service\nid: 5f0c3a35-0000-4000-8000-0000000000a1\n\
                     logsource: {product: windows, service: system}\n\
                     detection: {sel: {EventID: 7045}, condition: sel}\n\
                     tags: [attack.g0010, attack.t1543.003]\nlevel: high\n";
        let emotet = "title: Emotet run\nid: 5f0c3a35-0000-4000-8000-0000000000a2\n\
                      logsource: {product: windows, category: process_creation}\n\
                      detection: {sel: {Image|endswith: x.exe}, condition: sel}\nlevel: high\n";
        let mut loaded =
            tracehunt_pipeline::Loaded::from_yaml(&[("t.yml", turla), ("e.yml", emotet)]);
        let named = |id: &str, name: &str, origin| NamedRef {
            id: id.into(),
            name: name.into(),
            origin,
        };
        loaded.ruleset.set_named(
            0,
            vec![
                named("G0010", "Turla", NameOrigin::Folder),
                named("G0010", "Turla", NameOrigin::Title),
            ],
        );
        loaded
            .ruleset
            .set_named(1, vec![named("S0367", "Emotet", NameOrigin::Title)]);
        let rs = &loaded.ruleset;
        let mut li = LiveIncidents::new(IncidentConfig::default());
        let mut closed = Vec::new();
        let at = t("2024-01-01T10:00:00Z");
        let slot = li.place(Some("WS1"), at, &[], &rs.rule(0).id, &mut closed);
        for r in [0, 0, 1] {
            li.get_mut(slot).add_rule(rs.rule(r), at);
        }
        let live = li.get_mut(slot).evidence();
        let batch = tracehunt_pipeline::evidence(rs, [0, 0, 1]);
        assert_eq!(live.groups.len(), 1);
        assert_eq!(
            (live.groups[0].id.as_str(), live.groups[0].events),
            ("G0010", 2)
        );
        assert_eq!(
            live.groups[0].origins,
            ["tag attack.g0010", "folder \"Turla\"", "title \"Turla\""]
        );
        assert_eq!(live.software[0].origins, ["title \"Emotet\""]);
        for (l, b) in live
            .groups
            .iter()
            .chain(&live.software)
            .zip(batch.groups.iter().chain(&batch.software))
        {
            assert_eq!((&l.id, &l.origins, l.events), (&b.id, &b.origins, b.events));
        }
    }

    fn t(s: &str) -> Option<DateTime<Utc>> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn host_session_joins_within_gap_and_opens_after_it() {
        let mut li = LiveIncidents::new(IncidentConfig::default());
        let mut closed = Vec::new();
        let a = li.place(
            Some("WS1"),
            t("2024-01-01T10:00:00Z"),
            &[],
            "r1",
            &mut closed,
        );
        li.get_mut(a).widen(t("2024-01-01T10:00:00Z"));
        let b = li.place(
            Some("WS1"),
            t("2024-01-01T10:59:00Z"),
            &[],
            "r2",
            &mut closed,
        );
        assert_eq!(a, b);
        li.get_mut(b).widen(t("2024-01-01T10:59:00Z"));
        assert!(closed.is_empty());
        // 1 h 1 min after the last detection: a new incident, the old one closed.
        let c = li.place(
            Some("WS1"),
            t("2024-01-01T12:00:00Z"),
            &[],
            "r3",
            &mut closed,
        );
        assert_eq!(closed.len(), 1);
        assert_eq!(
            closed[0].id,
            incident_id("WS1", t("2024-01-01T10:00:00Z"), "r1")
        );
        assert_ne!(li.get_mut(c).id, closed[0].id);
        assert_eq!((li.opened, li.closed), (2, 1));
    }

    #[test]
    fn rare_shared_entity_joins_another_hosts_incident_common_one_does_not() {
        let cfg = IncidentConfig {
            entity_ceiling: 2,
            ..IncidentConfig::default()
        };
        let mut li = LiveIncidents::new(cfg);
        let mut closed = Vec::new();
        let ip = (EntityKind::Ip, "10.1.2.3".to_owned());
        let a = li.place(
            Some("A"),
            t("2024-01-01T10:00:00Z"),
            std::slice::from_ref(&ip),
            "r",
            &mut closed,
        );
        li.get_mut(a).widen(t("2024-01-01T10:00:00Z"));
        let b = li.place(
            Some("B"),
            t("2024-01-01T10:10:00Z"),
            std::slice::from_ref(&ip),
            "r",
            &mut closed,
        );
        assert_eq!(a, b, "B joins A's incident through the shared IP");
        assert_eq!(li.get_mut(a).hosts, ["A", "B"]);
        // Now the IP is on 2 hosts = the ceiling: a third host opens its own.
        let c = li.place(
            Some("C"),
            t("2024-01-01T10:20:00Z"),
            &[ip],
            "r",
            &mut closed,
        );
        assert_ne!(a, c);
    }

    #[test]
    fn idle_incidents_close_at_the_gap() {
        let mut li = LiveIncidents::new(IncidentConfig::default());
        let mut closed = Vec::new();
        let a = li.place(Some("A"), t("2024-01-01T10:00:00Z"), &[], "r", &mut closed);
        li.get_mut(a).widen(t("2024-01-01T10:00:00Z"));
        li.close_idle("2024-01-01T10:59:59Z".parse().unwrap(), &mut closed);
        assert!(closed.is_empty());
        li.close_idle("2024-01-01T11:00:01Z".parse().unwrap(), &mut closed);
        assert_eq!(closed.len(), 1);
        assert_eq!(li.open_count(), 0);
    }

    #[test]
    fn a_flood_of_hosts_stays_under_the_open_cap_closing_the_least_recent() {
        let cfg = IncidentConfig {
            max_open: 10,
            ..IncidentConfig::default()
        };
        let mut li = LiveIncidents::new(cfg);
        let mut closed = Vec::new();
        for i in 0..25u32 {
            let at = t(&format!("2024-01-01T10:{i:02}:00Z"));
            let s = li.place(Some(&format!("H{i}")), at, &[], "r", &mut closed);
            li.get_mut(s).widen(at);
            assert!(li.open_count() <= 10);
        }
        assert_eq!(li.open_count() + closed.len(), 25);
        // The closed ones are the oldest hosts, in order.
        let hosts: Vec<&str> = closed.iter().map(|o| o.hosts[0].as_str()).collect();
        let want: Vec<String> = (0..closed.len()).map(|i| format!("H{i}")).collect();
        assert_eq!(hosts, want);
        // Each open incident was touched once: changed() lists each once.
        let changed = li.changed().len();
        assert_eq!(changed, li.open_count());
        assert!(li.changed().is_empty(), "touched list drained");
    }
}
