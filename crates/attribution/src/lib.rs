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
//! A conditional-logit model over a few interpretable inputs per group, with probabilities:
//!
//! * **Profile weight** `m_g(f)` of feature `f` (a technique, or a software id) for group `g` =
//!   the strongest way ATT&CK links it to the group ([`ScoringConfig`]: direct `uses` 1.0 >
//!   through an attributed campaign 0.8 > through software the group uses 0.5 > through software
//!   of a campaign 0.4), or `related_match` (0.5) × that weight when an observed
//!   sub-technique meets only its parent (observed `T1059.001`, group lists `T1059`). An
//!   observed **parent** (`T1087`) is a use of the whole family: it matches a group listing
//!   the parent or any sub-technique at full weight, its group count (`groups_using`) and
//!   background mass are the family's (issue #18: T1087 is used by 39 groups directly, not
//!   6), and a parent observed beside one of its sub-techniques is folded into it.
//!   `W_g = Σ_f m_g(f)`.
//! * **Likelihood ratio** (input `likelihood`): a Dirichlet-smoothed multinomial ("query
//!   likelihood") model per group, `P(f|g) = (m_g(f) + μ·P(f|bg)) / (W_g + μ)`, against the
//!   background `P(f|bg)` (all groups' weights pooled, +0.5 per vocabulary entry), summed over
//!   the observed features: `Σ_f ln(P(f|g) / P(f|bg))`. Rare techniques (`T1546.008`) weigh
//!   much more than ones every group uses (`T1105`), and a group with a huge profile pays for
//!   spreading its mass — specificity and size normalisation in one term. Techniques (μ =
//!   `smoothing`, 10) and software (μ = `software_smoothing`, 2) are separate vocabularies.
//! * **Matched** (input `matched`): how many observed features the profile has (plain overlap).
//! * **Size** (input `size`): `ln(1 + W_g)` — how much has been reported about the group. On
//!   ATT&CK campaigns the culprit is usually a well-reported group; the fitted weight is
//!   positive, i.e. a prior towards them.
//! * **Time** (input `time`, only with an observation window: [`Attributor::attribute_in`],
//!   e.g. a hunt's first … last event): `−ln(1 + gap)`, the years between the window and the
//!   group's **activity period** — earliest to latest year of its dated evidence, i.e. the
//!   publication years of the reports ATT&CK cites for it ([`Group::citations`], from the
//!   group object and its `uses` relationships) and its campaigns' `first_seen`/`last_seen`
//!   ([`activity_period`]). Groups last reported years before the window, or first reported
//!   years after it, lose; overlapping groups are untouched. Without a window the input is 0
//!   for every group.
//! * **Software** (input `software`): the same log-likelihood ratio over the observed
//!   software (`ln(P(s|g)/P(s|bg))`, its own vocabulary and μ), with its own fitted weight
//!   instead of `likelihood`'s: rare software is strong evidence, but software new to the
//!   group is common in new reports, so it is weighed apart from the techniques. The input
//!   `campaigns` (`ln(1 + campaigns)`) exists but is off in the shipped model (weight 0).
//! * **Score** `= Σ_k w_k · x_k(g)` ([`ModelWeights`], fitted by maximum likelihood forward
//!   in time — knowledge base ATT&CK v12.1, cases what v18.1 added, see [`forward`] — with
//!   [`eval::fit_weights`]) plus the group-tag and IOC bonuses;
//!   each evidence item's `weight` is its share (`w_likelihood · ln(P(f|g)/P(f|bg)) +
//!   w_matched`, with `w_software` in place of `w_likelihood` for software), the rest is `missing_penalty` (features the group lacks) and
//!   `prior` (size, campaigns and time).
//! * **Probability** `= softmax(score / temperature)` over every group with a profile (closed
//!   world: it assumes the actor is one of the ATT&CK groups), shown as a STIX 2.1 `confidence`
//!   0–100 with its words-of-estimative-probability label ([`wep_label`]). The weights were
//!   fitted as a conditional logit and the temperature on out-of-fold scores of the forward
//!   cases, so the probabilities are calibrated in the regime of real use (yesterday's
//!   knowledge base, today's intrusion), as far as 113 cases allow: see [`forward`] for the
//!   measured figures and reliability table (`tracehunt eval attribution --forward DIR`).
//!   The state-level answer ([`state_answer`], [`Attribution::states`]) sums them per
//!   suspected state sponsor. No "not in the
//!   knowledge base" mass is modelled: ATT&CK has no campaign attributed to an actor outside
//!   its groups to fit it on, so the probability is conditional on the actor being one of the
//!   groups.
//! * **Group tags** on fired rules (`attack.g0009`) add `group_tag_bonus` (1 nat). Software
//!   and groups a rule *names* in its SigmaHQ emerging-threats folder or title (resolved by
//!   `tracehunt_pipeline::rule_names` through ATT&CK and MISP galaxy aliases) are software and
//!   group evidence like tags; [`TagObservation::origins`] says where each came from.

