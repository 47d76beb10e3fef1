//! Tests against the real corpora in `../shared/corpora` (skipped when absent):
//! `attack/enterprise-attack-18.1.json` (mitre/cti 421deacb, ATT&CK v18.1) and
//! `misp-galaxy/mitre-attack-pattern.json` (MISP/misp-galaxy 9434ace4, ATT&CK v19).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use tracehunt_attack::{v19_mapping, ActorKb, Source, V19Basis};

const LABEL: &str = "ATT&CK Enterprise v18.1 (mitre/cti 421deacb)";

fn corpora() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn read(rel: &str) -> Option<String> {
    let p = corpora().join(rel);
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(t),
        Err(_) => {
            eprintln!("skipping: {} not available", p.display());
            None
        }
    }
}

fn bundle_kb() -> Option<&'static ActorKb> {
    static KB: OnceLock<Option<ActorKb>> = OnceLock::new();
    KB.get_or_init(|| {
        let text = read("attack/enterprise-attack-18.1.json")?;
        let mut kb = ActorKb::from_stix_json(&text).expect("bundle parses");
        kb.set_label(LABEL);
        Some(kb)
    })
    .as_ref()
}

#[test]
fn committed_snapshot_matches_bundle() {
    let Some(kb) = bundle_kb() else { return };
    let regenerated = kb.to_snapshot_json();
    let committed = include_str!("../data/attack-snapshot.json");
    let a: serde_json::Value = serde_json::from_str(&regenerated).unwrap();
    let b: serde_json::Value = serde_json::from_str(committed).unwrap();
    assert!(
        a == b,
        "data/attack-snapshot.json is stale; regenerate with \
         `cargo run -p tracehunt-attack --example make-snapshot -- \
         ../shared/corpora/attack/enterprise-attack-18.1.json crates/attack/data/attack-snapshot.json \"{LABEL}\"`"
    );
    assert_eq!(ActorKb::builtin(), kb, "snapshot round-trip loses nothing");
    assert!(
        committed.len() < 1_500_000,
        "snapshot is {} bytes",
        committed.len()
    );
}

#[test]
fn bundle_counts() {
    let Some(kb) = bundle_kb() else { return };
    // 187 intrusion sets minus 15 revoked/deprecated; 835 attack-patterns minus 132 revoked.
    assert_eq!(kb.groups().len(), 172);
    assert_eq!(kb.techniques().len(), 703);
    assert_eq!(kb.campaigns().len(), 52);
    assert_eq!(kb.revoked_by().len(), 140);
    let attributed: usize = kb.campaigns().values().map(|c| c.groups.len()).sum();
    assert_eq!(attributed, 25);
}

#[test]
fn deep_panda_from_bundle() {
    let Some(kb) = bundle_kb() else { return };
    let g = kb.group("G0009").unwrap();
    assert_eq!(g.name, "Deep Panda");
    assert_eq!(
        g.direct_techniques(),
        vec![
            "T1018",
            "T1021.002",
            "T1027.005",
            "T1047",
            "T1057",
            "T1059.001",
            "T1218.010",
            "T1505.003",
            "T1546.008",
            "T1564.003"
        ]
    );
    assert_eq!(
        g.software.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["S0021", "S0039", "S0057", "S0074", "S0080", "S0097", "S0142"]
    );
    // Net (S0039) is a tool Deep Panda uses; its techniques are software-sourced.
    let net = kb.software("S0039").unwrap();
    for t in &net.techniques {
        assert!(g.techniques[t].contains(&Source::Software {
            software: "S0039".into()
        }));
    }
    for alias in [
        "Shell Crew",
        "shell crew",
        "BLACK VINE",
        "Deep Panda",
        "g0009",
    ] {
        assert_eq!(
            kb.group_by_name_or_alias(alias).map(|g| g.id.as_str()),
            Some("G0009"),
            "{alias}"
        );
    }
}

