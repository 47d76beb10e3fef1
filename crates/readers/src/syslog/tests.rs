//! Syslog reader tests on synthetic lines in the real formats (the real
//! files are read in `tests/linux.rs`).

use super::*;
use std::io::Cursor;

fn read_cap(data: &[u8], cap: usize) -> Vec<Result<Event, RecordError>> {
    let lines = Lines::with_cap(Box::new(Cursor::new(data.to_vec())), cap);
    SyslogRecords::new(Path::new("s.log"), lines).collect()
}

fn read(data: &[u8]) -> Vec<Result<Event, RecordError>> {
    read_cap(data, lines::MAX_LINE)
}

fn outline(out: &[Result<Event, RecordError>]) -> Vec<String> {
    out.iter()
        .map(|r| match r {
            Ok(e) => format!(
                "{} {}",
                e.meta.channel.as_deref().unwrap_or(""),
                e.meta.record_id.unwrap_or(0)
            ),
            Err(e) => format!("{:?} {}", e.kind, e.at),
        })
        .collect()
}

fn t(e: &Event, n: &str) -> Option<String> {
    e.first(n).map(|v| v.to_text().into_owned())
}

#[test]
fn rfc3164_auth_line_fields() {
    let out = read(b"Feb 23 00:08:48 localhost sudo: vagrant : TTY=pts/1 ; PWD=/home/vagrant ; USER=root ; COMMAND=/bin/cat /var/log/secure\nFeb  3 11:47:05 localhost groupadd[6991]: new group: name=apache, GID=48\n");
    let e = out[0].as_ref().unwrap();
    assert_eq!(e.meta.channel.as_deref(), Some(CHANNEL));
    assert_eq!(e.meta.computer.as_deref(), Some("localhost"));
    assert_eq!(t(e, "program").as_deref(), Some("sudo"));
    assert_eq!(t(e, "SUDO_USER").as_deref(), Some("vagrant"));
    assert_eq!(t(e, "USER").as_deref(), Some("root"));
    assert_eq!(t(e, "COMMAND").as_deref(), Some("/bin/cat /var/log/secure"));
    assert!(t(e, "message").unwrap().starts_with("vagrant : TTY=pts/1"));
    let ts = e.meta.timestamp.unwrap();
    assert_eq!((ts.month(), ts.day(), ts.hour()), (2, 23, 0));
    let e = out[1].as_ref().unwrap();
    assert_eq!(t(e, "program").as_deref(), Some("groupadd"));
    assert_eq!(t(e, "pid").as_deref(), Some("6991"));
    assert_eq!(
        t(e, "message").as_deref(),
        Some("new group: name=apache, GID=48")
    );
    assert_eq!(e.meta.timestamp.unwrap().day(), 3);
}

use chrono::Timelike;

#[test]
fn rfc5424_and_iso_lines() {
    let out = read(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"] \xef\xbb\xbfAn application event\n2021-10-24T17:05:31.123456+02:00 host1 CRON[42]: (root) CMD (run-parts)\n");
    let e = out[0].as_ref().unwrap();
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2003-10-11T22:14:15.003+00:00"
    );
    assert_eq!(t(e, "host").as_deref(), Some("mymachine.example.com"));
    assert_eq!(t(e, "program").as_deref(), Some("evntslog"));
    assert_eq!(t(e, "pid"), None);
    assert_eq!(t(e, "msgid").as_deref(), Some("ID47"));
    assert_eq!(e.first("facility"), Some(&Value::Int(20)));
    assert_eq!(e.first("severity"), Some(&Value::Int(5)));
    assert_eq!(
        t(e, "structured_data").as_deref(),
        Some("[exampleSDID@32473 iut=\"3\" eventSource=\"App\\]\"]")
    );
    assert_eq!(t(e, "message").as_deref(), Some("An application event"));
    let e = out[1].as_ref().unwrap();
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2021-10-24T15:05:31.123456+00:00"
    );
    assert_eq!(t(e, "message").as_deref(), Some("(root) CMD (run-parts)"));
}

