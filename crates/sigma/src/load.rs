use crate::diag::{Code, Diagnostic};
use crate::filter::FilterDoc;
use rsigma_parser::{CorrelationRule, SigmaRule};

/// One detection rule as loaded, with where it came from.
#[derive(Debug, Clone)]
pub struct RuleDoc {
    /// The parsed rule (rsigma-parser AST).
    pub rule: SigmaRule,
    /// The file label the caller passed.
    pub file: String,
    /// 1-based line of the rule's `title:` key (its document), best effort.
    pub line: u32,
}

/// One correlation rule as loaded, with where it came from.
///
/// Evaluated by the `tracehunt-correlate` crate (Sigma correlation rules
/// specification, `sigma-correlation-rules-specification.md`).
#[derive(Debug, Clone)]
pub struct CorrelationDoc {
    /// The parsed correlation rule (rsigma-parser AST).
    pub rule: CorrelationRule,
    /// The file label the caller passed.
    pub file: String,
    /// 1-based line of the document (its `title:` key), best effort.
    pub line: u32,
}

/// Everything one rule file yielded.
#[derive(Debug, Clone, Default)]
pub struct LoadedFile {
    /// Detection rules that parsed.
    pub rules: Vec<RuleDoc>,
    /// Correlation rules that parsed (evaluated by `tracehunt-correlate`).
    pub correlations: Vec<CorrelationDoc>,
    /// Filter rules that parsed (applied with [`crate::apply_filters`]).
    pub filters: Vec<FilterDoc>,
    /// Problems, one per document that could not be used, plus warnings.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads a rule file's raw bytes: invalid UTF-8 is a `TH001` diagnostic
/// naming the byte offset, otherwise the same as [`load_rules`].
pub fn load_rules_bytes(file: &str, bytes: &[u8]) -> LoadedFile {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_rules(file, text),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u32;
            LoadedFile {
                diagnostics: vec![Diagnostic::new(
                    Code::YamlSyntax,
                    file,
                    Some(line),
                    format!(
                        "file is not UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ),
                )],
                ..LoadedFile::default()
            }
        }
    }
}

/// Parses one Sigma YAML file (one or more `---`-separated documents, with
/// `action: global/reset/repeat` collections) into rules and diagnostics.
///
/// Never fails as a whole: each unusable document becomes one
/// [`Diagnostic`] (`TH001` YAML, `TH002` invalid rule, `TH003` unknown
/// modifier, `TH004` condition, `TH005` unsupported construct) and the other
/// documents still load — also after a YAML syntax error, where parsing
/// restarts at the `---` that follows the broken document (a `global`
/// action does not carry over that restart). `file` is only used to label
/// diagnostics. Linear in the size of the file (tested with 20,000
/// documents).
///
/// Follows the Sigma specification v2 (sigmahq/sigma-specification,
/// `specification/sigma-rules-specification.md`) through `rsigma-parser`.
pub fn load_rules(file: &str, text: &str) -> LoadedFile {
    let mut out = LoadedFile::default();
    let marks = NestingMarks::of(text);
    let deep = marks
        .may_nest_conditions_too_deep()
        .then(|| too_deep(file, text))
        .flatten();
    let flow_deep = || {
        marks
            .may_nest_flow_too_deep()
            .then(|| flow_too_deep(file, text))
            .flatten()
    };
    if let Some(d) = deep.or_else(flow_deep) {
        out.diagnostics.push(d);
        return out;
    }
    let text = &*without_empty_documents(text);
    let mut lines = LineIndex::new(text);
    // The YAML stream cannot be resumed after a syntax error, so the file is
    // parsed again from the `---` after the broken document (issue #6: one
    // bad document must not hide the documents after it). A `global` action
    // does not carry over such a restart.
    let (mut start, mut line_offset) = (0usize, 0u32);
    loop {
        let part = &text[start..];
        let collection = match rsigma_parser::parse_sigma_yaml(part) {
            Ok(c) => c,
            Err(e) => {
                out.diagnostics
                    .push(classify(file, &e.to_string(), &mut lines, line_offset));
                break;
            }
        };
        let mut resume = None;
        for err in &collection.errors {
            let d = classify(file, err, &mut lines, line_offset);
            if d.code == Code::YamlSyntax && err.starts_with("YAML parse error") {
                resume = d.line.and_then(|l| lines.separator_after(l));
            }
            out.diagnostics.push(d);
        }
        load_collection(file, collection, &mut lines, &mut out);
        match resume {
            Some((byte, line)) if byte > start && byte < text.len() => {
                start = byte;
                line_offset = line;
            }
            _ => break,
        }
    }
    out
}

