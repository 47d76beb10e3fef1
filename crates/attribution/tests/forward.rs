//! Forward-in-time evaluation on the real ATT&CK releases (issue #18 items 2, 3, 7):
//! knowledge base from v12.1 / v14.1 / v16.1, test cases from what v18.1 added
//! (`../shared/corpora/attack/enterprise-attack-*.json`; skipped when absent). Asserts the
//! measured case counts and figures within tolerances.

use std::path::PathBuf;

use tracehunt_attribution::forward::{
    evaluate_forward, ForwardMetrics, ForwardOptions, Release, SplitReport,
};
use tracehunt_attribution::ScoringConfig;

fn releases() -> Option<Vec<Release>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/attack");
    let mut out = Vec::new();
    for v in ["12.1", "14.1", "16.1", "18.1"] {
        let path = dir.join(format!("enterprise-attack-{v}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: {} not available", path.display());
            return None;
        };
        out.push(Release::from_stix_json(&format!("v{v}"), &text).unwrap());
    }
    Some(out)
}

fn show(name: &str, m: &ForwardMetrics) {
    let i = |x: &tracehunt_attribution::forward::Interval| {
        format!("{:.3} [{:.3}, {:.3}]", x.value, x.low, x.high)
    };
    eprintln!(
        "{name:<22} n {:>4} top1 {} top3 {} top5 {} MRR {} Brier {} ECE {} mean p {:.3}",
        m.cases,
        i(&m.top1),
        i(&m.top3),
        i(&m.top5),
        i(&m.mrr),
        i(&m.brier),
        i(&m.ece),
        m.mean_top_probability
    );
}

#[test]
fn forward_splits() {
    let Some(rel) = releases() else { return };
    let r = evaluate_forward(&rel, &ForwardOptions::default()).unwrap();
    eprintln!(
        "fit {} cases {} shipped {:?}",
        r.fit_split, r.fit_cases, r.shipped
    );
    for s in &r.splits {
        eprintln!(
            "{} → {} [{}]: campaigns {} reports {} skips {:?} fitted {:?}",
            s.old, s.new, s.fit, s.campaigns, s.reports, s.skips, s.fitted
        );
        show("model", &s.model);
        show("baseline", &s.baseline);
        show("model sw", &s.model_software);
        show("baseline sw", &s.baseline_software);
        for b in &s.reliability {
            eprintln!(
                "  bin {:.1}-{:.1} n {:>4} p {:.3} hit {:.3} [{:.3}, {:.3}] {}",
                b.from,
                b.to,
                b.n,
                b.mean_probability,
                b.hit_rate,
                b.low,
                b.high,
                b.agrees()
            );
        }
        eprintln!("  state {:?}", s.state);
        eprintln!("  clear lead {:?}", s.clear_lead);
    }
    check(&r);
    ids_are_the_older_releases(&rel, &r);
}

#[track_caller]
fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 2e-3, "measured {a}, expected {b}");
}

/// Model beats baseline on every metric (higher top-k/MRR, lower Brier/ECE).
fn beats(m: &ForwardMetrics, b: &ForwardMetrics) -> bool {
    m.top1.value > b.top1.value
        && m.top3.value > b.top3.value
        && m.top5.value > b.top5.value
        && m.mrr.value > b.mrr.value
        && m.brier.value < b.brier.value
        && m.ece.value < b.ece.value
}

fn split<'a>(r: &'a [SplitReport], old: &str, temporal: bool) -> &'a SplitReport {
    r.iter()
        .find(|s| s.old == old && s.fit.starts_with("temporal") == temporal)
        .unwrap()
}

