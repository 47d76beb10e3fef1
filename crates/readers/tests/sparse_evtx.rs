//! Issue #22: the unused (all-zero) chunk slots of a sparse EVTX file are
//! holes, which the reader takes as zeros without reading them
//! (`src/holes.rs`). Records, errors and loss counts must be exactly those
//! of reading every byte: each file here is written sparse (its all-zero
//! 64 KiB slots skipped, so they become holes) and read with
//! [`open_evtx_chunks`] and [`open`], and compared with the same bytes read
//! from memory ([`evtx_chunks_from_bytes`], [`open_bytes`]: no holes). The sample is
//! `samples/evtx` (CC0): 2 chunks and 15 unused slots.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use tracehunt_event::Event;
use tracehunt_readers::{
    evtx_chunks_from_bytes, open, open_bytes, open_evtx_chunks, EvtxChunks, RecordError,
};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../samples/evtx/EVTX_full_APT_attack_steps/ID4688-5140-5145-WMIexec execution via SMB (GLOBAL).evtx"
);
const HEADER: usize = 4096;
const SLOT: usize = 65_536;

/// One item as text (an event, or an error with its count).
fn text(r: Result<Event, RecordError>) -> String {
    match r {
        Ok(ev) => format!("{ev:?}"),
        Err(e) => format!("{e:?} records={}", e.records),
    }
}

/// Every unit's items, as text.
fn items(chunks: &EvtxChunks) -> Vec<String> {
    (0..chunks.len())
        .flat_map(|i| chunks.chunk(i))
        .map(text)
        .collect()
}

/// `bytes` written to `path` with its all-zero slots left as holes.
fn write_sparse(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&bytes[..HEADER]).unwrap();
    for (i, slot) in bytes[HEADER..].chunks(SLOT).enumerate() {
        if slot.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start((HEADER + i * SLOT) as u64)).unwrap();
            f.write_all(slot).unwrap();
        }
    }
    f.set_len(bytes.len() as u64).unwrap();
}

/// The sparse file's items equal the in-memory read's; the items.
fn same(bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.evtx");
    write_sparse(&path, bytes);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    #[cfg(unix)]
    {
        // Written sparse (on a file system with holes, as ext4 and tmpfs).
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&path).unwrap();
        println!("{} of {} bytes allocated", m.blocks() * 512, m.len());
    }
    let sparse = items(&open_evtx_chunks(&path).unwrap());
    let dense = items(&evtx_chunks_from_bytes(&path, bytes.to_vec()).unwrap());
    assert_eq!(sparse, dense);
    // The streaming reader (`open`, which `hunt` uses when there are many
    // files) too.
    let streamed: Vec<String> = open(&path).unwrap().map(text).collect();
    let in_memory: Vec<String> = open_bytes(&path, bytes.to_vec())
        .unwrap()
        .map(text)
        .collect();
    assert_eq!(streamed, in_memory);
    assert_eq!(streamed, sparse);
    sparse
}

fn sample() -> Vec<u8> {
    let bytes = std::fs::read(SAMPLE).unwrap();
    assert_eq!(bytes.len(), HEADER + 17 * SLOT);
    bytes
}

#[test]
fn sparse_copy_of_a_preallocated_log_reads_as_the_dense_file() {
    let got = same(&sample());
    assert!(got.iter().all(|i| !i.contains("RecordError")), "{got:?}");
    assert!(got.len() > 50, "{}", got.len());
}

#[test]
fn wiped_chunk_that_is_a_hole_is_counted_as_when_read() {
    // Chunk 1 wiped (a hole now): the file header lists it.
    let mut bytes = sample();
    bytes[HEADER + SLOT..HEADER + 2 * SLOT].fill(0);
    let got = same(&bytes);
    assert!(
        got.iter()
            .any(|i| i.contains("all zeros although the file header lists it")),
        "{got:?}"
    );
}

#[test]
fn holes_before_a_chunk_are_counted_as_when_read() {
    // Chunk 1 moved four slots on: the holes before it are wiped chunks.
    let mut bytes = sample();
    let chunk1 = bytes[HEADER + SLOT..HEADER + 2 * SLOT].to_vec();
    bytes[HEADER + SLOT..HEADER + 2 * SLOT].fill(0);
    bytes[HEADER + 5 * SLOT..HEADER + 6 * SLOT].copy_from_slice(&chunk1);
    let got = same(&bytes);
    assert!(got.iter().any(|i| i.contains("all zeros")), "{got:?}");
}
