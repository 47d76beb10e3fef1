//! Sigma semantics, one small case each, written from the Sigma
//! specification v2 (rules spec + modifiers appendix).

use tracehunt_engine::{compile, CompileOptions, Ruleset, Scanner};
use tracehunt_event::{Event, EventMeta, Value};

fn ruleset(detection: &str, logsource: &str) -> Ruleset {
    let yaml = format!(
        "title: T\nid: 00000000-0000-4000-8000-000000000000\nlogsource: {logsource}\ndetection:\n{detection}\nlevel: high\n"
    );
    let f = tracehunt_sigma::load_rules("t.yml", &yaml);
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    assert!(d.is_empty(), "{d:?}");
    rs
}

fn sysmon(eid: u32, fields: &[(&str, Value)]) -> Event {
    let mut ev = Event::with_meta(EventMeta {
        channel: Some("Microsoft-Windows-Sysmon/Operational".into()),
        event_id: Some(eid),
        ..EventMeta::default()
    });
    ev.push("EventID", Value::Int(eid.into()));
    for (k, v) in fields {
        ev.push(*k, v.clone());
    }
    ev
}

fn fires(rs: &Ruleset, ev: &Event) -> bool {
    let mut out = Vec::new();
    Scanner::new(rs).scan(ev, &mut out);
    !out.is_empty()
}

const PC: &str = "{product: windows, category: process_creation}";

fn s(v: &str) -> Value {
    Value::from(v)
}

#[test]
fn strings_are_case_insensitive_by_default() {
    let rs = ruleset(
        "  sel:\n    Image|endswith: '\\CMD.exe'\n  condition: sel",
        PC,
    );
    assert!(fires(
        &rs,
        &sysmon(1, &[("Image", s("C:\\windows\\system32\\cmd.EXE"))])
    ));
    assert!(!fires(
        &rs,
        &sysmon(1, &[("Image", s("C:\\windows\\system32\\xcmd.exe.bak"))])
    ));
}

#[test]
fn cased_modifier_is_case_sensitive() {
    let rs = ruleset(
        "  sel:\n    CommandLine|contains|cased: 'AbC'\n  condition: sel",
        PC,
    );
    assert!(fires(&rs, &sysmon(1, &[("CommandLine", s("x AbC y"))])));
    assert!(!fires(&rs, &sysmon(1, &[("CommandLine", s("x abc y"))])));
}

#[test]
fn wildcards_and_escapes() {
    let rs = ruleset("  sel:\n    CommandLine: 'a*b?c\\*'\n  condition: sel", PC);
    assert!(fires(&rs, &sysmon(1, &[("CommandLine", s("AxxxBzC*"))])));
    assert!(!fires(&rs, &sysmon(1, &[("CommandLine", s("AxxxBzCd"))])));
}

#[test]
fn trailing_backslash_is_literal() {
    let rs = ruleset(
        "  sel:\n    CommandLine|endswith: 'C:\\'\n  condition: sel",
        PC,
    );
    assert!(fires(&rs, &sysmon(1, &[("CommandLine", s("dir c:\\"))])));
}

#[test]
fn contains_all_needs_every_value() {
    let rs = ruleset(
        "  sel:\n    CommandLine|contains|all: ['-nop', '-enc']\n  condition: sel",
        PC,
    );
    assert!(fires(
        &rs,
        &sysmon(1, &[("CommandLine", s("powershell -NoP -nop -enc AAA"))])
    ));
    assert!(!fires(
        &rs,
        &sysmon(1, &[("CommandLine", s("powershell -nop"))])
    ));
}

