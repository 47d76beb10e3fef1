use rsigma_parser::LogSource;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Where events of a logsource come from: a set of channels and EventIDs,
/// plus field renames for that source.
///
/// An event belongs to the source when its channel is one of `channels`
/// (ASCII case-insensitive; empty = any channel not in `not_channels`) and
/// its EventID is one of `event_ids` (empty = any EventID).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Channel names as Windows writes them, e.g. `Microsoft-Windows-Sysmon/Operational`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// EventIDs; empty means any.
    #[serde(default)]
    pub event_ids: Vec<u32>,
    /// Sigma field name → field name in events of this source
    /// (e.g. `Image` → `NewProcessName` for Security 4688).
    #[serde(default)]
    pub field_map: BTreeMap<String, String>,
    /// Sigma field name → how this source's events give its value when
    /// neither the name nor a rename carries it as Sigma expects (e.g.
    /// `IntegrityLevel` from 4688's `MandatoryLabel` SID, `User` from
    /// `SubjectDomainName` and `SubjectUserName`). A field is either renamed
    /// or derived, not both (a derivation wins).
    #[serde(default)]
    pub derived: BTreeMap<String, Derived>,
    /// Channels this source never matches, even when `channels` is empty
    /// (ASCII case-insensitive; an entry ending in `:` stands for every
    /// channel starting with it, e.g. `zeek:`). [`LogsourceMap`] fills it for Windows
    /// sources that name no channel with every channel another product
    /// claims (issue #21: a `product: windows` rule must never run on a
    /// Linux, cloud or network event); a mapping file may set it too.
    #[serde(default)]
    pub not_channels: Vec<String>,
    /// The channel's events are assembled by a reader from records it also
    /// gives one by one (auditd's `linux:process_creation`), so a rule
    /// naming only the product (which means every channel of it) does not
    /// read them: one record would fire it twice (fresh-user finding, issue
    /// #21: one `perl -e` reverse shell gave "Suspicious Reverse Shell
    /// Command Line" twice). Rules naming the category still read them.
    #[serde(default)]
    pub assembled: bool,
}

/// How a source's events give the value of a Sigma field
/// ([`Source::derived`]). The derived values are computed per event and
/// compared by the rule's item as the field's values; the event itself is
/// not changed.
///
/// * `join` set: one value, the first value of each `from` field joined
///   with `join` (`SubjectDomainName` + `\` + `SubjectUserName` gives
///   Sysmon's `DOMAIN\user`); none when one of them is absent or empty.
/// * otherwise every value of every `from` field as it is, plus, for each
///   one `values` lists (ASCII case-insensitive key), the listed value
///   (`S-1-16-12288` → `High`), and with `hex` set, for each `0x…` value
///   its decimal form (`0x1a2b` → `6699`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derived {
    /// Fields of this source's events the value comes from.
    pub from: Vec<String>,
    /// Event value → the value Sigma rules write, kept beside the raw one.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Join the `from` fields' values with this text into one value.
    #[serde(default)]
    pub join: Option<String>,
    /// A hexadecimal `0x…` value also gives its decimal form.
    #[serde(default)]
    pub hex: bool,
}

/// One `(product, category | service)` entry of the mapping file. An unknown key is an
/// error naming it (a typo such as `pboduct:` would otherwise leave the entry product-less).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsourceEntry {
    /// Sigma `logsource.product`, e.g. `windows`; absent for logsources
    /// SigmaHQ writes without a product (`category: webserver`, `proxy`).
    #[serde(default)]
    pub product: Option<String>,
    /// Sigma `logsource.category`, e.g. `process_creation`.
    #[serde(default)]
    pub category: Option<String>,
    /// Sigma `logsource.service`, e.g. `security`.
    #[serde(default)]
    pub service: Option<String>,
    /// The event sources this logsource means (any of them).
    pub sources: Vec<Source>,
}

#[derive(Deserialize)]
struct MapFile {
    logsources: Vec<LogsourceEntry>,
}

/// A mapping file that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogsourceError {
    /// Not valid YAML or not the documented schema (`crates/sigma/data/README.md`).
    #[error("logsource mapping: {0}")]
    Yaml(String),
}

