//! The conditional-logit weight fit ([`fit_weights`], Newton's method with an L2 penalty on
//! standardised inputs).

use super::softmax;
use crate::{ModelWeights, N_INPUTS};

/// One training example for [`fit_weights`]: the inputs of every candidate group and the
/// index of the true one.
#[derive(Debug, Clone, PartialEq)]
pub struct FitCase {
    /// Inputs `x(g)` of every group.
    pub inputs: Vec<[f64; N_INPUTS]>,
    /// Index of the true group in `inputs`.
    pub truth: usize,
}

/// Maximum-likelihood weights of the conditional logit `P(g) = softmax_g(w · x(g))` over
/// `cases`, with an L2 penalty `l2/2 · |w|²` on standardised inputs (Newton's method).
/// Inputs switched off in `use_inputs` get weight 0. Deterministic.
pub fn fit_weights(cases: &[&FitCase], l2: f64, use_inputs: [bool; N_INPUTS]) -> ModelWeights {
    let k = N_INPUTS;
    // Standardise over all rows.
    let mut mean = [0.0; N_INPUTS];
    let mut sd = [0.0; N_INPUTS];
    let rows: usize = cases.iter().map(|c| c.inputs.len()).sum();
    if rows == 0 {
        return ModelWeights::default();
    }
    for c in cases {
        for x in &c.inputs {
            for j in 0..k {
                mean[j] += x[j];
            }
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    for c in cases {
        for x in &c.inputs {
            for j in 0..k {
                sd[j] += (x[j] - mean[j]).powi(2);
            }
        }
    }
    let active: Vec<usize> = (0..k).filter(|&j| use_inputs[j] && sd[j] > 1e-12).collect();
    for v in &mut sd {
        *v = (*v / rows as f64).sqrt().max(1e-12);
    }
    let z = |x: &[f64; N_INPUTS]| -> Vec<f64> {
        active.iter().map(|&j| (x[j] - mean[j]) / sd[j]).collect()
    };
    let data: Vec<(Vec<Vec<f64>>, usize)> = cases
        .iter()
        .map(|c| (c.inputs.iter().map(z).collect(), c.truth))
        .collect();
    let d = active.len();
    let objective = |w: &[f64]| -> f64 {
        let mut ll = -0.5 * l2 * w.iter().map(|x| x * x).sum::<f64>();
        for (xs, truth) in &data {
            let scores: Vec<f64> = xs
                .iter()
                .map(|x| x.iter().zip(w).map(|(a, b)| a * b).sum())
                .collect();
            ll += softmax(&scores, 1.0)[*truth].max(1e-300).ln();
        }
        ll
    };
    let mut w = vec![0.0; d];
    let mut current = objective(&w);
    for _ in 0..100 {
        let mut grad: Vec<f64> = w.iter().map(|x| -l2 * x).collect();
        let mut hess = vec![vec![0.0; d]; d];
        for (j, row) in hess.iter_mut().enumerate() {
            row[j] = -l2;
        }
        for (xs, truth) in &data {
            let scores: Vec<f64> = xs
                .iter()
                .map(|x| x.iter().zip(&w).map(|(a, b)| a * b).sum())
                .collect();
            let p = softmax(&scores, 1.0);
            let mut ex = vec![0.0; d];
            for (x, pi) in xs.iter().zip(&p) {
                for j in 0..d {
                    ex[j] += pi * x[j];
                }
            }
            for j in 0..d {
                grad[j] += xs[*truth][j] - ex[j];
            }
            for (x, pi) in xs.iter().zip(&p) {
                for a in 0..d {
                    for b in 0..d {
                        hess[a][b] -= pi * (x[a] - ex[a]) * (x[b] - ex[b]);
                    }
                }
            }
        }
        // Damped Newton step: w -= t · H⁻¹ g (H negative definite), halving t until the
        // penalised log-likelihood improves.
        let Some(step) = solve(hess, grad.clone()) else {
            break;
        };
        let mut t = 1.0;
        let mut improved = false;
        for _ in 0..40 {
            let cand: Vec<f64> = w.iter().zip(&step).map(|(a, b)| a - t * b).collect();
            let value = objective(&cand);
            if value > current {
                improved = value - current > 1e-10;
                w = cand;
                current = value;
                break;
            }
            t /= 2.0;
        }
        if !improved {
            break;
        }
    }
    let mut out = [0.0; N_INPUTS];
    for (i, &j) in active.iter().enumerate() {
        out[j] = w[i] / sd[j];
    }
    ModelWeights::from_array(out)
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot_row = a[col].clone();
        for r in col + 1..n {
            let f = a[r][col] / pivot_row[col];
            for (x, p) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

pub(crate) fn dot(x: &[f64; N_INPUTS], w: &ModelWeights) -> f64 {
    x.iter().zip(w.to_array()).map(|(a, b)| a * b).sum()
}
