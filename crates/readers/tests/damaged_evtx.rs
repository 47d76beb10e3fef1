//! Damaged-EVTX corpus (issue #6): every variant is generated here, in
//! memory, from the bundled CC0 sample logs in `samples/evtx` (see
//! `samples/LICENSE.md`), so CI needs nothing else.
//!
//! Damage: truncation at many offsets, flipped bytes in the file header,
//! chunk header, record headers, record bodies and the chunk string table,
//! zeroed chunks, duplicated chunks, wrong checksums, inserted and deleted
//! bytes (shifted chunks), a header-only file, random damage.
//!
//! For each variant the test asserts: no panic; the streaming reader and
//! the chunk-parallel API give identical items; the recovered-record count;
//! that every record whose own bytes (and chunk header) are intact comes
//! out identical to the undamaged file's; and that every record not
//! recovered is accounted for by at least one error, and counted exactly
//! by the errors' `records` (also when its chunk header is gone). Run with
//! `--nocapture` to print the per-variant table.

use std::collections::BTreeMap;
use std::path::PathBuf;
use tracehunt_event::Event;
use tracehunt_readers::{evtx_chunks_from_bytes, open_bytes, RecordError, RecordErrorKind};

const HDR: usize = 4096;
const CHUNK: usize = 65_536;

fn sample(name: &str) -> Vec<u8> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/evtx"));
    for e in walkdir(&root) {
        if e.file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with(name))
        {
            return std::fs::read(e).unwrap();
        }
    }
    panic!("sample {name} not found under {}", root.display());
}

fn walkdir(root: &std::path::Path) -> Vec<PathBuf> {
    tracehunt_readers::walk(&[root.to_path_buf()]).0
}

/// One record as laid out in the file, found by walking record headers by
/// hand (independently of the reader).
#[derive(Debug, Clone, Copy)]
struct Rec {
    chunk: usize,
    start: usize,
    end: usize,
    id: u64,
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn layout(b: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut c = 0;
    while HDR + (c + 1) * CHUNK <= b.len() {
        let base = HDR + c * CHUNK;
        if &b[base..base + 8] == b"ElfChnk\0" {
            let free = u32_at(b, base + 48) as usize;
            let mut o = 512;
            while o + 24 <= free && b[base + o..base + o + 4] == [0x2a, 0x2a, 0, 0] {
                let size = u32_at(b, base + o + 4) as usize;
                let id = u64::from_le_bytes(b[base + o + 8..base + o + 16].try_into().unwrap());
                out.push(Rec {
                    chunk: c,
                    start: base + o,
                    end: base + o + size,
                    id,
                });
                o += size;
            }
        }
        c += 1;
    }
    out
}

fn read(name: &str, bytes: &[u8]) -> (Vec<Event>, Vec<RecordError>) {
    let stream: Vec<_> = match open_bytes(name, bytes.to_vec()) {
        Ok(it) => it.collect(),
        Err(e) => panic!("{name}: whole-file error {e}"),
    };
    // The chunk-parallel API gives exactly the same items, in the same order.
    let chunks = evtx_chunks_from_bytes(name, bytes.to_vec()).unwrap();
    let mut parts: Vec<_> = Vec::new();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..chunks.len())
            .rev()
            .map(|i| {
                let c = &chunks;
                s.spawn(move || c.chunk(i))
            })
            .collect();
        parts = hs.into_iter().rev().map(|h| h.join().unwrap()).collect();
    });
    let concat: Vec<_> = parts.into_iter().flatten().collect();
    assert_eq!(stream, concat, "{name}: streaming and chunk API differ");
    let mut ev = Vec::new();
    let mut er = Vec::new();
    for r in stream {
        match r {
            Ok(e) => ev.push(e),
            Err(e) => er.push(e),
        }
    }
    (ev, er)
}

/// A damaged variant and what must come out of it.
struct Case {
    name: String,
    bytes: Vec<u8>,
    /// Records that must be recovered identical to the original (by id).
    intact: Vec<u64>,
    /// Number of records to recover (exact, or a range when the damaged
    /// record itself may or may not render).
    expect: std::ops::RangeInclusive<usize>,
}

struct Table(Vec<String>);
impl Table {
    fn row(&mut self, c: &Case, got: usize, total: usize, errs: &[RecordError]) {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for e in errs {
            let r = e.reason.split(':').next().unwrap_or("").to_owned();
            *reasons.entry(format!("{:?}: {}", e.kind, r)).or_default() += 1;
        }
        let reasons: Vec<String> = reasons.iter().map(|(k, v)| format!("{v}x {k}")).collect();
        self.0.push(format!(
            "| {} | {got}/{total} | {} |",
            c.name,
            reasons.join("; ")
        ));
    }
}

