//! # tracehunt-attribution: rank ATT&CK groups against observed techniques
//!
//! Input is what detections showed ([`EvidenceSet`]): techniques from Sigma `attack.tNNNN`
//! tags (any id form; ATT&CK v19 and revoked ids are normalised through
//! [`ActorKb::canonical_technique`]), optionally software ids (`attack.s0002`) and group ids
//! (`attack.g0009`) tagged on the rules that fired. Output is an [`Attribution`]: candidate
//! groups sorted by score with the evidence behind each, and a verdict that says whether the
//! top candidate is a confident attribution.
//!
//! ## Model
//!
//! TF-IDF similarity between the observation and each group's ATT&CK profile:
//!
//! * **Profile weight** `p_g(f)` of feature `f` (a technique, or a software id when software
//!   was observed) for group `g` = the strongest way ATT&CK links it to the group
//!   ([`ScoringConfig`]: direct `uses` 1.0 > through an attributed campaign 0.8 > through
//!   software the group uses 0.5 > through software of a campaign 0.4). Direct links are
//!   curated reports about the group; software-derived links are capabilities of a tool the
//!   group *may* have used, so they count less.
//! * **Rarity** `idf(f) = ln((N + 1) / (df(f) + 1))`, `N` = groups with a non-empty profile,
//!   `df(f)` = groups whose profile contains `f` through any source. Techniques nearly every
//!   group uses (`T1105`, `T1082`) weigh close to 0; rare ones (`T1546.008`) weigh up to
//!   `ln(N + 1)` ≈ 5.
//! * **Observation vector** `o(f) = idf(f)` for each distinct observed feature. Event counts
//!   are reported but do not weigh: how many events a rule matched says more about logging
//!   volume than about who the adversary is.
//! * **Overlap** `dot = Σ_f o(f) · idf(f) · m_g(f)`, where `m_g(f)` is `p_g(f)` on an exact
//!   match, or `related_match` (0.5) × the group's weight for the parent technique (observed
//!   `T1059.001`, group lists `T1059`) or for its best sub-technique (observed `T1059`, group
//!   lists `T1059.003`).
//! * **Similarity** = `recall^(1-β) · precision^β` with `recall = dot / |o|²` (how much of
//!   the observation the group explains) and `precision = dot / |p_g|²` (how much of the
//!   group's profile, vector `p_g(f) · idf(f)`, was seen). With `β = 0.5` this is exactly
//!   the TF-IDF cosine `dot / (|o| · |p_g|)`. The precision term is what keeps groups with
//!   hundreds of techniques (APT28, Lazarus, APT41) from winning by size alone: matching a
//!   small fraction of a huge profile scores lower than matching most of a focused one. Pure
//!   cosine over-penalises them, though: one intrusion only ever shows a slice of a big
//!   group's repertoire. The default `β = 0.3` was chosen on the 22 ATT&CK v18.1 campaigns
//!   attributed to one group with ≥ 3 techniques: observing a campaign's techniques, the
//!   true group ranks first for 20/22 (cosine: 12/22); with the campaign *held out* of the
//!   knowledge base ([`ActorKb::hold_out_campaign`]) mean reciprocal rank rises from 0.13
//!   (cosine) to 0.31, while common-technique evidence still does not favour big groups
//!   (`β ≤ 0.15` starts to). Scores lie in `[0, 1]` (plus the group-tag bonus).
//! * **Group tags** on fired rules (`attack.g0009`) are weaker evidence (the rule author saw
//!   the group use that behaviour once): they add a flat `group_tag_bonus` (0.1) to that group.
//!
//! The verdict is **confident** only when the top score reaches `min_score`, beats the runner
//! up by the factor `min_margin`, and the top candidate matched at least
//! `min_distinctive` *distinctive* features (used by at most `distinctive_df_fraction` of
//! groups). Evidence made only of common techniques is therefore never confident.
//!
//! ## Example
//!
//! ```
//! use tracehunt_attack::ActorKb;
//! use tracehunt_attribution::{Attributor, EvidenceSet, Observation};
//!
//! let kb = ActorKb::builtin();
//! let observed = EvidenceSet {
//!     techniques: ["attack.t1546.008", "attack.t1505.003", "attack.t1218.010", "attack.t1564.003",
//!                  "attack.t1027.005", "attack.t1021.002", "attack.t1047", "attack.t1018"]
//!         .into_iter()
//!         .map(|t| Observation::new(t))
//!         .collect(),
//!     ..EvidenceSet::default()
//! };
//! let result = Attributor::new(kb).attribute(&observed);
//! assert_eq!(result.candidates[0].id, "G0009"); // Deep Panda
//! assert!(result.confident);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use tracehunt_attack::{parent_technique, ActorKb, Group, Source};

