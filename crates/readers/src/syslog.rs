//! Syslog text logs (issue #21): RFC 3164 (BSD syslog, the format of
//! `/var/log/syslog`, `/var/log/auth.log`, `/var/log/secure`), RFC 5424,
//! and the ISO-timestamp variant rsyslog writes with
//! `RSYSLOG_FileFormat`; with Sysmon for Linux events inside them
//! ([`sysmon`]).
//!
//! Each line is one event:
//! * a Sysmon for Linux event (`… sysmon: <Event>…</Event>`) →
//!   channel `Linux-Sysmon/Operational`, see [`sysmon`];
//! * any other line (the `sysmon[pid]:` banner lines included) → channel
//!   [`CHANNEL`] (`linux:syslog`) with fields
//!   - `host`: the HOSTNAME of the header (also `meta.computer`);
//!   - `program`: the TAG / APP-NAME (`sshd`, `sudo`, `CRON`…), when any;
//!   - `pid`: the `[pid]` of the tag / PROCID, when any;
//!   - `message`: the MSG (everything after `tag: `), so Sigma `keywords`
//!     match it;
//!   - `facility`, `severity`: from `<PRI>` when the line has one
//!     (numbers, RFC 5424 §6.2.1);
//!   - RFC 5424 only: `msgid`, `structured_data` (as written) when not `-`;
//!   - sudo lines (`user : TTY=… ; PWD=… ; USER=… ; COMMAND=…`):
//!     `SUDO_USER` (the invoking user) and each `KEY=value` (`TTY`, `PWD`,
//!     `USER`, `COMMAND`), as SigmaHQ's sudo rule names `USER`.
//!
//! Time: RFC 5424 and ISO timestamps carry a year and an offset and are
//! converted to UTC. RFC 3164 has neither: times are taken as UTC, and the
//! year is that of the file's first dated time (an RFC 5424 or ISO line, or
//! a Sysmon event's `SystemTime`) when one comes within the first
//! 256 events (earlier lines are held back and moved into its year: at
//! most a day after it), else the current year (UTC clock), or the year
//! before when that would put the file's first line more than a day in the
//! future; after that the
//! year goes up by one each time the month goes back by more than six
//! (December → January), so times of a log crossing New Year keep
//! increasing. (The file's mtime is not available to a reader of bytes.)
//!
//! Record id: the line number (Sysmon events: their EventRecordID).
//!
//! Damage: a line that is no syslog line is one
//! [`RecordErrorKind::InvalidLine`] (a cut last line:
//! [`RecordErrorKind::Truncated`]); lines over [`lines::MAX_LINE`] bytes are
//! skipped without being held whole; invalid UTF-8 is replaced by U+FFFD and
//! noted ([`RecordErrorKind::InvalidUtf8`], `records: 0`); a Sysmon event cut
//! short is read as far as it goes and noted (`Truncated`, `records: 0`);
//! entities repaired in Sysmon XML are not errors (see [`sysmon`]).

pub(crate) mod lines;
pub(crate) mod sysmon;

use crate::error::{Location, RecordError, RecordErrorKind};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use lines::{Line, Lines};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use tracehunt_event::{Event, EventMeta, Value};

/// The `meta.channel` of plain syslog lines.
pub(crate) const CHANNEL: &str = "linux:syslog";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A syslog line's header and message.
#[derive(Debug, Default, PartialEq)]
struct Header<'a> {
    pri: Option<u32>,
    /// A full time (RFC 5424 / ISO), or `None` for RFC 3164.
    time: Option<DateTime<Utc>>,
    /// RFC 3164: (month 1–12, day, hour, minute, second, nanos).
    bsd: Option<(u32, u32, u32, u32, u32, u32)>,
    host: Option<&'a str>,
    program: Option<&'a str>,
    pid: Option<&'a str>,
    msgid: Option<&'a str>,
    sd: Option<&'a str>,
    msg: &'a str,
}

