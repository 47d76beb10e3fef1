//! The compiled-rule cache (issue #22): a hunt from the cache gives the
//! same output as a cold compile, with the same rule diagnostics; a
//! corrupt, truncated, foreign or stale cache file is ignored (the rules
//! are compiled and the file rewritten); a changed rule file invalidates
//! it; `--no-rule-cache` neither reads nor writes it. Every run here uses
//! its own cache directory (`TRACEHUNT_RULE_CACHE`), never the user's.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The SigmaHQ rule folders when the corpora are present, else the
/// built-in pack's folder (the tests then still check the mechanism).
fn rule_args() -> Vec<String> {
    let sigma = root().join("../shared/corpora/sigma");
    let dirs = if sigma.join("rules").is_dir() {
        ["rules", "rules-emerging-threats", "rules-threat-hunting"]
            .iter()
            .map(|d| sigma.join(d))
            .collect()
    } else {
        eprintln!("skipped SigmaHQ rules: ../shared/corpora not present; using rules/builtin");
        vec![root().join("rules/builtin")]
    };
    dirs.iter()
        .flat_map(|d| ["--rules".to_owned(), d.display().to_string()])
        .collect()
}

/// The executable `bin` run from the repository root with the cache in `cache` and its
/// debug notes on.
fn command(bin: &Path, cache: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(root())
        .env("TRACEHUNT_RULE_CACHE", cache)
        .env("TRACEHUNT_DEBUG_RULE_CACHE", "1");
    c
}

/// `tracehunt ARGS` with the cache in `cache` and its debug notes on.
fn run(cache: &Path, args: &[String]) -> Output {
    command(Path::new(env!("CARGO_BIN_EXE_tracehunt")), cache)
        .args(args)
        .output()
        .unwrap()
}

/// What the cache did on this run: the debug note's first word after
/// `rule cache: ` of its first note (`hit`, `miss`, `off`).
fn cache_event(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.strip_prefix("tracehunt: rule cache: "))
        .unwrap_or_else(|| panic!("no rule cache note in stderr: {err}"))
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(|c: char| !c.is_ascii_alphabetic())
        .to_owned()
}

