//! Follows growing JSON-lines log files — as Winlogbeat, NXLog or Fluent Bit write them —
//! for `tracehunt watch`: new complete lines as they are appended, across rotation by rename
//! and by truncation, with read offsets persisted so a restart resumes where it stopped.
//!
//! A [`Follower`] is synchronous and never blocks, sleeps, prints or spawns: the live engine
//! calls [`Follower::poll`] from its own thread every few milliseconds
//! ([`Follower::poll_interval`]), processes the [`Batch`]es, calls [`Follower::commit`] with
//! the [`Line::end_offset`] (or [`Batch::end_offset`]) of what it has fully processed
//! (detections written), and calls [`Follower::persist`] from time to time to write the state
//! file.
//!
//! # Targets
//!
//! Plain paths (checked on every poll; one that does not exist yet is followed once it
//! appears) and patterns with `*` / `?` in the last path component
//! (`/var/log/winlogbeat/*.ndjson`), whose directory is listed again every
//! [`FollowOptions::rescan_interval`] for new files.
//!
//! # Lines
//!
//! A line is delivered once its `\n` is there (a poll that lands in the middle of a write
//! keeps the partial line for the next poll), without the `\n` and one `\r` before it.
//! Invalid UTF-8 is replaced by U+FFFD and noted ([`Note::InvalidUtf8`]); a line longer than
//! [`FollowOptions::max_line_bytes`] is skipped and noted ([`Note::LineTooLong`]).
//!
//! # Rotation and truncation
//!
//! A file is identified by its device and inode, plus a hash of its first 256 bytes to catch
//! an inode reused by another file after a restart (the approach of Filebeat's and Fluent
//! Bit's tail inputs). A poll `stat`s each followed path (one call per file, no read when
//! nothing changed):
//!
//! - another file at the path (rename rotation `app.log` → `app.log.1` + new `app.log`, or
//!   delete and recreate): the old file is read to its end from the handle still open
//!   ([`Note::Rotated`]), kept open [`FollowOptions::drain_grace`] after it stopped growing,
//!   then closed ([`Note::Closed`]); the new file is read from offset 0 under a new
//!   [`FileId`]. A rotated name the targets also match keeps being followed.
//! - no file at the path: the same, with [`Note::Vanished`].
//! - the file shorter than what was read, or its first bytes changed (copytruncate):
//!   reading restarts at 0 under a new [`FileId`] ([`Note::Truncated`]). Lines written
//!   between the copy and the truncation are lost to any reader of the file; a file
//!   truncated and refilled past the read offset with the same first 256 bytes is not
//!   noticed.
//!
//! # Offsets and restarts: the guarantee
//!
//! The state file holds, per file, its identity, path and *committed* offset — not what was
//! read. [`Follower::persist`] replaces it atomically (temporary file in the same directory,
//! fsync, rename, fsync of the directory), so a crash at any point leaves the previous or
//! the new state. After a restart (even after SIGKILL):
//!
//! - a file whose identity matches a saved one resumes at its persisted committed offset
//!   ([`Note::Resumed`]); lines before it are never delivered again, lines after it are
//!   delivered (again, if they had been delivered but not committed and persisted): delivery
//!   is **at least once**, and re-delivery is limited to the lines after the last persisted
//!   offset;
//! - a file that replaced a saved one at its path (rotated while nothing ran) is read from 0
//!   ([`Note::Replaced`]); the saved file, when found under another name in the same
//!   directory, is first finished from its saved offset ([`Note::Recovered`]); when it is
//!   gone its unread lines are lost ([`Note::Lost`]);
//! - files without saved state are read from 0 — [`FollowOptions::start`] applies only on
//!   a first run (no state file);
//! - a state file that is not valid JSON of this crate is an error naming the file
//!   ([`FollowError::State`]): nothing is guessed, so nothing is silently skipped or
//!   re-read; delete it to start afresh.
//!
//! # Memory
//!
//! Per poll and file at most [`FollowOptions::max_batch_bytes`] are read (the rest waits,
//! [`Batch::more`]); a partial line kept between polls is at most
//! [`FollowOptions::max_line_bytes`]; per file at most 65,536 uncommitted line boundaries are
//! remembered (for the line number saved with a commit; older ones are dropped and the line
//! number is then recounted on resume).
//!
//! Unix only (device and inode numbers).
//!
//! ```
//! use std::io::Write;
//! use tracehunt_follow::{FollowOptions, Follower};
//!
//! let dir = tempfile::tempdir()?;
//! let log = dir.path().join("winlogbeat.ndjson");
//! let state = dir.path().join("follow-state.json");
//! let mut f = std::fs::File::create(&log)?;
//! f.write_all(b"{\"event\":{\"code\":4624}}\n{\"event\":")?;
//!
//! let mut follower = Follower::open(&[&log], Some(&state), FollowOptions::default())?;
//! let batches = follower.poll();
//! assert_eq!(batches.len(), 1);
//! assert_eq!(batches[0].lines[0].text, r#"{"event":{"code":4624}}"#);
//! assert_eq!(batches[0].lines.len(), 1); // the second line is not complete yet
//!
//! f.write_all(b"{\"code\":4688}}\r\n")?;
//! let batches = follower.poll();
//! let line = &batches[0].lines[0];
//! assert_eq!((line.text.as_str(), line.line_no, line.end_offset), (r#"{"event":{"code":4688}}"#, 2, 49));
//!
//! // Once the detections of these lines are written: commit, and now and then persist.
//! assert!(follower.commit(batches[0].file, batches[0].end_offset));
//! follower.persist()?;
//!
//! // A restart resumes after the last persisted commit.
//! drop(follower);
//! f.write_all(b"{\"event\":{\"code\":1102}}\n")?;
//! let mut follower = Follower::open(&[&log], Some(&state), FollowOptions::default())?;
//! let batches = follower.poll();
//! assert_eq!(batches[0].lines.len(), 1);
//! assert_eq!(batches[0].lines[0].line_no, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod pattern;
mod poll;
mod resume;
mod state;
mod tracked;
mod types;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use types::{Batch, FileId, FollowError, FollowOptions, Line, Note, Start};

