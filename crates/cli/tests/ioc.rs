//! `hunt --ioc`, `--format stix`, `--format navigator` end to end.
//!
//! The acceptance test: an IOC from an ESET MISP event tagged with an actor
//! (`../shared/corpora/ioc/eset-misp`, eset/malware-ioc, BSD-2), planted into a copy of a
//! sample event (a Sysmon 1 record of the Mordor corpus, `../shared/corpora/mordor`, MIT), makes
//! that actor the top candidate with the IOC shown as evidence — while the bundled samples'
//! own technique evidence points elsewhere. Corpus tests skip with a message when the corpora
//! are not beside the project; the STIX check skips when Python's `stix2` is not installed
//! (`pip install stix2`, done by `.ci/run`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpora() -> Option<PathBuf> {
    let p = root().join("../shared/corpora");
    if p.join("ioc/eset-misp").is_dir() && p.join("mordor/windows").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared/corpora (ioc/eset-misp, mordor) not found");
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

fn ok(out: &Output) -> &[u8] {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    &out.stdout
}

const TURLA_EVENT: &str = "ioc/eset-misp/turla__misp-mosquito-event.json";
/// A SHA-1 of the ESET "Turla: Mosquito Whitepaper" event (tagged
/// `misp-galaxy:threat-actor="Turla Group"`).
const TURLA_SHA1: &str = "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a";
const MORDOR_DUMPERT: &str = "mordor/windows/credential_access/host/cmd_lsass_memory_dumpert_syscalls/cmd_lsass_memory_dumpert_syscalls_2020-10-1822561997.json";

/// Writes a copy of the first Sysmon 1 record of the Mordor Dumpert dataset with its SHA-1
/// replaced by the Turla IOC (upper-case, as Sysmon writes it); returns the file path.
fn planted(c: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(c.join(MORDOR_DUMPERT)).unwrap();
    let mut rec: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["EventID"] == 1 && v.get("Hashes").is_some())
        .expect("a Sysmon 1 record");
    let hashes = rec["Hashes"].as_str().unwrap().to_owned();
    let sha1 = hashes
        .split(',')
        .find_map(|h| h.strip_prefix("SHA1="))
        .unwrap()
        .to_owned();
    rec["Hashes"] = Value::from(hashes.replace(&sha1, &TURLA_SHA1.to_ascii_uppercase()));
    let p = dir.join("planted.json");
    std::fs::write(&p, format!("{rec}\n")).unwrap();
    p
}

