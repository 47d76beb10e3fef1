//! W3C extended log format (W3C Working Draft WD-logfile-960323, as IIS
//! writes it): `#Software:`, `#Version:`, `#Date:`, `#Fields:` directives,
//! then entries of whitespace-separated values in `#Fields` order.

use super::lines::{Line, LineParser};
use super::{int_or_text, CHANNEL};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use tracehunt_event::{Event, EventMeta, Value};

/// How a column's values become event values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text as written.
    Text,
    /// A request or response header (`cs(User-Agent)`): IIS writes its
    /// spaces as `+`, turned back into spaces.
    Header,
    /// A number (`sc-status`, `sc-bytes`, `time-taken`…): `Int` when it
    /// parses, else text.
    Int,
}

/// One `#Fields` column: the event field name and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Col {
    name: Box<str>,
    kind: Kind,
}

impl Col {
    /// `cs(User-Agent)` → `cs-user-agent` (header kind), `sc-status` →
    /// `sc-status` (int kind); other names as written.
    fn new(raw: &str) -> Col {
        if let Some((prefix, rest)) = raw.split_once('(') {
            if let Some(header) = rest.strip_suffix(')') {
                return Col {
                    name: format!("{prefix}-{}", header.to_ascii_lowercase()).into(),
                    kind: Kind::Header,
                };
            }
        }
        let kind = match raw {
            "sc-status" | "sc-substatus" | "sc-win32-status" | "s-port" | "c-port" | "sc-bytes"
            | "cs-bytes" | "time-taken" => Kind::Int,
            _ => Kind::Text,
        };
        Col {
            name: raw.into(),
            kind,
        }
    }
}

/// Earlier `#Fields` layouts kept per file (the latest of each width).
const MAX_EARLIER: usize = 16;

/// Parser state: the `#Fields` layout in force, the earlier layouts of the
/// file (at most [`MAX_EARLIER`], one per width), and the `#Date`
/// directive's date.
#[derive(Default)]
pub(super) struct W3c {
    cols: Vec<Col>,
    earlier: Vec<Vec<Col>>,
    date: Option<NaiveDate>,
}

impl W3c {
    fn directive(&mut self, text: &str) {
        if let Some(f) = text.strip_prefix("#Fields:") {
            let cols: Vec<Col> = f.split_ascii_whitespace().map(Col::new).collect();
            if !self.cols.is_empty() && self.cols != cols {
                // Only the latest earlier layout of each width is ever used,
                // and at most MAX_EARLIER of them are kept (breaker finding:
                // every #Fields line was compared with all earlier layouts,
                // 20,000 of them took 48 s).
                let old = std::mem::take(&mut self.cols);
                self.earlier.retain(|c| c.len() != old.len());
                if self.earlier.len() >= MAX_EARLIER {
                    self.earlier.remove(0);
                }
                self.earlier.push(old);
            }
            self.cols = cols;
        } else if let Some(d) = text.strip_prefix("#Date:") {
            self.date = d
                .split_ascii_whitespace()
                .next()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        }
        // `#Software`, `#Version`, `#Remark`, `#Start-Date`…: nothing to keep.
    }

    /// The layout for an entry of `n` values: the current `#Fields`, or
    /// else the latest earlier layout of this file with `n` columns.
    fn layout(&self, n: usize) -> Result<&[Col], String> {
        if self.cols.is_empty() {
            return Err("entry before any #Fields directive".into());
        }
        if self.cols.len() == n {
            return Ok(&self.cols);
        }
        self.earlier
            .iter()
            .rev()
            .find(|c| c.len() == n)
            .map(Vec::as_slice)
            .ok_or_else(|| {
                format!(
                    "{n} values, but #Fields names {} columns (and no earlier #Fields of this file has {n})",
                    self.cols.len()
                )
            })
    }

    fn entry(&self, text: &str) -> Result<Event, String> {
        let n = text.split_ascii_whitespace().count();
        let cols = self.layout(n)?;
        let mut ev = Event::with_meta(EventMeta {
            channel: Some(CHANNEL.into()),
            ..EventMeta::default()
        });
        let (mut date, mut time) = (self.date, None);
        let (mut computer, mut s_ip) = (None, None);
        for (col, raw) in cols.iter().zip(text.split_ascii_whitespace()) {
            if raw == "-" {
                continue;
            }
            match &*col.name {
                "date" => {
                    date = Some(
                        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                            .map_err(|_| format!("bad date `{raw}`"))?,
                    );
                }
                "time" => {
                    time = Some(
                        NaiveTime::parse_from_str(raw, "%H:%M:%S%.f")
                            .map_err(|_| format!("bad time `{raw}`"))?,
                    );
                }
                "s-computername" => computer = Some(raw.to_owned()),
                "s-ip" => s_ip = Some(raw.to_owned()),
                _ => {}
            }
            let v = match col.kind {
                Kind::Text => Value::Str(raw.to_owned()),
                Kind::Header => Value::Str(raw.replace('+', " ")),
                Kind::Int => int_or_text(raw),
            };
            ev.push(col.name.clone(), v);
        }
        if let (Some(d), Some(t)) = (date, time) {
            ev.meta.timestamp = Some(NaiveDateTime::new(d, t).and_utc());
        }
        ev.meta.computer = computer.or(s_ip);
        super::push_full_uri(&mut ev);
        Ok(ev)
    }
}

impl LineParser for W3c {
    fn parse(&mut self, line: &Line<'_>) -> Result<Option<Event>, String> {
        let text = line.text.trim_start_matches('\u{feff}');
        if text.trim().is_empty() {
            return Ok(None);
        }
        if text.starts_with('#') {
            self.directive(text);
            return Ok(None);
        }
        self.entry(text).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names() {
        assert_eq!(&*Col::new("cs(User-Agent)").name, "cs-user-agent");
        assert_eq!(Col::new("cs(Referer)").kind, Kind::Header);
        assert_eq!(&*Col::new("cs(Referer)").name, "cs-referer");
        assert_eq!(Col::new("sc-status").kind, Kind::Int);
        assert_eq!(Col::new("cs-uri-query").kind, Kind::Text);
    }
}
