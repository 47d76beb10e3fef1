//! Raw Linux audit logs (`/var/log/audit/audit.log`, issue #21).
//!
//! Format: the Linux audit userspace's record format (auditd(8),
//! audit-userspace `docs/` and "Understanding Audit Log Files" of the RHEL
//! Security Guide): one record per line,
//! `[node=<host> ]type=<TYPE> msg=audit(<epoch>.<ms>:<serial>): key=value…`,
//! optionally "enriched" with `\x1d` + upper-case interpreted fields. See
//! [`record::parse`] for the decoding of values.
//!
//! Every record is one event on channel [`CHANNEL`] (`linux:auditd`): SigmaHQ
//! auditd rules match single records (`type: EXECVE`, `a0`, `SYSCALL`, `key`,
//! `name`…). Fields: `type`, `node` (when present), each `key=value` decoded,
//! the enriched fields, `SYSCALL` (the syscall name, from the enrichment or
//! from [`syscalls`]), and `audit_id` (`<epoch>.<ms>:<serial>`). `meta`:
//! timestamp from the audit id (UTC), computer = `node`, record id = line
//! number (1-based).
//!
//! The kernel spreads a long argument over several EXECVE records
//! (`a1_len=16384 a1[0]=…` then records holding only `a1[1]=…`, `a1[2]=…`):
//! those continuation records are merged into the first one, which becomes
//! one event with the whole decoded argument in `a1` (its record id is the
//! first record's line). A split argument whose pieces do not all arrive is
//! read with what came, plus one [`RecordErrorKind::Truncated`] note
//! (`records: 0`).
//!
//! Records are also grouped into audit events ([`assemble`]): each event
//! that executed a program is one more event on `linux:process_creation`
//! with Sysmon-style names (`Image`, `CommandLine`, `ProcessId`,
//! `ParentProcessId`, `User`, `LogonId`, `CurrentDirectory`, `ParentImage`,
//! `ParentCommandLine`), emitted when its audit event completes.
//!
//! Damage: a line that is no record (no `type=`/`msg=audit(…)`, bad numbers
//! in the audit id, an unterminated quote as in a cut last line) is one
//! [`RecordErrorKind::InvalidLine`] ([`RecordErrorKind::Truncated`] for
//! the last line of a file without a line end, i.e. a cut file); a line over [`lines::MAX_LINE`] bytes is
//! skipped without being held whole (one `InvalidLine`); invalid UTF-8 is
//! replaced by U+FFFD, the record is read and one
//! [`RecordErrorKind::InvalidUtf8`] note with `records: 0` (nothing lost) is
//! reported. Blank lines and `#` comment lines are skipped. Azure AUOMS
//! records (`type=AUOMS_… audit(…)` without `msg=`) are not auditd: a file of
//! them is not sniffed as auditd, and such a line inside an auditd file is an
//! `InvalidLine` naming AUOMS.

pub(crate) mod assemble;
pub(crate) mod record;
pub(crate) mod syscalls;

use crate::error::{Location, RecordError, RecordErrorKind};
use crate::syslog::lines::{self, Line, Lines};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use tracehunt_event::{Event, EventMeta, Value};

/// The `meta.channel` of single audit records.
pub(crate) const CHANNEL: &str = "linux:auditd";

/// The UTC time of an audit id's `<secs>.<millis>`, `None` when out of range.
pub(crate) fn timestamp(secs: i64, millis: u32) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, millis * 1_000_000)
}

/// True when `head` (the first bytes of a file) is a raw auditd log: its
/// first line that is neither blank nor a `#` comment parses as a record
/// ([`record::parse`]; a line cut by the end of `head` counts when its
/// header is complete). JSON, EVTX, Zeek/W3C `#` headers followed by their
/// data, access logs and AUOMS rows do not.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let mut it = text.split('\n').peekable();
    while let Some(line) = it.next() {
        let t = line.trim_end_matches('\r').trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let cut = it.peek().is_none();
        return match record::parse(t) {
            Ok(_) => true,
            // The sniffed head may end inside a quoted value.
            Err(e) => cut && e.starts_with("unterminated"),
        };
    }
    false
}

/// The records of an auditd log: one `linux:auditd` event per record and
/// one `linux:process_creation` event per assembled program execution
/// (see the module docs), and one [`RecordError`] per bad line.
pub(crate) fn records(
    path: &Path,
    r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(AuditdRecords::new(path, Lines::new(r)))
}

/// The iterator behind [`records`] (a line source of any cap, for tests).
pub(crate) struct AuditdRecords {
    path: PathBuf,
    lines: Lines,
    asm: assemble::Assembler,
    out: VecDeque<Result<Event, RecordError>>,
    assembled: VecDeque<Event>,
    held: Option<Held>,
    done: bool,
}

/// An EXECVE record whose split arguments (`a1_len=… a1[0]=…`) continue in
/// the next EXECVE records of the same audit event.
struct Held {
    rec: record::Record,
    line: u64,
    bytes: usize,
}

/// Most bytes of split-argument pieces held for one EXECVE record (the
/// kernel's argument limit is 128 KiB per argument, 2 × in hex).
const MAX_HELD: usize = 4 << 20;

