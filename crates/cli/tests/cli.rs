//! End-to-end tests of the `tracehunt` binary on real data: the bundled CC0
//! samples (`samples/evtx`, always present) and, when `../shared/corpora`
//! is there, the SigmaHQ rules, EVTX-ATTACK-SAMPLES and Mordor corpora.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracehunt"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpora() -> Option<PathBuf> {
    let p = root().join("../shared/corpora");
    p.join("sigma/rules").is_dir().then_some(p)
}

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(root())
        .output()
        .expect("run tracehunt")
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

fn sigma_rule_args(c: &Path) -> Vec<String> {
    ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .flat_map(|d| {
            [
                "--rules".to_owned(),
                c.join("sigma").join(d).display().to_string(),
            ]
        })
        .collect()
}

fn count_rule(dets: &[Value], id: &str) -> usize {
    dets.iter().filter(|d| d["rule_id"] == id).count()
}

#[test]
fn builtin_pack_on_bundled_samples_finds_the_known_attacks() {
    let v = json_of(&run(&["hunt", "samples/evtx", "--format", "json"]));
    let s = &v["summary"];
    assert_eq!(s["files"], 10);
    assert_eq!(s["events"], 248);
    assert_eq!(s["records_skipped"], 0);
    assert_eq!(s["rules_loaded"], 36);
    assert_eq!(s["rules_failed"], 0);
    assert_eq!(s["detections"], 161);
    assert_eq!(s["by_level"]["critical"], 1);
    assert_eq!(s["by_level"]["high"], 37);
    assert_eq!(s["by_level"]["medium"], 102);
    assert_eq!(s["by_level"]["low"], 21);
    let dets = v["detections"].as_array().unwrap();
    // rules/builtin/EXPECTED.md: Impacket output file on ADMIN$ (5145) 23×,
    // PsExec-like service (7045) once, Mimikatz once.
    let title_count = |t: &str| dets.iter().filter(|d| d["rule_title"] == t).count();
    assert_eq!(
        title_count("Impacket-Style Command Output File on ADMIN$ Share"),
        23
    );
    assert_eq!(
        title_count("PsExec-Like Remote Execution Service Installed"),
        1
    );
    assert_eq!(title_count("Mimikatz Execution"), 1);
    let psexec = dets
        .iter()
        .find(|d| d["rule_title"] == "PsExec-Like Remote Execution Service Installed")
        .unwrap();
    assert_eq!(psexec["event_id"], 7045);
    assert_eq!(psexec["computer"], "jump01.offsec.lan");
    assert_eq!(psexec["event"]["ServiceName"], "PSEXESVC");
    assert!(psexec["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "T1569.002"));
    // Detections are in time order.
    let ts: Vec<&str> = dets
        .iter()
        .map(|d| d["timestamp"].as_str().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    // Attribution ranks intrusion sets with evidence.
    let a = v["attribution"].as_array().unwrap();
    assert!(a.len() >= 5);
    assert!(a[0]["id"].as_str().unwrap().starts_with('G'));
    assert!(!a[0]["evidence"].as_array().unwrap().is_empty());
}

#[test]
fn table_output_shows_summary_and_attribution() {
    let out = run(&["hunt", "samples/evtx", "--format", "table"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Detections:        161 (critical 1, high 37, medium 102, low 21)"),
        "{text}"
    );
    assert!(text.contains("Events read:       248"));
    // The collection-wide attribution is labelled as the aggregate it is,
    // after the incidents (each attributed on its own).
    let inc = text
        .find("── Incidents (10 incidents, by severity)")
        .expect(&text);
    let agg = text
        .find("── Aggregate attribution of the whole collection (10 incidents;")
        .expect(&text);
    assert!(inc < agg);
    assert!(text.contains("Top hosts:"));
}

#[test]
fn jsonl_and_csv_wire_formats() {
    let out = run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "jsonl",
        "--min-level",
        "high",
    ]);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 38, "high 37 + critical 1");
    for l in &lines {
        for k in [
            "rule_id",
            "rule_title",
            "level",
            "timestamp",
            "computer",
            "channel",
            "event_id",
            "record_id",
            "source",
            "techniques",
        ] {
            assert!(l.get(k).is_some(), "missing {k}");
        }
        assert!(l["level"] == "high" || l["level"] == "critical");
        assert!(l["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let out = run(&["hunt", "samples/evtx", "--format", "csv"]);
    let mut rdr = csv::Reader::from_reader(&out.stdout[..]);
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(&headers[0], "datetime");
    assert_eq!(&headers[1], "timestamp_desc");
    assert_eq!(&headers[2], "message");
    let records: Vec<csv::StringRecord> = rdr.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), 161);
}

#[test]
fn time_window_filters_events() {
    let v = json_of(&run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "json",
        "--from",
        "2021-04-26",
        "--to",
        "2021-04-26 23:59:59",
    ]));
    let dets = v["detections"].as_array().unwrap();
    assert!(!dets.is_empty());
    assert!(dets
        .iter()
        .all(|d| d["timestamp"].as_str().unwrap().starts_with("2021-04-26")));
    assert!(v["summary"]["events_scanned"].as_u64().unwrap() < 248);
    // Regression (fresh-user finding): a date-only --to meant midnight, so
    // `--from D --to D` silently selected nothing; it is now all of day D.
    let same_day = json_of(&run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "json",
        "--from",
        "2021-04-26",
        "--to",
        "2021-04-26",
    ]));
    assert_eq!(same_day["detections"], v["detections"]);
    let bad = run(&["hunt", "samples/evtx", "--from", "yesterday"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn same_output_whatever_the_thread_count() {
    let one = run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "jsonl",
        "--threads",
        "1",
    ]);
    let two = run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "jsonl",
        "--threads",
        "2",
    ]);
    let four = run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "jsonl",
        "--threads",
        "4",
    ]);
    assert!(!one.stdout.is_empty());
    assert_eq!(one.stdout, two.stdout);
    assert_eq!(one.stdout, four.stdout);
    let Some(c) = corpora() else { return };
    let mut args = vec![
        "hunt".to_owned(),
        c.join("evtx-attack-samples").display().to_string(),
        "--format".into(),
        "jsonl".into(),
    ];
    args.extend(sigma_rule_args(&c));
    let a1: Vec<String> = args
        .iter()
        .cloned()
        .chain(["--threads".into(), "1".into()])
        .collect();
    let a2: Vec<String> = args
        .iter()
        .cloned()
        .chain(["--threads".into(), "2".into()])
        .collect();
    let o1 = bin().args(&a1).output().unwrap();
    let o2 = bin().args(&a2).output().unwrap();
    assert!(o1.stdout.len() > 100_000);
    assert!(o1.stdout == o2.stdout, "thread count changed the output");
    // Issue #4: the 1,281 detections' index cut into sorted runs of 97
    // entries per worker, runs and spill on disk: the same bytes.
    let o3 = bin()
        .args(&a2)
        .env("TRACEHUNT_INDEX_RUN", "97")
        .env("TRACEHUNT_SPILL_MEM", "0")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o3.stdout).lines().count(), 1281);
    assert!(o1.stdout == o3.stdout, "index runs changed the output");
}

