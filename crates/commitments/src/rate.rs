//! Exact conditional comparison of two Poisson rates (after vs before a
//! date).
//!
//! Given the total count `y` of both sides, the count after the date is
//! Binomial(`y`, `q`) with `q = R E_a / (R E_a + E_b)`, R the rate ratio
//! (Przyborowski & Wilenski 1940; the `exact-cond` method of statsmodels
//! `stats.rates`). Hence:
//! * p-value of R = 1: statsmodels 0.15 `test_poisson_2indep(y_a, E_a, y_b,
//!   E_b, method='exact-cond')`, i.e. scipy's two-sided `binomtest` (the
//!   "minlike" rule: sum of the outcomes no more likely than the observed
//!   one, relative tolerance 1e-7);
//! * confidence interval: the Clopper–Pearson interval `[q_l, q_u]` of `q`
//!   mapped to `R = q/(1−q) · E_b/E_a`. (statsmodels 0.15's
//!   `confint_poisson_2indep` lists `exact-cond` as "NOT YET"; the interval
//!   above is the inversion of the same exact conditional test, equal to R's
//!   `poisson.test`; the reference values come from statsmodels
//!   `proportion_confint(method='beta')`.)

use serde::Serialize;
use statrs::function::beta::beta_reg;
use statrs::function::gamma::ln_gamma;

/// Why a rate ratio could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateError {
    /// A count is negative, non-integer or not finite.
    #[error("counts must be non-negative integers (got {0} and {1})")]
    Count(f64, f64),
    /// An exposure is not finite and > 0 (a side without coverage).
    #[error("exposures must be finite and > 0 (got {0} and {1})")]
    Exposure(f64, f64),
    /// The confidence level is not in (0, 1).
    #[error("confidence level {0} is not in (0, 1)")]
    Level(f64),
}

/// Rates before and after a date and their exact ratio (after / before).
///
/// `None` marks a value that is undefined or infinite (e.g. no events
/// before the date: ratio and upper limit infinite).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateRatio {
    /// Events before the date.
    pub before_count: f64,
    /// Exposure before the date.
    pub before_exposure: f64,
    /// Events after the date.
    pub after_count: f64,
    /// Exposure after the date.
    pub after_exposure: f64,
    /// Events per exposure unit before.
    pub before_rate: f64,
    /// Events per exposure unit after.
    pub after_rate: f64,
    /// after_rate / before_rate (`None`: no events on either side or none
    /// before).
    pub ratio: Option<f64>,
    /// Lower confidence limit (0 when there are no events after).
    pub ci_low: f64,
    /// Upper confidence limit (`None` = infinite: no events before).
    pub ci_high: Option<f64>,
    /// Exact conditional two-sided p-value of ratio = 1.
    pub p_value: f64,
    /// Confidence level of the interval (e.g. 0.95).
    pub level: f64,
}

/// Exact conditional rate ratio after/before with its `level` confidence
/// interval and two-sided p-value.
///
/// # Errors
/// [`RateError`] on invalid counts, exposures or level.
pub fn exact_rate_ratio(
    after_count: f64,
    after_exposure: f64,
    before_count: f64,
    before_exposure: f64,
    level: f64,
) -> Result<RateRatio, RateError> {
    let bad_count = |c: f64| !c.is_finite() || c < 0.0 || c.fract() != 0.0;
    if bad_count(after_count) || bad_count(before_count) {
        return Err(RateError::Count(after_count, before_count));
    }
    let good_exposure = |e: f64| e.is_finite() && e > 0.0;
    if !good_exposure(after_exposure) || !good_exposure(before_exposure) {
        return Err(RateError::Exposure(after_exposure, before_exposure));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(RateError::Level(level));
    }
    let (k, n) = (after_count, after_count + before_count);
    let alpha = 1.0 - level;
    let scale = before_exposure / after_exposure;
    let to_ratio = |q: f64| q / (1.0 - q) * scale;
    let q_low = if k == 0.0 {
        0.0
    } else {
        beta_quantile(alpha / 2.0, k, n - k + 1.0)
    };
    let q_high = if k == n {
        1.0
    } else {
        beta_quantile(1.0 - alpha / 2.0, k + 1.0, n - k)
    };
    let before_rate = before_count / before_exposure;
    let after_rate = after_count / after_exposure;
    Ok(RateRatio {
        before_count,
        before_exposure,
        after_count,
        after_exposure,
        before_rate,
        after_rate,
        ratio: (before_count > 0.0).then(|| after_rate / before_rate),
        ci_low: to_ratio(q_low),
        ci_high: (q_high < 1.0).then(|| to_ratio(q_high)),
        p_value: binom_test_two_sided(k, n, after_exposure / (after_exposure + before_exposure)),
        level,
    })
}

