//! A hunt's findings as a STIX 2.1 bundle (OASIS STIX 2.1, 2021).
//!
//! [`write_stix_bundle`] writes one `bundle` (§8) with:
//!
//! | object | STIX 2.1 section | what |
//! |---|---|---|
//! | `identity` "tracehunt" (`identity_class: system`) | §4.5 | `created_by_ref` of every other object |
//! | `identity` per host (`identity_class: system`, name = `System/Computer`) | §4.5 | `where_sighted_refs` of the sightings |
//! | `attack-pattern` per observed ATT&CK technique | §4.1 | `external_references: [{source_name: "mitre-attack", external_id: "T1059.001", url}]` |
//! | `indicator` per matched IOC | §4.7 | `pattern` in STIX patterning (§9) built from the IOC, `pattern_type: stix`, `valid_from` |
//! | `sighting` per technique and per indicator | §5.2 | `sighting_of_ref`, `count` (detections / events), `first_seen`, `last_seen`, `where_sighted_refs` |
//! | `campaign` "tracehunt observed activity" | §4.2 | the observed intrusion, `first_seen`/`last_seen` = first/last event |
//! | `intrusion-set` per attribution candidate | §4.8 | name, aliases, `external_references` to the ATT&CK group |
//! | `relationship` `attributed-to` campaign → intrusion set | §5.1 | `confidence` (0–100, §3.5: the candidate's calibrated confidence) |
//! | `relationship` `indicates` indicator → intrusion set | §5.1 | when the IOC's feed ties it to that group |
//!
//! **Ids**: attack patterns and intrusion sets take ATT&CK's own STIX ids
//! ([`StixInput::attack_ids`], from the ATT&CK bundle the knowledge base was built from), so
//! OpenCTI or MISP merge them with the ATT&CK objects they already hold instead of creating
//! duplicates; an ATT&CK id missing there (a knowledge base without STIX ids) falls back to a
//! tracehunt id. Every other id is `<type>--<UUIDv5>` of a fixed tracehunt namespace and the
//! object's content key (e.g. `sighting|indicator|sha256|…`), so the same hunt keeps its ids.
//!
//! **Times**: `created`/`modified` are [`StixInput::created`], the time the bundle is made
//! (the CLI passes the current time); sightings and the campaign carry the data's
//! `first_seen`/`last_seen`; an indicator is `valid_from` its first sighting (the bundle time
//! when no event had a time). Timestamps are UTC with millisecond precision.
//!
//! **Marking**: the bundle holds the TLP 2.0 `marking-definition` of [`StixInput::tlp`] (the
//! OASIS CTI TC's TLP 2.0 definitions: fixed ids, the `tlp_2_0` property extension
//! `extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`) and every other object lists
//! it in `object_marking_refs`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value as J};
use uuid::Uuid;

/// UUIDv5 namespace of tracehunt's STIX ids (a fixed random UUID).
pub const STIX_NAMESPACE: Uuid = Uuid::from_u128(0x5b0c_3e61_7c2a_4f0e_9d1b_6a8e_2f47_c3d9);

/// A technique observed by the hunt.
#[derive(Debug, Clone, PartialEq)]
pub struct TechniqueSighting {
    /// ATT&CK id (`T1059.001`), as in the ATT&CK version the layer/bundle refers to.
    pub id: String,
    /// Technique name (`PowerShell`); the id is used when empty.
    pub name: String,
    /// Detections that showed it.
    pub count: u64,
    /// Earliest detection time.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest detection time.
    pub last_seen: Option<DateTime<Utc>>,
    /// Hosts (`System/Computer`) where it was seen.
    pub hosts: Vec<String>,
    /// Titles of the rules that showed it (for the sighting `description`).
    pub rules: Vec<String>,
}

