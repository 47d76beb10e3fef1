//! EVTX reading with recovery, on top of the `evtx` crate.
//!
//! An EVTX file is a 4 KiB file header followed by 64 KiB chunks; each chunk
//! is self-contained (its own string and template tables), so chunks can be
//! parsed independently and in any order. Opening a file builds a *plan*:
//! the list of work units (chunks, damaged regions, a missing-chunks note)
//! in record order. [`EvtxChunks::chunk`] parses one unit; the streaming
//! iterator is the concatenation of all units, so both give the same
//! records and errors in the same order.
//!
//! Building the plan ([`plan`]): chunks are expected every 64 KiB from
//! offset 4096. A slot with the `ElfChnk\0` signature is a chunk; an
//! all-zero slot is unused; any other slot is searched for the next
//! `ElfChnk\0` signature (resynchronisation after inserted or deleted
//! bytes) — if none starts inside the slot, the slot is tried as a chunk
//! whose signature was damaged — unless it holds no record magic and lies
//! past the chunk count of an intact file header: then it is damaged unused
//! space, one [`RecordErrorKind::DamagedUnusedChunk`] error that loses no
//! record. The file header is not trusted for layout: its chunk count and
//! next EventRecordID are only used, when its CRC32 checks out, for that
//! and to report (and count) chunks missing from a file cut short. A whole chunk that is a byte-for-byte copy
//! of an earlier one (same 512-byte header, same 64 KiB) is skipped with one
//! [`RecordErrorKind::DuplicateChunk`] error, so its records come once.
//!
//! Parsing a chunk ([`read_chunk`]): the `evtx` crate walks the live
//! records and resynchronises on record magic (`**\0\0`) after a damaged
//! record. Checksums are not validated (a bad CRC32 never discards
//! records). When the first walk reports an error or fewer records than the
//! chunk header lists, further walks over a copy of the chunk — with the
//! magic of every record already read blotted out, so that the crate's
//! resynchronisation lands on the records it skipped — recover intact
//! records that a damaged neighbour hid (e.g. one whose size field was
//! enlarged). A chunk whose header CRC32 fails is also walked with its
//! record-area bounds widened to the whole chunk. Records the chunk header
//! lists but that could not be found are reported as one error whose
//! [`RecordError::records`] is their number (so a summary counts them all);
//! for a chunk the file ends inside, the same count is on its `Truncated`
//! note. A whole slot whose chunk header is unusable (all zeros, or no
//! signature) gets the EventRecordID range between its neighbours' intact
//! headers ([`header_spans`]): records of that range found in it are live
//! (not slack), and its error counts the rest of the range as lost.

