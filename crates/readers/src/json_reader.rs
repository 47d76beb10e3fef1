//! JSON readers: whole-array files and streamed JSON lines / concatenated
//! JSON objects.

use crate::error::{Location, RecordError, RecordErrorKind};
use crate::gate::{self, BigPermit};
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
            UNRECOGNISED,
        )),
    }
}

/// The reason of an [`RecordErrorKind::UnrecognisedShape`] error: every
/// shape the readers know.
pub(crate) const UNRECOGNISED: &str = "JSON value is not an event in a known shape \
     (evtx-JSON, Winlogbeat/ECS, Mordor flat, CloudTrail, Kubernetes audit, Okta, GCP audit, \
     GitHub audit, Azure sign-in/audit/activity, M365 audit or Defender)";

/// The records of an envelope (`{"Records": [...]}`: CloudTrail as
/// delivered to S3; Azure's `{"records": [...]}`), one at a time, all at
/// the envelope's location and with its ordinal as fallback record id.
/// An element that is not an object is one
/// [`RecordErrorKind::UnrecognisedShape`] error.
pub(crate) struct EnvelopeRecords {
    path: PathBuf,
    at: Location,
    ordinal: u64,
    items: std::iter::Enumerate<std::vec::IntoIter<serde_json::Value>>,
}

impl EnvelopeRecords {
    /// The envelope's records, or gives `v` back when it is no envelope.
    fn of(
        path: &Path,
        at: Location,
        ordinal: u64,
        mut v: serde_json::Value,
    ) -> Result<Self, serde_json::Value> {
        match crate::cloud::envelope(&mut v) {
            Some(items) => Ok(EnvelopeRecords {
                path: path.to_path_buf(),
                at,
                ordinal,
                items: items.into_iter().enumerate(),
            }),
            None => Err(v),
        }
    }
}

impl Iterator for EnvelopeRecords {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        let (i, v) = self.items.next()?;
        if !v.is_object() {
            return Some(Err(RecordError::new(
                &self.path,
                self.at,
                RecordErrorKind::UnrecognisedShape,
                format!(
                    "element {i} of the Records envelope is {}, not an event object",
                    kind_of(&v)
                ),
            )));
        }
        // An element that is no event names its place in the envelope
        // (breaker finding: it read "line 1: JSON value is not an event…").
        Some(
            convert(&self.path, self.at, self.ordinal, &v).map_err(|mut e| {
                e.reason = format!("element {i} of the Records envelope: {}", e.reason);
                e
            }),
        )
    }
}

/// Elements of a JSON array file, streamed one element at a time (issue #6:
/// a 200 MB array parsed whole took 5 GB): each element's bytes are
/// delimited by a small scanner (brackets and strings tracked), then parsed
/// on their own, so memory is bounded by the largest element
/// ([`MAX_RECORD_BYTES`]) and a damaged element is one [`RecordError`] while
/// its neighbours are still read.
///
/// Damage handling: a JSON string cannot span lines, so a raw newline ends
/// an open string; in a pretty-printed array, a line that starts with `{` at
/// the indentation of the current element's own first line starts the next
/// element (the current one was cut short); EOF inside the array is reported
/// once. An element that does not parse is searched for whole events after
/// a `,` (see [`Recovery`]), so in a single-line array one broken element
/// does not take the elements after it down with it. Several arrays one after another (`[…][…]`,
/// also separated by commas: `[…],[…]`) are read in turn;
/// what follows the last one is read on as JSON lines (a JSON-lines file
/// whose first line is an array), the rest of the closing `]`'s line being
/// one error if it is not `{`.
///
/// Nested arrays (`[[{…}, {…}], [{…}]]`: batches of exported events) are
/// read through: every object at any array depth is a record, numbered in
/// document order, and every other element (`[1, {…}]`: a number, a
/// string, `null`…) is one [`RecordErrorKind::UnrecognisedShape`] error
/// naming its element number and line (breaker finding: such a file was
/// skipped whole as "not a supported log format").
pub(crate) struct JsonArrayRecords<R> {
    path: PathBuf,
    reader: R,
    /// Elements started so far.
    index: u64,
    /// Current 1-based line and the number of bytes before the cursor on it.
    line: u64,
    col: usize,
    /// Only whitespace so far on the current line.
    line_ws: bool,
    state: ArrayState,
    /// Depth of the arrays open at the cursor (1 inside the top-level one).
    nest: u64,
    /// Events being recovered from inside a broken element.
    recovery: Option<Box<Recovery>>,
    /// Reading the array that is the value on this JSON-lines line (already
    /// checked to be valid JSON): every record and error is at that line,
    /// with that line as fallback record id, and no damage heuristics.
    on_line: Option<u64>,
    /// The records of an element that is an envelope (`{"Records": [...]}`).
    envelope: Option<Box<EnvelopeRecords>>,
    /// Held while an element over [`gate::BIG_RECORD_BYTES`] is read and
    /// its records are given out (issue #20 item 7).
    permit: Option<BigPermit>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    /// Before the first `[`.
    Start,
    /// Inside an array: an element, a `,` or the closing `]` comes next.
    Open,
    /// After a closing `]`.
    Closed,
    /// Data after the last array: read on as JSON lines from the cursor
    /// (see [`JsonArrayRecords::into_lines`]).
    Lines,
    Done,
}

/// Why an element's bytes ended.
#[derive(PartialEq, Eq)]
enum ElementEnd {
    /// At a `,` or `]` outside brackets (the normal case).
    Delimiter,
    /// At a line starting a new element at this element's indentation.
    Cut(u64),
    /// End of file.
    Eof,
}