/// The hunt's JSON document without its wall time.
fn hunt_json(cache: &Path, rules: &[String]) -> (Value, String) {
    let mut args: Vec<String> = ["hunt", "samples/evtx", "-f", "json", "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(rules.iter().cloned());
    let out = run(cache, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["summary"]
        .as_object_mut()
        .unwrap()
        .remove("elapsed_ms")
        .expect("summary.elapsed_ms");
    (v, cache_event(&out))
}

/// `rules check --format json` without its wall time: every diagnostic
/// and the counts.
fn check_json(cache: &Path, rules: &[String]) -> (Value, String) {
    let mut args = vec![
        "rules".to_owned(),
        "check".into(),
        "-f".into(),
        "json".into(),
    ];
    args.extend(rules.iter().cloned());
    let out = run(cache, &args);
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_object_mut().unwrap().remove("elapsed_ms");
    (v, cache_event(&out))
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn cache_hit_gives_identical_detections_and_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = rule_args();
    let (cold, ev) = hunt_json(tmp.path(), &rules);
    assert_eq!(ev, "miss");
    let files = cache_files(tmp.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let (warm, ev) = hunt_json(tmp.path(), &rules);
    assert_eq!(ev, "hit");
    assert!(cold == warm, "hunt output differs cold and warm");
    assert!(cold["summary"]["detections"].as_u64().unwrap() > 100);
    // The rule diagnostics (rules check reads the same cache slot: same
    // rule paths and options) are identical cold and warm.
    let (check_warm, ev) = check_json(tmp.path(), &rules);
    assert_eq!(ev, "hit");
    let other = tempfile::tempdir().unwrap();
    let (check_cold, ev) = check_json(other.path(), &rules);
    assert_eq!(ev, "miss");
    assert!(
        check_cold == check_warm,
        "rules check differs cold and warm"
    );
    let diags = check_cold["diagnostics"].as_array().unwrap();
    assert!(diags.iter().any(|d| d["code"] == "TH010"));
    // Other options: another slot, compiled once.
    let mut lvl = rules.clone();
    lvl.extend(["--exact-level".to_owned(), "high".to_owned()]);
    let (high, ev) = hunt_json(tmp.path(), &lvl);
    assert_eq!(ev, "miss");
    assert_eq!(cache_files(tmp.path()).len(), 2);
    assert_ne!(high["summary"], cold["summary"]);
    assert_eq!(hunt_json(tmp.path(), &lvl), (high, "hit".to_owned()));
}

#[test]
fn corrupt_truncated_foreign_and_stale_caches_are_ignored_and_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = vec!["--rules".to_owned(), "rules/builtin".to_owned()];
    let (cold, _) = hunt_json(tmp.path(), &rules);
    let file = cache_files(tmp.path()).pop().unwrap();
    let good = std::fs::read(&file).unwrap();
    let mut flipped_payload = good.clone();
    let last = flipped_payload.len() - 1;
    flipped_payload[last] ^= 0x40;
    let mut flipped_key = good.clone();
    flipped_key[20] ^= 1;
    let mut other_format = good.clone();
    other_format[8] = other_format[8].wrapping_add(1);
    let damaged: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "truncated"),
        ("truncated header", good[..50].to_vec(), "truncated"),
        (
            "truncated payload",
            good[..good.len() - 7].to_vec(),
            "truncated",
        ),
        ("trailing bytes", [&good[..], b"xyz"].concat(), "trailing"),
        ("flipped payload byte", flipped_payload, "checksum"),
        ("other key (stale)", flipped_key, "stale"),
        ("other format", other_format, "cache format"),
        (
            "foreign file",
            b"not a cache at all, but long enough to hold a header of ninety-two bytes......"
                .repeat(2),
            "not a tracehunt",
        ),
    ];
    for (what, bytes, why) in damaged {
        std::fs::write(&file, &bytes).unwrap();
        let mut args: Vec<String> = ["hunt", "samples/evtx", "-f", "json", "-q"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(rules.iter().cloned());
        let out = run(tmp.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {err}");
        assert_eq!(cache_event(&out), "miss", "{what}: {err}");
        assert!(err.contains(why), "{what}: expected '{why}' in {err}");
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["summary"].as_object_mut().unwrap().remove("elapsed_ms");
        assert_eq!(v, cold, "{what}");
        // Rewritten: the next run hits.
        assert_eq!(
            hunt_json(tmp.path(), &rules),
            (cold.clone(), "hit".into()),
            "{what}"
        );
    }
}

#[test]
fn changed_rule_file_invalidates_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let rules_dir = tmp.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    // The built-in pack's rules (in tactic folders), flattened.
    let mut n = 0;
    for d in std::fs::read_dir(root().join("rules/builtin")).unwrap() {
        let d = d.unwrap().path();
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml") {
                std::fs::copy(&p, rules_dir.join(p.file_name().unwrap())).unwrap();
                n += 1;
            }
        }
    }
    assert!(n >= 30, "{n} built-in rules");
    let cache = tmp.path().join("cache");
    let rules = vec!["--rules".to_owned(), rules_dir.display().to_string()];
    let (before, ev) = hunt_json(&cache, &rules);
    assert_eq!(ev, "miss");
    assert_eq!(hunt_json(&cache, &rules).1, "hit");
    // Lower every `level: high` rule to low: the hunt must see it.
    let mut changed = 0;
    for e in std::fs::read_dir(&rules_dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        if text.contains("\nlevel: high") {
            std::fs::write(&p, text.replace("\nlevel: high", "\nlevel: low")).unwrap();
            changed += 1;
        }
    }
    assert!(changed > 0);
    let (after, ev) = hunt_json(&cache, &rules);
    assert_eq!(ev, "miss");
    let levels = |v: &Value, l: &str| v["summary"]["by_level"][l].as_u64().unwrap_or(0);
    assert!(levels(&before, "high") > 0);
    assert_eq!(levels(&after, "high"), 0);
    assert_eq!(
        levels(&after, "low"),
        levels(&before, "low") + levels(&before, "high")
    );
    assert_eq!(hunt_json(&cache, &rules), (after, "hit".into()));
    assert_eq!(cache_files(&cache).len(), 1, "one slot per rule set");
}

