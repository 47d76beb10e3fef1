//! Network and web readers (issue #21) on the real public corpora in
//! `shared/corpora` (see its README.md): `network/zeek-zed`
//! (brimdata/zed-sample-data, CC BY-SA 4.0), `network/zeek-otrf`
//! (OTRF/Security-Datasets, MIT), `web/apache-elastic-examples`
//! (elastic/examples, Apache-2.0) and `web/iis-beats` (elastic/beats,
//! Apache-2.0), read in place; plus damaged inputs built in memory.
//!
//! Expected counts were computed independently of this crate:
//! - Zeek TSV: data lines = lines not starting with `#`
//!   (`grep -vc '^#' FILE`); the cut zed `dns.log` has 20,000 lines =
//!   8 header lines + 19,992 records and no `#close`.
//! - Zeek JSON: one record per line (`grep -c '' FILE`); Python's `json`
//!   module parses every line and finds `@stream` in each OTRF record.
//! - Apache: `wc -l` (8,000 lines), each matched by a Python regex for the
//!   combined format.
//! - IIS: 5 entries = lines not starting with `#`.
//!
//! When the corpora are missing the tests print a note and pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tracehunt_event::{Event, Value};
use tracehunt_readers::{open, open_bytes, Format, Location, RecordError, RecordErrorKind};

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        println!("note: {} not found; corpus test skipped", p.display());
        None
    }
}

fn read_all(path: &Path) -> (Format, Vec<Event>, Vec<RecordError>) {
    let it = open(path).unwrap_or_else(|e| panic!("{e}"));
    let format = it.format();
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for r in it {
        match r {
            Ok(e) => events.push(e),
            Err(e) => errors.push(e),
        }
    }
    (format, events, errors)
}

fn read_bytes(name: &str, bytes: Vec<u8>) -> (Vec<Event>, Vec<RecordError>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for r in open_bytes(name, bytes).unwrap_or_else(|e| panic!("{e}")) {
        match r {
            Ok(e) => events.push(e),
            Err(e) => errors.push(e),
        }
    }
    (events, errors)
}

fn text(ev: &Event, name: &str) -> Option<String> {
    ev.first(name).map(|v| v.to_text().into_owned())
}

fn texts(ev: &Event, name: &str) -> Vec<String> {
    ev.get(name).map(|v| v.to_text().into_owned()).collect()
}

fn line_of(e: &RecordError) -> u64 {
    match e.at {
        Location::Line(n) => n,
        other => panic!("not a line location: {other:?}"),
    }
}

