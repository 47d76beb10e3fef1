//! Ranking tests. The bundle-based test reads `../shared/corpora/attack/enterprise-attack-18.1.json`
//! (mitre/cti 421deacb, ATT&CK v18.1) and is skipped when the corpus is absent; the others use
//! the built-in snapshot.

use std::path::PathBuf;

use tracehunt_attack::{ActorKb, Source};
use tracehunt_attribution::{
    Attribution, Attributor, EvidenceKind, EvidenceSet, MatchKind, Observation, TagObservation,
};

/// Deep Panda's (G0009) direct `uses` attack-patterns in ATT&CK v18.1.
const DEEP_PANDA: [&str; 10] = [
    "T1018",
    "T1021.002",
    "T1027.005",
    "T1047",
    "T1057",
    "T1059.001",
    "T1218.010",
    "T1505.003",
    "T1546.008",
    "T1564.003",
];
const COMMON: [&str; 5] = ["T1059.001", "T1105", "T1082", "T1083", "T1057"];

fn evidence(ids: &[&str]) -> EvidenceSet {
    EvidenceSet {
        techniques: ids.iter().map(|t| Observation::new(*t)).collect(),
        ..EvidenceSet::default()
    }
}

fn summary(a: &Attribution) -> String {
    a.candidates
        .iter()
        .take(5)
        .map(|c| format!("{} {} {} {:.4}", c.rank, c.id, c.name, c.score))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn deep_panda_from_bundle_ranks_first() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/attack/enterprise-attack-18.1.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} not available", path.display());
        return;
    };
    let kb = ActorKb::from_stix_json(&text).unwrap();
    // The group's direct `uses` → attack-pattern relationships, computed from the bundle.
    let g = kb.group("G0009").unwrap();
    let direct: Vec<&str> = g
        .techniques
        .iter()
        .filter(|(_, s)| s.contains(&Source::Direct))
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(direct.len(), 10);
    let a = Attributor::new(&kb).attribute(&evidence(&direct));
    eprintln!("bundle Deep Panda: {} | {}", summary(&a), a.reason);
    assert_eq!(a.candidates[0].id, "G0009", "{}", summary(&a));
    assert!(a.confident, "{}", a.reason);
}

#[test]
fn deep_panda_builtin_ranks_first_and_confident() {
    let kb = ActorKb::builtin();
    let a = Attributor::new(kb).attribute(&evidence(&DEEP_PANDA));
    eprintln!("builtin Deep Panda: {} | {}", summary(&a), a.reason);
    let top = &a.candidates[0];
    assert_eq!(top.id, "G0009");
    assert_eq!(top.name, "Deep Panda");
    assert!(top.aliases.contains(&"Shell Crew".to_string()));
    assert!(a.confident, "{}", a.reason);
    assert_eq!(top.matched_count, 10);
    assert_eq!(top.missing_count, 0);
    assert!((top.coverage - 1.0).abs() < 1e-9);
    // Contributions, missing penalty and group-level prior add up to the score.
    let sum: f64 = top.matched.iter().map(|e| e.weight).sum();
    assert!((sum + top.missing_penalty + top.prior - top.score).abs() < 1e-9);
    assert_eq!(top.missing_penalty, 0.0);
    // A STIX confidence with its WEP label, consistent with the probability.
    assert_eq!(top.confidence, (top.probability * 100.0).round() as u8);
    assert_eq!(
        top.confidence_label,
        tracehunt_attribution::wep_label(top.confidence)
    );
    assert!(a.candidates[1].probability < top.probability);
    assert!(top
        .matched
        .iter()
        .all(|e| e.sources.contains(&Source::Direct)));
    // Sorted by score, ties by id.
    for w in a.candidates.windows(2) {
        assert!(w[0].score > w[1].score || (w[0].score == w[1].score && w[0].id < w[1].id));
    }
}

#[test]
fn common_techniques_are_not_confident() {
    let kb = ActorKb::builtin();
    let a = Attributor::new(kb).attribute(&evidence(&COMMON));
    eprintln!("common: {} | {}", summary(&a), a.reason);
    assert!(!a.confident, "{}", a.reason);
    assert!(a.reason.starts_with("no confident attribution"));
    assert!(!a.candidates.is_empty());
}

