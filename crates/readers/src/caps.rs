//! Per-event caps on what flattening may add (breaker findings, issue #21).
//!
//! A JSON array (or a Zeek `set[…]`/`vector[…]`) becomes one field per
//! element, each carrying the array's name: names are copied once per
//! element, so a 1 MB record with a 1 MiB key over 3,000 elements took
//! 3.1 GB (cloud and Zeek JSON), and a 1 MB Zeek TSV line with a 500 KB
//! column name over 250,000 set elements aborted at 7.5 GB. A [`Budget`]
//! bounds the fields and the name bytes one event may get; what it refuses
//! is counted and reported in the field [`DROPPED_FIELD`].

use tracehunt_event::{Event, Value};

/// At most this many fields per event from a budgeted flattening. Beyond
/// it, fields are dropped and counted in [`DROPPED_FIELD`] (a huge
/// `requestParameters` array of a `RunInstances` call must not make one
/// event of millions of fields).
pub(crate) const MAX_FIELDS: usize = 10_000;

/// At most this many bytes of field names per event (1 MiB): names are
/// copied per field, so without it a long name repeated over an array's
/// elements multiplies memory.
pub(crate) const MAX_NAME_BYTES: usize = 1 << 20;

/// Field added (an [`Value::Int`]) when flattening a record reached a cap
/// ([`MAX_FIELDS`] fields or [`MAX_NAME_BYTES`] bytes of names): how many
/// fields of the record were dropped.
pub const DROPPED_FIELD: &str = "tracehunt.dropped_fields";

/// What one event may still take.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Budget {
    fields: usize,
    name_bytes: usize,
    /// Fields refused so far.
    pub(crate) dropped: u64,
}

impl Budget {
    /// Whether a field named `name` fits; counts it either way (taken or
    /// dropped).
    pub(crate) fn admit(&mut self, name: &str) -> bool {
        if self.fields >= MAX_FIELDS || self.name_bytes + name.len() > MAX_NAME_BYTES {
            self.dropped += 1;
            false
        } else {
            self.fields += 1;
            self.name_bytes += name.len();
            true
        }
    }

    /// Whether nothing more fits (a name of a few bytes would be refused).
    pub(crate) fn full(&self) -> bool {
        self.fields >= MAX_FIELDS || self.name_bytes >= MAX_NAME_BYTES
    }

    /// Pushes `v` under `name` when it fits.
    pub(crate) fn push(&mut self, ev: &mut Event, name: &str, v: Value) {
        if self.admit(name) {
            ev.push(name, v);
        }
    }

    /// Adds [`DROPPED_FIELD`] to `ev` when fields were dropped.
    pub(crate) fn finish(self, ev: &mut Event) {
        if self.dropped > 0 {
            let n = i64::try_from(self.dropped).unwrap_or(i64::MAX);
            ev.push(DROPPED_FIELD, Value::Int(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fields_are_both_capped() {
        let mut b = Budget::default();
        let long = "K".repeat(MAX_NAME_BYTES / 2 + 1);
        assert!(b.admit(&long));
        assert!(!b.admit(&long), "two long names exceed the name bytes");
        assert!(b.admit("short"));
        let mut b = Budget::default();
        for _ in 0..MAX_FIELDS {
            assert!(b.admit("f"));
        }
        assert!(b.full());
        assert!(!b.admit("f"));
        assert_eq!(b.dropped, 1);
        let mut ev = Event::default();
        b.finish(&mut ev);
        assert_eq!(ev.first(DROPPED_FIELD), Some(&Value::Int(1)));
    }
}
