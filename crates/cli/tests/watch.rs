//! `tracehunt watch` as a user runs it: stdin against `hunt` on the same
//! file, a followed file across SIGKILL and restart, the HTTP endpoint with
//! SIGHUP reload and SIGTERM, a response policy in dry-run and live mode.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpora() -> Option<PathBuf> {
    let p = root().join("../shared/corpora");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: ../shared/corpora not present");
        None
    }
}

const WHOAMI: &str = r#"
title: Whoami run
id: 5f0c3a35-0000-4000-8000-000000000001
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\whoami.exe'}
  condition: sel
level: high
tags: [attack.discovery, attack.t1033]
"#;

const NET: &str = r#"
title: Net run
id: 5f0c3a35-0000-4000-8000-000000000002
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\net.exe'}
  condition: sel
level: high
"#;

fn event(image: &str, n: u64) -> String {
    serde_json::json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1",
        "Image": format!(r"C:\Windows\System32\{image}"), "n": n,
        "DestinationIp": "203.0.113.9", "SourceIp": "198.51.100.7",
        "@timestamp": "2024-05-01T10:00:00Z",
    })
    .to_string()
}

/// The JSON lines of a file (a last line cut by SIGKILL is left out).
fn json_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn detections_n(p: &Path) -> Vec<u64> {
    json_lines(p)
        .iter()
        .filter(|l| l["kind"] == "detection")
        .map(|l| l["event"]["n"].as_u64().unwrap())
        .collect()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stderr lines of a child as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    rx
}

fn expect_line(rx: &mpsc::Receiver<String>, contains: &str) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(contains) => return l,
            Ok(_) => {}
            Err(_) => panic!("no stderr line with {contains:?}"),
        }
    }
}

#[test]
fn watch_stdin_finds_what_hunt_finds_on_a_mordor_log() {
    let Some(c) = corpora() else { return };
    let log = c.join("mordor/windows/defense_evasion/host/cmd_mshta_vbscript_execute_psh/cmd_mshta_vbscript_execute_psh_2020-10-2202580804.json");
    let rules = c.join("sigma/rules");
    let key = |l: &serde_json::Value| {
        format!(
            "{}|{}|{}|{}",
            l["rule_id"], l["timestamp"], l["computer"], l["record_id"]
        )
    };
    let hunt = bin()
        .arg("hunt")
        .arg(&log)
        .arg("-r")
        .arg(&rules)
        .args(["--format", "jsonl", "-q"])
        .output()
        .unwrap();
    let mut hunted: Vec<String> = String::from_utf8(hunt.stdout)
        .unwrap()
        .lines()
        .map(|l| key(&serde_json::from_str(l).unwrap()))
        .collect();
    hunted.sort();
    let out = bin()
        .args(["watch", "--stdin", "-q", "-r"])
        .arg(&rules)
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut watched: Vec<String> = lines
        .iter()
        .filter(|l| l["kind"] == "detection")
        .map(key)
        .collect();
    watched.sort();
    // 24 since issue #20 item 10 (Security 4688 read by process_creation
    // rules through the 4688 field map).
    assert_eq!(hunted.len(), 24);
    assert_eq!(watched, hunted);
    // One host, one session: one incident, opened then closed at the end.
    let incidents: Vec<_> = lines.iter().filter(|l| l["kind"] == "incident").collect();
    assert_eq!(incidents.first().unwrap()["status"], "opened");
    assert_eq!(incidents.last().unwrap()["status"], "closed");
    assert_eq!(incidents.last().unwrap()["detections"], 24);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary
            .contains("1127 events, 0 rejected lines, 24 detections, 1 incident opened, 1 closed"),
        "{summary}"
    );
}

