//! The machine outputs on real data (issue #19): the Timesketch CSV, the ECS
//! documents, the JSONL types, the STIX bundle and the Navigator layer of one
//! hunt of EVTX-ATTACK-SAMPLES (sbousseaden/EVTX-ATTACK-SAMPLES, GPL-3.0) with
//! the SigmaHQ rules (`rules`, `rules-emerging-threats`,
//! `rules-threat-hunting`; DRL 1.1), both read in place from
//! `../shared/corpora`. Without the corpora the tests say so on stderr and
//! return; checks through Python (`csv`, `stix2`) need `python3` (and
//! `pip install stix2`, done by `.ci/run`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Detections of the hunt (SigmaHQ `rules`, `rules-emerging-threats`,
/// `rules-threat-hunting` at 8eaafff1f over all of EVTX-ATTACK-SAMPLES): the
/// CSV rows and ECS documents. 1,253 from EVTX files, 28 from the Tomcat access
/// log `b_attack_and_isp_webshell_localhost_access_log.txt`.
const CSV_ROWS: u64 = 1281;
/// CSV messages over 400 characters (all of them were cut there before).
const OVER_400: u64 = 63;
/// The longest CSV message, whole.
const LONGEST_MESSAGE: u64 = 2762;
/// Detections from EVTX files (`winlog.*` in ECS); the rest are web log lines (`tracehunt.*`).
const ECS_WINDOWS: usize = 1253;
/// ECS documents whose rule has ATT&CK technique tags (`threat.technique.id`).
const ECS_WITH_TECHNIQUES: usize = 1212;
/// ATT&CK techniques observed: STIX attack patterns and scored Navigator entries.
const OBSERVED_TECHNIQUES: usize = 129;
const STIX_PATTERNS: usize = OBSERVED_TECHNIQUES;
const NAVIGATOR_OBSERVED: usize = OBSERVED_TECHNIQUES;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpora() -> Option<PathBuf> {
    let p = root().join("../shared/corpora");
    if p.join("sigma/rules").is_dir() && p.join("evtx-attack-samples").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared/corpora (SigmaHQ rules, EVTX-ATTACK-SAMPLES) not found");
        None
    }
}

/// `tracehunt hunt EVTX-ATTACK-SAMPLES -r <SigmaHQ> -q <extra>`: its stdout.
fn hunt(c: &Path, extra: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tracehunt"));
    cmd.current_dir(root())
        .arg("hunt")
        .arg(c.join("evtx-attack-samples"));
    for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        cmd.arg("--rules").arg(c.join("sigma").join(d));
    }
    let out = cmd.arg("-q").args(extra).output().expect("run tracehunt");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn python_has(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping the Python check: `python3 -c 'import {module}'` failed");
    }
    ok
}

/// Runs `script` with `python3`, the file as its argument; its stdout.
fn python(script: &str, file: &Path) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

/// Issue #19: the CSV cut `message` at about 400 characters (50 of 967 rows,
/// whole PowerShell launchers lost) and carried no event fields. Python's
/// `csv` module reads every row back with all columns, no message is cut
/// (every `CommandLine` / `ScriptBlockText` of the event is in it whole,
/// control characters as spaces) and `event_data` is one JSON object.
#[test]
fn csv_message_was_cut_at_400_characters() {
    let Some(c) = corpora() else { return };
    if !python_has("csv") {
        return;
    }
    let bytes = hunt(&c, &["--format", "csv"]);
    let (_d, path) = temp_file("hunt.csv", &bytes);
    let report = python(
        r#"
import csv, json, sys
csv.field_size_limit(1 << 30)
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
def safe(s):
    return "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" else c for c in s)
cut = 0
longest = max(rows, key=lambda r: len(r["message"]))
over400 = sum(1 for r in rows if len(r["message"]) > 400)
for r in rows:
    ev = json.loads(r["event_data"])
    assert isinstance(ev, dict), r["event_data"][:80]
    for k in ("CommandLine", "ScriptBlockText"):
        v = ev.get(k)
        if isinstance(v, str) and v and safe(v) not in r["message"]:
            cut += 1
print(json.dumps({"rows": len(rows), "columns": sorted({len(r) for r in rows}), "cut": cut,
                  "over400": over400, "longest": len(longest["message"]),
                  "longest_rule": longest["rule_title"],
                  "longest_whole": safe(json.loads(longest["event_data"]).get("ScriptBlockText") or json.loads(longest["event_data"]).get("CommandLine") or "") in longest["message"]}))
"#,
        &path,
    );
    let r: Value = serde_json::from_str(report.trim()).unwrap();
    eprintln!("{r}");
    assert_eq!(r["rows"], CSV_ROWS, "{r}");
    assert_eq!(r["columns"], serde_json::json!([14]), "{r}");
    assert_eq!(r["cut"], 0, "{r}");
    assert_eq!(r["over400"], OVER_400, "{r}");
    assert_eq!(r["longest"], LONGEST_MESSAGE, "{r}");
    assert_eq!(r["longest_whole"], true, "{r}");
}

