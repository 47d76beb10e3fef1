//! Literal prefilter: for each rule, a set of case-folded needles at least
//! one of which must occur in some field of an event for the rule to be
//! able to match. All rules' needles share one Aho-Corasick automaton, run
//! once per event over the case-folded field values; only rules whose
//! needles hit (or that have no usable needle set) are evaluated.
//!
//! The extraction is conservative (it only derives *necessary* literals):
//! `not`, numbers, `null`, CIDR and field references give no needles, a
//! regex only its prefix literals (`regex-syntax`'s extractor); an `and` takes its most selective operand, an `or` needs all
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
    // No cap here: each operand's needles are necessary for it, so their
    // union is, whatever its size (a cap of 64 left 29 SigmaHQ rules with
    // long value lists, e.g. the Nishang/PowerShell commandlet and
    // vulnerable-driver hash rules, evaluated on every event).
    Some(out)
}

/// Most needles one regex may contribute (its prefix literals).
const MAX_REGEX_NEEDLES: usize = 64;

/// The needles one matcher needs (one of them must occur in the value),
/// case-folded, or `None` when it has none worth indexing.
///
/// A `re` value gives the prefix literals `regex-syntax`'s extractor finds
/// (every match starts with one of them, look-arounds taken as matching
/// anywhere, so each is necessary: `ipconfig\s+/all` needs `ipconfig`;
/// under `(?i)` its case variants fold to one), if the set is finite, at
/// most [`MAX_REGEX_NEEDLES`] and none is shorter than [`MIN_NEEDLE`].
/// Folding a necessary literal keeps it necessary on folded text, since
/// events are folded character by character.
fn matcher_needles(m: &Matcher) -> Option<Vec<String>> {
    let lit: String = match m {
        Matcher::Str { op, .. } => match op {
            StrOp::Exact(s) | StrOp::Starts(s) | StrOp::Ends(s) => s.to_string(),
            StrOp::Contains(f) => String::from_utf8(f.needle().to_vec()).ok()?,
            StrOp::Glob(_, Some(l)) | StrOp::Stars(_, Some(l)) => l.to_string(),
            StrOp::Glob(_, None) | StrOp::Stars(_, None) | StrOp::Any => return None,
        },
        Matcher::Regex(re) => return regex_needles(re.as_str()),
        _ => return None,
    };
    let lit = crate::scan::fold_case(&lit);
    (lit.len() >= MIN_NEEDLE).then(|| vec![lit])
}

