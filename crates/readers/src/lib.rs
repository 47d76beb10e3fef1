//! Readers that turn Windows, Linux, cloud, network and web server logs into
//! [`tracehunt_event::Event`]s.
//!
//! * **Format by content, not extension** ([`sniff`]): EVTX (`ElfFile\0`
//!   magic), a JSON array (`[`), or JSON lines (`{`, one object per line or
//!   pretty-printed objects one after another); then the text formats of
//!   issue #21: raw auditd, Zeek TSV, W3C extended (IIS), Apache/Nginx
//!   access logs, syslog (incl. Sysmon for Linux). A UTF-8 BOM is skipped;
//!   gzip is decompressed while reading. Anything else (`.pcap`, `.etl`,
//!   free text…) is a [`ReadError::UnsupportedFormat`].
//! * **Non-Windows events** carry a route key `product:name` in
//!   `meta.channel` (`linux:auditd`, `aws:cloudtrail`, `zeek:dns`,
//!   `webserver:access`…; Sysmon for Linux keeps `Linux-Sysmon/Operational`)
//!   and each format's own field names (nested JSON keys as dotted paths);
//!   the logsource map sends each rule to its product's keys only.
//! * **EVTX** through the `evtx` crate, one 64 KiB chunk at a time, with
//!   recovery (see [`EvtxChunks`]): chunks are found by position and by
//!   their `ElfChnk\0` signature (resynchronising after inserted, deleted
//!   or damaged bytes), checksums are reported but never discard records,
//!   the walk resynchronises on record magic, and records hidden by a
//!   damaged neighbour are recovered. A damaged record, chunk or region
//!   becomes one [`RecordError`] and reading goes on; a file cut inside a
//!   chunk yields the records before the cut, then a
//!   [`RecordErrorKind::Truncated`] error. [`open_evtx_chunks`] exposes the
//!   chunks for parallel parsing of one big file.
//! * **JSON** records in three shapes, detected per record by
//!   [`event_from_json_value`]: the `evtx` crate's JSON (`Event.System`,
//!   `Event.EventData`), Winlogbeat/ECS (`winlog.*`), and Mordor/nxlog flat
//!   (top-level `EventID`, `Channel`, `Hostname`, EventData fields).
//!   JSON lines and JSON arrays are both streamed (one line / one array
//!   element in memory at a time, at most 64 MiB each); a damaged line or
//!   element is one error and its neighbours are still read.
//!   Velociraptor's `parse_evtx` rows are read as evtx-JSON (by content:
//!   a top-level `System`).
//! * **Cloud and SaaS audit records** (issue #21, `cloud/`): CloudTrail,
//!   Kubernetes audit, Okta, GCP Cloud Audit, GitHub audit, Azure / Entra
//!   sign-in, audit and activity logs, M365 unified audit and Defender rows,
//!   recognised per record by marker fields; fields by full dotted path;
//!   `meta.channel` is the route key (`aws:cloudtrail`, `kubernetes:audit`,
//!   …). An envelope (`{"Records": [...]}`) gives one event per record.
//! * **gzip** (`1f 8b`, e.g. CloudTrail `.json.gz` from S3): decompressed on
//!   the fly and sniffed inside; never cut into JSON-lines ranges.
//! * **`ForwardedEvents`**: an event labelled with a WEF collector's
//!   channel gets the channel its provider writes to
//!   ([`FORWARDED_SOURCES`]), so logsource routing and `Channel` filters
//!   see its source channel; the label is kept as `CollectorChannel`.
//! * **Field names** follow Sigma (see [`event_from_json_value`]):
//!   `EventID`, `Channel`, `Computer`, `Provider_Name`, EventData/UserData
//!   fields by leaf name, repeated `Data` for unnamed data.
//!
//! Nothing here prints or panics on bad input: whole-file problems are
//! [`ReadError`]s, per-record problems are [`RecordError`]s in the stream.
//!
//! ```
//! use tracehunt_readers::{open_bytes, Format, RecordErrorKind};
//!
//! let data = br#"{"EventID": 4688, "Channel": "security", "Hostname": "WS1", "NewProcessName": "C:\\Windows\\System32\\whoami.exe"}
//! not json
//! {"Event": {"System": {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS2"}, "EventData": {"Image": "C:\\x.exe"}}}
//! "#;
//! let records = open_bytes("inline.jsonl", data.to_vec()).unwrap();
//! assert_eq!(records.format(), Format::JsonLines);
//! let (events, errors): (Vec<_>, Vec<_>) = records.partition(Result::is_ok);
//! let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].meta.channel.as_deref(), Some("Security")); // casing normalised
//! assert_eq!(events[0].first("Computer").and_then(|v| v.as_str()), Some("WS1"));
//! assert_eq!(events[1].first("Image").and_then(|v| v.as_str()), Some("C:\\x.exe"));
//! let err = errors.into_iter().next().unwrap().unwrap_err();
//! assert_eq!(err.kind, RecordErrorKind::InvalidJson);
//! assert!(err.to_string().starts_with("inline.jsonl: line 2:"));
//! ```

mod auditd;
mod caps;
mod channel;
mod cloud;
mod error;
mod evtx_event;
mod evtx_reader;
mod flat;
mod foreign;
mod gate;
mod gz;
mod holes;
mod json_reader;
mod jsonl_ranges;
mod shape;
mod syslog;
mod utf16;
mod web;
pub mod wire;
mod zeek;

pub use channel::{
    canonical_channel, forwarded_source_channel, ForwardedSource, COLLECTOR_CHANNEL_FIELD,
    FORWARDED_SOURCES,
};
pub use cloud::DROPPED_FIELD;
pub use error::{Location, ReadError, RecordError, RecordErrorKind, WalkError};
pub use evtx_reader::EvtxChunks;
pub use jsonl_ranges::{
    plan_json_lines, plan_json_lines_bytes, JsonLinesRange, JsonLinesRanges, LineRange,
    JSON_LINES_RANGE_BYTES,
};
pub use shape::{event_from_json_value, records_of_json_value};

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tracehunt_event::Event;

/// A readable, seekable byte source the readers can own and move across
/// threads (a `File`, a `Cursor<Vec<u8>>`, …).
pub(crate) trait Source: Read + Seek + Send {}
impl<T: Read + Seek + Send> Source for T {}

/// How many bytes [`open`] reads to [`sniff`] a file: the 4 KiB EVTX file
/// header plus the first chunk's 8-byte signature.
pub const SNIFF_LEN: usize = 4096 + 8;

