//! Sigma conditions: the input is the `condition:` of a rule with four
//! selections (plain, list, keywords, regex), parsed (`rsigma-parser`'s
//! `parse_condition` via `tracehunt_sigma::ast`), loaded, compiled and
//! evaluated on two events.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;
use tracehunt_event::Event;

fn events() -> &'static [Event] {
    static EV: OnceLock<Vec<Event>> = OnceLock::new();
    EV.get_or_init(common::events)
}

const RULE: &str = "title: fuzz
id: 5b7f4e8a-0000-4000-8000-000000000001
logsource:
    category: process_creation
    product: windows
detection:
    sel_img:
        Image|endswith: '\\cmd.exe'
    sel_list:
        CommandLine|contains:
            - whoami
            - MiniDump
    keywords:
        - rundll32
    sel_re:
        CommandLine|re: '(?i)w.oami'
    condition: ";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(cond) = std::str::from_utf8(data) else {
        return;
    };
    let _ = tracehunt_sigma::ast::parse_condition(cond);
    if cond.contains('\n') {
        return; // would leave the YAML scalar
    }
    let text = format!("{RULE}{cond}\nlevel: high\n");
    let loaded = tracehunt_sigma::load_rules("fuzz.yml", &text);
    let (ruleset, _) =
        tracehunt_engine::compile(loaded.rules, &tracehunt_engine::CompileOptions::default());
    let mut scanner = tracehunt_engine::Scanner::new(&ruleset);
    let mut hits = Vec::new();
    for ev in events() {
        hits.clear();
        scanner.scan(ev, &mut hits);
    }
});
