//! # Campaign hold-out evaluation
//!
//! How well does the ranking name the group behind an intrusion it has not learnt from? ATT&CK
//! campaigns are the only public ground truth at hand: a campaign (`C0024` SolarWinds
//! Compromise) lists the techniques and software seen in one intrusion and the group it is
//! `attributed-to` (`G0016` APT29). For each such campaign [`evaluate`]
//!
//! 1. removes the campaign from the knowledge base ([`hold_out`]):
//!    * [`HoldOut::Naive`]: only what ATT&CK links to the group *through the campaign*
//!      ([`ActorKb::hold_out_campaign`]); techniques and software the group also has directly
//!      or via other campaigns/software stay;
//!    * [`HoldOut::LeakageAware`]: additionally the group's *direct* `uses` links that repeat the
//!      campaign's own sources ([`Provenance`]) — ATT&CK copies e.g. SUNBURST from the
//!      SolarWinds reports into APT29's direct software, which leaves the answer in the
//!      profile under a naive hold-out;
//!    * in both modes, the group's citations that the campaign also cites
//!      ([`Leaks::citations`](crate::Leaks)) stop dating the group, and the campaign's own
//!      dates go with it, so the held-out campaign never feeds the group's activity period
//!      (the `time` input);
//! 2. feeds the campaign's techniques (and software, unless `techniques_only`) as evidence, and
//!    its `first_seen` … `last_seen` as the observation window (a hunt sees its events'
//!    timestamps; `use_time = false` turns this off);
//! 3. records the true group's rank among all groups, for the model ([`Attributor`]) and for a
//!    **naive-overlap baseline** (number of observed techniques and software ids found in the
//!    group's profile, through any source), scored by the same code path;
//! 4. records what the true group's held-out profile still shares with the evidence
//!    ([`Overlap`]): the **oracle ceiling** ([`EvalReport::oracle_ttp`]) is the share of
//!    campaigns where it still matches something — with no overlap left, every group that
//!    matches anything outranks it under any technique/software method.
//!
//! Metrics ([`Metrics`]): top-1/3/5 hit rate and mean reciprocal rank, counted with ties
//! resolved at random (a true group tied with 3 others for first counts ¼ top-1), and Brier
//! scores of probabilities. Baseline probabilities are `softmax(score / T)` over all groups with
//! the temperature `T` fitted by minimum log-loss **leave-one-campaign-out** (the campaign
//! being scored never takes part in fitting its own temperature).
//!
//! The model's weights ([`ModelWeights`]) are fitted by maximum likelihood ([`fit_weights`], a
//! conditional logit over the groups, L2 = 1 on standardised inputs, fixed a priori). The
//! headline figures ([`EvalReport::model`]) are **nested leave-one-campaign-out**: for
//! campaign `i`, the input set (among [`INPUT_SETS`]), the weights and the softmax temperature
//! are all chosen on the other campaigns only (the set and temperature by an inner
//! leave-one-out over them) — nothing fitted ever sees the campaign it is tested on.
//! [`EvalReport::model_ttp`] is the same procedure without the `time` input.
//! [`EvalReport::model_shipped`] scores the configuration passed in (by default the shipped
//! weights, which *were* fitted on all campaigns: in-sample, for reference only).
//!
//! Only campaigns attributed to exactly one group present in the knowledge base and with at
//! least one technique are used; the others are listed in [`EvalReport::skipped`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tracehunt_attack::ActorKb;

use crate::provenance::Provenance;
use crate::{Attributor, ModelWeights, ScoringConfig, Window, N_INPUTS};

mod fit;
mod oracle;
mod score;

pub(crate) use fit::dot;
pub use fit::{fit_weights, FitCase};
use oracle::overlap;
pub use oracle::Overlap;
use score::{evidence_of, same};
pub(crate) use score::{fit_temperature, Scored};
pub use score::{score_groups, softmax, Ranker};

/// What is removed from the knowledge base before a campaign is attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldOut {
    /// Only the links ATT&CK derives through the campaign itself.
    Naive,
    /// Also the group's direct links that cite the campaign's sources ([`Provenance`]).
    LeakageAware,
}

