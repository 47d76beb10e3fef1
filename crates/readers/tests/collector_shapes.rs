//! Issue #20, items 3 and 4: records as collectors write them.
//!
//! * Velociraptor's `parse_evtx` rows (`System.EventID.Value`, epoch
//!   `System.TimeCreated.SystemTime`, `EventData` as a map or `Data` as a
//!   list of `Name`/`Value` items) were read with no EventID and no time,
//!   and nothing said so.
//! * Events labelled `Channel: ForwardedEvents` (a WEF collector's log) kept
//!   that label, so no logsource met them.
//!
//! The SigmaHQ regression events in these forms are in
//! `crates/cli/tests/collector_shapes.rs`.

use serde_json::json;
use tracehunt_event::{Event, Value};
use tracehunt_readers::event_from_json_value;

fn text(ev: &Event, name: &str) -> Vec<String> {
    ev.get(name).map(|v| v.to_text().into_owned()).collect()
}

/// A Velociraptor `parse_evtx` row of a 4624 logon (the layout of
/// Velocidex/evtx's `Event4624` fixture, values of our own).
fn velociraptor_4624() -> serde_json::Value {
    json!({
        "System": {
            "Provider": {"Name": "Microsoft-Windows-Security-Auditing",
                         "Guid": "54849625-5478-4994-A5BA-3E3B0328C30D"},
            "EventID": {"Value": 4624},
            "Version": 2, "Level": 0, "Task": 12544, "Opcode": 0,
            "Keywords": 9232379236109516800_u64,
            "TimeCreated": {"SystemTime": 1553024497.6219296},
            "EventRecordID": 31880,
            "Correlation": {"ActivityID": "02277543-BEAA-0000-BB75-2702AABED401"},
            "Execution": {"ProcessID": 676, "ThreadID": 780},
            "Channel": "Security",
            "Computer": "WS7",
            "Security": {}
        },
        "EventData": {"TargetUserName": "alice", "LogonType": 3, "IpAddress": "10.0.0.9"},
        "Message": ""
    })
}

#[test]
fn velociraptor_row_was_read_without_eventid_and_time() {
    let ev = event_from_json_value(&velociraptor_4624()).unwrap();
    assert_eq!(ev.meta.event_id, Some(4624));
    assert_eq!(ev.first("EventID"), Some(&Value::Int(4624)));
    assert_eq!(
        ev.meta.timestamp.unwrap().to_rfc3339(),
        "2019-03-19T19:41:37.621929600+00:00"
    );
    assert_eq!(text(&ev, "TimeCreated"), ["2019-03-19T19:41:37.621929600Z"]);
    assert!(!ev.has("SystemTime"));
    assert_eq!(
        ev.meta.provider.as_deref(),
        Some("Microsoft-Windows-Security-Auditing")
    );
    assert_eq!(
        text(&ev, "Provider_Guid"),
        ["54849625-5478-4994-A5BA-3E3B0328C30D"]
    );
    assert!(!ev.has("Name") && !ev.has("Value"));
    // The evtx crate renders the keyword mask as hex; so do we.
    assert_eq!(text(&ev, "Keywords"), ["0x8020000000000000"]);
    assert_eq!(ev.meta.channel.as_deref(), Some("Security"));
    assert_eq!(ev.meta.computer.as_deref(), Some("WS7"));
    assert_eq!(ev.meta.record_id, Some(31880));
    assert_eq!(text(&ev, "ProcessID"), ["676"]);
    assert_eq!(
        text(&ev, "ActivityID"),
        ["02277543-BEAA-0000-BB75-2702AABED401"]
    );
    assert_eq!(text(&ev, "TargetUserName"), ["alice"]);
    assert_eq!(ev.first("LogonType"), Some(&Value::Int(3)));
    // An empty Message (no message database) is no field, and never `Data`.
    assert!(!ev.has("Message") && !ev.has("Data"));
}

#[test]
fn velociraptor_message_was_unnamed_data() {
    let mut v = velociraptor_4624();
    v["Message"] = json!("An account was successfully logged on.");
    let ev = event_from_json_value(&v).unwrap();
    assert_eq!(
        text(&ev, "Message"),
        ["An account was successfully logged on."]
    );
    assert!(!ev.has("Data"));
}

