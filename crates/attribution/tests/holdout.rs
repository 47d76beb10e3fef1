//! ATT&CK v18.1 campaign hold-out (`../shared/corpora/attack/enterprise-attack-18.1.json`;
//! skipped when the corpus is absent). Asserts the figures measured with the current model
//! (weights and temperature fitted leave-one-campaign-out, the campaign's dates as the
//! observation window), the oracle ceiling, and states plainly where the model does **not**
//! beat the naive-overlap baseline or reach the target.

use std::path::PathBuf;

use tracehunt_attack::ActorKb;
use tracehunt_attribution::eval::{evaluate, hold_out, EvalOptions, HoldOut, Metrics};
use tracehunt_attribution::{Provenance, ScoringConfig};

fn bundle() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/attack/enterprise-attack-18.1.json");
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(_) => {
            eprintln!("skipping: {} not available", path.display());
            None
        }
    }
}

fn show(name: &str, m: &Metrics) {
    eprintln!(
        "{name:<24} top1 {:.4} top3 {:.4} top5 {:.4} MRR {:.4} Brier(top) {:.4} Brier {:.4} logloss {:.4}",
        m.top1, m.top3, m.top5, m.mrr, m.brier_top, m.brier, m.log_loss
    );
}

#[track_caller]
fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 2e-3, "measured {a}, expected {b}");
}

