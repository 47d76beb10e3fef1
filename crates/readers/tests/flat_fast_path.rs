//! The JSON-lines reader's fast path for flat records (issue #22 item 3:
//! members parsed into a list, not a map; strings moved, not copied) gives
//! exactly the events of the general path (`serde_json::Value` →
//! [`records_of_json_value`]) on every record of the real Mordor corpus
//! (`shared/corpora/mordor/windows`, MIT, OTRF/Security-Datasets: 54 files,
//! 48,241 flat records), and on hand-made records that must not take it
//! (duplicate names, other shapes' members, envelopes, invalid JSON).
//!
//! When the corpora are missing the corpus test prints a note and passes.

use std::path::{Path, PathBuf};
use tracehunt_event::Event;
use tracehunt_readers::{open, records_of_json_value, walk, RecordError};

/// Every record of `path` through the file reader (the fast path where it
/// applies).
fn read(path: &Path) -> Vec<Result<Event, RecordError>> {
    open(path).unwrap().collect()
}

/// Every line's records through the general path, with the reader's
/// fallback record id (the line number).
fn general(text: &str) -> Vec<Result<Event, String>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                out.push(Err(format!("invalid JSON: {e}")));
                continue;
            }
        };
        for r in records_of_json_value(v) {
            out.push(r.map(|mut ev| {
                ev.meta.record_id.get_or_insert(i as u64 + 1);
                ev
            }));
        }
    }
    out
}

fn same(path: &Path, text: &str) -> usize {
    let fast = read(path);
    let slow = general(text);
    assert_eq!(fast.len(), slow.len(), "{}", path.display());
    for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
        match (f, s) {
            (Ok(f), Ok(s)) => assert_eq!(f, s, "{} record {i}", path.display()),
            (Err(_), Err(_)) => {}
            _ => panic!("{} record {i}: {f:?} against {s:?}", path.display()),
        }
    }
    fast.len()
}

#[test]
fn fast_path_events_equal_the_general_path_on_every_mordor_record() {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/mordor/windows"
    ));
    if !root.is_dir() {
        println!("skipped: ../shared/corpora not present");
        return;
    }
    let (mut files, errs) = walk(&[root]);
    assert!(errs.is_empty(), "{errs:?}");
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    assert_eq!(files.len(), 54);
    let mut records = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        records += same(f, &text);
    }
    assert_eq!(records, 48_241);
}

/// Records that must keep the general path's result: a duplicate name (the
/// last value at the first place, as `serde_json`'s map), members of other
/// shapes, an envelope, the wire mark, nested and array values, numbers in
/// every form, escapes, and lines that are not one valid object.
#[test]
fn fast_path_gives_the_general_result_on_hostile_records() {
    let lines = [
        r##"{"EventID": 1, "Image": "a", "Image": "b", "Channel": "security"}"##,
        r##"{"EventID": 1, "Channel": "Security", "Channel": "System", "Hostname": "h"}"##,
        r##"{"EventID": 4624, "Event": {"System": {"EventID": 4624}}}"##,
        r##"{"EventID": 4624, "System": {"EventID": 1}}"##,
        r##"{"EventID": 4624, "winlog": {"event_id": 7}}"##,
        r##"{"EventID": 4624, "Records": [{"EventID": 1}]}"##,
        r##"{"EventID": 4624, "records": []}"##,
        r##"{"EventID": "0x10", "Keywords": -9223372036854775808, "Hostname": null, "SourceName": "S"}"##,
        r##"{"EventID": {"#text": 4104, "Qualifiers": 0}, "Payload": {"a": [1, {"b": "c"}], "#text": "t"}}"##,
        r##"{"EventID": 70000, "Computer": "c", "Hostname": "h", "Keywords": "0x8020000000000000"}"##,
        r##"{"EventID": 1.5, "F": 1e300, "G": -0.0, "H": 18446744073709551615, "I": true}"##,
        r##"{"EventID": 1, "Name\u0041": "\ud83d\ude00 \"q\" \\ tab\t", "@timestamp": "2020-09-21T19:26:06.123Z"}"##,
        r##"{"EventID": 1, "Channel": "ForwardedEvents", "SourceName": "Microsoft-Windows-Sysmon"}"##,
        r##"{"EventID": 1, "TimeCreated": "2020-09-21 19:26:06", "timestamp": "bad"}"##,
        r##"{"NoEventID": 1}"##,
        r##"{"EventID": 1, "a": }"##,
        r##"{"EventID": 1}{"EventID": 2}"##,
        r##"[{"EventID": 1}, {"EventID": 2}]"##,
        r##"  {"EventID": 3, "X": [[], {}, null]}  "##,
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.jsonl");
    let text = lines.join("\n");
    std::fs::write(&path, &text).unwrap();
    let fast = read(&path);
    // Glued and invalid lines read differently on purpose (the file reader
    // splits `{…}{…}`); compare every line that is one valid value.
    let valid: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .collect();
    assert_eq!(valid.len(), lines.len() - 2);
    let mut fast_valid = Vec::new();
    for ev in fast.iter().flatten() {
        let line = ev.meta.record_id.unwrap() as usize;
        if serde_json::from_str::<serde_json::Value>(lines[line - 1]).is_ok() {
            fast_valid.push(ev.clone());
        }
    }
    let mut expected = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
            for mut ev in records_of_json_value(v).into_iter().flatten() {
                ev.meta.record_id.get_or_insert(i as u64 + 1);
                expected.push(ev);
            }
        }
    }
    assert_eq!(fast_valid.len(), expected.len());
    for (f, e) in fast_valid.iter().zip(&expected) {
        assert_eq!(f, e);
    }
    // 17 valid lines: the array line gives two events, the empty envelope
    // and `{"NoEventID": 1}` (no shape) none, every other line one.
    assert_eq!(expected.len(), 16);
}
