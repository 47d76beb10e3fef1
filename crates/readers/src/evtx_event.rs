//! An EVTX record's rendered JSON → [`Event`] without `serde_json::Value`
//! (issue #22 item 2).
//!
//! The `evtx` crate renders a record as compact JSON bytes
//! ([`evtx::EvtxRecord::into_json_bytes`]); the reader used to parse them
//! into a `serde_json::Value` (one `String` per key, one `IndexMap` per
//! object) and then walk that with [`crate::event_from_json_value`]. Here
//! the bytes are parsed once into a borrowing tree ([`J`]: keys and
//! unescaped strings point into the bytes, objects are vectors of pairs)
//! and walked by the same rules, for the one shape the crate renders:
//! `{"Event": {"System": {…}, "EventData" | "UserData" | …}}` with
//! `#attributes` objects (MS-EVEN6 §2.2.12 event XML as the crate maps it
//! to JSON). Field names, values, value types, order and
//! [`tracehunt_event::EventMeta`] are those of
//! [`event_from_json_value`](crate::event_from_json_value) on the same
//! bytes; `crates/readers/tests/evtx_decode_differential.rs` checks that on
//! every record of the corpora's EVTX files.
//!
//! Anything outside that shape — a duplicate key in an object, a number
//! where the crate writes text (Velociraptor's forms), invalid UTF-8, bytes
//! that are not JSON, an object or array where a scalar is expected — makes
//! [`event_from_record_json`] fall back to the `Value` path, so such a
//! record gets exactly the event, or the error, it got before.

mod stream;

use crate::caps::Budget;
use crate::channel::canonical_channel;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use tracehunt_event::{Event, Value};

/// Nesting deeper than this is dropped (as `shape::MAX_DEPTH`).
const MAX_DEPTH: usize = 64;

/// A JSON value borrowing from the rendered bytes.
#[derive(Debug)]
enum J<'a> {
    Null,
    Bool(bool),
    /// A negative integer (`serde_json` visits those as `i64`).
    Neg(i64),
    /// A non-negative integer.
    Pos(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    /// Members in document order.
    Obj(Vec<(Cow<'a, str>, J<'a>)>),
}

/// The conversion met something the `Value` path treats in a way this one
/// does not copy: use that path for the record.
#[derive(Debug)]
struct Bail;

type R<T> = Result<T, Bail>;

impl<'a> J<'a> {
    fn is_null(&self) -> bool {
        matches!(self, J::Null)
    }

    fn as_obj(&self) -> Option<&[(Cow<'a, str>, J<'a>)]> {
        match self {
            J::Obj(m) => Some(m),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, J::Neg(_) | J::Pos(_) | J::Float(_))
    }

