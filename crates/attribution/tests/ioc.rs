//! IOC evidence dominates technique evidence and is listed on the candidate.

use tracehunt_attack::ActorKb;
use tracehunt_attribution::{
    resolve_actor, Attributor, EvidenceKind, EvidenceSet, IocObservation, Observation,
};

/// Deep Panda's techniques (the crate docs' example).
const DEEP_PANDA: [&str; 8] = [
    "attack.t1546.008",
    "attack.t1505.003",
    "attack.t1218.010",
    "attack.t1564.003",
    "attack.t1027.005",
    "attack.t1021.002",
    "attack.t1047",
    "attack.t1018",
];

fn ioc(actor: &str, aliases: &[&str], value: &str) -> IocObservation {
    IocObservation {
        actor: actor.into(),
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
        ioc_type: "sha1".into(),
        value: value.into(),
        source: "test feed".into(),
        events: 1,
        ..IocObservation::default()
    }
}

#[test]
fn ioc_outranks_techniques_and_is_shown() {
    let kb = ActorKb::builtin();
    let ev = EvidenceSet {
        techniques: DEEP_PANDA.iter().map(|t| Observation::new(*t)).collect(),
        iocs: vec![ioc(
            "Sofacy",
            &[],
            "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a",
        )],
        ..EvidenceSet::default()
    };
    let a = Attributor::new(kb).attribute(&ev);
    let top = &a.candidates[0];
    assert_eq!(
        top.id,
        "G0007",
        "{:?}",
        a.candidates
            .iter()
            .map(|c| (&c.id, c.score))
            .collect::<Vec<_>>()
    );
    assert!(top.ioc_bonus >= tracehunt_attribution::IOC_WEIGHT);
    let e = top
        .matched
        .iter()
        .find(|e| e.kind == EvidenceKind::Ioc)
        .expect("IOC evidence");
    assert_eq!(e.id, "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a");
    assert_eq!(e.observed_as, ["Sofacy"]);
    assert!(a.confident, "{}", a.reason);
    assert!(a.reason.contains("IOC"), "{}", a.reason);
    // Deep Panda is still ranked, below.
    assert!(a.candidates.iter().any(|c| c.id == "G0009"));
}

#[test]
fn actors_resolve_through_aliases_and_ids() {
    let kb = ActorKb::builtin();
    // "Turla Group" is not an ATT&CK name; the MISP cluster's synonym "Turla" is.
    let o = ioc("Turla Group", &["Turla", "Snake"], "x");
    assert_eq!(resolve_actor(kb, &o).unwrap().id, "G0010");
    // "APT 29" only through the MISP galaxy's ATT&CK id.
    let o = ioc("APT 29", &["G0016"], "x");
    assert_eq!(resolve_actor(kb, &o).unwrap().id, "G0016");
    let o = IocObservation {
        attack_id: Some("G0050".into()),
        ..ioc("Ocean Lotus Group", &[], "x")
    };
    assert_eq!(resolve_actor(kb, &o).unwrap().id, "G0050");
    let ev = EvidenceSet {
        iocs: vec![ioc("Nobody Known", &[], "x")],
        ..EvidenceSet::default()
    };
    let a = Attributor::new(kb).attribute(&ev);
    assert!(a.candidates.is_empty());
    assert_eq!(a.unresolved, ["ioc-actor:Nobody Known"]);
    assert!(!a.confident);
}

#[test]
fn two_actors_with_iocs_are_not_confident_from_iocs_alone() {
    let kb = ActorKb::builtin();
    let ev = EvidenceSet {
        iocs: vec![
            ioc("Sofacy", &[], "a"),
            ioc("Turla", &[], "b"),
            ioc("Turla", &[], "c"),
        ],
        ..EvidenceSet::default()
    };
    let a = Attributor::new(kb).attribute(&ev);
    assert_eq!(a.candidates[0].id, "G0010"); // two IOCs beat one
    assert_eq!(a.candidates[1].id, "G0007");
    assert!(!a.reason.contains("no other group has IOC evidence"));
    // JSON without `iocs` still parses (serde default).
    let ev: EvidenceSet =
        serde_json::from_str(r#"{"techniques":[{"technique":"T1059"}]}"#).unwrap();
    assert!(ev.iocs.is_empty());
}
