//! Commands: argument vectors without a shell, hostile values, timeouts.
//!
//! The programs are `/bin/sh -c '<literal script>' <args>`: the script is
//! policy text; the values arrive as positional parameters ("$@"), which the
//! script writes NUL-separated to a file, so we see exactly the argv the
//! program got.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use tracehunt_respond::IndicatorKind::{Domain, Ip};
use tracehunt_respond::Outcome;

const HOSTILE: &str =
    "; rm -rf / \"quoted\" 'single' $(x) `id` | && > /tmp/x\nnewline\ttab {indicator}";

/// Writes the positional parameters NUL-separated to the file "$0".
const DUMP: &str = r#"for a in "$@"; do printf '%s\0' "$a"; done >> "$0""#;

fn dumped(path: &Path) -> Vec<Vec<String>> {
    // One command run per line written by the script: split runs on the
    // argument count we know (3 per run below).
    let bytes = std::fs::read(path).unwrap_or_default();
    let args: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect();
    let args = &args[..args.len().saturating_sub(1)]; // after the last NUL
    args.chunks(3).map(|c| c.to_vec()).collect()
}

fn policy(dir: &Path, dry_run: bool, argv: &str, timeout: &str) -> String {
    format!(
        r#"
dry_run: {dry_run}
allowlist: {{ ips: [10.0.0.0/8] }}
responses:
  - name: run
    actions:
      - command:
          argv: {argv}
          timeout: {timeout}
"#,
    )
    .replace("DIR", &dir.display().to_string())
}

fn dump_argv() -> String {
    let script = serde_json::to_string(DUMP).unwrap();
    format!(
        r#"["/bin/sh", "-c", {script}, "DIR/argv", "{{rule_id}}", "--host={{host}}", "{{indicator}}"]"#
    )
}

