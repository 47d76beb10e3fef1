//! One EVTX chunk behind a valid file header: the input is the chunk's
//! bytes (the fuzzer need not rediscover the file layout). A second copy
//! of the input after a first chunk exercises resynchronisation.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut file = header(1);
    file.extend_from_slice(data);
    let _ = common::read_all("fuzz_chunk.evtx", &file);
});

/// A 4 KiB EVTX file header declaring `chunks` chunks, with a valid CRC32.
fn header(chunks: u16) -> Vec<u8> {
    let mut h = vec![0u8; 4096];
    h[..8].copy_from_slice(b"ElfFile\0");
    h[32..36].copy_from_slice(&128u32.to_le_bytes());
    h[36..38].copy_from_slice(&1u16.to_le_bytes());
    h[38..40].copy_from_slice(&3u16.to_le_bytes());
    h[40..42].copy_from_slice(&4096u16.to_le_bytes());
    h[42..44].copy_from_slice(&chunks.to_le_bytes());
    h
}
