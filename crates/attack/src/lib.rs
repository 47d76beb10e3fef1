//! # tracehunt-attack: the ATT&CK knowledge base
//!
//! [`ActorKb`] holds what tracehunt needs from MITRE ATT&CK Enterprise to attribute detections to
//! intrusion sets (ATT&CK "groups"):
//!
//! * **groups** (`intrusion-set`, ids like `G0009`) with name, aliases, first description
//!   sentence, and the techniques they use, each technique tagged with *how* ATT&CK links it to
//!   the group ([`Source`]): directly, through a campaign attributed to the group, or through
//!   software the group (or one of its campaigns) uses;
//! * **techniques** (`attack-pattern`, `T1059` / `T1059.001`) with name and tactics;
//! * **software** (`malware` / `tool`, `S0021`) with aliases and techniques;
//! * **campaigns** (`campaign`, `C0017`) with the groups they are attributed to, their dates and
//!   techniques / software;
//! * the **revoked-by** map (old ATT&CK id → replacement id), plus a small embedded table that
//!   maps ATT&CK **v19** technique ids (used by current SigmaHQ rules) back to the v18.1 ids of
//!   the knowledge base (see [`ActorKb::canonical_technique`] and [`v19_mapping`]).
//!
//! ## Where the data comes from
//!
//! * [`ActorKb::from_stix_json`] reads a full ATT&CK **STIX 2.0 bundle**
//!   (`{"type":"bundle","objects":[...]}` as published in `mitre/cti/enterprise-attack/`).
//!   Used fields: `type`, `id`, `name`, `description`, `aliases` (groups, campaigns),
//!   `x_mitre_aliases` (software), `external_references[source_name = "mitre-attack"].external_id`
//!   (the ATT&CK id), `kill_chain_phases[kill_chain_name = "mitre-attack"].phase_name` (tactics),
//!   `first_seen` / `last_seen` (campaigns), `revoked`, `x_mitre_deprecated`, and the
//!   `relationship` objects `uses`, `attributed-to` and `revoked-by` (`source_ref` → `target_ref`).
//!   Revoked or deprecated groups, software and campaigns are skipped, as are relationships that
//!   are themselves revoked/deprecated or touch a revoked/deprecated object; revoked techniques
//!   only survive in the revoked-by map.
//! * [`ActorKb::builtin`] loads a compact snapshot committed in this crate
//!   (`data/attack-snapshot.json`, generated from ATT&CK v18.1,
//!   `mitre/cti` commit 421deacb) so the CLI works offline. Regenerate it with
//!
//!   ```text
//!   cargo run -p tracehunt-attack --example make-snapshot -- \
//!       ../shared/corpora/attack/enterprise-attack-18.1.json \
//!       crates/attack/data/attack-snapshot.json "ATT&CK Enterprise v18.1 (mitre/cti 421deacb)"
//!   ```
//!
//!   A test checks that the committed snapshot equals one regenerated from the corpus bundle.
//!
//! ## Example
//!
//! ```
//! use tracehunt_attack::{ActorKb, Source};
//!
//! let kb = ActorKb::builtin();
//! let g = kb.group_by_name_or_alias("shell crew").expect("alias of Deep Panda");
//! assert_eq!(g.id, "G0009");
//! assert!(g.techniques["T1505.003"].contains(&Source::Direct));
//!
//! // Sigma tags, plain ids, revoked ids and ATT&CK v19 ids all normalise to v18.1 ids.
//! assert_eq!(kb.canonical_technique("attack.t1059.001").as_deref(), Some("T1059.001"));
//! assert_eq!(kb.canonical_technique("attack.t1685").as_deref(), Some("T1562.001"));
//! assert_eq!(kb.technique("T1562.001").map(|t| t.name.as_str()), Some("Disable or Modify Tools"));
//! ```
//!
//! The crate does no I/O and no printing: callers hand it the JSON text.

mod snapshot;
mod sponsors;
mod stix;
mod v19;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use sponsors::{StateSponsor, StateSponsors};
pub use v19::{v19_mapping, V19Basis, V19Mapping};

