//! Every correlation type on real Windows events from the EVTX corpora
//! (`../shared/corpora/evtx-attack-samples`, EVTX-ATTACK-SAMPLES, GPL-3.0,
//! read at test time, not copied), including window expiry. Sequences are
//! the real ones in the files; where a file has too few events for a type
//! (brute force), real events are replayed with shifted timestamps.
//!
//! Skipped (with a note) when the corpus is not present.

use chrono::{DateTime, Duration, Utc};
use std::path::{Path, PathBuf};
use tracehunt_correlate::{CorrelationHit, CorrelationSet};
use tracehunt_engine::{compile, CompileOptions, Ruleset, Scanner};
use tracehunt_event::Event;

fn corpus(rel: &str) -> Option<PathBuf> {
    // `TRACEHUNT_CORPORA` overrides the default `../shared/corpora` next
    // to the repository.
    let root = std::env::var_os("TRACEHUNT_CORPORA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"),
        PathBuf::from,
    );
    let p = root.join("evtx-attack-samples").join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not present", p.display());
        None
    }
}

fn events(path: &Path) -> Vec<Event> {
    let mut v: Vec<Event> = tracehunt_readers::open(path)
        .expect("readable")
        .filter_map(Result::ok)
        .filter(|e| e.meta.timestamp.is_some())
        .collect();
    v.sort_by_key(|e| e.meta.timestamp);
    v
}

fn rules(yaml: &str) -> (Ruleset, CorrelationSet) {
    let f = tracehunt_sigma::load_rules("corr.yml", yaml);
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let (cs, d) = CorrelationSet::compile(&f.correlations, &rs);
    assert!(d.is_empty(), "{d:?}");
    (rs, cs)
}

/// Scans the events, feeds the hits in time order, flushes; handles are
/// event indices.
fn run(rs: &Ruleset, cs: &CorrelationSet, evs: &[Event]) -> Vec<CorrelationHit> {
    let mut sc = Scanner::new(rs);
    let mut c = cs.correlator();
    let mut out = Vec::new();
    let mut hits = Vec::new();
    for (i, e) in evs.iter().enumerate() {
        hits.clear();
        sc.scan(e, &mut hits);
        for &r in &hits {
            out.extend(c.feed(r, e.meta.timestamp.expect("timed"), i as u64, e));
        }
    }
    out.extend(c.flush());
    out
}

fn at(evs: &[Event], i: u64) -> DateTime<Utc> {
    evs[i as usize].meta.timestamp.expect("timed")
}

const LOGONS: &str = "title: Failed logon
id: 10000000-0000-4000-8000-000000000001
name: failed_logon
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4625}
  condition: sel
---
title: Successful logon
id: 10000000-0000-4000-8000-000000000002
name: successful_logon
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4624}
  condition: sel
";

#[test]
fn temporal_ordered_failed_then_successful_logon() {
    // The file's real sequence: 4625 for IEUser at 13:18:23.6, then 4624s
    // (SYSTEM at :25.4, IEUser at :27.7).
    let Some(p) = corpus("Credential Access/CA_4624_4625_LogonType2_LogonProc_chrome.evtx") else {
        return;
    };
    let evs = events(&p);
    let mk = |span: &str| {
        rules(&format!(
            "{LOGONS}---
title: Failed then successful logon
correlation:
  type: temporal_ordered
  rules: [failed_logon, successful_logon]
  group-by: [TargetUserName]
  timespan: {span}
level: high
"
        ))
    };
    let (rs, cs) = mk("1m");
    let h = run(&rs, &cs, &evs);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].group, vec![("TargetUserName".into(), "IEUser".into())]);
    assert_eq!(h[0].event_count, 2);
    assert!((h[0].last - h[0].first) > Duration::seconds(4));
    assert_eq!(h[0].first, at(&evs, h[0].events[0]));
    // Window expiry: 4 s apart does not fit in 3 s.
    let (rs, cs) = mk("3s");
    assert!(run(&rs, &cs, &evs).is_empty());
}