    /// `serde_json::Number::as_i64` on the same number.
    fn as_i64(&self) -> Option<i64> {
        match self {
            J::Neg(i) => Some(*i),
            J::Pos(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }
}

/// The member `key` of an object's members (keys are unique: checked when parsed).
fn get<'m, 'a>(m: &'m [(Cow<'a, str>, J<'a>)], key: &str) -> Option<&'m J<'a>> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<J<'de>, E> {
        Ok(J::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<J<'de>, E> {
        // serde_json's `Number::from(i64)` keeps a non-negative i64 as a
        // positive integer.
        Ok(match u64::try_from(i) {
            Ok(u) => J::Pos(u),
            Err(_) => J::Neg(i),
        })
    }
    fn visit_u64<E>(self, u: u64) -> Result<J<'de>, E> {
        Ok(J::Pos(u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<J<'de>, E> {
        Ok(J::Float(f))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J<'de>, A::Error> {
        let mut out = Vec::new();
        while let Some(x) = seq.next_element::<J<'de>>()? {
            out.push(x);
        }
        Ok(J::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J<'de>, A::Error> {
        let mut out: Vec<(Cow<'de, str>, J<'de>)> = Vec::new();
        while let Some(k) = map.next_key::<Key<'de>>()? {
            let v = map.next_value::<J<'de>>()?;
            // `serde_json::Map` keeps one member per key (the last value at
            // the first place); the crate writes `_N` suffixes instead, so
            // a repeat is not its shape.
            if out.iter().any(|(o, _)| *o == k.0) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            out.push((k.0, v));
        }
        Ok(J::Obj(out))
    }
}

impl<'de> Deserialize<'de> for J<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

/// An object key, borrowed unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KV;
        impl<'de> Visitor<'de> for KV {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(KV)
    }
}

/// One record's rendered JSON (`into_json_bytes`) as an [`Event`]: the
/// same event [`event_from_json_value`](crate::event_from_json_value) makes
/// of `serde_json::from_slice(bytes)`, or the same failure.
///
/// `Ok(None)`: the JSON has no `Event`/`System` element (the caller's
/// `UnrecognisedShape`). `Err`: the bytes are not UTF-8 or not one JSON
/// value — the error `EvtxRecord::into_json_value` gave for them.
pub(crate) fn event_from_record_json(bytes: &[u8]) -> Result<Option<Event>, evtx::err::EvtxError> {
    if let Some(ev) = fast(bytes) {
        return Ok(Some(ev));
    }
    reference(bytes)
}

/// Whether the borrowing conversion takes this record (else it falls back).
pub(crate) fn fast_path_takes(bytes: &[u8]) -> bool {
    fast(bytes).is_some()
}

/// The `serde_json::Value` path (what the reader did before): kept for the
/// records the fast path leaves, and as the differential tests' reference.
pub(crate) fn reference(bytes: &[u8]) -> Result<Option<Event>, evtx::err::EvtxError> {
    use evtx::err::{EvtxError, SerializationError};
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|e| EvtxError::from(SerializationError::from(e)))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| EvtxError::from(SerializationError::from(e)))?;
    Ok(crate::shape::event_from_json_value(&v))
}

/// One evtx-JSON object (`{"Event": {…}}`, as the `evtx` crate renders a
/// record; the JSON-lines reader's evtx-JSON lines) as an [`Event`]: the
/// event [`event_from_json_value`](crate::event_from_json_value) makes of
/// the same bytes parsed into a `serde_json::Value`, or `None` when this
/// parse leaves the object to that path (another shape, a form it does not
/// copy, or not valid JSON).
pub(crate) fn event_from_evtx_json(bytes: &[u8]) -> Option<Event> {
    fast(bytes)
}

/// The borrowing conversion; `None` when the record needs the `Value` path.
fn fast(bytes: &[u8]) -> Option<Event> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let mut c = Conv {
        // A record has some 15 `System` fields and tens of `EventData` ones.
        ev: Event::with_capacity(32),
        // Keys of the objects being read: a few levels of tens of keys.
        keys: Vec::with_capacity(64),
        ..Conv::default()
    };
    stream::record(&mut de, &mut c).ok()?;
    de.end().ok()?;
    c.budget.finish(&mut c.ev);
    Some(crate::channel::unforward(c.ev))
}

fn is_xmlns(attr: &str) -> bool {
    attr == "xmlns" || attr.starts_with("xmlns:")
}

/// `shape::scalar`, for scalars only.
fn scalar(v: &J<'_>) -> R<Value> {
    Ok(match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Neg(i) => Value::Int(*i),
        J::Pos(u) => match i64::try_from(*u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Float(*u as f64),
        },
        J::Float(f) => Value::Float(*f),
        J::Str(s) => Value::Str(s.clone().into_owned()),
        // `Value::to_string()` of an object or array: not copied here.
        J::Arr(_) | J::Obj(_) => return Err(Bail),
    })
}

/// The event being built, with `shape`'s per-event array state.
#[derive(Default)]
struct Conv<'de> {
    ev: Event,
    in_array: u32,
    budget: Budget,
    /// Keys of the objects being streamed, innermost last (duplicate check).
    keys: Vec<&'de str>,
}