/// Errors raised while building an [`ActorKb`].
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// The text is not valid JSON or does not have the expected shape. The
    /// parser's message is in this error's text, so it is not also its
    /// `source` (fresh-user finding: `{:#}` printed it twice).
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
    /// The JSON parsed but is not an ATT&CK STIX bundle (e.g. `type` is not `bundle`).
    #[error("not an ATT&CK STIX bundle: {0}")]
    NotABundle(String),
    /// The JSON parsed but is not a snapshot in a format this version understands.
    #[error("unsupported snapshot format {found:?} (expected {expected:?})")]
    SnapshotFormat {
        /// The `format` field found in the snapshot.
        found: String,
        /// The format this crate reads and writes.
        expected: &'static str,
    },
}

impl From<serde_json::Error> for AttackError {
    fn from(e: serde_json::Error) -> Self {
        AttackError::Json(e)
    }
}

/// How ATT&CK links a technique (or a piece of software) to a group.
///
/// Kept per technique so that any single campaign's contribution can be removed again (see
/// [`ActorKb::hold_out_campaign`]). Serialised as an internally tagged object, e.g.
/// `{"kind":"direct"}`, `{"kind":"campaign","campaign":"C0017"}`,
/// `{"kind":"software","software":"S0021"}`,
/// `{"kind":"campaign_software","campaign":"C0017","software":"S0021"}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A `uses` relationship from the group itself.
    Direct,
    /// A `uses` relationship from a campaign that is `attributed-to` the group.
    Campaign {
        /// Campaign ATT&CK id (`C0xxx`).
        campaign: String,
    },
    /// The group `uses` this software, and the software `uses` the technique.
    Software {
        /// Software ATT&CK id (`S0xxx`).
        software: String,
    },
    /// A campaign attributed to the group uses this software, which uses the technique.
    CampaignSoftware {
        /// Campaign ATT&CK id (`C0xxx`).
        campaign: String,
        /// Software ATT&CK id (`S0xxx`).
        software: String,
    },
}

impl Source {
    /// The campaign this source depends on, if any.
    pub fn campaign(&self) -> Option<&str> {
        match self {
            Source::Campaign { campaign } | Source::CampaignSoftware { campaign, .. } => {
                Some(campaign)
            }
            _ => None,
        }
    }

    /// The software this source goes through, if any.
    pub fn software(&self) -> Option<&str> {
        match self {
            Source::Software { software } | Source::CampaignSoftware { software, .. } => {
                Some(software)
            }
            _ => None,
        }
    }
}

/// An ATT&CK intrusion set (group), e.g. `G0009` Deep Panda.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// ATT&CK id, `G` + 4 digits (from `external_references[mitre-attack].external_id`).
    pub id: String,
    /// Primary name (`name`).
    pub name: String,
    /// Other names (`aliases` without the primary name), in bundle order.
    pub aliases: Vec<String>,
    /// First sentence of `description`, with Markdown links and `(Citation: …)` removed.
    pub description: Option<String>,
    /// Technique id (v18.1 form, e.g. `T1059.001`) → every way ATT&CK links it to this group
    /// (sorted, de-duplicated, never empty).
    pub techniques: BTreeMap<String, Vec<Source>>,
    /// Software id → how the group is linked to it: only [`Source::Direct`] and
    /// [`Source::Campaign`] occur here.
    pub software: BTreeMap<String, Vec<Source>>,
    /// Ids of campaigns attributed to the group (sorted).
    pub campaigns: Vec<String>,
    /// Dated public reports ATT&CK cites for the group: citation key
    /// (`external_references[].source_name`, e.g. `FireEye APT28 2017`) → publication year
    /// (from the reference's `description`, `Author. (2017, May 3). Title…`, else a year in the
    /// key). Collected from the intrusion-set object and its own `uses` relationships; undated
    /// references are left out. Evidence of *when* the group was active (see
    /// [`ActorKb::drop_group_citations`] for hold-outs).
    pub citations: BTreeMap<String, u16>,
    /// ATT&CK's own STIX id of the intrusion set (`intrusion-set--899…`), so STIX exports
    /// reference ATT&CK's object instead of making a duplicate; `None` when built without it.
    #[serde(default)]
    pub stix_id: Option<String>,
    /// `created`/`modified` of ATT&CK's object, so a STIX export that writes it under
    /// [`Group::stix_id`] writes ATT&CK's version of it, not a competing one.
    #[serde(default)]
    pub stix_version: Option<StixVersion>,
}

