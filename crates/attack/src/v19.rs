//! ATT&CK v19 → v18.1 technique reconciliation table (`data/v19-to-v18.tsv`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;

/// Why a v19 id maps to its v18.1 equivalents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum V19Basis {
    /// Derived from the MISP galaxy `mitre-attack-pattern.json` (ATT&CK v19 clusters): the
    /// v18.1 technique's cluster carries `related: [{type: "revoked-by", dest-uuid: <v19>}]`.
    MispRevokedBy,
    /// Checked by hand from names and descriptions: `T1686.003` Windows Host Firewall is a new
    /// child of `T1686`, which revoked `T1562.004` (whose v18.1 text covers host firewalls);
    /// `T1687` Exploitation for Defense Impairment is the defence-impairing half of v18.1
    /// `T1211` Exploitation for Defense Evasion (renamed Exploitation for Stealth in v19).
    Hand,
    /// New in v19 with no v18.1 equivalent.
    None,
}

/// One row of the embedded v19 → v18.1 table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V19Mapping {
    /// ATT&CK v19 technique id absent from v18.1 (e.g. `T1685`).
    pub v19_id: String,
    /// Its ATT&CK v18.1 equivalents, primary (same name or most specific) first; empty when
    /// there is none.
    pub v18_ids: Vec<String>,
    /// Where the mapping comes from.
    pub basis: V19Basis,
    /// The v19 technique name.
    pub v19_name: String,
}

const TABLE: &str = include_str!("../data/v19-to-v18.tsv");

fn table() -> &'static (Vec<V19Mapping>, HashMap<String, usize>) {
    static T: OnceLock<(Vec<V19Mapping>, HashMap<String, usize>)> = OnceLock::new();
    T.get_or_init(|| {
        let rows: Vec<V19Mapping> = TABLE
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let mut cols = l.split('\t');
                let v19_id = cols.next()?.trim().to_string();
                let v18_ids = cols
                    .next()?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                let basis = match cols.next()?.trim() {
                    "misp-revoked-by" => V19Basis::MispRevokedBy,
                    "hand" => V19Basis::Hand,
                    _ => V19Basis::None,
                };
                let v19_name = cols.next().unwrap_or("").trim().to_string();
                Some(V19Mapping {
                    v19_id,
                    v18_ids,
                    basis,
                    v19_name,
                })
            })
            .collect();
        let index = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.v19_id.clone(), i))
            .collect();
        (rows, index)
    })
}

/// The embedded ATT&CK v19 → v18.1 table: every enterprise technique id of the MISP galaxy's
/// ATT&CK v19 `mitre-attack-pattern.json` (MISP/misp-galaxy 9434ace4) that the v18.1 bundle
/// does not know, with its v18.1 equivalents.
pub fn v19_mapping() -> &'static [V19Mapping] {
    &table().0
}

pub(crate) fn lookup(id: &str) -> Option<&'static V19Mapping> {
    let (rows, index) = table();
    index.get(id).map(|&i| &rows[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses() {
        let rows = v19_mapping();
        assert_eq!(rows.len(), 23);
        let t = lookup("T1685").unwrap();
        assert_eq!(t.v18_ids[0], "T1562.001");
        assert_eq!(t.basis, V19Basis::MispRevokedBy);
        assert!(lookup("T1682").unwrap().v18_ids.is_empty());
        assert_eq!(lookup("T1686.003").unwrap().basis, V19Basis::Hand);
    }
}
