//! The normalised log event shared by every tracehunt crate.
//!
//! Readers (EVTX, JSON shapes) turn records into an [`Event`]: a flat list of
//! `(field name, value)` pairs named the way Sigma rules name Windows fields
//! (`EventID`, `Channel`, `Computer`, `Provider_Name`, `Image`, `CommandLine`…),
//! plus [`EventMeta`] with the header facts every output row needs.
//!
//! Field names follow the Sigma Windows taxonomy (SigmaHQ `logsource.json`,
//! `tests/thor.yml`): System fields by their leaf name, `Provider.Name` as
//! `Provider_Name`, `EventData`/`UserData` fields by their leaf name.
//! A name may occur more than once (e.g. unnamed `Data` items); lookups yield
//! every value.
//!
//! This crate does no I/O.
//!
//! ```
//! use tracehunt_event::{Event, Value};
//! let mut ev = Event::default();
//! ev.push("EventID", Value::Int(1));
//! ev.push("Image", Value::from("C:\\Windows\\System32\\cmd.exe"));
//! assert_eq!(ev.get("image").next().and_then(Value::as_str), Some("C:\\Windows\\System32\\cmd.exe"));
//! assert_eq!(ev.first("EventID").and_then(Value::as_i64), Some(1));
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

/// One field value of an [`Event`].
///
/// JSON numbers become [`Value::Int`] when they are integral and fit an `i64`,
/// otherwise [`Value::Float`]. Nested objects are flattened by the readers, so
/// there is no map variant; JSON arrays become repeated fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// JSON `null`, or an empty element in EVTX.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer (EVTX numeric substitutions, JSON integers).
    Int(i64),
    /// A non-integral or out-of-range number.
    Float(f64),
    /// A string (most EVTX values, all EventData text).
    Str(String),
}

impl Value {
    /// The string, if this is [`Value::Str`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer: [`Value::Int`], or a string holding a decimal
    /// or `0x` hexadecimal integer (EVTX renders many numbers as text).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Some(*f as i64),
            Value::Str(s) => {
                let t = s.trim();
                if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    i64::from_str_radix(hex, 16).ok()
                } else {
                    t.parse().ok()
                }
            }
            _ => None,
        }
    }

    /// The value as a float (integers widen; numeric strings parse).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// True for [`Value::Null`] and for the empty string.
    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            _ => false,
        }
    }

    /// The value rendered as text, the way Sigma compares strings against it:
    /// strings as they are, numbers in decimal, booleans as `true`/`false`,
    /// null as the empty string.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Null => Cow::Borrowed(""),
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Float(f) => Cow::Owned(f.to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// Header facts of an event, filled by the reader from the record's System
/// section (EVTX), `winlog.*` (Winlogbeat/ECS) or top-level keys (Mordor).
///
/// Every field is optional: a reader sets what the record has.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventMeta {
    /// `System/TimeCreated/@SystemTime`, `@timestamp` or `timestamp`, in UTC.
    pub timestamp: Option<DateTime<Utc>>,
    /// `System/Computer`, `winlog.computer_name`/`host.name`, `Hostname`.
    pub computer: Option<String>,
    /// `System/Channel` as written in the log (e.g. `Microsoft-Windows-Sysmon/Operational`);
    /// for an event labelled `ForwardedEvents` (a WEF collector's log), the channel its
    /// provider writes to when the readers can tell it.
    pub channel: Option<String>,
    /// `System/Provider/@Name`.
    pub provider: Option<String>,
    /// `System/EventID` (the low 16 bits; qualifiers are dropped).
    pub event_id: Option<u32>,
    /// `System/EventRecordID`, or the record number the reader assigned.
    pub record_id: Option<u64>,
}

/// A normalised event: header facts plus flat, Sigma-named fields.
///
/// Invariant: [`Event::meta`] agrees with the `EventID`, `Channel`,
/// `Computer` and `Provider_Name` fields when a reader set both.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Event {
    /// Header facts used for logsource routing and output.
    pub meta: EventMeta,
    fields: Vec<(Box<str>, Value)>,
}

impl Event {
    /// An empty event with the given header facts.
    pub fn with_meta(meta: EventMeta) -> Self {
        Event {
            meta,
            fields: Vec::new(),
        }
    }

    /// An empty event with default header facts and room for `fields`
    /// fields before its field list grows (a reader that knows its records'
    /// usual size saves the regrowths).
    pub fn with_capacity(fields: usize) -> Self {
        Event {
            meta: EventMeta::default(),
            fields: Vec::with_capacity(fields),
        }
    }

    /// Appends a field. Repeated names are kept (array semantics).
    pub fn push(&mut self, name: impl Into<Box<str>>, value: Value) {
        self.fields.push((name.into(), value));
    }

    /// All `(name, value)` pairs in reader order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (&**k, v))
    }

    /// Number of fields (counting repeats).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the event has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Every value of field `name`. Names compare exactly first; if no
    /// field has exactly that name, ASCII case-insensitively (Sigma field
    /// names are written with varying case across rule sets and exports).
    pub fn get<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        let exact = self.fields.iter().any(|(k, _)| &**k == name);
        self.fields.iter().filter_map(move |(k, v)| {
            let hit = if exact {
                &**k == name
            } else {
                k.eq_ignore_ascii_case(name)
            };
            hit.then_some(v)
        })
    }

    /// The first value of field `name` (same name rules as [`Event::get`]).
    pub fn first(&self, name: &str) -> Option<&Value> {
        let exact = self.fields.iter().find(|(k, _)| &**k == name);
        exact
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v)
    }

    /// True when at least one field is called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.first(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_all_returned() {
        let mut ev = Event::default();
        ev.push("Data", Value::from("a"));
        ev.push("Data", Value::from("b"));
        let v: Vec<_> = ev.get("Data").map(|v| v.to_text().into_owned()).collect();
        assert_eq!(v, ["a", "b"]);
    }

    #[test]
    fn exact_name_wins_over_case_insensitive() {
        let mut ev = Event::default();
        ev.push("channel", Value::from("lower"));
        ev.push("Channel", Value::from("Upper"));
        assert_eq!(ev.first("Channel").unwrap().as_str(), Some("Upper"));
        assert_eq!(ev.first("CHANNEL").unwrap().as_str(), Some("lower"));
    }

    #[test]
    fn numeric_strings_parse() {
        assert_eq!(Value::from("0x10").as_i64(), Some(16));
        assert_eq!(Value::from(" 42 ").as_i64(), Some(42));
        assert_eq!(Value::from("x").as_i64(), None);
        assert_eq!(Value::Int(3).to_text(), "3");
        assert!(Value::Null.is_null_or_empty());
    }
}
