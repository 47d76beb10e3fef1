//! Web server access logs (issue #21): W3C extended logs as IIS writes them
//! (W3C Working Draft WD-logfile-960323,
//! <https://www.w3.org/TR/WD-logfile.html>, and Microsoft's "W3C Logging"
//! field list) and Apache/Nginx common and combined access logs (Apache
//! mod_log_config, <https://httpd.apache.org/docs/current/mod/mod_log_config.html>:
//! `LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"" combined`).
//!
//! Both give events on channel `webserver:access`, named with the W3C
//! field names SigmaHQ's `category: webserver` rules use, one event per
//! entry line, `meta.record_id` = the line number; line cap, lossy UTF-8
//! and a cut last line as in [`lines`].
//!
//! **W3C** (`w3c`): directives `#Software:`, `#Version:`, `#Date:`,
//! `#Fields:`, `#Remark:`; a new `#Fields` applies to the entries after it.
//! - Names as in `#Fields` (`date`, `time`, `c-ip`, `cs-method`,
//!   `cs-uri-stem`, `cs-uri-query`, `sc-status`, `s-ip`, `cs-host`…), except
//!   header columns `prefix(Header)`, which become `prefix-header` in lower
//!   case (`cs(User-Agent)` → `cs-user-agent`, `cs(Referer)` →
//!   `cs-referer`, `cs(Cookie)` → `cs-cookie`), with IIS's `+` for a space
//!   turned back into a space (only in header columns: in `cs-uri-query` a
//!   `+` is the URL's own and is kept).
//! - `-` (no value) gives no field; `sc-status`, `sc-substatus`,
//!   `sc-win32-status`, `s-port`, `c-port`, `sc-bytes`, `cs-bytes`,
//!   `time-taken` are `Int` when numeric.
//! - An entry whose value count differs from the current `#Fields` is read
//!   with the latest earlier `#Fields` layout of the same file that has that
//!   many columns (beats' IIS `test.log` ends with two 15-value entries
//!   under a 22-field header, written under its first layout; filebeat's
//!   own pipeline likewise matches entries by shape); with no such layout it
//!   is one `InvalidLine` error. So is an entry before any `#Fields`, or a
//!   bad `date`/`time`.
//! - `meta.timestamp` = `date` + `time` in UTC (W3C times are UTC; the
//!   `#Date` directive's date when there is no `date` column);
//!   `meta.computer` = `s-computername`, else `s-ip` (the server the entry
//!   is about), else none.
//!
//! **Access logs** (`access`): each line `host ident user [time] "request"
//! status bytes`, optionally `"referer" "user-agent"` (and ignored trailing
//! fields). Fields: `c-ip`, `ident`, `cs-username`, `request` (the raw
//! request line, Apache's `\"` and `\\` escapes undone, `\xhh` kept),
//! `cs-method`, `cs-uri-stem`, `cs-uri-query` (after the first `?`, without
//! it; absent when there is no `?`), `cs-version`, `sc-status` and
//! `sc-bytes` (`Int`), `cs-referer`, `cs-user-agent`; `-` gives no field.
//! A request line that is not `METHOD TARGET [HTTP/x]` (e.g. TLS bytes sent
//! to a plain-HTTP port) keeps only `request`. `meta.timestamp` = `%t` with
//! its offset, in UTC; `meta.computer` = none (the log names no server); a
//! line that does not parse is one `InvalidLine` error.

mod access;
pub(crate) mod lines;
mod w3c;

use crate::error::RecordError;
use lines::{Lines, TextRecords};
use std::io::BufRead;
use std::path::Path;
use tracehunt_event::{Event, Value};

/// The route key of every web server access entry.
const CHANNEL: &str = "webserver:access";

/// `Int` for a decimal that fits an `i64`, else the text.
fn int_or_text(raw: &str) -> Value {
    raw.parse::<i64>()
        .map(Value::Int)
        .unwrap_or_else(|_| Value::Str(raw.to_owned()))
}