impl Conv<'_> {
    /// `shape::from_evtx_json`'s reading of one member of `Event` after
    /// `System` (`EventData` is streamed, see [`stream`]).
    fn event_member(&mut self, k: &str, v: &J<'_>) -> R<()> {
        match k {
            "System" | "#attributes" => {}
            "EventData" => self.flatten_children(v)?,
            "UserData" => match v {
                J::Obj(m) => {
                    for (wk, w) in m {
                        if wk != "#attributes" && !is_xmlns(wk) {
                            self.flatten_children(w)?;
                        }
                    }
                }
                other => self.flatten_children(other)?,
            },
            "RenderingInfo" => {
                if let Some(m) = v.as_obj().and_then(|m| get(m, "Message")) {
                    self.flatten("Message", m, 1)?;
                }
            }
            "Message" => {
                if !v.is_null() && v.as_str().is_none_or(|m| !m.is_empty()) {
                    self.flatten("Message", v, 1)?;
                }
            }
            _ if k.ends_with("_attributes") || is_xmlns(k) => {}
            _ => self.flatten_children(v)?,
        }
        Ok(())
    }

    /// `meta` from the fields, as `shape::from_evtx_json` ends.
    fn finish_meta(&mut self) {
        let ts = self
            .ev
            .first("TimeCreated")
            .and_then(|t| t.as_str())
            .and_then(crate::shape::parse_time);
        crate::shape::fill_meta(&mut self.ev, ts);
    }

    /// Pushes a scalar read from inside `depth` arrays (`shape::flatten`'s leaf).
    fn push_leaf(&mut self, name: &str, value: Value) {
        if self.in_array == 0 {
            self.ev.push(name, value);
        } else {
            self.budget.push(&mut self.ev, name, value);
        }
    }

    /// One non-null member of `System` (`shape::from_evtx_json`'s loop
    /// body; `sys`: the members its lookups may see).
    fn system_child(&mut self, sys: &[(Cow<'_, str>, J<'_>)], k: &str, v: &J<'_>) -> R<()> {
        match k {
            "Provider" | "Provider_attributes" => {
                if k == "Provider_attributes" && get(sys, "Provider").is_some() {
                    return Ok(());
                }
                if let Some(a) = attrs(sys, "Provider").or_else(|| plain_attrs(v)) {
                    for (ak, av) in a {
                        if !is_xmlns(ak) && !av.is_null() {
                            self.flatten(&format!("Provider_{ak}"), av, 2)?;
                        }
                    }
                }
            }
            "EventID" => {
                if let Some(id) = event_id_value(v)? {
                    self.ev.push("EventID", id);
                }
            }
            "EventID_attributes" => {}
            "TimeCreated" | "TimeCreated_attributes" => {
                if k == "TimeCreated_attributes" && get(sys, "TimeCreated").is_some() {
                    return Ok(());
                }
                let system_time = attrs(sys, "TimeCreated")
                    .or_else(|| plain_attrs(v))
                    .and_then(|a| get(a, "SystemTime"));
                match system_time {
                    // Velociraptor's epoch seconds: the `Value` path's.
                    Some(t) if t.is_number() => return Err(Bail),
                    Some(t) => self.flatten("TimeCreated", t, 2)?,
                    None => self.flatten("TimeCreated", v, 2)?,
                }
            }
            "Channel" => match v {
                J::Str(s) => self
                    .ev
                    .push("Channel", Value::Str(canonical_channel(s).to_owned())),
                J::Null => {}
                other => {
                    let s = scalar(other)?;
                    self.ev.push("Channel", s);
                }
            },
            // A numeric `Keywords` (Velociraptor): the `Value` path's.
            "Keywords" if v.is_number() => return Err(Bail),
            _ => {
                let base = k.strip_suffix("_attributes").unwrap_or(k);
                self.flatten(base, v, 1)?;
            }
        }
        Ok(())
    }

    /// `shape::flatten`.
    fn flatten(&mut self, name: &str, v: &J<'_>, depth: usize) -> R<()> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        match v {
            J::Obj(m) => {
                for (k, c) in m {
                    match &**k {
                        "#attributes" => {
                            if let J::Obj(a) = c {
                                for (ak, av) in a {
                                    if !is_xmlns(ak) {
                                        self.flatten(ak, av, depth + 1)?;
                                    }
                                }
                            }
                        }
                        "#text" => self.flatten(name, c, depth + 1)?,
                        _ if is_xmlns(k) => {}
                        _ => self.flatten(k, c, depth + 1)?,
                    }
                }
            }
            J::Arr(a) => {
                self.in_array += 1;
                for x in a {
                    self.flatten(name, x, depth + 1)?;
                }
                self.in_array -= 1;
            }
            s => {
                let value = scalar(s)?;
                self.push_leaf(name, value);
            }
        }
        Ok(())
    }

    /// `shape::flatten_children`.
    fn flatten_children(&mut self, container: &J<'_>) -> R<()> {
        match container {
            J::Obj(m) => {
                for (k, c) in m {
                    if k == "#attributes" || k.ends_with("_attributes") || is_xmlns(k) {
                        continue;
                    }
                    let name = if k == "#text" { "Data" } else { &**k };
                    match c {
                        J::Arr(items) if name == "Data" => self.flatten_data_items(items)?,
                        _ => self.flatten(name, c, 1)?,
                    }
                }
            }
            J::Null => {}
            J::Arr(items) => self.flatten_data_items(items)?,
            other => self.flatten("Data", other, 1)?,
        }
        Ok(())
    }

    /// `shape::flatten_data_items`.
    fn flatten_data_items(&mut self, items: &[J<'_>]) -> R<()> {
        for item in items {
            match named_item(item) {
                Some((name, Some(v))) => self.flatten(name, v, 2)?,
                Some((name, None)) => self.ev.push(name, Value::Null),
                None => self.flatten("Data", item, 2)?,
            }
        }
        Ok(())
    }
}