pub mod eval;
pub mod provenance;

pub use provenance::{Leaks, Provenance};

/// One observed technique, as a detection tagged it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Technique reference in any form: `T1059.001`, `attack.t1059.001`, a v19 id such as
    /// `attack.t1685`, or a revoked id.
    pub technique: String,
    /// Ids of the Sigma rules that showed it.
    #[serde(default)]
    pub rule_ids: Vec<String>,
    /// Titles of those rules (same order as `rule_ids` when both are given).
    #[serde(default)]
    pub rule_titles: Vec<String>,
    /// Number of events those rules matched.
    #[serde(default)]
    pub events: u64,
}

impl Observation {
    /// An observation of `technique` with no rule details and zero events.
    pub fn new(technique: impl Into<String>) -> Observation {
        Observation {
            technique: technique.into(),
            ..Observation::default()
        }
    }
}

/// An observed software (`attack.s0002`) or group (`attack.g0009`) tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagObservation {
    /// ATT&CK id in any case, with or without the `attack.` prefix.
    pub id: String,
    /// Ids of the Sigma rules carrying the tag that fired.
    #[serde(default)]
    pub rule_ids: Vec<String>,
    /// Titles of those rules.
    #[serde(default)]
    pub rule_titles: Vec<String>,
    /// Number of events those rules matched.
    #[serde(default)]
    pub events: u64,
}

/// Everything observed: the input of [`Attributor::attribute`].
///
/// JSON: `{"techniques":[{"technique":"attack.t1059.001","rule_ids":[…],"rule_titles":[…],"events":3}],
/// "software":[{"id":"attack.s0002",…}], "groups":[{"id":"attack.g0009",…}]}` (all but
/// `techniques[].technique` / `id` optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceSet {
    /// Observed techniques (repeats of the same technique are merged).
    #[serde(default)]
    pub techniques: Vec<Observation>,
    /// Observed software ids (`S0xxx`).
    #[serde(default)]
    pub software: Vec<TagObservation>,
    /// Group ids tagged on rules that fired (`G0xxx`); weaker evidence.
    #[serde(default)]
    pub groups: Vec<TagObservation>,
}

/// Tunable weights and thresholds; [`ScoringConfig::default`] documents the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringConfig {
    /// Weight of a technique the group uses directly (default 1.0).
    pub direct_weight: f64,
    /// Weight of a technique used by a campaign attributed to the group (default 0.8).
    pub campaign_weight: f64,
    /// Weight of a technique used by software the group uses (default 0.5).
    pub software_weight: f64,
    /// Weight of a technique used by software of an attributed campaign (default 0.4).
    pub campaign_software_weight: f64,
    /// Factor for parent/sub-technique matches instead of exact ones (default 0.5).
    pub related_match: f64,
    /// Flat score bonus for a group tagged on a fired rule (default 0.1).
    pub group_tag_bonus: f64,
    /// Minimum top score for a confident verdict (default 0.2).
    pub min_score: f64,
    /// Top score must be at least this multiple of the second (default 1.25).
    pub min_margin: f64,
    /// Minimum distinctive features matched by the top candidate (default 2).
    pub min_distinctive: usize,
    /// A feature is distinctive (uncommon) when at most this fraction of groups has it in
    /// their profile through any source (default 0.25).
    pub distinctive_df_fraction: f64,
    /// Number of candidates returned (default 10; 0 = all with a positive score).
    pub top_n: usize,
    /// Exponent `β` of the precision term in `similarity = recall^(1-β) · precision^β`
    /// (default 0.3; 0.5 is exactly the cosine, lower values penalise large profiles less,
    /// 0 ranks by recall alone so the biggest profiles win).
    pub precision_exponent: f64,
    /// Softmax temperature turning scores into probabilities (see [`Candidate::probability`]).
    pub temperature: f64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            direct_weight: 1.0,
            campaign_weight: 0.8,
            software_weight: 0.5,
            campaign_software_weight: 0.4,
            related_match: 0.5,
            group_tag_bonus: 0.1,
            min_score: 0.2,
            min_margin: 1.25,
            min_distinctive: 2,
            distinctive_df_fraction: 0.25,
            top_n: 10,
            precision_exponent: 0.3,
            temperature: 0.1,
        }
    }
}

