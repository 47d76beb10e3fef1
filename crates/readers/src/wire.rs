//! The wire form of an [`Event`]: one JSON object that decodes back to the
//! very same event (header facts, every field in reader order, every value
//! with its type), so that an event read once, sent over a message bus
//! (`tracehunt publish` → `tracehunt worker`) and hunted there has the same
//! identity (`tracehunt_pipeline::keys::event_key`) and the same detections
//! as in a local `hunt`.
//!
//! Shape (one line; `"tracehunt_event": 1` marks it and gives the version):
//!
//! ```text
//! {"tracehunt_event":1,"t":[1556704800,123000000],"computer":"WS1","channel":"Security",
//!  "provider":"Microsoft-Windows-Security-Auditing","event_id":4688,"record_id":42,
//!  "fields":[["EventID",4688],["NewProcessName","C:\\x.exe"],["Ratio",{"float":0.5}],["Empty",null]]}
//! ```
//!
//! `t` is the time as whole seconds since the Unix epoch and nanoseconds
//! (exact, any year chrono holds); absent header facts are left out;
//! values are `null`, booleans, integers (`i64`), strings, or
//! `{"float": x}` (`x` a number, or `"NaN"`, `"inf"`, `"-inf"`), so no
//! value changes type on the way. [`event_from_json_value`] reads this
//! shape too, so a file of wire lines is also input for `hunt` and `watch`.
//!
//! [`event_from_json_value`]: crate::event_from_json_value
//!
//! ```
//! use tracehunt_event::{Event, EventMeta, Value};
//! let mut ev = Event::with_meta(EventMeta { computer: Some("WS1".into()), event_id: Some(1), ..Default::default() });
//! ev.push("EventID", Value::Int(1));
//! ev.push("Ratio", Value::Float(0.25));
//! let line = tracehunt_readers::wire::encode(&ev);
//! assert_eq!(tracehunt_readers::wire::decode(&line).unwrap(), ev);
//! ```

use chrono::DateTime;
use serde_json::{json, Map, Value as J};
use tracehunt_event::{Event, EventMeta, Value};

/// The key that marks a wire object; its value is the version (1).
pub const MARK: &str = "tracehunt_event";

/// Encodes `ev` as one JSON line (no newline).
pub fn encode(ev: &Event) -> String {
    let m = &ev.meta;
    let mut o = Map::new();
    o.insert(MARK.into(), J::from(1));
    if let Some(t) = m.timestamp {
        o.insert(
            "t".into(),
            json!([t.timestamp(), t.timestamp_subsec_nanos()]),
        );
    }
    for (k, v) in [
        ("computer", &m.computer),
        ("channel", &m.channel),
        ("provider", &m.provider),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), J::from(v.as_str()));
        }
    }
    if let Some(id) = m.event_id {
        o.insert("event_id".into(), J::from(id));
    }
    if let Some(id) = m.record_id {
        o.insert("record_id".into(), J::from(id));
    }
    let fields: Vec<J> = ev
        .fields()
        .map(|(k, v)| J::Array(vec![J::from(k), value(v)]))
        .collect();
    o.insert("fields".into(), J::Array(fields));
    J::Object(o).to_string()
}

fn value(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Str(s) => J::from(s.as_str()),
        Value::Float(f) => {
            let x = if f.is_nan() {
                J::from("NaN")
            } else if f.is_infinite() {
                J::from(if *f > 0.0 { "inf" } else { "-inf" })
            } else {
                J::from(*f)
            };
            json!({ "float": x })
        }
    }
}

/// Decodes one wire line.
///
/// # Errors
/// Not JSON, or not the wire shape: the message says which part.
pub fn decode(line: &str) -> Result<Event, String> {
    let v: J = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    from_value(&v)
}

