//! Degenerate inputs: typed errors or "not estimable", never a panic or a
//! NaN in a verdict.

use chrono::NaiveDate;
use tracehunt_commitments::analysis::{
    analyse_date, change_points, compare_dates, verdict, AnalysisError, Options,
};
use tracehunt_commitments::series::{Period, Series, SeriesError};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn monthly(counts: Vec<f64>) -> Series {
    let n = counts.len();
    Series::new(Period::Month, d(2013, 1, 1), counts, vec![1.0; n]).unwrap()
}

/// Runs everything on `s` at 2015-09-25 and returns the verdict, checking
/// it has no NaN / inf and that the JSON of the results serialises.
fn verdict_of(s: &Series) -> Option<String> {
    let cp = change_points(s);
    serde_json::to_string(&cp).unwrap();
    let a = analyse_date(s, d(2015, 9, 25), &Options::default()).ok()?;
    serde_json::to_string(&a).unwrap();
    let comp = compare_dates(
        s,
        &[("a".into(), d(2014, 5, 19)), ("b".into(), d(2015, 9, 25))],
        &Options::default(),
    )
    .unwrap_or_default();
    let v = verdict("X", d(2015, 9, 25), &a, &cp, &comp);
    assert!(!v.contains("NaN") && !v.contains("inf"), "{v}");
    Some(v)
}

#[test]
fn empty_series_is_a_typed_error_and_no_change_points() {
    let s = Series {
        period: Period::Month,
        starts: vec![],
        counts: vec![],
        exposure: vec![],
    };
    assert_eq!(
        analyse_date(&s, d(2015, 9, 25), &Options::default()),
        Err(AnalysisError::Series(SeriesError::Empty))
    );
    let cp = change_points(&s);
    assert!(cp.points.is_empty() && cp.trend_break.is_none() && cp.note.is_some());
}

#[test]
fn inconsistent_hand_built_series_is_rejected_not_indexed() {
    let s = Series {
        period: Period::Month,
        starts: vec![d(2015, 1, 1)],
        counts: vec![1.0, 2.0],
        exposure: vec![1.0],
    };
    assert!(matches!(
        analyse_date(&s, d(2015, 9, 25), &Options::default()),
        Err(AnalysisError::Series(_))
    ));
    assert!(change_points(&s).points.is_empty());
}

#[test]
fn all_zero_counts_give_a_not_estimable_its_and_a_worded_verdict() {
    let s = monthly(vec![0.0; 60]);
    let a = analyse_date(&s, d(2015, 9, 25), &Options::default()).unwrap();
    assert!(a.its.is_none());
    assert!(a
        .its_note
        .as_deref()
        .unwrap()
        .contains("all counts are zero"));
    assert_eq!(a.rate.ratio, None);
    assert_eq!(a.rate.p_value, 1.0);
    let v = verdict_of(&s).unwrap();
    assert!(v.contains("not estimable"), "{v}");
    assert!(change_points(&s).points.is_empty());
}

#[test]
fn constant_counts_fit_exactly_with_zero_errors_and_no_significance() {
    let s = monthly(vec![5.0; 60]);
    let a = analyse_date(&s, d(2015, 9, 25), &Options::default()).unwrap();
    let f = a.its.as_ref().unwrap();
    assert!(f.dispersion.abs() < 1e-12);
    assert!(!f.level_change.significant(0.95), "{:?}", f.level_change);
    let v = verdict_of(&s).unwrap();
    assert!(v.contains("no significant level change"), "{v}");
    assert!(change_points(&s).points.is_empty());
}

#[test]
fn fewer_periods_than_parameters_is_not_estimable() {
    let s = Series::new(
        Period::Month,
        d(2015, 8, 1),
        vec![3.0, 4.0, 2.0],
        vec![1.0; 3],
    )
    .unwrap();
    let a = analyse_date(&s, d(2015, 9, 1), &Options::default()).unwrap();
    assert!(a.its.is_none() && a.its_note.as_deref().unwrap().contains("parameters"));
    assert!(a.rate.ratio.is_some());
    verdict_of(&s);
    let small = Options {
        window: Some(1),
        ..Options::default()
    };
    let a = analyse_date(&monthly(vec![4.0; 60]), d(2015, 9, 25), &small).unwrap();
    assert!(a.its.is_none());
}