/// An IOC matched by the hunt.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorSighting {
    /// IOC kind: `md5`, `sha1`, `sha256`, `sha512`, `imphash`, `domain`, `url`, `ip`.
    pub kind: String,
    /// IOC value (an IP may be a CIDR `10.0.0.0/8`).
    pub value: String,
    /// Events in which it was found.
    pub count: u64,
    /// Earliest event time.
    pub first_seen: Option<DateTime<Utc>>,
    /// Latest event time.
    pub last_seen: Option<DateTime<Utc>>,
    /// Hosts where it was seen.
    pub hosts: Vec<String>,
    /// ATT&CK group ids the feed ties it to (resolved), for `indicates` relationships.
    pub groups: Vec<String>,
    /// Feed entries it came from (for the indicator `description`).
    pub sources: Vec<String>,
}

/// One attribution candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAttribution {
    /// ATT&CK group id (`G0009`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// STIX confidence 0–100.
    pub confidence: u8,
    /// Short explanation (rank, score, label, evidence) for the relationship `description`.
    pub description: String,
}

/// One incident of the hunt, with its own attribution candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentStix {
    /// tracehunt incident id (`inc-…`); the STIX id is `stix_id("incident", id)`,
    /// as in the store's export.
    pub id: String,
    /// Short name (level, hosts).
    pub name: String,
    /// Time range, hosts, users, rules, verdict.
    pub description: String,
    /// First detection time.
    pub first_seen: Option<DateTime<Utc>>,
    /// Last detection time.
    pub last_seen: Option<DateTime<Utc>>,
    /// Hosts (`where_sighted_refs` of its sightings).
    pub hosts: Vec<String>,
    /// Detections (the sightings' `count`).
    pub detections: u64,
    /// Candidates: each an `intrusion-set`, a `sighting` of it in this
    /// incident and a `related-to` relationship incident → intrusion set,
    /// both with the candidate's confidence.
    pub groups: Vec<GroupAttribution>,
}

/// A Traffic Light Protocol 2.0 level (FIRST TLP 2.0, 2022), as a STIX 2.1 marking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tlp {
    /// TLP:CLEAR: no limit on disclosure.
    Clear,
    /// TLP:GREEN: the recipient's community.
    Green,
    /// TLP:AMBER: the recipient's organisation and its clients, need to know. The default: a
    /// hunt's bundle names internal hosts and users, which are not for a community, but an
    /// MSSP or incident responder must be able to hand it to the client it concerns.
    #[default]
    Amber,
    /// TLP:AMBER+STRICT: the recipient's organisation only.
    AmberStrict,
    /// TLP:RED: the named recipients only.
    Red,
}

/// The STIX 2.1 extension definition that carries TLP 2.0 levels (OASIS CTI TC).
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

impl Tlp {
    /// Every level, least restrictive first.
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The level as TLP 2.0 writes it after `TLP:`, lower case (`amber+strict`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// Parses `clear`, `green`, `amber`, `amber+strict` or `red` (any case, an optional `TLP:`
    /// prefix; `white` is TLP 1.0's name for `clear`).
    pub fn parse(s: &str) -> Option<Tlp> {
        let l = s.trim().to_ascii_lowercase();
        let l = l.strip_prefix("tlp:").unwrap_or(&l);
        if l == "white" {
            return Some(Tlp::Clear);
        }
        Tlp::ALL.into_iter().find(|t| t.as_str() == l)
    }

    /// The fixed STIX id of the level's TLP 2.0 marking definition.
    pub fn marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The level's `marking-definition` object (STIX 2.1 §7.2 with the TLP 2.0 extension).
    pub fn marking_definition(self) -> J {
        json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": self.marking_id(),
            "created": "2022-10-01T00:00:00.000Z",
            "name": format!("TLP:{}", self.as_str().to_ascii_uppercase()),
            "extensions": {
                TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": self.as_str()}
            }
        })
    }
}