//! * **IOC hits** ([`EvidenceSet::iocs`]): an indicator a threat-intelligence feed ties to an
//!   actor, seen in the logs, adds `ioc_bonus` = `T · ln LR` to that actor's group, a
//!   likelihood ratio from measured false-hit and multi-actor rates ([`IocRates`], see
//!   [`mod@ioc`]): a separate input, not one of the fitted weights.
//!
//! The verdict is **confident** when the top candidate matched at least `min_distinctive`
//! *distinctive* features (used by at most `distinctive_df_fraction` of groups) and is at least
//! `min_margin` (1.25) times as probable as the runner-up: the evidence *separates* the
//! candidates. That is a statement about separation, not about the probability: forward in
//! time such a lead named the right group in 42 % of cases ([`CLEAR_LEAD_PRECISION`], which
//! the verdict quotes), so even a clean separation often carries a low calibrated
//! probability, and the reason says both. Evidence made only of common techniques is never
//! confident. Every reason ends
//! with the evidence kind that decided the ranking ([`verdict`]: techniques, software, IOCs,
//! group tags, or none but the group-level terms), from the exact split of the lead over the
//! runner-up.
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
//!                  "attack.t1027.005", "attack.t1021.002", "attack.t1047", "attack.t1018",
//!                  "attack.t1057", "attack.t1059.001"]
//!         .into_iter()
//!         .map(|t| Observation::new(t))
//!         .collect(),
//!     ..EvidenceSet::default()
//! };
//! let result = Attributor::new(kb).attribute(&observed);
//! let top = &result.candidates[0];
//! assert_eq!(top.id, "G0009"); // Deep Panda
//! assert!(result.confident);
//! assert!(top.confidence <= 100 && !top.confidence_label.is_empty());
//! ```

use std::collections::{BTreeMap, BTreeSet};

use tracehunt_attack::{parent_technique, ActorKb, Group, Source};

mod bundle;
pub mod eval;
pub mod forward;
pub mod ioc;
pub mod provenance;
pub mod state;
mod types;
pub mod verdict;

pub use ioc::{resolve_actor, IocObservation, IocRates};
pub use provenance::{Leaks, Provenance};
pub use state::{state_answer, StateAnswer, StateShare};
pub use types::*;

/// Per-group profile: feature id → (weight, sources of the strongest link kind).
struct Profile<'kb> {
    group: &'kb Group,
    techniques: BTreeMap<&'kb str, (f64, &'kb [Source])>,
    software: BTreeMap<&'kb str, (f64, &'kb [Source])>,
    /// Sub-techniques in the profile by parent id.
    children: BTreeMap<&'kb str, Vec<&'kb str>>,
    /// `W_g`: sum of the technique weights.
    mass_techniques: f64,
    /// Sum of the software weights.
    mass_software: f64,
    /// Campaigns attributed to the group.
    campaigns: usize,
    /// Activity period from the dated evidence (see [`ModelWeights`], input `time`).
    activity: Option<Window>,
}

/// Ranks groups of an [`ActorKb`]; build once, call [`Attributor::attribute`] many times.
pub struct Attributor<'kb> {
    kb: &'kb ActorKb,
    config: ScoringConfig,
    profiles: Vec<Profile<'kb>>,
    technique_df: BTreeMap<&'kb str, usize>,
    software_df: BTreeMap<&'kb str, usize>,
    /// Background (collection) model: feature → Σ_g weight.
    technique_cf: BTreeMap<&'kb str, f64>,
    software_cf: BTreeMap<&'kb str, f64>,
    technique_total: f64,
    software_total: f64,
    technique_vocab: f64,
    software_vocab: f64,
}