impl Group {
    /// Techniques the group uses directly (`uses` from the intrusion set itself), sorted.
    pub fn direct_techniques(&self) -> Vec<&str> {
        self.techniques
            .iter()
            .filter(|(_, s)| s.contains(&Source::Direct))
            .map(|(t, _)| t.as_str())
            .collect()
    }
}

/// An ATT&CK technique or sub-technique (`attack-pattern`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Technique {
    /// ATT&CK id: `T1059` or `T1059.001`.
    pub id: String,
    /// Name, e.g. `PowerShell` (sub-technique names do not repeat the parent name).
    pub name: String,
    /// Tactic short names from `kill_chain_phases` (`execution`, `defense-evasion`, …).
    pub tactics: Vec<String>,
    /// `x_mitre_deprecated`: kept so the id still resolves, but no group uses it.
    pub deprecated: bool,
    /// ATT&CK's own STIX id of the attack pattern (`attack-pattern--970a…`), so STIX exports
    /// reference ATT&CK's object instead of making a duplicate; `None` when built without it.
    #[serde(default)]
    pub stix_id: Option<String>,
    /// `created`/`modified` of ATT&CK's object (see [`Group::stix_version`]).
    #[serde(default)]
    pub stix_version: Option<StixVersion>,
}

/// The version of an ATT&CK STIX object: its `created` and `modified` timestamps exactly as
/// the bundle spells them (`2017-05-31T21:30:44.329Z`). STIX 2.1 §3.6 (versioning): an object
/// is identified by `id` + `modified`, so a copy with ATT&CK's id and these two values is the
/// same version of ATT&CK's object, where one with other timestamps would compete with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StixVersion {
    /// `created`, as in the bundle.
    pub created: String,
    /// `modified`, as in the bundle.
    pub modified: String,
}

impl Technique {
    /// The parent technique id for a sub-technique (`T1059.001` → `T1059`), `None` otherwise.
    pub fn parent_id(&self) -> Option<&str> {
        parent_technique(&self.id)
    }
}

/// Kind of ATT&CK software object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoftwareKind {
    /// STIX `malware`.
    Malware,
    /// STIX `tool`.
    Tool,
}

/// An ATT&CK software entry (`malware` or `tool`), e.g. `S0021` Derusbi.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Software {
    /// ATT&CK id, `S` + 4 digits.
    pub id: String,
    /// Primary name.
    pub name: String,
    /// Malware or tool.
    pub kind: SoftwareKind,
    /// Other names (`x_mitre_aliases` without the primary name).
    pub aliases: Vec<String>,
    /// Techniques the software `uses` (v18.1 ids).
    pub techniques: BTreeSet<String>,
}

/// An ATT&CK campaign, e.g. `C0017`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// ATT&CK id, `C` + 4 digits.
    pub id: String,
    /// Name (often the id itself).
    pub name: String,
    /// Groups the campaign is `attributed-to` (usually zero or one).
    pub groups: Vec<String>,
    /// `first_seen` as given in the bundle (RFC 3339 timestamp), if any.
    pub first_seen: Option<String>,
    /// `last_seen` as given in the bundle (RFC 3339 timestamp), if any.
    pub last_seen: Option<String>,
    /// Techniques the campaign `uses`.
    pub techniques: BTreeSet<String>,
    /// Software the campaign `uses`.
    pub software: BTreeSet<String>,
}

/// The ATT&CK knowledge base: groups, techniques, software, campaigns and revocations.
///
/// Build it with [`ActorKb::from_stix_json`], [`ActorKb::from_snapshot_json`] or
/// [`ActorKb::builtin`]. All ids are ATT&CK external ids (`G0009`, `T1059.001`, `S0021`,
/// `C0017`), upper-case.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorKb {
    label: Option<String>,
    groups: BTreeMap<String, Group>,
    techniques: BTreeMap<String, Technique>,
    software: BTreeMap<String, Software>,
    campaigns: BTreeMap<String, Campaign>,
    revoked_by: BTreeMap<String, String>,
    names: HashMap<String, String>,
}

/// Maximum revoked-by chain followed before giving up (guards against cycles).
const MAX_CHAIN: usize = 8;

