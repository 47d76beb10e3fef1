//! Tests on the real public corpora in `shared/corpora` (see its README.md):
//! `samples-cc0` (CC0, mdecrevoisier/EVTX-to-MITRE-Attack via
//! Yamato-Security/hayabusa-sample-evtx), `evtx-attack-samples`
//! (GPL-3.0, sbousseaden/EVTX-ATTACK-SAMPLES), `sigma/regression_data`
//! (DRL 1.1, SigmaHQ/sigma) and `mordor/windows` (MIT, OTRF/Security-Datasets).
//!
//! Every count asserted here was measured with this crate and cross-checked
//! with an independent parser: python-evtx 0.8.1 (pure Python) reads the
//! same 7,455 records from the 269 EVTX files of evtx-attack-samples and
//! 248 from samples-cc0, with no record errors; the `evtx` crate's own XML
//! renderer is re-counted inside these tests.
//!
//! When the corpora are missing the tests print a note and pass.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tracehunt_event::{Event, Value};
use tracehunt_readers::{open, walk, Format, ReadError, RecordError, RecordErrorKind};

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

fn read_all(path: &Path) -> (Vec<Event>, Vec<RecordError>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for r in open(path).unwrap_or_else(|e| panic!("{e}")) {
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

/// Record count through the `evtx` crate's XML renderer (a different
/// rendering path from the JSON one the reader uses).
fn xml_record_count(path: &Path) -> usize {
    let mut p = evtx::EvtxParser::from_path(path).unwrap();
    p.records().filter(Result::is_ok).count()
}

/// `meta` agrees with the fields it is derived from.
fn assert_meta_consistent(ev: &Event) {
    let field_id = ev.first("EventID").and_then(Value::as_i64);
    assert_eq!(ev.meta.event_id.map(i64::from), field_id, "{ev:?}");
    assert_eq!(ev.meta.channel, text(ev, "Channel"));
    assert_eq!(ev.meta.computer, text(ev, "Computer"));
    assert_eq!(ev.meta.provider, text(ev, "Provider_Name"));
}

#[test]
fn samples_cc0_named_files() {
    let Some(root) = corpora() else { return };
    let root = root.join("samples-cc0");
    let cases: &[(&str, usize)] = &[
        ("TA0008-Lateral Movement/T1021.002-SMB Windows Admin Shares/ID4688-4648 Lateral movement with net use.evtx", 2),
        ("TA0005-Defense Evasion/T1070.001-Clear Windows event logs/ID104-1102-Event log cleared.evtx", 91),
        ("EVTX_full_APT_attack_steps/ID4688,5140,5145-WMIexec execution via SMB (GLOBAL).evtx", 97),
        ("TA0006-Credential Access/T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx", 14),
        ("TA0003-Persistence/T1543.003-Create or Modify System Process-Windows Service/ID7045-7036 PSexec service installation.evtx", 4),
    ];
    for (rel, n) in cases {
        let p = root.join(rel);
        let it = open(&p).unwrap();
        assert_eq!(it.format(), Format::Evtx);
        let (events, errors) = read_all(&p);
        assert!(errors.is_empty(), "{rel}: {errors:?}");
        assert_eq!(events.len(), *n, "{rel}");
        assert_eq!(xml_record_count(&p), *n, "{rel} (XML renderer)");
        events.iter().for_each(assert_meta_consistent);
    }

    // Real values of the `net use` sample: a 4688 then a 4648.
    let (ev, _) = read_all(&root.join(cases[0].0));
    assert_eq!(ev[0].first("EventID"), Some(&Value::Int(4688)));
    assert_eq!(
        text(&ev[0], "NewProcessName").as_deref(),
        Some("C:\\Windows\\System32\\net.exe")
    );
    assert_eq!(
        text(&ev[0], "CommandLine").as_deref(),
        Some("net  use m: \\\\fs03vuln\\c$ /USER:offsec\\hack1")
    );
    assert_eq!(text(&ev[0], "Channel").as_deref(), Some("Security"));
    assert_eq!(
        text(&ev[0], "Provider_Name").as_deref(),
        Some("Microsoft-Windows-Security-Auditing")
    );
    assert_eq!(ev[0].meta.computer.as_deref(), Some("FS03.offsec.lan"));
    assert_eq!(ev[0].meta.record_id, Some(469_061));
    assert_eq!(
        ev[0].meta.timestamp.unwrap().to_rfc3339(),
        "2021-11-13T14:08:43.058458500+00:00"
    );
    assert_eq!(
        text(&ev[0], "TimeCreated").as_deref(),
        Some("2021-11-13T14:08:43.0584585Z")
    );
    assert_eq!(ev[1].meta.event_id, Some(4648));
    assert_eq!(
        text(&ev[1], "TargetServerName").as_deref(),
        Some("fs03vuln.offsec.lan")
    );

    // Sysmon LSASS dump: EventIDs in file order, and the comsvcs MiniDump command line.
    let (ev, _) = read_all(&root.join(cases[3].0));
    let ids: Vec<u32> = ev.iter().map(|e| e.meta.event_id.unwrap()).collect();
    assert_eq!(ids, [18, 18, 1, 18, 7, 1, 11, 10, 18, 18, 18, 18, 18, 18]);
    assert_eq!(
        text(&ev[5], "CommandLine").as_deref(),
        Some("\"C:\\Windows\\System32\\rundll32.exe\"  C:\\Windows\\System32\\comsvcs.dll MiniDump 512 \\Windows\\Temp\\76nivOxA.dmp full")
    );
    assert_eq!(
        ev[5].meta.channel.as_deref(),
        Some("Microsoft-Windows-Sysmon/Operational")
    );
    assert_eq!(text(&ev[5], "UserID").as_deref(), Some("S-1-5-18"));

    // The 1102 log-clear: UserData/LogFileCleared fields by leaf name.
    let (ev, _) = read_all(&root.join(cases[1].0));
    let cleared: Vec<&Event> = ev
        .iter()
        .filter(|e| e.meta.event_id == Some(1102))
        .collect();
    assert!(!cleared.is_empty());
    assert!(cleared
        .iter()
        .all(|e| e.has("SubjectUserName") && !e.has("LogFileCleared")));

    // Whole folder: 10 EVTX files, 248 records, plus LICENSE.md rejected.
    let (files, werr) = walk(&[root]);
    assert!(werr.is_empty());
    let (mut evtx, mut records, mut unsupported) = (0, 0, 0);
    for f in &files {
        match open(f) {
            Ok(it) => {
                evtx += 1;
                records += it.filter(Result::is_ok).count();
            }
            Err(ReadError::UnsupportedFormat { .. }) => unsupported += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((evtx, records, unsupported), (10, 248, 1));
}

#[test]
fn evtx_attack_samples_totals() {
    let Some(root) = corpora() else { return };
    let root = root.join("evtx-attack-samples");
    let (files, werr) = walk(std::slice::from_ref(&root));
    assert!(werr.is_empty(), "{werr:?}");
    assert_eq!(files.len(), 278);
    let mut evtx_files = 0;
    let mut records = 0usize;
    let mut failed = 0usize;
    let mut unsupported = Vec::new();
    let mut per_channel: BTreeMap<String, usize> = BTreeMap::new();
    // Web server logs beside the EVTX files, read since issue #21:
    // (file, format, events, errors).
    let mut web_logs = Vec::new();
    for f in &files {
        match open(f) {
            Ok(it) if it.format() != Format::Evtx => {
                let rel = f
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let format = it.format();
                let (ok, err): (Vec<_>, Vec<_>) = it.partition(Result::is_ok);
                web_logs.push((rel, format, ok.len(), err.len()));
            }
            Ok(it) => {
                evtx_files += 1;
                for r in it {
                    match r {
                        Ok(ev) => {
                            records += 1;
                            assert_meta_consistent(&ev);
                            assert!(ev.meta.timestamp.is_some() && ev.meta.record_id.is_some());
                            *per_channel
                                .entry(ev.meta.channel.clone().unwrap_or_default())
                                .or_default() += 1;
                        }
                        Err(_) => failed += 1,
                    }
                }
            }
            Err(e) => {
                assert!(matches!(e, ReadError::UnsupportedFormat { .. }), "{e}");
                assert!(e.to_string().contains("not a supported log format"));
                let rel = f
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                unsupported.push(rel);
            }
        }
    }
    assert_eq!(evtx_files, 269);
    assert_eq!(records, 7455);
    assert_eq!(failed, 0);
    assert_eq!(
        unsupported,
        [
            "Command and Control/cmds over dns txt queries and reponses.pcap",
            "Command and Control/readme.md",
            "Credential Access/etw_ad_netlogon_provider_zerologon_mimikatz.etl",
            "LICENSE.GPL",
            "Other/emotet/README.md",
            "Other/netlogon_log_CVE-2020-1472_ZeroLogon.txt",
            "README.md",
        ]
    );
    // IIS W3C: 4,298 entries (`grep -v '^#'`, less one blank CRLF line);
    // Tomcat access log: 2,661 lines (`wc -l`), two with unescaped quotes in
    // the request; line 27 is raw TLS bytes, read lossily and noted by one
    // InvalidUtf8 error that loses nothing.
    assert_eq!(
        web_logs,
        [
            (
                "Command and Control/Tunna_rdp_tunnel_IIS.log".to_owned(),
                Format::W3c,
                4298,
                0
            ),
            (
                "Command and Control/web_attack_and_isp_webshell_localhost_access_log.txt"
                    .to_owned(),
                Format::AccessLog,
                2661,
                1
            ),
        ]
    );
    // The 415 records of etw_rpc_zerologon.evtx (an ETW capture) have no Channel.
    assert_eq!(per_channel.get(""), Some(&415));
    assert_eq!(per_channel.get("Security"), Some(&1577));
    assert_eq!(
        per_channel.get("Microsoft-Windows-Sysmon/Operational"),
        Some(&2452)
    );
}

#[test]
fn regression_json_matches_its_evtx() {
    let Some(root) = corpora() else { return };
    let dir = root.join(
        "sigma/regression_data/rules/windows/file/file_event/file_event_win_hktl_netexec_file_indicators",
    );
    let stem = dir.join("efc21479-9e83-41da-8cf1-122e06ba8db3");
    let json = stem.with_extension("json");
    let evtx = stem.with_extension("evtx");
    // The regression JSON is pretty-printed evtx-JSON objects written one
    // after another (not an array): it sniffs as JSON lines.
    assert_eq!(open(&json).unwrap().format(), Format::JsonLines);
    let (je, jerr) = read_all(&json);
    let (ee, eerr) = read_all(&evtx);
    assert!(jerr.is_empty() && eerr.is_empty());
    let key = |e: &Event| {
        (
            e.meta.event_id,
            text(e, "Image"),
            text(e, "TargetFilename"),
            text(e, "Computer"),
        )
    };
    let jk: Vec<_> = je.iter().map(key).collect();
    let ek: Vec<_> = ee.iter().map(key).collect();
    assert_eq!(jk.len(), 7);
    assert_eq!(jk, ek);
    assert!(jk.iter().all(|k| k.0 == Some(11)));

    // Every pair in regression_data: same events, same field names in the
    // same order, same values up to the renderer differences of the JSON
    // files (written by other evtx renderers): GUIDs without braces in upper
    // case, times cut to microseconds, trailing spaces trimmed (and one
    // `ParentCommandLine` differing in letter case only): compared in lower case.
    let (files, _) = walk(&[root.join("sigma/regression_data")]);
    let mut pairs = 0;
    let mut events = 0;
    for j in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let e = j.with_extension("evtx");
        if !e.exists() {
            continue;
        }
        let (je, jerr) = read_all(j);
        let (ee, eerr) = read_all(&e);
        assert!(jerr.is_empty() && eerr.is_empty(), "{}", j.display());
        let jn: Vec<_> = je.iter().map(normalise).collect();
        let en: Vec<_> = ee.iter().map(normalise).collect();
        assert_eq!(jn, en, "{}", j.display());
        pairs += 1;
        events += je.len();
    }
    assert_eq!((pairs, events), (202, 238));
}

/// An event's meta and fields with renderer-specific spellings evened out.
fn normalise(ev: &Event) -> (String, Vec<(String, String)>) {
    let mut meta = ev.meta.clone();
    meta.timestamp = meta
        .timestamp
        .map(|t| t - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1000)));
    let fields = ev
        .fields()
        .map(|(k, v)| {
            let t = v.to_text();
            let mut t = t
                .trim_end()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_string();
            // GUID case differs; one file also has `Explorer.exe` for `Explorer.EXE`.
            t.make_ascii_lowercase();
            if k == "TimeCreated" {
                // 2026-07-17t14:18:34.0722135z -> 2026-07-17t14:18:34.072213
                t = t.trim_end_matches('z').chars().take(26).collect();
            }
            (k.to_string(), t)
        })
        .collect();
    (format!("{meta:?}"), fields)
}

#[test]
fn mordor_counts_and_channel_casing() {
    let Some(root) = corpora() else { return };
    let root = root.join("mordor/windows");
    let f = root.join("discovery/host/empire_shell_net_local_users/empire_shell_net_local_users_2020-09-21192606.json");
    let lines = std::fs::read_to_string(&f).unwrap().lines().count();
    let (ev, err) = read_all(&f);
    assert!(err.is_empty());
    assert_eq!(lines, 1907);
    assert_eq!(ev.len(), lines);
    // 323 records say "security", 77 "Security": all become "Security".
    let security = ev
        .iter()
        .filter(|e| e.meta.channel.as_deref() == Some("Security"))
        .count();
    assert_eq!(security, 400);
    assert!(ev
        .iter()
        .all(|e| text(e, "Channel").as_deref() != Some("security")));
    ev.iter().for_each(assert_meta_consistent);
    let first = &ev[0];
    assert!(first.meta.timestamp.is_some() && first.meta.computer.is_some());

    // A file with one blank line: records = non-blank lines.
    let f =
        root.join("lateral_movement/host/schtask_create/schtask_create_2020-12-1907003032.json");
    let content = std::fs::read_to_string(&f).unwrap();
    assert_eq!(content.lines().count(), 1042);
    let (ev, err) = read_all(&f);
    assert!(err.is_empty());
    assert_eq!(
        ev.len(),
        content.lines().filter(|l| !l.trim().is_empty()).count()
    );
    assert_eq!(ev.len(), 1041);

    // All 54 datasets.
    let (files, _) = walk(&[root]);
    let mut total = 0;
    for f in &files {
        let (ev, err) = read_all(f);
        assert!(err.is_empty(), "{}", f.display());
        total += ev.len();
    }
    assert_eq!((files.len(), total), (54, 48_241));
}

#[test]
fn truncated_evtx_keeps_records_before_the_cut() {
    let Some(root) = corpora() else { return };
    let src = root.join("samples-cc0/EVTX_full_APT_attack_steps/ID4688,5140,5145-WMIexec execution via SMB (GLOBAL).evtx");
    let bytes = std::fs::read(&src).unwrap();
    let (full, _) = read_all(&src);
    assert_eq!(full.len(), 97);
    let dir = tempfile::tempdir().unwrap();
    // Chunk 0 holds records 1-81, chunk 1 records 82-97 (the rest of the
    // 1 MiB file is empty chunks). (cut length, records wholly before the cut,
    // as counted by walking the record headers by hand)
    let cases = [
        (4096 + 30_000, 24),          // inside chunk 0
        (4096 + 65_536 + 20_000, 93), // inside chunk 1
        (4096 + 65_536, 81),          // at the chunk boundary
        (5000, 0),                    // inside the first record
        (100, 0),                     // inside the file header
    ];
    for (cut, expected) in cases {
        let p = dir.path().join(format!("cut_{cut}.evtx"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let it = match open(&p) {
            Ok(it) => it,
            Err(e) => {
                // Too short for an EVTX file header.
                assert!(cut < 4096, "{e}");
                assert!(matches!(e, ReadError::Evtx { .. }));
                continue;
            }
        };
        let results: Vec<_> = it.collect();
        let events: Vec<&Event> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(events.len(), expected, "cut at {cut}");
        for (a, b) in events.iter().zip(&full) {
            assert_eq!(*a, b, "cut at {cut}: records before the cut are intact");
        }
        let last = results.last().unwrap().as_ref().unwrap_err();
        assert_eq!(
            last.kind,
            RecordErrorKind::Truncated,
            "cut at {cut}: {last}"
        );
        assert!(last.to_string().contains(&p.display().to_string()));
    }
}

/// A tiny deterministic PRNG (xorshift64*), so the fuzz inputs are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn garbage_and_damaged_files_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let prefixes: [&[u8]; 5] = [b"", b"ElfFile\0", b"[", b"{", b"\xEF\xBB\xBF{\""];
    for (i, prefix) in prefixes.iter().enumerate() {
        for size in [0usize, 7, 600, 5_000, 70_000] {
            let mut data = prefix.to_vec();
            data.extend((0..size).map(|_| rng.next() as u8));
            let p = dir.path().join(format!("garbage_{i}_{size}.bin"));
            std::fs::write(&p, &data).unwrap();
            if let Ok(it) = open(&p) {
                let n = it.count();
                assert!(n <= size + 1);
            }
        }
    }

    // Real EVTX with random bytes overwritten inside its records: every
    // call returns, and damaged records become errors, not panics.
    let Some(root) = corpora() else { return };
    let src = root.join("samples-cc0/TA0005-Defense Evasion/T1070.001-Clear Windows event logs/ID104-1102-Event log cleared.evtx");
    let bytes = std::fs::read(&src).unwrap();
    let mut errors = 0;
    for round in 0..40 {
        let mut data = bytes.clone();
        for _ in 0..(1 + round % 8) * 4 {
            let pos = 4096 + 512 + (rng.next() as usize % 60_000);
            data[pos] = rng.next() as u8;
        }
        let it = tracehunt_readers::open_bytes(format!("damaged_{round}.evtx"), data).unwrap();
        for r in it {
            if let Err(e) = r {
                errors += 1;
                assert!(e
                    .to_string()
                    .starts_with(&format!("damaged_{round}.evtx: ")));
            }
        }
    }
    assert!(errors > 0, "random damage never produced a record error");
}

#[test]
fn walk_is_sorted_and_reports_missing_paths() {
    let Some(root) = corpora() else { return };
    let a = walk(&[root.join("samples-cc0")]).0;
    let b = walk(&[root.join("samples-cc0")]).0;
    assert_eq!(a, b);
    assert_eq!(a.len(), 11);
    assert!(a[0].ends_with(
        "EVTX_full_APT_attack_steps/ID4688,5140,5145-WMIexec execution via SMB (GLOBAL).evtx"
    ));
    let (files, errs) = walk(&[root.join("does-not-exist")]);
    assert!(files.is_empty());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].to_string().contains("does-not-exist"));
    // A file argument is taken as is.
    let one = walk(&[a[3].clone()]).0;
    assert_eq!(one, [a[3].clone()]);
}

