//! Sigma filters (meta filter rules) applied to detection rules as an AST
//! transformation before compilation.
//!
//! Specification: sigmahq/sigma-specification
//! `specification/sigma-filters-specification.md` (v2.0.0). A filter document
//! names the rules it tunes (`filter.rules`: ids or names, or `any`), a
//! `logsource`, named selections and one `condition`. Applying it follows the
//! reference implementation (pySigma `SigmaFilter.apply_on_rule`): the
//! filter's selections are added to the rule and every condition of the rule
//! becomes `(rule condition) and (filter condition)`. A filter that
//! *suppresses* matches therefore says so in its condition, as in the
//! SigmaHQ examples: `condition: not selection`.
//!
//! A filter applies to a rule when
//! 1. the rule is named in `filter.rules` by its `id` or `name` (or the filter
//!    says `rules: any` / an empty list), and
//! 2. every `category`, `product` and `service` the filter's `logsource` sets
//!    equals the rule's (ASCII case-insensitive); a filter without a
//!    `logsource` passes this test.
//!
//! Filters never apply to correlation rules (pySigma does the same).

use crate::ast::{
    ConditionExpr, FilterRule, FilterRuleTarget, LogSource, Quantifier, SelectorPattern,
};
use crate::diag::{Code, Diagnostic};
use crate::load::RuleDoc;

/// One filter document as loaded, with where it came from.
#[derive(Debug, Clone)]
pub struct FilterDoc {
    /// The parsed filter (rsigma-parser AST).
    pub filter: FilterRule,
    /// The file label the caller passed.
    pub file: String,
    /// 1-based line of the document's `filter:` key, best effort.
    pub line: u32,
}

/// The prefix of the selection names a filter adds to a rule:
/// `__filter_<n>_<name>`, where `<n>` is the filter's index in the slice
/// given to [`apply_filters`]. Names starting with `_` are not matched by
/// `them` (Sigma rules specification, condition section), so the rule's own
/// `1 of them`/`all of them` keep their meaning.
pub const FILTER_PREFIX: &str = "__filter_";

/// Applies every filter to the rules it targets, in slice order, rewriting
/// the rules' detections in place (see the module docs for the semantics).
///
/// Returns diagnostics: `TH014` (warning) for a filter that names a rule
/// which is not loaded or whose logsource differs, `TH004` (warning-free
/// error code, but the rule stays loaded unfiltered) when a rule's condition
/// cannot be combined with the filter (an `N of` selector whose pattern would
/// also match the filter's selections).
pub fn apply_filters(rules: &mut [RuleDoc], filters: &[FilterDoc]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (n, fd) in filters.iter().enumerate() {
        let f = &fd.filter;
        let label = f.id.clone().or_else(|| Some(f.title.clone()));
        let named: Option<&[String]> = match &f.rules {
            FilterRuleTarget::Any => None,
            FilterRuleTarget::Specific(v) => Some(v),
        };
        let mut found = vec![false; named.map_or(0, <[String]>::len)];
        for doc in rules.iter_mut() {
            let r = &doc.rule;
            if let Some(names) = named {
                let hit = names.iter().position(|want| {
                    r.id.as_deref() == Some(want.as_str()) || r.name.as_deref() == Some(want)
                });
                let Some(i) = hit else { continue };
                found[i] = true;
                if !logsource_covers(f.logsource.as_ref(), &r.logsource) {
                    diags.push(
                        Diagnostic::new(
                            Code::UnresolvedReference,
                            &fd.file,
                            Some(fd.line),
                            format!(
                                "filter names rule `{}` but its logsource differs from the rule's; not applied",
                                names[i]
                            ),
                        )
                        .with_rule(label.clone()),
                    );
                    continue;
                }
            } else if !logsource_covers(f.logsource.as_ref(), &doc.rule.logsource) {
                continue;
            }
            if let Err(msg) = apply_one(n, f, doc) {
                diags.push(
                    Diagnostic::new(Code::Condition, &doc.file, Some(doc.line), msg)
                        .with_rule(doc.rule.id.clone().or_else(|| Some(doc.rule.title.clone()))),
                );
            }
        }
        if let Some(names) = named {
            for (i, want) in names.iter().enumerate() {
                if !found[i] {
                    diags.push(
                        Diagnostic::new(
                            Code::UnresolvedReference,
                            &fd.file,
                            Some(fd.line),
                            format!(
                                "filter names rule `{want}`, which is not loaded (by id or name)"
                            ),
                        )
                        .with_rule(label.clone()),
                    );
                }
            }
        }
    }
    diags
}

/// Does the filter's logsource cover the rule's? Every field the filter sets
/// must be equal (ASCII case-insensitive).
fn logsource_covers(filter: Option<&LogSource>, rule: &LogSource) -> bool {
    let Some(f) = filter else { return true };
    let eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (None, _) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (Some(_), None) => false,
    };
    eq(&f.category, &rule.category)
        && eq(&f.product, &rule.product)
        && eq(&f.service, &rule.service)
}

