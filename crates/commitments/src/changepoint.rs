//! When did activity change, from the data alone?
//!
//! * [`pelt`]: PELT (Killick, Fearnhead & Eckley 2012, JASA 107:1590) with
//!   the Poisson segment cost `C = −2 (Y ln(Y/E) − Y)` (Y, E: the segment's
//!   count and exposure; 0 ln 0 = 0; the per-period term Σ y ln e is common
//!   to every partition and dropped), a minimum segment length and a
//!   penalty per change point. [`optimal_partition`] is the exact dynamic
//!   program (Jackson et al. 2005) it must agree with.
//! * [`trend_break`]: one break in a log-linear trend, `log μ = a + b t +
//!   c (t−τ)₊ + d 1[t≥τ] + log e`, τ maximising the Poisson likelihood.
//! * [`detect`]: both on a [`Series`] (periods with exposure 0 left out).

use serde::Serialize;

use crate::glm::{fit_poisson, PoissonFit};
use crate::series::Series;

/// Minimum number of periods in a PELT segment.
pub const MIN_SEGMENT: usize = 3;
/// Trimming of the trend-break search: at least this fraction of the used
/// periods (and at least [`MIN_SEGMENT`]) on each side of τ.
pub const TRIM: f64 = 0.15;
/// 5 % critical value of the sup-LR statistic for 2 restrictions with 15 %
/// trimming (Andrews 1993, Econometrica 61:821, Table 1). Andrews' theory
/// assumes stationary regressors, so with a trend this is a heuristic bar,
/// far stricter than the pointwise χ²₂ value 5.99.
pub const SUP_LR_CRITICAL: f64 = 11.79;

/// Trend-break candidates fitted one by one; a longer series is searched on a grid of about
/// this many candidates, then every candidate around the grid's best.
pub const FULL_SEARCH: usize = 240;

fn cumsum(v: &[f64]) -> Vec<f64> {
    let mut c = Vec::with_capacity(v.len() + 1);
    c.push(0.0);
    for x in v {
        c.push(c[c.len() - 1] + x);
    }
    c
}

/// Poisson cost of the segment `[s, t)` from cumulative sums (see module).
pub fn segment_cost(cy: &[f64], ce: &[f64], s: usize, t: usize) -> f64 {
    let (y, e) = (cy[t] - cy[s], ce[t] - ce[s]);
    if y <= 0.0 || e <= 0.0 {
        0.0
    } else {
        -2.0 * (y * (y / e).ln() - y)
    }
}

/// Exact optimal partitioning: minimises Σ cost + `penalty` × (number of
/// change points) over partitions into segments of ≥ `min_seg` periods.
/// Returns the change points (index of each new segment's first period),
/// ascending; ties go to the earliest split.
pub fn optimal_partition(y: &[f64], e: &[f64], penalty: f64, min_seg: usize) -> Vec<usize> {
    let n = y.len().min(e.len());
    let min_seg = min_seg.max(1);
    let (cy, ce) = (cumsum(&y[..n]), cumsum(&e[..n]));
    let mut f = vec![f64::INFINITY; n + 1];
    let mut last = vec![0usize; n + 1];
    f[0] = -penalty;
    for t in min_seg..=n {
        for s in 0..=t - min_seg {
            if f[s].is_finite() {
                let v = f[s] + segment_cost(&cy, &ce, s, t) + penalty;
                if v < f[t] - 1e-12 {
                    f[t] = v;
                    last[t] = s;
                }
            }
        }
    }
    backtrack(&f, &last, n)
}

fn backtrack(f: &[f64], last: &[usize], n: usize) -> Vec<usize> {
    let mut cps = Vec::new();
    if n == 0 || !f[n].is_finite() {
        return cps;
    }
    let mut t = n;
    while t > 0 {
        let s = last[t];
        if s > 0 {
            cps.push(s);
        }
        t = s;
    }
    cps.reverse();
    cps
}

