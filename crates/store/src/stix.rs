//! The store as a STIX 2.1 bundle ([`Store::export_stix`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value as J};
use tracehunt_report::{ioc_pattern, stix_id, Tlp};

use crate::read::{max_opt, min_opt, IncidentRow};
use crate::{Result, Store};

/// STIX timestamp: UTC, millisecond precision.
fn ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn secs(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "unknown".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// A sighting of a group with what the export needs of its incident.
struct Sighting {
    stix_id: String,
    group_id: String,
    group_name: String,
    incident: String,
    rank: u32,
    confidence: u8,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
}

/// An indicator with its hits aggregated.
struct Indicator {
    stix_id: String,
    kind: String,
    value: String,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
    feeds: BTreeSet<String>,
    hosts: BTreeSet<String>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    hits: u64,
    hits_fp: u64,
}

/// Object builder: the common properties, `created_by_ref` the tracehunt identity,
/// `object_marking_refs` the TLP marking.
struct Objects<'a> {
    tool: String,
    marking: &'static str,
    attack_ids: &'a BTreeMap<String, String>,
    list: Vec<J>,
}

impl Objects<'_> {
    /// ATT&CK's STIX id of group `g` when known, else the tracehunt one.
    fn group_ref(&self, g: &str) -> String {
        self.attack_ids
            .get(g)
            .filter(|s| s.starts_with("intrusion-set--"))
            .cloned()
            .unwrap_or_else(|| stix_id("intrusion-set", g))
    }

    fn common(
        &self,
        ty: &str,
        id: &str,
        created: DateTime<Utc>,
        modified: DateTime<Utc>,
    ) -> Map<String, J> {
        let mut m = Map::new();
        m.insert("type".into(), json!(ty));
        m.insert("spec_version".into(), json!("2.1"));
        m.insert("id".into(), json!(id));
        if id != self.tool {
            m.insert("created_by_ref".into(), json!(self.tool));
        }
        m.insert("created".into(), json!(ms(created)));
        m.insert("modified".into(), json!(ms(modified.max(created))));
        m.insert("object_marking_refs".into(), json!([self.marking]));
        m
    }

    fn push(&mut self, o: Map<String, J>) {
        self.list.push(J::Object(o));
    }
}

fn host_id(h: &str) -> String {
    stix_id("identity", &format!("host|{h}"))
}

impl Store {
    /// The store as one STIX 2.1 bundle (only standard properties: it parses with
    /// `stix2.parse(text, allow_custom=False)`):
    ///
    /// - `identity` "tracehunt" (`created_by_ref` of everything else) and one `identity`
    ///   (class `system`) per host of a sighted incident — the hunt bundle's ids
    ///   (`stix_id("identity", "host|WS1")`);
    /// - one `incident` per stored incident: `name` "tracehunt incident <id>", `description`
    ///   with its times, hosts, users, detections, level, techniques and verdict (STIX 2.1
    ///   incidents have no time properties), `kill_chain_phases` from its tactics
    ///   (`mitre-attack`); a false-positive incident has `labels: ["false-positive"]`;
    /// - one `intrusion-set` per sighted group (`stix_id("intrusion-set", "G0009")`, as the
    ///   hunt's bundle), with the ATT&CK external reference for `G…` ids;
    /// - one `sighting` per stored sighting: `sighting_of_ref` the intrusion set,
    ///   `where_sighted_refs` the incident's host identities (the tracehunt identity when it
    ///   has none), `first_seen`/`last_seen` when known, `count` = the incident's detections
    ///   (at least 1), `confidence`, a `description` naming the incident; plus one
    ///   `relationship` `related-to` incident → intrusion set with the same confidence (STIX
    ///   2.1 specifies no incident relationships; `related-to` is always valid). Sightings of
    ///   false-positive incidents are **kept**, with `confidence: 0` and a description saying
    ///   so (negative sightings), as are their relationships;
    /// - one `indicator` per stored indicator STIX patterning can express
    ///   ([`tracehunt_report::ioc_pattern`]: hashes, domain, url, ip), `valid_from` its first
    ///   storage, and one `sighting` of it (id `stix_id("sighting", "indicator|type|value")`)
    ///   over its hits: `count` = hits outside false-positive incidents (all hits, with
    ///   `confidence: 0`, when every hit is in one).
    ///
    /// Ids come from the store; `created` is the start of the hunt that first stored the
    /// object, `modified` that of the last hunt that updated it (or the false-positive change,
    /// if later). So two exports of the same store are byte-identical, whatever `now` is:
    /// `now` is only the identity's timestamp when no hunt is stored. The identity's and host
    /// identities' timestamps are the first hunt's start. Errors as [`Store::incidents`].
    ///
    /// Every object is marked TLP:AMBER ([`Tlp::default`]) and intrusion sets have tracehunt
    /// ids; [`Store::export_stix_with`] chooses the marking and ATT&CK's own ids.
    pub fn export_stix(&self, now: DateTime<Utc>) -> Result<J> {
        self.export_stix_with(now, Tlp::default(), &BTreeMap::new())
    }

