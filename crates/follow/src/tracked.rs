//! One followed file generation: its open handle, identity, read position, partial line and
//! committed offset; and the reading of its new bytes into lines.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::time::Instant;

use crate::state::Entry;
use crate::types::{FileId, Line, Note};

/// Bytes at the start of a file hashed into its fingerprint.
pub(crate) const FP_MAX: usize = 256;

/// Line boundaries remembered per file for [`Tracked::commit`] (line numbers of committed
/// offsets); older ones are dropped.
const CHECKPOINTS_MAX: usize = 65_536;

/// FNV-1a 64.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Reads up to `buf.len()` bytes at `offset`, fewer only at end of file.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// True when the first `len` bytes of `file` (at most [`FP_MAX`]) hash to `fp`.
pub(crate) fn prefix_matches(file: &File, len: u32, fp: u64) -> bool {
    let mut head = [0u8; FP_MAX];
    let want = (len as usize).min(FP_MAX);
    matches!(read_full_at(file, &mut head[..want], 0), Ok(n) if n == want && fnv1a(&head[..n]) == fp)
}

/// Device, inode and fingerprint of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ident {
    pub dev: u64,
    pub ino: u64,
    pub fp_len: u32,
    pub fp: u64,
}

impl Ident {
    /// Identity of an open file: its device and inode, and the hash of its first bytes.
    pub(crate) fn of(file: &File, meta: &std::fs::Metadata) -> io::Result<Ident> {
        let mut head = [0u8; FP_MAX];
        let n = read_full_at(file, &mut head, 0)?;
        Ok(Ident {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: n as u32,
            fp: fnv1a(&head[..n]),
        })
    }

    /// True when `meta` is the same device and inode.
    pub(crate) fn same_inode(&self, meta: &std::fs::Metadata) -> bool {
        self.dev == meta.dev() && self.ino == meta.ino()
    }

    /// True when a saved entry names this file: same device and inode, and this file's first
    /// `entry.fp_len` bytes hash to `entry.fp` (an inode reused by another file differs).
    pub(crate) fn matches(&self, file: &File, entry: &Entry) -> bool {
        if self.dev != entry.dev || self.ino != entry.ino || self.fp_len < entry.fp_len {
            return false;
        }
        prefix_matches(file, entry.fp_len, entry.fp)
    }
}

/// Where a tracked file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Followed under its path.
    Active,
    /// Renamed away or deleted: read to its end from the open handle; `idle_since` is when
    /// it was last found fully read without growth.
    Retired { idle_since: Option<Instant> },
    /// Closed; kept until everything read from it is committed.
    Closed,
}

/// What one read of a file produced.
#[derive(Debug, Default)]
pub(crate) struct ReadOut {
    pub lines: Vec<Line>,
    pub notes: Vec<Note>,
    pub more: bool,
}

/// One followed file generation.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub id: FileId,
    pub path: PathBuf,
    pub ident: Ident,
    pub handle: Option<File>,
    pub status: Status,
    /// Size found by this poll's `stat` of the path (active files), taken by the read.
    pub size: Option<u64>,
    /// Bytes read so far (into lines, a skipped line or `partial`).
    pub read_pos: u64,
    /// Offset where the line being assembled starts (= end of the last delivered line).
    pub line_start: u64,
    /// Bytes of the line being assembled (`line_start..read_pos`), unless `skipping`.
    pub partial: Vec<u8>,
    /// Inside a line longer than the cap: discarding up to its newline.
    pub skipping: bool,
    /// Lines consumed (delivered or skipped) so far in this generation.
    pub line_no: u64,
    /// Committed offset.
    pub committed: u64,
    /// Number of lines before `committed`, when known.
    pub committed_line: Option<u64>,
    /// (end offset, line number) of consumed lines not yet committed, oldest first.
    checkpoints: VecDeque<(u64, u64)>,
    /// Largest end offset dropped from `checkpoints` for lack of room.
    dropped_upto: u64,
}

impl Tracked {
    /// A file opened to be read from `offset`, with `line_no` lines before it.
    pub(crate) fn new(
        id: FileId,
        path: PathBuf,
        ident: Ident,
        handle: File,
        offset: u64,
        line_no: u64,
    ) -> Tracked {
        Tracked {
            id,
            path,
            ident,
            handle: Some(handle),
            status: Status::Active,
            size: None,
            read_pos: offset,
            line_start: offset,
            partial: Vec::new(),
            skipping: false,
            line_no,
            committed: offset,
            committed_line: Some(line_no),
            checkpoints: VecDeque::new(),
            dropped_upto: 0,
        }
    }

    /// The state-file entry of this file.
    pub(crate) fn entry(&self) -> Entry {
        Entry {
            path: self.path.clone(),
            dev: self.ident.dev,
            ino: self.ident.ino,
            fp_len: self.ident.fp_len,
            fp: self.ident.fp,
            offset: self.committed,
            line: self.committed_line,
        }
    }

    /// Starts a new generation at offset 0 under the id `id` (truncation).
    pub(crate) fn restart(&mut self, id: FileId) {
        self.id = id;
        self.read_pos = 0;
        self.line_start = 0;
        self.partial = Vec::new();
        self.skipping = false;
        self.line_no = 0;
        self.committed = 0;
        self.committed_line = Some(0);
        self.checkpoints.clear();
        self.dropped_upto = 0;
        self.ident.fp_len = 0;
        self.ident.fp = fnv1a(&[]);
    }

