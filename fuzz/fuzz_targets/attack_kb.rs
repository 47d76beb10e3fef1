//! ATT&CK STIX bundles → `ActorKb::from_stix_json`. Invariants: never
//! panics; every technique, group, software and campaign id of the result
//! looks up to itself; the compact snapshot round-trips to an equal
//! knowledge base; holding out a campaign removes it.
#![no_main]

use tracehunt_attack::ActorKb;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(kb) = ActorKb::from_stix_json(text) else {
        return;
    };
    for id in kb.techniques().keys() {
        assert!(kb.technique(id).is_some(), "technique {id}");
    }
    for id in kb.groups().keys() {
        assert!(kb.group(id).is_some(), "group {id}");
    }
    for id in kb.software_all().keys() {
        assert!(kb.software(id).is_some(), "software {id}");
    }
    let round = ActorKb::from_snapshot_json(&kb.to_snapshot_json()).expect("snapshot reads back");
    assert_eq!(round, kb, "snapshot round trip");
    if let Some(c) = kb.campaigns().keys().next() {
        assert!(kb.hold_out_campaign(c).campaign(c).is_none());
    }
});