/// `recs[i]` is `original[i]`; `Case::intact` names records by their
/// record-header id, events carry the rendered `EventRecordID` (which can differ).
fn check(cases: Vec<Case>, recs: &[Rec], original: &[Event], table: &mut Table) {
    let by_id: BTreeMap<u64, &Event> = recs.iter().map(|r| r.id).zip(original).collect();
    for c in cases {
        let (ev, errs) = read(&c.name, &c.bytes);
        for e in &errs {
            assert!(e.to_string().starts_with(&c.name), "{e}");
        }
        let got: BTreeMap<u64, &Event> =
            ev.iter().map(|e| (e.meta.record_id.unwrap(), e)).collect();
        for id in &c.intact {
            let want = by_id[id];
            assert_eq!(
                got.get(&want.meta.record_id.unwrap()),
                Some(&want),
                "{}: intact record {id} lost or changed; got {:?}; errors: {errs:#?}",
                c.name,
                got.keys().collect::<Vec<_>>()
            );
        }
        assert!(
            c.expect.contains(&ev.len()),
            "{}: recovered {} not in {:?}; errors: {errs:#?}",
            c.name,
            ev.len(),
            c.expect
        );
        if ev.len() < original.len() {
            assert!(!errs.is_empty(), "{}: records lost silently", c.name);
            // Every missing record is counted (`RecordError::records`),
            // also where the chunk header itself is gone (counted by the
            // neighbouring chunk headers' EventRecordIDs).
            assert_eq!(
                lost(&errs),
                (original.len() - ev.len()) as u64,
                "{}: {} records missing, {} counted: {errs:#?}",
                c.name,
                original.len() - ev.len(),
                lost(&errs)
            );
        }
        table.row(&c, ev.len(), original.len(), &errs);
    }
}

fn flip(b: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut v = b.to_vec();
    v[at] ^= mask;
    v
}

fn ids(recs: &[Rec]) -> Vec<u64> {
    recs.iter().map(|r| r.id).collect()
}

/// 2 chunks (81 + 16 records) in a 1 MiB file; and a 91-record 1-chunk file.
const MULTI: &str = "ID4688-5140-5145-WMIexec";
const SINGLE: &str = "ID104-1102-Event log cleared";

