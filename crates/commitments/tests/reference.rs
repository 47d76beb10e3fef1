//! The four reference series of issue #15 against statsmodels' values
//! (tests/fixtures/reference.py computed them once; no Python here).

use std::path::PathBuf;

use chrono::NaiveDate;
use serde_json::Value;
use tracehunt_commitments::analysis::{
    analyse_date, change_points, compare_dates, verdict, DateAnalysis, Options,
};
use tracehunt_commitments::changepoint::{optimal_partition, pelt};
use tracehunt_commitments::series::{Period, Series};

const NAMES: [&str; 4] = [
    "series1_level_drop",
    "series2_early_decline",
    "series3_flat",
    "series4_overdispersed",
];
const TOL: f64 = 1e-4;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn expected() -> Value {
    serde_json::from_str(&fixture("expected.json")).unwrap()
}

fn series(name: &str) -> Series {
    Series::from_csv(&fixture(&format!("{name}.csv")), Period::Month).unwrap()
}

fn pledge() -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 9, 25).unwrap()
}

/// Tracks the largest relative difference seen; fails above `TOL`.
struct Check {
    what: String,
    max_rel: f64,
}

impl Check {
    fn new(what: &str) -> Self {
        Check {
            what: what.into(),
            max_rel: 0.0,
        }
    }
    fn num(&mut self, label: &str, ours: f64, theirs: &Value) {
        let t = theirs
            .as_f64()
            .unwrap_or_else(|| panic!("{label}: {theirs}"));
        let diff = (ours - t).abs();
        // p-values below 1e-12 are compared absolutely (both ~0).
        if t.abs() < 1e-12 {
            assert!(
                diff < 1e-12,
                "{} {label}: ours {ours} statsmodels {t}",
                self.what
            );
            return;
        }
        let rel = diff / t.abs();
        self.max_rel = self.max_rel.max(rel);
        assert!(
            rel < TOL,
            "{} {label}: ours {ours} statsmodels {t} (rel {rel:e})",
            self.what
        );
    }
    fn vec(&mut self, label: &str, ours: &[f64], theirs: &Value) {
        let t = theirs.as_array().unwrap();
        assert_eq!(ours.len(), t.len(), "{label}");
        for (i, (o, v)) in ours.iter().zip(t).enumerate() {
            self.num(&format!("{label}[{i}]"), *o, v);
        }
    }
}