/// Issue #4: one big JSON-lines file was read by one thread. Now it is cut
/// into line ranges (`TRACEHUNT_JSONL_RANGE_BYTES` makes them small here:
/// 1,000,003 bytes, so the size marks fall mid-line) read in parallel; the
/// output (detections, and on stderr the lost-record note naming the
/// damaged line) is byte-identical for 1, 2 and 4 threads and to reading
/// the file unsplit. Data: the 11 Mordor credential_access files (LF and
/// CRLF) concatenated, with one damaged line inserted.
#[test]
fn one_big_jsonl_file_split_into_ranges_gives_the_same_output() {
    let Some(c) = corpora() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut files, _) = tracehunt_readers::walk(&[c.join("mordor/windows/credential_access")]);
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    assert_eq!(files.len(), 11);
    let (mut data, mut damaged_line) = (Vec::new(), 0);
    for (i, f) in files.iter().enumerate() {
        data.extend(std::fs::read(f).unwrap());
        if i == 4 {
            data.extend_from_slice(b"{\"EventID\": 1, \"Channel\": \"cut\n");
            damaged_line = data.iter().filter(|b| **b == b'\n').count();
        }
    }
    let big = dir.path().join("mordor.jsonl");
    std::fs::write(&big, &data).unwrap();
    let hunt = |threads: &str, range: &str| -> (Vec<u8>, String) {
        let mut args = vec![
            "hunt".to_owned(),
            big.display().to_string(),
            "--format".into(),
            "jsonl".into(),
            "--threads".into(),
            threads.into(),
        ];
        args.extend(sigma_rule_args(&c));
        let o = bin()
            .args(&args)
            .env("TRACEHUNT_JSONL_RANGE_BYTES", range)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8(o.stderr).unwrap();
        // Everything but the run time at the end of the summary line (the
        // rule counts follow it on their own line).
        let err: Vec<String> = err
            .lines()
            .map(|l| match l.rsplit_once(", ") {
                Some((a, t)) if t.ends_with(" s") => a.to_owned(),
                _ => l.to_owned(),
            })
            .collect();
        (o.stdout, err.join("\n"))
    };
    let unsplit = hunt("1", "1000000000000");
    let n = unsplit.0.iter().filter(|b| **b == b'\n').count();
    assert!(n > 150, "{n} detections"); // 187 when written
    assert!(
        unsplit.1.contains(&format!(
            "1 record lost in {} (first: line {damaged_line}: invalid JSON",
            big.display()
        )),
        "{}",
        unsplit.1
    );
    for threads in ["1", "2", "4"] {
        let split = hunt(threads, "1000003");
        assert!(
            split.0 == unsplit.0,
            "--threads {threads}: detections differ"
        );
        assert_eq!(split.1, unsplit.1, "--threads {threads}");
    }
}

