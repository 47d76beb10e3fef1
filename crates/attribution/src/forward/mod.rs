//! # Forward-in-time evaluation (issue #18)
//!
//! The regime of real use: yesterday's knowledge, today's intrusion. The knowledge base is
//! built from an **older** ATT&CK release and the test cases are what a **newer** release
//! added about groups the older one already knew ([`forward_cases`]):
//!
//! * campaigns the newer release added, attributed to one such group (evidence: the
//!   campaign's techniques and software; window: its `first_seen … last_seen`);
//! * each **new report** the newer release cites on such a group's `uses` relationships that
//!   the older release never cited for the group (nor for its campaigns): evidence = the
//!   techniques and software the newer release links to the group citing that report;
//!   window = the report's publication year.
//!
//! Ids are mapped to the older release (same id; else the older id the newer release revoked
//! in its favour; else the older release's own resolution, e.g. a new sub-technique's
//! parent); software unknown to the older release is dropped.
//!
//! ## Fitting, honestly
//!
//! The model's weights ([`crate::ModelWeights`], input set [`FORWARD_INPUTS`]: likelihood,
//! matched, size, time and the extra software weight; L2 = [`crate::eval::DEFAULT_L2`] on
//! standardised inputs, fixed a priori) and its softmax temperature are fitted on the
//! **fit split** (the oldest release → the next, v12.1 → v14.1): weights by conditional-logit
//! maximum likelihood ([`crate::eval::fit_weights`]) on all its cases; the temperature by
//! minimum log-loss on **out-of-fold** scores (5 folds by group: weights fitted without the
//! fold's groups score the fold), because in-sample logit scores are over-confident.
//! Temperature scaling (one parameter, Guo et al. 2017) rather than isotonic or Platt: it keeps
//! the ranking, it keeps a probability over all groups (a state-level sum needs one), and a
//! few hundred cases are too few for a monotone step function over 10+ bins. The naive-overlap
//! baseline's temperature is fitted on the same cases.
//!
//! Every test split is scored in up to two ways, neither of which ever saw its cases:
//!
//! * **cross-fitted by group** (all splits): the cases of each of 5 group folds are scored
//!   with weights and temperature fitted (as above, nested) on the other folds' cases of that
//!   split only;
//! * **temporal** (splits starting after the fit split's older release: v14.1 → v18.1,
//!   v16.1 → v18.1, whose cases were all added after v14.1): scored with the fit split's
//!   values (v12.1 → v14.1, few cases).
//!
//! The shipped defaults ([`crate::ScoringConfig::default`]) are the same procedure on every
//! case of the oldest → newest split (v12.1 → v18.1): the most cases of this regime; their
//! expected performance is that split's cross-fitted figures.
//!
//! ## Reported
//!
//! Per split, for the model and the baseline: top-1/3/5, MRR, multi-class Brier and the
//! expected calibration error of the top probability, each with a 95 % percentile-bootstrap
//! interval over cases ([`forward_metrics`]); the same on cases with software evidence; the
//! model's reliability table (Wilson intervals, [`reliability`]); the state-level top-1
//! ([`StateMetrics`]) beside the base rate of always answering the most common state; and the
//! measured precision of the "clear lead" verdict ([`ClearLead`]).

mod cases;
mod stats;

pub use cases::{forward_cases, CaseKind, CaseSkips, ForwardCase, Release, ReportLinks};
pub use stats::{
    ece, forward_metrics, reliability, wilson, CaseScore, ForwardMetrics, Interval, ReliabilityBin,
    BINS, BOOTSTRAP_REPS,
};

use serde::{Deserialize, Serialize};
use tracehunt_attack::StateSponsors;

use crate::eval::{dot, fit_temperature, fit_weights, score_groups, FitCase, Ranker, Scored};
use crate::{
    state_answer, Attributor, EvidenceSet, ModelWeights, Observation, ScoringConfig,
    TagObservation, N_INPUTS,
};

/// Input set of the forward fit ([`crate::ModelWeights`] order): likelihood, matched, size,
/// time and software on; the campaign count off (a prior towards groups ATT&CK happened to
/// describe through campaigns, which the release changes).
pub const FORWARD_INPUTS: [bool; N_INPUTS] = [true, true, true, false, true, true];

