//! Where a group's ATT&CK links come from: detects group `uses` relationships that repeat what
//! a campaign report says (the leakage a naive campaign hold-out misses).
//!
//! ATT&CK often copies what it learnt from a campaign report into the attributed group's own
//! `uses` relationships as well (SolarWinds Compromise → APT29 `uses` SUNBURST, citing the same
//! report). Removing the campaign's [`Source::Campaign`](tracehunt_attack::Source) links alone
//! then leaves the answer in the group's profile. A group `uses` relationship (to a technique or
//! a software) is **leaked from campaign `C`** when `C` is attributed to that group and the
//! relationship
//!
//! * cites a source (`external_references[].source_name`, or its `url`) that the campaign
//!   object or one of the campaign's own `uses` / `attributed-to` relationships also cites, or
//! * links the campaign in its description (`attack.mitre.org/campaigns/C0024`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, ExtRef, Obj};

/// A group's direct links that were learnt from one campaign's sources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaks {
    /// Technique ids the group `uses` directly, citing the campaign's sources.
    #[serde(default)]
    pub techniques: BTreeSet<String>,
    /// Software ids the group `uses` directly, citing the campaign's sources.
    #[serde(default)]
    pub software: BTreeSet<String>,
    /// Citation keys (`source_name`s, as in
    /// [`Group::citations`](tracehunt_attack::Group)) of the group object and its `uses`
    /// relationships that the campaign also cites: the campaign's own reports, which must not
    /// date the group's activity when the campaign is held out.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub citations: BTreeSet<String>,
}

impl Leaks {
    /// No leaked link (technique or software; shared citations are not links).
    pub fn is_empty(&self) -> bool {
        self.techniques.is_empty() && self.software.is_empty()
    }
}

/// Leaked links per campaign and attributed group: `campaign id → group id → Leaks`.
///
/// Build it from a STIX bundle with [`Provenance::from_stix_json`], or use
/// [`Provenance::builtin`] (computed from ATT&CK v18.1, matches the built-in knowledge base).
/// JSON form: `{"C0024":{"G0016":{"techniques":["T1005"],"software":["S0559"]}}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Provenance {
    /// Campaign id → group id → leaked direct links of that group.
    pub leaks: BTreeMap<String, BTreeMap<String, Leaks>>,
}

impl ExtRef {
    fn keys(&self) -> impl Iterator<Item = String> + '_ {
        let name = self.source_name.as_ref().map(|s| format!("n:{}", s.trim()));
        let url = self.url.as_ref().map(|u| format!("u:{}", u.trim()));
        name.into_iter().chain(url)
    }
}

impl Obj {
    /// Citation keys: source names and URLs of the non-ATT&CK external references.
    fn citations(&self) -> impl Iterator<Item = String> + '_ {
        self.external_references
            .iter()
            .filter(|r| r.source_name.as_deref() != Some("mitre-attack"))
            .flat_map(ExtRef::keys)
    }

    /// Non-ATT&CK references whose name or URL the set `cites` contains: their trimmed
    /// `source_name`s.
    fn shared_citations<'a>(
        &'a self,
        cites: &'a HashSet<String>,
    ) -> impl Iterator<Item = String> + 'a {
        self.external_references
            .iter()
            .filter(|r| r.source_name.as_deref() != Some("mitre-attack"))
            .filter(|r| r.keys().any(|k| cites.contains(&k)))
            .filter_map(|r| r.source_name.as_deref().map(|s| s.trim().to_string()))
    }
}

impl Provenance {
    /// Computes the leaked links from an ATT&CK STIX bundle (JSON text). Revoked or deprecated
    /// objects and relationships touching them are ignored, as in
    /// [`ActorKb::from_stix_json`](tracehunt_attack::ActorKb::from_stix_json).
    pub fn from_stix_json(json: &str) -> Result<Provenance, serde_json::Error> {
        let bundle: Bundle = serde_json::from_str(json)?;
        let active: HashMap<&str, &Obj> = bundle
            .objects
            .iter()
            .filter(|o| o.kind != "relationship" && !o.inactive())
            .map(|o| (o.id.as_str(), o))
            .collect();
        let rels: Vec<&Obj> = bundle
            .objects
            .iter()
            .filter(|o| o.kind == "relationship" && !o.inactive())
            .filter(|o| {
                let s = o.source_ref.as_deref().unwrap_or("");
                let t = o.target_ref.as_deref().unwrap_or("");
                active.contains_key(s) && active.contains_key(t)
            })
            .collect();
        // Campaign STIX id → citations of the campaign and its relationships.
        let mut campaign_cites: HashMap<&str, HashSet<String>> = HashMap::new();
        let mut attributed: Vec<(&str, &str)> = Vec::new();
        for o in active.values().filter(|o| o.kind == "campaign") {
            campaign_cites
                .entry(o.id.as_str())
                .or_default()
                .extend(o.citations());
        }
        for r in &rels {
            let (Some(s), Some(t)) = (r.source_ref.as_deref(), r.target_ref.as_deref()) else {
                continue;
            };
            if let Some(c) = campaign_cites.get_mut(s) {
                c.extend(r.citations());
                if r.relationship_type.as_deref() == Some("attributed-to")
                    && t.starts_with("intrusion-set--")
                {
                    attributed.push((s, t));
                }
            }
        }
        let mut group_uses: HashMap<&str, Vec<&Obj>> = HashMap::new();
        for r in &rels {
            if r.relationship_type.as_deref() == Some("uses") {
                if let Some(s) = r.source_ref.as_deref() {
                    group_uses.entry(s).or_default().push(r);
                }
            }
        }
        let mut leaks: BTreeMap<String, BTreeMap<String, Leaks>> = BTreeMap::new();
        for (c_ref, g_ref) in attributed {
            let (Some(c_id), Some(g_id)) = (active[c_ref].attack_id(), active[g_ref].attack_id())
            else {
                continue;
            };
            let cites = &campaign_cites[c_ref];
            let link = format!("/campaigns/{c_id}");
            let mut l = Leaks::default();
            l.citations.extend(active[g_ref].shared_citations(cites));
            for r in group_uses.get(g_ref).into_iter().flatten() {
                l.citations.extend(r.shared_citations(cites));
                let shares = r.citations().any(|c| cites.contains(&c))
                    || r.description.as_deref().is_some_and(|d| d.contains(&link));
                if !shares {
                    continue;
                }
                let target = active[r.target_ref.as_deref().unwrap_or_default()];
                let Some(tid) = target.attack_id() else {
                    continue;
                };
                match target.kind.as_str() {
                    "attack-pattern" => {
                        l.techniques.insert(tid);
                    }
                    "malware" | "tool" => {
                        l.software.insert(tid);
                    }
                    _ => {}
                }
            }
            leaks.entry(c_id).or_default().insert(g_id, l);
        }
        Ok(Provenance { leaks })
    }

    /// Leaked links computed from ATT&CK Enterprise v18.1 (the bundle the built-in knowledge
    /// base was made from), embedded in the crate (`data/campaign-leaks.json`; a test checks it
    /// against the corpus bundle).
    pub fn builtin() -> Provenance {
        serde_json::from_str(include_str!("../data/campaign-leaks.json")).unwrap_or_default()
    }

    /// The leaked links of `group` for campaign `campaign`, if any were found.
    pub fn leaks(&self, campaign: &str, group: &str) -> Option<&Leaks> {
        self.leaks.get(campaign)?.get(group)
    }

    /// Deterministic pretty JSON (the format of `data/campaign-leaks.json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}
