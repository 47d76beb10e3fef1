//! The verdict in words ([`verdict`]): when the change began according to the data alone,
//! the level change at the date, the pre-trend, the slope change, the naive rate ratio, the
//! change points and the best of the competing dates — built from the figures of
//! [`crate::analysis`], never printing a NaN.

use chrono::NaiveDate;
use statrs::function::erf::erfc;

use crate::analysis::{z_value, Competing, DateAnalysis, Estimate};
use crate::changepoint::{ChangePoints, SUP_LR_CRITICAL};

fn pct(coef: f64) -> f64 {
    (coef.exp() - 1.0) * 100.0
}

fn fmt_ci(lo: f64, hi: f64) -> String {
    format!("{lo:.2}–{hi:.2}")
}

/// The trend-break clause: when the change began relative to `t0`.
fn trend_clause(cp: &ChangePoints, t0: usize, unit: &str) -> String {
    let Some(tb) = &cp.trend_break else {
        return match &cp.note {
            Some(n) => format!("no trend break from the data alone ({n})"),
            None => "the data alone are too short for a trend-break search".into(),
        };
    };
    if !tb.fit.supported {
        return format!(
            "no trend break stands out from the data alone (best candidate {}, sup-LR {:.1} ≤ {SUP_LR_CRITICAL})",
            tb.label, tb.fit.lr_stat
        );
    }
    let what = if tb.fit.log_change_at_end < 0.0 {
        "decline"
    } else {
        "rise"
    };
    let k = t0 as i64 - tb.index as i64;
    let plural = |k: i64| if k.abs() == 1 { "" } else { "s" };
    if k >= 3 {
        format!(
            "the {what} began about {}, {k} {unit}{} before the commitment",
            tb.label,
            plural(k)
        )
    } else if k <= -3 {
        format!(
            "the {what} began about {}, {} {unit}{} after the commitment",
            tb.label,
            -k,
            plural(k)
        )
    } else {
        format!(
            "the data alone place the {what} at about {}, at the commitment",
            tb.label
        )
    }
}

/// A note when the quasi-Poisson errors disagree with the HAC errors about
/// significance (HAC errors are anti-conservative with few periods).
fn quasi_note(e: &Estimate, level: f64, z: f64) -> String {
    let p_quasi = erfc((e.coef / e.se_quasi).abs() / std::f64::consts::SQRT_2);
    if !p_quasi.is_finite() || (p_quasi < 1.0 - level) == e.significant(level) {
        return String::new();
    }
    let (lo, hi) = (
        (e.coef - z * e.se_quasi).exp(),
        (e.coef + z * e.se_quasi).exp(),
    );
    let word = if e.significant(level) { "not " } else { "" };
    format!(
        ", {word}significant with quasi-Poisson errors (ratio CI {})",
        fmt_ci(lo, hi)
    )
}

/// The ITS clauses: level change, pre-trend, slope change.
fn its_clauses(a: &DateAnalysis, unit: &str, out: &mut Vec<String>) {
    let pc = (a.level * 100.0).round();
    let Some(f) = &a.its else {
        out.push(format!(
            "the segmented regression at {} is not estimable ({})",
            a.date,
            a.its_note.as_deref().unwrap_or("unknown reason")
        ));
        return;
    };
    let l = &f.level_change;
    let ci = fmt_ci(l.ci_low, l.ci_high);
    let note = quasi_note(l, a.level, z_value(a.level));
    out.push(if l.significant(a.level) {
        let dir = if l.coef < 0.0 { "drop" } else { "rise" };
        format!(
            "significant level {dir} at {} (rate ratio {:.2}, {pc} % CI {ci}{note})",
            a.date, l.ratio
        )
    } else {
        format!(
            "no significant level change at {} (rate ratio {:.2}, {pc} % CI {ci}{note})",
            a.date, l.ratio
        )
    });
    let p = &f.pre_trend;
    let range = format!(
        "{pc} % CI {:+.1} to {:+.1} %",
        pct(p.ci_low.ln()),
        pct(p.ci_high.ln())
    );
    out.push(if p.significant(a.level) {
        let dir = if p.coef < 0.0 { "falling" } else { "rising" };
        format!(
            "activity was already {dir} before the date (pre-trend {:+.1} % per {unit}, {range})",
            pct(p.coef)
        )
    } else {
        format!(
            "no significant pre-trend ({:+.1} % per {unit}, {range})",
            pct(p.coef)
        )
    });
    let s = &f.slope_change;
    if s.significant(a.level) {
        out.push(format!(
            "the trend changed after the date (slope change {:+.1} % per {unit}, {pc} % CI {:+.1} to {:+.1} %)",
            pct(s.coef),
            pct(s.ci_low.ln()),
            pct(s.ci_high.ln())
        ));
    }
    if f.dispersion > 1.5 {
        out.push(format!(
            "overdispersed counts (dispersion {:.2})",
            f.dispersion
        ));
    }
}