/// A log file format, as told by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Windows XML Event Log (`.evtx`), starting with `ElfFile\0`.
    Evtx,
    /// A JSON array of event objects (`[ {...}, {...} ]`).
    JsonArray,
    /// JSON objects one after another: one per line (JSON lines / NDJSON),
    /// or pretty-printed and concatenated.
    JsonLines,
    /// Raw Linux audit log (`type=… msg=audit(…)` records).
    Auditd,
    /// Syslog lines (RFC 3164 / 5424, `auth.log`), incl. Sysmon for Linux.
    Syslog,
    /// Zeek TSV log (`#separator` header).
    ZeekTsv,
    /// W3C extended log (IIS).
    W3c,
    /// Apache / Nginx common or combined access log.
    AccessLog,
}

/// Tells the format of a file from its first bytes (pass at least the
/// first [`SNIFF_LEN`] bytes, or the whole file if shorter).
///
/// EVTX needs its 8-byte magic `ElfFile\0` at offset 0, or — for a file
/// whose header is damaged — the first chunk's signature `ElfChnk\0` at
/// offset 4096. For JSON, a UTF-8 BOM and
/// leading whitespace are skipped; `[` is a JSON array when what follows
/// (past more `[` of nested arrays) is `{`, `]`, nothing more in `head`, or
/// a JSON scalar followed by `,` or `]` (`[1, {…}]`); `{` followed by `"`,
/// `}` or nothing more is JSON lines. Returns `None` for anything else,
/// including empty input.
///
/// ```
/// use tracehunt_readers::{sniff, Format};
/// assert_eq!(sniff(b"ElfFile\0rest"), Some(Format::Evtx));
/// assert_eq!(sniff(b"\xEF\xBB\xBF [\n {\"a\":1}]"), Some(Format::JsonArray));
/// assert_eq!(sniff(b"[[{\"a\":1}]]"), Some(Format::JsonArray));
/// assert_eq!(sniff(b"[1, {\"a\":1}]"), Some(Format::JsonArray));
/// assert_eq!(sniff(b"{\"EventID\": 1}\n"), Some(Format::JsonLines));
/// assert_eq!(sniff(b"[11/Jul/2018:10:00] GET /"), None);
/// assert_eq!(sniff(b"[INFO] started"), None);
/// assert_eq!(sniff(b"\xd4\xc3\xb2\xa1"), None); // pcap
/// ```
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"ElfFile\0") || head.get(4096..4104) == Some(b"ElfChnk\0") {
        return Some(Format::Evtx);
    }
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let body = &body[start..];
    let next_after = |from: usize| {
        body[from..]
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace())
    };
    match body[0] {
        b'[' => {
            // Past the `[` of nested arrays (breaker finding: `[[{…}]]` and
            // `[1, {…}]` were "not a supported log format").
            let i = body
                .iter()
                .position(|b| !b.is_ascii_whitespace() && *b != b'[')
                .unwrap_or(body.len());
            match body.get(i) {
                None | Some(b'{' | b']') => Some(Format::JsonArray),
                Some(&first) => {
                    let mut it = serde_json::Deserializer::from_slice(&body[i..])
                        .into_iter::<serde_json::Value>();
                    let array = match it.next() {
                        Some(Ok(v)) if !v.is_object() && !v.is_array() => {
                            matches!(next_after(i + it.byte_offset()), None | Some(b',' | b']'))
                        }
                        // A long string cut by the end of `head`.
                        Some(Err(e)) => e.is_eof() && first == b'"',
                        _ => false,
                    };
                    array.then_some(Format::JsonArray)
                }
            }
        }
        b'{' => matches!(next_after(1), None | Some(b'"' | b'}')).then_some(Format::JsonLines),
        _ => sniff_text(head),
    }
}

/// Leading lines that may be skipped to find a line-oriented text format.
const MAX_LEADING_JUNK: usize = 3;

/// The text formats, most specific first (syslog, the loosest, last). When
/// the first line is none of them, up to [`MAX_LEADING_JUNK`] lines are
/// skipped to find an auditd, access-log or syslog line that the next line
/// confirms (breaker finding: a log starting mid-line — copytruncate, a cut
/// file — was "not a supported log format" and every record was lost; now
/// the junk lines are errors of their own and the rest is read).
fn sniff_text(head: &[u8]) -> Option<Format> {
    if let Some(f) = sniff_text_at(head) {
        return Some(f);
    }
    let after_line = |b: &[u8]| memchr::memchr(b'\n', b).map(|i| b[i + 1..].to_vec());
    let mut rest = head.to_vec();
    for _ in 0..MAX_LEADING_JUNK {
        rest = after_line(&rest)?;
        let Some(f) = sniff_text_at(&rest)
            .filter(|f| matches!(f, Format::Auditd | Format::AccessLog | Format::Syslog))
        else {
            continue;
        };
        // Confirmed by the next non-blank line (or the head ends here).
        let body = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        match after_line(&rest[body..]) {
            Some(next) if next.iter().any(|b| !b.is_ascii_whitespace()) => {
                if sniff_text_at(&next) == Some(f) {
                    return Some(f);
                }
            }
            _ => return Some(f),
        }
    }
    None
}

/// The text format of the first non-blank line of `head`.
fn sniff_text_at(head: &[u8]) -> Option<Format> {
    if auditd::sniff(head) {
        Some(Format::Auditd)
    } else if zeek::sniff(head) {
        Some(Format::ZeekTsv)
    } else if web::sniff_w3c(head) {
        Some(Format::W3c)
    } else if web::sniff_access(head) {
        Some(Format::AccessLog)
    } else if syslog::sniff(head) {
        Some(Format::Syslog)
    } else {
        None
    }
}

/// A stream of events from one file: `Ok(event)` per record, `Err` for a
/// record (or EVTX chunk) that was skipped. Iteration continues after an
/// error and ends at the end of the file.
///
/// Every format is read incrementally: at most one EVTX chunk's events, one
/// JSON line or one JSON array element is held at a time.
pub struct RecordIter {
    path: PathBuf,
    format: Format,
    inner: Inner,
}

enum Inner {
    Evtx(Box<evtx_reader::EvtxRecords>),
    Array(json_reader::JsonArrayRecords<BufReader<Box<dyn Source>>>),
    Lines(json_reader::JsonLinesRecords<BufReader<Box<dyn Source>>>),
    Text(Box<dyn Iterator<Item = Result<Event, RecordError>> + Send>),
    Done,
}

