//! Regression tests of the second fresh-user trial's findings (stderr
//! summary, `-q`, TH011, time window, severe rules, IOC lists, messages),
//! on the bundled samples (`samples/evtx`) and rules written here.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run tracehunt")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A rule folder: one good rule (EventID 5140, fires 19 times on the
/// samples), two that fail to load, one with an `expand` placeholder
/// without value in a `not` filter (TH011).
fn rule_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |n: &str, t: &str| std::fs::write(dir.path().join(n), t).unwrap();
    w("good.yml", "title: Share access\nid: 5d0f3b76-0e4c-4f0c-9a86-1d0f4f59c1a1\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID: 5140\n  condition: sel\nlevel: low\n");
    w("bad.yml", "title: Bad\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID|bogus: 4624\n  condition: sel\n");
    w("bad2.yml", "title: Bad2\ndetection: [\n");
    w("expand.yml", "title: Expand\nid: 0c5a4b1e-3f7d-4e55-9a2b-6a0f3e8d9c11\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID: 4624\n  filter:\n    IpAddress|expand: '%known_dcs%'\n  condition: sel and not filter\nlevel: medium\n");
    dir
}

/// Piped JSONL ended with "… N detections, T s" and no word of the rules
/// that failed to load; the rule counts now follow, in `rules check`'s words.
#[test]
fn piped_hunt_summary_names_failed_and_placeholder_rules() {
    let d = rule_dir();
    let out = run(&["hunt", "samples/evtx", "-r", d.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let e = stderr(&out);
    assert!(
        e.contains("tracehunt: rules from 4 files: 2 loaded, 2 active, 0 skipped, 2 failed; 1 rule with an `expand` placeholder without value (TH011: that item never matches; --placeholders FILE)"),
        "{e}"
    );
    // -v lists the TH011 rule; without -v only the count.
    assert!(!e.contains("warning[TH011]"), "{e}");
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-v",
        "-r",
        d.path().to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("warning[TH011]"), "{}", stderr(&out));
}

/// `-q` promised "only errors" but said nothing of 2 rules that failed to
/// load; now one line, and nothing else.
#[test]
fn quiet_hunt_still_counts_failed_rules() {
    let d = rule_dir();
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-q",
        "-r",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stderr(&out),
        "tracehunt: 2 rules failed to load (run without -q, or `tracehunt rules check`, for details)\n"
    );
    // Nothing at all when every rule loads.
    let out = run(&["hunt", "samples/evtx", "-q"]);
    assert_eq!(stderr(&out), "");
}

/// With --from/--to the table's "Event time range" and JSON
/// `first_event`/`last_event` described all input, not the window: they
/// still do (labelled), and `time_window` gives the window's events' range.
#[test]
fn time_window_summary_gives_the_range_of_events_in_the_window() {
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "json",
        "--from",
        "2021-06-01",
        "--to",
        "2021-12-31",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["summary"];
    assert_eq!(
        (s["events"].as_u64(), s["events_scanned"].as_u64()),
        (Some(248), Some(126))
    );
    assert_eq!(s["first_event"], "2021-01-30T09:13:13.309867Z");
    let tw = &s["time_window"];
    assert_eq!(tw["from"], "2021-06-01T00:00:00Z");
    assert_eq!(tw["first_event"], "2021-06-09T19:29:58.239843800Z");
    assert_eq!(tw["last_event"], "2021-12-07T14:54:25.699020100Z");
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "table",
        "--from",
        "2021-06-01",
        "--to",
        "2021-12-31",
    ]);
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(t.contains("Event time range:  2021-01-30 09:13:13 → 2021-12-07 14:54:25 (all events read)\nIn time window:    2021-06-09 19:29:58 → 2021-12-07 14:54:25 (window 2021-06-01 00:00:00 → 2021-12-31 23:59:59)\n"), "{t}");
    // No window: no `time_window`, no label.
    let out = run(&["hunt", "samples/evtx", "-f", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["summary"].get("time_window").is_none());
}

/// `--ioc /etc/hostname` was read as a CSV feed, "0 IOCs loaded", exit 0;
/// now a non-feed is a usage error (exit 1), a plain list of indicators
/// loads, and in a directory the `-v` line names the skipped file once.
#[test]
fn ioc_plain_list_loads_and_a_text_file_is_not_a_feed() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("hostname");
    std::fs::write(&host, "vm\n").unwrap();
    let out = run(&["hunt", "samples/evtx", "--ioc", host.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "hostname: not an IOC feed: neither `type,value[,actor]` CSV nor a list of indicators"
        ),
        "{}",
        stderr(&out)
    );
    let feeds = dir.path().join("feeds");
    std::fs::create_dir(&feeds).unwrap();
    std::fs::write(feeds.join("ips.txt"), "203.0.113.7\n198.51.100.9\n").unwrap();
    std::fs::write(feeds.join("notes.txt"), "call Bob\nre: the incident\n").unwrap();
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-v",
        "-f",
        "json",
        "--ioc",
        feeds.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let e = stderr(&out);
    let notes = feeds.join("notes.txt").display().to_string();
    assert!(
        e.contains(&format!(
            "tracehunt: warning: skipped IOC feed {notes}: not an IOC feed: "
        )),
        "{e}"
    );
    assert_eq!(e.matches(notes.as_str()).count(), 2, "{e}"); // the -v line and the summary's "first:"
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ioc"]["iocs"], 2, "{}", v["ioc"]);
}