impl ActorKb {
    /// Builds the knowledge base from an ATT&CK Enterprise STIX 2.0 bundle (JSON text).
    ///
    /// See the crate docs for the fields used and what is skipped.
    ///
    /// A bundle without any intrusion set is refused (issue #6: `--attack` with
    /// an empty bundle attributed nothing and `eval attribution` reported
    /// 0.0 % on 0 campaigns, both with exit code 0).
    pub fn from_stix_json(json: &str) -> Result<ActorKb, AttackError> {
        let kb = stix::parse(json)?;
        if kb.groups().is_empty() {
            return Err(AttackError::NotABundle(
                "no usable intrusion-set object (not ATT&CK Enterprise data)".into(),
            ));
        }
        Ok(kb)
    }

    /// Reads a compact snapshot written by [`ActorKb::to_snapshot_json`].
    pub fn from_snapshot_json(json: &str) -> Result<ActorKb, AttackError> {
        snapshot::from_json(json)
    }

    /// Writes the compact snapshot: one JSON object with `format`
    /// (`"tracehunt-attack-snapshot/1"`), `label`, `techniques`
    /// (`{"T1059.001":{"name":…,"tactics":[…]}}`), `software`
    /// (`{"S0021":{"name":…,"kind":"malware","aliases":[…],"techniques":[…]}}`), `campaigns`
    /// (`{"C0017":{"name":…,"groups":[…],"first_seen":…,"last_seen":…,"techniques":[…],"software":[…]}}`),
    /// `groups` (`{"G0009":{"name":…,"aliases":[…],"description":…,"techniques":[direct ids],"software":[direct ids]}}`)
    /// and `revoked_by` (`{"T1089":"T1562.001"}`). Derived links (campaign and software sources)
    /// are rebuilt on load, which keeps the file small. Output is deterministic (sorted keys,
    /// one entry per line).
    pub fn to_snapshot_json(&self) -> String {
        snapshot::to_json(self)
    }