/// PELT: the same optimum as [`optimal_partition`] with pruning. A
/// candidate `s` with `F(s) + C(s,t) > F(t)` is pruned only from time
/// `t + min_seg` on (the pruning argument needs an admissible segment
/// `[t, T)`), so the result stays exact with a minimum segment length.
pub fn pelt(y: &[f64], e: &[f64], penalty: f64, min_seg: usize) -> Vec<usize> {
    let n = y.len().min(e.len());
    let min_seg = min_seg.max(1);
    let (cy, ce) = (cumsum(&y[..n]), cumsum(&e[..n]));
    let mut f = vec![f64::INFINITY; n + 1];
    let mut last = vec![0usize; n + 1];
    f[0] = -penalty;
    // (candidate, pruned from this time on)
    let mut cands: Vec<(usize, usize)> = vec![(0, usize::MAX)];
    for t in min_seg..=n {
        let mut vals = Vec::with_capacity(cands.len());
        for &(s, pruned_from) in &cands {
            if t < s + min_seg || t >= pruned_from {
                vals.push(None);
                continue;
            }
            let v = f[s] + segment_cost(&cy, &ce, s, t);
            if v + penalty < f[t] - 1e-12 {
                f[t] = v + penalty;
                last[t] = s;
            }
            vals.push(Some(v));
        }
        let ft = f[t];
        for (c, v) in cands.iter_mut().zip(vals) {
            if let Some(v) = v {
                if v > ft && c.1 == usize::MAX {
                    c.1 = t + min_seg;
                }
            }
        }
        cands.retain(|&(_, p)| p > t);
        if ft.is_finite() {
            cands.push((t, usize::MAX));
        }
    }
    backtrack(&f, &last, n)
}

/// The best single break of a log-linear trend (indices into the inputs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendBreakFit {
    /// Position (into the input arrays) of the first period of the new regime.
    pub position: usize,
    /// τ: the time of that period.
    pub tau: f64,
    /// a, b (slope before, per period), c (slope change), d (level jump).
    pub coef: Vec<f64>,
    /// Poisson log-likelihood of the break model.
    pub loglik: f64,
    /// Log-likelihood of the plain trend `a + b t` (no break).
    pub loglik_linear: f64,
    /// Pearson dispersion of the break model.
    pub dispersion: f64,
    /// Quasi-likelihood-ratio statistic 2 (ℓ_break − ℓ_linear) / max(φ, 1).
    pub lr_stat: f64,
    /// `lr_stat > SUP_LR_CRITICAL`.
    pub supported: bool,
    /// Log change, at the last period, of the fitted rate against the
    /// pre-break trend extrapolated: c (t_last − τ) + d (< 0: a decline).
    pub log_change_at_end: f64,
}

fn break_design(t: &[f64], tau: f64) -> Vec<Vec<f64>> {
    t.iter()
        .map(|&ti| {
            vec![
                1.0,
                ti,
                (ti - tau).max(0.0),
                if ti >= tau { 1.0 } else { 0.0 },
            ]
        })
        .collect()
}

/// Searches τ over the times `t` (ascending, e.g. period indices) with at
/// least max([`MIN_SEGMENT`], ⌈[`TRIM`] n⌉) observations on each side,
/// fitting `log μ = a + b t + c (t−τ)₊ + d 1[t≥τ] + log e` by Poisson ML and
/// keeping the τ of largest likelihood (the first on ties within 1e-9).
/// `None` when too few observations or no candidate could be fitted.
pub fn trend_break(t: &[f64], y: &[f64], e: &[f64]) -> Option<TrendBreakFit> {
    let n = t.len();
    if y.len() != n || e.len() != n || e.iter().any(|v| v.is_nan() || *v <= 0.0) {
        return None;
    }
    let m = MIN_SEGMENT.max((TRIM * n as f64).ceil() as usize);
    if n < 2 * m {
        return None;
    }
    let off: Vec<f64> = e.iter().map(|v| v.ln()).collect();
    let mut best: Option<(usize, PoissonFit)> = None;
    let consider = |k: usize, best: &mut Option<(usize, PoissonFit)>| {
        let Ok(fit) = fit_poisson(&break_design(t, t[k]), y, &off) else {
            return;
        };
        if best
            .as_ref()
            .is_none_or(|(_, b)| fit.loglik > b.loglik + 1e-9)
        {
            *best = Some((k, fit));
        }
    };
    // Every candidate up to FULL_SEARCH of them; beyond, a coarse grid then every candidate
    // around its best (one fit costs O(n): a full search of 5,000 periods took minutes).
    let candidates = n - 2 * m + 1;
    let step = candidates.div_ceil(FULL_SEARCH).max(1);
    for k in (m..=n - m).step_by(step) {
        consider(k, &mut best);
    }
    if step > 1 {
        if let Some(k0) = best.as_ref().map(|b| b.0) {
            for k in k0.saturating_sub(step).max(m)..=(k0 + step).min(n - m) {
                consider(k, &mut best);
            }
        }
    }
    let (k, fit) = best?;
    let lin: Vec<Vec<f64>> = t.iter().map(|&ti| vec![1.0, ti]).collect();
    let loglik_linear = fit_poisson(&lin, y, &off).ok()?.loglik;
    let lr_stat = (2.0 * (fit.loglik - loglik_linear)).max(0.0) / fit.dispersion.max(1.0);
    let tau = t[k];
    Some(TrendBreakFit {
        position: k,
        tau,
        log_change_at_end: fit.coef[2] * (t[n - 1] - tau) + fit.coef[3],
        coef: fit.coef,
        loglik: fit.loglik,
        loglik_linear,
        dispersion: fit.dispersion,
        lr_stat,
        supported: lr_stat > SUP_LR_CRITICAL,
    })
}

