//! `tracehunt metrics` on real data: totals equal `hunt`'s event count on
//! the same input, and every inventory (EventIDs, computers, channels,
//! files) sums to the total.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// EVTX-ATTACK-SAMPLES, or `None` (said on stderr) when the shared corpora are absent.
fn attack_samples() -> Option<String> {
    let p = root().join("../shared/corpora/evtx-attack-samples");
    if p.is_dir() {
        Some(p.display().to_string())
    } else {
        eprintln!("skipped: ../shared/corpora not present");
        None
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run tracehunt")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(&run(args))).expect("one JSON document")
}

fn sum(rows: &Value, key: &str) -> u64 {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].as_u64().unwrap())
        .sum()
}

/// Every inventory of a `metrics -f json` document sums to its total.
fn assert_sums(m: &Value) {
    let total = m["events"].as_u64().unwrap();
    assert_eq!(sum(&m["event_ids"], "count"), total);
    assert_eq!(sum(&m["computers"], "count"), total);
    assert_eq!(sum(&m["channels"], "count"), total);
    assert_eq!(sum(&m["files"], "events"), total);
}

#[test]
fn evtx_attack_samples_totals_equal_hunt() {
    let Some(c) = attack_samples() else { return };
    let m = json(&["metrics", &c, "-f", "json", "-q"]);
    // hunt's summary on the same folder (also asserted in cli.rs).
    let h = json(&["hunt", &c, "--format", "json", "-q"]);
    assert_eq!(m["events"], h["summary"]["events"]);
    assert_eq!(m["events"], 14414);
    assert_eq!(m["files_read"], h["summary"]["files"]);
    assert_eq!(m["files_read"], 271);
    assert_eq!(
        m["files_unreadable"].as_array().unwrap().len(),
        h["summary"]["files_skipped"].as_array().unwrap().len()
    );
    assert_eq!(m["records_lost"], 0);
    assert_sums(&m);
    // 141 (channel, EventID) pairs, 24 computers, 25 channel/provider pairs.
    assert_eq!(m["event_ids"].as_array().unwrap().len(), 141);
    assert_eq!(m["computers"].as_array().unwrap().len(), 24);
    assert_eq!(m["channels"].as_array().unwrap().len(), 25);
    // Most frequent: the access-log lines, then Security 5145, Sysmon 1.
    let eid = &m["event_ids"];
    assert_eq!(eid[0]["channel"], "webserver:access");
    assert_eq!(eid[0]["count"], 6959);
    assert_eq!(eid[1]["event_id"], 5145);
    assert_eq!(eid[1]["count"], 958);
    assert_eq!(eid[1]["name"], "Network share object access checked");
    assert_eq!(eid[2]["name"], "Process creation");
    assert_eq!(eid[2]["count"], 861);
    assert_eq!(eid[0]["percent"], 48.28);
    // Per file: the W3C log of the Tunna RDP tunnel.
    let files = m["files"].as_array().unwrap();
    let iis = files
        .iter()
        .find(|f| {
            f["file"]
                .as_str()
                .unwrap()
                .ends_with("Tunna_rdp_tunnel_IIS.log")
        })
        .unwrap();
    assert_eq!(iis["format"], "w3c");
    assert_eq!(iis["events"], 4298);
    assert_eq!(iis["first"], "2019-09-03T10:13:36Z");
    assert_eq!(iis["last"], "2019-09-03T11:08:51Z");
    assert_eq!(files.iter().filter(|f| f["format"] == "evtx").count(), 269);
}

#[test]
fn time_window_counts_add_up() {
    let Some(c) = attack_samples() else { return };
    let m = json(&[
        "metrics",
        &c,
        "--from",
        "2019-03-19",
        "--to",
        "2019-03-19",
        "-f",
        "json",
        "-q",
    ]);
    assert_eq!(m["events"], 399);
    assert_eq!(m["events_outside_window"], 14015);
    assert_eq!(
        m["events"].as_u64().unwrap() + m["events_outside_window"].as_u64().unwrap(),
        m["events_read"].as_u64().unwrap()
    );
    assert_sums(&m);
    // Files with an event that day.
    let with_events = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["events"].as_u64().unwrap() > 0)
        .count();
    assert_eq!(with_events, 9);
}

