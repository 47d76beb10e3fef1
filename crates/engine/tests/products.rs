//! Routing across products (issue #21): a Windows rule never runs on a
//! Linux, cloud or network event and a non-Windows rule never runs on a
//! Windows event, even when the rule names only its product or its
//! detection would match the other event's values.

use tracehunt_engine::{compile, CompileOptions, Ruleset, Scanner};
use tracehunt_event::{Event, EventMeta, Value};
use tracehunt_sigma::{load_rules, LogsourceMap};

/// A small map in the built-in schema: Windows Security, a channel-less
/// Windows category, and two Linux sources.
const MAP: &str = r#"
logsources:
  - product: windows
    service: security
    sources: [{channels: [Security]}]
  - product: windows
    category: everywhere
    sources: [{}]
  - product: linux
    service: auditd
    sources: [{channels: ["linux:auditd"]}]
  - product: linux
    category: process_creation
    sources: [{channels: ["linux:process_creation"]}]
"#;

/// Five rules with the same detection (`CommandLine|contains: whoami`)
/// under different logsources, in this order.
const LOGSOURCES: [&str; 5] = [
    "{product: windows}",
    "{product: windows, category: everywhere}",
    "{product: windows, service: security}",
    "{product: linux}",
    "{product: linux, category: process_creation}",
];

fn ruleset() -> Ruleset {
    let mut text = String::new();
    for (i, ls) in LOGSOURCES.iter().enumerate() {
        text.push_str(&format!(
            "title: r{i}\nid: 00000000-0000-4000-8000-00000000000{i}\nlogsource: {ls}\n\
             detection:\n  sel:\n    CommandLine|contains: whoami\n  condition: sel\nlevel: high\n---\n"
        ));
    }
    let loaded = load_rules("products.yml", &text);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let opts = CompileOptions {
        logsources: LogsourceMap::from_yaml(MAP).unwrap(),
        ..CompileOptions::default()
    };
    let (rs, diags) = compile(loaded.rules, &opts);
    assert!(diags.is_empty(), "{diags:?}");
    rs
}

fn event(channel: &str) -> Event {
    let mut ev = Event::with_meta(EventMeta {
        channel: Some(channel.into()),
        ..EventMeta::default()
    });
    ev.push("CommandLine", Value::from("/usr/bin/whoami"));
    ev
}

fn hits(rs: &Ruleset, channel: &str) -> Vec<usize> {
    let mut out = Vec::new();
    Scanner::new(rs).scan(&event(channel), &mut out);
    out.sort_unstable();
    out
}

#[test]
fn windows_rules_stay_off_linux_events_and_linux_rules_off_windows_events() {
    let rs = ruleset();
    // A Linux process event: only the two Linux rules.
    assert_eq!(hits(&rs, "linux:process_creation"), [3, 4]);
    // An auditd record: only the product-only Linux rule.
    assert_eq!(hits(&rs, "linux:auditd"), [3]);
    // A Security event: the three Windows rules, no Linux rule.
    assert_eq!(hits(&rs, "Security"), [0, 1, 2]);
    // A Windows channel no entry names: the two channel-less Windows rules.
    assert_eq!(hits(&rs, "Microsoft-Windows-Sysmon/Operational"), [0, 1]);
    // Channel casing does not matter for the gate either.
    assert_eq!(hits(&rs, "LINUX:AUDITD"), [3]);
    // A channel of a claimed family that no entry lists (`linux:` is
    // claimed through `linux:auditd`): no Windows rule, and no Linux rule
    // either (none names it).
    assert_eq!(hits(&rs, "linux:kern"), Vec::<usize>::new());
}
