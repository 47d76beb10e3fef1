//! JSON record → [`Event`]: shape detection and Sigma field naming.
//!
//! Three shapes are recognised, per record:
//!
//! * **evtx-JSON** — what the `evtx` crate (and `evtx_dump -o json`) renders:
//!   `{"Event": {"System": {...}, "EventData": {...} | "UserData": {...}}}`.
//!   Also accepted without the `Event` wrapper, and with
//!   `separate_json_attributes` (`Provider_attributes`, …). Velociraptor's
//!   `parse_evtx` rows are this shape without the wrapper and without
//!   `#attributes`: `System.Provider.Name`, `System.EventID.Value`,
//!   `System.TimeCreated.SystemTime` in epoch seconds, `EventData` as a map
//!   (or `Data` as a list of `Name`/`Value` items), a top-level `Message`.
//! * **Winlogbeat / ECS** — a top-level `winlog` object
//!   (`winlog.event_data.*`, `winlog.event_id`, `winlog.channel`, …).
//! * **Mordor / nxlog flat** — a top-level `EventID` with System and
//!   EventData fields side by side (`Channel`, `Hostname`, `SourceName`, …).

use crate::caps::Budget;
use crate::channel::canonical_channel;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Map, Value as J};
use tracehunt_event::{Event, EventMeta, Value};

/// Nesting deeper than this is dropped instead of flattened (guards
/// hand-built values; parsed JSON is already limited to 128 levels).
const MAX_DEPTH: usize = 64;

/// Turns one JSON record into an [`Event`], detecting its shape.
///
/// Recognised shapes, tried in this order:
///
/// 1. **evtx-JSON** (the `evtx` crate's rendering, as in SigmaHQ
///    `regression_data/**/*.json`): an object with `Event.System` (or a
///    top-level `System`). System children are named by leaf
///    (`EventID`, `Channel`, `Computer`, `Level`, `Task`, `Opcode`,
///    `Keywords`, `Version`, `EventRecordID`), plus `Provider_Name`,
///    `Provider_Guid`, `Provider_EventSourceName`, `TimeCreated` (the
///    `SystemTime` string), `ProcessID`/`ThreadID` (and other `Execution`
///    attributes), `ActivityID`/`RelatedActivityID`, and `UserID` (from
///    `Security/@UserID`). `EventData` and `UserData/<Wrapper>` children are
///    named by leaf; unnamed `Data` items become repeated `Data` fields;
///    `#text` takes its parent's name; `xmlns` attributes are dropped;
///    `RenderingInfo` contributes only `Message`. Velociraptor's
///    `parse_evtx` rows read the same way: System children without
///    `#attributes` (`Provider.Name` → `Provider_Name`), `EventID.Value`,
///    `TimeCreated.SystemTime` in epoch seconds (rendered as RFC 3339 text,
///    UTC), a numeric `Keywords` as `0x…` hex, `Data` lists of
///    `{"Name": …, "Value": …}` items as named fields, and a top-level
///    non-empty `Message`.
/// 2. **Winlogbeat / ECS**: an object with a `winlog` object.
///    `winlog.event_data.*` and `winlog.user_data.*` by leaf;
///    `EventID` from `winlog.event_id` (else `event.code`), `Channel`,
///    `Provider_Name`, `Provider_Guid`, `Computer` (`winlog.computer_name`,
///    else `host.name`/`host.hostname`), `EventRecordID`, `ProcessID`,
///    `ThreadID`, `UserID`, `Task`, `Opcode`, `Version`, `Keywords`,
///    `Message`, and `TimeCreated` from `winlog.time_created` or
///    `@timestamp`.
/// 3. **Mordor / nxlog flat**: an object with a top-level `EventID`. Every
///    top-level key becomes a field (nested values flattened by leaf), with
///    `Keywords` numbers rendered as `0x…` hex like EVTX does, plus the
///    aliases `Computer` (from `Hostname`), `Provider_Name` (`SourceName`),
///    `Provider_Guid` (`ProviderGuid`), `EventRecordID` (`RecordNumber`) and
///    `ProcessID` (`ExecutionProcessID`) when absent.
///
/// In every shape `EventID` becomes a [`Value::Int`] when it is numeric
/// (qualifiers dropped), `Channel` is rewritten by [`canonical_channel`],
/// and [`Event::meta`] is filled from the same values (timestamp parsed as
/// UTC from `TimeCreated`/`@timestamp`). `meta.record_id` is left `None`
/// when the record has no record id; the file readers then set it.
///
/// An event labelled `Channel: ForwardedEvents` (a WEF collector's log)
/// whose provider tells its source channel
/// ([`FORWARDED_SOURCES`](crate::FORWARDED_SOURCES)) gets that channel, in
/// `Channel` and `meta.channel`, and keeps the label as `CollectorChannel`.
///
/// A wire object (`"tracehunt_event": 1`, [`crate::wire`]: what `tracehunt
/// publish` sends) is decoded exactly as encoded, without any of the above.
///
/// Returns `None` for anything else (not an object, no known shape, or a
/// wire object that does not decode).
pub fn event_from_json_value(v: &J) -> Option<Event> {
    let obj = v.as_object()?;
    if obj.contains_key(crate::wire::MARK) {
        // Already a reader's event (`tracehunt publish`): exactly as sent.
        return crate::wire::from_value(v).ok();
    }
    REPEATS.set(Repeats::default());
    let mut ev = match obj.get("Event") {
        Some(J::Object(e)) if e.get("System").is_some_and(J::is_object) => from_evtx_json(e),
        _ if obj.get("System").is_some_and(J::is_object) => from_evtx_json(obj),
        _ => match obj.get("winlog") {
            Some(J::Object(w)) => from_winlogbeat(obj, w),
            _ if obj.contains_key("EventID") => from_flat(obj),
            _ => return crate::foreign::from_object(obj),
        },
    };
    REPEATS.get().budget.finish(&mut ev);
    Some(crate::channel::unforward(ev))
}