impl ScoringConfig {
    fn source_weight(&self, s: &Source) -> f64 {
        match s {
            Source::Direct => self.direct_weight,
            Source::Campaign { .. } => self.campaign_weight,
            Source::Software { .. } => self.software_weight,
            Source::CampaignSoftware { .. } => self.campaign_software_weight,
        }
    }
}

/// What kind of observed feature an [`Evidence`] item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// An ATT&CK technique.
    Technique,
    /// An ATT&CK software id.
    Software,
    /// A group id tagged on a fired rule.
    GroupTag,
}

/// How an observed feature met the group's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// Same id.
    Exact,
    /// The observed sub-technique's parent is in the profile.
    Parent,
    /// The observed parent technique has a sub-technique in the profile.
    SubTechnique,
    /// The group itself was tagged.
    Tag,
}

/// One piece of evidence supporting a [`Candidate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Technique, software or group tag.
    pub kind: EvidenceKind,
    /// Observed id, canonical (v18.1) form: `T1059.001`, `S0002`, `G0009`.
    pub id: String,
    /// Name of the observed technique / software / group.
    pub name: String,
    /// Id in the group's profile that matched (differs from `id` for parent/sub matches).
    pub matched_id: String,
    /// How it matched.
    pub match_kind: MatchKind,
    /// How ATT&CK links `matched_id` to the group (empty for group tags).
    pub sources: Vec<Source>,
    /// Rarity `ln((N+1)/(df+1))` of the observed feature (0 for group tags).
    pub idf: f64,
    /// Groups whose profile contains the observed feature.
    pub groups_using: usize,
    /// Contribution to the candidate's score (the contributions add up to `score`).
    pub weight: f64,
    /// Original references as tagged (`attack.t1685`, …).
    pub observed_as: Vec<String>,
    /// Sigma rule ids that showed it.
    pub rule_ids: Vec<String>,
    /// Sigma rule titles that showed it.
    pub rule_titles: Vec<String>,
    /// Events matched by those rules.
    pub events: u64,
}

/// A ranked group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// 1-based rank.
    pub rank: usize,
    /// ATT&CK group id (`G0009`).
    pub id: String,
    /// Group name (`Deep Panda`).
    pub name: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// Total score: `similarity` + `tag_bonus`.
    pub score: f64,
    /// TF-IDF similarity `recall^(1-β) · precision^β` in `[0, 1]`.
    pub similarity: f64,
    /// Group-tag bonus included in `score`.
    pub tag_bonus: f64,
    /// Evidence, strongest first.
    pub matched: Vec<Evidence>,
    /// Observed features (techniques + software) this group matched.
    pub matched_count: usize,
    /// Observed features (techniques + software) that it did not match.
    pub missing_count: usize,
    /// Share of the observation's rarity mass the group explains, in `[0, 1]`:
    /// `Σ idf(matched) · match factor / Σ idf(observed)`.
    pub coverage: f64,
    /// Matched features used by at most `distinctive_df_fraction` of groups.
    pub distinctive_matches: usize,
    /// Techniques in the group's profile (all sources).
    pub profile_techniques: usize,
}

/// An observed feature after normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedFeature {
    /// Technique or software.
    pub kind: EvidenceKind,
    /// Canonical id.
    pub id: String,
    /// Name from the knowledge base.
    pub name: String,
    /// Rarity weight.
    pub idf: f64,
    /// Groups whose profile contains it.
    pub groups_using: usize,
    /// Original references.
    pub observed_as: Vec<String>,
}

