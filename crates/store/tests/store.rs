//! Round trip, reruns, false positives, rollback and migrations of the store.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use tracehunt_store::*;

fn months(v: &[(&str, u64)]) -> BTreeMap<String, u64> {
    v.iter().map(|(m, n)| ((*m).to_owned(), *n)).collect()
}

#[test]
fn round_trip() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let stats = hunt(&mut store, t(5, 1, 12, 0), t(3, 1, 10, 0));
    assert_eq!(
        stats,
        HuntStats {
            hunt_id: 1,
            detections: 3,
            detections_new: 3,
            detections_duplicate: 0,
            incidents: 2,
            incidents_new: 2,
            sightings_new: 3,
        }
    );

    let inc = store.incidents(None).unwrap();
    assert_eq!(
        inc.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["inc-b", "inc-a"]
    );
    let a = &inc[1];
    assert_eq!(a.stix_id, tracehunt_report::stix_id("incident", "inc-a"));
    assert_eq!(
        (a.first_seen, a.last_seen),
        (Some(t(3, 1, 10, 0)), Some(t(3, 1, 11, 0)))
    );
    assert_eq!(a.hosts, ["WS1", "WS2"]);
    assert_eq!(a.techniques, ["T1003.001", "T1021.002"]);
    assert_eq!(
        (a.detections, a.confident, a.false_positive),
        (2, true, false)
    );
    assert_eq!((a.first_hunt, a.created_at), (1, t(5, 1, 12, 0)));
    let top = a.top.as_ref().unwrap();
    assert_eq!((top.group_id.as_str(), top.confidence), ("G0009", 70));
    let since = store.incidents(Some(t(3, 15, 0, 0))).unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].id, "inc-b");

    let d = store.incident("inc-a").unwrap().unwrap();
    assert_eq!(d.candidates.len(), 2);
    assert_eq!(d.candidates[1].group_id, "G0016");
    assert_eq!(d.candidates[0].evidence["group"], "G0009");
    assert_eq!(
        d.entities,
        [
            ("ip".to_owned(), "10.0.0.5".to_owned()),
            ("user".to_owned(), "alice".to_owned())
        ]
    );
    assert_eq!(
        d.rules,
        [
            RuleCount {
                rule_id: "r1".into(),
                title: Some("LSASS access".into()),
                detections: 1
            },
            RuleCount {
                rule_id: "r2".into(),
                title: Some("PsExec service".into()),
                detections: 1
            },
        ]
    );
    assert!(store.incident("inc-zz").unwrap().is_none());

    let actors = store.actors(1, 0).unwrap();
    assert_eq!(
        actors,
        [ActorRow {
            group_id: "G0009".into(),
            group_name: "Deep Panda".into(),
            state: Some("China".into()),
            incidents: 2,
            hosts: vec!["DC1".into(), "WS1".into(), "WS2".into()],
            first_seen: Some(t(3, 1, 10, 0)),
            last_seen: Some(t(4, 2, 9, 30)),
            max_confidence: 70,
            false_positive_incidents: 0,
            months: months(&[("2024-03", 1), ("2024-04", 1)]),
        }]
    );
    let two = store.actors(2, 0).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!((two[1].group_id.as_str(), two[1].incidents), ("G0016", 1));
    let confident = store.actors(1, 60).unwrap();
    assert_eq!((confident[0].incidents, confident[0].hosts.len()), (1, 2));
    assert_eq!(confident[0].months, months(&[("2024-03", 1)]));

    let h = store.actor("g0009").unwrap().unwrap();
    assert_eq!(
        (h.group_id.as_str(), h.state.as_deref()),
        ("G0009", Some("China"))
    );
    assert_eq!(
        h.sightings
            .iter()
            .map(|s| s.incident_id.as_str())
            .collect::<Vec<_>>(),
        ["inc-a", "inc-b"]
    );
    let s = &h.sightings[1];
    assert_eq!((s.rank, s.confidence, s.false_positive), (1, 55, false));
    assert_eq!(s.hosts, ["DC1"]);
    assert_eq!(s.confidence_label.as_deref(), Some("low"));
    assert_eq!(s.evidence.as_ref().unwrap()["group"], "G0009");
    assert_eq!(
        store.actor("deep PANDA").unwrap().unwrap().group_id,
        "G0009"
    );
    assert!(store.actor("G9999").unwrap().is_none());

    let hunts = store.hunts().unwrap();
    assert_eq!(hunts.len(), 1);
    let h = &hunts[0];
    assert_eq!(
        (h.events, h.detections, h.detections_new, h.incidents),
        (1200, 3, 3, 2)
    );
    assert_eq!(h.finished_at, Some(t(5, 1, 12, 5)));
    assert_eq!(h.parameters["threads"], 2);
    let sources = store.sources().unwrap();
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[1].first_event, Some(t(4, 1, 0, 0)));
    assert_eq!((sources[1].events_read, sources[1].records_lost), (600, 2));
}