#[test]
fn event_count_brute_force_replayed_from_a_real_failed_logon() {
    // The real 4625 replayed 6 times 5 s apart, then the real 4624 of
    // the same user: 6 failures within 30 s fire `gte: 5` once; spread
    // 20 s apart they never have 5 in one minute (expiry).
    let Some(p) = corpus("Credential Access/CA_4624_4625_LogonType2_LogonProc_chrome.evtx") else {
        return;
    };
    let evs = events(&p);
    let failed = evs
        .iter()
        .find(|e| e.meta.event_id == Some(4625))
        .expect("one 4625")
        .clone();
    let replay = |gap: i64| -> Vec<Event> {
        let t0 = failed.meta.timestamp.expect("timed");
        let mut v: Vec<Event> = (0..6)
            .map(|i| {
                let mut e = failed.clone();
                e.meta.timestamp = Some(t0 + Duration::seconds(gap * i));
                e
            })
            .collect();
        let mut ok = evs
            .iter()
            .find(|e| {
                e.meta.event_id == Some(4624)
                    && tracehunt_correlate::Fields::field(*e, "TargetUserName").as_deref()
                        == Some("IEUser")
            })
            .expect("IEUser 4624")
            .clone();
        ok.meta.timestamp = Some(t0 + Duration::seconds(gap * 6));
        v.push(ok);
        v
    };
    let (rs, cs) = rules(&format!(
        "{LOGONS}---
title: Brute force
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName, WorkstationName]
  timespan: 1m
  condition: {{gte: 5}}
level: medium
"
    ));
    let h = run(&rs, &cs, &replay(5));
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].value, 5.0);
    assert_eq!(h[0].events, vec![0, 1, 2, 3, 4]);
    assert_eq!(
        h[0].group,
        vec![
            ("TargetUserName".into(), "IEUser".into()),
            ("WorkstationName".into(), "MSEDGEWIN10".into())
        ]
    );
    assert!(run(&rs, &cs, &replay(20)).is_empty());
}

const NET: &str = "title: Kerberos connection
name: kerberos_conn
logsource: {product: windows, service: security}
detection:
  sel:
    EventID: 5156
    DestPort: 88
  condition: sel
---
title: Connection by lsass
name: lsass_conn
logsource: {product: windows, service: security}
detection:
  sel:
    EventID: 5156
    Application|endswith: '\\lsass.exe'
  condition: sel
---
title: plink started
name: plink_start
logsource: {product: windows, category: process_creation}
detection:
  sel:
    Image|endswith: '\\plink.exe'
  condition: sel
---
title: Local RDP tunnel connection
name: rdp_loopback
logsource: {product: windows, service: security}
detection:
  sel:
    EventID: 5156
    DestPort: 3389
    DestAddress|startswith: '127.'
  condition: sel
";

const RDP_TUNNEL: &str = "Command and Control/DE_RDP_Tunnel_5156.evtx";

#[test]
fn event_count_real_kerberos_burst() {
    // Four real 5156 connections to port 88 from 10.0.2.17 within 50 ms
    // (18:02:04.426–.476), four more at 18:04:58.
    let Some(p) = corpus(RDP_TUNNEL) else { return };
    let evs = events(&p);
    let mk = |span: &str| {
        rules(&format!(
            "{NET}---
title: Kerberos burst
correlation:
  type: event_count
  rules: [kerberos_conn]
  group-by: [SourceAddress]
  timespan: {span}
  condition: {{gte: 4}}
"
        ))
    };
    let (rs, cs) = mk("1s");
    let h = run(&rs, &cs, &evs);
    assert!(!h.is_empty());
    assert!(h
        .iter()
        .all(|h| h.group[0].1 == "10.0.2.17" && h.value == 4.0));
    assert!(h.iter().all(|h| h.last - h.first <= Duration::seconds(1)));
    // 1 ms windows never hold four (expiry).
    let (rs, cs) = mk("0s");
    assert!(run(&rs, &cs, &evs).is_empty());
}

#[test]
fn value_count_distinct_ports_of_lsass() {
    // lsass talks to 10.0.2.15 on ports 88, 135, 49155 within 2 s.
    let Some(p) = corpus(RDP_TUNNEL) else { return };
    let evs = events(&p);
    let mk = |span: &str| {
        rules(&format!(
            "{NET}---
title: lsass to many ports
correlation:
  type: value_count
  rules: [lsass_conn]
  group-by: [DestAddress]
  timespan: {span}
  condition: {{field: DestPort, gte: 3}}
"
        ))
    };
    let (rs, cs) = mk("5s");
    let h = run(&rs, &cs, &evs);
    assert!(!h.is_empty(), "no hit");
    assert_eq!(h[0].group[0].1, "10.0.2.15");
    assert_eq!(h[0].value, 3.0);
    let ports: Vec<String> = h[0]
        .events
        .iter()
        .map(|&i| tracehunt_correlate::Fields::field(&evs[i as usize], "DestPort").unwrap())
        .collect();
    assert!(ports.contains(&"135".to_string()) && ports.contains(&"88".to_string()));
    // Zero-length windows only hold simultaneous connections (at most two
    // ports), so nothing fires (expiry).
    let (rs, cs) = mk("0s");
    assert!(run(&rs, &cs, &evs).is_empty());
}

