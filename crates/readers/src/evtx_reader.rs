//! Streaming EVTX reader on top of the `evtx` crate.
//!
//! Reads one 64 KiB chunk at a time (`EvtxParser::into_chunks`), renders its
//! records to JSON values, converts them to [`Event`]s and hands them out;
//! at most one chunk's events are held in memory.

use crate::error::{Location, RecordError, RecordErrorKind};
use crate::shape;
use crate::Source;
use evtx::{EvtxChunkData, EvtxParser, IntoIterChunks, ParserSettings};
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracehunt_event::Event;

/// Size of an EVTX chunk.
const CHUNK_SIZE: u64 = 65_536;
/// Size of an EVTX chunk header; a partial chunk shorter than this holds no records.
const CHUNK_HEADER_SIZE: usize = 512;

type Item = Result<Event, RecordError>;

/// The trailing bytes of a file that ends inside a chunk.
struct Tail {
    chunk_number: u64,
    bytes: Vec<u8>,
}

pub(crate) struct EvtxRecords {
    path: PathBuf,
    chunks: IntoIterChunks<Box<dyn Source>>,
    settings: Arc<ParserSettings>,
    buf: VecDeque<Item>,
    /// Records met so far (ok and failed): the next record's index.
    index: u64,
    tail: Option<Tail>,
    /// Chunk count from the file header, and whole chunks present in the file:
    /// fewer present than declared means the file was cut at a chunk boundary.
    declared_chunks: u64,
    whole_chunks: u64,
    chunks_done: bool,
    /// A partial trailing chunk (not zero padding) was handled.
    tail_seen: bool,
    finished: bool,
}

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

impl EvtxRecords {
    /// Opens an EVTX stream (already sniffed). Errors are whole-file errors
    /// (header unusable, I/O).
    pub(crate) fn new(path: &Path, mut src: Box<dyn Source>) -> Result<Self, String> {
        let io = |e: std::io::Error| e.to_string();
        let len = src.seek(SeekFrom::End(0)).map_err(io)?;
        // File header: `ElfFile\0`, …, header block size (u16 LE) at 0x28,
        // chunk count (u16 LE) at 0x2A.
        let mut head = [0u8; 0x2C];
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        src.read_exact(&mut head).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "file too short for an EVTX file header".to_owned()
            }
            _ => format!("file header: {e}"),
        })?;
        let header_size = u64::from(u16::from_le_bytes([head[0x28], head[0x29]]));
        let declared_chunks = u64::from(u16::from_le_bytes([head[0x2A], head[0x2B]]));
        let whole_chunks = len.saturating_sub(header_size) / CHUNK_SIZE;
        let tail = match len.checked_sub(header_size) {
            Some(body) if header_size > 0 && body % CHUNK_SIZE != 0 => {
                let full = body / CHUNK_SIZE;
                let offset = header_size + full * CHUNK_SIZE;
                let mut bytes = Vec::new();
                src.seek(SeekFrom::Start(offset)).map_err(io)?;
                (&mut src)
                    .take(CHUNK_SIZE)
                    .read_to_end(&mut bytes)
                    .map_err(io)?;
                Some(Tail {
                    chunk_number: full,
                    bytes,
                })
            }
            _ => None,
        };
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        let parser = match catch_unwind(AssertUnwindSafe(|| EvtxParser::from_read_seek(src))) {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(chain(&e)),
            Err(_) => return Err("the EVTX parser panicked on the file header".into()),
        };
        // Parallelism is the caller's business (across files).
        let settings = ParserSettings::new().num_threads(1);
        let parser = parser.with_configuration(settings.clone());
        Ok(EvtxRecords {
            path: path.to_path_buf(),
            chunks: parser.into_chunks(),
            settings: Arc::new(settings),
            buf: VecDeque::new(),
            index: 0,
            tail,
            declared_chunks,
            whole_chunks,
            chunks_done: false,
            tail_seen: false,
            finished: false,
        })
    }

    /// Renders every record of `chunk` into `self.buf`. `valid_len`: for a
    /// zero-padded partial chunk, how many of its bytes came from the file;
    /// a record reaching past them is reported as truncated and ends the chunk.
    fn render_chunk(
        &mut self,
        mut chunk: EvtxChunkData,
        chunk_number: u64,
        valid_len: Option<u64>,
    ) {
        let settings = Arc::clone(&self.settings);
        let path = self.path.clone();
        let mut out: Vec<Item> = Vec::new();
        let mut index = self.index;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut parsed = match chunk.parse(settings) {
                Ok(p) => p,
                Err(e) => {
                    out.push(Err(RecordError::new(
                        &path,
                        Location::Chunk(chunk_number),
                        RecordErrorKind::Evtx,
                        chain(&e),
                    )));
                    return;
                }
            };
            for rec in parsed.iter() {
                let at_index = index;
                index += 1;
                let rec = match rec {
                    Ok(r) => r,
                    Err(e) => {
                        out.push(Err(RecordError::new(
                            &path,
                            Location::Record {
                                index: at_index,
                                record_id: record_id_of(&e),
                            },
                            RecordErrorKind::Evtx,
                            chain(&e),
                        )));
                        continue;
                    }
                };
                let record_id = rec.event_record_id;
                // Record = 24-byte header, BinXML, 4-byte size copy.
                let end = rec.binxml_offset + u64::from(rec.binxml_size) + 4;
                if valid_len.is_some_and(|cut| end > cut) {
                    out.push(Err(RecordError::new(
                        &path,
                        Location::Record {
                            index: at_index,
                            record_id: Some(record_id),
                        },
                        RecordErrorKind::Truncated,
                        "record extends past the end of the file",
                    )));
                    break;
                }
                let (secs, nanos) = (rec.timestamp.as_second(), rec.timestamp.subsec_nanosecond());
                match rec.into_json_value() {
                    Ok(ser) => match shape::event_from_json_value(&ser.data) {
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
                            out.push(Ok(ev));
                        }
                        None => out.push(Err(RecordError::new(
                            &path,
                            Location::Record {
                                index: at_index,
                                record_id: Some(record_id),
                            },
                            RecordErrorKind::UnrecognisedShape,
                            "rendered record has no Event/System element",
                        ))),
                    },
                    Err(e) => out.push(Err(RecordError::new(
                        &path,
                        Location::Record {
                            index: at_index,
                            record_id: Some(record_id),
                        },
                        RecordErrorKind::Evtx,
                        chain(&e),
                    ))),
                }
            }
        }));
        if result.is_err() {
            out.push(Err(RecordError::new(
                &self.path,
                Location::Chunk(chunk_number),
                RecordErrorKind::ParserPanic,
                "the EVTX parser panicked; the rest of this chunk was skipped",
            )));
        }
        self.index = index;
        self.buf.extend(out);
    }

    /// Handles a file that ends inside a chunk: renders what the partial
    /// chunk holds (padded with zeros to a full chunk) and reports the cut.
    fn render_tail(&mut self, tail: Tail) {
        let Tail {
            chunk_number,
            bytes,
        } = tail;
        if bytes.iter().all(|b| *b == 0) {
            return; // zero padding, not a cut
        }
        let cut = bytes.len();
        if cut >= CHUNK_HEADER_SIZE && bytes.starts_with(b"ElfChnk\0") {
            let mut data = bytes;
            data.resize(CHUNK_SIZE as usize, 0);
            match EvtxChunkData::new(data, false) {
                Ok(mut chunk) => {
                    chunk.number = Some(chunk_number);
                    self.render_chunk(chunk, chunk_number, Some(cut as u64));
                }
                Err(e) => self.buf.push_back(Err(RecordError::new(
                    &self.path,
                    Location::Chunk(chunk_number),
                    RecordErrorKind::Evtx,
                    chain(&e),
                ))),
            }
        }
        self.buf.push_back(Err(RecordError::new(
            &self.path,
            Location::Chunk(chunk_number),
            RecordErrorKind::Truncated,
            format!(
                "file ends {cut} bytes into chunk {chunk_number} (chunks are {CHUNK_SIZE} bytes): \
                 records after the cut are lost"
            ),
        )));
    }
}

