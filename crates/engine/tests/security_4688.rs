//! Security 4688 parity with Sysmon 1 for `process_creation` rules (issue
//! #20 item 10), and the padded `LogonProcessName` of Security logons.
//!
//! The 4688 route of `crates/sigma/data/windows-logsources.yml` renames
//! `Image`, `ParentImage`, `LogonId` and derives `IntegrityLevel` (from the
//! `MandatoryLabel` SID), `User` (`SubjectDomainName\SubjectUserName`) and
//! the hex process ids. Real corpora from `../shared/corpora`:
//! SigmaHQ/sigma (rules and `regression_data`, DRL 1.1),
//! sbousseaden/EVTX-ATTACK-SAMPLES (GPL-3.0) and the CC0 samples
//! (mdecrevoisier/EVTX-to-MITRE-Attack via Yamato-Security/hayabusa-sample-evtx).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tracehunt_engine::{compile, CompileOptions, Ruleset, Scanner};
use tracehunt_event::{Event, EventMeta, Value};

fn corpora() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().and_then(|e| e.to_str()) == Some(ext) {
            out.push(p);
        }
    }
}

/// SigmaHQ's rules, rules-emerging-threats and rules-threat-hunting.
fn sigma_rules() -> Ruleset {
    let sigma = corpora().join("sigma");
    let mut paths = Vec::new();
    for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        files(&sigma.join(d), "yml", &mut paths);
    }
    assert!(paths.len() > 3000, "SigmaHQ rules not found");
    let mut docs = Vec::new();
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        docs.extend(tracehunt_sigma::load_rules_bytes(&p.display().to_string(), &bytes).rules);
    }
    compile(docs, &CompileOptions::default()).0
}

/// One rule file of the SigmaHQ corpus.
fn sigma_rule(rel: &str) -> Ruleset {
    let p = corpora().join("sigma").join(rel);
    let bytes = std::fs::read(&p).unwrap();
    let loaded = tracehunt_sigma::load_rules_bytes(rel, &bytes);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let (rs, d) = compile(loaded.rules, &CompileOptions::default());
    assert!(d.is_empty(), "{d:?}");
    rs
}

fn events(p: &Path) -> Vec<Event> {
    tracehunt_readers::open(p)
        .unwrap()
        .filter_map(Result::ok)
        .collect()
}

/// Detections per rule id over `evs`.
fn hits(rs: &Ruleset, evs: &[Event]) -> BTreeMap<String, usize> {
    let mut sc = Scanner::new(rs);
    let mut out = Vec::new();
    let mut n = BTreeMap::new();
    for ev in evs {
        out.clear();
        sc.scan(ev, &mut out);
        for &r in &out {
            *n.entry(rs.rule(r).id.clone()).or_insert(0) += 1;
        }
    }
    n
}

/// Sysmon's integrity level name → the 4688 `MandatoryLabel` SID.
fn integrity_sid(name: &str) -> String {
    match name {
        "Low" | "AppContainer" => "S-1-16-4096",
        "Medium" => "S-1-16-8192",
        "High" => "S-1-16-12288",
        "System" => "S-1-16-16384",
        other => panic!("integrity level {other:?}"),
    }
    .into()
}

fn hex(v: &Value) -> Value {
    let n = v.as_i64().expect("a numeric process id");
    Value::Str(format!("{n:#x}"))
}

/// A Sysmon 1 event written the way Security 4688 writes it: the fields
/// 4688 names or encodes differently are renamed and re-encoded (the
/// integrity level as its SID, process ids in hex, `DOMAIN\user` split into
/// `SubjectDomainName`/`SubjectUserName`, `LogonId` as `SubjectLogonId`);
/// every other field is kept, so that any difference in what fires comes
/// from the mapping alone, not from what 4688 lacks (`OriginalFileName`,
/// `ParentCommandLine`, hashes…).
fn as_4688(ev: &Event) -> Event {
    let mut out = Event::with_meta(EventMeta {
        channel: Some("Security".into()),
        event_id: Some(4688),
        ..ev.meta.clone()
    });
    for (name, v) in ev.fields() {
        match name {
            "Channel" => out.push("Channel", Value::from("Security")),
            "EventID" => out.push("EventID", Value::Int(4688)),
            "Image" => out.push("NewProcessName", v.clone()),
            "ParentImage" => out.push("ParentProcessName", v.clone()),
            "ProcessId" => out.push("NewProcessId", hex(v)),
            // 4688's ProcessId is the creator's.
            "ParentProcessId" => out.push("ProcessId", hex(v)),
            "IntegrityLevel" => out.push(
                "MandatoryLabel",
                Value::Str(integrity_sid(v.as_str().unwrap())),
            ),
            "LogonId" => out.push("SubjectLogonId", v.clone()),
            "User" => {
                let u = v.as_str().unwrap();
                let (d, n) = u.split_once('\\').expect("DOMAIN\\user");
                out.push("SubjectDomainName", Value::from(d));
                out.push("SubjectUserName", Value::from(n));
            }
            _ => out.push(name, v.clone()),
        }
    }
    out
}