#[test]
fn rerun_adds_nothing_and_first_seen_only_moves_earlier() {
    let mut store = Store::open_in_memory().unwrap();
    hunt(&mut store, t(5, 1, 12, 0), t(3, 1, 10, 0));
    let actors = store.actors(2, 0).unwrap();
    let incidents = store.incidents(None).unwrap();

    let again = hunt(&mut store, t(5, 2, 12, 0), t(3, 1, 10, 0));
    assert_eq!(
        again,
        HuntStats {
            hunt_id: 2,
            detections: 3,
            detections_new: 0,
            detections_duplicate: 3,
            incidents: 2,
            incidents_new: 0,
            sightings_new: 0,
        }
    );
    assert_eq!(store.actors(2, 0).unwrap(), actors);
    let after = store.incidents(None).unwrap();
    for (a, b) in incidents.iter().zip(&after) {
        assert_eq!(
            (&a.stix_id, a.first_hunt, a.created_at),
            (&b.stix_id, b.first_hunt, b.created_at)
        );
        // Nothing changed: `updated_at` stays (a rerun must not change the store).
        assert_eq!(b.updated_at, a.updated_at);
    }
    assert_eq!(store.hunts().unwrap()[1].detections_new, 0);
    // Coverage keeps one row per hunt.
    assert_eq!(store.sources().unwrap().len(), 4);

    // A later hunt reports inc-a first seen later: the earlier first seen stays.
    hunt(&mut store, t(5, 3, 12, 0), t(3, 1, 10, 30));
    let g = &store.actors(1, 0).unwrap()[0];
    assert_eq!(g.first_seen, Some(t(3, 1, 10, 0)));
    let h = store.actor("G0009").unwrap().unwrap();
    assert_eq!(h.sightings[0].first_seen, Some(t(3, 1, 10, 0)));
    assert_eq!(
        store
            .incident("inc-a")
            .unwrap()
            .unwrap()
            .incident
            .first_seen,
        Some(t(3, 1, 10, 0))
    );

    // An earlier first seen moves it earlier (into February).
    hunt(&mut store, t(5, 4, 12, 0), t(2, 20, 8, 0));
    let g = &store.actors(1, 0).unwrap()[0];
    assert_eq!(g.first_seen, Some(t(2, 20, 8, 0)));
    assert_eq!(g.last_seen, Some(t(4, 2, 9, 30)));
    assert_eq!(g.months, months(&[("2024-02", 1), ("2024-04", 1)]));
    let h = store.actor("G0009").unwrap().unwrap();
    assert_eq!(h.sightings[0].first_seen, Some(t(2, 20, 8, 0)));
    assert_eq!(h.sightings[0].last_seen, Some(t(3, 1, 11, 0)));
    assert_eq!(store.hunts().unwrap().len(), 4);
}

