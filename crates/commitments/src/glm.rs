//! A small Poisson GLM (log link, offset) fitted by iteratively reweighted
//! least squares, with the quasi-Poisson dispersion and the Newey–West HAC
//! sandwich exactly as statsmodels computes them.
//!
//! Follows statsmodels 0.15 `GLM(y, X, family=Poisson(), offset=o)`:
//! * `.fit()` — coefficients (identical for quasi-Poisson), `llf`
//!   (full Poisson log-likelihood, with `-ln y!`), `pearson_chi2`;
//! * `.fit(scale='X2')` — quasi-Poisson: model SE × √φ, φ = Pearson χ²/(n−p);
//! * `.fit(cov_type='HAC', cov_kwds={'maxlags': L})` — Bartlett-kernel
//!   sandwich `H⁻¹ S H⁻¹` with scores `xᵢ(yᵢ−μᵢ)`, `H = XᵀWX`, `W = diag μ`,
//!   and statsmodels' default `use_correction=False` (no n/(n−p) factor).
//!
//! Matrices are small (p ≤ ~6) and dense: `Vec<Vec<f64>>`, row-major.

use serde::Serialize;
use statrs::function::gamma::ln_gamma;

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GlmError {
    /// Inputs of different lengths, or a non-finite value.
    #[error("invalid input: {0}")]
    Input(String),
    /// Fewer observations than parameters + 1 (no residual degree of freedom).
    #[error("{n} observations for {p} parameters: not estimable")]
    TooFewObservations {
        /// Observations.
        n: usize,
        /// Parameters.
        p: usize,
    },
    /// `XᵀWX` is (numerically) singular: the design does not identify every
    /// coefficient (e.g. a constant column, or no observation after a date).
    #[error("singular design: {0} is not identified")]
    Singular(String),
    /// All counts are zero, or a fitted mean went to zero where the count is
    /// zero (separation): the MLE is at infinity.
    #[error("not estimable: {0}")]
    NotEstimable(String),
    /// IRLS did not converge.
    #[error("IRLS did not converge in {0} iterations")]
    NotConverged(usize),
}

/// A fitted Poisson GLM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoissonFit {
    /// Coefficients (log scale), one per design column.
    pub coef: Vec<f64>,
    /// Fitted means μᵢ (counts, exposure included).
    pub mu: Vec<f64>,
    /// Inverse Fisher information `(XᵀWX)⁻¹` (model-based covariance, φ = 1).
    pub cov_model: Vec<Vec<f64>>,
    /// Poisson log-likelihood Σ [y ln μ − μ − ln y!] (statsmodels `llf`).
    pub loglik: f64,
    /// Deviance 2 Σ [y ln(y/μ) − (y − μ)].
    pub deviance: f64,
    /// Pearson χ² = Σ (y − μ)²/μ.
    pub pearson_chi2: f64,
    /// Quasi-Poisson dispersion φ = Pearson χ² / (n − p).
    pub dispersion: f64,
    /// Observations.
    pub n: usize,
    /// Parameters.
    pub p: usize,
    /// IRLS iterations used.
    pub iterations: usize,
}

impl PoissonFit {
    /// Model-based standard errors √diag((XᵀWX)⁻¹).
    pub fn se_model(&self) -> Vec<f64> {
        diag_sqrt(&self.cov_model)
    }

    /// Quasi-Poisson standard errors: model SE × √φ (statsmodels
    /// `fit(scale='X2').bse`).
    pub fn se_quasi(&self) -> Vec<f64> {
        let s = self.dispersion.sqrt();
        self.se_model().into_iter().map(|v| v * s).collect()
    }
}

const MAX_ITER: usize = 100;

