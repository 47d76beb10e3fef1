//! Zeek logs (issue #21): the ASCII/TSV writer's files and JSON records.
//!
//! Follows the Zeek log format documentation ("Zeek Logs" / `LogAscii`
//! writer: <https://docs.zeek.org/en/master/logs/index.html>,
//! <https://docs.zeek.org/en/master/scripts/base/frameworks/logging/writers/ascii.zeek.html>)
//! and corelight's json-streaming-logs package for the `_path` JSON form.
//!
//! **TSV** (`sniff`: the file starts with `#separator `): header lines
//! `#separator \x09` (the literal escape text), `#set_separator`,
//! `#empty_field`, `#unset_field`, `#path`, `#open`, `#fields`, `#types`,
//! data lines, `#close` (absent in a live or cut log: not an error). Header
//! blocks may repeat (concatenated logs); each replaces what it names.
//! - Channel `zeek:<#path>` (`zeek:dns`); before any `#path`, the file name
//!   up to its first `.` (`dns.log` → `zeek:dns`).
//! - Fields are the `#fields` names as written (`id.orig_h`, `qtype_name`).
//! - Values typed by `#types`: `count`/`int`/`port` → `Int` (a `count`
//!   above `i64::MAX` stays text), `double`/`interval`/`time` → `Float`
//!   (`time` in epoch seconds), `bool` `T`/`F` → `Bool`, anything else
//!   (`string`, `addr`, `enum`…) text as written. Without a matching
//!   `#types` line every value is text.
//! - `set[…]`/`vector[…]` values are split on `#set_separator` into one
//!   repeated field per element (as SigmaHQ's `answers`, `resp_mime_types`
//!   selections expect: any element matches).
//! - The unset marker (`-`) gives no field; the empty marker (`(empty)`)
//!   gives no field for a container (no elements) and `""` for a scalar.
//! - The writer's escapes are undone where they only protect the format
//!   (`\\`, an escaped separator, `-` or `,`); other `\xNN` (control and
//!   invalid bytes) stay as written, as SigmaHQ rules expect (`tsv::unescape_value`).
//! - Errors (one [`RecordErrorKind::InvalidLine`] per line, neighbours
//!   read): a value count different from `#fields`, a value that is not of
//!   its `#type` (`count` `abc`), a bad or unset `ts`, data before
//!   `#fields`. Line cap, lossy UTF-8 and cut last line: see
//!   `web::lines`.
//!
//! **JSON** ([`event_from_json`], called for JSON objects no Windows shape
//! claims): an object with `ts` and either `_path` (zed / corelight: flat
//! dotted keys, ISO-8601 `ts`, `_write_ts`) or `@stream` with
//! `@proc: "zeek"` or a `uid` (OTRF APT29 / SimpleRock: epoch `ts`, dots
//! written as underscores). Channel `zeek:<_path | @stream>`. OTRF's
//! underscore spellings of Zeek's dotted names (`id_orig_h`,
//! `certificate_serial`, `san_dns`, `basic_constraints_ca`,
//! `times_modified`) are renamed to the dotted form; every other key keeps
//! its name (incl. `_path`, `@system`). Arrays are repeated fields, JSON
//! numbers `Int`/`Float`, `null` no field; `ts` is kept as written (ISO
//! text in zed, a number in OTRF) and parsed into `meta.timestamp`. A JSON
//! record whose `ts` does not parse is still an event, without a time.
//! Zeek's own JSON writer without `_path` is not recognised (no marker
//! tells the log).
//!
//! In both forms `meta.computer` is `id.orig_h`, the connection's
//! originator (the host whose activity the record shows; None for logs
//! without a conn id, e.g. `x509`), `meta.timestamp` is `ts` (UTC), and
//! `meta.record_id` is the line number.
//!
//! [`RecordErrorKind::InvalidLine`]: crate::RecordErrorKind::InvalidLine

mod json;
mod tsv;

use crate::error::RecordError;
use crate::web::lines::{Lines, TextRecords};
use chrono::{DateTime, Utc};
use std::io::BufRead;
use std::path::Path;
use tracehunt_event::Event;

/// True when `head` (the first bytes of a file, a UTF-8 BOM allowed) is a
/// Zeek TSV log: it starts with `#separator` followed by a space or tab.
pub(crate) fn sniff(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    head.strip_prefix(b"#separator")
        .is_some_and(|r| matches!(r.first(), Some(b' ' | b'\t')))
}

/// The records of a Zeek TSV log read from `r` (the file `path`): one
/// event per data line, or one [`RecordError`] naming `path` and the line
/// (see the module docs for shapes and errors). Never panics.
pub(crate) fn records(
    path: &Path,
    r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .filter(|n| !n.is_empty())
        .unwrap_or("unknown")
        .to_owned();
    Box::new(TextRecords::new(path, Lines::new(r), tsv::Tsv::new(stem)))
}

/// A Zeek JSON log record (zed `_path` form or OTRF `@stream` form, see the
/// module docs) as an event on channel `zeek:<path>`, or `None` when the
/// object carries no Zeek marker.
pub(crate) fn event_from_json(obj: &serde_json::Map<String, serde_json::Value>) -> Option<Event> {
    json::event(obj)
}

/// The route key of a Zeek log path: `zeek:<path>`.
fn channel_for(path: &str) -> String {
    format!("zeek:{path}")
}

/// Epoch seconds with an optional fraction (`1521911720.865716`, `-1.5`)
/// as a UTC time, exact to the nanosecond; `None` for anything else
/// (signs other than a leading `-`, exponents, out-of-range values).
fn epoch_time(s: &str) -> Option<DateTime<Utc>> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    let (secs, nanos) = if neg {
        if nanos == 0 {
            (-secs, 0)
        } else {
            (-secs - 1, 1_000_000_000 - nanos)
        }
    } else {
        (secs, nanos)
    };
    DateTime::from_timestamp(secs, u32::try_from(nanos).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_only_tsv_headers() {
        assert!(sniff(b"#separator \\x09\n#set_separator\t,\n"));
        assert!(sniff(b"\xEF\xBB\xBF#separator \\x09\n"));
        assert!(!sniff(b"#separatorx"));
        assert!(!sniff(b"#Fields: date time\n"));
        assert!(!sniff(b"{\"_path\":\"dns\"}\n"));
        assert!(!sniff(b"type=SYSCALL msg=audit(1.2:3): x\n"));
    }

    #[test]
    fn epoch_times() {
        let t = epoch_time("1521911720.865716").unwrap();
        assert_eq!(t.timestamp(), 1521911720);
        assert_eq!(t.timestamp_subsec_nanos(), 865_716_000);
        assert_eq!(epoch_time("-1.5").unwrap().timestamp_millis(), -1500);
        assert_eq!(epoch_time("7").unwrap().timestamp(), 7);
        for bad in [
            "",
            "x",
            "1e9",
            "1.2.3",
            "+1",
            "1.-2",
            ".5",
            "99999999999999999999",
        ] {
            assert!(epoch_time(bad).is_none(), "{bad}");
        }
    }
}