/// Cosmetic findings of the trial, each checked on the message it fixed.
#[test]
fn attack_json_error_is_printed_once() {
    let out = run(&["hunt", "samples/evtx", "--attack", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert_eq!(
        e.matches("expected value at line 1 column 1").count(),
        1,
        "{e}"
    );
}

#[test]
fn attribute_evidence_of_given_techniques_says_given() {
    let out = run(&["attribute", "--techniques", "T1059.001,T1003"]);
    let t = String::from_utf8(out.stdout).unwrap();
    // Issue #18: a parent technique counts the groups using it or any sub-technique (97,
    // not the 20 listing the bare parent), and the line says how it matched.
    assert!(
        t.lines().any(
            |l| l.contains("T1003 OS Credential Dumping (used by 97 groups; ")
                && l.ends_with("← (given)")
        ),
        "{t}"
    );
    assert!(!t.contains("[0 events]"), "{t}");
}

#[test]
fn empty_overlay_asks_for_a_group() {
    let out = run(&["navigator", "samples/evtx", "--overlay", ""]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--overlay needs an ATT&CK group: an id like G0009 or a name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn attribute_rejects_a_reversed_time_window_like_hunt() {
    for (from, to) in [("2099-01-01", "1990-01-01"), ("2024-05-20", "2024-05-01")] {
        let out = run(&[
            "attribute",
            "--techniques",
            "T1059.001",
            "--from",
            from,
            "--to",
            to,
        ]);
        assert_eq!(out.status.code(), Some(1), "{from} {to}");
        assert!(
            stderr(&out).contains(&format!(
                "--from ({from}) is after --to ({to}): the time window is empty"
            )),
            "{}",
            stderr(&out)
        );
    }
    let out = run(&[
        "attribute",
        "--techniques",
        "T1059.001",
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-20",
    ]);
    assert_eq!(out.status.code(), Some(0));
}

/// The IOC summary called one rejected entry "1 warning (repaired JSON,
/// rejected patterns or rows)" whatever it was; now "1 feed warning".
#[test]
fn ioc_feed_warnings_are_labelled_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("list.txt");
    std::fs::write(&f, "203.0.113.7\nnot-an-ioc\n198.51.100.9\n").unwrap();
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "json",
        "--ioc",
        f.to_str().unwrap(),
    ]);
    let e = stderr(&out);
    assert!(e.contains(": 2 IOCs loaded; 1 entry unusable: 1 invalid line (not an IP, domain, URL or hash); 1 feed warning (-v for details)"), "{e}");
}

#[test]
fn selection_leaving_no_reporting_rule_is_no_usable_rule() {
    // --exact-level high with --min-level critical: every rule is left out
    // (22 below --min-level, 14 not high); not a clean run with 0 detections.
    let o = run(&[
        "hunt",
        "samples/evtx",
        "--exact-level",
        "high",
        "--min-level",
        "critical",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let e = stderr(&o);
    assert!(
        e.contains("no usable rule: 36 loaded, 0 active, 36 skipped (22 below --min-level, 14 level not exact)"),
        "{e}"
    );
    // Same as a selection that leaves nothing by itself.
    let o = run(&[
        "hunt",
        "samples/evtx",
        "--exact-level",
        "informational",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no usable rule:"), "{}", stderr(&o));
}

#[test]
fn output_extension_picks_the_format_without_f() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("timeline.csv");
    let o = run(&["hunt", "samples/evtx", "-o", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("datetime,timestamp_desc,message,rule_id,"),
        "{}",
        &text[..80.min(text.len())]
    );
    // 161 detections, one row each, under the header.
    assert_eq!(text.lines().count(), 162);
    assert!(
        stderr(&o).contains("writing csv to ") && stderr(&o).contains("(format from its extension"),
        "{}",
        stderr(&o)
    );
    // .json is one JSON document; -q says nothing; -f wins over the extension.
    let json = dir.path().join("out.json");
    let o = run(&["hunt", "samples/evtx", "-q", "-o", json.to_str().unwrap()]);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["summary"]["detections"], 161);
    let other = dir.path().join("forced.csv");
    let o = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "jsonl",
        "-o",
        other.to_str().unwrap(),
    ]);
    assert!(!stderr(&o).contains("format from its extension"));
    let first = std::fs::read_to_string(&other).unwrap();
    assert!(first.starts_with("{\"timestamp\""), "{}", &first[..40]);
    // Fresh-user finding: an extension that names no format wrote JSON lines
    // without the note the README promises.
    let txt = dir.path().join("out.txt");
    let o = run(&["hunt", "samples/evtx", "-o", txt.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("writing jsonl to ")
            && stderr(&o).contains("(no format extension; -f to choose)"),
        "{}",
        stderr(&o)
    );
    let first = std::fs::read_to_string(&txt).unwrap();
    assert!(first.starts_with("{\"timestamp\""), "{}", &first[..40]);
}

#[test]
fn thousands_of_skipped_files_are_capped_in_table_and_stderr() {
    // 25 non-log files (a KAPE-like folder of prefetch files) and one EVTX.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..25 {
        std::fs::write(dir.path().join(format!("F{i:02}.pf")), b"MAM\x04junk").unwrap();
    }
    std::fs::copy(
        root().join("samples/evtx/TA0006-Credential Access/T1003-Credential dumping/ID10-Mimikatz LSASS process dump.evtx"),
        dir.path().join("mimikatz.evtx"),
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let more = "… 5 more files skipped (1 distinct reason; -v lists them all)";
    let o = run(&["hunt", d, "-f", "jsonl"]);
    let e = stderr(&o);
    assert_eq!(e.matches("tracehunt: skipped ").count(), 20, "{e}");
    assert!(e.contains(&format!("tracehunt: {more}")), "{e}");
    let o = run(&["hunt", d, "-f", "table", "--color", "never"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("Files skipped:     25"), "{t}");
    assert_eq!(
        t.matches(".pf: not a supported log format").count(),
        20,
        "{t}"
    );
    assert!(t.contains(&format!("  {more}")), "{t}");
    // -v lists them all; JSON keeps the full list.
    let o = run(&["hunt", d, "-f", "jsonl", "-v"]);
    assert_eq!(stderr(&o).matches("tracehunt: skipped ").count(), 25);
    assert!(!stderr(&o).contains("more files skipped"));
    let o = run(&["hunt", d, "-f", "json", "-q"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["files_skipped"].as_array().unwrap().len(), 25);
}

/// Issue #18 item 7: `attribute` answers at state level beside the groups — the table's
/// "Suspected state sponsor" line and JSON `attribution_verdict.states` (Deep Panda's ten
/// techniques: China first; the shares and the unknown mass add up to 1).
#[test]
fn attribute_shows_the_suspected_state_sponsor() {
    let ten =
        "T1018,T1021.002,T1027.005,T1047,T1057,T1059.001,T1218.010,T1505.003,T1546.008,T1564.003";
    let out = run(&["attribute", "--techniques", ten]);
    let t = String::from_utf8(out.stdout).unwrap();
    let line = t
        .lines()
        .find(|l| l.starts_with("Suspected state sponsor: "))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(line.contains("; no known state "), "{line}");
    let out = run(&["attribute", "--techniques", ten, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = &v["attribution_verdict"]["states"];
    let states = st["states"].as_array().unwrap();
    assert!(!states.is_empty());
    let sum: f64 = states
        .iter()
        .map(|s| s["probability"].as_f64().unwrap())
        .sum::<f64>()
        + st["unknown"].as_f64().unwrap();
    assert!((sum - 1.0).abs() < 1e-6, "{st}");
    let top = &states[0];
    assert!(line.contains(top["state"].as_str().unwrap()), "{line}");
    eprintln!("{line}");
}

/// Issue #18 item 8: `attribute --top N` shows N candidates for any N; the scorer's default
/// cut of 10 made `--top 20` print 10 and `--top 0` print none. `--top 0` shows every group
/// the evidence matched (Deep Panda's ten techniques match far more than 20 groups).
#[test]
fn attribute_top_20_shows_20_and_top_0_shows_every_matched_group() {
    let ten =
        "T1018,T1021.002,T1027.005,T1047,T1057,T1059.001,T1218.010,T1505.003,T1546.008,T1564.003";
    let count = |top: &str| {
        let out = run(&["attribute", "--techniques", ten, "--top", top, "-f", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = v["attribution"].as_array().unwrap();
        // Every shown candidate matched some of the evidence, ranks 1..=n in order.
        for (i, x) in c.iter().enumerate() {
            assert_eq!(x["rank"].as_u64(), Some(i as u64 + 1), "{x}");
            assert!(!x["evidence"].as_array().unwrap().is_empty(), "{x}");
        }
        c.len()
    };
    assert_eq!(count("3"), 3);
    assert_eq!(count("20"), 20);
    let all = count("0");
    assert!(all > 20, "--top 0 showed {all}");
    assert_eq!(count("100000"), all);
    eprintln!("--top 0: {all} candidates");
}

/// Breaker finding: with no path, the usage error named only `<PATHS>`, never
/// Hayabusa's `-d DIR`, which `hunt`, `search`, `logon-summary` and `metrics`
/// all take (the last three lacked it).
#[test]
fn missing_input_usage_error_names_dash_d_and_every_reader_takes_it() {
    for cmd in ["hunt", "search", "logon-summary", "metrics"] {
        let out = run(&[cmd]);
        assert_eq!(out.status.code(), Some(1), "{cmd}"); // EXIT_USAGE
        assert!(
            stderr(&out).contains("<PATHS|--directory <DIR>>"),
            "{cmd}: {}",
            stderr(&out)
        );
    }
    // -d reads the same events as the positional path.
    let metrics = |args: &[&str]| -> Value {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let by_d = metrics(&["metrics", "-d", "samples/evtx", "-q"]);
    let by_path = metrics(&["metrics", "samples/evtx", "-q"]);
    assert_eq!(by_d["events"], 248);
    assert_eq!(by_d, by_path);
    let out = run(&["search", "-d", "samples/evtx", "-k", "mimikatz", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Hayabusa's --no-color is accepted by the commands without colour too.
    for cmd in ["search", "logon-summary", "metrics"] {
        let mut args = vec![cmd, "samples/evtx", "--no-color", "-q"];
        if cmd == "search" {
            args.extend(["-k", "mimikatz"]);
        }
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", stderr(&out));
    }
}

/// Breaker finding: `attribute` with no evidence said `--techniques` was
/// required, although `--software` alone works.
#[test]
fn attribute_without_evidence_names_techniques_or_software() {
    let out = run(&["attribute"]);
    assert_eq!(out.status.code(), Some(1)); // EXIT_USAGE
    assert!(
        stderr(&out).contains("<--techniques <TECHNIQUES>|--software <SOFTWARE>>"),
        "{}",
        stderr(&out)
    );
    let out = run(&["attribute", "--software", "S0002", "-f", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Breaker finding: `-o` into a directory that does not exist failed only
/// after the whole input was scanned; it (and `-o` naming a directory) is now
/// refused before reading, by every command with `-o`.
#[test]
fn output_into_a_missing_directory_or_onto_a_directory_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/out.jsonl");
    let missing = missing.to_str().unwrap();
    let here = dir.path().to_str().unwrap();
    for args in [
        vec!["hunt", "samples/evtx", "-o", missing],
        vec!["search", "samples/evtx", "-k", "x", "-o", missing],
        vec!["metrics", "samples/evtx", "-o", missing],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let e = stderr(&out);
        assert!(
            e.contains(&format!("-o {missing}: ")) && e.contains(" does not exist"),
            "{args:?}: {e}"
        );
        // Refused before reading: no summary of events or detections.
        assert!(!e.contains("events"), "{args:?}: {e}");
    }
    let out = run(&["hunt", "samples/evtx", "-o", here]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is a directory: give a file path"),
        "{}",
        stderr(&out)
    );
    // Breaker findings: a missing directory given with its slash, a link into a
    // missing directory, and a file used as a directory.
    let slash = format!("{here}/newdir/");
    let link = dir.path().join("dangling");
    std::os::unix::fs::symlink("/nonexistent/zz", &link).unwrap();
    let afile = dir.path().join("afile");
    std::fs::write(&afile, b"x").unwrap();
    let under_file = afile.join("x.json");
    for (o, says) in [
        (
            slash.as_str(),
            "names a directory: give a file path".to_owned(),
        ),
        (
            link.to_str().unwrap(),
            "is a link to /nonexistent/zz, which cannot be created".to_owned(),
        ),
        (
            under_file.to_str().unwrap(),
            format!(
                "{}: {} is not a directory",
                under_file.display(),
                afile.display()
            ),
        ),
    ] {
        let out = run(&["hunt", "samples/evtx", "-o", o]);
        assert_eq!(out.status.code(), Some(1), "{o}");
        let e = stderr(&out);
        assert!(e.contains(&says) && !e.contains("events"), "{o}: {e}");
    }
    // A link to a file yet to be made in an existing directory is written through.
    let to_new = dir.path().join("to-new");
    std::os::unix::fs::symlink("made-through-link.jsonl", &to_new).unwrap();
    let out = run(&["hunt", "samples/evtx", "-q", "-o", to_new.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("made-through-link.jsonl").is_file());
}