use pattern::Target;
use state::Entry;
use tracked::Tracked;

/// Follows the files some targets name; see the crate documentation for what it guarantees.
#[derive(Debug)]
pub struct Follower {
    targets: Vec<Target>,
    state_path: Option<PathBuf>,
    opts: FollowOptions,
    /// Followed file generations, in the order they were first seen (a rotated file before
    /// the one that replaced it).
    files: Vec<Tracked>,
    next_id: u32,
    /// When the next glob rescan is due (`None`: never).
    next_rescan: Option<Instant>,
    /// Notes not yet handed out: (file, path, note).
    notes: Vec<(FileId, PathBuf, Note)>,
    /// (path, "open" | "read") with a problem reported and not yet cleared.
    reported: HashSet<(PathBuf, &'static str)>,
    /// Read buffer shared by the files (at most `max_batch_bytes`).
    buf: Vec<u8>,
    /// Something to persist changed since the last persist.
    dirty: bool,
    /// What the last persist wrote.
    saved: Option<Vec<Entry>>,
}

impl Follower {
    /// Opens the files `targets` name now and where each starts (see the crate
    /// documentation), resuming from the state file at `state_path` when it exists.
    ///
    /// `targets`: file paths, or patterns with `*` / `?` in their last component. Missing
    /// files and unreadable directories are not errors: they are noted in the first
    /// [`Follower::poll`]'s batches.
    ///
    /// # Errors
    ///
    /// [`FollowError::Options`] when `max_line_bytes` or `max_batch_bytes` is 0,
    /// [`FollowError::Target`] for an empty target or a wildcard before the last component,
    /// [`FollowError::State`] when the state file exists but cannot be read or parsed.
    pub fn open<P: AsRef<Path>>(
        targets: &[P],
        state_path: Option<&Path>,
        opts: FollowOptions,
    ) -> Result<Follower, FollowError> {
        if opts.max_line_bytes == 0 {
            return Err(FollowError::Options("max_line_bytes must be at least 1"));
        }
        if opts.max_batch_bytes == 0 {
            return Err(FollowError::Options("max_batch_bytes must be at least 1"));
        }
        let targets = targets
            .iter()
            .map(|t| Target::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let saved = match state_path {
            Some(p) => state::load(p)?,
            None => None,
        };
        let mut f = Follower {
            targets,
            state_path: state_path.map(Path::to_path_buf),
            opts,
            files: Vec::new(),
            next_id: 0,
            next_rescan: None,
            notes: Vec::new(),
            reported: HashSet::new(),
            buf: Vec::new(),
            dirty: true,
            saved: None,
        };
        f.initial_scan(saved);
        f.next_rescan = f.rescan_after(Instant::now());
        Ok(f)
    }

    /// Reads what was appended since the last poll, without blocking: per file with news, one
    /// [`Batch`] of its new complete lines (at most [`FollowOptions::max_batch_bytes`] read)
    /// and notes. Files in the order first seen, so a rotated file's tail comes before the
    /// lines of the file that replaced it. Empty when nothing changed.
    ///
    /// Cost with nothing new: one `stat` per followed path (plus one per plain target not
    /// followed yet and an `fstat` per file being drained), and a directory listing per
    /// pattern every [`FollowOptions::rescan_interval`].
    ///
    /// Never fails: problems with a file are [`Note`]s in its batch.
    pub fn poll(&mut self) -> Vec<Batch> {
        let now = Instant::now();
        self.check_paths();
        self.discover(now);
        self.read_all(now)
    }

    /// Records that everything in `file` before `end_offset` (bytes) was processed
    /// downstream; [`Follower::persist`] saves it. `end_offset` must be a
    /// [`Line::end_offset`] or [`Batch::end_offset`] of `file` not before its last commit.
    ///
    /// Returns false, recording nothing, when it is not (another offset, an offset not yet
    /// delivered, or one before the last commit), or when `file` is not followed any more
    /// (a truncated generation, or a closed file whose lines were all committed).
    pub fn commit(&mut self, file: FileId, end_offset: u64) -> bool {
        let Some(t) = self.files.iter_mut().find(|t| t.id == file) else {
            return false;
        };
        let before = t.committed;
        let ok = t.commit(end_offset);
        if ok && t.committed != before {
            self.dirty = true;
        }
        ok
    }

    /// The committed offset (bytes) of `file`, if it is followed.
    pub fn committed(&self, file: FileId) -> Option<u64> {
        self.files
            .iter()
            .find(|t| t.id == file)
            .map(|t| t.committed)
    }

    /// Writes the state file (committed offsets and identities) atomically, when something
    /// changed since the last persist. Does nothing without a state path.
    ///
    /// # Errors
    ///
    /// [`FollowError::Persist`] when the temporary file cannot be written, synced or renamed;
    /// the previous state file is then unchanged, and the next call tries again.
    pub fn persist(&mut self) -> Result<(), FollowError> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        let entries: Vec<Entry> = self.files.iter().map(Tracked::entry).collect();
        if !self.dirty && self.saved.as_ref() == Some(&entries) {
            return Ok(());
        }
        state::store(path, entries.clone())?;
        self.saved = Some(entries);
        self.dirty = false;
        Ok(())
    }