#[test]
fn one_of_pattern_and_all_of_them_and_not() {
    let det = "  selection_a:\n    Image|endswith: '\\a.exe'\n  selection_b:\n    Image|endswith: '\\b.exe'\n  filter:\n    CommandLine|contains: 'ok'\n  condition: 1 of selection_* and not filter";
    let rs = ruleset(det, PC);
    assert!(fires(
        &rs,
        &sysmon(1, &[("Image", s("c:\\b.exe")), ("CommandLine", s("x"))])
    ));
    assert!(!fires(
        &rs,
        &sysmon(1, &[("Image", s("c:\\b.exe")), ("CommandLine", s("ok"))])
    ));
    let rs = ruleset(
        "  sel1:\n    Image: x\n  sel2:\n    CommandLine: y\n  condition: all of them",
        PC,
    );
    assert!(fires(
        &rs,
        &sysmon(1, &[("Image", s("X")), ("CommandLine", s("Y"))])
    ));
    assert!(!fires(&rs, &sysmon(1, &[("Image", s("X"))])));
}

#[test]
fn one_of_with_single_selection_keeps_its_all() {
    // Chainsaw #235: `1 of selection*` dropped a selection's `|all`.
    let rs = ruleset(
        "  selection:\n    CommandLine|contains|all: ['a1', 'b2']\n  condition: 1 of selection*",
        PC,
    );
    assert!(!fires(&rs, &sysmon(1, &[("CommandLine", s("a1 only"))])));
    assert!(fires(&rs, &sysmon(1, &[("CommandLine", s("a1 b2"))])));
}

#[test]
fn null_matches_absent_or_empty_field() {
    let rs = ruleset(
        "  sel:\n    Image|endswith: '\\x.exe'\n    OriginalFileName: null\n  condition: sel",
        PC,
    );
    assert!(fires(&rs, &sysmon(1, &[("Image", s("c:\\x.exe"))])));
    assert!(fires(
        &rs,
        &sysmon(1, &[("Image", s("c:\\x.exe")), ("OriginalFileName", s(""))])
    ));
    assert!(!fires(
        &rs,
        &sysmon(
            1,
            &[("Image", s("c:\\x.exe")), ("OriginalFileName", s("x.exe"))]
        )
    ));
}

#[test]
fn exists_modifier() {
    let rs = ruleset("  sel:\n    Hashes|exists: true\n  condition: sel", PC);
    assert!(fires(&rs, &sysmon(1, &[("Hashes", s("MD5=1"))])));
    assert!(!fires(&rs, &sysmon(1, &[("Image", s("x"))])));
}

#[test]
fn keywords_search_every_field() {
    let rs = ruleset(
        "  keywords:\n    - 'mimikatz'\n    - 'sekurlsa'\n  condition: keywords",
        "{product: windows, service: sysmon}",
    );
    assert!(fires(
        &rs,
        &sysmon(11, &[("TargetFilename", s("C:\\t\\Mimikatz.exe"))])
    ));
    assert!(!fires(
        &rs,
        &sysmon(11, &[("TargetFilename", s("C:\\t\\notepad.exe"))])
    ));
}

/// The keyword automaton runs once over all values of an event (joined with
/// NUL): a keyword split across two values must not match, one in the
/// last or first value must, and a keyword in a later field still counts.
#[test]
fn keywords_straddling_two_values_do_not_match() {
    let rs = ruleset(
        "  keywords:\n    - 'mimikatz'\n  condition: keywords",
        "{product: windows, service: sysmon}",
    );
    let split = sysmon(
        11,
        &[
            ("Image", s("c:\\t\\mimi")),
            ("TargetFilename", s("katz.exe")),
        ],
    );
    assert!(!fires(&rs, &split));
    let last = sysmon(
        11,
        &[
            ("Image", s("c:\\t\\x.exe")),
            ("TargetFilename", s("MIMIKATZ")),
        ],
    );
    assert!(fires(&rs, &last));
    let first = sysmon(11, &[("Image", s("mimikatz")), ("TargetFilename", s("x"))]);
    assert!(fires(&rs, &first));
}