impl<R: BufRead> JsonArrayRecords<R> {
    pub(crate) fn new(path: &Path, reader: R) -> Self {
        JsonArrayRecords {
            path: path.to_path_buf(),
            reader,
            index: 0,
            line: 1,
            col: 0,
            line_ws: true,
            state: ArrayState::Start,
            nest: 0,
            recovery: None,
            on_line: None,
            envelope: None,
            permit: None,
        }
    }

    /// The elements of the JSON array that is the value starting on line
    /// `line` of a JSON-lines file (`bytes`: that value, valid JSON).
    fn on_line(
        path: &Path,
        bytes: Vec<u8>,
        line: u64,
    ) -> JsonArrayRecords<std::io::Cursor<Vec<u8>>> {
        let mut r = JsonArrayRecords::new(path, std::io::Cursor::new(bytes));
        r.line = line;
        r.on_line = Some(line);
        r
    }

    /// Where element `i` is reported.
    fn at(&self, i: u64) -> Location {
        self.on_line.map_or(Location::Element(i), Location::Line)
    }

    /// The fallback record id of element `i`.
    fn ordinal(&self, i: u64) -> u64 {
        self.on_line.unwrap_or(i + 1)
    }

    /// After `next` gave `None`: a reader for the JSON lines that follow
    /// the last array, from the cursor (breaker finding: a JSON-lines file
    /// whose first line is an array of events was read as one JSON array,
    /// and every line after it was lost as one "data after the closing
    /// ']'" error). `None` when the input ended.
    pub(crate) fn into_lines(self) -> Option<JsonLinesRecords<R>> {
        (self.state == ArrayState::Lines)
            .then(|| JsonLinesRecords::starting_at(&self.path, self.reader, self.line))
    }

    /// The next byte without consuming it; `None` at end of file. An I/O
    /// error ends the stream with one error.
    fn peek(&mut self) -> Result<Option<u8>, RecordError> {
        loop {
            match self.reader.fill_buf() {
                Ok(b) => return Ok(b.first().copied()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.state = ArrayState::Done;
                    return Err(RecordError::new(
                        &self.path,
                        Location::Element(self.index),
                        RecordErrorKind::Io,
                        format!("line {}: {e}", self.line),
                    ));
                }
            }
        }
    }

    fn bump(&mut self, b: u8) {
        self.reader.consume(1);
        if b == b'\n' {
            self.line += 1;
            self.col = 0;
            self.line_ws = true;
        } else {
            self.col += 1;
            if !b.is_ascii_whitespace() {
                self.line_ws = false;
            }
        }
    }

