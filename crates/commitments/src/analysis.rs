//! Did activity change at a date? Rate ratio, interrupted time series,
//! competing dates and a verdict in words.
//!
//! The interrupted time series (ITS) is a segmented Poisson regression
//! (Bernal, Cummins & Gasparrini 2017, Int J Epidemiol 46:348,
//! "Interrupted time series regression for the evaluation of public health
//! interventions"): `log μ_t = b0 + b1 t + b2 D_t + b3 t D_t + log e_t`,
//! `t` in periods with `t = 0` at the first period after the date,
//! `D_t = 1[t ≥ 0]`. `exp(b1)` is the pre-trend (rate ratio per period),
//! `exp(b2)` the level change at the date (against the pre-trend
//! extrapolated), `exp(b3)` the change of the per-period trend. Standard
//! errors: Newey–West HAC (used for CIs and p-values) and quasi-Poisson
//! (reported); see [`crate::glm`].

use chrono::NaiveDate;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::erf::erfc;

use crate::changepoint::ChangePoints;
use crate::glm::{fit_poisson, hac_cov, newey_west_lags, standard_errors, GlmError, PoissonFit};
use crate::rate::{exact_rate_ratio, RateRatio};
use crate::series::{Period, Series, SeriesError};
pub use crate::verdict::verdict;

/// Options of [`analyse_date`] and [`compare_dates`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Options {
    /// Periods on each side of the date in the ITS fit and the rate ratio;
    /// `None` = the whole series. Default `Some(12)` (months); use
    /// [`Options::for_period`] for 52 with weeks. A linear pre-trend over a
    /// long flat-then-declining history is misspecified and biases the level
    /// change (Bernal et al. 2017), hence a window.
    pub window: Option<usize>,
    /// Periods before the date left out as anticipation (default 0).
    pub anticipation: usize,
    /// HAC lags; `None` = ⌊4 (n/100)^(2/9)⌋ with n the periods used.
    pub hac_lags: Option<usize>,
    /// Confidence level (default 0.95).
    pub level: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options::for_period(Period::Month)
    }
}

impl Options {
    /// Defaults with a window of one year of periods (12 months, 52 weeks).
    pub fn for_period(period: Period) -> Self {
        Options {
            window: Some(period.per_year()),
            anticipation: 0,
            hac_lags: None,
            level: 0.95,
        }
    }
}

/// Why a date could not be analysed at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// The series is invalid (empty, inconsistent lengths, bad values).
    #[error("invalid series: {0}")]
    Series(#[from] SeriesError),
    /// The confidence level is not in (0, 1).
    #[error("confidence level {0} is not in (0, 1)")]
    Level(f64),
    /// No covered period on one side of the date (within the window); the text says which
    /// side and why.
    #[error("{0}")]
    OneSided(String),
}

/// One coefficient of the ITS fit. `ratio`, `ci_low`, `ci_high` are on the
/// rate-ratio scale `exp(coef)`, `exp(coef ∓ z se_hac)`; `p_value` is the
/// two-sided normal p-value of `coef / se_hac` (statsmodels `pvalues` with
/// `use_t=False`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// Coefficient (log scale).
    pub coef: f64,
    /// Newey–West HAC standard error.
    pub se_hac: f64,
    /// Quasi-Poisson standard error (model SE × √φ).
    pub se_quasi: f64,
    /// exp(coef).
    pub ratio: f64,
    /// Lower confidence limit of the ratio (HAC).
    pub ci_low: f64,
    /// Upper confidence limit of the ratio (HAC).
    pub ci_high: f64,
    /// Two-sided p-value (HAC).
    pub p_value: f64,
}

impl Estimate {
    fn new(coef: f64, se_hac: f64, se_quasi: f64, z: f64) -> Estimate {
        let p_value = if se_hac > 1e-12 * (1.0 + coef.abs()) {
            erfc((coef / se_hac).abs() / std::f64::consts::SQRT_2)
        } else if coef.abs() < 1e-9 {
            1.0
        } else {
            0.0
        };
        Estimate {
            coef,
            se_hac,
            se_quasi,
            ratio: coef.exp(),
            ci_low: (coef - z * se_hac).exp(),
            ci_high: (coef + z * se_hac).exp(),
            p_value,
        }
    }

