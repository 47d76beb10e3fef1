//! `hunt --format navigator`: an ATT&CK Navigator layer (format 4.5) of
//! the observed techniques.

use crate::PipelineError;
use tracehunt_attack::{ActorKb, Source};
use tracehunt_engine::Ruleset;
use tracehunt_report::{navigator_layer, DetectionRef, LayerTechnique, Overlay};

fn how(sources: &[Source]) -> String {
    let mut v: Vec<String> = sources
        .iter()
        .map(|s| match s {
            Source::Direct => "direct".to_owned(),
            Source::Campaign { campaign } => format!("campaign {campaign}"),
            Source::Software { software } => format!("software {software}"),
            Source::CampaignSoftware { campaign, software } => {
                format!("campaign {campaign} software {software}")
            }
        })
        .collect();
    v.truncate(3);
    v.join(", ")
}

/// ATT&CK major version from the knowledge base label (`… v18.1 …` → `18`), default `18`.
fn attack_major(kb: &ActorKb) -> String {
    kb.label()
        .and_then(|l| {
            l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
                .find_map(|w| {
                    let v = w.strip_prefix('v')?;
                    let major = v.split('.').next()?;
                    (!major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| major.to_owned())
                })
        })
        .unwrap_or_else(|| "18".to_owned())
}

/// The layer JSON for the observed techniques, overlaid with `overlay` (a group id or name).
pub fn layer<'a>(
    kb: &ActorKb,
    rs: &Ruleset,
    dets: impl IntoIterator<Item = DetectionRef<'a>>,
    overlay: Option<&str>,
    title: &str,
) -> Result<serde_json::Value, PipelineError> {
    let mut total = 0usize;
    let dets = dets.into_iter().inspect(|_| total += 1);
    let observed: Vec<LayerTechnique> = crate::stix::technique_sightings(kb, rs, dets)
        .into_iter()
        .map(|t| {
            let mut rules = t.rules.clone();
            let more = rules.len().saturating_sub(5);
            rules.truncate(5);
            LayerTechnique {
                comment: format!(
                    "{}: {}{}",
                    tracehunt_report::counted(t.count, "detection", "detections"),
                    rules.join("; "),
                    if more > 0 {
                        format!(
                            " (+{})",
                            tracehunt_report::counted(more as u64, "more rule", "more rules")
                        )
                    } else {
                        String::new()
                    }
                ),
                id: t.id,
                score: t.count,
            }
        })
        .collect();
    let overlay = match overlay {
        None => None,
        Some(o) => {
            if o.trim().is_empty() {
                return Err(PipelineError::Overlay(
                    "--overlay needs an ATT&CK group: an id like G0009 or a name".to_owned(),
                ));
            }
            let Some(g) = kb.group_by_name_or_alias(o) else {
                return Err(PipelineError::Overlay(format!(
                    "--overlay {o}: no such ATT&CK group (use an id like G0009 or a name)"
                )));
            };
            Some(Overlay {
                id: g.id.clone(),
                name: g.name.clone(),
                techniques: g
                    .techniques
                    .iter()
                    .map(|(t, s)| (t.clone(), how(s)))
                    .collect(),
            })
        }
    };
    let description = format!(
        "Techniques detected by tracehunt ({}, {}){}",
        tracehunt_report::counted(total as u64, "detection", "detections"),
        tracehunt_report::counted(observed.len() as u64, "technique", "techniques"),
        overlay
            .as_ref()
            .map(|g| format!(", overlaid with {} {}", g.id, g.name))
            .unwrap_or_default()
    );
    Ok(navigator_layer(
        title,
        &description,
        &attack_major(kb),
        &observed,
        overlay.as_ref(),
    ))
}