#[test]
fn false_positive_counts_apart() {
    let mut store = Store::open_in_memory().unwrap();
    hunt(&mut store, t(5, 1, 12, 0), t(3, 1, 10, 0));
    assert!(store.set_false_positive("inc-b", true).unwrap());
    assert!(!store.set_false_positive("inc-zz", true).unwrap());
    // Setting the flag it already has still finds the incident.
    assert!(store.set_false_positive("inc-b", true).unwrap());

    let g = &store.actors(1, 0).unwrap()[0];
    assert_eq!((g.incidents, g.false_positive_incidents), (1, 1));
    assert_eq!(g.hosts, ["WS1", "WS2"]);
    assert_eq!(
        (g.first_seen, g.last_seen),
        (Some(t(3, 1, 10, 0)), Some(t(3, 1, 11, 0)))
    );
    assert_eq!(g.max_confidence, 70);
    assert_eq!(g.months, months(&[("2024-03", 1)]));
    let h = store.actor("G0009").unwrap().unwrap();
    assert_eq!(
        h.sightings
            .iter()
            .map(|s| s.false_positive)
            .collect::<Vec<_>>(),
        [false, true]
    );
    let b = store.incident("inc-b").unwrap().unwrap().incident;
    assert!(b.false_positive && b.false_positive_at.is_some());

    // A rerun keeps the analyst's flag.
    hunt(&mut store, t(5, 2, 12, 0), t(3, 1, 10, 0));
    assert!(
        store
            .incident("inc-b")
            .unwrap()
            .unwrap()
            .incident
            .false_positive
    );
    assert_eq!(store.actors(1, 0).unwrap()[0].false_positive_incidents, 1);

    // Marking inc-a too: the group is still listed, with no statistics.
    assert!(store.set_false_positive("inc-a", true).unwrap());
    let g = &store.actors(1, 0).unwrap()[0];
    assert_eq!(
        (g.incidents, g.false_positive_incidents, g.max_confidence),
        (0, 2, 0)
    );
    assert_eq!((g.first_seen, g.hosts.len(), g.months.len()), (None, 0, 0));

    assert!(store.set_false_positive("inc-b", false).unwrap());
    assert!(store.set_false_positive("inc-a", false).unwrap());
    assert_eq!(store.actors(1, 0).unwrap()[0].incidents, 2);
}

/// Every table's rows, in a fixed order, as text.
fn dump(path: &Path) -> String {
    let c = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for table in tables {
        let mut st = c.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let n = st.column_count();
        let mut rows: Vec<String> = st
            .query_map([], |r| {
                (0..n)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.push_str(&format!("{table}: {}\n{}\n", rows.len(), rows.join("\n")));
    }
    out
}

#[test]
fn dropped_writer_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let mut store = Store::open(&path).unwrap();
    hunt(&mut store, t(5, 1, 12, 0), t(3, 1, 10, 0));
    let before = dump(&path);
    assert!(before.contains("detections: 3\n"), "{before}");
    {
        let mut w = store.begin_hunt(&run(t(5, 2, 12, 0))).unwrap();
        fill(&mut w, t(2, 1, 0, 0)); // would move inc-a's first seen
        let mut c = inc_b();
        c.id = "inc-c".into();
        w.add_incident(&c).unwrap();
        assert!(w
            .add_detection(&DetectionRec {
                rule_id: "r9",
                event_key: key(9),
                time: None,
                host: None,
                source: "x",
                level: "low",
                incident_id: Some("inc-c"),
            })
            .unwrap());
        // dropped here without commit
    }
    assert_eq!(dump(&path), before);

    // A detection naming an incident never added fails at commit and leaves nothing either.
    let mut w = store.begin_hunt(&run(t(5, 3, 12, 0))).unwrap();
    w.add_detection(&DetectionRec {
        rule_id: "r9",
        event_key: key(10),
        time: None,
        host: None,
        source: "x",
        level: "low",
        incident_id: Some("inc-missing"),
    })
    .unwrap();
    let err = w.commit(t(5, 3, 13, 0), 1).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains("store.db"), "{err}");
    drop(store);
    assert_eq!(dump(&path), before);

    // The store is usable afterwards.
    let mut store = Store::open(&path).unwrap();
    assert_eq!(hunt(&mut store, t(5, 4, 12, 0), t(3, 1, 10, 0)).hunt_id, 2);
}