#[test]
fn damaged_evtx_corpus() {
    let mut table = Table(Vec::new());
    for name in [MULTI, SINGLE] {
        let orig = sample(name);
        let recs = layout(&orig);
        let (original, errs) = read(name, &orig);
        assert!(errs.is_empty());
        assert_eq!(recs.len(), original.len());
        let n = recs.len();
        let all = ids(&recs);
        let chunks: Vec<usize> = {
            let mut c: Vec<usize> = recs.iter().map(|r| r.chunk).collect();
            c.dedup();
            c
        };
        let used_end = recs.last().unwrap().end;
        let mut cases = Vec::new();

        // Truncation at many offsets: records wholly before the cut survive.
        let mut cut = 0;
        while cut < used_end + 700 {
            let before: Vec<u64> = recs
                .iter()
                .filter(|r| r.end <= cut && cut - (HDR + r.chunk * CHUNK) >= 512)
                .map(|r| r.id)
                .collect();
            if cut >= HDR {
                cases.push(Case {
                    name: format!("{name} truncated at {cut}"),
                    bytes: orig[..cut].to_vec(),
                    expect: before.len()..=before.len(),
                    intact: before,
                });
            } else {
                // Shorter than the file header: a whole-file error, no panic.
                assert!(open_bytes("short", orig[..cut].to_vec()).is_err());
            }
            cut += if cut < HDR { 1021 } else { 1499 };
        }
        // Header only.
        cases.push(Case {
            name: format!("{name} header only"),
            bytes: orig[..HDR].to_vec(),
            intact: vec![],
            expect: 0..=0,
        });

        // File header: magic, chunk count, checksum, other fields: nothing lost.
        for (what, at) in [
            ("magic", 0),
            ("oldest chunk", 8),
            ("next record", 24),
            ("chunk count", 0x2A),
            ("flags", 120),
            ("checksum", 124),
            ("unused", 2000),
        ] {
            cases.push(Case {
                name: format!("{name} file header {what} flipped"),
                bytes: flip(&orig, at, 0x41),
                intact: all.clone(),
                expect: n..=n,
            });
        }

        for &c in &chunks {
            let base = HDR + c * CHUNK;
            let in_chunk: Vec<Rec> = recs.iter().copied().filter(|r| r.chunk == c).collect();
            let others: Vec<u64> = recs.iter().filter(|r| r.chunk != c).map(|r| r.id).collect();
            // Chunk header fields: nothing lost.
            for (what, at) in [
                ("signature", 0),
                ("first record number", 8),
                ("last record number", 16),
                ("first record id", 24),
                ("last record id", 32),
                ("header size", 40),
                ("last record offset", 44),
                ("free space offset", 48),
                ("free space offset (high)", 49),
                ("records checksum", 52),
                ("flags", 120),
                ("header checksum", 124),
                ("string table offset", 128 + 4 * 7),
                ("template table offset", 384 + 4 * 3),
            ] {
                cases.push(Case {
                    name: format!("{name} chunk {c} header {what} flipped"),
                    bytes: flip(&orig, base + at, 0x10),
                    intact: all.clone(),
                    expect: n..=n,
                });
            }
            // Every string-table bucket pointing elsewhere.
            let mut v = orig.clone();
            for i in 0..64 {
                v[base + 128 + 4 * i] ^= 0x5a;
            }
            cases.push(Case {
                name: format!("{name} chunk {c} string table scrambled"),
                bytes: v,
                intact: all.clone(),
                expect: n..=n,
            });
            // Zeroed chunk: its records are lost (and reported), others kept.
            let mut v = orig.clone();
            v[base..base + CHUNK].fill(0);
            cases.push(Case {
                name: format!("{name} chunk {c} zeroed"),
                bytes: v,
                expect: others.len()..=others.len(),
                intact: others.clone(),
            });
            // Garbage chunk: same.
            let mut v = orig.clone();
            let mut x = 0x9E37_79B9u32;
            for b in &mut v[base..base + CHUNK] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            cases.push(Case {
                name: format!("{name} chunk {c} overwritten with noise"),
                bytes: v,
                expect: others.len()..=others.len(),
                intact: others.clone(),
            });
            // Duplicated chunk (inserted right after itself): the copy is
            // skipped (one DuplicateChunk error), its records come once.
            let mut v = orig[..base + CHUNK].to_vec();
            v.extend_from_slice(&orig[base..]);
            cases.push(Case {
                name: format!("{name} chunk {c} duplicated"),
                bytes: v,
                intact: all.clone(),
                expect: n..=n,
            });
            // Per record k: damage to k's own bytes never costs another record.
            for (k, r) in in_chunk.iter().enumerate() {
                let rest: Vec<u64> = all.iter().copied().filter(|id| *id != r.id).collect();
                // Magic: k is lost, the walk resynchronises on the next magic.
                cases.push(Case {
                    name: format!("{name} record {} magic flipped", r.id),
                    bytes: flip(&orig, r.start, 0xff),
                    intact: rest.clone(),
                    expect: n - 1..=n - 1,
                });
                // Size field enlarged to swallow the next record (or the free space).
                let mut v = orig.clone();
                let bigger =
                    (r.end - r.start + in_chunk.get(k + 1).map_or(64, |x| x.end - x.start)) as u32;
                v[r.start + 4..r.start + 8].copy_from_slice(&bigger.to_le_bytes());
                cases.push(Case {
                    name: format!("{name} record {} size enlarged", r.id),
                    bytes: v,
                    intact: rest.clone(),
                    expect: n - 1..=n,
                });
                // Size field shrunk.
                let mut v = orig.clone();
                v[r.start + 4..r.start + 8].copy_from_slice(&40u32.to_le_bytes());
                cases.push(Case {
                    name: format!("{name} record {} size shrunk", r.id),
                    bytes: v,
                    intact: rest.clone(),
                    expect: n - 1..=n,
                });
                // First BinXML byte (fragment header token): k cannot be rendered.
                cases.push(Case {
                    name: format!("{name} record {} body token flipped", r.id),
                    bytes: flip(&orig, r.start + 24, 0xff),
                    intact: rest.clone(),
                    expect: n - 1..=n,
                });
            }
        }

        // Checksums all wrong at once.
        let mut v = flip(&orig, 124, 1);
        for &c in &chunks {
            v[HDR + c * CHUNK + 52] ^= 1;
            v[HDR + c * CHUNK + 124] ^= 1;
        }
        cases.push(Case {
            name: format!("{name} every checksum wrong"),
            bytes: v,
            intact: all.clone(),
            expect: n..=n,
        });

        if chunks.len() > 1 {
            let c1 = HDR + CHUNK;
            // Bytes inserted between chunk 0 and chunk 1: chunk 1 is found by its signature.
            let mut v = orig[..c1].to_vec();
            v.extend(std::iter::repeat_n(0xA5u8, 3000));
            v.extend_from_slice(&orig[c1..]);
            cases.push(Case {
                name: format!("{name} 3000 bytes inserted before chunk 1"),
                bytes: v,
                intact: all.clone(),
                expect: n..=n,
            });
            // 1000 bytes deleted inside chunk 0 at a record boundary... or not:
            // the records of chunk 0 after the deletion point lose their
            // chunk-relative template offsets; chunk 1 is found early.
            let cut_at = HDR + 30_000;
            let mut v = orig[..cut_at].to_vec();
            v.extend_from_slice(&orig[cut_at + 1000..]);
            let kept: Vec<u64> = recs
                .iter()
                .filter(|r| r.chunk != 0 || r.end <= cut_at)
                .map(|r| r.id)
                .collect();
            cases.push(Case {
                name: format!("{name} 1000 bytes deleted inside chunk 0"),
                bytes: v,
                // Records after the deletion render when the templates they
                // use sit before it (45 today); never fewer than `kept`.
                expect: kept.len()..=n,
                intact: kept,
            });
        }
        check(cases, &recs, &original, &mut table);
    }
    println!("| variant | recovered/original | errors (count x kind: reason) |\n|---|---|---|");
    for r in &table.0 {
        println!("{r}");
    }
}

