//! Opening: the files the targets name now, matched against the saved state (resume,
//! replaced, recovered under another name, lost), and where each starts.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::pattern::{list_matches, Target};
use crate::state::Entry;
use crate::tracked::{count_lines, read_full_at, Ident, Status, Tracked};
use crate::types::{Note, Start};
use crate::Follower;

/// A file opened for following: handle, size and identity.
pub(crate) struct Opened {
    pub file: File,
    pub size: u64,
    pub ident: Ident,
}

/// Opens a regular file and reads its identity. Anything else (a directory, a FIFO, whose
/// `open` could block) is refused before it is opened.
pub(crate) fn open_file(path: &Path) -> io::Result<Opened> {
    if !fs::metadata(path)?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let ident = Ident::of(&file, &meta)?;
    Ok(Opened {
        size: meta.len(),
        file,
        ident,
    })
}

/// True when `offset` is a line boundary of `file` (0, or just after a `\n`) within `size`.
fn at_line_boundary(file: &File, offset: u64, size: u64) -> bool {
    if offset == 0 {
        return true;
    }
    if offset > size {
        return false;
    }
    let mut b = [0u8; 1];
    matches!(read_full_at(file, &mut b, offset - 1), Ok(1) if b[0] == b'\n')
}

/// Start of the last (possibly incomplete) line of a file of `size` bytes, looking back at
/// most `max_line` bytes; `(size, true)` when no newline is found there (the line in
/// progress is already too long and will be skipped).
fn last_line_start(file: &File, size: u64, max_line: usize) -> io::Result<(u64, bool)> {
    let back = size.min(max_line as u64 + 1);
    let mut buf = vec![0u8; back as usize];
    let n = read_full_at(file, &mut buf, size - back)?;
    match buf[..n].iter().rposition(|&b| b == b'\n') {
        Some(i) => Ok((size - back + i as u64 + 1, false)),
        None if back == size => Ok((0, false)),
        None => Ok((size, true)),
    }
}

impl Follower {
    /// Opens what the targets name now, resuming from `saved` (the state file's entries,
    /// `None` without a state file).
    pub(crate) fn initial_scan(&mut self, saved: Option<Vec<Entry>>) {
        let resuming = saved.is_some();
        let entries = saved.unwrap_or_default();
        let mut used = vec![false; entries.len()];
        let mut current: Vec<Tracked> = Vec::new();
        for (path, plain) in self.current_paths() {
            let o = match open_file(&path) {
                Ok(o) => o,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if plain {
                        self.report(&path, Note::NotFound);
                    }
                    continue;
                }
                Err(e) => {
                    self.report(
                        &path,
                        Note::Unreadable {
                            error: e.to_string(),
                        },
                    );
                    continue;
                }
            };
            if current
                .iter()
                .any(|t| t.ident.dev == o.ident.dev && t.ident.ino == o.ident.ino)
            {
                continue;
            }
            let id = self.new_id();
            let found =
                (0..entries.len()).find(|&k| !used[k] && o.ident.matches(&o.file, &entries[k]));
            let (offset, line, note) = if let Some(k) = found {
                used[k] = true;
                self.resume_point(&o, &entries[k])
            } else if let Some(e) = entries.iter().find(|e| e.path == path) {
                let note = Note::Replaced {
                    saved_offset: e.offset,
                };
                (0, Some(0), Some(note))
            } else if resuming || self.opts.start == Start::Beginning {
                (0, Some(0), None)
            } else {
                match last_line_start(&o.file, o.size, self.opts.max_line_bytes) {
                    Ok((off, skipping)) => {
                        let mut t = self.tracked_at(id, path.clone(), o, off, None);
                        t.skipping = skipping;
                        current.push(t);
                        continue;
                    }
                    Err(_) => (0, Some(0), None),
                }
            };
            if let Some(n) = note {
                self.note(id, &path, n);
            }
            current.push(self.tracked_at(id, path, o, offset, line));
        }
        let mut recovered = Vec::new();
        for (k, e) in entries.iter().enumerate() {
            if used[k] {
                continue;
            }
            match find_in_dir(e, &current) {
                Some((path, o)) => {
                    let id = self.new_id();
                    let (offset, line, note) = self.resume_point(&o, e);
                    self.note(
                        id,
                        &path,
                        Note::Recovered {
                            saved_path: e.path.clone(),
                            offset,
                        },
                    );
                    if let Some(n) = note {
                        if !matches!(n, Note::Resumed { .. }) {
                            self.note(id, &path, n);
                        }
                    }
                    let mut t = self.tracked_at(id, path, o, offset, line);
                    t.status = Status::Retired { idle_since: None };
                    recovered.push(t);
                }
                None => {
                    let id = self.new_id();
                    self.note(
                        id,
                        &e.path,
                        Note::Lost {
                            saved_offset: e.offset,
                        },
                    );
                }
            }
        }
        recovered.append(&mut current);
        self.files = recovered;
    }

    /// Where a file matching saved entry `e` resumes: `(offset, lines before it, note)`;
    /// offset 0 with [`Note::Truncated`] when the saved offset is past its end or not a line
    /// boundary.
    fn resume_point(&self, o: &Opened, e: &Entry) -> (u64, Option<u64>, Option<Note>) {
        if at_line_boundary(&o.file, e.offset, o.size) {
            let note = Note::Resumed { offset: e.offset };
            (e.offset, e.line, Some(note))
        } else {
            (0, Some(0), Some(Note::Truncated { at: e.offset }))
        }
    }

    /// A tracked file read from `offset`, `line` lines before it (counted when unknown).
    fn tracked_at(
        &self,
        id: crate::FileId,
        path: PathBuf,
        o: Opened,
        offset: u64,
        line: Option<u64>,
    ) -> Tracked {
        let line = line.unwrap_or_else(|| count_lines(&o.file, offset).unwrap_or(0));
        Tracked::new(id, path, o.ident, o.file, offset, line)
    }

    /// The paths the targets name now, in target order, without repeats; `true` for plain
    /// paths. A directory that cannot be listed is reported.
    pub(crate) fn current_paths(&mut self) -> Vec<(PathBuf, bool)> {
        let mut out: Vec<(PathBuf, bool)> = Vec::new();
        let mut failed = Vec::new();
        for t in &self.targets {
            match t {
                Target::Path(p) => out.push((p.clone(), true)),
                Target::Glob { dir, pattern } => match list_matches(dir, pattern) {
                    Ok(v) => out.extend(v.into_iter().map(|p| (p, false))),
                    Err(e) => failed.push((dir.clone(), e)),
                },
            }
        }
        for (dir, e) in failed {
            self.report(
                &dir,
                Note::Unreadable {
                    error: e.to_string(),
                },
            );
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|(p, _)| !self.is_state_file(p) && seen.insert(p.clone()));
        out
    }
}

/// Looks for the file of saved entry `e` in the directory of its saved path, under any
/// name, skipping files already in `current`.
fn find_in_dir(e: &Entry, current: &[Tracked]) -> Option<(PathBuf, Opened)> {
    let dir = match e.path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    for entry in fs::read_dir(dir).ok()? {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if meta.dev() != e.dev || meta.ino() != e.ino {
            continue;
        }
        if current
            .iter()
            .any(|t| t.ident.dev == e.dev && t.ident.ino == e.ino)
        {
            return None;
        }
        let o = open_file(&path).ok()?;
        return o.ident.matches(&o.file, e).then_some((path, o));
    }
    None
}