    /// [`Store::export_stix`] with every object marked `tlp` (its TLP 2.0 `marking-definition`
    /// is the bundle's first object) and each intrusion set under ATT&CK's own STIX id from
    /// `attack_ids` (ATT&CK group id `G0009` → `intrusion-set--…`; a group not there keeps its
    /// tracehunt id), so a CTI platform merges it with the ATT&CK group it holds. Errors as
    /// [`Store::incidents`].
    pub fn export_stix_with(
        &self,
        now: DateTime<Utc>,
        tlp: Tlp,
        attack_ids: &BTreeMap<String, String>,
    ) -> Result<J> {
        let epoch = self.hunts()?.first().map_or(now, |h| h.started_at);
        let mut objs = Objects {
            tool: stix_id("identity", "tracehunt"),
            marking: tlp.marking_id(),
            attack_ids,
            list: vec![tlp.marking_definition()],
        };
        let mut me = objs.common("identity", &objs.tool.clone(), epoch, epoch);
        me.insert("name".into(), json!("tracehunt"));
        me.insert("identity_class".into(), json!("system"));
        objs.push(me);

        let incidents: BTreeMap<String, IncidentRow> = self
            .incidents(None)?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let sightings = self.group_sightings()?;
        let indicators = self.indicators_for_export()?;

        let hosts: BTreeSet<&str> = sightings
            .iter()
            .filter_map(|s| incidents.get(&s.incident))
            .flat_map(|i| i.hosts.iter().map(String::as_str))
            .chain(
                indicators
                    .iter()
                    .flat_map(|i| i.hosts.iter().map(String::as_str)),
            )
            .collect();
        for h in &hosts {
            let mut o = objs.common("identity", &host_id(h), epoch, epoch);
            o.insert("name".into(), json!(h));
            o.insert("identity_class".into(), json!("system"));
            objs.push(o);
        }
        intrusion_sets(&mut objs, &sightings);
        for i in incidents.values() {
            incident(&mut objs, i);
        }
        for s in &sightings {
            if let Some(i) = incidents.get(&s.incident) {
                group_sighting(&mut objs, s, i);
            }
        }
        for i in &indicators {
            indicator(&mut objs, i);
        }
        let ids: Vec<&str> = objs.list.iter().filter_map(|o| o["id"].as_str()).collect();
        Ok(json!({
            "type": "bundle",
            "id": stix_id("bundle", &ids.join(",")),
            "objects": objs.list,
        }))
    }

    fn group_sightings(&self) -> Result<Vec<Sighting>> {
        self.rows(
            "list sightings",
            "SELECT s.stix_id, s.group_id, s.group_name, s.incident_id, s.rank, s.confidence, \
             s.first_seen, s.last_seen, s.created_at, \
             max(s.updated_at, coalesce(i.false_positive_at, '')) \
             FROM sightings s JOIN incidents i ON i.id = s.incident_id \
             ORDER BY s.group_id, s.incident_id",
            [],
            |c| {
                Ok(Sighting {
                    stix_id: c.get(0, "sightings.stix_id")?,
                    group_id: c.get(1, "sightings.group_id")?,
                    group_name: c.get(2, "sightings.group_name")?,
                    incident: c.get(3, "sightings.incident_id")?,
                    rank: c.get(4, "sightings.rank")?,
                    confidence: c.get(5, "sightings.confidence")?,
                    first: c.time(6, "sightings.first_seen")?,
                    last: c.time(7, "sightings.last_seen")?,
                    created: c.time_req(8, "sightings.created_at")?,
                    modified: c.time_req(9, "sightings.updated_at")?,
                })
            },
        )
    }