/// A tiny deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Random damage anywhere, every sample: no panic, stream = chunks, and
/// every lost record accounted for by some error.
#[test]
fn random_damage_never_panics_and_never_loses_silently() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/evtx"));
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for path in walkdir(&root) {
        let orig = std::fs::read(&path).unwrap();
        let used = layout(&orig).last().map_or(HDR + 512, |r| r.end);
        let n = layout(&orig).len();
        for round in 0..30 {
            let mut v = orig.clone();
            for _ in 0..1 + round % 6 {
                let at = rng.next() as usize % used;
                v[at] = rng.next() as u8;
            }
            let name = format!("{}#{round}", path.file_name().unwrap().to_string_lossy());
            let Ok(_) = open_bytes(&*name, v.clone()) else {
                continue;
            };
            let (ev, errs) = read(&name, &v);
            if ev.len() > n {
                let _ = std::fs::write("/tmp/dbg/extra.evtx", &v);
                let diff: Vec<usize> = (0..v.len()).filter(|&i| v[i] != orig[i]).collect();
                panic!(
                    "{name}: {} records from {n}; damage at {diff:?}; {errs:?}",
                    ev.len()
                );
            }
            if ev.len() < n && errs.is_empty() {
                let _ = std::fs::write("/tmp/dbg/silent.evtx", &v);
                let diff: Vec<usize> = (0..v.len()).filter(|&i| v[i] != orig[i]).collect();
                panic!("{name}: lost records silently; damage at {diff:?}");
            }
            for e in &errs {
                assert_ne!(e.kind, RecordErrorKind::ParserPanic, "{e}");
            }
        }
    }
}

/// Issue #6: an identical chunk copied twice in a file used to yield every
/// record of it twice. The copy is skipped with one `DuplicateChunk` error,
/// wherever it sits; a chunk that differs in one byte is not a copy.
#[test]
fn duplicated_chunk_is_read_once_and_reported() {
    let orig = sample(MULTI);
    let recs = layout(&orig);
    let (original, _) = read("orig", &orig);
    let chunk0 = orig[HDR..HDR + CHUNK].to_vec();
    let in0 = recs.iter().filter(|r| r.chunk == 0).count() as u64;
    // Copy of chunk 0 adjacent, and at the end of the file.
    let mut adjacent = orig[..HDR + CHUNK].to_vec();
    adjacent.extend_from_slice(&orig[HDR..]);
    let mut at_end = orig.clone();
    let used = HDR + CHUNK * (recs.iter().map(|r| r.chunk).max().unwrap() + 1);
    at_end.truncate(used);
    at_end.extend_from_slice(&chunk0);
    for (name, bytes) in [("adjacent.evtx", adjacent), ("at-end.evtx", at_end)] {
        let (ev, errs) = read(name, &bytes);
        assert_eq!(ev, original, "{name}: records changed or doubled");
        let dups: Vec<_> = errs
            .iter()
            .filter(|e| e.kind == RecordErrorKind::DuplicateChunk)
            .collect();
        assert_eq!(dups.len(), 1, "{name}: {errs:#?}");
        assert!(
            dups[0].reason.contains("exact copy of chunk 0")
                && dups[0].reason.contains(&format!("its {in0} records")),
            "{}",
            dups[0]
        );
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
    }
    // One byte of a record body differs: not a copy, read as its own chunk.
    let mut near = orig[..HDR + CHUNK].to_vec();
    let mut copy = chunk0.clone();
    let r = recs.iter().find(|r| r.chunk == 0).unwrap();
    copy[r.end - HDR - 8] ^= 0x01;
    near.extend_from_slice(&copy);
    near.extend_from_slice(&orig[HDR + CHUNK..]);
    let (ev, errs) = read("near.evtx", &near);
    assert!(
        errs.iter()
            .all(|e| e.kind != RecordErrorKind::DuplicateChunk),
        "{errs:#?}"
    );
    assert!(ev.len() > original.len());
}

/// `rogue_msi_url_1040_1042` from evtx-attack-samples (GPL-3.0; 3 chunks,
/// 351 records), or `None` (with a note) when the corpora are missing.
fn rogue_msi() -> Option<Vec<u8>> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/evtx-attack-samples/Execution/rogue_msi_url_1040_1042.evtx"
    ));
    let bytes = std::fs::read(&path);
    if bytes.is_err() {
        println!("note: {} not found; test skipped", path.display());
    }
    bytes.ok()
}