#[test]
fn date_outside_the_series_is_one_sided() {
    let s = monthly(vec![4.0; 24]);
    assert_eq!(
        analyse_date(&s, d(2010, 1, 1), &Options::default()),
        Err(AnalysisError::OneSided(
            "the series starts after the date (first period 2013-01)".into()
        ))
    );
    assert_eq!(
        analyse_date(&s, d(2020, 1, 1), &Options::default()),
        Err(AnalysisError::OneSided(
            "the series ends before the date (last period 2014-12)".into()
        ))
    );
    let bad = Options {
        level: 1.5,
        ..Options::default()
    };
    assert_eq!(
        analyse_date(&s, d(2014, 1, 1), &bad),
        Err(AnalysisError::Level(1.5))
    );
}

#[test]
fn activity_stopping_after_the_date_keeps_the_exact_ratio() {
    let mut c = vec![6.0; 60];
    c.iter_mut().skip(33).for_each(|v| *v = 0.0);
    let s = monthly(c);
    let a = analyse_date(&s, d(2015, 9, 25), &Options::default()).unwrap();
    assert!(a.its.is_none(), "separation: no events after the date");
    assert_eq!(a.rate.ratio, Some(0.0));
    assert!(a.rate.ci_high.unwrap() < 0.1 && a.rate.p_value < 1e-10);
    verdict_of(&s).unwrap();
}

#[test]
fn no_events_before_gives_an_infinite_ratio_worded_not_printed() {
    let mut c = vec![0.0; 60];
    c.iter_mut().skip(33).for_each(|v| *v = 4.0);
    let s = monthly(c);
    let a = analyse_date(&s, d(2015, 9, 25), &Options::default()).unwrap();
    assert_eq!((a.rate.ratio, a.rate.ci_high), (None, None));
    let v = verdict_of(&s).unwrap();
    assert!(v.contains("naive rates"), "{v}");
}

#[test]
fn transition_anticipation_and_missing_periods_are_dropped_and_listed() {
    let mut s = monthly((0..60).map(|i| f64::from(10 + i % 4)).collect());
    s.exposure[30] = 0.0;
    let opts = Options {
        anticipation: 2,
        ..Options::default()
    };
    let a = analyse_date(&s, d(2015, 9, 25), &opts).unwrap();
    let reasons: Vec<(usize, &str)> = a
        .dropped
        .iter()
        .map(|p| (p.index, p.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (30, "anticipation"),
            (31, "anticipation"),
            (32, "transition")
        ]
    );
    assert_eq!((a.window_start, a.window_end, a.n_used), (18, 45, 24));
    assert!(a
        .assumptions
        .iter()
        .any(|x| x.contains("2015-09 contains 2015-09-25")));
    let s2 = {
        let mut s2 = s.clone();
        s2.exposure[20] = 0.0;
        s2
    };
    let a = analyse_date(&s2, d(2015, 9, 25), &Options::default()).unwrap();
    let missing: Vec<usize> = a
        .dropped
        .iter()
        .filter(|p| p.reason == "no coverage")
        .map(|p| p.index)
        .collect();
    assert_eq!(missing, [20, 30]);
    assert_eq!(a.n_used, 22);
    assert_eq!(a.counterfactual.len(), 12);
}

#[test]
fn a_date_on_a_period_start_has_no_transition() {
    let s = monthly((0..60).map(|i| f64::from(10 + i % 3)).collect());
    let a = analyse_date(&s, d(2015, 10, 1), &Options::default()).unwrap();
    assert!(a.dropped.is_empty());
    assert_eq!((a.t0, a.n_before, a.n_after), (33, 12, 12));
}