/// Fits `log E[y] = X b + offset` by IRLS (start μ = (y + ȳ)/2 as
/// statsmodels; stops when the deviance changes by < 1e-13 relative and the
/// coefficients by < 1e-10).
///
/// `x`: n rows of p columns; `y`: n non-negative counts; `offset`: n values
/// (log exposure).
///
/// # Errors
/// See [`GlmError`]; never panics, never returns NaN coefficients.
pub fn fit_poisson(x: &[Vec<f64>], y: &[f64], offset: &[f64]) -> Result<PoissonFit, GlmError> {
    let n = y.len();
    let p = x.first().map_or(0, Vec::len);
    check_input(x, y, offset, p)?;
    if n <= p {
        return Err(GlmError::TooFewObservations { n, p });
    }
    let ybar = y.iter().sum::<f64>() / n as f64;
    if ybar <= 0.0 {
        return Err(GlmError::NotEstimable("all counts are zero".into()));
    }
    let mut mu: Vec<f64> = y.iter().map(|v| (v + ybar) / 2.0).collect();
    let mut coef = vec![0.0; p];
    let mut dev_old = f64::INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < MAX_ITER {
        iterations += 1;
        let z: Vec<f64> = (0..n)
            .map(|i| mu[i].ln() - offset[i] + (y[i] - mu[i]) / mu[i])
            .collect();
        let xtwx = weighted_gram(x, &mu);
        let inv = invert_spd(&xtwx)?;
        let xtwz: Vec<f64> = (0..p)
            .map(|j| (0..n).map(|i| x[i][j] * mu[i] * z[i]).sum())
            .collect();
        let new: Vec<f64> = (0..p).map(|j| dot(&inv[j], &xtwz)).collect();
        let step = new
            .iter()
            .zip(&coef)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        coef = new;
        mu = predict(x, &coef, offset)?;
        let dev = deviance(y, &mu);
        if (dev - dev_old).abs() <= 1e-13 * (dev.abs() + 1.0) && step < 1e-10 {
            converged = true;
            break;
        }
        dev_old = dev;
    }
    if !converged {
        return Err(GlmError::NotConverged(MAX_ITER));
    }
    if y.iter().zip(&mu).any(|(yi, mi)| *yi == 0.0 && *mi < 1e-8) {
        return Err(GlmError::NotEstimable(
            "a fitted mean went to zero (no events on one side of a term)".into(),
        ));
    }
    let cov_model = invert_spd(&weighted_gram(x, &mu))?;
    let pearson_chi2: f64 = y.iter().zip(&mu).map(|(a, m)| (a - m) * (a - m) / m).sum();
    let loglik = y
        .iter()
        .zip(&mu)
        .map(|(a, m)| a * m.ln() - m - ln_gamma(a + 1.0))
        .sum();
    Ok(PoissonFit {
        coef,
        deviance: deviance(y, &mu),
        mu,
        cov_model,
        loglik,
        pearson_chi2,
        dispersion: pearson_chi2 / (n - p) as f64,
        n,
        p,
        iterations,
    })
}

fn check_input(x: &[Vec<f64>], y: &[f64], offset: &[f64], p: usize) -> Result<(), GlmError> {
    if x.len() != y.len() || offset.len() != y.len() {
        return Err(GlmError::Input(format!(
            "{} rows, {} counts, {} offsets",
            x.len(),
            y.len(),
            offset.len()
        )));
    }
    if p == 0
        || x.iter()
            .any(|r| r.len() != p || r.iter().any(|v| !v.is_finite()))
    {
        return Err(GlmError::Input(
            "design rows must have the same, non-zero width and finite values".into(),
        ));
    }
    if y.iter().any(|v| !v.is_finite() || *v < 0.0) || offset.iter().any(|v| !v.is_finite()) {
        return Err(GlmError::Input(
            "counts must be finite and >= 0, offsets finite".into(),
        ));
    }
    Ok(())
}

