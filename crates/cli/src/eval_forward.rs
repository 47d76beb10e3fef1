//! `tracehunt eval attribution --forward DIR`: the forward-in-time evaluation
//! (`tracehunt_attribution::forward`): knowledge base from an older ATT&CK release, cases from
//! what the newest release added.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use tracehunt_attribution::forward::{
    evaluate_forward, ForwardMetrics, ForwardOptions, ForwardReport, Interval, Release,
};

/// Reads every `enterprise-attack-<version>.json` of `dir`, oldest version first, each once.
pub fn load_releases(dir: &Path) -> Result<Vec<Release>> {
    let mut found: Vec<(Vec<u32>, String, std::path::PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(v) = name
            .strip_prefix("enterprise-attack-")
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let Ok(key) = v
            .split('.')
            .map(str::parse)
            .collect::<Result<Vec<u32>, _>>()
        else {
            continue;
        };
        found.push((key, v.to_string(), path));
    }
    found.sort();
    if found.len() < 2 {
        bail!(
            "{}: need at least two enterprise-attack-<version>.json bundles for a forward evaluation, found {}",
            dir.display(),
            found.len()
        );
    }
    found
        .into_iter()
        .map(|(_, v, path)| {
            let text = crate::input::read_text_file(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Release::from_stix_json(&format!("v{v}"), &text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        })
        .collect()
}

/// Runs the forward evaluation on the bundles of `dir`.
pub fn run(dir: &Path) -> Result<ForwardReport> {
    let releases = load_releases(dir)?;
    let report = evaluate_forward(&releases, &ForwardOptions::default())
        .context("forward evaluation needs two releases")?;
    // Two copies of one release (the version is read from the file name) give no case at all:
    // an error, not a table of zeros (breaker finding).
    if let Some(sp) = report.splits.iter().find(|s| s.model.cases == 0) {
        anyhow::bail!(
            "{}: no forward cases between {} and {} (nothing the newer release added about groups the older one knew): are these two different ATT&CK releases? The version is read from the file name (enterprise-attack-<version>.json)",
            dir.display(),
            sp.old,
            sp.new
        );
    }
    if report.fit_cases == 0 {
        anyhow::bail!(
            "{}: no forward cases in the fit split {}: are these different ATT&CK releases?",
            dir.display(),
            report.fit_split
        );
    }
    Ok(report)
}

fn ci(x: &Interval, pct: bool) -> String {
    if pct {
        format!(
            "{:.1}% [{:.1}, {:.1}]",
            x.value * 100.0,
            x.low * 100.0,
            x.high * 100.0
        )
    } else {
        format!("{:.3} [{:.3}, {:.3}]", x.value, x.low, x.high)
    }
}

fn row<W: Write>(w: &mut W, who: &str, m: &ForwardMetrics) -> std::io::Result<()> {
    writeln!(
        w,
        "  {who:<13} {:>4}  {:<20} {:<20} {:<20} {:<21} {:<21} {:<21}",
        m.cases,
        ci(&m.top1, true),
        ci(&m.top3, true),
        ci(&m.top5, true),
        ci(&m.mrr, false),
        ci(&m.brier, false),
        ci(&m.ece, false),
    )
}

/// The forward evaluation as text tables.
pub fn write_table<W: Write>(w: &mut W, r: &ForwardReport, verbose: bool) -> std::io::Result<()> {
    writeln!(
        w,
        "Forward-in-time evaluation (knowledge base from an older ATT&CK release; cases = campaigns and new reports\n\
         the newest release added for groups the older one knew, ids mapped across releases).\n\
         Fit: weights (likelihood, matched, size, time, software) by conditional-logit maximum likelihood and the\n\
         softmax temperature on out-of-fold scores (5 folds by group). Each split is scored cross-fitted by group\n\
         (each group fold with a fit on the other folds) and, when its cases all postdate it, temporally with the\n\
         fit on {} ({} cases). Nothing fitted ever sees the cases it scores.\n\
         Intervals: 95% percentile bootstrap over cases (1000 draws); ECE: 10 bins of the top probability;\n\
         reliability and state-level intervals: Wilson.",
        r.fit_split, r.fit_cases
    )?;
    let s = r.shipped;
    writeln!(
        w,
        "Shipped (fitted so on all {} cases of {}; expect that split's cross-fitted figures): likelihood {:.4}, matched {:.4}, size {:.4}, time {:.4}, software {:.4}; temperature {:.4}",
        r.shipped_cases,
        r.shipped_from,
        s.weights.likelihood,
        s.weights.matched,
        s.weights.size,
        s.weights.time,
        s.weights.software,
        s.temperature
    )?;
    for sp in &r.splits {
        writeln!(
            w,
            "\n{} → {}, {}: {} cases ({} campaigns, {} reports)",
            sp.old, sp.new, sp.fit, sp.model.cases, sp.campaigns, sp.reports,
        )?;
        writeln!(
            w,
            "  skipped: {} of groups the older release did not know, {} campaigns not attributed to one group, {} with no technique in the older release",
            sp.skips.new_group, sp.skips.not_one_group, sp.skips.no_technique
        )?;
        writeln!(
            w,
            "  {:<13} {:>4}  {:<20} {:<20} {:<20} {:<21} {:<21} {:<21}",
            "ranker", "n", "top-1", "top-3", "top-5", "MRR", "Brier", "ECE"
        )?;
        row(w, "model", &sp.model)?;
        row(w, "baseline", &sp.baseline)?;
        row(w, "model +sw", &sp.model_software)?;
        row(w, "baseline +sw", &sp.baseline_software)?;
        writeln!(
            w,
            "  mean top probability {:.1}% vs top-1 {:.1}%; +sw = cases with software evidence",
            sp.model.mean_top_probability * 100.0,
            sp.model.top1.value * 100.0
        )?;
        let c = &sp.software_ceiling;
        writeln!(
            w,
            "  +sw ceiling: {} of {} cases name a software the older release links to the true group ({} one only that group uses); model top-1 {:.1} of those {}, {:.1} of the other {}",
            c.known_to_truth,
            c.cases,
            c.unique_to_truth,
            c.model_top1_known,
            c.known_to_truth,
            c.model_top1_unknown,
            c.cases - c.known_to_truth
        )?;
        writeln!(w, "  reliability (model, top candidate):")?;
        writeln!(
            w,
            "    {:<9} {:>4} {:>8} {:>8}  {:<16}",
            "shown", "n", "mean p", "hit", "hit 95% CI"
        )?;
        for b in &sp.reliability {
            writeln!(
                w,
                "    {:<9} {:>4} {:>7.1}% {:>7.1}%  [{:.1}, {:.1}]{}",
                format!("{:.0}-{:.0}%", b.from * 100.0, b.to * 100.0),
                b.n,
                b.mean_probability * 100.0,
                b.hit_rate * 100.0,
                b.low * 100.0,
                b.high * 100.0,
                if b.agrees() { "" } else { "  (outside)" }
            )?;
        }
        let st = &sp.state;
        writeln!(
            w,
            "  state level: top-1 {} on {} cases with a known state; always answering {} gets {:.1}%",
            ci(&st.top1, true),
            st.cases,
            st.most_common,
            st.base_rate * 100.0
        )?;
        let cl = &sp.clear_lead;
        writeln!(
            w,
            "  \"clear lead\" verdicts: {} of {} cases, leader right in {} (precision {})",
            cl.confident,
            sp.model.cases,
            cl.correct,
            ci(&cl.precision, true)
        )?;
        if verbose {
            for o in &sp.outcomes {
                writeln!(
                    w,
                    "    {:<8} {:<40} {:<5} ev {:>3}+{:<2} model {:>6.1} base {:>6.1} top {} {:.0}%",
                    format!("{:?}", o.case.kind).to_lowercase(),
                    o.case.id.chars().take(40).collect::<String>(),
                    o.case.group,
                    o.case.techniques.len(),
                    o.case.software.len(),
                    o.model_rank,
                    o.baseline_rank,
                    o.top,
                    o.top_probability * 100.0
                )?;
            }
        }
    }
    writeln!(w)
}
