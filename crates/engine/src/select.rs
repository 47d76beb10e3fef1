//! Rule selection: which loaded rules run (issue #19), following Hayabusa's
//! options (`--include-status`, `--exclude-status`, `--include-tag`,
//! `--exclude-tag`, `--exclude-rules`, `--noisy-rules`, `--exact-level`).
//!
//! A rule the selection leaves out is still loaded (its
//! [`RuleMeta`](crate::RuleMeta) is in the [`Ruleset`](crate::Ruleset), so
//! counts and `rules check` see it), but it is inactive and never routed to
//! an event: [`RuleMeta::excluded`](crate::RuleMeta::excluded) says why.

use std::collections::{HashMap, HashSet};

/// Why a rule is left out, in the words of the hunt summary's
/// `rules_skipped_by_reason` keys.
pub mod reason {
    /// `--exclude-status`, `--include-status` without the rule's status, or
    /// a deprecated/unsupported rule not enabled.
    pub const STATUS: &str = "excluded_by_status";
    /// `--exclude-tag`, or `--include-tag` naming none of the rule's tags.
    pub const TAG: &str = "excluded_by_tag";
    /// `--exclude-rule-id`/`--exclude-rules`, or `--rule-id` not naming it.
    pub const ID: &str = "excluded_by_id";
    /// Listed in `--noisy-rules` (without `--enable-noisy-rules`).
    pub const NOISY: &str = "noisy";
    /// Its level is not `--exact-level`.
    pub const LEVEL: &str = "level_not_exact";
}

/// Which rules run. The default selects every rule (a library caller gets
/// no surprise); the CLI leaves out deprecated and unsupported rules as
/// Hayabusa does.
///
/// Statuses are Sigma's (`stable`, `test`, `experimental`, `deprecated`,
/// `unsupported`), lower-case. Tags are compared case-insensitively; a tag
/// given here also matches the rule tags below it (`attack.t1059` matches
/// `attack.t1059.001`). Ids are compared case-insensitively with the
/// Sigma `id` (or the title of a rule without one).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only rules with one of these statuses (empty: any status; a rule
    /// without `status` is left out when this is not empty).
    pub include_status: Vec<String>,
    /// Rules with one of these statuses are left out (also when no
    /// include list names them: the CLI puts `deprecated` and
    /// `unsupported` here by default).
    pub exclude_status: Vec<String>,
    /// Only rules with at least one of these tags (empty: any).
    pub include_tags: Vec<String>,
    /// Rules with any of these tags are left out.
    pub exclude_tags: Vec<String>,
    /// Only these rule ids (empty: any).
    pub include_ids: HashSet<String>,
    /// These rule ids are left out.
    pub exclude_ids: HashSet<String>,
    /// Noisy rule ids, left out (reason `noisy`).
    pub noisy_ids: HashSet<String>,
    /// Only rules of this level rank (informational 0 … critical 4).
    pub exact_level: Option<u8>,
    /// Rule tag (lower-case) → other tags it also counts as when matched
    /// against the tag lists (the CLI fills it with ATT&CK v19 → v18.1
    /// equivalents, so `attack.t1685.005` also counts as
    /// `attack.t1070.001`). Empty: a rule tag is only itself.
    pub tag_aliases: HashMap<String, Vec<String>>,
}

/// `tag` (a rule's, any case) is `want` (lower-case) or below it
/// (`attack.t1059.001` under `attack.t1059`).
fn tag_matches(tag: &str, want: &str) -> bool {
    let t = tag.to_ascii_lowercase();
    t == want
        || t.strip_prefix(want)
            .is_some_and(|rest| rest.starts_with('.'))
}

impl Selection {
    /// Lower-cases every list (statuses, tags, ids) so the checks compare
    /// in one case; the CLI calls it once after filling the lists.
    pub fn normalised(mut self) -> Self {
        let lower = |v: &mut Vec<String>| {
            for s in v.iter_mut() {
                *s = s.trim().to_ascii_lowercase();
            }
        };
        lower(&mut self.include_status);
        lower(&mut self.exclude_status);
        lower(&mut self.include_tags);
        lower(&mut self.exclude_tags);
        let set = |s: HashSet<String>| s.into_iter().map(|x| x.to_ascii_lowercase()).collect();
        self.include_ids = set(self.include_ids);
        self.exclude_ids = set(self.exclude_ids);
        self.noisy_ids = set(self.noisy_ids);
        self.tag_aliases = self
            .tag_aliases
            .into_iter()
            .map(|(k, v)| {
                let v = v.into_iter().map(|x| x.to_ascii_lowercase()).collect();
                (k.to_ascii_lowercase(), v)
            })
            .collect();
        self
    }

