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
//! 2. feeds the campaign's techniques (and software, unless `techniques_only`) as evidence;
//! 3. records the true group's rank among all groups, for the model ([`Attributor`]) and for a
//!    **naive-overlap baseline** (number of observed techniques and software ids found in the
//!    group's profile, through any source), scored by the same code path.
//!
//! Metrics ([`Metrics`]): top-1/3/5 hit rate and mean reciprocal rank, counted with ties
//! resolved at random (a true group tied with 3 others for first counts ¼ top-1), and Brier
//! scores of probabilities. Probabilities are `softmax(score / T)` over all groups with the
//! temperature `T` fitted by minimum log-loss **leave-one-campaign-out** (the campaign being
//! scored never takes part in fitting its own temperature), for the model and the baseline
//! alike. Optionally a grid of scoring configurations is evaluated with **nested**
//! leave-one-out: for each campaign the configuration with the best MRR on the *other*
//! campaigns is chosen, then scored on the held-out one ([`EvalReport::nested`]).
//!
//! Only campaigns attributed to exactly one group present in the knowledge base and with at
//! least one technique are used; the others are listed in [`EvalReport::skipped`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tracehunt_attack::ActorKb;

use crate::provenance::Provenance;
use crate::{Attributor, EvidenceSet, Observation, ScoringConfig, TagObservation};

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

/// A copy of `kb` that has not learnt from `campaign` (see [`HoldOut`]). For
/// [`HoldOut::LeakageAware`] the group's direct links listed in `provenance` for that campaign
/// are dropped as well (their software-derived techniques disappear with them).
pub fn hold_out(kb: &ActorKb, campaign: &str, mode: HoldOut, provenance: &Provenance) -> ActorKb {
    let held = kb.hold_out_campaign(campaign);
    if mode == HoldOut::Naive {
        return held;
    }
    let Some(by_group) = provenance.leaks.get(campaign) else {
        return held;
    };
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

/// One campaign to attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        });
    }
    (cases, skipped)
}

/// How to score groups in the evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Ranker {
    /// The [`Attributor`] with this configuration.
    Model(ScoringConfig),
    /// Number of observed technique and software ids in the group's profile (any source).
    Overlap,
}

fn evidence_of(case: &EvalCase, techniques_only: bool) -> EvidenceSet {
    EvidenceSet {
        techniques: case.techniques.iter().map(Observation::new).collect(),
        software: if techniques_only {
            Vec::new()
        } else {
            case.software
                .iter()
                .map(|s| TagObservation {
                    id: s.clone(),
                    ..TagObservation::default()
                })
                .collect()
        },
        ..EvidenceSet::default()
    }
}

/// Score of every group of `kb` (in id order) for the evidence, by `ranker`. Groups the model
/// cannot score (empty profile) get `-inf`.
pub fn score_groups(kb: &ActorKb, evidence: &EvidenceSet, ranker: &Ranker) -> Vec<(String, f64)> {
    match ranker {
        Ranker::Model(cfg) => {
            let at = Attributor::with_config(kb, cfg.clone());
            let scored: std::collections::HashMap<&str, f64> =
                at.score_all(evidence).into_iter().collect();
            kb.groups()
                .keys()
                .map(|g| {
                    (
                        g.clone(),
                        scored.get(g.as_str()).copied().unwrap_or(f64::NEG_INFINITY),
                    )
                })
                .collect()
        }
        Ranker::Overlap => {
            let techniques: BTreeSet<String> = evidence
                .techniques
                .iter()
                .filter_map(|o| kb.canonical_technique(&o.technique))
                .collect();
            let software: BTreeSet<String> = evidence
                .software
                .iter()
                .filter_map(|o| kb.software(&o.id).map(|s| s.id.clone()))
                .collect();
            kb.groups()
                .iter()
                .map(|(id, g)| {
                    let n = techniques
                        .iter()
                        .filter(|t| g.techniques.contains_key(*t))
                        .count()
                        + software
                            .iter()
                            .filter(|s| g.software.contains_key(*s))
                            .count();
                    (id.clone(), n as f64)
                })
                .collect()
        }
    }
}

/// Scores of all groups for one case, and where the true group is.
#[derive(Debug, Clone, PartialEq)]
struct Scored {
    ids: Vec<String>,
    scores: Vec<f64>,
    truth: usize,
}

