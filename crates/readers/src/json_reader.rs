//! JSON readers: whole-array files and streamed JSON lines / concatenated
//! JSON objects.

use crate::error::{Location, RecordError, RecordErrorKind};
use crate::shape;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use tracehunt_event::Event;

type Item = Result<Event, RecordError>;

/// A single record larger than this (in bytes, across lines) is reported
/// and skipped rather than buffered further; a longer line is never held
/// in memory whole.
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;

/// Converts one parsed JSON value to an event or a shape error.
fn convert(path: &Path, at: Location, ordinal: u64, v: &serde_json::Value) -> Item {
    match shape::event_from_json_value(v) {
        Some(mut ev) => {
            if ev.meta.record_id.is_none() {
                ev.meta.record_id = Some(ordinal);
            }
            Ok(ev)
        }
        None => Err(RecordError::new(
            path,
            at,
            RecordErrorKind::UnrecognisedShape,
            "JSON value is not an event in a known shape (evtx-JSON, Winlogbeat/ECS, Mordor flat)",
        )),
    }
}

/// Elements of a JSON array file (the array is parsed whole).
pub(crate) struct JsonArrayRecords {
    pub(crate) path: PathBuf,
    pub(crate) items: std::vec::IntoIter<serde_json::Value>,
    pub(crate) index: u64,
}

impl Iterator for JsonArrayRecords {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        let v = self.items.next()?;
        let i = self.index;
        self.index += 1;
        Some(convert(&self.path, Location::Element(i), i + 1, &v))
    }
}

/// JSON lines, streamed line by line. A value may also span several lines
/// (pretty-printed objects written one after another, as in SigmaHQ's
/// regression data): lines are gathered until the braces balance. A line
/// starting with `{` in column 0 always starts a new value, so one broken
/// line cannot swallow the lines after it.
pub(crate) struct JsonLinesRecords<R> {
    pub(crate) path: PathBuf,
    pub(crate) reader: R,
    /// Lines read so far (1-based number of the last line read).
    pub(crate) line_no: u64,
    /// Records emitted or failed so far.
    pub(crate) ordinal: u64,
    /// Line read but not yet consumed (it started a new value while another was open).
    pub(crate) carry: Option<(Vec<u8>, u64)>,
    pub(crate) done: bool,
}

impl<R: BufRead> JsonLinesRecords<R> {
    pub(crate) fn new(path: &Path, reader: R) -> Self {
        JsonLinesRecords {
            path: path.to_path_buf(),
            reader,
            line_no: 0,
            ordinal: 0,
            carry: None,
            done: false,
        }
    }

    /// The next line without its line terminator, and its number.
    fn read_line(&mut self) -> Option<Result<(Vec<u8>, u64), RecordError>> {
        if let Some(c) = self.carry.take() {
            return Some(Ok(c));
        }
        if self.done {
            return None;
        }
        // Read one line, keeping at most MAX_RECORD_BYTES of it in memory.
        let mut line = Vec::new();
        let mut total = 0usize;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(RecordError::new(
                        &self.path,
                        Location::Line(self.line_no + 1),
                        RecordErrorKind::Io,
                        e.to_string(),
                    )));
                }
            };
            if buf.is_empty() {
                break;
            }
            let (take, end) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if total + take <= MAX_RECORD_BYTES {
                line.extend_from_slice(&buf[..take]);
            } else if !line.is_empty() {
                line = Vec::new(); // too long: stop buffering, keep counting
            }
            total += take;
            self.reader.consume(take);
            if end {
                break;
            }
        }
        if total == 0 {
            self.done = true;
            return None;
        }
        self.line_no += 1;
        if total > MAX_RECORD_BYTES {
            return Some(Err(RecordError::new(
                &self.path,
                Location::Line(self.line_no),
                RecordErrorKind::InvalidJson,
                format!(
                    "line is {total} bytes, more than the {MAX_RECORD_BYTES}-byte record limit; skipped"
                ),
            )));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if self.line_no == 1 && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        Some(Ok((line, self.line_no)))
    }

    fn finish(&mut self, buf: &[u8], start: u64) -> Item {
        self.ordinal += 1;
        let at = Location::Line(start);
        let text = match std::str::from_utf8(buf) {
            Ok(t) => t,
            Err(e) => {
                return Err(RecordError::new(
                    &self.path,
                    at,
                    RecordErrorKind::InvalidUtf8,
                    format!("invalid UTF-8: {e}"),
                ))
            }
        };
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => convert(&self.path, at, self.ordinal, &v),
            Err(e) => Err(RecordError::new(
                &self.path,
                at,
                RecordErrorKind::InvalidJson,
                format!("invalid JSON: {e}"),
            )),
        }
    }
}

/// Brace/bracket depth tracker that ignores brackets inside JSON strings.
#[derive(Default)]
struct Depth {
    depth: i64,
    in_string: bool,
    escape: bool,
}

impl Depth {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonLinesRecords<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let mut acc: Vec<u8> = Vec::new();
        let mut start = 0u64;
        let mut depth = Depth::default();
        loop {
            let (line, no) = match self.read_line() {
                None => {
                    // End of input: an open value is incomplete.
                    return (!acc.is_empty()).then(|| self.finish(&acc, start));
                }
                Some(Err(e)) => {
                    self.ordinal += 1;
                    return Some(Err(e));
                }
                Some(Ok(l)) => l,
            };
            if acc.is_empty() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue; // blank lines separate records
                }
                start = no;
            } else if line.first() == Some(&b'{') {
                // A new top-level value begins: the open one was cut short.
                self.carry = Some((line, no));
                return Some(self.finish(&acc, start));
            } else {
                acc.push(b'\n');
            }
            depth.feed(&line);
            acc.extend_from_slice(&line);
            // JSON strings cannot span lines, so an open string ends the value;
            // balanced brackets end it too.
            if depth.depth <= 0 || depth.in_string {
                return Some(self.finish(&acc, start));
            }
            if acc.len() > MAX_RECORD_BYTES {
                // Skip to the next line that starts a value.
                self.ordinal += 1;
                let err = RecordError::new(
                    &self.path,
                    Location::Line(start),
                    RecordErrorKind::InvalidJson,
                    format!("record exceeds {MAX_RECORD_BYTES} bytes without closing; skipped"),
                );
                while let Some(Ok((l, n))) = self.read_line() {
                    if l.first() == Some(&b'{') {
                        self.carry = Some((l, n));
                        break;
                    }
                }
                return Some(Err(err));
            }
        }
    }
}
