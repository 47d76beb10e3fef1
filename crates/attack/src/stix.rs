//! ATT&CK STIX 2.0 bundle → [`ActorKb`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;

use crate::{ActorKb, AttackError, Campaign, Group, Software, SoftwareKind, Source, Technique};

#[derive(Deserialize)]
struct Bundle {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    objects: Vec<StixObject>,
}

#[derive(Deserialize)]
struct StixObject {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    revoked: Option<bool>,
    #[serde(default)]
    x_mitre_deprecated: Option<bool>,
    #[serde(default)]
    external_references: Vec<ExternalReference>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    x_mitre_aliases: Vec<String>,
    #[serde(default)]
    kill_chain_phases: Vec<KillChainPhase>,
    #[serde(default)]
    first_seen: Option<String>,
    #[serde(default)]
    last_seen: Option<String>,
    #[serde(default)]
    relationship_type: Option<String>,
    #[serde(default)]
    source_ref: Option<String>,
    #[serde(default)]
    target_ref: Option<String>,
    #[serde(default)]
    x_mitre_version: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    modified: Option<String>,
}

#[derive(Deserialize)]
struct ExternalReference {
    #[serde(default)]
    source_name: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct KillChainPhase {
    #[serde(default)]
    kill_chain_name: String,
    #[serde(default)]
    phase_name: String,
}

impl StixObject {
    fn attack_id(&self) -> Option<String> {
        self.external_references
            .iter()
            .find(|r| r.source_name.as_deref() == Some("mitre-attack"))
            .and_then(|r| r.external_id.as_deref())
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
    }

    /// ATT&CK's `created`/`modified` of this object, when it has both.
    fn version(&self) -> Option<crate::StixVersion> {
        Some(crate::StixVersion {
            created: self.created.clone()?,
            modified: self.modified.clone()?,
        })
    }

    fn inactive(&self) -> bool {
        self.revoked == Some(true) || self.x_mitre_deprecated == Some(true)
    }

    /// Dated non-ATT&CK references: (citation key, publication year).
    fn dated_citations(&self) -> impl Iterator<Item = (String, u16)> + '_ {
        self.external_references
            .iter()
            .filter(|r| r.source_name.as_deref() != Some("mitre-attack"))
            .filter_map(|r| {
                let key = r.source_name.as_deref()?.trim();
                let year = crate::citation_year(r.description.as_deref(), Some(key))?;
                (!key.is_empty()).then(|| (key.to_string(), year))
            })
    }
}

/// Keeps `aliases` minus the primary name, de-duplicated, in order.
fn other_names(name: &str, aliases: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in aliases {
        let a = a.trim();
        if a.is_empty() || a.eq_ignore_ascii_case(name) || out.iter().any(|o| o == a) {
            continue;
        }
        out.push(a.to_string());
    }
    out
}

