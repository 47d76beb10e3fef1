//! `tracehunt eval attribution`: ATT&CK campaign hold-out of the attribution model against
//! the naive-overlap baseline (see `tracehunt_attribution::eval`).

use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::eval::{evaluate, EvalOptions, EvalReport, HoldOut, Metrics};
use tracehunt_attribution::Provenance;

/// Arguments of `tracehunt eval attribution`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// ATT&CK Enterprise STIX bundle (default: the built-in v18.1 snapshot with the embedded
    /// leak table computed from the same bundle).
    #[arg(long, value_name = "FILE")]
    pub attack: Option<PathBuf>,
    /// Output format: table or json.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: crate::TextOrJson,
    /// Feed only the campaigns' techniques (what Sigma detections give), not their software.
    #[arg(long)]
    pub techniques_only: bool,
    /// Also list every campaign's result.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Runs both hold-outs (naive, leakage-aware) and prints the metrics.
pub fn run(a: EvalArgs) -> Result<u8> {
    let (kb, prov) = match &a.attack {
        None => (ActorKb::builtin().clone(), Provenance::builtin()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let kb = ActorKb::from_stix_json(&text)
                .with_context(|| format!("{}: not an ATT&CK STIX bundle", p.display()))?;
            let prov = Provenance::from_stix_json(&text)
                .with_context(|| format!("{}: not an ATT&CK STIX bundle", p.display()))?;
            (kb, prov)
        }
    };
    let reports: Vec<EvalReport> = [HoldOut::Naive, HoldOut::LeakageAware]
        .into_iter()
        .map(|mode| {
            evaluate(
                &kb,
                &prov,
                &EvalOptions {
                    mode,
                    techniques_only: a.techniques_only,
                    ..EvalOptions::default()
                },
            )
        })
        .collect();
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    match a.format {
        crate::TextOrJson::Json => {
            serde_json::to_writer_pretty(&mut w, &serde_json::json!({ "evaluations": reports }))?;
            writeln!(w)?;
        }
        _ => write_table(&mut w, &reports, a.verbose)?,
    }
    Ok(0)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn row<W: Write>(w: &mut W, mode: &str, who: &str, m: &Metrics) -> std::io::Result<()> {
    writeln!(
        w,
        "{mode:<14} {who:<9} {:>6} {:>6} {:>6} {:>6.3} {:>10.3} {:>8.3} {:>8.2}",
        pct(m.top1),
        pct(m.top3),
        pct(m.top5),
        m.mrr,
        m.brier_top,
        m.brier,
        m.log_loss
    )
}

fn write_table<W: Write>(w: &mut W, reports: &[EvalReport], verbose: bool) -> std::io::Result<()> {
    let Some(first) = reports.first() else {
        return Ok(());
    };
    writeln!(
        w,
        "ATT&CK campaign hold-out: {} campaigns ({}), evidence = techniques{}",
        first.model.cases,
        first.knowledge_base.as_deref().unwrap_or("ATT&CK"),
        if first.techniques_only {
            " only"
        } else {
            " + software"
        }
    )?;
    writeln!(
        w,
        "model: weights fitted leave-one-campaign-out (never on the campaign scored), probability = the fitted softmax;\n\
         baseline: rank by |observed ∩ profile| (techniques + software), softmax temperature fitted leave-one-out.\n"
    )?;
    writeln!(
        w,
        "{:<14} {:<9} {:>6} {:>6} {:>6} {:>6} {:>10} {:>8} {:>8}",
        "hold-out", "ranker", "top-1", "top-3", "top-5", "MRR", "Brier(top)", "Brier", "logloss"
    )?;
    for r in reports {
        row(w, r.mode.as_str(), "model", &r.model)?;
        row(w, r.mode.as_str(), "baseline", &r.baseline)?;
    }
    writeln!(
        w,
        "\nBrier(top): top candidate's probability vs. whether it is right; Brier: multi-class over all groups.\n\
         naive: only the campaign's own links are removed; leakage-aware: also the group's direct `uses` that cite the campaign's sources."
    )?;
    for r in reports {
        writeln!(
            w,
            "{}: weights fitted on all campaigns {:?}",
            r.mode.as_str(),
            r.weights_all
                .to_array()
                .map(|x| (x * 1000.0).round() / 1000.0)
        )?;
    }
    if verbose {
        for r in reports {
            writeln!(w, "\n{} hold-out:", r.mode.as_str())?;
            for c in &r.cases {
                writeln!(
                    w,
                    "  {} {:<32} {}  model rank {:>5.1} p={:>3.0}% (top {})  baseline rank {:>5.1}{}",
                    c.campaign,
                    c.name.chars().take(32).collect::<String>(),
                    c.group,
                    c.model.rank,
                    c.model.probability * 100.0,
                    c.model.top,
                    c.baseline.rank,
                    if c.baseline.tied > 0 {
                        format!(" (tied with {})", c.baseline.tied)
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        if let Some(r) = reports.first() {
            for s in &r.skipped {
                writeln!(w, "  skipped {}: {}", s.campaign, s.reason)?;
            }
        }
    }
    Ok(())
}