    fn indicators_for_export(&self) -> Result<Vec<Indicator>> {
        let mut out: Vec<Indicator> = Vec::new();
        let rows = self.rows(
            "list IOC hits",
            "SELECT n.stix_id, n.indicator_type, n.value, n.created_at, h.feed, h.host, h.time, \
             coalesce(i.false_positive, 0), r.started_at \
             FROM indicators n JOIN ioc_hits h \
             ON h.indicator_type = n.indicator_type AND h.value = n.value \
             JOIN hunt_runs r ON r.id = h.hunt_id \
             LEFT JOIN incidents i ON i.id = h.incident_id \
             ORDER BY n.indicator_type, n.value, h.id",
            [],
            |c| {
                Ok((
                    c.get::<String>(0, "indicators.stix_id")?,
                    c.get::<String>(1, "indicators.indicator_type")?,
                    c.get::<String>(2, "indicators.value")?,
                    c.time_req(3, "indicators.created_at")?,
                    c.get::<String>(4, "ioc_hits.feed")?,
                    c.get::<Option<String>>(5, "ioc_hits.host")?,
                    c.time(6, "ioc_hits.time")?,
                    c.get::<bool>(7, "incidents.false_positive")?,
                    c.time_req(8, "hunt_runs.started_at")?,
                ))
            },
        )?;
        for (stix_id, kind, value, created, feed, host, time, fp, hunt) in rows {
            if out.last().is_none_or(|i| i.stix_id != stix_id) {
                out.push(Indicator {
                    stix_id,
                    kind,
                    value,
                    created,
                    modified: created,
                    feeds: BTreeSet::new(),
                    hosts: BTreeSet::new(),
                    first: None,
                    last: None,
                    hits: 0,
                    hits_fp: 0,
                });
            }
            let i = out.last_mut().expect("pushed above");
            i.modified = i.modified.max(hunt);
            i.feeds.insert(feed);
            i.hosts.extend(host);
            i.first = min_opt(i.first, time);
            i.last = max_opt(i.last, time);
            i.hits += 1;
            i.hits_fp += u64::from(fp);
        }
        Ok(out)
    }
}

fn intrusion_sets(objs: &mut Objects, sightings: &[Sighting]) {
    // Sightings are sorted by group: one object per run of a group.
    let mut start = 0;
    while start < sightings.len() {
        let g = &sightings[start].group_id;
        let end = start
            + sightings[start..]
                .iter()
                .take_while(|s| &s.group_id == g)
                .count();
        let run = &sightings[start..end];
        let created = run.iter().map(|s| s.created).min().expect("non-empty");
        let modified = run.iter().map(|s| s.modified).max().expect("non-empty");
        // The name of the most recently updated sighting.
        let name = &run
            .iter()
            .max_by_key(|s| s.modified)
            .expect("non-empty")
            .group_name;
        let mut o = objs.common("intrusion-set", &objs.group_ref(g), created, modified);
        o.insert("name".into(), json!(name));
        if g.starts_with('G') {
            o.insert(
                "external_references".into(),
                json!([{"source_name": "mitre-attack", "external_id": g,
                        "url": format!("https://attack.mitre.org/groups/{g}")}]),
            );
        }
        objs.push(o);
        start = end;
    }
}

