//! The attribution's inputs and outputs (evidence, scoring configuration, fitted weights, the
//! observation window, ranked candidates with their evidence) — the data the [`Attributor`]
//! reads and returns; the scoring itself is in the crate root.

use serde::{Deserialize, Serialize};
use tracehunt_attack::{ActorKb, Group, Source};

use crate::{IocObservation, StateAnswer};

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
    /// Where the rules showed it, for the evidence line: `tag attack.s0002`, `folder "Turla"`,
    /// `title "Emotet"` (a name in a SigmaHQ emerging-threats folder or title, resolved
    /// through ATT&CK and MISP galaxy aliases). Empty for analyst input; then the id itself is
    /// shown. Becomes [`Evidence::observed_as`].
    #[serde(default)]
    pub origins: Vec<String>,
}

/// Everything observed: the input of [`Attributor::attribute`](crate::Attributor::attribute).
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
    /// IOCs seen in the logs that a feed ties to an actor, weighted by a likelihood ratio from
    /// measured rates ([`IocRates`](crate::IocRates)).
    #[serde(default)]
    pub iocs: Vec<IocObservation>,
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
    /// Dirichlet smoothing mass `μ` of the technique model (default 10): how many
    /// pseudo-techniques drawn from the background every group profile gets.
    pub smoothing: f64,
    /// Dirichlet smoothing mass of the software model (default 2).
    pub software_smoothing: f64,
    /// Weights of the model's per-group inputs (see [`ModelWeights`]); the defaults were
    /// fitted forward in time, ATT&CK v12.1 → v18.1 ([`forward`](crate::forward)).
    pub weights: ModelWeights,
    /// Log-likelihood bonus (nats) for a group tagged on a fired rule (default 1.0).
    pub group_tag_bonus: f64,
    /// Softmax temperature turning scores into probabilities (see [`Candidate::probability`]);
    /// default 1.0, the value fitted (minimum log-loss) on the out-of-fold scores (5 folds by
    /// group) of the forward-in-time cases ATT&CK v12.1 → v18.1 ([`forward`](crate::forward); the
    /// `ForwardReport::shipped` temperature).
    pub temperature: f64,
    /// The top candidate must be at least this many times as probable as the runner-up for a
    /// confident verdict (default 1.25; a score difference of `ln 1.25` nats).
    pub min_margin: f64,
    /// Minimum distinctive features matched by the top candidate (default 2).
    pub min_distinctive: usize,
    /// A feature is distinctive (uncommon) when at most this fraction of groups has it in
    /// their profile through any source (default 0.25).
    pub distinctive_df_fraction: f64,
    /// Number of candidates returned (default 10; 0 = every group that matched something).
    pub top_n: usize,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        ScoringConfig {
            direct_weight: 1.0,
            campaign_weight: 0.8,
            software_weight: 0.5,
            campaign_software_weight: 0.4,
            related_match: 0.5,
            smoothing: 10.0,
            software_smoothing: 2.0,
            weights: ModelWeights::default(),
            group_tag_bonus: 1.0,
            temperature: 1.0,
            min_margin: 1.25,
            min_distinctive: 2,
            distinctive_df_fraction: 0.25,
            top_n: 10,
        }
    }
}

/// Number of per-group model inputs (see [`ModelWeights`]).
pub const N_INPUTS: usize = 6;