fn check(r: &tracehunt_attribution::forward::ForwardReport) {
    // Cases: ATT&CK adds few reports to groups it already knows (most new citations belong to
    // new groups, counted in `new_group`).
    assert_eq!(r.fit_cases, 22);
    assert_eq!(r.shipped_cases, 113);
    let s = &r.splits;
    assert_eq!(s.len(), 5);
    for (old, n, campaigns, reports) in [
        ("v12.1", 113, 16, 97),
        ("v14.1", 103, 12, 91),
        ("v16.1", 63, 5, 58),
    ] {
        let x = split(s, old, false);
        assert_eq!(
            (x.model.cases, x.campaigns, x.reports),
            (n, campaigns, reports),
            "{old}"
        );
    }
    let sk = &split(s, "v12.1", false).skips;
    assert_eq!(
        (sk.new_group, sk.not_one_group, sk.no_technique),
        (155, 17, 31)
    );

    // The shipped defaults are this evaluation's fit on all v12.1 → v18.1 cases.
    let cfg = ScoringConfig::default();
    for (a, b) in cfg
        .weights
        .to_array()
        .iter()
        .zip(r.shipped.weights.to_array())
    {
        assert!(
            (a - b).abs() < 5e-4,
            "shipped {:?} vs fitted {:?}",
            cfg.weights,
            r.shipped.weights
        );
    }
    assert!((cfg.temperature - r.shipped.temperature).abs() < 5e-3);

    // v14.1 → v18.1, cross-fitted (the target split).
    let x = split(s, "v14.1", false);
    close(x.model.top1.value, 0.175);
    close(x.model.top5.value, 0.350);
    close(x.model.mrr.value, 0.278);
    close(x.model.brier.value, 0.916);
    close(x.model.ece.value, 0.077);
    close(x.baseline.top1.value, 0.114);
    assert!(
        beats(&x.model, &x.baseline),
        "model beats the baseline on every metric"
    );
    assert!(x.model.ece.value <= 0.10);
    // Shown probabilities agree with the measured hit rate in every reliability bin.
    assert!(x.reliability.iter().all(|b| b.agrees()));
    // Cases with software evidence: better than the baseline, but the targets (top-1
    // ≥ 50 %, top-5 ≥ 80 %) are NOT reached (measured 41.7 %, 63.9 %; 36.1 % and 61.1 % with
    // the matched-software count as input 5). Only 22 of the 36 name a software v14.1 links
    // to the true group at all (6 a software only it uses); the model's top-1 is 13 of those
    // 22 and 2 of the other 14.
    assert_eq!(x.model_software.cases, 36);
    close(x.model_software.top1.value, 15.0 / 36.0);
    close(x.model_software.top5.value, 23.0 / 36.0);
    assert!(x.model_software.top1.value < 0.5 && x.model_software.top5.value < 0.8);
    assert!(x.model_software.top1.value > x.baseline_software.top1.value);
    let c = &x.software_ceiling;
    assert_eq!((c.cases, c.known_to_truth, c.unique_to_truth), (36, 22, 6));
    close(c.model_top1_known, 13.0);
    close(c.model_top1_unknown, 2.0);
    // State level beats always answering China (52.7 % vs 41.9 %).
    assert_eq!((x.state.cases, x.state.most_common.as_str()), (93, "CN"));
    close(x.state.top1.value, 49.0 / 93.0);
    close(x.state.base_rate, 39.0 / 93.0);
    assert_eq!((x.clear_lead.confident, x.clear_lead.correct), (45, 15));

    // v14.1 → v18.1, temporal (fit on the 22 v12.1 → v14.1 cases only): better ranking than
    // the baseline, but over-confident: ECE 0.135 > 0.10 and worse than the baseline's.
    let t = split(s, "v14.1", true);
    close(t.model.ece.value, 0.135);
    assert!(
        t.model.top1.value > t.baseline.top1.value && t.model.brier.value < t.baseline.brier.value
    );
    assert!(t.model.ece.value > 0.10 && t.model.ece.value > t.baseline.ece.value);

    // v12.1 → v18.1 cross-fitted: the shipped procedure's own estimate; the verdict quotes its
    // clear-lead precision (25 of 60).
    let a = split(s, "v12.1", false);
    close(a.model.top1.value, 0.257);
    close(a.model.ece.value, 0.069);
    assert!(beats(&a.model, &a.baseline));
    assert_eq!((a.clear_lead.confident, a.clear_lead.correct), (60, 25));
    assert!(
        tracehunt_attribution::CLEAR_LEAD_PRECISION.contains("42% ")
            && tracehunt_attribution::CLEAR_LEAD_PRECISION.contains("25 of 60")
    );
    close(a.state.top1.value, 58.0 / 106.0);
    assert!(a.state.top1.value > a.state.base_rate);

    // v16.1 → v18.1 cross-fitted: beats the baseline on ranking and Brier but not on ECE
    // (0.046 vs 0.042), and the state answer is below always answering China (30 % vs 50 %).
    let c = split(s, "v16.1", false);
    close(c.model.ece.value, 0.046);
    assert!(
        c.model.top1.value > c.baseline.top1.value && c.model.brier.value < c.baseline.brier.value
    );
    assert!(c.model.ece.value > c.baseline.ece.value);
    assert!(c.state.top1.value < c.state.base_rate);
}

/// Every case's evidence is in its older release's ids (techniques mapped through revoked-by
/// or to their parent, software the older release knows), and the true group had a profile
/// there; what could not be mapped is counted.
fn ids_are_the_older_releases(rel: &[Release], r: &tracehunt_attribution::forward::ForwardReport) {
    for sp in r.splits.iter().filter(|s| !s.fit.starts_with("temporal")) {
        let old = rel.iter().find(|x| x.label == sp.old).unwrap();
        for o in &sp.outcomes {
            let c = &o.case;
            assert!(old.kb.group(&c.group).is_some(), "{}: {}", sp.old, c.group);
            for t in &c.techniques {
                assert!(
                    old.kb.techniques().get(t).is_some_and(|x| !x.deprecated),
                    "{}: {t}",
                    sp.old
                );
            }
            for sw in &c.software {
                assert!(old.kb.software(sw).is_some(), "{}: {sw}", sp.old);
            }
        }
        // Techniques/software with no counterpart in the older release, dropped (measured).
        let unmapped: usize = sp.outcomes.iter().map(|o| o.case.unmapped).sum();
        let want = match sp.old.as_str() {
            "v12.1" => 84,
            "v14.1" => 66,
            _ => 52,
        };
        assert_eq!(unmapped, want, "{} → {}", sp.old, sp.new);
    }
}
