//! Compact snapshot format (`tracehunt-attack-snapshot/1`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{ActorKb, AttackError, Campaign, Group, Software, SoftwareKind, Source, Technique};

pub(crate) const FORMAT: &str = "tracehunt-attack-snapshot/1";

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    techniques: BTreeMap<String, SnapTechnique>,
    software: BTreeMap<String, SnapSoftware>,
    campaigns: BTreeMap<String, SnapCampaign>,
    groups: BTreeMap<String, SnapGroup>,
    revoked_by: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct SnapTechnique {
    name: String,
    #[serde(default)]
    tactics: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    deprecated: bool,
    /// ATT&CK's STIX id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stix: Option<String>,
    /// ATT&CK's `[created, modified]` of that object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stix_version: Option<[String; 2]>,
}

#[derive(Serialize, Deserialize)]
struct SnapSoftware {
    name: String,
    kind: SoftwareKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
    #[serde(default)]
    techniques: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct SnapCampaign {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_seen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seen: Option<String>,
    #[serde(default)]
    techniques: BTreeSet<String>,
    #[serde(default)]
    software: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct SnapGroup {
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Direct `uses` techniques only.
    #[serde(default)]
    techniques: Vec<String>,
    /// Direct `uses` software only.
    #[serde(default)]
    software: Vec<String>,
    /// Dated citations: key → year.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    citations: BTreeMap<String, u16>,
    /// ATT&CK's STIX id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stix: Option<String>,
    /// ATT&CK's `[created, modified]` of that object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stix_version: Option<[String; 2]>,
}

fn version_pair(v: &Option<crate::StixVersion>) -> Option<[String; 2]> {
    v.as_ref().map(|v| [v.created.clone(), v.modified.clone()])
}

fn from_pair([created, modified]: [String; 2]) -> crate::StixVersion {
    crate::StixVersion { created, modified }
}

pub(crate) fn to_json(kb: &ActorKb) -> String {
    let direct = |m: &BTreeMap<String, Vec<Source>>| -> Vec<String> {
        m.iter()
            .filter(|(_, s)| s.contains(&Source::Direct))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let snap = Snapshot {
        format: FORMAT.to_string(),
        label: kb.label.clone(),
        techniques: kb
            .techniques
            .iter()
            .map(|(id, t)| {
                let v = SnapTechnique {
                    name: t.name.clone(),
                    tactics: t.tactics.clone(),
                    deprecated: t.deprecated,
                    stix: t.stix_id.clone(),
                    stix_version: version_pair(&t.stix_version),
                };
                (id.clone(), v)
            })
            .collect(),
        software: kb
            .software
            .iter()
            .map(|(id, s)| {
                let v = SnapSoftware {
                    name: s.name.clone(),
                    kind: s.kind,
                    aliases: s.aliases.clone(),
                    techniques: s.techniques.clone(),
                };
                (id.clone(), v)
            })
            .collect(),
        campaigns: kb
            .campaigns
            .iter()
            .map(|(id, c)| {
                let v = SnapCampaign {
                    name: c.name.clone(),
                    groups: c.groups.clone(),
                    first_seen: c.first_seen.clone(),
                    last_seen: c.last_seen.clone(),
                    techniques: c.techniques.clone(),
                    software: c.software.clone(),
                };
                (id.clone(), v)
            })
            .collect(),
        groups: kb
            .groups
            .iter()
            .map(|(id, g)| {
                let v = SnapGroup {
                    name: g.name.clone(),
                    aliases: g.aliases.clone(),
                    description: g.description.clone(),
                    techniques: direct(&g.techniques),
                    software: direct(&g.software),
                    citations: g.citations.clone(),
                    stix: g.stix_id.clone(),
                    stix_version: version_pair(&g.stix_version),
                };
                (id.clone(), v)
            })
            .collect(),
        revoked_by: kb.revoked_by.clone(),
    };
    // One top-level entry per line: compact, yet diffs stay readable.
    let mut out = String::from("{\n");
    let value = serde_json::to_value(&snap).unwrap_or_default();
    if let serde_json::Value::Object(top) = value {
        let n = top.len();
        for (i, (k, v)) in top.into_iter().enumerate() {
            out.push_str(&serde_json::Value::String(k).to_string());
            out.push(':');
            match v {
                serde_json::Value::Object(inner) if !inner.is_empty() => {
                    out.push_str("{\n");
                    let m = inner.len();
                    for (j, (k2, v2)) in inner.into_iter().enumerate() {
                        out.push_str(&serde_json::Value::String(k2).to_string());
                        out.push(':');
                        out.push_str(&v2.to_string());
                        out.push_str(if j + 1 < m { ",\n" } else { "\n" });
                    }
                    out.push('}');
                }
                other => out.push_str(&other.to_string()),
            }
            out.push_str(if i + 1 < n { ",\n" } else { "\n" });
        }
    }
    out.push_str("}\n");
    out
}

pub(crate) fn from_json(json: &str) -> Result<ActorKb, AttackError> {
    let snap: Snapshot = serde_json::from_str(json)?;
    if snap.format != FORMAT {
        return Err(AttackError::SnapshotFormat {
            found: snap.format,
            expected: FORMAT,
        });
    }
    let techniques: BTreeMap<String, Technique> = snap
        .techniques
        .into_iter()
        .map(|(id, t)| {
            let v = Technique {
                id: id.clone(),
                name: t.name,
                tactics: t.tactics,
                deprecated: t.deprecated,
                stix_id: t.stix,
                stix_version: t.stix_version.map(from_pair),
            };
            (id, v)
        })
        .collect();
    let software = snap
        .software
        .into_iter()
        .map(|(id, s)| {
            let v = Software {
                id: id.clone(),
                name: s.name,
                kind: s.kind,
                aliases: s.aliases,
                techniques: s.techniques,
            };
            (id, v)
        })
        .collect();
    let campaigns = snap
        .campaigns
        .into_iter()
        .map(|(id, c)| {
            let v = Campaign {
                id: id.clone(),
                name: c.name,
                groups: c.groups,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
                techniques: c.techniques,
                software: c.software,
            };
            (id, v)
        })
        .collect();
    let groups = snap
        .groups
        .into_iter()
        .map(|(id, g)| {
            let direct = |ids: Vec<String>| -> BTreeMap<String, Vec<Source>> {
                ids.into_iter().map(|t| (t, vec![Source::Direct])).collect()
            };
            let v = Group {
                id: id.clone(),
                name: g.name,
                aliases: g.aliases,
                description: g.description,
                techniques: direct(g.techniques),
                software: direct(g.software),
                campaigns: Vec::new(),
                citations: g.citations,
                stix_id: g.stix,
                stix_version: g.stix_version.map(from_pair),
            };
            (id, v)
        })
        .collect();
    Ok(ActorKb::assemble(
        snap.label,
        groups,
        techniques,
        software,
        campaigns,
        snap.revoked_by,
    ))
}
