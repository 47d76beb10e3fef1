//! Damage and assembly tests of the auditd reader (synthetic lines in the
//! real format; the real files are read in `tests/linux.rs`).

use super::*;
use crate::syslog::lines::Lines;
use std::io::Cursor;

fn read_cap(data: &[u8], cap: usize) -> Vec<Result<Event, RecordError>> {
    let lines = Lines::with_cap(Box::new(Cursor::new(data.to_vec())), cap);
    AuditdRecords::new(Path::new("a.log"), lines).collect()
}

fn read(data: &[u8]) -> Vec<Result<Event, RecordError>> {
    read_cap(data, lines::MAX_LINE)
}

/// `ok <channel> <type or Image> <line>` / `<kind> line <n>`.
fn outline(out: &[Result<Event, RecordError>]) -> Vec<String> {
    out.iter()
        .map(|r| match r {
            Ok(e) => {
                let what = e
                    .first("type")
                    .or_else(|| e.first("Image"))
                    .map(|v| v.to_text().into_owned())
                    .unwrap_or_default();
                format!(
                    "{} {what} {}",
                    e.meta.channel.as_deref().unwrap_or(""),
                    e.meta.record_id.unwrap_or(0)
                )
            }
            Err(e) => format!("{:?} {}", e.kind, e.at),
        })
        .collect()
}

fn exec(serial: u64, pid: u32, exe: &str, args: &[&str]) -> String {
    let t = format!("msg=audit(1700000000.{:03}:{serial}):", serial % 1000);
    let a: Vec<String> = args
        .iter()
        .enumerate()
        .map(|(i, a)| format!("a{i}=\"{a}\""))
        .collect();
    format!(
        "type=SYSCALL {t} arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid={pid} auid=1000 uid=0 comm=\"x\" exe=\"{exe}\" key=(null)\n\
         type=EXECVE {t} argc={} {}\n\
         type=CWD {t} cwd=\"/tmp\"\n\
         type=EOE {t}\n",
        args.len(),
        a.join(" ")
    )
}

#[test]
fn cut_last_line_is_one_error_and_the_event_before_it_is_kept() {
    let mut data = exec(10, 100, "/usr/bin/id", &["id"]);
    data.push_str("type=EXECVE msg=audit(1700000000.011:11): argc=1 a0=\"i");
    let out = read(data.as_bytes());
    assert_eq!(
        outline(&out),
        [
            "linux:auditd SYSCALL 1",
            "linux:auditd EXECVE 2",
            "linux:auditd CWD 3",
            "linux:auditd EOE 4",
            "linux:process_creation /usr/bin/id 1",
            "Truncated line 5",
        ]
    );
    assert!(out[5]
        .as_ref()
        .unwrap_err()
        .reason
        .contains("unterminated quote"));
}

#[test]
fn invalid_utf8_is_read_lossily_and_noted() {
    let data = b"type=CWD msg=audit(1.000:1): cwd=\"/tmp/\xff\"\ntype=CWD msg=audit(1.000:2): cwd=\"/b\"\n";
    let out = read(data);
    assert_eq!(
        outline(&out),
        [
            "InvalidUtf8 line 1",
            "linux:auditd CWD 1",
            "linux:auditd CWD 2"
        ]
    );
    assert_eq!(out[0].as_ref().unwrap_err().records, 0);
    let ev = out[1].as_ref().unwrap();
    assert_eq!(ev.first("cwd").unwrap().as_str(), Some("/tmp/\u{fffd}"));
}

#[test]
fn wrong_shaped_header_and_auoms_rows_are_errors_with_neighbours_kept() {
    let data = b"type=CWD msg=audit(1.000:1): cwd=\"/a\"\n\
        type=CWD msg=audit(one.000:2): cwd=\"/b\"\n\
        type=AUOMS_EXECVE audit(1652292621.986:84138): SchemaVersion=\"1\" syscall=execve\n\
        type=CWD msg=audit(1.000:3): cwd=\"/c\"\n";
    let out = read(data);
    assert_eq!(
        outline(&out),
        [
            "linux:auditd CWD 1",
            "InvalidLine line 2",
            "InvalidLine line 3",
            "linux:auditd CWD 4"
        ]
    );
    assert!(out[2].as_ref().unwrap_err().reason.contains("AUOMS"));
}