    /// The knowledge base embedded in the crate (ATT&CK Enterprise v18.1), parsed once per
    /// process and shared.
    pub fn builtin() -> &'static ActorKb {
        static KB: OnceLock<ActorKb> = OnceLock::new();
        KB.get_or_init(|| {
            // The snapshot is generated and checked by this crate's tests, so it always parses;
            // fall back to an empty knowledge base rather than panicking.
            ActorKb::from_snapshot_json(include_str!("../data/attack-snapshot.json"))
                .unwrap_or_else(|_| ActorKb::empty())
        })
    }

    /// An empty knowledge base.
    pub fn empty() -> ActorKb {
        ActorKb {
            label: None,
            groups: BTreeMap::new(),
            techniques: BTreeMap::new(),
            software: BTreeMap::new(),
            campaigns: BTreeMap::new(),
            revoked_by: BTreeMap::new(),
            names: HashMap::new(),
        }
    }

    /// Free-text description of the data this knowledge base was built from, e.g.
    /// `ATT&CK Enterprise v18.1 (mitre/cti 421deacb)`; from the bundle's `x-mitre-collection`
    /// (`name` + `x_mitre_version`) when present, or set with [`ActorKb::set_label`].
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Sets the label returned by [`ActorKb::label`] (stored in snapshots).
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = Some(label.into());
    }

    /// All active groups, by id.
    pub fn groups(&self) -> &BTreeMap<String, Group> {
        &self.groups
    }

    /// All techniques (active and deprecated; revoked ones are only in [`ActorKb::revoked_by`]).
    pub fn techniques(&self) -> &BTreeMap<String, Technique> {
        &self.techniques
    }

    /// All active software, by id.
    pub fn software_all(&self) -> &BTreeMap<String, Software> {
        &self.software
    }

    /// All active campaigns, by id.
    pub fn campaigns(&self) -> &BTreeMap<String, Campaign> {
        &self.campaigns
    }

    /// Revoked ATT&CK id → the id that replaced it (one hop, as in the bundle; for techniques,
    /// groups and software alike).
    pub fn revoked_by(&self) -> &BTreeMap<String, String> {
        &self.revoked_by
    }

    /// Group by ATT&CK id (`G0009`, case-insensitive; accepts the Sigma tag form
    /// `attack.g0009`; a revoked group id follows revoked-by).
    pub fn group(&self, id: &str) -> Option<&Group> {
        let id = strip_attack_prefix(id.trim()).to_ascii_uppercase();
        if let Some(g) = self.groups.get(&id) {
            return Some(g);
        }
        self.groups.get(&self.follow_revoked(&id)?)
    }

    /// Group by id, primary name or alias, case-insensitively (`"shell crew"` → `G0009`).
    pub fn group_by_name_or_alias(&self, name: &str) -> Option<&Group> {
        let key = name.trim().to_lowercase();
        if let Some(id) = self.names.get(&key) {
            return self.groups.get(id);
        }
        self.group(&key)
    }

    /// Technique by exact ATT&CK id as stored in the knowledge base (`T1059.001`). Use
    /// [`ActorKb::canonical_technique`] first for Sigma tags, v19 or revoked ids.
    pub fn technique(&self, id: &str) -> Option<&Technique> {
        self.techniques.get(id)
    }

    /// Software by ATT&CK id (`S0021`, case-insensitive; accepts `attack.s0021`; follows
    /// revoked-by).
    pub fn software(&self, id: &str) -> Option<&Software> {
        let id = strip_attack_prefix(id.trim()).to_ascii_uppercase();
        // The id itself first: a bundle may give software a technique-shaped id that the
        // revoked-by map also holds (fuzz finding: malware "T1086" looked up to nothing).
        if let Some(s) = self.software.get(&id) {
            return Some(s);
        }
        self.software.get(&self.follow_revoked(&id)?)
    }

    /// Software by ATT&CK id (as [`ActorKb::software`]), primary name or alias,
    /// case-insensitively (`"mimikatz"`, `"S0002"` → S0002 Mimikatz). A primary name wins
    /// over another software's alias; among equal matches the lowest id wins. Linear in the
    /// number of software (about 800 in ATT&CK v18.1).
    pub fn software_by_name_or_alias(&self, name: &str) -> Option<&Software> {
        if let Some(s) = self.software(name) {
            return Some(s);
        }
        let key = name.trim().to_lowercase();
        self.software
            .values()
            .find(|s| s.name.to_lowercase() == key)
            .or_else(|| {
                self.software
                    .values()
                    .find(|s| s.aliases.iter().any(|a| a.to_lowercase() == key))
            })
    }

    /// Campaign by ATT&CK id (`C0017`, case-insensitive).
    pub fn campaign(&self, id: &str) -> Option<&Campaign> {
        self.campaigns.get(&id.trim().to_ascii_uppercase())
    }

    /// Normalises a technique reference into the id used by this knowledge base.
    ///
    /// Accepts `T1059.001`, `t1059.001`, Sigma tags `attack.t1059.001`, ids revoked in the
    /// loaded bundle (followed through revoked-by), and ATT&CK v19 ids unknown to the bundle
    /// (through the embedded [`v19_mapping`], primary equivalent first). An unknown
    /// sub-technique falls back to its parent (`T1027.018` → `T1027`). Returns `None` for
    /// anything else (malformed text, tactic tags such as `attack.execution`, v19 techniques
    /// without a v18.1 equivalent such as `T1682`).
    pub fn canonical_technique(&self, reference: &str) -> Option<String> {
        let id = normalise_technique_id(reference)?;
        self.resolve_technique(&id, 0)
    }

    fn resolve_technique(&self, id: &str, depth: usize) -> Option<String> {
        if depth > MAX_CHAIN {
            return None;
        }
        if self.techniques.contains_key(id) {
            return Some(id.to_string());
        }
        if let Some(next) = self.revoked_by.get(id) {
            if let Some(found) = self.resolve_technique(next, depth + 1) {
                return Some(found);
            }
        }
        if let Some(map) = v19::lookup(id) {
            if let Some(found) = map
                .v18_ids
                .iter()
                .find_map(|t| self.resolve_technique(t, depth + 1))
            {
                return Some(found);
            }
        }
        let parent = parent_technique(id)?;
        self.resolve_technique(parent, depth + 1)
    }

    /// ATT&CK v19 → v18.1 equivalents for `reference` (any form accepted by
    /// [`ActorKb::canonical_technique`]), primary first; `None` if the id is not a v19-only id.
    pub fn v19_equivalents(&self, reference: &str) -> Option<&'static [String]> {
        let id = normalise_technique_id(reference)?;
        v19::lookup(&id).map(|m| m.v18_ids.as_slice())
    }

    fn follow_revoked(&self, id: &str) -> Option<String> {
        let mut id = id.to_string();
        for _ in 0..MAX_CHAIN {
            match self.revoked_by.get(&id) {
                Some(next) => id = next.clone(),
                None => return Some(id),
            }
        }
        None
    }

    /// A copy of the knowledge base as if campaign `campaign` did not exist: its
    /// [`Source::Campaign`] / [`Source::CampaignSoftware`] links are removed from every group
    /// (techniques or software left with no source disappear) and the campaign itself is
    /// dropped. Meant for hold-out evaluation (attribute a campaign's observed techniques
    /// against a knowledge base that did not learn from it).
    pub fn hold_out_campaign(&self, campaign: &str) -> ActorKb {
        let campaign = campaign.trim().to_ascii_uppercase();
        let mut kb = self.clone();
        kb.campaigns.remove(&campaign);
        for g in kb.groups.values_mut() {
            g.campaigns.retain(|c| *c != campaign);
            for map in [&mut g.techniques, &mut g.software] {
                map.retain(|_, sources| {
                    sources.retain(|s| s.campaign() != Some(campaign.as_str()));
                    !sources.is_empty()
                });
            }
        }
        kb
    }

    /// Removes the citations named in `keys` (citation keys as in [`Group::citations`]) from
    /// group `group`: a hold-out uses it so that a held-out campaign's own reports do not date
    /// the group. Unknown groups or keys are ignored.
    pub fn drop_group_citations(&mut self, group: &str, keys: &BTreeSet<String>) {
        if let Some(g) = self.groups.get_mut(group) {
            g.citations.retain(|k, _| !keys.contains(k));
        }
    }

    /// Assembles a knowledge base from its normalised parts and derives the per-group
    /// campaign / software sources.
    fn assemble(
        label: Option<String>,
        mut groups: BTreeMap<String, Group>,
        techniques: BTreeMap<String, Technique>,
        software: BTreeMap<String, Software>,
        campaigns: BTreeMap<String, Campaign>,
        revoked_by: BTreeMap<String, String>,
    ) -> ActorKb {
        for c in campaigns.values() {
            for gid in &c.groups {
                let Some(g) = groups.get_mut(gid) else {
                    continue;
                };
                g.campaigns.push(c.id.clone());
                for t in &c.techniques {
                    if techniques.contains_key(t) {
                        g.techniques
                            .entry(t.clone())
                            .or_default()
                            .push(Source::Campaign {
                                campaign: c.id.clone(),
                            });
                    }
                }
                for s in &c.software {
                    if software.contains_key(s) {
                        g.software
                            .entry(s.clone())
                            .or_default()
                            .push(Source::Campaign {
                                campaign: c.id.clone(),
                            });
                    }
                }
            }
        }
        for g in groups.values_mut() {
            let links: Vec<(String, Source)> = g
                .software
                .iter()
                .flat_map(|(sid, srcs)| srcs.iter().map(move |s| (sid.clone(), s.clone())))
                .collect();
            for (sid, via) in links {
                let Some(sw) = software.get(&sid) else {
                    continue;
                };
                let source = match via.campaign() {
                    Some(c) => Source::CampaignSoftware {
                        campaign: c.to_string(),
                        software: sid.clone(),
                    },
                    None => Source::Software {
                        software: sid.clone(),
                    },
                };
                for t in &sw.techniques {
                    if techniques.contains_key(t) {
                        g.techniques
                            .entry(t.clone())
                            .or_default()
                            .push(source.clone());
                    }
                }
            }
            for sources in g.techniques.values_mut().chain(g.software.values_mut()) {
                sources.sort();
                sources.dedup();
            }
            g.campaigns.sort();
            g.campaigns.dedup();
        }
        let mut names = HashMap::new();
        for g in groups.values() {
            // Primary names win over aliases; among aliases the lowest group id wins.
            for a in &g.aliases {
                names
                    .entry(a.to_lowercase())
                    .or_insert_with(|| g.id.clone());
            }
        }
        for g in groups.values() {
            names.insert(g.name.to_lowercase(), g.id.clone());
        }
        ActorKb {
            label,
            groups,
            techniques,
            software,
            campaigns,
            revoked_by,
            names,
        }
    }
}