/// The case-folded prefix literals of a regex (see [`matcher_needles`]).
fn regex_needles(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(lits.len());
    for l in lits {
        let s = std::str::from_utf8(l.as_bytes()).ok()?;
        let f = crate::scan::fold_case(s);
        if f.len() < MIN_NEEDLE {
            return None;
        }
        out.push(f);
    }
    out.sort();
    out.dedup();
    (out.len() <= MAX_REGEX_NEEDLES).then_some(out)
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
            let tag = |ns: Vec<String>| ns.into_iter().map(|n| (*field, n)).collect();
            let any_of = |ms: &[Matcher]| union(ms.iter().map(|m| matcher_needles(m).map(tag)));
            match all {
                // Every value must match, each through one of its variants:
                // a value's needles are the union of its variants'; the item
                // takes the most selective value.
                Some(ends) => best(crate::matcher::value_groups(matchers, ends).filter_map(any_of)),
                None => any_of(matchers),
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

/// The EventIDs one `EventID` matcher accepts on an event whose `EventID`
/// value is canonical (see [`rule_event_ids`]): `Some(ids)` for numeric
/// equality with a whole number and for exact text that is a canonical
/// number (`EventID: 4624` compiles to both), `None` when it could accept
/// other values (ranges, wildcards, regexes…).
fn matcher_event_id(m: &Matcher) -> Option<u32> {
    match m {
        Matcher::Num {
            op: crate::matcher::NumOp::Eq,
            n,
        } if n.fract() == 0.0 && *n >= 0.0 && *n <= f64::from(u32::MAX) => Some(*n as u32),
        Matcher::Str {
            op: StrOp::Exact(s),
            ..
        } => s.parse::<u32>().ok().filter(|id| id.to_string() == **s),
        _ => None,
    }
}

/// Sorted, deduplicated intersection of the `Some` parts (`None` if none).
fn intersect(parts: impl Iterator<Item = Option<Vec<u32>>>) -> Option<Vec<u32>> {
    let mut acc: Option<Vec<u32>> = None;
    for p in parts.flatten() {
        acc = Some(match acc {
            None => p,
            Some(a) => a
                .into_iter()
                .filter(|x| p.binary_search(x).is_ok())
                .collect(),
        });
    }
    acc
}

/// Sorted, deduplicated union; `None` if any part is `None`.
fn union_ids(parts: impl Iterator<Item = Option<Vec<u32>>>) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

fn item_event_ids(i: &Item, eventid: FieldId) -> Option<Vec<u32>> {
    match i {
        Item::Values {
            field: Some(f),
            matchers,
            all: None,
            negate: false,
        } if *f == eventid && !matchers.is_empty() => {
            let mut ids = matchers
                .iter()
                .map(matcher_event_id)
                .collect::<Option<Vec<u32>>>()?;
            ids.sort_unstable();
            ids.dedup();
            Some(ids)
        }
        _ => None,
    }
}

fn det_event_ids(d: &Det, eventid: FieldId) -> Option<Vec<u32>> {
    match d {
        Det::AllOf(items) => intersect(items.iter().map(|i| item_event_ids(i, eventid))),
        Det::And(ds) => intersect(ds.iter().map(|d| det_event_ids(d, eventid))),
        Det::AnyOf(ds) => union_ids(ds.iter().map(|d| det_event_ids(d, eventid))),
    }
}

/// The EventIDs a rule can match at all, or `None` when its detection does
/// not pin them (then it is evaluated on every event of its sources).
///
/// Valid only for an event whose field `eventid` (interned id) occurs once
/// with a canonical whole-number value `e` (`Value::Int`, or text equal to
/// `e`'s decimal form): on such an event the rule can only match if `e` is
/// in the returned (sorted) set. Like [`rule_needles`], the extraction is
/// conservative: `not`, negated or `|all` items, and any matcher other
/// than numeric equality or exact canonical text give no restriction; an
/// `and` intersects its restricted operands, an `or` (and `N of`) needs
/// every operand restricted and takes their union. A set may be empty (a
/// rule that cannot match a canonical EventID).
pub(crate) fn rule_event_ids(dets: &[Det], cond: &Cond, eventid: FieldId) -> Option<Vec<u32>> {
    fn go(c: &Cond, dets: &[Det], e: FieldId) -> Option<Vec<u32>> {
        match c {
            Cond::Det(i) => det_event_ids(&dets[*i], e),
            Cond::Not(_) => None,
            Cond::And(cs) => intersect(cs.iter().map(|c| go(c, dets, e))),
            Cond::Or(cs) => union_ids(cs.iter().map(|c| go(c, dets, e))),
            Cond::AtLeast(0, _) => None,
            Cond::AtLeast(_, is) => union_ids(is.iter().map(|&i| det_event_ids(&dets[i], e))),
        }
    }
    go(cond, dets, eventid)
}

#[cfg(test)]
mod tests {
    use super::regex_needles;

    /// Hostile property test (breaker): random regexes built from the
    /// constructs that could make a match start without an extracted
    /// literal (`(?i)`/`(?-i)` groups, `(?x)` whitespace, `(?m)^`, `\b`,
    /// empty alternation branches, optional and counted repeats, classes,
    /// look-arounds, escapes) over letters whose case folding changes
    /// length or is context-dependent (`İ`, `ẞ`, `Σ`, Kelvin sign, `ſ`):
    /// whenever the `regex` crate matches a text, one of the needles
    /// occurs in the text folded as events are.
    #[test]
    fn regex_needles_are_necessary_for_random_patterns() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        const ATOMS: [&str; 24] = [
            "ab", "abc", "k", "K", "\u{212A}", "ſ", "s", "S", "İ", "i", "I", "ẞ", "ß", "Σ", "σ",
            "ς", "\\.", "\\s", "\\w", ".", "[a-c]", "[İi]", "\x41", " ",
        ];
        fn gen(next: &mut impl FnMut(usize) -> usize, depth: usize) -> String {
            let atom = |next: &mut dyn FnMut(usize) -> usize| ATOMS[next(ATOMS.len())].to_string();
            let mut out = String::new();
            for _ in 0..1 + next(4) {
                let part = if depth > 0 && next(3) == 0 {
                    let inner = gen(next, depth - 1);
                    match next(9) {
                        0 => format!("(?i:{inner})"),
                        1 => format!("(?-i:{inner})"),
                        2 => format!("({inner}|)"),
                        3 => format!("(|{inner})"),
                        4 => format!("({inner}|{})", gen(next, depth - 1)),
                        5 => format!("(?:{inner})?"),
                        6 => format!("(?:{inner}){{0,2}}"),
                        7 => format!("(?x: {inner} )"),
                        _ => format!("(?:{inner})+"),
                    }
                } else {
                    let a = atom(next);
                    match next(12) {
                        0 => format!("{a}?"),
                        1 => format!("{a}*"),
                        2 => format!("\\b{a}"),
                        3 => format!("(?m:^){a}"),
                        4 => format!("{a}$"),
                        5 => format!("\\B{a}"),
                        _ => a,
                    }
                };
                out.push_str(&part);
            }
            out
        }
        const TEXT: [&str; 20] = [
            "a", "b", "c", "k", "K", "\u{212A}", "ſ", "s", "S", "İ", "i", "I", "ẞ", "ß", "Σ", "σ",
            "ς", " ", "\n", ".",
        ];
        let (mut with_needles, mut matched) = (0, 0);
        for _ in 0..4000 {
            let flags = ["", "(?i)", "(?m)", "(?s)", "(?i)(?m)", "(?x)"][next(6)];
            let pat = format!("{flags}{}", gen(&mut next, 2));
            let Ok(re) = regex::Regex::new(&pat) else {
                continue;
            };
            let Some(needles) = regex_needles(&pat) else {
                continue;
            };
            with_needles += 1;
            for _ in 0..60 {
                let mut t = String::new();
                for _ in 0..next(12) {
                    t.push_str(TEXT[next(TEXT.len())]);
                }
                if !re.is_match(&t) {
                    continue;
                }
                matched += 1;
                let folded = crate::scan::fold_case(&t);
                assert!(
                    needles.iter().any(|n| folded.contains(n.as_str())),
                    "{pat:?} matches {t:?} (folded {folded:?}) without any of {needles:?}"
                );
            }
        }
        assert!(with_needles > 300, "{with_needles}");
        assert!(matched > 300, "{matched}");
    }

    /// Regression (breaker): `union` capped a rule's needles at 64 (the
    /// cap meant for one regex's literals), so a rule listing 100
    /// `contains` values lost its prefilter and was evaluated on every
    /// event of its logsource (29 SigmaHQ rules, 3,614 -> 3,585
    /// prefiltered).
    #[test]
    fn long_value_lists_keep_their_prefilter() {
        let values: String = (0..100)
            .map(|i| format!("      - 'needle{i:03}'\n"))
            .collect();
        let yaml = format!("title: L\nid: 00000000-0000-4000-8000-0000000000ee\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n  sel:\n    CommandLine|contains:\n{values}  condition: sel\nlevel: high\n");
        let f = tracehunt_sigma::load_rules("l.yml", &yaml);
        let (rs, d) = crate::compile(f.rules, &crate::CompileOptions::default());
        assert!(d.is_empty(), "{d:?}");
        assert!(rs.prefiltered[0]);
        let ns = super::rule_needles(&rs.rules[0].dets, &rs.rules[0].cond).unwrap();
        assert_eq!(ns.len(), 100);
    }

    /// SigmaHQ `re` values: the prefix literals every match starts with,
    /// case-folded; none when a match can start anywhere or with too short
    /// a literal.
    #[test]
    fn regex_prefix_literals_become_needles() {
        let v = |p: &str| regex_needles(p);
        assert_eq!(v(r"ipconfig\s+/all"), Some(vec!["ipconfig".into()]));
        assert_eq!(
            v(r"\$PSHome\[\s*\d{1,3}\s*\]\s*\+\s*\$PSHome\["),
            Some(vec!["$pshome[".into()])
        );
        // Case variants of `(?i)` fold to one needle (the extractor may cut
        // it short to bound the variants: `werfaul`).
        let ci = v(r"(?i)werfault\.exe\s").unwrap();
        assert_eq!(ci.len(), 1, "{ci:?}");
        assert!(
            ci[0].len() >= 5 && "werfault.exe".starts_with(&ci[0]),
            "{ci:?}"
        );
        assert_eq!(
            v("net\\s+(config|view)|arp -a"),
            Some(vec!["arp -a".into(), "net".into()])
        );
        assert_eq!(v(r"\w+`(?:\w+|-|.)`"), None);
        assert_eq!(v(r"^.{200,}$"), None);
        assert_eq!(v(r"ab\d+"), None);
        assert_eq!(v(r"(unclosed"), None);
    }
}
