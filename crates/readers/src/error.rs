//! Error types: whole-file [`ReadError`], per-record [`RecordError`], and
//! [`WalkError`] from directory traversal.

use std::fmt;
use std::path::PathBuf;

/// A whole-file failure: the file could not be read at all, so
/// [`open`](crate::open) returns no iterator for it.
///
/// Callers normally report it and go on with the next file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read (missing, permission, I/O error).
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The content is in none of the formats [`crate::sniff`] knows
    /// (e.g. `.pcap`, `.etl`, free text, an empty file).
    #[error("{}: not a supported log format (expected EVTX, JSON (array or lines, gzip too), auditd, syslog, Zeek TSV, W3C extended or an access log)", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file starts with the EVTX magic but its file header is unusable.
    #[error("{}: invalid EVTX file: {reason}", path.display())]
    Evtx {
        /// The file.
        path: PathBuf,
        /// What the `evtx` crate reported.
        reason: String,
    },
    /// The file starts with `[` but is not a valid JSON array as a whole.
    /// Not produced by this version: JSON arrays are streamed and damage is
    /// reported per element ([`RecordError`] at [`Location::Element`]); kept
    /// so that callers matching on it still compile.
    #[error("{}: invalid JSON array: {reason}", path.display())]
    JsonArray {
        /// The file.
        path: PathBuf,
        /// What `serde_json` reported (includes line and column).
        reason: String,
    },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::UnsupportedFormat { path }
            | ReadError::Evtx { path, .. }
            | ReadError::JsonArray { path, .. } => path,
        }
    }
}

/// Where in a file a [`RecordError`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// An EVTX record. `chunk` is the 0-based number of its 64 KiB chunk
    /// slot in the file (file offset `4096 + chunk * 65536` unless the data
    /// was shifted); `offset` is the record's byte offset in the file when
    /// known; `record_id` is its `EventRecordID` when the `evtx` crate could
    /// tell it.
    Record {
        /// 0-based chunk slot number in the file.
        chunk: u64,
        /// Byte offset of the record in the file, if known.
        offset: Option<u64>,
        /// The record's EventRecordID, if known.
        record_id: Option<u64>,
    },
    /// A whole EVTX chunk (64 KiB block of records) or a damaged region
    /// where one should be, by its 0-based slot number in the file.
    Chunk(u64),
    /// A JSON-lines record, by the 1-based line number it starts on.
    Line(u64),
    /// An element of a JSON array file, by its 0-based index.
    Element(u64),
    /// The EVTX file header (its first 4 KiB).
    FileHeader,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Record {
                chunk,
                offset,
                record_id,
            } => {
                write!(f, "chunk {chunk}, record")?;
                if let Some(o) = offset {
                    write!(f, " at file offset {o:#x}")?;
                }
                if let Some(id) = record_id {
                    write!(f, " (EventRecordID {id})")?;
                }
                Ok(())
            }
            Location::Chunk(c) => write!(f, "chunk {c}"),
            Location::Line(l) => write!(f, "line {l}"),
            Location::Element(i) => write!(f, "element {i}"),
            Location::FileHeader => write!(f, "file header"),
        }
    }
}

/// What kind of problem a [`RecordError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordErrorKind {
    /// The `evtx` crate could not parse or render an EVTX record or chunk.
    Evtx,
    /// The file ends inside a record: an EVTX file inside a chunk, a JSON
    /// array inside an element or before its closing `]` (a truncated or
    /// partially copied file); the records before the cut were still
    /// returned.
    Truncated,
    /// A JSON record is not valid JSON.
    InvalidJson,
    /// A JSON-lines line is not valid UTF-8.
    InvalidUtf8,
    /// Valid JSON, but not an event in any shape the reader knows
    /// (evtx-JSON, Winlogbeat/ECS, Mordor flat; the cloud audit shapes:
    /// CloudTrail, Kubernetes audit, Okta, GCP audit, GitHub audit, Azure
    /// sign-in/audit/activity, M365 audit or Defender).
    UnrecognisedShape,
    /// Reading the file failed part-way (I/O error).
    Io,
    /// The EVTX parser panicked on this chunk; the panic was caught and the
    /// chunk skipped.
    ParserPanic,
    /// An EVTX chunk that is a byte-for-byte copy of an earlier chunk of the
    /// same file (same header, same records: a chunk copied twice). The copy
    /// is skipped so its records are not reported twice; no record is lost
    /// (they were read from the earlier chunk). One error per copy.
    DuplicateChunk,
    /// Damaged bytes in EVTX chunk space that held no records: a chunk slot
    /// without a chunk signature and without any record magic (`**\0\0`),
    /// past the chunk count of an intact file header (e.g. garbage written
    /// into a zeroed, unused chunk after the last used one). Skipped; no
    /// record is lost ([`RecordError::records`] is 0). One error per slot.
    DamagedUnusedChunk,
    /// A damaged EVTX signature that reading went past: the file header's
    /// `ElfFile\0` (the file was recognised by its first chunk's signature
    /// at 4 KiB) or a chunk's `ElfChnk\0` (the slot was read as a chunk with
    /// its signature restored, and records were found in it). The repair
    /// itself loses nothing ([`RecordError::records`] is 0); records the
    /// damage did lose have their own errors. One per damaged signature.
    RepairedSignature,
    /// A line of a text log (auditd, syslog, Zeek TSV, W3C, access log) that
    /// does not parse in the file's format, or a line longer than the
    /// reader's cap; the lines around it are still read.
    InvalidLine,
}

/// A per-record failure: one record (or EVTX chunk) was skipped, and the
/// iterator goes on with the next one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {at}: {reason}", path.display())]
#[non_exhaustive]
pub struct RecordError {
    /// The file.
    pub path: PathBuf,
    /// Where in the file.
    pub at: Location,
    /// What kind of problem.
    pub kind: RecordErrorKind,
    /// Human-readable reason (from the `evtx` crate, `serde_json`, or the reader).
    pub reason: String,
    /// How many records this error stands for, i.e. how many a summary
    /// should count as lost: 1 for one damaged record (and for a loss whose
    /// size is unknown); for an EVTX chunk-level note, the number of records
    /// its intact chunk header declares (`last - first + 1` EventRecordIDs)
    /// minus those recovered and those reported by their own error (e.g. the
    /// 38 records after a cut), or, for a slot whose chunk header is
    /// destroyed, the EventRecordIDs between its neighbours' intact headers
    /// minus those recovered (e.g. 145 for a zeroed chunk); 0 when nothing
    /// was lost
    /// ([`RecordErrorKind::DuplicateChunk`],
    /// [`RecordErrorKind::DamagedUnusedChunk`],
    /// [`RecordErrorKind::RepairedSignature`], a cut after the last record).
    pub records: u64,
}

impl RecordError {
    pub(crate) fn new(
        path: &std::path::Path,
        at: Location,
        kind: RecordErrorKind,
        reason: impl Into<String>,
    ) -> Self {
        RecordError {
            path: path.to_path_buf(),
            at,
            kind,
            reason: reason.into(),
            records: 1,
        }
    }

    /// The same error, standing for `n` records (see [`RecordError::records`]).
    pub(crate) fn with_records(mut self, n: u64) -> Self {
        self.records = n;
        self
    }
}

/// A directory entry that [`walk`](crate::walk) could not visit (missing
/// path, permission denied, symlink loop).
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<unknown path>".into()))]
#[non_exhaustive]
pub struct WalkError {
    /// The path that failed, when known.
    pub path: Option<PathBuf>,
    /// Why.
    pub reason: String,
}
