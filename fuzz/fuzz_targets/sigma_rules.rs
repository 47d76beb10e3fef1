//! Sigma rule files: load (`tracehunt_sigma::load_rules_bytes`), compile
//! (`tracehunt_engine::compile`) and scan two events with what compiled.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;
use tracehunt_event::Event;

fn events() -> &'static [Event] {
    static EV: OnceLock<Vec<Event>> = OnceLock::new();
    EV.get_or_init(common::events)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let loaded = tracehunt_sigma::load_rules_bytes("fuzz.yml", data);
    let opts = tracehunt_engine::CompileOptions::default();
    let (ruleset, _diags) = tracehunt_engine::compile(loaded.rules, &opts);
    let mut scanner = tracehunt_engine::Scanner::new(&ruleset);
    let mut hits = Vec::new();
    for ev in events() {
        hits.clear();
        scanner.scan(ev, &mut hits);
    }
});