impl HoldOut {
    /// `naive` / `leakage-aware`.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldOut::Naive => "naive",
            HoldOut::LeakageAware => "leakage-aware",
        }
    }
}

/// A copy of `kb` that has not learnt from `campaign` (see [`HoldOut`]). In both modes the
/// attributed group's citations that the campaign also cites (`provenance`,
/// [`Leaks::citations`](crate::Leaks)) are removed, so the campaign's own reports never date
/// the group. For [`HoldOut::LeakageAware`] the group's direct links listed in `provenance`
/// for that campaign are dropped as well (their software-derived techniques disappear with
/// them).
pub fn hold_out(kb: &ActorKb, campaign: &str, mode: HoldOut, provenance: &Provenance) -> ActorKb {
    let mut held = kb.hold_out_campaign(campaign);
    let Some(by_group) = provenance.leaks.get(campaign) else {
        return held;
    };
    // In both modes the campaign's own reports never date the group (the `time` input).
    for (gid, leaks) in by_group {
        held.drop_group_citations(gid, &leaks.citations);
    }
    if mode == HoldOut::Naive {
        return held;
    }
    if by_group.values().all(|l| l.is_empty()) {
        return held;
    }
    // Edit the group's direct links in the snapshot form and rebuild the derived ones.
    let Ok(mut snap) = serde_json::from_str::<serde_json::Value>(&held.to_snapshot_json()) else {
        return held;
    };
    for (gid, leaks) in by_group {
        let Some(g) = snap.get_mut("groups").and_then(|g| g.get_mut(gid)) else {
            continue;
        };
        for (key, drop) in [
            ("techniques", &leaks.techniques),
            ("software", &leaks.software),
        ] {
            if let Some(serde_json::Value::Array(list)) = g.get_mut(key) {
                list.retain(|v| v.as_str().is_none_or(|s| !drop.contains(s)));
            }
        }
    }
    ActorKb::from_snapshot_json(&snap.to_string()).unwrap_or(held)
}

/// Removes from every group of `kb` the citations published from `floor(window.first)` to
/// `floor(window.last) + 1` (the stricter time hold-out, [`EvalOptions::strict_time`]).
pub fn drop_citations_during(kb: &mut ActorKb, window: Window) {
    let (lo, hi) = (window.first.floor(), window.last.floor() + 1.0);
    let drops: Vec<(String, BTreeSet<String>)> = kb
        .groups()
        .iter()
        .map(|(id, g)| {
            let keys = g
                .citations
                .iter()
                .filter(|(_, y)| (lo..=hi).contains(&f64::from(**y)))
                .map(|(k, _)| k.clone())
                .collect();
            (id.clone(), keys)
        })
        .collect();
    for (id, keys) in drops {
        kb.drop_group_citations(&id, &keys);
    }
}

/// One campaign to attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalCase {
    /// Campaign id (`C0024`).
    pub campaign: String,
    /// Campaign name.
    pub name: String,
    /// The group it is attributed to (`G0016`).
    pub group: String,
    /// Techniques the campaign uses.
    pub techniques: Vec<String>,
    /// Software the campaign uses.
    pub software: Vec<String>,
    /// The campaign's `first_seen` … `last_seen`, when given.
    pub window: Option<Window>,
}

/// A campaign left out of the evaluation, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Campaign id.
    pub campaign: String,
    /// Why it was not used.
    pub reason: String,
}

/// The campaigns of `kb` usable for hold-out (attributed to exactly one known group, at least
/// one technique), sorted by id, and those skipped.
pub fn campaign_cases(kb: &ActorKb) -> (Vec<EvalCase>, Vec<Skipped>) {
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
    for c in kb.campaigns().values() {
        let groups: Vec<&String> = c
            .groups
            .iter()
            .filter(|g| kb.groups().contains_key(*g))
            .collect();
        let reason = match (groups.len(), c.techniques.len()) {
            (0, _) => Some("not attributed to a group".to_string()),
            (1, 0) => Some("no techniques".to_string()),
            (1, _) => None,
            (n, _) => Some(format!("attributed to {n} groups")),
        };
        if let Some(reason) = reason {
            if !groups.is_empty() {
                skipped.push(Skipped {
                    campaign: c.id.clone(),
                    reason,
                });
            }
            continue;
        }
        cases.push(EvalCase {
            campaign: c.id.clone(),
            name: c.name.clone(),
            group: groups[0].clone(),
            techniques: c.techniques.iter().cloned().collect(),
            software: c.software.iter().cloned().collect(),
            window: c
                .first_seen
                .as_deref()
                .and_then(|f| Window::from_dates(f, c.last_seen.as_deref().unwrap_or(f))),
        });
    }
    (cases, skipped)
}

