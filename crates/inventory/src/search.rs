//! Search over all events (Hayabusa 4 `search`, Chainsaw `search`):
//! keywords in any field value, a regular expression, and `field:value`
//! filters, combined with AND.
//!
//! * **Keywords** (`-k`): an event matches when any keyword (all of them
//!   with `all_keywords`, Hayabusa's `--and`) occurs as a substring of any
//!   field value (values as text: numbers in decimal). Case-sensitive unless
//!   `ignore_case`.
//! * **Regex** (`-e`): the `regex` crate's syntax (linear time, size-limited),
//!   unanchored, matched against every field value; case-sensitive unless
//!   `ignore_case`.
//! * **Field filters** (`--field NAME:VALUE`): the event has a field `NAME`
//!   (ASCII case-insensitive, spaces ignored — how rules name fields: the
//!   event's flat names such as `EventID`, `Image`, `TargetUserName`, or a
//!   cloud record's dotted path) with a value equal to `VALUE`, where `*`
//!   matches any run of characters; compared case-insensitively, as Sigma
//!   compares strings. Several filters must all hold.
//!
//! What matched is returned as [`Snippet`]s: the matching fields' names and
//! values, in event order.

use crate::{ReadStats, Window};
use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};
use tracehunt_event::Event;
use tracehunt_pipeline::WorkUnit;

/// Largest compiled regex (bytes of the `regex` crate's program), for the
/// user's `-e` and for field wildcards.
const REGEX_SIZE_LIMIT: usize = 10 << 20;

/// A query that cannot be built: the text says which part and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl std::error::Error for QueryError {}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `--field NAME:VALUE` filter.
#[derive(Debug, Clone)]
pub struct FieldFilter {
    /// The field name, ASCII-lowercased, spaces removed.
    name: String,
    /// `VALUE` as an anchored, case-insensitive pattern (`*` → any text).
    value: Regex,
}

impl FieldFilter {
    /// Parses `NAME:VALUE` (split at the first `:`; `VALUE` may hold more
    /// colons, e.g. `Image:C:\Windows\*`). An empty `VALUE` matches an
    /// empty or null value.
    ///
    /// # Errors
    /// No `:`, or an empty name.
    pub fn parse(spec: &str) -> Result<Self, QueryError> {
        let Some((name, value)) = spec.split_once(':') else {
            return Err(QueryError(format!(
                "--field {spec:?}: expected NAME:VALUE (e.g. EventID:4104 or Image:*\\powershell.exe)"
            )));
        };
        let name = fold_name(name);
        if name.is_empty() {
            return Err(QueryError(format!(
                "--field {spec:?}: the field name is empty"
            )));
        }
        let pattern = value
            .split('*')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(".*");
        let value = RegexBuilder::new(&format!("^(?s:{pattern})$"))
            .case_insensitive(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| QueryError(format!("--field {spec:?}: {e}")))?;
        Ok(FieldFilter { name, value })
    }
}

/// A field name as the filters compare it: ASCII-lowercased, spaces removed.
fn fold_name(n: &str) -> String {
    n.chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A compiled search: keywords, an optional regex and field filters, all of
/// which must match (see the module docs).
#[derive(Debug, Clone)]
pub struct Query {
    /// Keywords, lowercased when `ignore_case`.
    keywords: Vec<String>,
    all_keywords: bool,
    ignore_case: bool,
    regex: Option<Regex>,
    fields: Vec<FieldFilter>,
}

/// One matching field of an event: its name and its value as text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snippet {
    /// The field name as the event has it.
    pub name: String,
    /// The whole value as text.
    pub value: String,
    /// Byte offset in `value` where the first keyword or regex match
    /// starts (0 for a field filter): where a shortened display should look.
    #[serde(skip)]
    pub at: usize,
}

