//! Sigma correlation rules over time-ordered rule hits.
//!
//! Specification: sigmahq/sigma-specification
//! `specification/sigma-correlation-rules-specification.md` (v2.0.x), plus
//! the aggregate types pySigma and rsigma add (`value_sum`, `value_avg`,
//! `value_percentile`, `value_median`).
//!
//! * [`CorrelationSet::compile`] resolves each correlation's `rules` (by
//!   `id` or `name`, base rules of a [`Ruleset`] or other correlations —
//!   chains are allowed, cycles are rejected), its `group-by` fields and
//!   `aliases`, `timespan` and `condition`. The set is immutable and
//!   `Send + Sync`.
//! * A [`Correlator`] owns all window state. Feed it every hit of a
//!   referenced base rule **in non-decreasing time order**
//!   ([`Correlator::feed`]); it returns the correlation hits that fire (a hit
//!   of a correlation referenced by another one is fed on internally). Call
//!   [`Correlator::flush`] at the end of the input to close open windows.
//!
//! ## Example
//!
//! Five failed logons from one address within a minute:
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tracehunt_correlate::{CorrelationSet, Correlator, Limits};
//! let yaml = "title: Failed logon\nname: failed\nid: 00000000-0000-4000-8000-0000000000f1\n\
//!   logsource: {product: windows, service: security}\n\
//!   detection:\n  sel:\n    EventID: 4625\n  condition: sel\n---\n\
//!   title: Brute force\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [failed]\n  \
//!   group-by: [IpAddress]\n  timespan: 1m\n  condition: {gte: 5}\n";
//! let f = tracehunt_sigma::load_rules("bf.yml", yaml);
//! let (rs, _) = tracehunt_engine::compile(f.rules, &tracehunt_engine::CompileOptions::default());
//! let (set, diags) = CorrelationSet::compile(&f.correlations, &rs);
//! assert!(diags.is_empty(), "{diags:?}");
//! let mut c = Correlator::new(&set, Limits::default());
//! let ev = vec![("IpAddress".to_string(), "10.0.0.9".to_string())];
//! let mut hits = Vec::new();
//! for i in 0..5 {
//!     let ts = Utc.timestamp_opt(1_700_000_000 + 10 * i, 0).unwrap();
//!     hits.extend(c.feed(0, ts, i as u64, &ev));
//! }
//! hits.extend(c.flush());
//! assert_eq!(hits.len(), 1);
//! ```
//!
//! ## Semantics
//!
//! Windows are per correlation and per group (the tuple of `group-by`
//! values; an event lacking one of the fields does not take part). Two
//! evaluation modes, chosen from the condition:
//!
//! * **Threshold reached** — `event_count`, `value_count`, `value_sum` whose
//!   predicates are only `gt`/`gte`: a sliding window `[t - timespan, t]`
//!   evaluated at each event; when the condition holds the hit is emitted and
//!   the group's window is cleared (one hit per burst, not one per event).
//! * **Window closed** — any condition with `lt`/`lte`/`eq`/`neq`, and
//!   `value_avg`/`value_percentile`/`value_median` always: the window opens at
//!   the group's first event and covers `[start, start + timespan]`; it is
//!   evaluated when an event of the group falls after it, when the stream's
//!   time passes its end, or at [`Correlator::flush`]. A window only exists
//!   once an event opened it, so `lt: 5` means "1 to 4 events".
//!
//! `temporal`: every referenced rule (or, with a threshold, that many
//! distinct rules; with a string condition, that boolean expression over the
//! rule names) has at least one event in a sliding window. The parser
//! defaults a missing condition to `gte: 1`; that default is read as "all
//! referenced rules", the specification's meaning. `temporal_ordered`: the
//! rules' events occur in the order listed, all within `timespan` of the
//! first.
//!
//! Values: `value_count` counts distinct values of `condition.field`
//! (text, case-sensitive); `value_sum`/`value_avg`/percentiles read the field
//! as a number (decimal or `0x` hex) and ignore events where it is not one.
//! Percentiles use the nearest-rank method on the window's values
//! (`percentile`, default 50; `value_median` is 50).
//!
//! Memory is bounded: windows expire as time advances; at most
//! [`Limits::max_groups`] groups live at once (events that would open more
//! are dropped and counted in [`CorrelatorStats::dropped_group_events`]),
//! a window keeps at most [`Limits::max_entries_per_group`] events (oldest
//! dropped first, counted), and a hit lists at most
//! [`Limits::max_events_per_hit`] contributing event handles.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use tracehunt_engine::{RuleMeta, Ruleset};
use tracehunt_event::Event;
use tracehunt_sigma::ast::{
    ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationType, Quantifier,
    SelectorPattern, WindowMode,
};
use tracehunt_sigma::{Code, CorrelationDoc, Diagnostic};

/// Reads event fields by name for group-by and value fields.
///
/// Names compare ASCII case-insensitively with spaces ignored, like the
/// matcher (`Threat Name` = `ThreatName`).
pub trait Fields {
    /// The first value of field `name` as text, or `None` when absent.
    fn field(&self, name: &str) -> Option<String>;
}