    /// Why a rule with this `id`, `status` (lower-case), `tags` and level
    /// rank is left out ([`reason`]), or `None` when it runs. Explicit ids
    /// are checked first, then noisy ids, status, tags and level. The
    /// lists must be lower-case ([`Selection::normalised`]).
    pub fn excludes(
        &self,
        id: &str,
        status: Option<&str>,
        tags: &[String],
        level_rank: u8,
    ) -> Option<&'static str> {
        let id = id.to_ascii_lowercase();
        if self.exclude_ids.contains(&id)
            || (!self.include_ids.is_empty() && !self.include_ids.contains(&id))
        {
            return Some(reason::ID);
        }
        if self.noisy_ids.contains(&id) {
            return Some(reason::NOISY);
        }
        let listed = |v: &[String]| status.is_some_and(|s| v.iter().any(|x| x == s));
        if listed(&self.exclude_status)
            || (!self.include_status.is_empty() && !listed(&self.include_status))
        {
            return Some(reason::STATUS);
        }
        let rule_tags: Vec<String> = tags
            .iter()
            .flat_map(|t| {
                let t = t.to_ascii_lowercase();
                let aliases = self.tag_aliases.get(&t).cloned().unwrap_or_default();
                std::iter::once(t).chain(aliases)
            })
            .collect();
        let any_tag = |v: &[String]| {
            v.iter()
                .any(|want| rule_tags.iter().any(|t| tag_matches(t, want)))
        };
        if any_tag(&self.exclude_tags)
            || (!self.include_tags.is_empty() && !any_tag(&self.include_tags))
        {
            return Some(reason::TAG);
        }
        if self.exact_level.is_some_and(|l| l != level_rank) {
            return Some(reason::LEVEL);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_selects_everything() {
        let s = Selection::default().normalised();
        assert_eq!(s.excludes("x", Some("deprecated"), &[], 0), None);
        assert_eq!(s.excludes("x", None, &tags(&["attack.t1059"]), 4), None);
    }

    #[test]
    fn each_list_gives_its_reason() {
        let s = Selection {
            exclude_status: vec!["Deprecated".into()],
            include_tags: vec!["ATTACK.T1059".into()],
            exclude_ids: ["ABC".to_owned()].into(),
            noisy_ids: ["noisy-1".to_owned()].into(),
            exact_level: Some(3),
            ..Selection::default()
        }
        .normalised();
        let t = tags(&["attack.execution", "attack.t1059.001"]);
        assert_eq!(s.excludes("abc", Some("test"), &t, 3), Some(reason::ID));
        assert_eq!(
            s.excludes("noisy-1", Some("test"), &t, 3),
            Some(reason::NOISY)
        );
        assert_eq!(
            s.excludes("r", Some("deprecated"), &t, 3),
            Some(reason::STATUS)
        );
        // A sub-technique tag is under the technique asked for; a tag that
        // merely starts with the same letters is not.
        assert_eq!(s.excludes("r", Some("test"), &t, 3), None);
        let other = tags(&["attack.t10590"]);
        assert_eq!(s.excludes("r", Some("test"), &other, 3), Some(reason::TAG));
        assert_eq!(s.excludes("r", Some("test"), &t, 4), Some(reason::LEVEL));
    }

    #[test]
    fn tag_aliases_let_a_rule_tag_count_as_its_equivalent() {
        let s = Selection {
            include_tags: vec!["attack.t1070".into()],
            tag_aliases: [(
                "ATTACK.T1685.005".to_owned(),
                vec!["attack.t1070.001".into()],
            )]
            .into(),
            ..Selection::default()
        }
        .normalised();
        assert_eq!(s.excludes("r", None, &tags(&["attack.t1685.005"]), 0), None);
        assert_eq!(
            s.excludes("r", None, &tags(&["attack.t1685.001"]), 0),
            Some(reason::TAG)
        );
    }

    #[test]
    fn include_lists_leave_out_what_they_do_not_name() {
        let s = Selection {
            include_status: vec!["stable".into()],
            include_ids: ["keep".to_owned()].into(),
            ..Selection::default()
        }
        .normalised();
        assert_eq!(s.excludes("KEEP", Some("stable"), &[], 0), None);
        assert_eq!(
            s.excludes("other", Some("stable"), &[], 0),
            Some(reason::ID)
        );
        assert_eq!(
            s.excludes("keep", Some("test"), &[], 0),
            Some(reason::STATUS)
        );
        assert_eq!(s.excludes("keep", None, &[], 0), Some(reason::STATUS));
    }
}