/// Everything [`write_stix_bundle`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StixInput {
    /// `created`/`modified` of every object: when the bundle is made (the CLI passes the
    /// current time).
    pub created: DateTime<Utc>,
    /// The TLP marking of every object.
    pub tlp: Tlp,
    /// ATT&CK id (`T1059.001`, `G0009`) → ATT&CK's own STIX id (`attack-pattern--…`,
    /// `intrusion-set--…`) of the techniques and groups the bundle names.
    pub attack_ids: BTreeMap<String, String>,
    /// ATT&CK STIX id → ATT&CK's `(created, modified)` of that object: the objects written
    /// under ATT&CK's ids are ATT&CK's version ([`adopt_attack_versions`]); empty = none.
    pub attack_versions: BTreeMap<String, (String, String)>,
    /// First and last event time of the hunt (the campaign's `first_seen`/`last_seen`).
    pub first_event: Option<DateTime<Utc>>,
    /// See `first_event`.
    pub last_event: Option<DateTime<Utc>>,
    /// Observed techniques.
    pub techniques: Vec<TechniqueSighting>,
    /// Matched IOCs.
    pub indicators: Vec<IndicatorSighting>,
    /// Attribution candidates of the whole collection (an aggregate), best first.
    pub groups: Vec<GroupAttribution>,
    /// The hunt's incidents.
    pub incidents: Vec<IncidentStix>,
}