fn predict(x: &[Vec<f64>], coef: &[f64], offset: &[f64]) -> Result<Vec<f64>, GlmError> {
    x.iter()
        .zip(offset)
        .map(|(r, o)| {
            let eta = dot(r, coef) + o;
            if !eta.is_finite() || eta > 700.0 {
                Err(GlmError::NotEstimable(
                    "the linear predictor overflowed".into(),
                ))
            } else {
                Ok(eta.exp())
            }
        })
        .collect()
}

fn deviance(y: &[f64], mu: &[f64]) -> f64 {
    2.0 * y
        .iter()
        .zip(mu)
        .map(|(a, m)| {
            if *a > 0.0 {
                a * (a / m).ln() - (a - m)
            } else {
                *m
            }
        })
        .sum::<f64>()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(u, v)| u * v).sum()
}

fn diag_sqrt(m: &[Vec<f64>]) -> Vec<f64> {
    (0..m.len()).map(|j| m[j][j].max(0.0).sqrt()).collect()
}

/// `Xᵀ diag(w) X`.
fn weighted_gram(x: &[Vec<f64>], w: &[f64]) -> Vec<Vec<f64>> {
    let p = x.first().map_or(0, Vec::len);
    let mut g = vec![vec![0.0; p]; p];
    for (r, wi) in x.iter().zip(w) {
        for a in 0..p {
            for b in 0..=a {
                g[a][b] += wi * r[a] * r[b];
            }
        }
    }
    for a in 1..p {
        let (upper, lower) = g.split_at_mut(a);
        for (b, row) in upper.iter_mut().enumerate() {
            row[a] = lower[0][b];
        }
    }
    g
}

