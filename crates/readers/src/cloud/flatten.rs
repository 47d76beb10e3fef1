//! Nested JSON → fields named by their full dotted path, with caps.

use crate::caps::{Budget, MAX_FIELDS, MAX_NAME_BYTES};
use serde_json::{Map, Value as J};
use tracehunt_event::{Event, Value};

/// Nesting deeper than this (below the record's top level) is not
/// flattened further: the subtree is kept as one field holding its compact
/// JSON text (cut to [`MAX_TEXT`] bytes), so nothing is silently lost and
/// a hostile 10,000-level value cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// The longest JSON text kept for a subtree past [`MAX_DEPTH`].
const MAX_TEXT: usize = 4096;

pub use crate::caps::DROPPED_FIELD;

/// Flattens records into one event under the caps ([`Budget`]: at most
/// 10,000 fields and 1 MiB of names per event).
pub(crate) struct Flattener<'e> {
    pub(crate) ev: &'e mut Event,
    budget: Budget,
}

impl<'e> Flattener<'e> {
    pub(crate) fn new(ev: &'e mut Event) -> Self {
        Flattener {
            ev,
            budget: Budget::default(),
        }
    }

    /// Every top-level key of `obj`, flattened under its own name.
    pub(crate) fn object(&mut self, obj: &Map<String, J>) {
        for (k, v) in obj {
            self.value(k, v, 0);
        }
    }

    /// `v` under `path`: objects by `path.key`, arrays as repeated fields
    /// under `path` (objects inside arrays flattened under it too), scalars
    /// typed, `null` as [`Value::Null`]. Empty objects and arrays add no
    /// field.
    pub(crate) fn value(&mut self, path: &str, v: &J, depth: usize) {
        if depth > MAX_DEPTH && (v.is_object() || v.is_array()) {
            let mut text = v.to_string();
            if text.len() > MAX_TEXT {
                let mut cut = MAX_TEXT;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            self.push(path, Value::Str(text));
            return;
        }
        match v {
            J::Object(m) => {
                for (k, c) in m {
                    if self.full() || path.len() + k.len() >= MAX_NAME_BYTES {
                        self.budget.dropped += count_leaves(c, 0);
                        continue;
                    }
                    let name = format!("{path}.{k}");
                    self.value(&name, c, depth + 1);
                }
            }
            J::Array(a) => {
                for x in a {
                    if self.full() {
                        self.budget.dropped += count_leaves(x, 0);
                        continue;
                    }
                    self.value(path, x, depth + 1);
                }
            }
            s => self.push(path, scalar(s)),
        }
    }

    fn full(&self) -> bool {
        self.budget.full() || self.ev.len() >= MAX_FIELDS
    }

    pub(crate) fn push(&mut self, name: &str, v: Value) {
        if self.ev.len() >= MAX_FIELDS {
            self.budget.dropped += 1;
        } else {
            self.budget.push(self.ev, name, v);
        }
    }

    /// Adds [`DROPPED_FIELD`] when fields were dropped.
    pub(crate) fn finish(self) {
        self.budget.finish(self.ev);
    }
}

/// How many scalar leaves `v` holds (what flattening it would push),
/// bounded in depth like the flattener.
fn count_leaves(v: &J, depth: usize) -> u64 {
    if depth > MAX_DEPTH {
        return 1;
    }
    match v {
        J::Object(m) => m.values().map(|c| count_leaves(c, depth + 1)).sum(),
        J::Array(a) => a.iter().map(|c| count_leaves(c, depth + 1)).sum(),
        _ => 1,
    }
}

/// A JSON scalar as a typed [`Value`].
pub(crate) fn scalar(v: &J) -> Value {
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::Str(s.clone()),
        other => Value::Str(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(v: J) -> Event {
        let mut ev = Event::default();
        let mut f = Flattener::new(&mut ev);
        f.object(v.as_object().unwrap());
        f.finish();
        ev
    }

    #[test]
    fn dotted_paths_arrays_and_types() {
        let ev = flat(
            json!({"a": {"b": 1, "c": [true, {"d": 1.5}], "e": null, "f": {}},
            "g": [["x"], "y"], "h": "075.050.255.67"}),
        );
        let got: Vec<(String, String)> = ev
            .fields()
            .map(|(k, v)| (k.to_owned(), format!("{v:?}")))
            .collect();
        assert_eq!(
            got,
            [
                ("a.b".into(), "Int(1)".into()),
                ("a.c".into(), "Bool(true)".into()),
                ("a.c.d".into(), "Float(1.5)".into()),
                ("a.e".into(), "Null".into()),
                ("g".into(), "Str(\"x\")".into()),
                ("g".into(), "Str(\"y\")".into()),
                ("h".into(), "Str(\"075.050.255.67\")".into()),
            ]
        );
    }

    #[test]
    fn deep_value_is_kept_as_text_past_the_depth_cap() {
        let mut v = json!("leaf");
        for _ in 0..200 {
            v = json!({ "k": v });
        }
        let ev = flat(json!({ "deep": v }));
        assert_eq!(ev.len(), 1);
        let (name, value) = ev.fields().next().unwrap();
        assert_eq!(name.matches(".k").count(), MAX_DEPTH + 1);
        assert!(value.as_str().unwrap().starts_with("{\"k\":{\"k\""));
        assert!(value.as_str().unwrap().len() <= MAX_TEXT);
    }

    #[test]
    fn huge_array_is_capped_and_counted() {
        let big: Vec<u32> = (0..25_000).collect();
        let ev = flat(json!({ "a": 1, "big": big, "z": {"y": [1, 2]} }));
        assert_eq!(ev.len(), MAX_FIELDS + 1);
        assert_eq!(
            ev.first(DROPPED_FIELD),
            Some(&Value::Int(25_000 + 3 - MAX_FIELDS as i64))
        );
    }
}