/// Result of one ranker on one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Rank of the true group (1 = first); with ties, the middle of the tied block.
    pub rank: f64,
    /// Other groups with exactly the same score as the true group.
    pub tied: usize,
    /// Probability given to the true group (leave-one-out calibrated).
    pub probability: f64,
    /// Top-ranked group (ties by id).
    pub top: String,
    /// Its probability (leave-one-out calibrated).
    pub top_probability: f64,
    /// Temperature used for this campaign (fitted on the other campaigns).
    pub temperature: f64,
}

/// One campaign's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Campaign id.
    pub campaign: String,
    /// Campaign name.
    pub name: String,
    /// True group id.
    pub group: String,
    /// Techniques fed.
    pub techniques: usize,
    /// Software fed.
    pub software: usize,
    /// The campaign's observation window (`first_seen` … `last_seen`), if dated.
    pub window: Option<Window>,
    /// Direct links of the true group removed as leaked (leakage-aware hold-out only).
    pub leaked_removed: usize,
    /// Groups ranked.
    pub groups: usize,
    /// The model.
    pub model: Outcome,
    /// The model without the `time` input (techniques/software only), also fitted
    /// leave-one-campaign-out.
    pub model_ttp: Outcome,
    /// The naive-overlap baseline.
    pub baseline: Outcome,
    /// The model with the configuration passed in (shipped weights; in-sample when those were
    /// fitted on these campaigns), temperature leave-one-out.
    pub model_shipped: Outcome,
    /// Weights fitted on the other campaigns and used for this one.
    pub weights: [f64; N_INPUTS],
    /// Input set selected for this campaign by nested leave-one-out (see
    /// [`EvalOptions::input_sets`]).
    pub inputs: [bool; N_INPUTS],
    /// What the true group's held-out profile still shares with the evidence (oracle
    /// diagnostics).
    pub overlap: Overlap,
}

/// Summary metrics over the campaigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Campaigns evaluated.
    pub cases: usize,
    /// Share with the true group first (ties split at random).
    pub top1: f64,
    /// Share with the true group in the first three.
    pub top3: f64,
    /// Share with the true group in the first five.
    pub top5: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// Brier score of the top candidate's probability against "the top candidate is the true
    /// group" (0 perfect; always answering 0.5 scores 0.25).
    pub brier_top: f64,
    /// Multi-class Brier score `Σ_g (p_g − y_g)²` over all groups (0 perfect, 2 worst).
    pub brier: f64,
    /// Mean log-loss `−ln p(true group)`.
    pub log_loss: f64,
    /// Mean probability of the top candidate (compare with `top1` for calibration).
    pub mean_top_probability: f64,
}

/// Options of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOptions {
    /// What to hold out.
    pub mode: HoldOut,
    /// Feed only the campaign's techniques (what Sigma detections give), not its software.
    pub techniques_only: bool,
    /// Feed the campaign's dates as the observation window (the `time` input).
    pub use_time: bool,
    /// Stricter time hold-out: every group's citations published from the campaign's first
    /// year to one year after its last are removed too (not only those the campaign cites),
    /// so no report that might describe the held-out campaign dates anyone. Pessimistic: it
    /// also removes legitimate evidence of the true group's activity then.
    pub strict_time: bool,
    /// Candidate input sets of the fitted model (see [`ModelWeights`] for the inputs); the one
    /// used on each campaign is chosen by nested leave-one-out (lowest out-of-sample
    /// log-loss on the other campaigns). One set = no selection.
    pub input_sets: Vec<[bool; N_INPUTS]>,
    /// L2 penalty of the weight fit (on standardised inputs).
    pub l2: f64,
    /// The model's configuration (smoothing, link weights; its `weights` are the shipped ones
    /// scored in [`EvalReport::model_shipped`]).
    pub config: ScoringConfig,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            mode: HoldOut::LeakageAware,
            techniques_only: false,
            use_time: true,
            strict_time: false,
            input_sets: INPUT_SETS.to_vec(),
            l2: DEFAULT_L2,
            config: ScoringConfig::default(),
        }
    }
}