/// Lines of `log` wholly before byte `offset`.
fn lines_before(log: &Path, offset: u64) -> u64 {
    let bytes = std::fs::read(log).unwrap();
    bytes[..offset as usize]
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

fn persisted_offset(state: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    v["files"][0]["offset"].as_u64().unwrap()
}

#[test]
fn watch_killed_with_sigkill_and_restarted_loses_no_event_and_repeats_none_before_the_persisted_offset(
) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("rules")).unwrap();
    std::fs::write(d.path().join("rules/whoami.yml"), WHOAMI).unwrap();
    let log = d.path().join("events.ndjson");
    let state = d.path().join("state.json");
    std::fs::File::create(&log).unwrap();
    let start = |out: &str| {
        bin()
            .arg("watch")
            .arg(&log)
            .arg("--state")
            .arg(&state)
            .arg("-r")
            .arg(d.path().join("rules"))
            .arg("-o")
            .arg(d.path().join(out))
            .arg("-q")
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let total = 3000u64;
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut write = |from: u64, to: u64| {
        for chunk in (from..to).collect::<Vec<_>>().chunks(50) {
            let text: String = chunk
                .iter()
                .map(|&n| event("whoami.exe", n) + "\n")
                .collect();
            f.write_all(text.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let mut first = start("out1.jsonl");
    write(0, 1500);
    let out1 = d.path().join("out1.jsonl");
    wait_until("first detections", 60, || {
        detections_n(&out1).len() >= 700 && state.exists()
    });
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    write(1500, total);
    let offset = persisted_offset(&state);
    let persisted_lines = lines_before(&log, offset);
    let mut second = start("out2.jsonl");
    let out2 = d.path().join("out2.jsonl");
    wait_until("the last event's detection", 60, || {
        detections_n(&out2).contains(&(total - 1))
    });
    signal(&second, "-TERM");
    assert!(second.wait().unwrap().success());
    let (a, b) = (detections_n(&out1), detections_n(&out2));
    let all: BTreeSet<u64> = a.iter().chain(&b).copied().collect();
    assert_eq!(all, (0..total).collect::<BTreeSet<u64>>(), "no event lost");
    // Nothing at or before the persisted offset is delivered again.
    assert!(
        b.iter().all(|&n| n >= persisted_lines),
        "persisted {persisted_lines}, min again {:?}",
        b.iter().min()
    );
    let repeated = b.iter().filter(|n| a.contains(n)).count();
    eprintln!(
        "persisted at line {persisted_lines} of {}; {repeated} repeated after the restart",
        a.len()
    );
    // Each run's own output has no duplicate.
    assert_eq!(b.iter().collect::<BTreeSet<_>>().len(), b.len());
}

fn http(base: &str, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let mut r = match body {
        Some(b) => agent
            .post(format!("{base}{path}"))
            .header("Authorization", &auth)
            .send(b)
            .unwrap(),
        None => agent
            .get(format!("{base}{path}"))
            .header("Authorization", &auth)
            .call()
            .unwrap(),
    };
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

#[test]
fn watch_http_endpoint_reloads_rules_on_sighup_and_stops_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("whoami.yml"), WHOAMI).unwrap();
    let token = "watch-test-token-0123456789";
    let mut child = bin()
        .args(["watch", "--listen", "127.0.0.1:0", "-r"])
        .arg(&rules)
        .env("TRACEHUNT_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = stderr_lines(&mut child);
    let line = expect_line(&err, "listening on http://");
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    let (code, body) = http(
        &base,
        "/v1/events",
        token,
        Some(&(event("whoami.exe", 1) + "\n" + &event("net.exe", 2))),
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["accepted"].as_u64(), v["detections"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        http(
            &base,
            "/v1/events",
            "wrong-token-0123456789",
            Some(&event("whoami.exe", 3))
        )
        .0,
        401
    );
    // A second rule, then SIGHUP: net.exe is detected from now on.
    std::fs::write(rules.join("net.yml"), NET).unwrap();
    signal(&child, "-HUP");
    expect_line(&err, "reloaded (generation 1)");
    let (code, body) = http(&base, "/v1/events", token, Some(&event("net.exe", 4)));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"detections\":1"), "{body}");
    // net.yml broken by an edit: the reload is refused, the running rules stay.
    std::fs::write(rules.join("net.yml"), "title: [unclosed").unwrap();
    signal(&child, "-HUP");
    expect_line(
        &err,
        "reload refused, the running rules stay: 1 rule file newly failing",
    );
    let (_, metrics) = http(&base, "/metrics", token, None);
    assert!(
        metrics.contains("tracehunt_rule_reload_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tracehunt_rules_generation 1"),
        "{metrics}"
    );
    // Lowercase scheme and extra spaces are a bearer token too (RFC 9110, RFC 6750).
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(format!("{base}/v1/events"))
        .header("Authorization", format!("bearer   {token}"))
        .send(event("net.exe", 5))
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("\"detections\":1"));
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let titles: Vec<&str> = lines
        .iter()
        .filter(|l| l["kind"] == "detection")
        .map(|l| l["rule_title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Whoami run", "Net run", "Net run"]);
    assert!(lines
        .iter()
        .all(|l| l["source"] == "http" || l["kind"] == "incident"));
    let rest: Vec<String> = err.try_iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("4 events, 0 rejected lines, 3 detections")),
        "{rest:?}"
    );
}

