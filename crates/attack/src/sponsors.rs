//! Suspected state sponsors of ATT&CK groups, from the MISP galaxy.
//!
//! ATT&CK itself names no state behind a group. The MISP galaxy's `threat-actor` clusters do:
//! `meta.country` (ISO 3166-1 alpha-2 of the actor's suspected origin) and, for the actors in
//! the Council on Foreign Relations' Cyber Operations Tracker, `meta.cfr-suspected-state-sponsor`
//! (a country name). [`StateSponsors::from_misp_galaxy`] links each cluster to ATT&CK group ids
//! through, strongest first:
//!
//! 1. the cluster names the group: `meta.name-attribution` entries of the form `G0006:<uuid>`,
//!    or `G` ids among its `meta.synonyms`;
//! 2. its `related` entries (MISP type `similar`) whose `dest-uuid` is a cluster of the
//!    galaxy's `mitre-intrusion-set` (whose `meta.external_id` is the `G` id);
//! 3. a case-insensitive match of the cluster's name or a synonym with the
//!    `mitre-intrusion-set` cluster's name (the part before ` - G0009`) or synonyms.
//!
//! Only the strongest tier that reaches a group counts (APT26 is only "similar" to Turla,
//! G0010, which the Turla cluster names outright). Within it, the country most clusters give
//! wins (ties: the alphabetically first code); a group that any cluster places elsewhere is
//! marked [`StateSponsor::disputed`].
//!
//! [`StateSponsors::builtin`] is the table generated from MISP/misp-galaxy commit 9434ace4
//! (`data/state-sponsors.tsv`, CC0 1.0 / BSD-2 like the galaxy); a test regenerates it from the
//! corpus and compares.
//!
//! ```
//! use tracehunt_attack::StateSponsors;
//!
//! let s = StateSponsors::builtin();
//! let deep_panda = s.get("G0009").expect("Deep Panda is in the galaxy");
//! assert_eq!(deep_panda.country, "CN");
//! assert!(s.matches_state("G0009", "china"));
//! assert!(s.matches_state("G0009", "CN"));
//! assert_eq!(StateSponsors::normalise_state("Russian Federation").as_deref(), Some("RU"));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::AttackError;

/// The suspected state behind one ATT&CK group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSponsor {
    /// ISO 3166-1 alpha-2 code (`"CN"`), from the cluster's `meta.country`.
    pub country: String,
    /// `meta.cfr-suspected-state-sponsor` when the cluster has one other than `"Unknown"`
    /// (`"China"`): the CFR tracker names the state as the suspected sponsor, not only the
    /// country of origin.
    pub cfr_sponsor: Option<String>,
    /// The MISP cluster the country was taken from (`"APT19"` for G0009).
    pub cluster: String,
    /// Clusters of more than one country link to the group.
    pub disputed: bool,
}

impl StateSponsor {
    /// A display name for the state: the common English name of the code (one name per
    /// state: "China", never also "People's Republic of China"), else the CFR name, else the
    /// code itself.
    pub fn state_name(&self) -> String {
        country_name(&self.country)
            .map(str::to_owned)
            .or_else(|| self.cfr_sponsor.clone())
            .unwrap_or_else(|| self.country.clone())
    }
}

/// ATT&CK group id (`G0009`) → its suspected state sponsor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSponsors {
    by_group: BTreeMap<String, StateSponsor>,
}

/// ISO codes with the names analysts use for them (the countries of the galaxy's clusters
/// that name a CFR sponsor, and a few more), for `--state China` and display.
const NAMES: &[(&str, &[&str])] = &[
    ("AE", &["United Arab Emirates", "UAE"]),
    ("BY", &["Belarus"]),
    ("CN", &["China", "People's Republic of China", "PRC"]),
    ("ES", &["Spain"]),
    ("FR", &["France"]),
    ("GB", &["United Kingdom", "UK"]),
    ("IL", &["Israel"]),
    ("IN", &["India"]),
    ("IR", &["Iran", "Iran (Islamic Republic of)"]),
    (
        "KP",
        &[
            "North Korea",
            "Korea (Democratic People's Republic of)",
            "DPRK",
        ],
    ),
    ("KR", &["South Korea", "Korea (Republic of)"]),
    ("LB", &["Lebanon"]),
    ("PK", &["Pakistan"]),
    ("PS", &["Palestine"]),
    ("RU", &["Russia", "Russian Federation"]),
    ("TR", &["Turkey", "Türkiye"]),
    ("UA", &["Ukraine"]),
    ("US", &["United States", "USA", "US"]),
    ("VN", &["Vietnam", "Viet Nam"]),
];

/// The common English name of an ISO 3166-1 alpha-2 code in [`NAMES`].
fn country_name(code: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, n)| n[0])
}

#[derive(Deserialize)]
struct Galaxy {
    values: Vec<Cluster>,
}

