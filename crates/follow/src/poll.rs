//! One poll: find new files, notice rotation and deletion, read what was appended.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::pattern::{list_matches, Target};
use crate::resume::open_file;
use crate::tracked::{Status, Tracked};
use crate::types::{Batch, Note};
use crate::Follower;

impl Follower {
    /// Checks every active file at its path: same file (size noted), replaced
    /// ([`Note::Rotated`], the new file is opened) or gone ([`Note::Vanished`]).
    pub(crate) fn check_paths(&mut self) {
        let mut rotated = Vec::new();
        for i in 0..self.files.len() {
            if self.files[i].status != Status::Active {
                continue;
            }
            match fs::metadata(&self.files[i].path) {
                Ok(m) if self.files[i].ident.same_inode(&m) => {
                    self.files[i].size = Some(m.len());
                    if !self.reported.is_empty() {
                        let path = self.files[i].path.clone();
                        self.clear_report(&path, "open");
                    }
                }
                Ok(_) => {
                    rotated.push(self.files[i].path.clone());
                    self.retire(i, Note::Rotated);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => self.retire(i, Note::Vanished),
                Err(e) => {
                    let path = self.files[i].path.clone();
                    self.report(
                        &path,
                        Note::Unreadable {
                            error: e.to_string(),
                        },
                    )
                }
            }
        }
        for path in rotated {
            self.consider(&path, false);
        }
    }

    fn retire(&mut self, i: usize, note: Note) {
        let (id, path) = (self.files[i].id, self.files[i].path.clone());
        self.files[i].status = Status::Retired { idle_since: None };
        // The path was followed: its absence is not reported as `NotFound`.
        self.reported.insert((path.clone(), "open"));
        self.note(id, &path, note);
    }

    /// Opens the target paths not followed yet: plain paths on every poll, glob matches
    /// when a rescan is due.
    pub(crate) fn discover(&mut self, now: Instant) {
        let due = self.next_rescan.is_some_and(|t| now >= t);
        let mut candidates: Vec<(PathBuf, bool)> = Vec::new();
        let mut failed = Vec::new();
        for t in &self.targets {
            match t {
                Target::Path(p) => candidates.push((p.clone(), true)),
                Target::Glob { dir, pattern } if due => match list_matches(dir, pattern) {
                    Ok(v) => {
                        candidates.extend(v.into_iter().map(|p| (p, false)));
                        failed.push((dir.clone(), None));
                    }
                    Err(e) => failed.push((dir.clone(), Some(e))),
                },
                Target::Glob { .. } => {}
            }
        }
        for (dir, e) in failed {
            match e {
                Some(e) => self.report(
                    &dir,
                    Note::Unreadable {
                        error: e.to_string(),
                    },
                ),
                None => self.clear_report(&dir, "open"),
            }
        }
        if due {
            self.next_rescan = self.rescan_after(now);
        }
        if candidates.is_empty() {
            return;
        }
        let todo: Vec<(PathBuf, bool)> = {
            let active: HashSet<&Path> = self
                .files
                .iter()
                .filter(|t| t.status == Status::Active)
                .map(|t| t.path.as_path())
                .collect();
            candidates
                .into_iter()
                .filter(|(p, _)| !active.contains(p.as_path()) && !self.is_state_file(p))
                .collect()
        };
        for (path, plain) in todo {
            self.consider(&path, plain);
        }
    }

    /// A target path not followed under that name: the same file followed under another
    /// name (renamed: it moves here, or an alias: ignored), a retired or closed file come
    /// back (followed on from where it was), or a new file (from offset 0).
    fn consider(&mut self, path: &Path, plain: bool) {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if plain {
                    self.report(path, Note::NotFound);
                }
                return;
            }
            Err(e) => {
                let error = e.to_string();
                return self.report(path, Note::Unreadable { error });
            }
        };
        let same = self
            .files
            .iter()
            .position(|t| t.handle.is_some() && t.ident.same_inode(&meta));
        if let Some(i) = same {
            let t = &mut self.files[i];
            let moved = t.status != Status::Active
                || !fs::metadata(&t.path).is_ok_and(|m| t.ident.same_inode(&m));
            if moved {
                t.path = path.to_path_buf();
                t.status = Status::Active;
                t.size = Some(meta.len());
            }
            return;
        }
        let o = match open_file(path) {
            Ok(o) => o,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    let error = e.to_string();
                    self.report(path, Note::Unreadable { error });
                }
                return;
            }
        };
        self.clear_report(path, "open");
        let closed = self.files.iter().position(|t| {
            t.status == Status::Closed
                && t.ident.dev == o.ident.dev
                && t.ident.ino == o.ident.ino
                && o.ident.fp_len >= t.ident.fp_len
                && crate::tracked::prefix_matches(&o.file, t.ident.fp_len, t.ident.fp)
        });
        if let Some(i) = closed {
            let t = &mut self.files[i];
            t.handle = Some(o.file);
            t.path = path.to_path_buf();
            t.status = Status::Active;
            t.read_pos = t.line_start;
            t.partial.clear();
            t.skipping = false;
            t.size = Some(o.size);
            return;
        }
        let id = self.new_id();
        self.files
            .push(Tracked::new(id, path.to_path_buf(), o.ident, o.file, 0, 0));
    }

    /// Forgets closed files whose lines are all committed; reads every open file; closes
    /// drained retired ones.
    pub(crate) fn read_all(&mut self, now: Instant) -> Vec<Batch> {
        // Forgotten only now, so that the batch that said `Closed` could still be committed.
        let before = self.files.len();
        self.files
            .retain(|t| !(t.status == Status::Closed && t.committed >= t.line_start));
        if self.files.len() != before {
            self.dirty = true;
        }
        let mut out = Vec::new();
        for i in 0..self.files.len() {
            if self.files[i].handle.is_none() {
                continue;
            }
            let mut notes = self.take_notes(self.files[i].id);
            let (lines, more) = self.read_one(i, now, &mut notes);
            let t = &self.files[i];
            if !lines.is_empty() || !notes.is_empty() {
                out.push(Batch {
                    file: t.id,
                    path: t.path.clone(),
                    lines,
                    end_offset: t.line_start,
                    more,
                    notes,
                });
            }
        }
        let mut rest: Vec<Batch> = Vec::new();
        for (id, path, note) in std::mem::take(&mut self.notes) {
            match rest.iter_mut().find(|b| b.file == id) {
                Some(b) => b.notes.push(note),
                None => {
                    let end_offset = self
                        .files
                        .iter()
                        .find(|t| t.id == id)
                        .map_or(0, |t| t.line_start);
                    rest.push(Batch {
                        file: id,
                        path,
                        lines: Vec::new(),
                        end_offset,
                        more: false,
                        notes: vec![note],
                    });
                }
            }
        }
        rest.append(&mut out);
        rest
    }

    /// Reads file `i`: truncation check, new lines, closing when retired and drained.
    fn read_one(
        &mut self,
        i: usize,
        now: Instant,
        notes: &mut Vec<Note>,
    ) -> (Vec<crate::Line>, bool) {
        let (max_line, max_batch, grace) = (
            self.opts.max_line_bytes,
            self.opts.max_batch_bytes,
            self.opts.drain_grace,
        );
        let size = match self.files[i].size.take() {
            Some(s) => Ok(s),
            None => match &self.files[i].handle {
                Some(f) => f.metadata().map(|m| m.len()),
                None => return (Vec::new(), false),
            },
        };
        let new_id = crate::FileId(self.next_id);
        let t = &mut self.files[i];
        let mut changed = false;
        let result = size.and_then(|size| {
            if size < t.read_pos || (size > t.read_pos && !t.check_prefix(size)?) {
                notes.push(Note::Truncated { at: t.read_pos });
                t.restart(new_id);
                t.check_prefix(size)?;
                changed = true;
            }
            let before = t.read_pos;
            let r = t.read(size, max_line, max_batch, &mut self.buf)?;
            Ok((size, before, r))
        });
        if changed {
            self.next_id += 1;
            self.dirty = true;
        }
        let path = self.files[i].path.clone();
        let (size, before, r) = match result {
            Ok(x) => {
                self.clear_report(&path, "read");
                x
            }
            Err(e) => {
                if self.reported.insert((path, "read")) {
                    notes.push(Note::Unreadable {
                        error: e.to_string(),
                    });
                }
                return (Vec::new(), false);
            }
        };
        let t = &mut self.files[i];
        notes.extend(r.notes);
        if let Status::Retired { idle_since } = t.status {
            let drained = t.read_pos >= size && !r.more;
            let since = if t.read_pos > before {
                now
            } else {
                idle_since.unwrap_or(now)
            };
            if drained && now.duration_since(since) >= grace {
                if t.read_pos > t.line_start {
                    notes.push(Note::IncompleteTail {
                        bytes: t.read_pos - t.line_start,
                    });
                }
                notes.push(Note::Closed {
                    end_offset: t.line_start,
                });
                t.handle = None;
                t.status = Status::Closed;
            } else {
                t.status = Status::Retired {
                    idle_since: Some(since),
                };
            }
        }
        (r.lines, r.more)
    }
}
