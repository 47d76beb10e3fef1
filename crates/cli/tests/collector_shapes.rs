//! Issue #20, items 3 and 4, on SigmaHQ's regression events
//! (`../shared/corpora/sigma/regression_data`, Detection Rule License 1.1:
//! the `.json` beside each case's `.evtx`, 238 events in 202 files) as
//! collectors write them:
//!
//! * **Velociraptor** `parse_evtx` rows (`System.EventID.Value`, epoch
//!   `System.TimeCreated.SystemTime`, plain `Provider`, numeric `Keywords`,
//!   `EventData` as a map or `Data` as a list of `Name`/`Value` items, a
//!   `Message` beside them): read with no EventID and no time, "Events
//!   read: 238", 0 detections, no warning.
//! * **`Channel: ForwardedEvents`** (a WEF collector's log): detections fell
//!   from 352 to 0, no warning.
//!
//! Each version is built here from the original JSON and must give, event by
//! event, the rules the original gives (all active SigmaHQ rule folders).
//! When the corpora are missing those tests print a note and pass. The last
//! test (no corpora needed): events read without an EventID or a time are
//! counted in the summary, not passed silently.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tracehunt_engine::{compile, CompileOptions, Ruleset, Scanner};

fn corpora() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    if p.join("sigma/regression_data").is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: ../shared/corpora not present");
        None
    }
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

const RULE_DIRS: [&str; 3] = ["rules", "rules-emerging-threats", "rules-threat-hunting"];

/// Every active SigmaHQ rule, compiled once for the tests of this file.
fn ruleset(c: &Path) -> &'static Ruleset {
    static RS: OnceLock<Ruleset> = OnceLock::new();
    RS.get_or_init(|| {
        let mut rule_files = Vec::new();
        for d in RULE_DIRS {
            files(&c.join("sigma").join(d), "yml", &mut rule_files);
        }
        let mut docs = Vec::new();
        for f in &rule_files {
            let bytes = std::fs::read(f).unwrap();
            docs.extend(tracehunt_sigma::load_rules_bytes(&f.display().to_string(), &bytes).rules);
        }
        compile(docs, &CompileOptions::default()).0
    })
}

/// The regression events as the JSON values of their `.json` files
/// (pretty-printed objects one after another, or arrays), in path order.
fn regression_values(c: &Path) -> Vec<Value> {
    let mut paths = Vec::new();
    files(&c.join("sigma/regression_data"), "json", &mut paths);
    let mut out = Vec::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        let text = text.trim_start_matches('\u{feff}');
        for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            match v.unwrap() {
                Value::Array(a) => out.extend(a),
                v => out.push(v),
            }
        }
    }
    out
}

/// `#attributes` merged into their element (without `xmlns`), as
/// Velociraptor writes attributes and child elements alike.
fn plain(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, c) in m {
                if k == "#attributes" {
                    for (ak, av) in c.as_object().into_iter().flatten() {
                        if !ak.starts_with("xmlns") {
                            out.insert(ak.clone(), av.clone());
                        }
                    }
                } else if !k.starts_with("xmlns") {
                    out.insert(k.clone(), plain(c));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(plain).collect()),
        other => other.clone(),
    }
}

/// The `evtx` crate's JSON of one event as a Velociraptor `parse_evtx`
/// row. `data_list`: `EventData` as `{"Data": [{"Name", "Value"}…]}` (when
/// every value is a scalar) instead of a map.
fn velociraptor(e: &Value, data_list: bool) -> Value {
    let ev = &e["Event"];
    let mut sys = Map::new();
    for (k, c) in ev["System"].as_object().unwrap() {
        let v = match k.as_str() {
            "EventID" => match c {
                Value::Object(m) => {
                    json!({"Qualifiers": m["#attributes"]["Qualifiers"], "Value": m["#text"]})
                }
                n => json!({ "Value": n }),
            },
            "TimeCreated" => {
                let t = c["#attributes"]["SystemTime"].as_str().unwrap();
                let t = chrono::DateTime::parse_from_rfc3339(t).unwrap();
                let secs = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
                json!({ "SystemTime": secs })
            }
            "Keywords" => {
                let hex = c.as_str().unwrap().trim_start_matches("0x");
                json!(u64::from_str_radix(hex, 16).unwrap())
            }
            _ => plain(c),
        };
        sys.insert(k.clone(), v);
    }
    let mut row = json!({ "System": sys });
    if let Some(d) = ev.get("EventData").and_then(Value::as_object) {
        let scalars = d.values().all(|v| !v.is_object() && !v.is_array());
        row["EventData"] = if data_list && scalars {
            let items: Vec<Value> = d
                .iter()
                .map(|(k, v)| json!({"Name": k, "Value": v}))
                .collect();
            json!({ "Data": items })
        } else {
            plain(&ev["EventData"])
        };
    }
    if let Some(u) = ev.get("UserData") {
        row["UserData"] = plain(u);
    }
    row["Message"] = json!("");
    row
}

/// The same event with its channel labelled as a WEF collector's log.
fn forwarded(e: &Value, label: &str) -> Value {
    let mut e = e.clone();
    let sys = match e.get_mut("Event") {
        Some(ev) => &mut ev["System"],
        None => &mut e["System"],
    };
    sys["Channel"] = json!(label);
    e
}