/// Every record of one JSON value, as the JSON-lines reader reads a line
/// holding it: an object is one event (any shape [`event_from_json_value`]
/// knows); a `{"Records": […]}` envelope gives its elements; an array gives
/// its objects, nested arrays read through. Each element that is no event
/// is one `Err` naming its place and what it is. For the live mode (issue
/// #21, breaker finding: `watch` rejected an envelope line or an array line
/// that `hunt` reads).
pub fn records_of_json_value(v: J) -> Vec<Result<Event, String>> {
    let mut out = Vec::new();
    records_into(v, None, 0, &mut out);
    out
}

/// `place`: where `v` is ("element 3 of the JSON array"), `None` at the top.
fn records_into(
    mut v: J,
    place: Option<String>,
    depth: usize,
    out: &mut Vec<Result<Event, String>>,
) {
    let named = |what: String| match &place {
        Some(p) => format!("{p} is {what}, not an event object"),
        None => format!("{what} where an event object was expected"),
    };
    match v {
        J::Array(items) if depth < MAX_DEPTH => {
            for (i, x) in items.into_iter().enumerate() {
                records_into(
                    x,
                    Some(format!("element {i} of the JSON array")),
                    depth + 1,
                    out,
                );
            }
        }
        J::Object(_) => match crate::cloud::envelope(&mut v) {
            Some(items) => {
                for (i, x) in items.into_iter().enumerate() {
                    let place = format!("element {i} of the Records envelope");
                    match x {
                        J::Object(_) => out.push(event_from_json_value(&x).ok_or_else(|| {
                            format!("{place}: {}", crate::json_reader::UNRECOGNISED)
                        })),
                        other => out.push(Err(format!(
                            "{place} is {}, not an event object",
                            crate::json_reader::kind_of(&other)
                        ))),
                    }
                }
            }
            None => out.push(event_from_json_value(&v).ok_or_else(|| match &place {
                Some(p) => format!("{p}: {}", crate::json_reader::UNRECOGNISED),
                None => crate::json_reader::UNRECOGNISED.to_owned(),
            })),
        },
        other => out.push(Err(named(crate::json_reader::kind_of(&other).to_owned()))),
    }
}

