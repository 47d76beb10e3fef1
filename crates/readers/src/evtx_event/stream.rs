//! The streamed part of [`super::fast`]: `{"Event": {…}}` read member by
//! member, `EventData` (most of a record's bytes) flattened straight into
//! the event while it is parsed, without a tree. The small members
//! (`System`, `UserData`, `RenderingInfo`, …) are parsed into a [`J`] tree
//! and read by the tree functions of the parent module, which follow
//! `shape.rs` rule for rule.
//!
//! Any form those rules would read differently when streamed — a member
//! of `Event` before `System`, no `System`, a repeated key, a key with
//! escapes — fails the parse, and the record takes the `Value` path.

use super::{is_xmlns, Conv, J, MAX_DEPTH};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use std::fmt;
use tracehunt_event::Value;

/// A value read and dropped. Parsed in full (numbers range-checked), not
/// with serde's `IgnoredAny`, which skips a number's digits unchecked: a
/// `1e999` the `Value` path refuses must fail here too.
type Skipped<'de> = J<'de>;

type De<'de> = serde_json::Deserializer<serde_json::de::StrRead<'de>>;

/// Reads one rendered record into `c` (fields and `meta`).
pub(super) fn record<'de>(de: &mut De<'de>, c: &mut Conv<'de>) -> Result<(), serde_json::Error> {
    de.deserialize_map(Top { c })
}

/// A borrowed key, checked against the other keys of its object (the
/// `Value` path keeps one member per key; a repeat is not the crate's
/// shape). `start`: where this object's keys begin in `c.keys`; `seen`:
/// this object's [`key_bit`]s so far — the keys are compared only when the
/// new key's bit is already set (an EventData of 20 keys made 190 string
/// comparisons per record; equal keys always share a bit).
fn key<'de, A: MapAccess<'de>>(
    map: &mut A,
    c: &mut Conv<'de>,
    start: usize,
    seen: &mut u64,
) -> Result<Option<&'de str>, A::Error> {
    let Some(k) = map.next_key_seed(BorrowedKey)? else {
        return Ok(None);
    };
    let bit = key_bit(k);
    if *seen & bit != 0 && c.keys[start..].contains(&k) {
        return Err(A::Error::custom("repeated key"));
    }
    *seen |= bit;
    c.keys.push(k);
    Ok(Some(k))
}

/// One of 64 bits for a key, from its length and its first and last bytes.
fn key_bit(k: &str) -> u64 {
    let b = k.as_bytes();
    let (first, last) = (b.first().copied(), b.last().copied());
    let h = b.len().wrapping_mul(31)
        ^ usize::from(first.unwrap_or(0)).wrapping_mul(7)
        ^ usize::from(last.unwrap_or(0));
    1 << (h % 64)
}

/// Maps a tree-rule refusal to a parse error.
fn bail<E: serde::de::Error>(r: super::R<()>) -> Result<(), E> {
    r.map_err(|_| E::custom("left to the Value path"))
}

struct BorrowedKey;

impl<'de> DeserializeSeed<'de> for BorrowedKey {
    type Value = &'de str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'de str, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for BorrowedKey {
    type Value = &'de str;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key without escapes")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<&'de str, E> {
        Ok(s)
    }
}

/// `{"Event": …}` and nothing else.
struct Top<'c, 'de> {
    c: &'c mut Conv<'de>,
}

impl<'de> Visitor<'de> for Top<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{\"Event\": …}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match map.next_key_seed(BorrowedKey)? {
            Some("Event") => map.next_value_seed(EventSeed { c: self.c })?,
            _ => return Err(A::Error::custom("not {\"Event\": …}")),
        }
        match map.next_key_seed(BorrowedKey)? {
            None => Ok(()),
            Some(_) => Err(A::Error::custom("a member beside Event")),
        }
    }
}

/// The `Event` object: `System` first (the `Value` path reads it first
/// wherever it is), then the other members in order.
struct EventSeed<'c, 'de> {
    c: &'c mut Conv<'de>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Event object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.c;
        let (start, mut seen) = (c.keys.len(), 0u64);
        let mut system = false;
        while let Some(k) = key(&mut map, c, start, &mut seen)? {
            match k {
                "#attributes" => {
                    map.next_value::<Skipped>()?;
                }
                "System" => {
                    map.next_value_seed(System { c })?;
                    system = true;
                }
                _ if !system => return Err(A::Error::custom("a member before System")),
                "EventData" => map.next_value_seed(Children { c })?,
                _ if k.ends_with("_attributes") || is_xmlns(k) => {
                    map.next_value::<Skipped>()?;
                }
                _ => {
                    let v = map.next_value::<J<'de>>()?;
                    bail(c.event_member(k, &v))?;
                }
            }
        }
        c.keys.truncate(start);
        if !system {
            return Err(A::Error::custom("no System"));
        }
        c.finish_meta();
        Ok(())
    }
}

/// The `System` object, member by member: `Provider`, `EventID`,
/// `TimeCreated`, `Channel` and `Keywords` through the tree rules
/// (`Conv::system_child`), the others flattened as they are parsed; null
/// members skipped. A member named `…_attributes` (the
/// `separate_json_attributes` form, whose rules look at other members) is
/// left to the `Value` path.
struct System<'c, 'de> {
    c: &'c mut Conv<'de>,
}

