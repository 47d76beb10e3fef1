//! Compiled value matchers and detection trees, and their evaluation.

use crate::persist::LazyRegex;
use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use tracehunt_event::Value;

/// Interned field-name id (index into the ruleset's name table).
pub(crate) type FieldId = u32;

/// How a literal compares against a (possibly case-folded) value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum StrOp {
    Exact(Box<str>),
    /// Substring search with a precompiled `memchr` finder.
    Contains(crate::persist::LazyFinder),
    Starts(Box<str>),
    Ends(Box<str>),
    /// `*` alone: any present value (also empty).
    Any,
    /// A wildcard pattern with inner `*`/`?`, as an anchored regex, with
    /// its longest literal run (case-folded unless cased) for prefiltering.
    Glob(LazyRegex, Option<Box<str>>),
    /// A wildcard pattern with inner `*` and no `?`: its literal runs
    /// between the stars (the first and last may be empty: a leading or
    /// trailing star), matched without a regex ([`stars_match`]), and its
    /// longest run as for `Glob`.
    Stars(Box<[Box<str>]>, Option<Box<str>>),
}

/// Does `s` match `parts[0]*parts[1]*…*parts[n-1]` (`n >= 2`, `*` any
/// text)? As the anchored regex `(?s)^p0.*p1.*…$` would: `s` starts with
/// the first run and ends with the last, without overlap, and the inner
/// runs occur in order in between; taking each at its leftmost occurrence
/// leaves the most room for the next, so one left-to-right pass decides
/// (linear in `s`). Byte positions found for whole UTF-8 runs in UTF-8
/// text are character boundaries.
pub(crate) fn stars_match(parts: &[Box<str>], s: &str) -> bool {
    let (Some((first, rest)), true) = (parts.split_first(), parts.len() >= 2) else {
        return parts.first().is_some_and(|p| **p == *s);
    };
    let Some((last, inner)) = rest.split_last() else {
        return false;
    };
    let Some(mid) = s.strip_prefix(&**first) else {
        return false;
    };
    let Some(mut hay) = mid.strip_suffix(&**last) else {
        return false;
    };
    for p in inner {
        match memchr::memmem::find(hay.as_bytes(), p.as_bytes()) {
            Some(i) => hay = &hay[i + p.len()..],
            None => return false,
        }
    }
    true
}

/// Numeric comparison operator (`gt`, `gte`, `lt`, `lte`, plain equality).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum NumOp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// Date part for the `minute`…`year` modifiers.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// Mode of a `fieldref` comparison.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) enum RefMode {
    Exact,
    Contains,
    Starts,
    Ends,
}

/// One compiled value of a detection item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Matcher {
    /// String comparison; `cased == false` means the needle is lower-case and
    /// compares against the lower-cased value.
    Str { op: StrOp, cased: bool },
    /// A `re` value (Rust `regex`: linear time, no backtracking).
    Regex(LazyRegex),
    /// A number: compares numerically when the value is numeric, otherwise
    /// (for `Eq`) textually.
    Num { op: NumOp, n: f64 },
    /// `cidr`: the value parses as an IP inside the network.
    Cidr(#[serde(with = "crate::persist::ipnet_text")] IpNet),
    /// `null`: the field is absent or empty.
    Null,
    /// `fieldref`: compare against another field of the same event.
    FieldRef {
        other: FieldId,
        mode: RefMode,
        cased: bool,
    },
    /// Time-part modifiers: the value parsed as a timestamp.
    Time { part: TimePart, op: NumOp, n: f64 },
    /// Never matches (e.g. an `expand` placeholder without a value).
    Never,
}

/// A compiled `field|modifiers: values` item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Item {
    /// Field (or `None` = keyword search over every field) with values: OR
    /// over values, or AND when `all`. `neq` negates the whole item.
    ///
    /// One value may compile to several matchers, its variants (`windash`
    /// dashes, `base64offset` offsets, `expand` values, a number's numeric
    /// and text forms): the value matches when any of them does, also under
    /// `all` (pySigma's `SigmaExpansion` is an OR inside the AND).
    Values {
        field: Option<FieldId>,
        /// The matchers of every value, value after value.
        matchers: Vec<Matcher>,
        /// `|all`: where each value's variants end in `matchers`
        /// (exclusive, ascending, the last one `matchers.len()`): every
        /// value must match through one of its variants. `None`: any
        /// matcher matching is enough.
        all: Option<Box<[u32]>>,
        negate: bool,
    },
    /// `field|exists: bool`.
    Exists { field: FieldId, want: bool },
}