/// Adds the rules, correlations and filters of one parsed collection, each
/// with its line.
fn load_collection(
    file: &str,
    collection: rsigma_parser::SigmaCollection,
    lines: &mut LineIndex,
    out: &mut LoadedFile,
) {
    for rule in collection.rules {
        let line = lines.title_line(Kind::Rule, &rule.title);
        if let Some(d) = unsupported_condition(file, &rule, line, lines) {
            out.diagnostics.push(d);
            continue;
        }
        out.rules.push(RuleDoc {
            rule,
            file: file.to_owned(),
            line,
        });
    }
    for c in collection.correlations {
        let line = lines.title_line(Kind::Correlation, &c.title);
        out.correlations.push(CorrelationDoc {
            rule: c,
            file: file.to_owned(),
            line,
        });
    }
    for f in collection.filters {
        let line = lines.title_line(Kind::Filter, &f.title);
        out.filters.push(FilterDoc {
            filter: f,
            file: file.to_owned(),
            line,
        });
    }
}

/// Which list of the collection a title belongs to (each consumes the
/// `title:` lines of its own documents in order).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Rule,
    Correlation,
    Filter,
}

/// Line lookups for one file, built in one pass so that loading a file with
/// many documents stays linear (issue #6: 20,000 documents took minutes when
/// every rule's line was found by scanning the file from the top).
struct LineIndex<'a> {
    /// `title:` lines at the start of a line: (1-based line, title with YAML quotes removed).
    titles: Vec<(u32, &'a str)>,
    /// Title → indexes into `titles` with that title, in file order.
    by_title: std::collections::HashMap<&'a str, Vec<usize>>,
    /// Per (kind, title): how many of that title's lines this kind has used.
    used: std::collections::HashMap<(Kind, &'a str), usize>,
    /// Lines holding `condition:` (1-based line, text), in order.
    conditions: Vec<(u32, &'a str)>,
    /// Next entry of `conditions` a condition error may name (errors come in document order).
    condition_cursor: usize,
    /// `---` document separator lines: (1-based line, byte offset just past it).
    separators: Vec<(u32, usize)>,
    /// Memoised [`find_line`] answers for the diagnostic needles.
    found: std::collections::HashMap<String, Option<u32>>,
    text: &'a str,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut titles = Vec::new();
        let mut by_title: std::collections::HashMap<&str, Vec<usize>> = Default::default();
        let mut conditions = Vec::new();
        let mut separators = Vec::new();
        let mut end = 0usize;
        for (i, raw) in text.split_inclusive('\n').enumerate() {
            end += raw.len();
            let l = raw.strip_suffix('\n').unwrap_or(raw);
            let l = l.strip_suffix('\r').unwrap_or(l);
            let n = i as u32 + 1;
            if l.trim_end() == "---" {
                separators.push((n, end));
            }
            if let Some(t) = l.strip_prefix("title:") {
                let t = unquote(t.trim());
                by_title.entry(t).or_default().push(titles.len());
                titles.push((n, t));
            }
            if l.contains("condition:") {
                conditions.push((n, l));
            }
        }
        LineIndex {
            titles,
            by_title,
            used: Default::default(),
            conditions,
            condition_cursor: 0,
            separators,
            found: Default::default(),
            text,
        }
    }

    /// Line of the next unused `title: <title>` line for this kind (rules of
    /// one kind come out of the parser in file order, so equal titles get
    /// successive lines), else the first `title:` line, else 1.
    fn title_line(&mut self, kind: Kind, title: &str) -> u32 {
        let Some((&key, idx)) = self.by_title.get_key_value(title) else {
            return self.titles.first().map_or(1, |t| t.0);
        };
        let used = self.used.entry((kind, key)).or_default();
        let i = idx[(*used).min(idx.len() - 1)];
        *used += 1;
        self.titles[i].0
    }

    /// First `condition:` line at or after `line`.
    fn condition_after(&self, line: u32) -> Option<u32> {
        let i = self.conditions.partition_point(|c| c.0 < line);
        self.conditions.get(i).map(|c| c.0)
    }

    /// Line of the condition a parse error quotes: the next `condition:` line
    /// (within 256 of the last one named, which keeps this linear) that contains
    /// `cond`; else the first `condition:` line of the file.
    fn condition_line(&mut self, cond: &str) -> Option<u32> {
        if !cond.is_empty() {
            let from = self.condition_cursor;
            let window = self.conditions.iter().enumerate().skip(from).take(256);
            for (i, &(n, l)) in window {
                if l.contains(cond) {
                    self.condition_cursor = i + 1;
                    return Some(n);
                }
            }
        }
        self.conditions.first().map(|c| c.0)
    }

    /// The first `---` separator at or after `line` (libyaml reports a
    /// broken flow collection at the separator that ends it): its line and
    /// the byte offset where the next document starts.
    fn separator_after(&self, line: u32) -> Option<(usize, u32)> {
        let i = self.separators.partition_point(|s| s.0 < line);
        self.separators.get(i).map(|&(n, b)| (b, n))
    }

    /// [`find_line`], memoised per needle.
    fn find(&mut self, needle: &str) -> Option<u32> {
        if let Some(&f) = self.found.get(needle) {
            return f;
        }
        let f = find_line(self.text, needle);
        self.found.insert(needle.to_owned(), f);
        f
    }

    /// The title of the document holding `line` (between the `---` before it
    /// and the `---` at or after it: libyaml reports a broken document at the
    /// separator that ends it). Without a line, the title only when the file
    /// has a single document. `None` when that document has no `title:` line
    /// (breaker finding: a YAML error in the second document was labelled
    /// with the first document's title).
    fn title_at(&self, line: Option<u32>) -> Option<String> {
        let Some(line) = line else {
            return (self.separators.is_empty() && self.titles.len() == 1)
                .then(|| self.titles[0].1.to_owned());
        };
        let i = self.separators.partition_point(|s| s.0 < line);
        let start = if i == 0 { 0 } else { self.separators[i - 1].0 };
        let end = self.separators.get(i).map_or(u32::MAX, |s| s.0);
        let j = self.titles.partition_point(|t| t.0 <= start);
        self.titles
            .get(j)
            .filter(|t| t.0 < end)
            .map(|t| t.1.to_owned())
    }
}

/// A YAML scalar without its surrounding quotes (`'a'` → `a`, `"a"` → `a`).
fn unquote(s: &str) -> &str {
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// The deprecated pipe aggregation (`selection | count() by X > 5`,
/// `| near`) is rejected by name rather than as a generic parse error.
fn unsupported_condition(
    file: &str,
    rule: &SigmaRule,
    line: u32,
    lines: &LineIndex,
) -> Option<Diagnostic> {
    let cond = rule
        .detection
        .condition_strings
        .iter()
        .find(|c| c.contains('|'))?;
    Some(
        Diagnostic::new(
            Code::Unsupported,
            file,
            lines.condition_after(line),
            format!(
                "deprecated pipe aggregation in condition `{cond}`: rewrite it as a Sigma correlation rule"
            ),
        )
        .with_rule(rule.id.clone().or_else(|| Some(rule.title.clone()))),
    )
}

/// Most `not`s in a row a file may hold, and deepest parenthesis nesting on
/// one line. The condition parser recurses once per `not` and per
/// parenthesis, so thousands of them overflow the stack (issue #6: 10,001
/// `not`s did); no real rule comes near these limits (rsigma-parser itself
/// refuses parentheses nested deeper than 64).
pub const MAX_CONDITION_NESTING: usize = 64;
const MAX_LINE_PARENS: usize = 4 * MAX_CONDITION_NESTING;

/// Refuses, before parsing, a file whose text nests deeper than the
/// condition parser can take: more than [`MAX_CONDITION_NESTING`] `not`
/// words in a row (across whitespace and parentheses), or more than
/// `4 * MAX_CONDITION_NESTING` open parentheses on one line. One `TH004`
/// diagnostic for the whole file.
/// The text with every empty document (a `---` followed only by blank or
/// comment lines up to the next `---` or the end, as a trailing `---`
/// leaves) turned into a comment, so it is not reported as a failed rule
/// (issue #6: `rule + "---"` counted 1 of 2 rules failed, "Document is not a
/// YAML mapping"). The `---` becomes `#--`: lines and offsets do not move.
fn without_empty_documents(text: &str) -> std::borrow::Cow<'_, str> {
    let mut empty = Vec::new();
    let (mut last_sep, mut content, mut at) = (None, false, 0usize);
    for raw in text.split_inclusive('\n') {
        let l = raw.trim_end();
        if l == "---" {
            if let (Some(s), false) = (last_sep, content) {
                empty.push(s);
            }
            (last_sep, content) = (Some(at), false);
        } else {
            let t = l.trim_start();
            if !(t.is_empty() || t.starts_with('#') || t == "...") {
                content = true;
            }
        }
        at += raw.len();
    }
    if let (Some(s), false) = (last_sep, content) {
        empty.push(s);
    }
    if empty.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut bytes = text.as_bytes().to_vec();
    for s in empty {
        bytes[s] = b'#';
    }
    // Only an ASCII '-' was replaced by an ASCII '#'.
    std::borrow::Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned()))
}

