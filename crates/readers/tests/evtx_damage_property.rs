//! Property test of EVTX loss accounting (issue #20 items 1 and 2): random
//! damage on real EVTX files must never make records disappear uncounted,
//! nor count a record lost that was read. For every damaged variant,
//! `recovered + counted lost == records of the intact file`, where
//! "recovered" is the number of events read and "counted lost" the sum of
//! [`RecordError::records`] (what a summary reports).
//!
//! Damage (a deterministic seed): one zeroed byte range at any offset and of any length (inside a record, a chunk header,
//! from one chunk into another, over several chunks, ending mid-chunk or on
//! a chunk boundary) or one whole chunk overwritten by a copy of an earlier
//! or later chunk, either followed by a truncation of the file in some
//! cases; or a truncation alone.
//!
//! Files: EVTX-ATTACK-SAMPLES logs of 3, 10, 12 and 16 chunks (GPL-3.0;
//! `../shared/corpora/evtx-attack-samples`, read in place) and, since the
//! corpora hold no log of hundreds of chunks, a 306-chunk log assembled
//! from the real chunks of those files with EventRecordIDs renumbered
//! 1..=N (record headers, chunk headers and CRC32s rewritten; the record
//! bodies are the samples' own). Skipped with a note when the corpora are
//! missing.
//!
//! Case counts: 2,450 (under a minute in release);
//! `TRACEHUNT_EVTX_DAMAGE_SCALE=10` runs ten times as many.

use std::path::PathBuf;
use tracehunt_readers::{evtx_chunks_from_bytes, RecordError};

const HDR: usize = 4096;
const CHUNK: usize = 65_536;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }
}

fn corpora() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/evtx-attack-samples"
    ))
}

/// The multi-chunk logs used (tactic folder, file).
const FILES: &[&str] = &[
    "Execution/rogue_msi_url_1040_1042.evtx",
    "Lateral Movement/LM_5145_Remote_FileCopy.evtx",
    "Privilege Escalation/Sysmon_UACME_64.evtx",
    "Command and Control/bits_openvpn.evtx",
];

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// Number of slots that start with a chunk signature.
fn used_chunks(b: &[u8]) -> usize {
    (0..(b.len() - HDR) / CHUNK)
        .take_while(|c| &b[HDR + c * CHUNK..HDR + c * CHUNK + 8] == b"ElfChnk\0")
        .count()
}

/// A log of `n` chunks made of the real chunks of `sources` (cycled), with
/// EventRecordIDs renumbered 1.. in file order and every CRC32 rewritten.
pub fn assembled(sources: &[Vec<u8>], n: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = sources
        .iter()
        .flat_map(|b| (0..used_chunks(b)).map(move |c| &b[HDR + c * CHUNK..HDR + (c + 1) * CHUNK]))
        .collect();
    let mut out = sources[0][..HDR].to_vec();
    let mut next_id = 1u64;
    for i in 0..n {
        let mut c = chunks[i % chunks.len()].to_vec();
        let free = u32_at(&c, 48) as usize;
        let first = next_id;
        let mut o = 512;
        while o + 24 <= free && c[o..o + 4] == [0x2a, 0x2a, 0, 0] {
            let size = u32_at(&c, o + 4) as usize;
            c[o + 8..o + 16].copy_from_slice(&next_id.to_le_bytes());
            next_id += 1;
            o += size;
        }
        let last = next_id - 1;
        for at in [8, 24] {
            c[at..at + 8].copy_from_slice(&first.to_le_bytes());
        }
        for at in [16, 32] {
            c[at..at + 8].copy_from_slice(&last.to_le_bytes());
        }
        let records_crc = evtx::checksum_ieee(&c[512..free]);
        c[52..56].copy_from_slice(&records_crc.to_le_bytes());
        let head_crc = evtx::checksum_ieee(&[&c[..120], &c[128..512]].concat());
        c[124..128].copy_from_slice(&head_crc.to_le_bytes());
        out.extend_from_slice(&c);
    }
    out[8..16].copy_from_slice(&0u64.to_le_bytes());
    out[16..24].copy_from_slice(&(n as u64 - 1).to_le_bytes());
    out[24..32].copy_from_slice(&next_id.to_le_bytes());
    out[0x2A..0x2C].copy_from_slice(&(n as u16).to_le_bytes());
    let crc = evtx::checksum_ieee(&out[..120]);
    out[124..128].copy_from_slice(&crc.to_le_bytes());
    out
}