impl RecordIter {
    /// The format the file was sniffed as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The path the records come from (as given to [`open`] / [`open_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for RecordIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordIter")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Iterator for RecordIter {
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Evtx(r) => r.next(),
            Inner::Array(r) => match r.next() {
                Some(item) => Some(item),
                None => {
                    // JSON lines after the array (a JSON-lines file whose
                    // first line is an array): read on as JSON lines.
                    let Inner::Array(r) = std::mem::replace(&mut self.inner, Inner::Done) else {
                        return None;
                    };
                    self.inner = r.into_lines().map_or(Inner::Done, Inner::Lines);
                    self.next()
                }
            },
            Inner::Lines(r) => r.next(),
            Inner::Text(r) => r.next(),
            Inner::Done => None,
        }
    }
}

/// Opens a log file and returns its record stream; the format is sniffed
/// from the content (the extension is ignored).
///
/// # Errors
///
/// A whole-file [`ReadError`]: the file cannot be opened or read
/// ([`ReadError::Io`]), is no supported format
/// ([`ReadError::UnsupportedFormat`]: `.pcap`, `.etl`, text, empty), has an
/// unusable EVTX header ([`ReadError::Evtx`]). Damage inside a JSON array
/// is reported per element by the iterator (elements are streamed).
pub fn open(path: &Path) -> Result<RecordIter, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::other("is a directory")));
    }
    // A sparse EVTX copy's unused chunk slots are holes: known zeros.
    let holes = holes::Holes::of(&file, meta.len());
    // Asking for holes moves the position: the sniffing reads from 0.
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    from_source_gz(path, Box::new(file), false, holes)
}

/// Like [`open`], for a file already in memory; `name` is only used in
/// errors and [`RecordIter::path`].
///
/// # Errors
///
/// As [`open`] (no [`ReadError::Io`] for opening, since there is no file).
pub fn open_bytes(name: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<RecordIter, ReadError> {
    from_source(&name.into(), Box::new(Cursor::new(bytes)))
}

fn from_source(path: &Path, src: Box<dyn Source>) -> Result<RecordIter, ReadError> {
    from_source_gz(path, src, false, None)
}

/// [`from_source`]; `in_gzip` when `src` is already decompressed (a gzip
/// inside a gzip is not unpacked again: no decompression chains); `holes`:
/// the file's holes, when `src` is a sparse file (an EVTX file's unused
/// slots inside them are not read).
fn from_source_gz(
    path: &Path,
    mut src: Box<dyn Source>,
    in_gzip: bool,
    holes: Option<holes::Holes>,
) -> Result<RecordIter, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let read = (&mut src).take(SNIFF_LEN as u64).read_to_end(&mut head);
    match read {
        // A gzip stream damaged within its first 4 KiB: sniff what was
        // decoded; the reader meets the error again there and reports it
        // as a record error after the records before it.
        Err(_) if in_gzip && !head.is_empty() => {}
        r => {
            r.map_err(io)?;
        }
    }
    if head.starts_with(&gz::MAGIC) && !in_gzip {
        // Issue #21: CloudTrail as S3 delivers it (`.json.gz`), or any
        // gzipped log: read through a decoder, format sniffed inside.
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        return from_source_gz(path, Box::new(gz::GzSource::new(src)), true, None);
    }
    if let Some(endian) = utf16::detect(&head) {
        // Issue #6: Windows PowerShell 5.1 writes UTF-16 (`Out-File`, `>`);
        // such JSON was "not a supported log format". Transcoded on the fly.
        let format = sniff(&utf16::decode_head(&head, endian))
            .filter(|f| *f != Format::Evtx)
            .ok_or_else(|| ReadError::UnsupportedFormat {
                path: path.to_path_buf(),
            })?;
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        let src: Box<dyn Source> = Box::new(utf16::Utf16Source::new(src, endian));
        let inner = match format {
            Format::JsonArray => Inner::Array(json_reader::JsonArrayRecords::new(
                path,
                BufReader::with_capacity(1 << 16, src),
            )),
            Format::JsonLines => Inner::Lines(json_reader::JsonLinesRecords::new(
                path,
                BufReader::new(src),
            )),
            text => text_inner(text, path, src),
        };
        return Ok(RecordIter {
            path: path.to_path_buf(),
            format,
            inner,
        });
    }
    let mut format = sniff(&head);
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
    if format.is_none() && head.len() == SNIFF_LEN && body.iter().all(u8::is_ascii_whitespace) {
        // Issue #6: JSON after more than 4 KiB of leading whitespace was
        // "not a supported log format". Look past the blanks (streamed).
        format = sniff_after_blanks(&mut src).map_err(io)?;
    }
    src.seek(SeekFrom::Start(0)).map_err(io)?;
    let format = format.ok_or_else(|| ReadError::UnsupportedFormat {
        path: path.to_path_buf(),
    })?;
    let inner = match format {
        Format::Evtx => Inner::Evtx(Box::new(evtx_reader::EvtxRecords::new(
            evtx_chunks_with_holes(path, src, holes)?,
        ))),
        Format::JsonArray => Inner::Array(json_reader::JsonArrayRecords::new(
            path,
            BufReader::with_capacity(1 << 16, src),
        )),
        Format::JsonLines => Inner::Lines(json_reader::JsonLinesRecords::new(
            path,
            BufReader::new(src),
        )),
        text => text_inner(text, path, src),
    };
    Ok(RecordIter {
        path: path.to_path_buf(),
        format,
        inner,
    })
}

/// The reader of a text format (issue #21); JSON and EVTX never reach it.
fn text_inner(format: Format, path: &Path, src: Box<dyn Source>) -> Inner {
    let r: Box<dyn std::io::BufRead + Send> = Box::new(BufReader::new(src));
    Inner::Text(match format {
        Format::Auditd => auditd::records(path, r),
        Format::Syslog => syslog::records(path, r),
        Format::ZeekTsv => zeek::records(path, r),
        Format::W3c => web::w3c_records(path, r),
        Format::AccessLog => web::access_records(path, r),
        Format::Evtx | Format::JsonArray | Format::JsonLines => Box::new(std::iter::empty()),
    })
}

/// The JSON format of what follows the whitespace at the reader's position
/// (EVTX cannot start after blanks).
fn sniff_after_blanks(src: &mut dyn Source) -> std::io::Result<Option<Format>> {
    let mut buf = vec![0u8; 1 << 16];
    let mut head = Vec::new();
    loop {
        let n = match src.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if head.is_empty() {
            match chunk.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(p) => head.extend_from_slice(&chunk[p..]),
                None => continue,
            }
        } else {
            head.extend_from_slice(chunk);
        }
        if head.len() >= SNIFF_LEN {
            break;
        }
    }
    Ok(sniff(&head).filter(|f| *f != Format::Evtx))
}