#[test]
fn sigma_v19_tags_and_merging() {
    let kb = ActorKb::builtin();
    let mut ev = evidence(&["attack.t1685", "attack.t1682", "attack.execution"]);
    ev.techniques.push(Observation {
        technique: "T1562.001".into(),
        rule_ids: vec!["r1".into()],
        rule_titles: vec!["Defender disabled".into()],
        events: 3,
    });
    ev.techniques[0].events = 2;
    let a = Attributor::new(kb).attribute(&ev);
    assert_eq!(a.observed.len(), 1);
    assert_eq!(a.observed[0].id, "T1562.001");
    assert_eq!(a.observed[0].observed_as, vec!["attack.t1685", "T1562.001"]);
    assert_eq!(a.unresolved, vec!["attack.t1682", "attack.execution"]);
    let e = &a.candidates[0].matched[0];
    assert_eq!(e.events, 5);
    assert_eq!(e.rule_ids, vec!["r1"]);
    assert!(!a.confident);
}

#[test]
fn parent_and_subtechnique_matches_are_partial() {
    let kb = ActorKb::builtin();
    let at = Attributor::new(kb);
    // Deep Panda lists T1546.008; observing the parent T1546 matches it partially.
    let a = at.attribute(&evidence(&["T1546"]));
    let dp = a.candidates.iter().find(|c| c.id == "G0009");
    if let Some(dp) = dp {
        let e = &dp.matched[0];
        assert!(matches!(
            e.match_kind,
            MatchKind::SubTechnique | MatchKind::Exact
        ));
    }
    // A sub-technique no group lists exactly still meets groups that list its parent.
    let a = at.attribute(&evidence(&["T1059.010"]));
    assert!(a
        .candidates
        .iter()
        .flat_map(|c| &c.matched)
        .any(|e| e.match_kind == MatchKind::Parent && e.matched_id == "T1059"));
}

#[test]
fn software_and_group_tags() {
    let kb = ActorKb::builtin();
    let mut ev = evidence(&DEEP_PANDA[..4]);
    ev.software.push(TagObservation {
        id: "attack.s0021".into(), // Derusbi
        ..TagObservation::default()
    });
    ev.groups.push(TagObservation {
        id: "attack.g0009".into(),
        rule_ids: vec!["x".into()],
        ..TagObservation::default()
    });
    ev.groups.push(TagObservation {
        id: "attack.g9999".into(),
        ..TagObservation::default()
    });
    let a = Attributor::new(kb).attribute(&ev);
    let top = &a.candidates[0];
    assert_eq!(top.id, "G0009");
    assert!(top.tag_bonus > 0.0);
    assert!(top
        .matched
        .iter()
        .any(|e| e.kind == EvidenceKind::Software && e.id == "S0021"));
    assert!(top.matched.iter().any(|e| e.kind == EvidenceKind::GroupTag));
    assert_eq!(a.unresolved, vec!["attack.g9999"]);
}

#[test]
fn empty_and_garbage_evidence() {
    let kb = ActorKb::builtin();
    let at = Attributor::new(kb);
    let a = at.attribute(&EvidenceSet::default());
    assert!(a.candidates.is_empty());
    assert!(!a.confident);
    let a = at.attribute(&evidence(&["", "T", "attack.", "💥", "T9999.999"]));
    assert!(a.candidates.is_empty());
    assert!(!a.confident);
    let empty = ActorKb::empty();
    let a = Attributor::new(&empty).attribute(&evidence(&DEEP_PANDA));
    assert!(a.candidates.is_empty() && !a.confident);
}

#[test]
fn json_round_trip() {
    let kb = ActorKb::builtin();
    let ev: EvidenceSet = serde_json::from_str(
        r#"{"techniques":[{"technique":"attack.t1505.003","rule_ids":["a"],"events":4},{"technique":"T1546.008"}]}"#,
    )
    .unwrap();
    let a = Attributor::new(kb).attribute(&ev);
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(
        json["candidates"][0]["matched"][0]["sources"][0]["kind"],
        "direct"
    );
    let back: Attribution = serde_json::from_value(json).unwrap();
    assert_eq!(back, a);
}

#[test]
fn hold_out_campaign_changes_profile() {
    let kb = ActorKb::builtin();
    let c = kb.campaign("C0017").unwrap();
    let techniques: Vec<&str> = c.techniques.iter().map(String::as_str).collect();
    let full = Attributor::new(kb).attribute(&evidence(&techniques));
    let held_kb = kb.hold_out_campaign("C0017");
    let held = Attributor::new(&held_kb).attribute(&evidence(&techniques));
    eprintln!(
        "C0017 full: {}\nC0017 held out: {}",
        summary(&full),
        summary(&held)
    );
    assert_eq!(full.candidates[0].id, "G0096", "APT41");
    assert!(held
        .candidates
        .iter()
        .flat_map(|c| &c.matched)
        .flat_map(|e| &e.sources)
        .all(|s| s.campaign() != Some("C0017")));
}