    /// True when the HAC interval excludes 1 at `level`.
    pub fn significant(&self, level: f64) -> bool {
        self.p_value < 1.0 - level
    }
}

/// The segmented regression at a date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItsFit {
    /// b0: log rate at t = 0 on the pre-trend line.
    pub intercept: Estimate,
    /// b1: pre-trend, rate ratio per period.
    pub pre_trend: Estimate,
    /// b2: level change at the date.
    pub level_change: Estimate,
    /// b3: change of the per-period trend after the date.
    pub slope_change: Estimate,
    /// Pearson dispersion φ = χ²/(n − 4) (> 1: overdispersion).
    pub dispersion: f64,
    /// Poisson log-likelihood (statsmodels `llf`).
    pub loglik: f64,
    /// QAIC = −2 ℓ / max(φ, 1) + 2 (4 + 1) (φ counted as a parameter,
    /// Burnham & Anderson 2002); comparable only on the same periods — use
    /// [`compare_dates`] for competing dates.
    pub qaic: f64,
    /// HAC lags used.
    pub hac_lags: usize,
    /// IRLS iterations.
    pub iterations: usize,
}

/// A period left out of the analysis of a date, with why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DroppedPeriod {
    /// Series index.
    pub index: usize,
    /// Label.
    pub label: String,
    /// `transition`, `anticipation` or `no coverage`.
    pub reason: String,
}

/// Everything computed for one date.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DateAnalysis {
    /// The date.
    pub date: NaiveDate,
    /// Period (month / week) of the series.
    pub period: Period,
    /// Series index of the first period starting on or after the date.
    pub t0: usize,
    /// First series index of the window (inclusive).
    pub window_start: usize,
    /// Last series index of the window + 1.
    pub window_end: usize,
    /// Periods left out inside the window.
    pub dropped: Vec<DroppedPeriod>,
    /// Covered periods used before the date.
    pub n_before: usize,
    /// Covered periods used from the date on.
    pub n_after: usize,
    /// n_before + n_after.
    pub n_used: usize,
    /// Exact rate ratio after / before over the same periods.
    pub rate: RateRatio,
    /// The ITS fit, or `None` when not estimable (see `its_note`).
    pub its: Option<ItsFit>,
    /// Why the ITS fit is missing.
    pub its_note: Option<String>,
    /// Fitted rate per exposure unit, `(series index, rate)`, per period used.
    pub fitted: Vec<(usize, f64)>,
    /// Pre-trend extrapolated (no level or slope change) for the periods
    /// used after the date: `(series index, rate per exposure unit)`.
    pub counterfactual: Vec<(usize, f64)>,
    /// Confidence level.
    pub level: f64,
    /// The assumptions, in words.
    pub assumptions: Vec<String>,
}

/// The covered periods of the sample around a date.
struct Sample {
    idx: Vec<usize>,
    dropped: Vec<DroppedPeriod>,
    lo: usize,
    hi: usize,
}

fn sample(series: &Series, t0: usize, transition: bool, opts: &Options) -> Sample {
    let gap = usize::from(transition).saturating_add(opts.anticipation);
    let pre_end = t0.saturating_sub(gap);
    let w = opts.window.unwrap_or(usize::MAX);
    let lo = pre_end.saturating_sub(w);
    let hi = t0.saturating_add(w).min(series.len());
    let mut idx = Vec::new();
    let mut dropped = Vec::new();
    for i in lo..hi {
        let reason = if i >= pre_end && i < t0 {
            if transition && i + 1 == t0 {
                Some("transition")
            } else {
                Some("anticipation")
            }
        } else if series.exposure[i] <= 0.0 {
            Some("no coverage")
        } else {
            None
        };
        match reason {
            Some(r) => dropped.push(DroppedPeriod {
                index: i,
                label: series.label(i),
                reason: r.to_string(),
            }),
            None => idx.push(i),
        }
    }
    Sample {
        idx,
        dropped,
        lo,
        hi,
    }
}

