//! Property-style test: random detections (deterministic SplitMix64), then
//! every detection is found by `incident_of` in an incident that holds its
//! host and time, and the counts add up.

mod common;

use chrono::DateTime;
use common::{run_seeded, Det, Rng};
use std::collections::HashSet;
use tracehunt_incidents::{Config, EntityKind, NO_HOST_NAME};

const HOSTS: [&str; 6] = ["WS1", "WS2", "WS3", "DC1", "SRV1", "SRV2"];
/// Entity stems; each gets a suffix 0-5, so 48 entities.
const ENTITIES: [(EntityKind, &str); 8] = [
    (EntityKind::User, "corp\\eve"),
    (EntityKind::User, "corp\\bob"),
    (EntityKind::Ip, "10.0.0.5"),
    (EntityKind::Ip, "10.0.0.9"),
    (EntityKind::LogonId, "0xc61d9"),
    (EntityKind::Hash, "601bddf7691c5af626a5719f1d7e35f1"),
    (EntityKind::Domain, "evil.example.com"),
    (
        EntityKind::ProcessGuid,
        "39e4a257-fc4b-5f90-9411-000000000700",
    ),
];

fn random_case(rng: &mut Rng) -> (Config, Vec<Det>) {
    let gap = 60 + rng.below(7200) as i64;
    let cfg = Config {
        session_gap_secs: gap,
        max_span_secs: gap + rng.below(4 * gap as u64) as i64,
        entity_ceiling: 1 + rng.below(8) as usize,
    };
    let n = 50 + rng.below(300) as usize;
    let mut t: i64 = 1_600_000_000;
    let mut dets = Vec::with_capacity(n);
    for i in 0..n {
        t += match rng.below(10) {
            0 => 0,
            1 => 3 * 86_400,
            2..=4 => rng.below(2 * gap as u64) as i64,
            _ => rng.below(600) as i64,
        };
        let untimed = i >= n - n / 10;
        let host = rng.below(HOSTS.len() as u64 + 1) as usize;
        let entities = (0..rng.below(3))
            .map(|_| {
                let (k, v) = ENTITIES[rng.below(ENTITIES.len() as u64) as usize];
                (k, format!("{v}{}", rng.below(6)))
            })
            .collect();
        dets.push(Det {
            time: (!untimed).then(|| (t, rng.below(1_000_000_000) as u32)),
            host: HOSTS.get(host).map(|h| (*h).to_owned()),
            rule: format!("rule-{}", rng.below(5)),
            level: rng.below(5) as u8,
            entities,
        });
    }
    (cfg, dets)
}

#[test]
fn every_detection_is_found_in_an_incident_holding_it() {
    let mut rng = Rng(0x7ace_4a47);
    let mut merged_somewhere = 0;
    let mut over = 0;
    for case in 0..200 {
        let (cfg, dets) = random_case(&mut rng);
        let g = run_seeded(cfg, &dets, None);
        let total: u64 = g.incidents.iter().map(|i| i.detections).sum();
        assert_eq!(total, dets.len() as u64, "case {case}");
        assert_eq!(g.host_groups - g.merges, g.incidents.len(), "case {case}");
        merged_somewhere += g.merges;
        over += g.entities_over_ceiling;
        // Rule numbers as `run_seeded` assigns them: first-seen order.
        let mut rule_numbers: Vec<&str> = Vec::new();
        for d in &dets {
            if !rule_numbers.contains(&d.rule.as_str()) {
                rule_numbers.push(&d.rule);
            }
        }
        for d in &dets {
            let time = d.time.map(|(s, n)| DateTime::from_timestamp(s, n).unwrap());
            let host = d.host.as_deref();
            let i = g
                .incident_of(host, time)
                .unwrap_or_else(|| panic!("case {case}: {d:?} not found"));
            let inc = &g.incidents[i];
            assert!(inc.hosts.iter().any(|h| h == host.unwrap_or(NO_HOST_NAME)));
            match time {
                Some(t) => assert!(inc.first.unwrap() <= t && t <= inc.last.unwrap()),
                None => assert!(inc.first.is_none() && inc.last.is_none()),
            }
            let rule = rule_numbers.iter().position(|r| *r == d.rule).unwrap() as u32;
            assert!(inc.rules.iter().any(|&(r, _)| r == rule));
            assert!(inc.max_level >= d.level);
        }
        let mut ids = HashSet::new();
        for (k, inc) in g.incidents.iter().enumerate() {
            assert!(ids.insert(inc.id.clone()), "case {case}: repeated id");
            let counted: u64 = inc.rules.iter().map(|r| r.1).sum();
            assert_eq!(counted, inc.detections);
            if let Some(next) = g.incidents.get(k + 1) {
                let key =
                    |i: &tracehunt_incidents::Incident| (i.first.is_none(), i.first, i.id.clone());
                assert!(key(inc) < key(next), "case {case}: order");
            }
        }
        if case % 20 == 0 {
            assert_eq!(
                run_seeded(cfg, &dets, Some(case + 1)),
                g,
                "case {case}: ids"
            );
        }
    }
    // Both paths must be exercised (642 merges, 3471 entities over the ceiling at write time).
    assert!(
        merged_somewhere > 200 && over > 200,
        "{merged_somewhere} merges, {over} over"
    );
}
