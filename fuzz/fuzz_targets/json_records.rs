//! JSON lines / concatenated objects and JSON arrays through the reader,
//! and every shape converter (`event_from_json_value`) on parsed values.
//! The first byte picks the container so both shapes get exercised.
//! JSON lines are also read in byte ranges (as `hunt` splits a big file
//! over threads, with a range size of 1..=64 bytes from the first byte):
//! the ranges together must give exactly the whole-file records and errors.
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
    let whole = common::read_all("fuzz.json", &bytes);
    let range = 1 + u64::from(sel / 3) % 64;
    if let Some(plan) = tracehunt_readers::plan_json_lines_bytes("fuzz.json", bytes.clone(), range)
    {
        let split: Vec<_> = (0..plan.len()).flat_map(|i| plan.range(i)).collect();
        // Debug, not ==: a wire event can hold a NaN float, unequal to itself
        // (CI finding with the wire seed).
        assert_eq!(
            format!("{whole:?}"),
            format!("{split:?}"),
            "ranges of {range} bytes differ from the whole file"
        );
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let _ = tracehunt_readers::event_from_json_value(&v);
    }
    // One JSON object on one line: the reader (whose flat records take the
    // fast path, `flat.rs`, issue #22) gives the general path's events.
    if bytes.first() == Some(&b'{') && !bytes.iter().any(|b| matches!(b, b'\n' | b'\r')) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            let general: Vec<_> = tracehunt_readers::records_of_json_value(v)
                .into_iter()
                .filter_map(Result::ok)
                .map(|mut ev| {
                    ev.meta.record_id.get_or_insert(1);
                    ev
                })
                .collect();
            let read: Vec<_> = whole.iter().filter_map(|r| r.as_ref().ok()).cloned().collect();
            assert_eq!(format!("{read:?}"), format!("{general:?}"), "fast path differs");
        }
    }
});
