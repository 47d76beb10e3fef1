//! Issue #19, "what an analyst sees first": the terminal table (severity
//! first, collapsed rows, fitted to the width, coloured only on request or on
//! a terminal), its summary, the time zone, and the flag traps — on the
//! bundled samples (`samples/evtx`, built-in rules) and on EVTX-ATTACK-SAMPLES
//! with the SigmaHQ rules (`../shared/corpora`, as `cli.rs` reads them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpora() -> Option<PathBuf> {
    let p = root().join("../shared/corpora");
    if p.join("sigma/rules").is_dir() {
        Some(p)
    } else {
        eprintln!(
            "NOTE: {} is missing: the corpus tests check nothing",
            p.display()
        );
        None
    }
}

/// Runs tracehunt in the repository root with `COLUMNS` set (or unset).
fn run_cols(args: &[&str], cols: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tracehunt"));
    c.args(args).current_dir(root()).env_remove("NO_COLOR");
    match cols {
        Some(w) => c.env("COLUMNS", w),
        None => c.env_remove("COLUMNS"),
    };
    c.output().expect("run tracehunt")
}

fn run(args: &[&str]) -> Output {
    run_cols(args, None)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The detection rows of a table: from the header to the first empty line.
fn rows(t: &str) -> Vec<&str> {
    t.lines()
        .skip_while(|l| !l.starts_with("Time ("))
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with('…'))
        .collect()
}

/// The level word of a row (its second column).
fn level(row: &str) -> &str {
    row.split_whitespace().nth(2).unwrap_or("")
}

/// EVTX-ATTACK-SAMPLES with SigmaHQ's three rule folders, as a table.
fn attack_samples_table(c: &Path, cols: &str, extra: &[&str]) -> Output {
    let samples = c.join("evtx-attack-samples").display().to_string();
    let rules: Vec<String> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|d| c.join("sigma").join(d).display().to_string())
        .collect();
    let mut args = vec!["hunt", &samples, "-f", "table"];
    for r in &rules {
        args.extend(["-r", r]);
    }
    args.extend(extra);
    run_cols(&args, Some(cols))
}

/// The issue's first finding: the table showed the oldest 200 rows, none of
/// the 12 critical detections of EVTX-ATTACK-SAMPLES. Now the rows start
/// with the critical ones (12 detections in 10 rows: two pairs collapsed),
/// then high; every row fits 80 and 120 columns.
#[test]
fn critical_then_high_rows_come_first_and_fit_the_width() {
    let Some(c) = corpora() else { return };
    for cols in ["80", "120"] {
        let out = attack_samples_table(&c, cols, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", err(&out));
        let t = text(&out);
        assert!(
            t.contains("Detections:        1281 (critical 12, high 457, medium 615, low 192, informational 5)"),
            "{t}"
        );
        let rows = rows(&t);
        assert_eq!(rows.len(), 200, "the --max-rows cap");
        let levels: Vec<&str> = rows.iter().map(|r| level(r)).collect();
        let crit = levels.iter().take_while(|l| **l == "crit").count();
        assert_eq!(crit, 10, "{t}");
        assert!(levels[crit..].iter().all(|l| *l == "high"), "{levels:?}");
        // The 10 critical rows stand for the 12 critical detections.
        let counted: u64 = rows[..crit]
            .iter()
            .map(|r| {
                r.split_whitespace()
                    .find_map(|w| w.strip_prefix('×'))
                    .map_or(1, |n| n.parse::<u64>().unwrap())
            })
            .sum();
        assert_eq!(counted, 12);
        let width: usize = cols.parse().unwrap();
        let header = t.lines().find(|l| l.starts_with("Time (UTC)")).unwrap();
        for l in std::iter::once(header).chain(rows.iter().copied()) {
            assert!(
                l.chars().count() <= width,
                "{} > {width}: {l}",
                l.chars().count()
            );
        }
        // Rows without details end with the title, never a dangling `¦`.
        assert!(rows.iter().all(|r| !r.trim_end().ends_with('¦')));
        // Summary: per level unique rules and detections, busiest dates, top hosts.
        assert!(
            t.contains(
                "  critical      7 rules, 12 detections · most on 2019-06-21 (3), 2019-07-27 (2)"
            ),
            "{t}"
        );
        if cols == "120" {
            assert!(
                t.contains("  critical      7 rules, 12 detections · most on 2019-06-21 (3), 2019-07-27 (2), 2019-04-29 (1) · hosts MSEDGEWIN10 (7)"),
                "{t}"
            );
        }
        assert!(
            t.contains(
                "First detection:   2017-06-09 19:21:26\nLast detection:    2022-05-01 04:42:11\n"
            ),
            "{t}"
        );
        // 200 rows stand for 296 detections (12 critical, 284 high).
        assert!(t.contains("… 985 more detections (--max-rows N"), "{t}");
    }
    // Identical rows collapse: 22 "Suspicious SYSTEM User Process Creation"
    // on PC01 with the same details are one row, with the last time.
    let t = text(&attack_samples_table(&c, "120", &[]));
    assert!(
        t.contains("2019-03-19 20:41:14 high PC01.example.corp            1 ×22 Suspicious SYSTEM User Process Creation (last 2019-03-19 23"),
        "{t}"
    );
}

/// "91 identical Windows Event Log Cleared rows one by one": on the samples
/// the 90 on FS03 are one row (the 91st, on jump01, is its own).
#[test]
fn identical_rows_collapse_into_one_with_a_count() {
    let t = text(&run_cols(
        &["hunt", "samples/evtx", "-f", "table"],
        Some("80"),
    ));
    let rows = rows(&t);
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains("Windows Event Log Cleared"))
            .count(),
        2,
        "{t}"
    );
    assert!(
        rows.contains(
            &"2021-10-25 18:04:30 med  FS03.offsec.…  104 ×90 Windows Event Log Cleared (last…"
        ),
        "{t}"
    );
    // The samples: 1 critical row first, then the 16 high rows.
    assert_eq!(level(rows[0]), "crit");
    assert!(rows[1..17].iter().all(|r| level(r) == "high"), "{t}");
    assert_eq!(level(rows[17]), "med");
}