#[test]
fn no_rule_cache_neither_reads_nor_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rules = vec!["--rules".to_owned(), "rules/builtin".to_owned()];
    let (cold, _) = hunt_json(tmp.path(), &rules);
    let file = cache_files(tmp.path()).pop().unwrap();
    std::fs::write(&file, b"garbage").unwrap();
    rules.push("--no-rule-cache".into());
    let (v, ev) = hunt_json(tmp.path(), &rules);
    assert_eq!(ev, "off");
    assert_eq!(v, cold);
    assert_eq!(std::fs::read(&file).unwrap(), b"garbage");
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(hunt_json(empty.path(), &rules).1, "off");
    assert!(cache_files(empty.path()).is_empty());
}

/// Regression (issue #22, memory helper's finding): the cache file was named after the rule
/// paths and options only, so two builds sharing one cache directory (an installed binary
/// and a development build, or the benchmark's) overwrote each other's file and every run
/// of the other recompiled all rules (and peaked ~25 MB higher). Each executable now keeps
/// its own file.
#[test]
fn two_executables_sharing_a_cache_directory_do_not_evict_each_other() {
    let cache = tempfile::tempdir().unwrap();
    let bins = tempfile::tempdir().unwrap();
    let other = bins.path().join("tracehunt-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_tracehunt"), &other).unwrap();
    let rules = ["--rules", "rules/builtin"];
    let event = |bin: &Path| {
        let out = command(bin, cache.path())
            .args(["hunt", "samples/evtx", "-f", "json", "-q"])
            .args(rules)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cache_event(&out)
    };
    let this = Path::new(env!("CARGO_BIN_EXE_tracehunt"));
    assert_eq!(event(this), "miss");
    assert_eq!(event(&other), "miss");
    assert_eq!(
        event(this),
        "hit",
        "the copy's run left this build's file alone"
    );
    assert_eq!(event(&other), "hit");
    assert_eq!(
        cache_files(cache.path()).len(),
        2,
        "one file per executable"
    );
}