/// Smoothing of the background model: pseudo-count per vocabulary entry.
const BACKGROUND_EPSILON: f64 = 0.5;

/// One group's score before it becomes a [`Candidate`].
struct ProfileScore<'kb> {
    matched: Vec<(usize, &'kb str, MatchKind, f64, &'kb [Source])>,
    missing: f64,
    prior: f64,
    total: f64,
    inputs: [f64; N_INPUTS],
}

/// A feature's background-model terms (see [`Attributor::background`]).
struct Background {
    mu: f64,
    background: f64,
}

/// A group that matched something, scored, before its candidate is built.
struct Scored<'a, 'kb> {
    profile: &'a Profile<'kb>,
    scored: ProfileScore<'kb>,
    tag: Option<&'a Feature>,
    ioc_ev: Option<&'a Vec<Evidence>>,
    tag_bonus: f64,
    ioc_bonus: f64,
    score: f64,
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

/// A software or group observation's origins (its id when it has none) into `observed_as`.
fn push_origins(into: &mut Vec<String>, o: &TagObservation) {
    if o.origins.is_empty() {
        push_unique(into, std::slice::from_ref(&o.id));
    } else {
        push_unique(into, &o.origins);
    }
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
        let mut technique_df: BTreeMap<&str, usize> = BTreeMap::new();
        let mut software_df: BTreeMap<&str, usize> = BTreeMap::new();
        for g in kb.groups().values() {
            if g.techniques.is_empty() && g.software.is_empty() {
                continue;
            }
            let techniques: BTreeMap<&str, (f64, &[Source])> = g
                .techniques
                .iter()
                .map(|(t, s)| (t.as_str(), (weigh(s), s.as_slice())))
                .collect();
            let software: BTreeMap<&str, (f64, &[Source])> = g
                .software
                .iter()
                .map(|(t, s)| (t.as_str(), (weigh(s), s.as_slice())))
                .collect();
            let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            // Document frequency of a technique *family*: a parent id counts every group that
            // lists the parent or any of its sub-techniques (issue #18: "T1087 used by 6
            // groups" while 39 list a sub-technique of it); a sub-technique counts exactly.
            let mut family: BTreeSet<&str> = BTreeSet::new();
            for t in g.techniques.keys() {
                if let Some(p) = parent_technique(t) {
                    children.entry(p).or_default().push(t.as_str());
                    family.insert(p);
                }
                family.insert(t.as_str());
            }
            for t in family {
                *technique_df.entry(t).or_default() += 1;
            }
            for s in g.software.keys() {
                *software_df.entry(s.as_str()).or_default() += 1;
            }
            profiles.push(Profile {
                group: g,
                techniques,
                software,
                children,
                mass_techniques: 0.0,
                mass_software: 0.0,
                campaigns: g.campaigns.len(),
                activity: activity_period(kb, g),
            });
        }
        let mut technique_cf: BTreeMap<&str, f64> = BTreeMap::new();
        let mut software_cf: BTreeMap<&str, f64> = BTreeMap::new();
        for p in &mut profiles {
            for (t, (w, _)) in &p.techniques {
                if parent_technique(t).is_some() || !p.children.contains_key(t) {
                    *technique_cf.entry(t).or_default() += w;
                }
                p.mass_techniques += w;
            }
            // A parent's background mass is its family's: per group the strongest of the
            // parent and its sub-techniques, the weight an observed parent matches with.
            for (parent, kids) in &p.children {
                let own = p.techniques.get(parent).map_or(0.0, |x| x.0);
                let best = kids
                    .iter()
                    .filter_map(|k| p.techniques.get(k))
                    .map(|x| x.0)
                    .fold(own, f64::max);
                *technique_cf.entry(parent).or_default() += best;
            }
            for (sw, (w, _)) in &p.software {
                *software_cf.entry(sw).or_default() += w;
                p.mass_software += w;
            }
        }
        let technique_total = technique_cf.values().sum();
        let software_total = software_cf.values().sum();
        Attributor {
            kb,
            technique_vocab: kb.techniques().len().max(1) as f64,
            software_vocab: kb.software_all().len().max(1) as f64,
            config,
            profiles,
            technique_df,
            software_df,
            technique_cf,
            software_cf,
            technique_total,
            software_total,
        }
    }