    /// Consumes the rest of the current line and its line end (`\n`,
    /// `\r\n` or a bare `\r`, counted as one line as the JSON-lines
    /// reader counts them).
    fn skip_line(&mut self) -> Result<(), RecordError> {
        while let Some(b) = self.peek()? {
            self.bump(b);
            if b == b'\n' {
                return Ok(());
            }
            if b == b'\r' {
                if self.peek()? == Some(b'\n') {
                    self.bump(b'\n');
                } else {
                    self.line += 1;
                    self.col = 0;
                    self.line_ws = true;
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Skips whitespace (and, inside an array, `,` separators).
    fn skip(&mut self, commas: bool) -> Result<Option<u8>, RecordError> {
        while let Some(b) = self.peek()? {
            if b.is_ascii_whitespace() || (commas && b == b',') {
                self.bump(b);
            } else {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// An error at `at`. The `line N: ` prefix of `reason` is dropped when
    /// `at` already is that line (an array on a JSON line; breaker finding:
    /// messages read "line 2: line 2: …").
    fn error(&self, at: Location, kind: RecordErrorKind, reason: String) -> RecordError {
        let reason = match at {
            Location::Line(l) => reason
                .strip_prefix(&format!("line {l}: "))
                .map_or(reason.clone(), str::to_owned),
            _ => reason,
        };
        RecordError::new(&self.path, at, kind, reason)
    }

    fn step(&mut self) -> Result<Option<Item>, RecordError> {
        loop {
            match self.state {
                ArrayState::Done => return Ok(None),
                ArrayState::Start => {
                    if self.peek()? == Some(0xEF) {
                        for _ in 0..3 {
                            if let Some(b) = self.peek()? {
                                self.bump(b);
                            }
                        }
                        self.col = 0;
                    }
                    match self.skip(false)? {
                        Some(b'[') => {
                            self.bump(b'[');
                            self.state = ArrayState::Open;
                            self.nest = 1;
                        }
                        _ => {
                            self.state = ArrayState::Done;
                            return Ok(Some(Err(self.error(
                                Location::Element(0),
                                RecordErrorKind::InvalidJson,
                                format!("line {}: not a JSON array", self.line),
                            ))));
                        }
                    }
                }
                ArrayState::Open => match self.skip(true)? {
                    None => {
                        self.state = ArrayState::Done;
                        return Ok(Some(Err(self.error(
                            self.at(self.index),
                            RecordErrorKind::Truncated,
                            format!(
                                "line {}: end of file inside the JSON array (no closing ']'; file truncated?)",
                                self.line
                            ),
                        ))));
                    }
                    Some(b']') => {
                        self.bump(b']');
                        self.nest -= 1;
                        if self.nest == 0 {
                            self.state = ArrayState::Closed;
                        }
                    }
                    Some(b'[') => {
                        // A nested array: its elements are read one by one.
                        self.bump(b'[');
                        self.nest += 1;
                    }
                    Some(_) => {
                        if let Some(item) = self.element()? {
                            return Ok(Some(item));
                        }
                    }
                },
                // Commas between arrays (`[…],[…]`, issue #6 trial: the
                // second array was lost as "data after the closing ']'").
                ArrayState::Closed => match self.skip(self.on_line.is_none())? {
                    None => {
                        self.state = ArrayState::Done;
                        return Ok(None);
                    }
                    Some(b'[') => {
                        self.bump(b'[');
                        self.state = ArrayState::Open;
                        self.nest = 1;
                    }
                    Some(b'{') if self.on_line.is_none() => {
                        // JSON lines after the array(s): read on as such.
                        self.state = ArrayState::Lines;
                        return Ok(None);
                    }
                    Some(_) => {
                        let line = self.line;
                        if self.on_line.is_some() {
                            self.state = ArrayState::Done;
                        } else {
                            // The rest of this line is one error; what
                            // follows is read on as JSON lines.
                            self.skip_line()?;
                            self.state = ArrayState::Lines;
                        }
                        return Ok(Some(Err(self.error(
                            self.at(self.index),
                            RecordErrorKind::InvalidJson,
                            format!(
                                "line {line}: data after the closing ']' of the JSON array; ignored"
                            ),
                        ))));
                    }
                },
                ArrayState::Lines => return Ok(None),
            }
        }
    }

    /// Reads one element (the cursor is on its first byte) and converts it;
    /// `None` for an envelope without records.
    fn element(&mut self) -> Result<Option<Item>, RecordError> {
        let i = self.index;
        self.index += 1;
        let at = self.at(i);
        let start_line = self.line;
        let indent = self.line_ws.then_some(self.col);
        let mut buf = Vec::new();
        let mut total = 0usize;
        let mut depth = 0i64;
        let (mut in_str, mut esc) = (false, false);
        let end = loop {
            let Some(b) = self.peek()? else {
                break ElementEnd::Eof;
            };
            if total > 0 && !in_str {
                if depth <= 0 && (b == b',' || b == b']') {
                    break ElementEnd::Delimiter;
                }
                if b == b'{'
                    && depth > 0
                    && self.line_ws
                    && Some(self.col) == indent
                    && self.on_line.is_none()
                {
                    break ElementEnd::Cut(self.line);
                }
            }
            self.bump(b);
            total += 1;
            if total <= MAX_RECORD_BYTES {
                buf.push(b);
                if total == gate::BIG_RECORD_BYTES + 1 {
                    gate::hold_if_big(&mut self.permit, total);
                }
            } else if !buf.is_empty() {
                buf = Vec::new(); // too long: stop buffering, keep scanning
            }
            if in_str {
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' || b == b'\n' {
                    in_str = false; // a raw newline cannot be inside a JSON string
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
        };
        if total > MAX_RECORD_BYTES {
            return Ok(Some(Err(self.error(
                at,
                RecordErrorKind::InvalidJson,
                format!(
                    "line {start_line}: element is {total} bytes, more than the {MAX_RECORD_BYTES}-byte record limit; skipped"
                ),
            ))));
        }
        if end == ElementEnd::Eof && depth > 0 {
            // The array-not-closed error would only repeat this one.
            self.state = ArrayState::Done;
        }
        let res = serde_json::from_slice::<serde_json::Value>(&buf);
        if res.is_err() && !matches!(end, ElementEnd::Cut(_)) && self.on_line.is_none() {
            let truncated = end == ElementEnd::Eof && depth > 0;
            let why = res
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            if let Ok(first) = self.recover(buf, start_line, why, truncated) {
                return Ok(Some(first));
            }
        }
        match res {
            Ok(v) if !v.is_object() && matches!(end, ElementEnd::Delimiter | ElementEnd::Eof) => {
                // Not an event (`[1, {…}]`): one error, with where it is.
                let reason = match self.on_line {
                    Some(_) => format!(
                        "element {i} of the JSON array on this line is {}, not an event object",
                        kind_of(&v)
                    ),
                    None => format!(
                        "line {start_line}: JSON array element is {}, not an event object",
                        kind_of(&v)
                    ),
                };
                Ok(Some(Err(self.error(
                    at,
                    RecordErrorKind::UnrecognisedShape,
                    reason,
                ))))
            }
            Ok(v) if end == ElementEnd::Delimiter || end == ElementEnd::Eof => {
                let ordinal = self.ordinal(i);
                match EnvelopeRecords::of(&self.path, at, ordinal, v) {
                    Ok(mut env) => {
                        let first = env.next();
                        self.envelope = Some(Box::new(env));
                        Ok(first)
                    }
                    Err(v) => Ok(Some(convert(&self.path, at, ordinal, &v))),
                }
            }
            res => {
                let why = match (&res, &end) {
                    (_, ElementEnd::Cut(l)) => {
                        format!("cut short by the next element at line {l}")
                    }
                    (_, ElementEnd::Eof) if depth > 0 => {
                        "end of file inside the element (file truncated?)".to_owned()
                    }
                    (Err(e), _) => e.to_string(),
                    (Ok(_), _) => String::new(),
                };
                Ok(Some(Err(self.error(
                    at,
                    if end == ElementEnd::Eof && depth > 0 {
                        RecordErrorKind::Truncated
                    } else {
                        RecordErrorKind::InvalidJson
                    },
                    format!("line {start_line}: invalid JSON array element: {why}"),
                ))))
            }
        }
    }
}

/// Events recovered from inside one element that did not parse, found
/// lazily (issue #6: in a single-line array — `json.dump`,
/// `ConvertTo-Json -Compress` — one element with an unbalanced brace or
/// quote swallowed every element after it, all reported as one lost
/// record). Candidates are `{` right after a `,`; one is taken when a JSON
/// value parses there, is followed by `,`, `]` or the end, and is an event
/// (so fragments of the broken element are not mistaken for events). The
/// bytes between taken events are one error each. One event is produced
/// at a time, so memory stays bounded by the element's bytes.
struct Recovery {
    buf: Vec<u8>,
    /// Scan position, last non-whitespace byte before it, failed candidates.
    pos: usize,
    last: u8,
    failed: usize,
    /// Start of the bytes not yet accounted for (an error or an event).
    gap_start: usize,
    /// Events recovered so far (the first gap is always reported).
    found: usize,
    line: u64,
    why: String,
    truncated: bool,
    /// A recovered event waiting behind the error for the gap before it.
    queued: Option<Event>,
}

/// Failed candidates tried before the rest of a broken element is given up.
const MAX_FAILED_CANDIDATES: usize = 10_000;

impl Recovery {
    /// The next recovered event and where its bytes start, or `None`.
    fn next_event(&mut self) -> Option<(usize, Event)> {
        let buf = &self.buf;
        while self.pos < buf.len() && self.failed < MAX_FAILED_CANDIDATES {
            let (q, b) = (self.pos, buf[self.pos]);
            if b == b'{' && self.last == b',' {
                let mut it = serde_json::Deserializer::from_slice(&buf[q..])
                    .into_iter::<serde_json::Value>();
                if let Some(Ok(v)) = it.next() {
                    let end = q + it.byte_offset();
                    let next = buf[end..].iter().find(|b| !b.is_ascii_whitespace());
                    if matches!(next, None | Some(b',' | b']')) {
                        if let Some(ev) = shape::event_from_json_value(&v) {
                            self.pos = end;
                            self.last = b'}';
                            return Some((q, ev));
                        }
                    }
                }
                self.failed += 1;
            }
            if !b.is_ascii_whitespace() {
                self.last = b;
            }
            self.pos += 1;
        }
        None
    }
}

impl<R: BufRead> JsonArrayRecords<R> {
    /// Starts recovering events from a broken element and returns its first
    /// item (the error for the broken part); gives the bytes back when the
    /// element holds no event.
    fn recover(
        &mut self,
        buf: Vec<u8>,
        line: u64,
        why: String,
        truncated: bool,
    ) -> Result<Item, Vec<u8>> {
        let mut r = Recovery {
            buf,
            pos: 0,
            last: 0,
            failed: 0,
            gap_start: 0,
            found: 0,
            line,
            why,
            truncated,
            queued: None,
        };
        let Some((_, ev)) = r.next_event() else {
            return Err(r.buf);
        };
        r.found = 1;
        r.gap_start = r.pos;
        r.queued = Some(ev);
        let at = Location::Element(self.index - 1);
        let err = self.error(
            at,
            RecordErrorKind::InvalidJson,
            format!(
                "line {line}: invalid JSON array element: {} (events after it recovered)",
                r.why
            ),
        );
        self.recovery = Some(Box::new(r));
        Ok(Err(err))
    }

    /// The next item of a recovery in progress, `None` when it is over.
    fn recovered(&mut self) -> Option<Item> {
        let r = self.recovery.as_mut()?;
        if let Some(mut ev) = r.queued.take() {
            let n = self.index;
            self.index += 1;
            if ev.meta.record_id.is_none() {
                ev.meta.record_id = Some(n + 1);
            }
            return Some(Ok(ev));
        }
        let meaningful = |s: &[u8]| s.iter().any(|b| !b.is_ascii_whitespace() && *b != b',');
        if let Some((start, ev)) = r.next_event() {
            r.found += 1;
            let gap = meaningful(&r.buf[r.gap_start..start]);
            r.gap_start = r.pos;
            r.queued = Some(ev);
            if gap {
                let n = self.index;
                self.index += 1;
                let line = r.line;
                return Some(Err(self.error(
                    Location::Element(n),
                    RecordErrorKind::InvalidJson,
                    format!("line {line}: invalid JSON array element between recovered ones"),
                )));
            }
            return self.recovered();
        }
        // No more events: the rest of the element.
        let r = self.recovery.take()?;
        let tail: Vec<u8> = r.buf[r.gap_start..]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace() && *b != b',')
            .collect();
        if !tail.is_empty() && tail.iter().all(|b| *b == b']') {
            // The closing bracket(s) of the array(s) were taken into the
            // broken element.
            self.nest = self.nest.saturating_sub(tail.len() as u64);
            if self.nest == 0 {
                self.state = ArrayState::Closed;
            }
            None
        } else if tail.is_empty() {
            None
        } else {
            let n = self.index;
            self.index += 1;
            Some(Err(self.error(
                Location::Element(n),
                if r.truncated {
                    RecordErrorKind::Truncated
                } else {
                    RecordErrorKind::InvalidJson
                },
                format!(
                    "line {}: invalid JSON array element after a recovered one",
                    r.line
                ),
            )))
        }
    }
}

impl<R: BufRead> Iterator for JsonArrayRecords<R> {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        if let Some(env) = self.envelope.as_mut() {
            match env.next() {
                Some(item) => return Some(item),
                None => self.envelope = None,
            }
        }
        if self.recovery.is_some() {
            if let Some(item) = self.recovered() {
                return Some(item);
            }
        }
        // The records of the last big element are given out (and, in the
        // usual loop, dropped): the next element may wait for the permit.
        self.permit = None;
        match self.step() {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Counts the records of a `{"Records": [...]}` envelope line too long to
/// read (breaker finding, issue #21: a 73 MB CloudTrail line of 73,474
/// records was skipped as 1 record lost): the values of the first array
/// one level inside the top object, found by a scan of brackets and
/// strings, without holding the line.
struct EnvelopeCount {
    depth: i64,
    in_str: bool,
    esc: bool,
    /// A value has started since the last `,` of the array.
    started: bool,
    /// The array opened / closed: later arrays are not counted.
    opened: bool,
    done: bool,
    records: u64,
}

impl EnvelopeCount {
    /// A counter when `head` starts like an envelope: `{"Records":[` or
    /// `{"records":[`, whitespace allowed between the tokens.
    fn of_prefix(head: &[u8]) -> Option<Self> {
        let mut rest = head;
        let mut token = |t: &[u8]| -> bool {
            let ws = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            rest = &rest[ws..];
            let ok = rest.starts_with(t);
            if ok {
                rest = &rest[t.len()..];
            }
            ok
        };
        let key = token(b"{") && (token(b"\"Records\"") || token(b"\"records\""));
        (key && token(b":") && token(b"[")).then_some(EnvelopeCount {
            depth: 0,
            in_str: false,
            esc: false,
            started: false,
            opened: false,
            done: false,
            records: 0,
        })
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.done {
                return;
            }
            if self.in_str {
                if self.esc {
                    self.esc = false;
                } else if b == b'\\' {
                    self.esc = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                continue;
            }
            if self.depth == 2
                && !self.started
                && !b.is_ascii_whitespace()
                && !matches!(b, b',' | b']')
            {
                self.started = true;
                self.records += 1;
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.opened |= self.depth == 2;
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    self.done = self.depth < 2 && self.opened;
                }
                b',' if self.depth == 2 => self.started = false,
                _ => {}
            }
        }
    }
}

/// JSON lines, streamed line by line. A value may also span several lines
/// (pretty-printed objects written one after another, as in SigmaHQ's
/// regression data): lines are gathered until the braces balance. A line
/// starting with `{` in column 0 always starts a new value, so one broken
/// line cannot swallow the lines after it (and a reader started at such a
/// line reads exactly what the whole-file reader reads from there: see
/// [`crate::JsonLinesRanges`]).
///
/// A value that is an array (`[{…}, {…}]` on one line: a batch of events)
/// gives its object elements as records, nested arrays included; each
/// other element is one [`RecordErrorKind::UnrecognisedShape`] error. The
/// value is checked to be valid JSON without being built, then its
/// elements are streamed one at a time (memory: the line, not its
/// elements' records).
/// Every record, error and fallback `record_id` names the line its value
/// starts on.
pub(crate) struct JsonLinesRecords<R> {
    pub(crate) path: PathBuf,
    pub(crate) reader: R,
    /// Lines read so far (1-based number of the last line read).
    pub(crate) line_no: u64,
    /// Line read but not yet consumed (it started a new value while another was open).
    pub(crate) carry: Option<(Vec<u8>, u64)>,
    pub(crate) done: bool,
    /// The last line ended with a bare `\r`: a `\n` right after it is the
    /// rest of a CRLF, not an empty line.
    pending_cr: bool,
    /// Items already produced, given out before reading on (the elements
    /// of an array line, streamed; an error met while a value was open).
    queue: std::collections::VecDeque<Queued>,
    /// Held from when a value (or a line being skipped) grows past
    /// [`gate::BIG_RECORD_BYTES`] until its items are given out (issue #20
    /// item 7).
    permit: Option<BigPermit>,
}

/// What [`JsonLinesRecords`] gives out before reading on.
enum Queued {
    Item(Item),
    /// The elements of an array value, one at a time (breaker finding:
    /// they were all converted at once, so a 10 MB line of `[0,0,…]` took
    /// 2.3 GB for its five million error records).
    Array(Box<JsonArrayRecords<std::io::Cursor<Vec<u8>>>>),
    /// The records of an envelope value (`{"Records": [...]}`), one at a time.
    Envelope(Box<EnvelopeRecords>),
}

impl<R: BufRead> JsonLinesRecords<R> {
    pub(crate) fn new(path: &Path, reader: R) -> Self {
        Self::starting_at(path, reader, 1)
    }

    /// A reader whose first line is line `first_line` of the file (a
    /// range of a file starting at a line start).
    pub(crate) fn starting_at(path: &Path, reader: R, first_line: u64) -> Self {
        JsonLinesRecords {
            path: path.to_path_buf(),
            reader,
            line_no: first_line.saturating_sub(1),
            carry: None,
            done: false,
            pending_cr: false,
            queue: std::collections::VecDeque::new(),
            permit: None,
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
        let mut over: Option<EnvelopeCount> = None;
        let mut checked = false;
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
            if std::mem::take(&mut self.pending_cr) && buf[0] == b'\n' {
                self.reader.consume(1);
                continue;
            }
            // A bare `\r` ends a line too (classic Mac line endings; issue #6:
            // a CR-only file was one invalid "line" and all its records were
            // lost as one). A raw CR cannot occur inside a JSON string.
            let (take, end) = match memchr::memchr2(b'\n', b'\r', buf) {
                Some(i) => {
                    self.pending_cr = buf[i] == b'\r';
                    (i + 1, true)
                }
                None => (buf.len(), false),
            };
            if total + take <= MAX_RECORD_BYTES {
                line.extend_from_slice(&buf[..take]);
            } else {
                // Too long: stop buffering, keep counting (and, for a
                // `{"Records": [...]}` envelope, count its records).
                if !checked {
                    checked = true;
                    let head = if line.is_empty() {
                        &buf[..take]
                    } else {
                        &line[..]
                    };
                    over = EnvelopeCount::of_prefix(head);
                    if let Some(c) = over.as_mut() {
                        c.feed(&line);
                    }
                }
                line = Vec::new();
                if let Some(c) = over.as_mut() {
                    c.feed(&buf[..take]);
                }
            }
            total += take;
            gate::hold_if_big(&mut self.permit, total);
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
            let records = over.map_or(0, |c| c.records);
            let what = if records > 0 {
                format!(", a Records envelope of {records} records")
            } else {
                String::new()
            };
            return Some(Err(RecordError::new(
                &self.path,
                Location::Line(self.line_no),
                RecordErrorKind::InvalidJson,
                format!(
                    "line is {total} bytes{what}, more than the {MAX_RECORD_BYTES}-byte record limit; skipped"
                ),
            )
            .with_records(records.max(1))));
        }
        if matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if self.line_no == 1 && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        Some(Ok((line, self.line_no)))
    }

    /// Parses the value that starts on line `start` and queues its
    /// record(s). When the text is not one JSON value, it is read as
    /// several values one after another, optionally separated by a comma
    /// (see [`Self::finish_glued`]).
    fn finish(&mut self, buf: Vec<u8>, start: u64) {
        if let Err(e) = std::str::from_utf8(&buf) {
            let e = RecordError::new(
                &self.path,
                Location::Line(start),
                RecordErrorKind::InvalidUtf8,
                format!("invalid UTF-8: {e}"),
            );
            self.queue.push_back(Queued::Item(Err(e)));
            return;
        }
        if let Err(e) = self.finish_value(buf.as_slice(), start) {
            if !self.finish_glued(&buf, start) {
                self.queue.push_back(Queued::Item(Err(e)));
            }
        }
    }

    /// Queues the record(s) of `buf` if it is one valid JSON value: an
    /// object is a record; an array (a batch of events on one line; breaker
    /// finding: it was one UnrecognisedShape error and all its events were
    /// lost) is streamed element by element, nested arrays read through,
    /// once it is known to be valid JSON (checked without building it).
    /// Otherwise queues nothing and gives the `invalid JSON` error.
    fn finish_value(&mut self, buf: &[u8], start: u64) -> Result<(), RecordError> {
        let at = Location::Line(start);
        let invalid = |e: serde_json::Error| {
            RecordError::new(
                &self.path,
                at,
                RecordErrorKind::InvalidJson,
                format!("invalid JSON: {e}"),
            )
        };
        if buf.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            serde_json::from_slice::<serde::de::IgnoredAny>(buf).map_err(invalid)?;
            self.queue
                .push_back(Queued::Array(Box::new(JsonArrayRecords::<R>::on_line(
                    &self.path,
                    buf.to_vec(),
                    start,
                ))));
            return Ok(());
        }
        // An object. The evtx-JSON shape (`evtx_dump -o jsonl`: one
        // `{"Event": {…}}` per line) goes through the EVTX reader's
        // borrowing parse (`evtx_event`), which makes the event the general
        // path makes of the same bytes, or declines (issue #22 item 2).
        if is_evtx_json(buf) {
            if let Some(mut ev) = crate::evtx_event::event_from_evtx_json(buf) {
                ev.meta.record_id.get_or_insert(start);
                self.queue.push_back(Queued::Item(Ok(ev)));
                return Ok(());
            }
        }
        // Its members first (no map), the flat shape straight into an
        // event (`flat`); an invalid one is parsed again below for the
        // general path's error text.
        let fast = match buf.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => crate::flat::parse_top(buf).map(crate::flat::flat_event),
            _ => None,
        };
        let v = match fast {
            Some(Ok(mut ev)) => {
                if ev.meta.record_id.is_none() {
                    ev.meta.record_id = Some(start);
                }
                self.queue.push_back(Queued::Item(Ok(ev)));
                return Ok(());
            }
            Some(Err(v)) => v,
            None => serde_json::from_slice::<serde_json::Value>(buf).map_err(invalid)?,
        };
        let q = match EnvelopeRecords::of(&self.path, at, start, v) {
            Ok(env) => Queued::Envelope(Box::new(env)),
            Err(v) => Queued::Item(convert(&self.path, at, start, &v)),
        };
        self.queue.push_back(q);
        Ok(())
    }

    /// Reads `buf`, which is not one JSON value, as several objects or
    /// arrays one after another, each optionally followed by one `,` (JSON
    /// lines glued together: `{…}{…}` from files concatenated without a
    /// final newline, or `{…}, {…}` / `[…],[…]` from a hand-made export).
    /// Issue #6 trial: such a line was one InvalidJson error and every
    /// record on it was lost. Each value's records are queued as if it were
    /// on a line of its own (an error of its own, e.g. nesting past
    /// serde_json's recursion limit, is queued too); text after the last
    /// object or array is one error giving its column.
    ///
    /// Returns `false`, queueing nothing (the caller reports the line as
    /// one error), when the line does not start with an object or array
    /// that parses, or when it has more closing than opening brackets
    /// outside strings: it is then the tail of a record cut before it
    /// (`{"EventID": 9}, "b": {…}}`), whose nested objects are not records
    /// of their own (breaker finding: they were read as events).
    fn finish_glued(&mut self, buf: &[u8], start: u64) -> bool {
        let mut depth = Depth::default();
        depth.feed(buf);
        if depth.depth < 0 {
            return false;
        }
        let skip_ws = |mut p: usize| {
            while buf.get(p).is_some_and(u8::is_ascii_whitespace) {
                p += 1;
            }
            p
        };
        let mut pos = skip_ws(0);
        let mut values = 0u64;
        loop {
            if values > 0 {
                pos = skip_ws(pos);
                if buf.get(pos) == Some(&b',') {
                    pos = skip_ws(pos + 1);
                }
            }
            if pos >= buf.len() {
                return values > 0;
            }
            let tail = |what: String| {
                let s = if values == 1 { "" } else { "s" };
                RecordError::new(
                    &self.path,
                    Location::Line(start),
                    RecordErrorKind::InvalidJson,
                    format!(
                        "invalid JSON after the {values} JSON value{s} read from this line: {what}"
                    ),
                )
            };
            if !matches!(buf[pos], b'{' | b'[') {
                if values == 0 {
                    return false;
                }
                let e = tail(format!(
                    "text at column {} is not a JSON object or array",
                    pos + 1
                ));
                self.queue.push_back(Queued::Item(Err(e)));
                return true;
            }
            let mut it = serde_json::Deserializer::from_slice(&buf[pos..])
                .into_iter::<serde::de::IgnoredAny>();
            let end = match it.next() {
                Some(Ok(_)) => pos + it.byte_offset(),
                Some(Err(e)) if values > 0 => {
                    // serde_json's position is within the rest of the line.
                    let msg = e.to_string();
                    let msg = msg
                        .rsplit_once(" at line ")
                        .map_or(msg.as_str(), |(m, _)| m);
                    let col = if e.line() == 1 {
                        pos + e.column()
                    } else {
                        pos + 1
                    };
                    let e = tail(format!("{msg} at column {col}"));
                    self.queue.push_back(Queued::Item(Err(e)));
                    return true;
                }
                _ => return false,
            };
            if let Err(e) = self.finish_value(&buf[pos..end], start) {
                self.queue.push_back(Queued::Item(Err(e)));
            }
            values += 1;
            pos = end;
        }
    }
}

/// Whether a line starts as the `evtx` crate renders a record,
/// `{"Event":` (blanks allowed around the brace): worth trying the EVTX
/// borrowing parse on, which checks the rest.
fn is_evtx_json(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    let Some(rest) = buf[start..].strip_prefix(b"{") else {
        return false;
    };
    let key = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    rest[key..].starts_with(b"\"Event\"")
}

/// What a JSON value is, for error messages ("a number").
pub(crate) fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Whether a line starting with `{` continues the open value rather than
/// starting a new record, given the first and last non-whitespace bytes of
/// the value's previous non-blank line: it does when that line ends where a
/// value is expected (`[`, `,`, `:`) and is not itself a record's first line
/// (does not start with `{`). So an object inside an array of a
/// pretty-printed record without indentation (`"X": [` / `{`) is read as
/// part of the record, while a JSON line cut short (which starts with `{`)
/// still ends at the next `{` line. A local rule (two lines), so the range
/// planner in `jsonl_ranges.rs` applies it without parsing.
pub(crate) fn continues_value(prev: Option<(u8, u8)>) -> bool {
    prev.is_some_and(|(first, last)| first != b'{' && matches!(last, b'[' | b',' | b':'))
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
        loop {
            match self.queue.front_mut() {
                Some(Queued::Array(a)) => match a.next() {
                    Some(item) => return Some(item),
                    None => {
                        self.queue.pop_front();
                    }
                },
                Some(Queued::Envelope(e)) => match e.next() {
                    Some(item) => return Some(item),
                    None => {
                        self.queue.pop_front();
                    }
                },
                Some(Queued::Item(_)) => {
                    if let Some(Queued::Item(item)) = self.queue.pop_front() {
                        return Some(item);
                    }
                }
                None => {
                    // Every item of the last value is given out (and, in
                    // the usual loop, dropped): a big next value may wait.
                    self.permit = None;
                    if !self.fill() {
                        return None;
                    }
                }
            }
        }
    }
}

impl<R: BufRead> JsonLinesRecords<R> {
    /// Reads the next value and queues its items; `false` at the end.
    fn fill(&mut self) -> bool {
        let mut acc: Vec<u8> = Vec::new();
        let mut start = 0u64;
        let mut depth = Depth::default();
        // First and last non-whitespace byte of the last non-blank line of
        // the open value.
        let mut prev: Option<(u8, u8)> = None;
        loop {
            let (line, no) = match self.read_line() {
                None => {
                    // End of input: an open value is incomplete.
                    if acc.is_empty() {
                        return false;
                    }
                    self.finish(acc, start);
                    return true;
                }
                Some(Err(e)) => {
                    // A line too long or an I/O error: the open value (cut
                    // short by it) first, then the error.
                    if !acc.is_empty() {
                        self.finish(acc, start);
                    }
                    self.queue.push_back(Queued::Item(Err(e)));
                    return true;
                }
                Some(Ok(l)) => l,
            };
            if acc.is_empty() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue; // blank lines separate records
                }
                start = no;
                // The usual case, one whole value on its line: parse it at
                // once. A line that is one valid JSON value has balanced
                // brackets, so the bracket scan below would end the value
                // here too (and `finish` would give the same records);
                // scanning every byte for brackets first cost 18 % of a
                // parse-only run on Mordor (issue #22 item 3). Anything
                // else (pretty-printed, glued, invalid) takes the path below.
                if self.finish_value(&line, no).is_ok() {
                    return true;
                }
            } else if line.first() == Some(&b'{') && !continues_value(prev) {
                // A new top-level value begins: the open one was cut short.
                self.carry = Some((line, no));
                self.finish(acc, start);
                return true;
            } else {
                acc.push(b'\n');
            }
            if let Some(last) = line.iter().rev().find(|b| !b.is_ascii_whitespace()) {
                prev = Some((line[0], *last));
            }
            depth.feed(&line);
            if acc.is_empty() {
                acc = line; // one line, one value (the usual case): no copy
            } else {
                acc.extend_from_slice(&line);
            }
            gate::hold_if_big(&mut self.permit, acc.len());
            // JSON strings cannot span lines, so an open string ends the value;
            // balanced brackets end it too.
            if depth.depth <= 0 || depth.in_string {
                self.finish(acc, start);
                return true;
            }
            if acc.len() > MAX_RECORD_BYTES {
                // Skip to the next line that starts a value.
                self.queue.push_back(Queued::Item(Err(RecordError::new(
                    &self.path,
                    Location::Line(start),
                    RecordErrorKind::InvalidJson,
                    format!("record exceeds {MAX_RECORD_BYTES} bytes without closing; skipped"),
                ))));
                while let Some(l) = self.read_line() {
                    match l {
                        Ok((l, n)) if l.first() == Some(&b'{') => {
                            self.carry = Some((l, n));
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            self.queue.push_back(Queued::Item(Err(e)));
                            break;
                        }
                    }
                }
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Breaker finding: the elements of an array on a JSON-lines line were
    /// all converted before the first was given out, so a 10 MB line of
    /// `[0,0,…]` took 2.3 GB (five million error records queued). Now they
    /// are streamed: one queue entry, whatever the array's size.
    #[test]
    fn array_line_of_millions_of_elements_was_queued_whole() {
        let n = 200_000;
        let mut data = b"{\"EventID\": 1}\n[".to_vec();
        for i in 0..n {
            if i % 2 == 0 {
                data.extend_from_slice(b"0,");
            } else {
                data.extend_from_slice(b"[{\"EventID\": 2}],");
            }
        }
        data.extend_from_slice(b"0]\n{\"EventID\": 3}\n");
        let mut r = JsonLinesRecords::new(Path::new("big.jsonl"), std::io::Cursor::new(data));
        assert_eq!(r.next().unwrap().unwrap().meta.event_id, Some(1));
        let first = r.next().unwrap().unwrap_err();
        assert_eq!(first.at, Location::Line(2));
        assert_eq!(
            first.reason,
            "element 0 of the JSON array on this line is a number, not an event object"
        );
        assert_eq!(r.queue.len(), 1);
        assert!(matches!(r.queue.front(), Some(Queued::Array(_))));
        let rest: Vec<Item> = r.collect();
        let events: Vec<_> = rest.iter().filter_map(|x| x.as_ref().ok()).collect();
        assert_eq!(events.len(), n / 2 + 1);
        assert!(events[..n / 2]
            .iter()
            .all(|e| e.meta.event_id == Some(2) && e.meta.record_id == Some(2)));
        assert_eq!(events[n / 2].meta.event_id, Some(3));
        let errors: Vec<_> = rest.iter().filter_map(|x| x.as_ref().err()).collect();
        assert_eq!(errors.len(), n / 2);
        assert_eq!(
            errors.last().unwrap().reason,
            format!("element {n} of the JSON array on this line is a number, not an event object")
        );
    }

    /// Issue #20 item 7: every worker thread read its own big record at
    /// once (eight 58 MB records: 0.82 GB at 1 thread, 4.2 GB at 8). A
    /// record over `BIG_RECORD_BYTES` is now read under the process-wide
    /// permit, held until the record after it is asked for; small records
    /// never take it.
    #[test]
    fn big_json_records_take_the_process_wide_permit() {
        let pad = "a".repeat(gate::BIG_RECORD_BYTES);
        let text = format!(
            "{{\"EventID\": 1, \"x\": \"{pad}\"}}\n{{\"EventID\": 2}}\n[{{\"EventID\": 3, \"x\": \"{pad}\"}}]\n"
        );
        let mut r = JsonLinesRecords::new(Path::new("big.jsonl"), std::io::Cursor::new(text));
        let first = r.next().unwrap().unwrap();
        assert_eq!(first.meta.event_id, Some(1));
        assert!(r.permit.is_some(), "held while the big record is out");
        let second = r.next().unwrap().unwrap();
        assert_eq!(second.meta.event_id, Some(2));
        assert!(r.permit.is_none(), "a small record does not hold it");
        let third = r.next().unwrap().unwrap();
        assert_eq!(third.meta.event_id, Some(3));
        assert!(
            r.permit.is_some(),
            "an array line over the size holds it too"
        );
        assert!(r.next().is_none());
        assert!(r.permit.is_none(), "released at the end");

        // A whole-array file: the element's reader holds it.
        let text = format!("[{{\"EventID\": 4, \"x\": \"{pad}\"}}, {{\"EventID\": 5}}]");
        let mut a = JsonArrayRecords::new(Path::new("big.json"), std::io::Cursor::new(text));
        assert_eq!(a.next().unwrap().unwrap().meta.event_id, Some(4));
        assert!(a.permit.is_some());
        assert_eq!(a.next().unwrap().unwrap().meta.event_id, Some(5));
        assert!(a.permit.is_none());
    }

    /// Issue #20 item 7: a line over the 64 MiB limit was buffered by every
    /// thread at once before it was skipped (0.23-0.94 GB); it is buffered
    /// under the permit, which the error that reports it releases after.
    #[test]
    fn overlong_line_is_skipped_under_the_permit() {
        let text = format!(
            "{{\"x\": \"{}\"}}\n{{\"EventID\": 7}}\n",
            "a".repeat(MAX_RECORD_BYTES + 10)
        );
        let mut r = JsonLinesRecords::new(Path::new("long.jsonl"), std::io::Cursor::new(text));
        let e = r.next().unwrap().unwrap_err();
        assert!(e.reason.contains("record limit; skipped"), "{}", e.reason);
        assert!(r.permit.is_some());
        assert_eq!(r.next().unwrap().unwrap().meta.event_id, Some(7));
        assert!(r.permit.is_none());
    }

    /// Breaker finding (issue #21): a `{"Records": [...]}` line over the
    /// record limit (73,474 CloudTrail records) was counted as 1 record
    /// lost; its records are counted without holding the line.
    #[test]
    fn overlong_envelope_line_counts_its_records() {
        let rec = format!(
            r#"{{"eventName": "x", "s": "a,]}}[\"{}"}}"#,
            "b".repeat(1000)
        );
        let n = MAX_RECORD_BYTES / rec.len() + 10;
        let text = format!(
            "{{ \"Records\" : [{}], \"other\": [1, 2]}}\n{{\"EventID\": 7}}\n",
            vec![rec.as_str(); n].join(", ")
        );
        let mut r = JsonLinesRecords::new(Path::new("ct.json"), std::io::Cursor::new(text));
        let e = r.next().unwrap().unwrap_err();
        assert_eq!(e.records, n as u64, "{}", e.reason);
        assert!(
            e.reason
                .contains(&format!("a Records envelope of {n} records")),
            "{}",
            e.reason
        );
        assert_eq!(r.next().unwrap().unwrap().meta.event_id, Some(7));
        // Any other long line is one record.
        assert!(EnvelopeCount::of_prefix(b"[{\"Records\": [").is_none());
        assert!(EnvelopeCount::of_prefix(b"{\"Other\": [").is_none());
    }
}