/// Folds of the by-group cross-fitting.
pub const FOLDS: u64 = 5;

/// Options of [`evaluate_forward`].
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardOptions {
    /// Link weights and smoothing of the model (its `weights`/`temperature` are refitted).
    pub config: ScoringConfig,
    /// L2 penalty of the weight fit.
    pub l2: f64,
    /// Inputs fitted.
    pub inputs: [bool; N_INPUTS],
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            config: ScoringConfig::default(),
            l2: crate::eval::DEFAULT_L2,
            inputs: FORWARD_INPUTS,
        }
    }
}

/// Weights and temperatures from one fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// Model weights.
    pub weights: ModelWeights,
    /// Model softmax temperature (out-of-fold).
    pub temperature: f64,
    /// Baseline softmax temperature.
    pub baseline_temperature: f64,
}

/// State-level top-1 on the cases whose true group has a suspected state sponsor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateMetrics {
    /// Cases with a known state.
    pub cases: usize,
    /// Share where the most probable state ([`crate::state_answer`]) is the true group's,
    /// with its Wilson interval.
    pub top1: Interval,
    /// The most common true state among these cases (ISO code).
    pub most_common: String,
    /// Share of the cases that always answering `most_common` gets right.
    pub base_rate: f64,
}

/// Measured precision of the "clear lead" verdict ([`crate::Attribution::confident`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClearLead {
    /// Cases given a clear lead.
    pub confident: usize,
    /// Of which the leader is the true group.
    pub correct: usize,
    /// `correct / confident` with its Wilson interval.
    pub precision: Interval,
}

/// What the cases with software evidence allow (issue #18's target is on them): how many
/// name a software the **older** release already links to the true group. The rest name only
/// software new to that group (or used by others), which no ranking built on the older
/// release can turn into evidence for it; this is the share of cases a software-driven
/// ranking could win, and the model's top-1 on them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoftwareCeiling {
    /// Cases with software evidence.
    pub cases: usize,
    /// Of which the older release links at least one observed software to the true group.
    pub known_to_truth: usize,
    /// Of which the older release links an observed software to the true group **only**
    /// (a software used by one group).
    pub unique_to_truth: usize,
    /// Model top-1 hits among the `known_to_truth` cases (ties count fractionally, as in
    /// [`ForwardMetrics::top1`]).
    pub model_top1_known: f64,
    /// Model top-1 hits among the other cases.
    pub model_top1_unknown: f64,
}

/// One case's result (for `--verbose`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseOutcome {
    /// The case.
    pub case: ForwardCase,
    /// Rank of the true group by the model (ties: middle of the block).
    pub model_rank: f64,
    /// Rank by the baseline.
    pub baseline_rank: f64,
    /// The model's top group.
    pub top: String,
    /// Its probability.
    pub top_probability: f64,
}

/// One old → new split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// Older release (knowledge base), e.g. `v14.1`.
    pub old: String,
    /// Newer release (test cases).
    pub new: String,
    /// How the figures were fitted (fit split or by-group cross-fitting).
    pub fit: String,
    /// The fit used (the fit split's; for a cross-fitted split, the mean over folds).
    pub fitted: Fitted,
    /// Campaign cases.
    pub campaigns: usize,
    /// Report cases.
    pub reports: usize,
    /// What was left out.
    pub skips: CaseSkips,
    /// The model on all cases.
    pub model: ForwardMetrics,
    /// The baseline on all cases.
    pub baseline: ForwardMetrics,
    /// The model on cases with software evidence.
    pub model_software: ForwardMetrics,
    /// The baseline on cases with software evidence.
    pub baseline_software: ForwardMetrics,
    /// What the software cases allow.
    pub software_ceiling: SoftwareCeiling,
    /// The model's reliability table (all cases).
    pub reliability: Vec<ReliabilityBin>,
    /// The state-level answer.
    pub state: StateMetrics,
    /// The "clear lead" verdict's precision.
    pub clear_lead: ClearLead,
    /// Per-case results.
    pub outcomes: Vec<CaseOutcome>,
}