#[test]
fn watch_response_policy_blocks_in_live_mode_and_only_logs_in_dry_run() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("whoami.yml"), WHOAMI).unwrap();
    let block = d.path().join("block.txt");
    let policy = d.path().join("policy.yml");
    std::fs::write(
        &policy,
        format!(
            "dry_run: false\nallowlist:\n  ips: [198.51.100.0/24]\nresponses:\n  - name: block-ips\n    when: {{ kinds: [detection], min_level: high }}\n    actions:\n      - blocklist: {{ format: plain, path: \"{}\", indicators: [ip] }}\n",
            block.display()
        ),
    )
    .unwrap();
    let run = |extra: &[&str], log: &str| {
        let input: String = (0..3).map(|n| event("whoami.exe", n) + "\n").collect();
        let mut child = bin()
            .args(["watch", "--stdin", "-q", "-r"])
            .arg(&rules)
            .arg("--policy")
            .arg(&policy)
            .arg("--action-log")
            .arg(d.path().join(log))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        json_lines(&d.path().join(log))
    };
    let dry = run(&["--dry-run"], "dry.jsonl");
    assert!(!block.exists(), "dry-run wrote the blocklist");
    let outcomes = |log: &[serde_json::Value]| -> Vec<(String, String)> {
        log.iter()
            .map(|r| {
                (
                    r["outcome"].as_str().unwrap().to_owned(),
                    r["indicator"]["value"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let dry = outcomes(&dry);
    assert!(
        dry.contains(&("dry_run".into(), "203.0.113.9".into())),
        "{dry:?}"
    );
    assert!(
        dry.contains(&("skipped_allowlisted".into(), "198.51.100.7".into())),
        "{dry:?}"
    );
    let live = outcomes(&run(&[], "live.jsonl"));
    // Three detections of the same IP: blocked once, then duplicates.
    assert_eq!(
        live.iter().filter(|o| o.0 == "taken").count(),
        1,
        "{live:?}"
    );
    assert!(
        live.contains(&("skipped_duplicate".into(), "203.0.113.9".into())),
        "{live:?}"
    );
    let listed = std::fs::read_to_string(&block).unwrap();
    let entries: Vec<&str> = listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(entries, ["203.0.113.9"]);
}

#[test]
fn watch_readme_policy_example_loads() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```yaml\ndry_run: false")
        .expect("the README's policy example")
        + 8;
    let yaml = &readme[start..start + readme[start..].find("```").unwrap()];
    let d = tempfile::tempdir().unwrap();
    let policy = d.path().join("policy.yml");
    std::fs::write(&policy, yaml).unwrap();
    // --dry-run: the example's paths are not touched; empty stdin ends the run.
    let out = bin()
        .args(["watch", "--stdin", "--dry-run", "--policy"])
        .arg(&policy)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("2 responses, dry-run"), "{err}");
}

#[test]
fn watch_store_records_detections_once_across_runs() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("whoami.yml"), WHOAMI).unwrap();
    let store = d.path().join("hunts.db");
    let input: String = (0..5).map(|n| event("whoami.exe", n) + "\n").collect();
    for _ in 0..2 {
        let mut child = bin()
            .args(["watch", "--stdin", "-q", "-r"])
            .arg(&rules)
            .arg("--store")
            .arg(&store)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }
    let out = bin()
        .args(["incidents", "--format", "json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let incidents = v
        .as_array()
        .or_else(|| v["incidents"].as_array())
        .expect("incident list");
    // The second run's incident overlaps the first (same host and time): one incident, 5 detections.
    assert_eq!(incidents.len(), 1, "{v}");
    assert_eq!(incidents[0]["detections"], 5, "{v}");
}

#[test]
fn watch_reports_ioc_hits_in_the_incident_of_their_event() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("whoami.yml"), WHOAMI).unwrap();
    let feed = d.path().join("feed.txt");
    std::fs::write(&feed, "203.0.113.9\n").unwrap();
    let input: String = [event("whoami.exe", 1), event("notepad.exe", 2)].join("\n") + "\n";
    let mut child = bin()
        .args(["watch", "--stdin", "-q", "-r"])
        .arg(&rules)
        .arg("--ioc")
        .arg(&feed)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hits: Vec<_> = lines.iter().filter(|l| l["kind"] == "ioc_hit").collect();
    // Both events carry the listed address; only the first fires the rule.
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["ioc"]["value"], "203.0.113.9");
    assert_eq!(hits[0]["rule_id"], "ioc:ip:203.0.113.9");
    let det = lines.iter().find(|l| l["kind"] == "detection").unwrap();
    assert_eq!(hits[0]["incident_id"], det["incident_id"]);
    assert_eq!(
        hits[1]["incident_id"], det["incident_id"],
        "same host and session"
    );
    let closed = lines.iter().rfind(|l| l["kind"] == "incident").unwrap();
    assert_eq!(closed["ioc_hits"], 2);
    assert_eq!(closed["detections"], 3);
}

