//! The few fields of an ATT&CK STIX 2.1 bundle (`enterprise-attack-*.json`) that the
//! leakage-aware hold-out (`provenance`) and the forward-in-time cases (`forward::cases`)
//! read: objects with their type, id, revoked/deprecated flags, external references and, for
//! relationships, type and ends (STIX 2.1 §3, ATT&CK's `x_mitre_deprecated`). Missing fields
//! default; unknown ones are ignored.

use serde::Deserialize;

/// A bundle: its `objects` array.
#[derive(Deserialize)]
pub(crate) struct Bundle {
    #[serde(default)]
    pub objects: Vec<Obj>,
}

/// One STIX object (SDO or relationship).
#[derive(Deserialize)]
pub(crate) struct Obj {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub revoked: Option<bool>,
    #[serde(default)]
    pub x_mitre_deprecated: Option<bool>,
    #[serde(default)]
    pub external_references: Vec<ExtRef>,
    #[serde(default)]
    pub relationship_type: Option<String>,
    #[serde(default)]
    pub source_ref: Option<String>,
    #[serde(default)]
    pub target_ref: Option<String>,
}

/// One external reference: ATT&CK's own (`source_name: mitre-attack`, `external_id`) or a
/// cited report (its name, URL and description, which carries the publication date).
#[derive(Deserialize)]
pub(crate) struct ExtRef {
    #[serde(default)]
    pub source_name: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

impl Obj {
    /// Revoked or deprecated: ignored, as `ActorKb::from_stix_json` ignores it.
    pub fn inactive(&self) -> bool {
        self.revoked == Some(true) || self.x_mitre_deprecated == Some(true)
    }

    /// The ATT&CK id (`G0009`, `T1059.001`), upper-case, from the `mitre-attack` reference.
    pub fn attack_id(&self) -> Option<String> {
        self.external_references
            .iter()
            .find(|r| r.source_name.as_deref() == Some("mitre-attack"))
            .and_then(|r| r.external_id.as_deref())
            .map(str::to_ascii_uppercase)
    }
}
