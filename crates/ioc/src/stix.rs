//! STIX 2.1 bundles: `indicator` objects with STIX patterns (STIX 2.1 §9 "STIX Patterning"),
//! tied to actors through `indicates` relationships (§5.8 / §4.7).

use std::collections::HashMap;

use serde_json::Value;

use crate::{
    normalise, unusable_ip, Actor, FeedFormat, IocSetBuilder, IocSource, LoadReport, Origin,
};

/// Most AND/OR clauses one indicator may expand to.
const MAX_CLAUSES: usize = 64;

/// Most nested parentheses / brackets one pattern may use (the parser is recursive).
const MAX_DEPTH: usize = 32;

/// Most terms one AND-clause may have.
const MAX_TERMS: usize = 64;

pub(crate) fn load(b: &mut IocSetBuilder, bundle: &Value, origin: &str) -> LoadReport {
    let mut report = LoadReport::new(FeedFormat::Stix);
    let objects: &[Value] = bundle
        .get("objects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let by_id: HashMap<&str, &Value> = objects
        .iter()
        .filter_map(|o| Some((o.get("id")?.as_str()?, o)))
        .collect();
    let rels: Vec<(&str, &str, &str)> = objects
        .iter()
        .filter(|o| o.get("type").and_then(Value::as_str) == Some("relationship"))
        .filter_map(|o| {
            Some((
                o.get("relationship_type")?.as_str()?,
                o.get("source_ref")?.as_str()?,
                o.get("target_ref")?.as_str()?,
            ))
        })
        .collect();
    // Relationships by (type, source), so that each indicator's actors are
    // found without scanning every relationship (linear in the bundle).
    let mut rels_from: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for &(rt, src, dst) in &rels {
        rels_from.entry((rt, src)).or_default().push(dst);
    }
    let type_of = |id: &str| id.split("--").next().unwrap_or_default().to_owned();
    let actor_of = |id: &str| -> Option<Actor> {
        let o = by_id.get(id)?;
        let name = o.get("name")?.as_str()?;
        let aliases: Vec<String> = o
            .get("aliases")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut a = Actor::new(name, &aliases);
        let ext = o
            .get("external_references")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|r| r.get("source_name").and_then(Value::as_str) == Some("mitre-attack"))
            .and_then(|r| r.get("external_id")?.as_str());
        if let Some(g) = ext.filter(|g| g.starts_with('G')) {
            a.attack_id = Some(g.to_owned());
        }
        Some(a)
    };
    let is_actor = |id: &str| matches!(type_of(id).as_str(), "intrusion-set" | "threat-actor");

    for o in objects {
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        if o.get("revoked").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        report.entries += 1;
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("indicator--?");
        let pattern_type = o
            .get("pattern_type")
            .and_then(Value::as_str)
            .unwrap_or("stix");
        if pattern_type != "stix" {
            report.diagnostics.push(format!(
                "{id}: pattern_type {pattern_type:?} not supported (only \"stix\")"
            ));
            report.skip("unsupported pattern");
            continue;
        }
        let Some(pattern) = o.get("pattern").and_then(Value::as_str) else {
            report.diagnostics.push(format!("{id}: no pattern"));
            report.skip("unsupported pattern");
            continue;
        };
        let clauses = match parse_pattern(pattern) {
            Ok(c) => c,
            Err(e) => {
                report
                    .diagnostics
                    .push(format!("{id}: unsupported pattern `{pattern}`: {e}"));
                report.skip("unsupported pattern");
                continue;
            }
        };
        // Actors: indicates → intrusion-set / threat-actor, or → campaign attributed-to one.
        let mut actors: Vec<Actor> = Vec::new();
        let indicated = rels_from
            .get(&("indicates", id))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for &dst in indicated {
            let mut targets = vec![dst];
            if type_of(dst) == "campaign" {
                targets.extend(
                    rels_from
                        .get(&("attributed-to", dst))
                        .into_iter()
                        .flatten()
                        .copied(),
                );
            }
            for t in targets.into_iter().filter(|t| is_actor(t)) {
                if let Some(a) = actor_of(t) {
                    if !actors.iter().any(|x| x.name == a.name) {
                        report.actor(&a);
                        actors.push(a);
                    }
                }
            }
        }
        let source = IocSource {
            format: FeedFormat::Stix,
            feed: origin.to_owned(),
            id: id.to_owned(),
            title: o.get("name").and_then(Value::as_str).map(str::to_owned),
        };
        // Validate every term first so an indicator loads completely or not at all.
        // A clause naming a network no indicator can be (`ISSUBSET '0.0.0.0/0'`, private
        // ranges: the CSV and MISP loaders refuse them too) is dropped: that only narrows
        // what the indicator matches; with no clause left the indicator is unusable.
        let mut norm: Vec<Vec<(crate::IocKind, String)>> = Vec::new();
        let mut bad = None;
        let mut refused: Vec<String> = Vec::new();
        for clause in &clauses {
            let mut c = Vec::new();
            let mut keep = true;
            for (t, v) in clause {
                if let Some(why) = unusable_ip(t, v) {
                    refused.push(format!("{t}: {why}"));
                    keep = false;
                    continue;
                }
                match normalise(t, v) {
                    Some(x) => c.push(x),
                    None => bad = Some(format!("invalid {t} value '{v}'")),
                }
            }
            if keep {
                norm.push(c);
            }
        }
        if let Some(e) = bad {
            report
                .diagnostics
                .push(format!("{id}: unsupported pattern `{pattern}`: {e}"));
            report.skip("unsupported pattern");
            continue;
        }
        if norm.is_empty() {
            report.diagnostics.push(format!(
                "{id}: pattern `{pattern}` not loaded: {}",
                refused.join(", ")
            ));
            report.skip(refused.swap_remove(0));
            continue;
        }
        if !refused.is_empty() {
            report.diagnostics.push(format!(
                "{id}: pattern `{pattern}`: {} of its OR-clauses dropped ({})",
                clauses.len() - norm.len(),
                refused.join(", ")
            ));
        }
        for clause in norm {
            let conjunction = (clause.len() > 1).then_some(b.conjunctions.len());
            let origin = Origin {
                source: source.clone(),
                actors: actors.clone(),
                conjunction,
            };
            let mut ids = Vec::new();
            for (kind, value) in clause {
                *report.loaded.entry(kind).or_default() += 1;
                ids.push(b.add(kind, value, origin.clone()));
            }
            if conjunction.is_some() {
                b.conjunctions.push(ids);
            }
        }
    }
    report
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Str(String),
    Word(String),
    Op(String),
}