/// Quantile of the Beta(a, b) distribution (a, b > 0) by bisection on the
/// regularized incomplete beta function (to full double precision).
pub fn beta_quantile(prob: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if beta_reg(a, b, mid) < prob {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn ln_binom_pmf(j: f64, n: f64, p: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(j + 1.0) - ln_gamma(n - j + 1.0)
        + j * p.ln()
        + (n - j) * (1.0 - p).ln()
}

/// P(X ≤ k) for X ~ Binomial(n, p), by the regularized incomplete beta.
fn binom_cdf(k: f64, n: f64, p: f64) -> f64 {
    if k < 0.0 {
        0.0
    } else if k >= n {
        1.0
    } else {
        beta_reg(n - k, k + 1.0, 1.0 - p)
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p).
fn binom_at_least(k: f64, n: f64, p: f64) -> f64 {
    if k <= 0.0 {
        1.0
    } else if k > n {
        0.0
    } else {
        beta_reg(k, n - k + 1.0, p)
    }
}

/// Two-sided exact binomial test of `k` successes in `n` trials with success
/// probability `p` in (0, 1), as scipy `binomtest(k, n, p).pvalue` (the
/// "minlike" rule): the tail beyond `k` plus the opposite tail of outcomes
/// with probability ≤ P(X = k) (1 + 1e-7), found by bisection on the
/// monotone side of the mode (O(log n)).
pub fn binom_test_two_sided(k: f64, n: f64, p: f64) -> f64 {
    if n <= 0.0 || k == p * n {
        return 1.0;
    }
    let pmf = |j: f64| ln_binom_pmf(j, n, p).exp();
    let threshold = pmf(k) * (1.0 + 1e-7);
    let pval = if k < p * n {
        // smallest j in [ceil(pn), n] with pmf(j) <= threshold (pmf falls there)
        let (mut lo, mut hi) = ((p * n).ceil(), n + 1.0);
        while lo < hi {
            let mid = (lo + (hi - lo) / 2.0).floor();
            if pmf(mid) <= threshold {
                hi = mid;
            } else {
                lo = mid + 1.0;
            }
        }
        binom_cdf(k, n, p) + binom_at_least(lo, n, p)
    } else {
        // largest j in [0, floor(pn)] with pmf(j) <= threshold (pmf rises there)
        let (mut lo, mut hi) = (-1.0, (p * n).floor());
        while lo < hi {
            let mid = (lo + (hi - lo + 1.0) / 2.0).floor();
            if pmf(mid) <= threshold {
                lo = mid;
            } else {
                hi = mid - 1.0;
            }
        }
        binom_cdf(lo, n, p) + binom_at_least(k, n, p)
    };
    pval.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_from_statsmodels() {
        // test_poisson_2indep(30, 12, 50, 12, method='exact-cond').pvalue
        let r = exact_rate_ratio(30.0, 12.0, 50.0, 12.0, 0.95).unwrap();
        assert!(
            (r.p_value - 0.03299261842647619).abs() < 1e-10,
            "{}",
            r.p_value
        );
        assert!((r.ratio.unwrap() - 0.6).abs() < 1e-12);
        assert!(r.ci_low < 0.6 && r.ci_high.unwrap() > 0.6);
        // scipy.stats.binomtest(70, 100, 0.5).pvalue, and the other side
        assert!((binom_test_two_sided(70.0, 100.0, 0.5) - 7.850_139_645_593_67e-5).abs() < 1e-15);
        assert!((binom_test_two_sided(30.0, 100.0, 0.5) - 7.850_139_645_593_67e-5).abs() < 1e-15);
        // large counts are cheap (no sum over every outcome)
        let big = binom_test_two_sided(5_000_000.0, 10_000_000.0, 0.5);
        assert!((big - 1.0).abs() < 1e-12);
        assert!(binom_test_two_sided(4_990_000.0, 10_000_000.0, 0.5) < 1e-9);
    }

    #[test]
    fn no_events_before_gives_infinite_upper_limit() {
        let r = exact_rate_ratio(5.0, 1.0, 0.0, 1.0, 0.95).unwrap();
        assert_eq!(r.ratio, None);
        assert_eq!(r.ci_high, None);
        assert!(r.ci_low > 0.0 && r.ci_low.is_finite());
        let z = exact_rate_ratio(0.0, 1.0, 0.0, 1.0, 0.95).unwrap();
        assert_eq!(z.p_value, 1.0);
        assert_eq!(z.ci_low, 0.0);
    }

    #[test]
    fn invalid_inputs_are_typed_errors() {
        assert!(matches!(
            exact_rate_ratio(1.5, 1.0, 1.0, 1.0, 0.95),
            Err(RateError::Count(..))
        ));
        assert!(matches!(
            exact_rate_ratio(1.0, 0.0, 1.0, 1.0, 0.95),
            Err(RateError::Exposure(..))
        ));
        assert!(matches!(
            exact_rate_ratio(1.0, 1.0, 1.0, 1.0, 1.0),
            Err(RateError::Level(_))
        ));
    }
}
