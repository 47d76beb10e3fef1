//! Differential test of the literal prefilter (route-scoped field automata
//! and the keyword automaton run once over all values joined with NUL):
//! for every event, `Scanner::scan` must give exactly the rules that a
//! scanner without the prefilter (`CompileOptions::no_prefilter`, every
//! candidate rule evaluated) gives. Real corpora from `../shared/corpora`
//! (skipped when absent), then hostile hand-made cases.

use std::path::{Path, PathBuf};
use tracehunt_engine::{compile, CompileOptions, Ruleset, Scanner};
use tracehunt_event::{Event, EventMeta, Value};

fn corpora() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn files(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ext.contains(&e))
        {
            out.push(p);
        }
    }
}

/// The SigmaHQ rules, compiled twice: with and without the prefilter.
fn sigma_pair(dirs: &[PathBuf]) -> (Ruleset, Ruleset) {
    let mut paths = Vec::new();
    for d in dirs {
        files(d, &["yml", "yaml"], &mut paths);
    }
    let mut docs = Vec::new();
    for p in &paths {
        let bytes = std::fs::read(p).unwrap();
        docs.extend(tracehunt_sigma::load_rules_bytes(&p.display().to_string(), &bytes).rules);
    }
    let fast = compile(docs.clone(), &CompileOptions::default()).0;
    let slow = compile(
        docs,
        &CompileOptions {
            no_prefilter: true,
            ..CompileOptions::default()
        },
    )
    .0;
    (fast, slow)
}

/// Scans `events` with both rulesets; returns the number of events and
/// of detections, panicking at the first event where they differ.
fn compare(
    fast: &Ruleset,
    slow: &Ruleset,
    events: impl IntoIterator<Item = (String, Event)>,
) -> (u64, u64) {
    let (mut a, mut b) = (Scanner::new(fast), Scanner::new(slow));
    let (mut oa, mut ob) = (Vec::new(), Vec::new());
    let (mut n, mut hits) = (0u64, 0u64);
    for (at, ev) in events {
        oa.clear();
        ob.clear();
        a.scan(&ev, &mut oa);
        b.scan(&ev, &mut ob);
        if oa != ob {
            let title = |r: &usize| slow.rule(*r).title.clone();
            let missed: Vec<_> = ob.iter().filter(|r| !oa.contains(r)).map(title).collect();
            let extra: Vec<_> = oa.iter().filter(|r| !ob.contains(r)).map(title).collect();
            panic!("{at}: prefilter missed {missed:?}, added {extra:?}; event {ev:?}");
        }
        n += 1;
        hits += oa.len() as u64;
    }
    (n, hits)
}

fn log_events(paths: &[PathBuf]) -> impl Iterator<Item = (String, Event)> + '_ {
    paths.iter().flat_map(|p| {
        let name = p.display().to_string();
        tracehunt_readers::open(p)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(move |(i, r)| r.ok().map(|e| (format!("{name} #{i}"), e)))
    })
}

/// Every SigmaHQ rule set against every event of the EVTX attack samples,
/// the Mordor JSON and SigmaHQ's regression EVTX: the prefilter never
/// changes a detection.
#[test]
fn prefilter_matches_unfiltered_evaluation_on_real_corpora() {
    let root = corpora();
    let sigma = root.join("sigma");
    if !sigma.is_dir() {
        eprintln!("skipped: {} absent", sigma.display());
        return;
    }
    let dirs: Vec<PathBuf> = std::fs::read_dir(&sigma)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rules"))
        })
        .collect();
    let (fast, slow) = sigma_pair(&dirs);
    assert!(fast.len() > 3000, "{} rules", fast.len());
    let mut logs = Vec::new();
    files(&root.join("evtx-attack-samples"), &["evtx"], &mut logs);
    files(&root.join("mordor"), &["json"], &mut logs);
    // The events SigmaHQ ships to show each rule firing.
    files(&sigma.join("regression_data"), &["evtx"], &mut logs);
    let (events, hits) = compare(&fast, &slow, log_events(&logs));
    eprintln!("{events} events, {hits} detections, identical");
    assert!(events > 50_000, "{events}");
    assert!(hits > 1000, "{hits}");
}