/// Weights of the conditional-logit model `score(g) = Σ_k weight_k · x_k(g)`, over the
/// per-group inputs `x` (in this order, see [`Attributor::group_inputs`](crate::Attributor::group_inputs)):
///
/// 0. `likelihood`: the Dirichlet-smoothed log-likelihood ratio `Σ_f ln(P(f|g) / P(f|bg))` of
///    the observed techniques (specificity and profile-size aware);
/// 1. `matched`: how many observed techniques (exactly or as a parent/sub-technique) and
///    software the group's profile has;
/// 2. `size`: `ln(1 + W_g)`, the group's profile mass (how much has been reported on it);
/// 3. `campaigns`: `ln(1 + c_g)`, campaigns ATT&CK attributes to the group;
/// 4. `time`: `−ln(1 + gap)`, `gap` = years between the observation window (the hunt's first
///    … last event, [`Attributor::attribute_in`](crate::Attributor::attribute_in)) and the group's known **activity period**:
///    from the earliest to the end of the latest year of its dated evidence — the publication
///    years of the reports ATT&CK cites for it ([`Group::citations`](tracehunt_attack::Group))
///    and the dates of its campaigns. 0 when they overlap, without a window, or for a group
///    with no dated evidence;
/// 5. `software`: the same log-likelihood ratio over the observed software ids (their own
///    vocabulary and smoothing), with its own weight: a new report's software is often new
///    to the group (forward in time 14 of the 36 v14.1→v18.1 cases with software evidence
///    name none the older release links to the right group), so a software vocabulary
///    fitted apart from the techniques weighs a rare match without letting the many novel
///    items swamp it (issue #18; it replaced the matched-software count, which moved the
///    v14.1→v18.1 top-1 on software cases from 36.1 % to 41.7 %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelWeights {
    /// Weight of input 0 (log-likelihood ratio).
    pub likelihood: f64,
    /// Weight of input 1 (matched count).
    pub matched: f64,
    /// Weight of input 2 (profile size).
    pub size: f64,
    /// Weight of input 3 (campaign count).
    pub campaigns: f64,
    /// Weight of input 4 (time proximity).
    pub time: f64,
    /// Weight of input 5 (software log-likelihood ratio).
    #[serde(default)]
    pub software: f64,
}

impl Default for ModelWeights {
    fn default() -> Self {
        // Fitted forward in time (issue #18, `forward::evaluate_forward`): knowledge base
        // ATT&CK v12.1, the 113 cases v18.1 added for groups v12.1 knew (16 campaigns, 97 new
        // reports; techniques + software, the campaign dates or the report year as the
        // observation window), conditional-logit maximum likelihood (`eval::fit_weights`, L2 =
        // 1 on standardised inputs) with inputs likelihood, matched, size, time and the extra
        // software weight (`forward::FORWARD_INPUTS`; the campaign count is off). Expected
        // performance: that split's cross-fitted figures (`tracehunt eval attribution
        // --forward DIR`, reported as `shipped`; the test `tests/forward.rs` checks these
        // still match). Without an observation window the `time` input is 0 for every group.
        ModelWeights::from_array([0.1895, -0.0853, 1.4832, 0.0, 1.8627, 0.4899])
    }
}

impl ModelWeights {
    /// The weights as an array in input order.
    pub fn to_array(&self) -> [f64; N_INPUTS] {
        [
            self.likelihood,
            self.matched,
            self.size,
            self.campaigns,
            self.time,
            self.software,
        ]
    }

    /// Weights from an array in input order.
    pub fn from_array(a: [f64; N_INPUTS]) -> ModelWeights {
        ModelWeights {
            likelihood: a[0],
            matched: a[1],
            size: a[2],
            campaigns: a[3],
            time: a[4],
            software: a[5],
        }
    }
}

/// An observation window in decimal years (`2021.5` = July 2021), for the time input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Start.
    pub first: f64,
    /// End (≥ `first`).
    pub last: f64,
}

impl Window {
    /// From two timestamps starting `YYYY-MM` (RFC 3339 or ISO dates); `None` if either does
    /// not parse. The order is fixed if reversed.
    pub fn from_dates(first: &str, last: &str) -> Option<Window> {
        let (a, b) = (decimal_year(first)?, decimal_year(last)?);
        Some(Window {
            first: a.min(b),
            last: a.max(b),
        })
    }

    /// Years between this window and another (0 when they overlap).
    pub fn gap(&self, other: &Window) -> f64 {
        (other.first - self.last)
            .max(self.first - other.last)
            .max(0.0)
    }
}