/// A field's needle automaton runs only for events routed to a rule with a
/// needle there; a rule of another logsource with the same needle must not
/// change what fires.
#[test]
fn field_prefilter_follows_the_route() {
    let yaml = "title: A\nid: 00000000-0000-4000-8000-00000000000a\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    CommandLine|contains: 'vssadmin delete'\n  condition: sel\nlevel: high\n---\ntitle: B\nid: 00000000-0000-4000-8000-00000000000b\nlogsource: {product: windows, category: file_event}\ndetection:\n  sel:\n    TargetFilename|contains: 'vssadmin delete'\n  condition: sel\nlevel: high\n";
    let f = tracehunt_sigma::load_rules("t.yml", yaml);
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let mut sc = Scanner::new(&rs);
    let mut out = Vec::new();
    // Process creation with the needle in CommandLine: rule A only.
    sc.scan(
        &sysmon(1, &[("CommandLine", s("VSSADMIN DELETE shadows"))]),
        &mut out,
    );
    assert_eq!(out, vec![0]);
    // File event (Sysmon 11) with the needle in both fields: rule B only.
    out.clear();
    sc.scan(
        &sysmon(
            11,
            &[
                ("CommandLine", s("vssadmin delete")),
                ("TargetFilename", s("c:\\vssadmin delete.txt")),
            ],
        ),
        &mut out,
    );
    assert_eq!(out, vec![1]);
    // Same scanner, first route again (cached).
    out.clear();
    sc.scan(
        &sysmon(1, &[("CommandLine", s("vssadmin delete"))]),
        &mut out,
    );
    assert_eq!(out, vec![0]);
}

#[test]
fn regex_with_flags_and_default_case() {
    let rs = ruleset(
        "  sel:\n    CommandLine|re: 'eval\\('\n  condition: sel",
        PC,
    );
    assert!(fires(&rs, &sysmon(1, &[("CommandLine", s("x eval(y)"))])));
    assert!(!fires(&rs, &sysmon(1, &[("CommandLine", s("x EVAL(y)"))])));
    let rs = ruleset(
        "  sel:\n    CommandLine|re|i: 'eval\\('\n  condition: sel",
        PC,
    );
    assert!(fires(&rs, &sysmon(1, &[("CommandLine", s("x EVAL(y)"))])));
}

#[test]
fn cidr_ipv4_and_ipv6() {
    let rs = ruleset(
        "  sel:\n    DestinationIp|cidr: ['10.0.0.0/8', 'fe80::/10']\n  condition: sel",
        "{product: windows, category: network_connection}",
    );
    assert!(fires(&rs, &sysmon(3, &[("DestinationIp", s("10.1.2.3"))])));
    assert!(fires(&rs, &sysmon(3, &[("DestinationIp", s("fe80::1"))])));
    assert!(!fires(&rs, &sysmon(3, &[("DestinationIp", s("11.1.2.3"))])));
}

#[test]
fn windash_matches_all_dash_forms() {
    let rs = ruleset(
        "  sel:\n    CommandLine|windash|contains: ' -decode '\n  condition: sel",
        PC,
    );
    for cl in [
        "certutil -decode a b",
        "certutil /decode a b",
        "certutil \u{2013}decode a b",
    ] {
        assert!(fires(&rs, &sysmon(1, &[("CommandLine", s(cl))])), "{cl}");
    }
    assert!(!fires(
        &rs,
        &sysmon(1, &[("CommandLine", s("certutil decode a b"))])
    ));
}

#[test]
fn base64offset_finds_encoded_text_at_any_alignment() {
    use base64::Engine;
    let rs = ruleset(
        "  sel:\n    CommandLine|base64offset|contains: 'http://'\n  condition: sel",
        PC,
    );
    for pad in ["", "a", "ab"] {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{pad}http://evil"));
        assert!(
            fires(
                &rs,
                &sysmon(1, &[("CommandLine", s(&format!("powershell -e {enc}")))])
            ),
            "{pad}"
        );
    }
}

#[test]
fn utf16le_base64_for_powershell_encoded_commands() {
    use base64::Engine;
    let rs = ruleset(
        "  sel:\n    CommandLine|wide|base64offset|contains: 'IEX'\n  condition: sel",
        PC,
    );
    let utf16: Vec<u8> = "xIEX (New-Object)"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let enc = base64::engine::general_purpose::STANDARD.encode(utf16);
    assert!(fires(
        &rs,
        &sysmon(1, &[("CommandLine", s(&format!("powershell -enc {enc}")))])
    ));
}