#[test]
fn watch_stopped_with_sigterm_and_restarted_repeats_nothing() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("rules")).unwrap();
    std::fs::write(d.path().join("rules/whoami.yml"), WHOAMI).unwrap();
    let log = d.path().join("events.ndjson");
    let state = d.path().join("state.json");
    let append = |from: u64, to: u64| {
        let text: String = (from..to).map(|n| event("whoami.exe", n) + "\n").collect();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    let run = |out: &str, last: u64| {
        let out = d.path().join(out);
        let child = bin()
            .arg("watch")
            .arg(&log)
            .arg("--state")
            .arg(&state)
            .arg("-r")
            .arg(d.path().join("rules"))
            .arg("-o")
            .arg(&out)
            .arg("-q")
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until("the last detection", 60, || {
            detections_n(&out).contains(&last)
        });
        signal(&child, "-TERM");
        let mut child = child;
        assert!(child.wait().unwrap().success());
        detections_n(&out)
    };
    append(0, 500);
    assert_eq!(run("out1.jsonl", 499), (0..500).collect::<Vec<_>>());
    append(500, 600);
    // The clean stop saved the offset after the last written detection.
    assert_eq!(run("out2.jsonl", 599), (500..600).collect::<Vec<_>>());
}

#[test]
fn watch_stdin_line_over_the_cap_is_rejected_and_the_next_line_read() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("whoami.yml"), WHOAMI).unwrap();
    let mut child = bin()
        .args(["watch", "--stdin", "-r"])
        .arg(&rules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // 17 MiB without a newline (the cap is 16 MiB), then an event.
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..17 {
            input.write_all(&chunk).unwrap();
        }
        input.write_all(b"\n").unwrap();
        input
            .write_all((event("whoami.exe", 7) + "\n").as_bytes())
            .unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stdin: line 1 longer than 16777216 bytes, skipped"),
        "{err}"
    );
    assert!(
        err.contains("1 event, 1 rejected line, 1 detection, 1 incident opened"),
        "{err}"
    );
    assert_eq!(
        detections_n_text(&String::from_utf8(out.stdout).unwrap()),
        [7]
    );
}

fn detections_n_text(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["kind"] == "detection")
        .map(|l| l["event"]["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn watch_unwritable_state_file_fails_at_start_not_at_the_first_save() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("events.ndjson");
    std::fs::write(&log, "").unwrap();
    let out = bin()
        .arg("watch")
        .arg(&log)
        .arg("--state")
        .arg(d.path().join("missing-dir/state.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--state: the follow state file cannot be written"),
        "{err}"
    );
    // The OS error once, not twice.
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn watch_names_rule_errors_and_rejected_lines_on_stderr() {
    let d = tempfile::tempdir().unwrap();
    let rules = d.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(rules.join("whoami.yml"), WHOAMI).unwrap();
    std::fs::write(
        rules.join("broken.yml"),
        "title: Broken\nid: 5f0c3a35-0000-4000-8000-0000000000bb\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel: {Image: x}\n  condition: sel and nope\n",
    )
    .unwrap();
    let mut child = bin()
        .args(["watch", "--stdin", "-r"])
        .arg(&rules)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("hello\n{}\n{{\"a\":1}}\n", event("whoami.exe", 1));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TH004") && err.contains("broken.yml"), "{err}");
    assert!(
        err.contains("rules: 1 loaded, 1 active, 0 skipped, 1 failed"),
        "{err}"
    );
    assert!(
        err.contains("stdin line 1: neither JSON nor a syslog, auditd or access-log line"),
        "{err}"
    );
    assert!(
        err.contains("stdin line 3: JSON value is not an event in a known shape"),
        "{err}"
    );
    assert!(
        err.contains("1 event, 2 rejected lines, 1 detection"),
        "{err}"
    );
}
