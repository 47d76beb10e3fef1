//! `hunt --ioc` with maltrail trail files end to end (issue #18 items 4 and 6).
//!
//! A domain of maltrail's `apt_33.txt` (`../shared/corpora/ioc/maltrail`, stamparm/maltrail
//! 8adace159e, MIT) is planted into a copy of a real Sysmon 22 DNS query of the Mordor corpus
//! (`../shared/corpora/mordor`, OTRF Security-Datasets, MIT); hunting it with the whole trail
//! directory as the feed ranks APT33 first, citing the trail's line and its `# Reference:`.
//! The one-hash one-line CSV case of the issue is checked the same way. Skips with a message
//! when the corpora are not beside the project.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpora() -> Option<PathBuf> {
    let p = root().join("../shared/corpora");
    if p.join("ioc/maltrail").is_dir() && p.join("mordor/windows").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared/corpora (ioc/maltrail, mordor) not found");
        None
    }
}

fn run(args: &[&str]) -> Value {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run tracehunt");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

const MORDOR_DNS: &str = "mordor/windows/defense_evasion/host/covenant_lolbin_wuauclt_createremotethread/covenant_lolbin_wuauclt_createremotethread_2020-10-12183248.json";

/// The first Sysmon 22 record of the Mordor dataset with its `QueryName` (and the query in
/// `Message`) replaced by `domain`; returns the file path.
fn planted_dns(c: &Path, dir: &Path, domain: &str) -> PathBuf {
    let text = std::fs::read_to_string(c.join(MORDOR_DNS)).unwrap();
    let mut rec: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["EventID"] == 22)
        .expect("a Sysmon 22 record");
    let old = rec["QueryName"].as_str().unwrap().to_owned();
    rec["QueryName"] = Value::from(domain);
    let msg = rec["Message"].as_str().unwrap().replace(&old, domain);
    rec["Message"] = Value::from(msg);
    let p = dir.join("planted-dns.json");
    std::fs::write(&p, format!("{rec}\n")).unwrap();
    p
}

const MORDOR_DUMPERT: &str = "mordor/windows/credential_access/host/cmd_lsass_memory_dumpert_syscalls/cmd_lsass_memory_dumpert_syscalls_2020-10-1822561997.json";
/// A SHA-1 of ESET's "Turla: Mosquito Whitepaper" MISP event.
const SHA1: &str = "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a";

/// The first Sysmon 1 record of the Mordor Dumpert dataset with its SHA-1 replaced by
/// [`SHA1`]; returns the file path.
fn planted_sha1(c: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(c.join(MORDOR_DUMPERT)).unwrap();
    let mut rec: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["EventID"] == 1 && v.get("Hashes").is_some())
        .expect("a Sysmon 1 record");
    let hashes = rec["Hashes"].as_str().unwrap().to_owned();
    let old = hashes
        .split(',')
        .find_map(|h| h.strip_prefix("SHA1="))
        .unwrap()
        .to_owned();
    rec["Hashes"] = Value::from(hashes.replace(&old, &SHA1.to_ascii_uppercase()));
    let p = dir.join("planted-sha1.json");
    std::fs::write(&p, format!("{rec}\n")).unwrap();
    p
}

#[test]
fn planted_maltrail_domain_ranks_its_actor_first_with_the_trails_reference() {
    let Some(c) = corpora() else { return };
    let dir = tempfile::tempdir().unwrap();
    // apt_33.txt line 6, under "# Reference: https://www.fireeye.com/blog/threat-research/
    // 2017/09/apt33-insights-into-iranian-cyber-espionage.html"; listed by no other trail.
    let plant = planted_dns(&c, dir.path(), "Boeing.ServeHttp.com");
    let feed = c.join("ioc/maltrail");
    let v = run(&[
        "hunt",
        plant.to_str().unwrap(),
        "--ioc",
        feed.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ]);
    let hits = v["ioc_hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    let ioc = &hits[0]["ioc"];
    assert_eq!(ioc["type"], "domain");
    assert_eq!(ioc["value"], "boeing.servehttp.com");
    assert_eq!(ioc["field"], "QueryName");
    assert_eq!(ioc["actors"][0]["name"], "APT33");
    assert_eq!(ioc["actors"][0]["group"]["id"], "G0064");
    assert_eq!(ioc["sources"][0]["format"], "maltrail");
    assert_eq!(ioc["sources"][0]["id"], "line 6");
    assert_eq!(v["ioc"]["multi_actor"]["maltrail"]["multi"], 12);

    let top = &v["attribution"][0];
    eprintln!(
        "top {} {} p={} ({}); verdict: {}",
        top["id"],
        top["name"],
        top["probability"],
        top["confidence_label"],
        v["attribution_verdict"]["reason"]
    );
    assert_eq!(top["id"], "G0064");
    let ev = top["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "ioc")
        .expect("IOC evidence");
    assert_eq!(ev["id"], "boeing.servehttp.com");
    let cited = ev["rule_titles"][0].as_str().unwrap();
    assert!(
        cited.ends_with(
            "apt_33.txt: line 6 (https://www.fireeye.com/blog/threat-research/2017/09/apt33-insights-into-iranian-cyber-espionage.html)"
        ),
        "{cited}"
    );
}

/// Issue #18: "One hash in a one-line CSV feed gives 99 % (Almost Certain)". The hash planted
/// into a real Sysmon 1 event still ranks its actor first, now with a probability a one-line
/// feed can support (it measures nothing about how exclusive its actor label is).
#[test]
fn one_hash_in_a_one_line_csv_feed_does_not_make_its_actor_almost_certain() {
    let Some(c) = corpora() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plant = planted_sha1(&c, dir.path());
    let feed = dir.path().join("one.csv");
    std::fs::write(&feed, format!("sha1,{SHA1},Turla\n")).unwrap();
    let v = run(&[
        "hunt",
        plant.to_str().unwrap(),
        "--ioc",
        feed.to_str().unwrap(),
        "--format",
        "json",
        "-q",
    ]);
    let turla = v["attribution"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "G0010")
        .expect("Turla ranked");
    eprintln!(
        "Turla rank {} p={} {}",
        turla["rank"], turla["probability"], turla["confidence_label"]
    );
    // Measured: 4.9 % (rank 1; it was 99 %). Below 20 %: "Highly Unlikely".
    assert!(turla["probability"].as_f64().unwrap() < 0.2, "{turla}");
    assert_ne!(turla["confidence_label"], "Highly Likely/Almost Certain");
}