/// Converts a JSON scalar to a [`Value`] (objects/arrays are handled by the
/// flattener and never reach here).
fn scalar(v: &J) -> Value {
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

fn is_xmlns(attr: &str) -> bool {
    attr == "xmlns" || attr.starts_with("xmlns:")
}

/// Pushes `v` under `name`, flattening objects to their leaf names and
/// arrays to repeated fields. `#attributes` children are leaves too (minus
/// `xmlns`), `#text` takes the parent's name.
fn flatten(ev: &mut Event, name: &str, v: &J, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        J::Object(m) => {
            for (k, c) in m {
                match k.as_str() {
                    "#attributes" => {
                        if let J::Object(a) = c {
                            for (ak, av) in a {
                                if !is_xmlns(ak) {
                                    flatten(ev, ak, av, depth + 1);
                                }
                            }
                        }
                    }
                    "#text" => flatten(ev, name, c, depth + 1),
                    _ if is_xmlns(k) => {}
                    _ => flatten(ev, k, c, depth + 1),
                }
            }
        }
        J::Array(a) => {
            let r = REPEATS.get();
            REPEATS.set(Repeats {
                in_array: r.in_array + 1,
                ..r
            });
            for x in a {
                flatten(ev, name, x, depth + 1);
            }
            let r = REPEATS.get();
            REPEATS.set(Repeats {
                in_array: r.in_array - 1,
                ..r
            });
        }
        s => {
            let mut r = REPEATS.get();
            if r.in_array == 0 {
                ev.push(name, scalar(s));
            } else {
                r.budget.push(ev, name, scalar(s));
                REPEATS.set(r);
            }
        }
    }
}

/// The fields pushed from inside JSON arrays, whose names repeat once per
/// element, are capped per event by a [`Budget`] (breaker finding, issue
/// #21: a 1 MiB key over 3,000 array elements took 3.1 GB); the other
/// fields each come from a key of the record, so they are bounded by its
/// size. Kept per thread for the event being converted.
#[derive(Clone, Copy, Default)]
struct Repeats {
    /// Arrays open around the value being flattened.
    in_array: u32,
    budget: Budget,
}

thread_local! {
    static REPEATS: std::cell::Cell<Repeats> = std::cell::Cell::new(Repeats::default());
}

/// Flattens the children of a container (`EventData`, a `UserData`
/// wrapper, `winlog.event_data`), ignoring the container's own attributes
/// (`<EventData Name="…">`, `xmlns`).
fn flatten_children(ev: &mut Event, container: &J) {
    match container {
        J::Object(m) => {
            for (k, c) in m {
                if k == "#attributes" || k.ends_with("_attributes") || is_xmlns(k) {
                    continue;
                }
                // `#text` directly under EventData: unnamed text content.
                let name = if k == "#text" { "Data" } else { k.as_str() };
                match c {
                    J::Array(items) if name == "Data" => flatten_data_items(ev, items),
                    _ => flatten(ev, name, c, 1),
                }
            }
        }
        J::Null => {}
        J::Array(items) => flatten_data_items(ev, items),
        // `"EventData": "text"`: unnamed data.
        other => flatten(ev, "Data", other, 1),
    }
}

/// `<Data Name="X">v</Data>` items as a list of `{"Name": "X", "Value": v}`
/// objects (Velociraptor's `parse_evtx` when it does not turn them into a
/// map; also `""` or `#text` for the value): each is the field `X`. Any
/// other item is unnamed data, as before.
fn flatten_data_items(ev: &mut Event, items: &[J]) {
    for item in items {
        match named_item(item) {
            Some((name, value)) => match value {
                Some(v) => flatten(ev, name, v, 2),
                None => ev.push(name, Value::Null),
            },
            None => flatten(ev, "Data", item, 2),
        }
    }
}

/// A `{"Name": "X", "Value": v}` item (value also under `""` or `#text`,
/// or absent): its name and value.
fn named_item(item: &J) -> Option<(&str, Option<&J>)> {
    let m = item.as_object()?;
    let name = m.get("Name")?.as_str().filter(|n| !n.trim().is_empty())?;
    let mut value = None;
    for (k, v) in m {
        match k.as_str() {
            "Name" => {}
            "Value" | "" | "#text" if value.is_none() => value = Some(v),
            _ => return None,
        }
    }
    Some((name, value))
}

