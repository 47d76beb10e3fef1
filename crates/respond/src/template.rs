//! Argument templates: `{name}` placeholders substituted inside one argument
//! element, never split, never given to a shell.

use crate::trigger::{Indicator, Trigger};

/// A value a template can take from the trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Var {
    Indicator,
    IndicatorKind,
    RuleId,
    RuleTitle,
    Level,
    Host,
    IncidentId,
    ActorId,
    ActorName,
    Response,
    Time,
}

/// The placeholder names a template accepts, as written between braces.
pub(crate) const NAMES: &[(&str, Var)] = &[
    ("indicator", Var::Indicator),
    ("indicator_kind", Var::IndicatorKind),
    ("rule_id", Var::RuleId),
    ("rule_title", Var::RuleTitle),
    ("level", Var::Level),
    ("host", Var::Host),
    ("incident_id", Var::IncidentId),
    ("actor_id", Var::ActorId),
    ("actor_name", Var::ActorName),
    ("response", Var::Response),
    ("time", Var::Time),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Var(Var),
}

/// One argument element compiled: literal text and placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

/// What a template is filled from.
pub(crate) struct Values<'a> {
    pub trigger: &'a Trigger,
    pub indicator: Option<&'a Indicator>,
    pub response: &'a str,
}

impl Template {
    /// Compiles `text`: `{name}` is a placeholder (names in [`NAMES`]),
    /// `{{` and `}}` are literal braces.
    ///
    /// # Errors
    /// An unknown placeholder or an unbalanced brace, as a message.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("{{") {
                lit.push('{');
                rest = r;
            } else if let Some(r) = rest.strip_prefix("}}") {
                lit.push('}');
                rest = r;
            } else if c == '{' {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed '{{' in {text:?}"))?;
                let name = &rest[1..end];
                let var = NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                        format!(
                            "unknown placeholder {{{name}}} in {text:?} (known: {})",
                            known.join(", ")
                        )
                    })?;
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Var(var));
                rest = &rest[end + 1..];
            } else if c == '}' {
                return Err(format!("unmatched '}}' in {text:?} (write '}}}}')"));
            } else {
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces })
    }

    /// Whether the template uses `var`.
    pub(crate) fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    /// Whether the template has no placeholder.
    pub(crate) fn is_literal(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Lit(_)))
    }

    /// The template filled in: one string, whatever the values contain
    /// (missing values are empty).
    pub(crate) fn render(&self, v: &Values<'_>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(var) => push_var(&mut out, *var, v),
            }
        }
        out
    }
}

fn push_var(out: &mut String, var: Var, v: &Values<'_>) {
    let t = v.trigger;
    match var {
        Var::Indicator => out.push_str(v.indicator.map_or("", |i| &i.value)),
        Var::IndicatorKind => out.push_str(v.indicator.map_or("", |i| i.kind.as_str())),
        Var::RuleId => out.push_str(&t.rule_id),
        Var::RuleTitle => out.push_str(&t.rule_title),
        Var::Level => out.push_str(t.level.map_or("", |l| l.as_str())),
        Var::Host => out.push_str(&t.host),
        Var::IncidentId => out.push_str(&t.incident_id),
        Var::ActorId => out.push_str(t.actor.as_ref().map_or("", |a| &a.id)),
        Var::ActorName => out.push_str(t.actor.as_ref().map_or("", |a| &a.name)),
        Var::Response => out.push_str(v.response),
        Var::Time => out.push_str(&t.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::{IndicatorKind, TriggerKind};

    #[test]
    fn braces_escape_and_unknown_names_are_errors() {
        let t = Template::parse("--x={{{rule_id}}}").unwrap();
        let mut trig = Trigger::new(TriggerKind::Detection, chrono::DateTime::UNIX_EPOCH);
        trig.rule_id = "r1".into();
        let ind = Indicator::new(IndicatorKind::Ip, "1.2.3.4");
        let v = Values {
            trigger: &trig,
            indicator: Some(&ind),
            response: "resp",
        };
        assert_eq!(t.render(&v), "--x={r1}");
        assert!(Template::parse("{nope}")
            .unwrap_err()
            .contains("unknown placeholder {nope}"));
        assert!(Template::parse("{rule_id")
            .unwrap_err()
            .contains("unclosed"));
        assert!(Template::parse("a}b").unwrap_err().contains("unmatched"));
        assert_eq!(
            Template::parse("{indicator_kind}:{indicator}")
                .unwrap()
                .render(&v),
            "ip:1.2.3.4"
        );
    }
}