use crate::error::{Location, RecordError, RecordErrorKind};
use crate::holes::Holes;
use crate::Source;
use evtx::{EvtxChunk, EvtxChunkHeader, ParserSettings};
use std::collections::{BTreeSet, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracehunt_event::Event;

/// Size of an EVTX chunk, in bytes.
pub(crate) const CHUNK_SIZE: u64 = 65_536;
/// Where the first chunk starts: the file header block is 4 KiB.
pub(crate) const FILE_HEADER_SIZE: u64 = 4096;
/// Size of an EVTX chunk header; a partial chunk shorter than this holds no records.
const CHUNK_HEADER_SIZE: usize = 512;
/// Chunk signature.
const CHUNK_MAGIC: &[u8; 8] = b"ElfChnk\0";
/// File signature.
const FILE_MAGIC: &[u8; 8] = b"ElfFile\0";
/// Record signature.
const RECORD_MAGIC: &[u8; 4] = b"**\0\0";
/// Record header (24 bytes) + trailing size copy (4 bytes): the smallest record.
const MIN_RECORD: u64 = 28;
/// A chunk cannot list more records than fit in it.
const MAX_RECORDS_PER_CHUNK: u64 = CHUNK_SIZE / MIN_RECORD;
/// Extra walks over a chunk to recover records hidden by a damaged neighbour.
const MAX_RECOVERY_WALKS: usize = 16;

type Item = Result<Event, RecordError>;

/// Renders an error and its `source()` chain on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// One unit of work of an EVTX file.
#[derive(Debug, Clone)]
enum Unit {
    /// A chunk slot at file offset `offset`, the `number`-th 64 KiB slot of
    /// the file; `len` bytes of it are in the file (fewer than
    /// [`CHUNK_SIZE`]: the file ends inside it). `signature_ok`: it starts
    /// with `ElfChnk\0` (otherwise it is tried as a chunk anyway).
    /// `span`: for a chunk whose header is not intact, the EventRecordIDs
    /// `first..end` (half-open) its note counts, by the neighbouring intact
    /// chunk headers (see [`header_spans`]).
    Chunk {
        number: u64,
        offset: u64,
        len: u64,
        signature_ok: bool,
        span: Option<(u64, u64)>,
    },
    /// `len` bytes at `offset` with no chunk signature, followed by one:
    /// skipped while resynchronising.
    Gap { number: u64, offset: u64, len: u64 },
    /// An all-zero slot where the (intact) file header says a chunk is.
    /// `records`: the records it held by the neighbouring intact chunk
    /// headers (see [`header_spans`]), when known; with `through` > `number`,
    /// the records of the run of all-zero slots `number..=through`.
    /// `counted_with`: a slot whose records another note counts (this one
    /// counts none): a later slot of such a run, or a slot at the end of a
    /// file cut short, whose records the [`Unit::Missing`] note counts. `listed`: within the
    /// intact file header's chunk count; otherwise a chunk follows it.
    Zeroed {
        number: u64,
        offset: u64,
        records: Option<u64>,
        through: u64,
        counted_with: Option<CountedWith>,
        listed: bool,
    },
    /// `len` damaged bytes at `offset` in an unused slot: no chunk signature,
    /// no record magic, past the chunk count of the intact file header.
    /// `declared`: that chunk count. Skipped; no record lost.
    Unused {
        number: u64,
        offset: u64,
        len: u64,
        declared: u64,
    },
    /// The (intact) file header declares more chunks than the file holds
    /// (`present`: whole chunks, plus the one the file ends inside).
    /// `records`: the header's next EventRecordID minus one minus the
    /// highest last EventRecordID of the intact chunk headers present, when
    /// that is above 0 (the records of the missing chunks; unknown for a log
    /// that wrapped around).
    Missing {
        declared: u64,
        present: u64,
        records: Option<u64>,
    },
    /// EventRecordIDs below the intact file header's next EventRecordID that
    /// no chunk of the file lists and no other note counts (`records` of
    /// them): e.g. those of a chunk overwritten by a copy of a chunk the
    /// file ends inside, so that neither copy is whole.
    Uncounted { records: u64 },
    /// A whole chunk at `offset` that is a byte-for-byte copy of the earlier
    /// chunk `of` (at `of_offset`): skipped, so its records are read once.
    /// `overwrote`: the EventRecordIDs its slot held before the copy was
    /// written over it, by the neighbouring intact chunk headers (see
    /// [`header_spans`]; `None` for a copy inserted between chunks whose
    /// ids are contiguous: nothing lost).
    Duplicate {
        number: u64,
        offset: u64,
        of: u64,
        of_offset: u64,
        records: u64,
        overwrote: Option<(u64, u64)>,
    },
}

/// Header fields used for ordering and loss accounting.
#[derive(Debug, Clone, Copy)]
struct HeaderInfo {
    first_id: u64,
    last_id: u64,
    crc_ok: bool,
}

fn header_info(bytes: &[u8]) -> Option<HeaderInfo> {
    let bytes = bytes.get(..CHUNK_HEADER_SIZE)?;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
    let stored = u32::from_le_bytes(bytes[124..128].try_into().unwrap_or([0; 4]));
    let flags = u32::from_le_bytes(bytes[120..124].try_into().unwrap_or([0; 4]));
    let no_crc = flags & 0x4 != 0;
    Some(HeaderInfo {
        first_id: u64_at(24),
        last_id: u64_at(32),
        crc_ok: no_crc || crc_of(&[&bytes[..120], &bytes[128..512]]) == stored,
    })
}

/// CRC32 (IEEE) of the parts of a header its checksum covers.
fn crc_of(parts: &[&[u8]]) -> u32 {
    let joined: Vec<u8> = parts.concat();
    evtx::checksum_ieee(&joined)
}

/// Reads `len` bytes at `offset` (fewer at end of file).
fn read_at(src: &mut dyn Source, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    src.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 20));
    src.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads `len` bytes at `offset` into `buf` (replacing its contents;
/// fewer at the end of the stream), keeping its allocation.
fn read_into(
    src: &mut dyn Source,
    offset: u64,
    len: u64,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    src.seek(SeekFrom::Start(offset))?;
    buf.clear();
    src.take(len).read_to_end(buf)?;
    Ok(())
}

/// Whether every byte is 0. Folds 4 KiB blocks without an early exit so
/// the compiler vectorises it (a byte-at-a-time `all` was 5 % of an EVTX
/// parse-only run on EVTX-ATTACK-SAMPLES, whose files are mostly unused
/// slots).
fn all_zero(bytes: &[u8]) -> bool {
    bytes
        .chunks(4096)
        .all(|block| block.iter().fold(0u8, |acc, b| acc | b) == 0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Builds the list of units in record order (see the module docs). A slot
/// inside one of `holes` is all zeros without being read.
fn plan(
    src: &mut dyn Source,
    len: u64,
    file_header: &[u8],
    holes: Option<&Holes>,
) -> std::io::Result<Vec<Unit>> {
    // One unit per 64 KiB slot (a resynchronised gap adds one): sized once,
    // so a 4 GB file's plan does not double its vectors (issue #20 item 7).
    let slots = usize::try_from(len.saturating_sub(FILE_HEADER_SIZE) / CHUNK_SIZE + 2)
        .unwrap_or(usize::MAX)
        .min(1 << 24);
    let mut units = Vec::with_capacity(slots);
    let mut infos: Vec<Option<HeaderInfo>> = Vec::with_capacity(slots);
    // The header's chunk count (u16 at 0x2A), if the header is intact.
    let declared = (file_header.len() >= 128
        && crc_of(&[&file_header[..120]])
            == u32::from_le_bytes(file_header[124..128].try_into().unwrap_or([0; 4])))
    .then(|| u64::from(u16::from_le_bytes([file_header[0x2A], file_header[0x2B]])));
    let mut pos = FILE_HEADER_SIZE;
    let mut number = 0u64;
    let mut whole_slots = 0u64;
    let mut slot_buf: Vec<u8> = Vec::new();
    let mut last_chunk: Option<u64> = None;
    // Indexes in `units` of all-zero slots the file header does not list.
    let mut unlisted_zeros: Vec<usize> = Vec::new();
    while pos < len {
        let avail = (len - pos).min(CHUNK_SIZE);
        if avail == CHUNK_SIZE {
            whole_slots += 1;
        }
        // A hole reads as zeros: the slot is unused (or wiped) unread.
        let in_hole = holes.is_some_and(|h| h.covers(pos, pos + avail));
        let head = if in_hole {
            Vec::new()
        } else {
            read_at(src, pos, CHUNK_HEADER_SIZE as u64)?
        };
        let mut signature_ok = true;
        if !head.starts_with(CHUNK_MAGIC) {
            let zeros = in_hole || {
                // One buffer for every such slot (most of a preallocated
                // log's slots are unused: a fresh 64 KiB allocation each
                // cost page faults).
                read_into(src, pos, avail, &mut slot_buf)?;
                all_zero(&slot_buf)
            };
            let slot = &slot_buf[..];
            if zeros {
                // Unused slot (or zero padding at the end), unless the
                // intact file header says a chunk is there, or a chunk
                // follows it (kept for now, dropped below if none does).
                // A slot the file ends inside is kept only when listed.
                let listed = declared.is_some_and(|d| number < d);
                if avail == CHUNK_SIZE || listed {
                    if !listed {
                        unlisted_zeros.push(units.len());
                    }
                    units.push(Unit::Zeroed {
                        number,
                        offset: pos,
                        records: None,
                        through: number,
                        counted_with: None,
                        listed,
                    });
                    infos.push(None);
                }
                pos += CHUNK_SIZE;
                number += 1;
                continue;
            }
            // Resynchronise: look for a chunk signature from just after the
            // last chunk found (data deleted: the next chunk starts early)
            // to the end of this slot (data inserted: it starts late).
            let from = last_chunk.map_or(pos, |c| (c + 1).max(pos.saturating_sub(CHUNK_SIZE)));
            let window = read_at(src, from, pos + avail - from)?;
            match find(&window, CHUNK_MAGIC).map(|q| from + q as u64) {
                Some(q) if q < pos => {
                    // The next chunk starts inside the last chunk's slot.
                    let head = read_at(src, q, CHUNK_HEADER_SIZE as u64)?;
                    units.push(Unit::Chunk {
                        number,
                        offset: q,
                        len: (len - q).min(CHUNK_SIZE),
                        signature_ok: true,
                        span: None,
                    });
                    infos.push(header_info(&head));
                    last_chunk = Some(q);
                    pos = q + CHUNK_SIZE;
                    number += 1;
                    continue;
                }
                Some(q) if q > pos => {
                    // Damaged or inserted bytes before the next chunk.
                    units.push(Unit::Gap {
                        number,
                        offset: pos,
                        len: q - pos,
                    });
                    infos.push(None);
                    pos = q;
                    number += 1;
                    continue;
                }
                // No signature near, no record magic, past the chunks the
                // intact file header counts: damaged unused space.
                _ if declared.is_some_and(|d| number >= d)
                    && find(slot, RECORD_MAGIC).is_none() =>
                {
                    units.push(Unit::Unused {
                        number,
                        offset: pos,
                        len: avail,
                        declared: declared.unwrap_or(0),
                    });
                    infos.push(None);
                    pos += CHUNK_SIZE;
                    number += 1;
                    continue;
                }
                // No signature near: a chunk whose signature is damaged?
                _ => signature_ok = false,
            }
        }
        units.push(Unit::Chunk {
            number,
            offset: pos,
            len: avail,
            signature_ok,
            span: None,
        });
        infos.push(if signature_ok {
            header_info(&head)
        } else {
            None
        });
        if signature_ok {
            last_chunk = Some(pos);
        }
        pos += CHUNK_SIZE;
        number += 1;
    }
    dedupe(src, &mut units, &mut infos, file_header)?;
    // An all-zero slot the file header does not list (header damaged, or
    // stale as in a log copied from a live system) is a wiped chunk when a
    // chunk follows it (breaker finding: its records were lost silently);
    // after the last chunk it is unused space or padding. A copy of an
    // earlier chunk ([`Unit::Duplicate`]) does not count as a chunk here
    // (breaker finding: a copy appended after the unused slots made one of
    // them a 1-record loss).
    let last_data = units
        .iter()
        .rposition(|u| matches!(u, Unit::Chunk { .. } | Unit::Gap { .. }));
    let mut keep = vec![true; units.len()];
    for i in unlisted_zeros {
        keep[i] = last_data.is_some_and(|d| i < d);
    }
    // `retain` visits the elements once, in order.
    let mut k = keep.iter();
    units.retain(|_| k.next().copied().unwrap_or(true));
    let mut k = keep.iter();
    infos.retain(|_| k.next().copied().unwrap_or(true));
    let cut_inside = len > FILE_HEADER_SIZE && !(len - FILE_HEADER_SIZE).is_multiple_of(CHUNK_SIZE);
    // Chunks the file ends inside or before report their own loss.
    let present = whole_slots + u64::from(cut_inside);
    let complete = declared.is_some_and(|d| d <= present);
    // Chunks the intact file header counts beyond the end of the file.
    let mut missing = declared.filter(|&d| d > present).map(|declared| {
        let next_id = u64::from_le_bytes(file_header[24..32].try_into().unwrap_or([0; 8]));
        let newest = infos
            .iter()
            .flatten()
            .filter(|h| h.crc_ok && h.first_id <= h.last_id)
            .map(|h| h.last_id)
            .max()
            .unwrap_or(0);
        Unit::Missing {
            declared,
            present,
            records: next_id
                .checked_sub(newest + 1)
                .filter(|n| (1..=declared * MAX_RECORDS_PER_CHUNK).contains(n)),
        }
    });
    // The EventRecordIDs of the records found in each slot whose chunk
    // header is unusable (to split a damaged run's ids between its slots).
    let mut scans: Vec<Vec<u64>> = vec![Vec::new(); units.len()];
    for (i, scan) in scans.iter_mut().enumerate() {
        if let Unit::Chunk { offset, len, .. } = units[i] {
            if intact_header(&units[i], infos[i]).is_none() {
                *scan = record_ids(&read_at(src, offset, len)?);
            }
        }
    }
    let missing_slots = match missing {
        Some(Unit::Missing {
            declared, present, ..
        }) => Some(declared - present),
        _ => None,
    };
    // The intact file header lists every slot that holds a chunk.
    let last_listed = u64::from_le_bytes(file_header[16..24].try_into().unwrap_or([0; 8]));
    let uncounted_ok = complete
        && declared.is_some_and(|d| last_listed.checked_add(1) == Some(d))
        && declared.is_some_and(|d| {
            units.iter().all(|u| match *u {
                Unit::Chunk { number, .. } | Unit::Duplicate { number, .. } => number < d,
                _ => true,
            })
        });
    let (spans, missing_records) = header_spans(
        &units,
        &infos,
        file_header,
        complete,
        &scans,
        missing_slots,
        uncounted_ok,
    );
    match missing.as_mut() {
        Some(Unit::Missing { records, .. }) => {
            if let Some(n) = missing_records {
                *records = Some(n);
            }
        }
        _ => {
            if let Some(records) = missing_records.filter(|&n| n > 0) {
                missing = Some(Unit::Uncounted { records });
            }
        }
    }
    for (unit, n) in units.iter_mut().zip(spans) {
        match (unit, n) {
            (
                Unit::Zeroed {
                    records, through, ..
                },
                SlotSpan::Held {
                    first,
                    end,
                    through: t,
                },
            ) => {
                *records = Some(end - first);
                *through = t;
            }
            (Unit::Zeroed { counted_with, .. }, SlotSpan::InRun { first_of_run }) => {
                *counted_with = Some(CountedWith::Chunk(first_of_run));
            }
            (Unit::Zeroed { counted_with, .. }, SlotSpan::WithMissing) => {
                *counted_with = Some(CountedWith::Missing);
            }
            (Unit::Chunk { span, .. }, SlotSpan::Held { first, end, .. }) => {
                *span = Some((first, end));
            }
            (Unit::Duplicate { overwrote, .. }, SlotSpan::Held { first, end, .. })
                if end > first =>
            {
                *overwrote = Some((first, end - 1));
            }
            _ => {}
        }
    }
    // All-zero slots at the end of a file cut short, whose records are not
    // bounded otherwise: the missing-chunks note counts them (breaker
    // finding: they were counted twice, one record each and again there).
    if let Some(Unit::Missing {
        records: Some(_), ..
    }) = missing
    {
        for unit in units.iter_mut().rev() {
            match unit {
                Unit::Zeroed {
                    records: None,
                    counted_with: c @ None,
                    ..
                } => *c = Some(CountedWith::Missing),
                _ => break,
            }
        }
    }
    // Record order: from the chunk holding the oldest records (lowest first
    // EventRecordID) to the end of the file, then from the start, as the
    // `evtx` crate and Windows read a log that wrapped around. Headers whose
    // CRC32 checks out are preferred, so one damaged header cannot reorder
    // the file.
    let oldest = |need_crc: bool| {
        infos
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                h.filter(|h| h.first_id <= h.last_id && (h.crc_ok || !need_crc))
                    .map(|h| (h.first_id, i))
            })
            .min()
            .map(|(_, i)| i)
    };
    if let Some(i) = oldest(true).or_else(|| oldest(false)) {
        units.rotate_left(i);
    }
    units.extend(missing);
    // Kept for the whole read: no growth slack (issue #20 item 7).
    units.shrink_to_fit();
    Ok(units)
}

/// Which note counts the records of a [`Unit::Zeroed`] slot instead of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountedWith {
    /// The note of the first all-zero slot of its run (this slot number).
    Chunk(u64),
    /// The [`Unit::Missing`] note (next EventRecordID of the file header
    /// minus the newest record present covers the slots after the newest
    /// chunk too).
    Missing,
}