fn design(idx: &[usize], t0: usize) -> Vec<Vec<f64>> {
    idx.iter()
        .map(|&i| {
            let t = i as f64 - t0 as f64;
            let d = if t >= 0.0 { 1.0 } else { 0.0 };
            vec![1.0, t, d, t * d]
        })
        .collect()
}

pub(crate) fn z_value(level: f64) -> f64 {
    Normal::new(0.0, 1.0).map_or(1.959_963_984_540_054, |n| n.inverse_cdf(0.5 + level / 2.0))
}

/// Fits the ITS design on the given periods; returns the fit and its HAC
/// covariance.
fn fit_its(
    series: &Series,
    idx: &[usize],
    t0: usize,
    opts: &Options,
) -> Result<(ItsFit, PoissonFit), GlmError> {
    let x = design(idx, t0);
    let y: Vec<f64> = idx.iter().map(|&i| series.counts[i]).collect();
    let off: Vec<f64> = idx.iter().map(|&i| series.exposure[i].ln()).collect();
    let fit = fit_poisson(&x, &y, &off)?;
    let lags = opts.hac_lags.unwrap_or_else(|| newey_west_lags(idx.len()));
    let se_hac = standard_errors(&hac_cov(&x, &y, &fit, lags));
    let se_quasi = fit.se_quasi();
    if se_hac.iter().chain(&se_quasi).any(|v| !v.is_finite()) {
        return Err(GlmError::NotEstimable("non-finite standard error".into()));
    }
    let z = z_value(opts.level);
    let est = |j: usize| Estimate::new(fit.coef[j], se_hac[j], se_quasi[j], z);
    let its = ItsFit {
        intercept: est(0),
        pre_trend: est(1),
        level_change: est(2),
        slope_change: est(3),
        dispersion: fit.dispersion,
        loglik: fit.loglik,
        qaic: -2.0 * fit.loglik / fit.dispersion.max(1.0) + 2.0 * (fit.p as f64 + 1.0),
        hac_lags: lags,
        iterations: fit.iterations,
    };
    Ok((its, fit))
}

fn check_level(level: f64) -> Result<(), AnalysisError> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(AnalysisError::Level(level))
    }
}

/// Rate ratio and interrupted time series at `date`.
///
/// The series is split at `t0` = first period starting on or after `date`
/// ([`Series::index_of`]); a period containing the date (transition) and
/// `opts.anticipation` more before it are left out, as are periods without
/// coverage. The ITS fit and the exact rate ratio use the same periods
/// (`opts.window` each side). An ITS that cannot be fitted (all zeros, no
/// events on one side, too few periods, singular design) gives `its: None`
/// with `its_note`, not an error.
///
/// # Errors
/// [`AnalysisError`]: invalid series or level, or no covered period on one
/// side of the date.
pub fn analyse_date(
    series: &Series,
    date: NaiveDate,
    opts: &Options,
) -> Result<DateAnalysis, AnalysisError> {
    series.validate()?;
    check_level(opts.level)?;
    let (t0, transition) = series.index_of(date);
    let s = sample(series, t0, transition, opts);
    let n_before = s.idx.iter().filter(|&&i| i < t0).count();
    let n_after = s.idx.len() - n_before;
    if n_before == 0 {
        return Err(AnalysisError::OneSided(if t0 == 0 {
            format!(
                "the series starts after the date (first period {})",
                series.label(0)
            )
        } else {
            "no covered period before the date within the window".to_string()
        }));
    }
    if n_after == 0 {
        return Err(AnalysisError::OneSided(if t0 >= series.len() {
            format!(
                "the series ends before the date (last period {})",
                series.label(series.len() - 1)
            )
        } else {
            "no covered period after the date within the window".to_string()
        }));
    }
    let sum = |after: bool, v: &[f64]| -> f64 {
        s.idx
            .iter()
            .filter(|&&i| (i >= t0) == after)
            .map(|&i| v[i])
            .sum()
    };
    let rate = exact_rate_ratio(
        sum(true, &series.counts),
        sum(true, &series.exposure),
        sum(false, &series.counts),
        sum(false, &series.exposure),
        opts.level,
    )
    .map_err(|e| {
        AnalysisError::Series(SeriesError::Value {
            index: t0,
            message: e.to_string(),
        })
    })?;
    let (its, its_note, fitted, counterfactual) = match fit_its(series, &s.idx, t0, opts) {
        Ok((its, fit)) => {
            let fitted = s
                .idx
                .iter()
                .zip(&fit.mu)
                .map(|(&i, m)| (i, m / series.exposure[i]))
                .collect();
            let (b0, b1) = (its.intercept.coef, its.pre_trend.coef);
            let cf = s
                .idx
                .iter()
                .filter(|&&i| i >= t0)
                .map(|&i| (i, (b0 + b1 * (i as f64 - t0 as f64)).exp()))
                .collect();
            (Some(its), None, fitted, cf)
        }
        Err(e) => (None, Some(e.to_string()), Vec::new(), Vec::new()),
    };
    let assumptions = assumptions(series, date, t0, transition, opts, &s, its.as_ref());
    Ok(DateAnalysis {
        date,
        period: series.period,
        t0,
        window_start: s.lo,
        window_end: s.hi,
        dropped: s.dropped,
        n_before,
        n_after,
        n_used: n_before + n_after,
        rate,
        its,
        its_note,
        fitted,
        counterfactual,
        level: opts.level,
        assumptions,
    })
}

