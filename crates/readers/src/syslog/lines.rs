//! Bounded line reading for the Linux text readers (auditd, syslog).
//!
//! Lines end at `\n`; a `\r` before it (CRLF files such as the Sysmon for
//! Linux sample) is dropped. A line longer than [`MAX_LINE`] bytes is never
//! held whole: its bytes are consumed and counted, and the reader reports it
//! as [`Line::TooLong`]. Invalid UTF-8 is replaced by U+FFFD
//! (`String::from_utf8_lossy`) and flagged with `lossy`, so the caller can
//! read the line and still note the damage.

use std::io::{BufRead, ErrorKind};

/// The longest line (bytes, without its line end) the readers hold: 1 MiB.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// One line of a text log, numbered from 1.
#[derive(Debug)]
pub(crate) enum Line {
    /// A line of at most [`MAX_LINE`] bytes. `lossy`: invalid UTF-8 was
    /// replaced; `newline`: the line ended with `\n` (false only for the
    /// last line of a file that does not end with one, e.g. a cut file).
    Text {
        no: u64,
        text: String,
        lossy: bool,
        newline: bool,
    },
    /// A line longer than [`MAX_LINE`]: `len` bytes were skipped.
    TooLong { no: u64, len: u64 },
    /// Reading failed at line `no`; nothing more is read.
    Io { no: u64, error: std::io::Error },
}

/// Reads [`Line`]s from a buffered reader, bounded in memory by
/// [`MAX_LINE`] (plus the reader's own buffer).
pub(crate) struct Lines {
    r: Box<dyn BufRead + Send>,
    no: u64,
    done: bool,
    max: usize,
}

impl Lines {
    /// Lines of `r`, with the [`MAX_LINE`] cap.
    pub(crate) fn new(r: Box<dyn BufRead + Send>) -> Self {
        Self::with_cap(r, MAX_LINE)
    }

    /// Lines of `r`, with a cap of `max` bytes per line (tests use small caps).
    pub(crate) fn with_cap(r: Box<dyn BufRead + Send>, max: usize) -> Self {
        Lines {
            r,
            no: 0,
            done: false,
            max,
        }
    }
}

impl Iterator for Lines {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        if self.done {
            return None;
        }
        let mut buf = Vec::new();
        let mut total = 0u64;
        let mut over = false;
        let mut newline = false;
        loop {
            let avail = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.done = true;
                    self.no += 1;
                    return Some(Line::Io { no: self.no, error });
                }
            };
            if avail.is_empty() {
                break;
            }
            let (take, nl) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            total += take as u64;
            if !over {
                // `+ 2`: room for the `\r\n` that is stripped below.
                if buf.len() + take > self.max + 2 {
                    over = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&avail[..take]);
                }
            }
            self.r.consume(take);
            if nl {
                newline = true;
                break;
            }
        }
        if total == 0 {
            self.done = true;
            return None;
        }
        self.no += 1;
        if !over {
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            over = buf.len() > self.max;
        }
        if over {
            return Some(Line::TooLong {
                no: self.no,
                len: total,
            });
        }
        let (text, lossy) = match String::from_utf8(buf) {
            Ok(s) => (s, false),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
        };
        Some(Line::Text {
            no: self.no,
            text,
            lossy,
            newline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], cap: usize) -> Vec<String> {
        Lines::with_cap(Box::new(std::io::Cursor::new(data.to_vec())), cap)
            .map(|l| match l {
                Line::Text {
                    no,
                    text,
                    lossy,
                    newline,
                } => format!("{no}:{text}:{lossy}:{newline}"),
                Line::TooLong { no, len } => format!("{no}:too long {len}"),
                Line::Io { no, .. } => format!("{no}:io"),
            })
            .collect()
    }

    #[test]
    fn crlf_lossy_cut_and_too_long() {
        assert_eq!(
            lines(b"ab\r\n\xffc\n0123456789abc\nlast", 10),
            [
                "1:ab:false:true",
                "2:\u{fffd}c:true:true",
                "3:too long 14",
                "4:last:false:false"
            ]
        );
        // Exactly at the cap (with CRLF) is not too long.
        assert_eq!(lines(b"0123456789\r\n", 10), ["1:0123456789:false:true"]);
        assert!(lines(b"", 10).is_empty());
    }
}