/// The published type of each field `--format ecs` writes
/// (`fixtures/ecs-fields.tsv`: ECS 8.17 `ecs_flat.yml`, Winlogbeat, ours).
fn ecs_fields() -> BTreeMap<String, (String, bool)> {
    let text = std::fs::read_to_string(root().join("crates/cli/tests/fixtures/ecs-fields.tsv"))
        .expect("fixtures/ecs-fields.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_owned(), (c[1].to_owned(), c[2] == "array"))
        })
        .collect()
}

/// The JSON kind of a value as the test compares it.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a JSON value of `kind` fits an Elasticsearch field of `ty`.
fn fits(ty: &str, v: &Value) -> bool {
    match ty {
        "keyword" | "match_only_text" | "text" | "wildcard" => v.is_string(),
        "long" => v.is_i64() || v.is_u64(),
        "float" => v.is_number(),
        "date" => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z')),
        _ => false,
    }
}

/// Walks an ECS document: every leaf with its dotted path, checked against
/// `fields`; `types` collects each path's JSON kind.
fn walk(
    prefix: &str,
    v: &Value,
    fields: &BTreeMap<String, (String, bool)>,
    types: &mut BTreeMap<String, std::collections::BTreeSet<&'static str>>,
) {
    if let Some((ty, array)) = fields.get(prefix) {
        types.entry(prefix.to_owned()).or_default().insert(kind(v));
        if ty == "object" {
            // An object of keyword: string values only.
            let o = v
                .as_object()
                .unwrap_or_else(|| panic!("{prefix} not an object: {v}"));
            for (k, x) in o {
                assert!(x.is_string(), "{prefix}.{k} is {x}, not a keyword string");
            }
            return;
        }
        match v {
            Value::Array(a) => {
                assert!(array, "{prefix} is an array, ECS has it single: {v}");
                for x in a {
                    assert!(fits(ty, x), "{prefix}: {x} is no {ty}");
                }
            }
            x => {
                assert!(
                    !array,
                    "{prefix} is single, ECS normalises it to an array: {v}"
                );
                assert!(fits(ty, x), "{prefix}: {x} is no {ty}");
            }
        }
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&p, x, fields, types);
            }
        }
        _ => panic!("{prefix} = {v} is no field of ECS 8.17, Winlogbeat or tracehunt's"),
    }
}

/// Issue #19: JSONL is not ECS (`event` holds raw EventData where ECS reserves
/// `event.*`) and its types vary between documents. `--format ecs` writes one
/// document per detection whose every field is an ECS 8.17 (or Winlogbeat)
/// field of the published type, each with one JSON type in all documents.
#[test]
fn ecs_documents_have_the_published_field_types() {
    let Some(c) = corpora() else { return };
    let fields = ecs_fields();
    let text = String::from_utf8(hunt(&c, &["--format", "ecs"])).unwrap();
    let mut types = BTreeMap::new();
    let mut n = 0;
    let mut windows = 0;
    let mut with_threat = 0;
    for line in text.lines() {
        let doc: Value = serde_json::from_str(line).unwrap();
        walk("", &doc, &fields, &mut types);
        assert_eq!(doc["event"]["kind"], "alert");
        assert_eq!(doc["ecs"]["version"], "8.17.0");
        windows += usize::from(doc.get("winlog").is_some());
        assert_eq!(doc.get("winlog").is_some(), doc.get("tracehunt").is_none());
        with_threat += usize::from(doc["threat"]["technique"]["id"].is_array());
        n += 1;
    }
    for (p, k) in &types {
        assert_eq!(k.len(), 1, "{p} has types {k:?} across documents");
    }
    assert_eq!(
        n as u64, CSV_ROWS,
        "one document per detection, as the CSV rows"
    );
    assert_eq!(
        windows, ECS_WINDOWS,
        "every EVTX detection is a winlog event"
    );
    assert_eq!(with_threat, ECS_WITH_TECHNIQUES);
    for f in [
        "@timestamp",
        "host.name",
        "event.code",
        "event.provider",
        "winlog.record_id",
        "winlog.event_data",
        "rule.id",
        "threat.technique.id",
        "threat.tactic.id",
        "log.file.path",
        "tracehunt.event_data",
    ] {
        assert!(types.contains_key(f), "{f} never written");
    }
}