/// Byte range of chunk slot `c` of an EVTX file.
fn slot(c: usize) -> std::ops::Range<usize> {
    HDR + c * CHUNK..HDR + (c + 1) * CHUNK
}

/// Sum of [`RecordError::records`]: what a summary counts as lost.
fn lost(errs: &[RecordError]) -> u64 {
    errs.iter().map(|e| e.records).sum()
}

/// Issue #6 (fresh-user trial): 0xff bytes written into a zeroed, unused
/// chunk slot after the last used chunk were reported as "1 record lost"
/// (all records were read). They are one `DamagedUnusedChunk` error that
/// stands for 0 records.
#[test]
fn garbage_in_unused_zeroed_chunk_loses_no_record() {
    let orig = sample(MULTI);
    let (original, _) = read("orig", &orig);
    assert_eq!(original.len(), 97);
    let slot2 = HDR + 2 * CHUNK;
    assert!(orig[slot2..slot2 + CHUNK].iter().all(|b| *b == 0));
    for (at, n) in [(100, 50), (100, 3000), (0, 50), (CHUNK - 50, 50)] {
        let mut b = orig.clone();
        b[slot2 + at..slot2 + at + n].fill(0xff);
        let name = format!("unused-{at}-{n}.evtx");
        let (ev, errs) = read(&name, &b);
        assert_eq!(ev, original, "{name}");
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
        assert_eq!(errs[0].kind, RecordErrorKind::DamagedUnusedChunk, "{name}");
        assert_eq!(errs[0].records, 0, "{name}");
        assert!(errs[0].reason.contains("no record lost"), "{}", errs[0]);
    }
}

/// Issue #6 (fresh-user trial): a file cut inside a chunk counted 2 lost
/// records (the cut record and one note) although the intact chunk header
/// lists more. Now the note stands for every record the header lists that
/// was neither recovered nor reported, so recovered + lost = all records;
/// and a cut inside chunk 0 also counts the records of the chunk after it
/// (by the file header's next EventRecordID; they used to be lost silently).
#[test]
fn cut_inside_chunk_counts_every_lost_record_of_its_header() {
    let orig = sample(MULTI);
    let recs = layout(&orig);
    assert_eq!(recs.len(), 97);
    for (chunk, at) in [(1, 2000), (0, CHUNK / 2), (0, 600)] {
        let cut = HDR + chunk * CHUNK + at;
        let name = format!("cut-{chunk}-{at}.evtx");
        let (ev, errs) = read(&name, &orig[..cut]);
        let whole = recs.iter().filter(|r| r.end <= cut).count();
        assert_eq!(ev.len(), whole, "{name}");
        assert_eq!(
            lost(&errs),
            (recs.len() - whole) as u64,
            "{name}: {errs:#?}"
        );
    }
    // Cut at the chunk boundary: the 16 records of chunk 1, by the header's
    // next EventRecordID (was: 1).
    let (ev, errs) = read("cut-boundary.evtx", &orig[..HDR + CHUNK]);
    assert_eq!(ev.len(), 81);
    assert_eq!(lost(&errs), 16, "{errs:#?}");
    assert!(errs[0]
        .reason
        .contains("the 16 records of the missing chunks"));
}