fn tokenize(p: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        match ch {
            _ if ch.is_whitespace() => i += 1,
            '[' => {
                out.push(Tok::LBrack);
                i += 1
            }
            ']' => {
                out.push(Tok::RBrack);
                i += 1
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '\'' => {
                let (s, n) = read_str(&c, i)?;
                out.push(Tok::Str(s));
                i = n;
            }
            '=' | '!' | '<' | '>' => {
                let mut op = ch.to_string();
                if c.get(i + 1) == Some(&'=') {
                    op.push('=');
                    i += 1;
                }
                out.push(Tok::Op(op));
                i += 1;
            }
            _ if ch.is_ascii_alphanumeric() || ch == '_' || ch == '-' => {
                // A word or an object path; paths may contain quoted keys: file:hashes.'SHA-256'.
                let mut w = String::new();
                while i < c.len() {
                    let d = c[i];
                    if d.is_ascii_alphanumeric() || matches!(d, '_' | '-' | ':' | '.' | '*') {
                        w.push(d);
                        i += 1;
                    } else if d == '\'' && w.ends_with('.') {
                        let (s, n) = read_str(&c, i)?;
                        w.push('\'');
                        w.push_str(&s);
                        w.push('\'');
                        i = n;
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(w));
            }
            _ => return Err(format!("unexpected character {ch:?}")),
        }
    }
    Ok(out)
}

fn read_str(c: &[char], start: usize) -> Result<(String, usize), String> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < c.len() {
        match c[i] {
            '\\' if i + 1 < c.len() => {
                s.push(c[i + 1]);
                i += 2;
            }
            '\'' => return Ok((s, i + 1)),
            x => {
                s.push(x);
                i += 1;
            }
        }
    }
    Err("unterminated string".into())
}