/// `ev` with its header EventID set to `meta` and every `EventID` field
/// replaced by `field` (dropped when `None`).
fn with_event_id(ev: &Event, meta: Option<u32>, field: Option<Value>) -> Event {
    let mut m = ev.meta.clone();
    m.event_id = meta;
    let mut out = Event::with_meta(m);
    for (k, v) in ev.fields() {
        if k.eq_ignore_ascii_case("eventid") {
            if let Some(f) = &field {
                out.push(k, f.clone());
            }
        } else {
            out.push(k, v.clone());
        }
    }
    out
}

/// EventID routing (rules pinned to EventIDs by their detection are left
/// out of other EventIDs' candidates) against every SigmaHQ rule over the
/// EVTX attack samples, each event also with its EventID written in every
/// way a log might state it: as text, padded, zero-led, as a float, with
/// a header EventID that disagrees with the field, without the field.
/// Detections never differ from evaluating every rule of the logsource.
#[test]
fn event_id_routing_matches_unfiltered_evaluation_on_restated_event_ids() {
    let root = corpora();
    let sigma = root.join("sigma");
    if !sigma.is_dir() {
        eprintln!("skipped: {} absent", sigma.display());
        return;
    }
    let (fast, slow) = sigma_pair(&[sigma.join("rules")]);
    let mut logs = Vec::new();
    files(&root.join("evtx-attack-samples"), &["evtx"], &mut logs);
    let variants = log_events(&logs).flat_map(|(at, ev)| {
        let e = ev.meta.event_id.unwrap_or(0);
        let restated = [
            (Some(e), Some(Value::from(e.to_string()))),
            (Some(e), Some(Value::from(format!(" {e}")))),
            (Some(e), Some(Value::from(format!("0{e}")))),
            (Some(e), Some(Value::Float(f64::from(e)))),
            (Some(e + 1), Some(Value::Int(i64::from(e)))),
            (Some(4624), Some(Value::Int(i64::from(e)))),
            (None, Some(Value::Int(i64::from(e)))),
            (Some(e), None),
        ];
        restated
            .into_iter()
            .enumerate()
            .map(move |(i, (m, f))| (format!("{at} variant {i}"), with_event_id(&ev, m, f)))
    });
    let (events, hits) = compare(&fast, &slow, variants);
    eprintln!("{events} restated events, {hits} detections, identical");
    assert!(events > 50_000, "{events}");
    assert!(hits > 5_000, "{hits}");
}

