//! The Timesketch CSV timeline ([`write_csv`]): RFC 4180 rows, one per
//! detection, with Timesketch's required `message`, `datetime` and
//! `timestamp_desc` columns first.

use crate::{details, Detection};
use chrono::SecondsFormat;
use std::io::{self, Write};
use tracehunt_engine::Ruleset;

/// A CSV cell that spreadsheet programs will not run as a formula (OWASP
/// "CSV injection"): a value starting with `=`, `+`, `@`, tab or CR gets a
/// leading `'`.
pub fn csv_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The header row of the CSV timeline ([`write_csv`]).
pub const CSV_HEADER: [&str; 14] = [
    "datetime",
    "timestamp_desc",
    "message",
    "rule_id",
    "rule_title",
    "level",
    "computer",
    "channel",
    "event_id",
    "record_id",
    "techniques",
    "source",
    "tags",
    "event_data",
];

/// Appends one RFC 4180 record (newline-terminated) to `out`, exactly as a
/// `csv::Writer` with default settings writes it.
fn csv_record<S: AsRef<[u8]>>(cells: &[S], out: &mut Vec<u8>) -> io::Result<()> {
    let mut c = csv::WriterBuilder::new()
        .buffer_capacity(4096)
        .from_writer(out);
    c.write_record(cells)?;
    c.flush()
}

/// Appends the CSV header row ([`CSV_HEADER`]) to `out`.
///
/// # Errors
/// None in practice (writing to a `Vec` does not fail).
pub fn csv_header(out: &mut Vec<u8>) -> io::Result<()> {
    csv_record(&CSV_HEADER, out)
}

/// Appends one detection's CSV timeline row to `out` (the bytes
/// [`write_csv`] writes for it), so rows can be rendered apart and joined.
///
/// # Errors
/// None in practice (writing to a `Vec` does not fail).
pub fn csv_row(rs: &Ruleset, d: &Detection, out: &mut Vec<u8>) -> io::Result<()> {
    let m = rs.rule(d.rule);
    let dt = d
        .timestamp
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default();
    // The whole message (issue #19: it was cut at 400 characters, which
    // lost most of a PowerShell launcher).
    let msg = format!("[{}] {}: {}", m.level, m.title, details(d, usize::MAX));
    let event_data =
        serde_json::to_string(&crate::EventWire(&d.fields)).map_err(io::Error::other)?;
    csv_record(
        &[
            dt.as_str(),
            "Event Recorded",
            &csv_safe(&msg),
            m.id.as_str(),
            &csv_safe(&m.title),
            m.level,
            &csv_safe(d.computer.as_deref().unwrap_or("")),
            &csv_safe(d.channel.as_deref().unwrap_or("")),
            &d.event_id.map(|e| e.to_string()).unwrap_or_default(),
            &d.record_id.map(|e| e.to_string()).unwrap_or_default(),
            &m.techniques.join(";"),
            &csv_safe(&d.source),
            &csv_safe(&m.tags.join(";")),
            &event_data,
        ],
        out,
    )
}

/// Writes a Timesketch-compatible CSV timeline: the required `message`,
/// `datetime` (RFC 3339 UTC, microseconds) and `timestamp_desc` columns,
/// then rule and event columns ([`CSV_HEADER`]): `techniques` and `tags`
/// joined with `;`, and `event_data`, the event's fields as one JSON object
/// (the `event` object of the JSONL format: repeated names become arrays).
/// `message` is `[level] title: details` with every telling field whole
/// (no length cap; control characters become spaces). Quoting follows RFC 4180 (commas, quotes and newlines in
/// event data survive).
///
/// # Errors
/// Any I/O or CSV error of `w`.
pub fn write_csv<W: Write>(mut w: W, rs: &Ruleset, dets: &[Detection]) -> io::Result<()> {
    let mut buf = Vec::new();
    csv_header(&mut buf)?;
    for d in dets {
        csv_row(rs, d, &mut buf)?;
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_formula_cells_are_neutralised() {
        assert_eq!(
            csv_safe("=HYPERLINK(\"http://evil\")"),
            "'=HYPERLINK(\"http://evil\")"
        );
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("-"), "-");
        assert_eq!(csv_safe("WS01"), "WS01");
    }
}