/// Records per file of the OTRF LSASS campaigns (Zeek TSV): `grep -vc '^#'`.
const LSASS: &[(&str, usize)] = &[
    ("LSASS_campaign_01/analyzer.log", 6),
    ("LSASS_campaign_01/conn.log", 112),
    ("LSASS_campaign_01/dns.log", 96),
    ("LSASS_campaign_01/files.log", 3),
    ("LSASS_campaign_01/http.log", 3),
    ("LSASS_campaign_01/kerberos.log", 10),
    ("LSASS_campaign_01/packet_filter.log", 1),
    ("LSASS_campaign_01/pe.log", 1),
    ("LSASS_campaign_01/smb_mapping.log", 1),
    ("LSASS_campaign_01/ssl.log", 5),
    ("LSASS_campaign_01/weird.log", 22),
    ("LSASS_campaign_01/x509.log", 1),
    ("LSASS_campaign_02/conn.log", 119),
    ("LSASS_campaign_02/dns.log", 147),
    ("LSASS_campaign_02/files.log", 2),
    ("LSASS_campaign_02/http.log", 3),
    ("LSASS_campaign_02/packet_filter.log", 1),
    ("LSASS_campaign_02/weird.log", 6),
    ("LSASS_campaign_03/analyzer.log", 1),
    ("LSASS_campaign_03/conn.log", 126),
    ("LSASS_campaign_03/dns.log", 149),
    ("LSASS_campaign_03/files.log", 1),
    ("LSASS_campaign_03/http.log", 1),
    ("LSASS_campaign_03/kerberos.log", 5),
    ("LSASS_campaign_03/packet_filter.log", 1),
    ("LSASS_campaign_03/pe.log", 1),
    ("LSASS_campaign_03/smb_mapping.log", 1),
    ("LSASS_campaign_03/weird.log", 19),
    ("LSASS_campaign_04/conn.log", 116),
    ("LSASS_campaign_04/dns.log", 121),
    ("LSASS_campaign_04/files.log", 4),
    ("LSASS_campaign_04/http.log", 4),
    ("LSASS_campaign_04/kerberos.log", 1),
    ("LSASS_campaign_04/packet_filter.log", 1),
    ("LSASS_campaign_04/pe.log", 1),
    ("LSASS_campaign_04/smb_mapping.log", 1),
    ("LSASS_campaign_04/weird.log", 18),
    ("LSASS_campaign_05/analyzer.log", 16),
    ("LSASS_campaign_05/conn.log", 895),
    ("LSASS_campaign_05/dns.log", 2872),
    ("LSASS_campaign_05/files.log", 3),
    ("LSASS_campaign_05/http.log", 3),
    ("LSASS_campaign_05/kerberos.log", 5),
    ("LSASS_campaign_05/packet_filter.log", 1),
    ("LSASS_campaign_05/pe.log", 1),
    ("LSASS_campaign_05/smb_mapping.log", 1),
    ("LSASS_campaign_05/ssl.log", 2),
    ("LSASS_campaign_05/weird.log", 26),
    ("LSASS_campaign_05/x509.log", 1),
    ("LSASS_campaign_06/analyzer.log", 21),
    ("LSASS_campaign_06/conn.log", 777),
    ("LSASS_campaign_06/dns.log", 2312),
    ("LSASS_campaign_06/files.log", 3),
    ("LSASS_campaign_06/http.log", 3),
    ("LSASS_campaign_06/kerberos.log", 5),
    ("LSASS_campaign_06/packet_filter.log", 1),
    ("LSASS_campaign_06/pe.log", 1),
    ("LSASS_campaign_06/smb_mapping.log", 1),
    ("LSASS_campaign_06/ssl.log", 2),
    ("LSASS_campaign_06/weird.log", 27),
    ("LSASS_campaign_06/x509.log", 1),
    ("LSASS_campaign_07/analyzer.log", 15),
    ("LSASS_campaign_07/conn.log", 566),
    ("LSASS_campaign_07/dns.log", 1523),
    ("LSASS_campaign_07/files.log", 3),
    ("LSASS_campaign_07/http.log", 3),
    ("LSASS_campaign_07/kerberos.log", 5),
    ("LSASS_campaign_07/packet_filter.log", 1),
    ("LSASS_campaign_07/pe.log", 1),
    ("LSASS_campaign_07/smb_mapping.log", 1),
    ("LSASS_campaign_07/ssl.log", 2),
    ("LSASS_campaign_07/weird.log", 31),
    ("LSASS_campaign_07/x509.log", 1),
];