#[test]
fn campaign_sources_are_traceable() {
    let Some(kb) = bundle_kb() else { return };
    // C0017 is attributed to APT41 (G0096).
    let c = kb.campaign("C0017").unwrap();
    assert_eq!(c.groups, vec!["G0096"]);
    let g = kb.group("G0096").unwrap();
    for t in &c.techniques {
        assert!(g.techniques[t]
            .iter()
            .any(|s| s.campaign() == Some("C0017")));
    }
    let held = kb.hold_out_campaign("C0017");
    let hg = held.group("G0096").unwrap();
    assert!(hg
        .techniques
        .values()
        .flatten()
        .all(|s| s.campaign() != Some("C0017")));
    assert!(hg.techniques.len() <= g.techniques.len());
    assert!(!hg.campaigns.contains(&"C0017".to_string()));
}

/// Every enterprise technique of the MISP ATT&CK v19 galaxy that v18.1 lacks is in the table,
/// and every `misp-revoked-by` row is exactly what the galaxy's revoked-by links say.
#[test]
fn v19_table_agrees_with_misp_galaxy() {
    let Some(kb) = bundle_kb() else { return };
    let Some(text) = read("misp-galaxy/mitre-attack-pattern.json") else {
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let values = v["values"].as_array().unwrap();
    let enterprise = |c: &serde_json::Value| {
        c["meta"]["kill_chain"].as_array().is_some_and(|k| {
            k.iter()
                .any(|p| p.as_str().is_some_and(|p| p.starts_with("attack-")))
        })
    };
    let id_of = |c: &serde_json::Value| c["meta"]["external_id"].as_str().unwrap_or("").to_string();
    let mut missing = BTreeSet::new();
    for c in values.iter().filter(|c| enterprise(c)) {
        let id = id_of(c);
        if kb.technique(&id).is_none() && !kb.revoked_by().contains_key(&id) {
            missing.insert(id);
        }
    }
    let table: BTreeSet<String> = v19_mapping().iter().map(|m| m.v19_id.clone()).collect();
    assert_eq!(missing, table);
    for m in v19_mapping() {
        let cluster = values.iter().find(|c| id_of(c) == m.v19_id).unwrap();
        let uuid = cluster["uuid"].as_str().unwrap();
        let revoked_here: BTreeSet<String> = values
            .iter()
            .filter(|c| {
                c["related"].as_array().is_some_and(|r| {
                    r.iter()
                        .any(|r| r["type"] == "revoked-by" && r["dest-uuid"] == uuid)
                })
            })
            .map(id_of)
            .filter(|id| kb.technique(id).is_some())
            .collect();
        let listed: BTreeSet<String> = m.v18_ids.iter().cloned().collect();
        match m.basis {
            V19Basis::MispRevokedBy => assert_eq!(listed, revoked_here, "{}", m.v19_id),
            _ => assert!(
                revoked_here.is_empty(),
                "{} has galaxy revocations",
                m.v19_id
            ),
        }
        for t in &m.v18_ids {
            assert!(kb.technique(t).is_some(), "{} -> unknown {t}", m.v19_id);
        }
        assert!(cluster["value"].as_str().unwrap().starts_with(&m.v19_name));
    }
}

#[test]
fn v19_ids_canonicalise() {
    let kb = ActorKb::builtin();
    for (v19, v18) in [
        ("attack.t1685", Some("T1562.001")),
        ("attack.t1685.001", Some("T1562.002")),
        ("T1685.005", Some("T1070.001")),
        ("attack.t1686", Some("T1562.004")),
        ("attack.t1686.003", Some("T1562.004")),
        ("attack.t1689", Some("T1562.010")),
        ("attack.t1690", Some("T1562.003")),
        ("T1684.001", Some("T1656")),
        ("T1027.018", Some("T1027")),
        ("T1682", None),
        ("attack.t1089", Some("T1562.001")), // revoked in v18.1 itself
        ("attack.defense-impairment", None),
    ] {
        assert_eq!(kb.canonical_technique(v19).as_deref(), v18, "{v19}");
    }
    assert_eq!(
        kb.v19_equivalents("attack.t1685").unwrap(),
        ["T1562.001", "T1562.006", "T1562"]
    );
    assert!(kb.v19_equivalents("T1059").is_none());
}

/// Every technique tag of the SigmaHQ rules (ATT&CK v19 tags) resolves to a v18.1 id.
#[test]
fn sigma_technique_tags_resolve() {
    let root = corpora().join("sigma");
    if !root.exists() {
        eprintln!("skipping: sigma corpus not available");
        return;
    }
    let kb = ActorKb::builtin();
    let mut tags = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("deprecated") && !p.ends_with("unsupported") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "yml") {
                let Ok(t) = std::fs::read_to_string(&p) else {
                    continue;
                };
                for line in t.lines() {
                    let line = line.split('#').next().unwrap_or("");
                    let l = line
                        .trim()
                        .trim_start_matches("- ")
                        .trim()
                        .to_ascii_lowercase();
                    if l.starts_with("attack.t1") {
                        tags.insert(l);
                    }
                }
            }
        }
    }
    assert!(tags.len() > 300, "found {} tags", tags.len());
    let unresolved: Vec<_> = tags
        .iter()
        .filter(|t| kb.canonical_technique(t).is_none())
        .collect();
    assert!(
        unresolved.is_empty(),
        "unresolved sigma tags: {unresolved:?}"
    );
}