impl AuditdRecords {
    pub(crate) fn new(path: &Path, lines: Lines) -> Self {
        AuditdRecords {
            path: path.to_path_buf(),
            lines,
            asm: assemble::Assembler::default(),
            out: VecDeque::new(),
            assembled: VecDeque::new(),
            held: None,
            done: false,
        }
    }

    fn err(&self, no: u64, kind: RecordErrorKind, reason: String) -> RecordError {
        RecordError::new(&self.path, Location::Line(no), kind, reason)
    }

    /// Takes one parsed record: continues or starts a held EXECVE record
    /// with split arguments, or emits it.
    fn accept(&mut self, mut rec: record::Record, no: u64) {
        if let Some(h) = &mut self.held {
            let add: usize = rec.pieces.iter().map(|p| p.value.len()).sum();
            let continues = rec.rtype == "EXECVE"
                && rec.node == h.rec.node
                && rec.id == h.rec.id
                && !rec.pieces.is_empty()
                && rec.get("argc").is_none()
                && h.bytes + add <= MAX_HELD;
            if continues {
                h.bytes += add;
                h.rec.pieces.append(&mut rec.pieces);
                h.rec.fields.append(&mut rec.fields);
                if h.rec.pieces_complete() {
                    if let Some(h) = self.held.take() {
                        self.emit(h.rec, h.line);
                    }
                }
                return;
            }
            if let Some(h) = self.held.take() {
                self.emit(h.rec, h.line);
            }
        }
        if rec.rtype == "EXECVE" && !rec.pieces_complete() {
            let bytes = rec.pieces.iter().map(|p| p.value.len()).sum();
            self.held = Some(Held {
                rec,
                line: no,
                bytes,
            });
            return;
        }
        self.emit(rec, no);
    }

    /// Emits a record (split arguments joined) and what it completed.
    fn emit(&mut self, mut rec: record::Record, line: u64) {
        if !rec.pieces_complete() {
            let reason = format!(
                "split EXECVE argument(s) {} incomplete (pieces lost or cut); read with what arrived",
                rec.split_lens()
                    .iter()
                    .map(|(b, _)| b.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let e = self.err(line, RecordErrorKind::Truncated, reason);
            self.out.push_back(Err(e.with_records(0)));
        }
        rec.finish_pieces();
        self.asm.push(&rec, line, &mut self.assembled);
        self.out.push_back(Ok(to_event(&rec, line)));
        self.out.extend(self.assembled.drain(..).map(Ok));
    }

    /// Reads lines until something is queued or the file ends.
    fn fill(&mut self) {
        while self.out.is_empty() && !self.done {
            let Some(line) = self.lines.next() else {
                self.done = true;
                if let Some(h) = self.held.take() {
                    self.emit(h.rec, h.line);
                }
                self.asm.finish(&mut self.assembled);
                self.out.extend(self.assembled.drain(..).map(Ok));
                return;
            };
            match line {
                Line::Io { no, error } => {
                    let e = self.err(no, RecordErrorKind::Io, format!("read failed: {error}"));
                    self.out.push_back(Err(e));
                }
                Line::TooLong { no, len } => {
                    let e = self.err(
                        no,
                        RecordErrorKind::InvalidLine,
                        format!(
                            "line of {len} bytes is longer than the {} byte cap; skipped",
                            lines::MAX_LINE
                        ),
                    );
                    self.out.push_back(Err(e));
                }
                Line::Text {
                    no,
                    text,
                    lossy,
                    newline,
                } => {
                    let t = text.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    if lossy {
                        let e = self.err(
                            no,
                            RecordErrorKind::InvalidUtf8,
                            "invalid UTF-8 replaced by U+FFFD; the record was read".into(),
                        );
                        self.out.push_back(Err(e.with_records(0)));
                    }
                    match record::parse(t) {
                        Ok(rec) => self.accept(rec, no),
                        Err(reason) if !newline => {
                            let reason = format!("last line cut (no line end): {reason}");
                            let e = self.err(no, RecordErrorKind::Truncated, reason);
                            self.out.push_back(Err(e));
                        }
                        Err(reason) => {
                            let e = self.err(no, RecordErrorKind::InvalidLine, reason);
                            self.out.push_back(Err(e));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
impl AuditdRecords {
    /// How many audit events are open in the assembler (tests).
    fn asm_open(&self) -> usize {
        self.asm.open_len()
    }
}

impl Iterator for AuditdRecords {
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.fill();
        self.out.pop_front()
    }
}

/// One record as a `linux:auditd` event.
fn to_event(rec: &record::Record, line: u64) -> Event {
    let meta = EventMeta {
        timestamp: timestamp(rec.secs, rec.millis),
        computer: rec.node.clone(),
        channel: Some(CHANNEL.into()),
        record_id: Some(line),
        ..EventMeta::default()
    };
    let mut ev = Event::with_meta(meta);
    ev.push("type", Value::Str(rec.rtype.clone()));
    if let Some(n) = &rec.node {
        ev.push("node", Value::Str(n.clone()));
    }
    for (k, v) in &rec.fields {
        ev.push(k.as_str(), Value::Str(v.clone()));
    }
    ev.push("audit_id", Value::Str(rec.id.clone()));
    ev
}

#[cfg(test)]
mod tests;