/// Everything [`evaluate_forward`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardReport {
    /// The fit split of the temporal view (`v12.1 → v14.1`).
    pub fit_split: String,
    /// Cases of the fit split.
    pub fit_cases: usize,
    /// The values fitted on the fit split (the temporal view's).
    pub temporal: Fitted,
    /// The values fitted on every case of the oldest → newest split: what
    /// [`ScoringConfig::default`] ships; its expected performance is that split's cross-fitted
    /// figures (the same procedure on 4/5 of the groups).
    pub shipped: Fitted,
    /// The split `shipped` was fitted on (`v12.1 → v18.1`).
    pub shipped_from: String,
    /// Its cases.
    pub shipped_cases: usize,
    /// The test splits, oldest knowledge base first.
    pub splits: Vec<SplitReport>,
}

/// A split's cases with the model inputs and baseline scores computed once.
struct Prepared {
    cases: Vec<ForwardCase>,
    skips: CaseSkips,
    fit: Vec<FitCase>,
    ids: Vec<Vec<String>>,
    base: Vec<Scored>,
}

fn evidence(c: &ForwardCase) -> EvidenceSet {
    EvidenceSet {
        techniques: c.techniques.iter().map(Observation::new).collect(),
        software: c
            .software
            .iter()
            .map(|s| TagObservation {
                id: s.clone(),
                ..TagObservation::default()
            })
            .collect(),
        ..EvidenceSet::default()
    }
}

fn prepare(old: &Release, new: &Release, cfg: &ScoringConfig) -> Prepared {
    let (cases, skips) = forward_cases(old, new);
    let at = Attributor::with_config(&old.kb, cfg.clone());
    let mut p = Prepared {
        cases: Vec::new(),
        skips,
        fit: Vec::new(),
        ids: Vec::new(),
        base: Vec::new(),
    };
    for c in cases {
        let ev = evidence(&c);
        let rows = at.group_inputs(&ev, c.window);
        let Some(truth) = rows.iter().position(|(g, _)| *g == c.group) else {
            continue;
        };
        p.base.push(Scored::new(
            score_groups(&old.kb, &ev, None, &Ranker::Overlap),
            &c.group,
        ));
        p.ids
            .push(rows.iter().map(|(g, _)| g.to_string()).collect());
        p.fit.push(FitCase {
            inputs: rows.iter().map(|(_, x)| *x).collect(),
            truth,
        });
        p.cases.push(c);
    }
    p
}

/// Fold of a group (FNV-1a of its id, modulo [`FOLDS`]).
fn fold(group: &str) -> u64 {
    group.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    }) % FOLDS
}

impl Prepared {
    fn model(&self, i: usize, w: &ModelWeights) -> Scored {
        Scored {
            ids: self.ids[i].clone(),
            scores: self.fit[i].inputs.iter().map(|x| dot(x, w)).collect(),
            truth: self.fit[i].truth,
        }
    }

    fn weights(&self, idx: &[usize], o: &ForwardOptions) -> ModelWeights {
        let train: Vec<&FitCase> = idx.iter().map(|&i| &self.fit[i]).collect();
        fit_weights(&train, o.l2, o.inputs)
    }

    /// Weights on all of `idx`; temperature on their out-of-fold scores (by group).
    fn fit(&self, idx: &[usize], o: &ForwardOptions) -> Fitted {
        let mut oof = Vec::new();
        for k in 0..FOLDS {
            let (test, train): (Vec<usize>, Vec<usize>) =
                idx.iter().partition(|&&i| fold(&self.cases[i].group) == k);
            let w = self.weights(&train, o);
            oof.extend(test.iter().map(|&i| self.model(i, &w)));
        }
        Fitted {
            weights: self.weights(idx, o),
            temperature: fit_temperature(oof.iter()),
            baseline_temperature: fit_temperature(idx.iter().map(|&i| &self.base[i])),
        }
    }
}

