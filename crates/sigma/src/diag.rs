use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The rule loads and runs; something about it is worth knowing
    /// (e.g. its logsource is not mapped, so it never meets an event).
    Warning,
    /// The document was not loaded.
    Error,
}

/// Stable diagnostic codes. The string form (`TH001`…) is part of the
/// `rules check --format json` wire format and never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[non_exhaustive]
pub enum Code {
    /// TH001: the file is not valid YAML (or not UTF-8).
    YamlSyntax,
    /// TH002: a document is not a valid Sigma rule (missing `title`,
    /// `detection`, malformed detection…).
    InvalidRule,
    /// TH003: a field modifier that the Sigma specification does not define.
    UnknownModifier,
    /// TH004: the `condition` does not parse or names an undefined selection.
    Condition,
    /// TH005: a construct tracehunt does not evaluate (deprecated pipe
    /// aggregations `| count()`/`| near`, array matching…).
    Unsupported,
    /// TH006: a value cannot be compiled (bad regex, bad CIDR, non-numeric
    /// value for `gt`…).
    InvalidValue,
    /// TH010: the rule's logsource has no mapping; it loads but never runs.
    UnmappedLogsource,
    /// TH011: an `expand` placeholder has no value; that item never matches.
    UnresolvedPlaceholder,
    /// TH012: a document is parsed but (part of it) is not evaluated, e.g. a
    /// correlation with a window mode other than `sliding`.
    NotEvaluated,
    /// TH013: the same rule id was loaded twice (or a rule without an `id`
    /// identical to one already loaded); the later copy is skipped. The
    /// first copy that compiles is the one kept.
    DuplicateId,
    /// TH014: a filter or correlation refers to a rule that is not loaded
    /// (by `id` or `name`), or a filter names a rule of another logsource.
    UnresolvedReference,
}

impl Code {
    /// The stable string form, e.g. `"TH004"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::YamlSyntax => "TH001",
            Code::InvalidRule => "TH002",
            Code::UnknownModifier => "TH003",
            Code::Condition => "TH004",
            Code::Unsupported => "TH005",
            Code::InvalidValue => "TH006",
            Code::UnmappedLogsource => "TH010",
            Code::UnresolvedPlaceholder => "TH011",
            Code::NotEvaluated => "TH012",
            Code::DuplicateId => "TH013",
            Code::UnresolvedReference => "TH014",
        }
    }

    /// The code whose [`Code::as_str`] is `s` (`"TH004"`), if any.
    pub fn from_code_str(s: &str) -> Option<Code> {
        [
            Code::YamlSyntax,
            Code::InvalidRule,
            Code::UnknownModifier,
            Code::Condition,
            Code::Unsupported,
            Code::InvalidValue,
            Code::UnmappedLogsource,
            Code::UnresolvedPlaceholder,
            Code::NotEvaluated,
            Code::DuplicateId,
            Code::UnresolvedReference,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    /// The severity this code always has.
    pub fn severity(self) -> Severity {
        match self {
            Code::UnmappedLogsource
            | Code::UnresolvedPlaceholder
            | Code::NotEvaluated
            | Code::DuplicateId
            | Code::UnresolvedReference => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found while loading or compiling a rule file.
///
/// `line` is 1-based and points at the document start or, when known, at the
/// offending key; `rule` is the rule's `id` (or title) when the document got
/// that far.
///
/// Serialised (JSON, and the cached compiled ruleset of issue #22) with the
/// code as its stable string; deserialising refuses an unknown code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Stable code (serialised as `TH001`…).
    #[serde(serialize_with = "ser_code", deserialize_with = "de_code")]
    pub code: Code,
    /// Error (not loaded) or warning (loaded).
    pub severity: Severity,
    /// The file label the caller passed (usually its path).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// Rule id or title, when known.
    pub rule: Option<String>,
    /// Human-readable explanation.
    pub message: String,
}

fn ser_code<S: serde::Serializer>(c: &Code, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.as_str())
}

fn de_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
    let s = String::deserialize(d)?;
    Code::from_code_str(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown code {s}")))
}

impl Diagnostic {
    /// A diagnostic with the code's own severity.
    pub fn new(code: Code, file: &str, line: Option<u32>, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            file: file.to_owned(),
            line,
            rule: None,
            message: message.into(),
        }
    }

    /// Sets the rule id/title.
    pub fn with_rule(mut self, rule: Option<String>) -> Self {
        self.rule = rule;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{sev}[{}]: {}", self.code, self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(r) = &self.rule {
            write!(f, " (rule {r})")?;
        }
        write!(f, ": {}", self.message)
    }
}