/// Candidate input sets (in [`ModelWeights`] order: likelihood, matched, size, campaigns,
/// time, software), fixed before evaluation: the technique model alone, with the software
/// count, with time, with both. The campaign-count input is never offered (a prior towards
/// groups with ATT&CK campaigns, which the hold-out itself changes).
pub const INPUT_SETS: [[bool; N_INPUTS]; 4] = [
    [true, true, true, false, false, false],
    [true, true, true, false, false, true],
    [true, true, true, false, true, false],
    [true, true, true, false, true, true],
];

/// L2 penalty used when fitting the shipped weights (fixed, not tuned).
pub const DEFAULT_L2: f64 = 1.0;

/// Everything [`evaluate`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Hold-out mode.
    pub mode: HoldOut,
    /// Whether software was withheld from the evidence.
    pub techniques_only: bool,
    /// Whether the campaign dates were fed as the observation window.
    pub use_time: bool,
    /// Whether the stricter time hold-out was used ([`EvalOptions::strict_time`]).
    #[serde(default)]
    pub strict_time: bool,
    /// Candidate input sets of the fitted model.
    pub input_sets: Vec<[bool; N_INPUTS]>,
    /// Input set chosen on all campaigns (lowest leave-one-out log-loss).
    pub inputs_all: [bool; N_INPUTS],
    /// Knowledge-base label.
    pub knowledge_base: Option<String>,
    /// The model, weights fitted leave-one-campaign-out (the honest figures).
    pub model: Metrics,
    /// The model without the `time` input (weights fitted leave-one-campaign-out the same way).
    pub model_ttp: Metrics,
    /// The naive-overlap baseline (temperature leave-one-out).
    pub baseline: Metrics,
    /// Oracle ceiling of any technique/software method: share of campaigns whose true group's
    /// held-out profile still matches at least one observed feature (with none, every group
    /// that matches something outranks it).
    pub oracle_ttp: f64,
    /// Share of campaigns whose true group matches something and is not dominated (no other
    /// group matches a strict superset of its matched features): a softer ceiling for
    /// rankings that mainly reward matches.
    pub oracle_undominated: f64,
    /// The configuration passed in (shipped weights), temperature leave-one-out; in-sample
    /// when its weights were fitted on these campaigns.
    pub model_shipped: Metrics,
    /// Weights fitted on all campaigns (what [`ScoringConfig::default`] should carry).
    pub weights_all: ModelWeights,
    /// Softmax temperature fitted on all campaigns' leave-one-out scores (what
    /// [`ScoringConfig::default`]'s `temperature` should carry).
    pub temperature_all: f64,
    /// Per-campaign results.
    pub cases: Vec<CaseResult>,
    /// Campaigns not used, with the reason.
    pub skipped: Vec<Skipped>,
}

fn outcome(s: &Scored, t: f64) -> Outcome {
    let (above, tied) = s.above_tied();
    let p = softmax(&s.scores, t);
    let top = s.top();
    Outcome {
        rank: above as f64 + 1.0 + tied as f64 / 2.0,
        tied,
        probability: p[s.truth],
        top: s.ids[top].clone(),
        top_probability: p[top],
        temperature: t,
    }
}