/// What nesting a file could reach at most, from one pass over its bytes:
/// the line-by-line checks ([`too_deep`], [`flow_too_deep`]) run only when
/// these counts allow a refusal (3,750 SigmaHQ files never do; the checks
/// took a fifth of parsing them).
struct NestingMarks {
    /// `(` bytes: no line nests deeper than the file has.
    parens: usize,
    /// `[` and `{` bytes: flow nesting never goes deeper than the file has.
    flows: usize,
    /// `not` (any case) anywhere, also inside words: a run of `not` words
    /// is never longer.
    nots: usize,
}

impl NestingMarks {
    fn of(text: &str) -> NestingMarks {
        let b = text.as_bytes();
        let mut m = NestingMarks {
            parens: 0,
            flows: 0,
            nots: 0,
        };
        for (i, &c) in b.iter().enumerate() {
            match c {
                b'(' => m.parens += 1,
                b'[' | b'{' => m.flows += 1,
                b'n' | b'N' => {
                    let ot = b.get(i + 1..i + 3);
                    m.nots += usize::from(ot.is_some_and(|r| r.eq_ignore_ascii_case(b"ot")));
                }
                _ => {}
            }
        }
        m
    }

    /// Could [`too_deep`] refuse the file?
    fn may_nest_conditions_too_deep(&self) -> bool {
        self.nots > MAX_CONDITION_NESTING || self.parens > MAX_LINE_PARENS
    }