/// Field-name equality used everywhere in tracehunt: ASCII
/// case-insensitive, spaces ignored.
pub fn same_field(a: &str, b: &str) -> bool {
    let mut x = a.bytes().filter(|c| *c != b' ');
    let mut y = b.bytes().filter(|c| *c != b' ');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(&q) => {}
            _ => return false,
        }
    }
}

impl Fields for Event {
    fn field(&self, name: &str) -> Option<String> {
        self.fields()
            .find(|(n, _)| same_field(n, name))
            .map(|(_, v)| v.to_text().into_owned())
    }
}

impl Fields for Vec<(String, String)> {
    fn field(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(n, _)| same_field(n, name))
            .map(|(_, v)| v.clone())
    }
}

/// What a correlation refers to in its `rules` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Input {
    /// A detection rule: its index in the [`Ruleset`].
    Rule(usize),
    /// Another correlation: its index in the [`CorrelationSet`].
    Correlation(usize),
}

/// The threshold comparison of a condition predicate (Sigma correlation
/// specification, "Condition": `gt`, `gte`, `lt`, `lte`, `eq`; plus `neq`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Predicate {
    /// The operator.
    pub op: ConditionOperator,
    /// The right-hand side (a count, or a value for the aggregate types).
    pub value: f64,
}

impl Predicate {
    fn holds(&self, x: f64) -> bool {
        match self.op {
            ConditionOperator::Lt => x < self.value,
            ConditionOperator::Lte => x <= self.value,
            ConditionOperator::Gt => x > self.value,
            ConditionOperator::Gte => x >= self.value,
            ConditionOperator::Eq => x == self.value,
            ConditionOperator::Neq => x != self.value,
        }
    }
}

/// One compiled correlation rule (read-only view).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Correlation {
    /// Metadata (id, title, level, tags…) as for detection rules.
    #[serde(with = "tracehunt_engine::persist::meta")]
    pub meta: RuleMeta,
    /// `correlation.type`.
    pub kind: CorrelationType,
    /// Resolved `correlation.rules`, in the listed order.
    pub inputs: Vec<Input>,
    /// `group-by` names as written (aliases included).
    pub group_by: Vec<String>,
    /// `group_fields[i][g]`: the field read from events of `inputs[i]` for
    /// `group_by[g]` (alias resolved).
    pub group_fields: Vec<Vec<String>>,
    /// For value types: the field read from events of `inputs[i]`.
    pub value_fields: Vec<Option<String>>,
    /// `timespan` in milliseconds.
    pub timespan_ms: i64,
    /// All must hold (a range is several predicates).
    pub predicates: Vec<Predicate>,
    /// Percentile rank 0–100 for `value_percentile` (50 for `value_median`).
    pub percentile: f64,
    /// `generate`: also output the referenced rules' own hits. Default false
    /// (specification, "Generate").
    pub generate: bool,
    /// True when windows are evaluated when they close rather than when the
    /// threshold is reached (see the crate docs).
    pub on_close: bool,
    /// False when the correlation could not be compiled (a diagnostic says
    /// why); it is kept so indices stay stable but never fires.
    pub enabled: bool,
    extended: Option<Expr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Expr {
    Input(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    AtLeast(usize, Vec<usize>),
}

impl Expr {
    /// Every input index below `k`.
    fn within(&self, k: usize) -> bool {
        match self {
            Expr::Input(i) => *i < k,
            Expr::Not(e) => e.within(k),
            Expr::And(v) | Expr::Or(v) => v.iter().all(|e| e.within(k)),
            Expr::AtLeast(_, v) => v.iter().all(|i| *i < k),
        }
    }

    fn eval(&self, present: &[bool]) -> bool {
        match self {
            Expr::Input(i) => present[*i],
            Expr::Not(e) => !e.eval(present),
            Expr::And(v) => v.iter().all(|e| e.eval(present)),
            Expr::Or(v) => v.iter().any(|e| e.eval(present)),
            Expr::AtLeast(n, v) => v.iter().filter(|i| present[**i]).count() >= *n,
        }
    }
}

/// Compiled correlation rules: immutable, `Send + Sync`. Serialisable
/// with serde (the cached compiled ruleset, issue #22); a deserialised set
/// should be checked with [`CorrelationSet::validate`] against its ruleset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CorrelationSet {
    corrs: Vec<Correlation>,
    /// Per input: `(correlation, position in its inputs)`.
    consumers: HashMap<Input, Vec<(usize, usize)>>,
    /// Rules referenced only by correlations with `generate: false`.
    suppressed: Vec<usize>,
}

impl CorrelationSet {
    /// Checks a deserialised set against the `rules` it was compiled with:
    /// every input names a rule of `rules` or a correlation of the set, and
    /// per-input tables have one entry per input.
    ///
    /// # Errors
    /// A text naming the first inconsistency found.
    pub fn validate(&self, rules: usize) -> Result<(), String> {
        let n = self.corrs.len();
        let input_ok = |i: &Input| match *i {
            Input::Rule(r) => r < rules,
            Input::Correlation(c) => c < n,
        };
        for c in &self.corrs {
            let k = c.inputs.len();
            if !c.inputs.iter().all(input_ok)
                || !c.extended.as_ref().is_none_or(|e| e.within(k))
                || c.group_fields.len() != k
                || c.value_fields.len() != k
                || c.group_fields.iter().any(|g| g.len() != c.group_by.len())
            {
                return Err(format!("correlation {} is inconsistent", c.meta.id));
            }
        }
        let consumers_ok = self.consumers.iter().all(|(i, v)| {
            input_ok(i)
                && v.iter()
                    .all(|&(c, p)| c < n && p < self.corrs[c].inputs.len())
        });
        if !consumers_ok || self.suppressed.iter().any(|&r| r >= rules) {
            return Err("correlation inputs out of range".into());
        }
        Ok(())
    }