impl Query {
    /// Builds a query.
    ///
    /// # Errors
    /// Nothing to search for (no keyword, regex or field filter), an empty
    /// keyword, or a regex that does not compile (or exceeds 10 MiB).
    pub fn new(
        keywords: &[String],
        all_keywords: bool,
        regex: Option<&str>,
        fields: Vec<FieldFilter>,
        ignore_case: bool,
    ) -> Result<Self, QueryError> {
        if keywords.is_empty() && regex.is_none() && fields.is_empty() {
            return Err(QueryError(
                "nothing to search for: give -k KEYWORD, -e REGEX or --field NAME:VALUE".into(),
            ));
        }
        if keywords.iter().any(String::is_empty) {
            return Err(QueryError("-k: an empty keyword matches everything".into()));
        }
        let regex = regex
            .map(|r| {
                RegexBuilder::new(r)
                    .case_insensitive(ignore_case)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| QueryError(format!("-e {r:?}: {e}")))
            })
            .transpose()?;
        Ok(Query {
            keywords: keywords
                .iter()
                .map(|k| {
                    if ignore_case {
                        k.to_lowercase()
                    } else {
                        k.clone()
                    }
                })
                .collect(),
            all_keywords,
            ignore_case,
            regex,
            fields,
        })
    }

    /// The fields of `ev` that matched, in event order, when the event
    /// matches the whole query; `None` otherwise.
    pub fn matches(&self, ev: &Event) -> Option<Vec<Snippet>> {
        let names: Vec<&str> = ev.fields().map(|(k, _)| k).collect();
        // Where the first match of each field starts (a byte offset of its text).
        let mut hit: Vec<Option<usize>> = vec![None; names.len()];
        // Field filters first: they look only at the fields they name.
        for f in &self.fields {
            let mut any = false;
            for (i, (k, v)) in ev.fields().enumerate() {
                if name_eq(k, &f.name) && f.value.is_match(&v.to_text()) {
                    hit[i].get_or_insert(0);
                    any = true;
                }
            }
            if !any {
                return None;
            }
        }
        if self.regex.is_some() || !self.keywords.is_empty() {
            let texts: Vec<std::borrow::Cow<'_, str>> =
                ev.fields().map(|(_, v)| v.to_text()).collect();
            if let Some(re) = &self.regex {
                let mut any = false;
                for (i, t) in texts.iter().enumerate() {
                    if let Some(m) = re.find(t) {
                        hit[i] = Some(hit[i].map_or(m.start(), |h| h.min(m.start())));
                        any = true;
                    }
                }
                if !any {
                    return None;
                }
            }
            if !self.keywords.is_empty() && !self.keywords_match(&texts, &mut hit) {
                return None;
            }
        }
        Some(
            ev.fields()
                .zip(hit)
                .filter_map(|((k, v), h)| {
                    h.map(|at| {
                        let value = v.to_text().into_owned();
                        let mut at = at.min(value.len());
                        while !value.is_char_boundary(at) {
                            at -= 1;
                        }
                        Snippet {
                            name: k.to_owned(),
                            value,
                            at,
                        }
                    })
                })
                .collect(),
        )
    }

    /// Marks the fields holding a keyword (offset of the first one); true
    /// when any keyword (every keyword with `all_keywords`) was found.
    fn keywords_match(
        &self,
        texts: &[std::borrow::Cow<'_, str>],
        hit: &mut [Option<usize>],
    ) -> bool {
        let mut found = vec![false; self.keywords.len()];
        for (i, v) in texts.iter().enumerate() {
            let folded;
            let text: &str = if self.ignore_case {
                folded = v.to_lowercase();
                &folded
            } else {
                v
            };
            for (k, kw) in self.keywords.iter().enumerate() {
                if let Some(p) = text.find(kw.as_str()) {
                    found[k] = true;
                    hit[i] = Some(hit[i].map_or(p, |h| h.min(p)));
                }
            }
        }
        if self.all_keywords {
            found.iter().all(|f| *f)
        } else {
            found.iter().any(|f| *f)
        }
    }
}

/// True when the event's field name `raw`, ASCII-lowercased and without
/// spaces, equals `folded` (already in that form); no allocation.
fn name_eq(raw: &str, folded: &str) -> bool {
    let mut it = raw
        .bytes()
        .filter(|b| *b != b' ')
        .map(|b| b.to_ascii_lowercase());
    folded.bytes().all(|f| it.next() == Some(f)) && it.next().is_none()
}

/// One matching event with where it was read.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The event's time (UTC), if it has one.
    pub time: Option<DateTime<Utc>>,
    /// The work unit's number (input order) and the event's place in it.
    pub order: (u32, u32),
    /// The file (index of the source's stream).
    pub file: usize,
    /// The fields that matched.
    pub snippets: Vec<Snippet>,
    /// The whole event.
    pub event: Event,
}

/// One thread's search results and reading counts.
#[derive(Debug, Default)]
pub struct SearchAcc {
    /// Matching events, in no particular order until [`SearchAcc::finish`].
    pub hits: Vec<Hit>,
    /// What reading cost.
    pub stats: ReadStats,
    /// Files read (indices; a file split into units appears once per unit).
    pub files_read: Vec<usize>,
}