    /// Records that everything before `end` was processed. True when recorded: `end` must
    /// be a line boundary delivered from this generation, not before the current commit.
    pub(crate) fn commit(&mut self, end: u64) -> bool {
        if end < self.committed || end > self.line_start {
            return false;
        }
        if end == self.committed {
            return true;
        }
        let line = match self.checkpoints.binary_search_by_key(&end, |c| c.0) {
            Ok(i) => {
                let line = self.checkpoints[i].1;
                self.checkpoints.drain(..=i);
                Some(line)
            }
            // Not a line boundary we delivered (unless its checkpoint was dropped).
            Err(_) if end > self.dropped_upto => return false,
            Err(i) => {
                self.checkpoints.drain(..i);
                None
            }
        };
        self.committed = end;
        self.committed_line = line;
        true
    }

    fn checkpoint(&mut self, end: u64) {
        if self.checkpoints.len() >= CHECKPOINTS_MAX {
            if let Some((off, _)) = self.checkpoints.pop_front() {
                self.dropped_upto = off;
            }
        }
        self.checkpoints.push_back((end, self.line_no));
    }

    /// Checks the first bytes against the fingerprint and extends it. False when they
    /// changed (the file was truncated and rewritten).
    pub(crate) fn check_prefix(&mut self, size: u64) -> io::Result<bool> {
        let Some(file) = self.handle.as_ref() else {
            return Ok(true);
        };
        let have = self.ident.fp_len as usize;
        let want = size.min(FP_MAX as u64) as usize;
        if want < have {
            return Ok(false);
        }
        if want == 0 {
            return Ok(true);
        }
        let mut head = [0u8; FP_MAX];
        let n = read_full_at(file, &mut head[..want], 0)?;
        if n < have || fnv1a(&head[..have]) != self.ident.fp {
            return Ok(false);
        }
        if n > have {
            self.ident.fp_len = n as u32;
            self.ident.fp = fnv1a(&head[..n]);
        }
        Ok(true)
    }

    /// Reads what was appended up to `size` (at most `max_batch` bytes) into complete lines.
    pub(crate) fn read(
        &mut self,
        size: u64,
        max_line: usize,
        max_batch: usize,
        buf: &mut Vec<u8>,
    ) -> io::Result<ReadOut> {
        let mut out = ReadOut::default();
        let Some(file) = self.handle.as_ref() else {
            return Ok(out);
        };
        if size <= self.read_pos {
            return Ok(out);
        }
        let avail = size - self.read_pos;
        let want = avail.min(max_batch as u64) as usize;
        buf.resize(want, 0);
        let got = read_full_at(file, &mut buf[..want], self.read_pos)?;
        out.more = avail > want as u64 && got == want;
        let base = self.read_pos;
        self.read_pos += got as u64;
        self.split(&buf[..got], base, max_line, &mut out);
        Ok(out)
    }

    /// Splits `bytes` (read at offset `base`) into lines, continuing the partial line.
    fn split(&mut self, bytes: &[u8], base: u64, max_line: usize, out: &mut ReadOut) {
        let mut seg_start = 0usize;
        while let Some(rel) = bytes[seg_start..].iter().position(|&b| b == b'\n') {
            let nl = seg_start + rel;
            let seg = &bytes[seg_start..nl];
            let end = base + nl as u64 + 1;
            self.line_no += 1;
            if self.skipping || self.partial.len() + seg.len() > max_line {
                out.notes.push(Note::LineTooLong {
                    line_no: self.line_no,
                    start_offset: self.line_start,
                    end_offset: end,
                });
                self.skipping = false;
                self.partial.clear();
            } else {
                let text = if self.partial.is_empty() {
                    to_text(seg)
                } else {
                    self.partial.extend_from_slice(seg);
                    let t = to_text(&self.partial);
                    self.partial.clear();
                    t
                };
                let text = match text {
                    Ok(t) => t,
                    Err(t) => {
                        out.notes.push(Note::InvalidUtf8 {
                            line_no: self.line_no,
                        });
                        t
                    }
                };
                out.lines.push(Line {
                    text,
                    line_no: self.line_no,
                    end_offset: end,
                });
            }
            self.line_start = end;
            self.checkpoint(end);
            seg_start = nl + 1;
        }
        let rest = &bytes[seg_start..];
        if self.skipping || rest.is_empty() {
            return;
        }
        if self.partial.len() + rest.len() > max_line {
            self.skipping = true;
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(rest);
        }
    }
}

/// The line's text without one trailing `\r`: `Ok` when valid UTF-8, else `Err` with the
/// lossy conversion.
fn to_text(seg: &[u8]) -> Result<String, String> {
    let seg = seg.strip_suffix(b"\r").unwrap_or(seg);
    match std::str::from_utf8(seg) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(String::from_utf8_lossy(seg).into_owned()),
    }
}

/// Number of `\n` bytes in `file` before `offset` (reads the prefix once, 64 KiB at a time).
pub(crate) fn count_lines(file: &File, offset: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let (mut pos, mut lines) = (0u64, 0u64);
    while pos < offset {
        let want = (offset - pos).min(buf.len() as u64) as usize;
        let n = read_full_at(file, &mut buf[..want], pos)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        pos += n as u64;
    }
    Ok(lines)
}