    /// The `time` input of a profile for an observation window (see [`ModelWeights`]).
    fn time_input(&self, p: &Profile<'kb>, window: Option<Window>) -> f64 {
        match (window, p.activity) {
            (Some(win), Some(period)) => 0.0 - (1.0 + win.gap(&period)).ln(),
            _ => 0.0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ScoringConfig {
        &self.config
    }

    /// Score of every group with a non-empty profile (not only the top candidates), in
    /// knowledge-base order: the same `score` as [`Candidate::score`]. Used by the evaluation
    /// ([`eval`]).
    pub fn score_all(
        &self,
        evidence: &EvidenceSet,
        window: Option<Window>,
    ) -> Vec<(&'kb str, f64)> {
        let (_, scores, _) = self.attribute_inner(evidence, 1, window);
        self.profiles
            .iter()
            .map(|p| p.group.id.as_str())
            .zip(scores)
            .collect()
    }

    /// The model's inputs `x(g)` (see [`ModelWeights`]) for every group with a non-empty
    /// profile, in knowledge-base order (group-tag and IOC bonuses are not inputs). Used to fit
    /// the weights ([`eval::fit_weights`]).
    pub fn group_inputs(
        &self,
        evidence: &EvidenceSet,
        window: Option<Window>,
    ) -> Vec<(&'kb str, [f64; N_INPUTS])> {
        let (_, _, inputs) = self.attribute_inner(evidence, 1, window);
        self.profiles
            .iter()
            .map(|p| p.group.id.as_str())
            .zip(inputs)
            .collect()
    }

    /// Normalises the evidence, scores every group and returns the ranking and verdict.
    pub fn attribute(&self, evidence: &EvidenceSet) -> Attribution {
        self.attribute_in(evidence, None)
    }

    /// Like [`Attributor::attribute`], for evidence observed during `window` (e.g. the first
    /// and last event of a hunt, in decimal years via [`Window::from_dates`]): a group whose
    /// activity period ([`activity_period`]: its dated ATT&CK reports and campaigns) is `gap`
    /// years away from the window loses `w_time · ln(1 + gap)` nats (input `time` of
    /// [`ModelWeights`]); groups active then, or without dated evidence, are unaffected.
    pub fn attribute_in(&self, evidence: &EvidenceSet, window: Option<Window>) -> Attribution {
        self.attribute_inner(evidence, self.config.top_n, window).0
    }

    #[allow(clippy::type_complexity)]
    fn attribute_inner(
        &self,
        evidence: &EvidenceSet,
        top_n: usize,
        window: Option<Window>,
    ) -> (Attribution, Vec<f64>, Vec<[f64; N_INPUTS]>) {
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
            push_origins(&mut f.observed_as, o);
            push_unique(&mut f.rule_ids, &o.rule_ids);
            push_unique(&mut f.rule_titles, &o.rule_titles);
            f.events = f.events.saturating_add(o.events);
        }
        let iocs = ioc::by_group(self.kb, &evidence.iocs, cfg.temperature, &mut unresolved);
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
            push_origins(&mut f.observed_as, o);
            push_unique(&mut f.rule_ids, &o.rule_ids);
            push_unique(&mut f.rule_titles, &o.rule_titles);
            f.events = f.events.saturating_add(o.events);
        }

        let features = merge_parents_into_subtechniques(features);

        let terms: Vec<Background> = features.iter().map(|f| self.background(f)).collect();
        let mut scored_groups: Vec<Scored<'_, 'kb>> = Vec::new();
        let mut all_scores: Vec<f64> = Vec::with_capacity(n);
        let mut all_inputs: Vec<[f64; N_INPUTS]> = Vec::with_capacity(n);
        for p in &self.profiles {
            let g = p.group;
            let scored = self.score_profile(p, &features, &terms, window);
            let tag = tags.get(&g.id);
            let tag_bonus = if tag.is_some() {
                cfg.group_tag_bonus
            } else {
                0.0
            };
            let ioc_ev = iocs.get(&g.id);
            let ioc_bonus = ioc::bonus(ioc_ev);
            let score = scored.total + tag_bonus + ioc_bonus;
            all_scores.push(score);
            all_inputs.push(scored.inputs);
            if scored.matched.is_empty() && tag.is_none() && ioc_ev.is_none() {
                continue;
            }
            scored_groups.push(Scored {
                profile: p,
                scored,
                tag,
                ioc_ev,
                tag_bonus,
                ioc_bonus,
                score,
            });
        }
        // Ranked before the evidence is built: only the candidates kept
        // (`top_n`) and the runner-up the verdict compares the top with
        // carry their evidence; the others only their scores and bonuses
        // (the verdict counts them) and are cut below. Building every
        // matching group's evidence was ~40 % of an incident's attribution.
        scored_groups.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.profile.group.id.cmp(&b.profile.group.id))
        });
        let full = if top_n > 0 { top_n.max(2) } else { usize::MAX };
        let idf_mass: f64 = features.iter().map(|f| f.idf).sum();
        let mut candidates: Vec<Candidate> = scored_groups
            .into_iter()
            .enumerate()
            .map(|(i, s)| self.candidate(s, &features, idf_mass, i < full))
            .collect();
        // Posterior over every group with a profile (not only those that matched).
        let t = if cfg.temperature > 0.0 {
            cfg.temperature
        } else {
            1.0
        };
        let max = all_scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = all_scores.iter().map(|s| ((s - max) / t).exp()).sum();
        for c in &mut candidates {
            c.probability =
                if z > 0.0 && !features.is_empty() || c.tag_bonus > 0.0 || c.ioc_bonus > 0.0 {
                    ((c.score - max) / t).exp() / z
                } else {
                    0.0
                };
            c.confidence = stix_confidence(c.probability);
            c.confidence_label = wep_label(c.confidence).to_string();
        }
        for (i, c) in candidates.iter_mut().enumerate() {
            c.rank = i + 1;
        }

        let states = if candidates.iter().any(|c| c.probability > 0.0) {
            state_answer(
                self.profiles
                    .iter()
                    .zip(&all_scores)
                    .map(|(p, s)| (p.group.id.as_str(), ((s - max) / t).exp() / z)),
                tracehunt_attack::StateSponsors::builtin(),
            )
        } else {
            StateAnswer::default()
        };
        let (confident, reason) = verdict::explain(
            ioc::verdict(&candidates).unwrap_or_else(|| self.verdict(&features, &candidates)),
            &candidates,
        );
        if top_n > 0 {
            candidates.truncate(top_n);
            candidates.shrink_to_fit();
        }
        let attribution = Attribution {
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
            states,
        };
        (attribution, all_scores, all_inputs)
    }

    /// The background model's terms of feature `f`, the same for every group:
    /// its smoothing `μ` and background probability `P(f|bg)`.
    fn background(&self, f: &Feature) -> Background {
        let cfg = &self.config;
        let (mu, cf, total, vocab) = if f.kind == EvidenceKind::Software {
            (
                cfg.software_smoothing,
                self.software_cf.get(f.id.as_str()).copied().unwrap_or(0.0),
                self.software_total,
                self.software_vocab,
            )
        } else {
            (
                cfg.smoothing,
                self.technique_cf.get(f.id.as_str()).copied().unwrap_or(0.0),
                self.technique_total,
                self.technique_vocab,
            )
        };
        Background {
            mu,
            background: (cf + BACKGROUND_EPSILON) / (total + BACKGROUND_EPSILON * vocab),
        }
    }

    /// The candidate of a scored group; its evidence (each matched feature
    /// with its rules, the tag and IOC evidence) only when `with_evidence`,
    /// else just its scores, bonuses and counts.
    fn candidate(
        &self,
        s: Scored<'_, 'kb>,
        features: &[Feature],
        idf_mass: f64,
        with_evidence: bool,
    ) -> Candidate {
        let cfg = &self.config;
        let g = s.profile.group;
        let distinctive_df = cfg.distinctive_df_fraction * self.profiles.len() as f64;
        let mut matched = Vec::new();
        let mut explained = 0.0;
        let mut distinctive = 0;
        for &(fi, matched_id, kind, weight, sources) in &s.scored.matched {
            let f = &features[fi];
            explained += f.idf
                * if kind == MatchKind::Exact {
                    1.0
                } else {
                    cfg.related_match
                };
            if (f.df as f64) <= distinctive_df {
                distinctive += 1;
            }
            if with_evidence {
                matched.push(Evidence {
                    kind: f.kind,
                    id: f.id.clone(),
                    name: f.name.clone(),
                    matched_id: matched_id.to_string(),
                    match_kind: kind,
                    sources: sources.to_vec(),
                    idf: f.idf,
                    groups_using: f.df,
                    weight,
                    observed_as: f.observed_as.clone(),
                    rule_ids: f.rule_ids.clone(),
                    rule_titles: f.rule_titles.clone(),
                    events: f.events,
                });
            }
        }
        let matched_count = s.scored.matched.len();
        if let (Some(t), true) = (s.tag, with_evidence) {
            matched.push(Evidence {
                kind: EvidenceKind::GroupTag,
                id: t.id.clone(),
                name: t.name.clone(),
                matched_id: t.id.clone(),
                match_kind: MatchKind::Tag,
                sources: Vec::new(),
                idf: 0.0,
                groups_using: 1,
                weight: s.tag_bonus,
                observed_as: t.observed_as.clone(),
                rule_ids: t.rule_ids.clone(),
                rule_titles: t.rule_titles.clone(),
                events: t.events,
            });
        }
        if with_evidence {
            matched.extend(s.ioc_ev.into_iter().flatten().cloned());
            matched.sort_by(|a, b| b.weight.total_cmp(&a.weight).then_with(|| a.id.cmp(&b.id)));
        }
        Candidate {
            rank: 0,
            id: g.id.clone(),
            name: g.name.clone(),
            aliases: if with_evidence {
                g.aliases.clone()
            } else {
                Vec::new()
            },
            score: s.score,
            probability: 0.0,
            confidence: 0,
            confidence_label: String::new(),
            missing_penalty: s.scored.missing,
            prior: s.scored.prior,
            tag_bonus: s.tag_bonus,
            ioc_bonus: s.ioc_bonus,
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
        }
    }

    /// Score of one group (see the crate docs): the matched features (index, profile id,
    /// match kind, contribution, sources), the penalty of the missing ones, the group-level
    /// terms, the total and the raw inputs.
    fn score_profile<'a>(
        &'a self,
        p: &'a Profile<'kb>,
        features: &[Feature],
        terms: &[Background],
        window: Option<Window>,
    ) -> ProfileScore<'kb> {
        let cfg = &self.config;
        let w = cfg.weights;
        let mut out = ProfileScore {
            matched: Vec::new(),
            missing: 0.0,
            prior: 0.0,
            total: 0.0,
            inputs: [0.0; N_INPUTS],
        };
        for (i, (f, t)) in features.iter().zip(terms).enumerate() {
            let (mu, background) = (t.mu, t.background);
            let mass = if f.kind == EvidenceKind::Software {
                p.mass_software
            } else {
                p.mass_techniques
            };
            let m = self.match_feature(p, f);
            let weight = m.map_or(0.0, |(_, _, w, _)| w);
            let llr = ((weight + mu * background) / ((mass + mu) * background)).ln();
            // Techniques and software are separate vocabularies with separately fitted
            // weights: a software's log-likelihood ratio is input 5, a technique's input 0.
            let (input, w_llr) = if f.kind == EvidenceKind::Software {
                (5, w.software)
            } else {
                (0, w.likelihood)
            };
            out.inputs[input] += llr;
            match m {
                Some((id, kind, _, sources)) => {
                    out.inputs[1] += 1.0;
                    out.matched
                        .push((i, id, kind, w_llr * llr + w.matched, sources));
                }
                None => out.missing += w_llr * llr,
            }
        }
        out.inputs[2] = (1.0 + p.mass_techniques).ln();
        out.inputs[3] = (1.0 + p.campaigns as f64).ln();
        out.inputs[4] = self.time_input(p, window);
        out.prior = w.size * out.inputs[2] + w.campaigns * out.inputs[3] + w.time * out.inputs[4];
        out.total = out
            .inputs
            .iter()
            .zip(w.to_array())
            .map(|(x, k)| x * k)
            .sum();
        out
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
        let exact = p.techniques.get_key_value(f.id.as_str());
        let r = self.config.related_match;
        if let Some(parent) = parent_technique(&f.id) {
            if let Some((k, (w, s))) = exact {
                return Some((*k, MatchKind::Exact, *w, *s));
            }
            if let Some((k, (w, s))) = p.techniques.get_key_value(parent) {
                return Some((*k, MatchKind::Parent, w * r, *s));
            }
            return None;
        }
        // An observed parent: the group uses the technique if it lists the parent or any
        // sub-technique of it (a sub-technique *is* a use of its parent), at full weight; the
        // strongest link wins, the parent itself on a tie.
        let child = p
            .children
            .get(f.id.as_str())
            .into_iter()
            .flatten()
            .filter_map(|c| p.techniques.get_key_value(c))
            .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0).then_with(|| b.0.cmp(a.0)))
            .map(|(k, (w, s))| (*k, MatchKind::SubTechnique, *w, *s));
        match (exact, child) {
            (Some((_, (w, _))), Some(c)) if *w < c.2 => Some(c),
            (Some((k, (w, s))), _) => Some((*k, MatchKind::Exact, *w, *s)),
            (None, c) => c,
        }
    }

    fn verdict(&self, features: &[Feature], candidates: &[Candidate]) -> (bool, String) {
        let cfg = &self.config;
        if features.is_empty() {
            return (false, verdict::NO_FEATURES.into());
        }
        let Some(top) = candidates.first() else {
            return (
                false,
                "no confident attribution: no ATT&CK group uses the observed techniques".into(),
            );
        };
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
        let ratio = candidates.get(1).map_or(f64::INFINITY, |c| {
            ((top.score - c.score) / cfg.temperature.max(1e-9)).exp()
        });
        let next = candidates
            .get(1)
            .map(|c| format!("next {} {} {}%", c.id, c.name, c.confidence))
            .unwrap_or_else(|| "no other candidate".into());
        let calibrated = format!(
            "probability that it is the actor {}% ({}), calibrated forward in time on what newer \
             ATT&CK releases added (a ranking signal, not proof)",
            top.confidence, top.confidence_label
        );
        if ratio < cfg.min_margin {
            return (
                false,
                format!(
                    "no confident attribution: top candidate {who} is only ×{ratio:.2} as probable as \
                     the next ({next}; need ×{:.2}); {calibrated}",
                    cfg.min_margin
                ),
            );
        }
        (
            true,
            format!(
                "clear lead (a ranking, not a probability): {who} separates from the other candidates, ×{ratio:.2} as probable \
                 as the next ({next}), matching {} of {} observed features, {} distinctive; {CLEAR_LEAD_PRECISION}; {calibrated}",
                top.matched_count,
                features.len(),
                top.distinctive_matches
            ),
        )
    }
}

