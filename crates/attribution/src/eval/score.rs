//! Scoring every group for a case ([`score_groups`], by the model or the naive-overlap
//! baseline), the scores' ranks and ties ([`Scored`]), softmax and the temperature fit.

use std::collections::BTreeSet;

use tracehunt_attack::ActorKb;

use super::EvalCase;
use crate::{Attributor, EvidenceSet, Observation, ScoringConfig, TagObservation, Window};

/// How to score groups in the evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Ranker {
    /// The [`Attributor`] with this configuration.
    Model(ScoringConfig),
    /// Number of observed technique and software ids in the group's profile (any source).
    Overlap,
}

pub(super) fn evidence_of(case: &EvalCase, techniques_only: bool) -> EvidenceSet {
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
pub fn score_groups(
    kb: &ActorKb,
    evidence: &EvidenceSet,
    window: Option<Window>,
    ranker: &Ranker,
) -> Vec<(String, f64)> {
    match ranker {
        Ranker::Model(cfg) => {
            let at = Attributor::with_config(kb, cfg.clone());
            let scored: std::collections::HashMap<&str, f64> =
                at.score_all(evidence, window).into_iter().collect();
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
pub(crate) struct Scored {
    pub(crate) ids: Vec<String>,
    pub(crate) scores: Vec<f64>,
    pub(crate) truth: usize,
}

impl Scored {
    pub(crate) fn new(pairs: Vec<(String, f64)>, truth: &str) -> Scored {
        let (ids, scores): (Vec<String>, Vec<f64>) = pairs.into_iter().unzip();
        let truth = ids.iter().position(|g| g == truth).unwrap_or(0);
        Scored { ids, scores, truth }
    }

    /// (groups strictly above the true group, other groups tied with it).
    pub(crate) fn above_tied(&self) -> (usize, usize) {
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
    pub(crate) fn top(&self) -> usize {
        let mut best = 0;
        for i in 1..self.scores.len() {
            if self.scores[i] > self.scores[best] && !same(self.scores[i], self.scores[best]) {
                best = i;
            }
        }
        best
    }
}

pub(super) fn same(a: f64, b: f64) -> bool {
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
pub(crate) fn fit_temperature<'a>(cases: impl Iterator<Item = &'a Scored> + Clone) -> f64 {
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