/// The ranking and verdict.
///
/// JSON: `{"confident":true,"reason":"…","groups_considered":172,"observed":[…],
/// "unresolved":["attack.t1682"],"candidates":[{"rank":1,"id":"G0009","name":"Deep Panda",
/// "aliases":[…],"score":0.71,"similarity":0.71,"tag_bonus":0.0,"matched":[{"kind":"technique",
/// "id":"T1505.003","name":"Web Shell","matched_id":"T1505.003","match_kind":"exact",
/// "sources":[{"kind":"direct"}],"idf":2.1,"groups_using":20,"weight":0.1,…}],…}]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Best candidates, score descending, ties by id ascending (at most `top_n`).
    pub candidates: Vec<Candidate>,
    /// Whether the top candidate is a confident attribution.
    pub confident: bool,
    /// Human-readable explanation of the verdict.
    pub reason: String,
    /// Groups with a non-empty profile (`N` in the idf).
    pub groups_considered: usize,
    /// Normalised observed features.
    pub observed: Vec<ObservedFeature>,
    /// References that could not be resolved against the knowledge base.
    pub unresolved: Vec<String>,
}

/// Per-group profile: feature id → (weight, sources of the strongest link kind).
struct Profile<'kb> {
    group: &'kb Group,
    techniques: HashMap<&'kb str, (f64, &'kb [Source])>,
    software: HashMap<&'kb str, (f64, &'kb [Source])>,
    /// Sub-techniques in the profile by parent id.
    children: HashMap<&'kb str, Vec<&'kb str>>,
    norm_techniques_sq: f64,
    norm_software_sq: f64,
}

/// Ranks groups of an [`ActorKb`]; build once, call [`Attributor::attribute`] many times.
pub struct Attributor<'kb> {
    kb: &'kb ActorKb,
    config: ScoringConfig,
    profiles: Vec<Profile<'kb>>,
    technique_df: HashMap<&'kb str, usize>,
    software_df: HashMap<&'kb str, usize>,
}

struct Feature {
    kind: EvidenceKind,
    id: String,
    name: String,
    idf: f64,
    df: usize,
    observed_as: Vec<String>,
    rule_ids: Vec<String>,
    rule_titles: Vec<String>,
    events: u64,
}

fn push_unique(into: &mut Vec<String>, from: &[String]) {
    for s in from {
        if !into.contains(s) {
            into.push(s.clone());
        }
    }
}

