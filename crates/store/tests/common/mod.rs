//! Shared fixture: one hunt over two incidents (see `fill`).
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use tracehunt_store::*;

/// 2024-`m`-`d` `h`:`min`:00 UTC.
pub fn t(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, m, d, h, min, 0).unwrap()
}

pub fn run(started: DateTime<Utc>) -> HuntRun {
    HuntRun {
        started_at: started,
        tool_version: "0.1.0".into(),
        ruleset_hash: "rs1".into(),
        attack_version: "18.1".into(),
        parameters: serde_json::json!({"min_level": "low", "threads": 2}),
    }
}

pub fn key(n: u8) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[0] = n;
    k[15] = 0xAA;
    k
}

pub fn candidate(rank: u32, id: &str, name: &str, confidence: u8) -> CandidateRec {
    CandidateRec {
        rank,
        group_id: id.into(),
        group_name: name.into(),
        probability: f64::from(confidence) / 100.0,
        confidence,
        confidence_label: if confidence >= 60 { "moderate" } else { "low" }.into(),
        evidence: serde_json::json!({"techniques": ["T1003.001"], "group": id}),
    }
}

pub fn sighting(rank: u32, id: &str, name: &str, confidence: u8) -> SightingRec {
    SightingRec {
        group_id: id.into(),
        group_name: name.into(),
        state: (id == "G0009").then(|| "China".to_owned()),
        rank,
        confidence,
    }
}

/// inc-a: 2024-03-01 10:00–11:00 on WS1, WS2; candidates G0009 (70) and G0016 (40), both
/// sighted.
pub fn inc_a(first: DateTime<Utc>) -> IncidentRec {
    IncidentRec {
        id: "inc-a".into(),
        first_seen: Some(first),
        last_seen: Some(t(3, 1, 11, 0)),
        hosts: vec!["WS1".into(), "WS2".into()],
        users: vec!["alice".into()],
        entities: vec![
            ("user".into(), "alice".into()),
            ("ip".into(), "10.0.0.5".into()),
        ],
        max_level: "high".into(),
        detections: 2,
        tactics: vec!["credential-access".into(), "Lateral Movement".into()],
        techniques: vec!["T1003.001".into(), "T1021.002".into()],
        verdict: "attributed".into(),
        confident: true,
        candidates: vec![
            candidate(1, "G0009", "Deep Panda", 70),
            candidate(2, "G0016", "APT29", 40),
        ],
        sightings: vec![
            sighting(1, "G0009", "Deep Panda", 70),
            sighting(2, "G0016", "APT29", 40),
        ],
    }
}

/// inc-b: 2024-04-02 09:00–09:30 on DC1; candidate G0009 (55), sighted.
pub fn inc_b() -> IncidentRec {
    IncidentRec {
        id: "inc-b".into(),
        first_seen: Some(t(4, 2, 9, 0)),
        last_seen: Some(t(4, 2, 9, 30)),
        hosts: vec!["DC1".into()],
        users: vec!["svc_backup".into()],
        entities: vec![("user".into(), "svc_backup".into())],
        max_level: "critical".into(),
        detections: 1,
        tactics: vec!["credential-access".into()],
        techniques: vec!["T1003.006".into()],
        verdict: "attributed (weak)".into(),
        confident: false,
        candidates: vec![candidate(1, "G0009", "Deep Panda", 55)],
        sightings: vec![sighting(1, "G0009", "Deep Panda", 55)],
    }
}

/// Sources, 2 rules, 3 detections (2 in inc-a, 1 in inc-b), the incidents (inc-a first seen
/// `a_first`) and 2 IOC hits.
pub fn fill(w: &mut HuntWriter<'_>, a_first: DateTime<Utc>) {
    for (path, hash, first, last) in [
        ("logs/WS1-Security.evtx", "aa", t(3, 1, 0, 0), t(3, 2, 0, 0)),
        ("logs/DC1-Security.evtx", "bb", t(4, 1, 0, 0), t(4, 3, 0, 0)),
    ] {
        w.add_source(&SourceRec {
            path: path.into(),
            content_hash: hash.repeat(32),
            format: "evtx".into(),
            first_event: Some(first),
            last_event: Some(last),
            events_read: 600,
            records_lost: 2,
        })
        .unwrap();
    }
    for (id, title, level) in [
        ("r1", "LSASS access", "high"),
        ("r2", "PsExec service", "high"),
    ] {
        w.add_rule(&RuleRec {
            rule_id: id.into(),
            content_hash: format!("{id}-v1"),
            title: title.into(),
            level: level.into(),
        })
        .unwrap();
    }
    // Detections before their incidents: foreign keys are checked at commit.
    for (rule, k, time, host, inc) in [
        ("r1", 1, t(3, 1, 10, 0), "WS1", "inc-a"),
        ("r2", 2, t(3, 1, 11, 0), "WS2", "inc-a"),
        ("r1", 3, t(4, 2, 9, 0), "DC1", "inc-b"),
    ] {
        w.add_detection(&DetectionRec {
            rule_id: rule,
            event_key: key(k),
            time: Some(time),
            host: Some(host),
            source: "logs/x.evtx",
            level: "high",
            incident_id: Some(inc),
        })
        .unwrap();
    }
    w.add_incident(&inc_a(a_first)).unwrap();
    w.add_incident(&inc_b()).unwrap();
    for (ty, value, inc, host, time) in [
        ("ip", "203.0.113.7", "inc-a", "WS1", t(3, 1, 10, 5)),
        ("domain", "evil.example", "inc-b", "DC1", t(4, 2, 9, 10)),
    ] {
        w.add_ioc_hit(&IocHitRec {
            incident_id: Some(inc.into()),
            indicator_type: ty.into(),
            value: value.into(),
            feed: "misp-event-42".into(),
            actor: Some("G0009".into()),
            time: Some(time),
            host: Some(host.into()),
        })
        .unwrap();
    }
}

/// One committed hunt started at `started` (see `fill`).
pub fn hunt(store: &mut Store, started: DateTime<Utc>, a_first: DateTime<Utc>) -> HuntStats {
    let mut w = store.begin_hunt(&run(started)).unwrap();
    fill(&mut w, a_first);
    w.commit(started + chrono::Duration::minutes(5), 1200)
        .unwrap()
}