/// `<type>--<UUIDv5(namespace, key)>`.
pub fn stix_id(ty: &str, key: &str) -> String {
    format!(
        "{ty}--{}",
        Uuid::new_v5(&STIX_NAMESPACE, format!("{ty}|{key}").as_bytes())
    )
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A STIX pattern string literal (§9.3: `'` and `\` escaped with `\`).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The STIX pattern of an IOC, `None` for kinds STIX patterning cannot express.
pub fn ioc_pattern(kind: &str, value: &str) -> Option<String> {
    let v = lit(value);
    Some(match kind {
        "md5" => format!("[file:hashes.MD5 = {v}]"),
        "sha1" => format!("[file:hashes.'SHA-1' = {v}]"),
        "sha256" => format!("[file:hashes.'SHA-256' = {v}]"),
        "sha512" => format!("[file:hashes.'SHA-512' = {v}]"),
        "imphash" => format!("[file:extensions.'windows-pebinary-ext'.imphash = {v}]"),
        "domain" => format!("[domain-name:value = {v}]"),
        "url" => format!("[url:value = {v}]"),
        "ip" => {
            let ty = if value.contains(':') {
                "ipv6-addr"
            } else {
                "ipv4-addr"
            };
            if value.contains('/') {
                format!("[{ty}:value ISSUBSET {v}]")
            } else {
                format!("[{ty}:value = {v}]")
            }
        }
        _ => return None,
    })
}

/// ATT&CK technique page (`T1059.001` → `https://attack.mitre.org/techniques/T1059/001`).
fn technique_url(id: &str) -> String {
    format!(
        "https://attack.mitre.org/techniques/{}",
        id.replace('.', "/")
    )
}

/// Builds the bundle as a JSON value (see the module docs).
pub fn stix_bundle(input: &StixInput) -> J {
    let created = ts(input.created);
    let tool = stix_id("identity", "tracehunt");
    let mut objects: Vec<J> = Vec::new();
    let common = |ty: &str, id: &str| -> Map<String, J> {
        let mut m = Map::new();
        m.insert("type".into(), json!(ty));
        m.insert("spec_version".into(), json!("2.1"));
        m.insert("id".into(), json!(id));
        m.insert("created_by_ref".into(), json!(tool));
        m.insert("created".into(), json!(created));
        m.insert("modified".into(), json!(created));
        m.insert(
            "object_marking_refs".into(),
            json!([input.tlp.marking_id()]),
        );
        m
    };
    // ATT&CK's STIX id of a technique or group, else a tracehunt one.
    let attack_ref = |ty: &str, id: &str| -> String {
        input
            .attack_ids
            .get(id)
            .filter(|s| s.starts_with(&format!("{ty}--")))
            .cloned()
            .unwrap_or_else(|| stix_id(ty, id))
    };
    objects.push(input.tlp.marking_definition());
    let mut me = common("identity", &tool);
    me.remove("created_by_ref");
    me.insert("name".into(), json!("tracehunt"));
    me.insert("identity_class".into(), json!("system"));
    me.insert(
        "description".into(),
        json!("tracehunt: Sigma rules over Windows event logs, IOC feeds, ATT&CK attribution"),
    );
    objects.push(J::Object(me));

    // Hosts as system identities.
    let mut hosts: BTreeMap<&str, String> = BTreeMap::new();
    for h in input
        .techniques
        .iter()
        .flat_map(|t| &t.hosts)
        .chain(input.indicators.iter().flat_map(|i| &i.hosts))
    {
        hosts
            .entry(h.as_str())
            .or_insert_with(|| stix_id("identity", &format!("host|{h}")));
    }
    for (h, id) in &hosts {
        let mut o = common("identity", id);
        o.insert("name".into(), json!(h));
        o.insert("identity_class".into(), json!("system"));
        objects.push(J::Object(o));
    }
    let where_refs = |hs: &[String]| -> Vec<&String> {
        let mut v: Vec<&String> = hs.iter().filter_map(|h| hosts.get(h.as_str())).collect();
        v.sort();
        v.dedup();
        v
    };
    let seen = |o: &mut Map<String, J>,
                count: u64,
                first: Option<DateTime<Utc>>,
                last: Option<DateTime<Utc>>| {
        o.insert("count".into(), json!(count.min(999_999_999)));
        // STIX timestamps have four-digit years from 0001 (`stix2` rejects
        // year 0000, which a damaged or crafted event can carry).
        let stix_time = |t: &DateTime<Utc>| (1..=9999).contains(&chrono::Datelike::year(t));
        if let (Some(f), Some(l)) = (first.filter(stix_time), last.filter(stix_time)) {
            o.insert("first_seen".into(), json!(ts(f)));
            o.insert("last_seen".into(), json!(ts(l.max(f))));
        }
    };

    for t in &input.techniques {
        let ap = attack_ref("attack-pattern", &t.id);
        let mut o = common("attack-pattern", &ap);
        o.insert(
            "name".into(),
            json!(if t.name.is_empty() { &t.id } else { &t.name }),
        );
        o.insert(
            "external_references".into(),
            json!([{"source_name": "mitre-attack", "external_id": t.id, "url": technique_url(&t.id)}]),
        );
        objects.push(J::Object(o));
        let mut s = common(
            "sighting",
            &stix_id("sighting", &format!("technique|{}", t.id)),
        );
        s.insert("sighting_of_ref".into(), json!(ap));
        seen(&mut s, t.count, t.first_seen, t.last_seen);
        let w = where_refs(&t.hosts);
        if !w.is_empty() {
            s.insert("where_sighted_refs".into(), json!(w));
        }
        if !t.rules.is_empty() {
            s.insert(
                "description".into(),
                json!(format!("Detected by Sigma rules: {}", t.rules.join("; "))),
            );
        }
        objects.push(J::Object(s));
    }

    let mut group_ids: BTreeMap<&str, String> = BTreeMap::new();
    for g in &input.groups {
        group_ids.insert(g.id.as_str(), attack_ref("intrusion-set", &g.id));
    }
    let mut extra_groups: Vec<&str> = Vec::new();
    for i in &input.indicators {
        let Some(pattern) = ioc_pattern(&i.kind, &i.value) else {
            continue;
        };
        let key = format!("{}|{}", i.kind, i.value);
        let ind = stix_id("indicator", &key);
        let mut o = common("indicator", &ind);
        o.insert("name".into(), json!(format!("{} {}", i.kind, i.value)));
        o.insert("indicator_types".into(), json!(["malicious-activity"]));
        o.insert("pattern".into(), json!(pattern));
        o.insert("pattern_type".into(), json!("stix"));
        o.insert("pattern_version".into(), json!("2.1"));
        // Valid from its first sighting in the data (not from when the bundle was made).
        let first = i
            .first_seen
            .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)));
        o.insert(
            "valid_from".into(),
            json!(first.map_or_else(|| created.clone(), ts)),
        );
        if !i.sources.is_empty() {
            o.insert(
                "description".into(),
                json!(format!("From IOC feed(s): {}", i.sources.join("; "))),
            );
        }
        objects.push(J::Object(o));
        let mut s = common(
            "sighting",
            &stix_id("sighting", &format!("indicator|{key}")),
        );
        s.insert("sighting_of_ref".into(), json!(ind));
        seen(&mut s, i.count, i.first_seen, i.last_seen);
        let w = where_refs(&i.hosts);
        if !w.is_empty() {
            s.insert("where_sighted_refs".into(), json!(w));
        }
        objects.push(J::Object(s));
        for g in &i.groups {
            if !group_ids.contains_key(g.as_str()) {
                group_ids.insert(g.as_str(), attack_ref("intrusion-set", g));
                extra_groups.push(g.as_str());
            }
            let r = stix_id("relationship", &format!("indicates|{key}|{g}"));
            let mut rel = common("relationship", &r);
            rel.insert("relationship_type".into(), json!("indicates"));
            rel.insert("source_ref".into(), json!(ind));
            rel.insert("target_ref".into(), json!(group_ids[g.as_str()]));
            objects.push(J::Object(rel));
        }
    }

    let camp = stix_id("campaign", "observed-activity");
    let mut c = common("campaign", &camp);
    c.insert("name".into(), json!("tracehunt observed activity"));
    c.insert(
        "description".into(),
        json!("The activity detected in the hunted logs (Sigma detections and IOC matches)."),
    );
    // Years outside 0001–9999 are no STIX timestamp (a crafted event of year
    // 0000 or -0001 made the whole bundle unparsable: breaker finding).
    let stix_time = |t: &DateTime<Utc>| (1..=9999).contains(&chrono::Datelike::year(t));
    if let (Some(f), Some(l)) = (
        input.first_event.filter(stix_time),
        input.last_event.filter(stix_time),
    ) {
        c.insert("first_seen".into(), json!(ts(f)));
        c.insert("last_seen".into(), json!(ts(l.max(f))));
    }
    objects.push(J::Object(c));

    for g in &input.groups {
        let is = &group_ids[g.id.as_str()];
        objects.push(intrusion_set(&common, is, &g.id, &g.name, &g.aliases));
        let mut rel = common(
            "relationship",
            &stix_id("relationship", &format!("attributed-to|{}", g.id)),
        );
        rel.insert("relationship_type".into(), json!("attributed-to"));
        rel.insert("source_ref".into(), json!(camp));
        rel.insert("target_ref".into(), json!(is));
        rel.insert("confidence".into(), json!(g.confidence.min(100)));
        if !g.description.is_empty() {
            rel.insert("description".into(), json!(g.description));
        }
        objects.push(J::Object(rel));
    }
    for g in extra_groups {
        objects.push(intrusion_set(&common, &group_ids[g], g, g, &[]));
    }
    let mut incident_groups: BTreeMap<&str, &GroupAttribution> = BTreeMap::new();
    for inc in &input.incidents {
        let iid = stix_id("incident", &inc.id);
        let mut o = common("incident", &iid);
        o.insert("name".into(), json!(inc.name));
        o.insert("description".into(), json!(inc.description));
        objects.push(J::Object(o));
        for g in &inc.groups {
            let is = attack_ref("intrusion-set", &g.id);
            if !group_ids.contains_key(g.id.as_str()) {
                incident_groups.entry(g.id.as_str()).or_insert(g);
            }
            let mut s = common(
                "sighting",
                &stix_id("sighting", &format!("{}|{}", g.id, inc.id)),
            );
            s.insert("sighting_of_ref".into(), json!(is));
            seen(&mut s, inc.detections.max(1), inc.first_seen, inc.last_seen);
            let mut w: Vec<J> = where_refs(&inc.hosts)
                .into_iter()
                .map(|x| json!(x))
                .collect();
            if w.is_empty() {
                w.push(json!(tool));
            }
            s.insert("where_sighted_refs".into(), J::Array(w));
            s.insert("confidence".into(), json!(g.confidence.min(100)));
            s.insert(
                "description".into(),
                json!(format!(
                    "{} sighted in tracehunt incident {}: {}",
                    g.id, inc.id, g.description
                )),
            );
            objects.push(J::Object(s));
            let mut rel = common(
                "relationship",
                &stix_id("relationship", &format!("related-to|{}|{}", inc.id, g.id)),
            );
            rel.insert("relationship_type".into(), json!("related-to"));
            rel.insert("source_ref".into(), json!(iid));
            rel.insert("target_ref".into(), json!(is));
            rel.insert("confidence".into(), json!(g.confidence.min(100)));
            rel.insert(
                "description".into(),
                json!(format!(
                    "Attribution of incident {}: {}",
                    inc.id, g.description
                )),
            );
            objects.push(J::Object(rel));
        }
    }
    for g in incident_groups.values() {
        objects.push(intrusion_set(
            &common,
            &attack_ref("intrusion-set", &g.id),
            &g.id,
            &g.name,
            &g.aliases,
        ));
    }

    let mut bundle = json!({
        "type": "bundle",
        "id": stix_id("bundle", &objects.iter().filter_map(|o| o["id"].as_str()).collect::<Vec<_>>().join(",")),
        "objects": objects,
    });
    adopt_attack_versions(&mut bundle, &input.attack_versions);
    bundle
}