fn ruleset_pair(rules: &str) -> (Ruleset, Ruleset) {
    let f = tracehunt_sigma::load_rules("t.yml", rules);
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    let (fast, d) = compile(f.rules.clone(), &CompileOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let slow = compile(
        f.rules,
        &CompileOptions {
            no_prefilter: true,
            ..CompileOptions::default()
        },
    )
    .0;
    (fast, slow)
}

fn sysmon1(fields: &[(&str, &str)]) -> Event {
    let mut ev = Event::with_meta(EventMeta {
        channel: Some("Microsoft-Windows-Sysmon/Operational".into()),
        event_id: Some(1),
        ..EventMeta::default()
    });
    ev.push("EventID", Value::Int(1));
    for (k, v) in fields {
        ev.push(*k, Value::from(*v));
    }
    ev
}

fn rule(n: usize, detection: &str) -> String {
    format!(
        "title: R{n}\nid: 00000000-0000-4000-8000-{n:012}\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n{detection}\nlevel: high\n---\n"
    )
}

/// Hostile values: NUL inside keyword values and event values, Unicode
/// whose case folding changes the length or depends on context (`İ`,
/// `ẞ`, final `Σ`, long `ſ`, Kelvin sign), field names with spaces,
/// events with 10,000 fields: with and without the prefilter agree.
#[test]
fn prefilter_matches_unfiltered_evaluation_on_hostile_values() {
    let dets = [
        "  keywords:\n    - \"ab\\0cd\"\n  condition: keywords",
        "  keywords:\n    - \"İSTANBUL\"\n  condition: keywords",
        "  sel:\n    CommandLine|contains: 'STRAẞE'\n  condition: sel",
        "  sel:\n    CommandLine|contains: 'ΟΔΟΣ'\n  condition: sel",
        "  sel:\n    CommandLine|contains|cased: 'ΟΔΟΣ'\n  condition: sel",
        "  sel:\n    CommandLine: '*ΟΔΟΣ*x?z*'\n  condition: sel",
        "  sel:\n    CommandLine: '*ſystem*32*'\n  condition: sel",
        "  sel:\n    CommandLine: '*\u{212A}ernel*32*'\n  condition: sel",
        "  sel:\n    Threat Name|contains: 'mimikatz'\n  condition: sel",
        "  sel:\n    ThreatName|contains: 'rubeus'\n  condition: sel",
        "  keywords:\n    - 'value9999'\n  condition: keywords",
        "  sel:\n    F5000|endswith: 'tail'\n  condition: sel",
        "  keywords:\n    - \"x\\0\"\n  sel:\n    CommandLine|contains: 'whoami'\n  condition: keywords or sel",
    ];
    let rules: String = dets.iter().enumerate().map(|(i, d)| rule(i, d)).collect();
    let (fast, slow) = ruleset_pair(&rules);
    assert_eq!(fast.len(), dets.len());
    let values = [
        "ab\0cd",
        "ab",
        "cd",
        "x\0",
        "İstanbul",
        "i\u{307}stanbul",
        "istanbul",
        "STRAẞE",
        "straße",
        "ΟΔΟΣ",
        "οδοσ",
        "οδος",
        "ΟΔΟΣ-xyz",
        "οδοσ xaz",
        "C:\\Windows\\system\\32",
        "C:\\Windows\\ſystem\\32",
        "KERNEL32",
        "\u{212A}ERNEL 32",
        "kernel\u{0}32",
        "whoami",
    ];
    let mut events = Vec::new();
    for v in values {
        events.push((format!("CommandLine {v:?}"), sysmon1(&[("CommandLine", v)])));
        events.push((format!("Other {v:?}"), sysmon1(&[("Other", v)])));
        events.push((format!("second {v:?}"), sysmon1(&[("A", "x"), ("B", v)])));
    }
    // A keyword with a NUL, its halves in two values (joined with NUL for
    // the keyword automaton): only the evaluation decides.
    events.push(("ab | cd".into(), sysmon1(&[("A", "ab"), ("B", "cd")])));
    events.push(("x | whoami".into(), sysmon1(&[("A", "x"), ("B", "whoami")])));
    events.push((
        "Threat Name".into(),
        sysmon1(&[("Threat Name", "HackTool:Win32/Mimikatz")]),
    ));
    events.push((
        "Threat  Name rubeus".into(),
        sysmon1(&[("Threat  Name", "Rubeus.exe")]),
    ));
    // 10,000 fields, the needle in the last ones.
    let names: Vec<String> = (0..10_000).map(|i| format!("F{i}")).collect();
    let vals: Vec<String> = (0..10_000).map(|i| format!("value{i}")).collect();
    let mut big = sysmon1(&[]);
    for (k, v) in names.iter().zip(&vals) {
        big.push(k.as_str(), Value::from(v.as_str()));
    }
    big.push("F5000", Value::from("the tail"));
    events.push(("10k fields".into(), big));
    let (n, hits) = compare(&fast, &slow, events);
    assert!(n > 60);
    assert!(hits > 10, "{hits}");
}

fn rule_with(n: usize, logsource: &str, detection: &str) -> String {
    format!(
        "title: E{n}\nid: 00000000-0000-4000-8000-{n:012}\nlogsource: {logsource}\ndetection:\n{detection}\nlevel: high\n---\n"
    )
}

/// Both rulesets from `rules`, tolerating warnings (an `expand` without a
/// placeholder value) but not a rule left out.
fn ruleset_pair_lenient(rules: &str, want: usize) -> (Ruleset, Ruleset) {
    let mut f = tracehunt_sigma::load_rules("e.yml", rules);
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    let d = tracehunt_sigma::apply_filters(&mut f.rules, &f.filters);
    assert_eq!(f.filters.len(), rules.matches("\nfilter:\n").count());
    assert!(d.is_empty(), "{d:?}");
    let (fast, d) = compile(f.rules.clone(), &CompileOptions::default());
    assert!(
        d.iter()
            .all(|d| d.code != tracehunt_sigma::Code::Unsupported),
        "{d:?}"
    );
    assert_eq!(fast.len(), want, "{d:?}");
    let slow = compile(
        f.rules,
        &CompileOptions {
            no_prefilter: true,
            ..CompileOptions::default()
        },
    )
    .0;
    (fast, slow)
}

/// Hostile EventID routing (breaker): rules that pin, seem to pin or only
/// partly pin EventIDs (`|all`, `not`, `1 of`/`all of`, lists of maps,
/// `|gt`, text `'4624'` and `'04624'`, floats, negative and > u32 values,
/// `null`, `|exists`, keywords, `|expand` without a value, `|fieldref`,
/// `|neq`, `|re`, `|contains`, `|cased`, name spellings `Event ID` and
/// `eventid`, several conditions, filters with `and not`), against events
/// whose EventID is stated in every shape (int, canonical and
/// non-canonical text, float, bool, null, negative, > u32 wrapping to the
/// routing EventID, repeated, under another spelling, absent) with header
/// EventIDs that agree, disagree or are absent: detections are those of
/// evaluating every rule.
#[test]
fn event_id_routing_matches_unfiltered_evaluation_on_hostile_rules_and_events() {
    let sec = "{product: windows, service: security}";
    let win = "{product: windows}";
    let dets: Vec<(&str, String)> = vec![
        (sec, "  sel:\n    EventID: 4624\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: '4624'\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: '04624'\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: 4624.0\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|all:\n      - 4624\n      - 4625\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: 4624\n  condition: not sel".into()),
        (sec, "  sel1:\n    EventID: 4624\n  sel2:\n    CommandLine|contains: 'whoami'\n  condition: 1 of sel*".into()),
        (sec, "  sel1:\n    EventID: 4624\n  sel2:\n    EventID: 4625\n  condition: all of sel*".into()),
        (sec, "  sel:\n    - EventID: 4624\n    - EventID: 4625\n      LogonType: 3\n  condition: sel".into()),
        (sec, "  sel:\n    - EventID: 4624\n    - LogonType: 3\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|gt: 4623\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: null\n  condition: sel".into()),
        (sec, "  sel:\n    EventID:\n      - 4624\n      - null\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|exists: false\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|exists: true\n  sel2:\n    EventID: 4688\n  condition: sel and not sel2".into()),
        (sec, "  keywords:\n    - '4624'\n  condition: keywords".into()),
        (sec, "  sel:\n    EventID|expand: '%eid%'\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|fieldref: Other\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|neq: 4624\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|re: '^46(24|25)$'\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|contains: '462'\n  condition: sel".into()),
        (sec, "  sel:\n    EventID|cased: '4624'\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: -1\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: 4294967295\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: 4294971920\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: 0\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: true\n  condition: sel".into()),
        (sec, "  sel:\n    Event ID: 4624\n  condition: sel".into()),
        (sec, "  sel:\n    eventid: 4625\n  condition: sel".into()),
        (sec, "  sel:\n    EventID: 4624\n  filter:\n    EventID: 4688\n  condition: sel and not filter".into()),
        (sec, "  sel:\n    EventID: 4624\n  other:\n    LogonType: 3\n  condition:\n    - sel\n    - other".into()),
        (sec, "  sel:\n    EventID: 4624\n    LogonType|gt: 2\n  condition: sel".into()),
        (win, "  sel:\n    EventID: 4688\n  condition: sel".into()),
        (win, "  sel:\n    EventID:\n      - 1\n      - 4624\n    CommandLine|contains: 'whoami'\n  condition: sel".into()),
        (win, "  sel:\n    EventID: 4624\n  keywords:\n    - 'whoami'\n  condition: sel or keywords".into()),
        (win, "  sel:\n    EventID: 4624\n  sel2:\n    Other|re: '(?i)who(ami)?'\n  condition: sel and sel2".into()),
    ];
    let mut rules: String = dets
        .iter()
        .enumerate()
        .map(|(i, (ls, d))| rule_with(i, ls, d))
        .collect();
    // Sigma filters rewrite rules (`(rule) and (filter)`): one that pins
    // E0 to another EventID (it can never match), one that suppresses
    // 4624 network logons in every Windows rule.
    rules.push_str("title: F1\nid: 00000000-0000-4000-a000-000000000001\nlogsource: {product: windows, service: security}\nfilter:\n  rules:\n    - 00000000-0000-4000-8000-000000000000\n    - 00000000-0000-4000-8000-000000000009\n  selection:\n    EventID: 4688\n  condition: selection\n---\n");
    rules.push_str("title: F2\nid: 00000000-0000-4000-a000-000000000002\nlogsource: {product: windows}\nfilter:\n  rules: any\n  selection:\n    EventID: 4624\n    LogonType: 3\n  condition: not selection\n---\n");
    let (fast, slow) = ruleset_pair_lenient(&rules, dets.len());
    let fields: Vec<(&str, Option<Value>)> = vec![
        ("EventID", Some(Value::Int(4624))),
        ("EventID", Some(Value::Int(4625))),
        ("EventID", Some(Value::Int(4688))),
        ("EventID", Some(Value::Int(0))),
        ("EventID", Some(Value::Int(-1))),
        ("EventID", Some(Value::Int(4_294_967_295))),
        ("EventID", Some(Value::Int(4_294_971_920))),
        ("EventID", Some(Value::Int(i64::MIN))),
        ("EventID", Some(Value::from("4624"))),
        ("EventID", Some(Value::from("04624"))),
        ("EventID", Some(Value::from(" 4624"))),
        ("EventID", Some(Value::from("4624 "))),
        ("EventID", Some(Value::from("+4624"))),
        ("EventID", Some(Value::from("0x1210"))),
        ("EventID", Some(Value::from("4294971920"))),
        ("EventID", Some(Value::from(""))),
        ("EventID", Some(Value::from("0"))),
        ("EventID", Some(Value::Float(4624.0))),
        ("EventID", Some(Value::Float(4624.5))),
        ("EventID", Some(Value::Float(-0.0))),
        ("EventID", Some(Value::Bool(true))),
        ("EventID", Some(Value::Null)),
        ("eventid", Some(Value::Int(4624))),
        ("Event ID", Some(Value::Int(4625))),
        ("EVENTID", Some(Value::from("4688"))),
        ("Event_ID", Some(Value::Int(4624))),
        ("EventID", None),
    ];
    let metas = [
        None,
        Some(4624),
        Some(4625),
        Some(4688),
        Some(0),
        Some(u32::MAX),
    ];
    let mut events = Vec::new();
    for channel in [
        "Security",
        "security",
        "Microsoft-Windows-Sysmon/Operational",
    ] {
        for meta in metas {
            for (fi, (name, v)) in fields.iter().enumerate() {
                for extra in 0..4 {
                    let mut ev = Event::with_meta(EventMeta {
                        channel: Some(channel.into()),
                        event_id: meta,
                        ..EventMeta::default()
                    });
                    if let Some(v) = v {
                        ev.push(*name, v.clone());
                    }
                    match extra {
                        // A second EventID field (another spelling).
                        1 => ev.push("Event ID", Value::Int(4688)),
                        // The same value again.
                        2 => {
                            if let Some(v) = v {
                                ev.push("EventID", v.clone());
                            }
                        }
                        3 => {
                            ev.push("CommandLine", Value::from("whoami /all"));
                            ev.push("Other", Value::from("4624"));
                        }
                        _ => {}
                    }
                    ev.push("LogonType", Value::Int(3));
                    events.push((
                        format!("{channel} meta {meta:?} field {fi} extra {extra}"),
                        ev,
                    ));
                }
            }
        }
    }
    let (n, hits) = compare(&fast, &slow, events);
    assert_eq!(n, 3 * 6 * 27 * 4);
    assert!(hits > 500, "{hits}");
}

/// Hostile JSON lines through the real reader (breaker): EventID as a
/// number, canonical and non-canonical text, float, exponent, negative,
/// above 16 and 32 bits, array, `{"#text": …}`, null, bool, hex text,
/// under other spellings, in the flat, Winlogbeat and evtx-JSON shapes,
/// each with process-creation, logon and keyword payloads: every SigmaHQ
/// rule gives the same detections with and without the prefilter and
/// EventID routing.
#[test]
fn event_id_routing_matches_unfiltered_evaluation_on_hostile_json_lines() {
    let sigma = corpora().join("sigma");
    if !sigma.is_dir() {
        eprintln!("skipped: {} absent", sigma.display());
        return;
    }
    let (fast, slow) = sigma_pair(&[sigma.join("rules")]);
    let ids = [
        "4624",
        "4688",
        "1",
        "\"4624\"",
        "\"04624\"",
        "\" 4688\"",
        "\"4688\"",
        "4624.0",
        "4.688e3",
        "-4624",
        "70160",
        "4294971920",
        "1e20",
        "[4624, 4688]",
        "[1, 1]",
        "{\"#text\": 4688}",
        "{\"#text\": \"4688\", \"#attributes\": {\"Qualifiers\": 0}}",
        "null",
        "true",
        "\"0x1250\"",
        "\"\"",
    ];
    let payloads = [
        r#""NewProcessName": "C:\\Windows\\System32\\whoami.exe", "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all""#,
        r#""Image": "C:\\Temp\\mimikatz.exe", "CommandLine": "mimikatz.exe sekurlsa::logonpasswords exit", "ParentImage": "C:\\Windows\\System32\\cmd.exe""#,
        r#""LogonType": 10, "TargetUserName": "Administrator", "IpAddress": "10.1.2.3", "AuthenticationPackageName": "NTLM", "LogonProcessName": "NtLmSsp ""#,
        r#""CommandLine": "powershell.exe -nop -w hidden -enc SQBFAFgA", "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe""#,
        r#""ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe""#,
    ];
    let channels = ["Security", "Microsoft-Windows-Sysmon/Operational", "System"];
    let mut lines = String::new();
    for id in ids {
        for p in payloads {
            for ch in channels {
                lines.push_str(&format!(
                    "{{\"EventID\": {id}, \"Channel\": \"{ch}\", {p}}}\n"
                ));
                lines.push_str(&format!(
                    "{{\"EventID\": {id}, \"eventid\": 4688, \"Channel\": \"{ch}\", {p}}}\n"
                ));
                lines.push_str(&format!(
                    "{{\"winlog\": {{\"event_id\": {id}, \"channel\": \"{ch}\", \"event_data\": {{{p}}}}}}}\n"
                ));
                lines.push_str(&format!(
                    "{{\"Event\": {{\"System\": {{\"EventID\": {id}, \"Channel\": \"{ch}\"}}, \"EventData\": {{{p}, \"Event ID\": {id}}}}}}}\n"
                ));
            }
        }
    }
    let events: Vec<(String, Event)> =
        tracehunt_readers::open_bytes("hostile.jsonl", lines.into_bytes())
            .unwrap()
            .enumerate()
            .filter_map(|(i, r)| r.ok().map(|e| (format!("line {}", i + 1), e)))
            .collect();
    assert!(events.len() > 1000, "{}", events.len());
    let (n, hits) = compare(&fast, &slow, events);
    eprintln!("{n} hostile JSON events, {hits} detections, identical");
    assert!(hits > 200, "{hits}");
}

/// Issue #20 item 5: `|all` with `windash` or `base64offset` required every
/// variant of each value (it never matched); now each value matches through
/// any of its variants, and the prefilter's needles for such a value are the
/// union of its variants' (one variant's needle alone is not necessary):
/// with and without the prefilter the same events fire, and the expected ones.
#[test]
fn all_with_windash_or_base64offset_matches_any_variant_of_each_value() {
    let dets = [
        "  sel:\n    CommandLine|windash|contains|all:\n      - ' -nop '\n      - ' -encodedcommand '\n  condition: sel",
        "  sel:\n    CommandLine|windash|contains|all: ' -encodedcommand '\n  condition: sel",
        "  sel:\n    CommandLine|base64offset|contains|all:\n      - '/bin/bash'\n      - 'curl'\n  condition: sel",
        // A plain `|contains|all` keeps its meaning (one variant per value).
        "  sel:\n    CommandLine|contains|all:\n      - ' -nop '\n      - ' -encodedcommand '\n  condition: sel",
    ];
    let rules: String = dets.iter().enumerate().map(|(i, d)| rule(i, d)).collect();
    let (fast, slow) = ruleset_pair(&rules);
    let cases: [(&str, &[usize]); 9] = [
        ("powershell -nop -encodedcommand AAA", &[0, 1, 3]),
        ("powershell /nop /encodedcommand AAA", &[0, 1]),
        ("powershell -nop /encodedcommand AAA", &[0, 1]),
        ("powershell \u{2013}nop \u{2015}encodedcommand AAA", &[0, 1]),
        ("powershell -nop AAA", &[]),
        ("powershell /encodedcommand AAA", &[1]),
        // `/bin/bash` at offset 1, `curl` at offset 2.
        ("sh -c IC9iaW4vYmFzaA== eHhjdXJs", &[2]),
        ("sh -c L2Jpbi9iYXNo", &[]),
        ("/bin/bash curl", &[]),
    ];
    let mut sc = Scanner::new(&fast);
    let mut out = Vec::new();
    for (cmd, want) in cases {
        out.clear();
        sc.scan(&sysmon1(&[("CommandLine", cmd)]), &mut out);
        out.sort_unstable();
        assert_eq!(out, want, "{cmd}");
    }
    let events = cases
        .iter()
        .map(|(cmd, _)| (cmd.to_string(), sysmon1(&[("CommandLine", cmd)])));
    let (n, hits) = compare(&fast, &slow, events);
    assert_eq!((n, hits), (9, 11));
}
