//! Metrics of the forward evaluation with confidence intervals: per-case scores, the
//! percentile bootstrap over cases, Wilson intervals, expected calibration error and the
//! reliability table.

use serde::{Deserialize, Serialize};

use crate::eval::{softmax, Scored};

/// What one case contributes to the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CaseScore {
    /// Share of top-1 (ties split at random: tied with 3 others for first = ¼).
    pub top1: f64,
    /// Share of top-3.
    pub top3: f64,
    /// Share of top-5.
    pub top5: f64,
    /// Reciprocal rank (averaged over the tied block).
    pub rr: f64,
    /// Multi-class Brier score `Σ_g (p_g − y_g)²` (0 perfect, 2 worst).
    pub brier: f64,
    /// Probability shown for the top candidate.
    pub top_probability: f64,
}

impl CaseScore {
    /// Scores of all groups (`scored`) turned into probabilities with temperature `t`.
    pub(crate) fn of(s: &Scored, t: f64) -> CaseScore {
        let (above, tied) = s.above_tied();
        let block = (tied + 1) as f64;
        let hit = |k: usize| ((k as f64 - above as f64) / block).clamp(0.0, 1.0);
        let p = softmax(&s.scores, t);
        CaseScore {
            top1: hit(1),
            top3: hit(3),
            top5: hit(5),
            rr: (above + 1..=above + tied + 1)
                .map(|r| 1.0 / r as f64)
                .sum::<f64>()
                / block,
            brier: p
                .iter()
                .enumerate()
                .map(|(i, &x)| (x - if i == s.truth { 1.0 } else { 0.0 }).powi(2))
                .sum(),
            top_probability: p[s.top()],
        }
    }
}

/// A measured value with its 95 % confidence interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The value on all cases.
    pub value: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// Top-k, MRR, Brier and ECE over a set of cases, each with a 95 % percentile-bootstrap
/// interval (resampling cases, [`BOOTSTRAP_REPS`] draws, fixed seed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ForwardMetrics {
    /// Cases.
    pub cases: usize,
    /// Top-1 hit rate.
    pub top1: Interval,
    /// Top-3 hit rate.
    pub top3: Interval,
    /// Top-5 hit rate.
    pub top5: Interval,
    /// Mean reciprocal rank.
    pub mrr: Interval,
    /// Mean multi-class Brier score (lower is better).
    pub brier: Interval,
    /// Expected calibration error of the top candidate's probability ([`ece`], 10 bins; lower
    /// is better).
    pub ece: Interval,
    /// Mean probability shown for the top candidate (compare with `top1`).
    pub mean_top_probability: f64,
}

/// Bootstrap draws per interval.
pub const BOOTSTRAP_REPS: usize = 1000;

/// Calibration bins of [`ece`] and [`reliability`]: `[0, 0.1), [0.1, 0.2) … [0.9, 1]`.
pub const BINS: usize = 10;

fn bin(p: f64) -> usize {
    ((p * BINS as f64) as usize).min(BINS - 1)
}

/// Expected calibration error of (shown top probability, top-1 hit) pairs: `Σ_b n_b/N ·
/// |mean p_b − hit rate_b|` over [`BINS`] equal-width bins (Guo et al., "On Calibration of
/// Modern Neural Networks", ICML 2017, eq. 3). 0 for no cases.
pub fn ece(cases: &[CaseScore]) -> f64 {
    let mut sum_p = [0.0; BINS];
    let mut sum_y = [0.0; BINS];
    let mut n = [0usize; BINS];
    for c in cases {
        let b = bin(c.top_probability);
        sum_p[b] += c.top_probability;
        sum_y[b] += c.top1;
        n[b] += 1;
    }
    let total = cases.len().max(1) as f64;
    (0..BINS).map(|b| (sum_p[b] - sum_y[b]).abs() / total).sum()
}

/// SplitMix64 (Steele, Lea, Flood 2014): the bootstrap's deterministic generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn mean(cases: &[CaseScore], f: impl Fn(&CaseScore) -> f64) -> f64 {
    cases.iter().map(f).sum::<f64>() / cases.len().max(1) as f64
}

