//! JSON lines / concatenated objects and JSON arrays through the reader,
//! and every shape converter (`event_from_json_value`) on parsed values.
//! The first byte picks the container so both shapes get exercised.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let mut bytes = Vec::with_capacity(body.len() + 2);
    match sel % 3 {
        0 => bytes.extend_from_slice(body),
        1 => {
            bytes.push(b'[');
            bytes.extend_from_slice(body);
        }
        _ => {
            bytes.push(b'{');
            bytes.extend_from_slice(body);
        }
    }
    let _ = common::read_all("fuzz.json", &bytes);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let _ = tracehunt_readers::event_from_json_value(&v);
    }
});