/// Records per file of the OTRF APT29 Zeek JSON: `grep -c ''`.
const APT29: &[(&str, usize)] = &[
    ("apt29-day1/NASHUA_dce_rpc.log", 57),
    ("apt29-day1/NASHUA_dns.log", 21),
    ("apt29-day1/NASHUA_kerberos.log", 13),
    ("apt29-day1/NASHUA_smb_files.log", 6),
    ("apt29-day1/NASHUA_smb_mapping.log", 5),
    ("apt29-day1/NASHUA_ssl.log", 376),
    ("apt29-day1/NASHUA_x509.log", 376),
    ("apt29-day1/SCRANTON_dce_rpc.log", 66),
    ("apt29-day1/SCRANTON_dns.log", 32),
    ("apt29-day1/SCRANTON_http.log", 62),
    ("apt29-day1/SCRANTON_kerberos.log", 22),
    ("apt29-day1/SCRANTON_smb_files.log", 6),
    ("apt29-day1/SCRANTON_smb_mapping.log", 6),
    ("apt29-day1/SCRANTON_ssl.log", 2),
    ("apt29-day1/SCRANTON_x509.log", 2),
    ("apt29-day2/NEWYORK_dce_rpc.log", 270),
    ("apt29-day2/NEWYORK_dns.log", 153),
    ("apt29-day2/NEWYORK_kerberos.log", 62),
    ("apt29-day2/NEWYORK_smb_files.log", 9),
    ("apt29-day2/NEWYORK_smb_mapping.log", 16),
    ("apt29-day2/SCRANTON_dce_rpc.log", 35),
    ("apt29-day2/SCRANTON_dns.log", 18),
    ("apt29-day2/SCRANTON_kerberos.log", 11),
    ("apt29-day2/SCRANTON_smb_mapping.log", 3),
    ("apt29-day2/UTICA-A_dce_rpc.log", 59),
    ("apt29-day2/UTICA-A_dns.log", 58),
    ("apt29-day2/UTICA-A_http.log", 1),
    ("apt29-day2/UTICA-A_kerberos.log", 9),
    ("apt29-day2/UTICA-A_smb_mapping.log", 3),
    ("apt29-day2/UTICA-A_ssl.log", 283),
    ("apt29-day2/UTICA-A_x509.log", 2),
    ("apt29-day2/UTICA-C_dns.log", 1),
    ("apt29-day2/UTICA-C_kerberos.log", 1),
    ("apt29-day2/UTICA-C_smb_mapping.log", 1),
    ("apt29-day2/UTICA-C_ssl.log", 29),
    ("apt29-day2/UTICA-D_dce_rpc.log", 24),
    ("apt29-day2/UTICA-D_dns.log", 13),
    ("apt29-day2/UTICA-D_kerberos.log", 3),
    ("apt29-day2/UTICA-D_ssl.log", 315),
    ("apt29-day2/UTICA-ONE-DRIVE_dns.log", 7),
    ("apt29-day2/UTICA-ONE-DRIVE_ssl.log", 59),
    ("apt29-day2/UTICA-ONE-DRIVE_x509.log", 10),
];

/// The zed logs in both forms: (name, records).
const ZED: &[(&str, usize)] = &[
    ("dce_rpc", 78),
    ("dns", 19_992),
    ("kerberos", 11),
    ("ntlm", 422),
    ("rdp", 4_122),
    ("smb_files", 13),
    ("smb_mapping", 393),
    ("x509", 348),
];

fn assert_counts(dir: &Path, table: &[(&str, usize)], format: Format) -> usize {
    let mut total = 0;
    for (rel, want) in table {
        let path = dir.join(rel);
        let (f, events, errors) = read_all(&path);
        assert_eq!(f, format, "{rel}");
        assert!(errors.is_empty(), "{rel}: {errors:?}");
        assert_eq!(events.len(), *want, "{rel}");
        for ev in &events {
            let ch = ev.meta.channel.as_deref().unwrap_or_default();
            assert!(ch.starts_with("zeek:"), "{rel}: {ch}");
            assert!(ev.meta.timestamp.is_some(), "{rel}: {ev:?}");
            assert!(ev.meta.record_id.is_some(), "{rel}");
            assert!(!ev.has("Channel"), "{rel}");
        }
        total += want;
    }
    total
}

fn pairs(v: &[(String, usize)]) -> Vec<(&str, usize)> {
    v.iter().map(|(a, b)| (a.as_str(), *b)).collect()
}

#[test]
fn zeek_exact_counts_per_file() {
    let Some(c) = corpora() else { return };
    let net = c.join("network");
    let zed_tsv: Vec<(String, usize)> = ZED
        .iter()
        .map(|(n, k)| (format!("tsv/{n}.log"), *k))
        .collect();
    let zed_json: Vec<(String, usize)> = ZED
        .iter()
        .map(|(n, k)| (format!("ndjson/{n}.json"), *k))
        .collect();
    let zed = net.join("zeek-zed");
    assert_eq!(
        assert_counts(&zed, &pairs(&zed_tsv), Format::ZeekTsv),
        25_379
    );
    assert_eq!(
        assert_counts(&zed, &pairs(&zed_json), Format::JsonLines),
        25_379
    );
    let otrf = net.join("zeek-otrf");
    // README: 10,243 LSASS records, 2,507 APT29 records.
    assert_eq!(assert_counts(&otrf, LSASS, Format::ZeekTsv), 10_243);
    assert_eq!(assert_counts(&otrf, APT29, Format::JsonLines), 2_507);
}