#[test]
fn huge_line_is_skipped_without_losing_neighbours() {
    let mut data =
        b"type=CWD msg=audit(1.000:1): cwd=\"/a\"\ntype=EXECVE msg=audit(1.000:2): a0=\"".to_vec();
    data.extend(std::iter::repeat_n(b'x', 5000));
    data.extend_from_slice(b"\"\ntype=CWD msg=audit(1.000:3): cwd=\"/c\"\n");
    let out = read_cap(&data, 1000);
    assert_eq!(
        outline(&out),
        [
            "linux:auditd CWD 1",
            "InvalidLine line 2",
            "linux:auditd CWD 3"
        ]
    );
    assert!(out[1]
        .as_ref()
        .unwrap_err()
        .reason
        .contains("line of 5038 bytes is longer"));
}

#[test]
fn shuffled_and_lost_serials_still_assemble() {
    // Two events interleaved, the second's EOE lost, the first's records
    // out of order (EXECVE before SYSCALL).
    let a = exec(20, 200, "/usr/bin/curl", &["curl", "http://x"]);
    let b = exec(21, 201, "/usr/bin/wget", &["wget", "-q"]);
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let data = [a[1], b[0], a[0], b[1], b[2], a[2], a[3]].join("\n");
    let out = read(data.as_bytes());
    let procs: Vec<_> = out
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|e| e.meta.channel.as_deref() == Some("linux:process_creation"))
        .map(|e| {
            format!(
                "{} | {}",
                e.first("Image").unwrap().to_text(),
                e.first("CommandLine").unwrap().to_text()
            )
        })
        .collect();
    // curl completes at its EOE; wget (no EOE) at the end of the file.
    assert_eq!(
        procs,
        ["/usr/bin/curl | curl http://x", "/usr/bin/wget | wget -q"]
    );
    assert_eq!(out.iter().filter(|r| r.is_err()).count(), 0);
}

#[test]
fn serial_rollover_keeps_events_apart() {
    let mut data = exec(4_294_967_295, 300, "/bin/a", &["a"]);
    data.push_str(&exec(0, 301, "/bin/b", &["b"]));
    data.push_str(&exec(1, 302, "/bin/c", &["c"]));
    let out = read(data.as_bytes());
    let procs: Vec<_> = out
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|e| e.meta.channel.as_deref() == Some("linux:process_creation"))
        .map(|e| e.first("audit_id").unwrap().to_text().into_owned())
        .collect();
    assert_eq!(
        procs,
        [
            "1700000000.295:4294967295",
            "1700000000.000:0",
            "1700000000.001:1"
        ]
    );
}

#[test]
fn events_without_eoe_complete_after_the_grace_window_and_memory_is_bounded() {
    // 3 × MAX_OPEN events with no EOE: each completes once GRACE_RECORDS
    // records of others passed, so at most a bounded number stay open.
    let mut data = String::new();
    let n = 3 * assemble::MAX_OPEN as u64;
    for s in 0..n {
        let e = exec(s, 1000 + s as u32, "/bin/true", &["true"]);
        for l in e.lines().filter(|l| !l.starts_with("type=EOE")) {
            data.push_str(l);
            data.push('\n');
        }
    }
    let mut it = AuditdRecords::new(
        Path::new("a.log"),
        Lines::new(Box::new(Cursor::new(data.into_bytes()))),
    );
    let mut procs = 0;
    let mut max_open = 0;
    while let Some(r) = it.next() {
        if r.unwrap().meta.channel.as_deref() == Some(assemble::CHANNEL) {
            procs += 1;
        }
        max_open = max_open.max(it.asm_open());
    }
    assert_eq!(procs, n);
    assert!(max_open <= assemble::GRACE_RECORDS as usize, "{max_open}");
}