#[test]
fn hostile_values_reach_the_command_as_one_argument_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = responder(&policy(dir.path(), false, &dump_argv(), "10s"));
    let mut t = detection(
        HOSTILE,
        &[
            (Ip, "203.0.113.7"),
            (Domain, "evil.example"),
            (Ip, "10.9.9.9"),
        ],
    );
    t.host = format!("WS1 {HOSTILE}");
    let recs = r.handle(&t, t0());
    assert_eq!(
        outcomes(&recs),
        owned(&[
            ("203.0.113.7", Outcome::Taken),
            ("evil.example", Outcome::Taken),
            ("10.9.9.9", Outcome::SkippedAllowlisted)
        ])
    );
    let runs = dumped(&dir.path().join("argv"));
    let host = format!("--host=WS1 {HOSTILE}");
    assert_eq!(
        runs,
        [
            vec![HOSTILE.to_owned(), host.clone(), "203.0.113.7".to_owned()],
            vec![HOSTILE.to_owned(), host, "evil.example".to_owned()],
        ]
    );
    // The record shows the argv as a JSON array and the exit status.
    let detail = &recs[0].detail;
    assert!(detail.starts_with(r#"ran ["/bin/sh","-c","#), "{detail}");
    assert!(
        detail.contains(
            r#""; rm -rf / \"quoted\" 'single' $(x) `id` | && > /tmp/x\nnewline\ttab {indicator}""#
        ),
        "{detail}"
    );
    assert!(detail.ends_with(": exit status 0"), "{detail}");
}

#[test]
fn a_command_without_indicator_runs_once_per_trigger_and_is_deduped() {
    let dir = tempfile::tempdir().unwrap();
    let script = serde_json::to_string(DUMP).unwrap();
    let argv = format!(
        r#"["/bin/sh", "-c", {script}, "DIR/argv", "{{rule_id}}", "{{level}}", "{{incident_id}}"]"#
    );
    let mut r = responder(&policy(dir.path(), false, &argv, "10s"));
    let t = detection("rule-1", &[(Ip, "203.0.113.7"), (Ip, "203.0.113.8")]);
    assert_eq!(
        outcomes(&r.handle(&t, t0())),
        owned(&[("", Outcome::Taken)])
    );
    assert_eq!(
        outcomes(&r.handle(&t, t0() + mins(5))),
        owned(&[("", Outcome::SkippedDuplicate)])
    );
    assert_eq!(
        outcomes(&r.handle(&t, t0() + mins(60))),
        owned(&[("", Outcome::Taken)])
    );
    let want = vec!["rule-1".to_owned(), "high".to_owned(), String::new()];
    assert_eq!(dumped(&dir.path().join("argv")), [want.clone(), want]);
}

#[test]
fn dry_run_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = responder(&policy(dir.path(), true, &dump_argv(), "10s"));
    let recs = r.handle(&detection("rule-1", &[(Ip, "203.0.113.7")]), t0());
    assert_eq!(outcomes(&recs), owned(&[("203.0.113.7", Outcome::DryRun)]));
    assert!(
        recs[0].detail.starts_with(r#"would run ["/bin/sh","-c","#),
        "{}",
        recs[0].detail
    );
    assert!(recs[0].detail.ends_with(
        r#""DIR/argv","rule-1","--host=WS1","203.0.113.7"]"#
            .replace("DIR", &dir.path().display().to_string())
            .as_str()
    ));
    assert!(!dir.path().join("argv").exists());
}

#[test]
fn a_timeout_kills_a_hanging_command_and_its_children() {
    let dir = tempfile::tempdir().unwrap();
    // The shell starts a background sleep (which keeps stderr open), records
    // its pid, and waits.
    let argv =
        r#"["/bin/sh", "-c", "sleep 30 & echo $! > \"$0\"; echo started >&2; wait", "DIR/pid"]"#;
    let mut r = responder(&policy(dir.path(), false, argv, "300ms"));
    let start = Instant::now();
    let recs = r.handle(&detection("rule-1", &[]), t0());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(outcomes(&recs), owned(&[("", Outcome::Failed)]));
    assert!(
        recs[0]
            .detail
            .ends_with(": killed after the 300ms timeout; stderr: started"),
        "{}",
        recs[0].detail
    );
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    std::thread::sleep(Duration::from_millis(100));
    // Gone, or a zombie waiting for a reaper: not sleeping any more.
    if let Ok(s) = std::fs::read_to_string(&stat) {
        let state = s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        assert_eq!(state, "Z", "the background sleep survived: {s}");
    }
    // A failed command is not remembered: the next trigger runs it again.
    let again = r.handle(&detection("rule-1", &[]), t0() + mins(1));
    assert_eq!(again[0].outcome, Outcome::Failed);
}

#[test]
fn exit_status_and_stderr_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let argv = r#"["/bin/sh", "-c", "printf 'no such rule %s\n' \"$0\" >&2; exit 3", "{rule_id}"]"#;
    let mut r = responder(&policy(dir.path(), false, argv, "10s"));
    let recs = r.handle(&detection("rule-9", &[]), t0());
    assert_eq!(recs[0].outcome, Outcome::Failed);
    assert!(
        recs[0]
            .detail
            .ends_with(": exit status 3; stderr: no such rule rule-9"),
        "{}",
        recs[0].detail
    );

    let missing = r#"["/nonexistent/program", "{rule_id}"]"#;
    let mut r = responder(&policy(dir.path(), false, missing, "10s"));
    let recs = r.handle(&detection("rule-9", &[]), t0());
    assert_eq!(recs[0].outcome, Outcome::Failed);
    assert!(
        recs[0].detail.contains("cannot start /nonexistent/program"),
        "{}",
        recs[0].detail
    );

    // A NUL byte cannot be passed in an argument: a failure, not a panic.
    let mut r = responder(&policy(dir.path(), false, &dump_argv(), "10s"));
    let recs = r.handle(&detection("rule\0nul", &[(Ip, "203.0.113.7")]), t0());
    assert_eq!(recs[0].outcome, Outcome::Failed);
}