/// Adds filter `n`'s selections to the rule and ANDs its condition in.
fn apply_one(n: usize, f: &FilterRule, doc: &mut RuleDoc) -> Result<(), String> {
    let prefix = format!("{FILTER_PREFIX}{n}_");
    let det = &mut doc.rule.detection;
    let new_names: Vec<String> = f
        .detection
        .named
        .keys()
        .map(|k| format!("{prefix}{k}"))
        .collect();
    // The rule's own selectors must not start matching the new names.
    let own: Vec<String> = det.named.keys().cloned().collect();
    let mut conds = Vec::with_capacity(det.conditions.len());
    for c in &det.conditions {
        conds.push(isolate(c, &own, &new_names)?);
    }
    let fcond = match f.detection.conditions.len() {
        0 => return Err("filter has no condition; not applied".into()),
        1 => prefixed(&f.detection.conditions[0], &prefix),
        _ => ConditionExpr::Or(
            f.detection
                .conditions
                .iter()
                .map(|c| prefixed(c, &prefix))
                .collect(),
        ),
    };
    for (k, v) in &f.detection.named {
        det.named.insert(format!("{prefix}{k}"), v.clone());
    }
    det.conditions = conds
        .into_iter()
        .map(|c| ConditionExpr::And(vec![c, fcond.clone()]))
        .collect();
    let fstr = f.detection.condition_strings.join(" or ");
    for s in &mut det.condition_strings {
        *s = format!("({s}) and ({fstr})");
    }
    Ok(())
}

/// Rewrites the filter's condition to its prefixed selection names.
fn prefixed(c: &ConditionExpr, prefix: &str) -> ConditionExpr {
    match c {
        ConditionExpr::And(v) => {
            ConditionExpr::And(v.iter().map(|c| prefixed(c, prefix)).collect())
        }
        ConditionExpr::Or(v) => ConditionExpr::Or(v.iter().map(|c| prefixed(c, prefix)).collect()),
        ConditionExpr::Not(c) => ConditionExpr::Not(Box::new(prefixed(c, prefix))),
        ConditionExpr::Identifier(id) => ConditionExpr::Identifier(format!("{prefix}{id}")),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => ConditionExpr::Selector {
            quantifier: quantifier.clone(),
            pattern: SelectorPattern::Pattern(match pattern {
                SelectorPattern::Them => format!("{prefix}*"),
                SelectorPattern::Pattern(p) => format!("{prefix}{p}"),
            }),
        },
    }
}

/// Rewrites a selector of the rule's own condition whose pattern would also
/// match one of the added names into the explicit list of the rule's own
/// selections (`1 of` → or, `all of` → and). `them` never matches the added
/// names (they start with `_`).
fn isolate(c: &ConditionExpr, own: &[String], added: &[String]) -> Result<ConditionExpr, String> {
    Ok(match c {
        ConditionExpr::And(v) => ConditionExpr::And(
            v.iter()
                .map(|c| isolate(c, own, added))
                .collect::<Result<_, _>>()?,
        ),
        ConditionExpr::Or(v) => ConditionExpr::Or(
            v.iter()
                .map(|c| isolate(c, own, added))
                .collect::<Result<_, _>>()?,
        ),
        ConditionExpr::Not(c) => ConditionExpr::Not(Box::new(isolate(c, own, added)?)),
        ConditionExpr::Selector {
            quantifier,
            pattern: SelectorPattern::Pattern(p),
        } if added.iter().any(|a| name_glob(p, a)) => {
            let mut ids: Vec<ConditionExpr> = own
                .iter()
                .filter(|n| name_glob(p, n))
                .map(|n| ConditionExpr::Identifier(n.clone()))
                .collect();
            ids.sort_by_key(|c| c.to_string());
            match quantifier {
                _ if ids.is_empty() => c.clone(),
                Quantifier::Any => ConditionExpr::Or(ids),
                Quantifier::All => ConditionExpr::And(ids),
                Quantifier::Count(_) => {
                    return Err(format!(
                    "condition `{c}` would also count the filter's selections; filter not applied"
                ))
                }
            }
        }
        other => other.clone(),
    })
}