/// Decodes a parsed wire object (an object with [`MARK`]).
///
/// # Errors
/// Another version, or a part of the wrong type: the message names it.
pub fn from_value(v: &J) -> Result<Event, String> {
    let o = v.as_object().ok_or("a wire event must be a JSON object")?;
    match o.get(MARK).and_then(J::as_u64) {
        Some(1) => {}
        Some(n) => return Err(format!("wire event version {n} is not supported (only 1)")),
        None => return Err(format!("no \"{MARK}\": 1 mark")),
    }
    let text = |k: &str| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(J::Null) => Ok(None),
            Some(J::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{k}\" must be a string")),
        }
    };
    let timestamp = match o.get("t") {
        None | Some(J::Null) => None,
        Some(J::Array(a)) if a.len() == 2 => {
            let secs = a[0].as_i64().ok_or("\"t\"[0] must be whole seconds")?;
            let nanos = a[1]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("\"t\"[1] must be nanoseconds")?;
            Some(DateTime::from_timestamp(secs, nanos).ok_or("\"t\" is out of range")?)
        }
        Some(_) => return Err("\"t\" must be [seconds, nanoseconds]".into()),
    };
    let event_id = match o.get("event_id") {
        None | Some(J::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("\"event_id\" must be a 32-bit unsigned integer")?,
        ),
    };
    let record_id = match o.get("record_id") {
        None | Some(J::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .ok_or("\"record_id\" must be an unsigned integer")?,
        ),
    };
    let meta = EventMeta {
        timestamp,
        computer: text("computer")?,
        channel: text("channel")?,
        provider: text("provider")?,
        event_id,
        record_id,
    };
    let mut ev = Event::with_meta(meta);
    let fields = match o.get("fields") {
        Some(J::Array(a)) => a,
        None => return Ok(ev),
        Some(_) => return Err("\"fields\" must be an array of [name, value] pairs".into()),
    };
    for (i, f) in fields.iter().enumerate() {
        let pair = f
            .as_array()
            .filter(|p| p.len() == 2)
            .ok_or_else(|| format!("fields[{i}] must be a [name, value] pair"))?;
        let name = pair[0]
            .as_str()
            .ok_or_else(|| format!("fields[{i}]: the name must be a string"))?;
        let v = from_json(&pair[1]).ok_or_else(|| format!("fields[{i}] ({name}): bad value"))?;
        ev.push(name, v);
    }
    Ok(ev)
}

fn from_json(v: &J) -> Option<Value> {
    Some(match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Int(n.as_i64()?),
        J::String(s) => Value::Str(s.clone()),
        J::Object(o) if o.len() == 1 => Value::Float(match o.get("float")? {
            J::Number(n) => n.as_f64()?,
            J::String(s) => match s.as_str() {
                "NaN" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => return None,
            },
            _ => return None,
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut ev = Event::with_meta(EventMeta {
            timestamp: DateTime::from_timestamp(1_556_704_800, 123_456_789),
            computer: Some("WS1.corp".into()),
            channel: Some("Security".into()),
            provider: Some("Microsoft-Windows-Security-Auditing".into()),
            event_id: Some(4688),
            record_id: Some(u64::MAX - 1),
        });
        ev.push("EventID", Value::Int(4688));
        ev.push("Data", Value::Str("a\u{0}b\n\"c\"".into()));
        ev.push("Data", Value::Null);
        ev.push("Flag", Value::Bool(false));
        ev.push("Big", Value::Int(i64::MIN));
        ev.push("F", Value::Float(1e300));
        ev.push("F", Value::Float(f64::NEG_INFINITY));
        ev.push("F", Value::Float(-0.0));
        ev
    }

    #[test]
    fn every_value_type_and_repeated_name_round_trips() {
        let ev = sample();
        let back = decode(&encode(&ev)).unwrap();
        assert_eq!(back.meta, ev.meta);
        let a: Vec<_> = ev.fields().map(|(k, v)| (k, format!("{v:?}"))).collect();
        let b: Vec<_> = back.fields().map(|(k, v)| (k, format!("{v:?}"))).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn nan_round_trips_as_nan() {
        let mut ev = Event::default();
        ev.push("x", Value::Float(f64::NAN));
        let back = decode(&encode(&ev)).unwrap();
        assert!(matches!(back.first("x"), Some(Value::Float(f)) if f.is_nan()));
    }

    #[test]
    fn the_json_reader_reads_wire_lines_unchanged() {
        let ev = sample();
        let v: J = serde_json::from_str(&encode(&ev)).unwrap();
        assert_eq!(
            format!("{:?}", crate::event_from_json_value(&v).unwrap()),
            format!("{ev:?}")
        );
    }

    #[test]
    fn bad_wire_objects_are_errors_naming_the_part() {
        for (line, part) in [
            (r#"{"tracehunt_event":2}"#, "version 2"),
            (r#"{"tracehunt_event":1,"t":[1]}"#, "\"t\""),
            (r#"{"tracehunt_event":1,"t":[9e18,0]}"#, "\"t\"[0]"),
            (
                r#"{"tracehunt_event":1,"t":[9223372036854775807,0]}"#,
                "out of range",
            ),
            (r#"{"tracehunt_event":1,"event_id":4294967296}"#, "event_id"),
            (r#"{"tracehunt_event":1,"computer":5}"#, "computer"),
            (r#"{"tracehunt_event":1,"fields":[["a"]]}"#, "fields[0]"),
            (r#"{"tracehunt_event":1,"fields":[[1,2]]}"#, "name"),
            (
                r#"{"tracehunt_event":1,"fields":[["a",{"float":"x"}]]}"#,
                "(a)",
            ),
            (r#"{"tracehunt_event":1,"fields":[["a",[1]]]}"#, "(a)"),
            (
                r#"{"tracehunt_event":1,"fields":[["a",1e400]]}"#,
                "not JSON",
            ),
        ] {
            let e = decode(line).unwrap_err();
            assert!(e.contains(part), "{line}: {e}");
        }
    }
}