/// A pattern in disjunctive normal form: OR of AND-clauses of (type name, value) terms.
type Dnf = Vec<Vec<(&'static str, String)>>;

struct Parser {
    t: Vec<Tok>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        if self.peek() == Some(&t) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {t:?}, found {:?}", self.peek()))
        }
    }

    /// `or := and (OR and)*`; `inner` selects comparison level (inside `[...]`).
    fn or(&mut self, inner: bool) -> Result<Dnf, String> {
        let mut d = self.and(inner)?;
        while self.keyword("OR") {
            self.i += 1;
            d.extend(self.and(inner)?);
            if d.len() > MAX_CLAUSES {
                return Err(format!("more than {MAX_CLAUSES} alternatives"));
            }
        }
        Ok(d)
    }

    fn and(&mut self, inner: bool) -> Result<Dnf, String> {
        let mut d = self.primary(inner)?;
        while self.keyword("AND") {
            self.i += 1;
            let r = self.primary(inner)?;
            let mut x = Vec::new();
            for a in &d {
                for b in &r {
                    if a.len() + b.len() > MAX_TERMS {
                        return Err(format!("more than {MAX_TERMS} terms in one AND"));
                    }
                    let mut c = a.clone();
                    c.extend(b.iter().cloned());
                    x.push(c);
                }
            }
            if x.len() > MAX_CLAUSES {
                return Err(format!("more than {MAX_CLAUSES} alternatives"));
            }
            d = x;
        }
        if self.keyword("FOLLOWEDBY") {
            return Err("FOLLOWEDBY (temporal sequence) is not supported".into());
        }
        Ok(d)
    }

    fn primary(&mut self, inner: bool) -> Result<Dnf, String> {
        match self.peek() {
            Some(Tok::LParen) => {
                self.i += 1;
                let d = self.nested(|p| p.or(inner))?;
                self.expect(Tok::RParen)?;
                if !inner {
                    self.no_qualifier()?;
                }
                Ok(d)
            }
            Some(Tok::LBrack) if !inner => {
                self.i += 1;
                let d = self.nested(|p| p.or(true))?;
                self.expect(Tok::RBrack)?;
                self.no_qualifier()?;
                Ok(d)
            }
            Some(Tok::Word(_)) if inner => self.comparison().map(|t| vec![vec![t]]),
            other => Err(format!("unexpected {other:?}")),
        }
    }

    /// Runs `f` one nesting level deeper, refusing more than [`MAX_DEPTH`] levels
    /// (the parser is recursive: unbounded nesting would overflow the stack).
    fn nested(&mut self, f: impl FnOnce(&mut Self) -> Result<Dnf, String>) -> Result<Dnf, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("more than {MAX_DEPTH} nested parentheses"));
        }
        self.depth += 1;
        let d = f(self);
        self.depth -= 1;
        d
    }

    fn no_qualifier(&self) -> Result<(), String> {
        for q in ["WITHIN", "REPEATS", "START", "STOP"] {
            if self.keyword(q) {
                return Err(format!("qualifier {q} is not supported"));
            }
        }
        Ok(())
    }

    fn comparison(&mut self) -> Result<(&'static str, String), String> {
        let Some(Tok::Word(path)) = self.peek().cloned() else {
            return Err("expected an object path".into());
        };
        self.i += 1;
        if self.keyword("NOT") {
            return Err("NOT is not supported".into());
        }
        let op = match self.peek().cloned() {
            Some(Tok::Op(o)) => o,
            Some(Tok::Word(w)) => w.to_ascii_uppercase(),
            other => {
                return Err(format!(
                    "expected an operator after {path}, found {other:?}"
                ))
            }
        };
        self.i += 1;
        let Some(Tok::Str(value)) = self.peek().cloned() else {
            return Err(format!(
                "expected a quoted string after {path} {op} (only string literals are supported)"
            ));
        };
        self.i += 1;
        let ty = path_type(&path).ok_or_else(|| format!("object path {path} is not supported"))?;
        let ip = matches!(ty, "ipv4" | "ipv6");
        match op.as_str() {
            "=" => {}
            "ISSUBSET" if ip => {}
            _ => return Err(format!("operator {op} is not supported for {path}")),
        }
        Ok((ty, value))
    }
}