#[test]
fn velociraptor_data_list_of_name_value_items_lost_the_names() {
    let mut v = velociraptor_4624();
    v["EventData"] = json!({"Data": [
        {"Name": "TargetUserName", "Value": "bob"},
        {"Name": "LogonType", "Value": 10},
        {"Name": "IpAddress", "": "10.1.2.3"},
        {"Name": "WorkstationName"},
        "unnamed"
    ]});
    let ev = event_from_json_value(&v).unwrap();
    assert_eq!(text(&ev, "TargetUserName"), ["bob"]);
    assert_eq!(ev.first("LogonType"), Some(&Value::Int(10)));
    assert_eq!(text(&ev, "IpAddress"), ["10.1.2.3"]);
    assert_eq!(ev.first("WorkstationName"), Some(&Value::Null));
    assert_eq!(text(&ev, "Data"), ["unnamed"]);
    assert!(!ev.has("Name"));

    // The same items as the EventData list itself.
    v["EventData"] = json!([{"Name": "TargetUserName", "Value": "carol"}]);
    let ev = event_from_json_value(&v).unwrap();
    assert_eq!(text(&ev, "TargetUserName"), ["carol"]);
}

#[test]
fn velociraptor_qualifiers_and_integer_epoch() {
    let mut v = velociraptor_4624();
    v["System"]["EventID"] = json!({"Qualifiers": 16384, "Value": 7045});
    v["System"]["TimeCreated"] = json!({"SystemTime": 1700000000});
    v["System"]["Keywords"] = json!("0x8080000000000000");
    let ev = event_from_json_value(&v).unwrap();
    assert_eq!(ev.meta.event_id, Some(7045));
    assert!(!ev.has("Qualifiers"));
    assert_eq!(text(&ev, "TimeCreated"), ["2023-11-14T22:13:20Z"]);
    assert_eq!(text(&ev, "Keywords"), ["0x8080000000000000"]);
}

#[test]
fn velociraptor_odd_systemtime_values_give_no_time_and_no_panic() {
    let cases = [
        (json!(1.5e9), Some("2017-07-14T02:40:00+00:00")),
        (json!(-0.5), None),
        (json!(1e300), None),
        (json!(u64::MAX), None),
        (
            json!("2019-03-19T19:41:37.5Z"),
            Some("2019-03-19T19:41:37.500+00:00"),
        ),
        (json!("yesterday"), None),
        (json!(null), None),
    ];
    for (t, want) in cases {
        let mut v = velociraptor_4624();
        v["System"]["TimeCreated"] = json!({ "SystemTime": t });
        let ev = event_from_json_value(&v).unwrap();
        let got = ev.meta.timestamp.map(|t| t.to_rfc3339());
        assert_eq!(got.as_deref(), want, "{t}");
        assert_eq!(ev.meta.event_id, Some(4624));
    }
}

#[test]
fn forwarded_events_label_hid_the_source_channel() {
    let sysmon = "Microsoft-Windows-Sysmon/Operational";
    // evtx-JSON, Velociraptor, Winlogbeat and flat records labelled
    // ForwardedEvents (any case).
    let records = [
        json!({"Event": {"System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
            "EventID": 1, "Channel": "ForwardedEvents",
            "TimeCreated": {"#attributes": {"SystemTime": "2024-01-01T00:00:00Z"}}},
            "EventData": {"Image": "C:\\x.exe"}}}),
        json!({"System": {"Provider": {"Name": "Microsoft-Windows-Sysmon"},
            "EventID": {"Value": 1}, "Channel": "forwardedevents",
            "TimeCreated": {"SystemTime": 1704067200}},
            "EventData": {"Image": "C:\\x.exe"}}),
        json!({"@timestamp": "2024-01-01T00:00:00Z", "winlog": {"channel": "ForwardedEvents",
            "provider_name": "Microsoft-Windows-Sysmon", "event_id": 1,
            "event_data": {"Image": "C:\\x.exe"}}}),
        json!({"EventID": 1, "Channel": "FORWARDEDEVENTS", "SourceName": "Microsoft-Windows-Sysmon",
            "@timestamp": "2024-01-01T00:00:00Z", "Image": "C:\\x.exe"}),
    ];
    for r in &records {
        let ev = event_from_json_value(r).unwrap();
        assert_eq!(ev.meta.channel.as_deref(), Some(sysmon), "{r}");
        assert_eq!(text(&ev, "Channel"), [sysmon], "{r}");
        assert_eq!(text(&ev, "CollectorChannel"), ["ForwardedEvents"], "{r}");
        assert_eq!(text(&ev, "Image"), ["C:\\x.exe"]);
    }
    // Security by provider; a provider the table does not know keeps the label.
    let sec = event_from_json_value(&json!({"EventID": 4624, "Channel": "ForwardedEvents",
        "SourceName": "Microsoft-Windows-Security-Auditing"}))
    .unwrap();
    assert_eq!(sec.meta.channel.as_deref(), Some("Security"));
    let other = event_from_json_value(&json!({"EventID": 104, "Channel": "ForwardedEvents",
        "SourceName": "Microsoft-Windows-Eventlog"}))
    .unwrap();
    assert_eq!(other.meta.channel.as_deref(), Some("ForwardedEvents"));
    assert!(!other.has("CollectorChannel"));
}