    /// Compiles correlation documents against a compiled ruleset.
    ///
    /// Partial success: a correlation that cannot be used (unknown rule
    /// reference, reference cycle, missing `field` for a value type) is left
    /// out with a diagnostic (`TH014` for references, `TH002` otherwise); a
    /// `window` other than `sliding` (an rsigma extension) is evaluated as
    /// described in the crate docs with a `TH012` warning.
    pub fn compile(docs: &[CorrelationDoc], rules: &Ruleset) -> (CorrelationSet, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let label = |d: &CorrelationDoc| d.rule.id.clone().or_else(|| Some(d.rule.title.clone()));
        // Names and ids of correlations, for chaining.
        let find_corr = |r: &str| {
            docs.iter()
                .position(|d| d.rule.id.as_deref() == Some(r) || d.rule.name.as_deref() == Some(r))
        };
        let find_rule = |r: &str| {
            rules
                .rules()
                .iter()
                .position(|m| m.id == r || m.name.as_deref() == Some(r))
        };
        // Resolve references (doc index space).
        let mut resolved: Vec<Option<Vec<Input>>> = Vec::with_capacity(docs.len());
        for d in docs {
            let mut inputs = Vec::new();
            let mut ok = true;
            for r in &d.rule.rules {
                if let Some(i) = find_rule(r) {
                    inputs.push(Input::Rule(i));
                } else if let Some(c) = find_corr(r) {
                    inputs.push(Input::Correlation(c));
                } else {
                    ok = false;
                    diags.push(
                        Diagnostic::new(
                            Code::UnresolvedReference,
                            &d.file,
                            Some(d.line),
                            format!("correlation refers to rule `{r}`, which is not loaded (by id or name); the correlation is not evaluated"),
                        )
                        .with_rule(label(d)),
                    );
                }
            }
            if inputs.is_empty() && ok {
                ok = false;
                diags.push(
                    Diagnostic::new(
                        Code::InvalidRule,
                        &d.file,
                        Some(d.line),
                        "correlation lists no rules",
                    )
                    .with_rule(label(d)),
                );
            }
            resolved.push(ok.then_some(inputs));
        }
        // Drop correlations in cycles or depending on dropped ones (fixpoint).
        let mut alive: Vec<bool> = resolved.iter().map(Option::is_some).collect();
        loop {
            let mut changed = false;
            for i in 0..docs.len() {
                if !alive[i] {
                    continue;
                }
                let dead_dep = resolved[i].as_ref().is_some_and(|v| {
                    v.iter()
                        .any(|x| matches!(x, Input::Correlation(c) if !alive[*c]))
                });
                if dead_dep || reaches(i, i, &resolved, &mut vec![false; docs.len()]) {
                    alive[i] = false;
                    changed = true;
                    diags.push(
                        Diagnostic::new(
                            Code::UnresolvedReference,
                            &docs[i].file,
                            Some(docs[i].line),
                            if dead_dep {
                                "correlation refers to a correlation that cannot be evaluated"
                            } else {
                                "correlation refers to itself through its rules (cycle)"
                            },
                        )
                        .with_rule(label(&docs[i])),
                    );
                }
            }
            if !changed {
                break;
            }
        }
        // Final index space: alive docs in order.
        let mut index = vec![usize::MAX; docs.len()];
        let mut n = 0;
        for i in 0..docs.len() {
            if alive[i] {
                index[i] = n;
                n += 1;
            }
        }
        let mut set = CorrelationSet::default();
        for (i, d) in docs.iter().enumerate() {
            if !alive[i] {
                continue;
            }
            let inputs: Vec<Input> = resolved[i]
                .as_ref()
                .expect("alive means resolved")
                .iter()
                .map(|x| match *x {
                    Input::Correlation(c) => Input::Correlation(index[c]),
                    other => other,
                })
                .collect();
            match compile_one(d, docs, &inputs, rules, &mut diags) {
                Some(c) => set.corrs.push(c),
                None => {
                    // Keep indices dense: a placeholder that never fires is
                    // simpler than renumbering chains; compile_one only fails
                    // on rule-local problems, reported above.
                    set.corrs.push(never(d, inputs));
                }
            }
        }
        for (ci, c) in set.corrs.iter().enumerate() {
            for (pos, inp) in c.inputs.iter().enumerate() {
                set.consumers.entry(*inp).or_default().push((ci, pos));
            }
        }
        let mut gen: HashMap<usize, bool> = HashMap::new();
        for c in &set.corrs {
            for inp in &c.inputs {
                if let Input::Rule(r) = inp {
                    *gen.entry(*r).or_insert(false) |= c.generate;
                }
            }
        }
        set.suppressed = gen
            .into_iter()
            .filter(|(_, g)| !g)
            .map(|(r, _)| r)
            .collect();
        set.suppressed.sort_unstable();
        (set, diags)
    }

