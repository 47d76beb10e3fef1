//! ATT&CK v18.1 campaign hold-out (`../shared/corpora/attack/enterprise-attack-18.1.json`;
//! skipped when the corpus is absent). Asserts the figures measured when the model was
//! written, and states plainly where the model does **not** beat the naive-overlap baseline.

use std::path::PathBuf;

use tracehunt_attack::ActorKb;
use tracehunt_attribution::eval::{evaluate, EvalOptions, HoldOut, Metrics};
use tracehunt_attribution::{ModelWeights, Provenance, ScoringConfig};

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
        "{name:<24} top1 {:.3} top3 {:.3} top5 {:.3} MRR {:.3} Brier(top) {:.3} Brier {:.3} logloss {:.3}",
        m.top1, m.top3, m.top5, m.mrr, m.brier_top, m.brier, m.log_loss
    );
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 2e-3
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
    // The shipped weights are the ones fitted on all leakage-aware campaigns.
    let shipped = ScoringConfig::default().weights.to_array();
    let fitted = leak.weights_all.to_array();
    for (a, b) in shipped.iter().zip(fitted) {
        assert!(
            (a - b).abs() < 5e-4,
            "shipped {shipped:?} vs fitted {fitted:?}"
        );
    }
    let _ = ModelWeights::default();

    // Leakage-aware hold-out (weights fitted leave-one-campaign-out).
    let (m, b) = (&leak.model, &leak.baseline);
    assert!(close(m.top1, 7.0 / 22.0), "{}", m.top1);
    assert!(close(m.top5, 11.0 / 22.0), "{}", m.top5);
    assert!(m.top1 > b.top1 && m.top5 > b.top5 && m.mrr > b.mrr && m.brier < b.brier);
    // Where it does not beat the baseline (measured): top-3, top-1 Brier, log-loss.
    assert!(m.top3 < b.top3 && m.brier_top > b.brier_top && m.log_loss > b.log_loss);

    // Naive hold-out.
    let (m, b) = (&naive.model, &naive.baseline);
    assert!(close(m.top1, 14.0 / 22.0), "{}", m.top1);
    assert!(close(m.top5, 16.0 / 22.0), "{}", m.top5);
    assert!(m.top1 > b.top1 && m.top3 > b.top3 && m.mrr > b.mrr);
    assert!(m.brier < b.brier && m.log_loss < b.log_loss);
    // Not better (measured): top-5 (72.7 % vs 74.4 %), top-1 Brier.
    assert!(m.top5 < b.top5);

    // The target (top-1 ≥ 65 %, top-5 ≥ 85 %) is NOT reached in either hold-out.
    assert!(leak.model.top1 < 0.65 && naive.model.top1 < 0.65);
}
