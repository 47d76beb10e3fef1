//! Runs the data-driven Sigma conformance cases of `tests/conformance/`.
//!
//! A case file (YAML) has:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `name` | string | short case name |
//! | `spec` | string | the specification text the case is written from (file#section) |
//! | `rules` | string | Sigma YAML (one or more documents: rules, filters, correlations) |
//! | `events` | string | JSON lines: one flat event per line (`"ts"`: RFC 3339 time, optional) |
//! | `expect` | list of `[rule id or title, event index]` | every (rule, event) hit expected, in any order; for a correlation the index is its last contributing event |
//!
//! ```
//! use tracehunt_conformance::{run, Case};
//! let case = Case {
//!     name: "contains".into(),
//!     spec: "sigma-modifiers-appendix.md#contains".into(),
//!     rules: "title: C\nlogsource: {product: windows}\ndetection:\n  sel:\n    CommandLine|contains: whoami\n  condition: sel\n".into(),
//!     events: "{\"Channel\": \"Security\", \"EventID\": 4688, \"CommandLine\": \"cmd /c WHOAMI /all\"}\n{\"Channel\": \"Security\", \"EventID\": 4688, \"CommandLine\": \"dir\"}\n".into(),
//!     expect: vec![("C".into(), 0)],
//! };
//! let hits = run(&case).unwrap();
//! assert_eq!(hits.into_iter().collect::<Vec<_>>(), vec![("C".to_string(), 0)]);
//! ```
//!
//! Rules run with the built-in logsource map; events are routed by their
//! `Channel` and `EventID` fields, so cases use `logsource: {product:
//! windows}` (any event) unless they test routing.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeSet;
use tracehunt_correlate::CorrelationSet;
use tracehunt_engine::{compile, CompileOptions, Scanner};
use tracehunt_event::{Event, EventMeta, Value};

/// One case file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Short name.
    pub name: String,
    /// Specification reference (`file#section`).
    pub spec: String,
    /// Sigma YAML documents.
    pub rules: String,
    /// JSON lines, one event each.
    pub events: String,
    /// Expected `(rule id or title, event index)` hits.
    pub expect: Vec<(String, usize)>,
}

/// Builds an [`Event`] from a flat JSON object: every key a field (arrays
/// become repeated fields), `ts` the timestamp, `Channel`/`EventID`/
/// `Computer` also the header facts.
pub fn event(v: &serde_json::Value) -> Result<Event, String> {
    let obj = v.as_object().ok_or("event is not a JSON object")?;
    let mut meta = EventMeta::default();
    if let Some(t) = obj.get("ts").and_then(|t| t.as_str()) {
        meta.timestamp = Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| format!("ts `{t}`: {e}"))?
                .with_timezone(&Utc),
        );
    }
    meta.channel = obj
        .get("Channel")
        .and_then(|c| c.as_str())
        .map(str::to_owned);
    meta.event_id = obj
        .get("EventID")
        .and_then(|c| c.as_u64())
        .map(|n| n as u32);
    meta.computer = obj
        .get("Computer")
        .and_then(|c| c.as_str())
        .map(str::to_owned);
    let mut ev = Event::with_meta(meta);
    for (k, v) in obj {
        if k == "ts" {
            continue;
        }
        let vals: Vec<&serde_json::Value> = match v {
            serde_json::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for x in vals {
            let val = match x {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Int(i),
                    None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) => Value::Str(s.clone()),
                other => Value::Str(other.to_string()),
            };
            ev.push(k.as_str(), val);
        }
    }
    Ok(ev)
}

/// Runs one case: returns the hits as `(rule id, event index)`, or an error
/// (a diagnostic of severity error, a bad event line).
pub fn run(case: &Case) -> Result<BTreeSet<(String, usize)>, String> {
    let mut f = tracehunt_sigma::load_rules(&case.name, &case.rules);
    let errors: Vec<_> = f
        .diagnostics
        .iter()
        .filter(|d| d.severity == tracehunt_sigma::Severity::Error)
        .collect();
    if !errors.is_empty() {
        return Err(format!("load: {errors:?}"));
    }
    let d = tracehunt_sigma::apply_filters(&mut f.rules, &f.filters);
    if !d.is_empty() {
        return Err(format!("filters: {d:?}"));
    }
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    if d.iter()
        .any(|d| d.severity == tracehunt_sigma::Severity::Error)
    {
        return Err(format!("compile: {d:?}"));
    }
    let (cs, d) = CorrelationSet::compile(&f.correlations, &rs);
    if !d.is_empty() {
        return Err(format!("correlations: {d:?}"));
    }
    let events: Vec<Event> = case
        .events
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map_err(|e| format!("event `{l}`: {e}"))
                .and_then(|v| event(&v))
        })
        .collect::<Result<_, _>>()?;
    let mut sc = Scanner::new(&rs);
    let mut c = cs.correlator();
    let mut out = BTreeSet::new();
    let mut hits = Vec::new();
    let mut corr_hits = Vec::new();
    for (i, e) in events.iter().enumerate() {
        hits.clear();
        sc.scan(e, &mut hits);
        for &r in &hits {
            if !cs.is_suppressed(r) {
                out.insert((rs.rule(r).id.clone(), i));
            }
            if let Some(t) = e.meta.timestamp {
                corr_hits.extend(c.feed(r, t, i as u64, e));
            }
        }
    }
    corr_hits.extend(c.flush());
    for h in corr_hits {
        let last = h.events.last().copied().unwrap_or_default() as usize;
        out.insert((cs.correlation(h.correlation).meta.id.clone(), last));
    }
    Ok(out)
}