fn is_sysmon_1(ev: &Event) -> bool {
    ev.meta.event_id == Some(1)
        && ev
            .meta
            .channel
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("Microsoft-Windows-Sysmon/Operational"))
}

/// Detections of `process_creation` rules only (the rendered events also
/// meet the Security rules, which Sysmon events never do).
fn process_creation_only(rs: &Ruleset, h: BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    h.into_iter()
        .filter(|(id, _)| {
            let i = rs.find(id).unwrap();
            rs.rule(i).category.as_deref() == Some("process_creation")
        })
        .collect()
}

/// Every Sysmon 1 event of SigmaHQ's `process_creation` regression cases
/// and of EVTX-ATTACK-SAMPLES, rendered as Security 4688, fires the same
/// `process_creation` rules as the Sysmon original, as often — in
/// particular the rules that test `IntegrityLevel`, `User` or `LogonId`.
#[test]
fn sysmon_1_rendered_as_4688_fires_the_same_process_creation_rules() {
    let rs = sigma_rules();
    let mut paths = Vec::new();
    files(
        &corpora().join("sigma/regression_data/rules/windows/process_creation"),
        "evtx",
        &mut paths,
    );
    let cases = paths.len();
    files(&corpora().join("evtx-attack-samples"), "evtx", &mut paths);
    let sysmon: Vec<Event> = paths
        .iter()
        .flat_map(|p| events(p))
        .filter(is_sysmon_1)
        .collect();
    let rendered: Vec<Event> = sysmon.iter().map(as_4688).collect();
    assert_eq!(cases, 130);
    assert_eq!(sysmon.len(), 1000);

    let on_sysmon = process_creation_only(&rs, hits(&rs, &sysmon));
    let on_4688 = process_creation_only(&rs, hits(&rs, &rendered));
    let diff: Vec<_> = on_sysmon
        .keys()
        .chain(on_4688.keys())
        .filter(|id| on_sysmon.get(*id) != on_4688.get(*id))
        .map(|id| {
            let t = &rs.rule(rs.find(id).unwrap()).title;
            (t.clone(), on_sysmon.get(id), on_4688.get(id))
        })
        .collect();
    assert!(diff.is_empty(), "Sysmon 1 vs 4688: {diff:?}");
    assert_eq!(on_sysmon.values().sum::<usize>(), 811);
    assert_eq!(on_sysmon.len(), 294);

    // The detections of rules that test a derived or renamed field: (rules,
    // detections) per field named in the rule's detection.
    let mut by_field: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (id, n) in &on_4688 {
        let file = &rs.rule(rs.find(id).unwrap()).file;
        let text = std::fs::read_to_string(file).unwrap();
        let detection = &text[text.find("\ndetection:").unwrap()..];
        for f in ["IntegrityLevel", "User", "LogonId", "fieldref"] {
            let named = [format!(" {f}:"), format!(" {f}|"), format!("|{f}")];
            if named.iter().any(|n| detection.contains(n.as_str())) {
                let e = by_field.entry(f).or_default();
                e.0 += 1;
                e.1 += n;
            }
        }
    }
    let expect: BTreeMap<&str, (usize, usize)> = [
        ("IntegrityLevel", (10, 39)),
        ("LogonId", (3, 53)),
        ("User", (9, 104)),
        // `Image|fieldref: ParentImage`: the other field is renamed too.
        ("fieldref", (2, 39)),
    ]
    .into();
    assert_eq!(by_field, expect);
    let count = |id: &str| on_4688.get(id).copied().unwrap_or(0);
    // "Cross-User Process Spawn" (User), SigmaHQ's own regression case.
    assert_eq!(count("d2b7a134-9c3e-4f8a-b56d-e0c1f8a29b47"), 1);
    // "WmiPrvSE Spawned A Process" (LogonId, User filters).
    assert_eq!(count("d21374ff-f574-44a7-9998-4a8c8bf33d7d"), 11);
}

fn ev(channel: &str, eid: u32, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::with_meta(EventMeta {
        channel: Some(channel.into()),
        event_id: Some(eid),
        ..EventMeta::default()
    });
    e.push("EventID", Value::Int(i64::from(eid)));
    for (k, v) in fields {
        e.push(*k, Value::from(*v));
    }
    e
}