/// (events read, records the errors count as lost, errors).
pub fn read(name: &str, bytes: &[u8]) -> (u64, u64, Vec<RecordError>) {
    let chunks = evtx_chunks_from_bytes(name, bytes.to_vec()).unwrap();
    let (mut ok, mut lost, mut errs) = (0, 0, Vec::new());
    for i in 0..chunks.len() {
        for item in chunks.chunk(i) {
            match item {
                Ok(_) => ok += 1,
                Err(e) => {
                    lost += e.records;
                    errs.push(e);
                }
            }
        }
    }
    (ok, lost, errs)
}

/// One damage operation, for the failure report.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read through `Debug` in failure reports
enum Op {
    Zero {
        from: usize,
        to: usize,
    },
    Copy {
        from_chunk: usize,
        over_chunk: usize,
    },
    Cut {
        at: usize,
    },
}

fn damage(rng: &mut Rng, orig: &[u8], used: usize) -> (Vec<u8>, Vec<Op>) {
    let end = HDR + used * CHUNK;
    let mut v = orig.to_vec();
    let mut ops = Vec::new();
    // One zeroed range or one chunk copied over another, then, in some
    // cases, a truncation; or a truncation alone.
    let plan: &[u8] = match rng.below(20) {
        0..=8 => b"z",
        9..=13 => b"c",
        14..=15 => b"t",
        16..=17 => b"zt",
        _ => b"ct",
    };
    for &op in plan {
        if op == b'z' {
            // Zeroed range: any start in the chunks, often a chunk start;
            // any length up to 3.5 chunks, often ending on a boundary.
            let mut from = HDR + rng.below(end - HDR);
            if rng.chance(1, 4) {
                from = HDR + (from - HDR) / CHUNK * CHUNK;
            }
            let len = match rng.below(3) {
                0 => 1 + rng.below(2048),
                1 => 1 + rng.below(CHUNK),
                _ => 1 + rng.below(7 * CHUNK / 2),
            };
            let mut to = (from + len).min(v.len());
            if rng.chance(1, 4) {
                to = (HDR + (to - HDR).div_ceil(CHUNK) * CHUNK).min(v.len());
            }
            v[from..to].fill(0);
            ops.push(Op::Zero { from, to });
        } else if op == b'c' {
            // A whole chunk written over another (earlier or later) slot.
            if used < 2 {
                continue;
            }
            let from_chunk = rng.below(used);
            let mut over_chunk = rng.below(used);
            if over_chunk == from_chunk {
                over_chunk = (over_chunk + 1) % used;
            }
            let src = orig[HDR + from_chunk * CHUNK..HDR + (from_chunk + 1) * CHUNK].to_vec();
            let at = HDR + over_chunk * CHUNK;
            if at + CHUNK <= v.len() {
                v[at..at + CHUNK].copy_from_slice(&src);
                ops.push(Op::Copy {
                    from_chunk,
                    over_chunk,
                });
            }
        } else {
            // Truncation: anywhere in the chunks, often on a boundary.
            let mut at = HDR + rng.below(end - HDR + 1);
            if rng.chance(1, 4) {
                at = HDR + (at - HDR) / CHUNK * CHUNK;
            }
            v.truncate(at);
            ops.push(Op::Cut { at });
        }
    }
    (v, ops)
}