/// Seconds since the epoch of a zed JSON time (`2018-03-24T17:15:20.865716Z`).
fn iso_secs(s: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
}

/// The same value, allowing for the TSV writer's 6 decimals and for zed
/// JSON writing `time` values as ISO text where TSV has epoch seconds.
fn same_value(tsv: &Value, json: &Value) -> bool {
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(1.0);
    match (tsv, json) {
        (Value::Float(a), Value::Float(b)) => close(*a, *b),
        (Value::Float(a), Value::Int(b)) => close(*a, *b as f64),
        (Value::Float(a), Value::Str(b)) => iso_secs(b).is_some_and(|b| close(*a, b)),
        (a, b) => a == b,
    }
}

#[test]
fn zeek_tsv_and_json_of_the_same_zed_logs_give_the_same_values() {
    let Some(c) = corpora() else { return };
    let zed = c.join("network/zeek-zed");
    for (name, n) in ZED {
        let (_, tsv, e1) = read_all(&zed.join(format!("tsv/{name}.log")));
        let (_, json, e2) = read_all(&zed.join(format!("ndjson/{name}.json")));
        assert!(e1.is_empty() && e2.is_empty());
        assert_eq!((tsv.len(), json.len()), (*n, *n), "{name}");
        for (i, (t, j)) in tsv.iter().zip(&json).enumerate() {
            let at = format!("{name} record {i}");
            assert_eq!(t.meta.channel, j.meta.channel, "{at}");
            assert_eq!(t.meta.computer, j.meta.computer, "{at}");
            assert_eq!(t.meta.timestamp, j.meta.timestamp, "{at}");
            let mut tf: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
            for (k, v) in t.fields() {
                tf.entry(k).or_default().push(v);
            }
            let mut jf: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
            for (k, v) in j.fields() {
                if k != "_path" && k != "_write_ts" {
                    jf.entry(k).or_default().push(v);
                }
            }
            assert_eq!(
                tf.keys().collect::<Vec<_>>(),
                jf.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, tv) in &tf {
                let jv = &jf[k];
                assert_eq!(tv.len(), jv.len(), "{at} {k}");
                for (a, b) in tv.iter().zip(jv) {
                    assert!(same_value(a, b), "{at} {k}: {a:?} vs {b:?}");
                }
            }
        }
    }
}