/// First sentence of an ATT&CK description, without Markdown links and citations.
pub(crate) fn first_sentence(description: &str) -> Option<String> {
    let mut text = String::with_capacity(description.len().min(600));
    let mut rest = description;
    // Drop "(Citation: …)" and turn "[label](url)" into "label".
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("(Citation:") {
            rest = after.split_once(')').map_or("", |(_, r)| r);
            continue;
        }
        if let Some(after) = rest.strip_prefix('[') {
            if let Some((label, r)) = after.split_once("](") {
                if !label.contains('[') {
                    if let Some((_, r2)) = r.split_once(')') {
                        text.push_str(label);
                        rest = r2;
                        continue;
                    }
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            text.push(c);
        }
        rest = chars.as_str();
        if text.len() > 4000 {
            break;
        }
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let end = text
        .match_indices(". ")
        .map(|(i, _)| i + 1)
        .find(|&i| {
            // Avoid cutting after a one/two-letter abbreviation such as "U.S." or "Ltd.".
            let word = text[..i - 1].rsplit(' ').next().unwrap_or("");
            word.len() > 3 || word.chars().any(|c| c.is_ascii_digit())
        })
        .unwrap_or(text.len());
    let s = text[..end].trim();
    (!s.is_empty()).then(|| s.to_string())
}

pub(crate) fn parse(json: &str) -> Result<ActorKb, AttackError> {
    let bundle: Bundle = serde_json::from_str(json)?;
    if bundle.kind != "bundle" {
        return Err(AttackError::NotABundle(format!(
            "top-level type is {:?}, expected \"bundle\"",
            bundle.kind
        )));
    }

    // STIX id → ATT&CK id, for active objects of the kinds we keep.
    let mut active: HashMap<&str, String> = HashMap::new();
    // STIX id → ATT&CK id, for every object with an ATT&CK id (for revoked-by).
    let mut any_id: HashMap<&str, String> = HashMap::new();

    let mut label = None;
    let mut groups = BTreeMap::new();
    let mut techniques = BTreeMap::new();
    let mut software = BTreeMap::new();
    let mut campaigns = BTreeMap::new();

    for o in &bundle.objects {
        if o.kind == "x-mitre-collection" {
            label = match (&o.name, &o.x_mitre_version) {
                (Some(n), Some(v)) => Some(format!("{n} v{v}")),
                (Some(n), None) => Some(n.clone()),
                _ => label,
            };
            continue;
        }
        if !matches!(
            o.kind.as_str(),
            "intrusion-set" | "attack-pattern" | "malware" | "tool" | "campaign"
        ) {
            continue;
        }
        let Some(aid) = o.attack_id() else { continue };
        any_id.insert(o.id.as_str(), aid.clone());
        let name = o.name.clone().unwrap_or_else(|| aid.clone());
        match o.kind.as_str() {
            "attack-pattern" => {
                if o.revoked == Some(true) {
                    continue;
                }
                if o.x_mitre_deprecated != Some(true) {
                    active.insert(o.id.as_str(), aid.clone());
                }
                let mut tactics: Vec<String> = o
                    .kill_chain_phases
                    .iter()
                    .filter(|k| k.kill_chain_name == "mitre-attack")
                    .map(|k| k.phase_name.clone())
                    .collect();
                tactics.dedup();
                techniques.insert(
                    aid.clone(),
                    Technique {
                        id: aid,
                        name,
                        tactics,
                        deprecated: o.x_mitre_deprecated == Some(true),
                        stix_id: Some(o.id.clone()),
                        stix_version: o.version(),
                    },
                );
            }
            _ if o.inactive() => {}
            "intrusion-set" => {
                active.insert(o.id.as_str(), aid.clone());
                groups.insert(
                    aid.clone(),
                    Group {
                        id: aid,
                        aliases: other_names(&name, &o.aliases),
                        description: o.description.as_deref().and_then(first_sentence),
                        name,
                        techniques: BTreeMap::new(),
                        software: BTreeMap::new(),
                        campaigns: Vec::new(),
                        citations: o.dated_citations().collect(),
                        stix_id: Some(o.id.clone()),
                        stix_version: o.version(),
                    },
                );
            }
            "malware" | "tool" => {
                active.insert(o.id.as_str(), aid.clone());
                software.insert(
                    aid.clone(),
                    Software {
                        id: aid,
                        aliases: other_names(&name, &o.x_mitre_aliases),
                        name,
                        kind: if o.kind == "tool" {
                            SoftwareKind::Tool
                        } else {
                            SoftwareKind::Malware
                        },
                        techniques: BTreeSet::new(),
                    },
                );
            }
            "campaign" => {
                active.insert(o.id.as_str(), aid.clone());
                campaigns.insert(
                    aid.clone(),
                    Campaign {
                        id: aid,
                        name,
                        groups: Vec::new(),
                        first_seen: o.first_seen.clone(),
                        last_seen: o.last_seen.clone(),
                        techniques: BTreeSet::new(),
                        software: BTreeSet::new(),
                    },
                );
            }
            _ => {}
        }
    }

    let mut revoked_by = BTreeMap::new();
    for o in bundle.objects.iter().filter(|o| o.kind == "relationship") {
        let (Some(rt), Some(src), Some(dst)) = (
            o.relationship_type.as_deref(),
            o.source_ref.as_deref(),
            o.target_ref.as_deref(),
        ) else {
            continue;
        };
        if rt == "revoked-by" {
            if let (Some(a), Some(b)) = (any_id.get(src), any_id.get(dst)) {
                if a != b {
                    revoked_by.insert(a.clone(), b.clone());
                }
            }
            continue;
        }
        if o.inactive() {
            continue;
        }
        let (Some(a), Some(b)) = (active.get(src), active.get(dst)) else {
            continue;
        };
        let src_kind = src.split_once("--").map_or("", |(k, _)| k);
        let dst_kind = dst.split_once("--").map_or("", |(k, _)| k);
        let dst_is_software = matches!(dst_kind, "malware" | "tool");
        if rt == "uses" && src_kind == "intrusion-set" {
            if let Some(g) = groups.get_mut(a) {
                g.citations.extend(o.dated_citations());
            }
        }
        match (rt, src_kind, dst_kind) {
            ("uses", "intrusion-set", "attack-pattern") => {
                if let Some(g) = groups.get_mut(a) {
                    g.techniques.insert(b.clone(), vec![Source::Direct]);
                }
            }
            ("uses", "intrusion-set", _) if dst_is_software => {
                if let Some(g) = groups.get_mut(a) {
                    g.software.insert(b.clone(), vec![Source::Direct]);
                }
            }
            ("uses", "malware" | "tool", "attack-pattern") => {
                if let Some(s) = software.get_mut(a) {
                    s.techniques.insert(b.clone());
                }
            }
            ("uses", "campaign", "attack-pattern") => {
                if let Some(c) = campaigns.get_mut(a) {
                    c.techniques.insert(b.clone());
                }
            }
            ("uses", "campaign", _) if dst_is_software => {
                if let Some(c) = campaigns.get_mut(a) {
                    c.software.insert(b.clone());
                }
            }
            ("attributed-to", "campaign", "intrusion-set") => {
                if let Some(c) = campaigns.get_mut(a) {
                    c.groups.push(b.clone());
                }
            }
            _ => {}
        }
    }
    for c in campaigns.values_mut() {
        c.groups.sort();
        c.groups.dedup();
    }

    Ok(ActorKb::assemble(
        label, groups, techniques, software, campaigns, revoked_by,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentence_strips_markup() {
        let d = "[Deep Panda](https://attack.mitre.org/groups/G0009) is a suspected Chinese threat group known to target many industries. (Citation: Alperovitch 2014) More.";
        assert_eq!(
            first_sentence(d).as_deref(),
            Some("Deep Panda is a suspected Chinese threat group known to target many industries.")
        );
        assert_eq!(first_sentence("").as_deref(), None);
        assert_eq!(first_sentence("[broken](").as_deref(), Some("[broken]("));
        assert_eq!(
            first_sentence("Targets U.S. firms. Next").as_deref(),
            Some("Targets U.S. firms.")
        );
    }

    #[test]
    fn rejects_non_bundles() {
        assert!(matches!(
            parse(r#"{"type":"x","objects":[]}"#),
            Err(AttackError::NotABundle(_))
        ));
        assert!(matches!(parse("[1,2"), Err(AttackError::Json(_))));
    }

    #[test]
    fn tiny_bundle() {
        let json = r#"{"type":"bundle","objects":[
          {"type":"intrusion-set","id":"intrusion-set--1","name":"Alpha","aliases":["Alpha","Beta"],
           "external_references":[{"source_name":"mitre-attack","external_id":"G9000"}]},
          {"type":"attack-pattern","id":"attack-pattern--1","name":"PowerShell",
           "kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"execution"}],
           "external_references":[{"source_name":"mitre-attack","external_id":"T1059.001"}]},
          {"type":"attack-pattern","id":"attack-pattern--2","name":"Old","revoked":true,
           "external_references":[{"source_name":"mitre-attack","external_id":"T1086"}]},
          {"type":"attack-pattern","id":"attack-pattern--3","name":"Net",
           "external_references":[{"source_name":"mitre-attack","external_id":"T1105"}]},
          {"type":"tool","id":"tool--1","name":"Net","x_mitre_aliases":["Net","net.exe"],
           "external_references":[{"source_name":"mitre-attack","external_id":"S0039"}]},
          {"type":"campaign","id":"campaign--1","name":"C9000","first_seen":"2020-01-01T00:00:00.000Z",
           "external_references":[{"source_name":"mitre-attack","external_id":"C9000"}]},
          {"type":"relationship","id":"r1","relationship_type":"uses","source_ref":"intrusion-set--1","target_ref":"attack-pattern--1"},
          {"type":"relationship","id":"r2","relationship_type":"uses","source_ref":"intrusion-set--1","target_ref":"tool--1"},
          {"type":"relationship","id":"r3","relationship_type":"uses","source_ref":"tool--1","target_ref":"attack-pattern--3"},
          {"type":"relationship","id":"r4","relationship_type":"uses","source_ref":"campaign--1","target_ref":"attack-pattern--1"},
          {"type":"relationship","id":"r5","relationship_type":"attributed-to","source_ref":"campaign--1","target_ref":"intrusion-set--1"},
          {"type":"relationship","id":"r6","relationship_type":"revoked-by","source_ref":"attack-pattern--2","target_ref":"attack-pattern--1"},
          {"type":"relationship","id":"r7","relationship_type":"uses","source_ref":"intrusion-set--1","target_ref":"attack-pattern--2"}
        ]}"#;
        let kb = parse(json).unwrap();
        let g = kb.group_by_name_or_alias("beta").unwrap();
        assert_eq!(g.id, "G9000");
        assert_eq!(g.aliases, vec!["Beta"]);
        assert_eq!(
            g.techniques["T1059.001"],
            vec![
                Source::Direct,
                Source::Campaign {
                    campaign: "C9000".into()
                }
            ]
        );
        assert_eq!(
            g.techniques["T1105"],
            vec![Source::Software {
                software: "S0039".into()
            }]
        );
        assert_eq!(g.techniques.len(), 2, "revoked technique ignored");
        assert_eq!(
            kb.canonical_technique("attack.t1086").as_deref(),
            Some("T1059.001")
        );
        assert_eq!(
            kb.software("attack.s0039").unwrap().aliases,
            vec!["net.exe"]
        );
        let held = kb.hold_out_campaign("c9000");
        assert_eq!(
            held.group("G9000").unwrap().techniques["T1059.001"],
            vec![Source::Direct]
        );
        assert!(held.campaign("C9000").is_none());
        let round = ActorKb::from_snapshot_json(&kb.to_snapshot_json()).unwrap();
        assert_eq!(round, kb);
    }
}