/// What the neighbouring intact chunk headers say a damaged slot held
/// (see [`header_spans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotSpan {
    /// Not known (the loss is counted as one record).
    Unknown,
    /// The slot's note counts EventRecordID `first..end` (half-open; may be
    /// empty); for an all-zero slot, with the all-zero slots after it up to
    /// slot `through` (its own number when alone).
    Held { first: u64, end: u64, through: u64 },
    /// An all-zero slot whose records the note of slot `first_of_run`
    /// counts.
    InRun { first_of_run: u64 },
    /// An all-zero slot whose records the [`Unit::Missing`] note counts.
    WithMissing,
}

/// The chunk header of `unit`, when it is intact: a chunk with its
/// signature, a CRC32 that checks out and a plausible record range.
fn intact_header(unit: &Unit, info: Option<HeaderInfo>) -> Option<HeaderInfo> {
    match unit {
        Unit::Chunk {
            signature_ok: true, ..
        } => info.filter(|h| {
            h.crc_ok && h.first_id <= h.last_id && h.last_id - h.first_id < MAX_RECORDS_PER_CHUNK
        }),
        _ => None,
    }
}

/// The EventRecordIDs of the records in a chunk slot's bytes, found by
/// their magic and a plausible size (a cheap scan, independent of the
/// chunk header; records the file ends inside count when their id is in
/// the file).
fn record_ids(slot: &[u8]) -> Vec<u64> {
    memchr::memmem::find_iter(slot, RECORD_MAGIC)
        .filter(|&o| o >= CHUNK_HEADER_SIZE && o + 16 <= slot.len())
        .filter_map(|o| {
            let size = u64::from(u32::from_le_bytes(slot[o + 4..o + 8].try_into().ok()?));
            ((MIN_RECORD..=CHUNK_SIZE - o as u64).contains(&size))
                .then(|| u64::from_le_bytes(slot[o + 8..o + 16].try_into().unwrap_or([0; 8])))
        })
        .collect()
}