/// ATT&CK's own STIX ids by ATT&CK id (`T1059.001`, `G0009`), from the
/// corpus's Enterprise ATT&CK v18.1 bundle.
fn attack_stix_ids(c: &Path) -> BTreeMap<String, String> {
    attack_objects(c).0
}

/// ATT&CK's `(created, modified)` by STIX id, from the v18.1 bundle.
fn attack_versions(c: &Path) -> BTreeMap<String, (String, String)> {
    attack_objects(c).1
}

/// An object under ATT&CK's id must be ATT&CK's version of it: its created/modified,
/// MITRE's identity as author and ATT&CK's marking, not ours (a competing version of
/// ATT&CK's object in OpenCTI or MISP otherwise).
fn assert_attacks_version(o: &Value, versions: &BTreeMap<String, (String, String)>) {
    let id = o["id"].as_str().unwrap();
    let (created, modified) = versions
        .get(id)
        .unwrap_or_else(|| panic!("{id} not ATT&CK's"));
    assert_eq!(o["created"].as_str(), Some(created.as_str()), "{o}");
    assert_eq!(o["modified"].as_str(), Some(modified.as_str()), "{o}");
    assert_eq!(
        o["created_by_ref"],
        tracehunt_report::MITRE_IDENTITY_ID,
        "{o}"
    );
    assert_eq!(
        o["object_marking_refs"],
        serde_json::json!([tracehunt_report::ATTACK_MARKING_ID]),
        "{o}"
    );
}

type AttackObjects = (BTreeMap<String, String>, BTreeMap<String, (String, String)>);

fn attack_objects(c: &Path) -> AttackObjects {
    let text = std::fs::read_to_string(c.join("attack/enterprise-attack-18.1.json")).unwrap();
    let b: Value = serde_json::from_str(&text).unwrap();
    let mut m = BTreeMap::new();
    let mut v = BTreeMap::new();
    for o in b["objects"].as_array().unwrap() {
        let ty = o["type"].as_str().unwrap_or_default();
        if ty != "attack-pattern" && ty != "intrusion-set" {
            continue;
        }
        for r in o["external_references"].as_array().into_iter().flatten() {
            if r["source_name"] == "mitre-attack" {
                if let Some(id) = r["external_id"].as_str() {
                    m.insert(id.to_owned(), o["id"].as_str().unwrap().to_owned());
                }
            }
        }
        v.insert(
            o["id"].as_str().unwrap().to_owned(),
            (
                o["created"].as_str().unwrap().to_owned(),
                o["modified"].as_str().unwrap().to_owned(),
            ),
        );
    }
    (m, v)
}