    /// Number of correlations.
    pub fn len(&self) -> usize {
        self.corrs.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.corrs.is_empty()
    }

    /// Correlation `i`. Panics if `i >= len()`.
    pub fn correlation(&self, i: usize) -> &Correlation {
        &self.corrs[i]
    }

    /// All correlations in index order.
    pub fn correlations(&self) -> &[Correlation] {
        &self.corrs
    }

    /// True when some correlation consumes hits of base rule `rule`.
    pub fn is_referenced(&self, rule: usize) -> bool {
        self.consumers.contains_key(&Input::Rule(rule))
    }

    /// True when rule `rule`'s own hits should not be output: it is
    /// referenced only by correlations with `generate: false` (the
    /// specification's default).
    pub fn is_suppressed(&self, rule: usize) -> bool {
        self.suppressed.binary_search(&rule).is_ok()
    }

    /// A fresh correlator with default [`Limits`].
    pub fn correlator(&self) -> Correlator<'_> {
        Correlator::new(self, Limits::default())
    }
}

fn reaches(from: usize, target: usize, res: &[Option<Vec<Input>>], seen: &mut Vec<bool>) -> bool {
    let Some(v) = &res[from] else { return false };
    for x in v {
        if let Input::Correlation(c) = *x {
            if c == target {
                return true;
            }
            if !seen[c] {
                seen[c] = true;
                if reaches(c, target, res, seen) {
                    return true;
                }
            }
        }
    }
    false
}

fn meta_of(d: &CorrelationDoc) -> RuleMeta {
    let r = &d.rule;
    RuleMeta::derived(
        r.id.clone().unwrap_or_else(|| r.title.clone()),
        r.title.clone(),
        r.name.clone(),
        r.level,
        r.status.map(|s| format!("{s:?}").to_ascii_lowercase()),
        r.description.clone(),
        r.author.clone(),
        r.tags.clone(),
        d.file.clone(),
        d.line,
    )
}

fn never(d: &CorrelationDoc, inputs: Vec<Input>) -> Correlation {
    let n = inputs.len();
    Correlation {
        meta: meta_of(d),
        kind: d.rule.correlation_type,
        inputs,
        group_by: Vec::new(),
        group_fields: vec![Vec::new(); n],
        value_fields: vec![None; n],
        timespan_ms: 0,
        predicates: Vec::new(),
        percentile: 50.0,
        generate: d.rule.generate,
        on_close: false,
        enabled: false,
        extended: None,
    }
}

