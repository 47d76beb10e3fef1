//! Compiling correlation documents into a [`CorrelationSet`]: inputs resolved to rules and
//! other correlations, cycles and unknown references diagnosed, conditions as [`Expr`].

use crate::{Correlator, Limits};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tracehunt_engine::{RuleMeta, Ruleset};
use tracehunt_sigma::ast::{
    ConditionExpr, ConditionOperator, CorrelationCondition, CorrelationType, Quantifier,
    SelectorPattern, WindowMode,
};
use tracehunt_sigma::{Code, CorrelationDoc, Diagnostic};

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
    pub(crate) fn holds(&self, x: f64) -> bool {
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
    pub(crate) extended: Option<Expr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Expr {
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

    pub(crate) fn eval(&self, present: &[bool]) -> bool {
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
    pub(crate) corrs: Vec<Correlation>,
    /// Per input: `(correlation, position in its inputs)`.
    pub(crate) consumers: HashMap<Input, Vec<(usize, usize)>>,
    /// Rules referenced only by correlations with `generate: false`.
    pub(crate) suppressed: Vec<usize>,
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

pub(crate) fn reaches(
    from: usize,
    target: usize,
    res: &[Option<Vec<Input>>],
    seen: &mut Vec<bool>,
) -> bool {
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

pub(crate) fn meta_of(d: &CorrelationDoc) -> RuleMeta {
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

pub(crate) fn never(d: &CorrelationDoc, inputs: Vec<Input>) -> Correlation {
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

pub(crate) fn compile_one(
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

pub(crate) fn expr(e: &ConditionExpr, handles: &[Vec<String>]) -> Result<Expr, String> {
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