/// Colour by level with `--color always`; none when piped (auto), with
/// `--no-color`, `--color never`, or `NO_COLOR` and `--color auto`.
#[test]
fn colour_only_on_request_or_a_terminal() {
    let t = text(&run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "table",
        "--color",
        "always",
    ]));
    assert!(
        t.contains("\x1b[1m\x1b[31mcrit\x1b[0m FS03.offsec.lan"),
        "{t}"
    );
    assert!(t.contains("\x1b[38;5;208mhigh\x1b[0m"), "{t}");
    assert!(t.contains("\x1b[33mmed \x1b[0m"), "{t}");
    for args in [
        &["hunt", "samples/evtx", "-f", "table"][..],
        &["hunt", "samples/evtx", "-f", "table", "--no-color"],
        &["hunt", "samples/evtx", "-f", "table", "--color", "NEVER"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!text(&out).contains('\x1b'), "{args:?}");
    }
    assert_eq!(
        run(&["hunt", "samples/evtx", "--no-color", "--color", "always"])
            .status
            .code(),
        Some(1)
    );
}

/// `--timezone Asia/Tokyo` shows times 9 hours ahead, in the rows and the
/// summary, and names the zone in the header; JSONL stays UTC.
#[test]
fn timezone_shifts_the_shown_times() {
    let utc = text(&run(&["hunt", "samples/evtx", "-f", "table"]));
    let tokyo = text(&run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "table",
        "--timezone",
        "Asia/Tokyo",
    ]));
    assert!(
        utc.contains("2021-10-21 20:40:12 crit FS03.offsec.lan"),
        "{utc}"
    );
    assert!(tokyo.starts_with("Time (Asia/Tokyo) "), "{tokyo}");
    assert!(
        tokyo.contains("2021-10-22 05:40:12 crit FS03.offsec.lan"),
        "{tokyo}"
    );
    assert!(
        tokyo.contains("Event time range:  2021-01-30 18:13:13 → 2021-12-07 23:54:25"),
        "{tokyo}"
    );
    assert!(tokyo.contains("Times shown in:    Asia/Tokyo"), "{tokyo}");
    let iso = text(&run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "table",
        "--timezone",
        "Asia/Tokyo",
        "--time-format",
        "iso",
    ]));
    assert!(
        iso.contains("2021-10-22T05:40:12.") && iso.contains("+09:00 crit"),
        "{iso}"
    );
    let jsonl = text(&run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "jsonl",
        "--timezone",
        "Asia/Tokyo",
    ]));
    assert!(
        jsonl.contains("\"2021-10-21T20:40:12"),
        "machine formats stay UTC"
    );
    // --local follows the machine's zone (TZ here).
    let local = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args(["hunt", "samples/evtx", "-f", "table", "--local"])
        .current_dir(root())
        .env("TZ", "Asia/Tokyo")
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let local = text(&local);
    assert!(local.starts_with("Time (local) "), "{local}");
    assert!(
        local.contains("2021-10-22 05:40:12 crit FS03.offsec.lan"),
        "{local}"
    );
    let out = run(&["hunt", "samples/evtx", "--timezone", "Mars/Olympus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err(&out).contains("not an IANA time zone name"),
        "{}",
        err(&out)
    );
}