/// The attributes map of a System child: `X.#attributes`, or the value of
/// `X_attributes` (separate_json_attributes form).
fn attrs<'a>(sys: &'a Map<String, J>, key: &str) -> Option<&'a Map<String, J>> {
    if let Some(J::Object(a)) = sys.get(key).and_then(|x| x.get("#attributes")) {
        return Some(a);
    }
    match sys.get(&format!("{key}_attributes")) {
        Some(J::Object(a)) => Some(a),
        _ => None,
    }
}

/// `EventID` as an integer: JSON number, numeric string, `{"#text": …}`
/// (the `evtx` crate) or `{"Value": …}` (Velociraptor). Qualifiers are
/// dropped; values beyond 16 bits keep their low 16 bits.
fn event_id_value(v: &J) -> Option<Value> {
    let inner = match v {
        J::Object(m) => m.get("#text").or_else(|| m.get("Value"))?,
        other => other,
    };
    let n = match inner {
        J::Number(n) => n.as_i64(),
        J::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=i64::from(u32::MAX)).contains(&n) => Some(Value::Int(n & 0xFFFF)),
        Some(n) => Some(Value::Int(n)),
        None if inner.is_null() => None,
        None => Some(scalar(inner)),
    }
}

fn push_channel(ev: &mut Event, v: &J) {
    match v {
        J::String(s) => ev.push("Channel", Value::Str(canonical_channel(s).to_owned())),
        J::Null => {}
        other => ev.push("Channel", scalar(other)),
    }
}