impl Scored {
    fn new(pairs: Vec<(String, f64)>, truth: &str) -> Scored {
        let (ids, scores): (Vec<String>, Vec<f64>) = pairs.into_iter().unzip();
        let truth = ids.iter().position(|g| g == truth).unwrap_or(0);
        Scored { ids, scores, truth }
    }

    /// (groups strictly above the true group, other groups tied with it).
    fn above_tied(&self) -> (usize, usize) {
        let s = self.scores[self.truth];
        let mut above = 0;
        let mut tied = 0;
        for (i, &x) in self.scores.iter().enumerate() {
            if i == self.truth {
                continue;
            }
            if same(x, s) {
                tied += 1;
            } else if x > s {
                above += 1;
            }
        }
        (above, tied)
    }

    /// Best group by score, ties by id.
    fn top(&self) -> usize {
        let mut best = 0;
        for i in 1..self.scores.len() {
            if self.scores[i] > self.scores[best] && !same(self.scores[i], self.scores[best]) {
                best = i;
            }
        }
        best
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// `softmax(scores / t)`; `-inf` scores get 0.
pub fn softmax(scores: &[f64], t: f64) -> Vec<f64> {
    let max = scores
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        let n = scores.len().max(1) as f64;
        return vec![1.0 / n; scores.len()];
    }
    let e: Vec<f64> = scores
        .iter()
        .map(|&x| {
            if x.is_finite() {
                ((x - max) / t).exp()
            } else {
                0.0
            }
        })
        .collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

/// Temperatures tried when fitting: 0.01 … 100, log-spaced.
fn temperature_grid() -> impl Iterator<Item = f64> {
    (0..=160).map(|i| 10f64.powf(-2.0 + 4.0 * i as f64 / 160.0))
}

/// Temperature minimising the mean log-loss of the true group over `cases` (`1.0` when empty).
fn fit_temperature<'a>(cases: impl Iterator<Item = &'a Scored> + Clone) -> f64 {
    let mut best = (f64::INFINITY, 1.0);
    for t in temperature_grid() {
        let mut loss = 0.0;
        let mut n = 0usize;
        for c in cases.clone() {
            let p = softmax(&c.scores, t)[c.truth].max(1e-12);
            loss -= p.ln();
            n += 1;
        }
        if n == 0 {
            return 1.0;
        }
        if loss < best.0 {
            best = (loss, t);
        }
    }
    best.1
}

/// Fits the softmax temperature of a model on every case (what the shipped
/// [`ScoringConfig::temperature`] is); evaluation itself always uses leave-one-out fits.
pub fn fit_model_temperature(
    kb: &ActorKb,
    provenance: &Provenance,
    options: &EvalOptions,
    config: &ScoringConfig,
) -> f64 {
    let (cases, _) = campaign_cases(kb);
    let scored: Vec<Scored> = cases
        .iter()
        .map(|c| {
            let held = hold_out(kb, &c.campaign, options.mode, provenance);
            let ev = evidence_of(c, options.techniques_only);
            Scored::new(
                score_groups(&held, &ev, &Ranker::Model(config.clone())),
                &c.group,
            )
        })
        .collect();
    fit_temperature(scored.iter())
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
    /// Direct links of the true group removed as leaked (leakage-aware hold-out only).
    pub leaked_removed: usize,
    /// Groups ranked.
    pub groups: usize,
    /// The model.
    pub model: Outcome,
    /// The naive-overlap baseline.
    pub baseline: Outcome,
    /// Nested leave-one-out choice (if a grid was given): index of the configuration chosen on
    /// the other campaigns, and the outcome with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<(usize, Outcome)>,
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
    /// The model's configuration.
    pub config: ScoringConfig,
    /// Optional grid of configurations for nested leave-one-out selection (empty: none).
    pub grid: Vec<ScoringConfig>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            mode: HoldOut::LeakageAware,
            techniques_only: false,
            config: ScoringConfig::default(),
            grid: Vec::new(),
        }
    }
}