#[test]
fn zeek_real_values() {
    let Some(c) = corpora() else { return };
    let net = c.join("network");
    // First zed DNS record (line 9 of the TSV, after 8 header lines).
    let (_, dns, _) = read_all(&net.join("zeek-zed/tsv/dns.log"));
    let ev = &dns[0];
    assert_eq!(ev.meta.channel.as_deref(), Some("zeek:dns"));
    assert_eq!(ev.meta.record_id, Some(9));
    assert_eq!(ev.meta.computer.as_deref(), Some("10.47.1.100"));
    assert_eq!(
        ev.meta.timestamp.unwrap().to_rfc3339(),
        "2018-03-24T17:15:20.865716+00:00"
    );
    assert_eq!(text(ev, "query").as_deref(), Some("ise.wrccdc.org"));
    assert_eq!(text(ev, "qtype_name").as_deref(), Some("A"));
    assert_eq!(texts(ev, "answers"), ["ise.wrccdc.cpp.edu", "134.71.3.16"]);
    assert_eq!(ev.first("id.resp_p"), Some(&Value::Int(53)));
    assert_eq!(ev.first("RD"), Some(&Value::Bool(true)));
    assert_eq!(ev.first("AA"), Some(&Value::Bool(false)));
    assert_eq!(ev.first("TTLs"), Some(&Value::Float(2230.0)));
    // Last record of the cut log (no `#close`): line 20,000.
    assert_eq!(dns.last().unwrap().meta.record_id, Some(20_000));

    // x509: escaped backslash in a subject, dotted names, no conn id.
    let (_, x509, _) = read_all(&net.join("zeek-zed/tsv/x509.log"));
    let ev = &x509[0];
    assert_eq!(
        text(ev, "certificate.serial").as_deref(),
        Some("CC57FE54011E")
    );
    assert!(text(ev, "certificate.subject")
        .unwrap()
        .contains("O=VMware\\, Inc,"));
    assert_eq!(ev.meta.computer, None);

    // OTRF JSON: underscores renamed to Zeek's dotted names, channel from @stream.
    let (_, otrf, _) = read_all(&net.join("zeek-otrf/apt29-day2/NEWYORK_dns.log"));
    let ev = &otrf[0];
    assert_eq!(ev.meta.channel.as_deref(), Some("zeek:dns"));
    assert_eq!(text(ev, "id.resp_h").as_deref(), Some("10.0.0.4"));
    assert!(!ev.has("id_resp_h"));
    assert_eq!(ev.meta.computer, text(ev, "id.orig_h"));
    assert_eq!(text(ev, "@system").as_deref(), Some("test-nsm"));

    // OTRF JSON http: the WebDAV PUTs the SigmaHQ rule was written for.
    let (_, http, _) = read_all(&net.join("zeek-otrf/apt29-day1/SCRANTON_http.log"));
    let puts: Vec<&Event> = http
        .iter()
        .filter(|ev| text(ev, "method").as_deref() == Some("PUT"))
        .collect();
    assert_eq!(puts.len(), 6); // grep -c '"method":"PUT"'
    let ev = puts[1];
    assert_eq!(ev.meta.channel.as_deref(), Some("zeek:http"));
    assert_eq!(
        text(ev, "uri").as_deref(),
        Some("/webdav/OfficeSupplies.7z")
    );
    assert_eq!(
        text(ev, "user_agent").as_deref(),
        Some("Microsoft-WebDAV-MiniRedir/10.0.18362")
    );
    assert_eq!(ev.first("status_code"), Some(&Value::Int(201)));
    assert_eq!(text(ev, "id.resp_h").as_deref(), Some("192.168.0.4"));
    assert_eq!(texts(ev, "client_header_names").len(), 6);
    assert!(!ev.has("tags"), "an empty array gives no field");
}

const ZEEK_HEAD: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n\
#unset_field\t-\n#path\tdns\n#open\t2024-01-01-00-00-00\n\
#fields\tts\tuid\tid.orig_h\tquery\tanswers\trejected\tqtype\n\
#types\ttime\tstring\taddr\tstring\tvector[string]\tbool\tcount\n";

/// Each damaged Zeek TSV line is one error naming its line; the lines
/// around it are still read.
#[test]
fn zeek_tsv_damaged_lines_are_reported_and_neighbours_kept() {
    let mut data = ZEEK_HEAD.as_bytes().to_vec(); // lines 1-8
    data.extend_from_slice(b"1.5\tC1\t10.0.0.1\ta.example\tx,y\tF\t1\n"); // 9 ok
    data.extend_from_slice(b"2.5\tC2\t10.0.0.1\tb.example\t-\tT\n"); // 10 six columns
    data.extend_from_slice(b"yesterday\tC3\t10.0.0.1\tc.example\t-\tF\t1\n"); // 11 bad ts
    data.extend_from_slice(b"3.5\tC4\t10.0.0.1\td.example\t-\tF\tabc\n"); // 12 bad count
    data.extend_from_slice(b"3.6\tC4\t10.0.0.1\t");
    data.extend(std::iter::repeat_n(b'a', (1 << 20) + 10));
    data.extend_from_slice(b"\t-\tF\t1\n"); // 13 huge
    data.extend_from_slice(b"4.5\tC5\t10.0.0.1\t\xffbad.example\t-\tF\t1\n"); // 14 lossy
    data.extend_from_slice(b"5.5\tC6\t10.0.0.1\t(empty)\t(empty)\tF\t-\n"); // 15 ok
    data.extend_from_slice(b"6.5\tC7\t10.0.0.1\tcut.exa"); // 16 cut
    let (events, errors) = read_bytes("dns.log", data);

    let ids: Vec<u64> = events.iter().map(|e| e.meta.record_id.unwrap()).collect();
    assert_eq!(ids, [9, 14, 15]);
    assert_eq!(texts(&events[0], "answers"), ["x", "y"]);
    assert_eq!(
        text(&events[1], "query").as_deref(),
        Some("\u{fffd}bad.example")
    );
    assert_eq!(text(&events[2], "query").as_deref(), Some(""));
    assert!(!events[2].has("answers") && !events[2].has("qtype"));

    let got: Vec<(u64, RecordErrorKind, u64)> = errors
        .iter()
        .map(|e| (line_of(e), e.kind, e.records))
        .collect();
    assert_eq!(
        got,
        [
            (10, RecordErrorKind::InvalidLine, 1),
            (11, RecordErrorKind::InvalidLine, 1),
            (12, RecordErrorKind::InvalidLine, 1),
            (13, RecordErrorKind::InvalidLine, 1),
            (14, RecordErrorKind::InvalidUtf8, 0),
            (16, RecordErrorKind::Truncated, 1),
        ]
    );
    assert!(
        errors[0].reason.contains("6 values"),
        "{}",
        errors[0].reason
    );
    assert!(errors[1].reason.contains("bad ts"), "{}", errors[1].reason);
    assert!(errors[2].reason.contains("qtype"), "{}", errors[2].reason);
    assert!(errors[3].reason.contains("cap"), "{}", errors[3].reason);
    assert!(errors.iter().all(|e| e.path == Path::new("dns.log")));
}

