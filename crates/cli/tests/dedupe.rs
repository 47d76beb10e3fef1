//! De-duplication (issue #19): a file reached twice (the same path given
//! twice, a directory overlapping another given path) is read once; `-X`
//! (Hayabusa's `--remove-duplicate-detections`) reports a detection of one
//! rule on one event once when the event is in several files.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).current_dir(root()).output().unwrap()
}

fn summary(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    v["summary"].clone()
}

const APT: &str =
    "samples/evtx/EVTX_full_APT_attack_steps/ID4688-5140-5145-WMIexec execution via SMB (GLOBAL).evtx";

/// Issue #19: `hunt samples/evtx samples/evtx` doubled every count.
#[test]
fn a_directory_given_twice_or_overlapping_is_read_once() {
    let once = summary(&run(&["hunt", "samples/evtx", "-f", "json"]));
    assert_eq!(once["files"], 10);
    assert_eq!(once["detections"], 161);
    let out = run(&[
        "hunt",
        "samples/evtx",
        "samples/evtx",
        "samples/evtx/TA0003-Persistence",
        APT,
        "-f",
        "json",
    ]);
    let twice = summary(&out);
    assert_eq!(twice["files"], 10);
    assert_eq!(twice["events"], once["events"]);
    assert_eq!(twice["detections"], 161);
    assert_eq!(twice["by_level"], once["by_level"]);
    // A note with the count, not an error (no file is listed as skipped).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "tracehunt: 13 files given more than once (or inside a directory given too): read once"
        ),
        "{err}"
    );
    assert_eq!(twice["files_skipped"], serde_json::json!([]));
    // -q keeps it quiet.
    let out = run(&["hunt", "samples/evtx", "samples/evtx", "-q", "-f", "json"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("more than once"));
}