#[test]
fn numeric_values_and_comparisons() {
    let rs = ruleset(
        "  sel:\n    EventID: 1\n    IntegrityLevel|gte: 3\n  condition: sel",
        PC,
    );
    assert!(fires(&rs, &sysmon(1, &[("IntegrityLevel", s("4"))])));
    assert!(!fires(&rs, &sysmon(1, &[("IntegrityLevel", s("2"))])));
}

#[test]
fn security_4688_maps_image_to_new_process_name() {
    let rs = ruleset("  sel:\n    Image|endswith: '\\whoami.exe'\n    ParentImage|endswith: '\\cmd.exe'\n  condition: sel", PC);
    let mut ev = Event::with_meta(EventMeta {
        channel: Some("Security".into()),
        event_id: Some(4688),
        ..EventMeta::default()
    });
    ev.push("NewProcessName", s("C:\\Windows\\System32\\whoami.exe"));
    ev.push("ParentProcessName", s("C:\\Windows\\System32\\cmd.exe"));
    assert!(fires(&rs, &ev));
}

#[test]
fn rules_only_meet_their_logsource() {
    // Chainsaw #107/#122: no matching on EventID alone across providers.
    let rs = ruleset(
        "  sel:\n    Image|endswith: '\\x.exe'\n  condition: sel",
        PC,
    );
    assert!(!fires(&rs, &sysmon(7, &[("Image", s("c:\\x.exe"))])));
    let mut sec = sysmon(1, &[("Image", s("c:\\x.exe"))]);
    sec.meta.channel = Some("Application".into());
    assert!(!fires(&rs, &sec));
}

#[test]
fn unmapped_logsource_is_inactive_and_never_fires() {
    let yaml = "title: L\nlogsource: {product: plan9, category: process_creation}\ndetection:\n  sel:\n    Image|endswith: '/bash'\n  condition: sel\n";
    let f = tracehunt_sigma::load_rules("l.yml", yaml);
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code.as_str(), "TH010");
    assert_eq!(rs.active_len(), 0);
    assert!(!fires(&rs, &sysmon(1, &[("Image", s("/bin/bash"))])));
}

#[test]
fn ruleset_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Ruleset>();
}

#[test]
fn defender_field_names_with_spaces_match_sigma_names() {
    // SigmaHQ regression case RedSun (a7c3e5f2…): EventData `Threat Name`
    // is written `ThreatName` in rules.
    let rs = ruleset(
        "  sel:\n    ThreatName|endswith: 'EICAR_Test_File'\n  condition: sel",
        "{product: windows, service: windefend}",
    );
    let mut ev = Event::with_meta(EventMeta {
        channel: Some("Microsoft-Windows-Windows Defender/Operational".into()),
        event_id: Some(1119),
        ..EventMeta::default()
    });
    ev.push("Threat Name", s("Tool:Win32/EICAR_Test_File"));
    assert!(fires(&rs, &ev));
}

#[test]
fn too_many_wildcards_or_values_are_rejected_with_th006() {
    // Breaker finding: 5,000 wildcards in one value made one event take 30 s+.
    let many = "*a".repeat(100);
    let yaml = format!("title: W\nlogsource: {PC}\ndetection:\n  sel:\n    CommandLine: '{many}'\n  condition: sel\n");
    let f = tracehunt_sigma::load_rules("w.yml", &yaml);
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    assert_eq!(rs.len(), 0);
    assert_eq!(d[0].code.as_str(), "TH006");
    assert!(d[0].message.contains("wildcards"), "{}", d[0].message);
    let list: String = (0..10_001).map(|i| format!("      - v{i}\n")).collect();
    let yaml = format!("title: L\nlogsource: {PC}\ndetection:\n  sel:\n    CommandLine|contains:\n{list}  condition: sel\n");
    let f = tracehunt_sigma::load_rules("l.yml", &yaml);
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    assert_eq!(rs.len(), 0);
    assert!(d[0].message.contains("10001 values"), "{}", d[0].message);
}

