//! The verdict names the evidence kind that decided the ranking (issue #18 item 8: it spoke of
//! techniques when IOCs had decided), on the built-in ATT&CK v18.1 knowledge base.

use tracehunt_attack::ActorKb;
use tracehunt_attribution::verdict::{decide, Decider};
use tracehunt_attribution::{
    Attribution, Attributor, EvidenceSet, IocObservation, Observation, ScoringConfig,
    TagObservation,
};

/// The ten techniques ATT&CK v18.1 lists for Deep Panda (G0009), as in the crate example.
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

fn ioc(actor: &str, value: &str) -> IocObservation {
    IocObservation {
        actor: actor.into(),
        ioc_type: "sha1".into(),
        value: value.into(),
        source: "test feed".into(),
        events: 1,
        ..IocObservation::default()
    }
}

fn techniques() -> Vec<Observation> {
    DEEP_PANDA.iter().map(|t| Observation::new(*t)).collect()
}

/// Every group ranked (top_n 0), so the decision sees the true runner-up.
fn attribute(ev: &EvidenceSet) -> Attribution {
    let cfg = ScoringConfig {
        top_n: 0,
        ..ScoringConfig::default()
    };
    Attributor::with_config(ActorKb::builtin(), cfg).attribute(ev)
}

/// The shares of the lead add up to it: the split is exact, whatever decided.
fn assert_exact_split(a: &Attribution) {
    let d = decide(&a.candidates).expect("candidates");
    let sum: f64 = d.shares.iter().map(|(_, s)| s).sum();
    assert!((sum - d.lead).abs() < 1e-9, "{sum} vs {}", d.lead);
    assert!(d.lead >= 0.0);
}

#[test]
fn verdict_names_techniques_when_techniques_decided() {
    let a = attribute(&EvidenceSet {
        techniques: techniques(),
        ..EvidenceSet::default()
    });
    assert_eq!(a.candidates[0].id, "G0009");
    assert_exact_split(&a);
    assert_eq!(
        decide(&a.candidates).unwrap().decided_by,
        Decider::Techniques
    );
    assert!(
        a.reason.contains("ranking decided by techniques ("),
        "{}",
        a.reason
    );
}

/// Regression (issue #18): with an IOC tied to APT28 on top of Deep Panda's techniques, IOCs
/// rank APT28 first, and the verdict must say so. The IOC comes from a measured MISP feed
/// (the corpora's 1,256 actor-tied values, 1 under several actors): an unmeasured one-line
/// feed's IOC is worth far less since the IOC weight follows measured rates.
#[test]
fn verdict_names_iocs_when_iocs_decided_not_techniques() {
    let measured = IocObservation {
        feed_format: "misp".into(),
        feed_values: 1256,
        feed_multi_actor: 1,
        ..ioc("Sofacy", "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a")
    };
    let a = attribute(&EvidenceSet {
        techniques: techniques(),
        iocs: vec![measured],
        ..EvidenceSet::default()
    });
    assert_eq!(a.candidates[0].id, "G0007");
    assert_exact_split(&a);
    let d = decide(&a.candidates).unwrap();
    assert_eq!(d.decided_by, Decider::Iocs);
    assert_eq!(d.runner_up.as_deref(), Some("G0009 Deep Panda"));
    assert!(
        a.reason.contains("ranking decided by IOCs ("),
        "{}",
        a.reason
    );
}

/// Regression (issue #18): IOCs on two groups and nothing else read "no technique or software
/// evidence resolved against ATT&CK" — as if techniques were the question.
#[test]
fn verdict_with_only_iocs_on_two_groups_speaks_of_iocs() {
    let a = attribute(&EvidenceSet {
        iocs: vec![
            ioc("Sofacy", "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a"),
            ioc("OilRig", "0123456789abcdef0123456789abcdef01234567"),
        ],
        ..EvidenceSet::default()
    });
    assert!(!a.confident);
    assert!(
        a.reason
            .starts_with("no confident attribution: only IOCs as evidence, pointing at 2 groups"),
        "{}",
        a.reason
    );
    // Equal IOC weight: the IOC shares cancel, the group-level terms order the two.
    assert_eq!(
        decide(&a.candidates).unwrap().decided_by,
        Decider::GroupTerms
    );
    assert_exact_split(&a);
}

#[test]
fn verdict_names_software_and_group_tags() {
    // ComRAT (S0126) and Uroburos (S0022): Turla's implants.
    let sw = |id: &str| TagObservation {
        id: id.into(),
        ..TagObservation::default()
    };
    let a = attribute(&EvidenceSet {
        software: vec![sw("S0126"), sw("S0022")],
        ..EvidenceSet::default()
    });
    assert_eq!(a.candidates[0].id, "G0010");
    assert_eq!(decide(&a.candidates).unwrap().decided_by, Decider::Software);
    assert!(
        a.reason.contains("ranking decided by software ("),
        "{}",
        a.reason
    );
    assert_exact_split(&a);

    let a = attribute(&EvidenceSet {
        groups: vec![TagObservation {
            id: "attack.g0010".into(),
            origins: vec!["folder \"Turla\"".into()],
            ..TagObservation::default()
        }],
        ..EvidenceSet::default()
    });
    assert_eq!(a.candidates[0].id, "G0010");
    assert_eq!(
        decide(&a.candidates).unwrap().decided_by,
        Decider::GroupTags
    );
    assert!(
        a.reason
            .starts_with("no confident attribution: only group tags as evidence (one group)"),
        "{}",
        a.reason
    );
    assert_eq!(a.candidates[0].matched[0].observed_as, ["folder \"Turla\""]);
}