fn from_evtx_json(e: &Map<String, J>) -> Event {
    let mut ev = Event::default();
    if let Some(J::Object(sys)) = e.get("System") {
        for (k, v) in sys {
            if v.is_null() {
                continue;
            }
            match k.as_str() {
                "Provider" | "Provider_attributes" => {
                    if k == "Provider_attributes" && sys.contains_key("Provider") {
                        continue;
                    }
                    // Velociraptor: `"Provider": {"Name": …, "Guid": …}`.
                    if let Some(a) = attrs(sys, "Provider").or_else(|| plain_attrs(v)) {
                        for (ak, av) in a {
                            if !is_xmlns(ak) && !av.is_null() {
                                flatten(&mut ev, &format!("Provider_{ak}"), av, 2);
                            }
                        }
                    }
                }
                "EventID" => {
                    if let Some(id) = event_id_value(v) {
                        ev.push("EventID", id);
                    }
                }
                "EventID_attributes" => {}
                "TimeCreated" | "TimeCreated_attributes" => {
                    if k == "TimeCreated_attributes" && sys.contains_key("TimeCreated") {
                        continue;
                    }
                    let system_time = attrs(sys, "TimeCreated")
                        .or_else(|| plain_attrs(v))
                        .and_then(|a| a.get("SystemTime"));
                    match system_time {
                        // Velociraptor: epoch seconds.
                        Some(J::Number(n)) => match epoch_time(n) {
                            Some(t) => ev.push(
                                "TimeCreated",
                                Value::Str(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                            ),
                            None => ev.push("TimeCreated", scalar(&J::Number(n.clone()))),
                        },
                        Some(t) => flatten(&mut ev, "TimeCreated", t, 2),
                        None => flatten(&mut ev, "TimeCreated", v, 2),
                    }
                }
                "Channel" => push_channel(&mut ev, v),
                // Velociraptor writes the 64-bit mask as a number; EVTX renders it as hex.
                "Keywords" if v.is_number() => {
                    match v.as_u64().or_else(|| v.as_i64().map(|i| i as u64)) {
                        Some(k) => ev.push("Keywords", Value::Str(format!("0x{k:x}"))),
                        None => flatten(&mut ev, "Keywords", v, 1),
                    }
                }
                _ => {
                    let base = k.strip_suffix("_attributes").unwrap_or(k);
                    flatten(&mut ev, base, v, 1);
                }
            }
        }
    }
    for (k, v) in e {
        match k.as_str() {
            "System" | "#attributes" => {}
            "EventData" => flatten_children(&mut ev, v),
            "UserData" => match v {
                // UserData.<Wrapper>.<Field> → <Field>
                J::Object(m) => {
                    for (wk, w) in m {
                        if wk != "#attributes" && !is_xmlns(wk) {
                            flatten_children(&mut ev, w);
                        }
                    }
                }
                other => flatten_children(&mut ev, other),
            },
            "RenderingInfo" => {
                if let Some(m) = v.get("Message") {
                    flatten(&mut ev, "Message", m, 1);
                }
            }
            // Velociraptor: the rendered message beside System ("" without
            // a message database).
            "Message" => {
                if !v.is_null() && v.as_str().is_none_or(|m| !m.is_empty()) {
                    flatten(&mut ev, "Message", v, 1);
                }
            }
            _ if k.ends_with("_attributes") || is_xmlns(k) => {}
            // ProcessingErrorData, DebugData, BinaryEventData, …
            _ => flatten_children(&mut ev, v),
        }
    }
    let ts = ev
        .first("TimeCreated")
        .and_then(|t| t.as_str())
        .and_then(parse_time);
    fill_meta(&mut ev, ts);
    ev
}

/// A System child written as a plain object of what EVTX has as
/// attributes (Velociraptor: `"Provider": {"Name": …}`,
/// `"TimeCreated": {"SystemTime": …}`); `None` for the `evtx` crate's
/// `#attributes` form and for anything that is not an object.
fn plain_attrs(v: &J) -> Option<&Map<String, J>> {
    v.as_object().filter(|m| !m.contains_key("#attributes"))
}

/// Epoch seconds (`1549462715.946133`, Velociraptor's `SystemTime`) as a
/// UTC time. The fraction is read from the number's decimal text, so the
/// digits written are kept (to the nanosecond) rather than rounded
/// through `f64`. `None` for a fractional time before 1970 and for one
/// out of range.
fn epoch_time(n: &serde_json::Number) -> Option<DateTime<Utc>> {
    if let Some(i) = n.as_i64() {
        return DateTime::from_timestamp(i, 0);
    }
    let text = n.to_string();
    if text.starts_with('-') {
        return None;
    }
    let (secs, nanos) = match text.split_once('.') {
        Some((whole, frac)) if !text.contains(['e', 'E']) => {
            let digits: String = frac.chars().take(9).collect();
            let nanos = format!("{digits:0<9}").parse::<u32>().ok()?;
            (whole.parse::<i64>().ok()?, nanos)
        }
        _ => {
            let f = n.as_f64()?;
            if !f.is_finite() || f.abs() > 1e15 {
                return None;
            }
            let secs = f.floor();
            let nanos = ((f - secs) * 1e9).round().min(999_999_999.0);
            (secs as i64, nanos as u32)
        }
    };
    DateTime::from_timestamp(secs, nanos)
}

fn get_path<'a>(v: &'a Map<String, J>, path: &[&str]) -> Option<&'a J> {
    let (first, rest) = path.split_first()?;
    let mut cur = v.get(*first)?;
    for p in rest {
        cur = cur.get(*p)?;
    }
    (!cur.is_null()).then_some(cur)
}