/// The first line of `head` (a UTF-8 BOM skipped), without its ending.
fn first_line(head: &[u8]) -> &[u8] {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let line = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..i],
        None => head,
    };
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// True when `head` is a W3C extended log: its first line is a
/// `#Software:`, `#Version:`, `#Date:`, `#Fields:` or `#Remark:` directive.
pub(crate) fn sniff_w3c(head: &[u8]) -> bool {
    let line = first_line(head);
    ["#Software:", "#Version:", "#Date:", "#Fields:", "#Remark:"]
        .iter()
        .any(|d| line.starts_with(d.as_bytes()))
}

/// True when `head` is an Apache/Nginx common or combined access log: its
/// first line parses as one (`host ident user [dd/Mon/yyyy:hh:mm:ss +zzzz]
/// "request" status bytes`, optionally `"referer" "agent"`).
pub(crate) fn sniff_access(head: &[u8]) -> bool {
    std::str::from_utf8(first_line(head))
        .ok()
        .is_some_and(|l| access::parse_entry(l).is_some())
}

/// The entries of a W3C extended log read from `r` (the file `path`): one
/// event per entry line or one [`RecordError`] naming `path` and the line
/// (see the module docs). Never panics.
pub(crate) fn w3c_records(
    path: &Path,
    r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(TextRecords::new(path, Lines::new(r), w3c::W3c::default()))
}

/// The entries of an Apache/Nginx access log read from `r` (the file
/// `path`): one event per line or one [`RecordError`] naming `path` and the
/// line (see the module docs). Never panics.
pub(crate) fn access_records(
    path: &Path,
    r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(TextRecords::new(path, Lines::new(r), access::Access))
}

/// The field holding the whole request target, path and query
/// (`/a/b.php?x=1`): SigmaHQ's webserver rules name `cs-uri-query` for
/// paths as often as for queries (101 rules, e.g. CVE-2021-21972's
/// `/ui/vropspluginui/…`, against 16 naming `cs-uri-stem`), so the
/// logsource map reads a rule's `cs-uri-query` here (fresh-user finding,
/// issue #21: attacks in the path never matched). `cs-uri-query` itself
/// keeps W3C's meaning, the part after `?`.
pub(crate) const FULL_URI: &str = "cs-uri";

/// Adds [`FULL_URI`] from the event's `cs-uri-stem` and `cs-uri-query`.
pub(crate) fn push_full_uri(ev: &mut tracehunt_event::Event) {
    let stem = ev.first("cs-uri-stem").and_then(|v| v.as_str());
    let query = ev.first("cs-uri-query").and_then(|v| v.as_str());
    let full = match (stem, query) {
        (Some(s), Some(q)) => format!("{s}?{q}"),
        (Some(s), None) => s.to_owned(),
        (None, Some(q)) => format!("?{q}"),
        (None, None) => return,
    };
    ev.push(FULL_URI, tracehunt_event::Value::Str(full));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffers() {
        assert!(sniff_w3c(
            b"#Software: Microsoft Internet Information Services 10.0\r\n"
        ));
        assert!(sniff_w3c(b"\xEF\xBB\xBF#Fields: date time\n"));
        assert!(!sniff_w3c(b"#separator \\x09\n"));
        assert!(!sniff_w3c(b"{\"a\":1}"));
        let apache = b"83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 203023 \"-\" \"UA\"\n";
        assert!(sniff_access(apache));
        for not in [
            &b"May 17 10:05:03 host sshd[1]: Accepted password"[..],
            b"type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e",
            b"{\"c-ip\":\"1.2.3.4\"}",
            b"<34>1 2003-10-11T22:14:15.003Z host app - - - msg",
            b"#Fields: date time",
            b"",
        ] {
            assert!(!sniff_access(not), "{}", String::from_utf8_lossy(not));
        }
    }
}