#[test]
fn weekly_series_use_iso_weeks_and_a_52_week_window() {
    let n = 200;
    let counts: Vec<f64> = (0..n)
        .map(|i| {
            if i < 120 {
                9.0 + f64::from(i % 3)
            } else {
                3.0 + f64::from(i % 2)
            }
        })
        .collect();
    let s = Series::new(Period::Week, d(2013, 1, 7), counts, vec![1.0; n as usize]).unwrap();
    let date = s.starts[120] + chrono::Days::new(2);
    let a = analyse_date(&s, date, &Options::for_period(Period::Week)).unwrap();
    assert_eq!(a.n_after, 52);
    assert_eq!(a.dropped.len(), 1);
    let f = a.its.as_ref().unwrap();
    assert!(f.level_change.coef < 0.0);
    let cp = change_points(&s);
    assert!(
        cp.points.iter().any(|p| p.index.abs_diff(121) <= 2),
        "{:?}",
        cp.points
    );
    assert!(cp.points[0].label.contains("-W"));
}

#[test]
fn pseudo_random_series_never_panic_nor_print_nan() {
    let mut state: u64 = 0x2015_0925;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for _ in 0..60 {
        let n = 1 + (next() * 70.0) as usize;
        let scale = [0.0, 0.3, 2.0, 50.0][(next() * 4.0) as usize % 4];
        let counts: Vec<f64> = (0..n).map(|_| (next() * scale * 2.0).floor()).collect();
        let exposure: Vec<f64> = (0..n)
            .map(|_| if next() < 0.1 { 0.0 } else { 1.0 })
            .collect();
        let s = Series::new(Period::Month, d(2014, 1, 1), counts, exposure).unwrap();
        let _ = verdict_of(&s);
    }
}

#[test]
fn huge_anticipation_saturates_instead_of_wrapping() {
    // Breaker finding: 1 + usize::MAX wrapped to 0 and the transition month was used.
    let opts = Options {
        anticipation: usize::MAX,
        ..Options::default()
    };
    let s = monthly((0..60).map(|i| f64::from(10 + i % 3)).collect());
    assert!(analyse_date(&s, d(2015, 9, 25), &opts).is_err());
    let dates = [
        ("a".to_string(), d(2014, 5, 19)),
        ("b".to_string(), d(2015, 9, 25)),
    ];
    assert!(compare_dates(&s, &dates, &opts).is_err());
}

#[test]
fn counts_beyond_2_pow_40_and_subnormal_exposures_are_refused_with_their_line() {
    // Breaker findings: a count above 2^53 looped the exact test forever; an exposure of
    // 5e-324 gave infinite rates and NaN in the verdict.
    let big = "period,count\n2015-01,3\n2015-02,9007199254740993\n";
    let e = Series::from_csv(big, Period::Month)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("2^40"), "{e}");
    let tiny = "period,count,exposure\n2015-01,3,1\n2015-02,3,5e-324\n";
    let e = Series::from_csv(tiny, Period::Month)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("exposure"), "{e}");
    let far = "period,count\n0001-01,3\n9999-01,3\n";
    let e = Series::from_csv(far, Period::Month)
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("at most 10000"), "{e}");
}

#[test]
fn long_series_trend_break_is_searched_on_a_grid_in_bounded_time() {
    // Breaker finding: 5,000 periods took 6.4 s (one fit per candidate).
    let counts: Vec<f64> = (0..6000)
        .map(|i| if i < 4000 { 20.0 } else { 5.0 })
        .collect();
    let s = Series::new(Period::Month, d(1500, 1, 1), counts, vec![1.0; 6000]).unwrap();
    let t = std::time::Instant::now();
    let cp = change_points(&s);
    let secs = t.elapsed().as_secs_f64();
    let tb = cp.trend_break.expect("a trend break");
    assert!((3990..=4010).contains(&tb.index), "{}", tb.index);
    assert_eq!(
        cp.points.iter().map(|p| p.index).collect::<Vec<_>>(),
        [4000]
    );
    eprintln!("6000 periods: {secs:.2} s");
}