/// The measured precision of a "clear lead" verdict, as the verdict states it: in the
/// forward-in-time evaluation ([`forward`], ATT&CK v12.1 → v18.1, 113 cases, cross-fitted by
/// group), 60 cases got a clear lead and the leader was the true group in 25 (42 %, Wilson
/// 95 % interval 30–54 %); on v14.1 → v18.1, 15 of 45 (33 %, 21–48 %). `tests/forward.rs`
/// checks these counts.
pub const CLEAR_LEAD_PRECISION: &str =
    "such a lead named the right group in 42% of forward-in-time \
     tests (25 of 60, 95% CI 30-54%)";

/// STIX 2.1 `confidence` (0–100) of a probability: `round(100 p)`, kept within 1–99 for a
/// probability strictly between 0 and 1. On the STIX 2.1 WEP scale (see [`wep_label`]) 0 means
/// "Impossible" and 100 "Certain", which a softmax probability over the ATT&CK groups never is
/// (fresh-user finding: a 0.3 % candidate was labelled "Impossible"). Exactly 0 (or NaN) → 0,
/// exactly 1 → 100.
pub fn stix_confidence(probability: f64) -> u8 {
    if probability.is_nan() || probability <= 0.0 {
        return 0;
    }
    if probability >= 1.0 {
        return 100;
    }
    (probability * 100.0).round().clamp(1.0, 99.0) as u8
}