/// Reads `values` back through the file reader (one JSON line each) and
/// gives each event's rule ids, with the events.
fn scan(rs: &Ruleset, values: &[Value]) -> (Vec<Vec<String>>, Vec<tracehunt_event::Event>) {
    let mut text = String::new();
    for v in values {
        text.push_str(&v.to_string());
        text.push('\n');
    }
    let records = tracehunt_readers::open_bytes("shaped.jsonl", text.into_bytes()).unwrap();
    let mut sc = Scanner::new(rs);
    let mut hits = Vec::new();
    let mut per_event = Vec::new();
    let mut events = Vec::new();
    for r in records {
        let ev = r.unwrap_or_else(|e| panic!("{e}"));
        hits.clear();
        sc.scan(&ev, &mut hits);
        per_event.push(hits.iter().map(|&h| rs.rule(h).id.clone()).collect());
        events.push(ev);
    }
    (per_event, events)
}

fn by_rule(per_event: &[Vec<String>]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for id in per_event.iter().flatten() {
        *m.entry(id.as_str()).or_default() += 1;
    }
    m
}

/// The originals through the reader: 238 events, 352 detections of 242
/// rules (the figures of the issue).
fn originals(c: &Path) -> (Vec<Value>, Vec<Vec<String>>, Vec<tracehunt_event::Event>) {
    let values = regression_values(c);
    let (hits, events) = scan(ruleset(c), &values);
    assert_eq!(values.len(), 238);
    assert_eq!(hits.iter().map(Vec::len).sum::<usize>(), 352);
    assert_eq!(by_rule(&hits).len(), 242);
    assert!(events
        .iter()
        .all(|e| e.meta.event_id.is_some() && e.meta.timestamp.is_some()));
    (values, hits, events)
}

#[test]
fn velociraptor_rows_of_sigmahq_regression_events_gave_no_detections() {
    let Some(c) = corpora() else { return };
    let (values, want, orig) = originals(&c);
    let rows: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| velociraptor(v, i % 2 == 1))
        .collect();
    assert!(rows[1]["EventData"]["Data"].is_array());
    let (got, events) = scan(ruleset(&c), &rows);
    assert_eq!(got, want, "rules per event");
    assert_eq!(by_rule(&got), by_rule(&want));
    for (a, b) in events.iter().zip(&orig) {
        assert_eq!(
            (a.meta.event_id, &a.meta.channel, &a.meta.computer),
            (b.meta.event_id, &b.meta.channel, &b.meta.computer)
        );
        assert_eq!(a.meta.record_id, b.meta.record_id);
        // Epoch seconds as an f64 keep the time to the microsecond.
        let d = (a.meta.timestamp.unwrap() - b.meta.timestamp.unwrap())
            .num_nanoseconds()
            .unwrap();
        assert!(d.abs() < 1_000, "{d} ns: {:?}", b.meta.record_id);
    }
}

#[test]
fn forwarded_events_label_on_sigmahq_regression_events_gave_no_detections() {
    let Some(c) = corpora() else { return };
    let (values, want, orig) = originals(&c);
    // The evtx crate's JSON, and Velociraptor rows, labelled ForwardedEvents.
    let labelled: Vec<Value> = values
        .iter()
        .map(|v| forwarded(v, "ForwardedEvents"))
        .chain(
            values
                .iter()
                .map(|v| forwarded(&velociraptor(v, false), "forwardedevents")),
        )
        .collect();
    let (got, events) = scan(ruleset(&c), &labelled);
    let (evtx_json, velo) = got.split_at(values.len());
    assert_eq!(evtx_json, want, "rules per event, evtx-JSON");
    assert_eq!(velo, want, "rules per event, Velociraptor");
    for (a, b) in events.iter().zip(orig.iter().chain(&orig)) {
        assert_eq!(a.meta.channel, b.meta.channel);
        assert_eq!(
            a.first("Channel").and_then(|v| v.as_str()),
            b.meta.channel.as_deref()
        );
        assert_eq!(
            a.first("CollectorChannel").and_then(|v| v.as_str()),
            Some("ForwardedEvents")
        );
    }
}

fn hunt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("run tracehunt")
}

/// The binary on the three versions in one hunt: per source, the same
/// detections (rule, record, channel, EventID) as the original.
#[test]
fn hunt_finds_the_same_352_detections_in_velociraptor_and_forwarded_files() {
    let Some(c) = corpora() else { return };
    let values = regression_values(&c);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, vals: Vec<Value>| {
        let mut text = String::new();
        for v in vals {
            text.push_str(&v.to_string());
            text.push('\n');
        }
        std::fs::write(dir.path().join(name), text).unwrap();
    };
    write("a-original.jsonl", values.clone());
    write(
        "b-velociraptor.jsonl",
        values
            .iter()
            .enumerate()
            .map(|(i, v)| velociraptor(v, i % 2 == 1))
            .collect(),
    );
    write(
        "c-forwarded.jsonl",
        values
            .iter()
            .map(|v| forwarded(v, "ForwardedEvents"))
            .collect(),
    );
    let mut args = vec![
        "hunt".to_owned(),
        dir.path().display().to_string(),
        "-f".into(),
        "json".into(),
    ];
    for d in RULE_DIRS {
        args.push("-r".into());
        args.push(c.join("sigma").join(d).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = hunt(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["summary"];
    assert_eq!(s["events"], 3 * 238);
    assert_eq!(s["detections"], 3 * 352);
    assert!(s.get("events_incomplete").is_none(), "{s}");
    let mut per_source: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in v["detections"].as_array().unwrap() {
        let src = Path::new(d["source"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        per_source.entry(src).or_default().push(format!(
            "{} {} {} {}",
            d["rule_id"], d["record_id"], d["channel"], d["event_id"]
        ));
    }
    for l in per_source.values_mut() {
        l.sort();
    }
    let orig = &per_source["a-original.jsonl"];
    assert_eq!(orig.len(), 352);
    assert_eq!(&per_source["b-velociraptor.jsonl"], orig);
    assert_eq!(&per_source["c-forwarded.jsonl"], orig);
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