/// Runs the forward evaluation over `releases` (oldest first, at least two; see the module
/// docs): the fit split is `releases[0] → releases[1]`; the test splits are every older
/// release → the newest, each scored **cross-fitted by group** and, when its cases are
/// disjoint from the fit split's (its older release is not `releases[0]`), also **temporally**
/// with the fit split's values. The shipped values are fitted the same way on every case of
/// `releases[0] → newest`. `None` with fewer than two releases.
pub fn evaluate_forward(releases: &[Release], options: &ForwardOptions) -> Option<ForwardReport> {
    let (first, newest) = (releases.first()?, releases.last()?);
    let second = releases.get(1)?;
    let fit_split = prepare(first, second, &options.config);
    let all: Vec<usize> = (0..fit_split.cases.len()).collect();
    let temporal = fit_split.fit(&all, options);
    let mut splits = Vec::new();
    let mut shipped = temporal;
    let mut shipped_cases = fit_split.cases.len();
    for (n, old) in releases[..releases.len() - 1].iter().enumerate() {
        let p = prepare(old, newest, &options.config);
        if n == 0 {
            let all: Vec<usize> = (0..p.cases.len()).collect();
            shipped = p.fit(&all, options);
            shipped_cases = p.cases.len();
        }
        let folds: Vec<(Vec<usize>, Fitted)> = (0..FOLDS)
            .map(|k| {
                let (test, train): (Vec<usize>, Vec<usize>) =
                    (0..p.cases.len()).partition(|&i| fold(&p.cases[i].group) == k);
                (test, p.fit(&train, options))
            })
            .collect();
        let cross = format!(
            "cross-fitted by group ({FOLDS} folds): each fold scored with weights and temperature fitted on the other folds' cases of this split"
        );
        splits.push(score_split(old, newest, &p, &folds, cross, options));
        if n > 0 {
            let fit = format!(
                "temporal: fitted on {} → {} ({} cases, all added before {}: disjoint from these)",
                first.label,
                second.label,
                fit_split.cases.len(),
                old.label
            );
            let whole = vec![((0..p.cases.len()).collect(), temporal)];
            splits.push(score_split(old, newest, &p, &whole, fit, options));
        }
    }
    Some(ForwardReport {
        fit_split: format!("{} → {}", first.label, second.label),
        fit_cases: fit_split.cases.len(),
        temporal,
        shipped,
        shipped_from: format!("{} → {}", first.label, newest.label),
        shipped_cases,
        splits,
    })
}

