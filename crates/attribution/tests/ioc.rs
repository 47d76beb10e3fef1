//! IOC evidence: a likelihood ratio from measured rates (issue #18 item 4), listed on the
//! candidate with its own feed entry.

use tracehunt_attack::ActorKb;
use tracehunt_attribution::{
    resolve_actor, Attributor, EvidenceKind, EvidenceSet, IocObservation, IocRates, Observation,
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

/// An observation from a feed as large and as exclusive as the maltrail corpus (10,655
/// actor-tied values, 12 listed under several actors).
fn measured(o: IocObservation) -> IocObservation {
    IocObservation {
        feed_format: "maltrail".into(),
        feed_values: 10_655,
        feed_multi_actor: 12,
        ..o
    }
}

#[test]
fn ioc_weight_is_the_measured_likelihood_ratio_and_is_shown() {
    let kb = ActorKb::builtin();
    let rates = IocRates::builtin();
    let at = Attributor::new(kb);
    let t = at.config().temperature;
    let o = measured(ioc(
        "Sofacy",
        &[],
        "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a",
    ));
    let s = o.multi_actor_rate(rates);
    assert!((s - rates.multi_actor("maltrail").max(12.5 / 10_656.0)).abs() < 1e-12);
    let lr = rates.likelihood_ratio("sha1", 1, s);
    assert!((lr - 1.0 / (rates.false_hit("sha1") + s)).abs() < 1e-9);
    // Alone, the IOC's group leads, by exactly T · ln LR over the prior.
    let a = at.attribute(&EvidenceSet {
        iocs: vec![o.clone()],
        ..EvidenceSet::default()
    });
    let top = &a.candidates[0];
    assert_eq!(top.id, "G0007");
    assert!(
        (top.ioc_bonus - t * lr.ln()).abs() < 1e-9,
        "{}",
        top.ioc_bonus
    );
    let e = top
        .matched
        .iter()
        .find(|e| e.kind == EvidenceKind::Ioc)
        .expect("IOC evidence");
    assert_eq!(e.id, "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a");
    assert_eq!(e.observed_as, ["Sofacy"]);
    assert_eq!(e.rule_titles, ["test feed"]);
    assert_eq!(e.groups_using, 1);
    assert!(a.reason.contains("IOC"), "{}", a.reason);
    // With Deep Panda's techniques beside it, both are ranked; the IOC no longer erases the
    // technique evidence (it was a fixed 30 nats).
    let b = at.attribute(&EvidenceSet {
        techniques: DEEP_PANDA.iter().map(|t| Observation::new(*t)).collect(),
        iocs: vec![o],
        ..EvidenceSet::default()
    });
    let ids: Vec<&str> = b.candidates.iter().map(|c| c.id.as_str()).collect();
    assert!(
        ids[..2].contains(&"G0007") && ids[..2].contains(&"G0009"),
        "{ids:?}"
    );
}

/// Issue #18: one hash in a one-line CSV feed made its actor 99 % ("Almost Certain"). A
/// one-line feed measures nothing about how exclusive its actor labels are (`s` = 0.5/2), so
/// its single IOC multiplies the odds by under 4.
#[test]
fn one_hash_in_a_one_line_csv_feed_is_not_almost_certain() {
    let kb = ActorKb::builtin();
    let o = IocObservation {
        feed_format: "csv".into(),
        feed_values: 1,
        feed_multi_actor: 0,
        ..ioc("Turla", &[], "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a")
    };
    assert_eq!(o.multi_actor_rate(IocRates::builtin()), 0.25);
    let a = Attributor::new(kb).attribute(&EvidenceSet {
        iocs: vec![o],
        ..EvidenceSet::default()
    });
    let top = &a.candidates[0];
    assert_eq!(top.id, "G0010");
    // Measured 4.9 % with the shipped model (it was 99 %); "Highly Unlikely" is below 20 %.
    assert!(top.probability < 0.2, "{}", top.probability);
    assert_ne!(top.confidence_label, "Highly Likely/Almost Certain");
}

/// A value listed under k actors splits its support: each gets ln LR reduced by ln k.
#[test]
fn a_value_listed_under_two_actors_splits_its_support() {
    let kb = ActorKb::builtin();
    let v = "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a";
    let one = Attributor::new(kb).attribute(&EvidenceSet {
        iocs: vec![measured(ioc("Sofacy", &[], v))],
        ..EvidenceSet::default()
    });
    let two = Attributor::new(kb).attribute(&EvidenceSet {
        iocs: vec![
            measured(ioc("Sofacy", &[], v)),
            measured(ioc("Turla", &[], v)),
        ],
        ..EvidenceSet::default()
    });
    let t = Attributor::new(kb).config().temperature;
    let b1 = one.candidates[0].ioc_bonus;
    for c in &two.candidates[..2] {
        assert!(
            (c.ioc_bonus - (b1 - t * 2f64.ln())).abs() < 1e-9,
            "{}",
            c.ioc_bonus
        );
        assert_eq!(c.matched[0].groups_using, 2);
    }
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
            measured(ioc("Sofacy", &[], "a")),
            measured(ioc("Turla", &[], "b")),
            measured(ioc("Turla", &[], "c")),
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