/// Publication year of an ATT&CK external reference: the first `(YYYY` followed by `,` or `)`
/// in its `description` (`Mandiant. (2021, March 4). …`), else a standalone `19xx`/`20xx` token
/// in its `source_name` (`FireEye APT28 2017`); only years 1980–2099 count. `None` when undated
/// (`(n.d.)`).
pub fn citation_year(description: Option<&str>, source_name: Option<&str>) -> Option<u16> {
    let plausible = |y: u16| (1980..=2099).contains(&y).then_some(y);
    if let Some(d) = description {
        let b = d.as_bytes();
        for (i, _) in d.match_indices('(') {
            let Some(digits) = b.get(i + 1..i + 5) else {
                break;
            };
            if digits.iter().all(u8::is_ascii_digit) && matches!(b.get(i + 5), Some(b',' | b')')) {
                if let Some(y) = d[i + 1..i + 5].parse().ok().and_then(plausible) {
                    return Some(y);
                }
            }
        }
    }
    source_name?
        .rsplit(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() == 4 && w.bytes().all(|c| c.is_ascii_digit()))
        .find_map(|w| w.parse().ok().and_then(plausible))
}

/// `T1059.001` → `Some("T1059")`; `T1059` → `None`.
pub fn parent_technique(id: &str) -> Option<&str> {
    id.split_once('.').map(|(p, _)| p)
}