/// Concatenated logs: a second header block with other `#fields` and
/// `#path` applies to the lines after it.
#[test]
fn zeek_tsv_header_block_changes_mid_file() {
    let mut data = ZEEK_HEAD.to_string();
    data.push_str("1.5\tC1\t10.0.0.1\ta.example\t-\tF\t1\n#close\t2024-01-01-00-00-01\n");
    data.push_str("#separator \\x09\n#path\thttp\n#fields\tts\tmethod\tstatus_code\n");
    data.push_str("#types\ttime\tstring\tcount\n2.5\tPUT\t201\n");
    let (events, errors) = read_bytes("x.log", data.into_bytes());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].meta.channel.as_deref(), Some("zeek:dns"));
    assert_eq!(events[1].meta.channel.as_deref(), Some("zeek:http"));
    assert_eq!(events[1].first("status_code"), Some(&Value::Int(201)));
    assert_eq!(events[1].meta.record_id, Some(15));
}

/// Data before any `#fields` line cannot be named: one error per line.
#[test]
fn zeek_tsv_data_before_fields_is_reported() {
    let (events, errors) = read_bytes("conn.log", b"#separator \\x09\n1.0\tx\n".to_vec());
    assert!(events.is_empty());
    assert_eq!(errors.len(), 1);
    assert_eq!(line_of(&errors[0]), 2);
}