/// The same log under two names (a VSS copy, an export): without -X every
/// detection is there twice; with -X once, and the summary counts the removed.
#[test]
fn x_removes_detections_of_a_copied_log() {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join(APT);
    std::fs::copy(&src, dir.path().join("Security.evtx")).unwrap();
    std::fs::copy(&src, dir.path().join("Security-vss1.evtx")).unwrap();
    let d = dir.path().display().to_string();
    let plain = summary(&run(&["hunt", &d, "-f", "json", "-q"]));
    assert_eq!(plain["files"], 2);
    assert_eq!(plain["detections"], 92);
    assert!(plain.get("duplicate_detections_removed").is_none());
    let out = run(&["hunt", &d, "-X", "-f", "json"]);
    let x = summary(&out);
    assert_eq!(x["detections"], 46);
    assert_eq!(x["duplicate_detections_removed"], 46);
    let single = summary(&run(&["hunt", APT, "-f", "json", "-q"]));
    assert_eq!(x["by_level"], single["by_level"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("-X: 46 duplicate detections of events seen in several files removed"));
    // JSON lines: one line per detection left.
    let out = run(&["hunt", &d, "-X", "-f", "jsonl", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 46);
    // Formats that render nothing per detection (Navigator) see the same
    // entries: the layer of the two copies with -X is the layer of one.
    let nav = |args: &[&str]| run(args).stdout;
    assert_eq!(
        nav(&["navigator", &d, "-X", "-q"]),
        nav(&["navigator", APT, "-q"])
    );
    // With small index runs (entries spread over many sorted runs) the
    // merge still drops every copy.
    let out = bin()
        .args(["hunt", &d, "-X", "-f", "json", "-q", "-t", "2"])
        .env("TRACEHUNT_INDEX_RUN", "7")
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(summary(&out)["detections"], 46);
}

/// EVTX-ATTACK-SAMPLES itself holds two logs twice under other names
/// (an MSSQL log in Defense Evasion and Lateral Movement, UACME_59 at the
/// top and in Privilege Escalation): -X removes those 3 detections, and
/// nothing else (checked against the detections' keys).
#[test]
fn x_on_evtx_attack_samples_removes_the_three_copied_detections() {
    let c = root().join("../shared/corpora");
    assert!(c.join("sigma/rules").is_dir(), "corpora missing");
    let e = c.join("evtx-attack-samples").display().to_string();
    let r = c.join("sigma/rules").display().to_string();
    let plain = summary(&run(&["hunt", &e, "-r", &r, "-f", "json", "-q"]));
    assert_eq!(plain["detections"], 998);
    let x = summary(&run(&["hunt", &e, "-r", &r, "-f", "json", "-q", "-X"]));
    assert_eq!(x["detections"], 995);
    assert_eq!(x["duplicate_detections_removed"], 3);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// Two copies of the whole corpus (a collection exported twice): every
/// count doubles without -X; with -X it is the corpus' own de-duplicated
/// count (998 - 3 = 995; 1,001 removed).
#[test]
fn x_on_two_copies_of_evtx_attack_samples() {
    let c = root().join("../shared/corpora");
    assert!(c.join("sigma/rules").is_dir(), "corpora missing");
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        copy_dir(&c.join("evtx-attack-samples"), &dir.path().join(name));
    }
    let d = dir.path().display().to_string();
    let r = c.join("sigma/rules").display().to_string();
    let plain = summary(&run(&["hunt", &d, "-r", &r, "-f", "json", "-q"]));
    assert_eq!(plain["detections"], 1996);
    assert_eq!(plain["by_level"]["critical"], 22);
    let x = summary(&run(&["hunt", &d, "-r", &r, "-f", "json", "-q", "-X"]));
    assert_eq!(x["detections"], 995);
    assert_eq!(x["duplicate_detections_removed"], 1001);
    assert_eq!(x["by_level"]["critical"], 11);
}

/// One JSON line in the evtx-crate shape without `EventRecordID`: Sysmon 1
/// running mimikatz with `cmd` (the built-in Mimikatz rule fires on it).
fn mimikatz_line(cmd: &str) -> String {
    serde_json::json!({"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
        "EventID": 1,
        "TimeCreated": {"#attributes": {"SystemTime": "2021-10-22T05:40:12Z"}},
        "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "ws1"},
        "EventData": {"Image": "C:\\tools\\mimikatz.exe", "CommandLine": cmd, "User": "CORP\\bob"}}})
    .to_string()
}

/// Breaker finding: a JSON record without `EventRecordID` gets its line
/// number as record id, so line 1 of two files with different events had
/// one -X key and the second detection (dcsync by bob) was dropped. The
/// event's fields are in the key: different events stay two detections, a
/// true copy is still removed.
#[test]
fn x_kept_different_events_that_share_a_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    let c = dir.path().join("c.jsonl");
    std::fs::write(
        &a,
        mimikatz_line("mimikatz sekurlsa::logonpasswords alice") + "\n",
    )
    .unwrap();
    std::fs::write(&b, mimikatz_line("mimikatz lsadump::dcsync bob") + "\n").unwrap();
    std::fs::write(
        &c,
        mimikatz_line("mimikatz sekurlsa::logonpasswords alice") + "\n",
    )
    .unwrap();
    let p = |x: &Path| x.to_str().unwrap().to_owned();
    let with_x = summary(&run(&["hunt", &p(&a), &p(&b), "-X", "-f", "json"]));
    let without = summary(&run(&["hunt", &p(&a), &p(&b), "-f", "json"]));
    assert_eq!(without["detections"], with_x["detections"]);
    assert!(with_x["detections"].as_u64().unwrap() >= 2, "{with_x}");
    // The copy (same content, same line) is one detection with -X.
    let copy = summary(&run(&["hunt", &p(&a), &p(&c), "-X", "-f", "json"]));
    let single = summary(&run(&["hunt", &p(&a), "-f", "json"]));
    assert_eq!(copy["detections"], single["detections"]);
    assert_eq!(
        copy["duplicate_detections_removed"], single["detections"],
        "{copy}"
    );
}