/// Splits off the first space-separated token (leading spaces skipped).
fn token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches(' ');
    if s.is_empty() {
        return None;
    }
    Some(s.split_once(' ').unwrap_or((s, "")))
}

/// `hh:mm:ss[.frac]` → (h, m, s, nanos).
fn clock(t: &str) -> Option<(u32, u32, u32, u32)> {
    let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut it = hms.split(':');
    let (h, m, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || h.len() != 2 || m.len() != 2 || s.len() != 2 {
        return None;
    }
    let (h, m, s): (u32, u32, u32) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        let d: String = frac.chars().take(9).collect();
        if !d.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        format!("{d:0<9}").parse().ok()?
    };
    Some((h, m, s, nanos))
}

/// `prog[pid]: msg` / `prog: msg` → (program, pid, msg); otherwise the
/// whole text is the message.
fn tag(rest: &str) -> (Option<&str>, Option<&str>, &str) {
    let end = rest.find([':', ' ', '[']).unwrap_or(rest.len());
    let name = &rest[..end];
    if name.is_empty() || end == rest.len() {
        return (None, None, rest);
    }
    let after = &rest[end..];
    if let Some(a) = after.strip_prefix('[') {
        if let Some(close) = a.find(']') {
            if let Some(m) = a[close + 1..].strip_prefix(':') {
                return (
                    Some(name),
                    Some(&a[..close]),
                    m.strip_prefix(' ').unwrap_or(m),
                );
            }
        }
    } else if let Some(m) = after.strip_prefix(':') {
        return (Some(name), None, m.strip_prefix(' ').unwrap_or(m));
    }
    (None, None, rest)
}

/// Parses a syslog line's header; `None` when the line is none of the
/// three forms.
fn parse_header<'a>(line: &'a str) -> Option<Header<'a>> {
    let mut h = Header::default();
    let mut rest = line;
    if let Some(r) = rest.strip_prefix('<') {
        let close = r.find('>')?;
        let pri: u32 = r[..close].parse().ok().filter(|p| *p <= 191)?;
        h.pri = Some(pri);
        rest = &r[close + 1..];
        // RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
        if let Some(r) = rest.strip_prefix("1 ") {
            let nil = |t: &'a str| (t != "-").then_some(t);
            let (ts, r) = token(r)?;
            h.time = if ts == "-" {
                None
            } else {
                Some(DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc))
            };
            let (host, r) = token(r)?;
            let (app, r) = token(r).unwrap_or(("-", ""));
            let (procid, r) = token(r).unwrap_or(("-", ""));
            let (msgid, r) = token(r).unwrap_or(("-", ""));
            let r = r.trim_start_matches(' ');
            let (sd, msg) = if r.starts_with('[') {
                let end = sd_end(r)?;
                (Some(&r[..end]), &r[end..])
            } else {
                let (sd, m) = token(r).unwrap_or(("-", ""));
                (nil(sd), m)
            };
            h.host = nil(host);
            h.program = nil(app);
            h.pid = nil(procid);
            h.msgid = nil(msgid);
            h.sd = sd;
            let msg = msg.strip_prefix(' ').unwrap_or(msg);
            h.msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
            return Some(h);
        }
    }
    let (first, r) = token(rest)?;
    if let Some(m) = MONTHS.iter().position(|m| *m == first) {
        let (day, r) = token(r)?;
        let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
        let (t, r) = token(r)?;
        let (hh, mm, ss, ns) = clock(t)?;
        h.bsd = Some((m as u32 + 1, day, hh, mm, ss, ns));
        rest = r;
    } else if first.len() >= 19 && first.as_bytes()[10] == b'T' {
        h.time = Some(
            DateTime::parse_from_rfc3339(first)
                .ok()?
                .with_timezone(&Utc),
        );
        rest = r;
    } else {
        return None;
    }
    let (host, r) = token(rest)?;
    h.host = Some(host);
    let (program, pid, msg) = tag(r.trim_start_matches(' '));
    h.program = program;
    h.pid = pid;
    h.msg = msg;
    Some(h)
}

