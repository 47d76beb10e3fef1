//! Line reading shared by the line-oriented text readers (Zeek TSV, W3C,
//! access logs): bounded lines, lossy UTF-8, one [`RecordError`] per bad
//! line, and a driver that turns a [`LineParser`] into a record iterator.
//!
//! Rules every reader built on [`TextRecords`] follows:
//! - Lines end at `\n`; a `\r` before it is dropped (CRLF files).
//! - A line longer than [`MAX_LINE_BYTES`] is skipped while it is read (never
//!   held whole) and reported as [`RecordErrorKind::InvalidLine`].
//! - Invalid UTF-8 is replaced by U+FFFD (`String::from_utf8_lossy`); the
//!   event is still produced and followed by one
//!   [`RecordErrorKind::InvalidUtf8`] note standing for 0 lost records.
//! - A line the parser rejects is one [`RecordErrorKind::InvalidLine`]
//!   error; when it is the file's last line and has no newline (a file cut
//!   mid-line) the kind is [`RecordErrorKind::Truncated`].
//! - An I/O error ends the stream after one [`RecordErrorKind::Io`] error.
//! - `meta.record_id` of every event is its 1-based line number.

use crate::error::{Location, RecordError, RecordErrorKind};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use tracehunt_event::Event;

/// The longest line (in bytes, without its line ending) a text reader
/// accepts: 1 MiB. Longer lines are skipped while being read.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// One line of a text log, borrowed from the reader's buffer.
pub(crate) struct Line<'a> {
    /// 1-based line number in the file.
    pub(crate) number: u64,
    /// The text without its line ending; lossily decoded.
    pub(crate) text: Cow<'a, str>,
    /// True when the line ended with `\n` (false only for a last line cut
    /// before its newline, or a file without a final newline).
    pub(crate) terminated: bool,
}

impl Line<'_> {
    /// True when invalid UTF-8 was replaced in [`Line::text`].
    pub(crate) fn lossy(&self) -> bool {
        matches!(self.text, Cow::Owned(_))
    }
}

/// Why a line could not be returned.
pub(crate) enum LineError {
    /// The line at `number` had `bytes` bytes, over [`MAX_LINE_BYTES`]; it
    /// was skipped.
    TooLong { number: u64, bytes: u64 },
    /// Reading failed after line `number - 1`; no more lines follow.
    Io { number: u64, error: std::io::Error },
}

/// A bounded line reader over any [`BufRead`].
pub(crate) struct Lines {
    r: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    number: u64,
    done: bool,
    cap: usize,
}

impl Lines {
    /// Lines of `r`, each at most [`MAX_LINE_BYTES`].
    pub(crate) fn new(r: Box<dyn BufRead + Send>) -> Self {
        Lines::with_cap(r, MAX_LINE_BYTES)
    }

    /// Lines of `r`, each at most `cap` bytes (tests use a small cap).
    pub(crate) fn with_cap(r: Box<dyn BufRead + Send>, cap: usize) -> Self {
        Lines {
            r,
            buf: Vec::new(),
            number: 0,
            done: false,
            cap,
        }
    }

    /// The next line, `None` at the end of the input (or after an I/O
    /// error was returned).
    pub(crate) fn next_line(&mut self) -> Option<Result<Line<'_>, LineError>> {
        if self.done {
            return None;
        }
        self.buf.clear();
        let mut total: u64 = 0;
        let mut over = false;
        let mut terminated = false;
        loop {
            let avail = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.done = true;
                    return Some(Err(LineError::Io {
                        number: self.number + 1,
                        error,
                    }));
                }
            };
            if avail.is_empty() {
                break;
            }
            let (take, found) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            total += take as u64;
            if !over {
                // +2: the `\r\n` ending is not part of the line.
                if self.buf.len() + take > self.cap + 2 {
                    over = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&avail[..take]);
                }
            }
            self.r.consume(take);
            if found {
                terminated = true;
                break;
            }
        }
        if total == 0 {
            self.done = true;
            return None;
        }
        self.number += 1;
        let mut end = self.buf.len();
        if terminated && !over {
            end -= 1;
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
        }
        if over || end > self.cap {
            return Some(Err(LineError::TooLong {
                number: self.number,
                bytes: total,
            }));
        }
        Some(Ok(Line {
            number: self.number,
            text: String::from_utf8_lossy(&self.buf[..end]),
            terminated,
        }))
    }
}