/// Issue #19: STIX `created`/`modified`/`valid_from` were the last event's
/// time, attack patterns and intrusion sets had tracehunt's UUIDv5 ids (a
/// CTI platform made duplicates of ATT&CK's objects) and nothing carried a
/// TLP marking. Now: created when made, ATT&CK's ids, the chosen TLP 2.0
/// marking on every object; `stix2` still parses it with no custom content.
#[test]
fn stix_ids_were_not_attacks_own() {
    let Some(c) = corpora() else { return };
    let start = chrono::Utc::now() - chrono::Duration::seconds(2);
    let bytes = hunt(&c, &["--format", "stix", "--tlp", "amber+strict"]);
    let b: Value = serde_json::from_slice(&bytes).unwrap();
    let attack = attack_stix_ids(&c);
    let versions = attack_versions(&c);
    let amber_strict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003";
    let objects = b["objects"].as_array().unwrap();
    let mut patterns = 0;
    let mut sets = 0;
    for o in objects {
        let ty = o["type"].as_str().unwrap();
        if o["id"] == tracehunt_report::ATTACK_MARKING_ID
            || o["id"] == tracehunt_report::MITRE_IDENTITY_ID
        {
            continue;
        }
        if ty == "marking-definition" {
            assert_eq!(o["id"], amber_strict);
            assert_eq!(o["name"], "TLP:AMBER+STRICT");
            continue;
        }
        if ty == "attack-pattern" || ty == "intrusion-set" {
            let ext = o["external_references"][0]["external_id"].as_str().unwrap();
            assert_eq!(
                o["id"].as_str(),
                attack.get(ext).map(String::as_str),
                "{ext} is not under ATT&CK's id"
            );
            assert_attacks_version(o, &versions);
            patterns += usize::from(ty == "attack-pattern");
            sets += usize::from(ty == "intrusion-set");
            continue;
        }
        assert_eq!(
            o["object_marking_refs"],
            serde_json::json!([amber_strict]),
            "{o}"
        );
        let created = chrono::DateTime::parse_from_rfc3339(o["created"].as_str().unwrap()).unwrap();
        assert!(
            created >= start,
            "created {created} is not when the bundle was made"
        );
    }
    assert_eq!(patterns, STIX_PATTERNS, "attack patterns");
    assert!(sets >= 1, "at least the top candidate");
    // The campaign spans the data (EVTX-ATTACK-SAMPLES: 2017 to 2020), not the bundle time.
    let camp = objects.iter().find(|o| o["type"] == "campaign").unwrap();
    assert!(camp["first_seen"].as_str().unwrap() < "2020");
    if !python_has("stix2") {
        return;
    }
    let (_d, path) = temp_file("hunt.stix.json", &bytes);
    let n = python(
        "import sys, stix2\nb = stix2.parse(open(sys.argv[1]).read(), allow_custom=False)\nprint(len(b.objects))",
        &path,
    );
    assert_eq!(n.trim(), objects.len().to_string());
}