/// Random damage on real logs: recovered + counted lost = all records.
#[test]
fn random_damage_counts_every_lost_record_exactly() {
    let root = corpora();
    if !root.exists() {
        println!("note: {} not found; test skipped", root.display());
        return;
    }
    let scale: usize = std::env::var("TRACEHUNT_EVTX_DAMAGE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let sources: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(root.join(f)).unwrap())
        .collect();
    let big = assembled(&sources, 306);
    // (name, bytes, cases)
    let mut logs: Vec<(String, Vec<u8>, usize)> = FILES
        .iter()
        .zip(&sources)
        .map(|(f, b)| (f.rsplit('/').next().unwrap().to_owned(), b.clone(), 600))
        .collect();
    logs.push(("assembled-306-chunks.evtx".into(), big, 50));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut cases, mut under, mut over) = (0usize, 0usize, 0usize);
    let (mut worst_under, mut worst_over) = (0u64, 0u64);
    let mut failures: Vec<String> = Vec::new();
    for (name, orig, n) in &logs {
        let (total, lost0, errs0) = read(name, orig);
        assert_eq!(
            lost0, 0,
            "{name}: the intact file reads with errors: {errs0:#?}"
        );
        assert!(errs0.is_empty(), "{name}: {errs0:#?}");
        let used = used_chunks(orig);
        for case in 0..n * scale {
            let (v, ops) = damage(&mut rng, orig, used);
            let label = format!("{name}#{case}");
            let (ok, lost, errs) = read(&label, &v);
            cases += 1;
            let counted = ok + lost;
            if counted != total {
                if counted < total {
                    under += 1;
                    worst_under = worst_under.max(total - counted);
                } else {
                    over += 1;
                    worst_over = worst_over.max(counted - total);
                }
                if failures.len()
                    < std::env::var("TRACEHUNT_EVTX_DAMAGE_SHOW")
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(20)
                {
                    let notes: Vec<String> = errs
                        .iter()
                        .filter(|e| e.records != 1)
                        .take(8)
                        .map(|e| format!("  [{}] {}", e.records, e.reason))
                        .collect();
                    failures.push(format!(
                        "{label}: {ops:?}: {ok} read + {lost} counted lost = {counted}, not {total}\n{}",
                        notes.join("\n")
                    ));
                }
            }
        }
    }
    println!(
        "{cases} damaged cases: {under} under-counted (worst by {worst_under} records), \
         {over} over-counted (worst by {worst_over})"
    );
    assert!(
        under == 0 && over == 0,
        "{cases} cases: {under} under-counted (worst by {worst_under}), {over} over-counted \
         (worst by {worst_over}); first failures:\n{}",
        failures.join("\n")
    );
}

fn sources() -> Option<Vec<Vec<u8>>> {
    let root = corpora();
    if !root.exists() {
        println!("note: {} not found; test skipped", root.display());
        return None;
    }
    Some(
        FILES
            .iter()
            .map(|f| std::fs::read(root.join(f)).unwrap())
            .collect(),
    )
}

/// Issue #20 item 1: zeroing from the start of chunk 101 to the middle of
/// chunk 103 of a 306-chunk log lost 271 records and the summary counted 3;
/// from the middle of chunk 100 to the middle of chunk 103, 57 of 325. The
/// wiped run (all-zero slots, then a chunk whose header is gone but whose
/// tail survives) is bounded by the intact headers around it, and split
/// between its slots by the records found in them.
#[test]
fn wipe_ending_mid_chunk_counts_every_lost_record() {
    let Some(sources) = sources() else { return };
    let big = assembled(&sources, 306);
    let (total, _, errs) = read("intact", &big);
    assert!(errs.is_empty(), "{errs:#?}");
    assert_eq!(total, 24_517);
    let at = |c: usize| HDR + c * CHUNK;
    // (name, zeroed range, records read, records counted lost)
    for (name, from, to, ok, lost) in [
        (
            "chunk 101 to mid-103",
            at(101),
            at(103) + CHUNK / 2,
            24_375,
            142,
        ),
        (
            "mid-100 to mid-103",
            at(100) + CHUNK / 2,
            at(103) + CHUNK / 2,
            24_351,
            166,
        ),
        ("chunk 101 to 103 (boundary)", at(101), at(103), 24_424, 93),
    ] {
        let mut v = big.clone();
        v[from..to].fill(0);
        let (got, counted, errs) = read(name, &v);
        let notes: Vec<_> = errs.iter().filter(|e| e.records > 1).collect();
        assert_eq!((got, counted), (ok, lost), "{name}: {notes:#?}");
        assert_eq!(got + counted, total, "{name}");
    }
}

