//! Zeek JSON records: corelight json-streaming-logs / zed form (flat dotted
//! keys, `_path`, ISO-8601 `ts`) and the OTRF / SimpleRock form
//! (`@stream`, `@system`, `@proc`, dots written as underscores, epoch `ts`).

use super::{channel_for, epoch_time};
use crate::caps::{Budget, MAX_NAME_BYTES};
use serde_json::{Map, Value as J};
use tracehunt_event::{Event, EventMeta, Value};

/// The Zeek log a JSON object belongs to: `_path` (zed, corelight), or
/// `@stream` when `@proc` is `zeek` or the record has a `uid` (OTRF). Both
/// need a `ts`. Anything else is not claimed.
fn log_path(obj: &Map<String, J>) -> Option<&str> {
    if !obj.contains_key("ts") {
        return None;
    }
    if let Some(J::String(p)) = obj.get("_path") {
        return Some(p);
    }
    match obj.get("@stream") {
        Some(J::String(p))
            if obj.get("@proc").and_then(J::as_str) == Some("zeek") || obj.contains_key("uid") =>
        {
            Some(p)
        }
        _ => None,
    }
}

/// Zeek's dotted name of an OTRF underscore key, for the record fields
/// Zeek writes with a dot: `id.*` (conn id), `certificate.*`, `san.*`,
/// `basic_constraints.*` (x509) and `times.*` (smb_files). Other keys keep
/// their name (`qtype_name`, `request_body_len` have real underscores).
fn dotted(key: &str) -> Option<String> {
    const PREFIXES: [&str; 4] = ["certificate_", "san_", "basic_constraints_", "times_"];
    if matches!(key, "id_orig_h" | "id_orig_p" | "id_resp_h" | "id_resp_p") {
        return Some(key.replacen('_', ".", 1));
    }
    PREFIXES.iter().find_map(|p| {
        key.strip_prefix(p)
            .map(|rest| format!("{}.{rest}", &p[..p.len() - 1]))
    })
}

fn scalar(v: &J) -> Option<Value> {
    Some(match v {
        J::Null => return None,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        J::String(s) => Value::Str(s.clone()),
        other => Value::Str(other.to_string()),
    })
}

/// Pushes `v` under `name` (arrays as repeated fields, objects by dotted
/// names) within the event's [`Budget`]. Nested objects deeper than
/// [`MAX_DEPTH`] are kept as one field of their JSON text.
fn push(ev: &mut Event, b: &mut Budget, name: &str, v: &J, depth: usize) {
    match v {
        J::Array(items) => {
            for it in items {
                if let Some(x) = scalar(it) {
                    b.push(ev, name, x);
                }
            }
        }
        J::Object(m) if depth < MAX_DEPTH => {
            for (k, v) in m {
                if b.full() || name.len() + k.len() >= MAX_NAME_BYTES {
                    b.dropped += 1;
                    continue;
                }
                push(ev, b, &format!("{name}.{k}"), v, depth + 1);
            }
        }
        other => {
            if let Some(x) = scalar(other) {
                b.push(ev, name, x);
            }
        }
    }
}

/// Nesting past this many object levels is not flattened further (Zeek
/// records nest two or three levels).
const MAX_DEPTH: usize = 32;

/// See [`super::event_from_json`].
pub(super) fn event(obj: &Map<String, J>) -> Option<Event> {
    let path = log_path(obj)?;
    let mut ev = Event::with_meta(EventMeta {
        channel: Some(channel_for(path)),
        ..EventMeta::default()
    });
    ev.meta.timestamp = match obj.get("ts") {
        Some(J::String(s)) => epoch_time(s).or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        }),
        Some(J::Number(n)) => epoch_time(&n.to_string()),
        _ => None,
    };
    let mut b = Budget::default();
    for (k, v) in obj {
        match dotted(k) {
            Some(d) if !obj.contains_key(&d) => push(&mut ev, &mut b, &d, v, 0),
            _ => push(&mut ev, &mut b, k, v, 0),
        }
    }
    b.finish(&mut ev);
    ev.meta.computer = ev
        .first("id.orig_h")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otrf_names() {
        assert_eq!(dotted("id_resp_h").as_deref(), Some("id.resp_h"));
        assert_eq!(
            dotted("certificate_serial").as_deref(),
            Some("certificate.serial")
        );
        assert_eq!(
            dotted("basic_constraints_ca").as_deref(),
            Some("basic_constraints.ca")
        );
        assert_eq!(dotted("times_modified").as_deref(), Some("times.modified"));
        assert_eq!(dotted("qtype_name"), None);
        assert_eq!(dotted("id"), None);
        assert_eq!(dotted("id_foo"), None);
    }

    #[test]
    fn unclaimed_objects() {
        let o = |s: &str| serde_json::from_str::<Map<String, J>>(s).unwrap();
        assert!(event(&o(r#"{"_path":"dns"}"#)).is_none());
        assert!(event(&o(r#"{"@stream":"dns","ts":1}"#)).is_none());
        assert!(event(&o(r#"{"eventName":"x","ts":1}"#)).is_none());
        let ev = event(&o(
            r#"{"@stream":"dns","@proc":"zeek","ts":1.5,"id_orig_h":"10.0.0.1"}"#,
        ))
        .unwrap();
        assert_eq!(ev.meta.channel.as_deref(), Some("zeek:dns"));
        assert_eq!(ev.meta.computer.as_deref(), Some("10.0.0.1"));
        assert_eq!(ev.meta.timestamp.unwrap().timestamp_millis(), 1500);
    }
}