/// A change point of the series found by PELT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangePoint {
    /// Series index of the first period of the new segment.
    pub index: usize,
    /// Its start date.
    pub start: chrono::NaiveDate,
    /// Its label (`2015-10`, `2015-W40`).
    pub label: String,
    /// Rate (events per exposure unit) of the segment before.
    pub rate_before: f64,
    /// Rate of the segment after.
    pub rate_after: f64,
}

/// The trend break on a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendBreak {
    /// Series index of τ (first period of the new regime).
    pub index: usize,
    /// Its start date.
    pub start: chrono::NaiveDate,
    /// Its label.
    pub label: String,
    /// The fit (t = series index).
    pub fit: TrendBreakFit,
}

/// Change points and the trend break of a whole series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangePoints {
    /// PELT change points, ascending.
    pub points: Vec<ChangePoint>,
    /// Penalty per change point: φ̂ × 2 ln n.
    pub penalty: f64,
    /// φ̂ = max(1, Pearson dispersion of the trend-break fit) (1 when that
    /// fit is not available): overdispersed counts would otherwise give
    /// spurious change points.
    pub dispersion: f64,
    /// Periods used (exposure > 0).
    pub n_used: usize,
    /// Minimum segment length.
    pub min_segment: usize,
    /// The single trend break ("when did the decline begin"), if estimable.
    pub trend_break: Option<TrendBreak>,
    /// Why the search found nothing or could not run, if so.
    pub note: Option<String>,
}

/// Runs [`trend_break`] and [`pelt`] on the periods of `series` with
/// exposure > 0 (t = series index). Never fails: an unusable series gives
/// no points and a `note`.
pub fn detect(series: &Series) -> ChangePoints {
    let mut out = ChangePoints {
        points: Vec::new(),
        penalty: 0.0,
        dispersion: 1.0,
        n_used: 0,
        min_segment: MIN_SEGMENT,
        trend_break: None,
        note: None,
    };
    if let Err(e) = series.validate() {
        out.note = Some(format!("invalid series: {e}"));
        return out;
    }
    let idx: Vec<usize> = (0..series.len())
        .filter(|&i| series.exposure[i] > 0.0)
        .collect();
    let n = idx.len();
    out.n_used = n;
    let y: Vec<f64> = idx.iter().map(|&i| series.counts[i]).collect();
    let e: Vec<f64> = idx.iter().map(|&i| series.exposure[i]).collect();
    let t: Vec<f64> = idx.iter().map(|&i| i as f64).collect();
    if let Some(fit) = trend_break(&t, &y, &e) {
        out.dispersion = fit.dispersion.max(1.0);
        let i = idx[fit.position];
        out.trend_break = Some(TrendBreak {
            index: i,
            start: series.starts[i],
            label: series.label(i),
            fit,
        });
    }
    if n < 2 {
        out.note = Some(format!("{n} period(s) with coverage: nothing to segment"));
        return out;
    }
    out.penalty = out.dispersion * 2.0 * (n as f64).ln();
    let cps = pelt(&y, &e, out.penalty, MIN_SEGMENT);
    let mut bounds = vec![0];
    bounds.extend(&cps);
    bounds.push(n);
    let rate = |a: usize, b: usize| {
        let (ys, es): (f64, f64) = (y[a..b].iter().sum(), e[a..b].iter().sum());
        ys / es
    };
    for w in 0..cps.len() {
        let i = idx[cps[w]];
        out.points.push(ChangePoint {
            index: i,
            start: series.starts[i],
            label: series.label(i),
            rate_before: rate(bounds[w], bounds[w + 1]),
            rate_after: rate(bounds[w + 1], bounds[w + 2]),
        });
    }
    if out.points.is_empty() {
        out.note = Some("no change point beats the penalty".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pelt_equals_exhaustive_partitioning_on_a_step() {
        let y: Vec<f64> = (0..40)
            .map(|i| if i < 17 { 20.0 + (i % 3) as f64 } else { 5.0 })
            .collect();
        let e = vec![1.0; 40];
        let pen = 2.0 * 40f64.ln();
        assert_eq!(pelt(&y, &e, pen, 3), vec![17]);
        assert_eq!(optimal_partition(&y, &e, pen, 3), vec![17]);
    }

    #[test]
    fn pelt_on_too_short_or_empty_input_finds_nothing() {
        assert!(pelt(&[], &[], 1.0, 3).is_empty());
        assert!(pelt(&[1.0, 9.0], &[1.0, 1.0], 0.0, 3).is_empty());
        assert!(trend_break(&[0.0, 1.0], &[1.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