impl<'kb> Attributor<'kb> {
    /// An attributor with the default [`ScoringConfig`].
    pub fn new(kb: &'kb ActorKb) -> Attributor<'kb> {
        Attributor::with_config(kb, ScoringConfig::default())
    }

    /// An attributor with explicit weights and thresholds.
    pub fn with_config(kb: &'kb ActorKb, config: ScoringConfig) -> Attributor<'kb> {
        let weigh = |sources: &'kb [Source]| -> f64 {
            sources
                .iter()
                .map(|s| config.source_weight(s))
                .fold(0.0, f64::max)
        };
        let mut profiles = Vec::new();
        let mut technique_df: HashMap<&str, usize> = HashMap::new();
        let mut software_df: HashMap<&str, usize> = HashMap::new();
        for g in kb.groups().values() {
            if g.techniques.is_empty() && g.software.is_empty() {
                continue;
            }
            let techniques: HashMap<&str, (f64, &[Source])> = g
                .techniques
                .iter()
                .map(|(t, s)| (t.as_str(), (weigh(s), s.as_slice())))
                .collect();
            let software: HashMap<&str, (f64, &[Source])> = g
                .software
                .iter()
                .map(|(t, s)| (t.as_str(), (weigh(s), s.as_slice())))
                .collect();
            let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
            for t in g.techniques.keys() {
                if let Some(p) = parent_technique(t) {
                    children.entry(p).or_default().push(t.as_str());
                }
                *technique_df.entry(t.as_str()).or_default() += 1;
            }
            for s in g.software.keys() {
                *software_df.entry(s.as_str()).or_default() += 1;
            }
            profiles.push(Profile {
                group: g,
                techniques,
                software,
                children,
                norm_techniques_sq: 0.0,
                norm_software_sq: 0.0,
            });
        }
        let n = profiles.len();
        for p in &mut profiles {
            p.norm_techniques_sq = p
                .techniques
                .iter()
                .map(|(t, (w, _))| (w * idf(n, technique_df.get(t).copied().unwrap_or(0))).powi(2))
                .sum();
            p.norm_software_sq = p
                .software
                .iter()
                .map(|(s, (w, _))| (w * idf(n, software_df.get(s).copied().unwrap_or(0))).powi(2))
                .sum();
        }
        Attributor {
            kb,
            config,
            profiles,
            technique_df,
            software_df,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ScoringConfig {
        &self.config
    }

    /// Score of every group with a non-empty profile (not only the top candidates), in
    /// knowledge-base order. Used by the evaluation ([`eval`]) and for calibration.
    pub fn score_all(&self, evidence: &EvidenceSet) -> Vec<(&'kb str, f64)> {
        let a = self.attribute_inner(evidence, 0);
        let scored: HashMap<String, f64> =
            a.candidates.into_iter().map(|c| (c.id, c.score)).collect();
        self.profiles
            .iter()
            .map(|p| {
                (
                    p.group.id.as_str(),
                    scored.get(&p.group.id).copied().unwrap_or(0.0),
                )
            })
            .collect()
    }

    /// Normalises the evidence, scores every group and returns the ranking and verdict.
    pub fn attribute(&self, evidence: &EvidenceSet) -> Attribution {
        self.attribute_inner(evidence, self.config.top_n)
    }

    fn attribute_inner(&self, evidence: &EvidenceSet, top_n: usize) -> Attribution {
        let n = self.profiles.len();
        let cfg = &self.config;
        let mut unresolved = Vec::new();

        // Normalise and merge observations.
        let mut features: BTreeMap<(u8, String), Feature> = BTreeMap::new();
        for o in &evidence.techniques {
            let Some(id) = self.kb.canonical_technique(&o.technique) else {
                if !unresolved.contains(&o.technique) {
                    unresolved.push(o.technique.clone());
                }
                continue;
            };
            let name = self
                .kb
                .technique(&id)
                .map(|t| t.name.clone())
                .unwrap_or_default();
            let df = self.technique_df.get(id.as_str()).copied().unwrap_or(0);
            let f = features.entry((0, id.clone())).or_insert_with(|| Feature {
                kind: EvidenceKind::Technique,
                id,
                name,
                idf: idf(n, df),
                df,
                observed_as: Vec::new(),
                rule_ids: Vec::new(),
                rule_titles: Vec::new(),
                events: 0,
            });
            push_unique(&mut f.observed_as, std::slice::from_ref(&o.technique));
            push_unique(&mut f.rule_ids, &o.rule_ids);
            push_unique(&mut f.rule_titles, &o.rule_titles);
            f.events = f.events.saturating_add(o.events);
        }
        for o in &evidence.software {
            let Some(sw) = self.kb.software(&o.id) else {
                if !unresolved.contains(&o.id) {
                    unresolved.push(o.id.clone());
                }
                continue;
            };
            let df = self.software_df.get(sw.id.as_str()).copied().unwrap_or(0);
            let f = features
                .entry((1, sw.id.clone()))
                .or_insert_with(|| Feature {
                    kind: EvidenceKind::Software,
                    id: sw.id.clone(),
                    name: sw.name.clone(),
                    idf: idf(n, df),
                    df,
                    observed_as: Vec::new(),
                    rule_ids: Vec::new(),
                    rule_titles: Vec::new(),
                    events: 0,
                });
            push_unique(&mut f.observed_as, std::slice::from_ref(&o.id));
            push_unique(&mut f.rule_ids, &o.rule_ids);
            push_unique(&mut f.rule_titles, &o.rule_titles);
            f.events = f.events.saturating_add(o.events);
        }
        let mut tags: BTreeMap<String, Feature> = BTreeMap::new();
        for o in &evidence.groups {
            let Some(g) = self.kb.group(&o.id) else {
                if !unresolved.contains(&o.id) {
                    unresolved.push(o.id.clone());
                }
                continue;
            };
            let f = tags.entry(g.id.clone()).or_insert_with(|| Feature {
                kind: EvidenceKind::GroupTag,
                id: g.id.clone(),
                name: g.name.clone(),
                idf: 0.0,
                df: 1,
                observed_as: Vec::new(),
                rule_ids: Vec::new(),
                rule_titles: Vec::new(),
                events: 0,
            });
            push_unique(&mut f.observed_as, std::slice::from_ref(&o.id));
            push_unique(&mut f.rule_ids, &o.rule_ids);
            push_unique(&mut f.rule_titles, &o.rule_titles);
            f.events = f.events.saturating_add(o.events);
        }

        let features: Vec<Feature> = features.into_values().collect();
        let with_software = features.iter().any(|f| f.kind == EvidenceKind::Software);
        let obs_norm = features.iter().map(|f| f.idf * f.idf).sum::<f64>().sqrt();
        let idf_mass: f64 = features.iter().map(|f| f.idf).sum();
        let distinctive_df = cfg.distinctive_df_fraction * n as f64;

        let mut candidates: Vec<Candidate> = Vec::new();
        for p in &self.profiles {
            let g = p.group;
            let norm_sq = p.norm_techniques_sq
                + if with_software {
                    p.norm_software_sq
                } else {
                    0.0
                };
            let mut matched = Vec::new();
            let mut dot = 0.0;
            let mut explained = 0.0;
            let mut distinctive = 0;
            for f in &features {
                let Some((matched_id, kind, w, sources)) = self.match_feature(p, f) else {
                    continue;
                };
                let factor = if kind == MatchKind::Exact {
                    1.0
                } else {
                    cfg.related_match
                };
                let contribution = f.idf * f.idf * w;
                dot += contribution;
                explained += f.idf * factor;
                if (f.df as f64) <= distinctive_df {
                    distinctive += 1;
                }
                matched.push(Evidence {
                    kind: f.kind,
                    id: f.id.clone(),
                    name: f.name.clone(),
                    matched_id: matched_id.to_string(),
                    match_kind: kind,
                    sources: sources.to_vec(),
                    idf: f.idf,
                    groups_using: f.df,
                    weight: contribution,
                    observed_as: f.observed_as.clone(),
                    rule_ids: f.rule_ids.clone(),
                    rule_titles: f.rule_titles.clone(),
                    events: f.events,
                });
            }
            let matched_count = matched.len();
            // recall = dot / |o|², precision = dot / |p_g|²; β = 0.5 gives the cosine.
            let similarity = if dot > 0.0 && obs_norm > 0.0 && norm_sq > 0.0 {
                let beta = cfg.precision_exponent.clamp(0.0, 1.0);
                let recall = dot / (obs_norm * obs_norm);
                let precision = dot / norm_sq;
                recall.powf(1.0 - beta) * precision.powf(beta)
            } else {
                0.0
            };
            for e in &mut matched {
                e.weight = if dot > 0.0 {
                    e.weight / dot * similarity
                } else {
                    0.0
                };
            }
            let mut tag_bonus = 0.0;
            if let Some(t) = tags.get(&g.id) {
                tag_bonus = cfg.group_tag_bonus;
                matched.push(Evidence {
                    kind: EvidenceKind::GroupTag,
                    id: t.id.clone(),
                    name: t.name.clone(),
                    matched_id: t.id.clone(),
                    match_kind: MatchKind::Tag,
                    sources: Vec::new(),
                    idf: 0.0,
                    groups_using: 1,
                    weight: tag_bonus,
                    observed_as: t.observed_as.clone(),
                    rule_ids: t.rule_ids.clone(),
                    rule_titles: t.rule_titles.clone(),
                    events: t.events,
                });
            }
            let score = similarity + tag_bonus;
            if score <= 0.0 {
                continue;
            }
            matched.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
            candidates.push(Candidate {
                rank: 0,
                id: g.id.clone(),
                name: g.name.clone(),
                aliases: g.aliases.clone(),
                score,
                similarity,
                tag_bonus,
                matched,
                matched_count,
                missing_count: features.len() - matched_count,
                coverage: if idf_mass > 0.0 {
                    explained / idf_mass
                } else {
                    0.0
                },
                distinctive_matches: distinctive,
                profile_techniques: g.techniques.len(),
            });
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        for (i, c) in candidates.iter_mut().enumerate() {
            c.rank = i + 1;
        }

        let (confident, reason) = self.verdict(&features, &candidates);
        if top_n > 0 {
            candidates.truncate(top_n);
        }
        Attribution {
            candidates,
            confident,
            reason,
            groups_considered: n,
            observed: features
                .iter()
                .map(|f| ObservedFeature {
                    kind: f.kind,
                    id: f.id.clone(),
                    name: f.name.clone(),
                    idf: f.idf,
                    groups_using: f.df,
                    observed_as: f.observed_as.clone(),
                })
                .collect(),
            unresolved,
        }
    }

    /// Best match of an observed feature in a group's profile:
    /// (profile id, match kind, effective weight incl. related factor, sources).
    fn match_feature(
        &self,
        p: &Profile<'kb>,
        f: &Feature,
    ) -> Option<(&'kb str, MatchKind, f64, &'kb [Source])> {
        if f.kind == EvidenceKind::Software {
            return p
                .software
                .get_key_value(f.id.as_str())
                .map(|(k, (w, s))| (*k, MatchKind::Exact, *w, *s));
        }
        if let Some((k, (w, s))) = p.techniques.get_key_value(f.id.as_str()) {
            return Some((*k, MatchKind::Exact, *w, *s));
        }
        let r = self.config.related_match;
        if let Some(parent) = parent_technique(&f.id) {
            if let Some((k, (w, s))) = p.techniques.get_key_value(parent) {
                return Some((*k, MatchKind::Parent, w * r, *s));
            }
            return None;
        }
        p.children
            .get(f.id.as_str())?
            .iter()
            .filter_map(|c| p.techniques.get_key_value(c))
            .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0).then_with(|| b.0.cmp(a.0)))
            .map(|(k, (w, s))| (*k, MatchKind::SubTechnique, w * r, *s))
    }

    fn verdict(&self, features: &[Feature], candidates: &[Candidate]) -> (bool, String) {
        let cfg = &self.config;
        if features.is_empty() {
            return (
                false,
                "no confident attribution: no technique or software evidence resolved against ATT&CK"
                    .into(),
            );
        }
        let Some(top) = candidates.first() else {
            return (
                false,
                "no confident attribution: no ATT&CK group uses the observed techniques".into(),
            );
        };
        let second = candidates.get(1).map_or(0.0, |c| c.score);
        let who = format!("{} {}", top.id, top.name);
        if top.distinctive_matches < cfg.min_distinctive {
            let n_distinctive = features
                .iter()
                .filter(|f| {
                    (f.df as f64) <= cfg.distinctive_df_fraction * self.profiles.len() as f64
                })
                .count();
            return (
                false,
                format!(
                    "no confident attribution: evidence is mostly common techniques ({} of {} observed \
                     features are used by at most {:.0}% of groups; top candidate {} matched {}, need {})",
                    n_distinctive,
                    features.len(),
                    cfg.distinctive_df_fraction * 100.0,
                    who,
                    top.distinctive_matches,
                    cfg.min_distinctive
                ),
            );
        }
        if top.score < cfg.min_score {
            return (
                false,
                format!(
                    "no confident attribution: top candidate {who} scores {:.3} < {:.3}",
                    top.score, cfg.min_score
                ),
            );
        }
        if top.score < cfg.min_margin * second {
            return (
                false,
                format!(
                    "no confident attribution: top candidate {who} ({:.3}) does not separate from the \
                     next ({:.3}; need ×{:.2})",
                    top.score, second, cfg.min_margin
                ),
            );
        }
        (
            true,
            format!(
                "{who} leads with score {:.3} (next {:.3}), matching {} of {} observed features, {} distinctive",
                top.score,
                second,
                top.matched_count,
                features.len(),
                top.distinctive_matches
            ),
        )
    }
}

/// `ln((n + 1) / (df + 1))`, never negative.
fn idf(n: usize, df: usize) -> f64 {
    ((n as f64 + 1.0) / (df as f64 + 1.0)).ln().max(0.0)
}

/// Set of canonical technique ids of an evidence set, for callers that want to de-duplicate
/// before display (unresolvable references dropped).
pub fn canonical_techniques(kb: &ActorKb, evidence: &EvidenceSet) -> BTreeSet<String> {
    evidence
        .techniques
        .iter()
        .filter_map(|o| kb.canonical_technique(&o.technique))
        .collect()
}