fn rules(yaml_detections: &[(&str, &str)]) -> Ruleset {
    let mut text = String::new();
    for (i, (ls, det)) in yaml_detections.iter().enumerate() {
        text.push_str(&format!(
            "title: r{i}\nid: 00000000-0000-4000-8000-{i:012}\nlogsource: {ls}\n\
             detection:\n{det}\nlevel: high\n---\n"
        ));
    }
    let loaded = tracehunt_sigma::load_rules("t.yml", &text);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let (rs, d) = compile(loaded.rules, &CompileOptions::default());
    assert!(d.is_empty(), "{d:?}");
    rs
}

fn fired(rs: &Ruleset, e: &Event) -> Vec<usize> {
    let mut out = Vec::new();
    Scanner::new(rs).scan(e, &mut out);
    out
}

const PC: &str = "{product: windows, category: process_creation}";

/// 4688's `MandatoryLabel` is a SID; rules write Sysmon's `IntegrityLevel`
/// names (and SigmaHQ adds the SID for 4688). Both match, with any case and
/// modifier, through the 4688 route only: a Sysmon event whose
/// `IntegrityLevel` is a SID is not taken for `High`, and a Security rule
/// naming `IntegrityLevel` does not see the derived value.
#[test]
fn integrity_level_matches_4688_mandatory_label() {
    let rs = rules(&[
        (PC, "  sel:\n    IntegrityLevel: high\n  condition: sel"),
        (PC, "  sel:\n    IntegrityLevel|contains: 'YST'\n  condition: sel"),
        (PC, "  sel:\n    IntegrityLevel: 'S-1-16-12288'\n  condition: sel"),
        (PC, "  sel:\n    IntegrityLevel: null\n  condition: sel"),
        (PC, "  sel:\n    IntegrityLevel|exists: true\n  condition: sel"),
        (
            "{product: windows, service: security}",
            "  sel:\n    IntegrityLevel: High\n  condition: sel",
        ),
        (
            PC,
            "  sel:\n    IntegrityLevel: [High, System]\n  filter:\n    IntegrityLevel: System\n  condition: sel and not filter",
        ),
    ]);
    let high = ev(
        "Security",
        4688,
        &[
            ("NewProcessName", "C:\\Windows\\System32\\conhost.exe"),
            ("MandatoryLabel", "S-1-16-12288"),
        ],
    );
    assert_eq!(fired(&rs, &high), vec![0, 2, 4, 6]);
    let system = ev("Security", 4688, &[("MandatoryLabel", "s-1-16-16384")]);
    assert_eq!(fired(&rs, &system), vec![1, 4]);
    // Before Windows 10 4688 has no MandatoryLabel: null, as on Sysmon.
    let old = ev("Security", 4688, &[("NewProcessName", "C:\\x.exe")]);
    assert_eq!(fired(&rs, &old), vec![3]);
    // Sysmon 1 is unchanged: names match, a SID is only a SID.
    let sysmon = "Microsoft-Windows-Sysmon/Operational";
    assert_eq!(
        fired(&rs, &ev(sysmon, 1, &[("IntegrityLevel", "High")])),
        vec![0, 4, 6]
    );
    assert_eq!(
        fired(&rs, &ev(sysmon, 1, &[("IntegrityLevel", "S-1-16-12288")])),
        vec![2, 4]
    );
    // An event field cannot pose as the derived (virtual) field.
    let forged = ev(
        "Security",
        4688,
        &[("\u{1}1:IntegrityLevel", "High"), ("MandatoryLabel", "-")],
    );
    assert_eq!(fired(&rs, &forged), vec![4]);

    // SigmaHQ's "Suspicious High IntegrityLevel Conhost Legacy Option" on
    // the WMIexec sample (CC0): its two 4688 conhost -ForceV1 events.
    let conhost =
        sigma_rule("rules/windows/process_creation/proc_creation_win_conhost_legacy_option.yml");
    let evs = events(&corpora().join(
        "samples-cc0/EVTX_full_APT_attack_steps/ID4688,5140,5145-WMIexec execution via SMB (GLOBAL).evtx",
    ));
    assert_eq!(
        hits(&conhost, &evs).get("3037d961-21e9-4732-b27a-637bcc7bf539"),
        Some(&2)
    );
}