fn assumptions(
    series: &Series,
    date: NaiveDate,
    t0: usize,
    transition: bool,
    opts: &Options,
    s: &Sample,
    its: Option<&ItsFit>,
) -> Vec<String> {
    let unit = series.period.unit();
    let mut a = Vec::new();
    a.push(match opts.window {
        Some(w) => format!(
            "window: {w} {unit}s each side of the date ({} to {}); a linear pre-trend over a longer history can be misspecified and bias the level change (Bernal, Cummins & Gasparrini 2017)",
            series.label(s.lo),
            series.label(s.hi.saturating_sub(1))
        ),
        None => "window: the whole series (the linear pre-trend is assumed to hold throughout)".into(),
    });
    if transition {
        a.push(format!(
            "{} contains {date} (part before, part after): dropped from the fit and the rate ratio",
            series.label(t0.saturating_sub(1))
        ));
    }
    if opts.anticipation > 0 {
        a.push(format!(
            "{} {unit}(s) before the date dropped as anticipation",
            opts.anticipation
        ));
    }
    let missing = s
        .dropped
        .iter()
        .filter(|d| d.reason == "no coverage")
        .count();
    if missing > 0 {
        a.push(format!(
            "{missing} {unit}(s) without coverage (exposure 0) left out: unknown, not zero"
        ));
    }
    a.push("counts are Poisson given the rate, with log(exposure) as offset; overdispersion handled by the quasi-Poisson dispersion (Pearson chi2/(n-p))".into());
    if let Some(f) = its {
        a.push(format!(
            "CIs and p-values use Newey-West HAC errors (Bartlett, {} lags, no small-sample correction, as statsmodels); with few periods they can be too narrow — compare the quasi-Poisson errors",
            f.hac_lags
        ));
    }
    a.push("level change = rate at the first period after the date against the pre-trend extrapolated; slope change = change of the per-period trend".into());
    a.push(format!(
        "rate ratio: exact conditional (binomial) test and Clopper-Pearson interval at {} %",
        opts.level * 100.0
    ));
    a
}