fn evtx_chunks(path: &Path, src: Box<dyn Source>) -> Result<EvtxChunks, ReadError> {
    evtx_chunks_with_holes(path, src, None)
}

/// [`evtx_chunks`] of a file whose `holes` are known (read as zeros).
fn evtx_chunks_with_holes(
    path: &Path,
    src: Box<dyn Source>,
    holes: Option<holes::Holes>,
) -> Result<EvtxChunks, ReadError> {
    EvtxChunks::new(path, src, holes).map_err(|reason| ReadError::Evtx {
        path: path.to_path_buf(),
        reason,
    })
}

/// Opens an EVTX file for chunk-parallel reading: the units of
/// [`EvtxChunks`] can be parsed independently (e.g. with rayon over
/// `0..chunks.len()`), and concatenated in index order they give exactly
/// the records and errors the streaming [`open`] gives.
///
/// ```no_run
/// use tracehunt_readers::open_evtx_chunks;
/// let chunks = open_evtx_chunks("big.evtx".as_ref()).unwrap();
/// let per_chunk: Vec<_> = (0..chunks.len()).map(|i| chunks.chunk(i)).collect();
/// ```
///
/// # Errors
///
/// [`ReadError::Io`] when the file cannot be opened or read,
/// [`ReadError::UnsupportedFormat`] when it is not EVTX (see [`sniff`]),
/// [`ReadError::Evtx`] when it is shorter than the 4 KiB file header.
pub fn open_evtx_chunks(path: &Path) -> Result<EvtxChunks, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.is_dir() {
        return Err(io(std::io::Error::other("is a directory")));
    }
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut file)
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    if sniff(&head) != Some(Format::Evtx) {
        return Err(ReadError::UnsupportedFormat {
            path: path.to_path_buf(),
        });
    }
    // A sparse copy's unused chunk slots are holes: known zeros, not read.
    let holes = file
        .metadata()
        .ok()
        .and_then(|m| holes::Holes::of(&file, m.len()));
    evtx_chunks_with_holes(path, Box::new(file), holes)
}

/// What [`evtx_record_json_paths`] gives per conversion: the event,
/// `None` for no `Event`/`System` element, or the error text.
#[doc(hidden)]
pub type EvtxJsonEvent = Result<Option<Event>, String>;

/// Both conversions of one EVTX record's rendered JSON (the bytes of
/// `evtx::EvtxRecord::into_json_bytes`) into an [`Event`], for the
/// differential tests of issue #22 item 2 (not a stable API):
/// `(new, fast_path_taken, reference)`. `new` is what the EVTX reader uses
/// (the borrowing parse, falling back to the `Value` path for shapes it
/// leaves); `fast_path_taken` is false when it fell back; `reference` is
/// `serde_json::Value` + [`event_from_json_value`], the reader's path
/// before. `Ok(None)`: no `Event`/`System` element; `Err`: the error text
/// (not UTF-8, not JSON).
#[doc(hidden)]
pub fn evtx_record_json_paths(bytes: &[u8]) -> (EvtxJsonEvent, bool, EvtxJsonEvent) {
    let text = |e: evtx::err::EvtxError| evtx_reader::chain(&e);
    (
        evtx_event::event_from_record_json(bytes).map_err(text),
        evtx_event::fast_path_takes(bytes),
        evtx_event::reference(bytes).map_err(text),
    )
}

/// Like [`open_evtx_chunks`], for an EVTX file already in memory; `name`
/// is only used in errors.
///
/// # Errors
///
/// As [`open_evtx_chunks`] (no [`ReadError::Io`]).
pub fn evtx_chunks_from_bytes(
    name: impl Into<PathBuf>,
    bytes: Vec<u8>,
) -> Result<EvtxChunks, ReadError> {
    let path = name.into();
    if sniff(&bytes[..bytes.len().min(SNIFF_LEN)]) != Some(Format::Evtx) {
        return Err(ReadError::UnsupportedFormat { path });
    }
    evtx_chunks(&path, Box::new(Cursor::new(bytes)))
}

/// Collects the regular files under `paths`, recursively, in a
/// deterministic order: each argument in the order given, and within a
/// directory, entries sorted by file name. A path that is a file is taken
/// as it is. Symbolic links below a root are not followed (so no link
/// loops) and each is reported as a [`WalkError`]; a root that is itself a
/// link is followed. Files are not opened or sniffed here — [`open`]
/// rejects unsupported ones.
///
/// A file reached twice — the same path given twice, or a directory
/// overlapping another given path (`logs/ logs/Security.evtx`), or through
/// a linked root — is listed once, at its first place (same canonical
/// path, [`std::fs::canonicalize`]; a path that cannot be canonicalised is
/// compared as given). Copies under other names are different files.
///
/// Returns the files and the entries that could not be visited.
pub fn walk(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<WalkError>) {
    let w = walk_counted(paths);
    (w.files, w.errors)
}

/// What [`walk_counted`] found.
#[derive(Debug, Default)]
pub struct Walked {
    /// The files, each once, in walk order.
    pub files: Vec<PathBuf>,
    /// The entries that could not be visited.
    pub errors: Vec<WalkError>,
    /// Files reached again and left out (not errors: each was read once).
    pub duplicates: u64,
}

/// What makes two paths one file for [`walk_counted`]: (device, inode) on
/// Unix (hard links and every path spelling of one file agree), else the
/// canonical path (the path itself when it cannot be resolved).
fn file_identity(p: &Path) -> (u64, u64, PathBuf) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(p) {
            return (m.dev(), m.ino(), PathBuf::new());
        }
    }
    (
        0,
        0,
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()),
    )
}

/// A walk entry's identity for reporting it once: its directory resolved,
/// its own name kept (a link is not followed).
fn link_identity(p: &Path) -> PathBuf {
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
        .map(|d| d.join(name))
        .unwrap_or_else(|_| p.to_path_buf()),
        _ => p.to_path_buf(),
    }
}

