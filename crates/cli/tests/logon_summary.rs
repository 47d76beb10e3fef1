//! `tracehunt logon-summary` on real data: each section's total is checked
//! against `search` for the same EventID and channel (a second,
//! independent selection of the same events).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A folder of the shared corpora, or `None` (said on stderr) when absent.
fn corpus(sub: &str) -> Option<String> {
    let p = root().join("../shared/corpora").join(sub);
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

fn rows(path: &str) -> Vec<Value> {
    ok(&run(&["logon-summary", path, "-f", "jsonl", "-q"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Events of a section (and EventID, when given) summed over its rows.
fn total(rows: &[Value], section: &str, id: Option<u64>) -> u64 {
    rows.iter()
        .filter(|r| r["section"] == section && id.is_none_or(|id| r["event_id"] == id))
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// `search` count of EventID `id` on `channel`.
fn searched(path: &str, id: u32, channel: &str) -> u64 {
    let out = ok(&run(&[
        "search",
        path,
        "--field",
        &format!("EventID:{id}"),
        "--field",
        &format!("Channel:{channel}"),
        "-f",
        "jsonl",
        "-q",
    ]));
    out.lines().count() as u64
}

const RCM: &str = "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational";

#[test]
fn evtx_attack_samples_successful_failed_and_rdp() {
    let Some(c) = corpus("evtx-attack-samples") else {
        return;
    };
    let r = rows(&c);
    assert_eq!(total(&r, "successful", None), 87);
    assert_eq!(total(&r, "failed", None), 1);
    assert_eq!(total(&r, "rdp", None), 11);
    assert_eq!(searched(&c, 4624, "Security"), 87);
    assert_eq!(searched(&c, 4625, "Security"), 1);
    assert_eq!(searched(&c, 1149, RCM), 11);
    // The one failed logon: IEUser, interactive, on MSEDGEWIN10.
    let failed: Vec<&Value> = r.iter().filter(|r| r["section"] == "failed").collect();
    assert_eq!(failed[0]["user"], "IEUser");
    assert_eq!(failed[0]["logon_type"], 2);
    assert_eq!(failed[0]["logon_type_name"], "Interactive");
    assert_eq!(failed[0]["computer"], "MSEDGEWIN10");
    // RDP: the largest group first (admin01 from 10.0.2.15, 6 times over 4 days).
    let rdp: Vec<&Value> = r.iter().filter(|r| r["section"] == "rdp").collect();
    assert_eq!(rdp.len(), 5);
    assert_eq!(rdp[0]["user"], "admin01");
    assert_eq!(rdp[0]["source_ip"], "10.0.2.15");
    assert_eq!(rdp[0]["count"], 6);
    assert_eq!(rdp[0]["first"], "2019-01-29T23:00:10.212008Z");
    // Sorted by count within a section.
    let succ: Vec<u64> = r
        .iter()
        .filter(|r| r["section"] == "successful")
        .map(|r| r["count"].as_u64().unwrap())
        .collect();
    assert!(succ.windows(2).all(|w| w[0] >= w[1]), "{succ:?}");
    // The table ends with the totals.
    let table = ok(&run(&["logon-summary", &c, "-f", "table", "-q"]));
    assert!(table.contains("Failed logons (Security 4625)"));
    assert_eq!(
        table.lines().last().unwrap(),
        "87 successful logons, 1 failed logon, 11 RDP session events in 14414 events (271 files read)"
    );
}

#[test]
fn mordor_successful_logons_equal_the_search_count() {
    let Some(m) = corpus("mordor") else { return };
    let r = rows(&m);
    assert_eq!(total(&r, "successful", None), 133);
    // Mordor writes the channel as `Security` and `security`: both count.
    assert_eq!(searched(&m, 4624, "security"), 133);
    assert_eq!(total(&r, "failed", None), 0);
}

#[test]
fn bundled_samples_csv_round_trip() {
    let text = ok(&run(&["logon-summary", "samples/evtx", "-f", "csv", "-q"]));
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    // The 5 network logons of OFFSEC\admmig from 10.23.123.11: one group.
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(&row[0], "successful");
    assert_eq!(&row[3], "admmig");
    assert_eq!(&row[4], "OFFSEC");
    assert_eq!(&row[7], "Network");
    assert_eq!(&row[8], "10.23.123.11");
    assert_eq!(&row[10], "5");
    assert_eq!(searched("samples/evtx", 4624, "Security"), 5);
}

#[test]
fn rdp_reconnect_and_disconnect_from_json_lines() {
    // No corpus here holds Security 4778/4779: two Mordor-shaped records.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rdp.json");
    std::fs::write(
        &p,
        concat!(
            r#"{"EventID": 4778, "Channel": "Security", "Hostname": "WS1", "@timestamp": "2024-01-02T10:00:00Z", "AccountName": "alice", "AccountDomain": "CORP", "ClientName": "LAPTOP7", "ClientAddress": "192.0.2.7"}"#,
            "\n",
            r#"{"EventID": 4779, "Channel": "Security", "Hostname": "WS1", "@timestamp": "2024-01-02T11:00:00Z", "AccountName": "alice", "AccountDomain": "CORP", "ClientName": "LAPTOP7", "ClientAddress": "192.0.2.7"}"#,
            "\n",
            r#"{"EventID": 4778, "Channel": "Security", "Hostname": "WS1", "@timestamp": "2024-01-03T09:00:00Z", "AccountName": "alice", "AccountDomain": "CORP", "ClientName": "LAPTOP7", "ClientAddress": "192.0.2.7"}"#,
            "\n",
        ),
    )
    .unwrap();
    let r = rows(&p.display().to_string());
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["event"], "reconnect");
    assert_eq!(r[0]["count"], 2);
    assert_eq!(r[0]["workstation"], "LAPTOP7");
    assert_eq!(r[0]["source_ip"], "192.0.2.7");
    assert_eq!(r[0]["first"], "2024-01-02T10:00:00Z");
    assert_eq!(r[0]["last"], "2024-01-03T09:00:00Z");
    assert_eq!(r[1]["event"], "disconnect");
    // The window keeps the first day only.
    let out = ok(&run(&[
        "logon-summary",
        &p.display().to_string(),
        "--to",
        "2024-01-02",
        "-f",
        "jsonl",
        "-q",
    ]));
    let n: u64 = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(n, 2);
}

/// Testers' finding: `hunt`'s CSV neutralises formula cells, but the CSV of
/// `search`, `metrics` and `logon-summary` wrote `=HYPERLINK(…)` computer
/// names, `=cmd|' /C calc'!A0` user names and raw ESC/BEL/NUL bytes as is.
#[test]
fn csv_cells_cannot_be_formulas_nor_carry_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("evil.json");
    let line = serde_json::json!({
        "EventID": 4624, "Channel": "Security",
        "Hostname": "=HYPERLINK(\"http://x\",\"y\")",
        "@timestamp": "2024-01-02T10:00:00Z",
        "TargetUserName": "=cmd|' /C calc'!A0", "TargetDomainName": "+CORP\u{1b}[31m\u{7}\u{0}",
        "LogonType": 3, "IpAddress": "@192.0.2.7", "WorkstationName": "\tWS"
    });
    std::fs::write(&p, format!("{line}\n")).unwrap();
    let path = p.display().to_string();
    let no_controls = |text: &str| {
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r'),
            "{text:?}"
        );
    };
    let field = |text: &str, col: &str| -> String {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let i = r.headers().unwrap().iter().position(|h| h == col).unwrap();
        r.records().next().unwrap().unwrap()[i].to_owned()
    };
    let logons = ok(&run(&["logon-summary", &path, "-f", "csv", "-q"]));
    no_controls(&logons);
    assert_eq!(
        field(&logons, "computer"),
        "'=HYPERLINK(\"http://x\",\"y\")"
    );
    assert_eq!(field(&logons, "user"), "'=cmd|' /C calc'!A0");
    assert_eq!(field(&logons, "domain"), "'+CORP [31m  ");
    assert_eq!(field(&logons, "source_ip"), "'@192.0.2.7");
    assert_eq!(field(&logons, "workstation"), "' WS");
    let found = ok(&run(&["search", &path, "-k", "calc", "-f", "csv", "-q"]));
    no_controls(&found);
    assert_eq!(field(&found, "computer"), "'=HYPERLINK(\"http://x\",\"y\")");
    assert_eq!(
        field(&found, "matches"),
        "TargetUserName==cmd|' /C calc'!A0"
    );
    let computers = ok(&run(&[
        "metrics", &path, "--by", "computer", "-f", "csv", "-q",
    ]));
    assert_eq!(
        field(&computers, "computer"),
        "'=HYPERLINK(\"http://x\",\"y\")"
    );
    let files = ok(&run(&["metrics", &path, "--by", "file", "-f", "csv", "-q"]));
    no_controls(&files);
    assert_eq!(
        field(&files, "computers"),
        "'=HYPERLINK(\"http://x\",\"y\")"
    );
}
