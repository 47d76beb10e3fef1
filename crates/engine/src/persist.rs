//! Serialisation support for a compiled [`Ruleset`](crate::Ruleset) (issue
//! #22: the cached compiled ruleset).
//!
//! Every compiled type derives serde's `Serialize`/`Deserialize`, so a new
//! field only needs to be added to its struct. What cannot be serialised is
//! rebuilt when first needed instead of being stored:
//!
//! * regexes (`re` values and wildcard patterns) are kept as their pattern
//!   text and size limit ([`LazyRegex`]): a freshly compiled set holds the
//!   regex it validated, a deserialised one compiles it on first use
//!   (the pattern compiled once already, with the same `regex` version,
//!   when the set was built: the cache key names the build);
//! * `memchr` substring finders are built from their needle on first use
//!   ([`LazyFinder`]), fresh or deserialised;
//! * the prefilter's needle automata (`aho-corasick` has no serde support)
//!   are built on first use by a scanner (`NeedleIndex::search`), both for
//!   fresh and deserialised sets.
//!
//! [`RuleMeta`] is serialised through [`meta`] (its JSON form for reports
//! skips `excluded` when absent and its `level` is a `&'static str`, which
//! a non-self-describing format such as postcard cannot round-trip).

use crate::compile::{RuleMeta, Ruleset};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::OnceLock;

/// A regex kept with its pattern: compiled at most once, on first use when
/// it was deserialised. A pattern that fails to compile (impossible for a
/// pattern the same build compiled before) never matches.
#[derive(Debug, Clone)]
pub(crate) struct LazyRegex {
    pattern: Box<str>,
    size_limit: usize,
    re: OnceLock<Option<Regex>>,
}

impl LazyRegex {
    /// Compiles `pattern` now (rule compilation: errors are diagnostics).
    pub(crate) fn new(pattern: &str, size_limit: usize) -> Result<LazyRegex, regex::Error> {
        let re = RegexBuilder::new(pattern).size_limit(size_limit).build()?;
        Ok(LazyRegex {
            pattern: pattern.into(),
            size_limit,
            re: OnceLock::from(Some(re)),
        })
    }

    /// The pattern text.
    pub(crate) fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Drops the compiled regex, if any; [`LazyRegex::is_match`] compiles
    /// it again when next called.
    pub(crate) fn release(&mut self) {
        self.re = OnceLock::new();
    }

    /// `Regex::is_match`, compiling the regex first if needed: its
    /// match-only form ([`crate::match_only`]), which matches the same
    /// texts, cheaper to build (the pattern itself was validated when the
    /// set was compiled; should the form not build, the pattern is used).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.re
            .get_or_init(|| {
                let build = |p: &str| RegexBuilder::new(p).size_limit(self.size_limit).build();
                crate::match_only::match_only_pattern(&self.pattern)
                    .and_then(|p| build(&p).ok())
                    .or_else(|| build(&self.pattern).ok())
            })
            .as_ref()
            .is_some_and(|re| re.is_match(text))
    }
}

impl Serialize for LazyRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&*self.pattern, self.size_limit as u64).serialize(s)
    }
}

impl<'de> Deserialize<'de> for LazyRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (pattern, size_limit) = <(String, u64)>::deserialize(d)?;
        Ok(LazyRegex {
            pattern: pattern.into(),
            size_limit: usize::try_from(size_limit).map_err(serde::de::Error::custom)?,
            re: OnceLock::new(),
        })
    }
}

/// A `memchr` substring finder built on first use from its needle (a
/// `contains` value): SigmaHQ has tens of thousands, most of which never
/// meet an event of their logsource in a given hunt; building them all took
/// a tenth of a warm start. Stored as its needle.
///
/// The finder sits behind its own box, built only when first used: held
/// inline, every needle carried a finder's size (about 200 bytes) whether
/// or not it was ever searched for — 11 MB of the 3,754 SigmaHQ rules' peak
/// heap (issue #22, memory).
#[derive(Debug, Clone)]
pub(crate) struct LazyFinder {
    needle: Box<[u8]>,
    finder: OnceLock<Box<memchr::memmem::Finder<'static>>>,
}

impl LazyFinder {
    pub(crate) fn new(needle: &[u8]) -> LazyFinder {
        LazyFinder {
            needle: needle.into(),
            finder: OnceLock::new(),
        }
    }