#[derive(Deserialize)]
struct Cluster {
    value: String,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    meta: Meta,
    #[serde(default)]
    related: Vec<Related>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default, deserialize_with = "opt_string")]
    country: Option<String>,
    #[serde(
        default,
        rename = "cfr-suspected-state-sponsor",
        deserialize_with = "opt_string"
    )]
    cfr: Option<String>,
    #[serde(default, rename = "name-attribution", deserialize_with = "one_or_many")]
    name_attribution: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    synonyms: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    external_id: Vec<String>,
}

/// A galaxy text field; other JSON types (a list, a number) count as absent.
fn opt_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// A galaxy list field, also when written as a single string (some clusters do).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[derive(Deserialize)]
struct Related {
    #[serde(rename = "dest-uuid")]
    dest_uuid: String,
}

/// `G` + 4 digits.
fn is_group_id(s: &str) -> bool {
    s.len() == 5 && s.starts_with('G') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// One cluster's claim on a group: (link tier 1–3, 1 strongest; country; cfr sponsor; cluster
/// name).
type Claim = (u8, String, Option<String>, String);

impl StateSponsors {
    /// The table generated from the MISP galaxy at commit 9434ace4 (`data/state-sponsors.tsv`).
    pub fn builtin() -> &'static StateSponsors {
        static S: OnceLock<StateSponsors> = OnceLock::new();
        S.get_or_init(|| {
            // Generated and checked by this crate's tests, so it always parses.
            StateSponsors::from_tsv(include_str!("../data/state-sponsors.tsv")).unwrap_or_default()
        })
    }

    /// Builds the table from the galaxy's `threat-actor.json` and `mitre-intrusion-set.json`
    /// texts (see the module docs for how clusters link to groups).
    ///
    /// # Errors
    /// [`AttackError::Json`] when either text is not a galaxy (`{"values": [...]}`).
    pub fn from_misp_galaxy(
        threat_actor_json: &str,
        intrusion_set_json: &str,
    ) -> Result<StateSponsors, AttackError> {
        let actors: Galaxy = serde_json::from_str(threat_actor_json)?;
        let sets: Galaxy = serde_json::from_str(intrusion_set_json)?;
        let mut by_uuid: HashMap<&str, &str> = HashMap::new();
        let mut by_name: HashMap<String, Vec<&str>> = HashMap::new();
        for s in &sets.values {
            let Some(id) = s.meta.external_id.iter().find(|i| is_group_id(i)) else {
                continue;
            };
            by_uuid.insert(s.uuid.as_str(), id.as_str());
            let base = s.value.split(" - G").next().unwrap_or(&s.value);
            for n in std::iter::once(base).chain(s.meta.synonyms.iter().map(String::as_str)) {
                by_name.entry(n.trim().to_lowercase()).or_default().push(id);
            }
        }
        let mut claims: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
        for c in &actors.values {
            let Some(country) = c.meta.country.as_deref().map(str::trim) else {
                continue;
            };
            if country.len() != 2 {
                continue;
            }
            let cfr = c
                .meta
                .cfr
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("unknown"))
                .map(str::to_owned);
            // Tier 1: the cluster names the group id; tier 2: MISP relates it to the group's
            // cluster ("similar"); tier 3: a name or synonym in common.
            let mut named: Vec<&str> = c
                .meta
                .name_attribution
                .iter()
                .filter_map(|na| na.split(':').next().filter(|i| is_group_id(i)))
                .collect();
            named.extend(
                c.meta
                    .synonyms
                    .iter()
                    .map(|s| s.trim())
                    .filter(|s| is_group_id(s)),
            );
            let related: Vec<&str> = c
                .related
                .iter()
                .filter_map(|r| by_uuid.get(r.dest_uuid.as_str()).copied())
                .collect();
            let by_names: Vec<&str> = std::iter::once(c.value.as_str())
                .chain(c.meta.synonyms.iter().map(String::as_str))
                .filter_map(|n| by_name.get(&n.trim().to_lowercase()))
                .flatten()
                .copied()
                .collect();
            let country = country.to_ascii_uppercase();
            for (tier, ids) in [(1u8, named), (2, related), (3, by_names)] {
                for id in ids {
                    let v = claims.entry(id.to_owned()).or_default();
                    let claim = (tier, country.clone(), cfr.clone(), c.value.clone());
                    if !v.contains(&claim) {
                        v.push(claim);
                    }
                }
            }
        }
        let by_group = claims
            .into_iter()
            .filter_map(|(id, cl)| Some((id, decide(cl)?)))
            .collect();
        Ok(StateSponsors { by_group })
    }

    /// Parses the table's TSV form ([`StateSponsors::to_tsv`]). Lines starting with `#` are
    /// comments.
    ///
    /// # Errors
    /// [`AttackError::NotABundle`] naming the line when a row has not five fields.
    pub fn from_tsv(text: &str) -> Result<StateSponsors, AttackError> {
        let mut by_group = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let [id, country, cfr, cluster, disputed] = f[..] else {
                return Err(AttackError::NotABundle(format!(
                    "state-sponsor table line {}: expected 5 tab-separated fields, found {}",
                    i + 1,
                    f.len()
                )));
            };
            by_group.insert(
                id.to_owned(),
                StateSponsor {
                    country: country.to_owned(),
                    cfr_sponsor: (!cfr.is_empty()).then(|| cfr.to_owned()),
                    cluster: cluster.to_owned(),
                    disputed: disputed == "1",
                },
            );
        }
        Ok(StateSponsors { by_group })
    }

    /// The TSV form: a header comment, then `group_id, country, cfr_sponsor, cluster,
    /// disputed (0/1)` per group, by group id.
    pub fn to_tsv(&self, provenance: &str) -> String {
        let mut out = format!(
            "# Suspected state sponsors of ATT&CK groups, from {provenance}\n\
             # group_id\tcountry\tcfr_sponsor\tcluster\tdisputed\n"
        );
        for (id, s) in &self.by_group {
            out.push_str(&format!(
                "{id}\t{}\t{}\t{}\t{}\n",
                s.country,
                s.cfr_sponsor.as_deref().unwrap_or(""),
                s.cluster.replace(['\t', '\n'], " "),
                u8::from(s.disputed)
            ));
        }
        out
    }

    /// The sponsor of a group id (`"G0009"`), if the galaxy names one.
    pub fn get(&self, group_id: &str) -> Option<&StateSponsor> {
        self.by_group.get(group_id.trim())
    }

    /// All groups with a sponsor, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &StateSponsor)> {
        self.by_group.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of groups with a sponsor.
    pub fn len(&self) -> usize {
        self.by_group.len()
    }

    /// Whether no group has a sponsor.
    pub fn is_empty(&self) -> bool {
        self.by_group.is_empty()
    }

    /// Whether the group's suspected state is `state` (an ISO code or a name of
    /// [`StateSponsors::normalise_state`]).
    pub fn matches_state(&self, group_id: &str, state: &str) -> bool {
        let Some(code) = Self::normalise_state(state) else {
            return false;
        };
        self.get(group_id).is_some_and(|s| s.country == code)
    }

    /// An ISO 3166-1 alpha-2 code for a state given as a code (`"cn"`) or a known name
    /// (`"China"`, `"Russian Federation"`, `"DPRK"`), case-insensitively; `None` otherwise.
    pub fn normalise_state(state: &str) -> Option<String> {
        let s = state.trim();
        if let Some((code, _)) = NAMES.iter().find(|(c, names)| {
            c.eq_ignore_ascii_case(s) || names.iter().any(|n| n.eq_ignore_ascii_case(s))
        }) {
            return Some((*code).to_owned());
        }
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| s.to_ascii_uppercase())
    }
}