#[test]
fn temporal_plink_then_rdp_loopback_on_one_host() {
    // plink.exe starts at 18:03:28 (4688), the tunnelled RDP connection to
    // 127.0.0.2:3389 follows at 18:04:01 — 33 s later.
    let Some(p) = corpus(RDP_TUNNEL) else { return };
    let evs = events(&p);
    let mk = |span: &str| {
        rules(&format!(
            "{NET}---
title: RDP tunnel through plink
correlation:
  type: temporal
  rules: [plink_start, rdp_loopback]
  group-by: [Computer]
  timespan: {span}
level: high
"
        ))
    };
    let (rs, cs) = mk("1m");
    let h = run(&rs, &cs, &evs);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].group[0].1, "PC01.example.corp");
    assert_eq!(h[0].value, 2.0);
    let secs = (h[0].last - h[0].first).num_seconds();
    assert!((30..=35).contains(&secs), "{secs}");
    let (rs, cs) = mk("10s");
    assert!(run(&rs, &cs, &evs).is_empty(), "33 s do not fit in 10 s");
}

#[test]
fn value_sum_avg_percentile_median_on_real_ports() {
    // lsass's real 5156 destination ports within the 2 s around 18:02:04:
    // 88, 88, 88, 88, 135, 49155.
    let Some(p) = corpus(RDP_TUNNEL) else { return };
    let evs = events(&p);
    let lsass: Vec<f64> = evs
        .iter()
        .filter(|e| {
            e.meta.event_id == Some(5156)
                && tracehunt_correlate::Fields::field(*e, "Application")
                    .is_some_and(|a| a.ends_with("\\lsass.exe"))
        })
        .take(6)
        .map(|e| {
            tracehunt_correlate::Fields::field(e, "DestPort")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(lsass, vec![88.0, 88.0, 88.0, 88.0, 135.0, 49155.0]);
    let mk = |kind: &str, cond: &str, span: &str| {
        rules(&format!(
            "{NET}---
title: lsass ports
correlation:
  type: {kind}
  rules: [lsass_conn]
  group-by: [SourceAddress]
  timespan: {span}
  condition: {cond}
"
        ))
    };
    // Sum reaches 49,642 with the 6th connection.
    let (rs, cs) = mk("value_sum", "{field: DestPort, gte: 49000}", "5s");
    let h = run(&rs, &cs, &evs);
    assert_eq!(h[0].value, 49642.0);
    assert_eq!(h[0].event_count, 6);
    // Same threshold, 1 s windows: the 6th connection comes > 1 s later.
    let (rs, cs) = mk("value_sum", "{field: DestPort, gte: 49000}", "1s");
    assert!(run(&rs, &cs, &evs)
        .iter()
        .all(|h| h.value < 49642.0 && h.event_count < 6));
    // Average over the 5 s window that opens at 18:02:04.426.
    let (rs, cs) = mk("value_avg", "{field: DestPort, gt: 1000}", "5s");
    let h = run(&rs, &cs, &evs);
    assert!(!h.is_empty());
    assert!((h[0].value - 49642.0 / 6.0).abs() < 1e-6, "{}", h[0].value);
    // Median 88 (< 100); 90th percentile 49155 (nearest rank 6 of 6).
    let (rs, cs) = mk("value_median", "{field: DestPort, lt: 100}", "5s");
    let h = run(&rs, &cs, &evs);
    assert_eq!(h[0].value, 88.0);
    let (rs, cs) = mk(
        "value_percentile",
        "{field: DestPort, percentile: 90, gte: 49155}",
        "5s",
    );
    let h = run(&rs, &cs, &evs);
    assert_eq!(h[0].value, 49155.0);
}