/// Inverse of a symmetric positive definite matrix by Cholesky
/// decomposition.
///
/// # Errors
/// [`GlmError::Singular`] naming the first column (0-based) whose pivot is
/// below 1e-10 × its diagonal (numerically dependent on the earlier ones).
pub fn invert_spd(a: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, GlmError> {
    let p = a.len();
    let mut l = vec![vec![0.0; p]; p];
    for j in 0..p {
        let s: f64 = (0..j).map(|k| l[j][k] * l[j][k]).sum();
        let d = a[j][j] - s;
        if !d.is_finite() || d <= 1e-10 * a[j][j].abs() || d <= f64::MIN_POSITIVE {
            return Err(GlmError::Singular(format!("column {j}")));
        }
        l[j][j] = d.sqrt();
        for i in j + 1..p {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            l[i][j] = (a[i][j] - s) / l[j][j];
        }
    }
    // inverse of L (lower triangular), then A⁻¹ = L⁻ᵀ L⁻¹.
    let mut li = vec![vec![0.0; p]; p];
    for j in 0..p {
        li[j][j] = 1.0 / l[j][j];
        for i in j + 1..p {
            let s: f64 = (j..i).map(|k| l[i][k] * li[k][j]).sum();
            li[i][j] = -s / l[i][i];
        }
    }
    let mut inv = vec![vec![0.0; p]; p];
    for a_ in 0..p {
        for b in 0..p {
            inv[a_][b] = (a_.max(b)..p).map(|k| li[k][a_] * li[k][b]).sum();
        }
    }
    Ok(inv)
}

/// Newey & West (1994) default lag length ⌊4 (n/100)^(2/9)⌋, as statsmodels'
/// `S_hac_simple` when `nlags=None`.
pub fn newey_west_lags(n: usize) -> usize {
    (4.0 * (n as f64 / 100.0).powf(2.0 / 9.0)).floor() as usize
}

/// HAC (Newey–West, Bartlett weights 1 − l/(L+1)) covariance of the
/// coefficients of `fit`, statsmodels `cov_hac_simple(use_correction=False)`:
/// `B S B` with `B = (XᵀWX)⁻¹` and
/// `S = Σᵢ gᵢgᵢᵀ + Σ_{l=1..L} w_l Σ_{i≥l} (gᵢg_{i−l}ᵀ + g_{i−l}gᵢᵀ)`,
/// `gᵢ = xᵢ(yᵢ − μᵢ)`. Rows must be consecutive, equally spaced periods.
pub fn hac_cov(x: &[Vec<f64>], y: &[f64], fit: &PoissonFit, lags: usize) -> Vec<Vec<f64>> {
    let p = fit.p;
    let g: Vec<Vec<f64>> = x
        .iter()
        .zip(y.iter().zip(&fit.mu))
        .map(|(r, (a, m))| r.iter().map(|v| v * (a - m)).collect())
        .collect();
    let mut s = vec![vec![0.0; p]; p];
    for lag in 0..=lags.min(g.len()) {
        let w = 1.0 - lag as f64 / (lags as f64 + 1.0);
        for i in lag..g.len() {
            for a in 0..p {
                for b in 0..p {
                    let v = g[i][a] * g[i - lag][b];
                    if lag == 0 {
                        s[a][b] += v;
                    } else {
                        s[a][b] += w * v;
                        s[b][a] += w * v;
                    }
                }
            }
        }
    }
    let bread = &fit.cov_model;
    let bs: Vec<Vec<f64>> = (0..p)
        .map(|a| {
            (0..p)
                .map(|b| (0..p).map(|k| bread[a][k] * s[k][b]).sum())
                .collect()
        })
        .collect();
    (0..p)
        .map(|a| {
            (0..p)
                .map(|b| (0..p).map(|k| bs[a][k] * bread[k][b]).sum())
                .collect()
        })
        .collect()
}

/// Square roots of the diagonal of a covariance matrix (standard errors).
pub fn standard_errors(cov: &[Vec<f64>]) -> Vec<f64> {
    diag_sqrt(cov)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_spd_matrix() {
        let a = vec![
            vec![4.0, 2.0, 0.6],
            vec![2.0, 5.0, 1.0],
            vec![0.6, 1.0, 3.0],
        ];
        let inv = invert_spd(&a).unwrap();
        for (i, row) in a.iter().enumerate() {
            for j in 0..3 {
                let v: f64 = row.iter().zip(&inv).map(|(x, r)| x * r[j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(matches!(
            invert_spd(&[vec![1.0, 1.0], vec![1.0, 1.0]]),
            Err(GlmError::Singular(_))
        ));
    }

    #[test]
    fn intercept_only_fit_is_the_mean_rate() {
        let y = [3.0, 5.0, 4.0, 8.0];
        let x: Vec<Vec<f64>> = y.iter().map(|_| vec![1.0]).collect();
        let off = [0.0, 0.0, 0.0, 2f64.ln()];
        let f = fit_poisson(&x, &y, &off).unwrap();
        assert!((f.coef[0] - (20.0f64 / 5.0).ln()).abs() < 1e-10);
    }

    #[test]
    fn degenerate_inputs_are_typed_errors() {
        let x = vec![vec![1.0]; 3];
        assert!(matches!(
            fit_poisson(&x, &[0.0; 3], &[0.0; 3]),
            Err(GlmError::NotEstimable(_))
        ));
        assert!(matches!(
            fit_poisson(&x[..1], &[1.0], &[0.0]),
            Err(GlmError::TooFewObservations { .. })
        ));
        let x2 = vec![vec![1.0, 2.0]; 4];
        assert!(matches!(
            fit_poisson(&x2, &[1.0, 2.0, 3.0, 4.0], &[0.0; 4]),
            Err(GlmError::Singular(_))
        ));
        assert!(matches!(
            fit_poisson(&[], &[], &[]),
            Err(GlmError::Input(_))
        ));
        // separation: no events after a step
        let xs: Vec<Vec<f64>> = (0..8)
            .map(|i| vec![1.0, f64::from(u8::from(i >= 4))])
            .collect();
        let ys = [3.0, 4.0, 2.0, 5.0, 0.0, 0.0, 0.0, 0.0];
        assert!(fit_poisson(&xs, &ys, &[0.0; 8]).is_err());
    }
}
