//! Campaign hold-out on an ATT&CK STIX bundle (development aid; the CLI has
//! `tracehunt eval attribution`). Usage: `holdout BUNDLE [leaks-out.json]`.

use tracehunt_attack::ActorKb;
use tracehunt_attribution::eval::{evaluate, EvalOptions, HoldOut, Metrics};
use tracehunt_attribution::Provenance;

fn line(name: &str, m: &Metrics) {
    println!(
        "  {name:<10} top1 {:>5.1}%  top3 {:>5.1}%  top5 {:>5.1}%  MRR {:.3}  Brier(top) {:.3}  Brier {:.3}  logloss {:.2}  meanPtop {:.2}",
        m.top1 * 100.0,
        m.top3 * 100.0,
        m.top5 * 100.0,
        m.mrr,
        m.brier_top,
        m.brier,
        m.log_loss,
        m.mean_top_probability
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).expect("bundle");
    let kb = ActorKb::from_stix_json(&text).expect("kb");
    let prov = Provenance::from_stix_json(&text).expect("provenance");
    if let Some(out) = args.get(2) {
        std::fs::write(out, prov.to_json()).expect("write");
    }
    let verbose = std::env::var("VERBOSE").is_ok();
    let ablations: [(&str, [bool; 6], bool); 5] = [
        ("all", [true; 6], true),
        ("no-time", [true, true, true, true, false, true], false),
        (
            "no-campaign-prior",
            [true, true, true, false, true, true],
            true,
        ),
        (
            "likelihood-only",
            [true, false, false, false, false, false],
            false,
        ),
        ("llr+size", [true, false, true, false, false, false], false),
    ];
    for techniques_only in [false, true] {
        for mode in [HoldOut::Naive, HoldOut::LeakageAware] {
            for (name, inputs, use_time) in ablations {
                let opts = EvalOptions {
                    mode,
                    techniques_only,
                    input_sets: vec![inputs],
                    use_time,
                    ..EvalOptions::default()
                };
                let r = evaluate(&kb, &prov, &opts);
                println!(
                    "{} techniques_only={} {name} weights_all={:?}",
                    mode.as_str(),
                    techniques_only,
                    r.weights_all
                        .to_array()
                        .map(|x| (x * 1000.0).round() / 1000.0)
                );
                line("model", &r.model);
                if name == "all" {
                    line("baseline", &r.baseline);
                    line("shipped", &r.model_shipped);
                }
                if verbose && name == "all" {
                    for c in &r.cases {
                        println!(
                            "    {} {:<28} {} t={:>2} s={:>2} leak={:>2} model rank {:>6.1} p={:.2} top {} | base rank {:>6.1} (tied {})",
                            c.campaign, &c.name.chars().take(28).collect::<String>(), c.group, c.techniques, c.software, c.leaked_removed,
                            c.model.rank, c.model.probability, c.model.top, c.baseline.rank, c.baseline.tied
                        );
                    }
                }
            }
        }
    }
}