/// Breaker finding: rule values were case-folded with `str::to_lowercase`
/// (word-final `Σ` → `ς`), event values character by character (`Σ` →
/// `σ`): `contains: 'ΟΔΟΣ'` did not match the value `ΟΔΟΣ` itself.
#[test]
fn final_sigma_in_a_rule_value_matches_the_same_text() {
    for det in [
        "  sel:\n    CommandLine|contains: 'ΟΔΟΣ'\n  condition: sel",
        "  sel:\n    CommandLine: 'ΟΔΟΣ'\n  condition: sel",
        "  sel:\n    CommandLine: '*ΟΔΟΣ ?*'\n  condition: sel",
        "  keywords:\n    - 'ΟΔΟΣ'\n  condition: keywords",
    ] {
        let rs = ruleset(det, PC);
        for v in ["ΟΔΟΣ", "οδοσ"] {
            let v = if det.contains('?') {
                format!("{v} 1")
            } else {
                v.to_owned()
            };
            assert!(
                fires(&rs, &sysmon(1, &[("CommandLine", s(&v))])),
                "{det} / {v}"
            );
        }
    }
}

/// Breaker finding: an uncased wildcard value was a `(?i)` regex over the
/// case-folded value, so `ſ` (long s) matched `s` there but not in
/// `contains`, and the literal prefilter skipped the rule: detections
/// depended on the prefilter. Now both operators compare folded text.
#[test]
fn long_s_in_a_wildcard_value_is_not_s() {
    let rs = ruleset(
        "  sel:\n    CommandLine: '*ſystem*32*'\n  condition: sel",
        PC,
    );
    assert!(!fires(
        &rs,
        &sysmon(1, &[("CommandLine", s("C:\\system32"))])
    ));
    assert!(fires(
        &rs,
        &sysmon(1, &[("CommandLine", s("C:\\ſystem32"))])
    ));
    let rs = ruleset(
        "  sel:\n    CommandLine: '*SYSTEM*32*'\n  condition: sel",
        PC,
    );
    assert!(fires(
        &rs,
        &sysmon(1, &[("CommandLine", s("C:\\System32"))])
    ));
}

/// Compiles `(file, yaml)` pairs in order, as `hunt` does with a rules folder.
fn compile_files(files: &[(&str, &str)]) -> (Ruleset, Vec<tracehunt_sigma::Diagnostic>) {
    let mut docs = Vec::new();
    for (name, text) in files {
        let f = tracehunt_sigma::load_rules(name, text);
        assert!(f.diagnostics.is_empty(), "{name}: {:?}", f.diagnostics);
        docs.extend(f.rules);
    }
    compile(docs, &CompileOptions::default())
}

/// Hits of `rs` on `ev`, as rule ids.
fn fired_ids(rs: &Ruleset, ev: &Event) -> Vec<String> {
    let mut out = Vec::new();
    Scanner::new(rs).scan(ev, &mut out);
    out.iter().map(|&r| rs.rule(r).id.clone()).collect()
}

/// Issue #20 item 6: when the first copy of an id failed to compile, the
/// id was taken and a later valid copy was skipped as a duplicate (TH013):
/// the rule was lost. The first copy that compiles is kept; a copy after a
/// kept one is still dropped with TH013.
#[test]
fn later_copy_of_an_id_is_kept_when_the_first_copy_fails_to_compile() {
    let rule = |value: &str| {
        format!(
            "title: Whoami\nid: 00000000-0000-4000-8000-0000000000a1\nlogsource: {PC}\ndetection:\n  sel:\n    {value}\n  condition: sel\nlevel: high\n"
        )
    };
    let (rs, d) = compile_files(&[
        ("a.yml", &rule("CommandLine|re: '(unclosed'")),
        ("b.yml", &rule("CommandLine|contains: 'whoami'")),
        ("c.yml", &rule("CommandLine|contains: 'hostname'")),
    ]);
    let codes: Vec<(&str, &str)> = d
        .iter()
        .map(|d| (d.code.as_str(), d.file.as_str()))
        .collect();
    assert_eq!(codes, [("TH006", "a.yml"), ("TH013", "c.yml")]);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs.rule(0).file, "b.yml");
    let ev = sysmon(1, &[("CommandLine", s("cmd /c whoami"))]);
    assert_eq!(
        fired_ids(&rs, &ev),
        ["00000000-0000-4000-8000-0000000000a1"]
    );
    assert!(!fires(&rs, &sysmon(1, &[("CommandLine", s("hostname"))])));
}

