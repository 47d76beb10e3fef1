//! Zeek's ASCII (TSV) log writer format: `#`-header lines, then one record
//! per line, values split by `#separator` and typed by `#types`.

use super::{channel_for, epoch_time};
use crate::caps::Budget;
use crate::web::lines::{Line, LineParser};
use std::borrow::Cow;
use tracehunt_event::{Event, EventMeta, Value};

/// The Zeek type of a column, as far as the event value needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// `count`, `int`, `port`: [`Value::Int`].
    Int,
    /// `double`, `interval`, `time`: [`Value::Float`] (`time` is epoch seconds).
    Float,
    /// `bool` (`T` / `F`): [`Value::Bool`].
    Bool,
    /// Everything else (`string`, `addr`, `subnet`, `enum`, `pattern`…):
    /// [`Value::Str`] as written.
    Text,
}

/// A column type: a scalar, or a `set[…]` / `vector[…]` of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ty {
    base: Base,
    container: bool,
}

impl Ty {
    const TEXT: Ty = Ty {
        base: Base::Text,
        container: false,
    };

    fn parse(t: &str) -> Ty {
        let (inner, container) = match t
            .strip_prefix("set[")
            .or_else(|| t.strip_prefix("vector["))
            .and_then(|r| r.strip_suffix(']'))
        {
            Some(i) => (i, true),
            None => (t, false),
        };
        let base = match inner {
            "count" | "int" | "port" => Base::Int,
            "double" | "interval" | "time" => Base::Float,
            "bool" => Base::Bool,
            _ => Base::Text,
        };
        Ty { base, container }
    }
}

/// Parser state: the header values in force for the following data lines.
pub(super) struct Tsv {
    /// The channel used while no `#path` was seen (from the file name).
    fallback_path: String,
    channel: String,
    separator: String,
    set_separator: String,
    empty_field: String,
    unset_field: String,
    fields: Vec<Box<str>>,
    types: Vec<Ty>,
    ts_col: Option<usize>,
    orig_col: Option<usize>,
}

impl Tsv {
    /// A parser with Zeek's default separators; `fallback_path` names the
    /// log (`dns`) until a `#path` line does.
    pub(super) fn new(fallback_path: String) -> Self {
        Tsv {
            channel: channel_for(&fallback_path),
            fallback_path,
            separator: "\t".into(),
            set_separator: ",".into(),
            empty_field: "(empty)".into(),
            unset_field: "-".into(),
            fields: Vec::new(),
            types: Vec::new(),
            ts_col: None,
            orig_col: None,
        }
    }

    fn header(&mut self, line: &str) -> Result<(), String> {
        if let Some(v) = line.strip_prefix("#separator") {
            let v = v.strip_prefix([' ', '\t']).unwrap_or(v);
            let sep = unescape(v);
            if sep.is_empty() {
                return Err("#separator line without a separator".into());
            }
            self.separator = sep;
            return Ok(());
        }
        let body = &line[1..];
        let (key, value) = match body.split_once(self.separator.as_str()) {
            Some((k, v)) => (k, v),
            None => (body, ""),
        };
        match key {
            "set_separator" => self.set_separator = unescape(value),
            "empty_field" => self.empty_field = unescape(value),
            "unset_field" => self.unset_field = unescape(value),
            "path" => {
                let p = if value.is_empty() {
                    self.fallback_path.as_str()
                } else {
                    value
                };
                self.channel = channel_for(p);
            }
            "fields" => {
                self.fields = value
                    .split(self.separator.as_str())
                    .map(Into::into)
                    .collect();
                self.types.clear();
                self.ts_col = self.fields.iter().position(|f| &**f == "ts");
                self.orig_col = self.fields.iter().position(|f| &**f == "id.orig_h");
            }
            "types" => {
                self.types = value
                    .split(self.separator.as_str())
                    .map(Ty::parse)
                    .collect();
            }
            // `#open`, `#close` and anything else: nothing to keep.
            _ => {}
        }
        Ok(())
    }

    /// The single-byte separators, for [`unescape_value`] (a space, which
    /// it decodes anyway, when a separator is longer than one byte).
    fn seps(&self) -> [u8; 2] {
        let one = |s: &str| match s.as_bytes() {
            [b] => *b,
            _ => b' ',
        };
        [one(&self.separator), one(&self.set_separator)]
    }

    fn value(&self, base: Base, raw: &str) -> Result<Value, String> {
        Ok(match base {
            Base::Text => Value::Str(unescape_value(raw, self.seps()).into_owned()),
            Base::Int => match raw.parse::<i64>() {
                Ok(i) => Value::Int(i),
                // `count` is unsigned 64-bit: the top half stays exact as text.
                Err(_) if raw.parse::<u64>().is_ok() => Value::Str(raw.to_owned()),
                Err(_) => return Err(format!("`{raw}` is not an integer")),
            },
            Base::Float => match raw.parse::<f64>() {
                Ok(f) if f.is_finite() => Value::Float(f),
                _ => return Err(format!("`{raw}` is not a number")),
            },
            Base::Bool => match raw {
                "T" => Value::Bool(true),
                "F" => Value::Bool(false),
                _ => return Err(format!("`{raw}` is not a bool (T or F)")),
            },
        })
    }