    /// The needle.
    pub(crate) fn needle(&self) -> &[u8] {
        &self.needle
    }

    /// Drops the finder, if built; [`LazyFinder::find`] builds it again.
    pub(crate) fn release(&mut self) {
        self.finder = OnceLock::new();
    }

    /// Where the needle first occurs in `haystack`.
    pub(crate) fn find(&self, haystack: &[u8]) -> Option<usize> {
        self.finder
            .get_or_init(|| Box::new(memchr::memmem::Finder::new(&self.needle).into_owned()))
            .find(haystack)
    }
}

impl Serialize for LazyFinder {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.needle().serialize(s)
    }
}

impl<'de> Deserialize<'de> for LazyFinder {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(LazyFinder::new(&Vec::<u8>::deserialize(d)?))
    }
}

/// serde `with` module for an `ipnet::IpNet`, stored as its text.
pub(crate) mod ipnet_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(n: &ipnet::IpNet, s: S) -> Result<S::Ok, S::Error> {
        n.to_string().serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ipnet::IpNet, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// [`RuleMeta`] with owned text, in a fixed field order (the cache form).
#[derive(Serialize, Deserialize)]
struct MetaRepr {
    id: String,
    title: String,
    name: Option<String>,
    level_rank: u8,
    status: Option<String>,
    description: Option<String>,
    author: Option<String>,
    tags: Vec<String>,
    techniques: Vec<String>,
    tactics: Vec<String>,
    groups: Vec<String>,
    software: Vec<String>,
    file: String,
    line: u32,
    active: bool,
    excluded: Option<String>,
    product: Option<String>,
    category: Option<String>,
    service: Option<String>,
}

/// serde `with` module for one [`RuleMeta`] in the compact cache form
/// (`#[serde(with = "tracehunt_engine::persist::meta")]`). Deserialising
/// fails on a level rank above 4 or an unknown exclusion reason.
pub mod meta {
    use super::*;

    /// Writes `m` (all fields, in declaration order).
    pub fn serialize<S: Serializer>(m: &RuleMeta, s: S) -> Result<S::Ok, S::Error> {
        MetaRepr {
            id: m.id.clone(),
            title: m.title.clone(),
            name: m.name.clone(),
            level_rank: m.level_rank,
            status: m.status.clone(),
            description: m.description.clone(),
            author: m.author.clone(),
            tags: m.tags.clone(),
            techniques: m.techniques.clone(),
            tactics: m.tactics.clone(),
            groups: m.groups.clone(),
            software: m.software.clone(),
            file: m.file.clone(),
            line: m.line,
            active: m.active,
            excluded: m.excluded.map(str::to_owned),
            product: m.product.clone(),
            category: m.category.clone(),
            service: m.service.clone(),
        }
        .serialize(s)
    }

    /// Reads a [`RuleMeta`] written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RuleMeta, D::Error> {
        use crate::select::reason;
        let r = MetaRepr::deserialize(d)?;
        let level = crate::compile::LEVEL_WORDS
            .get(usize::from(r.level_rank))
            .copied()
            .ok_or_else(|| serde::de::Error::custom("level rank out of range"))?;
        let excluded = match r.excluded.as_deref() {
            None => None,
            Some(x) => Some(
                [
                    reason::STATUS,
                    reason::TAG,
                    reason::ID,
                    reason::NOISY,
                    reason::LEVEL,
                ]
                .into_iter()
                .find(|k| *k == x)
                .ok_or_else(|| serde::de::Error::custom("unknown exclusion reason"))?,
            ),
        };
        Ok(RuleMeta {
            id: r.id,
            title: r.title,
            name: r.name,
            level,
            level_rank: r.level_rank,
            status: r.status,
            description: r.description,
            author: r.author,
            tags: r.tags,
            techniques: r.techniques,
            tactics: r.tactics,
            groups: r.groups,
            software: r.software,
            // Names resolve against the ATT&CK knowledge base after every load
            // (`Loaded::resolve_names`), so they are not cached.
            named: Vec::new(),
            file: r.file,
            line: r.line,
            active: r.active,
            excluded,
            product: r.product,
            category: r.category,
            service: r.service,
        })
    }
}