    /// Could [`flow_too_deep`] refuse the file?
    fn may_nest_flow_too_deep(&self) -> bool {
        self.flows > MAX_FLOW_NESTING
    }
}

/// Deepest YAML flow-collection nesting (`[`, `{`) a document may have.
/// The YAML parser rejects more than 128 anyway, but only after work that
/// grows with the square of the depth (issue #6: a 50 KB rule of `[` took
/// 4.8 s, 1 MB would take half an hour).
const MAX_FLOW_NESTING: usize = 512;

/// Refuses, before parsing, a file with a document whose `[`/`{` flow
/// nesting (outside quoted strings and comments, counted from its `---`)
/// goes over [`MAX_FLOW_NESTING`]. One `TH001` diagnostic for the file.
fn flow_too_deep(file: &str, text: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" {
            depth = 0;
            continue;
        }
        let (mut single, mut double, mut escape) = (false, false, false);
        let mut prev_ws = true;
        for b in line.bytes() {
            if double {
                if escape {
                    escape = false;
                } else if b == b'\\' {
                    escape = true;
                } else if b == b'"' {
                    double = false;
                }
            } else if single {
                single = b != b'\'';
            } else {
                match b {
                    b'#' if prev_ws => break,
                    b'"' => double = true,
                    b'\'' => single = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            prev_ws = b.is_ascii_whitespace();
            if depth > MAX_FLOW_NESTING {
                return Some(Diagnostic::new(
                    Code::YamlSyntax,
                    file,
                    Some(i as u32 + 1),
                    format!(
                        "YAML flow collections ([ ], {{ }}) nested deeper than {MAX_FLOW_NESTING}; file not loaded"
                    ),
                ));
            }
        }
    }
    None
}