/// Words-of-estimative-probability (WEP) label of a STIX 2.1 confidence value, as the
/// "STIX Confidence to WEP" table of the STIX 2.1 specification maps it (STIX Version 2.1,
/// OASIS Standard, 10 June 2021, Appendix A "Confidence Scales", WEP scale; the same words as
/// the `stix2` Python library's `value_to_wep`): 0 `Impossible`, 1–19 `Highly
/// Unlikely/Almost Certainly Not`, 20–39 `Unlikely/Probably Not`, 40–59 `Even Chance`, 60–79
/// `Likely/Probable`, 80–99 `Highly Likely/Almost Certain`, 100 `Certain`. The WEP scale is
/// the appendix's scale for probabilities (None/Low/Med/High and Admiralty credibility rate
/// confidence in a source, not a probability); [`stix_confidence`] keeps the end words for
/// probabilities that are exactly 0 or 1.
pub fn wep_label(confidence: u8) -> &'static str {
    match confidence {
        0 => "Impossible",
        1..=19 => "Highly Unlikely/Almost Certainly Not",
        20..=39 => "Unlikely/Probably Not",
        40..=59 => "Even Chance",
        60..=79 => "Likely/Probable",
        80..=99 => "Highly Likely/Almost Certain",
        _ => "Certain",
    }
}

