//! JSON records that are not Windows events (issue #21): each format's
//! recogniser is tried in turn on an object no Windows shape claimed.
//!
//! Order matters only where shapes could overlap: Linux rows first (a
//! Sentinel `Syslog` row carrying Sysmon-for-Linux XML), then Zeek (`_path`
//! / `uid` + `id.orig_h`), then the cloud audit shapes.

use serde_json::{Map, Value as J};
use tracehunt_event::Event;

/// The event a non-Windows JSON object stands for, or `None` when no
/// reader knows its shape.
pub(crate) fn from_object(obj: &Map<String, J>) -> Option<Event> {
    crate::syslog::event_from_json(obj)
        .or_else(|| crate::zeek::event_from_json(obj))
        .or_else(|| crate::cloud::event_from_json(obj))
}