/// MITRE's identity in the ATT&CK bundles: the `created_by_ref` of every ATT&CK object.
pub const MITRE_IDENTITY_ID: &str = "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5";
/// ATT&CK's copyright statement marking: the `object_marking_refs` of every ATT&CK object.
pub const ATTACK_MARKING_ID: &str = "marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168";

/// Makes every object of `bundle` whose id is a key of `versions` (an ATT&CK STIX id →
/// ATT&CK's `(created, modified)` of it) ATT&CK's own version of that object: its `created`
/// and `modified`, `created_by_ref` MITRE's identity and ATT&CK's marking instead of ours
/// (STIX 2.1 §3.6: `id` + `modified` name a version; our timestamps, author or TLP on
/// ATT&CK's id would make a competing version of ATT&CK's object in OpenCTI or MISP). When
/// any object is adopted, MITRE's identity and ATT&CK's marking definition are added as the
/// ATT&CK v18.1 bundle has them. Objects not in `versions` are left as they are.
pub fn adopt_attack_versions(bundle: &mut J, versions: &BTreeMap<String, (String, String)>) {
    let Some(objects) = bundle.get_mut("objects").and_then(J::as_array_mut) else {
        return;
    };
    let mut adopted = false;
    for o in objects.iter_mut() {
        let Some((created, modified)) = o["id"].as_str().and_then(|id| versions.get(id)) else {
            continue;
        };
        if let Some(m) = o.as_object_mut() {
            m.insert("created".into(), json!(created));
            m.insert("modified".into(), json!(modified));
            m.insert("created_by_ref".into(), json!(MITRE_IDENTITY_ID));
            m.insert("object_marking_refs".into(), json!([ATTACK_MARKING_ID]));
            adopted = true;
        }
    }
    let has = |objects: &[J], id: &str| objects.iter().any(|o| o["id"] == id);
    if adopted && !has(objects, MITRE_IDENTITY_ID) {
        objects.push(json!({
            "type": "identity", "spec_version": "2.1", "id": MITRE_IDENTITY_ID,
            "created": "2017-06-01T00:00:00.000Z", "modified": "2025-03-19T15:00:40.855Z",
            "name": "The MITRE Corporation", "identity_class": "organization",
            "object_marking_refs": [ATTACK_MARKING_ID],
        }));
    }
    if adopted && !has(objects, ATTACK_MARKING_ID) {
        objects.push(json!({
            "type": "marking-definition", "spec_version": "2.1", "id": ATTACK_MARKING_ID,
            "created": "2017-06-01T00:00:00.000Z", "created_by_ref": MITRE_IDENTITY_ID,
            "definition_type": "statement",
            "definition": {"statement": "Copyright 2015-2025, The MITRE Corporation. MITRE ATT&CK and ATT&CK are registered trademarks of The MITRE Corporation."},
        }));
    }
}