/// Supported object paths → the loader's type names.
fn path_type(path: &str) -> Option<&'static str> {
    let (obj, prop) = path.split_once(':')?;
    let prop_l = prop.to_ascii_lowercase().replace('\'', "");
    Some(match (obj.to_ascii_lowercase().as_str(), prop_l.as_str()) {
        ("file", "hashes.md5") => "md5",
        ("file", "hashes.sha-1" | "hashes.sha1") => "sha1",
        ("file", "hashes.sha-256" | "hashes.sha256") => "sha256",
        ("file", "hashes.sha-512" | "hashes.sha512") => "sha512",
        ("ipv4-addr", "value") => "ipv4",
        ("ipv6-addr", "value") => "ipv6",
        ("domain-name", "value") => "domain",
        ("url", "value") => "url",
        _ => return None,
    })
}

/// Parses a STIX pattern into DNF, or says why it is not supported.
pub(crate) fn parse_pattern(p: &str) -> Result<Dnf, String> {
    let mut parser = Parser {
        t: tokenize(p)?,
        i: 0,
        depth: 0,
    };
    let d = parser.or(false)?;
    if parser.i != parser.t.len() {
        return Err(format!("unexpected {:?}", parser.t[parser.i]));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_patterns() {
        assert_eq!(
            parse_pattern("[file:hashes.'SHA-256' = 'aa']").unwrap(),
            vec![vec![("sha256", "aa".to_owned())]]
        );
        assert_eq!(
            parse_pattern(
                "[ipv4-addr:value = '198.51.100.1' OR ipv4-addr:value ISSUBSET '203.0.113.0/24']"
            )
            .unwrap()
            .len(),
            2
        );
        let d = parse_pattern(
            "([domain-name:value = 'a.example'] AND [url:value = 'http://b/x']) OR [file:hashes.MD5 = 'cc']",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].len(), 2);
        assert_eq!(
            parse_pattern("[file:name = 'x']").unwrap_err(),
            "object path file:name is not supported"
        );
        assert!(parse_pattern("[url:value LIKE 'x%']").is_err());
        assert!(parse_pattern("[url:value = 'a'] FOLLOWEDBY [url:value = 'b']").is_err());
        assert!(parse_pattern("[url:value = 'a'] WITHIN 5 SECONDS").is_err());
        assert!(parse_pattern("[url:value NOT = 'a']").is_err());
        assert_eq!(
            parse_pattern(r"[url:value = 'http://x/it\'s']").unwrap()[0][0].1,
            "http://x/it's"
        );
    }

    #[test]
    fn deeply_nested_pattern_is_rejected_not_a_stack_overflow() {
        let p = format!(
            "{}[url:value = 'a']{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert!(parse_pattern(&p).unwrap_err().contains("nested"));
        let ok = format!("{}[url:value = 'a']{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(parse_pattern(&ok).unwrap().len(), 1);
    }

    #[test]
    fn long_and_chain_is_bounded() {
        let terms = vec!["url:value = 'a'"; 10_000].join(" AND ");
        assert!(parse_pattern(&format!("[{terms}]"))
            .unwrap_err()
            .contains("terms"));
    }
}
