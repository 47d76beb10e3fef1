//! The values a [`Follower`](crate::Follower) takes and hands out: options,
//! file ids, lines, batches, notes and errors.

use std::path::PathBuf;
use std::time::Duration;

/// Where reading starts in a file that exists when [`Follower::open`](crate::Follower::open)
/// runs without any saved state (no state path, or no state file yet).
///
/// Files that appear later (created, rotated in, found by a glob rescan) and files found
/// while resuming from a state file but absent from it are always read from offset 0: they
/// appeared while nobody was reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Read the whole file from offset 0.
    #[default]
    Beginning,
    /// Skip the complete lines the file holds now; deliver the line in progress (if any)
    /// and what is appended after `open`. Line numbers still count the skipped lines (the
    /// file is read once at `open` to count them).
    End,
}

/// Limits and timing of a [`Follower`](crate::Follower).
///
/// All sizes are bytes; all durations are wall-clock times measured with
/// [`std::time::Instant`] at each [`Follower::poll`](crate::Follower::poll).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowOptions {
    /// Where files present at the first open start (see [`Start`]). Default: `Beginning`.
    pub start: Start,
    /// Longest line delivered, in bytes without its `\n` (a trailing `\r` counts). A longer
    /// line is skipped up to its newline and reported as [`Note::LineTooLong`]; the partial
    /// line kept between polls never exceeds this. Default: 1 MiB. Must be ≥ 1.
    pub max_line_bytes: usize,
    /// Most bytes read from one file by one poll; the rest waits for the next poll and the
    /// batch says [`Batch::more`]. Default: 4 MiB. Must be ≥ 1.
    pub max_batch_bytes: usize,
    /// How often directories of glob patterns are listed again for new files (a poll lists
    /// them when at least this much time passed since the last listing). Plain paths are
    /// checked on every poll. Default: 100 ms.
    pub rescan_interval: Duration,
    /// How long a file that was renamed away or deleted stays open after it stopped growing,
    /// for a writer that still appends to its old handle; then it is closed
    /// ([`Note::Closed`]). Default: 2 s. `Duration::ZERO` closes it at the first poll that
    /// finds it fully read.
    pub drain_grace: Duration,
    /// The interval the caller is advised to sleep between polls (the follower never sleeps;
    /// see [`Follower::poll_interval`](crate::Follower::poll_interval)). Default: 5 ms.
    pub poll_interval: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            start: Start::Beginning,
            max_line_bytes: 1 << 20,
            max_batch_bytes: 4 << 20,
            rescan_interval: Duration::from_millis(100),
            drain_grace: Duration::from_secs(2),
            poll_interval: Duration::from_millis(5),
        }
    }
}

/// A small number naming one *generation* of one followed file for the life of a
/// [`Follower`](crate::Follower): the same file keeps its id across polls and renames; a
/// truncated file (copytruncate) and a newly created file get a new id. Ids are not kept
/// across restarts (the state file keys files by identity, not id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// One complete line read from a followed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line without its `\n` and without one `\r` before it. Invalid UTF-8 is replaced by
    /// U+FFFD (lossy) and reported as [`Note::InvalidUtf8`].
    pub text: String,
    /// 1-based number of this line in the file generation (skipped over-long lines count).
    /// After a resume it continues from the persisted count (or from a count of the newlines
    /// before the resume offset when that was not known).
    pub line_no: u64,
    /// Byte offset just after this line's `\n`: what to pass to
    /// [`Follower::commit`](crate::Follower::commit) once the line is processed.
    pub end_offset: u64,
}

/// What one poll read from one file: its new complete lines in file order, and what
/// happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The file generation these lines come from.
    pub file: FileId,
    /// The path the file was last seen under (for a renamed-away or deleted file: the path it
    /// had when it was followed).
    pub path: PathBuf,
    /// New complete lines, in file order.
    pub lines: Vec<Line>,
    /// Offset up to which this file has been delivered (after the last line or skipped
    /// over-long line of this batch; unchanged when there are none): committing it after the
    /// batch is processed commits the whole batch.
    pub end_offset: u64,
    /// True when this poll stopped at [`FollowOptions::max_batch_bytes`] and more bytes are
    /// already waiting: poll again without sleeping.
    pub more: bool,
    /// Events about this file, in the order they happened.
    pub notes: Vec<Note>,
}