/// Issue #20 item 6: rules without an `id` were de-duplicated by title, so
/// a different rule with the same title was dropped (its detections lost,
/// its own errors hidden behind TH013). Both are kept and both fire, under
/// distinct ids; a second copy of the same document is still one rule.
#[test]
fn rules_without_id_sharing_a_title_both_fire() {
    let rule = |value: &str| {
        format!(
            "title: Recon\nlogsource: {PC}\ndetection:\n  sel:\n    {value}\n  condition: sel\nlevel: high\n"
        )
    };
    let whoami = rule("CommandLine|contains: 'whoami'");
    let (rs, d) = compile_files(&[
        ("a.yml", &whoami),
        ("b.yml", &rule("CommandLine|contains: 'hostname'")),
        ("c.yml", &rule("CommandLine|re: '(unclosed'")),
        ("d.yml", &whoami),
    ]);
    let codes: Vec<(&str, &str, Option<&str>)> = d
        .iter()
        .map(|d| (d.code.as_str(), d.file.as_str(), d.rule.as_deref()))
        .collect();
    // The broken third rule shows its own error (was TH013), and the copy of
    // the first is the only duplicate.
    assert_eq!(
        codes,
        [
            ("TH006", "c.yml", Some("Recon")),
            ("TH013", "d.yml", Some("Recon"))
        ]
    );
    let ids: Vec<&str> = rs.rules().iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["Recon", "Recon (b.yml:1)"]);
    let both = sysmon(1, &[("CommandLine", s("cmd /c whoami & hostname"))]);
    assert_eq!(fired_ids(&rs, &both), ["Recon", "Recon (b.yml:1)"]);
    let second = sysmon(1, &[("CommandLine", s("hostname"))]);
    assert_eq!(fired_ids(&rs, &second), ["Recon (b.yml:1)"]);
}

/// Issue #20 item 9: an empty selection (`sel: {}`) matched every event
/// and `sel: []` none, without a diagnostic. Like pySigma ("Detection is
/// empty"), an empty selection map or list is an error (TH002, the rule is
/// not used), also inside a list of maps; the other rules still load.
#[test]
fn empty_selection_is_an_error_not_a_match_on_every_event() {
    let rule = |n: u32, sel: &str| {
        format!(
            "title: E{n}\nid: 00000000-0000-4000-8000-0000000000e{n}\nlogsource: {PC}\ndetection:\n  sel: {sel}\n  condition: sel\nlevel: high\n"
        )
    };
    let sels = ["{}", "[]", "[{}]", "[{Image: x}, {}]", "[[]]"];
    let texts: Vec<String> = sels
        .iter()
        .enumerate()
        .map(|(i, s)| rule(i as u32, s))
        .collect();
    let good = rule(9, "{CommandLine|contains: whoami}");
    let mut files: Vec<(&str, &str)> = texts.iter().map(|t| ("e.yml", t.as_str())).collect();
    files.push(("g.yml", &good));
    let (rs, d) = compile_files(&files);
    assert_eq!(d.len(), sels.len(), "{d:?}");
    for (d, n) in d.iter().zip(0..) {
        assert_eq!(d.code, tracehunt_sigma::Code::InvalidRule, "{d}");
        assert_eq!(d.severity, tracehunt_sigma::Severity::Error);
        assert_eq!(
            d.rule.as_deref(),
            Some(format!("00000000-0000-4000-8000-0000000000e{n}").as_str())
        );
        assert!(d.message.starts_with("selection `sel`: empty "), "{d}");
    }
    assert_eq!(rs.len(), 1);
    let ev = sysmon(1, &[("CommandLine", s("cmd /c dir"))]);
    assert!(fired_ids(&rs, &ev).is_empty());
}