/// Sigma logsource → event sources, loaded from data (never hard-coded).
///
/// The built-in map (`crates/sigma/data/windows-logsources.yml`) follows
/// SigmaHQ's own `tests/thor.yml` and `logsource.json` and covers every
/// `product: windows` category and service used in SigmaHQ.
#[derive(Debug, Clone, Default)]
pub struct LogsourceMap {
    entries: Vec<LogsourceEntry>,
    /// Per product (lower case): what a rule naming only that product
    /// means (see [`LogsourceMap::resolve`]).
    product_any: BTreeMap<String, Vec<Source>>,
    /// Lower-case channels claimed by non-Windows entries, sorted.
    foreign: Vec<String>,
}

/// True when lower-case `channel` is in `list`: equal to an entry, or
/// starting with an entry that ends in `:` (a `product:` family).
pub fn channel_listed(list: &[String], channel: &str) -> bool {
    list.iter()
        .any(|c| c == channel || (c.ends_with(':') && channel.starts_with(c.as_str())))
}

/// The product Windows rules name; every other product (and an entry with
/// none) is foreign to Windows events.
const WINDOWS: &str = "windows";

fn is_windows(e: &LogsourceEntry) -> bool {
    e.product
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(WINDOWS))
}

const BUILTIN: &str = include_str!("../data/windows-logsources.yml");
/// The non-Windows maps (issue #21), appended after the Windows one.
const BUILTIN_FOREIGN: [(&str, &str); 3] = [
    (
        "linux-logsources.yml",
        include_str!("../data/linux-logsources.yml"),
    ),
    (
        "cloud-logsources.yml",
        include_str!("../data/cloud-logsources.yml"),
    ),
    (
        "network-logsources.yml",
        include_str!("../data/network-logsources.yml"),
    ),
];

impl LogsourceMap {
    /// The built-in Windows mapping.
    pub fn builtin() -> Self {
        // The built-in files are tested to parse (`builtin_map_parses`).
        let mut map = Self::from_yaml(BUILTIN).unwrap_or_default();
        for (_, text) in BUILTIN_FOREIGN {
            if let Ok(m) = Self::from_yaml(text) {
                map.entries.extend(m.entries);
            }
        }
        map.settle();
        map
    }

    /// Recomputes what depends on all entries together (issue #21):
    ///
    /// * the channels claimed by entries of a product other than Windows
    ///   (and by entries with no product) become the `not_channels` of every
    ///   Windows source that names no channel, so a Windows rule never runs
    ///   on those events;
    /// * per product, what the product alone means: for Windows any event
    ///   not on those foreign channels; for another product every channel its
    ///   entries list (EventIDs and field renames dropped; a product whose
    ///   entries list no channel at all means nothing).
    fn settle(&mut self) {
        // Each claimed channel, and for a `product:name` channel its
        // `product:` family, so `zeek:weird` is foreign when `zeek:dns` is
        // claimed even though no entry lists it.
        let mut foreign: Vec<String> = self
            .entries
            .iter()
            .filter(|e| !is_windows(e))
            .flat_map(|e| e.sources.iter().flat_map(|s| s.channels.iter()))
            .flat_map(|c| {
                let c = c.to_ascii_lowercase();
                let family = c.find(':').map(|i| c[..=i].to_owned());
                std::iter::once(c).chain(family)
            })
            .collect();
        foreign.sort();
        foreign.dedup();
        let mut product_any: BTreeMap<String, Vec<Source>> = BTreeMap::new();
        for e in &mut self.entries {
            let Some(p) = e.product.as_deref().map(str::to_ascii_lowercase) else {
                continue;
            };
            if is_windows(e) {
                for s in e.sources.iter_mut().filter(|s| s.channels.is_empty()) {
                    for c in &foreign {
                        if !s.not_channels.iter().any(|n| n.eq_ignore_ascii_case(c)) {
                            s.not_channels.push(c.clone());
                        }
                    }
                }
                product_any.entry(p).or_insert_with(|| {
                    vec![Source {
                        not_channels: foreign.clone(),
                        ..Source::default()
                    }]
                });
            } else {
                let any = product_any.entry(p).or_insert_with(|| {
                    vec![Source {
                        // Filled below; a source with no channel would mean any.
                        channels: Vec::new(),
                        ..Source::default()
                    }]
                });
                for c in e
                    .sources
                    .iter()
                    .filter(|s| !s.assembled)
                    .flat_map(|s| s.channels.iter())
                {
                    if !any[0].channels.iter().any(|x| x.eq_ignore_ascii_case(c)) {
                        any[0].channels.push(c.clone());
                    }
                }
            }
        }
        // A foreign product whose entries name no channel means no event.
        product_any.retain(|p, v| p == WINDOWS || !v[0].channels.is_empty());
        self.product_any = product_any;
        self.foreign = foreign;
    }