/// A verdict in words for `name`'s commitment at `date`: when the change
/// began according to the data alone (trend break), the level change at
/// the date (HAC CI; flagged when the quasi-Poisson errors disagree about
/// its significance), the pre-trend, a significant slope change, the naive
/// rate ratio (flagged when it is significant while the level change is
/// not: the earlier trend, not the commitment), the PELT change points and
/// the best of the competing dates. Contains no NaN: undefined values are
/// worded.
pub fn verdict(
    name: &str,
    date: NaiveDate,
    a: &DateAnalysis,
    cp: &ChangePoints,
    competing: &[Competing],
) -> String {
    let unit = a.period.unit();
    let mut parts = vec![trend_clause(cp, a.t0, unit)];
    its_clauses(a, unit, &mut parts);
    let r = &a.rate;
    let pc = (a.level * 100.0).round();
    let naive = match (r.ratio, r.ci_high) {
        (Some(x), Some(h)) => format!(
            "naive before/after rate ratio {x:.2} ({pc} % CI {}, exact)",
            fmt_ci(r.ci_low, h)
        ),
        _ => format!(
            "naive rates {:.2} before, {:.2} after per {unit}",
            r.before_rate, r.after_rate
        ),
    };
    let naive_sig = r.p_value < 1.0 - a.level;
    let level_sig = a
        .its
        .as_ref()
        .is_some_and(|f| f.level_change.significant(a.level));
    let slope_sig = a
        .its
        .as_ref()
        .is_some_and(|f| f.slope_change.significant(a.level));
    parts.push(
        if naive_sig && !level_sig && !slope_sig && a.its.is_some() {
            format!("{naive} — reflects the trend, not a change at the date")
        } else {
            naive
        },
    );
    parts.push(if cp.points.is_empty() {
        "no change points from the data alone".into()
    } else {
        let pts: Vec<String> = cp
            .points
            .iter()
            .map(|p| format!("{} ({:.1} → {:.1})", p.label, p.rate_before, p.rate_after))
            .collect();
        format!("change points from the data alone: {}", pts.join(", "))
    });
    let ranked: Vec<&Competing> = competing
        .iter()
        .filter(|c| c.delta_qaic.is_some())
        .collect();
    if ranked.len() >= 2 {
        let best = ranked.iter().min_by(|x, y| {
            x.delta_qaic
                .partial_cmp(&y.delta_qaic)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        if let Some(b) = best {
            let others: Vec<&&Competing> = ranked.iter().filter(|c| c.name != b.name).collect();
            let close: Vec<String> = others
                .iter()
                .filter(|c| c.delta_qaic.unwrap_or(0.0) < 2.0)
                .map(|c| format!("{} +{:.1}", c.name, c.delta_qaic.unwrap_or(0.0)))
                .collect();
            let far: Vec<String> = others
                .iter()
                .filter(|c| c.delta_qaic.unwrap_or(0.0) >= 2.0)
                .map(|c| format!("{} +{:.1}", c.name, c.delta_qaic.unwrap_or(0.0)))
                .collect();
            let mut clause = if far.is_empty() {
                format!(
                    "competing dates not distinguishable (ΔQAIC < 2); nominally best: {} {} (ΔQAIC {})",
                    b.name,
                    b.date,
                    close.join(", ")
                )
            } else if close.is_empty() {
                format!(
                    "best-fitting date: {} {} (ΔQAIC {})",
                    b.name,
                    b.date,
                    far.join(", ")
                )
            } else {
                format!(
                    "best-fitting date: {} {}, not distinguishable from {} (ΔQAIC < 2); worse: {}",
                    b.name,
                    b.date,
                    close.join(", "),
                    far.join(", ")
                )
            };
            clause.push_str(&format!(" (common dispersion {:.2})", b.common_dispersion));
            parts.push(clause);
        }
    }
    format!("{name} ({date}): {}", parts.join("; "))
}