impl SearchAcc {
    /// Reads one unit, keeping the events in `window` that match `q`.
    pub fn add_unit(&mut self, q: &Query, window: &Window, unit: WorkUnit) {
        let (index, file) = (unit.index, unit.stream);
        let hits = &mut self.hits;
        let read = crate::read_unit(unit, window, &mut self.stats, |place, ev| {
            if let Some(snippets) = q.matches(&ev) {
                hits.push(Hit {
                    time: ev.meta.timestamp,
                    order: (index, place),
                    file,
                    snippets,
                    event: ev,
                });
            }
        });
        if read.is_some() {
            self.files_read.push(file);
        }
    }

    /// Merges another thread's results.
    pub fn merge(&mut self, o: SearchAcc) {
        self.hits.extend(o.hits);
        self.stats.merge(o.stats);
        self.files_read.extend(o.files_read);
    }

    /// Sorts the hits by time (events without a time last), then input
    /// order — the same order whatever the thread count — and dedups
    /// `files_read`.
    pub fn finish(&mut self) {
        self.hits
            .sort_by_key(|h| (h.time.is_none(), h.time, h.order));
        self.files_read.sort_unstable();
        self.files_read.dedup();
    }

    /// Number of distinct files with at least one hit.
    pub fn files_matched(&self) -> usize {
        let mut f: Vec<usize> = self.hits.iter().map(|h| h.file).collect();
        f.sort_unstable();
        f.dedup();
        f.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracehunt_event::Value;

    fn ev() -> Event {
        let mut e = Event::default();
        e.push("EventID", Value::Int(4104));
        e.push("ScriptBlockText", Value::from("Invoke-Mimikatz -DumpCreds"));
        e.push("Path", Value::from("C:\\Temp\\x.ps1"));
        e
    }

    fn q(k: &[&str], all: bool, re: Option<&str>, f: &[&str], i: bool) -> Query {
        let k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        let f = f.iter().map(|s| FieldFilter::parse(s).unwrap()).collect();
        Query::new(&k, all, re, f, i).unwrap()
    }

    #[test]
    fn keywords_any_all_and_case() {
        assert!(q(&["Mimikatz"], false, None, &[], false)
            .matches(&ev())
            .is_some());
        assert!(q(&["mimikatz"], false, None, &[], false)
            .matches(&ev())
            .is_none());
        assert!(q(&["mimikatz"], false, None, &[], true)
            .matches(&ev())
            .is_some());
        assert!(q(&["Mimikatz", "nope"], false, None, &[], false)
            .matches(&ev())
            .is_some());
        assert!(q(&["Mimikatz", "nope"], true, None, &[], false)
            .matches(&ev())
            .is_none());
        // --and: the keywords may sit in different fields.
        let s = q(&["Mimikatz", "x.ps1"], true, None, &[], false)
            .matches(&ev())
            .unwrap();
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn field_filters_with_wildcards_numbers_and_name_case() {
        assert!(q(&[], false, None, &["eventid:4104"], false)
            .matches(&ev())
            .is_some());
        assert!(q(&[], false, None, &["EventID:410"], false)
            .matches(&ev())
            .is_none());
        assert!(q(&[], false, None, &["path:c:\\temp\\*"], false)
            .matches(&ev())
            .is_some());
        assert!(q(&[], false, None, &["Path:*.exe"], false)
            .matches(&ev())
            .is_none());
        // All filters must hold.
        assert!(q(&[], false, None, &["EventID:4104", "Path:x"], false)
            .matches(&ev())
            .is_none());
        let s = q(&[], false, None, &["Path:*x.ps1"], false)
            .matches(&ev())
            .unwrap();
        assert_eq!(s[0].name, "Path");
        assert_eq!(s[0].at, 0);
        // Match offsets for display, also case-folded.
        let s = q(&["dump"], false, None, &[], true).matches(&ev()).unwrap();
        assert_eq!((s[0].name.as_str(), s[0].at), ("ScriptBlockText", 17));
        assert!(name_eq("Threat Name", "threatname"));
        assert!(!name_eq("ThreatNames", "threatname"));
    }

    #[test]
    fn regex_and_errors() {
        assert!(q(&[], false, Some(r"Dump\w+"), &[], false)
            .matches(&ev())
            .is_some());
        assert!(q(&[], false, Some(r"^dump"), &[], true)
            .matches(&ev())
            .is_none());
        assert!(Query::new(&[], false, None, vec![], false).is_err());
        assert!(Query::new(&[], false, Some("("), vec![], false).is_err());
        assert!(FieldFilter::parse("novalue").is_err());
        assert!(FieldFilter::parse(":x").is_err());
    }
}