/// A group's activity period: from January of the earliest to the end of the latest year of
/// its dated evidence (publication years of its citations; its campaigns' `first_seen` …
/// `last_seen`). `None` without dated evidence.
pub fn activity_period(kb: &ActorKb, g: &Group) -> Option<Window> {
    let mut period: Option<Window> = None;
    let mut add = |w: Window| {
        period = Some(match period {
            None => w,
            Some(p) => Window {
                first: p.first.min(w.first),
                last: p.last.max(w.last),
            },
        });
    };
    for y in g.citations.values() {
        let y = f64::from(*y);
        add(Window {
            first: y,
            last: y + 11.0 / 12.0,
        });
    }
    for c in g.campaigns.iter().filter_map(|c| kb.campaign(c)) {
        let Some(first) = c.first_seen.as_deref().or(c.last_seen.as_deref()) else {
            continue;
        };
        if let Some(w) = Window::from_dates(first, c.last_seen.as_deref().unwrap_or(first)) {
            add(w);
        }
    }
    period
}

/// `2021-05-01T…` → `2021.333…` (year + (month − 1) / 12).
fn decimal_year(s: &str) -> Option<f64> {
    // Digits only (issue #6: `--from=-inf` or `+inf` parsed as a float year,
    // every score became NaN and the ranking alphabetical): `YYYY`, then
    // optionally `-MM` with a month 01–12 and anything after it.
    let b = s.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0')))
    };
    let year = digits(0..4)?;
    let month = match b.len() {
        4 => 1,
        _ if b[4] == b'-' => digits(5..7).filter(|m| (1..=12).contains(m))?,
        _ => return None,
    };
    Some(f64::from(year) + f64::from(month - 1) / 12.0)
}

impl ScoringConfig {
    pub(crate) fn source_weight(&self, s: &Source) -> f64 {
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
    /// An IOC tied to the group by a threat-intelligence feed (`id` = the IOC value).
    Ioc,
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
    /// An IOC the feed ties to the group's name, an alias or its ATT&CK id.
    Ioc,
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
    /// Total score (nats): the evidence weights + `missing_penalty` + `prior` + `tag_bonus`,
    /// i.e. `ln P(observation | group) − ln P(observation | background) + ln prior`.
    pub score: f64,
    /// Posterior probability that this group is behind the observation, among the ATT&CK
    /// groups (closed world): `softmax(score / T)` over every group with a profile.
    pub probability: f64,
    /// STIX 2.1 `confidence` (0–100): `probability` in percent, rounded.
    pub confidence: u8,
    /// Words-of-estimative-probability label of `confidence` (STIX 2.1 WEP scale), e.g.
    /// `Likely/Probable`.
    pub confidence_label: String,
    /// Log-likelihood ratio of the observed features the group does *not* have (≤ 0).
    pub missing_penalty: f64,
    /// Group-level terms of `score` (nats): `w_size · size + w_campaigns · campaigns +
    /// w_time · time` (see [`ModelWeights`]); the time term is 0 without an observation window
    /// and negative for a group whose activity period is years away from it.
    pub prior: f64,
    /// Group-tag bonus included in `score`.
    pub tag_bonus: f64,
    /// IOC term included in `score`: `T · (max_i ln LR_i + ln n)` over the group's `n`
    /// distinct IOC hits ([`IocRates::likelihood_ratio`](crate::IocRates::likelihood_ratio)), 0 without IOCs.
    #[serde(default)]
    pub ioc_bonus: f64,
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
    /// The state-level answer: every group's probability summed per suspected state sponsor
    /// (MISP galaxy, [`StateSponsors::builtin`](tracehunt_attack::StateSponsors)), with the
    /// mass of groups without one as `unknown` ([`state_answer`](crate::state_answer)); empty when no group has a
    /// probability.
    #[serde(default)]
    pub states: StateAnswer,
}