/// Issue #6: a chunk whose own header is destroyed (zeroed, or overwritten
/// with noise: its first/last EventRecordID unknown) was counted as 1 or 2
/// lost records instead of the 66-145 it held. Now its loss is counted by
/// the neighbouring intact chunk headers' EventRecordIDs (the file header's
/// next EventRecordID after the last chunk; EventRecordID 1 before the
/// first chunk of a log that did not wrap). File: `rogue_msi_url_1040_1042`
/// from evtx-attack-samples (GPL-3.0; 3 chunks: EventRecordID 1-140,
/// 141-285, 286-351; next EventRecordID 352). Skipped when the corpora are
/// missing.
#[test]
fn zeroed_chunk_header_counts_all_its_records() {
    let Some(orig) = rogue_msi() else {
        return;
    };
    let (original, errs) = read("orig", &orig);
    assert!(errs.is_empty(), "{errs:#?}");
    assert_eq!(original.len(), 351);
    let zeroed = |c: usize| {
        let mut v = orig.clone();
        v[HDR + c * CHUNK..HDR + (c + 1) * CHUNK].fill(0);
        v
    };
    let noise = |c: usize| {
        let mut v = orig.clone();
        let mut x = 0x2545_F491u32;
        for b in &mut v[HDR + c * CHUNK..HDR + (c + 1) * CHUNK] {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        v
    };
    // (variant, records recovered, records counted lost)
    for (name, bytes, recovered, counted) in [
        ("chunk 0 zeroed", zeroed(0), 211, 140),
        ("chunk 1 zeroed", zeroed(1), 206, 145),
        ("chunk 2 zeroed", zeroed(2), 285, 66),
        ("chunk 0 noise", noise(0), 211, 140),
        ("chunk 1 noise", noise(1), 206, 145),
        ("chunk 2 noise", noise(2), 285, 66),
    ] {
        let (ev, errs) = read(name, &bytes);
        assert_eq!(ev.len(), recovered, "{name}: {errs:#?}");
        assert_eq!(lost(&errs), counted, "{name}: {errs:#?}");
        assert!(
            errs.iter().any(|e| e
                .reason
                .contains("by the neighbouring chunks' EventRecordIDs")),
            "{name}: {errs:#?}"
        );
    }
    // Only the chunk header destroyed (its 512 bytes zeroed): its records
    // are recovered by scanning, as records of the neighbours' id range 141..=285
    // (was: 206 recovered, 1 lost; the records were taken for stale ones).
    let mut v = orig.clone();
    v[HDR + CHUNK..HDR + CHUNK + 512].fill(0);
    let (ev, errs) = read("chunk 1 header zeroed", &v);
    assert_eq!(ev, original, "{errs:#?}");
    assert_eq!(lost(&errs), 0, "{errs:#?}");
}

/// Issue #6 trial: two adjacent zeroed chunks (a wiped range) were counted
/// as 1 lost record each, since neither had an intact neighbour on both
/// sides. Now a run of adjacent all-zero chunks is bounded by the intact
/// neighbours of the whole run; its first chunk's note counts the run's
/// records, the others refer to it. A run of two slots without signature
/// but with noise (records possibly recoverable by scanning) is still
/// counted one record per slot. Same file as above
/// (`rogue_msi_url_1040_1042`: EventRecordID 1-140, 141-285, 286-351).
#[test]
fn adjacent_zeroed_chunks_counted_one_record_each() {
    let Some(orig) = rogue_msi() else {
        return;
    };
    let zeroed = |chunks: std::ops::Range<usize>| {
        let mut v = orig.clone();
        v[HDR + chunks.start * CHUNK..HDR + chunks.end * CHUNK].fill(0);
        v
    };
    // (variant, first zeroed chunk, records recovered, records counted lost,
    // note of the run's first chunk)
    for (name, zeroed_from, bytes, recovered, counted, note) in [
        (
            "chunks 0 and 1 zeroed",
            0,
            zeroed(0..2),
            66,
            285,
            "chunk 0 at file offset 0x1000 is all zeros although the file header lists it: \
             the 285 records of the all-zero chunks 0..=1 (by the neighbouring chunks' \
             EventRecordIDs) are lost",
        ),
        (
            "chunks 1 and 2 zeroed",
            1,
            zeroed(1..3),
            140,
            211,
            "chunk 1 at file offset 0x11000 is all zeros although the file header lists it: \
             the 211 records of the all-zero chunks 1..=2 (by the neighbouring chunks' \
             EventRecordIDs) are lost",
        ),
        (
            "all three chunks zeroed",
            0,
            zeroed(0..3),
            0,
            351,
            "chunk 0 at file offset 0x1000 is all zeros although the file header lists it: \
             the 351 records of the all-zero chunks 0..=2 (by the neighbouring chunks' \
             EventRecordIDs) are lost",
        ),
    ] {
        let (ev, errs) = read(name, &bytes);
        assert_eq!(ev.len(), recovered, "{name}: {errs:#?}");
        assert_eq!(lost(&errs), counted, "{name}: {errs:#?}");
        assert_eq!(errs[0].reason, note, "{name}");
        assert!(
            errs[1..].iter().all(|e| e.records == 0
                && e.reason.ends_with(&format!(
                    "its records are counted with chunk {} (adjacent all-zero chunks)",
                    zeroed_from
                ))),
            "{name}: {errs:#?}"
        );
    }
    // Chunks 0 and 1 overwritten with noise: no chunk signature, no record
    // found by scanning; issue #20 item 1: the run is bounded like an
    // all-zero one (EventRecordID 1..=285, was 4: one record per slot and
    // per record-magic error), the walks' errors over noise count none.
    let mut v = orig.clone();
    let mut x = 0x2545_F491u32;
    for b in &mut v[HDR..HDR + 2 * CHUNK] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let (ev, errs) = read("chunks 0 and 1 noise", &v);
    assert_eq!(ev.len(), 66);
    assert_eq!(lost(&errs), 285, "{errs:#?}");
}

/// Breaker findings on EVTX loss accounting, each a silent loss or a
/// double count before. File: `rogue_msi_url_1040_1042` (3 chunks:
/// EventRecordID 1-140, 141-285, 286-351; file header: 3 chunks, next
/// EventRecordID 352). Skipped when the corpora are missing.
/// - An all-zero chunk that the file header does not list (header CRC32
///   broken, or a stale chunk count as in a log copied from a live system)
///   was taken for unused space although a chunk follows it: its records
///   were lost silently.
/// - A chunk overwritten by a copy of another chunk was reported as a
///   duplicate with "nothing lost" although its own records were gone.
/// - All-zero chunks at the end of a file cut short were counted once each
///   and again by the missing-chunks note.
#[test]
fn unlisted_zeroed_and_overwritten_chunks_lost_silently() {
    let Some(orig) = rogue_msi() else {
        return;
    };
    let set_header_crc = |v: &mut Vec<u8>| {
        let crc = evtx::checksum_ieee(&v[..120]);
        v[124..128].copy_from_slice(&crc.to_le_bytes());
    };
    // Header CRC32 broken (a reserved byte flipped), chunk 1 zeroed.
    let mut broken = orig.clone();
    broken[100] ^= 0xff;
    broken[slot(1)].fill(0);
    // Stale but intact header: 1 chunk (CRC32 recomputed), chunk 1 zeroed.
    let mut stale = orig.clone();
    stale[0x2A..0x2C].copy_from_slice(&1u16.to_le_bytes());
    set_header_crc(&mut stale);
    stale[slot(1)].fill(0);
    // Stale header, chunks 1 and 2 zeroed: nothing follows them, so they
    // are unused space (no loss can be told apart from padding).
    let mut stale_end = stale.clone();
    stale_end[slot(2)].fill(0);
    for (name, bytes, recovered, counted, note) in [
        (
            "header CRC broken, chunk 1 zeroed",
            &broken,
            206,
            145,
            Some(
                "chunk 1 at file offset 0x11000 is all zeros although chunks follow it: its 145 \
                 (by the neighbouring chunks' EventRecordIDs) records are lost",
            ),
        ),
        (
            "stale header, chunk 1 zeroed",
            &stale,
            206,
            145,
            Some(
                "chunk 1 at file offset 0x11000 is all zeros although chunks follow it: its 145 \
                 (by the neighbouring chunks' EventRecordIDs) records are lost",
            ),
        ),
        ("stale header, chunks 1-2 zeroed", &stale_end, 140, 0, None),
    ] {
        let (ev, errs) = read(name, bytes);
        assert_eq!(ev.len(), recovered, "{name}: {errs:#?}");
        assert_eq!(lost(&errs), counted, "{name}: {errs:#?}");
        let reasons: Vec<_> = errs.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, Vec::from_iter(note), "{name}");
    }

    // Chunk 0 copied over chunk 1: the copy is skipped (its records come
    // once, from chunk 0) and chunk 1's own 145 records are counted lost.
    let mut v = orig.clone();
    v.copy_within(slot(0), HDR + CHUNK);
    let (ev, errs) = read("chunk 0 copied over chunk 1", &v);
    assert_eq!(ev.len(), 206, "{errs:#?}");
    assert_eq!(lost(&errs), 145, "{errs:#?}");
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[0].kind, RecordErrorKind::DuplicateChunk);
    assert_eq!(errs[0].records, 0);
    assert_eq!(
        errs[1].reason,
        "chunk 1 at file offset 0x11000 was overwritten by that copy of chunk 0: the 145 \
         records it held (EventRecordID 141..=285, by the neighbouring chunks' EventRecordIDs) \
         are lost"
    );
    // A copy inserted between chunks with contiguous ids loses nothing.
    let mut v = orig[..HDR + 2 * CHUNK].to_vec();
    v.extend_from_slice(&orig[slot(1)]);
    v.extend_from_slice(&orig[slot(2)]);
    let (ev, errs) = read("chunk 1 copy inserted", &v);
    assert_eq!(ev.len(), 351, "{errs:#?}");
    assert_eq!(lost(&errs), 0, "{errs:#?}");

    // Cut after chunk 1, which is zeroed: the 211 records after the newest
    // one present (EventRecordID 140; the header's next is 352) are counted
    // once, by the missing-chunks note (was 212: 1 more for chunk 1).
    let mut v = orig[..HDR + 2 * CHUNK].to_vec();
    v[slot(1)].fill(0);
    let (ev, errs) = read("chunk 1 zeroed, cut after it", &v);
    assert_eq!(ev.len(), 140, "{errs:#?}");
    assert_eq!(lost(&errs), 211, "{errs:#?}");
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].reason.ends_with(
            "its records are counted with the chunks missing after the end of the file (by the \
             file header's next EventRecordID)"
        ),
        "{errs:#?}"
    );
}