fn compile_one(
    d: &CorrelationDoc,
    docs: &[CorrelationDoc],
    inputs: &[Input],
    rules: &Ruleset,
    diags: &mut Vec<Diagnostic>,
) -> Option<Correlation> {
    let r = &d.rule;
    let label = r.id.clone().or_else(|| Some(r.title.clone()));
    let err = |code: Code, msg: String| {
        Diagnostic::new(code, &d.file, Some(d.line), msg).with_rule(label.clone())
    };
    if r.window != WindowMode::Sliding {
        diags.push(err(
            Code::NotEvaluated,
            format!(
                "window `{}` (rsigma extension) is not evaluated as such; the correlation uses the specification's windows",
                r.window.as_str()
            ),
        ));
    }
    // The names a reference may be known by: as written in `rules`, plus
    // the referenced rule's id and name (aliases key on the rule name).
    let handles: Vec<Vec<String>> = r
        .rules
        .iter()
        .zip(inputs)
        .map(|(written, inp)| {
            let mut h = vec![written.clone()];
            match *inp {
                Input::Rule(i) => {
                    let m = rules.rule(i);
                    h.push(m.id.clone());
                    h.extend(m.name.clone());
                }
                Input::Correlation(_) => {
                    if let Some(c) = docs.iter().find(|c| {
                        c.rule.id.as_deref() == Some(written)
                            || c.rule.name.as_deref() == Some(written)
                    }) {
                        h.extend(c.rule.id.clone());
                        h.extend(c.rule.name.clone());
                    }
                }
            }
            h
        })
        .collect();
    let resolve = |name: &str, pos: usize| -> String {
        for a in &r.aliases {
            if a.alias == name {
                for h in &handles[pos] {
                    if let Some(f) = a.mapping.get(h) {
                        return f.clone();
                    }
                }
            }
        }
        name.to_owned()
    };
    let group_fields: Vec<Vec<String>> = (0..inputs.len())
        .map(|p| r.group_by.iter().map(|g| resolve(g, p)).collect())
        .collect();
    let timespan_ms = (r.timespan.seconds as i64).saturating_mul(1000);
    let (mut predicates, field, percentile, extended) = match &r.condition {
        CorrelationCondition::Threshold {
            predicates,
            field,
            percentile,
        } => (
            predicates
                .iter()
                .map(|(op, v)| Predicate {
                    op: *op,
                    value: *v as f64,
                })
                .collect::<Vec<_>>(),
            field.clone(),
            *percentile,
            None,
        ),
        CorrelationCondition::Extended(e) => {
            if !matches!(r.correlation_type, CorrelationType::Temporal) {
                diags.push(err(
                    Code::InvalidRule,
                    format!(
                        "a string condition is only meaningful for `temporal`, not `{}`",
                        r.correlation_type.as_str()
                    ),
                ));
                return None;
            }
            match expr(e, &handles) {
                Ok(x) => (Vec::new(), None, None, Some(x)),
                Err(m) => {
                    diags.push(err(Code::Condition, m));
                    return None;
                }
            }
        }
    };
    let value_type = matches!(
        r.correlation_type,
        CorrelationType::ValueCount
            | CorrelationType::ValueSum
            | CorrelationType::ValueAvg
            | CorrelationType::ValuePercentile
            | CorrelationType::ValueMedian
    );
    let value_fields: Vec<Option<String>> = match (&field, value_type) {
        (Some(f), true) => {
            if f.len() > 1 {
                diags.push(err(
                    Code::NotEvaluated,
                    format!(
                        "condition lists several fields {f:?}; only the first, `{}`, is used",
                        f[0]
                    ),
                ));
            }
            (0..inputs.len()).map(|p| Some(resolve(&f[0], p))).collect()
        }
        (None, true) => {
            diags.push(err(
                Code::InvalidRule,
                format!("`{}` needs `condition.field`", r.correlation_type.as_str()),
            ));
            return None;
        }
        _ => vec![None; inputs.len()],
    };
    let temporal = matches!(
        r.correlation_type,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    if temporal
        && predicates.len() == 1
        && predicates[0].op == ConditionOperator::Gte
        && predicates[0].value == 1.0
    {
        // The parser's default for a missing condition: all rules.
        predicates[0].value = inputs.len() as f64;
    }
    if matches!(r.correlation_type, CorrelationType::TemporalOrdered)
        && !(predicates.len() == 1
            && predicates[0].op == ConditionOperator::Gte
            && predicates[0].value == inputs.len() as f64)
    {
        diags.push(err(
            Code::NotEvaluated,
            "temporal_ordered always requires every rule in order; its condition is ignored".into(),
        ));
        predicates = vec![Predicate {
            op: ConditionOperator::Gte,
            value: inputs.len() as f64,
        }];
    }
    let upper = predicates.iter().any(|p| {
        matches!(
            p.op,
            ConditionOperator::Lt
                | ConditionOperator::Lte
                | ConditionOperator::Eq
                | ConditionOperator::Neq
        )
    });
    let on_close = !temporal
        && (upper
            || matches!(
                r.correlation_type,
                CorrelationType::ValueAvg
                    | CorrelationType::ValuePercentile
                    | CorrelationType::ValueMedian
            ));
    let percentile = match r.correlation_type {
        CorrelationType::ValueMedian => 50.0,
        _ => percentile.map_or(50.0, |p| p.min(100) as f64),
    };
    Some(Correlation {
        meta: meta_of(d),
        kind: r.correlation_type,
        inputs: inputs.to_vec(),
        group_by: r.group_by.clone(),
        group_fields,
        value_fields,
        timespan_ms,
        predicates,
        percentile,
        generate: r.generate,
        on_close,
        enabled: true,
        extended,
    })
}

fn expr(e: &ConditionExpr, handles: &[Vec<String>]) -> Result<Expr, String> {
    let pos = |name: &str| handles.iter().position(|h| h.iter().any(|x| x == name));
    Ok(match e {
        ConditionExpr::And(v) => Expr::And(
            v.iter()
                .map(|e| expr(e, handles))
                .collect::<Result<_, _>>()?,
        ),
        ConditionExpr::Or(v) => Expr::Or(
            v.iter()
                .map(|e| expr(e, handles))
                .collect::<Result<_, _>>()?,
        ),
        ConditionExpr::Not(e) => Expr::Not(Box::new(expr(e, handles)?)),
        ConditionExpr::Identifier(id) => Expr::Input(pos(id).ok_or_else(|| {
            format!("condition names `{id}`, which is not in the correlation's rules")
        })?),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let all: Vec<usize> = match pattern {
                SelectorPattern::Them => (0..handles.len()).collect(),
                SelectorPattern::Pattern(p) => (0..handles.len())
                    .filter(|i| handles[*i].iter().any(|h| tracehunt_sigma::name_glob(p, h)))
                    .collect(),
            };
            let n = match quantifier {
                Quantifier::Any => 1,
                Quantifier::All => all.len(),
                Quantifier::Count(n) => *n as usize,
            };
            Expr::AtLeast(n, all)
        }
    })
}

/// `t + span`, saturating at the last representable time: an event dated at
/// the edge of the calendar (`+262142-12-31`) must not overflow (breaker
/// finding: the live mode panicked).
fn plus(t: DateTime<Utc>, span: chrono::Duration) -> DateTime<Utc> {
    t.checked_add_signed(span)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - span`, saturating at the first representable time.
fn minus(t: DateTime<Utc>, span: chrono::Duration) -> DateTime<Utc> {
    t.checked_sub_signed(span)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Memory bounds of a [`Correlator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most groups alive at once over all correlations (default 100,000).
    pub max_groups: usize,
    /// Most events one window keeps (default 100,000); older ones are
    /// dropped first.
    pub max_entries_per_group: usize,
    /// Most contributing event handles listed in one hit (default 1,000);
    /// [`CorrelationHit::event_count`] still has the full number.
    pub max_events_per_hit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups: 100_000,
            max_entries_per_group: 100_000,
            max_events_per_hit: 1_000,
        }
    }
}

