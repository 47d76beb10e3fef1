//! Bulk-insert benchmark: one hunt of N synthetic detections over 2,000 incidents.
//!
//! `cargo run --release -p tracehunt-store --example bulk -- [N] [PATH]`
//! (N defaults to 1,000,000; PATH to `tracehunt-bulk.db` in the temporary directory; an
//! existing file there is replaced). Prints detections/s, seconds, file size after commit
//! (database + WAL) and peak RSS (VmHWM).

use std::path::PathBuf;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use tracehunt_store::{
    CandidateRec, DetectionRec, HuntRun, IncidentRec, RuleRec, SightingRec, SourceRec, Store,
};

const INCIDENTS: u64 = 2_000;
const RULES: u64 = 50;
const HOSTS: u64 = 40;

/// SplitMix64: a well-mixed 64-bit value per index (event keys look random, like hashes).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn file_size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let path = args.next().map_or_else(
        || std::env::temp_dir().join("tracehunt-bulk.db"),
        PathBuf::from,
    );
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let rules: Vec<String> = (0..RULES)
        .map(|r| format!("{:08x}-0000-4000-8000-{:012x}", mix(r) as u32, r))
        .collect();
    let hosts: Vec<String> = (0..HOSTS)
        .map(|h| format!("WS{h:03}.corp.example"))
        .collect();
    let incidents: Vec<String> = (0..INCIDENTS)
        .map(|i| format!("inc-{:016x}", mix(i + 1_000_000)))
        .collect();

    let mut store = Store::open(&path)?;
    let started = Instant::now();
    let mut hunt = store.begin_hunt(&HuntRun {
        started_at: base,
        tool_version: "bench".into(),
        ruleset_hash: "0".repeat(64),
        attack_version: "18.1".into(),
        parameters: serde_json::json!({"bench": n}),
    })?;
    hunt.add_source(&SourceRec {
        path: "synthetic.evtx".into(),
        content_hash: "ab".repeat(32),
        format: "evtx".into(),
        first_event: Some(base),
        last_event: Some(base + Duration::seconds(n as i64)),
        events_read: n,
        records_lost: 0,
    })?;
    for (r, id) in rules.iter().enumerate() {
        hunt.add_rule(&RuleRec {
            rule_id: id.clone(),
            content_hash: format!("{r:064x}"),
            title: format!("Synthetic rule {r}"),
            level: "high".into(),
        })?;
    }
    for i in 0..n {
        let (a, b) = (mix(2 * i), mix(2 * i + 1));
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&a.to_le_bytes());
        key[8..].copy_from_slice(&b.to_le_bytes());
        hunt.add_detection(&DetectionRec {
            rule_id: &rules[(a % RULES) as usize],
            event_key: key,
            time: Some(base + Duration::milliseconds(i as i64 * 37)),
            host: Some(&hosts[(b % HOSTS) as usize]),
            source: "synthetic.evtx",
            level: "high",
            incident_id: Some(&incidents[(i % INCIDENTS) as usize]),
        })?;
    }
    let detections_done = started.elapsed().as_secs_f64();
    for (k, id) in incidents.iter().enumerate() {
        let group = format!("G{:04}", k % 37);
        hunt.add_incident(&IncidentRec {
            id: id.clone(),
            first_seen: Some(base + Duration::seconds(k as i64)),
            last_seen: Some(base + Duration::seconds(n as i64 / 27)),
            // One host per incident: incidents sharing a host and a time
            // range would be joined into the oldest (`add_incident`).
            hosts: vec![format!("IH{k:05}.corp.example")],
            users: vec![format!("user{}", k % 100)],
            entities: vec![("user".into(), format!("user{}", k % 100))],
            max_level: "high".into(),
            detections: n / INCIDENTS,
            tactics: vec!["credential-access".into()],
            techniques: vec!["T1003.001".into()],
            verdict: "attributed".into(),
            confident: k % 2 == 0,
            candidates: vec![CandidateRec {
                rank: 1,
                group_id: group.clone(),
                group_name: format!("Group {group}"),
                probability: 0.6,
                confidence: 60,
                confidence_label: "moderate".into(),
                evidence: serde_json::json!({"techniques": ["T1003.001"]}),
            }],
            sightings: vec![SightingRec {
                group_id: group.clone(),
                group_name: format!("Group {group}"),
                state: None,
                rank: 1,
                confidence: 60,
            }],
        })?;
    }
    let stats = hunt.commit(base + Duration::hours(1), n)?;
    let secs = started.elapsed().as_secs_f64();
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    let bytes = file_size(&path) + file_size(std::path::Path::new(&wal));
    println!(
        "detections: {} ({} new) over {} incidents in one hunt",
        stats.detections, stats.detections_new, stats.incidents
    );
    println!(
        "insert rate: {:.0} detections/s (detections alone {:.2} s; {:.0}/s)",
        n as f64 / secs,
        detections_done,
        n as f64 / detections_done
    );
    println!("total: {secs:.2} s (begin_hunt to commit)");
    println!(
        "file: {:.1} MB (database + WAL after commit) at {}",
        bytes as f64 / 1e6,
        path.display()
    );
    println!("peak RSS (VmHWM): {}", vm_hwm());
    Ok(())
}
