//! Dated commitments and competing events, from YAML.
//!
//! A file holds `commitments:`, a list of entries with `id`, `name`, `kind` (`commitment`, a
//! pledge; or `event`, a date whose effect competes with the pledges', such as an
//! indictment), `parties`, `pledging` (ISO 3166-1 alpha-2 codes of the states whose conduct
//! the text constrains), `signed` and `effective` (`YYYY-MM-DD`), `scope` and `reference` (a
//! URL). [`Commitments::builtin`] is `data/commitments.yaml`: the 2015-09-25 US–China
//! commitment, the 2015-10-22 UK–China joint statement, the 2015-11-16 G20 Antalya
//! communiqué and, as a competing event, the 2014-05-19 indictment of five PLA officers.
//!
//! ```
//! use tracehunt_commitments::commitment::{Commitments, Kind};
//!
//! let c = Commitments::builtin();
//! let us_cn = c.get("us-china-2015").unwrap();
//! assert_eq!(us_cn.effective.to_string(), "2015-09-25");
//! assert!(us_cn.pledges("cn"));
//! let for_china: Vec<&str> = c.relevant_to("CN").map(|c| c.id.as_str()).collect();
//! assert_eq!(for_china, ["pla-indictment-2014", "us-china-2015", "uk-china-2015", "g20-antalya-2015"]);
//! assert_eq!(c.get("pla-indictment-2014").unwrap().kind, Kind::Event);
//! ```

use std::sync::OnceLock;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Whether an entry is a pledge or a competing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A pledge by the `pledging` states.
    Commitment,
    /// A dated event that may explain a change as well (indictment, disclosure, sanction).
    Event,
}

/// One dated commitment or event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// Unique id (`us-china-2015`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Pledge or competing event.
    pub kind: Kind,
    /// The parties (ISO codes or a forum such as `G20`).
    #[serde(default)]
    pub parties: Vec<String>,
    /// ISO codes of the states whose conduct it constrains (empty for events).
    #[serde(default)]
    pub pledging: Vec<String>,
    /// Date signed or announced.
    pub signed: NaiveDate,
    /// Date from which it applies (the date the analysis splits the series at).
    pub effective: NaiveDate,
    /// What was promised, in short.
    #[serde(default)]
    pub scope: String,
    /// Where the text is published.
    #[serde(default)]
    pub reference: String,
}

impl Commitment {
    /// Whether `state` (ISO code, any case) is among the pledging states.
    pub fn pledges(&self, state: &str) -> bool {
        self.pledging
            .iter()
            .any(|p| p.eq_ignore_ascii_case(state.trim()))
    }

    /// Whether `state` is a party or a pledging state.
    pub fn involves(&self, state: &str) -> bool {
        self.pledges(state)
            || self
                .parties
                .iter()
                .any(|p| p.eq_ignore_ascii_case(state.trim()))
    }
}

/// A list of commitments and events, by effective date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commitments {
    /// Entries sorted by effective date, then id.
    pub entries: Vec<Commitment>,
}

/// A commitments file that cannot be used; the message names the file's line where the YAML
/// parser gives one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommitmentsError(pub String);

/// Deepest flow nesting (`[`/`{`) and indentation (columns) accepted: a commitments file is
/// two levels deep; the YAML parser's time grows with the square of the depth (breaker
/// finding: 100,000 nested `[` ran for minutes).
const MAX_DEPTH: usize = 64;
const MAX_INDENT: usize = 256;

fn check_nesting(text: &str) -> Result<(), CommitmentsError> {
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if indent > MAX_INDENT {
            return Err(CommitmentsError(format!(
                "line {}: indented {indent} columns; at most {MAX_INDENT}",
                i + 1
            )));
        }
        // Quotes end with their line: an apostrophe in a plain scalar ("Jinping's") must not
        // hide the rest of the file.
        let mut quote = None::<char>;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(CommitmentsError(format!(
                            "line {}: nested more than {MAX_DEPTH} levels deep",
                            i + 1
                        )));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    commitments: Vec<Commitment>,
}