/// For each unit of a damaged run, which EventRecordIDs its note counts.
///
/// A *damaged run* is a sequence of adjacent units whose chunk header is
/// unusable: all-zero slots ([`Unit::Zeroed`]), chunks whose header is not
/// intact (no signature, CRC32 mismatch, an implausible record range; also
/// the chunk the file ends inside), and slots overwritten by a copy of
/// another chunk ([`Unit::Duplicate`]). Its records are bounded by its
/// neighbours in file order: the last EventRecordID of the intact chunk
/// header before it and the first of the intact chunk header after it. With
/// no unit after it, the bound is the file header's next EventRecordID when
/// `complete` (the intact file header's chunks are all present), or when
/// the file was cut short (`missing_slots`: the chunks the intact file
/// header counts beyond the end of the file; the [`Unit::Missing`] note is
/// then the run's last member, and its count is returned), and the chunk
/// before holds the newest records. With no unit before it, EventRecordID
/// 1 when the intact file header names the run's first slot as its first
/// chunk and the chunk after holds the oldest records (a log that did not
/// wrap starts at 1). In a log that wrapped around (the oldest records are
/// not in the first intact chunk in file order), the last slot and the
/// first are neighbours, and slots right after the chunk with the newest
/// records are bounded by the file header's next EventRecordID.
///
/// The run's ids are split between its units by the records found in its
/// chunks (`scans`: the ids a cheap scan of each slot finds; issue #20 item
/// 1: a wipe from the start of one chunk to the middle of a later one left
/// a tail of records in the last chunk, the run had no intact neighbour on
/// either side of any of its slots, and 271 lost records were counted as
/// 3): a chunk with records found counts from the end of what the units
/// before it count to its highest id found; the units between two such
/// chunks (all-zero slots, overwritten slots, chunks with no record found)
/// count the ids between, on the first of them's note (the others refer to
/// it: [`SlotSpan::InRun`], an empty span, no overwritten records); what is
/// left after the last chunk with records goes to the units after it, or
/// to that chunk. A chunk then counts as lost the ids of its span it did
/// not recover, so the run's notes count every id of the run once,
/// whatever its chunks recover. (Issue #6 trial: two adjacent zeroed chunks
/// were counted as 1 lost record each instead of the 285 they held.)
///
/// [`SlotSpan::Unknown`] when a bound is missing or damaged, the ids do not
/// increase, or the count exceeds [`MAX_RECORDS_PER_CHUNK`] per slot.
fn header_spans(
    units: &[Unit],
    infos: &[Option<HeaderInfo>],
    file_header: &[u8],
    complete: bool,
    scans: &[Vec<u64>],
    missing_slots: Option<u64>,
    uncounted_ok: bool,
) -> (Vec<SlotSpan>, Option<u64>) {
    let intact = |i: usize| -> Option<HeaderInfo> {
        intact_header(units.get(i)?, infos.get(i).copied().flatten())
    };
    let all: Vec<HeaderInfo> = (0..units.len()).filter_map(intact).collect();
    let newest = all.iter().map(|h| h.last_id).max();
    let oldest = all.iter().map(|h| h.first_id).min();
    let header_ok = file_header.len() >= 128
        && crc_of(&[&file_header[..120]])
            == u32::from_le_bytes(file_header[124..128].try_into().unwrap_or([0; 4]));
    let u64_at = |o: usize| u64::from_le_bytes(file_header[o..o + 8].try_into().unwrap_or([0; 8]));
    let first_chunk = header_ok.then(|| u64_at(8));
    let file_next = header_ok.then(|| u64_at(24));
    let number = |i: usize| match units[i] {
        Unit::Chunk { number, .. }
        | Unit::Gap { number, .. }
        | Unit::Zeroed { number, .. }
        | Unit::Unused { number, .. }
        | Unit::Duplicate { number, .. } => number,
        Unit::Missing { present, .. } => present,
        Unit::Uncounted { .. } => u64::MAX,
    };
    let member = |i: usize| match units[i] {
        Unit::Zeroed { .. } | Unit::Duplicate { .. } => true,
        Unit::Chunk { .. } => intact(i).is_none(),
        _ => false,
    };
    // A log that wrapped around: its oldest records are not in the first
    // intact chunk in file order, and record order runs on from the last
    // slot to the first.
    // With an intact file header, it names the oldest chunk (so a log
    // whose first slot was overwritten by a copy of a later chunk is not
    // taken for one that wrapped).
    let wrapped = match first_chunk {
        Some(f) if !units.is_empty() => f != number(0),
        _ => (0..units.len())
            .find_map(intact)
            .is_some_and(|h| Some(h.first_id) != oldest),
    };
    // The ids `first..end` held by units `s..=e`, from the units around
    // them; `to_missing`: the run goes on to the end of a file cut short.
    let span = |s: usize, e: usize, to_missing: bool| -> Option<(u64, u64)> {
        let len = units.len();
        let next_id = if to_missing {
            file_next
        } else {
            file_next.filter(|_| complete)
        };
        let before = match s {
            0 if wrapped => Some(len - 1),
            0 => None,
            _ => Some(s - 1),
        };
        let after = if e + 1 < len {
            Some(e + 1)
        } else if wrapped {
            Some(0)
        } else {
            None
        };
        let (prev_last, next_first) = match before {
            Some(b) => {
                let last = intact(b)?.last_id;
                if newest == Some(last) {
                    // After the newest records: up to the header's next
                    // id (none left: the slots held the oldest records).
                    (last, next_id?)
                } else {
                    (last, intact(after?)?.first_id)
                }
            }
            None => {
                let next_first = match after {
                    Some(a) => intact(a)?.first_id,
                    None => next_id?,
                };
                if first_chunk != Some(number(s)) || (after.is_some() && oldest != Some(next_first))
                {
                    return None;
                }
                (0, next_first)
            }
        };
        let n = next_first.checked_sub(prev_last.checked_add(1)?)?;
        let slots = u64::try_from(e - s + 1)
            .ok()?
            .saturating_add(if to_missing { missing_slots? } else { 0 });
        (1..=MAX_RECORDS_PER_CHUNK.saturating_mul(slots))
            .contains(&n)
            .then_some((prev_last + 1, next_first))
    };
    let mut out = vec![SlotSpan::Unknown; units.len()];
    let mut missing_records = None;
    // Gives ids `first..end` to the units `group` (none of them with a
    // record found), on the first one's note, or on the missing-chunks
    // note when the group ends the file.
    let mut give =
        |out: &mut Vec<SlotSpan>, group: &[usize], first: u64, end: u64, missing: bool| {
            let carrier = if missing {
                missing_records = Some(end - first);
                None
            } else {
                group.first().copied()
            };
            for &k in group {
                out[k] = match (&units[k], Some(k) == carrier) {
                    (Unit::Zeroed { .. }, _) if missing => SlotSpan::WithMissing,
                    (Unit::Zeroed { .. }, true) => {
                        // The run of all-zero slots that starts here.
                        let mut t = k;
                        while group.contains(&(t + 1))
                            && matches!(units[t + 1], Unit::Zeroed { .. })
                        {
                            t += 1;
                        }
                        SlotSpan::Held {
                            first,
                            end,
                            through: number(t),
                        }
                    }
                    (Unit::Zeroed { .. }, false) => SlotSpan::InRun {
                        first_of_run: carrier.map_or(number(k), number),
                    },
                    (_, true) => SlotSpan::Held {
                        first,
                        end,
                        through: number(k),
                    },
                    (Unit::Chunk { .. }, false) => SlotSpan::Held {
                        first,
                        end: first,
                        through: number(k),
                    },
                    _ => SlotSpan::Unknown,
                };
            }
        };
    let mut i = 0;
    while i < units.len() {
        if !member(i) {
            i += 1;
            continue;
        }
        let mut e = i;
        while e + 1 < units.len() && member(e + 1) {
            e += 1;
        }
        let to_missing = missing_slots.is_some() && e + 1 == units.len() && !wrapped;
        if let Some((first, end)) = span(i, e, to_missing) {
            let mut cursor = first;
            let mut pending: Vec<usize> = Vec::new();
            let mut last_holder = None;
            for k in i..=e {
                let found = scans
                    .get(k)
                    .into_iter()
                    .flatten()
                    .filter(|&&id| cursor <= id && id < end);
                let (lo, hi) = found.fold((None, None), |(lo, hi), &id| {
                    (
                        Some(lo.map_or(id, |l: u64| l.min(id))),
                        Some(hi.map_or(id, |h: u64| h.max(id))),
                    )
                });
                match (lo, hi, &units[k]) {
                    (Some(lo), Some(hi), Unit::Chunk { .. }) => {
                        if !pending.is_empty() {
                            give(&mut out, &pending, cursor, lo, false);
                            pending.clear();
                            cursor = lo;
                        }
                        out[k] = SlotSpan::Held {
                            first: cursor,
                            end: hi + 1,
                            through: number(k),
                        };
                        cursor = hi + 1;
                        last_holder = Some(k);
                    }
                    _ => pending.push(k),
                }
            }
            match last_holder {
                Some(h) if pending.is_empty() && !to_missing => {
                    if let SlotSpan::Held { end: held_end, .. } = &mut out[h] {
                        *held_end = end;
                    }
                }
                _ => give(&mut out, &pending, cursor, end, to_missing),
            }
        }
        i = e + 1;
    }
    // A file cut short whose end is not a damaged run: the missing-chunks
    // note counts the ids below the file header's next EventRecordID that
    // no intact chunk header lists and no note counts (not only those after
    // the newest chunk present: a chunk overwritten by a copy of a chunk cut
    // away held ids below it).
    // Without missing chunks, with `uncounted_ok` (the intact file header
    // lists every chunk slot present, so its next EventRecordID is not
    // stale), such ids are returned too, for a note of their own.
    let slots = match missing_slots {
        Some(m) => Some(m),
        None => uncounted_ok.then_some(0),
    };
    if let (Some(slots), Some(next), false) = (slots, file_next, wrapped) {
        let lo = if first_chunk.is_some() && first_chunk == units.first().map(|_| number(0)) {
            Some(1)
        } else {
            oldest
        };
        let mut held: Vec<(u64, u64)> = all
            .iter()
            .map(|h| (h.first_id, h.last_id + 1))
            .chain(out.iter().filter_map(|o| match *o {
                SlotSpan::Held { first, end, .. } => Some((first, end)),
                _ => None,
            }))
            .chain(
                (0..units.len())
                    .filter(|&k| member(k) && out[k] == SlotSpan::Unknown)
                    .flat_map(|k| scans.get(k).into_iter().flatten().map(|&id| (id, id + 1))),
            )
            .collect();
        held.sort_unstable();
        if let Some(lo) = lo.filter(|&lo| lo < next) {
            let (mut covered, mut reach) = (0u64, lo);
            for (a, e) in held {
                let (a, e) = (a.max(reach), e.min(next));
                if a < e {
                    covered += e - a;
                    reach = e;
                }
            }
            let n = (next - lo).saturating_sub(covered);
            let cap =
                MAX_RECORDS_PER_CHUNK.saturating_mul(slots.saturating_add(units.len() as u64));
            missing_records = (n <= cap).then_some(n);
        }
    }
    (out, missing_records)
}