#[test]
fn non_log_files_are_skipped_and_nothing_readable_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello, not a log\n").unwrap();
    let only = run(&["hunt", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(only.status.code(), Some(2));
    let evtx = root().join("samples/evtx/TA0008-Lateral Movement/T1021.002-SMB Windows Admin Shares/ID4648-5140-5145-net use.evtx");
    let found = std::fs::read_dir(evtx.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "evtx"))
        .unwrap();
    std::fs::copy(&found, dir.path().join("a.evtx")).unwrap();
    let v = json_of(&run(&[
        "hunt",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(v["summary"]["files"], 1);
    let skipped = v["summary"]["files_skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("notes.txt"));
    assert!(skipped[0]["reason"]
        .as_str()
        .unwrap()
        .contains("not a supported log format"));
}

#[test]
fn a_bad_rule_is_reported_with_its_line_and_the_rest_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "title: Bad\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID|bogus: 4624\n  condition: sel\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.yml"),
        "title: Share access\nid: 5d0f3b76-0e4c-4f0c-9a86-1d0f4f59c1a1\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID: 5140\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    let rd = dir.path().to_str().unwrap();
    let out = run(&["rules", "check", rd, "--format", "json"]);
    assert_eq!(out.status.code(), Some(3), "some rule failed: exit 3");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rules_loaded"], 1);
    assert_eq!(v["rules_failed"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "TH003");
    assert_eq!(d["line"], 5);
    assert!(d["file"].as_str().unwrap().ends_with("bad.yml"));
    let v = json_of(&run(&[
        "hunt",
        "samples/evtx",
        "--rules",
        rd,
        "--format",
        "json",
    ]));
    assert_eq!(v["summary"]["rules_failed"], 1);
    assert!(v["summary"]["detections"].as_u64().unwrap() > 0);
}

#[test]
fn attribute_ranks_deep_panda_first_for_its_techniques() {
    let v = json_of(&run(&[
        "attribute",
        "--techniques",
        "T1018,T1021.002,T1027.005,T1047,T1057,T1059.001,T1218.010,T1505.003,T1546.008,T1564.003",
        "--format",
        "json",
    ]));
    assert_eq!(v["attribution"][0]["id"], "G0009");
    assert_eq!(v["attribution"][0]["name"], "Deep Panda");
    assert_eq!(v["attribution_verdict"]["confident"], true);
    let v = json_of(&run(&[
        "attribute",
        "--techniques",
        "T1059.001,T1105,T1082,T1083,T1057",
        "--format",
        "json",
    ]));
    assert_eq!(v["attribution_verdict"]["confident"], false);
    assert!(v["attribution_verdict"]["reason"]
        .as_str()
        .unwrap()
        .contains("no confident attribution"));
}

#[test]
fn usage_errors_exit_1() {
    assert_eq!(run(&["hunt"]).status.code(), Some(1));
    assert_eq!(run(&["no-such-command"]).status.code(), Some(1));
    assert_eq!(
        run(&["hunt", "samples/evtx", "--rules", "/nonexistent/rules"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(run(&["--help"]).status.code(), Some(0));
}

#[test]
fn sigmahq_rules_check_loads_at_least_99_percent() {
    let Some(c) = corpora() else { return };
    let mut args = vec![
        "rules".to_owned(),
        "check".into(),
        "--format".into(),
        "json".into(),
    ];
    for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        args.push(c.join("sigma").join(d).display().to_string());
    }
    let v = json_of(&bin().args(&args).output().unwrap());
    let loaded = v["rules_loaded"].as_u64().unwrap();
    let failed = v["rules_failed"].as_u64().unwrap();
    assert_eq!(loaded, 3754);
    assert_eq!(failed, 0);
    // Every rule that is loaded but never runs says why (TH010 per rule).
    assert_eq!(
        v["diagnostics_by_code"]["TH010"].as_u64().unwrap(),
        v["rules_skipped_by_reason"]["logsource_not_mapped"]
            .as_u64()
            .unwrap()
    );
    // Issue #21: the Linux, cloud, Zeek and web rules run too; what stays
    // TH010 has no reader (macOS, proxy, opencanary, rpc_firewall, cisco…).
    assert_eq!(v["rules_active"], 3452);
    assert_eq!(v["rules_skipped"], 302);
}

#[test]
fn sigmahq_rules_over_evtx_attack_samples_and_mordor() {
    let Some(c) = corpora() else { return };
    let mut args = vec![
        "hunt".to_owned(),
        c.join("evtx-attack-samples").display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(sigma_rule_args(&c));
    let v = json_of(&bin().args(&args).output().unwrap());
    let s = &v["summary"];
    // 7,455 EVTX records, plus (issue #21) the corpus's IIS W3C log
    // (`Tunna_rdp_tunnel_IIS.log`) and Apache access log
    // (`web_attack_and_isp_webshell_localhost_access_log.txt`): 6,959 lines.
    assert_eq!(s["files"], 271);
    assert_eq!(s["events"], 14414);
    assert_eq!(s["records_skipped"], 0);
    assert_eq!(
        s["files_skipped"].as_array().unwrap().len(),
        7,
        "pcap, etl, netlogon txt, md, licence"
    );
    // 1,253 on the EVTX files + 14 web server rule hits on the access log
    // (10 path traversal, medium; 4 cross-site scripting, high). Issue #20
    // item 10 added 4 (checked one by one): "Pass the Hash Activity 2" +2
    // (padded "NtLmSsp " logons, privexchange and local pass the hash),
    // "WmiPrvSE Spawned A Process" +1 (4688 notepad via WMI, NTLM2SelfRelay:
    // LogonId is SubjectLogonId), "Potential Executable Run Itself As
    // Sacrificial Process" +1 (4688 lsass.exe from lsass.exe, malseclogon:
    // the fieldref's ParentImage is ParentProcessName).
    // Issue #21 fresh-user finding: a rule's `cs-uri-query` reads the whole
    // request target (`cs-uri`): "Path Traversal Exploitation Attempts" +14
    // on the Apache log (traversals in the path, checked one by one).
    assert_eq!(s["detections"], 1281);
    assert_eq!(s["by_level"]["critical"], 12);
    assert_eq!(s["by_level"]["high"], 457);
    let dets = v["detections"].as_array().unwrap();
    // Credential dumping in the corpus: SigmaHQ's LSASS rules fire on it.
    assert_eq!(
        count_rule(dets, "5ef9853e-4d0e-4a70-846f-a9ca37d876da"),
        16,
        "Potential Credential Dumping Activity Via LSASS"
    );
    assert_eq!(
        count_rule(dets, "9bd012ee-0dff-44d7-84a0-aa698cfd87a3"),
        7,
        "LSASS Memory Access by Tool With Dump Keyword In Name"
    );
    assert_eq!(
        s["top_rules"][0]["id"],
        "a1a144b7-5c9b-4853-a559-2172be8d4a03"
    );
    assert_eq!(s["top_rules"][0]["count"], 93);

    let mut args = vec![
        "hunt".to_owned(),
        c.join("mordor/windows").display().to_string(),
        "--format".into(),
        "json".into(),
    ];
    args.extend(sigma_rule_args(&c));
    let v = json_of(&bin().args(&args).output().unwrap());
    let s = &v["summary"];
    assert_eq!(s["files"], 54);
    assert_eq!(s["events"], 48241);
    assert_eq!(s["records_skipped"], 0);
    // Issue #20 item 10: +12 "Suspicious High IntegrityLevel Conhost Legacy
    // Option" (4688 MandatoryLabel S-1-16-12288, conhost -ForceV1) and +2
    // "WmiPrvSE Spawned A Process" (4688, Covenant WMI / WSMan).
    assert_eq!(s["detections"], 758);
}

/// Breaker finding 10: `--format json` differed between runs (attribution
/// scores summed in hash-map order). Only `elapsed_ms` may differ.
#[test]
fn json_output_is_identical_across_runs_and_thread_counts() {
    let strip = |o: Output| -> String {
        assert!(o.status.success());
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("\"elapsed_ms\""))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let a = strip(run(&[
        "hunt",
        "samples/evtx",
        "--format",
        "json",
        "--threads",
        "1",
    ]));
    for t in ["1", "2", "2"] {
        let b = strip(run(&[
            "hunt",
            "samples/evtx",
            "--format",
            "json",
            "--threads",
            t,
        ]));
        assert!(a == b, "json output changed between runs (threads {t})");
    }
    let v = json_of(&run(&["hunt", "samples/evtx", "--format", "json"]));
    assert!(v["attribution"][0]["confidence"].as_u64().is_some());
}

/// Breaker findings 6, 9, 12 and the closed-pipe case.
#[test]
fn machine_formats_report_skips_on_stderr_and_bad_config_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a log\n").unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["hunt", "samples/evtx", d, "--format", "jsonl"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped") && err.contains("notes.txt"),
        "{err}"
    );
    // Every rule failing is a configuration error, with the reasons shown.
    std::fs::write(dir.path().join("bad.yml"), "title: x\ndetection: [\n").unwrap();
    let out = run(&["hunt", "samples/evtx", "--rules", d, "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TH001") && err.contains("bad.yml"), "{err}");
    assert!(err.contains("no usable rule"), "{err}");
    assert_eq!(
        run(&["hunt", "samples/evtx", "--threads", "100000"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(&["attribute", "--techniques", ""]).status.code(),
        Some(1)
    );
    assert_eq!(
        run(&["rules", "check", "--format", "csv"]).status.code(),
        Some(1)
    );
}

/// Two base rules and two correlations over the bundled samples: a
/// `generate: false` count of logons per user (its base rule is never
/// output) and a `generate: true` burst of process creations per host.
const CORRELATION_RULES: &str = r#"title: Any logon
id: 11111111-1111-4111-8111-111111111111
name: any_logon
status: test
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4624
    condition: selection
level: informational
---
title: Any process creation
id: 22222222-2222-4222-8222-222222222222
name: any_process
status: test
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '.exe'
    condition: selection
level: low
tags:
    - attack.execution
    - attack.t1059
---
title: Many logons per user
id: 33333333-3333-4333-8333-333333333333
status: test
correlation:
    type: event_count
    rules:
        - any_logon
    group-by:
        - TargetUserName
    timespan: 1h
    condition:
        gte: 2
level: high
---
title: Process bursts per host
id: 44444444-4444-4444-8444-444444444444
status: test
correlation:
    type: event_count
    rules:
        - any_process
    group-by:
        - Computer
    timespan: 10m
    condition:
        gte: 3
    generate: true
level: medium
"#;

/// Issue #4: detections leave the workers as rendered bytes; correlations
/// run over the in-memory hits of the rules they reference and are merged
/// back into the time-sorted stream, then `--min-level` applies. The output
/// with `--min-level X` must be exactly the full output's lines at level X
/// or above, in the same order, for any thread count and with the spill in
/// memory or on disk (`TRACEHUNT_SPILL_MEM=0`). Counts pinned from the
/// release before the spill.
#[test]
fn correlation_with_min_level_is_the_filtered_full_output() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("corr.yml");
    std::fs::write(&rules, CORRELATION_RULES).unwrap();
    let rules = rules.to_str().unwrap();
    let hunt = |format: &str, min: &str, threads: &str, disk: bool| -> Vec<u8> {
        let mut c = bin();
        c.args([
            "hunt",
            "samples/evtx",
            "-r",
            rules,
            "--format",
            format,
            "--min-level",
            min,
            "--threads",
            threads,
            "-q",
        ])
        .current_dir(root());
        if disk {
            // Spill and index on disk, the index cut into runs of 2 entries.
            c.env("TRACEHUNT_SPILL_MEM", "0");
            c.env("TRACEHUNT_INDEX_RUN", "2");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let rank = |l: &str| {
        ["informational", "low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == l)
            .unwrap()
    };
    let full = String::from_utf8(hunt("jsonl", "informational", "1", false)).unwrap();
    let dets: Vec<Value> = full
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let titles = |t: &str| dets.iter().filter(|d| d["rule_title"] == t).count();
    assert_eq!(titles("Any logon"), 0, "generate: false base rule output");
    assert_eq!(titles("Any process creation"), 24);
    assert_eq!(titles("Process bursts per host"), 6);
    assert_eq!(titles("Many logons per user"), 2);
    // Time order, correlation hits included.
    let times: Vec<&str> = dets
        .iter()
        .filter_map(|d| d["timestamp"].as_str())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    for (min, expect) in [("low", 32), ("medium", 8), ("high", 2)] {
        let want: String = full
            .lines()
            .zip(&dets)
            .filter(|(_, d)| rank(d["level"].as_str().unwrap()) >= rank(min))
            .map(|(l, _)| format!("{l}\n"))
            .collect();
        assert_eq!(want.lines().count(), expect);
        for (threads, disk) in [("1", false), ("2", true), ("4", false), ("4", true)] {
            let got = hunt("jsonl", min, threads, disk);
            assert!(
                got == want.as_bytes(),
                "--min-level {min} --threads {threads} (spill on disk: {disk}) differs"
            );
        }
        // The table's last summary line is the wall time; STIX objects are
        // `created`/`modified` when the bundle is made (issue #19).
        let timeless = |b: Vec<u8>| -> String {
            String::from_utf8(b)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("Elapsed:") && !stix_made_at(l))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for format in ["csv", "table", "stix", "navigator"] {
            let a = timeless(hunt(format, min, "1", false));
            assert!(!a.is_empty());
            assert!(
                a == timeless(hunt(format, min, "2", true)),
                "--format {format} --min-level {min}: threads/spill changed the output"
            );
        }
    }
}

/// A pretty-printed STIX line holding when the bundle was made (`created`,
/// `modified`: the current time since issue #19).
fn stix_made_at(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("\"created\": ") || l.starts_with("\"modified\": ")
}

/// Issue #4 (flat memory): the index of detections is sorted externally —
/// workers write sorted runs of a bounded number of entries, the main thread
/// merges them. Where the runs are cut must never show: with the index cut
/// into runs of 1, 3 or 50 entries per worker (`TRACEHUNT_INDEX_RUN`) and
/// the runs and spill on disk (`TRACEHUNT_SPILL_MEM=0`), every format is
/// byte-identical to the default (one in-memory run per worker) for 1, 2
/// and 4 threads — with correlation rules too (detections kept whole,
/// correlation hits merged in).
#[test]
fn index_cut_into_many_runs_gives_byte_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let corr = dir.path().join("corr.yml");
    std::fs::write(&corr, CORRELATION_RULES).unwrap();
    let builtin = root().join("rules/builtin");
    let hunt = |rules: &[&Path], format: &str, threads: &str, run: Option<&str>| -> String {
        let mut c = bin();
        c.args([
            "hunt",
            "samples/evtx",
            "--format",
            format,
            "--threads",
            threads,
            "-q",
        ]);
        for r in rules {
            c.arg("-r").arg(r);
        }
        c.current_dir(root());
        if let Some(n) = run {
            c.env("TRACEHUNT_INDEX_RUN", n);
            c.env("TRACEHUNT_SPILL_MEM", "0");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Only the wall time may differ (and when a STIX bundle was made).
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .filter(|l| {
                !l.starts_with("Elapsed:") && !l.contains("\"elapsed_ms\"") && !stix_made_at(l)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for rules in [
        vec![builtin.as_path()],
        vec![builtin.as_path(), corr.as_path()],
    ] {
        for format in ["jsonl", "json", "csv", "table", "stix", "navigator"] {
            let want = hunt(&rules, format, "1", None);
            assert!(want.len() > 1000, "{format}: {want}");
            for threads in ["1", "2", "4"] {
                for run in [None, Some("1"), Some("3"), Some("50")] {
                    if run.is_none() && threads == "1" {
                        continue;
                    }
                    assert!(
                        hunt(&rules, format, threads, run) == want,
                        "--format {format} --threads {threads}, index runs of {run:?} entries, \
                         {} rule sets: output differs",
                        rules.len()
                    );
                }
            }
        }
    }
    // The jsonl output really has the detections (the built-in pack's 59).
    let jsonl = hunt(&[builtin.as_path()], "jsonl", "2", Some("1"));
    assert_eq!(jsonl.lines().count(), 161);
}

/// Without a usable temporary directory the detection spill and the
/// index's sorted runs stay in memory: same output, a note on stderr, exit 0.
#[test]
fn no_temporary_directory_keeps_the_spill_in_memory() {
    let args = [
        "hunt",
        "samples/evtx",
        "--format",
        "jsonl",
        "--threads",
        "2",
    ];
    let normal = run(&args);
    let o = bin()
        .args(args)
        .current_dir(root())
        .env("TMPDIR", "/nonexistent/tracehunt-test")
        // The index's sorted runs too (runs of 4 entries: many of them).
        .env("TRACEHUNT_INDEX_RUN", "4")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(o.stdout, normal.stdout);
    if cfg!(unix) {
        assert!(String::from_utf8_lossy(&o.stderr).contains("no temporary file"));
    }
}

/// Regression (issue #6): a byte-for-byte copy of an EVTX chunk was reported
/// as "1 record(s) lost" and counted in `records_skipped`, though every record
/// had been read from the first copy. Now: same events and detections as the
/// original file, `records_skipped` 0, `duplicate_chunks_skipped` 1.
#[test]
fn duplicate_evtx_chunk_is_not_reported_as_lost_records() {
    let src = root().join(
        "samples/evtx/TA0008-Lateral Movement/T1021.002-SMB Windows Admin Shares/ID4688-4648 Lateral movement with net use.evtx",
    );
    let bytes = std::fs::read(&src).unwrap();
    assert!(bytes.len() >= 4096 + 65536, "sample has a whole chunk");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("dup.evtx");
    let mut b = bytes.clone();
    b.extend_from_slice(&bytes[4096..4096 + 65536]);
    std::fs::write(&copy, &b).unwrap();
    let one = |p: &Path| {
        json_of(&run(&[
            "hunt",
            p.to_str().unwrap(),
            "--format",
            "json",
            "--threads",
            "1",
        ]))
    };
    let (orig, dup) = (one(&src), one(&copy));
    let s = &dup["summary"];
    assert_eq!(s["events"], orig["summary"]["events"]);
    assert!(s["events"].as_u64().unwrap() > 0);
    assert_eq!(s["detections"], orig["summary"]["detections"]);
    assert_eq!(s["records_skipped"], 0);
    assert_eq!(s["duplicate_chunks_skipped"], 1);
    assert_eq!(s["files_with_record_errors"].as_array().unwrap().len(), 0);
    assert!(orig["summary"].get("duplicate_chunks_skipped").is_none());
}

/// Regression (issue #6, fresh-user trial): 0xff bytes in the zeroed,
/// unused chunk slot after the last used chunk of an EVTX file were counted
/// as "1 record lost" though all records were read; a file cut inside its
/// last chunk counted 2 lost records instead of the 16 - recovered that
/// chunk's header lists. Now: 0 skipped + `damaged_unused_chunks_skipped` 1;
/// recovered + skipped = 97 for the cut file.
#[test]
fn evtx_unused_chunk_garbage_loses_nothing_and_cut_counts_every_lost_record() {
    let src = root().join(
        "samples/evtx/EVTX_full_APT_attack_steps/ID4688-5140-5145-WMIexec execution via SMB (GLOBAL).evtx",
    );
    let bytes = std::fs::read(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let slot2 = 4096 + 2 * 65536;
    let mut garbage = bytes.clone();
    garbage[slot2 + 100..slot2 + 150].fill(0xff);
    let g = dir.path().join("garbage.evtx");
    std::fs::write(&g, &garbage).unwrap();
    let cut = dir.path().join("cut.evtx");
    std::fs::write(&cut, &bytes[..4096 + 65536 + 2000]).unwrap();
    let one = |p: &Path| {
        json_of(&run(&[
            "hunt",
            p.to_str().unwrap(),
            "--format",
            "json",
            "--threads",
            "1",
        ]))
    };
    let s = &one(&g)["summary"];
    assert_eq!(s["events"], 97);
    assert_eq!(s["records_skipped"], 0);
    assert_eq!(s["damaged_unused_chunks_skipped"], 1);
    assert_eq!(s["files_with_record_errors"].as_array().unwrap().len(), 0);
    // Left from session 3: the note gave only a total, not the file.
    assert_eq!(
        s["files_with_damaged_unused_chunks"],
        serde_json::json!([{"path": g.display().to_string(), "chunks": 1}])
    );
    let s = &one(&cut)["summary"];
    assert!(s.get("files_with_damaged_unused_chunks").is_none(), "{s}");
    let events = s["events"].as_u64().unwrap();
    assert!((81..97).contains(&events), "{s}");
    assert_eq!(s["records_skipped"].as_u64().unwrap(), 97 - events, "{s}");
    let by_reason: u64 = s["records_skipped_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_reason, 97 - events, "{s}");
    assert_eq!(s["files_with_record_errors"][0]["records"], 97 - events);
}

/// Last session's fresh-user trial: `rules check` exited 0 although a rule
/// failed to load. Now 3 (documented), 0 when every rule loads; `hunt`
/// with the same folder still runs on the rules that loaded and exits 0.
#[test]
fn rules_check_exits_3_when_a_rule_failed_and_hunt_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yml"),
        "title: Share access\nid: 5d0f3b76-0e4c-4f0c-9a86-1d0f4f59c1a1\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID: 5140\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    let rd = dir.path().to_str().unwrap();
    let out = run(&["rules", "check", rd]);
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(
        dir.path().join("bad.yml"),
        "title: Bad\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID|bogus: 4624\n  condition: sel\n",
    )
    .unwrap();
    let out = run(&["rules", "check", rd]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("2 files, rules: 1 loaded, 1 active, 0 skipped, 1 failed"),
        "{text}"
    );
    let out = run(&["hunt", "samples/evtx", "--rules", rd, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["detections"], 19);
}

/// Last session's fresh-user trial: `hunt` called the active rules
/// "loaded", so its `rules_loaded` differed from what `rules check`
/// reported as loaded. Both now say loaded / active / skipped (by reason) /
/// failed with the same numbers; `--min-level` moves rules from active to
/// skipped in the hunt only.
#[test]
fn hunt_and_rules_check_report_the_same_rule_counts() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |title: &str, product: &str, level: &str| {
        format!(
            "title: {title}\nlogsource: {{product: {product}, service: security}}\ndetection:\n  sel:\n    EventID: 5140\n  condition: sel\nlevel: {level}\n"
        )
    };
    std::fs::write(dir.path().join("a.yml"), rule("A", "windows", "low")).unwrap();
    // The same document again (no `id:`): parsed, then dropped as a duplicate (TH013);
    // a different rule with the same title would be kept.
    std::fs::write(dir.path().join("a2.yml"), rule("A", "windows", "low")).unwrap();
    std::fs::write(dir.path().join("b.yml"), rule("B", "windows", "high")).unwrap();
    std::fs::write(dir.path().join("l.yml"), rule("L", "linux", "high")).unwrap();
    std::fs::write(dir.path().join("x.yml"), "title: X\ndetection: [\n").unwrap();
    let rd = dir.path().to_str().unwrap();
    let check = run(&["rules", "check", rd, "--format", "json"]);
    assert_eq!(check.status.code(), Some(3));
    let c: Value = serde_json::from_slice(&check.stdout).unwrap();
    let hunt = json_of(&run(&[
        "hunt",
        "samples/evtx",
        "-r",
        rd,
        "--format",
        "json",
    ]));
    let h = &hunt["summary"];
    for k in [
        "rules_loaded",
        "rules_active",
        "rules_skipped",
        "rules_failed",
    ] {
        assert_eq!(c[k], h[k], "{k}");
    }
    assert_eq!(
        (
            &c["rules_loaded"],
            &c["rules_active"],
            &c["rules_skipped"],
            &c["rules_failed"]
        ),
        (
            &Value::from(4),
            &Value::from(2),
            &Value::from(2),
            &Value::from(1)
        )
    );
    assert_eq!(h["rules_skipped_by_reason"]["logsource_not_mapped"], 1);
    assert_eq!(h["rules_skipped_by_reason"]["duplicate_id"], 1);
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-r",
        rd,
        "--format",
        "table",
        "--min-level",
        "medium",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "Rules:             4 loaded, 1 active, 3 skipped (1 below --min-level, 1 duplicate id, 1 logsource not mapped), 1 failed"
        ),
        "{text}"
    );
}

/// Last session's fresh-user trial: `attribute --software Mimikatz` answered
/// "Unknown technique ids". Software is accepted by id, name or alias,
/// case-insensitively, also without `--techniques`; an unknown one is named
/// as unknown software (ignored, or exit 1 when nothing else is left).
#[test]
fn attribute_accepts_software_by_name_and_says_unknown_software() {
    for name in ["Mimikatz", "mimikatz", "S0002", "s0002"] {
        let v = json_of(&run(&["attribute", "--software", name, "--format", "json"]));
        assert_eq!(v["observed"][0]["id"], "S0002", "{name}");
        assert_eq!(v["observed"][0]["name"], "Mimikatz", "{name}");
        assert_eq!(
            v["attribution_verdict"]["unresolved_techniques"],
            serde_json::json!([])
        );
    }
    let out = run(&[
        "attribute",
        "--techniques",
        "T1003",
        "--software",
        "Mimikatz,NoSuchTool",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("Unknown technique ids"), "{text}");
    assert!(
        text.contains(
            "Unknown software (ignored; not an ATT&CK software id, name or alias): NoSuchTool"
        ),
        "{text}"
    );
    assert!(
        text.contains("S0002 Mimikatz (software, used by 51 groups; exact)"),
        "{text}"
    );
    let out = run(&["attribute", "--software", "NoSuchTool"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown software: NoSuchTool"));
}

/// Breaker finding: `attribute --techniques T9999` (no id known) exited 0
/// with an empty ranking, while `--software NoSuchTool` exited 1. Now both
/// are errors naming what is unknown; a known id next to it still runs.
#[test]
fn attribute_with_only_unknown_technique_ids_exits_1() {
    let out = run(&["attribute", "--techniques", "T9999,attack.t0000"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown technique ids: T9999"), "{err}");
    let out = run(&[
        "attribute",
        "--techniques",
        "T9999",
        "--software",
        "NoSuchTool",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown software: NoSuchTool"));
    let out = run(&["attribute", "--techniques", "T9999,T1059.001"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unknown technique ids (ignored): T9999"));
}

/// Last session's fresh-user trial: the attribution table's evidence line named only the
/// first rule when two rules showed the technique. It now lists up to three, then "and N
/// more"; counts are singular/plural as they should be ("1 event", "3 events").
#[test]
fn attribution_evidence_names_every_rule_that_showed_the_technique() {
    let out = run(&["hunt", "samples/evtx", "--format", "table"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "T1546.003 Windows Management Instrumentation Event Subscription (used by 14 groups; exact) ← WMI Command or Script Event Consumer Created; WMI Event Filter Registered [3 events]"
        ),
        "{text}"
    );
    assert!(text.contains("← Mimikatz Execution [1 event]"), "{text}");
    assert!(!text.contains("[1 events]"), "{text}");
    // Four rules tagged with the same technique: three named, "and 1 more".
    let dir = tempfile::tempdir().unwrap();
    for t in ["Share A", "Share B", "Share C", "Share D"] {
        std::fs::write(
            dir.path().join(format!("{}.yml", t.replace(' ', "_"))),
            format!("title: {t}\nlogsource: {{product: windows, service: security}}\ndetection:\n  sel:\n    EventID: 5140\n  condition: sel\nlevel: low\ntags:\n  - attack.t1021.002\n"),
        )
        .unwrap();
    }
    let out = run(&[
        "hunt",
        "samples/evtx",
        "-r",
        dir.path().to_str().unwrap(),
        "--format",
        "table",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("← Share A; Share B; Share C; and 1 more ["),
        "{text}"
    );
}

/// Last session's fresh-user trial: `hunt --overlay G0009` without `--format navigator` was
/// silently ignored. Now a usage error (exit 1) that says what to add; with the Navigator
/// format (or the `navigator` command) it still works.
#[test]
fn overlay_without_navigator_format_is_a_usage_error() {
    for args in [
        &["hunt", "samples/evtx", "--overlay", "G0009"][..],
        &[
            "hunt",
            "samples/evtx",
            "--overlay",
            "G0009",
            "--format",
            "json",
        ],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "--overlay G0009 only applies to an ATT&CK Navigator layer: add --format navigator"
            ),
            "{err}"
        );
    }
    for args in [
        &[
            "hunt",
            "samples/evtx",
            "--overlay",
            "G0009",
            "--format",
            "navigator",
            "-q",
        ][..],
        &["navigator", "samples/evtx", "--overlay", "G0009", "-q"],
    ] {
        let v = json_of(&run(args));
        assert!(v["techniques"].as_array().unwrap().len() > 10, "{args:?}");
    }
}

/// Last session's fresh-user trial: host names were cut at 20 characters without an
/// ellipsis in the table ("srvdefender01.offsec" looked like a whole name). Issue #19: the
/// host column takes what the width allows: the whole name at 120 columns, cut with an
/// ellipsis at 80.
#[test]
fn long_host_names_are_cut_with_an_ellipsis_in_the_table() {
    let table = |cols: &str| {
        let out = bin()
            .args(["hunt", "samples/evtx", "--format", "table"])
            .current_dir(root())
            .env("COLUMNS", cols)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let text = table("120");
    assert!(
        text.contains("2021-04-26 08:25:31 high srvdefender01.offsec.lan 1102     Security Event Log Cleared ¦ SubjectUserName: admmig\n"),
        "{text}"
    );
    let text = table("80");
    assert!(
        text.contains(
            "2021-04-26 08:25:31 high srvdefender0… 1102     Security Event Log Cleared ¦ Su…\n"
        ),
        "{text}"
    );
    // The summary's top hosts keep the whole name.
    assert!(text.contains("srvdefender01.offsec.lan"));
}

/// Last session's fresh-user trial: "1 entries" and similar plurals in user-facing output.
/// One event in one file with one detection reads in the singular.
#[test]
fn counts_of_one_read_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("one.jsonl");
    std::fs::write(
        &log,
        "{\"EventID\": 5140, \"Channel\": \"Security\", \"Hostname\": \"ws1\", \"@timestamp\": \"2024-01-02T03:04:05Z\"}\n",
    )
    .unwrap();
    let rules = dir.path().join("r");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("share.yml"),
        "title: Share access\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID: 5140\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    let (log, rules) = (log.to_str().unwrap(), rules.to_str().unwrap());
    let out = run(&["hunt", log, "-r", rules, "--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "tracehunt: 1 event in 1 file (0 files skipped, 0 records skipped), 1 detection, "
        ),
        "{err}"
    );
    let out = run(&[
        "hunt",
        log,
        "-r",
        rules,
        "--format",
        "table",
        "--max-rows",
        "0",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("… 1 more detection (--max-rows N"), "{text}");
    let out = run(&["rules", "check", rules]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1 file, rules: 1 loaded, 1 active"), "{text}");
}

/// Issue #20 item 6: rules without an `id` were de-duplicated by title, so
/// a second, different rule with the same title was dropped as a duplicate
/// (TH013) and its 7 detections on the samples were lost. Both rules run
/// now (19 + 7 detections, under distinct rule ids); a copy of the same
/// document in another file is still skipped as a duplicate.
#[test]
fn rules_without_id_sharing_a_title_both_fire_on_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |eids: &str| {
        format!(
            "title: Security activity\nlogsource: {{product: windows, service: security}}\ndetection:\n  sel:\n    EventID: {eids}\n  condition: sel\nlevel: low\n"
        )
    };
    std::fs::write(dir.path().join("a.yml"), rule("5140")).unwrap();
    std::fs::write(dir.path().join("b.yml"), rule("[4624, 1102]")).unwrap();
    std::fs::write(dir.path().join("c.yml"), rule("5140")).unwrap();
    let rd = dir.path().to_str().unwrap();
    let v = json_of(&run(&[
        "hunt",
        "samples/evtx",
        "-r",
        rd,
        "--format",
        "json",
    ]));
    let s = &v["summary"];
    assert_eq!(s["detections"], 26);
    assert_eq!(s["rules_loaded"], 3);
    assert_eq!(s["rules_active"], 2);
    assert_eq!(s["rules_skipped_by_reason"]["duplicate_id"], 1);
    let dets = v["detections"].as_array().unwrap();
    assert_eq!(count_rule(dets, "Security activity"), 19);
    let b_id = format!(
        "Security activity ({}:1)",
        dir.path().join("b.yml").display()
    );
    assert_eq!(count_rule(dets, &b_id), 7, "{:?}", s["top_rules"]);
}

/// A JSON-lines log (Mordor flat shape) in a temporary directory, and a
/// rule folder with one rule firing on `whoami`.
fn whoami_jsonl(lines: &[String]) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("whoami.yml"),
        "title: Whoami\nid: 00000000-0000-4000-8000-0000000020a9\nlogsource: {product: windows}\ndetection:\n  sel:\n    CommandLine|contains: whoami\n  condition: sel\nlevel: high\n",
    )
    .unwrap();
    let (log, rules) = (log.display().to_string(), rules.display().to_string());
    (dir, log, rules)
}

/// Issue #20 item 9: with `--from`/`--to`, events without a time dropped
/// out of the window silently. They are still not scanned (a window cannot
/// place them) but counted: `time_window.events_without_time` in JSON, a
/// line in the table summary and on stderr with a machine format.
#[test]
fn events_without_a_time_are_counted_when_a_time_window_is_given() {
    let ev = |cmd: &str, ts: Option<&str>| {
        let ts = ts.map_or(String::new(), |t| format!(", \"@timestamp\": \"{t}\""));
        format!("{{\"EventID\": 4688, \"Channel\": \"Security\", \"CommandLine\": \"{cmd}\"{ts}}}")
    };
    let (_dir, log, rules) = whoami_jsonl(&[
        ev("whoami", Some("2021-01-01T10:00:00Z")),
        ev("whoami", Some("2021-02-01T10:00:00Z")),
        ev("whoami", None),
        ev("dir", None),
    ]);
    let window = ["--from", "2021-01-01", "--to", "2021-01-01"];
    let mut args = vec!["hunt", &log, "-r", &rules, "--format", "json"];
    args.extend(window);
    let s = &json_of(&run(&args))["summary"];
    assert_eq!((&s["events"], &s["events_scanned"]), (&4.into(), &1.into()));
    assert_eq!(s["detections"], 1);
    assert_eq!(s["time_window"]["events_without_time"], 2);
    // Without a window every event is scanned, and no window is reported.
    let s = &json_of(&run(&["hunt", &log, "-r", &rules, "--format", "json"]))["summary"];
    assert_eq!(
        (&s["events_scanned"], &s["detections"]),
        (&4.into(), &3.into())
    );
    assert!(s.get("time_window").is_none());
    let mut args = vec!["hunt", &log, "-r", &rules, "--format", "table"];
    args.extend(window);
    let text = String::from_utf8(run(&args).stdout).unwrap();
    assert!(
        text.contains("  - 2 events without a time left out of the window (not scanned)\n"),
        "{text}"
    );
    let mut args = vec!["hunt", &log, "-r", &rules, "--format", "jsonl"];
    args.extend(window);
    let err = String::from_utf8(run(&args).stderr).unwrap();
    assert!(
        err.contains("tracehunt: 2 events without a time left out of the window (not scanned)\n"),
        "{err}"
    );
}

/// Issue #20 item 9: `-v` named only the first lost record of each file
/// (the README says losses are reported per record). With `-v` every loss
/// is listed under its file's line, in file order, the same for any
/// thread count and however the file is cut into ranges; past 10,000 the
/// rest are counted. Without `-v`, one line per file as before.
#[test]
fn verbose_lists_every_record_loss_not_only_the_first() {
    let good = |i: usize| {
        format!("{{\"EventID\": 4688, \"Channel\": \"Security\", \"CommandLine\": \"whoami {i}\"}}")
    };
    // Line 1 good, then 25,000 damaged lines (every third line good).
    let mut lines = vec![good(0)];
    let mut bad_lines = Vec::new();
    for i in 1..=37_500 {
        if i % 3 == 0 {
            lines.push(good(i));
        } else {
            lines.push(format!("{{\"EventID\": {i}, \"Channel\": }}"));
            bad_lines.push(lines.len());
        }
    }
    assert_eq!(bad_lines.len(), 25_000);
    let (_dir, log, rules) = whoami_jsonl(&lines);
    let hunt = |threads: &str, range: &str, verbose: bool| {
        let mut args = vec![
            "hunt", &log, "-r", &rules, "--format", "jsonl", "-t", threads,
        ];
        if verbose {
            args.push("-v");
        }
        let o = bin()
            .args(&args)
            .env("TRACEHUNT_JSONL_RANGE_BYTES", range)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.stdout.iter().filter(|b| **b == b'\n').count(), 12_501);
        String::from_utf8(o.stderr).unwrap()
    };
    let plain = hunt("1", "1000000000", false);
    let file_line = format!("tracehunt: 25000 records lost in {log} (first: line 2: invalid JSON");
    assert!(plain.contains(&file_line), "{plain}");
    assert!(!plain.contains("tracehunt:   - "), "{plain}");
    let verbose = hunt("1", "1000000000", true);
    let listed: Vec<&str> = verbose
        .lines()
        .filter_map(|l| l.strip_prefix("tracehunt:   - "))
        .collect();
    assert_eq!(listed.len(), 10_000);
    for (l, n) in listed.iter().zip(&bad_lines) {
        assert!(l.starts_with(&format!("line {n}: invalid JSON")), "{l}");
        assert!(l.ends_with(" (1 record)"), "{l}");
    }
    assert!(verbose.contains(&file_line), "{verbose}");
    assert!(
        verbose.contains("tracehunt:   … 15000 more losses not listed (the first 10000 are)\n"),
        "{verbose}"
    );
    // The same list when the file is read in 64 KiB ranges by 1 and 3 threads.
    let without_time = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.ends_with(" s"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for threads in ["1", "3"] {
        assert_eq!(
            without_time(&hunt(threads, "65536", true)),
            without_time(&verbose),
            "--threads {threads}"
        );
    }
}

/// Issue #20 item 9: `--threads 0` was accepted although the help says
/// 1–1024 (0 is not documented as "all cores": leaving the flag out is).
#[test]
fn threads_zero_is_rejected_as_the_help_says() {
    let out = run(&["hunt", "samples/evtx", "--threads", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--threads") && err.contains("1..=1024"),
        "{err}"
    );
    let help = String::from_utf8(run(&["hunt", "--help"]).stdout).unwrap();
    assert!(
        help.contains("Worker threads, 1–1024 (default: all cores)"),
        "{help}"
    );
    let v = json_of(&run(&[
        "hunt",
        "samples/evtx",
        "--threads",
        "1",
        "--format",
        "json",
    ]));
    assert_eq!(v["summary"]["files"], 10);
}

/// Issue #20 item 9: a file whose `ElfFile` signature, or a chunk whose
/// `ElfChnk` signature, was damaged was read past with no word of it. The
/// repairs lose nothing (the same 97 events and detections as the intact
/// file, no record skipped) and are reported: `evtx_signatures_repaired`
/// and `files_with_repaired_signatures` in JSON, one line per file in the
/// table and on stderr.
#[test]
fn repaired_evtx_signatures_are_reported() {
    let src = root().join(
        "samples/evtx/EVTX_full_APT_attack_steps/ID4688-5140-5145-WMIexec execution via SMB (GLOBAL).evtx",
    );
    let mut bytes = std::fs::read(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let intact = dir.path().join("intact.evtx");
    std::fs::write(&intact, &bytes).unwrap();
    bytes[0] ^= 0x41; // ElfFile -> ...
    bytes[4096 + 65536] ^= 0x10; // chunk 1: ElfChnk -> UlfChnk
    let damaged = dir.path().join("damaged.evtx");
    std::fs::write(&damaged, &bytes).unwrap();
    let hunt = |p: &Path, format: &str| run(&["hunt", p.to_str().unwrap(), "--format", format]);
    let a = json_of(&hunt(&intact, "json"));
    let v = json_of(&hunt(&damaged, "json"));
    let s = &v["summary"];
    assert_eq!(
        (&s["events"], &s["records_skipped"]),
        (&97.into(), &0.into())
    );
    assert_eq!(s["detections"], a["summary"]["detections"]);
    assert!(a["summary"].get("evtx_signatures_repaired").is_none());
    assert_eq!(s["evtx_signatures_repaired"], 2);
    let files = s["files_with_repaired_signatures"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["path"], damaged.display().to_string());
    assert_eq!(files[0]["signatures"], 2);
    let first = "file header: the file signature is damaged (not `ElfFile\\0`): the file was recognised by its first chunk's signature and read; nothing is lost by that";
    assert_eq!(files[0]["first"], first);
    let line = format!(
        "2 damaged EVTX signatures repaired in {} (first: {first})",
        damaged.display()
    );
    let err = String::from_utf8(hunt(&damaged, "jsonl").stderr).unwrap();
    assert!(err.contains(&format!("tracehunt: {line}\n")), "{err}");
    let text = String::from_utf8(hunt(&damaged, "table").stdout).unwrap();
    assert!(text.contains(&format!("  - {line}\n")), "{text}");
}

/// Issue #21 review: `rules check` printed its per-product counts only when
/// rules of two groups were loaded, and mixed categories and a bare `-` in
/// with the products. Now: always one line per kind, products apart from
/// rules without a product (by category, by service, correlation rules),
/// and the JSON `rules_by_product` keys as before plus `rules_without_product`.
#[test]
fn rules_check_counts_rules_by_product_and_labels_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |name: &str, logsource: &str, extra: &str| {
        std::fs::write(
            dir.path().join(name),
            format!("title: {name}\nlogsource: {logsource}\ndetection:\n  sel:\n    x: y\n  condition: sel\nlevel: low\n{extra}"),
        )
        .unwrap();
    };
    rule(
        "a_windows.yml",
        "{product: windows, service: security}",
        "name: win_rule\n",
    );
    rule("b_web.yml", "{category: webserver}", "");
    rule("c_apache.yml", "{service: apache}", "");
    rule(
        "d_macos.yml",
        "{product: macos, category: process_creation}",
        "",
    );
    std::fs::write(
        dir.path().join("e_corr.yml"),
        "title: Repeated\ncorrelation:\n  type: event_count\n  rules: [win_rule]\n  group-by: [Computer]\n  timespan: 5m\n  condition: {gte: 3}\nlevel: high\n",
    )
    .unwrap();
    let rd = dir.path().to_str().unwrap();
    let out = run(&["rules", "check", rd]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\nrules by Sigma product, active/loaded (active: its logsource maps to a log type tracehunt reads; the others get TH010): macos 0/1, windows 1/1\n"),
        "{text}"
    );
    assert!(
        text.contains("\nrules without a Sigma product, active/loaded: category webserver 1/1, service apache 0/1, correlation rules 1/1\n"),
        "{text}"
    );
    let v = json_of(&run(&["rules", "check", "-r", rd, "--format", "json"]));
    assert_eq!(v["rules_loaded"], 5);
    assert_eq!(
        v["rules_by_product"],
        serde_json::json!({
            "-": {"loaded": 2, "active": 1},
            "macos": {"loaded": 1, "active": 0},
            "webserver": {"loaded": 1, "active": 1},
            "windows": {"loaded": 1, "active": 1},
        })
    );
    assert_eq!(
        v["rules_without_product"],
        serde_json::json!({
            "by_category": {"webserver": {"loaded": 1, "active": 1}},
            "by_service": {"apache": {"loaded": 1, "active": 0}},
            "correlation_rules": {"loaded": 1, "active": 1},
            "no_logsource": {"loaded": 0, "active": 0},
        })
    );

    // One product only (the built-in pack: Windows) still gets its line.
    let out = run(&["rules", "check"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("reads; the others get TH010): windows 36/36\n"),
        "{text}"
    );
    assert!(!text.contains("without a Sigma product"), "{text}");
}

/// The same on SigmaHQ's folders (corpus): `rules/linux` alone, and the
/// three folders the README measures.
#[test]
fn sigmahq_rules_check_by_product() {
    let Some(c) = corpora() else { return };
    let sigma = c.join("sigma");
    let linux = sigma.join("rules/linux");
    let out = run(&["rules", "check", "-r", linux.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("the others get TH010): linux 210/210\n"),
        "{text}"
    );
    assert!(!text.contains("without a Sigma product"), "{text}");

    let mut args = vec!["rules".to_owned(), "check".into()];
    for d in ["rules", "rules-threat-hunting", "rules-emerging-threats"] {
        args.push("-r".into());
        args.push(sigma.join(d).display().to_string());
    }
    let out = bin().args(&args).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("3754 files, rules: 3754 loaded, 3452 active, 302 skipped (302 logsource not mapped), 0 failed"),
        "{text}"
    );
    assert!(
        text.contains("\nrules without a Sigma product, active/loaded: category antivirus 9/9, category database 0/1, category dns 11/11, category firewall 0/2, category proxy 0/56, category webserver 86/86, service apache 0/2, service nginx 0/1\n"),
        "{text}"
    );
    for p in [
        "linux 248/248",
        "macos 0/75",
        "windows 2843/2858",
        "zeek 24/24",
    ] {
        assert!(
            text.contains(&format!(" {p},")) || text.contains(&format!(" {p}\n")),
            "{p}: {text}"
        );
    }
    args.extend(["--format".into(), "json".into()]);
    let v = json_of(&bin().args(&args).output().unwrap());
    assert_eq!(
        v["rules_by_product"]["-"],
        serde_json::json!({"loaded": 3, "active": 0})
    );
    assert_eq!(
        v["rules_by_product"]["dns"],
        serde_json::json!({"loaded": 11, "active": 11})
    );
    assert_eq!(
        v["rules_by_product"]["windows"],
        serde_json::json!({"loaded": 2858, "active": 2843})
    );
    assert_eq!(
        v["rules_without_product"]["by_service"],
        serde_json::json!({"apache": {"loaded": 2, "active": 0}, "nginx": {"loaded": 1, "active": 0}})
    );
}

/// Regression (breaker finding): two copies of one ATT&CK release under two version names
/// gave a forward evaluation of 0 cases, printed as a table of `-0.0 %` figures with exit 0.
/// It is now an error naming the split and saying where the version comes from.
#[test]
fn forward_eval_of_one_release_twice_is_an_error_not_zeros() {
    let Some(c) = corpora() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bundle = c.join("attack/enterprise-attack-18.1.json");
    for v in ["17.1", "18.1"] {
        std::os::unix::fs::symlink(
            &bundle,
            dir.path().join(format!("enterprise-attack-{v}.json")),
        )
        .unwrap();
    }
    let out = run(&[
        "eval",
        "attribution",
        "--forward",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no forward cases between v17.1 and v18.1")
            && err.contains("enterprise-attack-<version>.json"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