/// `shape::named_item`.
fn named_item<'m>(item: &'m J<'_>) -> Option<(&'m str, Option<&'m J<'m>>)> {
    let m = item.as_obj()?;
    let name = get(m, "Name")?.as_str().filter(|n| !n.trim().is_empty())?;
    let mut value = None;
    for (k, v) in m {
        match &**k {
            "Name" => {}
            "Value" | "" | "#text" if value.is_none() => value = Some(v),
            _ => return None,
        }
    }
    Some((name, value))
}

type Members<'m, 'a> = &'m [(Cow<'a, str>, J<'a>)];

/// `shape::attrs`.
fn attrs<'m, 'a>(sys: Members<'m, 'a>, key: &str) -> Option<Members<'m, 'a>> {
    if let Some(J::Obj(a)) = get(sys, key)
        .and_then(J::as_obj)
        .and_then(|m| get(m, "#attributes"))
    {
        return Some(a);
    }
    match get(sys, &format!("{key}_attributes")) {
        Some(J::Obj(a)) => Some(a),
        _ => None,
    }
}

/// `shape::plain_attrs`.
fn plain_attrs<'m, 'a>(v: &'m J<'a>) -> Option<Members<'m, 'a>> {
    v.as_obj().filter(|m| get(m, "#attributes").is_none())
}

