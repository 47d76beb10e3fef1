//! Whole files through the reader (`open_bytes`): format sniffing, EVTX
//! recovery, JSON. Invariant: no panic, chunk API = streaming reader.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = common::read_all("fuzz.evtx", data);
});