/// Breaker finding: in a log that wrapped around, a wiped chunk at either
/// end of the file, or right after the chunk with the newest records, was
/// counted as 1 lost record, although its neighbours in record order (the
/// last slot is followed by the first) or the file header's next
/// EventRecordID bound it. The log here is `rogue_msi_url_1040_1042`
/// rotated: slots hold EventRecordID 141-285, 286-351, 1-140; the file
/// header names slot 2 its first chunk and slot 1 its last (CRC32
/// recomputed). Skipped when the corpora are missing.
#[test]
fn wrapped_log_ends_counted_one_record_each() {
    let Some(orig) = rogue_msi() else {
        return;
    };
    let mut wrapped = orig[..HDR].to_vec();
    for c in [1, 2, 0] {
        wrapped.extend_from_slice(&orig[slot(c)]);
    }
    wrapped[8..16].copy_from_slice(&2u64.to_le_bytes());
    wrapped[16..24].copy_from_slice(&1u64.to_le_bytes());
    let crc = evtx::checksum_ieee(&wrapped[..120]);
    wrapped[124..128].copy_from_slice(&crc.to_le_bytes());
    let (ev, errs) = read("wrapped", &wrapped);
    assert!(errs.is_empty(), "{errs:#?}");
    let (original, _) = read("orig", &orig);
    assert_eq!(ev, original, "read in record order, as the unrotated file");
    // (zeroed slot, records recovered, records counted lost)
    for (zeroed, recovered, counted) in [
        // 141-285: between slot 2 (…140, the last slot) and slot 1 (286…).
        (0, 206, 145),
        // 286-351, the newest: after slot 0 (…285), up to next id 352.
        (1, 285, 66),
        // 1-140, the oldest: where they start is not known.
        (2, 211, 1),
    ] {
        let mut v = wrapped.clone();
        v[slot(zeroed)].fill(0);
        let name = format!("wrapped, slot {zeroed} zeroed");
        let (ev, errs) = read(&name, &v);
        assert_eq!(ev.len(), recovered, "{name}: {errs:#?}");
        assert_eq!(lost(&errs), counted, "{name}: {errs:#?}");
    }
}