fn metrics(scored: &[&Scored], outcomes: &[&Outcome]) -> Metrics {
    let n = scored.len();
    let mut m = Metrics {
        cases: n,
        top1: 0.0,
        top3: 0.0,
        top5: 0.0,
        mrr: 0.0,
        brier_top: 0.0,
        brier: 0.0,
        log_loss: 0.0,
        mean_top_probability: 0.0,
    };
    if n == 0 {
        return m;
    }
    for (s, o) in scored.iter().zip(outcomes) {
        let (above, tied) = s.above_tied();
        let block = (tied + 1) as f64;
        let hit = |k: usize| ((k as f64 - above as f64) / block).clamp(0.0, 1.0);
        m.top1 += hit(1);
        m.top3 += hit(3);
        m.top5 += hit(5);
        m.mrr += (above + 1..=above + tied + 1)
            .map(|r| 1.0 / r as f64)
            .sum::<f64>()
            / block;
        let p = softmax(&s.scores, o.temperature);
        // Expected binary Brier of the top probability when tied groups share first place.
        let q = o.top_probability;
        let p_hit = hit(1);
        m.brier_top += p_hit * (1.0 - q).powi(2) + (1.0 - p_hit) * q * q;
        m.brier += p
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let y = if i == s.truth { 1.0 } else { 0.0 };
                (x - y).powi(2)
            })
            .sum::<f64>();
        m.log_loss -= p[s.truth].max(1e-12).ln();
        m.mean_top_probability += q;
    }
    let nf = n as f64;
    for x in [
        &mut m.top1,
        &mut m.top3,
        &mut m.top5,
        &mut m.mrr,
        &mut m.brier_top,
        &mut m.brier,
        &mut m.log_loss,
        &mut m.mean_top_probability,
    ] {
        *x /= nf;
    }
    m
}

/// Leave-one-out outcomes: case `i` uses a temperature fitted on all cases but `i`.
fn loo_outcomes(scored: &[Scored]) -> Vec<Outcome> {
    (0..scored.len())
        .map(|i| {
            let t = fit_temperature(
                scored
                    .iter()
                    .enumerate()
                    .filter(move |(j, _)| *j != i)
                    .map(|(_, s)| s),
            );
            outcome(&scored[i], t)
        })
        .collect()
}

fn refs<T>(v: &[T]) -> Vec<&T> {
    v.iter().collect()
}

/// What [`loo_fit`] returns: per case the out-of-sample scores, outcome, weights and the
/// input set selected for it; then the input set, weights and temperature chosen on all
/// campaigns (what [`ScoringConfig::default`] should carry).
struct LooFit {
    scored: Vec<Scored>,
    outcomes: Vec<Outcome>,
    weights: Vec<[f64; N_INPUTS]>,
    selected: Vec<[bool; N_INPUTS]>,
    inputs_all: [bool; N_INPUTS],
    weights_all: ModelWeights,
    temperature_all: f64,
}