/// The chunk-parallel API ([`tracehunt_readers::open_evtx_chunks`]) gives,
/// chunk by chunk and on several threads, exactly the items of the
/// streaming reader — on every EVTX file of evtx-attack-samples
/// (GPL-3.0, sbousseaden/EVTX-ATTACK-SAMPLES) and samples-cc0 — and the
/// same records the `evtx` crate's own record iterator finds.
#[test]
fn chunk_api_equals_streaming_on_corpora() {
    let Some(root) = corpora() else { return };
    let (files, _) = walk(&[root.join("evtx-attack-samples"), root.join("samples-cc0")]);
    let mut evtx_files = 0;
    let mut records = 0;
    for f in files {
        let Ok(chunks) = tracehunt_readers::open_evtx_chunks(&f) else {
            continue;
        };
        evtx_files += 1;
        let stream: Vec<_> = open(&f).unwrap().collect();
        let parallel: Vec<Vec<_>> = std::thread::scope(|s| {
            let chunks = &chunks;
            let half = chunks.len() / 2;
            let a = s.spawn(move || (0..half).map(|i| chunks.chunk(i)).collect::<Vec<_>>());
            let b = s.spawn(move || {
                (half..chunks.len())
                    .rev()
                    .map(|i| chunks.chunk(i))
                    .collect::<Vec<_>>()
            });
            let mut out = a.join().unwrap();
            out.extend(b.join().unwrap().into_iter().rev());
            out
        });
        let concat: Vec<_> = parallel.into_iter().flatten().collect();
        assert_eq!(stream, concat, "{}", f.display());
        let ids: Vec<u64> = stream
            .iter()
            .map(|r| r.as_ref().unwrap().meta.record_id.unwrap())
            .collect();
        let mut p = evtx::EvtxParser::from_path(&f).unwrap();
        let crate_ids: Vec<u64> = p
            .records_json_value()
            .map(|r| {
                let r = r.unwrap();
                r.data["Event"]["System"]["EventRecordID"]
                    .as_u64()
                    .unwrap_or(r.event_record_id)
            })
            .collect();
        assert_eq!(ids, crate_ids, "{}: record order", f.display());
        records += ids.len();
    }
    assert_eq!((evtx_files, records), (279, 7455 + 248));
}