/// The end of RFC 5424 STRUCTURED-DATA (`[id k="v"]…`), honouring `\]`.
fn sd_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut in_q = false;
        i += 1;
        loop {
            match b.get(i)? {
                b'\\' => i += 1,
                b'"' => in_q = !in_q,
                b']' if !in_q => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    Some(i)
}

/// True when `head` (the first bytes of a file) is a syslog log: its first
/// non-blank line has a syslog header ([`parse_header`]) with a host.
/// Never true for JSON, `#` headers (Zeek, W3C), access logs (they start
/// with an address) or auditd records.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .find(|l| !l.trim().is_empty())
        .and_then(parse_header)
        .is_some_and(|h| h.host.is_some())
}

/// The year of RFC 3164 times (see the module docs).
struct YearGuess {
    year: Option<i32>,
    last_month: u32,
    /// True once a dated time (RFC 5424, ISO, a Sysmon event's
    /// `SystemTime`) fixed the year, or once the look-ahead gave up.
    anchored: bool,
}

/// How many events a syslog reader holds back while the RFC 3164 year is
/// only the clock's guess, waiting for a dated line to fix it.
const YEAR_LOOKAHEAD: usize = 256;

/// The RFC 3164 time `t` (read with a guessed year) moved to the year that
/// puts it at most a day after `anchor`, the first dated time of the file.
fn in_year_of(t: DateTime<Utc>, anchor: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let y = anchor.year();
    let moved = at(
        y,
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond(),
    )?;
    if moved > anchor + chrono::Duration::days(1) {
        at(
            y - 1,
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond(),
        )
    } else {
        Some(moved)
    }
}

impl YearGuess {
    fn time(
        &mut self,
        (mo, d, h, mi, s, ns): (u32, u32, u32, u32, u32, u32),
    ) -> Option<DateTime<Utc>> {
        let year = match self.year {
            None => {
                let now = Utc::now();
                let y = now.year();
                let t = at(y, mo, d, h, mi, s, ns);
                let y = if t.is_some_and(|t| t > now + chrono::Duration::days(1)) {
                    y - 1
                } else {
                    y
                };
                self.year = Some(y);
                y
            }
            Some(y) if mo + 6 < self.last_month => {
                self.year = Some(y + 1);
                y + 1
            }
            Some(y) => y,
        };
        self.last_month = mo;
        at(year, mo, d, h, mi, s, ns)
    }

    /// A dated time was read: later RFC 3164 lines take its year.
    fn anchor(&mut self, t: DateTime<Utc>) {
        self.anchored = true;
        self.year = Some(t.year());
        self.last_month = t.month();
    }
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ns: u32) -> Option<DateTime<Utc>> {
    let t = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_nano_opt(h, mi, s.min(59), ns)?;
    Some(Utc.from_utc_datetime(&t))
}

/// The events of a syslog log: one per line (see the module docs).
pub(crate) fn records(
    path: &Path,
    r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(SyslogRecords::new(path, Lines::new(r)))
}

/// The iterator behind [`records`].
pub(crate) struct SyslogRecords {
    path: PathBuf,
    lines: Lines,
    years: YearGuess,
    out: VecDeque<Result<Event, RecordError>>,
    /// Places in `out` of events dated with a guessed year (while held).
    guessed: Vec<usize>,
}

impl SyslogRecords {
    pub(crate) fn new(path: &Path, lines: Lines) -> Self {
        SyslogRecords {
            path: path.to_path_buf(),
            lines,
            years: YearGuess {
                year: None,
                last_month: 0,
                anchored: false,
            },
            out: VecDeque::new(),
            guessed: Vec::new(),
        }
    }

    /// The first dated time of the file: the events held with a guessed
    /// year are moved into its year, and later lines follow it.
    fn anchor(&mut self, t: DateTime<Utc>) {
        if self.years.anchored {
            return;
        }
        for &i in &self.guessed {
            if let Some(Ok(ev)) = self.out.get_mut(i) {
                ev.meta.timestamp = ev.meta.timestamp.and_then(|g| in_year_of(g, t));
            }
        }
        self.guessed.clear();
        self.years.anchor(t);
    }

