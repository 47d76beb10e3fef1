//! Rule selection (issue #19, Hayabusa's options): `--include-status`,
//! `--exclude-status`, deprecated/unsupported rules off by default,
//! `--include-tag`/`--exclude-tag`, `--rule-id`/`--exclude-rule-id`,
//! `--exclude-rules FILE`, `--noisy-rules FILE`, `--exact-level`. On the
//! SigmaHQ rules and EVTX-ATTACK-SAMPLES (`../shared/corpora`); the
//! expected counts were checked against the unselected hunt's detections
//! (their tags, levels, rule ids and the rule files' `status:`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared corpora; these tests need them (no silent skip: a missing
/// corpus fails the test).
fn corpora() -> PathBuf {
    let p = root().join("../shared/corpora");
    assert!(
        p.join("sigma/rules").is_dir(),
        "the corpora are missing at {}",
        p.display()
    );
    p
}

fn run(args: &[String]) -> Output {
    bin().args(args).current_dir(root()).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// `hunt EVTX-ATTACK-SAMPLES -r sigma/rules --format json` plus `extra`: the summary.
fn hunt(extra: &[&str]) -> Value {
    let c = corpora();
    let mut args = vec![
        "hunt".to_owned(),
        c.join("evtx-attack-samples").display().to_string(),
        "-r".into(),
        c.join("sigma/rules").display().to_string(),
        "--format".into(),
        "json".into(),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    json_of(&run(&args))["summary"].clone()
}

fn check(dir: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "rules".to_owned(),
        "check".into(),
        "--format".into(),
        "json".into(),
        corpora().join("sigma").join(dir).display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = run(&args);
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

#[test]
fn unselected_hunt_is_the_baseline() {
    let s = hunt(&[]);
    assert_eq!(s["detections"], 998);
    assert_eq!(s["rules_active"], 2884);
    assert_eq!(s["by_level"]["critical"], 11);
    // SigmaHQ's rules folder holds no deprecated or unsupported rule:
    // the Hayabusa default changes nothing there.
    assert_eq!(
        s["rules_skipped_by_reason"],
        serde_json::json!({"logsource_not_mapped": 257})
    );
}

#[test]
fn deprecated_and_unsupported_rules_are_off_unless_enabled() {
    // 171 rules load from SigmaHQ's deprecated folder; 167 say `status: deprecated`.
    let v = check("deprecated", &[]);
    assert_eq!(v["rules_loaded"], 171);
    assert_eq!(v["rules_active"], 4);
    assert_eq!(v["rules_skipped_by_reason"]["excluded_by_status"], 167);
    // The text line names the reason in words.
    let out = run(&[
        "rules".to_owned(),
        "check".into(),
        corpora().join("sigma/deprecated").display().to_string(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "rules: 171 loaded, 4 active, 167 skipped (167 excluded by status), 1 failed"
        ),
        "{text}"
    );
    let v = check("deprecated", &["--enable-deprecated-rules"]);
    assert_eq!(v["rules_active"], 161);
    // The one left is unsupported; the 9 others have no mapped logsource.
    assert_eq!(v["rules_skipped_by_reason"]["excluded_by_status"], 1);
    assert_eq!(v["rules_skipped_by_reason"]["logsource_not_mapped"], 9);
    // Naming a status in --include-status enables it.
    let v = check("unsupported", &[]);
    assert_eq!(v["rules_skipped_by_reason"]["excluded_by_status"], 25);
    let v = check("unsupported", &["--include-status", "UNSUPPORTED"]);
    assert_eq!(v["rules_active"], 25);
    assert_eq!(v["rules_skipped_by_reason"]["excluded_by_status"], 4);
}

#[test]
fn include_status_stable_keeps_the_stable_rules_only() {
    let v = check("rules", &["--include-status", "stable"]);
    assert_eq!(v["rules_loaded"], 3141);
    assert_eq!(v["rules_active"], 72);
    assert_eq!(v["rules_skipped_by_reason"]["excluded_by_status"], 3064);
    let s = hunt(&["--include-status", "stable"]);
    assert_eq!(s["detections"], 45);
    let s = hunt(&["--exclude-status", "stable,experimental"]);
    assert_eq!(s["detections"], 892);
}

#[test]
fn tags_select_case_insensitively_with_sub_techniques() {
    // 81 of the 998 detections are of rules tagged attack.t1059 or a sub-technique.
    assert_eq!(hunt(&["--include-tag", "ATTACK.T1059"])["detections"], 81);
    let s = hunt(&["--exclude-tag", "attack.t1059"]);
    assert_eq!(s["detections"], 917);
    assert!(
        s["rules_skipped_by_reason"]["excluded_by_tag"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Tactic tags work the same way; repeated flags add up.
    assert_eq!(
        hunt(&["--include-tag", "attack.execution"])["detections"],
        194
    );
    assert_eq!(
        hunt(&[
            "--include-tag",
            "attack.execution",
            "--include-tag",
            "attack.t1059"
        ])["detections"],
        194
    );
}

#[test]
fn exact_level_and_rule_ids() {
    let s = hunt(&["--exact-level", "CRITICAL"]);
    assert_eq!(s["detections"], 11);
    assert_eq!(s["by_level"], serde_json::json!({"critical": 11}));
    assert!(
        s["rules_skipped_by_reason"]["level_not_exact"]
            .as_u64()
            .unwrap()
            > 2000
    );
    let s = hunt(&["--rule-id", "93D94EFC-D7AD-4161-AD7D-1638C4F908D8"]);
    assert_eq!(s["detections"], 3);
    assert_eq!(s["rules_active"], 1);
    // The most frequent rule (93 detections) left out by id.
    let s = hunt(&["--exclude-rule-id", "a1a144b7-5c9b-4853-a559-2172be8d4a03"]);
    assert_eq!(s["detections"], 905);
    assert_eq!(s["rules_skipped_by_reason"]["excluded_by_id"], 1);
}

#[test]
fn exclude_and_noisy_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("noisy.txt");
    std::fs::write(
        &list,
        "# Hayabusa-style list\n\na1a144b7-5c9b-4853-a559-2172be8d4a03  # 93 hits\n",
    )
    .unwrap();
    let l = list.display().to_string();
    let s = hunt(&["--exclude-rules", &l]);
    assert_eq!(s["detections"], 905);
    assert_eq!(s["rules_skipped_by_reason"]["excluded_by_id"], 1);
    let s = hunt(&["--noisy-rules", &l]);
    assert_eq!(s["detections"], 905);
    assert_eq!(s["rules_skipped_by_reason"]["noisy"], 1);
    let s = hunt(&["--noisy-rules", &l, "--enable-noisy-rules"]);
    assert_eq!(s["detections"], 998);
}

#[test]
fn bad_selection_input_is_a_usage_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("bad.txt");
    std::fs::write(&list, "# ok\nnot an id\n").unwrap();
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = ["rules", "check"].iter().map(|s| s.to_string()).collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = run(&args(&["--exclude-rules", &list.display().to_string()]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.txt:2: `not an id` is not a rule id"),
        "{err}"
    );
    let missing = dir.path().join("missing.txt").display().to_string();
    let out = run(&args(&["--noisy-rules", &missing]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.txt"));
    // An unknown status is clap's usage error (exit 1, as every usage error).
    let out = run(&args(&["--include-status", "beta"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("beta"));
}

#[test]
fn attack_v19_tags_match_their_v18_selection() {
    // SigmaHQ now tags "Important Windows Eventlog Cleared" and its kin
    // attack.t1685.005 (ATT&CK v19), the v18.1 attack.t1070.001.
    let v18 = hunt(&["--include-tag", "attack.t1070.001"]);
    let v19 = hunt(&["--include-tag", "attack.t1685.005"]);
    assert_eq!(v18["detections"], 26);
    assert_eq!(v18["rules_active"], 7);
    assert_eq!(v18["detections"], v19["detections"]);
    assert_eq!(v18["rules_active"], v19["rules_active"]);
    // The v18.1 technique selects the v19 sub-technique's rules too.
    assert_eq!(hunt(&["--include-tag", "attack.t1070"])["detections"], 53);
    // Excluding the v18.1 technique leaves out the v19-tagged rules.
    // (53 of the 998 detections are of rules tagged under either.)
    let c = corpora();
    let cleared = |extra: &str| {
        let args: Vec<String> = [
            "hunt",
            &c.join("evtx-attack-samples").display().to_string(),
            "-r",
            &c.join("sigma/rules").display().to_string(),
            "--format",
            "json",
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(extra.split_whitespace().map(str::to_owned))
        .collect();
        let v = json_of(&run(&args));
        let n = v["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["rule_title"] == "Important Windows Eventlog Cleared")
            .count();
        (v["summary"]["detections"].clone(), n)
    };
    assert_eq!(cleared(""), (998.into(), 2));
    assert_eq!(cleared("--exclude-tag attack.t1070"), (945.into(), 0));
    // v18.1's defense-evasion tactic selects v19's stealth/defense-impairment rules.
    let s = hunt(&["--include-tag", "attack.defense-evasion"]);
    assert_eq!(s["detections"], 398);
    assert_eq!(
        hunt(&["--include-tag", "attack.defense-impairment"])["detections"],
        65
    );
}