/// Leave-one-campaign-out fit and scoring, with the model's input set chosen among
/// `candidates` and the softmax temperature fitted, both by **nested** leave-one-out.
///
/// For campaign `i`: for every candidate input set `S` and every other campaign `j`, weights
/// fitted without `i` and `j` score `j`; `S_i` is the set whose out-of-sample scores have the
/// lowest log-loss (at their best temperature `T_i`, ties to the earlier candidate). Campaign
/// `i` is then scored with weights fitted on all other campaigns using `S_i`, and its
/// probabilities are `softmax(score / T_i)`. Neither the input set, the weights nor the
/// temperature used on campaign `i` ever saw it. The shipped choice (`inputs_all`,
/// `weights_all`, `temperature_all`) is made the same way one level up: the set with the
/// lowest leave-one-out log-loss over all campaigns, its weights fitted on all of them.
fn loo_fit(
    fit_cases: &[FitCase],
    fit_ids: &[Vec<String>],
    all_ids: &[Vec<String>],
    truths: &[&str],
    l2: f64,
    candidates: &[[bool; N_INPUTS]],
) -> LooFit {
    let n = fit_cases.len();
    let trainable: Vec<usize> = (0..n)
        .filter(|&i| fit_cases[i].truth != usize::MAX)
        .collect();
    let fit_without = |out: &[usize], inputs: [bool; N_INPUTS]| -> ModelWeights {
        let train: Vec<&FitCase> = trainable
            .iter()
            .filter(|j| !out.contains(j))
            .map(|&j| &fit_cases[j])
            .collect();
        fit_weights(&train, l2, inputs)
    };
    let score_with = |i: usize, w: &ModelWeights| -> Scored {
        let by_id: std::collections::HashMap<&str, f64> = fit_ids[i]
            .iter()
            .map(String::as_str)
            .zip(fit_cases[i].inputs.iter().map(|x| dot(x, w)))
            .collect();
        let pairs: Vec<(String, f64)> = all_ids[i]
            .iter()
            .map(|g| {
                (
                    g.clone(),
                    by_id.get(g.as_str()).copied().unwrap_or(f64::NEG_INFINITY),
                )
            })
            .collect();
        Scored::new(pairs, truths[i])
    };
    // Best (log-loss, temperature, set) over the candidates, scoring the cases `eval` with
    // weights fitted without `out` and the evaluated case.
    let choose = |out: &[usize]| -> (f64, [bool; N_INPUTS]) {
        let mut best: Option<(f64, f64, [bool; N_INPUTS])> = None;
        for &set in candidates {
            let scored: Vec<Scored> = trainable
                .iter()
                .filter(|j| !out.contains(j))
                .map(|&j| {
                    let mut drop = out.to_vec();
                    drop.push(j);
                    score_with(j, &fit_without(&drop, set))
                })
                .collect();
            let t = fit_temperature(scored.iter());
            let loss: f64 = scored
                .iter()
                .map(|s| -softmax(&s.scores, t)[s.truth].max(1e-12).ln())
                .sum();
            if best.is_none_or(|(l, _, _)| loss < l - 1e-9) {
                best = Some((loss, t, set));
            }
        }
        best.map_or((1.0, [false; N_INPUTS]), |(_, t, s)| (t, s))
    };
    let mut fit = LooFit {
        scored: Vec::new(),
        outcomes: Vec::new(),
        weights: Vec::new(),
        selected: Vec::new(),
        inputs_all: [false; N_INPUTS],
        weights_all: ModelWeights::default(),
        temperature_all: 1.0,
    };
    for i in 0..n {
        let (t, set) = choose(&[i]);
        let w = fit_without(&[i], set);
        let s = score_with(i, &w);
        fit.outcomes.push(outcome(&s, t));
        fit.scored.push(s);
        fit.weights.push(w.to_array());
        fit.selected.push(set);
    }
    let (t, set) = choose(&[]);
    fit.inputs_all = set;
    fit.weights_all = fit_without(&[], set);
    fit.temperature_all = t;
    fit
}