    /// Gives up waiting for a dated line: the guesses stand.
    fn release(&mut self) {
        self.years.anchored = true;
        self.guessed.clear();
    }

    fn err(&self, no: u64, kind: RecordErrorKind, reason: impl Into<String>) -> RecordError {
        RecordError::new(&self.path, Location::Line(no), kind, reason)
    }

    fn line(&mut self, no: u64, text: &str, newline: bool) {
        let Some(h) = parse_header(text) else {
            let (kind, reason) = if newline {
                (
                    RecordErrorKind::InvalidLine,
                    "not a syslog line (RFC 3164 or 5424 header)",
                )
            } else {
                (
                    RecordErrorKind::Truncated,
                    "last line cut (no line end) and not a syslog line",
                )
            };
            let e = self.err(no, kind, reason);
            self.out.push_back(Err(e));
            return;
        };
        let time = match h.bsd {
            Some(b) => self.years.time(b),
            None => h.time,
        };
        match (h.bsd.is_some(), time) {
            (false, Some(t)) => self.anchor(t),
            (true, Some(_)) if !self.years.anchored => self.guessed.push(self.out.len()),
            _ => {}
        }
        if sysmon::is_sysmon_xml(h.msg) {
            if let Some(p) = sysmon::parse(h.msg.trim()) {
                let mut ev = p.event;
                if h.bsd.is_some() {
                    if let Some(t) = ev.meta.timestamp {
                        // Its own `SystemTime` is dated: it fixes the year.
                        self.guessed.pop_if(|&mut i| i == self.out.len());
                        self.anchor(t);
                    }
                }
                if ev.meta.computer.is_none() {
                    ev.meta.computer = h.host.map(str::to_owned);
                }
                if ev.meta.timestamp.is_none() {
                    ev.meta.timestamp = time;
                }
                if ev.meta.record_id.is_none() {
                    ev.meta.record_id = Some(no);
                }
                if let Some(c) = p.cut {
                    let e = self.err(
                        no,
                        RecordErrorKind::Truncated,
                        format!(
                            "Sysmon event XML cut short, in {c}; the fields before it were read"
                        ),
                    );
                    self.out.push_back(Err(e.with_records(0)));
                }
                self.out.push_back(Ok(ev));
                return;
            }
        }
        let mut ev = Event::with_meta(EventMeta {
            timestamp: time,
            computer: h.host.map(str::to_owned),
            channel: Some(CHANNEL.into()),
            record_id: Some(no),
            ..EventMeta::default()
        });
        syslog_fields(&mut ev, &h);
        self.out.push_back(Ok(ev));
    }
}

/// The `linux:syslog` fields of a parsed line.
fn syslog_fields(ev: &mut Event, h: &Header<'_>) {
    let s = |v: &str| Value::Str(v.to_owned());
    if let Some(v) = h.host {
        ev.push("host", s(v));
    }
    if let Some(v) = h.program {
        ev.push("program", s(v));
    }
    if let Some(v) = h.pid {
        ev.push("pid", s(v));
    }
    if let Some(p) = h.pri {
        ev.push("facility", Value::Int(i64::from(p / 8)));
        ev.push("severity", Value::Int(i64::from(p % 8)));
    }
    if let Some(v) = h.msgid {
        ev.push("msgid", s(v));
    }
    if let Some(v) = h.sd {
        ev.push("structured_data", s(v));
    }
    ev.push("message", s(h.msg));
    if h.program == Some("sudo") {
        sudo_fields(ev, h.msg);
    }
}

/// `  user : TTY=pts/0 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls` →
/// `SUDO_USER`, `TTY`, `PWD`, `USER`, `COMMAND`.
fn sudo_fields(ev: &mut Event, msg: &str) {
    let Some((user, rest)) = msg.split_once(" : ") else {
        return;
    };
    ev.push("SUDO_USER", Value::Str(user.trim().to_owned()));
    for part in rest.split(" ; ") {
        if let Some((k, v)) = part.split_once('=') {
            let k = k.trim();
            if !k.is_empty() && k.bytes().all(|c| c.is_ascii_uppercase() || c == b'_') {
                ev.push(k, Value::Str(v.trim().to_owned()));
            }
        }
    }
}