/// Issue #20 item 2: a chunk overwritten by a copy of a *later* chunk made
/// the later chunk (the original) the duplicate: its slot was blamed for the
/// loss of records that were read (from the copy), and the overwritten
/// slot's own records were lost unreported. Now the copy is the one whose
/// EventRecordIDs do not continue its neighbours'. File:
/// `rogue_msi_url_1040_1042` (chunks: EventRecordID 1-140, 141-285,
/// 286-351).
#[test]
fn chunk_overwritten_by_later_copy_blames_its_own_slot() {
    let root = corpora();
    let Ok(orig) = std::fs::read(root.join(FILES[0])) else {
        println!("note: corpora not found; test skipped");
        return;
    };
    let slot = |c: usize| HDR + c * CHUNK..HDR + (c + 1) * CHUNK;
    // (copied chunk, overwritten slot, records read, lost ids)
    for (from, over, ok, lost) in [
        (2, 0, 211, "1..=140"),
        (1, 0, 211, "1..=140"),
        (2, 1, 206, "141..=285"),
        (0, 2, 285, "286..=351"),
        (0, 1, 206, "141..=285"),
    ] {
        let mut v = orig.clone();
        v.copy_within(slot(from), slot(over).start);
        let name = format!("chunk {from} copied over chunk {over}");
        let (got, counted, errs) = read(&name, &v);
        assert_eq!((got, got + counted), (ok, 351), "{name}: {errs:#?}");
        assert_eq!(errs.len(), 2, "{name}: {errs:#?}");
        assert_eq!(errs[0].records, 0, "{name}");
        assert!(
            errs[0].reason.starts_with(&format!(
                "chunk {over} at file offset {:#x} is an exact copy of chunk {from}",
                slot(over).start
            )),
            "{name}: {}",
            errs[0]
        );
        assert!(
            errs[1].reason.starts_with(&format!(
                "chunk {over} at file offset {:#x} was overwritten by that copy of chunk {from}",
                slot(over).start
            )) && errs[1].reason.contains(&format!("(EventRecordID {lost},")),
            "{name}: {}",
            errs[1]
        );
    }
}

/// Issue #20 item 8: 2,000 chunks sharing one 512-byte header (each a real
/// chunk with a different byte in its slack space) made the duplicate check
/// compare every chunk with every earlier one: 32 s for the 131 MB file.
/// Opening it (the chunk plan) now reads each chunk once; this checks that
/// it opens, that no chunk is taken for a copy, and that a real copy among
/// them still is. (The count of reads is asserted by the unit test of the
/// same name in `evtx_reader.rs`.)
#[test]
fn shared_chunk_headers_checked_in_linear_time() {
    let Some(sources) = sources() else { return };
    let v = crafted_shared_headers(&sources[0], 2000);
    let chunks = evtx_chunks_from_bytes("crafted.evtx", v.clone()).unwrap();
    assert_eq!(chunks.len(), 2000);
    // One chunk made an exact copy of another: one duplicate.
    let mut w = v;
    w.copy_within(HDR + 7 * CHUNK..HDR + 8 * CHUNK, HDR + 1500 * CHUNK);
    let chunks = evtx_chunks_from_bytes("crafted-copy.evtx", w).unwrap();
    let dups = (0..chunks.len())
        .filter(|&i| {
            chunks.chunk(i).iter().any(|r| {
                r.as_ref()
                    .is_err_and(|e| e.kind == tracehunt_readers::RecordErrorKind::DuplicateChunk)
            })
        })
        .count();
    assert_eq!(dups, 1);
}

/// `n` copies of the first chunk of `log`, each with its slot number
/// written into the last 4 bytes of its slack space (so no two are equal),
/// all with the same 512-byte header.
pub fn crafted_shared_headers(log: &[u8], n: usize) -> Vec<u8> {
    let mut out = log[..HDR].to_vec();
    let chunk = &log[HDR..HDR + CHUNK];
    for i in 0..n {
        out.extend_from_slice(chunk);
        let end = out.len();
        out[end - 4..].copy_from_slice(&(i as u32).to_le_bytes());
    }
    out
}