/// Runs the campaign hold-out (see the module docs).
pub fn evaluate(kb: &ActorKb, provenance: &Provenance, options: &EvalOptions) -> EvalReport {
    let (cases, skipped) = campaign_cases(kb);
    let mut shipped = Vec::new();
    let mut baseline = Vec::new();
    let mut fit_cases: Vec<FitCase> = Vec::new();
    let mut fit_ids: Vec<Vec<String>> = Vec::new();
    let mut all_ids: Vec<Vec<String>> = Vec::new();
    let mut removed = Vec::new();
    let mut groups = Vec::new();
    let mut overlaps = Vec::new();
    let ranker = Ranker::Model(options.config.clone());
    for c in &cases {
        let mut held = hold_out(kb, &c.campaign, options.mode, provenance);
        if options.strict_time {
            if let Some(w) = c.window {
                drop_citations_during(&mut held, w);
            }
        }
        removed.push(match options.mode {
            HoldOut::Naive => 0,
            HoldOut::LeakageAware => provenance
                .leaks(&c.campaign, &c.group)
                .map_or(0, |l| l.techniques.len() + l.software.len()),
        });
        groups.push(held.groups().len());
        let ev = evidence_of(c, options.techniques_only);
        let window = if options.use_time { c.window } else { None };
        shipped.push(Scored::new(
            score_groups(&held, &ev, window, &ranker),
            &c.group,
        ));
        baseline.push(Scored::new(
            score_groups(&held, &ev, window, &Ranker::Overlap),
            &c.group,
        ));
        let at = Attributor::with_config(&held, options.config.clone());
        let rows = at.group_inputs(&ev, window);
        let truth = rows
            .iter()
            .position(|(g, _)| *g == c.group)
            .unwrap_or(usize::MAX);
        let mut ov = overlap(&held, &ev, &c.group);
        if let Some(g) = held.group(&c.group) {
            ov.dated = g.citations.len()
                + g.campaigns
                    .iter()
                    .filter_map(|id| held.campaign(id))
                    .filter_map(|x| {
                        let f = x.first_seen.as_deref().or(x.last_seen.as_deref())?;
                        Window::from_dates(f, x.last_seen.as_deref().unwrap_or(f))
                    })
                    .map(|w| (w.last.floor() - w.first.floor()) as usize + 1)
                    .sum::<usize>();
        }
        if truth != usize::MAX && window.is_some() {
            let t = rows[truth].1[4];
            ov.time = t;
            let above = rows
                .iter()
                .filter(|(_, x)| x[4] > t && !same(x[4], t))
                .count();
            let tied = rows.iter().filter(|(_, x)| same(x[4], t)).count() - 1;
            ov.time_rank = above as f64 + 1.0 + tied as f64 / 2.0;
        }
        overlaps.push(ov);
        fit_ids.push(rows.iter().map(|(g, _)| g.to_string()).collect());
        fit_cases.push(FitCase {
            inputs: rows.iter().map(|(_, x)| *x).collect(),
            truth,
        });
        all_ids.push(held.groups().keys().cloned().collect());
    }
    let truths: Vec<&str> = cases.iter().map(|c| c.group.as_str()).collect();
    // Leave-one-campaign-out (nested): weights, input set and temperature never see the
    // campaign they score.
    let full = loo_fit(
        &fit_cases,
        &fit_ids,
        &all_ids,
        &truths,
        options.l2,
        &options.input_sets,
    );
    // The same procedure without the time input (techniques/software only).
    let no_time: Vec<[bool; N_INPUTS]> = options
        .input_sets
        .iter()
        .filter(|s| !s[4])
        .copied()
        .collect();
    let ttp = loo_fit(
        &fit_cases, &fit_ids, &all_ids, &truths, options.l2, &no_time,
    );
    let shipped_out = loo_outcomes(&shipped);
    let base_out = loo_outcomes(&baseline);
    let results: Vec<CaseResult> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| CaseResult {
            campaign: c.campaign.clone(),
            name: c.name.clone(),
            group: c.group.clone(),
            techniques: c.techniques.len(),
            software: if options.techniques_only {
                0
            } else {
                c.software.len()
            },
            window: c.window,
            leaked_removed: removed[i],
            groups: groups[i],
            model: full.outcomes[i].clone(),
            model_ttp: ttp.outcomes[i].clone(),
            baseline: base_out[i].clone(),
            model_shipped: shipped_out[i].clone(),
            weights: full.weights[i],
            inputs: full.selected[i],
            overlap: overlaps[i].clone(),
        })
        .collect();
    let n = cases.len().max(1) as f64;
    EvalReport {
        mode: options.mode,
        techniques_only: options.techniques_only,
        use_time: options.use_time,
        strict_time: options.strict_time,
        input_sets: options.input_sets.clone(),
        knowledge_base: kb.label().map(str::to_string),
        model: metrics(&refs(&full.scored), &refs(&full.outcomes)),
        model_ttp: metrics(&refs(&ttp.scored), &refs(&ttp.outcomes)),
        baseline: metrics(&refs(&baseline), &refs(&base_out)),
        model_shipped: metrics(&refs(&shipped), &refs(&shipped_out)),
        oracle_ttp: overlaps.iter().filter(|o| o.matched > 0).count() as f64 / n,
        oracle_undominated: overlaps
            .iter()
            .filter(|o| o.matched > 0 && o.dominated_by == 0)
            .count() as f64
            / n,
        inputs_all: full.inputs_all,
        weights_all: full.weights_all,
        temperature_all: full.temperature_all,
        cases: results,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_ties() {
        let p = softmax(&[1.0, 1.0, f64::NEG_INFINITY], 1.0);
        assert!((p[0] - 0.5).abs() < 1e-12 && p[2] == 0.0);
        let s = Scored {
            ids: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            scores: vec![2.0, 2.0, 2.0, 1.0],
            truth: 1,
        };
        assert_eq!(s.above_tied(), (0, 2));
        let o = outcome(&s, 1.0);
        assert_eq!(o.rank, 2.0);
        let m = metrics(&[&s], &[&o]);
        assert!((m.top1 - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.top3 - 1.0).abs() < 1e-12);
        assert!((m.mrr - (1.0 + 0.5 + 1.0 / 3.0) / 3.0).abs() < 1e-12);
    }
}