/// `*`-glob over selection and rule names, as in conditions' `1 of sel*`
/// (any number of `*`, each matching any run of characters). Shared by the
/// engine's selectors, filters and correlations. (`rsigma_parser`'s
/// `detection_name_matches` handles a single `*` only.)
pub fn name_glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let Some(mut rest) = name.strip_prefix(parts[0]) else {
        return false;
    };
    let last = parts.len() - 1;
    for p in &parts[1..last] {
        match rest.find(p) {
            Some(k) => rest = &rest[k + p.len()..],
            None => return false,
        }
    }
    rest.ends_with(parts[last])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_rules;

    fn load(y: &str) -> (Vec<RuleDoc>, Vec<FilterDoc>) {
        let f = load_rules("t.yml", y);
        assert!(
            f.diagnostics.iter().all(|d| d.code != Code::InvalidRule),
            "{:?}",
            f.diagnostics
        );
        (f.rules, f.filters)
    }

    const RULES: &str = "title: Data Compressed - rar.exe
id: 6f3e2987-db24-4c78-a860-b4f4095a7095
logsource: {category: process_creation, product: windows}
detection:
  selection:
    Image|endswith: '\\rar.exe'
  condition: selection
---
title: Other
id: 00000000-0000-4000-8000-000000000002
name: other_rule
logsource: {category: process_creation, product: windows}
detection:
  sel1:
    Image|endswith: '\\x.exe'
  sel2:
    Image|endswith: '\\y.exe'
  condition: 1 of sel* or all of them
---
title: Registry
id: 00000000-0000-4000-8000-000000000003
logsource: {category: registry_set, product: windows}
detection:
  selection:
    TargetObject|contains: 'Run'
  condition: selection
";

    #[test]
    fn spec_example_adds_selection_and_condition() {
        // The filters specification's example (rules by id, logsource
        // process_creation), with the SigmaHQ docs' `not selection`.
        let y = format!(
            "{RULES}---
title: Filter Administrator account
description: The valid administrator account start with adm_
logsource:
    category: process_creation
    product: windows
filter:
    rules:
        - 6f3e2987-db24-4c78-a860-b4f4095a7095 # Data Compressed - rar.exe
        - df0841c0-9846-4e9f-ad8a-7df91571771b # Login on jump host
    selection:
        User|startswith: 'adm_'
    condition: not selection
"
        );
        let (mut rules, filters) = load(&y);
        assert_eq!(filters.len(), 1);
        let d = apply_filters(&mut rules, &filters);
        // The second id is not loaded: one TH014 warning naming it.
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, Code::UnresolvedReference);
        assert!(d[0].message.contains("df0841c0"));
        let det = &rules[0].rule.detection;
        assert!(det.named.contains_key("__filter_0_selection"));
        assert_eq!(
            det.conditions[0].to_string(),
            "(selection and not __filter_0_selection)"
        );
        // Untargeted rules are untouched.
        assert_eq!(rules[1].rule.detection.named.len(), 2);
    }

    #[test]
    fn any_applies_by_logsource_and_keeps_them_meaning() {
        let y = format!(
            "{RULES}---
title: Not on DCs
logsource: {{product: windows, category: process_creation}}
filter:
  rules: any
  selection:
    ComputerName|startswith: 'DC-'
  condition: not selection
"
        );
        let (mut rules, filters) = load(&y);
        let d = apply_filters(&mut rules, &filters);
        assert!(d.is_empty(), "{d:?}");
        assert!(rules[0]
            .rule
            .detection
            .named
            .contains_key("__filter_0_selection"));
        assert!(rules[1]
            .rule
            .detection
            .named
            .contains_key("__filter_0_selection"));
        // registry_set is another logsource: untouched.
        assert_eq!(rules[2].rule.detection.named.len(), 1);
        // `1 of sel*` would not match `__filter_…`; `them` skips `_` names.
        assert_eq!(
            rules[1].rule.detection.conditions[0].to_string(),
            "((1 of sel* or all of them) and not __filter_0_selection)"
        );
    }

    #[test]
    fn by_name_and_star_patterns_are_isolated() {
        let y = "title: Star
name: star_rule
logsource: {product: windows, service: security}
detection:
  a_sel:
    EventID: 1
  b_sel:
    EventID: 2
  condition: 1 of *_sel
---
title: F
logsource: {product: windows}
filter:
  rules: [star_rule]
  x_sel:
    SubjectUserName: 'svc'
  condition: not 1 of x*
";
        let (mut rules, filters) = load(y);
        let d = apply_filters(&mut rules, &filters);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            rules[0].rule.detection.conditions[0].to_string(),
            "((a_sel or b_sel) and not 1 of __filter_0_x*)"
        );
    }

    #[test]
    fn named_rule_with_other_logsource_is_not_filtered() {
        let y = format!(
            "{RULES}---
title: F
logsource: {{product: windows, category: process_creation}}
filter:
  rules: [00000000-0000-4000-8000-000000000003]
  selection:
    User: x
  condition: not selection
"
        );
        let (mut rules, filters) = load(&y);
        let d = apply_filters(&mut rules, &filters);
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("logsource differs"));
        assert_eq!(rules[2].rule.detection.named.len(), 1);
    }
}
