//! Literal prefilter: for each rule, a set of case-folded needles at least
//! one of which must occur in some field of an event for the rule to be
//! able to match. All rules' needles share one Aho-Corasick automaton, run
//! once per event over the case-folded field values; only rules whose
//! needles hit (or that have no usable needle set) are evaluated.
//!
//! The extraction is conservative (it only derives *necessary* literals):
//! `not`, regexes, numbers, `null`, CIDR and field references give no
//! needles; an `and` takes its most selective operand, an `or` needs all
//! operands to have needles and takes their union.

use crate::matcher::{Cond, Det, FieldId, Item, Matcher, StrOp};

/// Needles shorter than this (bytes) are not worth indexing.
const MIN_NEEDLE: usize = 3;

/// `(field, needle)`: the field the needle must occur in (`None`: any
/// field, for keyword selections).
type Needles = Vec<(Option<FieldId>, String)>;

/// Higher is more selective: the shortest needle's length, then fewer needles.
fn quality(n: &Needles) -> (usize, std::cmp::Reverse<usize>) {
    (
        n.iter().map(|(_, s)| s.len()).min().unwrap_or(0),
        std::cmp::Reverse(n.len()),
    )
}

fn best(cands: impl Iterator<Item = Needles>) -> Option<Needles> {
    cands.max_by_key(quality)
}

fn union(parts: impl Iterator<Item = Option<Needles>>) -> Option<Needles> {
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    if out.is_empty() {
        return None;
    }
    out.sort();
    out.dedup();
    Some(out)
}

fn matcher_needle(m: &Matcher) -> Option<String> {
    let Matcher::Str { op, .. } = m else {
        return None;
    };
    let lit: String = match op {
        StrOp::Exact(s) | StrOp::Starts(s) | StrOp::Ends(s) => s.to_string(),
        StrOp::Contains(f) => String::from_utf8(f.needle().to_vec()).ok()?,
        StrOp::Glob(_, Some(l)) => l.to_string(),
        StrOp::Glob(_, None) | StrOp::Any => return None,
    };
    let lit = crate::scan::fold_case(&lit);
    (lit.len() >= MIN_NEEDLE).then_some(lit)
}

fn item_needles(i: &Item) -> Option<Needles> {
    match i {
        Item::Exists { .. } => None,
        Item::Values { negate: true, .. } => None,
        Item::Values {
            matchers,
            all,
            field,
            ..
        } => {
            if *all {
                best(
                    matchers
                        .iter()
                        .filter_map(matcher_needle)
                        .map(|n| vec![(*field, n)]),
                )
            } else {
                union(
                    matchers
                        .iter()
                        .map(|m| matcher_needle(m).map(|n| vec![(*field, n)])),
                )
            }
        }
    }
}

fn det_needles(d: &Det) -> Option<Needles> {
    match d {
        Det::AllOf(items) => best(items.iter().filter_map(item_needles)),
        Det::And(ds) => best(ds.iter().filter_map(det_needles)),
        Det::AnyOf(ds) => union(ds.iter().map(det_needles)),
    }
}

/// The needle set of a rule, or `None` when the rule must always be evaluated.
pub(crate) fn rule_needles(dets: &[Det], cond: &Cond) -> Option<Needles> {
    fn go(c: &Cond, dets: &[Det]) -> Option<Needles> {
        match c {
            Cond::Det(i) => det_needles(&dets[*i]),
            Cond::Not(_) => None,
            Cond::And(cs) => best(cs.iter().filter_map(|c| go(c, dets))),
            Cond::Or(cs) => union(cs.iter().map(|c| go(c, dets))),
            Cond::AtLeast(_, is) => union(is.iter().map(|&i| det_needles(&dets[i]))),
        }
    }
    go(cond, dets)
}