/// [`walk`], also counting the files reached more than once ([`Walked::duplicates`]).
pub fn walk_counted(paths: &[PathBuf]) -> Walked {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0u64;
    // A file is the same file by (device, inode) on Unix, so a hard link to
    // a file already listed is read once too (breaker finding); else by its
    // canonical path.
    let mut keep = |p: PathBuf, files: &mut Vec<PathBuf>| {
        if seen.insert(file_identity(&p)) {
            files.push(p);
        } else {
            duplicates += 1;
        }
    };
    // One report per entry reached twice (overlapping arguments repeated
    // every "symbolic link not followed" line).
    let mut reported = std::collections::HashSet::new();
    let mut report = |e: WalkError, errors: &mut Vec<WalkError>| {
        let key = e.path.as_deref().map(link_identity);
        if key.is_none() || reported.insert(key) {
            errors.push(e);
        }
    };
    for root in paths {
        let walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name();
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_file() => keep(e.into_path(), &mut files),
                // A root that is a link to a regular file (`hunt auth.log` where
                // auth.log links into a collection) is read like the file: walkdir
                // follows root links to directories only (README example check).
                Ok(e)
                    if e.depth() == 0
                        && e.path_is_symlink()
                        && std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()) =>
                {
                    keep(e.into_path(), &mut files)
                }
                // A root that is a link to a directory: walkdir follows it and
                // yields its files next; not a skipped file (it was reported as
                // "not a regular file" and counted skipped while read).
                Ok(e)
                    if e.depth() == 0
                        && e.path_is_symlink()
                        && std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir()) => {}
                Ok(e) if e.path_is_symlink() && e.depth() > 0 => report(
                    WalkError {
                        path: Some(e.into_path()),
                        reason: "symbolic link not followed (links inside a directory are \
                                 skipped, so link loops cannot trap the walk)"
                            .into(),
                    },
                    &mut errors,
                ),
                Ok(e) if !e.file_type().is_dir() => {
                    // A FIFO, socket or device (issue #6: `hunt /dev/zero` or a FIFO
                    // in a folder was dropped without a word): reported, not read
                    // (a FIFO could block, a device never ends).
                    report(
                        WalkError {
                            path: Some(e.into_path()),
                            reason: "not a regular file (FIFO, socket or device)".into(),
                        },
                        &mut errors,
                    )
                }
                Ok(_) => {}
                Err(e) => errors.push(WalkError {
                    path: e
                        .path()
                        .map(Path::to_path_buf)
                        .or_else(|| Some(root.clone())),
                    reason: e
                        .io_error()
                        .map(|io| io.to_string())
                        .unwrap_or_else(|| e.to_string()),
                }),
            }
        }
    }
    Walked {
        files,
        errors,
        duplicates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hunt /dev/null`, a FIFO argument or a FIFO inside a folder were
    /// dropped without any report (issue #6): now each is a walk error.
    #[cfg(unix)]
    #[test]
    fn walk_reports_fifo_and_device_instead_of_dropping_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"[]").unwrap();
        let fifo = dir.path().join("pipe");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        let (files, errs) = walk(&[dir.path().to_path_buf(), PathBuf::from("/dev/null")]);
        assert_eq!(files, [dir.path().join("a.json")]);
        let reported: Vec<_> = errs.iter().filter_map(|e| e.path.clone()).collect();
        assert!(reported.contains(&PathBuf::from("/dev/null")), "{errs:?}");
        if ok {
            assert!(reported.contains(&fifo), "{errs:?}");
            let (files, errs) = walk(std::slice::from_ref(&fifo));
            assert!(files.is_empty());
            assert_eq!(errs.len(), 1);
        }
        assert!(errs.iter().all(|e| e.reason.contains("not a regular file")));
    }

    /// `hunt auth.log` where `auth.log` is a link to a log file was skipped as
    /// "not a regular file" (found by `scripts/readme-examples.py`): a root link
    /// to a file is read; a link to a FIFO or device is still reported.
    #[cfg(unix)]
    #[test]
    fn walk_reads_a_root_link_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.json");
        std::fs::write(&target, b"[]").unwrap();
        let link = dir.path().join("auth.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dev = dir.path().join("null-link");
        std::os::unix::fs::symlink("/dev/null", &dev).unwrap();
        let (files, errs) = walk(&[link.clone(), dev.clone()]);
        assert_eq!(files, [link]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path.as_deref(), Some(dev.as_path()));
    }

    /// Issue #19: `hunt logs/ logs/` or `logs/ logs/a.evtx` read files
    /// twice and doubled every count; each file is now listed once.
    #[test]
    fn walk_lists_a_file_reached_twice_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for p in [dir.path().join("a.json"), sub.join("b.json")] {
            std::fs::write(p, b"[]").unwrap();
        }
        let d = dir.path().to_path_buf();
        let w = walk_counted(&[
            d.clone(),
            sub.join("b.json"),
            d.join("sub/../a.json"),
            d.clone(),
        ]);
        assert_eq!(w.files, [d.join("a.json"), sub.join("b.json")]);
        assert_eq!(w.duplicates, 4);
        assert!(w.errors.is_empty());
        // A copy under another name is another file.
        std::fs::copy(d.join("a.json"), d.join("c.json")).unwrap();
        assert_eq!(walk(std::slice::from_ref(&d)).0.len(), 3);
    }

    /// Breaker findings: a hard link to a listed file was read twice; a
    /// root link to a directory was read and also reported "not a regular
    /// file" (counted skipped); overlapping arguments repeated each "link not
    /// followed" report.
    #[cfg(unix)]
    #[test]
    fn walk_reads_hard_links_once_and_root_dir_links_without_a_report() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("logs");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("a.json"), b"[]").unwrap();
        std::fs::hard_link(d.join("a.json"), d.join("hard.json")).unwrap();
        std::os::unix::fs::symlink(dir.path(), d.join("loop")).unwrap();
        let dirlink = dir.path().join("dirlink");
        std::os::unix::fs::symlink(&d, &dirlink).unwrap();
        let w = walk_counted(&[d.clone(), d.join("hard.json"), dirlink.clone(), d.clone()]);
        assert_eq!(w.files, [d.join("a.json")], "{:?}", w.files);
        // hard.json twice in `logs` (×2), the named hard link, both through the link.
        assert_eq!(w.duplicates, 6);
        // The link inside `logs` is reported once, whatever reaches it.
        assert_eq!(w.errors.len(), 1, "{:?}", w.errors);
        assert!(w.errors[0].reason.contains("symbolic link not followed"));
        // The directory link alone: its file, no error.
        let w = walk_counted(std::slice::from_ref(&dirlink));
        assert_eq!(w.files, [dirlink.join("a.json")]);
        assert_eq!(w.errors.len(), 1, "only the inner link: {:?}", w.errors);
    }

    fn collect(name: &str, bytes: &[u8]) -> Vec<Result<Event, RecordError>> {
        open_bytes(name, bytes.to_vec()).unwrap().collect()
    }

    /// `ok <EventID>` per event, `<kind> <at>` per record error.
    fn outline(name: &str, bytes: &[u8]) -> Vec<String> {
        collect(name, bytes)
            .iter()
            .map(|r| match r {
                Ok(e) => format!("ok {}", e.meta.event_id.unwrap()),
                Err(e) => format!("{:?} {}", e.kind, e.at),
            })
            .collect()
    }

    #[test]
    fn sniff_rejects_non_logs() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"   \n"), None);
        assert_eq!(sniff(b"# README"), None);
        assert_eq!(sniff(b"{not json"), None);
        assert_eq!(sniff(b"["), Some(Format::JsonArray));
        assert_eq!(sniff(b"\xEF\xBB\xBF{\"a\":1}"), Some(Format::JsonLines));
        assert!(matches!(
            open_bytes("x.txt", b"hello".to_vec()),
            Err(ReadError::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn json_lines_errors_carry_line_numbers() {
        let data = b"\xEF\xBB\xBF{\"EventID\": 1}\n\n{\"EventID\": \n{\"EventID\": 3}\n\xff\xfe\n{\"x\": 1}\n[1]\n";
        let summary = outline("f.jsonl", data);
        assert_eq!(
            summary,
            [
                "ok 1",
                "InvalidJson line 3",
                "ok 3",
                "InvalidUtf8 line 5",
                "UnrecognisedShape line 6",
                "UnrecognisedShape line 7"
            ]
        );
    }

    #[test]
    fn pretty_concatenated_objects() {
        let data = b"{\n  \"Event\": {\n    \"System\": {\"EventID\": 7, \"Channel\": \"a{b\"}\n  }\n}\n{\n  \"Event\": {\"System\": {\"EventID\": 8}}\n}\n";
        let ids: Vec<_> = collect("p.json", data)
            .into_iter()
            .map(|r| r.unwrap().meta.event_id.unwrap())
            .collect();
        assert_eq!(ids, [7, 8]);
    }

    #[test]
    fn truncated_trailing_value_is_an_error() {
        let out = collect("t.json", b"{\"EventID\": 1}\n{\n  \"EventID\": 2,\n");
        assert!(out[0].is_ok());
        let e = out[1].as_ref().unwrap_err();
        assert_eq!(e.at, Location::Line(2));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn json_array_elements() {
        let out = collect(
            "a.json",
            b"[{\"EventID\": 5}, 3, {\"winlog\": {\"event_id\": 6}}]",
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap().meta.record_id, Some(1));
        assert_eq!(out[1].as_ref().unwrap_err().at, Location::Element(1));
        assert_eq!(out[2].as_ref().unwrap().meta.event_id, Some(6));
        // A truncated array keeps the elements before the cut and says so.
        let out = collect("b.json", b"[{\"EventID\": 5},");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap().meta.event_id, Some(5));
        assert_eq!(
            out[1].as_ref().unwrap_err().kind,
            RecordErrorKind::Truncated
        );
    }

    /// Issue #6: a JSON-lines file with bare CR line endings was one
    /// invalid "line": all its records lost, counted as one.
    #[test]
    fn cr_only_line_endings_do_not_merge_json_lines() {
        let out = collect(
            "cr.jsonl",
            b"{\"EventID\": 1}\r{\"EventID\": 2}\r\r{\"EventID\": 3}\r\n{\"EventID\": 4}\r",
        );
        let ids: Vec<_> = out
            .iter()
            .map(|r| r.as_ref().unwrap().meta.event_id)
            .collect();
        assert_eq!(ids, [Some(1), Some(2), Some(3), Some(4)]);
        // CRLF is one line end: line numbers as before.
        let out = collect(
            "crlf.jsonl",
            b"{\"EventID\": 1}\r\nbad\r\n{\"EventID\": 3}\r\n",
        );
        assert_eq!(out[1].as_ref().unwrap_err().at, Location::Line(2));
        assert_eq!(out[2].as_ref().unwrap().meta.event_id, Some(3));
    }

    /// Issue #6: in a single-line JSON array one element with an unbalanced
    /// brace or quote swallowed every element after it (reported as one or
    /// two lost records); now the events after it are recovered.
    #[test]
    fn broken_element_in_single_line_array_does_not_swallow_the_rest() {
        let ev = |n: u32| format!("{{\"EventID\": {n}, \"Channel\": \"Security\"}}");
        let data = format!(
            "[{}, {{\"EventID\": 9, \"x\": \"cut, {}, {}, {}]",
            ev(1),
            ev(2),
            ev(3),
            ev(4)
        );
        let got = outline("one-line.json", data.as_bytes());
        assert_eq!(
            got,
            ["ok 1", "InvalidJson element 1", "ok 2", "ok 3", "ok 4"]
        );
        // Unbalanced `{`: the closing `]` was taken into the broken element,
        // the array is still closed (no Truncated error).
        let data = format!("[{{garbage, {}, {}]", ev(5), ev(6));
        let out = collect("garbage.json", data.as_bytes());
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(
            out[0].as_ref().unwrap_err().kind,
            RecordErrorKind::InvalidJson
        );
        assert_eq!(out[1].as_ref().unwrap().meta.event_id, Some(5));
        assert_eq!(out[2].as_ref().unwrap().meta.event_id, Some(6));
        // A truncated last element after recovered ones is reported as truncated.
        let data = format!("[{{\"a\": [1, {}, {{\"EventID\": 7", ev(8));
        let out = collect("trunc.json", data.as_bytes());
        let kinds: Vec<_> = out
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                Some(RecordErrorKind::InvalidJson),
                None,
                Some(RecordErrorKind::Truncated)
            ]
        );
    }

    /// Breaker finding: a JSON document that is an array of arrays of
    /// events (`[[{…},{…}],[{…}]]`, batches exported one after another) was
    /// skipped whole as "not a supported log format". Now every object at
    /// any depth is a record, elements numbered in document order.
    #[test]
    fn nested_array_of_events_was_skipped_whole() {
        let data =
            b"[[{\"EventID\": 1}, {\"EventID\": 2}], [{\"EventID\": 3}], [], [[{\"EventID\": 4}]]]";
        assert_eq!(outline("n.json", data), ["ok 1", "ok 2", "ok 3", "ok 4"]);
        let out = collect("n.json", data);
        assert_eq!(out[3].as_ref().unwrap().meta.record_id, Some(4));
        // Pretty-printed, with a broken element inside the inner array and
        // one recovered after it: the array is still closed properly.
        let data = b"[\n  [\n    {\"EventID\": 5},\n    {\"EventID\": 6, \"x\": \"cut\n    {\"EventID\": 7}\n  ],\n  [{\"EventID\": 8}, {bad, {\"EventID\": 9}]\n]\n";
        assert_eq!(
            outline("p.json", data),
            [
                "ok 5",
                "InvalidJson element 1",
                "ok 7",
                "ok 8",
                "InvalidJson element 4",
                "ok 9"
            ]
        );
    }

    /// Breaker finding: `[1, {…}]` (an array mixing scalars and events) was
    /// skipped whole as "not a supported log format"; now each scalar is
    /// one UnrecognisedShape error saying what and where it is, and the
    /// objects are read.
    #[test]
    fn mixed_array_with_scalars_was_skipped_whole() {
        let data = b"[1,\n \"two\", {\"EventID\": 3}, null, [true, {\"EventID\": 5}]]";
        assert_eq!(sniff(data), Some(Format::JsonArray));
        assert_eq!(
            outline("m.json", data),
            [
                "UnrecognisedShape element 0",
                "UnrecognisedShape element 1",
                "ok 3",
                "UnrecognisedShape element 3",
                "UnrecognisedShape element 4",
                "ok 5"
            ]
        );
        let out = collect("m.json", data);
        assert_eq!(
            out[1].as_ref().unwrap_err().to_string(),
            "m.json: element 1: line 2: JSON array element is a string, not an event object"
        );
        // Text that only looks like it starts an array is still no log.
        for text in [&b"[2024-01-01] boot"[..], b"[ERROR] x", b"[1/2]"] {
            assert_eq!(sniff(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    /// Breaker finding: a JSON-lines line holding an array of events (a
    /// batch written as one line) was one UnrecognisedShape error and its
    /// events were lost. Now its objects are records (at that line) and
    /// each other element is one error.
    #[test]
    fn json_line_holding_an_array_of_events_was_one_error() {
        let data = b"{\"EventID\": 1}\n[{\"EventID\": 2}, {\"EventID\": 3}, 4, [{\"EventID\": 5}]]\n[]\n{\"EventID\": 6}\n";
        assert_eq!(
            outline("a.jsonl", data),
            [
                "ok 1",
                "ok 2",
                "ok 3",
                "UnrecognisedShape line 2",
                "ok 5",
                "ok 6"
            ]
        );
        let out = collect("a.jsonl", data);
        // No record id in the data: the line each record starts on.
        let ids: Vec<_> = out
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|e| e.meta.record_id)
            .collect();
        assert_eq!(ids, [Some(1), Some(2), Some(2), Some(2), Some(4)]);
        assert_eq!(
            out[3].as_ref().unwrap_err().reason,
            "element 2 of the JSON array on this line is a number, not an event object"
        );
    }

    /// Breaker finding: a JSON-lines file whose first line is an array of
    /// events was read as one JSON array, so every line after it was lost,
    /// counted as one record ("data after the closing ']'"). Now the lines
    /// after the array are read as JSON lines, with their line numbers.
    #[test]
    fn jsonl_whose_first_line_is_an_array_lost_the_lines_after_it() {
        let data = b"[{\"EventID\": 1}, {\"EventID\": 2}]\n{\"EventID\": 3}\nnot json\r{\"EventID\": 5}\n[{\"EventID\": 6}]\n{\"EventID\": 7}";
        assert_eq!(sniff(data), Some(Format::JsonArray));
        assert_eq!(
            outline("mixed.jsonl", data),
            [
                "ok 1",
                "ok 2",
                "ok 3",
                "InvalidJson line 3",
                "ok 5",
                "ok 6",
                "ok 7"
            ]
        );
        let ids: Vec<_> = collect("mixed.jsonl", data)
            .into_iter()
            .filter_map(Result::ok)
            .map(|e| e.meta.record_id.unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 2, 4, 5, 6]);
        // Garbage after the closing bracket is one error for its line;
        // the lines after it are still read (CR-only line ends too).
        let data = b"[{\"EventID\": 1}] trailing\r{\"EventID\": 2}\r\n{\"EventID\": 3}";
        assert_eq!(
            outline("g.jsonl", data),
            ["ok 1", "InvalidJson element 1", "ok 2", "ok 3"]
        );
        let out = collect("g.jsonl", data);
        assert_eq!(out[2].as_ref().unwrap().meta.record_id, Some(2));
        assert_eq!(out[3].as_ref().unwrap().meta.record_id, Some(3));
    }

    /// Issue #6 trial: JSON lines glued together on one line (`{…}{…}` from
    /// files concatenated without a final newline, `{…}, {…}` and
    /// `[…],[…]` from hand-made exports; in a JSON array file too) were one
    /// InvalidJson error and
    /// every record on the line was lost (6 of 7 events here). Now each
    /// value is read; text after the last value that is not JSON is one
    /// error naming how many values came before it.
    #[test]
    fn glued_json_lines_lost_every_record_on_the_line() {
        let data = b"{\"EventID\": 1}{\"EventID\": 2}\n{\"EventID\": 3}, {\"EventID\": 4}\n[{\"EventID\": 5}],[{\"EventID\": 6}]\n{\"EventID\": 7}\n";
        assert_eq!(
            outline("glued.jsonl", data),
            ["ok 1", "ok 2", "ok 3", "ok 4", "ok 5", "ok 6", "ok 7"]
        );
        let out = collect("glued.jsonl", data);
        let ids: Vec<_> = out
            .iter()
            .map(|r| r.as_ref().unwrap().meta.record_id.unwrap())
            .collect();
        assert_eq!(ids, [1, 1, 2, 2, 3, 3, 4]);
        // A JSON array file of arrays separated by commas (the second array
        // was lost as "data after the closing ']'"), then JSON lines.
        let data = b"[{\"EventID\": 1}],[{\"EventID\": 2}],\n[{\"EventID\": 3}], {\"EventID\": 4}\n{\"EventID\": 5}\n";
        assert_eq!(
            outline("arrays.json", data),
            ["ok 1", "ok 2", "ok 3", "ok 4", "ok 5"]
        );
        // A pretty-printed record glued to the next one on its last line.
        let data = b"{\n  \"EventID\": 1\n}{\"EventID\": 2}\n";
        assert_eq!(outline("pretty.jsonl", data), ["ok 1", "ok 2"]);
        // Garbage after valid values: the values, then one error.
        let data = b"{\"EventID\": 1} {\"EventID\": 2} trailing junk\n{\"EventID\": 3}\n";
        assert_eq!(
            outline("junk.jsonl", data),
            ["ok 1", "ok 2", "InvalidJson line 1", "ok 3"]
        );
        let out = collect("junk.jsonl", data);
        let e = out[2].as_ref().unwrap_err();
        assert_eq!(
            e.reason,
            "invalid JSON after the 2 JSON values read from this line: text at column 31 is \
             not a JSON object or array"
        );
        let data = b"{\"EventID\": 1} {\"EventID\": 2}, {\"EventID\": \n{\"EventID\": 3}\n";
        let out = collect("cut.jsonl", data);
        assert_eq!(
            out[2].as_ref().unwrap_err().reason,
            "invalid JSON after the 2 JSON values read from this line: EOF while parsing a \
             value at column 43"
        );
        assert_eq!(out[3].as_ref().unwrap().meta.event_id, Some(3));
        // Breaker findings: the tail of a record cut before it, or a line
        // that does not start with an object or array, was read as glued
        // values: nested objects became events and one damaged line counted
        // as several skipped records. Each such line is one error.
        for line in [
            "{\"EventID\": 2}]}",
            "{\"EventID\": 9},\"b\":{\"EventID\": 10}}",
            "{\"EventID\": 1}, {\"EventID\": 2}]}",
            "\"a\", \"b\", {\"EventID\": 7}, 4]}",
            "1, 2, 3]",
            "\"x\":{\"EventID\": 9}}}",
            "\"EventID\",\"Computer\",\"Message\"",
            "4624,\"PC1\",\"x\"",
        ] {
            let data = format!("{{\"EventID\": 1}}\n{line}\n{{\"EventID\": 3}}\n");
            assert_eq!(
                outline("tail.jsonl", data.as_bytes()),
                ["ok 1", "InvalidJson line 2", "ok 3"],
                "{line}"
            );
        }
        let numbers = format!("{{\"EventID\": 1}}\n{}\n", "7, ".repeat(100_000));
        assert_eq!(
            outline("numbers.jsonl", numbers.as_bytes()),
            ["ok 1", "InvalidJson line 2"]
        );
        // Breaker finding: an element error of an array on a JSON line
        // repeated its line ("line 2: line 2: invalid JSON array element").
        let deep_el = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let data = format!("{{\"EventID\": 2}}\n[{{\"EventID\": 1}}, {{\"a\": {deep_el}}}]\n");
        let out = collect("deep-el.jsonl", data.as_bytes());
        let errs: Vec<_> = out.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(errs.len(), 1, "{out:?}");
        assert_eq!(errs[0].at, Location::Line(2));
        assert!(
            errs[0].reason.starts_with("invalid JSON array element: "),
            "{}",
            errs[0].reason
        );
        // Breaker finding: a value nested deeper than serde_json's
        // recursion limit (128) passed the glued-value check (which has no
        // limit), failed to convert, and was dropped without an error.
        let deep = format!(
            "{}1{}",
            "{\"EventID\": 5, \"a\": ".repeat(300),
            "}".repeat(300)
        );
        for line in [
            deep.clone(),
            format!("{{\"EventID\": 4}}{deep}{{\"EventID\": 3}}"),
        ] {
            let data = format!("{{\"EventID\": 2}}\n{line}\n");
            let out = collect("deep.jsonl", data.as_bytes());
            let errs: Vec<_> = out.iter().filter_map(|r| r.as_ref().err()).collect();
            assert_eq!(errs.len(), 1, "{out:?}");
            assert!(
                errs[0].reason.contains("recursion limit exceeded"),
                "{}",
                errs[0].reason
            );
            assert_eq!(errs[0].at, Location::Line(2));
        }
        // Not even the first value parses: one error for the line, as before.
        let data = b"{\"EventID\": 1, }{\"EventID\": 2}\n{\"EventID\": 3}\n";
        assert_eq!(outline("bad.jsonl", data), ["InvalidJson line 1", "ok 3"]);
        let out = collect("bad.jsonl", data);
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .reason
            .starts_with("invalid JSON: "));
    }

    /// Issue #6: a JSON file starting with more than the 4 KiB sniffed of
    /// whitespace was skipped as "not a supported log format".
    #[test]
    fn json_after_long_leading_whitespace_is_read() {
        for (pad, body) in [
            (5000, "{\"EventID\": 1}\n"),
            (70_000, "[{\"EventID\": 1}]"),
            (SNIFF_LEN, "{\"EventID\": 1}"),
        ] {
            let data = format!("\u{feff}{}{body}", " \n".repeat(pad));
            let out = collect("ws.json", data.as_bytes());
            assert_eq!(out.len(), 1, "{pad}");
            assert_eq!(out[0].as_ref().unwrap().meta.event_id, Some(1));
        }
        let blank = " ".repeat(10_000);
        assert!(open_bytes("blank.json", blank.into_bytes()).is_err());
        let evtx_late = format!("{}ElfFile\0", " ".repeat(5000));
        assert!(open_bytes("late.evtx", evtx_late.into_bytes()).is_err());
    }

    /// Issue #6: JSON written by Windows PowerShell 5.1 (`ConvertTo-Json |
    /// Out-File`, UTF-16LE with BOM) was skipped as "not a supported log
    /// format". UTF-16LE/BE, with or without BOM, arrays and lines.
    #[test]
    fn utf16_json_from_powershell_is_read() {
        let text = "[\r\n {\"EventID\": 4688, \"Channel\": \"Security\", \"CommandLine\": \"caf\u{e9} \u{1F600}\"},\r\n {\"EventID\": 1}\r\n]\r\n";
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for (name, data) in [("le.json", le), ("be.json", be)] {
            let out = collect(name, &data);
            assert_eq!(out.len(), 2, "{name}: {out:?}");
            let e = out[0].as_ref().unwrap();
            assert_eq!(e.meta.event_id, Some(4688));
            assert_eq!(
                e.first("CommandLine").and_then(|v| v.as_str()),
                Some("caf\u{e9} \u{1F600}")
            );
            assert_eq!(out[1].as_ref().unwrap().meta.event_id, Some(1));
        }
        // JSON lines, long enough to cross the transcoder's buffers.
        let lines: String = (0..5000)
            .map(|i| format!("{{\"EventID\": {i}, \"x\": \"\u{1F600}\"}}\r\n"))
            .collect();
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(lines.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let out = collect("lines.json", &le);
        assert_eq!(out.len(), 5000);
        assert!(out.iter().all(Result::is_ok));
        assert_eq!(out[4999].as_ref().unwrap().meta.event_id, Some(4999));
    }

    #[test]
    fn evtx_magic_with_garbage_is_no_panic() {
        let mut data = b"ElfFile\0".to_vec();
        data.extend((0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        if let Ok(it) = open_bytes("g.evtx", data) {
            for _ in it {}
        }
        assert!(open_bytes("short.evtx", b"ElfFile\0".to_vec()).is_err());
    }

    #[test]
    fn record_iter_is_send() {
        fn is_send<T: Send>() {}
        fn is_sync<T: Sync>() {}
        is_send::<RecordIter>();
        is_send::<EvtxChunks>();
        is_sync::<EvtxChunks>();
    }
}
