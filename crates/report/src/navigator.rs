//! ATT&CK Navigator layers (layer format 4.5, <https://github.com/mitre-attack/attack-navigator>,
//! `layers/LAYERFORMATv4_5.md`).
//!
//! [`navigator_layer`] returns one layer object:
//! `{"name", "versions": {"attack": "18", "navigator": "4.9.1", "layer": "4.5"},
//! "domain": "enterprise-attack", "description", "techniques": [{"techniqueID", "score",
//! "comment", "color"?, "enabled": true, "showSubtechniques"}], "gradient", "legendItems",
//! "metadata", "sorting", "hideDisabled"}`.
//!
//! * Observed techniques get `score` = number of detections, a `comment` naming the rules and an
//!   explicit `color` ([`observed_color`]: light red for one detection to dark red for the most,
//!   on a log scale), so every observed technique shows — even beside one seen thousands of
//!   times (issue #19: with the old white → red gradient 62 of 117 rendered almost white).
//!   The `gradient` has the same ends, for Navigator's legend.
//! * `showSubtechniques: true` is set on the parent technique of every listed sub-technique (an
//!   entry without score is added for a parent that was not itself observed), never on a
//!   sub-technique, so observed sub-techniques are expanded under their parent.
//! * With an overlay group ([`Overlay`]), techniques the group uses that were also observed are
//!   coloured red (`#e60d0d`), techniques the group uses that were not observed are added with
//!   score 0 in blue (`#66b1ff`), and observed techniques the group does not use keep the
//!   gradient colour; `legendItems` explain the colours.
//!
//! Technique ids must belong to the ATT&CK version named in `versions.attack` (the CLI
//! normalises v19 and revoked ids to v18.1 first). Output is deterministic (sorted by id).

use serde_json::{json, Value as J};

/// Colour of observed techniques the overlay group uses.
pub const COLOR_BOTH: &str = "#e60d0d";
/// Colour of the overlay group's techniques that were not observed.
pub const COLOR_GROUP_ONLY: &str = "#66b1ff";

/// Colour of the fewest detections (relative luminance 0.41: visibly red on white).
pub const COLOR_OBSERVED_MIN: &str = "#ff8c66";
/// Colour of the most detections.
pub const COLOR_OBSERVED_MAX: &str = "#b30000";

/// The colour of an observed technique with `score` detections when the most observed has
/// `max`: [`COLOR_OBSERVED_MIN`] → [`COLOR_OBSERVED_MAX`] by `ln(score) / ln(max)`.
pub fn observed_color(score: u64, max: u64) -> String {
    let f = if max <= 1 || score <= 1 {
        0.0
    } else {
        ((score as f64).ln() / (max as f64).ln()).clamp(0.0, 1.0)
    };
    let (a, b) = ([0xffu8, 0x8c, 0x66], [0xb3u8, 0x00, 0x00]);
    let c: Vec<String> = (0..3)
        .map(|i| {
            let v = f64::from(a[i]) + (f64::from(b[i]) - f64::from(a[i])) * f;
            format!("{:02x}", v.round() as u8)
        })
        .collect();
    format!("#{}", c.concat())
}

/// One observed technique.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerTechnique {
    /// ATT&CK id (`T1059.001`).
    pub id: String,
    /// Detections that showed it (the layer `score`).
    pub score: u64,
    /// Free text shown on hover (e.g. the rule titles).
    pub comment: String,
}

/// A group whose techniques are overlaid on the observed ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay {
    /// ATT&CK group id (`G0009`).
    pub id: String,
    /// Group name.
    pub name: String,
    /// Techniques the group uses (ATT&CK ids), with how ATT&CK links them (free text, e.g.
    /// `direct`, `campaign C0017`).
    pub techniques: Vec<(String, String)>,
}