    /// True when `channel` (any case) is claimed by a non-Windows entry
    /// (`linux:auditd`, `aws:cloudtrail`, `Linux-Sysmon/Operational`…):
    /// its events are not Windows events, and e.g. carry no EventID by design.
    pub fn is_foreign_channel(&self, channel: &str) -> bool {
        channel_listed(&self.foreign, &channel.to_ascii_lowercase())
    }

    /// The channels [`LogsourceMap::is_foreign_channel`] is true of,
    /// lower-case and sorted.
    pub fn foreign_channels(&self) -> &[String] {
        &self.foreign
    }

    /// Parses a mapping file in the documented schema.
    ///
    /// # Errors
    /// [`LogsourceError::Yaml`] with the parser's message (it names the line).
    pub fn from_yaml(text: &str) -> Result<Self, LogsourceError> {
        let f: MapFile =
            yaml_serde::from_str(text).map_err(|e| LogsourceError::Yaml(e.to_string()))?;
        let mut map = LogsourceMap {
            entries: f.logsources,
            product_any: BTreeMap::new(),
            foreign: Vec::new(),
        };
        map.settle();
        Ok(map)
    }

    /// Adds the entries of another map (a user's mapping file) before the
    /// existing ones, so they take precedence.
    pub fn extend_front(&mut self, other: LogsourceMap) {
        let mut e = other.entries;
        e.append(&mut self.entries);
        self.entries = e;
        self.settle();
    }

    /// All entries, in file order.
    pub fn entries(&self) -> &[LogsourceEntry] {
        &self.entries
    }

    /// The sources a rule's logsource means, or `None` when it is not mapped
    /// (the rule must then never be evaluated).
    ///
    /// Resolution: a `category` is looked up as `(product, category)`; else a
    /// `service` as `(product, service)`; a rule with only a `product` that the
    /// map knows means every event of that product. Comparisons are ASCII
    /// case-insensitive. A rule with no product is looked up by category or
    /// service alone only if exactly one product defines it.
    pub fn resolve(&self, ls: &LogSource) -> Option<&[Source]> {
        let eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => true,
            _ => false,
        };
        let product_ok = |e: &LogsourceEntry| match &ls.product {
            Some(p) => e
                .product
                .as_ref()
                .is_some_and(|ep| ep.eq_ignore_ascii_case(p)),
            None => true,
        };
        let pick = |f: &dyn Fn(&LogsourceEntry) -> bool| -> Option<&[Source]> {
            let mut hits = self.entries.iter().filter(|e| product_ok(e) && f(e));
            let first = hits.next()?;
            if ls.product.is_none() && hits.any(|e| !eq(&e.product, &first.product)) {
                return None;
            }
            Some(&first.sources)
        };
        if ls.category.is_some() {
            return pick(&|e| e.category.is_some() && eq(&e.category, &ls.category));
        }
        if ls.service.is_some() {
            return pick(&|e| e.service.is_some() && eq(&e.service, &ls.service));
        }
        let p = ls.product.as_ref()?;
        self.product_any
            .get(&p.to_ascii_lowercase())
            .map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(p: Option<&str>, c: Option<&str>, s: Option<&str>) -> LogSource {
        LogSource {
            product: p.map(str::to_owned),
            category: c.map(str::to_owned),
            service: s.map(str::to_owned),
            ..LogSource::default()
        }
    }