/// Relative luminance (WCAG 2) of `#rrggbb`.
fn luminance(hex: &str) -> f64 {
    let h = hex.trim_start_matches('#');
    let ch = |i: usize| {
        let c = f64::from(u8::from_str_radix(&h[i..i + 2], 16).unwrap()) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * ch(0) + 0.7152 * ch(2) + 0.0722 * ch(4)
}

/// Issue #19: with a white → red gradient over counts up to several hundred,
/// 62 of 117 observed techniques rendered almost white, and
/// `showSubtechniques` was set on sub-techniques (where Navigator ignores it).
/// Every observed technique now has a colour of luminance below 0.5 (white
/// is 1.0), and `showSubtechniques` is on the parents of the listed
/// sub-techniques only.
#[test]
fn navigator_observed_techniques_rendered_almost_white() {
    let Some(c) = corpora() else { return };
    let l: Value = serde_json::from_slice(&hunt(&c, &["--format", "navigator"])).unwrap();
    assert_eq!(l["versions"]["layer"], "4.5");
    let t = l["techniques"].as_array().unwrap();
    let observed: Vec<&Value> = t.iter().filter(|x| x["score"].as_u64() > Some(0)).collect();
    assert_eq!(observed.len(), NAVIGATOR_OBSERVED);
    for x in &observed {
        let col = x["color"]
            .as_str()
            .unwrap_or_else(|| panic!("no colour: {x}"));
        assert!(luminance(col) < 0.5, "{x}: luminance {}", luminance(col));
    }
    let ids: Vec<&str> = t
        .iter()
        .map(|x| x["techniqueID"].as_str().unwrap())
        .collect();
    for x in t {
        let id = x["techniqueID"].as_str().unwrap();
        let has_subs = ids.iter().any(|s| s.starts_with(&format!("{id}.")));
        assert_eq!(
            x["showSubtechniques"].as_bool().unwrap_or(false),
            has_subs,
            "{x}"
        );
    }
    assert!(t.iter().any(|x| x["showSubtechniques"] == true));
}

/// `tracehunt export stix --store`: intrusion sets under ATT&CK's STIX ids
/// and every object TLP-marked (`--tlp red`), as the hunt's bundle; `stix2`
/// parses it. The bundled samples (`samples/evtx`, CC0) fill the store.
#[test]
fn store_stix_export_uses_attacks_ids_and_tlp() {
    let Some(c) = corpora() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.db");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
            .current_dir(root())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let s = store.to_str().unwrap();
    run(&[
        "hunt",
        "samples/evtx",
        "--store",
        s,
        "-q",
        "-o",
        "/dev/null",
    ]);
    let bytes = run(&["export", "stix", "--store", s, "--tlp", "red"]);
    let b: Value = serde_json::from_slice(&bytes).unwrap();
    let attack = attack_stix_ids(&c);
    let versions = attack_versions(&c);
    let red = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1";
    let mut sets = 0;
    for o in b["objects"].as_array().unwrap() {
        if o["id"] == tracehunt_report::ATTACK_MARKING_ID
            || o["id"] == tracehunt_report::MITRE_IDENTITY_ID
        {
            continue;
        }
        if o["type"] == "marking-definition" {
            assert_eq!(o["id"], red);
            continue;
        }
        if o["type"] == "intrusion-set" {
            let ext = o["external_references"][0]["external_id"].as_str().unwrap();
            assert_eq!(
                o["id"].as_str(),
                attack.get(ext).map(String::as_str),
                "{ext}"
            );
            assert_attacks_version(o, &versions);
            sets += 1;
            continue;
        }
        assert_eq!(o["object_marking_refs"], serde_json::json!([red]), "{o}");
    }
    assert!(sets >= 1, "the store holds sighted groups");
    if python_has("stix2") {
        let (_d, path) = temp_file("store.stix.json", &bytes);
        python(
            "import sys, stix2\nstix2.parse(open(sys.argv[1]).read(), allow_custom=False)",
            &path,
        );
    }
}

/// `--tlp` with another format than STIX would be silently ignored (the
/// issue's trap list: `navigator -f csv` was): a usage error (exit 1) naming
/// the fix, before any work; a level that is no TLP is a usage error too.
#[test]
fn tlp_without_stix_is_a_usage_error() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tracehunt"))
            .current_dir(root())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "csv",
        "--tlp",
        "red",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--tlp red only applies to a STIX bundle: add --format stix"));
    let out = run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "stix",
        "--tlp",
        "orange",
    ]);
    assert_eq!(out.status.code(), Some(1), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is no TLP level"));
}

/// The JSONL rule (README, "Output formats"): `event` values keep the type
/// the log gives them, so a field has one JSON type per channel — the
/// issue's `event.ProcessId` "text in 48 docs, integer in 631" is Security's
/// hex `ProcessId` (`0x…`) beside Sysmon's UInt32, not a reader flipping
/// types. Repeated names (arrays) aside, no (channel, field) has two types.
#[test]
fn jsonl_event_field_types_are_stable_per_channel() {
    let Some(c) = corpora() else { return };
    let text = String::from_utf8(hunt(&c, &["--format", "jsonl"])).unwrap();
    let mut types: BTreeMap<(String, String), BTreeMap<&str, usize>> = BTreeMap::new();
    for line in text.lines() {
        let d: Value = serde_json::from_str(line).unwrap();
        let ch = d["channel"].as_str().unwrap_or_default().to_owned();
        for (k, v) in d["event"].as_object().unwrap() {
            if !v.is_array() {
                *types
                    .entry((ch.clone(), k.clone()))
                    .or_default()
                    .entry(kind(v))
                    .or_default() += 1;
            }
        }
    }
    for (k, t) in &types {
        assert_eq!(t.len(), 1, "{k:?}: {t:?}");
    }
    let pid = |ch: &str| types[&(ch.to_owned(), "ProcessId".to_owned())].clone();
    assert_eq!(
        pid("Microsoft-Windows-Sysmon/Operational"),
        BTreeMap::from([("integer", 799)])
    );
    assert_eq!(pid("Security"), BTreeMap::from([("string", 55)]));
}
