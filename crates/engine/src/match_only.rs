//! A cheaper equivalent of a `re` pattern for [`Regex::is_match`] alone
//! (issue #22 item 3: the start-up of a warm hunt).
//!
//! A regex only ever asked *whether* it matches somewhere (the matchers
//! never ask where) can lose what does not decide that: in an unanchored
//! search, `P·Q` matches some text exactly when `P` does if `Q` can match
//! the empty string without any assertion, and `P·X{m,n}` exactly when
//! `P·X{m}` does (a match of the longer form has one of the shorter as a
//! prefix; the shorter is one of the longer's forms). The same holds
//! mirrored at the start. SigmaHQ's `-k\s\w{1,64}(?:\s?(?:-p|-s))?`
//! (svchost flags) compiled 64 copies of the Unicode `\w` class in 24 ms;
//! its match-only form `-k\s\w` takes well under a millisecond.
//!
//! [`Regex::is_match`]: regex::Regex::is_match

use regex_syntax::hir::{Hir, HirKind, Repetition};

/// The match-only form of `pattern` (same `regex` defaults: Unicode on, no
/// flags) as pattern text, or `None` when it is the pattern itself or the
/// pattern does not parse (then the caller compiles `pattern` as given).
pub(crate) fn match_only_pattern(pattern: &str) -> Option<String> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let trimmed = trim_start(trim_end(hir.clone()));
    (trimmed != hir).then(|| trimmed.to_string())
}

/// True when `h` can match the empty string at any position: it can match
/// nothing and asserts nothing.
fn droppable(h: &Hir) -> bool {
    h.properties().minimum_len() == Some(0) && h.properties().look_set().is_empty()
}

/// `h` where nothing follows it in the pattern, reduced at its end.
fn trim_end(h: Hir) -> Hir {
    match h.into_kind() {
        HirKind::Concat(mut xs) => {
            while xs.len() > 1 && xs.last().is_some_and(droppable) {
                xs.pop();
            }
            if let Some(last) = xs.pop() {
                xs.push(trim_end(last));
            }
            Hir::concat(xs)
        }
        HirKind::Repetition(r) if r.min >= 1 => shortest(r, trim_end),
        // Groups decide nothing about whether a match exists.
        HirKind::Capture(c) => trim_end(*c.sub),
        // A match through one branch is a match of that branch alone.
        HirKind::Alternation(xs) => Hir::alternation(xs.into_iter().map(trim_end).collect()),
        kind => rebuild(kind),
    }
}

/// `h` where nothing precedes it in the pattern, reduced at its start.
fn trim_start(h: Hir) -> Hir {
    match h.into_kind() {
        HirKind::Concat(xs) => {
            let skip = xs
                .iter()
                .take(xs.len().saturating_sub(1))
                .take_while(|x| droppable(x))
                .count();
            let mut xs: Vec<Hir> = xs.into_iter().skip(skip).collect();
            if !xs.is_empty() {
                let first = trim_start(xs.remove(0));
                xs.insert(0, first);
            }
            Hir::concat(xs)
        }
        HirKind::Repetition(r) if r.min >= 1 => shortest(r, trim_start),
        HirKind::Capture(c) => trim_start(*c.sub),
        HirKind::Alternation(xs) => Hir::alternation(xs.into_iter().map(trim_start).collect()),
        kind => rebuild(kind),
    }
}

/// `X{m,n}` as `X{m}` (`m >= 1`); `X{1}` as `X` reduced further by `more`.
fn shortest(r: Repetition, more: fn(Hir) -> Hir) -> Hir {
    if r.min == 1 {
        more(*r.sub)
    } else {
        Hir::repetition(Repetition {
            min: r.min,
            max: Some(r.min),
            greedy: r.greedy,
            sub: r.sub,
        })
    }
}

/// The expression of `kind`, unchanged.
fn rebuild(kind: HirKind) -> Hir {
    match kind {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(c) => Hir::class(c),
        HirKind::Look(l) => Hir::look(l),
        HirKind::Repetition(r) => Hir::repetition(r),
        HirKind::Capture(c) => Hir::capture(c),
        HirKind::Concat(xs) => Hir::concat(xs),
        HirKind::Alternation(xs) => Hir::alternation(xs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    /// The svchost rule's pattern lost its 64 `\w` copies and optional tail.
    #[test]
    fn svchost_flags_pattern_reduces_to_its_first_word_character() {
        let p = r"-k\s\w{1,64}(?:\s?(?:-p|-s))?";
        let m = match_only_pattern(p).unwrap();
        let (a, b) = (Regex::new(p).unwrap(), Regex::new(&m).unwrap());
        for t in [
            "svchost.exe -k netsvcs -p",
            "svchost.exe -k  x",
            "-k\u{3000}é",
            "-k ",
            "-k -p",
            "",
            "x -K netsvcs",
        ] {
            assert_eq!(a.is_match(t), b.is_match(t), "{t:?} with {m}");
        }
        assert!(m.len() < 40 || !m.contains("{1,64}"), "{m}");
        assert!(!m.contains("64"), "{m}");
    }

    /// Anchors, word boundaries and exact counts stay: they decide.
    #[test]
    fn anchored_and_asserting_patterns_keep_their_ends() {
        for p in [r"^abc$", r"[^/]{100,}$", r"\bfoo\b", r"a{3}", r"(?m)^x\d+$"] {
            let m = match_only_pattern(p);
            if let Some(m) = &m {
                let (a, b) = (Regex::new(p).unwrap(), Regex::new(m).unwrap());
                for t in ["abc", "aaa", "x12", "foo bar", &"q".repeat(120), "aa"] {
                    assert_eq!(a.is_match(t), b.is_match(t), "{p} -> {m} on {t:?}");
                }
            }
        }
        assert_eq!(match_only_pattern(r"^abc$"), None);
        assert_eq!(match_only_pattern(r"\bfoo\b"), None);
        assert_eq!(match_only_pattern("(bad"), None);
    }

    /// Every transformed form agrees with its pattern on texts built from
    /// the patterns' own pieces (a small exhaustive check).
    #[test]
    fn match_only_forms_agree_with_their_patterns() {
        let pats = [
            r"(.){2,}",
            r".{3,}x?",
            r"a+b*",
            r"(?:ab|c{2,4})d?",
            r"x*(?:ab){2,3}",
            r"\d{2,10}\s*",
            r"(a|b+)",
            r"\S+?\w:\S+?:",
            r"(?i)ÉT{2,}",
            r"a\b\w{1,5}",
            r"\w{1,5}\ba",
        ];
        let alphabet = ["a", "b", "c", "d", "x", " ", ":", "1", "é", "É", "t", "T"];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for t in &texts {
                for c in alphabet {
                    next.push(format!("{t}{c}"));
                }
            }
            texts.extend(next.into_iter().step_by(3));
        }
        for p in pats {
            let Some(m) = match_only_pattern(p) else {
                continue;
            };
            let (a, b) = (Regex::new(p).unwrap(), Regex::new(&m).unwrap());
            for t in &texts {
                assert_eq!(a.is_match(t), b.is_match(t), "{p} -> {m} on {t:?}");
            }
        }
    }
}