/// What a line means to a format's parser.
pub(crate) trait LineParser: Send {
    /// Parses one line: `Ok(Some(event))` for a record, `Ok(None)` for a
    /// header, comment or blank line, `Err(reason)` for a line that does
    /// not parse (reported, and reading goes on). `meta.record_id` is set by
    /// the driver.
    fn parse(&mut self, line: &Line<'_>) -> Result<Option<Event>, String>;
}

/// The record iterator of a [`LineParser`] over a file's lines (see the
/// module docs for the error rules).
pub(crate) struct TextRecords<P> {
    path: PathBuf,
    lines: Lines,
    parser: P,
    queued: VecDeque<Result<Event, RecordError>>,
}

impl<P: LineParser> TextRecords<P> {
    /// Records of `lines` (from the file `path`) parsed by `parser`.
    pub(crate) fn new(path: &Path, lines: Lines, parser: P) -> Self {
        TextRecords {
            path: path.to_path_buf(),
            lines,
            parser,
            queued: VecDeque::new(),
        }
    }
}

impl<P: LineParser> Iterator for TextRecords<P> {
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(q) = self.queued.pop_front() {
            return Some(q);
        }
        loop {
            let path = &self.path;
            let line = match self.lines.next_line()? {
                Ok(l) => l,
                Err(LineError::TooLong { number, bytes }) => {
                    return Some(Err(RecordError::new(
                        path,
                        Location::Line(number),
                        RecordErrorKind::InvalidLine,
                        format!(
                            "line of {bytes} bytes is longer than the {MAX_LINE_BYTES}-byte cap; skipped"
                        ),
                    )));
                }
                Err(LineError::Io { number, error }) => {
                    return Some(Err(RecordError::new(
                        path,
                        Location::Line(number),
                        RecordErrorKind::Io,
                        format!("read failed: {error}"),
                    )));
                }
            };
            let at = Location::Line(line.number);
            let lossy = line.lossy();
            match self.parser.parse(&line) {
                Ok(None) => continue,
                Ok(Some(mut ev)) => {
                    ev.meta.record_id = Some(line.number);
                    if lossy {
                        self.queued.push_back(Err(RecordError::new(
                            path,
                            at,
                            RecordErrorKind::InvalidUtf8,
                            "invalid UTF-8 replaced by U+FFFD; the event was kept",
                        )
                        .with_records(0)));
                    }
                    return Some(Ok(ev));
                }
                Err(reason) => {
                    let (kind, reason) = if line.terminated {
                        (RecordErrorKind::InvalidLine, reason)
                    } else {
                        (
                            RecordErrorKind::Truncated,
                            format!("file ends inside this line (no newline): {reason}"),
                        )
                    };
                    let reason = if lossy {
                        format!("{reason} (the line also has invalid UTF-8)")
                    } else {
                        reason
                    };
                    return Some(Err(RecordError::new(path, at, kind, reason)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], cap: usize) -> Vec<Result<(u64, String, bool), u64>> {
        let mut l = Lines::with_cap(Box::new(std::io::Cursor::new(data.to_vec())), cap);
        let mut out = Vec::new();
        while let Some(r) = l.next_line() {
            out.push(match r {
                Ok(line) => Ok((line.number, line.text.into_owned(), line.terminated)),
                Err(LineError::TooLong { number, .. }) => Err(number),
                Err(LineError::Io { .. }) => unreachable!(),
            });
        }
        out
    }

    #[test]
    fn crlf_cut_and_long_lines() {
        let got = lines(b"ab\r\n0123456789\ncd\nef", 4);
        assert_eq!(
            got,
            vec![
                Ok((1, "ab".into(), true)),
                Err(2),
                Ok((3, "cd".into(), true)),
                Ok((4, "ef".into(), false)),
            ]
        );
        assert_eq!(lines(b"", 4), vec![]);
        assert_eq!(lines(b"\n", 4), vec![Ok((1, String::new(), true))]);
        // Exactly at the cap is accepted, with or without CR.
        assert_eq!(lines(b"abcd\r\n", 4), vec![Ok((1, "abcd".into(), true))]);
        assert_eq!(lines(b"abcde", 4), vec![Err(1)]);
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let got = lines(b"a\xffb\n", 16);
        assert_eq!(got, vec![Ok((1, "a\u{fffd}b".into(), true))]);
    }
}