/// The EventRecordID named by an `evtx` error, if any.
fn record_id_of(e: &evtx::err::EvtxError) -> Option<u64> {
    match e {
        evtx::err::EvtxError::FailedToParseRecord { record_id, .. } => Some(*record_id),
        _ => None,
    }
}

impl Iterator for EvtxRecords {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.buf.pop_front() {
                return Some(item);
            }
            if !self.chunks_done {
                match catch_unwind(AssertUnwindSafe(|| self.chunks.next())) {
                    Ok(Some(Ok(chunk))) => {
                        let n = chunk.number.unwrap_or(0);
                        self.render_chunk(chunk, n, None);
                    }
                    Ok(Some(Err(e))) => {
                        let at = match &e {
                            evtx::err::EvtxError::FailedToParseChunk { chunk_id, .. } => {
                                Location::Chunk(*chunk_id)
                            }
                            _ => Location::Record {
                                index: self.index,
                                record_id: None,
                            },
                        };
                        self.buf.push_back(Err(RecordError::new(
                            &self.path,
                            at,
                            RecordErrorKind::Evtx,
                            chain(&e),
                        )));
                    }
                    Ok(None) => self.chunks_done = true,
                    Err(_) => {
                        self.chunks_done = true;
                        self.buf.push_back(Err(RecordError::new(
                            &self.path,
                            Location::Record {
                                index: self.index,
                                record_id: None,
                            },
                            RecordErrorKind::ParserPanic,
                            "the EVTX parser panicked while reading chunks; reading stopped",
                        )));
                    }
                }
                continue;
            }
            if let Some(tail) = self.tail.take() {
                self.tail_seen = !tail.bytes.iter().all(|b| *b == 0);
                self.render_tail(tail);
                continue;
            }
            if self.finished {
                return None;
            }
            self.finished = true;
            // A cut inside a chunk was already reported by `render_tail`.
            let cut_inside_chunk = self.tail_seen;
            if !cut_inside_chunk && self.declared_chunks > self.whole_chunks {
                self.buf.push_back(Err(RecordError::new(
                    &self.path,
                    Location::Chunk(self.whole_chunks),
                    RecordErrorKind::Truncated,
                    format!(
                        "the file header declares {} chunks but the file holds {}: \
                         the file was cut short",
                        self.declared_chunks, self.whole_chunks
                    ),
                )));
            }
        }
    }
}