#[test]
fn bundled_samples_table_and_csv() {
    let m = json(&["metrics", "samples/evtx", "-f", "json", "-q"]);
    assert_eq!(m["events"], 248);
    assert_eq!(m["files_read"], 10);
    assert_sums(&m);
    let table = ok(&run(&["metrics", "samples/evtx", "-f", "table", "-q"]));
    for section in [
        "EventIDs per channel",
        "Computers",
        "Channels and providers",
        "Files",
    ] {
        assert!(table.lines().any(|l| l == section), "{section}");
    }
    assert_eq!(
        table.lines().last().unwrap(),
        "248 events in 10 files (248 events read, 0 outside the time window, 0 records lost)"
    );
    let csv_text = ok(&run(&[
        "metrics",
        "samples/evtx",
        "--by",
        "file",
        "-f",
        "csv",
        "-q",
    ]));
    let mut rd = csv::Reader::from_reader(csv_text.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 10);
    let events: u64 = rows.iter().map(|r| r[2].parse::<u64>().unwrap()).sum();
    assert_eq!(events, 248);
    // CSV holds one inventory.
    assert_eq!(
        run(&["metrics", "samples/evtx", "-f", "csv"]).status.code(),
        Some(1)
    );
}

#[test]
fn output_is_the_same_for_any_thread_count() {
    // Per-thread counts are merged in scheduling order: the output must not
    // depend on it (one 1 MB file is split into its EVTX chunks across the threads).
    let Some(c) = attack_samples() else { return };
    let one_file = format!("{c}/Privilege Escalation/Sysmon_UACME_64.evtx");
    for path in [c.as_str(), one_file.as_str()] {
        for cmd in ["metrics", "logon-summary"] {
            let f = if cmd == "metrics" { "json" } else { "jsonl" };
            let t1 = ok(&run(&[cmd, path, "-f", f, "-q", "-t", "1"]));
            let t2 = ok(&run(&[cmd, path, "-f", f, "-q", "-t", "2"]));
            assert_eq!(t1, t2, "{cmd} {path}");
        }
    }
    let m = json(&["metrics", &one_file, "-f", "json", "-q", "-t", "2"]);
    assert_eq!(m["events"], 530);
    assert_eq!(m["files"].as_array().unwrap().len(), 1);
    assert_sums(&m);
}

/// Testers' finding: a mistyped path next to a good one exited 0 for
/// `metrics` and `logon-summary` (`hunt` exits 1 once done, naming it even
/// with -q); the good path is still read.
#[test]
fn a_missing_path_next_to_a_good_one_exits_1() {
    let out = run(&[
        "metrics",
        "samples/evtx",
        "samples/nope",
        "--by",
        "eid",
        "-f",
        "json",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("samples/nope"), "{err}");
    assert!(err.contains("1 path not found"), "{err}");
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["events"], 248);
    let out = run(&[
        "logon-summary",
        "samples/evtx",
        "samples/nope",
        "-f",
        "jsonl",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("samples/nope"));
    let successful: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["section"] == "successful")
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(successful, 5);
}

/// Fresh user: `search -f CSV` and `metrics --by EID` were rejected while
/// `hunt -f CSV` works; these values now ignore case.
#[test]
fn format_and_by_values_ignore_case() {
    let m = json(&["metrics", "samples/evtx", "--by", "EID", "-f", "JSON", "-q"]);
    assert_eq!(m["events"], 248);
    assert!(m["event_ids"].is_array());
    assert!(m.get("files").is_none());
    let csv_text = ok(&run(&[
        "search",
        "samples/evtx",
        "-F",
        "EventID:4624",
        "-f",
        "CSV",
        "-q",
    ]));
    assert_eq!(csv_text.lines().count(), 1 + 5);
    assert!(csv_text.starts_with("timestamp,computer,"));
    let jsonl = ok(&run(&[
        "logon-summary",
        "samples/evtx",
        "-f",
        "JsonL",
        "-q",
    ]));
    assert!(jsonl.lines().all(|l| l.starts_with('{')));
}
