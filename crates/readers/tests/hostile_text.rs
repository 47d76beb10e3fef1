//! Breaker findings on the non-Windows readers (issue #21), each a
//! regression test named after what broke. Inputs are built in memory and
//! kept small; the assertions are on what is read, dropped and counted.

use tracehunt_event::{Event, Value};
use tracehunt_readers::{open_bytes, Format, RecordError, DROPPED_FIELD};

fn read(name: &str, bytes: Vec<u8>) -> (Format, Vec<Event>, Vec<RecordError>) {
    let it = open_bytes(name, bytes).expect("format recognised");
    let format = it.format();
    let (mut evs, mut errs) = (Vec::new(), Vec::new());
    for r in it {
        match r {
            Ok(e) => evs.push(e),
            Err(e) => errs.push(e),
        }
    }
    (format, evs, errs)
}

fn name_bytes(ev: &Event) -> usize {
    ev.fields().map(|(n, _)| n.len()).sum()
}

/// A 500 KB `#fields` name over 250,000 `set[string]` elements made one
/// field per element, each with its own copy of the name (7.5 GB, abort).
#[test]
fn zeek_tsv_long_column_name_over_many_set_elements_is_capped() {
    let name = "N".repeat(500_000);
    let text = [
        "#separator \\x09".to_owned(),
        "#set_separator\t,".into(),
        "#path\tdns".into(),
        format!("#fields\tts\t{name}"),
        "#types\ttime\tset[string]".into(),
        format!("1521911720.865716\t{}", vec!["a"; 250_000].join(",")),
    ]
    .join("\n");
    let (format, evs, errs) = read("dns.log", text.into_bytes());
    assert_eq!(format, Format::ZeekTsv);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(evs.len(), 1);
    let ev = &evs[0];
    assert_eq!(ev.get(&name).count(), 2, "two 500 KB names fit in 1 MiB");
    assert_eq!(ev.first(DROPPED_FIELD), Some(&Value::Int(250_000 - 2)));
    assert!(name_bytes(ev) <= (1 << 20) + 64);
}

/// A 1 MiB key over a 3,000-element array in a CloudTrail record copied
/// the key per element (3.1 GB).
#[test]
fn cloud_long_key_over_array_elements_is_capped() {
    let key = "K".repeat(1 << 20);
    let rec = serde_json::json!({
        "eventVersion": "1.08", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
        "awsRegion": "us-east-1", "eventTime": "2024-01-01T00:00:00Z",
        "requestParameters": { key.clone(): vec![1; 3000] }
    });
    let (_, evs, errs) = read("ct.json", rec.to_string().into_bytes());
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(evs.len(), 1);
    let ev = &evs[0];
    assert_eq!(ev.first("eventName"), Some(&Value::Str("GetObject".into())));
    assert_eq!(ev.get(&format!("requestParameters.{key}")).count(), 0);
    assert_eq!(ev.first(DROPPED_FIELD), Some(&Value::Int(3000)));
    assert!(name_bytes(ev) <= (1 << 20) + 256);
}

/// The same through the Zeek JSON reader (3.1 GB).
#[test]
fn zeek_json_long_key_over_array_elements_is_capped() {
    let key = "K".repeat(1 << 20);
    let rec = serde_json::json!({
        "_path": "dns", "ts": "2024-01-01T00:00:00Z", "id.orig_h": "10.0.0.1",
        key.clone(): vec![1; 3000]
    });
    let (_, evs, errs) = read("dns.json", rec.to_string().into_bytes());
    assert!(errs.is_empty(), "{errs:?}");
    let ev = &evs[0];
    assert_eq!(ev.meta.channel.as_deref(), Some("zeek:dns"));
    assert_eq!(
        ev.get(&key).count(),
        0,
        "one copy is already over the name budget"
    );
    assert_eq!(ev.first(DROPPED_FIELD), Some(&Value::Int(3000)));
}

/// The Windows JSON shapes flatten arrays to repeated names too.
#[test]
fn flat_json_long_key_over_array_elements_is_capped() {
    let key = "K".repeat(300_000);
    let rec = serde_json::json!({
        "EventID": 1, "Channel": "Security", "Hostname": "h",
        key.clone(): vec![1; 3000]
    });
    let (_, evs, errs) = read("flat.json", rec.to_string().into_bytes());
    assert!(errs.is_empty(), "{errs:?}");
    let ev = &evs[0];
    assert_eq!(ev.meta.event_id, Some(1));
    assert_eq!(ev.get(&key).count(), 3, "3 x 300 KB names fit in 1 MiB");
    assert_eq!(ev.first(DROPPED_FIELD), Some(&Value::Int(2997)));
    // Arrays of ordinary size are untouched.
    let rec = serde_json::json!({"EventID": 4, "Channel": "Security", "Data": vec!["x"; 5000]});
    let (_, evs, _) = read("flat2.json", rec.to_string().into_bytes());
    assert_eq!(evs[0].get("Data").count(), 5000);
    assert_eq!(evs[0].first(DROPPED_FIELD), None);
}