#[test]
fn process_event_fields_and_parent_image() {
    let mut data = exec(1, 500, "/usr/bin/bash", &["bash", "-i"]);
    // pid 501, child of 500.
    data.push_str(&exec(2, 501, "/usr/bin/id", &["id", "-u"]).replace("ppid=1 ", "ppid=500 "));
    let out = read(data.as_bytes());
    let p: Vec<_> = out
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|e| e.meta.channel.as_deref() == Some(assemble::CHANNEL))
        .collect();
    assert_eq!(p.len(), 2);
    let e = p[1];
    let t = |n: &str| e.first(n).map(|v| v.to_text().into_owned());
    assert_eq!(t("Image").as_deref(), Some("/usr/bin/id"));
    assert_eq!(t("CommandLine").as_deref(), Some("id -u"));
    assert_eq!(e.first("ProcessId"), Some(&Value::Int(501)));
    assert_eq!(e.first("ParentProcessId"), Some(&Value::Int(500)));
    assert_eq!(t("User").as_deref(), Some("root"));
    assert_eq!(t("LogonId").as_deref(), Some("1000"));
    assert_eq!(t("CurrentDirectory").as_deref(), Some("/tmp"));
    assert_eq!(t("ParentImage").as_deref(), Some("/usr/bin/bash"));
    assert_eq!(t("ParentCommandLine").as_deref(), Some("bash -i"));
    assert_eq!(t("SYSCALL").as_deref(), Some("execve"));
    assert_eq!(e.meta.record_id, Some(5));
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2023-11-14T22:13:20.002+00:00"
    );
}

#[test]
fn sniff_claims_auditd_only() {
    assert!(sniff(
        b"# laurel test\n\ntype=CWD msg=audit(1.000:1): cwd=\"/\"\n"
    ));
    assert!(sniff(b"node=h type=EOE msg=audit(1.000:1): \n"));
    // Cut inside a quoted value at the end of the sniffed head.
    assert!(sniff(b"type=PROCTITLE msg=audit(1.000:1): proctitle=\"abc"));
    for no in [
        &b"{\"type\": \"SYSCALL\"}"[..],
        b"type=AUOMS_EXECVE audit(1652292621.986:84138): a=1\n",
        b"#separator \\x09\n#fields\tts\n1\t2\n",
        b"#Software: IIS\n#Fields: date time\n2024-01-01 00:00:00 GET\n",
        b"127.0.0.1 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1\n",
        b"Oct 24 17:05:31 host sysmon[3041]: Running...\n",
        b"",
        b"# only comments\n",
    ] {
        assert!(!sniff(no), "{}", String::from_utf8_lossy(no));
    }
}

#[test]
fn split_argument_across_records_is_joined_and_a_lost_piece_is_noted() {
    let t = "msg=audit(1.000:7):";
    let data = format!(
        "type=EXECVE {t} argc=2 a0=\"echo\" a1_len=8 a1[0]=6162\n\
         type=EXECVE {t} a1[1]=6364\n\
         type=CWD {t} cwd=\"/\"\n\
         type=EXECVE msg=audit(1.000:8): argc=2 a0=\"echo\" a1_len=8 a1[0]=6162\n\
         type=CWD msg=audit(1.000:8): cwd=\"/\"\n"
    );
    let out = read(data.as_bytes());
    assert_eq!(
        outline(&out),
        [
            "linux:auditd EXECVE 1",
            "linux:auditd CWD 3",
            "Truncated line 4",
            "linux:auditd EXECVE 4",
            "linux:auditd CWD 5"
        ]
    );
    let a1 = |i: usize| {
        out[i]
            .as_ref()
            .unwrap()
            .first("a1")
            .unwrap()
            .to_text()
            .into_owned()
    };
    assert_eq!(a1(0), "abcd");
    assert_eq!(a1(3), "ab");
    assert_eq!(out[2].as_ref().unwrap_err().records, 0);
}