fn intrusion_set(
    common: &dyn Fn(&str, &str) -> Map<String, J>,
    id: &str,
    attack_id: &str,
    name: &str,
    aliases: &[String],
) -> J {
    let mut o = common("intrusion-set", id);
    o.insert("name".into(), json!(name));
    let aliases: Vec<&String> = aliases.iter().filter(|a| *a != name).collect();
    if !aliases.is_empty() {
        o.insert("aliases".into(), json!(aliases));
    }
    if attack_id.starts_with('G') {
        o.insert(
            "external_references".into(),
            json!([{"source_name": "mitre-attack", "external_id": attack_id,
                    "url": format!("https://attack.mitre.org/groups/{attack_id}")}]),
        );
    }
    J::Object(o)
}

/// Writes [`stix_bundle`] as pretty-printed JSON followed by a newline.
pub fn write_stix_bundle<W: Write>(w: &mut W, input: &StixInput) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, &stix_bundle(input))?;
    writeln!(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_ids() {
        assert_eq!(
            ioc_pattern("sha256", "ab").unwrap(),
            "[file:hashes.'SHA-256' = 'ab']"
        );
        assert_eq!(
            ioc_pattern("ip", "10.0.0.0/8").unwrap(),
            "[ipv4-addr:value ISSUBSET '10.0.0.0/8']"
        );
        assert_eq!(
            ioc_pattern("url", r"http://x/it's\a").unwrap(),
            r"[url:value = 'http://x/it\'s\\a']"
        );
        assert_eq!(
            stix_id("identity", "tracehunt"),
            stix_id("identity", "tracehunt")
        );
        assert!(stix_id("identity", "tracehunt").starts_with("identity--"));
        assert_ne!(stix_id("identity", "a"), stix_id("identity", "b"));
    }

    /// Breaker finding: an event of year 0000 (or -0001) became the campaign's
    /// `first_seen`, and `stix2` refused the whole bundle.
    #[test]
    fn campaign_of_year_zero_events_has_no_first_seen() {
        let t0 = chrono::NaiveDate::from_ymd_opt(0, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        let ok = DateTime::parse_from_rfc3339("2021-10-22T05:40:12Z")
            .unwrap()
            .with_timezone(&Utc);
        let input = StixInput {
            created: ok,
            tlp: Tlp::Amber,
            attack_ids: BTreeMap::new(),
            attack_versions: BTreeMap::new(),
            first_event: Some(t0),
            last_event: Some(ok),
            techniques: Vec::new(),
            indicators: Vec::new(),
            groups: Vec::new(),
            incidents: Vec::new(),
        };
        let b = stix_bundle(&input);
        let camp = b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == "campaign")
            .unwrap();
        assert!(camp.get("first_seen").is_none(), "{camp}");
        let input = StixInput {
            first_event: Some(ok),
            ..input
        };
        let b = stix_bundle(&input);
        let camp = b["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["type"] == "campaign")
            .unwrap();
        assert_eq!(camp["first_seen"], "2021-10-22T05:40:12.000Z");
    }

    #[test]
    fn tlp_levels_parse_and_mark() {
        assert_eq!(Tlp::parse("TLP:AMBER+STRICT"), Some(Tlp::AmberStrict));
        assert_eq!(Tlp::parse("white"), Some(Tlp::Clear));
        assert_eq!(Tlp::parse("orange"), None);
        let m = Tlp::Red.marking_definition();
        assert_eq!(m["name"], "TLP:RED");
        assert_eq!(m["extensions"][TLP2_EXTENSION]["tlp_2_0"], "red");
    }
}