/// Counters a [`Correlator`] keeps (all since creation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    /// Inputs fed (base hits plus chained correlation hits), per correlation consumer.
    pub inputs: u64,
    /// Inputs that lacked a `group-by` field (not counted).
    pub missing_group_field: u64,
    /// Inputs of value types whose value field was absent or not a number.
    pub missing_value: u64,
    /// Inputs dropped because [`Limits::max_groups`] groups were alive.
    pub dropped_group_events: u64,
    /// Window entries dropped by [`Limits::max_entries_per_group`].
    pub dropped_entries: u64,
    /// Groups whose window expired without firing.
    pub expired_groups: u64,
    /// Most groups alive at once.
    pub peak_groups: usize,
}

/// One correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Index of the correlation in its [`CorrelationSet`].
    pub correlation: usize,
    /// `(group-by name, value)` in `group-by` order.
    pub group: Vec<(String, String)>,
    /// The aggregate the condition was tested on: event count, distinct
    /// value count, sum, average, percentile, or the number of distinct
    /// rules seen (temporal types).
    pub value: f64,
    /// Time of the earliest contributing event.
    pub first: DateTime<Utc>,
    /// Time of the latest contributing event.
    pub last: DateTime<Utc>,
    /// Handles (as passed to [`Correlator::feed`]) of the contributing base
    /// events in time order, at most [`Limits::max_events_per_hit`].
    pub events: Vec<u64>,
    /// Number of contributing base events.
    pub event_count: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    ts: DateTime<Utc>,
    handles: Vec<u64>,
    /// Distinct-value text or number, per type.
    text: Option<String>,
    num: f64,
}

/// Temporal slot: (chain start or event time, contributing handles, last time).
type Slot = (DateTime<Utc>, Vec<u64>, DateTime<Utc>);
/// Heap entry: (deadline, correlation, group key).
type Deadline = (DateTime<Utc>, usize, Vec<String>);

#[derive(Debug, Default)]
struct Group {
    /// Start of a close-mode window.
    start: Option<DateTime<Utc>>,
    entries: VecDeque<Entry>,
    distinct: HashMap<String, u32>,
    sum: f64,
    /// Temporal: latest event per input position. Ordered: best chain
    /// ending at each position, as (chain start, handles).
    slots: Vec<Option<Slot>>,
    /// When this group can be expired/closed (only ever moves later).
    deadline: DateTime<Utc>,
    /// The deadline of the heap entry that tracks this group.
    queued: DateTime<Utc>,
}

/// Window state for one pass over time-ordered hits. Single-threaded; one
/// per stream.
#[derive(Debug)]
pub struct Correlator<'s> {
    set: &'s CorrelationSet,
    limits: Limits,
    groups: Vec<HashMap<Vec<String>, Group>>,
    live: usize,
    heap: BinaryHeap<Reverse<Deadline>>,
    clock: Option<DateTime<Utc>>,
    stats: CorrelatorStats,
}

impl<'s> Correlator<'s> {
    /// A correlator with the given bounds.
    pub fn new(set: &'s CorrelationSet, limits: Limits) -> Self {
        Correlator {
            set,
            limits,
            groups: (0..set.len()).map(|_| HashMap::new()).collect(),
            live: 0,
            heap: BinaryHeap::new(),
            clock: None,
            stats: CorrelatorStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &CorrelatorStats {
        &self.stats
    }

    /// Groups alive now.
    pub fn live_groups(&self) -> usize {
        self.live
    }

    /// Feeds one hit of base rule `rule` (its [`Ruleset`] index) at time
    /// `ts`; `handle` identifies the event to the caller (it comes back in
    /// [`CorrelationHit::events`]); `event` gives the group-by and value
    /// fields. Returns the correlation hits that fired, chained ones
    /// included, in firing order.
    ///
    /// Hits must come in non-decreasing `ts` order; an earlier `ts` is
    /// treated as the latest time seen.
    pub fn feed(
        &mut self,
        rule: usize,
        ts: DateTime<Utc>,
        handle: u64,
        event: &dyn Fields,
    ) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        let ts = match self.clock {
            Some(c) if ts < c => c,
            _ => ts,
        };
        self.clock = Some(ts);
        self.advance(ts, &mut out);
        if let Some(cons) = self.set.consumers.get(&Input::Rule(rule)) {
            for &(ci, pos) in cons {
                self.input(ci, pos, ts, vec![handle], event, &mut out);
            }
        }
        out
    }

    /// Closes every open window (end of input) and returns what fires.
    pub fn flush(&mut self) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        for ci in 0..self.groups.len() {
            let mut keys: Vec<Vec<String>> = self.groups[ci].keys().cloned().collect();
            keys.sort();
            for k in keys {
                self.close(ci, &k, &mut out);
            }
        }
        self.heap.clear();
        out
    }