/// The metrics of `cases` with percentile-bootstrap intervals (seeded, deterministic).
pub fn forward_metrics(cases: &[CaseScore]) -> ForwardMetrics {
    type Stat = fn(&[CaseScore]) -> f64;
    let stats: [Stat; 6] = [
        |c| mean(c, |x| x.top1),
        |c| mean(c, |x| x.top3),
        |c| mean(c, |x| x.top5),
        |c| mean(c, |x| x.rr),
        |c| mean(c, |x| x.brier),
        ece,
    ];
    let mut draws: Vec<Vec<f64>> = vec![Vec::with_capacity(BOOTSTRAP_REPS); stats.len()];
    if !cases.is_empty() {
        let mut rng = SplitMix(0x7472_6163_6568_756e);
        let mut sample = Vec::with_capacity(cases.len());
        for _ in 0..BOOTSTRAP_REPS {
            sample.clear();
            for _ in 0..cases.len() {
                sample.push(cases[(rng.next() % cases.len() as u64) as usize]);
            }
            for (d, f) in draws.iter_mut().zip(stats) {
                d.push(f(&sample));
            }
        }
    }
    let mut out = [Interval::default(); 6];
    for ((o, d), f) in out.iter_mut().zip(&mut draws).zip(stats) {
        d.sort_by(f64::total_cmp);
        let q = |x: f64| {
            d.get(((d.len() as f64 - 1.0) * x).round() as usize)
                .copied()
        };
        *o = Interval {
            value: f(cases),
            low: q(0.025).unwrap_or(0.0),
            high: q(0.975).unwrap_or(0.0),
        };
    }
    ForwardMetrics {
        cases: cases.len(),
        top1: out[0],
        top3: out[1],
        top5: out[2],
        mrr: out[3],
        brier: out[4],
        ece: out[5],
        mean_top_probability: mean(cases, |x| x.top_probability),
    }
}

/// Wilson score interval (95 %, z = 1.96) of `hits` successes in `n` trials (Wilson 1927;
/// Brown, Cai & DasGupta 2001). `(0, 1)` for `n = 0`.
pub fn wilson(hits: f64, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.96f64;
    let nf = n as f64;
    let p = hits / nf;
    let d = 1.0 + z * z / nf;
    let c = (p + z * z / (2.0 * nf)) / d;
    let h = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / d;
    ((c - h).max(0.0), (c + h).min(1.0))
}

/// One bin of the reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Bin bounds of the shown top probability.
    pub from: f64,
    /// Upper bound (exclusive but for the last bin).
    pub to: f64,
    /// Cases whose top probability falls in the bin.
    pub n: usize,
    /// Mean top probability shown in the bin.
    pub mean_probability: f64,
    /// Measured top-1 hit rate in the bin.
    pub hit_rate: f64,
    /// Wilson 95 % interval of the hit rate.
    pub low: f64,
    /// Upper end of it.
    pub high: f64,
}

impl ReliabilityBin {
    /// The shown probability lies inside the hit rate's interval.
    pub fn agrees(&self) -> bool {
        self.low <= self.mean_probability && self.mean_probability <= self.high
    }
}

/// Reliability table of the top candidate's probability: the non-empty bins of [`BINS`].
pub fn reliability(cases: &[CaseScore]) -> Vec<ReliabilityBin> {
    (0..BINS)
        .filter_map(|b| {
            let inside: Vec<&CaseScore> = cases
                .iter()
                .filter(|c| bin(c.top_probability) == b)
                .collect();
            if inside.is_empty() {
                return None;
            }
            let n = inside.len();
            let hits: f64 = inside.iter().map(|c| c.top1).sum();
            let (low, high) = wilson(hits, n);
            Some(ReliabilityBin {
                from: b as f64 / BINS as f64,
                to: (b + 1) as f64 / BINS as f64,
                n,
                mean_probability: inside.iter().map(|c| c.top_probability).sum::<f64>() / n as f64,
                hit_rate: hits / n as f64,
                low,
                high,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_and_ece_on_known_values() {
        // Wilson interval of 8/10: 0.490 … 0.943 (Brown, Cai & DasGupta 2001, table values).
        let (lo, hi) = wilson(8.0, 10);
        assert!((lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3);
        let c = |p: f64, y: f64| CaseScore {
            top1: y,
            top3: y,
            top5: y,
            rr: y,
            brier: 0.0,
            top_probability: p,
        };
        // Bin 0.8–0.9: p 0.85 twice, one hit → |1.7 − 1| / 4; bin 0.1: |0.1 + 0.1 − 0| / 4.
        let cases = [c(0.85, 1.0), c(0.85, 0.0), c(0.1, 0.0), c(0.1, 0.0)];
        assert!((ece(&cases) - (0.7 + 0.2) / 4.0).abs() < 1e-12);
        let m = forward_metrics(&cases);
        assert_eq!(m.cases, 4);
        assert!((m.top1.value - 0.25).abs() < 1e-12);
        assert!(m.top1.low <= 0.25 && m.top1.high >= 0.25);
        assert_eq!(reliability(&cases).len(), 2);
    }
}