/// Regression (breaker finding): a symlink to `/dev/zero` at the cache file's path grew the
/// hunt to 11.7 GB, a FIFO there hung it. Only a regular file is read; anything else is a
/// miss, the rules are compiled and the output is the same. Each run has a 120 s deadline so
/// a regression fails instead of hanging.
#[test]
fn a_device_link_or_fifo_at_the_cache_path_is_a_miss_not_a_hang() {
    let cache = tempfile::tempdir().unwrap();
    let rules: Vec<String> = ["--rules", "rules/builtin"].map(String::from).to_vec();
    let (cold, _) = hunt_json(cache.path(), &rules);
    let file = cache_files(cache.path()).pop().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    let bounded = || {
        // Output to files, not pipes: a pipe nobody reads would stall the child.
        let (so, se) = (outputs.path().join("out"), outputs.path().join("err"));
        let mut child = command(Path::new(env!("CARGO_BIN_EXE_tracehunt")), cache.path())
            .args(["hunt", "samples/evtx", "-f", "json", "-q"])
            .args(&rules)
            .stdout(std::fs::File::create(&so).unwrap())
            .stderr(std::fs::File::create(&se).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("the hunt hung on a special file at the cache path");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = Output {
            status: child.wait().unwrap(),
            stdout: std::fs::read(&so).unwrap(),
            stderr: std::fs::read(&se).unwrap(),
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["summary"].as_object_mut().unwrap().remove("elapsed_ms");
        (v, cache_event(&out))
    };
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &file).unwrap();
    assert_eq!(bounded(), (cold.clone(), "miss".to_owned()));
    std::fs::remove_file(&file).unwrap();
    let made = Command::new("mkfifo").arg(&file).status();
    if made.is_ok_and(|s| s.success()) {
        assert_eq!(bounded(), (cold, "miss".to_owned()));
    } else {
        eprintln!("skipped the FIFO case: mkfifo unavailable");
    }
}

/// Regression (breaker finding): `TRACEHUNT_RULE_CACHE=` (set but empty) made every command
/// that loads rules fail with "a value is required for '--rule-cache <DIR>'", even with
/// `--no-rule-cache`; empty now means the default, as an empty `TRACEHUNT_STORE` means none.
#[test]
fn an_empty_rule_cache_variable_is_the_default_not_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args([
            "hunt",
            "samples/evtx",
            "-f",
            "json",
            "-q",
            "--no-rule-cache",
        ])
        .current_dir(root())
        .env("TRACEHUNT_RULE_CACHE", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["detections"], 161);
}

/// Breaker finding: the cache directory only grew (one file per build, rule
/// path list and options). After a write, files older than 30 days go, then
/// the oldest beyond the 64 newest; stale temporary files of interrupted
/// writes go too; other files are never touched.
#[test]
fn a_write_prunes_old_and_excess_cache_files_but_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(24 * 3600);
    let make = |name: &str, age: std::time::Duration| {
        let p = dir.path().join(name);
        std::fs::write(&p, b"x").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(now - age).unwrap();
        p
    };
    let hex = |i: u64| format!("rules-{i:032x}.bin");
    let old = make(&hex(999), 31 * day);
    let users_own = make("rules-backup.bin", 400 * day);
    let stale_tmp = make(".rules-interrupted.tmp", day);
    let fresh_tmp = make(".rules-writing.tmp", std::time::Duration::ZERO);
    let other = make("notes.txt", 400 * day);
    // 70 recent cache files, the i-th i minutes old.
    let recent: Vec<PathBuf> = (0..70)
        .map(|i| make(&hex(i), std::time::Duration::from_secs(60 * (i + 1))))
        .collect();
    let out = run(
        dir.path(),
        &["rules".into(), "check".into(), "rules/builtin".into()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("old files removed"), "{err}");
    assert!(!old.exists() && !stale_tmp.exists());
    assert!(fresh_tmp.exists() && other.exists() && users_own.exists());
    // The new file + the 63 newest of the 70 are kept.
    let kept = recent.iter().filter(|p| p.exists()).count();
    assert_eq!(kept, 63);
    assert!(recent[62].exists() && !recent[63].exists());
    let bins = cache_files(dir.path())
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .count();
    assert_eq!(bins, 65); // the 64 cache files and the user's own
}

/// Breaker finding: a `--rule-cache` directory that cannot hold the cache
/// was silent without TRACEHUNT_DEBUG_RULE_CACHE; now a warning says so,
/// and the hunt goes on.
#[test]
fn an_unwritable_named_cache_directory_is_a_warning_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    // The flag names the file; no debug notes, so the warning stands alone.
    let out = command(Path::new(env!("CARGO_BIN_EXE_tracehunt")), dir.path())
        .env_remove("TRACEHUNT_DEBUG_RULE_CACHE")
        .args(["hunt", "samples/evtx", "-q", "-f", "json", "--rule-cache"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "tracehunt: warning: rule cache not written in {}: {} is not a directory",
            file.display(),
            file.display()
        )) && err.contains("--no-rule-cache turns the cache off"),
        "{err}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["detections"], 161);
}
