//! `tracehunt search` on real data: the bundled samples (`samples/evtx`)
//! and, when `../shared/corpora` is there, EVTX-ATTACK-SAMPLES. Every count
//! asserted here is checked a second way (another query that must select
//! the same events, or `metrics`).

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

/// `search ARGS -f jsonl -q`: the matching events.
fn hits(args: &[&str]) -> Vec<Value> {
    let mut a = vec!["search"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-f", "jsonl", "-q"]);
    ok(&run(&a))
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The table's last line: `N events matched in M files (K read)`.
fn count_line(args: &[&str]) -> String {
    let mut a = vec!["search"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-f", "table", "-q"]);
    ok(&run(&a)).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn keyword_mimikatz_on_evtx_attack_samples() {
    let Some(c) = attack_samples() else { return };
    // Sysmon 10 (lsass access by mimikatz), 9 Security 5145 of the remote
    // copy of mimikatz.exe, Sysmon 10 process suspend, 4703 SeDebugPrivilege.
    assert_eq!(
        count_line(&[&c, "-k", "mimikatz"]),
        "12 events matched in 4 files (271 read)"
    );
    let h = hits(&[&c, "-k", "mimikatz"]);
    assert_eq!(h.len(), 12);
    assert_eq!(h.iter().filter(|h| h["event_id"] == 5145).count(), 9);
    for e in &h {
        assert!(
            e["matches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["value"].as_str().unwrap().contains("mimikatz")),
            "{e}"
        );
    }
    // Time order (events without a time would come last).
    let times: Vec<&str> = h.iter().map(|e| e["timestamp"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Case-sensitive by default: "Mimikatz" occurs in no value of this
    // corpus; -i finds the same 12.
    assert_eq!(hits(&[&c, "-k", "Mimikatz"]).len(), 0);
    assert_eq!(hits(&[&c, "-k", "Mimikatz", "-i"]).len(), 12);
}

#[test]
fn regex_count_equals_the_same_keywords() {
    let Some(c) = attack_samples() else { return };
    assert_eq!(
        count_line(&[&c, "-e", "FromBase64String|IEX", "-i"]),
        "26 events matched in 11 files (271 read)"
    );
    // Second method: the two alternatives as keywords select the same events.
    let by_re = hits(&[&c, "-e", "FromBase64String|IEX", "-i"]);
    let by_kw = hits(&[&c, "-k", "FromBase64String", "-k", "IEX", "-i"]);
    assert_eq!(by_re, by_kw);
    // --and: both in one event.
    let both = hits(&[&c, "-k", "FromBase64String", "-k", "IEX", "-i", "--and"]);
    assert_eq!(both.len(), 2);
}

#[test]
fn field_eventid_4104_equals_the_metrics_count() {
    let Some(c) = attack_samples() else { return };
    let h = hits(&[&c, "--field", "EventID:4104"]);
    assert_eq!(h.len(), 4);
    assert!(h
        .iter()
        .all(|e| e["channel"] == "Microsoft-Windows-PowerShell/Operational"));
    // Second method: metrics' EventID inventory.
    let m: Value = serde_json::from_str(&ok(&run(&[
        "metrics", &c, "--by", "eid", "-f", "json", "-q",
    ])))
    .unwrap();
    let n: u64 = m["event_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event_id"] == 4104)
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(n, 4);
    // Field names are case-insensitive; a value wildcard narrows to a file.
    assert_eq!(hits(&[&c, "--field", "eventid:4104"]).len(), 4);
    assert_eq!(
        hits(&[
            &c,
            "--field",
            "EventID:4104",
            "--field",
            "ScriptBlockText:*MiniDump*"
        ])
        .len(),
        1
    );
    // Time window: two of the four are on 2019-09-09.
    assert_eq!(
        count_line(&[
            &c,
            "--field",
            "EventID:4104",
            "--from",
            "2019-09-09",
            "--to",
            "2019-09-09"
        ]),
        "2 events matched in 1 file (271 read)"
    );
}

#[test]
fn field_wildcard_on_image_and_output_independent_of_threads() {
    let Some(c) = attack_samples() else { return };
    let one = ok(&run(&[
        "search",
        &c,
        "--field",
        "Image:*\\powershell.exe",
        "-f",
        "jsonl",
        "-q",
        "-t",
        "1",
    ]));
    let two = ok(&run(&[
        "search",
        &c,
        "--field",
        "Image:*\\powershell.exe",
        "-f",
        "jsonl",
        "-q",
        "-t",
        "2",
    ]));
    assert_eq!(one, two);
    assert_eq!(one.lines().count(), 38);
    for l in one.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let image = v["event"]["Image"].as_str().unwrap().to_ascii_lowercase();
        assert!(image.ends_with("\\powershell.exe"), "{image}");
    }
}

#[test]
fn bundled_samples_logons_csv_and_errors() {
    // samples/evtx: the 5 network logons of admmig (logon-summary agrees).
    assert_eq!(
        count_line(&["samples/evtx", "--field", "EventID:4624"]),
        "5 events matched in 1 file (10 read)"
    );
    // Hayabusa's spellings: -F / --filter, --and-logic.
    assert_eq!(
        count_line(&[
            "samples/evtx",
            "-F",
            "EventID:4624",
            "--filter",
            "LogonType:3"
        ]),
        "5 events matched in 1 file (10 read)"
    );
    assert_eq!(
        count_line(&[
            "samples/evtx",
            "-k",
            "admmig",
            "-k",
            "10.23.123.11",
            "--and-logic"
        ]),
        "42 events matched in 1 file (10 read)"
    );
    let csv_text = ok(&run(&[
        "search",
        "samples/evtx",
        "--field",
        "EventID:4624",
        "-f",
        "csv",
        "-q",
    ]));
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 5);
    let event: Value = serde_json::from_str(&rows[0][8]).unwrap();
    assert_eq!(event["TargetUserName"], "admmig");
    // Nothing to search for, a bad regex, a bad filter: usage errors.
    for bad in [
        &["search", "samples/evtx"][..],
        &["search", "samples/evtx", "-e", "("],
        &["search", "samples/evtx", "--field", "EventID"],
    ] {
        assert_eq!(run(bad).status.code(), Some(1), "{bad:?}");
    }
    // A mistyped path next to a good one is named (even with -q), the good one searched.
    let out = run(&[
        "search",
        "samples/evtx",
        "samples/nope",
        "-k",
        "admmig",
        "-q",
        "-f",
        "jsonl",
    ]);
    // Exit 1 afterwards, as `hunt` (was 0).
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("samples/nope"), "{err}");
    assert!(err.contains("1 path not found"), "{err}");
    // Every admmig event of the good path (the same search without the typo).
    let alone = hits(&["samples/evtx", "-k", "admmig"]).len();
    assert_eq!(alone, 198);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), alone);
    // Only a missing path: nothing read, exit 2.
    assert_eq!(
        run(&["search", "samples/nope", "-k", "x", "-q"])
            .status
            .code(),
        Some(2)
    );
}

/// Splits a README command line like a POSIX shell for the cases used
/// there: words, single-quoted words; a `#` word starts a comment.
fn shell_words(line: &str) -> (Vec<String>, String) {
    let (cmd, comment) = match line.find("  #") {
        Some(i) => (&line[..i], line[i + 3..].trim().to_owned()),
        None => (line, String::new()),
    };
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for ch in cmd.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    (words, comment)
}

#[test]
fn readme_search_section_examples_run_and_their_counts_hold() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme
        .split("## Search, logon summary and log inventory")
        .nth(1)
        .expect("the README section");
    let block = section.split("```").nth(1).expect("its example block");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("samples"), dir.path().join("samples")).unwrap();
    let mut ran = 0;
    for line in block.lines().filter(|l| l.starts_with("tracehunt ")) {
        let (words, comment) = shell_words(line);
        let out = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
            .args(&words[1..])
            .arg("-q")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
        // `search` comments end with the number of events it finds.
        if words[1] == "search" {
            let n: usize = comment
                .rsplit(':')
                .next()
                .and_then(|t| t.split_whitespace().next())
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{line}: no count in the comment"));
            assert_eq!(
                out.stdout.iter().filter(|b| **b == b'\n').count(),
                n,
                "{line}"
            );
        }
        ran += 1;
    }
    assert_eq!(ran, 7);
    assert!(dir.path().join("inventory.csv").is_file());
}