    /// Expires or closes groups whose deadline passed.
    fn advance(&mut self, now: DateTime<Utc>, out: &mut Vec<CorrelationHit>) {
        while let Some(Reverse((t, _, _))) = self.heap.peek() {
            if *t >= now {
                break;
            }
            let Some(Reverse((t, ci, key))) = self.heap.pop() else {
                break;
            };
            let Some(g) = self.groups[ci].get_mut(&key) else {
                continue;
            };
            if g.queued != t {
                continue; // stale entry of an earlier group with this key
            }
            if g.deadline < now {
                self.close(ci, &key, out);
            } else {
                g.queued = g.deadline;
                self.heap.push(Reverse((g.deadline, ci, key)));
            }
        }
    }

    /// Evaluates a close-mode group (or just drops an expired one).
    fn close(&mut self, ci: usize, key: &[String], out: &mut Vec<CorrelationHit>) {
        let Some(g) = self.groups[ci].remove(key) else {
            return;
        };
        self.live -= 1;
        let c = &self.set.corrs[ci];
        if c.on_close && !g.entries.is_empty() {
            let v = aggregate(c, &g);
            if c.predicates.iter().all(|p| p.holds(v)) {
                let hit = self.hit_from_entries(ci, key, v, g.entries.iter());
                self.emit(hit, out);
                return;
            }
        }
        self.stats.expired_groups += 1;
    }

    fn hit_from_entries<'e>(
        &self,
        ci: usize,
        key: &[String],
        value: f64,
        entries: impl Iterator<Item = &'e Entry>,
    ) -> CorrelationHit {
        let mut events = Vec::new();
        let mut count = 0u64;
        let mut first = None;
        let mut last = None;
        for e in entries {
            first = Some(first.map_or(e.ts, |f: DateTime<Utc>| f.min(e.ts)));
            last = Some(last.map_or(e.ts, |l: DateTime<Utc>| l.max(e.ts)));
            count += e.handles.len() as u64;
            for h in &e.handles {
                if events.len() < self.limits.max_events_per_hit {
                    events.push(*h);
                }
            }
        }
        let c = &self.set.corrs[ci];
        let t0 = self.clock.unwrap_or_default();
        CorrelationHit {
            correlation: ci,
            group: c
                .group_by
                .iter()
                .cloned()
                .zip(key.iter().cloned())
                .collect(),
            value,
            first: first.unwrap_or(t0),
            last: last.unwrap_or(t0),
            events,
            event_count: count,
        }
    }

    /// Records a hit and feeds it to correlations that chain on it.
    fn emit(&mut self, hit: CorrelationHit, out: &mut Vec<CorrelationHit>) {
        let ci = hit.correlation;
        let chained = self.set.consumers.get(&Input::Correlation(ci)).cloned();
        let fields: Vec<(String, String)> = hit.group.clone();
        let (ts, handles) = (hit.last, hit.events.clone());
        out.push(hit);
        if let Some(cons) = chained {
            for (cj, pos) in cons {
                self.input(cj, pos, ts, handles.clone(), &fields, out);
            }
        }
    }

    fn input(
        &mut self,
        ci: usize,
        pos: usize,
        ts: DateTime<Utc>,
        handles: Vec<u64>,
        event: &dyn Fields,
        out: &mut Vec<CorrelationHit>,
    ) {
        self.stats.inputs += 1;
        let set = self.set;
        let c = &set.corrs[ci];
        if !c.enabled {
            return;
        }
        let mut key = Vec::with_capacity(c.group_by.len());
        for f in &c.group_fields[pos] {
            match event.field(f) {
                Some(v) => key.push(v),
                None => {
                    self.stats.missing_group_field += 1;
                    return;
                }
            }
        }
        let (text, num) = match &c.value_fields[pos] {
            None => (None, f64::NAN),
            Some(f) => {
                let v = event.field(f);
                match c.kind {
                    CorrelationType::ValueCount => match v {
                        Some(v) => (Some(v), f64::NAN),
                        None => {
                            self.stats.missing_value += 1;
                            return;
                        }
                    },
                    _ => match v.as_deref().and_then(number) {
                        Some(n) => (None, n),
                        None => {
                            self.stats.missing_value += 1;
                            return;
                        }
                    },
                }
            }
        };
        let span = chrono::Duration::milliseconds(c.timespan_ms);
        // Close-mode: an event past the window closes it first.
        if c.on_close {
            let past = self.groups[ci]
                .get(&key)
                .and_then(|g| g.start)
                .is_some_and(|s| ts > plus(s, span));
            if past {
                self.close(ci, &key, out);
            }
        }
        if !self.groups[ci].contains_key(&key) {
            if self.live >= self.limits.max_groups {
                self.stats.dropped_group_events += 1;
                return;
            }
            self.live += 1;
            self.stats.peak_groups = self.stats.peak_groups.max(self.live);
            let first = plus(ts, span);
            let g = Group {
                start: Some(ts),
                slots: vec![None; c.inputs.len()],
                deadline: first,
                queued: first,
                ..Group::default()
            };
            self.groups[ci].insert(key.clone(), g);
            self.heap.push(Reverse((first, ci, key.clone())));
        }
        let limits = self.limits;
        let g = self.groups[ci].get_mut(&key).expect("inserted");
        let fired: Option<(f64, Vec<Entry>)> = match c.kind {
            CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
                let ordered = c.kind == CorrelationType::TemporalOrdered;
                let horizon = minus(ts, span);
                for s in g.slots.iter_mut() {
                    if s.as_ref().is_some_and(|(start, _, _)| *start < horizon) {
                        *s = None;
                    }
                }
                if ordered {
                    // Positions of this input (a rule may be listed twice), last first.
                    let positions: Vec<usize> = (0..c.inputs.len())
                        .rev()
                        .filter(|p| c.inputs[*p] == c.inputs[pos])
                        .collect();
                    for p in positions {
                        if p == 0 {
                            g.slots[0] = Some((ts, handles.clone(), ts));
                        } else if let Some((start, hs, _)) = g.slots[p - 1].clone() {
                            let better = g.slots[p].as_ref().is_none_or(|(s, _, _)| start >= *s);
                            if better {
                                let mut hs = hs;
                                hs.extend(&handles);
                                g.slots[p] = Some((start, hs, ts));
                            }
                        }
                    }
                    let n = c.inputs.len();
                    g.slots[n - 1].take().map(|(start, hs, end)| {
                        let e = vec![
                            Entry {
                                ts: start,
                                handles: Vec::new(),
                                text: None,
                                num: 0.0,
                            },
                            Entry {
                                ts: end,
                                handles: hs,
                                text: None,
                                num: 0.0,
                            },
                        ];
                        (n as f64, e)
                    })
                } else {
                    // Temporal: this input is seen now (all positions it holds).
                    for p in 0..c.inputs.len() {
                        if c.inputs[p] == c.inputs[pos] {
                            g.slots[p] = Some((ts, handles.clone(), ts));
                        }
                    }
                    let present: Vec<bool> = g.slots.iter().map(Option::is_some).collect();
                    let distinct = present.iter().filter(|x| **x).count() as f64;
                    let ok = match &c.extended {
                        Some(e) => e.eval(&present),
                        None => c.predicates.iter().all(|p| p.holds(distinct)),
                    };
                    ok.then(|| {
                        let mut es: Vec<Entry> = g
                            .slots
                            .iter()
                            .flatten()
                            .map(|(t, hs, _)| Entry {
                                ts: *t,
                                handles: hs.clone(),
                                text: None,
                                num: 0.0,
                            })
                            .collect();
                        es.sort_by_key(|e| e.ts);
                        (distinct, es)
                    })
                }
            }
            _ => {
                if !c.on_close {
                    // Sliding: evict entries before the window.
                    let horizon = minus(ts, span);
                    while g.entries.front().is_some_and(|e| e.ts < horizon) {
                        let e = g.entries.pop_front().expect("front");
                        unaccount(g, &e);
                    }
                }
                let e = Entry {
                    ts,
                    handles,
                    text,
                    num,
                };
                account(g, &e);
                g.entries.push_back(e);
                if g.entries.len() > limits.max_entries_per_group {
                    let e = g.entries.pop_front().expect("front");
                    unaccount(g, &e);
                    self.stats.dropped_entries += 1;
                }
                if c.on_close {
                    None
                } else {
                    let v = aggregate(c, g);
                    c.predicates
                        .iter()
                        .all(|p| p.holds(v))
                        .then(|| (v, g.entries.drain(..).collect()))
                }
            }
        };
        // Deadline: sliding groups die when their newest entry leaves the
        // window; close-mode groups close at start + timespan.
        let deadline = if c.on_close {
            plus(g.start.unwrap_or(ts), span)
        } else {
            plus(ts, span)
        };
        if let Some((v, entries)) = fired {
            self.groups[ci].remove(&key);
            self.live -= 1;
            let hit = self.hit_from_entries(ci, &key, v, entries.iter());
            self.emit(hit, out);
        } else {
            g.deadline = deadline;
        }
    }
}

