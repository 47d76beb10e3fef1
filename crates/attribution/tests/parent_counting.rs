//! Issue #18 item 1: a parent-technique tag (T1087, T1053, T1569) matches every group that
//! uses the parent or any of its sub-techniques, with that true group count, and a parent
//! observed beside one of its sub-techniques is not counted twice. Measured on ATT&CK v18.1
//! (the built-in knowledge base).

use tracehunt_attack::{ActorKb, Source};
use tracehunt_attribution::{Attributor, EvidenceSet, MatchKind, Observation, ScoringConfig};

fn evidence(ts: &[&str]) -> EvidenceSet {
    EvidenceSet {
        techniques: ts.iter().map(|t| Observation::new(*t)).collect(),
        ..EvidenceSet::default()
    }
}

/// Groups whose profile holds `parent` or one of its sub-techniques, counted from the
/// knowledge base itself: (directly, through any source).
fn family_counts(kb: &ActorKb, parent: &str) -> (usize, usize) {
    let in_family = |t: &str| t == parent || t.starts_with(&format!("{parent}."));
    let direct = kb
        .groups()
        .values()
        .filter(|g| {
            g.techniques
                .iter()
                .any(|(t, s)| in_family(t) && s.contains(&Source::Direct))
        })
        .count();
    let any = kb
        .groups()
        .values()
        .filter(|g| g.techniques.keys().any(|t| in_family(t)))
        .count();
    (direct, any)
}

#[test]
fn parent_tags_count_groups_using_any_subtechnique() {
    let kb = ActorKb::builtin();
    let at = Attributor::with_config(
        kb,
        ScoringConfig {
            top_n: 0,
            ..ScoringConfig::default()
        },
    );
    // (parent, groups listing it or a sub-technique directly — issue #18's "about 39" and
    // "58" — and through any source (campaigns, software the group uses: PsExec brings
    // T1569.002 to many), which is what `groups_using` counts). Before the fix the model
    // said 6, 1 and 0 groups (only those listing the bare parent).
    for (parent, direct, any) in [("T1087", 39, 85), ("T1053", 58, 96), ("T1569", 17, 93)] {
        let (d, a) = family_counts(kb, parent);
        assert_eq!((d, a), (direct, any), "{parent}: measured family counts");
        let r = at.attribute(&evidence(&[parent]));
        assert_eq!(r.observed.len(), 1);
        assert_eq!(r.observed[0].groups_using, any, "{parent}");
        // Every group of the family is a candidate, none outside it.
        assert_eq!(r.candidates.len(), any, "{parent}");
        let subs = r
            .candidates
            .iter()
            .filter(|c| c.matched[0].match_kind == MatchKind::SubTechnique)
            .count();
        assert!(
            subs > 0,
            "{parent}: some groups match only via a sub-technique"
        );
        for c in &r.candidates {
            let e = &c.matched[0];
            match e.match_kind {
                MatchKind::Exact => assert_eq!(e.matched_id, parent),
                MatchKind::SubTechnique => assert!(e.matched_id.starts_with(parent)),
                k => panic!("{parent}: unexpected match kind {k:?}"),
            }
        }
    }
}

#[test]
fn parent_beside_its_subtechnique_is_counted_once() {
    let kb = ActorKb::builtin();
    let at = Attributor::new(kb);
    let both = at.attribute(&evidence(&["attack.t1087", "attack.t1087.002"]));
    let sub = at.attribute(&evidence(&["attack.t1087.002"]));
    assert_eq!(both.observed.len(), 1);
    assert_eq!(both.observed[0].id, "T1087.002");
    assert_eq!(
        both.observed[0].observed_as,
        vec!["attack.t1087.002", "attack.t1087"]
    );
    // Same scores as the sub-technique alone: the parent adds nothing.
    assert_eq!(both.candidates[0].id, sub.candidates[0].id);
    assert!((both.candidates[0].score - sub.candidates[0].score).abs() < 1e-12);
}