/// Piped or `-o` runs showed neither the summary nor the attribution on the
/// terminal: both now go to stderr (not with -q).
#[test]
fn piped_and_file_runs_give_summary_and_verdict_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("t.txt");
    for args in [
        vec!["hunt", "samples/evtx", "-f", "jsonl"],
        vec![
            "hunt",
            "samples/evtx",
            "-f",
            "table",
            "-o",
            o.to_str().unwrap(),
        ],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", err(&out));
        let e = err(&out);
        assert!(e.contains("tracehunt: 248 events in 10 files"), "{e}");
        assert!(e.contains("tracehunt: attribution: "), "{e}");
        assert!(e.contains("tracehunt:   1. G"), "{e}");
    }
    let table = std::fs::read_to_string(&o).unwrap();
    assert!(table.contains("── Summary"), "{table}");
    let out = run(&["hunt", "samples/evtx", "-f", "jsonl", "-q"]);
    assert_eq!(err(&out), "");
}

/// Flag traps of the issue, each with its exit code and message.
#[test]
fn flag_traps_are_caught_or_accepted() {
    // Case-insensitive values.
    let out = run(&[
        "hunt",
        "samples/evtx",
        "--min-level",
        "HIGH",
        "-f",
        "JSON",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["detections"], 38);
    // Hayabusa's short -m for the minimum level.
    let out = run(&["hunt", "samples/evtx", "-m", "High", "-f", "json", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["detections"], 38);
    // Hayabusa's -d DIR, its short level names (crit, med, info) and -C for --clobber.
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("crit.json");
    let o = o.to_str().unwrap();
    for (level, n) in [("crit", 1), ("med", 140), ("info", 161)] {
        let out = run(&[
            "hunt",
            "-d",
            "samples/evtx",
            "-m",
            level,
            "-f",
            "json",
            "-q",
            "-o",
            o,
            "-C",
        ]);
        assert_eq!(out.status.code(), Some(0), "{level}: {}", err(&out));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(o).unwrap()).unwrap();
        assert_eq!(v["summary"]["detections"], n, "{level}");
    }
    // Hayabusa's time form with an offset: 2021-10-22 05:00 +09:00 is 20:00 UTC.
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "json",
        "-q",
        "--from",
        "2021-10-22 05:00:00 +09:00",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["time_window"]["from"], "2021-10-21T20:00:00Z");
    // -f given a log path (Hayabusa's -f FILE).
    for path in ["samples/evtx", "Security.evtx", "x.jsonl", "out.csv"] {
        let out = run(&["hunt", "-f", path]);
        assert_eq!(out.status.code(), Some(1), "{path}");
        assert!(
            err(&out).contains(&format!(
                "-f is --format here (`{path}` is not a format): give log paths as arguments (tracehunt hunt <path>) and an output file with -o FILE"
            )),
            "{}",
            err(&out)
        );
    }
    // In the words of the command run (breaker: `search` was told `tracehunt hunt`).
    let out = run(&["search", "samples/evtx", "-k", "a", "-f", "hits.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err(&out).contains("(tracehunt search <path>)"),
        "{}",
        err(&out)
    );
    // A plain bad format keeps clap's message.
    let out = run(&["hunt", "samples/evtx", "-f", "xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("invalid value 'xml'"), "{}", err(&out));
    // rules check -f.
    let out = run(&["rules", "check", "-f", "json", "rules/builtin"]);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok(),
        "{}",
        err(&out)
    );
    // navigator -f csv is an error, not a silent layer.
    let out = run(&["navigator", "samples/evtx", "-f", "csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err(&out).contains("-f csv is for `tracehunt hunt -f csv`"),
        "{}",
        err(&out)
    );
    assert!(out.stdout.is_empty());
    // --parse-only works but is not in the help.
    assert!(!text(&run(&["hunt", "--help"])).contains("parse-only"));
    assert_eq!(
        run(&["hunt", "samples/evtx", "--parse-only", "-q", "-f", "jsonl"])
            .status
            .code(),
        Some(0)
    );
}

/// `-o` overwrote an existing file silently; now only with `--clobber`.
#[test]
fn output_onto_an_existing_file_needs_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("hits.jsonl");
    std::fs::write(&o, "keep me\n").unwrap();
    let os = o.to_str().unwrap();
    let out = run(&["hunt", "samples/evtx", "-f", "jsonl", "-o", os]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err(&out).contains("exists: add --clobber to overwrite it"),
        "{}",
        err(&out)
    );
    assert_eq!(std::fs::read_to_string(&o).unwrap(), "keep me\n");
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "jsonl",
        "-o",
        os,
        "--clobber",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&o).unwrap().lines().count(), 161);
    // Not a regular file: no clobbering (the benchmarks write to /dev/null).
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-q",
        "-f",
        "jsonl",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
}