/// The committed state-sponsor table is what the MISP galaxy in the corpus gives
/// (regenerate with `cargo run -p tracehunt-attack --example make-sponsors`, see
/// `tracehunt_attack::StateSponsors`).
#[test]
fn committed_state_sponsors_match_galaxy() {
    use tracehunt_attack::StateSponsors;
    let (Some(actors), Some(sets)) = (
        read("misp-galaxy/threat-actor.json"),
        read("misp-galaxy/mitre-intrusion-set.json"),
    ) else {
        return;
    };
    let fresh = StateSponsors::from_misp_galaxy(&actors, &sets).expect("galaxy parses");
    let builtin = StateSponsors::builtin();
    assert_eq!(
        &fresh, builtin,
        "regenerate crates/attack/data/state-sponsors.tsv"
    );
    assert_eq!(builtin.len(), 126);
    // Deep Panda (G0009) is named by the APT19 cluster ("G0009" among its synonyms): China.
    let g9 = builtin.get("G0009").unwrap();
    assert_eq!((g9.country.as_str(), g9.cluster.as_str()), ("CN", "APT19"));
    assert_eq!(g9.state_name(), "China");
    // Turla: named by the Turla cluster (RU), only "similar" to APT26 (CN): RU, disputed.
    let turla = builtin.get("G0010").unwrap();
    assert_eq!((turla.country.as_str(), turla.disputed), ("RU", true));
    assert_eq!(builtin.get("G0032").unwrap().country, "KP"); // Lazarus Group
    assert_eq!(builtin.get("G0016").unwrap().country, "RU"); // APT29
    let cn = builtin.iter().filter(|(_, s)| s.country == "CN").count();
    assert_eq!(cn, 50);
    // Every id is a group of the built-in ATT&CK snapshot or a newer one (v19 galaxy).
    let kb = ActorKb::builtin();
    let known = builtin
        .iter()
        .filter(|(id, _)| kb.group(id).is_some())
        .count();
    assert!(
        known >= 120,
        "{known} of {} ids are v18.1 groups",
        builtin.len()
    );
}

/// Fuzz finding (attack_kb): a malware object whose ATT&CK id ("T1086") is also a key of
/// the revoked-by map did not look up to itself.
#[test]
fn software_with_an_id_the_revoked_by_map_holds_looks_up_to_itself() {
    let text = include_str!("data/fuzz-software-id-also-revoked.json");
    let kb = ActorKb::from_stix_json(text).expect("the bundle parses");
    assert!(!kb.software_all().is_empty());
    for id in kb.software_all().keys() {
        assert_eq!(kb.software(id).map(|s| s.id.as_str()), Some(id.as_str()));
    }
    for id in kb.groups().keys() {
        assert!(kb.group(id).is_some(), "group {id}");
    }
}