/// serde `with` module for a `Vec<RuleMeta>` (see [`meta`]).
pub(crate) mod metas {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct One(#[serde(with = "meta")] RuleMeta);

    #[derive(Serialize)]
    struct Ref<'a>(#[serde(serialize_with = "ser_ref")] &'a RuleMeta);

    fn ser_ref<S: Serializer>(m: &&RuleMeta, s: S) -> Result<S::Ok, S::Error> {
        meta::serialize(m, s)
    }

    pub(crate) fn serialize<S: Serializer>(v: &[RuleMeta], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(Ref))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RuleMeta>, D::Error> {
        Ok(Vec::<One>::deserialize(d)?
            .into_iter()
            .map(|o| o.0)
            .collect())
    }
}

impl Ruleset {
    /// Checks the internal consistency of a deserialised set (per-rule
    /// tables of equal length, rule, field and needle indices in range), so
    /// that a cache written by another build or damaged in a way its
    /// checksum missed is refused instead of making a scanner panic.
    ///
    /// # Errors
    /// A text naming the first inconsistency found.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.rules.len();
        let names = self.name_count;
        let same = [
            self.prefiltered.len(),
            self.any_field.len(),
            self.rule_fields.len(),
            self.event_ids.len(),
        ];
        if same.iter().any(|&l| l != n) || self.meta.len() < n {
            return Err(format!("per-rule tables disagree with {n} rules"));
        }
        if self.names.len() != names
            || self.is_virtual.len() != names
            || self.padded.len() != names
            || (self.field_prefilter.len() != names && !self.field_prefilter.is_empty())
            || self.names.values().any(|&id| id as usize >= names)
            || self.eventid_field.is_some_and(|id| id as usize >= names)
        {
            return Err(format!("field tables disagree with {names} names"));
        }
        for s in &self.sources {
            let fields_ok = s
                .remap
                .iter()
                .all(|(a, b)| (*a as usize) < names && (*b as usize) < names)
                && s.derived.iter().all(|d| {
                    (d.to as usize) < names && d.from.iter().all(|f| (*f as usize) < names)
                });
            if !fields_ok || s.rules.iter().any(|&r| r as usize >= n) {
                return Err("an event source names a rule or field out of range".into());
            }
        }
        if self
            .rule_fields
            .iter()
            .any(|fs| fs.iter().any(|&f| f as usize >= self.field_prefilter.len()))
        {
            return Err("a rule names a prefilter field out of range".into());
        }
        let mut base = 0;
        for idx in self
            .field_prefilter
            .iter()
            .chain([&self.kw_prefilter])
            .flatten()
        {
            if idx.base != base
                || idx.rules.len() != idx.needles.len()
                || idx.rules.iter().flatten().any(|&r| r as usize >= n)
            {
                return Err("a needle index is inconsistent".into());
            }
            base += idx.rules.len();
        }
        if base != self.needle_count {
            return Err("needle count disagrees with the needle indices".into());
        }
        for r in &self.rules {
            r.check(names)?;
        }
        Ok(())
    }
}

impl crate::compile::CompiledRule {
    /// Field ids below `names`, condition references to existing detections.
    fn check(&self, names: usize) -> Result<(), String> {
        use crate::matcher::{Cond, Det, Item, Matcher};
        fn det(d: &Det, names: usize) -> bool {
            match d {
                Det::AllOf(items) => items.iter().all(|i| match i {
                    Item::Values {
                        field, matchers, ..
                    } => {
                        field.is_none_or(|f| (f as usize) < names)
                            && matchers.iter().all(|m| match m {
                                Matcher::FieldRef { other, .. } => (*other as usize) < names,
                                _ => true,
                            })
                    }
                    Item::Exists { field, .. } => (*field as usize) < names,
                }),
                Det::AnyOf(v) | Det::And(v) => v.iter().all(|d| det(d, names)),
            }
        }
        fn cond(c: &Cond, dets: usize) -> bool {
            match c {
                Cond::Det(i) => *i < dets,
                Cond::Not(c) => cond(c, dets),
                Cond::And(v) | Cond::Or(v) => v.iter().all(|c| cond(c, dets)),
                Cond::AtLeast(_, v) => v.iter().all(|i| *i < dets),
            }
        }
        if self.dets.iter().all(|d| det(d, names)) && cond(&self.cond, self.dets.len()) {
            Ok(())
        } else {
            Err("a rule names a field or detection out of range".into())
        }
    }
}