impl<'de> DeserializeSeed<'de> for System<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for System<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the System object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.c;
        let (start, mut seen) = (c.keys.len(), 0u64);
        while let Some(k) = key(&mut map, c, start, &mut seen)? {
            match k {
                _ if k.ends_with("_attributes") => {
                    return Err(A::Error::custom("separate attributes form"));
                }
                "Provider" | "EventID" | "TimeCreated" | "Channel" | "Keywords" => {
                    let v = map.next_value::<J<'de>>()?;
                    if !v.is_null() {
                        let member = [(std::borrow::Cow::Borrowed(k), v)];
                        let (k, v) = &member[0];
                        bail(c.system_child(&member, k, v))?;
                    }
                }
                _ => map.next_value_seed(Flatten {
                    c,
                    name: k,
                    depth: 1,
                    skip_null: true,
                })?,
            }
        }
        c.keys.truncate(start);
        Ok(())
    }
}

/// `shape::flatten_children` on a container (`EventData`).
struct Children<'c, 'de> {
    c: &'c mut Conv<'de>,
}

impl<'de> DeserializeSeed<'de> for Children<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Children<'_, 'de> {
    /// `"EventData": scalar`: unnamed data.
    fn data<E: serde::de::Error>(self, v: Value) -> Result<(), E> {
        self.c.push_leaf("Data", v);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Children<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a container")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<(), E> {
        self.data(Value::Bool(b))
    }
    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<(), E> {
        self.data(Value::Int(i))
    }
    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<(), E> {
        self.data(uint(u))
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<(), E> {
        self.data(Value::Float(f))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<(), E> {
        self.data(Value::Str(s.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<J<'de>>()? {
            bail(self.c.flatten_data_items(std::slice::from_ref(&item)))?;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let c = self.c;
        let (start, mut seen) = (c.keys.len(), 0u64);
        while let Some(k) = key(&mut map, c, start, &mut seen)? {
            if k == "#attributes" || k.ends_with("_attributes") || is_xmlns(k) {
                map.next_value::<Skipped>()?;
            } else if k == "#text" || k == "Data" {
                // Maybe an array of `Data` items: read as the tree does.
                let v = map.next_value::<J<'de>>()?;
                bail(match &v {
                    J::Arr(items) => c.flatten_data_items(items),
                    other => c.flatten("Data", other, 1),
                })?;
            } else {
                map.next_value_seed(Flatten {
                    c,
                    name: k,
                    depth: 1,
                    skip_null: false,
                })?;
            }
        }
        c.keys.truncate(start);
        Ok(())
    }
}

/// `shape::scalar` of an unsigned JSON integer.
fn uint(u: u64) -> Value {
    match i64::try_from(u) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::Float(u as f64),
    }
}

/// `shape::flatten(name, value, depth)`.
struct Flatten<'c, 'de> {
    c: &'c mut Conv<'de>,
    name: &'de str,
    depth: usize,
    /// A null value itself pushes nothing (a null member of `System`);
    /// nulls inside it do.
    skip_null: bool,
}

impl<'de> DeserializeSeed<'de> for Flatten<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.depth > MAX_DEPTH {
            <Skipped as serde::Deserialize>::deserialize(d)?;
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

impl<'de> Flatten<'_, 'de> {
    fn leaf<E>(self, v: Value) -> Result<(), E> {
        self.c.push_leaf(self.name, v);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Flatten<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        if self.skip_null {
            return Ok(());
        }
        self.leaf(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.leaf(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<(), E> {
        self.leaf(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<(), E> {
        self.leaf(uint(u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        self.leaf(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.leaf(Value::Str(s.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (c, name, depth) = (self.c, self.name, self.depth);
        c.in_array += 1;
        while seq
            .next_element_seed(Flatten {
                c,
                name,
                depth: depth + 1,
                skip_null: false,
            })?
            .is_some()
        {}
        c.in_array -= 1;
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (c, name, depth) = (self.c, self.name, self.depth);
        let (start, mut seen) = (c.keys.len(), 0u64);
        while let Some(k) = key(&mut map, c, start, &mut seen)? {
            match k {
                "#attributes" => map.next_value_seed(Attributes { c, depth })?,
                "#text" => map.next_value_seed(Flatten {
                    c,
                    name,
                    depth: depth + 1,
                    skip_null: false,
                })?,
                _ if is_xmlns(k) => {
                    map.next_value::<Skipped>()?;
                }
                _ => map.next_value_seed(Flatten {
                    c,
                    name: k,
                    depth: depth + 1,
                    skip_null: false,
                })?,
            }
        }
        c.keys.truncate(start);
        Ok(())
    }
}

/// An `#attributes` member inside a flattened value: each attribute but
/// `xmlns` as a field; anything but an object is ignored.
struct Attributes<'c, 'de> {
    c: &'c mut Conv<'de>,
    /// The depth of the object holding `#attributes` (its attributes are
    /// flattened one deeper, as `shape::flatten` does).
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Attributes<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Attributes<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("attributes")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Skipped>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (c, depth) = (self.c, self.depth);
        let (start, mut seen) = (c.keys.len(), 0u64);
        while let Some(k) = key(&mut map, c, start, &mut seen)? {
            if is_xmlns(k) {
                map.next_value::<Skipped>()?;
            } else {
                map.next_value_seed(Flatten {
                    c,
                    name: k,
                    depth: depth + 1,
                    skip_null: false,
                })?;
            }
        }
        c.keys.truncate(start);
        Ok(())
    }
}