#[test]
fn planted_eset_ioc_makes_its_actor_the_top_candidate() {
    let Some(c) = corpora() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plant = planted(&c, dir.path());
    let plant = plant.to_str().unwrap();
    let feed = c.join(TURLA_EVENT);
    let feed = feed.to_str().unwrap();

    // Without the feed: the samples' techniques do not point at Turla.
    let base: Value = serde_json::from_slice(ok(&run(&[
        "hunt",
        "samples/evtx",
        plant,
        "--format",
        "json",
        "-q",
    ])))
    .unwrap();
    assert_ne!(base["attribution"][0]["id"], "G0010");
    assert!(base.get("ioc_hits").is_none());

    let v: Value = serde_json::from_slice(ok(&run(&[
        "hunt",
        "samples/evtx",
        plant,
        "--ioc",
        feed,
        "--format",
        "json",
        "-q",
    ])))
    .unwrap();
    let hits = v["ioc_hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    let ioc = &hits[0]["ioc"];
    assert_eq!(ioc["type"], "sha1");
    assert_eq!(ioc["value"], TURLA_SHA1);
    assert_eq!(ioc["field"], "Hashes");
    assert_eq!(ioc["actors"][0]["name"], "Turla Group");
    assert_eq!(ioc["actors"][0]["group"]["id"], "G0010");
    assert_eq!(
        ioc["sources"][0]["id"],
        "5a5395d1-40a0-45fc-b692-334a0a016219"
    );
    assert_eq!(hits[0]["rule_id"], format!("ioc:sha1:{TURLA_SHA1}"));
    assert_eq!(v["ioc"]["hits"], 1);
    assert_eq!(v["ioc"]["feeds"][0]["actors"][0], "Turla Group");

    let top = &v["attribution"][0];
    eprintln!(
        "top: {} {} score {} confidence {:?}; runner-up {} {} score {}; verdict: {}",
        top["id"],
        top["name"],
        top["score"],
        top.get("confidence"),
        v["attribution"][1]["id"],
        v["attribution"][1]["name"],
        v["attribution"][1]["score"],
        v["attribution_verdict"]["reason"]
    );
    assert_eq!(top["rank"], 1);
    assert_eq!(top["id"], "G0010");
    assert_eq!(top["name"], "Turla");
    let ev = top["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "ioc")
        .expect("IOC evidence on the top candidate");
    assert_eq!(ev["id"], TURLA_SHA1);
    assert_eq!(ev["observed_as"][0], "Turla Group");
    // The IOC hit opens an incident of its own (its host has no Sigma
    // detection), attributed to Turla with a verdict; the collection, whose
    // other 10 incidents point elsewhere, gets none.
    let incidents = v["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 11);
    let with_ioc: Vec<&Value> = incidents.iter().filter(|i| i["ioc_hits"] == 1).collect();
    assert_eq!(with_ioc.len(), 1);
    assert_eq!(with_ioc[0]["detections"], 0);
    assert_eq!(with_ioc[0]["attribution"][0]["id"], "G0010");
    assert_eq!(with_ioc[0]["attribution_verdict"]["confident"], true);
    assert_eq!(v["attribution_verdict"]["confident"], false);
    assert!(v["attribution_verdict"]["reason"]
        .as_str()
        .unwrap()
        .contains("G0010 in 1"));

    // JSONL: the hit is a detection-shaped record after the rule detections.
    let out = run(&["hunt", "samples/evtx", plant, "--ioc", feed, "-q"]);
    let last: Value =
        serde_json::from_str(String::from_utf8_lossy(ok(&out)).lines().last().unwrap()).unwrap();
    assert_eq!(last["ioc"]["value"], TURLA_SHA1);
    assert_eq!(last["level"], "high");
}

#[test]
fn stix_bundle_is_valid_and_reproducible() {
    let Some(c) = corpora() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plant = planted(&c, dir.path());
    let feed = c.join(TURLA_EVENT);
    let out_a = dir.path().join("a.json");
    let out_b = dir.path().join("b.json");
    for (o, threads) in [(&out_a, "1"), (&out_b, "2")] {
        ok(&run(&[
            "hunt",
            "samples/evtx",
            plant.to_str().unwrap(),
            "--ioc",
            feed.to_str().unwrap(),
            "--format",
            "stix",
            "-q",
            "--threads",
            threads,
            "-o",
            o.to_str().unwrap(),
        ]));
    }
    let a = std::fs::read(&out_a).unwrap();
    // The same bundle but for when it was made (`created`/`modified`, the
    // current time since issue #19).
    let made_at_removed = |bytes: &[u8]| -> Value {
        let mut v: Value = serde_json::from_slice(bytes).unwrap();
        for o in v["objects"].as_array_mut().unwrap() {
            let o = o.as_object_mut().unwrap();
            o.remove("created");
            o.remove("modified");
        }
        v
    };
    assert_eq!(
        made_at_removed(&a),
        made_at_removed(&std::fs::read(&out_b).unwrap()),
        "deterministic bundle"
    );
    let b: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(b["type"], "bundle");
    let objs = b["objects"].as_array().unwrap();
    let of = |t: &'static str| objs.iter().filter(move |o| o["type"] == t);
    // The IOC indicator and its sighting.
    let ind = of("indicator").next().expect("indicator");
    assert_eq!(
        ind["pattern"],
        format!("[file:hashes.'SHA-1' = '{TURLA_SHA1}']")
    );
    let ind_sighting = of("sighting")
        .find(|s| s["sighting_of_ref"] == ind["id"] && s["count"] == 1)
        .expect("indicator sighting");
    // Issue #19: valid_from was the last event's time; it is the first sighting.
    assert_eq!(ind["valid_from"], ind_sighting["first_seen"]);
    // Technique sightings point at attack-patterns with ATT&CK ids.
    let ap = of("attack-pattern")
        .find(|o| o["external_references"][0]["external_id"] == "T1047")
        .expect("T1047 attack-pattern");
    let s = of("sighting")
        .find(|s| s["sighting_of_ref"] == ap["id"])
        .unwrap();
    assert!(s["count"].as_u64().unwrap() > 0);
    assert!(s["first_seen"].as_str().unwrap() <= s["last_seen"].as_str().unwrap());
    assert!(!s["where_sighted_refs"].as_array().unwrap().is_empty());
    // attributed-to Turla with a confidence in 0..=100, indicates from the IOC.
    let turla = of("intrusion-set")
        .find(|o| o["external_references"][0]["external_id"] == "G0010")
        .expect("Turla intrusion-set");
    let rel = of("relationship")
        .find(|r| r["relationship_type"] == "attributed-to" && r["target_ref"] == turla["id"])
        .unwrap();
    let conf = rel["confidence"].as_u64().unwrap();
    assert!((50..=100).contains(&conf), "{conf}");
    assert!(
        of("relationship").any(|r| r["relationship_type"] == "indicates"
            && r["source_ref"] == ind["id"]
            && r["target_ref"] == turla["id"])
    );
    for o in objs {
        if let Some(c) = o.get("confidence") {
            assert!(c.as_u64().is_some_and(|c| c <= 100));
        }
    }

    // The stix2 Python library's parser (STIX 2.1, no custom content allowed).
    let have = Command::new("python3")
        .args(["-c", "import stix2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!(
            "skipping stix2 validation: `python3 -c 'import stix2'` failed (pip install stix2)"
        );
        return;
    }
    let check = Command::new("python3")
        .args([
            "-c",
            "import sys, stix2\n\
             b = stix2.parse(open(sys.argv[1]).read(), allow_custom=False)\n\
             assert all(o.spec_version == '2.1' for o in b.objects)\n\
             print(len(b.objects))",
            out_a.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "stix2 rejected the bundle: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let n: usize = String::from_utf8_lossy(&check.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(n, objs.len());
    eprintln!("stix2 parsed {n} objects");
}

#[test]
fn navigator_layer_with_overlay() {
    let v: Value = serde_json::from_slice(ok(&run(&[
        "navigator",
        "samples/evtx",
        "--overlay",
        "G0009",
        "-q",
    ])))
    .unwrap();
    assert_eq!(v["versions"]["layer"], "4.5");
    assert_eq!(v["versions"]["attack"], "18");
    assert_eq!(v["domain"], "enterprise-attack");
    let t = v["techniques"].as_array().unwrap();
    let wmi = t.iter().find(|t| t["techniqueID"] == "T1047").unwrap();
    assert!(wmi["score"].as_u64().unwrap() > 0);
    assert_eq!(wmi["color"], "#e60d0d", "observed and used by Deep Panda");
    let web_shell = t.iter().find(|t| t["techniqueID"] == "T1505.003").unwrap();
    assert!(web_shell["comment"]
        .as_str()
        .unwrap()
        .contains("G0009 Deep Panda"));
    // Same layer through `hunt --format navigator`; a bad group is a usage error.
    let h: Value = serde_json::from_slice(ok(&run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "navigator",
        "--overlay",
        "Deep Panda",
        "-q",
    ])))
    .unwrap();
    assert_eq!(h, v);
    let bad = run(&["navigator", "samples/evtx", "--overlay", "G9999", "-q"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn csv_feed_loads_and_bad_feed_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("feed.csv");
    // A CSV feed whose IOC the samples do not contain: loaded and counted, no hits.
    std::fs::write(&feed, "type,value,actor\ndomain,never-seen.example,APT28\n").unwrap();
    let v: Value = serde_json::from_slice(ok(&run(&[
        "hunt",
        "samples/evtx",
        "--ioc",
        feed.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ])))
    .unwrap();
    assert_eq!(v["ioc"]["iocs"], 1);
    assert_eq!(v["ioc"]["hits"], 0);
    assert_eq!(v["ioc_hits"].as_array().unwrap().len(), 0);
    // Not a feed: usage error naming the file.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"foo\": 1}").unwrap();
    let out = run(&["hunt", "samples/evtx", "--ioc", bad.to_str().unwrap(), "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an IOC feed"));
}

/// Issue #6: `--ioc /dev/zero` read until memory ran out; a feed must be a
/// regular file (and at most 512 MiB), refused at once otherwise.
#[cfg(unix)]
#[test]
fn ioc_feed_that_is_a_device_is_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("e.jsonl");
    std::fs::write(&log, "{\"EventID\": 1, \"Channel\": \"Security\"}\n").unwrap();
    let t = std::time::Instant::now();
    let out = run(&[
        "hunt",
        log.to_str().unwrap(),
        "--ioc",
        "/dev/zero",
        "-f",
        "jsonl",
    ]);
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a regular file"), "{err}");
}

/// Issue #6: `--placeholders /dev/zero`, `--logsource-map /dev/zero` and
/// `eval attribution --attack /dev/zero` read until memory ran out.
#[cfg(unix)]
#[test]
fn config_file_that_is_a_device_is_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("e.jsonl");
    std::fs::write(&log, "{\"EventID\": 1, \"Channel\": \"Security\"}\n").unwrap();
    let log = log.to_str().unwrap();
    for args in [
        &["hunt", log, "--placeholders", "/dev/zero"][..],
        &["hunt", log, "--logsource-map", "/dev/zero"],
        &["eval", "attribution", "--attack", "/dev/zero"],
        &["attack", "snapshot", "/dev/zero", "/dev/null"],
    ] {
        let t = std::time::Instant::now();
        let out = run(args);
        assert!(t.elapsed() < std::time::Duration::from_secs(20), "{args:?}");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
    }
}

/// Last session's fresh-user trial: `--ioc` with the ESET MISP events printed ~58 stderr
/// lines, one per file, listing unusable attribute types. Now one summary line per `--ioc`
/// argument (most frequent types first); `-v` gives each file's line.
#[test]
fn misp_unusable_attributes_are_one_summary_line_per_feed() {
    let Some(c) = corpora() else { return };
    let dir = c.join("ioc/eset-misp");
    let dir = dir.to_str().unwrap();
    let args = ["hunt", "samples/evtx", "--ioc", dir, "--format", "jsonl"];
    let out = run(&args);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let feed_lines: Vec<&str> = err.lines().filter(|l| l.contains("IOC feed")).collect();
    assert_eq!(feed_lines.len(), 1, "{err}");
    let line = feed_lines[0];
    assert!(line.contains("(59 files): 3317 IOCs loaded"), "{line}");
    assert!(
        line.contains(
            "1999 entries unusable: 901 of type text, 493 of type filename, 137 of type port, 116 of type other, 98 of type regkey|value, and 22 more types"
        ),
        "{line}"
    );
    assert!(
        line.contains("skipped 1 non-feed file (first: ")
            && line.contains("dnsbirthday__rqz-dnsduvel_blocklist.json"),
        "{line}"
    );
    assert!(line.ends_with("(-v for details)"), "{line}");
    // -v: the per-file detail as well (badiis: 57 text, 51 filename, 2 invalid URLs).
    let mut v_args = args.to_vec();
    v_args.push("-v");
    let out = run(&v_args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().filter(|l| l.contains("IOC feed")).count() > 50);
    assert!(
        err.contains("misp-badiis.json: 110 entries unusable: 57 of type text, 51 of type filename, 2 invalid url"),
        "{err}"
    );
}