fn too_deep(file: &str, text: &str) -> Option<Diagnostic> {
    let mut run = 0usize;
    for (i, line) in text.lines().enumerate() {
        let mut depth = 0usize;
        let mut max_depth = 0usize;
        for b in line.bytes() {
            match b {
                b'(' => {
                    depth += 1;
                    max_depth = max_depth.max(depth);
                }
                b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        for word in line.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
            if word.is_empty() {
                continue;
            }
            if word.eq_ignore_ascii_case("not") {
                run += 1;
            } else {
                run = 0;
            }
            if run > MAX_CONDITION_NESTING {
                break;
            }
        }
        let what = if run > MAX_CONDITION_NESTING {
            format!("more than {MAX_CONDITION_NESTING} `not` in a row")
        } else if max_depth > MAX_LINE_PARENS {
            format!("{max_depth} nested parentheses (limit {MAX_LINE_PARENS})")
        } else {
            continue;
        };
        let title = text
            .lines()
            .find_map(|l| l.strip_prefix("title:"))
            .map(|t| t.trim().to_owned());
        return Some(
            Diagnostic::new(
                Code::Condition,
                file,
                Some(i as u32 + 1),
                format!("condition nesting deeper than {MAX_CONDITION_NESTING}: {what}; file not loaded"),
            )
            .with_rule(title),
        );
    }
    None
}

/// Maps an rsigma-parser error string to a code, the best line we can find
/// and the title of the document on that line. `line_offset`: lines of the
/// file before the text the parser was given (YAML errors count from there).
fn classify(file: &str, msg: &str, lines: &mut LineIndex, line_offset: u32) -> Diagnostic {
    let lower = msg.to_ascii_lowercase();
    let (code, line) = if lower.contains("yaml") && !lower.contains("merge") {
        (Code::YamlSyntax, yaml_line(msg).map(|l| l + line_offset))
    } else if let Some(m) = msg.strip_prefix("Unknown modifier '") {
        let name = m.split('\'').next().unwrap_or("");
        (
            Code::UnknownModifier,
            lines.find(&format!("|{name}")).or_else(|| lines.find(name)),
        )
    } else if lower.contains("condition") {
        let line = lines.condition_line(quoted_condition(msg));
        let (code, message) = condition_construct(msg);
        let title = lines.title_at(line);
        return Diagnostic::new(code, file, line, message).with_rule(title);
    } else if lower.contains("array") {
        (Code::Unsupported, lines.find("detection:"))
    } else {
        (Code::InvalidRule, lines.find("detection:"))
    };
    let title = lines.title_at(line);
    Diagnostic::new(code, file, line, msg).with_rule(title)
}

/// Names the construct a condition parse error is about: the deprecated
/// pipe aggregations (`| count() … > N`, `| near`, `| min/max/avg/sum`,
/// Sigma v1, replaced by correlation rules) are `TH005` with the
/// correlation type to rewrite them as; anything else is `TH004` quoting the
/// condition and the column.
fn condition_construct(msg: &str) -> (Code, String) {
    let cond = quoted_condition(msg);
    let col = msg
        .split("error at 1:")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or("?");
    if let Some(i) = cond.find('|') {
        let agg = cond[i + 1..].trim();
        let func = agg
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let instead = match func.as_str() {
            "count" if agg.contains("count()") => Some("event_count"),
            "count" => Some("value_count"),
            "near" => Some("temporal (or temporal_ordered)"),
            "min" | "max" | "avg" | "sum" => Some("value_sum / value_avg / value_percentile"),
            _ => None,
        };
        if let Some(instead) = instead {
            return (
                Code::Unsupported,
                format!(
                    "deprecated pipe aggregation `| {agg}` in condition `{cond}` (Sigma v1 `{func}` aggregation): not evaluated; rewrite it as a Sigma correlation rule of type {instead}"
                ),
            );
        }
    }
    if cond.is_empty() {
        return (Code::Condition, msg.to_owned());
    }
    (
        Code::Condition,
        format!("condition `{cond}` is not Sigma condition syntax (parse error at column {col})"),
    )
}

/// The condition an rsigma-parser condition error quotes (as `1 | <condition>`), or "".
fn quoted_condition(msg: &str) -> &str {
    msg.lines()
        .find_map(|l| l.trim_start().strip_prefix("1 | "))
        .map(str::trim)
        .unwrap_or("")
}

/// Pulls `line N` out of a YAML error message.
fn yaml_line(msg: &str) -> Option<u32> {
    let i = msg.find("line ")?;
    msg[i + 5..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// 1-based line of the first line containing `needle`.
fn find_line(text: &str, needle: &str) -> Option<u32> {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #6: a trailing `---` (or `---` twice) made an empty document
    /// that was counted as a failed rule ("Document is not a YAML mapping").
    #[test]
    fn empty_yaml_documents_are_not_failed_rules() {
        let rule = "title: t\nlogsource: {product: windows}\ndetection:\n  sel:\n    EventID: 1\n  condition: sel\n";
        for text in [
            format!("{rule}---\n"),
            format!("{rule}---\n# only a comment\n\n"),
            format!("---\n---\n{rule}---\n---\n{rule}"),
        ] {
            let out = load_rules("e.yml", &text);
            assert!(
                out.diagnostics.is_empty(),
                "{text:?}: {:?}",
                out.diagnostics
            );
            assert!(!out.rules.is_empty());
        }
        // A document that is a list is still an error; so is an empty file.
        let out = load_rules("l.yml", &format!("{rule}---\n- a\n"));
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(load_rules("empty.yml", "").diagnostics.len(), 1);
    }

    /// Issue #6: a rule of 50,000 `[` took 4.8 s in the YAML parser
    /// (quadratic in the nesting); now refused up front in linear time,
    /// while brackets inside quotes and comments do not count.
    #[test]
    fn deep_yaml_flow_nesting_is_refused_before_parsing() {
        let text = format!(
            "title: deep\nlogsource: {{product: windows}}\ndetection:\n  sel: {}\n  condition: sel\n",
            "[".repeat(200_000)
        );
        let t = std::time::Instant::now();
        let out = load_rules("deep.yml", &text);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        assert!(out.rules.is_empty());
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].code, Code::YamlSyntax);
        assert_eq!(out.diagnostics[0].line, Some(4));
        let quoted = format!(
            "title: q\nlogsource: {{product: windows}}\ndetection:\n  sel:\n    CommandLine|contains: '{}'  # {}\n  condition: sel\n",
            "[".repeat(2000),
            "{".repeat(2000)
        );
        let out = load_rules("quoted.yml", &quoted);
        assert_eq!(out.rules.len(), 1, "{:?}", out.diagnostics);
    }

    #[test]
    fn unknown_modifier_names_its_line() {
        let y = "title: t\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|nosuchmod: x\n  condition: sel\n";
        let f = load_rules("r.yml", y);
        assert!(f.rules.is_empty());
        assert_eq!(f.diagnostics.len(), 1);
        assert_eq!(f.diagnostics[0].code, Code::UnknownModifier);
        assert_eq!(f.diagnostics[0].line, Some(5));
    }

    #[test]
    fn bad_yaml_is_th001_with_line() {
        let f = load_rules("r.yml", "title: t\ndetection: [\n  a: b\n");
        assert_eq!(f.diagnostics[0].code, Code::YamlSyntax);
        assert!(f.diagnostics[0].line.is_some());
    }

    #[test]
    fn pipe_aggregation_is_unsupported_not_silent() {
        let y = "title: t\nlogsource: {product: windows}\ndetection:\n  sel:\n    EventID: 4625\n  condition: sel | count() by IpAddress > 5\n";
        let f = load_rules("r.yml", y);
        assert!(f.rules.is_empty(), "{:?}", f.rules.len());
        assert_eq!(
            f.diagnostics[0].code,
            Code::Unsupported,
            "{:?}",
            f.diagnostics
        );
        assert_eq!(f.diagnostics[0].line, Some(6));
    }

    #[test]
    fn near_and_count_name_the_correlation_to_use() {
        let y = "title: t\nlogsource: {product: windows}\ndetection:\n  a:\n    EventID: 1\n  b:\n    EventID: 2\n  condition: a |near b\n";
        let f = load_rules("r.yml", y);
        assert_eq!(f.diagnostics[0].code, Code::Unsupported);
        assert!(
            f.diagnostics[0].message.contains("temporal"),
            "{}",
            f.diagnostics[0].message
        );
        let y = "title: t\nlogsource: {product: windows}\ndetection:\n  a:\n    EventID: 1\n  condition: a | count(User) by Ip > 3\n";
        let f = load_rules("r.yml", y);
        assert!(
            f.diagnostics[0].message.contains("value_count"),
            "{}",
            f.diagnostics[0].message
        );
    }

    #[test]
    fn invalid_utf8_is_reported() {
        let f = load_rules_bytes("r.yml", b"title: t\n\xff\xfe");
        assert_eq!(f.diagnostics[0].code, Code::YamlSyntax);
        assert_eq!(f.diagnostics[0].line, Some(2));
    }

    /// Breaker finding: after a YAML syntax error in the second document of
    /// a multi-document file, the diagnostic carried the first document's
    /// title; it must name the broken document and its line.
    #[test]
    fn yaml_error_in_a_later_document_names_that_document() {
        let y = "title: First\nlogsource: {product: windows}\ndetection:\n  sel:\n    EventID: 1\n  condition: sel\n---\ntitle: Second\nlogsource: {product: windows}\ndetection:\n  sel:\n    EventID: [unclosed\n  condition: sel\n---\ntitle: Third\nlogsource: {product: windows}\ndetection:\n  sel:\n    EventID: 3\n  condition: sel\n";
        let f = load_rules("m.yml", y);
        assert_eq!(f.diagnostics.len(), 1, "{:?}", f.diagnostics);
        let d = &f.diagnostics[0];
        assert_eq!(d.code, Code::YamlSyntax);
        assert_eq!(d.line, Some(13));
        assert_eq!(d.rule.as_deref(), Some("Second"), "{d}");
        let titles: Vec<&str> = f.rules.iter().map(|r| r.rule.title.as_str()).collect();
        assert_eq!(titles, ["First", "Third"]);
        // The same error in a third document after a broken second one.
        let y3 = y.replace("EventID: 3", "EventID: [also");
        let f = load_rules("m.yml", &y3);
        let named: Vec<(Option<u32>, Option<&str>)> = f
            .diagnostics
            .iter()
            .map(|d| (d.line, d.rule.as_deref()))
            .collect();
        assert_eq!(
            named,
            [(Some(13), Some("Second")), (Some(20), Some("Third"))]
        );
        // An unknown modifier in the second document names the second.
        let m = y.replace("EventID: [unclosed", "EventID|bogus: 2");
        let f = load_rules("m.yml", &m);
        assert_eq!(f.diagnostics[0].code, Code::UnknownModifier);
        assert_eq!(f.diagnostics[0].rule.as_deref(), Some("Second"));
    }

    #[test]
    fn one_bad_document_does_not_sink_the_file() {
        let y = "title: good\nlogsource: {product: windows}\ndetection:\n  sel:\n    EventID: 1\n  condition: sel\n---\ntitle: bad\nlogsource: {product: windows}\ndetection:\n  sel:\n    EventID: 1\n  condition: nope and\n";
        let f = load_rules("r.yml", y);
        assert_eq!(f.rules.len(), 1);
        assert_eq!(f.diagnostics.len(), 1);
        assert_eq!(f.diagnostics[0].code, Code::Condition);
    }
}