fn incident(objs: &mut Objects, i: &IncidentRow) {
    let modified = i
        .updated_at
        .max(i.false_positive_at.unwrap_or(i.updated_at));
    let mut o = objs.common("incident", &i.stix_id, i.created_at, modified);
    o.insert("name".into(), json!(format!("tracehunt incident {}", i.id)));
    let mut d = format!(
        "First seen {}, last seen {}; {} detection(s), max level {}; hosts: {}; users: {}; \
         techniques: {}; attribution: {}{}.",
        secs(i.first_seen),
        secs(i.last_seen),
        i.detections,
        i.max_level,
        list_or_none(&i.hosts),
        list_or_none(&i.users),
        list_or_none(&i.techniques),
        i.verdict,
        if i.confident { " (confident)" } else { "" },
    );
    if i.false_positive {
        d.push_str(" Marked false positive by an analyst.");
        o.insert("labels".into(), json!(["false-positive"]));
    }
    o.insert("description".into(), json!(d));
    let phases: Vec<J> = i
        .tactics
        .iter()
        .map(|t| {
            json!({"kill_chain_name": "mitre-attack",
                   "phase_name": t.trim().to_ascii_lowercase().replace([' ', '_'], "-")})
        })
        .collect();
    if !phases.is_empty() {
        o.insert("kill_chain_phases".into(), J::Array(phases));
    }
    objs.push(o);
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn group_sighting(objs: &mut Objects, s: &Sighting, i: &IncidentRow) {
    let set = objs.group_ref(&s.group_id);
    let confidence = if i.false_positive { 0 } else { s.confidence };
    let mut what = format!(
        "{} ({}) sighted in tracehunt incident {} as attribution candidate rank {} with \
         confidence {}",
        s.group_id, s.group_name, i.id, s.rank, s.confidence
    );
    if i.false_positive {
        what.push_str("; the incident is marked false positive (negative sighting)");
    }
    let mut o = objs.common("sighting", &s.stix_id, s.created, s.modified);
    o.insert("description".into(), json!(format!("{what}.")));
    if let (Some(f), Some(l)) = (s.first, s.last) {
        o.insert("first_seen".into(), json!(ms(f)));
        o.insert("last_seen".into(), json!(ms(l.max(f))));
    }
    o.insert("count".into(), json!(i.detections.clamp(1, 999_999_999)));
    o.insert("confidence".into(), json!(confidence));
    o.insert("sighting_of_ref".into(), json!(set));
    o.insert(
        "where_sighted_refs".into(),
        json!(where_refs(objs, &i.hosts)),
    );
    objs.push(o);

    let rel = stix_id(
        "relationship",
        &format!("related-to|{}|{}", i.id, s.group_id),
    );
    let mut r = objs.common("relationship", &rel, s.created, s.modified);
    r.insert("relationship_type".into(), json!("related-to"));
    r.insert("description".into(), json!(format!("Attribution: {what}.")));
    r.insert("confidence".into(), json!(confidence));
    r.insert("source_ref".into(), json!(i.stix_id));
    r.insert("target_ref".into(), json!(set));
    objs.push(r);
}

/// Host identity ids, sorted; the tracehunt identity when there are none.
fn where_refs<'a>(objs: &Objects, hosts: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = hosts.into_iter().map(|h| host_id(h)).collect();
    v.sort();
    v.dedup();
    if v.is_empty() {
        v.push(objs.tool.clone());
    }
    v
}

fn indicator(objs: &mut Objects, i: &Indicator) {
    let Some(pattern) = ioc_pattern(&i.kind, &i.value) else {
        return;
    };
    let mut o = objs.common("indicator", &i.stix_id, i.created, i.modified);
    o.insert("name".into(), json!(format!("{} {}", i.kind, i.value)));
    o.insert(
        "description".into(),
        json!(format!(
            "From IOC feed(s): {}",
            i.feeds.iter().cloned().collect::<Vec<_>>().join("; ")
        )),
    );
    o.insert("indicator_types".into(), json!(["malicious-activity"]));
    o.insert("pattern".into(), json!(pattern));
    o.insert("pattern_type".into(), json!("stix"));
    o.insert("pattern_version".into(), json!("2.1"));
    o.insert("valid_from".into(), json!(ms(i.created)));
    objs.push(o);

    let key = format!("indicator|{}|{}", i.kind, i.value);
    let mut s = objs.common(
        "sighting",
        &stix_id("sighting", &key),
        i.created,
        i.modified,
    );
    let all_fp = i.hits_fp == i.hits;
    let mut d = format!("{} IOC hit(s) of {} {}", i.hits, i.kind, i.value);
    if all_fp {
        d.push_str("; every hit is in an incident marked false positive");
    } else if i.hits_fp > 0 {
        d.push_str(&format!(
            "; {} in incidents marked false positive",
            i.hits_fp
        ));
    }
    s.insert("description".into(), json!(format!("{d}.")));
    if let (Some(f), Some(l)) = (i.first, i.last) {
        s.insert("first_seen".into(), json!(ms(f)));
        s.insert("last_seen".into(), json!(ms(l.max(f))));
    }
    let count = if all_fp { i.hits } else { i.hits - i.hits_fp };
    s.insert("count".into(), json!(count.min(999_999_999)));
    if all_fp {
        s.insert("confidence".into(), json!(0));
    }
    s.insert("sighting_of_ref".into(), json!(i.stix_id));
    s.insert(
        "where_sighted_refs".into(),
        json!(where_refs(objs, &i.hosts)),
    );
    objs.push(s);
}