/// One competing date fitted on the common sample of [`compare_dates`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Competing {
    /// Its name (e.g. "indictment").
    pub name: String,
    /// The date.
    pub date: NaiveDate,
    /// Its label (period containing the date).
    pub label: String,
    /// Poisson log-likelihood on the common sample (`None`: not estimable).
    pub loglik: Option<f64>,
    /// QAIC = −2 ℓ / φ_common + 2 (4 + 1).
    pub qaic: Option<f64>,
    /// QAIC − the smallest QAIC (0 for the best date).
    pub delta_qaic: Option<f64>,
    /// Level change at this date on the common sample.
    pub level_change: Option<Estimate>,
    /// The common φ = max(1, largest Pearson dispersion of the fits).
    pub common_dispersion: f64,
    /// Periods in the common sample.
    pub n_used: usize,
    /// Why not estimable, if so.
    pub note: Option<String>,
}

/// Fits the ITS design at each date on ONE common sample — the union of
/// the dates' windows, every date's transition and anticipation periods
/// left out — so the log-likelihoods are comparable (separate windows are
/// not), and ranks them by QAIC with one common φ = max(1, largest Pearson
/// dispersion among the fits) (conservative: the larger φ shrinks
/// differences). ΔQAIC ≥ 2 favours the smaller; all models have the same
/// number of parameters, so ΔQAIC = Δ(−2ℓ)/φ.
///
/// # Errors
/// Invalid series or level; [`AnalysisError::OneSided`] when no date has
/// covered periods on both sides.
pub fn compare_dates(
    series: &Series,
    dates: &[(String, NaiveDate)],
    opts: &Options,
) -> Result<Vec<Competing>, AnalysisError> {
    series.validate()?;
    check_level(opts.level)?;
    let w = opts.window.unwrap_or(usize::MAX);
    let splits: Vec<(usize, usize)> = dates
        .iter()
        .map(|(_, d)| {
            let (t0, tr) = series.index_of(*d);
            (t0, usize::from(tr).saturating_add(opts.anticipation))
        })
        .collect();
    let lo = splits
        .iter()
        .map(|(t0, g)| t0.saturating_sub(*g).saturating_sub(w))
        .min()
        .unwrap_or(0);
    let hi = splits
        .iter()
        .map(|(t0, _)| t0.saturating_add(w))
        .max()
        .unwrap_or(0)
        .min(series.len());
    let idx: Vec<usize> = (lo..hi)
        .filter(|&i| series.exposure[i] > 0.0)
        .filter(|&i| {
            !splits
                .iter()
                .any(|(t0, g)| i < *t0 && i.saturating_add(*g) >= *t0)
        })
        .collect();
    if !splits
        .iter()
        .any(|(t0, _)| idx.iter().any(|&i| i < *t0) && idx.iter().any(|&i| i >= *t0))
    {
        return Err(AnalysisError::OneSided(
            "no date has covered periods on both sides within the window".to_string(),
        ));
    }
    let fits: Vec<Result<(ItsFit, PoissonFit), GlmError>> = splits
        .iter()
        .map(|(t0, _)| fit_its(series, &idx, *t0, opts))
        .collect();
    let phi = fits
        .iter()
        .filter_map(|f| f.as_ref().ok())
        .map(|(_, f)| f.dispersion)
        .fold(1.0, f64::max);
    let qaic = |f: &PoissonFit| -2.0 * f.loglik / phi + 2.0 * (f.p as f64 + 1.0);
    let best = fits
        .iter()
        .filter_map(|f| f.as_ref().ok().map(|(_, p)| qaic(p)))
        .fold(f64::INFINITY, f64::min);
    Ok(dates
        .iter()
        .zip(fits)
        .map(|((name, date), fit)| {
            let (loglik, q, level_change, note) = match fit {
                Ok((its, f)) => (Some(f.loglik), Some(qaic(&f)), Some(its.level_change), None),
                Err(e) => (None, None, None, Some(e.to_string())),
            };
            Competing {
                name: name.clone(),
                date: *date,
                label: series.period.label(*date),
                loglik,
                qaic: q,
                delta_qaic: q.map(|v| v - best),
                level_change,
                common_dispersion: phi,
                n_used: idx.len(),
                note,
            }
        })
        .collect())
}

/// PELT change points and the trend break of the whole series
/// ([`crate::changepoint::detect`]).
pub fn change_points(series: &Series) -> ChangePoints {
    crate::changepoint::detect(series)
}