/// Replaces every whole chunk that is an exact copy of another chunk of the
/// file (a chunk copied twice by a broken collection or carving tool, or
/// written over another slot) by a [`Unit::Duplicate`], so its records are
/// not read twice (issue #6). Candidates are chunks with records whose
/// 512-byte headers are identical (the header holds the record id range,
/// the free-space offset and the records' CRC32); a candidate is a copy
/// only if all 64 KiB are equal.
///
/// Which of a set of identical chunks is the original and which the copies
/// (issue #20 item 2: a chunk overwritten by a copy of a *later* chunk made
/// the later chunk, the original, the duplicate — its slot blamed for a
/// loss, and the overwritten slot's own records lost unreported): the one
/// whose EventRecordIDs continue its neighbours' (the chunk before ends at
/// its first id minus one, the chunk after starts at its last id plus one;
/// before the first slot, EventRecordID 1; after the last, the intact file
/// header's next EventRecordID); on a tie, the first in file order.
///
/// Cost, linear in the number of chunks (issue #20 item 8: chunks sharing
/// one header were each compared with every earlier one, 32 s for 2,000
/// crafted chunks): one 512-byte read per chunk; a chunk whose header was
/// seen before is read and hashed once (SipHash with random keys: no crafted
/// collisions), and so is the first chunk with that header; a chunk whose
/// hash was seen before is compared byte for byte with one chunk of that
/// hash. Returns the number of 64 KiB reads.
fn dedupe(
    src: &mut dyn Source,
    units: &mut [Unit],
    infos: &mut [Option<HeaderInfo>],
    file_header: &[u8],
) -> std::io::Result<u64> {
    use std::collections::hash_map::{Entry, HashMap, RandomState};
    use std::hash::BuildHasher;
    let keys = RandomState::new();
    let mut reads = 0u64;
    let mut body = |src: &mut dyn Source, offset: u64, len: u64| -> std::io::Result<Vec<u8>> {
        reads += 1;
        read_at(src, offset, len)
    };
    // Header hash -> (first unit with it, whether its body is hashed yet).
    // Keyed by the hash, not the 512 bytes (issue #20 item 7: the headers
    // kept ~0.7 KB per chunk, 38 MB for a 4.6 GB file); a collision only
    // costs a body read, as duplicates are confirmed byte for byte.
    let mut by_head: HashMap<u64, (usize, bool)> = HashMap::new();
    // Body hash -> units with that hash and distinct bodies (one, but for
    // a collision), each with the copies of it found.
    let mut by_body: HashMap<u64, Vec<(usize, Vec<usize>)>> = HashMap::new();
    // A chunk the file ends inside that is the start of a copy of a whole
    // chunk (the unit of each).
    let mut cut_copy: Option<(usize, usize)> = None;
    for i in 0..units.len() {
        let Unit::Chunk {
            offset,
            len,
            signature_ok: true,
            ..
        } = units[i]
        else {
            continue;
        };
        if infos[i].is_none_or(|h| h.first_id > h.last_id) {
            continue;
        }
        let head = read_at(src, offset, CHUNK_HEADER_SIZE as u64)?;
        let free = head
            .get(48..52)
            .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
        if free as usize <= CHUNK_HEADER_SIZE {
            continue; // no records: identical empty chunks are not copies of anything
        }
        if len < CHUNK_SIZE {
            // The file ends inside it: a copy cut short of a whole chunk
            // with the same header is read from that chunk.
            if let Some(&(j, _)) = by_head.get(&keys.hash_one(&head)) {
                if let Unit::Chunk { offset: at, .. } = units[j] {
                    if body(src, at, len)? == read_at(src, offset, len)? {
                        cut_copy = Some((i, j));
                    }
                }
            }
            continue;
        }
        let first = match by_head.entry(keys.hash_one(&head)) {
            Entry::Vacant(v) => {
                v.insert((i, false));
                continue;
            }
            Entry::Occupied(mut o) => {
                let (first, hashed) = o.get_mut();
                (*first, !std::mem::replace(hashed, true))
            }
        };
        if let (j, true) = first {
            let Unit::Chunk { offset: at, .. } = units[j] else {
                continue;
            };
            let bytes = body(src, at, CHUNK_SIZE)?;
            by_body
                .entry(keys.hash_one(&bytes))
                .or_default()
                .push((j, Vec::new()));
        }
        let mine = body(src, offset, CHUNK_SIZE)?;
        let bucket = by_body.entry(keys.hash_one(&mine)).or_default();
        let mut placed = false;
        for (j, copies) in bucket.iter_mut() {
            let Unit::Chunk { offset: at, .. } = units[*j] else {
                continue;
            };
            if body(src, at, CHUNK_SIZE)? == mine {
                copies.push(i);
                placed = true;
                break;
            }
        }
        if !placed {
            bucket.push((i, Vec::new()));
        }
    }
    let header_ok = file_header.len() >= 128
        && crc_of(&[&file_header[..120]])
            == u32::from_le_bytes(file_header[124..128].try_into().unwrap_or([0; 4]));
    let next_id =
        header_ok.then(|| u64::from_le_bytes(file_header[24..32].try_into().unwrap_or([0; 8])));
    let last_chunk = units.iter().rposition(|u| matches!(u, Unit::Chunk { .. }));
    let plausible = |i: usize| infos[i].filter(|h| h.crc_ok && h.first_id <= h.last_id);
    // How well unit `i`'s ids continue its neighbours' (0 to 2).
    let fit = |i: usize| -> u8 {
        let Some(h) = plausible(i) else { return 0 };
        let before = match i {
            0 => h.first_id == 1,
            _ => plausible(i - 1).is_some_and(|p| p.last_id.checked_add(1) == Some(h.first_id)),
        };
        let after = if Some(i) == last_chunk {
            next_id.is_some_and(|n| h.last_id.checked_add(1) == Some(n))
        } else {
            i + 1 < units.len()
                && plausible(i + 1).is_some_and(|q| h.last_id.checked_add(1) == Some(q.first_id))
        };
        u8::from(before) + u8::from(after)
    };
    let mut copies_of: Vec<(usize, Vec<usize>)> = Vec::new();
    copies_of.extend(cut_copy.map(|(i, j)| (j, vec![i])));
    for (first, copies) in by_body.into_values().flatten() {
        if copies.is_empty() {
            continue;
        }
        let mut all = copies;
        all.push(first);
        all.sort_unstable();
        // Best fit, the first in file order on a tie.
        let original = all
            .iter()
            .copied()
            .max_by_key(|&k| (fit(k), std::cmp::Reverse(k)))
            .unwrap_or(first);
        all.retain(|&k| k != original);
        copies_of.push((original, all));
    }
    for (original, copies) in copies_of {
        let Unit::Chunk {
            number: of,
            offset: of_offset,
            ..
        } = units[original]
        else {
            continue;
        };
        for k in copies {
            let (Unit::Chunk { number, offset, .. }, Some(h)) = (&units[k], infos[k]) else {
                continue;
            };
            units[k] = Unit::Duplicate {
                number: *number,
                offset: *offset,
                of,
                of_offset,
                records: h.last_id - h.first_id + 1,
                overwrote: None,
            };
            infos[k] = None;
        }
    }
    Ok(reads)
}

/// An EVTX file opened for chunk-by-chunk reading, possibly in parallel.
///
/// Made by [`open_evtx_chunks`](crate::open_evtx_chunks) or
/// [`evtx_chunks_from_bytes`](crate::evtx_chunks_from_bytes). Each unit
/// (`0..len()`) is a 64 KiB chunk, or a damaged region / missing-chunks
/// note that yields only an error. Units are numbered in record order;
/// concatenating `chunk(0)`, `chunk(1)`, … gives exactly what the streaming
/// [`RecordIter`](crate::RecordIter) gives for the same file. `EvtxChunks`
/// is `Send + Sync`: call [`chunk`](Self::chunk) from several threads (the
/// file is read under a lock, 64 KiB at a time; parsing is done outside it).
pub struct EvtxChunks {
    path: PathBuf,
    src: Mutex<Box<dyn Source>>,
    units: Vec<Unit>,
    settings: Arc<ParserSettings>,
    header_crc_ok: bool,
    /// The file header starts with `ElfFile\0` (else the file was
    /// recognised by its first chunk: a [`RecordErrorKind::RepairedSignature`]
    /// note comes with unit 0).
    magic_ok: bool,
    file_len: u64,
}

impl std::fmt::Debug for EvtxChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvtxChunks")
            .field("path", &self.path)
            .field("units", &self.units.len())
            .field("file_len", &self.file_len)
            .finish_non_exhaustive()
    }
}

impl EvtxChunks {
    /// Opens an EVTX stream (already sniffed as EVTX). Errors are
    /// whole-file errors (file shorter than the 4 KiB header, I/O), as text.
    /// `holes`: byte ranges of the file known to read as zeros (a sparse
    /// file's holes), whose unused chunk slots are then not read.
    pub(crate) fn new(
        path: &Path,
        mut src: Box<dyn Source>,
        holes: Option<Holes>,
    ) -> Result<Self, String> {
        let io = |e: std::io::Error| e.to_string();
        let len = src.seek(SeekFrom::End(0)).map_err(io)?;
        if len < FILE_HEADER_SIZE {
            return Err(format!(
                "file too short for an EVTX file header ({len} bytes, the header is {FILE_HEADER_SIZE})"
            ));
        }
        let header = read_at(&mut *src, 0, 128).map_err(io)?;
        let units = plan(&mut *src, len, &header, holes.as_ref()).map_err(io)?;
        let stored = u32::from_le_bytes(header[124..128].try_into().unwrap_or([0; 4]));
        let header_crc_ok = crc_of(&[&header[..120]]) == stored;
        let settings = ParserSettings::new()
            .num_threads(1)
            .validate_checksums(false);
        Ok(EvtxChunks {
            path: path.to_path_buf(),
            src: Mutex::new(src),
            units,
            settings: Arc::new(settings),
            header_crc_ok,
            magic_ok: header.starts_with(FILE_MAGIC),
            file_len: len,
        })
    }

    /// Number of units (chunks, plus damaged regions and a missing-chunks
    /// note when present); valid arguments to [`chunk`](Self::chunk) are
    /// `0..len()`. Unused (all-zero) chunk slots are not counted.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// True when the file holds no chunk at all (e.g. a bare file header).
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The file, as given when opening.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file header's CRC32 checks out. A damaged file header
    /// does not stop reading: chunks are found by position and signature.
    pub fn header_intact(&self) -> bool {
        self.header_crc_ok
    }