#[test]
fn web_exact_counts_and_real_values() {
    let Some(c) = corpora() else { return };
    let web = c.join("web");

    // Apache combined: 8,000 lines (`wc -l`; a Python regex for the
    // combined format matches all 8,000), 11 of them `wp-login` requests.
    let (format, events, errors) = read_all(&web.join("apache-elastic-examples/apache_logs"));
    assert_eq!(format, Format::AccessLog);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events.len(), 8_000);
    for ev in &events {
        assert_eq!(ev.meta.channel.as_deref(), Some("webserver:access"));
        assert!(ev.meta.timestamp.is_some() && ev.has("cs-method") && ev.has("sc-status"));
        assert_eq!(ev.meta.computer, None);
    }
    let wp: Vec<&Event> = events
        .iter()
        .filter(|e| text(e, "cs-uri-stem").is_some_and(|s| s.contains("wp-login")))
        .collect();
    assert_eq!(wp.len(), 11);
    // Line 379: 144.76.194.187 - - [17/May/2015:13:05:28 +0000]
    //           "GET /wp-login.php HTTP/1.0" 404 292 "-" "-"
    let ev = wp[0];
    assert_eq!(ev.meta.record_id, Some(379));
    assert_eq!(text(ev, "c-ip").as_deref(), Some("144.76.194.187"));
    assert_eq!(text(ev, "cs-method").as_deref(), Some("GET"));
    assert_eq!(text(ev, "cs-uri-stem").as_deref(), Some("/wp-login.php"));
    assert_eq!(text(ev, "cs-version").as_deref(), Some("HTTP/1.0"));
    assert_eq!(
        text(ev, "request").as_deref(),
        Some("GET /wp-login.php HTTP/1.0")
    );
    assert_eq!(ev.first("sc-status"), Some(&Value::Int(404)));
    assert_eq!(ev.first("sc-bytes"), Some(&Value::Int(292)));
    assert!(!ev.has("cs-uri-query") && !ev.has("cs-user-agent") && !ev.has("cs-referer"));
    assert_eq!(
        ev.meta.timestamp.unwrap().to_rfc3339(),
        "2015-05-17T13:05:28+00:00"
    );
    // Line 1: the referer and user agent of a combined line.
    let ev = &events[0];
    assert_eq!(
        text(ev, "cs-referer").as_deref(),
        Some("http://semicomplete.com/presentations/logstash-monitorama-2013/")
    );
    assert!(text(ev, "cs-user-agent")
        .unwrap()
        .starts_with("Mozilla/5.0 (Macintosh;"));

    // IIS: 5 entries under 3 #Fields layouts; the last two (15 values under
    // a 22-field header) are read with the file's first, 15-column layout.
    let (format, events, errors) = read_all(&web.join("iis-beats/test.log"));
    assert_eq!(format, Format::W3c);
    assert!(errors.is_empty(), "{errors:?}");
    let ids: Vec<u64> = events.iter().map(|e| e.meta.record_id.unwrap()).collect();
    assert_eq!(ids, [5, 10, 15, 16, 17]);
    let ev = &events[0];
    assert_eq!(text(ev, "cs-uri-query").as_deref(), Some("q=100"));
    assert_eq!(
        text(ev, "cs-user-agent").as_deref(),
        Some("Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:57.0) Gecko/20100101 Firefox/57.0")
    );
    assert_eq!(ev.meta.computer.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        ev.meta.timestamp.unwrap().to_rfc3339(),
        "2018-01-01T08:09:10+00:00"
    );
    assert_eq!(text(&events[1], "cs-host").as_deref(), Some("example.com"));
    assert_eq!(events[1].meta.computer, None); // only s-sitename
    assert_eq!(events[2].meta.computer.as_deref(), Some("MACHINE-NAME"));
    assert_eq!(text(&events[2], "cs-version").as_deref(), Some("HTTP/1.1"));
    // The Struts OGNL injections.
    let ognl = &events[3];
    assert_eq!(ognl.meta.computer.as_deref(), Some("10.44.0.136"));
    assert_eq!(text(ognl, "c-ip").as_deref(), Some("10.50.6.188"));
    assert_eq!(ognl.first("sc-status"), Some(&Value::Int(401)));
    assert!(text(ognl, "cs-uri-query")
        .unwrap()
        .starts_with("redirect:${%23req%3d%23context.get('com.opensymphony.xwork2."));
    assert_eq!(
        text(ognl, "cs-user-agent").as_deref(),
        Some("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)")
    );
    let ognl = &events[4];
    assert!(text(ognl, "cs-uri-stem")
        .unwrap()
        .contains("(@java.lang.Runtime@getRuntime()).exec('ipconfig')"));
    assert_eq!(ognl.first("sc-win32-status"), Some(&Value::Int(2)));
    assert!(!ognl.has("cs-uri-query"));
}

