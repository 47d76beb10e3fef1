//! Hand-built grouping cases with exact expected incidents.

mod common;

use chrono::{DateTime, Utc};
use common::{det, run, run_seeded, untimed, Det};
use tracehunt_event::{Event, EventMeta, Value};
use tracehunt_incidents::{extract, Config, EntityKind, Grouping, ENTITY_CAP, NO_HOST_NAME};

use EntityKind::{Ip, LogonId, ProcessGuid, User};

const T0: i64 = 1_600_800_000; // 2020-09-22T18:40:00Z
const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn at(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// (hosts, first, last, detections) of one incident; times in Unix seconds.
type Shape = (Vec<String>, Option<i64>, Option<i64>, u64);

/// The [`Shape`] of every incident, in order.
fn shape(g: &Grouping) -> Vec<Shape> {
    g.incidents
        .iter()
        .map(|i| {
            (
                i.hosts.clone(),
                i.first.map(|t| t.timestamp()),
                i.last.map(|t| t.timestamp()),
                i.detections,
            )
        })
        .collect()
}

fn hosts(list: &[&str]) -> Vec<String> {
    list.iter().map(|h| (*h).to_owned()).collect()
}

#[test]
fn gap_of_59_minutes_joins_61_splits() {
    let g = run(&[
        det(T0, "WS1", "r1", &[]),
        det(T0 + 59 * MIN, "WS1", "r2", &[]),
        det(T0 + 59 * MIN + 61 * MIN, "WS1", "r1", &[]),
    ]);
    assert_eq!(g.host_groups, 2);
    assert_eq!(g.merges, 0);
    assert_eq!(
        shape(&g),
        [
            (hosts(&["WS1"]), Some(T0), Some(T0 + 59 * MIN), 2),
            (
                hosts(&["WS1"]),
                Some(T0 + 120 * MIN),
                Some(T0 + 120 * MIN),
                1
            ),
        ]
    );
    assert_eq!(g.incidents[0].rules, [(0, 1), (1, 1)]);
    assert_eq!(g.incidents[1].rules, [(0, 1)]);
    // Exactly the gap still joins; one nanosecond more splits.
    let exact = run(&[det(T0, "WS1", "r1", &[]), det(T0 + HOUR, "WS1", "r1", &[])]);
    assert_eq!(exact.host_groups, 1);
    let mut over = det(T0 + HOUR, "WS1", "r1", &[]);
    over.time = Some((T0 + HOUR, 1));
    assert_eq!(run(&[det(T0, "WS1", "r1", &[]), over]).host_groups, 2);
}

#[test]
fn span_cap_cuts_30_hours_of_half_hourly_detections_in_two() {
    // Every 30 min from T0 to T0 + 30 h inclusive: 61 detections, all sharing
    // a user. The first group spans exactly 24 h (49 detections); groups of
    // one host are never merged, so the shared user does not undo the cut.
    let dets: Vec<Det> = (0..=60)
        .map(|i| det(T0 + i * 30 * MIN, "WS1", "r1", &[(User, "corp\\eve")]))
        .collect();
    let g = run(&dets);
    assert_eq!(g.host_groups, 2);
    assert_eq!(g.merges, 0);
    assert_eq!(
        shape(&g),
        [
            (hosts(&["WS1"]), Some(T0), Some(T0 + DAY), 49),
            (
                hosts(&["WS1"]),
                Some(T0 + DAY + 30 * MIN),
                Some(T0 + 30 * HOUR),
                12
            ),
        ]
    );
}

#[test]
fn two_hosts_sharing_a_rare_entity_within_the_window_merge() {
    for entity in [
        (LogonId, "0x4e13b2e"),
        (Ip, "172.18.39.5"),
        (User, "theshire\\pgustavo"),
    ] {
        let g = run(&[
            det(T0, "WS5", "r1", &[entity]),
            det(
                T0 + 50 * MIN,
                "WS6",
                "r2",
                &[
                    entity,
                    (ProcessGuid, "b34bc01c-2255-5f69-0100-000000000900"),
                ],
            ),
        ]);
        assert_eq!(g.merges, 1, "{entity:?}");
        assert_eq!(
            shape(&g),
            [(hosts(&["WS5", "WS6"]), Some(T0), Some(T0 + 50 * MIN), 2)]
        );
        let inc = &g.incidents[0];
        assert_eq!(inc.rules, [(0, 1), (1, 1)]);
        assert!(inc.entities.contains(&(entity.0, entity.1.to_owned())));
        assert_eq!(inc.entities.len(), 2);
    }
    // Ranges that do not overlap but are within the gap also merge:
    // WS5 ends at T0 + 10 min, WS6 starts 60 min later.
    let u = (User, "theshire\\pgustavo");
    let g = run(&[
        det(T0, "WS5", "r1", &[]),
        det(T0 + 10 * MIN, "WS5", "r1", &[u]),
        det(T0 + 70 * MIN, "WS6", "r1", &[u]),
    ]);
    assert_eq!(g.incidents.len(), 1);
    assert_eq!(g.incidents[0].users, ["theshire\\pgustavo"]);
    // 61 minutes apart: two incidents.
    let g = run(&[
        det(T0, "WS5", "r1", &[u]),
        det(T0 + 61 * MIN, "WS6", "r1", &[u]),
    ]);
    assert_eq!(g.incidents.len(), 2);
}

#[test]
fn sharing_an_entity_three_days_apart_does_not_merge() {
    let ip = (Ip, "172.18.39.5");
    let g = run(&[
        det(T0, "WS5", "r1", &[ip]),
        det(T0 + 3 * DAY, "WS6", "r1", &[ip]),
    ]);
    assert_eq!(g.merges, 0);
    assert_eq!(
        shape(&g),
        [
            (hosts(&["WS5"]), Some(T0), Some(T0), 1),
            (hosts(&["WS6"]), Some(T0 + 3 * DAY), Some(T0 + 3 * DAY), 1),
        ]
    );
    assert_eq!(g.entities_over_ceiling, 0);
}

#[test]
fn entity_in_more_host_groups_than_the_ceiling_does_not_merge() {
    let dc = (Ip, "172.18.38.5");
    let nine: Vec<Det> = (0..9)
        .map(|i| det(T0 + i * MIN, &format!("WS{i}"), "r1", &[dc]))
        .collect();
    let g = run(&nine);
    assert_eq!((g.host_groups, g.incidents.len(), g.merges), (9, 9, 0));
    assert_eq!(g.entities_over_ceiling, 1);
    // Eight host groups: at the ceiling, still used.
    let g = run(&nine[..8]);
    assert_eq!((g.host_groups, g.incidents.len(), g.merges), (8, 1, 7));
    assert_eq!(g.entities_over_ceiling, 0);
    // A second, rare entity still merges two of the nine.
    let mut more = nine.clone();
    more.push(det(T0 + 9 * MIN, "WS0", "r1", &[(User, "corp\\eve")]));
    more.push(det(T0 + 10 * MIN, "WS8", "r1", &[(User, "corp\\eve")]));
    let g = run(&more);
    assert_eq!(
        (g.incidents.len(), g.merges, g.entities_over_ceiling),
        (8, 1, 1)
    );
    assert_eq!(g.incidents[0].hosts, ["WS0", "WS8"]);
}

#[test]
fn stop_values_never_merge() {
    let mut ev = Event::with_meta(EventMeta::default());
    ev.push("SubjectUserName", Value::from("SYSTEM"));
    ev.push("SubjectDomainName", Value::from("NT AUTHORITY"));
    ev.push("User", Value::from("NT AUTHORITY\\SYSTEM"));
    ev.push("IpAddress", Value::from("127.0.0.1"));
    ev.push("TargetUserName", Value::from("-"));
    ev.push("SubjectLogonId", Value::from("0x3e7"));
    let mut found = Vec::new();
    extract(&ev, &mut found);
    assert_eq!(found, []);
    let with = |found: &[(EntityKind, String)], host: &str, t: i64| Det {
        entities: found.to_vec(),
        ..det(t, host, "r1", &[])
    };
    let g = run(&[with(&found, "WS1", T0), with(&found, "WS2", T0 + MIN)]);
    assert_eq!(g.incidents.len(), 2);
    // Control: the same events with a real account do merge.
    ev.push("TargetUserName", Value::from("pgustavo"));
    found.clear();
    extract(&ev, &mut found);
    assert_eq!(found, [(User, "pgustavo".to_owned())]);
    let g = run(&[with(&found, "WS1", T0), with(&found, "WS2", T0 + MIN)]);
    assert_eq!(g.incidents.len(), 1);
}

#[test]
fn transitive_merges_join_three_hosts() {
    let g = run(&[
        det(T0, "A", "r1", &[(User, "corp\\eve")]),
        det(
            T0 + 5 * MIN,
            "B",
            "r2",
            &[(User, "corp\\eve"), (Ip, "10.1.2.3")],
        ),
        det(T0 + 10 * MIN, "C", "r3", &[(Ip, "10.1.2.3")]),
        det(T0 + 11 * MIN, "D", "r3", &[(Ip, "10.9.9.9")]),
    ]);
    assert_eq!((g.host_groups, g.merges), (4, 2));
    assert_eq!(
        shape(&g),
        [
            (hosts(&["A", "B", "C"]), Some(T0), Some(T0 + 10 * MIN), 3),
            (hosts(&["D"]), Some(T0 + 11 * MIN), Some(T0 + 11 * MIN), 1),
        ]
    );
    assert_eq!(g.incidents[0].rules, [(0, 1), (1, 1), (2, 1)]);
    assert_eq!(g.incidents[0].users, ["corp\\eve"]);
}

#[test]
fn untimed_detections_form_one_group_per_host_and_merge_only_untimed() {
    let eve = (User, "corp\\eve");
    let g = run(&[
        det(T0, "A", "r1", &[eve]),
        untimed("A", "r2", &[eve]),
        untimed("B", "r2", &[eve]),
        untimed("A", "r3", &[]),
        untimed("C", "r2", &[]),
    ]);
    assert_eq!((g.host_groups, g.merges), (4, 1));
    // Untimed incidents come last, ordered by id.
    let ab = if g.incidents[1].hosts == ["A", "B"] {
        1
    } else {
        2
    };
    let c = 3 - ab;
    assert!(g.incidents[1].id < g.incidents[2].id);
    let mut s = shape(&g);
    s[1..].sort();
    assert_eq!(
        s,
        [
            (hosts(&["A"]), Some(T0), Some(T0), 1),
            (hosts(&["A", "B"]), None, None, 3),
            (hosts(&["C"]), None, None, 1),
        ]
    );
    assert_eq!(g.incidents[ab].rules, [(1, 2), (2, 1)]);
    assert_eq!(g.incident_of(Some("A"), None), Some(ab));
    assert_eq!(g.incident_of(Some("B"), None), Some(ab));
    assert_eq!(g.incident_of(Some("C"), None), Some(c));
    assert_eq!(g.incident_of(Some("A"), at(T0)), Some(0));
    assert_eq!(g.incident_of(Some("B"), at(T0)), None);
}

#[test]
fn detections_without_host_are_one_host() {
    let mut a = det(T0, "x", "r1", &[]);
    a.host = None;
    let mut b = det(T0 + 30 * MIN, "x", "r2", &[]);
    b.host = None;
    b.level = 4;
    let g = run(&[a, b, det(T0 + 31 * MIN, "WS1", "r1", &[])]);
    assert_eq!(
        shape(&g),
        [
            (hosts(&[NO_HOST_NAME]), Some(T0), Some(T0 + 30 * MIN), 2),
            (hosts(&["WS1"]), Some(T0 + 31 * MIN), Some(T0 + 31 * MIN), 1),
        ]
    );
    assert_eq!(g.incidents[0].max_level, 4);
    assert_eq!(g.incident_of(None, at(T0 + 10 * MIN)), Some(0));
    assert_eq!(g.incident_of(Some(NO_HOST_NAME), at(T0)), Some(0));
}

/// A scenario touching every path: gaps, span cut, merges, ceiling,
/// untimed, no host.
fn scenario() -> Vec<Det> {
    let mut d = vec![
        det(
            T0,
            "WS5",
            "proc",
            &[(User, "corp\\eve"), (LogonId, "0xc61d9")],
        ),
        det(
            T0 + MIN,
            "WS6",
            "logon",
            &[(LogonId, "0xc61d9"), (Ip, "10.0.0.5")],
        ),
        det(T0 + 2 * MIN, "DC1", "kerb", &[(Ip, "10.0.0.5")]),
        det(T0 + 3 * MIN, "WS7", "proc", &[(User, "corp\\bob")]),
        det(T0 + 3 * DAY, "WS5", "proc", &[(User, "corp\\eve")]),
        det(T0 + 3 * DAY + 10, "WS8", "logon", &[(User, "corp\\eve")]),
    ];
    for i in 0..10 {
        d.push(det(
            T0 + 4 * DAY + i,
            &format!("SRV{i}"),
            "scan",
            &[(Ip, "10.0.0.1")],
        ));
    }
    d.push(untimed("WS9", "proc", &[(User, "corp\\eve")]));
    d.push(untimed("WS5", "proc", &[(User, "corp\\eve")]));
    let mut nohost = untimed("x", "logon", &[]);
    nohost.host = None;
    d.push(nohost);
    d
}

#[test]
fn result_does_not_depend_on_host_or_entity_ids() {
    let dets = scenario();
    let reference = run_seeded(Config::default(), &dets, None);
    assert_eq!(reference.incidents.len(), 1 + 1 + 1 + 10 + 1 + 1);
    assert_eq!(reference.incidents[0].hosts, ["DC1", "WS5", "WS6"]);
    assert_eq!(reference.incidents[2].hosts, ["WS5", "WS8"]);
    assert_eq!(reference.entities_over_ceiling, 1);
    for seed in 1..=8 {
        let shuffled = run_seeded(Config::default(), &dets, Some(seed));
        assert_eq!(shuffled, reference, "seed {seed}");
    }
}

#[test]
fn ids_change_with_content_only() {
    let base = [det(T0, "WS5", "r1", &[]), det(T0 + MIN, "WS5", "r2", &[])];
    let id = |dets: &[Det]| {
        run(dets)
            .incidents
            .iter()
            .find(|i| i.hosts == ["WS5"])
            .map(|i| i.id.clone())
            .unwrap()
    };
    let reference = id(&base);
    assert!(reference.starts_with("inc-") && reference.len() == 20);
    assert!(reference[4..]
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // Unrelated incidents and entities leave it alone.
    let mut more = base.to_vec();
    more.push(det(T0 + 5 * DAY, "WS9", "r1", &[]));
    assert_eq!(id(&more), reference);
    let mut with_entity = base.to_vec();
    with_entity[0].entities.push((User, "corp\\eve".to_owned()));
    assert_eq!(id(&with_entity), reference);
    // Another count, rule, time or host name changes it.
    let mut twice = base.to_vec();
    twice.push(det(T0 + MIN, "WS5", "r2", &[]));
    let mut other_rule = base.to_vec();
    other_rule[1].rule = "r3".to_owned();
    let mut later = base.to_vec();
    later[1].time = Some((T0 + MIN, 1));
    let renamed: Vec<Det> = base
        .iter()
        .map(|d| Det {
            host: Some("WS6".to_owned()),
            ..d.clone()
        })
        .collect();
    let renamed_id = run(&renamed).incidents[0].id.clone();
    let ids = [
        reference,
        id(&twice),
        id(&other_rule),
        id(&later),
        renamed_id,
    ];
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn incident_of_finds_the_group_holding_a_time() {
    let g = run(&[
        det(T0, "WS1", "r1", &[]),
        det(T0 + 30 * MIN, "WS1", "r1", &[]),
        det(T0 + 3 * HOUR, "WS1", "r2", &[]),
        det(T0 + 3 * HOUR, "WS2", "r2", &[]),
    ]);
    assert_eq!(g.incidents.len(), 3);
    let ws1_first = 0;
    let ws1_second = g
        .incidents
        .iter()
        .position(|i| i.hosts == ["WS1"] && i.first == at(T0 + 3 * HOUR))
        .unwrap();
    let ws2 = g.incidents.iter().position(|i| i.hosts == ["WS2"]).unwrap();
    assert_eq!(g.incident_of(Some("WS1"), at(T0)), Some(ws1_first));
    assert_eq!(
        g.incident_of(Some("WS1"), at(T0 + 20 * MIN)),
        Some(ws1_first)
    );
    // Within the gap after the group's end.
    assert_eq!(
        g.incident_of(Some("WS1"), at(T0 + 90 * MIN)),
        Some(ws1_first)
    );
    // Past the gap, before the next group.
    assert_eq!(g.incident_of(Some("WS1"), at(T0 + 90 * MIN + 1)), None);
    assert_eq!(g.incident_of(Some("WS1"), at(T0 - 1)), None);
    assert_eq!(
        g.incident_of(Some("WS1"), at(T0 + 3 * HOUR)),
        Some(ws1_second)
    );
    assert_eq!(g.incident_of(Some("WS2"), at(T0 + 3 * HOUR + 5)), Some(ws2));
    assert_eq!(g.incident_of(Some("WS3"), at(T0)), None);
    assert_eq!(g.incident_of(Some("WS1"), None), None);
}

#[test]
fn entities_are_sorted_distinct_and_capped() {
    let guids: Vec<String> = (0..250)
        .map(|i| format!("39e4a257-0000-0000-0000-{i:012}"))
        .collect();
    let mut d = det(
        T0,
        "WS1",
        "r1",
        &[(Ip, "10.0.0.7"), (User, "corp\\zed"), (User, "corp\\amy")],
    );
    d.entities
        .extend(guids.iter().map(|g| (ProcessGuid, g.clone())));
    let mut again = d.clone();
    again.time = Some((T0 + 1, 0));
    let g = run(&[d, again]);
    let inc = &g.incidents[0];
    assert_eq!(inc.entities.len(), ENTITY_CAP);
    assert_eq!(inc.entities[0], (User, "corp\\amy".to_owned()));
    assert_eq!(inc.entities[1], (User, "corp\\zed".to_owned()));
    assert_eq!(inc.entities[2], (Ip, "10.0.0.7".to_owned()));
    assert_eq!(inc.entities[3], (ProcessGuid, guids[0].clone()));
    assert_eq!(inc.entities[199], (ProcessGuid, guids[196].clone()));
    assert_eq!(inc.users, ["corp\\amy", "corp\\zed"]);
    assert_eq!(inc.detections, 2);
}