fn account(g: &mut Group, e: &Entry) {
    if let Some(t) = &e.text {
        *g.distinct.entry(t.clone()).or_default() += 1;
    }
    if !e.num.is_nan() {
        g.sum += e.num;
    }
}

fn unaccount(g: &mut Group, e: &Entry) {
    if let Some(t) = &e.text {
        if let Some(n) = g.distinct.get_mut(t) {
            *n -= 1;
            if *n == 0 {
                g.distinct.remove(t);
            }
        }
    }
    if !e.num.is_nan() {
        g.sum -= e.num;
    }
}

/// The aggregate the condition is tested on.
fn aggregate(c: &Correlation, g: &Group) -> f64 {
    match c.kind {
        CorrelationType::EventCount => g.entries.len() as f64,
        CorrelationType::ValueCount => g.distinct.len() as f64,
        CorrelationType::ValueSum => g.entries.iter().map(|e| e.num).sum(),
        CorrelationType::ValueAvg => {
            if g.entries.is_empty() {
                0.0
            } else {
                g.entries.iter().map(|e| e.num).sum::<f64>() / g.entries.len() as f64
            }
        }
        CorrelationType::ValuePercentile | CorrelationType::ValueMedian => {
            let mut v: Vec<f64> = g.entries.iter().map(|e| e.num).collect();
            v.sort_by(f64::total_cmp);
            nearest_rank(&v, c.percentile)
        }
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => 0.0,
    }
}

/// Nearest-rank percentile `p` (0–100) of sorted values; 0 when empty.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A field value as a number: decimal, or `0x` hexadecimal.
pub fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok().map(|n| n as f64);
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests;

mod state;
pub use state::WindowState;