/// A W3C `#Fields` line mid-file applies to the entries after it; an entry
/// that fits neither it nor an earlier layout is one error, neighbours kept.
#[test]
fn w3c_fields_change_mid_file_and_damaged_entries() {
    let data = b"#Software: IIS\n#Fields: date time cs-method cs-uri-stem sc-status\n\
2020-01-02 03:04:05 GET /a 200\n\
2020-01-02 03:04:06 GET /b\n\
#Fields: time c-ip cs-method cs-uri-stem cs(User-Agent) sc-status\n\
#Date: 2020-01-03 00:00:00\n\
03:04:07 10.0.0.1 POST /c curl/7.1+(x) 500\n\
2020-01-02 03:04:08 GET /d 404\n\
2020-13-02 03:04:09 GET /e 200\n\
03:04:10 10.0.0.1 GET /\xff - 200\n\
03:04:11 10.0.0.1 GET /f"
        .to_vec();
    let (events, errors) = read_bytes("u_ex200102.log", data);
    let ids: Vec<u64> = events.iter().map(|e| e.meta.record_id.unwrap()).collect();
    assert_eq!(ids, [3, 7, 8, 10]);
    assert_eq!(text(&events[1], "c-ip").as_deref(), Some("10.0.0.1"));
    assert_eq!(
        text(&events[1], "cs-user-agent").as_deref(),
        Some("curl/7.1 (x)")
    );
    assert_eq!(
        events[1].meta.timestamp.unwrap().to_rfc3339(),
        "2020-01-03T03:04:07+00:00"
    );
    // Line 8 has the first layout's 5 values.
    assert_eq!(text(&events[2], "cs-uri-stem").as_deref(), Some("/d"));
    assert_eq!(events[2].first("sc-status"), Some(&Value::Int(404)));
    let got: Vec<(u64, RecordErrorKind)> = errors.iter().map(|e| (line_of(e), e.kind)).collect();
    assert_eq!(
        got,
        [
            (4, RecordErrorKind::InvalidLine),
            (9, RecordErrorKind::InvalidLine),
            (10, RecordErrorKind::InvalidUtf8),
            (11, RecordErrorKind::Truncated),
        ]
    );
    assert!(
        errors[1].reason.contains("bad date"),
        "{}",
        errors[1].reason
    );
}

/// Access-log lines that do not parse, a huge line and invalid UTF-8 are
/// each reported; the lines around them are read.
#[test]
fn access_log_damaged_lines_are_reported_and_neighbours_kept() {
    let good =
        "10.0.0.1 - - [17/May/2015:10:05:03 +0200] \"GET /x?a=1 HTTP/1.1\" 200 5 \"-\" \"UA\"\n";
    let mut data = good.as_bytes().to_vec(); // 1
    data.extend_from_slice(b"10.0.0.1 - - [17/May/2015:10:05:03 +0200] \"GET /x HTTP/1.1 200 5\n"); // 2
    data.extend_from_slice(b"10.0.0.1 - - [17/Mai/2015:10:05:03 +0200] \"GET / HTTP/1.1\" 200 5\n"); // 3
    data.extend_from_slice(b"10.0.0.1 - - [17/May/2015:10:05:03 +0200] \"GET /");
    data.extend(std::iter::repeat_n(b'a', 2 << 20));
    data.extend_from_slice(b" HTTP/1.1\" 200 5\n"); // 4
    data.extend_from_slice(
        b"10.0.0.1 - - [17/May/2015:10:05:04 +0000] \"\\x16\\x03\\x01\" 400 0 \"-\" \"\xff\"\n",
    ); // 5
    data.extend_from_slice(good.as_bytes()); // 6
    data.extend_from_slice(&good.as_bytes()[..40]); // 7, cut
    let (events, errors) = read_bytes("access.log", data);
    let ids: Vec<u64> = events.iter().map(|e| e.meta.record_id.unwrap()).collect();
    assert_eq!(ids, [1, 5, 6]);
    assert_eq!(text(&events[0], "cs-uri-query").as_deref(), Some("a=1"));
    assert_eq!(
        events[0].meta.timestamp.unwrap().to_rfc3339(),
        "2015-05-17T08:05:03+00:00"
    );
    assert_eq!(
        text(&events[1], "request").as_deref(),
        Some("\\x16\\x03\\x01")
    );
    assert!(!events[1].has("cs-method"));
    assert_eq!(
        text(&events[1], "cs-user-agent").as_deref(),
        Some("\u{fffd}")
    );
    let got: Vec<(u64, RecordErrorKind)> = errors.iter().map(|e| (line_of(e), e.kind)).collect();
    assert_eq!(
        got,
        [
            (2, RecordErrorKind::InvalidLine),
            (3, RecordErrorKind::InvalidLine),
            (4, RecordErrorKind::InvalidLine),
            (5, RecordErrorKind::InvalidUtf8),
            (7, RecordErrorKind::Truncated),
        ]
    );
}