    /// The records of unit `i`, in file order: `Ok` per recovered record,
    /// `Err` per damaged record, damaged region, or loss note (same
    /// semantics as the streaming iterator). Out-of-range `i` gives an
    /// empty vector. Reads at most 64 KiB of the file; an I/O error is a
    /// [`RecordErrorKind::Io`] item. Never panics on bad data: a panic
    /// inside the `evtx` crate is caught and reported as
    /// [`RecordErrorKind::ParserPanic`].
    pub fn chunk(&self, i: usize) -> Vec<Result<Event, RecordError>> {
        let mut items = self.unit_items(i);
        if i == 0 && !self.magic_ok {
            // Issue #20: the file was read past its damaged signature with
            // no word of it.
            items.insert(
                0,
                Err(RecordError::new(
                    &self.path,
                    Location::FileHeader,
                    RecordErrorKind::RepairedSignature,
                    "the file signature is damaged (not `ElfFile\\0`): the file was recognised \
                     by its first chunk's signature and read; nothing is lost by that",
                )
                .with_records(0)),
            );
        }
        items
    }

    /// The items of unit `i` (see [`EvtxChunks::chunk`]), without the file
    /// header's note.
    fn unit_items(&self, i: usize) -> Vec<Result<Event, RecordError>> {
        let Some(unit) = self.units.get(i) else {
            return Vec::new();
        };
        let err = |at, kind, reason: String| Err(RecordError::new(&self.path, at, kind, reason));
        match *unit {
            Unit::Missing {
                declared,
                present,
                records,
            } => vec![Err(RecordError::new(
                &self.path,
                Location::Chunk(present),
                RecordErrorKind::Truncated,
                format!(
                    "the file header declares {declared} chunks but the file holds {present}: \
                     the file was cut short{}",
                    records.map_or_else(String::new, |n| format!(
                        "; the {n} records of the missing chunks (by the header's next \
                         EventRecordID) are lost"
                    ))
                ),
            )
            .with_records(records.unwrap_or(1)))],
            Unit::Uncounted { records } => vec![Err(RecordError::new(
                &self.path,
                Location::FileHeader,
                RecordErrorKind::Evtx,
                format!(
                    "{records} EventRecordIDs below the file header's next EventRecordID are in \
                     no chunk of the file (chunks overwritten or cut short): their records are \
                     lost"
                ),
            )
            .with_records(records))],
            Unit::Zeroed {
                number,
                offset,
                records,
                through,
                counted_with,
                listed,
            } => {
                let zeros = if listed {
                    format!(
                        "chunk {number} at file offset {offset:#x} is all zeros although the \
                         file header lists it"
                    )
                } else {
                    format!(
                        "chunk {number} at file offset {offset:#x} is all zeros although chunks \
                         follow it"
                    )
                };
                let (note, count) = match (counted_with, records) {
                    (Some(CountedWith::Chunk(k)), _) => (
                        format!(
                            "{zeros}: its records are counted with chunk {k} (adjacent all-zero \
                             chunks)"
                        ),
                        0,
                    ),
                    (Some(CountedWith::Missing), _) => (
                        format!(
                            "{zeros}: its records are counted with the chunks missing after the \
                             end of the file (by the file header's next EventRecordID)"
                        ),
                        0,
                    ),
                    (None, Some(n)) if through > number => (
                        format!(
                            "{zeros}: the {n} records of the all-zero chunks {number}..={through} \
                             (by the neighbouring chunks' EventRecordIDs) are lost"
                        ),
                        n,
                    ),
                    (None, Some(n)) => (
                        format!(
                            "{zeros}: its {n} (by the neighbouring chunks' EventRecordIDs) \
                             records are lost"
                        ),
                        n,
                    ),
                    (None, None) => (format!("{zeros}: its records are lost"), 1),
                };
                vec![Err(RecordError::new(
                    &self.path,
                    Location::Chunk(number),
                    RecordErrorKind::Evtx,
                    note,
                )
                .with_records(count))]
            }
            Unit::Duplicate {
                number,
                offset,
                of,
                of_offset,
                records,
                overwrote,
            } => {
                let mut items = vec![err(
                    Location::Chunk(number),
                    RecordErrorKind::DuplicateChunk,
                    format!(
                        "chunk {number} at file offset {offset:#x} is an exact copy of chunk {of} \
                         at {of_offset:#x} (same header and bytes); skipped, its {records} \
                         records were read once from chunk {of}"
                    ),
                )
                .map_err(|e| e.with_records(0))];
                if let Some((a, b)) = overwrote {
                    let n = b - a + 1;
                    items.push(
                        err(
                            Location::Chunk(number),
                            RecordErrorKind::Evtx,
                            format!(
                                "chunk {number} at file offset {offset:#x} was overwritten by \
                                 that copy of chunk {of}: the {n} records it held \
                                 (EventRecordID {a}..={b}, by the neighbouring chunks' \
                                 EventRecordIDs) are lost"
                            ),
                        )
                        .map_err(|e| e.with_records(n)),
                    );
                }
                items
            }
            Unit::Unused {
                number,
                offset,
                len,
                declared,
            } => vec![Err(RecordError::new(
                &self.path,
                Location::Chunk(number),
                RecordErrorKind::DamagedUnusedChunk,
                format!(
                    "{len} damaged bytes at file offset {offset:#x} (unused chunk slot {number}: \
                     no chunk signature, no record, past the {} chunks the file header lists) \
                     skipped; no record lost",
                    declared
                ),
            )
            .with_records(0))],
            Unit::Gap {
                number,
                offset,
                len,
            } => vec![err(
                Location::Chunk(number),
                RecordErrorKind::Evtx,
                format!(
                    "{len} bytes at file offset {offset:#x} hold no chunk signature (damaged or \
                     shifted data); skipped to the next ElfChnk signature at {:#x}",
                    offset + len
                ),
            )],
            Unit::Chunk {
                number,
                offset,
                len,
                signature_ok,
                span,
            } => {
                let bytes = {
                    let mut src = match self.src.lock() {
                        Ok(g) => g,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    read_at(&mut **src, offset, len)
                };
                let bytes = match bytes {
                    Ok(b) => b,
                    Err(e) => {
                        return vec![err(
                            Location::Chunk(number),
                            RecordErrorKind::Io,
                            e.to_string(),
                        )]
                    }
                };
                let ctx = ChunkCtx {
                    path: &self.path,
                    number,
                    offset,
                    settings: &self.settings,
                    span,
                };
                match catch_unwind(AssertUnwindSafe(|| read_chunk(&ctx, bytes, signature_ok))) {
                    Ok(items) => items,
                    Err(_) => vec![err(
                        Location::Chunk(number),
                        RecordErrorKind::ParserPanic,
                        "the EVTX parser panicked; this chunk was skipped".into(),
                    )],
                }
            }
        }
    }
}

struct ChunkCtx<'a> {
    path: &'a Path,
    number: u64,
    offset: u64,
    settings: &'a Arc<ParserSettings>,
    /// The EventRecordIDs `first..end` this slot's note counts, by its
    /// neighbours' ids (set only for a chunk whose header is not intact;
    /// see [`header_spans`]): records of them in it are live, others are
    /// not its own, and its loss is counted.
    span: Option<(u64, u64)>,
}

/// A record (or failure) met while walking a chunk.
struct Found {
    /// Offset of the record in the chunk, when known.
    start: Option<u64>,
    /// Offset just past the record, when known.
    end: Option<u64>,
    record_id: Option<u64>,
    result: Result<Event, (RecordErrorKind, String)>,
}

