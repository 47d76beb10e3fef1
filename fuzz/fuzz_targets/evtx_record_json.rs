//! Differential: an EVTX record's rendered JSON (what
//! `evtx::EvtxRecord::into_json_bytes` gives the reader) converted by the
//! reader's borrowing path and by the `serde_json::Value` path it replaced
//! (issue #22 item 2) must give the same event, or the same error, for any
//! bytes. Seeds: the `evtx` crate's JSON of the sample records
//! (`scripts/fuzz-seeds.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (new, _fast, reference) = tracehunt_readers::evtx_record_json_paths(data);
    assert_eq!(new, reference);
});