fn from_winlogbeat(top: &Map<String, J>, w: &Map<String, J>) -> Event {
    let mut ev = Event::default();
    let event_id = get_path(w, &["event_id"]).or_else(|| get_path(top, &["event", "code"]));
    if let Some(id) = event_id.and_then(event_id_value) {
        ev.push("EventID", id);
    }
    if let Some(c) = get_path(w, &["channel"]) {
        push_channel(&mut ev, c);
    }
    let simple: &[(&str, &[&str])] = &[
        ("Provider_Name", &["provider_name"]),
        ("Provider_Guid", &["provider_guid"]),
    ];
    for (name, path) in simple {
        if let Some(v) = get_path(w, path) {
            flatten(&mut ev, name, v, 1);
        }
    }
    let computer = get_path(w, &["computer_name"])
        .or_else(|| get_path(top, &["host", "name"]))
        .or_else(|| get_path(top, &["host", "hostname"]));
    if let Some(c) = computer {
        flatten(&mut ev, "Computer", c, 1);
    }
    if let Some(r) = get_path(w, &["record_id"]) {
        let v = match r {
            J::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .unwrap_or_else(|_| scalar(r)),
            other => scalar(other),
        };
        ev.push("EventRecordID", v);
    }
    let rest: &[(&str, &[&str])] = &[
        ("ProcessID", &["process", "pid"]),
        ("ThreadID", &["process", "thread", "id"]),
        ("UserID", &["user", "identifier"]),
        ("Task", &["task"]),
        ("Opcode", &["opcode"]),
        ("Version", &["version"]),
        ("Keywords", &["keywords"]),
        ("ActivityID", &["activity_id"]),
    ];
    for (name, path) in rest {
        if let Some(v) = get_path(w, path) {
            flatten(&mut ev, name, v, 1);
        }
    }
    let time = get_path(w, &["time_created"]).or_else(|| get_path(top, &["@timestamp"]));
    if let Some(t) = time {
        flatten(&mut ev, "TimeCreated", t, 1);
    }
    if let Some(m) = get_path(top, &["message"]) {
        flatten(&mut ev, "Message", m, 1);
    }
    if let Some(d) = w.get("event_data") {
        flatten_children(&mut ev, d);
    }
    if let Some(d) = w.get("user_data") {
        flatten_children(&mut ev, d);
    }
    let ts = time.and_then(J::as_str).and_then(parse_time).or_else(|| {
        top.get("@timestamp")
            .and_then(J::as_str)
            .and_then(parse_time)
    });
    fill_meta(&mut ev, ts);
    ev
}

fn from_flat(obj: &Map<String, J>) -> Event {
    let mut ev = Event::default();
    for (k, v) in obj {
        flat_member(&mut ev, k, v);
    }
    for (canon, src) in FLAT_ALIASES {
        if !obj.contains_key(canon) {
            if let Some(v) = obj.get(src).filter(|v| !v.is_null()) {
                flatten(&mut ev, canon, v, 1);
            }
        }
    }
    let ts = ["@timestamp", "TimeCreated", "timestamp"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(J::as_str).and_then(parse_time));
    fill_meta(&mut ev, ts);
    ev
}

/// The flat shape's aliases: (our name, the flat record's name), each
/// added when the record has the second but not the first.
pub(crate) const FLAT_ALIASES: [(&str, &str); 5] = [
    ("Computer", "Hostname"),
    ("Provider_Name", "SourceName"),
    ("Provider_Guid", "ProviderGuid"),
    ("EventRecordID", "RecordNumber"),
    ("ProcessID", "ExecutionProcessID"),
];

/// One top-level member of a flat record, as [`from_flat`] adds it.
pub(crate) fn flat_member(ev: &mut Event, k: &str, v: &J) {
    match k {
        "EventID" => {
            if let Some(id) = event_id_value(v) {
                ev.push("EventID", id);
            }
        }
        "Channel" => push_channel(ev, v),
        "Keywords" => match v.as_i64() {
            // nxlog writes the 64-bit mask as a signed integer; EVTX renders it as hex.
            Some(i) => ev.push("Keywords", Value::Str(format!("0x{:x}", i as u64))),
            None => flatten(ev, "Keywords", v, 1),
        },
        _ => flatten(ev, k, v, 1),
    }
}

/// Starts converting one record (the per-record field budget), as
/// [`event_from_json_value`] does; for `flat::flat_event`.
pub(crate) fn begin_event() {
    REPEATS.set(Repeats::default());
}

/// Ends a flat record begun with [`begin_event`]: its meta from `timestamp`
/// and its fields, the budget applied, a forwarded channel resolved — the
/// steps [`event_from_json_value`] takes after [`from_flat`].
pub(crate) fn end_flat_event(mut ev: Event, timestamp: Option<DateTime<Utc>>) -> Event {
    fill_meta(&mut ev, timestamp);
    REPEATS.get().budget.finish(&mut ev);
    crate::channel::unforward(ev)
}

/// Fills [`EventMeta`] from the event's own fields so the two agree.
pub(crate) fn fill_meta(ev: &mut Event, timestamp: Option<DateTime<Utc>>) {
    let text = |ev: &Event, name: &str| {
        ev.get(name)
            .find(|v| !v.is_null_or_empty())
            .map(|v| v.to_text().into_owned())
    };
    let meta = EventMeta {
        timestamp,
        computer: text(ev, "Computer"),
        channel: text(ev, "Channel"),
        provider: text(ev, "Provider_Name"),
        event_id: exact_first(ev, "EventID")
            .and_then(Value::as_i64)
            .and_then(|i| u32::try_from(i).ok()),
        record_id: exact_first(ev, "EventRecordID")
            .and_then(Value::as_i64)
            .and_then(|i| u64::try_from(i).ok()),
    };
    ev.meta = meta;
}