/// `shape::event_id_value`.
fn event_id_value(v: &J<'_>) -> R<Option<Value>> {
    let inner = match v {
        J::Obj(m) => match get(m, "#text").or_else(|| get(m, "Value")) {
            Some(i) => i,
            None => return Ok(None),
        },
        other => other,
    };
    let n = match inner {
        J::Neg(_) | J::Pos(_) | J::Float(_) => inner.as_i64(),
        J::Str(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    Ok(match n {
        Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Some(Value::Int(n & 0xFFFF)),
        Some(n) => Some(Value::Int(n)),
        None if inner.is_null() => None,
        None => Some(scalar(inner)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths on one rendered record.
    fn both(json: &str) -> (Option<Event>, Option<Event>) {
        (
            fast(json.as_bytes()),
            reference(json.as_bytes()).ok().flatten(),
        )
    }

    #[test]
    fn system_eventdata_and_userdata_match_the_value_path() {
        let json = r##"{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Eventlog","Guid":"{FC65DDD8-D6EF-4962-83D5-6E5CFE9CE148}"}},"EventID":{"#attributes":{"Qualifiers":16384},"#text":1102},"Level":4,"Keywords":"0x4020000000000000","TimeCreated":{"#attributes":{"SystemTime":"2019-03-19T23:34:25.464462Z"}},"EventRecordID":-5,"Correlation":null,"Execution":{"#attributes":{"ProcessID":1044,"ThreadID":18446744073709551615}},"Channel":"security","Computer":"PC","Security":null},"UserData":{"LogFileCleared":{"#attributes":{"xmlns":"x"},"SubjectUserName":"a\"b\\c","Data":[1,2.5,null]}},"EventData":{"Data":[{"Name":"X","Value":"v"},"loose",{"Name":"Y"}],"#text":"t"}}}"##;
        let (f, r) = both(json);
        let f = f.expect("fast path takes the crate's shape");
        assert_eq!(Some(&f), r.as_ref());
        assert_eq!(f.first("ThreadID"), Some(&Value::Float(u64::MAX as f64)));
        assert_eq!(f.first("SubjectUserName"), Some(&Value::from("a\"b\\c")));
        assert_eq!(f.meta.event_id, Some(1102));
        assert_eq!(f.meta.channel.as_deref(), Some("Security"));
    }

    #[test]
    fn forms_the_value_path_owns_are_left_to_it() {
        // Duplicate key, Velociraptor's numeric time and Keywords, an array
        // EventID rendered with `to_string`, a second top-level member.
        for json in [
            r##"{"Event":{"System":{"EventID":1,"EventID":2}}}"##,
            r##"{"Event":{"System":{"TimeCreated":{"SystemTime":1549462715.9}}}}"##,
            r##"{"Event":{"System":{"Keywords":9}}}"##,
            r##"{"Event":{"System":{"EventID":{"#text":[1,2]}}}}"##,
            r##"{"Event":{"System":{}},"tracehunt_event":1}"##,
        ] {
            assert!(fast(json.as_bytes()).is_none(), "{json}");
            let (via, _) = (event_from_record_json(json.as_bytes()), ());
            let want = reference(json.as_bytes());
            assert_eq!(
                via.ok().flatten(),
                want.ok().flatten(),
                "fallback equals the reference for {json}"
            );
        }
        // Out-of-range numbers in dropped members fail as in the Value path
        // (found by reading serde_json's IgnoredAny, which skips them unchecked).
        for json in [
            r##"{"Event":{"#attributes":{"xmlns":1e999},"System":{}}}"##,
            r##"{"Event":{"System":{},"Foo_attributes":[-1e999]}}"##,
            r##"{"Event":{"System":{},"EventData":{"xmlns:x":1e400,"A":1}}}"##,
        ] {
            assert!(fast(json.as_bytes()).is_none(), "{json}");
            assert!(reference(json.as_bytes()).is_err(), "{json}");
            assert!(event_from_record_json(json.as_bytes()).is_err(), "{json}");
        }
        // Repeated keys among many (the keys' bit filter must not hide
        // one), at each level the stream reads.
        let many: String = (0..70).map(|i| format!("\"K{i}\":{i},")).collect();
        for json in [
            format!(r#"{{"Event":{{"System":{{"EventID":1}},"EventData":{{{many}"K69":0}}}}}}"#),
            format!(r#"{{"Event":{{"System":{{{many}"K3":1}}}}}}"#),
            format!(r#"{{"Event":{{"System":{{}},"EventData":{{"A":{{{many}"K0":0}}}}}}}}"#),
            format!(
                r##"{{"Event":{{"System":{{}},"EventData":{{"A":{{"#attributes":{{{many}"K9":1}}}}}}}}}}"##
            ),
        ] {
            assert!(fast(json.as_bytes()).is_none(), "{json}");
            assert_eq!(
                event_from_record_json(json.as_bytes()).ok().flatten(),
                reference(json.as_bytes()).ok().flatten()
            );
        }
        let distinct = format!(r#"{{"Event":{{"System":{{}},"EventData":{{{many}"Z":0}}}}}}"#);
        assert_eq!(fast(distinct.as_bytes()).map(|e| e.len()), Some(71));
        assert!(event_from_record_json(b"\xff").is_err());
        assert!(event_from_record_json(b"{\"Event\":").is_err());
        assert!(matches!(
            event_from_record_json(b"{\"Event\":{}}"),
            Ok(None)
        ));
    }
}