impl Iterator for SyslogRecords {
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        // While the RFC 3164 year is a guess, hold events back (up to
        // YEAR_LOOKAHEAD) until a dated line fixes it.
        while self.out.is_empty() || (!self.years.anchored && self.out.len() < YEAR_LOOKAHEAD) {
            let Some(line) = self.lines.next() else {
                self.release();
                break;
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
                    if text.trim().is_empty() {
                        continue;
                    }
                    if lossy {
                        let e = self.err(
                            no,
                            RecordErrorKind::InvalidUtf8,
                            "invalid UTF-8 replaced by U+FFFD; the line was read",
                        );
                        self.out.push_back(Err(e.with_records(0)));
                    }
                    let t = text.strip_prefix('\u{feff}').unwrap_or(&text);
                    self.line(no, t, newline);
                }
            }
        }
        if self.out.len() >= YEAR_LOOKAHEAD {
            self.release();
        }
        self.out.pop_front()
    }
}

/// A JSON row that carries a syslog line: a Microsoft Sentinel `Syslog`
/// table row (`SyslogMessage` plus `HostName`/`Computer`, `ProcessName`,
/// `Facility`, `SeverityLevel`, `EventTime`/`TimeGenerated`). Sysmon for
/// Linux XML in `SyslogMessage` becomes a `Linux-Sysmon/Operational` event
/// ([`sysmon::parse`]; damage is noted in its `XmlDamage` field, since this
/// path has no error channel); any other message (e.g. the Azure AUOMS
/// `type=AUOMS_EXECVE audit(…)` rows, which are not auditd) becomes a
/// `linux:syslog` event with `host`, `program`, `pid` (`ProcessID`),
/// `facility`, `severity` (as Sentinel names them), `message`. `None` for
/// objects without a string `SyslogMessage`.
pub(crate) fn event_from_json(obj: &serde_json::Map<String, serde_json::Value>) -> Option<Event> {
    let msg = obj.get("SyslogMessage")?.as_str()?;
    let str_of = |k: &str| {
        obj.get(k)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    let host = str_of("HostName").or_else(|| str_of("Computer"));
    let time = str_of("EventTime")
        .or_else(|| str_of("TimeGenerated"))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    if sysmon::is_sysmon_xml(msg) {
        if let Some(p) = sysmon::parse(msg.trim()) {
            let mut ev = p.event;
            if ev.meta.computer.is_none() {
                ev.meta.computer = host.map(str::to_owned);
            }
            if ev.meta.timestamp.is_none() {
                ev.meta.timestamp = time;
            }
            return Some(ev);
        }
    }
    let mut ev = Event::with_meta(EventMeta {
        timestamp: time,
        computer: host.map(str::to_owned),
        channel: Some(CHANNEL.into()),
        ..EventMeta::default()
    });
    let s = |v: &str| Value::Str(v.to_owned());
    if let Some(v) = host {
        ev.push("host", s(v));
    }
    if let Some(v) = str_of("ProcessName") {
        ev.push("program", s(v));
    }
    match obj.get("ProcessID") {
        Some(serde_json::Value::Number(n)) => ev.push("pid", s(&n.to_string())),
        Some(serde_json::Value::String(p)) if !p.is_empty() => ev.push("pid", s(p)),
        _ => {}
    }
    if let Some(v) = str_of("Facility") {
        ev.push("facility", s(v));
    }
    if let Some(v) = str_of("SeverityLevel") {
        ev.push("severity", s(v));
    }
    if let Some(v) = str_of("HostIP") {
        ev.push("HostIP", s(v));
    }
    ev.push("message", s(msg));
    Some(ev)
}

#[cfg(test)]
mod tests;