fn strip_attack_prefix(s: &str) -> &str {
    match s.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("attack.") => &s[7..],
        _ => s,
    }
}

/// Normalises `attack.t1059.001` / `t1059.001` / ` T1059.001 ` to `T1059.001`; `None` unless
/// the result is `T` + 4 digits, optionally `.` + 3 digits.
pub fn normalise_technique_id(reference: &str) -> Option<String> {
    let s = strip_attack_prefix(reference.trim()).to_ascii_uppercase();
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = match b.len() {
        5 => b[0] == b'T' && digits(1..5),
        9 => b[0] == b'T' && digits(1..5) && b[5] == b'.' && digits(6..9),
        _ => false,
    };
    ok.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_ids() {
        assert_eq!(
            normalise_technique_id("attack.t1059.001").as_deref(),
            Some("T1059.001")
        );
        assert_eq!(
            normalise_technique_id("ATTACK.T1105").as_deref(),
            Some("T1105")
        );
        assert_eq!(normalise_technique_id(" t1105 ").as_deref(), Some("T1105"));
        assert_eq!(normalise_technique_id("attack.execution"), None);
        assert_eq!(normalise_technique_id("T10"), None);
        assert_eq!(normalise_technique_id("T1059.01"), None);
        assert_eq!(normalise_technique_id("ätt"), None);
        assert_eq!(normalise_technique_id(""), None);
    }

    #[test]
    fn citation_years() {
        assert_eq!(
            citation_year(
                Some("Alperovitch, D. (2014, July 7). Deep in Thought."),
                None
            ),
            Some(2014)
        );
        assert_eq!(
            citation_year(Some("FireEye. (2017). APT28 (see 1999)."), Some("x")),
            Some(2017)
        );
        assert_eq!(
            citation_year(Some("Someone. (n.d.). Title."), Some("FireEye APT28 2017")),
            Some(2017)
        );
        assert_eq!(
            citation_year(Some("(n.d.)"), Some("Symantec Orangeworm")),
            None
        );
        assert_eq!(citation_year(None, Some("Report 3000 x")), None);
        assert_eq!(citation_year(Some("(1234,"), None), None);
    }

    #[test]
    fn empty_kb_resolves_nothing() {
        let kb = ActorKb::empty();
        assert_eq!(kb.canonical_technique("T1059"), None);
        assert!(kb.group("G0009").is_none());
    }
}

#[cfg(test)]
mod empty_bundle_tests {
    use super::*;

    /// Issue #6: `--attack` with a bundle holding no intrusion set was
    /// accepted (attribution ranked nothing, `eval attribution` printed
    /// 0.0 % on 0 campaigns, exit code 0); it is an error now.
    #[test]
    fn bundle_without_intrusion_sets_is_refused() {
        for text in [
            r#"{"type":"bundle","objects":[]}"#,
            r#"{"type":"bundle","objects":[{"type":"intrusion-set","id":"x"}]}"#,
        ] {
            let e = ActorKb::from_stix_json(text).unwrap_err();
            assert!(matches!(e, AttackError::NotABundle(_)), "{e}");
        }
    }
}
