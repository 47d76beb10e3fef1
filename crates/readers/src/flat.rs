//! The fast path for one JSON-lines record in the Mordor / nxlog flat shape
//! (issue #22 item 3: JSON-lines parse-only was half of a hunt's time).
//!
//! [`parse_top`] parses an object's top-level members into an ordered list
//! instead of a `serde_json::Map` (an `IndexMap` hashing every key with
//! SipHash); [`flat_event`] turns that list into the [`Event`] that
//! [`shape::event_from_json_value`](crate::shape::event_from_json_value)
//! gives for the same object, moving the top-level strings into the event
//! instead of copying them. It takes only objects whose shape is certainly
//! flat — an `EventID` member, no duplicate names, and none of the members
//! that select another shape or an envelope (`Event`, `System`, `winlog`,
//! `Records`, `records`, the wire mark) — and gives every other object back
//! as the `serde_json::Value` the general path reads, built from the same
//! members in the same order (duplicates resolved as `serde_json` does: the
//! last value, at the first name's place). `tests/flat_fast_path.rs`
//! compares both paths on every Mordor record.

use crate::shape;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value as J;
use tracehunt_event::{Event, Value};

/// An object's top-level members in document order (duplicates kept).
pub(crate) struct Top(pub(crate) Vec<(String, J)>);

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Top, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(32));
                while let Some(kv) = m.next_entry::<String, J>()? {
                    out.push(kv);
                }
                Ok(Top(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `buf` (one JSON value whose first non-blank byte is `{`) parsed as an
/// object's members; `None` when it is not one valid JSON object (the
/// caller then parses it the general way, for the same error text).
pub(crate) fn parse_top(buf: &[u8]) -> Option<Top> {
    serde_json::from_slice::<Top>(buf).ok()
}

/// Members whose presence selects another shape (or an envelope) in
/// `shape::event_from_json_value` / `cloud::envelope`.
const OTHER_SHAPES: [&str; 6] = [
    crate::wire::MARK,
    "Event",
    "System",
    "winlog",
    "Records",
    "records",
];

/// The event of a flat-shaped object, or the object itself as a
/// `serde_json::Value` when it is not certainly flat (see the module doc).
pub(crate) fn flat_event(top: Top) -> Result<Event, J> {
    let Top(members) = top;
    if !is_flat(&members) {
        return Err(J::Object(members.into_iter().collect()));
    }
    let get = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    // What is read after the members are moved into the event.
    let aliases: Vec<(&str, J)> = shape::FLAT_ALIASES
        .iter()
        .filter(|(canon, _)| get(canon).is_none())
        .filter_map(|(canon, src)| Some((*canon, get(src).filter(|v| !v.is_null())?.clone())))
        .collect();
    let ts = ["@timestamp", "TimeCreated", "timestamp"]
        .iter()
        .find_map(|k| get(k).and_then(J::as_str).and_then(shape::parse_time));
    shape::begin_event();
    let mut ev = Event::default();
    for (k, v) in members {
        match (k.as_str(), v) {
            ("EventID" | "Channel" | "Keywords", v) => shape::flat_member(&mut ev, &k, &v),
            (_, J::String(s)) => ev.push(k, Value::Str(s)),
            (_, v) => shape::flat_member(&mut ev, &k, &v),
        }
    }
    for (canon, v) in &aliases {
        shape::flat_member(&mut ev, canon, v);
    }
    Ok(shape::end_flat_event(ev, ts))
}

fn is_flat(members: &[(String, J)]) -> bool {
    let mut names: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
    if !names.contains(&"EventID") || names.iter().any(|k| OTHER_SHAPES.contains(k)) {
        return false;
    }
    names.sort_unstable();
    names.windows(2).all(|w| w[0] != w[1])
}