fn check_its(c: &mut Check, a: &DateAnalysis, e: &Value) {
    let f = a.its.as_ref().expect("ITS fit");
    let used: Vec<usize> = a.fitted.iter().map(|(i, _)| *i).collect();
    let e_used: Vec<usize> = e["used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(used, e_used, "{} periods used", c.what);
    assert_eq!(f.hac_lags as u64, e["hac_lags"].as_u64().unwrap());
    let ests = [&f.intercept, &f.pre_trend, &f.level_change, &f.slope_change];
    c.vec("coef", &ests.map(|x| x.coef), &e["coef"]);
    c.vec("se_hac", &ests.map(|x| x.se_hac), &e["se_hac"]);
    c.vec("se_quasi", &ests.map(|x| x.se_quasi), &e["se_quasi"]);
    c.vec("p_hac", &ests.map(|x| x.p_value), &e["p_hac"]);
    c.num("dispersion", f.dispersion, &e["dispersion"]);
    c.num("loglik", f.loglik, &e["loglik"]);
    c.num("qaic", f.qaic, &e["qaic"]);
    let r = &a.rate;
    let er = &e["rate"];
    c.num("after_count", r.after_count, &er["after_count"]);
    c.num("before_count", r.before_count, &er["before_count"]);
    c.num("after_exposure", r.after_exposure, &er["after_exposure"]);
    c.num("before_exposure", r.before_exposure, &er["before_exposure"]);
    c.num("ratio", r.ratio.unwrap(), &er["ratio"]);
    c.num("ci_low", r.ci_low, &er["ci_low"]);
    c.num("ci_high", r.ci_high.unwrap(), &er["ci_high"]);
    c.num("rate p_value", r.p_value, &er["p_value"]);
}

#[test]
fn reference_series_match_statsmodels_within_1e_4() {
    let exp = expected();
    for name in NAMES {
        let s = series(name);
        let e = &exp["series"][name];
        let mut c = Check::new(name);
        let a = analyse_date(&s, pledge(), &Options::default()).unwrap();
        check_its(&mut c, &a, &e["its"]);
        let whole = Options {
            window: None,
            ..Options::default()
        };
        let a = analyse_date(&s, pledge(), &whole).unwrap();
        check_its(&mut c, &a, &e["its_whole"]);
        let cp = change_points(&s);
        let tb = cp.trend_break.as_ref().expect("trend break");
        let et = &e["trend_break"];
        assert_eq!(
            tb.index as u64,
            et["tau"].as_u64().unwrap(),
            "{name} trend break"
        );
        assert_eq!(tb.label, et["tau_label"].as_str().unwrap());
        c.vec("trend break coef", &tb.fit.coef, &et["coef"]);
        c.num("trend break loglik", tb.fit.loglik, &et["loglik"]);
        c.num(
            "trend break loglik_linear",
            tb.fit.loglik_linear,
            &et["loglik_linear"],
        );
        c.num(
            "trend break dispersion",
            tb.fit.dispersion,
            &et["dispersion"],
        );
        let ec = &e["change_points"];
        c.num("penalty", cp.penalty, &ec["penalty"]);
        let pts: Vec<u64> = cp.points.iter().map(|p| p.index as u64).collect();
        let e_pts: Vec<u64> = ec["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(pts, e_pts, "{name}: PELT vs the Python exact DP");
        println!(
            "{name}: max relative difference to statsmodels {:.2e}",
            c.max_rel
        );
    }
}

#[test]
fn competing_dates_match_statsmodels_on_the_common_sample() {
    let exp = expected();
    let e = &exp["series"]["series2_early_decline"]["competing"];
    let s = series("series2_early_decline");
    let dates = vec![
        (
            "indictment".to_string(),
            NaiveDate::from_ymd_opt(2014, 5, 19).unwrap(),
        ),
        ("pledge".to_string(), pledge()),
    ];
    let comp = compare_dates(&s, &dates, &Options::default()).unwrap();
    let mut c = Check::new("competing");
    assert_eq!(comp[0].n_used as u64, e["n_used"].as_u64().unwrap());
    c.num("common phi", comp[0].common_dispersion, &e["common_phi"]);
    for (k, fit) in comp.iter().enumerate() {
        c.num("loglik", fit.loglik.unwrap(), &e["fits"][k]["loglik"]);
        c.num("qaic", fit.qaic.unwrap(), &e["fits"][k]["qaic"]);
    }
    println!("competing: max relative difference {:.2e}", c.max_rel);
}

fn month_index(s: &Series, y: i32, m: u32) -> i64 {
    s.index_of(NaiveDate::from_ymd_opt(y, m, 1).unwrap()).0 as i64
}

fn full_verdict(
    name: &str,
) -> (
    DateAnalysis,
    tracehunt_commitments::changepoint::ChangePoints,
    String,
) {
    let s = series(name);
    let a = analyse_date(&s, pledge(), &Options::default()).unwrap();
    let cp = change_points(&s);
    let dates = vec![
        (
            "indictment".to_string(),
            NaiveDate::from_ymd_opt(2014, 5, 19).unwrap(),
        ),
        ("pledge".to_string(), pledge()),
    ];
    let comp = compare_dates(&s, &dates, &Options::default()).unwrap();
    let v = verdict("US-China pledge", pledge(), &a, &cp, &comp);
    println!("{name}: {v}");
    assert!(!v.contains("NaN") && !v.contains("inf"), "{v}");
    (a, cp, v)
}

#[test]
fn verdict_series1_reports_a_significant_level_drop_at_the_date() {
    let (a, cp, v) = full_verdict("series1_level_drop");
    let f = a.its.unwrap();
    assert!(f.level_change.significant(0.95) && f.level_change.coef < 0.0);
    assert!(v.contains("significant level drop at 2015-09-25"), "{v}");
    assert_eq!(
        cp.points
            .iter()
            .map(|p| p.label.as_str())
            .collect::<Vec<_>>(),
        ["2015-10"]
    );
}

#[test]
fn verdict_series2_names_the_earlier_decline_and_no_level_change() {
    let (a, cp, v) = full_verdict("series2_early_decline");
    let s = series("series2_early_decline");
    let tb = cp.trend_break.unwrap();
    assert!(tb.fit.supported && tb.fit.log_change_at_end < 0.0);
    let off = tb.index as i64 - month_index(&s, 2014, 6);
    assert!(
        off.abs() <= 3,
        "trend break at {} ({off} months from 2014-06)",
        tb.label
    );
    let f = a.its.unwrap();
    assert!(!f.level_change.significant(0.95));
    assert!(f.pre_trend.significant(0.95) && f.pre_trend.coef < 0.0);
    assert!(
        v.contains(&format!("the decline began about {}", tb.label)),
        "{v}"
    );
    assert!(v.contains("months before the commitment"), "{v}");
    assert!(
        v.contains("no significant level change at 2015-09-25"),
        "{v}"
    );
    assert!(v.contains("already falling"), "{v}");
    assert!(v.contains("reflects the trend"), "{v}");
}

#[test]
fn verdict_series3_flat_has_no_change_and_no_change_points() {
    let (a, cp, v) = full_verdict("series3_flat");
    let f = a.its.unwrap();
    for e in [&f.pre_trend, &f.level_change, &f.slope_change] {
        assert!(!e.significant(0.95));
    }
    assert!(cp.points.is_empty());
    assert!(!cp.trend_break.unwrap().fit.supported);
    assert!(v.contains("no significant level change"), "{v}");
    assert!(v.contains("no change points from the data alone"), "{v}");
    assert!(v.contains("no trend break stands out"), "{v}");
}

#[test]
fn verdict_series4_overdispersed_with_zeros_still_fits() {
    let s = series("series4_overdispersed");
    assert!(s.counts.iter().filter(|c| **c == 0.0).count() > 5);
    assert!(s.exposure.contains(&0.0), "the CSV gap is a missing month");
    let (a, _, v) = full_verdict("series4_overdispersed");
    let f = a.its.unwrap();
    assert!(f.dispersion > 1.0);
    assert!(f.level_change.se_hac > 0.0 && f.level_change.se_quasi > f.level_change.se_hac * 0.0);
    assert!(v.contains("overdispersed counts"), "{v}");
    // HAC (24 periods, 2 lags) and quasi-Poisson disagree here: said so.
    assert!(
        v.contains("not significant with quasi-Poisson errors"),
        "{v}"
    );
    assert!(a.assumptions.iter().any(|x| x.contains("HAC")));
}

#[test]
fn pelt_equals_exact_dp_on_the_reference_series_and_penalties() {
    for name in NAMES {
        let s = series(name);
        let idx: Vec<usize> = (0..s.len()).filter(|&i| s.exposure[i] > 0.0).collect();
        let y: Vec<f64> = idx.iter().map(|&i| s.counts[i]).collect();
        let e: Vec<f64> = idx.iter().map(|&i| s.exposure[i]).collect();
        for pen in [0.5, 2.0, 5.0, 8.19, 20.0] {
            for m in [1, 2, 3, 5] {
                assert_eq!(
                    pelt(&y, &e, pen, m),
                    optimal_partition(&y, &e, pen, m),
                    "{name} pen {pen} min {m}"
                );
            }
        }
    }
}