    fn data(&self, text: &str) -> Result<Event, String> {
        if self.fields.is_empty() {
            return Err("data line before any #fields header".into());
        }
        let n = text.split(self.separator.as_str()).count();
        if n != self.fields.len() {
            return Err(format!(
                "{n} values, but #fields names {} columns",
                self.fields.len()
            ));
        }
        let typed = self.types.len() == self.fields.len();
        let mut ev = Event::with_meta(EventMeta {
            channel: Some(self.channel.clone()),
            ..EventMeta::default()
        });
        let mut b = Budget::default();
        for (i, raw) in text.split(self.separator.as_str()).enumerate() {
            let name = &*self.fields[i];
            if raw == self.unset_field {
                if Some(i) == self.ts_col {
                    return Err("ts is unset".into());
                }
                continue;
            }
            let ty = if typed { self.types[i] } else { Ty::TEXT };
            if Some(i) == self.ts_col {
                let t = epoch_time(raw).ok_or_else(|| format!("bad ts `{raw}`"))?;
                ev.meta.timestamp = Some(t);
            }
            if Some(i) == self.orig_col {
                ev.meta.computer = Some(raw.to_owned());
            }
            if raw == self.empty_field {
                // An empty container has no elements (like `[]` in Zeek
                // JSON); an empty string is the empty string.
                if !ty.container {
                    b.push(&mut ev, name, Value::Str(String::new()));
                }
                continue;
            }
            if ty.container {
                for el in raw.split(self.set_separator.as_str()) {
                    if el == self.unset_field {
                        continue;
                    }
                    if b.full() {
                        b.dropped += 1;
                        continue;
                    }
                    let v = self
                        .value(ty.base, el)
                        .map_err(|e| format!("{name}: {e}"))?;
                    b.push(&mut ev, name, v);
                }
            } else {
                let v = self
                    .value(ty.base, raw)
                    .map_err(|e| format!("{name}: {e}"))?;
                b.push(&mut ev, name, v);
            }
        }
        b.finish(&mut ev);
        Ok(ev)
    }
}

impl LineParser for Tsv {
    fn parse(&mut self, line: &Line<'_>) -> Result<Option<Event>, String> {
        let text: &str = &line.text;
        if text.is_empty() {
            return Ok(None);
        }
        if text.starts_with('#') {
            self.header(text)?;
            return Ok(None);
        }
        self.data(text).map(Some)
    }
}

/// Decodes the `\xNN` escapes of a header value (`#separator \x09`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1] == b'x' {
            if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text of a data value (or set element) as Zeek logged it, undoing
/// the escapes the TSV writer adds for the format's sake: `\\` → `\`, and
/// `\xNN` when NN is printable ASCII (a `-` or `(` escaped so as not to read
/// as a marker, an escaped `,` in a set element) or the separator or set
/// separator byte. Other `\xNN` (control bytes, bytes of invalid UTF-8) stay
/// as written: that is also how Zeek's JSON writer shows invalid bytes, and
/// SigmaHQ rules match the escaped text (`answers|endswith: '\\x00'`).
fn unescape_value<'a>(raw: &'a str, seps: [u8; 2]) -> Cow<'a, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && b.get(i + 1) == Some(&b'\\') {
            out.push('\\');
            i += 2;
            continue;
        }
        if c == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                if (0x20..0x7f).contains(&v) || seps.contains(&v) {
                    out.push(char::from(v));
                    i += 4;
                    continue;
                }
            }
        }
        // Copy one whole char (raw is valid UTF-8).
        let len = utf8_len(c);
        out.push_str(&raw[i..(i + len).min(raw.len())]);
        i += len;
    }
    Cow::Owned(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_header_values() {
        assert_eq!(unescape("\\x09"), "\t");
        assert_eq!(unescape("\\x2c"), ",");
        assert_eq!(unescape(","), ",");
        assert_eq!(unescape("\\x0"), "\\x0");
        assert_eq!(unescape("a\\xzz"), "a\\xzz");
    }

    #[test]
    fn unescape_data_values() {
        let seps = [b'\t', b','];
        assert_eq!(unescape_value("plain", seps), "plain");
        assert_eq!(unescape_value("O=VMware\\\\, Inc", seps), "O=VMware\\, Inc");
        assert_eq!(unescape_value("\\x2d", seps), "-");
        assert_eq!(unescape_value("a\\x2cb", seps), "a,b");
        assert_eq!(unescape_value("a\\x09b", seps), "a\tb");
        assert_eq!(unescape_value("q\\x00", seps), "q\\x00");
        assert_eq!(unescape_value("é\\x", seps), "é\\x");
    }

    #[test]
    fn types() {
        assert_eq!(Ty::parse("vector[interval]").base, Base::Float);
        assert!(Ty::parse("set[string]").container);
        assert_eq!(
            Ty::parse("port"),
            Ty {
                base: Base::Int,
                container: false
            }
        );
        assert_eq!(Ty::parse("addr"), Ty::TEXT);
    }
}