#[test]
fn year_goes_up_at_new_year() {
    let out = read(b"Dec 31 23:59:59 h a: x\nJan  1 00:00:01 h a: y\nDec 30 10:00:00 h a: z\n");
    let y: Vec<_> = out
        .iter()
        .map(|r| r.as_ref().unwrap().meta.timestamp.unwrap().year())
        .collect();
    assert_eq!(y[1], y[0] + 1);
    // A month going back by less than 6 does not move the year... but
    // Jan → Dec is forward in month numbers: the same year as January.
    assert_eq!(y[2], y[1]);
}

#[test]
fn rfc3164_year_comes_from_the_first_dated_line() {
    // Regression (sysmon-elastic): the banner lines before the first Sysmon
    // event were dated with the clock's year (2026) while the events said
    // 2021. Held back, they now take the year of the first dated time.
    let data = b"Oct 24 17:05:31 host sysmon[1]: banner\n\
Oct 24 17:05:38 host a: plain\n\
<13>1 2021-10-24T17:06:00Z host app - - - dated\n\
Oct 24 17:07:00 host a: after\n\
Jan  2 00:00:01 host a: next year\n";
    let out = read(data);
    let times: Vec<String> = out
        .iter()
        .map(|r| r.as_ref().unwrap().meta.timestamp.unwrap().to_rfc3339())
        .collect();
    assert_eq!(
        times,
        [
            "2021-10-24T17:05:31+00:00",
            "2021-10-24T17:05:38+00:00",
            "2021-10-24T17:06:00+00:00",
            "2021-10-24T17:07:00+00:00",
            "2022-01-02T00:00:01+00:00",
        ]
    );
    // A line after the first dated time a day ahead of it is the year before.
    let out = read(b"Dec 31 23:00:00 h a: x\n<13>1 2022-01-01T00:10:00Z h a - - - y\n");
    let first = out[0].as_ref().unwrap().meta.timestamp.unwrap();
    assert_eq!(first.to_rfc3339(), "2021-12-31T23:00:00+00:00");
}

#[test]
fn damaged_lines_are_reported_and_neighbours_kept() {
    let mut data =
        b"Feb 21 21:54:44 localhost sshd[3402]: Accepted publickey for vagrant\n".to_vec();
    data.extend_from_slice(b"garbage without a header\n");
    data.extend_from_slice(b"Feb 21 21:54:45 localhost sshd[3402]: caf\xe9 \xff\n");
    data.extend_from_slice(b"Feb 21 21:54:46 localhost sshd[3402]: ");
    data.extend(std::iter::repeat_n(b'x', 3000));
    data.extend_from_slice(b"\nFeb 30 99:00:00 localhost a: bad time\n");
    data.extend_from_slice(b"Feb 21 21:54:47 localhost sshd[3402]: last\nFeb 21 21:5");
    let out = read_cap(&data, 1000);
    assert_eq!(
        outline(&out),
        [
            "linux:syslog 1",
            "InvalidLine line 2",
            "InvalidUtf8 line 3",
            "linux:syslog 3",
            "InvalidLine line 4",
            "InvalidLine line 5",
            "linux:syslog 6",
            "Truncated line 7"
        ]
    );
    assert_eq!(
        t(out[3].as_ref().unwrap(), "message").as_deref(),
        Some("caf\u{fffd} \u{fffd}")
    );
}