/// 20,000 distinct `#Fields` lines were each compared with every earlier
/// layout (48 s); the entry after them is read with the last layout, and an
/// entry of an earlier width with the latest layout of that width.
#[test]
fn w3c_many_fields_directives_keep_the_latest_layout_per_width() {
    let mut lines = vec!["#Software: IIS".to_owned()];
    for i in 0..20_000 {
        lines.push(format!("#Fields: {} c{i}", ["x"; 9].join(" ")));
    }
    lines.push("#Fields: date time c-ip cs-method cs-uri-stem sc-status".into());
    lines.push("2024-01-01 00:00:00 1.2.3.4 GET /a 200".into());
    lines.push("1 2 3 4 5 6 7 8 9 10".into());
    let (format, evs, errs) = read("u_ex.log", lines.join("\n").into_bytes());
    assert_eq!(format, Format::W3c);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].first("c-ip"), Some(&Value::Str("1.2.3.4".into())));
    assert_eq!(evs[1].first("c19999"), Some(&Value::Str("10".into())));
}

/// A log starting mid-line (copytruncate, a cut file) was "not a supported
/// log format" and all its records were lost; now the junk line is one
/// error and the rest is read.
#[test]
fn log_starting_mid_line_is_read_after_the_junk() {
    let auditd = "sc=59 success=yes exit=0 a0=55\n\
        type=USER_LOGIN msg=audit(1700000000.000:1): pid=1 uid=0 res=success\n\
        type=USER_LOGIN msg=audit(1700000001.000:2): pid=2 uid=0 res=success\n";
    let (format, evs, errs) = read("audit.log", auditd.as_bytes().to_vec());
    assert_eq!(format, Format::Auditd);
    assert_eq!(evs.len(), 2);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].at, tracehunt_readers::Location::Line(1));

    let syslog = "ession opened for user root\n\
        Feb 19 10:00:01 host1 sshd[12]: Accepted password for root from 10.0.0.1 port 22 ssh2\n\
        Feb 19 10:00:02 host1 sshd[12]: pam_unix(sshd:session): session opened for user root\n";
    let (format, evs, errs) = read("auth.log", syslog.as_bytes().to_vec());
    assert_eq!(format, Format::Syslog);
    assert_eq!((evs.len(), errs.len()), (2, 1));

    // Plain prose is still not a log.
    assert!(open_bytes(
        "notes.txt",
        b"hello\nthis is\njust text\nnothing else\n".to_vec()
    )
    .is_err());
}

/// EXECVE records sharing one audit id piled every argument into the open
/// event (3,000 records of 500 KB: 6.1 GB); the assembled event keeps 1 MiB
/// of arguments and counts the rest.
#[test]
fn auditd_execve_records_of_one_event_are_capped() {
    let mut text = String::from(
        "type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=59 success=yes exit=0 \
         pid=10 ppid=1 uid=0 comm=\"x\" exe=\"/bin/x\"\n",
    );
    let arg = "41".repeat(65_536); // 64 KiB once decoded
    for i in 0..40 {
        text.push_str(&format!(
            "type=EXECVE msg=audit(1700000000.000:1): argc=1 a{i}={arg}\n"
        ));
    }
    text.push_str("type=EOE msg=audit(1700000000.000:1):\n");
    let (format, evs, errs) = read("audit.log", text.into_bytes());
    assert_eq!(format, Format::Auditd);
    assert!(errs.is_empty(), "{errs:?}");
    let procs: Vec<&Event> = evs
        .iter()
        .filter(|e| e.meta.channel.as_deref() == Some("linux:process_creation"))
        .collect();
    assert_eq!(procs.len(), 1);
    let cmd = procs[0]
        .first("CommandLine")
        .and_then(Value::as_str)
        .unwrap();
    assert_eq!(
        cmd.len(),
        16 * 65_536 + 15,
        "16 arguments of 64 KiB, joined by spaces"
    );
    assert_eq!(procs[0].first(DROPPED_FIELD), Some(&Value::Int(24)));
}