/// Something that happened to a followed file (the path is the [`Batch`]'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A file was opened from a saved state at `offset` (bytes).
    Resumed {
        /// The committed offset reading resumes at.
        offset: u64,
    },
    /// The file was replaced at its path (rotation by rename, or deleted and recreated): this
    /// batch's file is drained from the still-open handle, the new file is followed under a
    /// new id from offset 0.
    Rotated,
    /// The file disappeared from its path (deleted, or renamed to a name not followed): it is
    /// drained from the still-open handle.
    Vanished,
    /// The file shrank below the read offset `at`, or its first bytes changed
    /// (copytruncate): reading restarts at offset 0 under a new id.
    Truncated {
        /// The read offset (bytes) the file was at before it was truncated.
        at: u64,
    },
    /// A renamed-away or deleted file was fully read and has been closed, at `end_offset`.
    Closed {
        /// Offset (bytes) the file was read to.
        end_offset: u64,
    },
    /// A closed file ended with `bytes` bytes after its last newline; they were not delivered.
    IncompleteTail {
        /// Number of bytes after the last `\n`.
        bytes: u64,
    },
    /// A line longer than [`FollowOptions::max_line_bytes`] was skipped.
    LineTooLong {
        /// Its 1-based line number.
        line_no: u64,
        /// Offset of its first byte.
        start_offset: u64,
        /// Offset just after its `\n`.
        end_offset: u64,
    },
    /// A line was not valid UTF-8 and was delivered with U+FFFD replacements.
    InvalidUtf8 {
        /// Its 1-based line number.
        line_no: u64,
    },
    /// A plain target path does not exist (yet); reported once, followed when it appears.
    NotFound,
    /// The path could not be opened, read or listed; `error` is the I/O error's text.
    /// Reported once until the path works again.
    Unreadable {
        /// The I/O error's text.
        error: String,
    },
    /// The state file had an entry for this path, but the file now there is another one
    /// (different device/inode or first bytes): it is read from offset 0.
    Replaced {
        /// The committed offset saved for the former file.
        saved_offset: u64,
    },
    /// A file of the state file was found under this other name in its directory (renamed
    /// while nobody was reading): it is finished from the saved offset, then closed.
    Recovered {
        /// The path saved in the state file.
        saved_path: PathBuf,
        /// The committed offset reading resumes at.
        offset: u64,
    },
    /// A file of the state file was not found any more (deleted while nobody was reading,
    /// or renamed out of its directory): its lines after `saved_offset` cannot be read.
    Lost {
        /// The committed offset saved for it.
        saved_offset: u64,
    },
}

impl std::fmt::Display for Note {
    /// One line for an operator, e.g. `line 12 longer than the line cap, skipped (bytes 100..2000000)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Note::Resumed { offset } => write!(f, "resumed at byte {offset} (saved state)"),
            Note::Rotated => write!(f, "rotated: reading the rest of the old file, then the new one from its start"),
            Note::Vanished => write!(f, "gone from its path: reading the rest of the open file"),
            Note::Truncated { at } => write!(f, "truncated (was read to byte {at}): reading again from its start"),
            Note::Closed { end_offset } => write!(f, "closed after reading it to byte {end_offset}"),
            Note::IncompleteTail { bytes } => {
                write!(f, "closed with {bytes} bytes after its last newline, not read (an incomplete last line)")
            }
            Note::LineTooLong { line_no, start_offset, end_offset } => write!(
                f,
                "line {line_no} longer than the line cap, skipped (bytes {start_offset}..{end_offset})"
            ),
            Note::InvalidUtf8 { line_no } => write!(f, "line {line_no} is not valid UTF-8: read with U+FFFD replacements"),
            Note::NotFound => write!(f, "not found (yet): followed once it appears"),
            Note::Unreadable { error } => write!(f, "unreadable: {error}"),
            Note::Replaced { saved_offset } => write!(
                f,
                "another file than the saved one (saved offset {saved_offset}): reading it from its start"
            ),
            Note::Recovered { saved_path, offset } => write!(
                f,
                "the file saved as {} (rotated while not running): finishing it from byte {offset}",
                saved_path.display()
            ),
            Note::Lost { saved_offset } => write!(
                f,
                "the saved file is gone: its lines after byte {saved_offset} cannot be read"
            ),
        }
    }
}

/// Why [`Follower::open`](crate::Follower::open) or
/// [`Follower::persist`](crate::Follower::persist) failed. Problems with one followed file are
/// never errors: they are [`Note`]s.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// An option is out of range.
    #[error("invalid follow option: {0}")]
    Options(&'static str),
    /// A target is empty or has a wildcard outside its last path component.
    #[error("invalid follow target {target:?}: {reason}")]
    Target {
        /// The target as given.
        target: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The state file exists but cannot be read, is not the JSON this crate writes, or has
    /// an unsupported version. Nothing is guessed: move or delete the file to start afresh.
    #[error("follow state file {path:?}: {reason}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Writing the state file failed (the previous state file, if any, is unchanged).
    #[error("writing follow state file {}", path.display())]
    Persist {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
