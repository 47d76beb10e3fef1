//! Issue #20, item 3: events read without an EventID or a time (a record
//! shape the reader does not know) were counted as read and nothing else.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn hunt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("run tracehunt")
}

/// Rows whose EventID or time the reader cannot find (a shape variant it
/// does not know) were counted as events read and nothing else: now the
/// summary counts them, names the file and the first one, and stderr says so.
#[test]
fn event_without_eventid_or_time_was_passed_silently() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rows.jsonl");
    let rows = [
        // An EventID under a key no shape uses, a time.
        json!({"System": {"EventID": {"Id": 4624}, "TimeCreated": {"SystemTime": 1553024497.5},
            "Channel": "Security", "EventRecordID": 7}, "EventData": {"TargetUserName": "a"}}),
        // Complete.
        json!({"System": {"EventID": {"Value": 4624}, "TimeCreated": {"SystemTime": 1553024498},
            "Channel": "Security", "EventRecordID": 8}, "EventData": {"TargetUserName": "b"}}),
        // A time under a key no shape uses.
        json!({"System": {"EventID": {"Value": 4624}, "TimeCreated": {"When": 1553024499},
            "Channel": "Security", "EventRecordID": 9}, "EventData": {"TargetUserName": "c"}}),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&p, text).unwrap();
    let path = p.display().to_string();

    let out = hunt(&["hunt", &path, "-f", "json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["summary"];
    assert_eq!(s["events"], 3);
    assert_eq!(s["records_skipped"], 0);
    assert_eq!(s["events_incomplete"], 2);
    assert_eq!(
        s["files_with_incomplete_events"],
        json!([{"path": path, "events": 2, "first": "record 7: no EventID"}])
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "tracehunt: 2 events without an EventID or a time in {path} (first: record 7: no EventID)"
        )),
        "{err}"
    );

    let out = hunt(&["hunt", &path, "-f", "table"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("Events incomplete: 2 without an EventID or a time"),
        "{table}"
    );
    assert!(
        table.contains(&format!("  - 2 in {path} (first: record 7: no EventID)")),
        "{table}"
    );
}