    /// Regression (fuzz `logsource_map`, `pboduct: windows`): a mistyped key was dropped
    /// silently, leaving a product-less duplicate of a Windows service that no rule could
    /// resolve; now the map is refused with the key named.
    #[test]
    fn mistyped_entry_key_is_an_error_naming_it() {
        let e = LogsourceMap::from_yaml(
            "logsources:\n  - pboduct: windows\n    service: servicebus-client\n    sources:\n      - channels: [\"Microsoft-ServiceBus-Client\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("logsource mapping:"), "{e}");
        assert!(e.contains("pboduct"), "{e}");
    }

    #[test]
    fn builtin_map_parses() {
        let m = LogsourceMap::from_yaml(BUILTIN).expect("built-in map parses");
        assert!(m.entries().len() >= 10);
        for (name, text) in BUILTIN_FOREIGN {
            if let Err(e) = LogsourceMap::from_yaml(text) {
                panic!("{name}: {e}");
            }
        }
    }

    #[test]
    fn process_creation_means_sysmon_1_and_security_4688() {
        let m = LogsourceMap::builtin();
        let s = m
            .resolve(&ls(Some("windows"), Some("process_creation"), None))
            .unwrap();
        assert!(s.iter().any(|s| s.event_ids == [1]
            && s.channels
                .iter()
                .any(|c| c == "Microsoft-Windows-Sysmon/Operational")));
        let sec = s.iter().find(|s| s.event_ids == [4688]).unwrap();
        assert_eq!(
            sec.field_map.get("Image").map(String::as_str),
            Some("NewProcessName")
        );
    }

    #[test]
    fn unknown_category_and_foreign_product_are_unmapped() {
        let m = LogsourceMap::builtin();
        assert!(m
            .resolve(&ls(Some("windows"), Some("no_such_cat"), None))
            .is_none());
        assert!(m
            .resolve(&ls(Some("no_such_product"), Some("process_creation"), None))
            .is_none());
        assert!(m.resolve(&ls(None, None, None)).is_none());
    }

    #[test]
    fn linux_process_creation_means_sysmon_1_and_assembled_auditd() {
        let m = LogsourceMap::builtin();
        let s = m
            .resolve(&ls(Some("linux"), Some("process_creation"), None))
            .unwrap();
        assert!(s
            .iter()
            .any(|s| s.event_ids == [1] && s.channels == ["Linux-Sysmon/Operational"]));
        assert!(s
            .iter()
            .any(|s| s.event_ids.is_empty() && s.channels == ["linux:process_creation"]));
        let a = m.resolve(&ls(Some("linux"), None, Some("auditd"))).unwrap();
        assert_eq!(a[0].channels, ["linux:auditd"]);
    }

    #[test]
    fn product_only_means_any_event_of_product() {
        let m = LogsourceMap::builtin();
        let s = m.resolve(&ls(Some("windows"), None, None)).unwrap();
        assert_eq!(s.len(), 1);
        assert!(s[0].channels.is_empty() && s[0].event_ids.is_empty());
    }

    /// Fuzz finding (logsource_map seed): a map entry naming a product
    /// alone with no sources loads; the product alone resolves in code (no
    /// channel: no event), the entries with a category or service resolve.
    #[test]
    fn product_alone_entry_without_sources_resolves_in_code() {
        let m = LogsourceMap::from_yaml(
            "logsources:\n  - product: windows\n    service: security\n    sources:\n      - channels: [\"Security\"]\n  - product: linux\n    sources: []\n",
        )
        .unwrap();
        assert!(m
            .resolve(&ls(Some("windows"), None, Some("security")))
            .is_some());
        assert!(m.resolve(&ls(Some("linux"), None, None)).is_none());
        let mut merged = LogsourceMap::builtin();
        merged.extend_front(m);
        assert!(merged
            .resolve(&ls(Some("linux"), Some("process_creation"), None))
            .is_some());
    }

    /// Fresh-user finding (issue #21): `product: linux` alone also read the
    /// assembled `linux:process_creation` events, so one auditd exec fired
    /// a keyword rule twice; it reads the records, Sysmon for Linux and
    /// syslog, not the assembled channel, which `process_creation` rules read.
    #[test]
    fn product_only_linux_skips_assembled_process_events() {
        let m = LogsourceMap::builtin();
        let s = m.resolve(&ls(Some("linux"), None, None)).unwrap();
        let chans: Vec<&str> = s
            .iter()
            .flat_map(|s| s.channels.iter().map(String::as_str))
            .collect();
        assert!(chans.contains(&"linux:auditd"), "{chans:?}");
        assert!(chans.contains(&"Linux-Sysmon/Operational"), "{chans:?}");
        assert!(!chans.contains(&"linux:process_creation"), "{chans:?}");
        let s = m
            .resolve(&ls(Some("linux"), Some("process_creation"), None))
            .unwrap();
        assert!(s.iter().any(|s| s.channels == ["linux:process_creation"]));
    }

    const TWO_PRODUCTS: &str = r#"
logsources:
  - product: windows
    service: security
    sources: [{channels: [Security]}]
  - product: windows
    category: anything
    sources: [{}]
  - product: windows
    category: process_creation
    sources: [{channels: [Security], event_ids: [4688]}]
  - product: linux
    service: auditd
    sources: [{channels: ["linux:auditd"]}]
  - product: linux
    category: process_creation
    sources: [{channels: ["linux:process_creation"]}, {channels: ["Linux-Sysmon/Operational"], event_ids: [1]}]
  - category: webserver
    sources: [{channels: ["webserver:access"]}]
"#;

    #[test]
    fn windows_rules_without_a_channel_never_take_foreign_channels() {
        let m = LogsourceMap::from_yaml(TWO_PRODUCTS).unwrap();
        let foreign = [
            "linux-sysmon/operational",
            "linux:",
            "linux:auditd",
            "linux:process_creation",
            "webserver:",
            "webserver:access",
        ];
        for s in [
            m.resolve(&ls(Some("windows"), None, None)).unwrap(),
            m.resolve(&ls(Some("windows"), Some("anything"), None))
                .unwrap(),
        ] {
            assert!(s[0].channels.is_empty());
            assert_eq!(s[0].not_channels, foreign);
        }
        // A Windows source that names its channels is left as it is.
        let sec = m
            .resolve(&ls(Some("windows"), None, Some("security")))
            .unwrap();
        assert!(sec[0].not_channels.is_empty());
    }

    #[test]
    fn a_foreign_product_alone_means_its_own_channels_only() {
        let m = LogsourceMap::from_yaml(TWO_PRODUCTS).unwrap();
        let s = m.resolve(&ls(Some("linux"), None, None)).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].channels,
            [
                "linux:auditd",
                "linux:process_creation",
                "Linux-Sysmon/Operational"
            ]
        );
        assert!(s[0].event_ids.is_empty());
        // Product-less entries answer product-less rules, and nothing else.
        let w = m.resolve(&ls(None, Some("webserver"), None)).unwrap();
        assert_eq!(w[0].channels, ["webserver:access"]);
        assert!(m.resolve(&ls(Some("aws"), None, None)).is_none());
        // Two products define process_creation: a rule without a product is unmapped.
        assert!(m
            .resolve(&ls(None, Some("process_creation"), None))
            .is_none());
    }

    #[test]
    fn builtin_map_windows_any_excludes_every_foreign_channel() {
        let m = LogsourceMap::builtin();
        let any = m.resolve(&ls(Some("windows"), None, None)).unwrap();
        let foreign: usize = m
            .entries()
            .iter()
            .filter(|e| !is_windows(e))
            .map(|e| e.sources.iter().map(|s| s.channels.len()).sum::<usize>())
            .sum();
        assert!(any[0].not_channels.len() <= foreign);
        for c in &any[0].not_channels {
            assert!(!c.to_ascii_lowercase().starts_with("microsoft-windows"));
        }
    }
}