impl Commitments {
    /// The built-in file (`data/commitments.yaml`).
    pub fn builtin() -> &'static Commitments {
        static C: OnceLock<Commitments> = OnceLock::new();
        C.get_or_init(|| {
            // Checked by this crate's tests, so it always parses.
            Commitments::from_yaml(include_str!("../data/commitments.yaml"))
                .unwrap_or(Commitments { entries: vec![] })
        })
    }

    /// Parses a commitments file.
    ///
    /// # Errors
    /// YAML or shape errors with their line and column; duplicate ids; an effective date
    /// before the signing date; a commitment without pledging states.
    pub fn from_yaml(text: &str) -> Result<Commitments, CommitmentsError> {
        check_nesting(text)?;
        let f: File = yaml_serde::from_str(text).map_err(|e| {
            // The parser's message already ends with "at line L column C".
            CommitmentsError(e.to_string())
        })?;
        let mut entries = f.commitments;
        let mut ids = std::collections::BTreeSet::new();
        for c in &entries {
            if c.id.trim().is_empty() {
                return Err(CommitmentsError(format!("{:?}: empty id", c.name)));
            }
            if !ids.insert(c.id.clone()) {
                return Err(CommitmentsError(format!("duplicate id {:?}", c.id)));
            }
            if c.effective < c.signed {
                return Err(CommitmentsError(format!(
                    "{}: effective {} is before signed {}",
                    c.id, c.effective, c.signed
                )));
            }
            if c.kind == Kind::Commitment && c.pledging.is_empty() {
                return Err(CommitmentsError(format!(
                    "{}: a commitment needs at least one pledging state",
                    c.id
                )));
            }
        }
        entries.sort_by(|a, b| a.effective.cmp(&b.effective).then(a.id.cmp(&b.id)));
        Ok(Commitments { entries })
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&Commitment> {
        self.entries.iter().find(|c| c.id == id)
    }

    /// Entries that concern `state` (ISO code): commitments it pledged and events it is a
    /// party to, by effective date.
    pub fn relevant_to<'a>(&'a self, state: &'a str) -> impl Iterator<Item = &'a Commitment> {
        self.entries.iter().filter(move |c| match c.kind {
            Kind::Commitment => c.pledges(state),
            Kind::Event => c.involves(state),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_holds_the_four_dates_of_the_issue() {
        let c = Commitments::builtin();
        let dates: Vec<String> = c.entries.iter().map(|e| e.effective.to_string()).collect();
        assert_eq!(
            dates,
            ["2014-05-19", "2015-09-25", "2015-10-22", "2015-11-16"]
        );
        assert!(c.entries.iter().all(|e| e.reference.starts_with("http")));
        assert!(c.get("g20-antalya-2015").unwrap().pledges("RU"));
        assert_eq!(c.relevant_to("RU").count(), 1);
    }

    #[test]
    fn errors_name_the_line_and_the_entry() {
        let e = Commitments::from_yaml("commitments:\n  - id: a\n    name: x\n    kind: pledge\n")
            .unwrap_err();
        assert!(e.0.contains("line 4"), "{e}");
        let one = "  - {id: a, name: x, kind: event, signed: 2015-01-01, effective: 2015-01-01}\n";
        let e = Commitments::from_yaml(&format!("commitments:\n{one}{one}")).unwrap_err();
        assert!(e.0.contains("duplicate id \"a\""), "{e}");
        let e = Commitments::from_yaml(
            "commitments:\n  - {id: b, name: x, kind: commitment, signed: 2015-01-01, effective: 2015-01-01}\n",
        )
        .unwrap_err();
        assert!(e.0.contains("b: a commitment needs"), "{e}");
        let e = Commitments::from_yaml(
            "commitments:\n  - {id: c, name: x, kind: event, signed: 2015-02-01, effective: 2015-01-01}\n",
        )
        .unwrap_err();
        assert!(e.0.contains("before signed"), "{e}");
        assert!(Commitments::from_yaml("").is_err());
        let deep = format!(
            "commitments: {}{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let e = Commitments::from_yaml(&deep).unwrap_err();
        assert!(e.0.contains("line 1: nested more than 64"), "{e}");
        let e =
            Commitments::from_yaml(&format!("commitments:\n{}- a\n", " ".repeat(300))).unwrap_err();
        assert!(e.0.contains("line 2: indented 300"), "{e}");
        assert!(Commitments::from_yaml("commitments: 5").is_err());
    }
}