/// Scores a split's cases, each with the fit of the fold it belongs to.
fn score_split(
    old: &Release,
    new: &Release,
    p: &Prepared,
    fits: &[(Vec<usize>, Fitted)],
    fit: String,
    options: &ForwardOptions,
) -> SplitReport {
    let n = p.cases.len();
    let mut model = vec![None; n];
    let mut base = vec![None; n];
    let mut outcomes: Vec<Option<CaseOutcome>> = vec![None; n];
    let mut state_hits = Vec::new();
    let mut lead = ClearLead::default();
    let sponsors = StateSponsors::builtin();
    for (idx, f) in fits {
        let cfg = ScoringConfig {
            weights: f.weights,
            temperature: f.temperature,
            ..options.config.clone()
        };
        let at = Attributor::with_config(&old.kb, cfg);
        for &i in idx {
            let s = p.model(i, &f.weights);
            let m = CaseScore::of(&s, f.temperature);
            let b = CaseScore::of(&p.base[i], f.baseline_temperature);
            let probs = crate::eval::softmax(&s.scores, f.temperature);
            if let Some(truth) = sponsors.get(&p.cases[i].group) {
                let states = state_answer(
                    s.ids.iter().map(String::as_str).zip(probs.iter().copied()),
                    sponsors,
                );
                let hit = states.top().is_some_and(|t| t.country == truth.country);
                state_hits.push((truth.country.clone(), hit));
            }
            let a = at.attribute_in(&evidence(&p.cases[i]), p.cases[i].window);
            if a.confident {
                lead.confident += 1;
                if a.candidates
                    .first()
                    .is_some_and(|c| c.id == p.cases[i].group)
                {
                    lead.correct += 1;
                }
            }
            let (above, tied) = s.above_tied();
            let (b_above, b_tied) = p.base[i].above_tied();
            outcomes[i] = Some(CaseOutcome {
                case: p.cases[i].clone(),
                model_rank: above as f64 + 1.0 + tied as f64 / 2.0,
                baseline_rank: b_above as f64 + 1.0 + b_tied as f64 / 2.0,
                top: s.ids[s.top()].clone(),
                top_probability: m.top_probability,
            });
            model[i] = Some(m);
            base[i] = Some(b);
        }
    }
    let model: Vec<CaseScore> = model.into_iter().flatten().collect();
    let base: Vec<CaseScore> = base.into_iter().flatten().collect();
    let sw: Vec<usize> = (0..n)
        .filter(|&i| !p.cases[i].software.is_empty())
        .collect();
    let pick = |v: &[CaseScore]| sw.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let software_ceiling = software_ceiling(old, p, &sw, &model);
    let k = lead.correct as f64;
    let (lo, hi) = wilson(k, lead.confident);
    lead.precision = Interval {
        value: k / lead.confident.max(1) as f64,
        low: lo,
        high: hi,
    };
    let mean = |f: fn(&Fitted) -> f64| {
        fits.iter().map(|(_, x)| f(x)).sum::<f64>() / fits.len().max(1) as f64
    };
    let mut w = [0.0; N_INPUTS];
    for (_, f) in fits {
        for (a, b) in w.iter_mut().zip(f.weights.to_array()) {
            *a += b / fits.len() as f64;
        }
    }
    SplitReport {
        old: old.label.clone(),
        new: new.label.clone(),
        fit,
        fitted: Fitted {
            weights: ModelWeights::from_array(w),
            temperature: mean(|f| f.temperature),
            baseline_temperature: mean(|f| f.baseline_temperature),
        },
        campaigns: p
            .cases
            .iter()
            .filter(|c| c.kind == CaseKind::Campaign)
            .count(),
        reports: p
            .cases
            .iter()
            .filter(|c| c.kind == CaseKind::Report)
            .count(),
        skips: p.skips.clone(),
        model: forward_metrics(&model),
        baseline: forward_metrics(&base),
        model_software: forward_metrics(&pick(&model)),
        baseline_software: forward_metrics(&pick(&base)),
        software_ceiling,
        reliability: reliability(&model),
        state: state_metrics(&state_hits),
        clear_lead: lead,
        outcomes: outcomes.into_iter().flatten().collect(),
    }
}

/// [`SoftwareCeiling`] of the cases `sw` (indices into `p.cases`, which have software).
fn software_ceiling(
    old: &Release,
    p: &Prepared,
    sw: &[usize],
    model: &[CaseScore],
) -> SoftwareCeiling {
    let mut out = SoftwareCeiling {
        cases: sw.len(),
        ..SoftwareCeiling::default()
    };
    for &i in sw {
        let c = &p.cases[i];
        let users = |s: &String| {
            old.kb
                .groups()
                .values()
                .filter(|g| g.software.contains_key(s))
                .count()
        };
        let truth = old.kb.groups().get(&c.group);
        let of_truth: Vec<&String> = c
            .software
            .iter()
            .filter(|s| truth.is_some_and(|g| g.software.contains_key(*s)))
            .collect();
        let hit = model[i].top1;
        if of_truth.is_empty() {
            out.model_top1_unknown += hit;
            continue;
        }
        out.known_to_truth += 1;
        out.unique_to_truth += usize::from(of_truth.iter().any(|s| users(s) == 1));
        out.model_top1_known += hit;
    }
    out
}

fn state_metrics(hits: &[(String, bool)]) -> StateMetrics {
    let n = hits.len();
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (c, _) in hits {
        *counts.entry(c.as_str()).or_default() += 1;
    }
    let (most_common, top) = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map_or(("", 0), |(c, k)| (*c, *k));
    let k = hits.iter().filter(|(_, h)| *h).count() as f64;
    let (low, high) = wilson(k, n);
    StateMetrics {
        cases: n,
        top1: Interval {
            value: k / n.max(1) as f64,
            low,
            high,
        },
        most_common: most_common.to_string(),
        base_rate: top as f64 / n.max(1) as f64,
    }
}