    /// The interval the caller should sleep between polls when the last poll had no
    /// [`Batch::more`] ([`FollowOptions::poll_interval`]).
    pub fn poll_interval(&self) -> Duration {
        self.opts.poll_interval
    }

    /// The files followed now (including renamed-away files still being read): id and path.
    pub fn files(&self) -> Vec<(FileId, &Path)> {
        self.files
            .iter()
            .filter(|t| t.handle.is_some())
            .map(|t| (t.id, t.path.as_path()))
            .collect()
    }

    fn new_id(&mut self) -> FileId {
        let id = FileId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Queues a note about `file` for the next poll's batches.
    fn note(&mut self, file: FileId, path: &Path, note: Note) {
        self.notes.push((file, path.to_path_buf(), note));
    }

    /// When the next glob rescan is due after one at `now`; `None` (never) for an interval
    /// too long to add to `now`.
    fn rescan_after(&self, now: Instant) -> Option<Instant> {
        now.checked_add(self.opts.rescan_interval)
    }

    /// True when `path` is the state file or its temporary file, never followed even when a
    /// pattern matches them.
    fn is_state_file(&self, path: &Path) -> bool {
        let Some(s) = &self.state_path else {
            return false;
        };
        let (Some(name), Some(state_name)) = (path.file_name(), s.file_name()) else {
            return false;
        };
        let mut tmp = state_name.to_os_string();
        tmp.push(".tmp");
        path.parent() == s.parent() && (name == state_name || name == tmp)
    }

    /// Takes the queued notes about `file`.
    fn take_notes(&mut self, file: FileId) -> Vec<Note> {
        if self.notes.is_empty() {
            return Vec::new();
        }
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.notes)
            .into_iter()
            .partition(|n| n.0 == file);
        self.notes = rest;
        mine.into_iter().map(|n| n.2).collect()
    }

    /// Queues a note about a path that has no followed file, once until cleared.
    fn report(&mut self, path: &Path, note: Note) {
        if self.reported.insert((path.to_path_buf(), "open")) {
            let id = self.new_id();
            self.note(id, path, note);
        }
    }

    fn clear_report(&mut self, path: &Path, kind: &'static str) {
        if !self.reported.is_empty() {
            self.reported.remove(&(path.to_path_buf(), kind));
        }
    }
}