/// Everything [`evaluate`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Hold-out mode.
    pub mode: HoldOut,
    /// Whether software was withheld from the evidence.
    pub techniques_only: bool,
    /// Knowledge-base label.
    pub knowledge_base: Option<String>,
    /// The model's metrics.
    pub model: Metrics,
    /// The naive-overlap baseline's metrics.
    pub baseline: Metrics,
    /// Nested leave-one-out metrics over the configuration grid, if one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<Metrics>,
    /// Temperature fitted on all campaigns for the model (in-sample; for reference).
    pub model_temperature_all: f64,
    /// Brier (top candidate) of the model's own shipped probabilities
    /// ([`ScoringConfig::temperature`], in-sample if that was fitted on these campaigns).
    pub model_brier_top_shipped: f64,
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

fn mrr_of(s: &Scored) -> f64 {
    let (above, tied) = s.above_tied();
    (above + 1..=above + tied + 1)
        .map(|r| 1.0 / r as f64)
        .sum::<f64>()
        / (tied + 1) as f64
}

/// Runs the campaign hold-out (see the module docs).
pub fn evaluate(kb: &ActorKb, provenance: &Provenance, options: &EvalOptions) -> EvalReport {
    let (cases, skipped) = campaign_cases(kb);
    let mut model = Vec::new();
    let mut baseline = Vec::new();
    let mut grid: Vec<Vec<Scored>> = vec![Vec::new(); options.grid.len()];
    let mut removed = Vec::new();
    let mut groups = Vec::new();
    let shipped = Ranker::Model(options.config.clone());
    for c in &cases {
        let held = hold_out(kb, &c.campaign, options.mode, provenance);
        removed.push(match options.mode {
            HoldOut::Naive => 0,
            HoldOut::LeakageAware => provenance
                .leaks(&c.campaign, &c.group)
                .map_or(0, |l| l.techniques.len() + l.software.len()),
        });
        groups.push(held.groups().len());
        let ev = evidence_of(c, options.techniques_only);
        model.push(Scored::new(score_groups(&held, &ev, &shipped), &c.group));
        baseline.push(Scored::new(
            score_groups(&held, &ev, &Ranker::Overlap),
            &c.group,
        ));
        for (k, cfg) in options.grid.iter().enumerate() {
            grid[k].push(Scored::new(
                score_groups(&held, &ev, &Ranker::Model(cfg.clone())),
                &c.group,
            ));
        }
    }
    let model_out = loo_outcomes(&model);
    let base_out = loo_outcomes(&baseline);

    // Nested leave-one-out over the grid.
    let nested: Option<Vec<(usize, Outcome, Scored)>> = (!options.grid.is_empty()).then(|| {
        (0..cases.len())
            .map(|i| {
                let mut best = (f64::NEG_INFINITY, 0usize);
                for (k, scored) in grid.iter().enumerate() {
                    let mrr: f64 = scored
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, s)| mrr_of(s))
                        .sum();
                    if mrr > best.0 + 1e-12 {
                        best = (mrr, k);
                    }
                }
                let k = best.1;
                let t = fit_temperature(
                    grid[k]
                        .iter()
                        .enumerate()
                        .filter(move |(j, _)| *j != i)
                        .map(|(_, s)| s),
                );
                (k, outcome(&grid[k][i], t), grid[k][i].clone())
            })
            .collect()
    });

    let shipped_t = options.config.temperature;
    let shipped_out: Vec<Outcome> = model.iter().map(|s| outcome(s, shipped_t)).collect();
    let model_temperature_all = fit_temperature(model.iter());

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
            leaked_removed: removed[i],
            groups: groups[i],
            model: model_out[i].clone(),
            baseline: base_out[i].clone(),
            nested: nested.as_ref().map(|n| (n[i].0, n[i].1.clone())),
        })
        .collect();
    EvalReport {
        mode: options.mode,
        techniques_only: options.techniques_only,
        knowledge_base: kb.label().map(str::to_string),
        model: metrics(&refs(&model), &refs(&model_out)),
        baseline: metrics(&refs(&baseline), &refs(&base_out)),
        nested: nested.as_ref().map(|n| {
            let s: Vec<&Scored> = n.iter().map(|x| &x.2).collect();
            let o: Vec<&Outcome> = n.iter().map(|x| &x.1).collect();
            metrics(&s, &o)
        }),
        model_temperature_all,
        model_brier_top_shipped: metrics(&refs(&model), &refs(&shipped_out)).brier_top,
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