/// With `-q`, a mistyped path next to a good one was skipped with exit 0.
/// Now named on stderr whatever -q says, the run finishes, exit 1; exit 2
/// when nothing at all was read.
#[test]
fn a_missing_named_path_is_an_error_even_with_quiet() {
    let out = run(&["hunt", "samples/evtx", "samples/nope", "-q", "-f", "jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out).lines().count(), 161, "the good path was hunted");
    let e = err(&out);
    assert!(
        e.contains("tracehunt: error: samples/nope: no such file or directory"),
        "{e}"
    );
    assert!(e.contains("1 path not found"), "{e}");
    let out = run(&["hunt", "samples/nope", "-q"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("samples/nope: no such file or directory"));
}

/// The table under a real terminal (tmux) at 80 and 120 columns: coloured
/// (auto), each row on one line. `TRACEHUNT_REQUIRE_TMUX` (set by `.ci/run`)
/// makes a missing tmux a failure.
#[test]
fn table_under_tmux_fits_and_is_coloured() {
    let have = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("TRACEHUNT_REQUIRE_TMUX").is_none(),
            "tmux is required"
        );
        eprintln!("NOTE: no tmux: the terminal capture checks nothing");
        return;
    }
    let script = root().join("scripts/table-tmux.sh");
    for cols in ["80", "120"] {
        let out = Command::new("bash")
            .arg(&script)
            .arg(env!("CARGO_BIN_EXE_tracehunt"))
            .arg(cols)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", err(&out));
        let screen = text(&out);
        // capture-pane -e keeps the escape codes: colour on a terminal.
        assert!(
            screen.contains("\x1b["),
            "no colour on the terminal:\n{screen}"
        );
        let plain = strip_sgr(&screen);
        let w: usize = cols.parse().unwrap();
        let rows = rows(&plain);
        assert_eq!(rows.len(), 20, "{plain}");
        assert_eq!(level(rows[0]), "crit", "{plain}");
        assert!(rows[1..17].iter().all(|r| level(r) == "high"), "{plain}");
        // -J joined wrapped lines: a row that wrapped would be longer.
        for l in plain.lines() {
            assert!(
                l.trim_end().chars().count() <= w || !rows.contains(&l),
                "{l}"
            );
        }
        for r in &rows {
            assert!(r.trim_end().chars().count() <= w, "{r}");
        }
    }
}

/// `s` without its SGR escape sequences (`ESC [ … m`).
fn strip_sgr(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (true, 'm') => esc = false,
            (false, c) => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn incidents_section_uses_the_table_timezone() {
    let o = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "table",
        "--color",
        "never",
        "--timezone",
        "Asia/Tokyo",
    ]);
    let t = String::from_utf8_lossy(&o.stdout);
    // Mimikatz at 2021-10-21 20:40:12 UTC: 05:40:12 the next day in Tokyo,
    // in its detection row and in its incident alike.
    assert!(
        t.contains(
            "critical  2021-10-22 05:40:12 → 2021-10-22 05:40:43  2 detections  on FS03.offsec.lan"
        ),
        "{t}"
    );
    assert!(!t.contains("2021-10-21 20:40:12 →"), "{t}");
    let o = run(&[
        "hunt",
        "samples/evtx",
        "-f",
        "table",
        "--color",
        "never",
        "--time-format",
        "rfc3339",
    ]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("critical  2021-10-21T20:40:12Z → 2021-10-21T20:40:43Z  2 detections"),
        "{t}"
    );
}