/// Walks the records of one chunk image (exactly [`CHUNK_SIZE`] bytes).
/// `cut`: bytes of the image that came from the file (a partial chunk).
/// `Err` when the chunk cannot be parsed at all.
/// The image is borrowed (`EvtxChunk::new`: what `EvtxChunkData::new`
/// and `parse` do, with the same errors), so a walk copies no 64 KiB.
fn walk(
    data: &[u8],
    settings: &Arc<ParserSettings>,
    cut: Option<u64>,
) -> Result<Vec<Found>, String> {
    let header =
        EvtxChunkHeader::from_bytes(data).map_err(|e| chain(&evtx::err::ChunkError::from(e)))?;
    let mut parsed = match EvtxChunk::new(data, &header, Arc::clone(settings)) {
        Ok(p) => p,
        Err(e) => return Err(chain(&e)),
    };
    let mut out = Vec::new();
    for rec in parsed.iter() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let (start, record_id) = match &e {
                    evtx::err::EvtxError::FailedToReadRecordAt { offset, .. } => {
                        (Some(*offset), None)
                    }
                    evtx::err::EvtxError::FailedToParseRecord { record_id, .. } => {
                        (None, Some(*record_id))
                    }
                    _ => (None, None),
                };
                out.push(Found {
                    start,
                    end: None,
                    record_id,
                    result: Err((RecordErrorKind::Evtx, chain(&e))),
                });
                continue;
            }
        };
        let record_id = rec.event_record_id;
        let start = rec.binxml_offset.saturating_sub(24);
        // Record = 24-byte header, BinXML, 4-byte size copy.
        let end = rec.binxml_offset + u64::from(rec.binxml_size) + 4;
        if cut.is_some_and(|c| end > c) {
            out.push(Found {
                start: Some(start),
                end: Some(end),
                record_id: Some(record_id),
                result: Err((
                    RecordErrorKind::Truncated,
                    "record extends past the end of the file".into(),
                )),
            });
            break;
        }
        let (secs, nanos) = (rec.timestamp.as_second(), rec.timestamp.subsec_nanosecond());
        // The rendered JSON straight into an event (issue #22 item 2:
        // no `serde_json::Value`), same event and errors as before.
        let converted = rec
            .into_json_bytes()
            .and_then(|ser| crate::evtx_event::event_from_record_json(&ser.data));
        let result = match converted {
            Ok(ev) => match ev {
                Some(mut ev) => {
                    if ev.meta.timestamp.is_none() {
                        ev.meta.timestamp = chrono::DateTime::from_timestamp(
                            secs,
                            u32::try_from(nanos).unwrap_or(0),
                        );
                    }
                    if ev.meta.record_id.is_none() {
                        ev.meta.record_id = Some(record_id);
                    }
                    Ok(ev)
                }
                None => Err((
                    RecordErrorKind::UnrecognisedShape,
                    "rendered record has no Event/System element".into(),
                )),
            },
            Err(e) => Err((RecordErrorKind::Evtx, chain(&e))),
        };
        out.push(Found {
            start: Some(start),
            end: Some(end),
            record_id: Some(record_id),
            result,
        });
    }
    Ok(out)
}