/// Builds the layer (see the module docs). `attack_version` is the ATT&CK major version of the
/// ids (`"18"`).
pub fn navigator_layer(
    name: &str,
    description: &str,
    attack_version: &str,
    observed: &[LayerTechnique],
    overlay: Option<&Overlay>,
) -> J {
    let mut observed: Vec<&LayerTechnique> = observed.iter().collect();
    observed.sort_by(|a, b| a.id.cmp(&b.id));
    let max = observed.iter().map(|t| t.score).max().unwrap_or(0).max(1);
    let group: std::collections::BTreeMap<&str, &str> = overlay
        .map(|o| {
            o.techniques
                .iter()
                .map(|(t, how)| (t.as_str(), how.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut techniques = Vec::new();
    for t in &observed {
        let mut o = json!({
            "techniqueID": t.id,
            "score": t.score,
            "color": observed_color(t.score, max),
            "comment": t.comment,
            "enabled": true,
        });
        if let (Some(g), Some(how)) = (overlay, group.get(t.id.as_str())) {
            o["color"] = json!(COLOR_BOTH);
            o["comment"] = json!(format!(
                "{} | also used by {} {} ({how})",
                t.comment, g.id, g.name
            ));
        }
        techniques.push(o);
    }
    if let Some(g) = overlay {
        for (t, how) in &group {
            if observed.iter().any(|o| o.id == *t) {
                continue;
            }
            techniques.push(json!({
                "techniqueID": t,
                "score": 0,
                "color": COLOR_GROUP_ONLY,
                "comment": format!("used by {} {} ({how}); not observed", g.id, g.name),
                "enabled": true,
            }));
        }
    }
    expand_parents(&mut techniques);
    let mut legend = vec![
        json!({"label": "observed once", "color": COLOR_OBSERVED_MIN}),
        json!({"label": format!("observed {max} times"), "color": COLOR_OBSERVED_MAX}),
    ];
    if let Some(g) = overlay {
        legend.push(json!({"label": format!("observed and used by {} {}", g.id, g.name), "color": COLOR_BOTH}));
        legend.push(json!({"label": format!("used by {} {}, not observed", g.id, g.name), "color": COLOR_GROUP_ONLY}));
    }
    json!({
        "name": name,
        "versions": {"attack": attack_version, "navigator": "4.9.1", "layer": "4.5"},
        "domain": "enterprise-attack",
        "description": description,
        "sorting": 3,
        "hideDisabled": false,
        "techniques": techniques,
        "gradient": {"colors": [COLOR_OBSERVED_MIN, COLOR_OBSERVED_MAX], "minValue": 1, "maxValue": max},
        "legendItems": legend,
        "metadata": [{"name": "generator", "value": "tracehunt"}],
        "showTacticRowBackground": false,
        "selectTechniquesAcrossTactics": true,
        "selectSubtechniquesWithParent": false,
    })
}

/// Sets `showSubtechniques: true` on the parent of every sub-technique entry (adding an entry
/// without score for a parent not listed) and sorts the entries by id.
fn expand_parents(techniques: &mut Vec<J>) {
    let id = |t: &J| t["techniqueID"].as_str().unwrap_or_default().to_owned();
    let parents: std::collections::BTreeSet<String> = techniques
        .iter()
        .filter_map(|t| id(t).split_once('.').map(|(p, _)| p.to_owned()))
        .collect();
    for t in techniques.iter_mut() {
        if parents.contains(&id(t)) {
            t["showSubtechniques"] = json!(true);
        }
    }
    for p in &parents {
        if !techniques.iter().any(|t| id(t) == *p) {
            techniques.push(json!({
                "techniqueID": p,
                "comment": "sub-techniques listed",
                "enabled": true,
                "showSubtechniques": true,
            }));
        }
    }
    techniques.sort_by_key(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_colours() {
        let obs = [
            LayerTechnique {
                id: "T1047".into(),
                score: 3,
                comment: "WMI rule".into(),
            },
            LayerTechnique {
                id: "T1003.001".into(),
                score: 1,
                comment: "LSASS".into(),
            },
        ];
        let g = Overlay {
            id: "G0009".into(),
            name: "Deep Panda".into(),
            techniques: vec![
                ("T1047".into(), "direct".into()),
                ("T1546.008".into(), "direct".into()),
            ],
        };
        let l = navigator_layer("x", "y", "18", &obs, Some(&g));
        assert_eq!(l["versions"]["layer"], "4.5");
        let t = l["techniques"].as_array().unwrap();
        assert_eq!(t.len(), 5);
        assert_eq!(t[0]["techniqueID"], "T1003");
        assert_eq!(t[0]["showSubtechniques"], true);
        assert!(t[0].get("score").is_none());
        assert_eq!(t[1]["techniqueID"], "T1003.001");
        assert_eq!(t[1]["color"], COLOR_OBSERVED_MIN);
        assert!(t[1].get("showSubtechniques").is_none());
        assert_eq!(t[2]["techniqueID"], "T1047");
        assert_eq!(t[2]["color"], COLOR_BOTH);
        assert_eq!(t[3]["techniqueID"], "T1546");
        assert_eq!(t[4]["color"], COLOR_GROUP_ONLY);
        assert_eq!(t[4]["score"], 0);
        assert_eq!(l["gradient"]["maxValue"], 3);
    }

    #[test]
    fn observed_colours_run_light_to_dark_red() {
        assert_eq!(observed_color(1, 500), COLOR_OBSERVED_MIN);
        assert_eq!(observed_color(500, 500), COLOR_OBSERVED_MAX);
        assert_eq!(observed_color(7, 1), COLOR_OBSERVED_MIN);
    }
}