#[test]
fn observation_window_uses_the_groups_activity_period() {
    use tracehunt_attribution::{activity_period, Window};
    let kb = ActorKb::builtin();
    // Deep Panda's dated ATT&CK reports run from 2014 to 2017 (it has no campaign).
    let g = kb.group("G0009").unwrap();
    assert_eq!(g.citations.values().min(), Some(&2014));
    assert_eq!(g.citations.values().max(), Some(&2017));
    let period = activity_period(kb, g).unwrap();
    assert_eq!((period.first, period.last), (2014.0, 2017.0 + 11.0 / 12.0));

    let at = Attributor::with_config(
        kb,
        tracehunt_attribution::ScoringConfig {
            top_n: 0,
            ..Default::default()
        },
    );
    let ev = evidence(&DEEP_PANDA);
    let none = at.attribute(&ev);
    let during = at.attribute_in(&ev, Window::from_dates("2015-01-01", "2015-06-30"));
    let later = at.attribute_in(&ev, Window::from_dates("2024-01-01", "2024-01-01"));
    eprintln!("2015: {}\n2024: {}", summary(&during), summary(&later));
    // Inside its period nothing changes for Deep Panda; groups not active then lose.
    assert_eq!(during.candidates[0].id, "G0009");
    assert!((during.candidates[0].score - none.candidates[0].score).abs() < 1e-9);
    assert!(during.candidates[0].probability > none.candidates[0].probability);
    // Six years after its last report it loses w_time · ln(1 + gap) and APT41 (active in
    // 2024) goes first.
    let dp = later.candidates.iter().find(|c| c.id == "G0009").unwrap();
    let gap = 2024.0 - (2017.0 + 11.0 / 12.0);
    let w = at.config().weights.time;
    assert!((none.candidates[0].score - dp.score - w * (1.0f64 + gap).ln()).abs() < 1e-9);
    assert_eq!(later.candidates[0].id, "G0096");
}

/// Fresh-user finding: a candidate whose probability rounded to 0 % was labelled
/// "Impossible" (the STIX 2.1 WEP word for confidence 0). A positive probability now maps to
/// at least 1 ("Highly Unlikely/Almost Certainly Not"), and the labels are the STIX 2.1
/// appendix "Confidence Scales" WEP words.
#[test]
fn a_confidence_that_rounds_to_zero_is_not_labelled_impossible() {
    use tracehunt_attribution::{stix_confidence, wep_label};
    assert_eq!(stix_confidence(0.003), 1);
    assert_eq!(stix_confidence(0.0), 0);
    assert_eq!(stix_confidence(0.999), 99);
    assert_eq!(stix_confidence(1.0), 100);
    assert_eq!(stix_confidence(0.06), 6);
    assert_eq!(wep_label(1), "Highly Unlikely/Almost Certainly Not");
    assert_eq!(wep_label(50), "Even Chance");
    assert_eq!(wep_label(90), "Highly Likely/Almost Certain");
    assert_eq!(wep_label(100), "Certain");
    // Real ranking: the built-in ATT&CK snapshot; an IOC tied to Sofacy (APT28) dominates,
    // so the runners-up are well under 0.5 %.
    let kb = ActorKb::builtin();
    let mut ev = evidence(&COMMON);
    ev.iocs = vec![tracehunt_attribution::IocObservation {
        actor: "Sofacy".into(),
        ioc_type: "sha1".into(),
        value: "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a".into(),
        source: "test feed".into(),
        // As large and exclusive a feed as the maltrail corpus (issue #18 item 4).
        feed_format: "maltrail".into(),
        feed_values: 10_655,
        feed_multi_actor: 12,
        events: 1,
        ..Default::default()
    }];
    let a = Attributor::new(kb).attribute(&ev);
    assert_eq!(a.candidates[0].id, "G0007");
    let last = a.candidates.last().unwrap();
    assert!(
        last.probability > 0.0 && last.probability < 0.005,
        "{}",
        last.probability
    );
    for c in &a.candidates {
        assert!(c.confidence >= 1, "{} {}", c.id, c.probability);
        assert_ne!(c.confidence_label, "Impossible", "{}", c.id);
    }
}