/// A parent technique observed together with one of its sub-techniques is one observation,
/// not two (issue #18: a rule tagged `attack.t1087` and `attack.t1087.002` counted account
/// discovery twice): the parent is folded into the first observed sub-technique (its
/// references, rules and events are kept there; events are added only for rules the
/// sub-technique did not already list).
fn merge_parents_into_subtechniques(features: BTreeMap<(u8, String), Feature>) -> Vec<Feature> {
    let mut out: Vec<Feature> = Vec::with_capacity(features.len());
    let mut parents: Vec<Feature> = Vec::new();
    let observed: BTreeSet<String> = features.keys().map(|(_, id)| id.clone()).collect();
    for ((_, id), f) in features {
        let has_sub = f.kind == EvidenceKind::Technique
            && parent_technique(&id).is_none()
            && observed
                .range(format!("{id}.")..)
                .next()
                .is_some_and(|x| x.starts_with(&format!("{id}.")));
        if has_sub {
            parents.push(f);
        } else {
            out.push(f);
        }
    }
    for p in parents {
        let Some(sub) = out.iter_mut().find(|f| {
            f.kind == EvidenceKind::Technique && parent_technique(&f.id) == Some(p.id.as_str())
        }) else {
            continue;
        };
        if !p.rule_ids.iter().all(|r| sub.rule_ids.contains(r)) || p.rule_ids.is_empty() {
            sub.events = sub.events.saturating_add(p.events);
        }
        push_unique(&mut sub.observed_as, &p.observed_as);
        push_unique(&mut sub.rule_ids, &p.rule_ids);
        push_unique(&mut sub.rule_titles, &p.rule_titles);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #6: `tracehunt attribute --from=-inf` (or `+inf`, `+NaN`,
    /// `2e10-01-01`) parsed as a float year; scores became NaN and the
    /// ranking fell back to group order. Such dates are rejected now.
    #[test]
    fn window_rejects_non_digit_years_like_inf_and_nan() {
        for bad in [
            "-inf",
            "+inf",
            "+NaN",
            "2e10-01-01",
            "1e30",
            "",
            "20x4",
            "2024-13-01",
            "2024/05",
        ] {
            assert!(Window::from_dates(bad, "2024-01-01").is_none(), "{bad:?}");
        }
        let w = Window::from_dates("2024-05-01T10:00:00Z", "2023").unwrap();
        assert_eq!((w.first, w.last), (2023.0, 2024.0 + 4.0 / 12.0));
        assert!(Window::from_dates(" 2016-01-01 ", "2016-12").is_some());
    }
}