/// `LogonId: null` was true on every 4688 (no such field), so the filter
/// of "WmiPrvSE Spawned A Process" dropped them all; `LogonId` is
/// `SubjectLogonId` there (pySigma's windows_audit_pipeline, Hayabusa).
#[test]
fn logon_id_null_filter_not_true_on_4688() {
    let rs = rules(&[
        (PC, "  sel:\n    LogonId: null\n  condition: sel"),
        (PC, "  sel:\n    LogonId: '0x3e4'\n  condition: sel"),
        (
            PC,
            "  sel:\n    User|endswith: '\\SRVDEFENDER01$'\n  condition: sel",
        ),
        (PC, "  sel:\n    User: 'OFFSEC\\admmig'\n  condition: sel"),
    ]);
    let e = ev(
        "Security",
        4688,
        &[
            ("SubjectDomainName", "OFFSEC"),
            ("SubjectUserName", "SRVDEFENDER01$"),
            ("SubjectLogonId", "0x3e4"),
        ],
    );
    assert_eq!(fired(&rs, &e), vec![1, 2]);
    // No Subject fields: LogonId and User are null, as on such a Sysmon event.
    assert_eq!(
        fired(&rs, &ev("Security", 4688, &[("NewProcessName", "a")])),
        vec![0]
    );

    let wmi = sigma_rule(
        "rules/windows/process_creation/proc_creation_win_wmiprvse_spawning_process.yml",
    );
    let id = "d21374ff-f574-44a7-9998-4a8c8bf33d7d";
    // WMIexec (CC0): two commands spawned by WmiPrvSE for admmig.
    let evs = events(&corpora().join(
        "samples-cc0/EVTX_full_APT_attack_steps/ID4688,5140,5145-WMIexec execution via SMB (GLOBAL).evtx",
    ));
    assert_eq!(hits(&wmi, &evs).get(id), Some(&2));
    // EVTX-ATTACK-SAMPLES: notepad started through WMI after an NTLM relay.
    let evs = events(&corpora().join(
        "evtx-attack-samples/Privilege Escalation/NTLM2SelfRelay-med0x2e-security_4624_4688.evtx",
    ));
    assert_eq!(hits(&wmi, &evs).get(id), Some(&1));
}

/// Windows pads `LogonProcessName` (`"NtLmSsp "`, `"Advapi  "`), so
/// `LogonProcessName: 'NtLmSsp'` of "Pass the Hash Activity 2" never
/// matched raw events. Only padded fields are trimmed: a command line's
/// trailing space stays.
#[test]
fn padded_logon_process_name_matches() {
    let sec = "{product: windows, service: security}";
    let rs = rules(&[
        (
            sec,
            "  sel:\n    LogonProcessName: 'NtLmSsp'\n  condition: sel",
        ),
        (
            sec,
            "  sel:\n    LogonProcessName|endswith: 'api'\n  condition: sel",
        ),
        (sec, "  sel:\n    CommandLine: 'whoami'\n  condition: sel"),
        (
            sec,
            "  sel:\n    CommandLine|endswith: 'whoami '\n  condition: sel",
        ),
    ]);
    let e = ev(
        "Security",
        4624,
        &[("LogonProcessName", "NtLmSsp "), ("CommandLine", "whoami ")],
    );
    assert_eq!(fired(&rs, &e), vec![0, 3]);
    let e = ev("Security", 4624, &[("LogonProcessName", "Advapi  ")]);
    assert_eq!(fired(&rs, &e), vec![1]);

    let pth = sigma_rule(
        "rules/windows/builtin/security/account_management/win_security_pass_the_hash_2.yml",
    );
    let id = "8eef149c-bd26-49f2-9e5a-9b00e3af499b";
    let mut paths = Vec::new();
    files(&corpora().join("evtx-attack-samples"), "evtx", &mut paths);
    let evs: Vec<Event> = paths.iter().flat_map(|p| events(p)).collect();
    // 4 logon type 9 `seclogo` + 2 NTLM network logons (privexchange,
    // local pass the hash), which only match once "NtLmSsp " is trimmed.
    assert_eq!(hits(&pth, &evs).get(id), Some(&6));
}

/// 4688 writes process ids in hex (`0x1a2b`), Sysmon in decimal; a rule's
/// decimal `ProcessId`/`ParentProcessId` matches either, and the hex text
/// still matches as written.
#[test]
fn hex_process_ids_of_4688_match_decimal_rule_values() {
    let rs = rules(&[
        (PC, "  sel:\n    ProcessId: 6699\n  condition: sel"),
        (PC, "  sel:\n    ParentProcessId: 4\n  condition: sel"),
        (PC, "  sel:\n    ProcessId: '0x1a2b'\n  condition: sel"),
    ]);
    let e = ev(
        "Security",
        4688,
        &[("NewProcessId", "0x1a2b"), ("ProcessId", "0x4")],
    );
    assert_eq!(fired(&rs, &e), vec![0, 1, 2]);
    let sysmon = ev(
        "Microsoft-Windows-Sysmon/Operational",
        1,
        &[("ProcessId", "6699"), ("ParentProcessId", "0x4")],
    );
    assert_eq!(fired(&rs, &sysmon), vec![0]);
}