/// Parses one chunk slot's bytes into items (see the module docs).
fn read_chunk(ctx: &ChunkCtx<'_>, bytes: Vec<u8>, signature_ok: bool) -> Vec<Item> {
    let err = |at, kind, reason: String| Err(RecordError::new(ctx.path, at, kind, reason));
    let present = bytes.len();
    let partial = (present as u64) < CHUNK_SIZE;
    let mut items: Vec<Item> = Vec::new();
    if present < CHUNK_HEADER_SIZE {
        if partial {
            items.push(
                err(
                    Location::Chunk(ctx.number),
                    RecordErrorKind::Truncated,
                    format!(
                        "file ends {present} bytes into chunk {} (chunks are {CHUNK_SIZE} bytes, \
                     the header alone {CHUNK_HEADER_SIZE}): its records are lost{}",
                        ctx.number,
                        span_note(span_len(ctx.span))
                    ),
                )
                .map_err(|e| e.with_records(span_len(ctx.span).unwrap_or(1))),
            );
        }
        return items;
    }
    let mut data = bytes;
    data.resize(CHUNK_SIZE as usize, 0);
    if !signature_ok {
        data[..8].copy_from_slice(CHUNK_MAGIC);
    }
    let info = header_info(&data);
    let cut = partial.then_some(present as u64);

    // First walk, with a fallback that drops a damaged string table (names
    // are then read where the records point, which the crate supports).
    let mut first = walk(&data, ctx.settings, cut);
    if first.is_err() {
        let mut no_strings = data.clone();
        no_strings[128..384].fill(0);
        if let Ok(f) = walk(&no_strings, ctx.settings, cut) {
            data = no_strings;
            first = Ok(f);
        }
    }
    let mut found = match first {
        Ok(f) => f,
        Err(reason) => {
            let what = if signature_ok {
                format!(
                    "chunk {} at file offset {:#x} cannot be parsed: {reason}",
                    ctx.number, ctx.offset
                )
            } else {
                format!(
                    "no chunk signature at file offset {:#x} (chunk slot {}) and no usable chunk \
                     header: {reason}; {present} bytes skipped{}",
                    ctx.offset,
                    ctx.number,
                    span_note(span_len(ctx.span))
                )
            };
            items.push(
                err(Location::Chunk(ctx.number), RecordErrorKind::Evtx, what)
                    .map_err(|e| e.with_records(span_len(ctx.span).unwrap_or(1))),
            );
            if partial {
                items.push(truncated(ctx, present, None));
            }
            return items;
        }
    };

    let raw_range = info
        .filter(|h| h.first_id <= h.last_id && h.last_id - h.first_id < MAX_RECORDS_PER_CHUNK)
        .map(|h| h.first_id..=h.last_id);
    let header_crc_ok = info.is_some_and(|h| h.crc_ok);
    // The record range of a header that fails its CRC32 is not trusted.
    let range = raw_range.clone().filter(|_| header_crc_ok);
    let ok_ids = |found: &[Found]| -> BTreeSet<u64> {
        found
            .iter()
            .filter(|f| f.result.is_ok())
            .filter_map(|f| f.record_id)
            .collect()
    };
    let expected = range.as_ref().map_or(0, |r| r.end() - r.start() + 1);
    let damaged = found
        .iter()
        .any(|f| matches!(f.result, Err((k, _)) if k != RecordErrorKind::Truncated));
    let missing_some = !partial && (ok_ids(&found).len() as u64) < expected;

    // Recovery walks: blot out the magic of every record read so far so
    // the crate's resynchronisation lands on the records it skipped.
    if damaged || missing_some || !header_crc_ok {
        // Names are read where the records point when the string table is
        // empty, so a damaged table cannot fail records here.
        let mut image = data.clone();
        image[128..384].fill(0);
        let raw_free = u64::from(u32::from_le_bytes(
            data[48..52].try_into().unwrap_or([0; 4]),
        ));
        if !header_crc_ok {
            // Widen the record area: free space offset and last record offset.
            image[44..48].copy_from_slice(&((CHUNK_SIZE - MIN_RECORD) as u32).to_le_bytes());
            image[48..52].copy_from_slice(&(CHUNK_SIZE as u32).to_le_bytes());
            image[24..32].copy_from_slice(&0u64.to_le_bytes());
            image[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        }
        for _ in 0..MAX_RECOVERY_WALKS {
            let seen = ok_ids(&found);
            for f in &found {
                if let (Ok(_), Some(s)) = (&f.result, f.start) {
                    let s = s as usize;
                    if let Some(m) = image.get_mut(s..s + 4) {
                        m.copy_from_slice(b"\xde\xad\xbe\xef");
                    }
                }
            }
            let Ok(more) = walk(&image, ctx.settings, cut) else {
                break;
            };
            let new: Vec<Found> = more
                .into_iter()
                .filter(|f| f.result.is_ok() && f.start.is_some())
                .filter(|f| {
                    f.record_id.is_some_and(|id| {
                        !seen.contains(&id)
                            && if header_crc_ok {
                                range.as_ref().is_none_or(|r| r.contains(&id))
                            } else {
                                // Header damaged: a record listed by its range,
                                // or inside its records area, is live; others
                                // (slack space, an older pass) are stale.
                                // With the ids the neighbours bound, only
                                // those are.
                                match ctx.span {
                                    Some((a, e)) => (a..e).contains(&id),
                                    None => {
                                        raw_range.as_ref().is_some_and(|r| r.contains(&id))
                                            || f.end.is_some_and(|e| e <= raw_free)
                                    }
                                }
                            }
                    })
                })
                .collect();
            if new.is_empty() {
                break;
            }
            // Errors about a recovered record, or inside one (the walk
            // losing step), are void.
            found.retain(|f| {
                f.result.is_ok()
                    || (f
                        .record_id
                        .is_none_or(|id| !new.iter().any(|n| n.record_id == Some(id)))
                        && f.start.is_none_or(|s| {
                            !new.iter().any(|n| {
                                n.start.is_some_and(|ns| ns <= s) && n.end.is_some_and(|ne| s < ne)
                            })
                        }))
            });
            found.extend(new);
            // Keep file order: sort by start offset; items without one keep
            // their place after the item before them.
            let mut key = 0u64;
            let mut keyed: Vec<(u64, usize, Found)> = found
                .into_iter()
                .enumerate()
                .map(|(i, f)| {
                    if let Some(s) = f.start {
                        key = s;
                    }
                    (key, i, f)
                })
                .collect();
            keyed.sort_by_key(|(k, i, _)| (*k, *i));
            found = keyed.into_iter().map(|(_, _, f)| f).collect();
        }
    }

    if let (None, Some((a, e))) = (&range, ctx.span) {
        // No usable chunk header: records outside the ids the neighbours
        // bound for this slot are counted by another slot's note.
        found.retain(|f| f.result.is_err() || f.record_id.is_none_or(|id| (a..e).contains(&id)));
    }
    let ok_count = found.iter().filter(|f| f.result.is_ok()).count() as u64;
    let final_ids = ok_ids(&found);
    if !signature_ok && ok_count > 0 {
        // Issue #20: a repaired chunk signature was not reported when every
        // record the header lists was recovered.
        items.push(
            err(
                Location::Chunk(ctx.number),
                RecordErrorKind::RepairedSignature,
                format!(
                    "chunk {} at file offset {:#x} has a damaged signature (not `ElfChnk\\0`): \
                     read as a chunk with its signature restored, {ok_count} records recovered; \
                     nothing is lost by the repair itself",
                    ctx.number, ctx.offset
                ),
            )
            .map_err(|e| e.with_records(0)),
        );
    }
    // In a slot whose ids the neighbours bound, an error about no record
    // of them (a walk stepping through zeros or noise) loses none.
    let junk = |f: &Found| match (&range, ctx.span) {
        (None, Some((a, e))) => f.record_id.is_none_or(|id| !(a..e).contains(&id)),
        _ => false,
    };
    let err_count = found
        .iter()
        .filter(|f| f.result.is_err() && !junk(f))
        .count() as u64;
    for f in found {
        let junk = junk(&f);
        items.push(match f.result {
            Ok(ev) => Ok(ev),
            Err((kind, reason)) => err(
                match f.start {
                    Some(s) => Location::Record {
                        chunk: ctx.number,
                        offset: Some(ctx.offset + s),
                        record_id: f.record_id,
                    },
                    None => Location::Record {
                        chunk: ctx.number,
                        offset: None,
                        record_id: f.record_id,
                    },
                },
                kind,
                reason,
            )
            .map_err(|e| if junk { e.with_records(0) } else { e }),
        });
    }
    let unaccounted = expected.saturating_sub(ok_count + err_count);
    // No usable chunk header, the ids the neighbours bound for this slot
    // known: its loss is counted by them.
    let span_lost = match (&range, ctx.span) {
        (None, Some((a, e))) => Some((a, e, (e - a).saturating_sub(ok_count + err_count))),
        _ => None,
    };
    if partial {
        items.push(truncated(
            ctx,
            present,
            match span_lost {
                Some((_, _, lost)) => Some(lost),
                None => range.is_some().then_some(unaccounted),
            },
        ));
    } else if let Some((a, e, lost)) = span_lost {
        let span = e - a;
        let what = if signature_ok {
            format!(
                "chunk {} at file offset {:#x} has a damaged chunk header",
                ctx.number, ctx.offset
            )
        } else {
            format!(
                "no chunk signature at file offset {:#x} (chunk slot {}) and no usable chunk \
                 header",
                ctx.offset, ctx.number
            )
        };
        let ids = if span == 0 {
            "by the neighbouring chunks' EventRecordIDs, counted with the damaged chunks \
             around it"
                .to_owned()
        } else {
            format!(
                "EventRecordID {a}..={}, by the neighbouring chunks' EventRecordIDs",
                e - 1
            )
        };
        items.push(
            err(
                Location::Chunk(ctx.number),
                RecordErrorKind::Evtx,
                format!(
                    "{what}: {ok_count} records recovered by scanning, {err_count} damaged; \
                     {lost} of the {span} records the slot held ({ids}) are lost"
                ),
            )
            .map_err(|e| e.with_records(lost)),
        );
    } else if !signature_ok && ok_count == 0 {
        items.push(err(
            Location::Chunk(ctx.number),
            RecordErrorKind::Evtx,
            format!(
                "no chunk signature at file offset {:#x} (chunk slot {}) and no records found \
                 in it: {present} bytes skipped",
                ctx.offset, ctx.number
            ),
        ));
    } else if unaccounted > 0 && (header_crc_ok || !signature_ok || ok_count > 0) {
        let (a, b) = range.map_or((0, 0), |r| (*r.start(), *r.end()));
        items.push(
            err(
                Location::Chunk(ctx.number),
                RecordErrorKind::Evtx,
                format!(
                    "{unaccounted} of the {expected} records the chunk header lists \
                 (EventRecordID {a}..={b}) were not found (damaged chunk)"
                ),
            )
            .map_err(|e| e.with_records(unaccounted)),
        );
    } else if !header_crc_ok && ok_count > 0 {
        let ids = &final_ids;
        let consistent = raw_range.as_ref().is_some_and(|r| {
            ids.len() as u64 == r.end() - r.start() + 1 && ids.iter().all(|id| r.contains(id))
        });
        if !consistent {
            let listed = raw_range.map_or_else(
                || "no usable record range".to_owned(),
                |r| format!("it lists EventRecordID {}..={}", r.start(), r.end()),
            );
            items.push(err(
                Location::Chunk(ctx.number),
                RecordErrorKind::Evtx,
                format!(
                    "chunk {} header is damaged (CRC32 mismatch; {listed}): {ok_count} records \
                     recovered by scanning the whole chunk; records may be missing",
                    ctx.number
                ),
            ));
        }
    }
    items
}

/// Number of records of a [`header_spans`] id range.
fn span_len(span: Option<(u64, u64)>) -> Option<u64> {
    span.map(|(a, e)| e - a)
}

/// `"; the N records it held (by ...) are lost"` when the span is known.
fn span_note(span: Option<u64>) -> String {
    span.map_or_else(String::new, |n| {
        format!("; the {n} records it held (by the neighbouring chunks' EventRecordIDs) are lost")
    })
}

/// The note for a chunk the file ends inside. `lost`: records the intact
/// chunk header lists that are neither recovered nor reported by their own
/// error; the note stands for that many records (1 when unknown).
fn truncated(ctx: &ChunkCtx<'_>, present: usize, lost: Option<u64>) -> Item {
    let records = lost.unwrap_or(1);
    let lost = match lost {
        Some(0) => "no record the chunk header lists is lost".into(),
        Some(1) => "1 record after the cut is lost".into(),
        Some(n) => format!("{n} records after the cut are lost"),
        None => "records after the cut are lost".into(),
    };
    Err(RecordError::new(
        ctx.path,
        Location::Chunk(ctx.number),
        RecordErrorKind::Truncated,
        format!(
            "file ends {present} bytes into chunk {} (chunks are {CHUNK_SIZE} bytes): {lost}",
            ctx.number
        ),
    )
    .with_records(records))
}

/// The streaming reader: the units of an [`EvtxChunks`], one after another.
pub(crate) struct EvtxRecords {
    chunks: EvtxChunks,
    next_unit: usize,
    buf: VecDeque<Item>,
}

impl EvtxRecords {
    pub(crate) fn new(chunks: EvtxChunks) -> Self {
        EvtxRecords {
            chunks,
            next_unit: 0,
            buf: VecDeque::new(),
        }
    }
}

impl Iterator for EvtxRecords {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.buf.pop_front() {
                return Some(item);
            }
            if self.next_unit >= self.chunks.len() {
                return None;
            }
            self.buf.extend(self.chunks.chunk(self.next_unit));
            self.next_unit += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #20 item 8: 2,000 chunks sharing one 512-byte header (a real
    /// chunk of the bundled WMIexec sample, each copy with a different byte
    /// in its slack space) were each compared with every earlier one, about
    /// 2 million 64 KiB reads (32 s). The duplicate check now reads each
    /// chunk's 64 KiB at most once (plus one read per copy found).
    #[test]
    fn shared_chunk_headers_checked_in_linear_time() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../samples/evtx/EVTX_full_APT_attack_steps/",
            "ID4688-5140-5145-WMIexec execution via SMB (GLOBAL).evtx"
        );
        let log = std::fs::read(path).unwrap();
        let n = 2000u64;
        let mut bytes = log[..FILE_HEADER_SIZE as usize].to_vec();
        for i in 0..n {
            let at = FILE_HEADER_SIZE as usize;
            bytes.extend_from_slice(&log[at..at + CHUNK_SIZE as usize]);
            let end = bytes.len();
            bytes[end - 4..].copy_from_slice(&(i as u32).to_le_bytes());
        }
        // Chunk 7 copied over chunk 1500: one copy.
        let slot = |c: u64| (FILE_HEADER_SIZE + c * CHUNK_SIZE) as usize;
        bytes.copy_within(slot(7)..slot(8), slot(1500));
        let mut units = Vec::new();
        let mut infos = Vec::new();
        for number in 0..n {
            let offset = FILE_HEADER_SIZE + number * CHUNK_SIZE;
            units.push(Unit::Chunk {
                number,
                offset,
                len: CHUNK_SIZE,
                signature_ok: true,
                span: None,
            });
            infos.push(header_info(&bytes[offset as usize..]));
        }
        let mut src = std::io::Cursor::new(bytes);
        let header = src.get_ref()[..128].to_vec();
        let reads = dedupe(&mut src, &mut units, &mut infos, &header).unwrap();
        assert!(reads <= n + 1, "{reads} reads of 64 KiB for {n} chunks");
        let dups: Vec<_> = units
            .iter()
            .filter_map(|u| match u {
                Unit::Duplicate { number, of, .. } => Some((*number, *of)),
                _ => None,
            })
            .collect();
        assert_eq!(dups, [(1500, 7)]);
    }
}