/// A compiled named detection (search identifier).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Det {
    /// A map: every item must match.
    AllOf(Vec<Item>),
    /// A list of maps: any must match.
    AnyOf(Vec<Det>),
    /// Conjunction of blocks.
    And(Vec<Det>),
}

impl Matcher {
    /// Drops what was built on first use (regex, substring finder).
    fn release(&mut self) {
        match self {
            Matcher::Regex(re)
            | Matcher::Str {
                op: StrOp::Glob(re, _),
                ..
            } => re.release(),
            Matcher::Str {
                op: StrOp::Contains(f),
                ..
            } => f.release(),
            _ => {}
        }
    }
}

impl Det {
    /// Drops what the matchers of this detection built on first use.
    pub(crate) fn release(&mut self) {
        match self {
            Det::AllOf(items) => {
                for item in items {
                    if let Item::Values { matchers, .. } = item {
                        matchers.iter_mut().for_each(Matcher::release);
                    }
                }
            }
            Det::AnyOf(ds) | Det::And(ds) => ds.iter_mut().for_each(Det::release),
        }
    }
}

/// A compiled condition over the rule's named detections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Cond {
    Det(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// `N of pattern`: at least `n` of the listed detections.
    AtLeast(usize, Vec<usize>),
}

/// Per-event view the matchers evaluate against: field positions by
/// interned id and case-folded values computed at most once.
pub(crate) trait EventView {
    /// Positions of field `id` in the event (possibly empty).
    fn positions(&self, id: FieldId) -> &[u32];
    /// Every field position.
    fn all_positions(&self) -> std::ops::Range<u32>;
    /// The raw value at a position.
    fn value(&self, pos: u32) -> &Value;
    /// The value's text at a position, as is.
    fn text(&self, pos: u32) -> &str;
    /// The value's text at a position, lower-cased.
    fn lower(&self, pos: u32) -> &str;
}

fn str_op(op: &StrOp, s: &str) -> bool {
    match op {
        StrOp::Exact(n) => s == &**n,
        StrOp::Contains(f) => f.find(s.as_bytes()).is_some(),
        StrOp::Starts(n) => s.starts_with(&**n),
        StrOp::Ends(n) => s.ends_with(&**n),
        StrOp::Any => true,
        StrOp::Glob(re, _) => re.is_match(s),
        StrOp::Stars(parts, _) => stars_match(parts, s),
    }
}

fn num_cmp(op: NumOp, v: f64, n: f64) -> bool {
    match op {
        NumOp::Eq => v == n,
        NumOp::Gt => v > n,
        NumOp::Gte => v >= n,
        NumOp::Lt => v < n,
        NumOp::Lte => v <= n,
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    None
}

impl Matcher {
    /// Does the value at `pos` match? (`Null` is handled by the caller.)
    /// `remap` is the event source's field renaming, which a `fieldref`'s
    /// other field goes through like the item's own (`Image|fieldref:
    /// ParentImage` reads `ParentProcessName` on Security 4688).
    fn matches_at<V: EventView>(
        &self,
        view: &V,
        pos: u32,
        remap: &dyn Fn(FieldId) -> FieldId,
    ) -> bool {
        match self {
            Matcher::Str { op, cased } => {
                if let StrOp::Any = op {
                    return true;
                }
                let s = if *cased {
                    view.text(pos)
                } else {
                    view.lower(pos)
                };
                str_op(op, s)
            }
            Matcher::Regex(re) => re.is_match(view.text(pos)),
            Matcher::Num { op, n } => {
                let v = view.value(pos);
                match v.as_f64() {
                    Some(x) => num_cmp(*op, x, *n),
                    None => false,
                }
            }
            Matcher::Cidr(net) => view
                .text(pos)
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| net.contains(&ip)),
            Matcher::Null => view.value(pos).is_null_or_empty(),
            Matcher::FieldRef { other, mode, cased } => {
                let mine = if *cased {
                    view.text(pos)
                } else {
                    view.lower(pos)
                };
                view.positions(remap(*other)).iter().any(|&o| {
                    let theirs = if *cased { view.text(o) } else { view.lower(o) };
                    match mode {
                        RefMode::Exact => mine == theirs,
                        RefMode::Contains => mine.contains(theirs),
                        RefMode::Starts => mine.starts_with(theirs),
                        RefMode::Ends => mine.ends_with(theirs),
                    }
                })
            }
            Matcher::Time { part, op, n } => {
                let Some(t) = parse_time(view.text(pos).trim()) else {
                    return false;
                };
                let x = match part {
                    TimePart::Minute => t.minute(),
                    TimePart::Hour => t.hour(),
                    TimePart::Day => t.day(),
                    TimePart::Week => t.iso_week().week(),
                    TimePart::Month => t.month(),
                    TimePart::Year => t.year() as u32,
                };
                num_cmp(*op, f64::from(x), *n)
            }
            Matcher::Never => false,
        }
    }
}