#[test]
fn csv_into_a_closed_pipe_exits_0() {
    // Regression: `search … -f csv | head` exited 1 ("error: … Broken pipe"):
    // the CSV writer's error hid the I/O error from the broken-pipe check.
    use std::io::Read;
    for format in ["csv", "jsonl", "table"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
            .args(["search", "samples/evtx", "-k", "e", "-q", "-f", format])
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Testers' finding: `search victim.evtx -k a -o victim.evtx` destroyed the
/// log, `search missing -k a -o keep.txt -q` emptied keep.txt, an unwritable
/// `-o` failed only after reading everything, and `--clobber` was rejected.
/// Now `-o` behaves as in `hunt`, and never names one of the inputs.
#[test]
fn output_never_overwrites_an_input_nor_an_existing_file_without_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("samples/evtx/EVTX_full_APT_attack_steps");
    let victim = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "evtx"))
        .expect("a sample .evtx");
    let copy = dir.path().join("victim.evtx");
    std::fs::copy(&victim, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let c = copy.to_str().unwrap();
    let d = dir.path().to_str().unwrap();
    // The input itself, named or inside a named directory: refused even with --clobber.
    for (cmd, path) in [
        ("search", c),
        ("search", d),
        ("logon-summary", c),
        ("metrics", d),
    ] {
        let mut args = vec![cmd, path, "-o", c, "--clobber"];
        if cmd == "search" {
            args.extend(["-k", "a"]);
        }
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is one of the input files"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&copy).unwrap(), before, "{args:?}");
    }
    // An existing file: refused without --clobber, left as it was.
    let keep = dir.path().join("keep.txt");
    std::fs::write(&keep, "keep\n").unwrap();
    let k = keep.to_str().unwrap();
    let out = run(&["search", "samples/evtx", "-k", "admmig", "-o", k]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --clobber"));
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "keep\n");
    // Nothing could be read: exit 2 and keep.txt untouched, even with --clobber;
    // a new -o file is not left behind.
    let out = run(&["search", "missing", "-k", "a", "-o", k, "-q", "--clobber"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "keep\n");
    let fresh = dir.path().join("fresh.jsonl");
    let out = run(&[
        "search",
        "missing",
        "-k",
        "a",
        "-o",
        fresh.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!fresh.exists());
    // With --clobber the file is replaced by the 42 admmig events of the samples.
    let out = run(&[
        "search",
        "samples/evtx",
        "-k",
        "admmig",
        "-k",
        "10.23.123.11",
        "--and",
        "-f",
        "jsonl",
        "-o",
        k,
        "--clobber",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&keep).unwrap();
    assert_eq!(text.lines().count(), 42);
    assert!(!text.starts_with("keep"));
    // An unwritable -o fails before anything is read (no "matched" count line).
    let out = run(&[
        "search",
        "samples/evtx",
        "-k",
        "a",
        "-o",
        "/nonexistent/x.jsonl",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("-o /nonexistent/x.jsonl: /nonexistent does not exist"),
        "{err}"
    );
    assert!(!err.contains("matched"), "{err}");
}

/// Fresh user and testers: the tables of `search`, `logon-summary` and
/// `metrics` ignored the terminal width (171–231 columns at COLUMNS=100)
/// and let bidi overrides (U+202E) and escapes reach the terminal; now each
/// row fits (the widest column cut with `…`) and every cell is
/// terminal-safe, as `hunt`'s table.
#[test]
fn tables_fit_columns_and_are_terminal_safe() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bidi.json");
    let line = serde_json::json!({
        "EventID": 4624, "Channel": "Security", "Hostname": "WS\u{202E}exe.txt",
        "@timestamp": "2024-01-02T10:00:00Z",
        "TargetUserName": "evil\u{1b}[2J\u{202E}cod.exe", "TargetDomainName": "CORP",
        "LogonType": 3, "IpAddress": "192.0.2.7", "WorkstationName": "W\u{200B}S"
    });
    std::fs::write(&p, format!("{line}\n")).unwrap();
    let bidi = p.display().to_string();
    let table = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
            .args(args)
            .args(["-f", "table", "-q"])
            .env("COLUMNS", "100")
            .current_dir(root())
            .output()
            .unwrap();
        ok(&out)
    };
    for args in [
        &["search", "samples/evtx", "-k", "admmig"][..],
        &["logon-summary", "samples/evtx"],
        &["metrics", "samples/evtx"],
        &["search", &bidi, "-k", "cod"],
        &["logon-summary", &bidi],
    ] {
        let text = table(args);
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= 100, "{args:?}: {widest} columns\n{text}");
        assert!(
            !text.chars().any(|c| (c.is_control() && c != '\n')
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}')),
            "{args:?}: {text:?}"
        );
    }
    // Cut, not dropped: the admmig table still has its 198 rows and they end in `…`.
    let text = table(&["search", "samples/evtx", "-k", "admmig"]);
    assert_eq!(text.lines().count(), 2 + 198 + 1);
    assert!(text.lines().nth(2).unwrap().contains('…'));
    let text = table(&["logon-summary", &bidi]);
    assert!(text.contains("WS exe.txt"), "{text}");
    assert!(text.contains("evil [2J c…"), "{text}");
}