/// The first value of exactly `name` (no case-insensitive fallback).
fn exact_first<'a>(ev: &'a Event, name: &str) -> Option<&'a Value> {
    ev.fields().find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Parses a timestamp as UTC: RFC 3339 (`2020-10-12T22:32:48.932Z`,
/// offsets converted), or a naive `YYYY-MM-DD[T ]HH:MM:SS[.fff]` taken as UTC.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), fmt) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts(ev: &Event, name: &str) -> Vec<String> {
        ev.get(name).map(|v| v.to_text().into_owned()).collect()
    }

    #[test]
    fn evtx_json_system_and_eventdata() {
        let v = json!({"Event": {"#attributes": {"xmlns": "x"}, "System": {
            "Provider": {"#attributes": {"Name": "Service Control Manager", "Guid": "{555}", "EventSourceName": "Service Control Manager"}},
            "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 7045},
            "Level": 4, "Keywords": "0x8080000000000000",
            "TimeCreated": {"#attributes": {"SystemTime": "2019-03-19T17:06:22.9080865Z"}},
            "EventRecordID": 42, "Correlation": null,
            "Execution": {"#attributes": {"ProcessID": 600, "ThreadID": 7}},
            "Channel": "system", "Computer": "PC1",
            "Security": {"#attributes": {"UserID": "S-1-5-18"}}},
            "EventData": {"ServiceName": "PSEXESVC", "ImagePath": "%SystemRoot%\\PSEXESVC.exe"}}});
        let ev = event_from_json_value(&v).unwrap();
        assert_eq!(ev.first("EventID"), Some(&Value::Int(7045)));
        assert!(!ev.has("Qualifiers"));
        assert_eq!(texts(&ev, "Provider_Name"), ["Service Control Manager"]);
        assert_eq!(texts(&ev, "Provider_Guid"), ["{555}"]);
        assert_eq!(texts(&ev, "Channel"), ["System"]);
        assert_eq!(texts(&ev, "ProcessID"), ["600"]);
        assert_eq!(texts(&ev, "UserID"), ["S-1-5-18"]);
        assert_eq!(texts(&ev, "TimeCreated"), ["2019-03-19T17:06:22.9080865Z"]);
        assert_eq!(texts(&ev, "ServiceName"), ["PSEXESVC"]);
        assert!(!ev.has("Correlation"));
        assert!(!ev.has("xmlns"));
        assert_eq!(ev.meta.event_id, Some(7045));
        assert_eq!(ev.meta.record_id, Some(42));
        assert_eq!(ev.meta.channel.as_deref(), Some("System"));
        assert_eq!(ev.meta.computer.as_deref(), Some("PC1"));
        assert_eq!(ev.meta.provider.as_deref(), Some("Service Control Manager"));
        assert_eq!(
            ev.meta.timestamp.unwrap().to_rfc3339(),
            "2019-03-19T17:06:22.908086500+00:00"
        );
    }

    #[test]
    fn unnamed_data_and_userdata() {
        let v = json!({"Event": {"System": {"EventID": 18456},
            "EventData": {"Data": {"#text": ["sa", " Reason: x"]}, "Binary": "00"}}});
        let ev = event_from_json_value(&v).unwrap();
        assert_eq!(texts(&ev, "Data"), ["sa", " Reason: x"]);
        assert_eq!(texts(&ev, "Binary"), ["00"]);

        let v = json!({"Event": {"System": {"EventID": 1102},
            "UserData": {"LogFileCleared": {"#attributes": {"xmlns": "u"}, "SubjectUserName": "bob", "BackupPath": null}}}});
        let ev = event_from_json_value(&v).unwrap();
        assert_eq!(texts(&ev, "SubjectUserName"), ["bob"]);
        assert_eq!(ev.first("BackupPath"), Some(&Value::Null));
        assert!(!ev.has("xmlns"));
        assert!(!ev.has("LogFileCleared"));
    }

    #[test]
    fn separate_attributes_form() {
        let v = json!({"Event": {"System": {
            "Provider_attributes": {"Name": "Microsoft-Windows-Sysmon"},
            "EventID": 1, "EventID_attributes": {"Qualifiers": 0},
            "TimeCreated_attributes": {"SystemTime": "2020-01-01T00:00:00Z"}},
            "EventData": {"Image": "a.exe"}}});
        let ev = event_from_json_value(&v).unwrap();
        assert_eq!(texts(&ev, "Provider_Name"), ["Microsoft-Windows-Sysmon"]);
        assert_eq!(texts(&ev, "TimeCreated"), ["2020-01-01T00:00:00Z"]);
        assert!(ev.meta.timestamp.is_some());
        assert!(!ev.has("Qualifiers"));
    }

    #[test]
    fn winlogbeat_shape() {
        let v = json!({"@timestamp": "2021-05-01T10:00:00.123Z", "host": {"name": "h1"},
            "event": {"code": "4688"},
            "winlog": {"channel": "security", "provider_name": "Microsoft-Windows-Security-Auditing",
                "record_id": "991", "process": {"pid": 4, "thread": {"id": 8}},
                "event_data": {"NewProcessName": "C:\\x.exe", "CommandLine": "x"}}});
        let ev = event_from_json_value(&v).unwrap();
        assert_eq!(ev.first("EventID"), Some(&Value::Int(4688)));
        assert_eq!(texts(&ev, "Channel"), ["Security"]);
        assert_eq!(texts(&ev, "Computer"), ["h1"]);
        assert_eq!(texts(&ev, "NewProcessName"), ["C:\\x.exe"]);
        assert_eq!(texts(&ev, "ThreadID"), ["8"]);
        assert_eq!(ev.meta.record_id, Some(991));
        assert_eq!(ev.meta.event_id, Some(4688));
        assert_eq!(ev.meta.computer.as_deref(), Some("h1"));
        assert!(ev.meta.timestamp.is_some());
    }

    #[test]
    fn mordor_flat_shape() {
        let v = json!({"EventID": 10, "Channel": "security", "Hostname": "WS5",
            "SourceName": "Microsoft-Windows-Security-Auditing", "RecordNumber": 5,
            "Keywords": -9223372036854775808_i64, "@timestamp": "2020-10-12T22:32:48.932Z",
            "tags": ["mordorDataset"], "TargetImage": "C:\\windows\\system32\\sihost.exe"});
        let ev = event_from_json_value(&v).unwrap();
        assert_eq!(texts(&ev, "Channel"), ["Security"]);
        assert_eq!(texts(&ev, "Computer"), ["WS5"]);
        assert_eq!(texts(&ev, "Keywords"), ["0x8000000000000000"]);
        assert_eq!(texts(&ev, "tags"), ["mordorDataset"]);
        assert_eq!(ev.meta.record_id, Some(5));
        assert_eq!(ev.meta.channel.as_deref(), Some("Security"));
        assert_eq!(
            ev.meta.provider.as_deref(),
            Some("Microsoft-Windows-Security-Auditing")
        );
    }

    #[test]
    fn unknown_shapes_rejected() {
        assert!(event_from_json_value(&json!([1, 2])).is_none());
        assert!(event_from_json_value(&json!({"a": 1})).is_none());
        assert!(event_from_json_value(&json!("x")).is_none());
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut v = json!("leaf");
        for _ in 0..1_000 {
            v = json!({ "k": v });
        }
        let top = json!({"EventID": 1, "deep": v});
        let ev = event_from_json_value(&top).unwrap();
        assert_eq!(ev.meta.event_id, Some(1));
        assert!(!ev.has("k"));
    }

    #[test]
    fn times_parse() {
        assert!(parse_time("2020-10-12 18:32:46").is_some());
        assert!(parse_time("2020-10-12T18:32:46.1234567Z").is_some());
        assert!(parse_time("2020-10-12T18:32:46+02:00").is_some());
        assert!(parse_time("yesterday").is_none());
    }
}