/// Breaker finding: an intact file with a copy of one of its chunks
/// appended after an unused all-zero slot counted that slot as a wiped
/// chunk (1 record lost) because "a chunk follows it", though the chunk
/// after it was only the copy. Now nothing is lost: one DuplicateChunk note.
/// File: `rogue_msi_url_1040_1042` (3 chunks). Skipped when the corpora are
/// missing.
#[test]
fn appended_copy_made_unused_zero_slot_a_loss() {
    let Some(orig) = rogue_msi() else {
        return;
    };
    let mut v = orig[..HDR + 3 * CHUNK].to_vec();
    v.resize(HDR + 4 * CHUNK, 0);
    v.extend_from_slice(&orig[HDR + CHUNK..HDR + 2 * CHUNK]);
    let (ev, errs) = read("copy appended after a zero slot", &v);
    assert_eq!(ev.len(), 351, "{errs:#?}");
    assert_eq!(lost(&errs), 0, "{errs:#?}");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].kind, RecordErrorKind::DuplicateChunk);
}

/// Issue #20 item 9: a damaged file signature (`ElfFile\0`, the file found
/// by its first chunk) or chunk signature (`ElfChnk\0`, the chunk read
/// with it restored) was read past with no word of it when every record
/// came back. Each repair is now one `RepairedSignature` note that loses
/// nothing (`records` 0), naming the file header or the chunk; the records
/// are those of the undamaged file.
#[test]
fn repaired_file_and_chunk_signatures_are_reported() {
    let orig = sample(MULTI);
    let (original, errs) = read("orig", &orig);
    assert!(errs.is_empty(), "{errs:#?}");
    let mut chunk1 = orig.clone();
    chunk1[HDR + CHUNK] ^= 0x10;
    // (Both the file's and the first chunk's signature damaged: not
    // recognised as EVTX at all.)
    let mut both = flip(&orig, 0, 0x41);
    both[HDR + CHUNK] ^= 0x10;
    for (name, bytes, notes) in [
        ("file magic", flip(&orig, 0, 0x41), vec!["file header"]),
        ("chunk 1 magic", chunk1, vec!["chunk 1"]),
        ("both", both, vec!["file header", "chunk 1"]),
    ] {
        let (ev, errs) = read(name, &bytes);
        assert_eq!(ev, original, "{name}: {errs:#?}");
        let at: Vec<String> = errs.iter().map(|e| e.at.to_string()).collect();
        assert_eq!(at, notes, "{name}: {errs:#?}");
        for e in &errs {
            assert_eq!(e.kind, RecordErrorKind::RepairedSignature, "{name}: {e}");
            assert_eq!(e.records, 0, "{name}: {e}");
        }
    }
    let (_, errs) = read("chunk 1 magic", &{
        let mut v = orig.clone();
        v[HDR + CHUNK] ^= 0x10;
        v
    });
    assert!(
        errs[0].reason.starts_with(&format!(
            "chunk 1 at file offset {:#x} has a damaged signature (not `ElfChnk\\0`): read as a \
             chunk with its signature restored, 16 records recovered",
            HDR + CHUNK
        )),
        "{}",
        errs[0]
    );
}