#[test]
fn sysmon_line_and_cut_sysmon_xml() {
    let xml = "<Event><System><Provider Name=\"Linux-Sysmon\" Guid=\"{ff032593-a8d3-4f13-b0d6-01fc615a0f97}\"/><EventID>1</EventID><TimeCreated SystemTime=\"2021-10-24T17:05:38.412320000Z\"/><EventRecordID>7</EventRecordID><Channel>Linux-Sysmon/Operational</Channel><Computer>james-ubuntu-demo</Computer></System><EventData><Data Name=\"Image\">/usr/bin/id</Data><Data Name=\"CommandLine\">id -u</Data></EventData></Event>";
    let cut = &xml[..xml.find("id -u").unwrap() + 2];
    let data = format!(
        "Oct 24 17:05:38 james-ubuntu-demo sysmon: {xml}\r\nOct 24 17:05:38 james-ubuntu-demo sysmon: {cut}\r\nOct 24 17:05:31 james-ubuntu-demo sysmon[3041]: Running...\r\n"
    );
    let out = read(data.as_bytes());
    assert_eq!(
        outline(&out),
        [
            "Linux-Sysmon/Operational 7",
            "Truncated line 2",
            "Linux-Sysmon/Operational 7",
            "linux:syslog 3"
        ]
    );
    let e = out[0].as_ref().unwrap();
    assert_eq!(e.meta.event_id, Some(1));
    assert_eq!(t(e, "CommandLine").as_deref(), Some("id -u"));
    assert_eq!(
        t(out[2].as_ref().unwrap(), "CommandLine").as_deref(),
        Some("id")
    );
    assert_eq!(out[1].as_ref().unwrap_err().records, 0);
    let b = out[3].as_ref().unwrap();
    assert_eq!(t(b, "program").as_deref(), Some("sysmon"));
    assert_eq!(t(b, "pid").as_deref(), Some("3041"));
    assert_eq!(t(b, "message").as_deref(), Some("Running..."));
}

#[test]
fn sniff_claims_syslog_only() {
    assert!(sniff(b"Feb 21 21:54:44 localhost sshd[3402]: Accepted\n"));
    assert!(sniff(
        b"\r\n<34>Oct 11 22:14:15 mymachine su: 'su root' failed\n"
    ));
    assert!(sniff(
        b"<165>1 2003-10-11T22:14:15.003Z host app - - - msg\n"
    ));
    assert!(sniff(
        b"2021-10-24T17:05:31.123456+02:00 host1 CRON[42]: x\n"
    ));
    for no in [
        &b"{\"a\": 1}"[..],
        b"type=CWD msg=audit(1.000:1): cwd=\"/\"\n",
        b"#separator \\x09\n#fields\tts\n",
        b"#Software: IIS\n#Fields: date time\n",
        b"2018-01-01 00:00:00 W3SVC1 GET / - 80\n",
        b"127.0.0.1 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1\n",
        b"Feb 21 21:54:44\n",
        b"hello\n",
        b"",
    ] {
        assert!(!sniff(no), "{}", String::from_utf8_lossy(no));
    }
}

#[test]
fn sentinel_rows() {
    let row: serde_json::Value = serde_json::from_str(r#"{"TimeGenerated":"2022-05-11T18:10:21.997Z","Computer":"UBUNTU5","EventTime":"2022-05-11T18:10:21Z","Facility":"user","HostName":"UBUNTU5","SeverityLevel":"info","SyslogMessage":"type=AUOMS_EXECVE audit(1652292621.986:84138): syscall=execve","ProcessName":"auoms","Type":"Syslog"}"#).unwrap();
    let e = event_from_json(row.as_object().unwrap()).unwrap();
    assert_eq!(e.meta.channel.as_deref(), Some(CHANNEL));
    assert_eq!(e.meta.computer.as_deref(), Some("UBUNTU5"));
    assert_eq!(t(&e, "program").as_deref(), Some("auoms"));
    assert!(t(&e, "message").unwrap().starts_with("type=AUOMS_EXECVE"));
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2022-05-11T18:10:21+00:00"
    );
    let other: serde_json::Value = serde_json::from_str(r#"{"eventName": "x"}"#).unwrap();
    assert!(event_from_json(other.as_object().unwrap()).is_none());
}
