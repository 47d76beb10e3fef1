//! `tracehunt attribute` and `tracehunt attack snapshot`.

use crate::hunt::load_kb;
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{
    Attributor, EvidenceSet, Observation, ScoringConfig, TagObservation, Window,
};
use tracehunt_pipeline::evidence::{attribution_json, write_attribution_table};

#[derive(Args, Debug)]
// At least one kind of evidence: without either, clap said `--techniques` was
// required although `--software` alone works (breaker finding).
#[command(group(clap::ArgGroup::new("evidence").args(["techniques", "software"]).required(true).multiple(true)))]
pub struct AttributeArgs {
    /// ATT&CK technique ids, comma-separated (T1059.001, attack.t1021.002, v19 ids…).
    #[arg(long, value_delimiter = ',')]
    pub techniques: Vec<String>,
    /// ATT&CK software seen, comma-separated: ids (S0002) or names/aliases (Mimikatz,
    /// case-insensitive).
    #[arg(long, value_delimiter = ',')]
    pub software: Vec<String>,
    /// ATT&CK Enterprise STIX bundle (default: built-in v18.1 snapshot).
    #[arg(long, value_name = "FILE")]
    pub attack: Option<PathBuf>,
    /// Output format: table or json.
    #[arg(
        long,
        short = 'f',
        value_enum,
        ignore_case = true,
        default_value = "table"
    )]
    pub format: crate::TextOrJson,
    /// How many candidates to show, best first (0 = every group the evidence matched).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// When the activity was observed: first day (`YYYY-MM-DD` or RFC 3339, UTC). Groups whose
    /// known activity period (dated ATT&CK reports and campaigns) is far from it rank lower.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day of the observed activity (default: `--from`).
    #[arg(long, value_name = "DATE", requires = "from")]
    pub to: Option<String>,
}

pub fn run(a: AttributeArgs) -> Result<u8> {
    let kb = load_kb(&a.attack)?;
    // Software by id, name or alias (fresh-user trial: `--software Mimikatz` was reported as
    // an unknown technique id).
    let mut software = Vec::new();
    let mut unknown_software = Vec::new();
    for s in a
        .software
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        match kb.software_by_name_or_alias(s) {
            Some(sw) => software.push(TagObservation {
                id: sw.id.clone(),
                ..TagObservation::default()
            }),
            None => unknown_software.push(s.to_owned()),
        }
    }
    let ev = EvidenceSet {
        techniques: a
            .techniques
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(Observation::new)
            .collect(),
        software,
        ..EvidenceSet::default()
    };
    if ev.techniques.is_empty() && ev.software.is_empty() {
        if !unknown_software.is_empty() {
            anyhow::bail!(
                "unknown software: {} (not an ATT&CK software id, name or alias)",
                unknown_software.join(", ")
            );
        }
        anyhow::bail!("--techniques (or --software) needs at least one ATT&CK id");
    }
    let window = match &a.from {
        None => None,
        Some(from) => {
            let to = a.to.as_deref().unwrap_or(from);
            let bad = || format!("--from {from:?} / --to {to:?}: expected dates like 2024-05-01");
            let w = Window::from_dates(from, to).with_context(bad)?;
            // Fresh-user finding: a reversed window was silently swapped
            // here while `hunt` rejects it; rejected the same way.
            let start = Window::from_dates(from, from).with_context(bad)?;
            let end = Window::from_dates(to, to).with_context(bad)?;
            // The window is counted in months; days of one month compare as text
            // (same form, e.g. 2024-05-20 / 2024-05-01).
            let same_form_later = from.len() == to.len() && from.as_str() > to;
            if start.first > end.first || (start.first == end.first && same_form_later) {
                anyhow::bail!("--from ({from}) is after --to ({to}): the time window is empty");
            }
            Some(w)
        }
    };
    // `--top N` for any N, 0 = all (issue #18 item 8: the scorer's default kept 10, so
    // `--top 20` printed 10 and `--top 0` printed none).
    let config = ScoringConfig {
        top_n: a.top,
        ..ScoringConfig::default()
    };
    let res = Attributor::with_config(&kb, config).attribute_in(&ev, window);
    if res.observed.is_empty() && !res.unresolved.is_empty() {
        // Nothing left to attribute (breaker finding: `--techniques T9999`
        // exited 0 with an empty ranking while `--software NoSuchTool`
        // exited 1).
        let mut what = format!(
            "unknown technique ids: {} (not ATT&CK technique ids)",
            res.unresolved.join(", ")
        );
        if !unknown_software.is_empty() {
            what.push_str(&format!(
                "; unknown software: {}",
                unknown_software.join(", ")
            ));
        }
        anyhow::bail!(what);
    }
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    match a.format {
        crate::TextOrJson::Json => {
            let v = serde_json::json!({
                "attribution": attribution_json(&res, a.top),
                "attribution_verdict": {"confident": res.confident, "reason": res.reason, "unresolved_techniques": res.unresolved, "unknown_software": unknown_software, "states": res.states},
                "observed": res.observed,
            });
            serde_json::to_writer_pretty(&mut w, &v)?;
            writeln!(w)?;
        }
        _ => {
            if !res.unresolved.is_empty() {
                writeln!(
                    w,
                    "Unknown technique ids (ignored): {}",
                    res.unresolved.join(", ")
                )?;
            }
            if !unknown_software.is_empty() {
                writeln!(
                    w,
                    "Unknown software (ignored; not an ATT&CK software id, name or alias): {}",
                    unknown_software.join(", ")
                )?;
            }
            write_attribution_table(&mut w, &res, a.top)?;
        }
    }
    Ok(0)
}

pub fn snapshot(bundle: &Path, output: &Path) -> Result<u8> {
    let text = crate::input::read_text_file(bundle)
        .with_context(|| format!("reading {}", bundle.display()))?;
    let kb = ActorKb::from_stix_json(&text)
        .with_context(|| format!("{}: not an ATT&CK STIX bundle", bundle.display()))?;
    std::fs::write(output, kb.to_snapshot_json())
        .with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "wrote {}: {} intrusion sets, {} techniques, {} software, {} campaigns",
        output.display(),
        kb.groups().len(),
        kb.techniques().len(),
        kb.software_all().len(),
        kb.campaigns().len()
    );
    Ok(0)
}