impl Item {
    pub(crate) fn eval<V: EventView>(&self, view: &V, remap: &dyn Fn(FieldId) -> FieldId) -> bool {
        match self {
            Item::Exists { field, want } => {
                let id = remap(*field);
                view.positions(id).is_empty() != *want
            }
            Item::Values {
                field,
                matchers,
                all,
                negate,
            } => {
                let one = |m: &Matcher, view: &V| -> bool {
                    match field {
                        Some(f) => {
                            let positions = view.positions(remap(*f));
                            if let Matcher::Null = m {
                                return positions.iter().all(|&p| view.value(p).is_null_or_empty());
                            }
                            positions.iter().any(|&p| m.matches_at(view, p, remap))
                        }
                        None => {
                            if let Matcher::Null = m {
                                return false;
                            }
                            view.all_positions().any(|p| m.matches_at(view, p, remap))
                        }
                    }
                };
                let r = match all {
                    Some(ends) => {
                        !ends.is_empty()
                            && value_groups(matchers, ends)
                                .all(|variants| variants.iter().any(|m| one(m, view)))
                    }
                    None => matchers.iter().any(|m| one(m, view)),
                };
                r != *negate
            }
        }
    }
}

/// The matchers of each value of an `|all` item (see [`Item::Values`]):
/// `matchers` cut at `ends`.
pub(crate) fn value_groups<'a>(
    matchers: &'a [Matcher],
    ends: &'a [u32],
) -> impl Iterator<Item = &'a [Matcher]> + 'a {
    let mut start = 0usize;
    ends.iter().map(move |&end| {
        let end = (end as usize).clamp(start, matchers.len());
        let group = &matchers[start..end];
        start = end;
        group
    })
}

/// `field` through `ids` (a rule's own field ids → the ruleset's); an id
/// outside `ids` (none is) stays as it is.
fn renumber(field: &mut FieldId, ids: &[FieldId]) {
    if let Some(&to) = ids.get(*field as usize) {
        *field = to;
    }
}

impl Item {
    /// Renumbers every field id this item names (its field, a `fieldref`'s
    /// other field) through `ids` ([`renumber`]).
    pub(crate) fn renumber_fields(&mut self, ids: &[FieldId]) {
        match self {
            Item::Exists { field, .. } => renumber(field, ids),
            Item::Values {
                field, matchers, ..
            } => {
                if let Some(f) = field {
                    renumber(f, ids);
                }
                for m in matchers {
                    if let Matcher::FieldRef { other, .. } = m {
                        renumber(other, ids);
                    }
                }
            }
        }
    }
}

impl Det {
    /// Renumbers the field ids of every item ([`Item::renumber_fields`]).
    pub(crate) fn renumber_fields(&mut self, ids: &[FieldId]) {
        match self {
            Det::AllOf(items) => items.iter_mut().for_each(|i| i.renumber_fields(ids)),
            Det::AnyOf(ds) | Det::And(ds) => ds.iter_mut().for_each(|d| d.renumber_fields(ids)),
        }
    }

    pub(crate) fn eval<V: EventView>(&self, view: &V, remap: &dyn Fn(FieldId) -> FieldId) -> bool {
        match self {
            Det::AllOf(items) => items.iter().all(|i| i.eval(view, remap)),
            Det::AnyOf(ds) => ds.iter().any(|d| d.eval(view, remap)),
            Det::And(ds) => ds.iter().all(|d| d.eval(view, remap)),
        }
    }
}

impl Cond {
    /// Evaluates with memoised detection results (`memo[i]`: 0 unknown,
    /// 1 false, 2 true).
    pub(crate) fn eval<V: EventView>(
        &self,
        dets: &[Det],
        memo: &mut [u8],
        view: &V,
        remap: &dyn Fn(FieldId) -> FieldId,
    ) -> bool {
        let det = |i: usize, view: &V, memo: &mut [u8]| -> bool {
            if memo[i] == 0 {
                memo[i] = if dets[i].eval(view, remap) { 2 } else { 1 };
            }
            memo[i] == 2
        };
        match self {
            Cond::Det(i) => det(*i, view, memo),
            Cond::Not(c) => !c.eval(dets, memo, view, remap),
            Cond::And(cs) => cs.iter().all(|c| c.eval(dets, memo, view, remap)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(dets, memo, view, remap)),
            Cond::AtLeast(n, is) => {
                let mut hits = 0;
                for &i in is {
                    if det(i, view, memo) {
                        hits += 1;
                        if hits >= *n {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }
}