#[test]
fn campaign_hold_out_metrics() {
    let Some(text) = bundle() else { return };
    let kb = ActorKb::from_stix_json(&text).unwrap();
    let prov = Provenance::from_stix_json(&text).unwrap();
    // The embedded leak table is the one this bundle gives.
    assert_eq!(prov, Provenance::builtin());
    assert!(!prov.leaks("C0024", "G0016").unwrap().software.is_empty());

    let leak = evaluate(&kb, &prov, &EvalOptions::default());
    let naive = evaluate(
        &kb,
        &prov,
        &EvalOptions {
            mode: HoldOut::Naive,
            ..EvalOptions::default()
        },
    );
    for (name, r) in [("leakage-aware", &leak), ("naive", &naive)] {
        show(&format!("{name} model (LOO)"), &r.model);
        show(&format!("{name} baseline"), &r.baseline);
        assert_eq!(r.model.cases, 22);
    }
    // The shipped weights are no longer this hold-out's (issue #18): they are fitted forward
    // in time (`tests/forward.rs` checks them); here they are only scored, as `model_shipped`.
    let shipped = ScoringConfig::default().weights.to_array();
    let fitted = leak.weights_all.to_array();
    assert!(shipped
        .iter()
        .zip(fitted)
        .any(|(a, b)| (a - b).abs() > 0.05));
    // The input set chosen by leave-one-out log-loss: likelihood, matched, size, time.
    assert_eq!(leak.inputs_all, [true, true, true, false, true, false]);
    // Nested selection picks the same set for all 22 campaigns (with the matched-software
    // count as input 5 it was 21: C0024 added software; the software log-likelihood input
    // is chosen for none).
    let same = leak
        .cases
        .iter()
        .filter(|c| c.inputs == leak.inputs_all)
        .count();
    assert_eq!(same, 22);

    // The campaign's own reports never date the group: C0024's citations leave APT29.
    let cites = &prov.leaks("C0024", "G0016").unwrap().citations;
    assert!(!cites.is_empty());
    for mode in [HoldOut::Naive, HoldOut::LeakageAware] {
        let held = hold_out(&kb, "C0024", mode, &prov);
        let g = held.group("G0016").unwrap();
        assert!(cites.iter().all(|c| !g.citations.contains_key(c)));
        assert!(!g.citations.is_empty(), "other reports still date APT29");
    }

    // Oracle ceiling: 21 of 22 true groups keep some overlap (C0057 3CX / G1049 has none in
    // either hold-out); 12 (leakage-aware) / 16 (naive) are not dominated by a superset.
    close(leak.oracle_ttp, 21.0 / 22.0);
    close(naive.oracle_ttp, 21.0 / 22.0);
    close(leak.oracle_undominated, 12.0 / 22.0);
    close(naive.oracle_undominated, 16.0 / 22.0);

    // Leakage-aware hold-out (the headline).
    let (m, t, b) = (&leak.model, &leak.model_ttp, &leak.baseline);
    close(m.top1, 6.0 / 22.0);
    close(m.top3, 9.0 / 22.0);
    close(m.top5, 10.0 / 22.0);
    close(m.mrr, 0.3862);
    close(m.brier, 0.9551);
    close(m.brier_top, 0.2443);
    close(m.log_loss, 3.7311);
    close(b.top1, 0.2364);
    close(b.top3, 0.3706);
    close(b.top5, 0.4837);
    close(b.mrr, 0.3611);
    close(b.brier, 0.9737);
    close(b.brier_top, 0.2225);
    close(b.log_loss, 3.9323);
    assert!(m.top1 > b.top1 && m.top3 > b.top3 && m.mrr > b.mrr);
    assert!(m.brier < b.brier && m.log_loss < b.log_loss);
    // Not better (measured): the Brier score of the top candidate's probability alone, and
    // top-5 (45.5 % vs 48.4 %) since the software is its own log-likelihood input, which this
    // hold-out (the software links of the campaign's reports deleted) does not select.
    assert!(m.brier_top > b.brier_top && m.top5 < b.top5);
    // Time moved top-5, MRR and log-loss (not top-1 or top-3).
    close(t.top1, 6.0 / 22.0);
    close(t.top3, 9.0 / 22.0);
    close(t.top5, 9.0 / 22.0);
    assert!(m.top5 > t.top5 && m.mrr > t.mrr && m.log_loss < t.log_loss);

    // Naive hold-out.
    let (m, b) = (&naive.model, &naive.baseline);
    close(m.top1, 15.0 / 22.0);
    close(m.top3, 16.0 / 22.0);
    close(m.top5, 16.0 / 22.0);
    close(m.mrr, 0.7112);
    close(m.brier, 0.4590);
    close(m.brier_top, 0.1438);
    assert!(m.top1 > b.top1 && m.top3 > b.top3 && m.mrr > b.mrr);
    assert!(m.brier < b.brier && m.brier_top < b.brier_top && m.log_loss < b.log_loss);
    // Not better (measured): top-5 (72.7 % vs 74.4 %).
    assert!(m.top5 < b.top5);

    // Stricter time hold-out (every group's reports published in the campaign's years + 1
    // removed): the time gain partly rests on reports from the campaign period. Top-3, top-5,
    // MRR and log-loss still improve on TTP-only, top-1 does not move.
    let strict = evaluate(
        &kb,
        &prov,
        &EvalOptions {
            strict_time: true,
            ..EvalOptions::default()
        },
    );
    let (m, t, b) = (&strict.model, &strict.model_ttp, &strict.baseline);
    show("leakage-aware strict", m);
    show("leakage-aware strict TTP", t);
    close(m.top1, 6.0 / 22.0);
    close(m.top3, 10.0 / 22.0);
    close(m.top5, 12.0 / 22.0);
    close(m.mrr, 0.3931);
    close(m.log_loss, 3.8470);
    assert!(m.top3 > t.top3 && m.top5 > t.top5 && m.mrr > t.mrr && m.log_loss < t.log_loss);
    close(m.top1, t.top1);
    assert!(m.top1 > b.top1 && m.top3 > b.top3 && m.mrr > b.mrr && m.log_loss < b.log_loss);

    // The target (top-1 ≥ 65 %, top-5 ≥ 85 %) is NOT reached in the leakage-aware
    // hold-out; the naive one reaches top-1 but not top-5.
    assert!(leak.model.top1 < 0.65 && leak.model.top5 < 0.85);
    assert!(naive.model.top1 >= 0.65 && naive.model.top5 < 0.85);
}