fn columns(path: &Path, table: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c.prepare(&format!("PRAGMA table_info({table})")).unwrap();
    st.query_map([], |r| r.get(1))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn migrates_v1_to_v2_keeping_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut v1 = Store::open_at_version(&path, 1).unwrap();
        assert_eq!(v1.schema_version().unwrap(), 1);
        hunt(&mut v1, t(5, 1, 12, 0), t(3, 1, 10, 0));
    }
    assert!(!columns(&path, "incidents").contains(&"false_positive".to_owned()));

    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 2);
    assert!(columns(&path, "incidents").contains(&"false_positive".to_owned()));
    let inc = store.incidents(None).unwrap();
    assert_eq!(inc.len(), 2);
    assert!(inc.iter().all(|i| !i.false_positive));
    assert_eq!(store.incident("inc-a").unwrap().unwrap().rules.len(), 2);
    assert_eq!(store.hunts().unwrap()[0].detections, 3);
    // The new feature works on the migrated data.
    assert!(store.set_false_positive("inc-b", true).unwrap());
    let g = &store.actors(1, 0).unwrap()[0];
    assert_eq!((g.incidents, g.false_positive_incidents), (1, 1));
    // Its indexes exist.
    let c = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN \
             ('detections_incident', 'sightings_group', 'incidents_first_seen')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 3);
    drop(store);
    // Reopening a current store runs nothing and keeps the data.
    let store = Store::open(&path).unwrap();
    assert!(
        store
            .incident("inc-b")
            .unwrap()
            .unwrap()
            .incident
            .false_positive
    );
    // Asking for v1 of a v2 store is refused.
    assert!(matches!(
        Store::open_at_version(&path, 1),
        Err(StoreError::TooNew {
            found: 2,
            supported: 1,
            ..
        })
    ));
}

#[test]
fn newer_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(Store::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("UPDATE schema_version SET version = 7", [])
        .unwrap();
    drop(c);
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found: 7, supported: 2, ref path } if path.ends_with("new.db")),
        "{err}"
    );
    assert!(err.to_string().contains("new.db"), "{err}");
    // Untouched.
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = c
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 7);

    let other = dir.path().join("other.db");
    let c = rusqlite::Connection::open(&other).unwrap();
    c.execute("CREATE TABLE notes (x TEXT)", []).unwrap();
    drop(c);
    assert!(matches!(
        Store::open(&other),
        Err(StoreError::NotAStore { .. })
    ));
}

#[test]
fn bad_values_are_errors_not_panics() {
    let mut store = Store::open_in_memory().unwrap();
    let mut w = store.begin_hunt(&run(t(5, 1, 12, 0))).unwrap();
    let mut i = inc_b();
    i.candidates[0].confidence = 101;
    let err = w.add_incident(&i).unwrap_err();
    assert!(err.to_string().contains("insert attribution"), "{err}");
}

#[test]
fn detection_stats_count_levels_days_hosts_and_rules() {
    let mut store = Store::open_in_memory().unwrap();
    hunt(&mut store, t(5, 1, 12, 0), t(3, 1, 10, 0));
    // A rerun over the same logs adds no detection, so no count.
    hunt(&mut store, t(5, 2, 12, 0), t(3, 1, 10, 0));
    let s = store.detection_stats(1).unwrap();
    assert_eq!((s.detections, s.untimed), (3, 0));
    assert_eq!(
        s.levels,
        [LevelCount {
            level: "high".into(),
            detections: 3,
            rules: 2
        }]
    );
    let days: Vec<(&str, u64)> = s
        .days
        .iter()
        .map(|d| (d.day.as_str(), d.detections))
        .collect();
    assert_eq!(days, [("2024-03-01", 2), ("2024-04-02", 1)]);
    // Top 1 host of level high: DC1, WS1 and WS2 have one each; the first by name wins.
    assert_eq!(s.top_hosts.len(), 1);
    assert_eq!(s.top_hosts[0].host, "DC1");
    assert_eq!(
        s.top_rules,
        [RuleTotal {
            rule_id: "r1".into(),
            title: Some("LSASS access".into()),
            level: "high".into(),
            detections: 2,
            hosts: 2
        }]
    );
    let empty = Store::open_in_memory()
        .unwrap()
        .detection_stats(10)
        .unwrap();
    assert_eq!(empty, DetectionStats::default());
}