/// The sponsor a group's claims point to: the claims of the strongest tier present; the most
/// claimed country among them (ties: smallest code); its first claim with a CFR sponsor names
/// it. Disputed when any claim, of any tier, names another country.
fn decide(claims: Vec<Claim>) -> Option<StateSponsor> {
    let tier = claims.iter().map(|c| c.0).min()?;
    let used: Vec<&Claim> = claims.iter().filter(|c| c.0 == tier).collect();
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &used {
        *votes.entry(c.1.as_str()).or_default() += 1;
    }
    let best = votes
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))?
        .0
        .to_string();
    let of_best: Vec<&&Claim> = used.iter().filter(|c| c.1 == best).collect();
    let pick = of_best
        .iter()
        .find(|c| c.2.is_some())
        .or_else(|| of_best.first())?;
    Some(StateSponsor {
        country: best.clone(),
        cfr_sponsor: pick.2.clone(),
        cluster: pick.3.clone(),
        disputed: claims.iter().any(|c| c.1 != best),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_round_trips_and_bad_rows_name_their_line() {
        let t = StateSponsors::builtin();
        assert_eq!(&StateSponsors::from_tsv(&t.to_tsv("x")).unwrap(), t);
        let e = StateSponsors::from_tsv("# c\nG0001\tCN\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn state_names_and_codes_normalise() {
        for (s, code) in [
            ("cn", "CN"),
            ("China", "CN"),
            (" DPRK ", "KP"),
            ("iran", "IR"),
        ] {
            assert_eq!(
                StateSponsors::normalise_state(s).as_deref(),
                Some(code),
                "{s}"
            );
        }
        assert_eq!(StateSponsors::normalise_state("Atlantis"), None);
        assert_eq!(StateSponsors::normalise_state("zz").as_deref(), Some("ZZ"));
        assert!(!StateSponsors::builtin().matches_state("G0009", "Atlantis"));
    }

    #[test]
    fn galaxy_with_odd_shapes_does_not_fail() {
        // A string where a list is expected, a numeric country, a cluster without meta.
        let actors = r#"{"values":[
            {"value":"X","meta":{"country":"cn","synonyms":"G0001"}},
            {"value":"Y","meta":{"country":5,"synonyms":["G0002"]}},
            {"value":"Z"}]}"#;
        let sets =
            r#"{"values":[{"value":"A - G0001","uuid":"u","meta":{"external_id":"G0001"}}]}"#;
        let s = StateSponsors::from_misp_galaxy(actors, sets).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.get("G0001").unwrap().country, "CN");
        assert!(StateSponsors::from_misp_galaxy("[]", sets).is_err());
    }
}
