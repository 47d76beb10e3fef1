//! Entity extraction and grouping on real Mordor datasets
//! (`../shared/corpora/mordor/windows/`, OTRF/Security-Datasets d9d40ef1, MIT;
//! flat JSON lines). Skipped when the corpora are absent.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::PathBuf;
use tracehunt_event::{Event, EventMeta, Value};
use tracehunt_incidents::{extract, Config, EntityKind, Grouper, Names};

use EntityKind::{Domain, Hash, Ip, LogonId, ProcessGuid, User};

const COPY_SMB: &str = "lateral_movement/host/covenant_copy_smb_CreateRequest/\
                        covenant_copy_smb_CreateRequest_2020-09-22145302.json";
const IE_VERSION: &str = "discovery/host/cmd_discover_iexplorer_version_registry/\
                          cmd_discover_iexplorer_version_registry_2020-10-2123281491.json";
const MAVINJECT: &str =
    "defense_evasion/host/psh_mavinject_dll_notepad/psh_mavinject_dll_notepad_2020-10-2121410529.json";
const BITSADMIN: &str = "defense_evasion/host/cmd_bitsadmin_download_psh_script/\
                         cmd_bitsadmin_download_psh_script_2020-10-2302365189.json";

fn mordor() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    if !root.is_dir() {
        eprintln!("skipped: ../shared/corpora not present");
        return None;
    }
    Some(root.join("mordor/windows"))
}

/// The records of one file as (raw JSON, Event of string values).
fn load(dir: &std::path::Path, file: &str) -> Vec<(serde_json::Map<String, Json>, Event)> {
    let text = std::fs::read_to_string(dir.join(file)).expect("dataset readable");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let Json::Object(obj) = serde_json::from_str(line).expect("JSON line") else {
                panic!("not an object: {line}");
            };
            let meta = EventMeta {
                timestamp: obj
                    .get("@timestamp")
                    .and_then(Json::as_str)
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok()),
                computer: obj
                    .get("Hostname")
                    .and_then(Json::as_str)
                    .map(str::to_owned),
                ..EventMeta::default()
            };
            let mut ev = Event::with_meta(meta);
            for (k, v) in &obj {
                let text = match v {
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.to_string(),
                    Json::Bool(b) => b.to_string(),
                    _ => continue,
                };
                ev.push(k.as_str(), Value::Str(text));
            }
            (obj, ev)
        })
        .collect()
}

/// The one record with every (key, value) of `pairs` (a number compares by its JSON text).
fn record<'a>(
    recs: &'a [(serde_json::Map<String, Json>, Event)],
    pairs: &[(&str, &str)],
) -> &'a Event {
    let hits: Vec<&Event> = recs
        .iter()
        .filter(|(obj, _)| {
            pairs.iter().all(|(k, v)| {
                obj.get(*k).is_some_and(|j| match j {
                    Json::String(s) => s == v,
                    other => other.to_string().as_str() == *v,
                })
            })
        })
        .map(|(_, ev)| ev)
        .collect();
    assert_eq!(hits.len(), 1, "{pairs:?}");
    hits[0]
}

fn entities(ev: &Event) -> Vec<(EntityKind, String)> {
    let mut out = Vec::new();
    extract(ev, &mut out);
    out.sort();
    out
}

fn want(list: &[(EntityKind, &str)]) -> Vec<(EntityKind, String)> {
    let mut v: Vec<_> = list.iter().map(|(k, s)| (*k, (*s).to_owned())).collect();
    v.sort();
    v
}

#[test]
fn entities_of_known_mordor_events() {
    let Some(dir) = mordor() else { return };
    let smb = load(&dir, COPY_SMB);
    // 4624 network logon on WORKSTATION6 from WORKSTATION5's address; subject
    // fields are `-` / 0x0.
    let logon = record(&smb, &[("EventID", "4624"), ("RecordNumber", "933021")]);
    assert_eq!(
        entities(logon),
        want(&[
            (User, "theshire.local\\pgustavo"),
            (Ip, "172.18.39.5"),
            (LogonId, "0x4e13b2e"),
        ])
    );
    // 4624 on the DC from ::1 (a stop value): the machine account stays.
    let dc = record(&smb, &[("EventID", "4624"), ("RecordNumber", "2193190")]);
    assert_eq!(
        entities(dc),
        want(&[(User, "theshire.local\\mordordc$"), (LogonId, "0x7b90596")])
    );
    // Sysmon 3 by NT AUTHORITY\SYSTEM (stop): only addresses and the GUID.
    let net = record(&smb, &[("EventID", "3"), ("RecordNumber", "3518604")]);
    assert_eq!(
        entities(net),
        want(&[
            (Ip, "172.18.39.5"),
            (Ip, "172.18.39.6"),
            (ProcessGuid, "b34bc01c-2255-5f69-0100-000000000900"),
        ])
    );

    let ie = load(&dir, IE_VERSION);
    // Sysmon 1 of reg.exe: three hashes, not IMPHASH; LogonGuid is not read.
    let proc = record(&ie, &[("EventID", "1"), ("ProcessId", "2200")]);
    assert_eq!(
        entities(proc),
        want(&[
            (User, "workstation5\\wardog"),
            (LogonId, "0xc61d9"),
            (ProcessGuid, "39e4a257-fc4b-5f90-9411-000000000700"),
            (ProcessGuid, "39e4a257-fc2f-5f90-9211-000000000700"),
            (Hash, "eb3b03616eee42f16d0703f64de23e7e34fe8524"),
            (Hash, "601bddf7691c5af626a5719f1d7e35f1"),
            (
                Hash,
                "4ed2a27860fa154415f65452ff1f94bd6af762982e2f3470030c504dc3c8a354"
            ),
        ])
    );
    // 4688 of the same process: the subject with its domain; target `-`, 0x0.
    let p4688 = record(&ie, &[("EventID", "4688"), ("NewProcessId", "0x898")]);
    assert_eq!(
        entities(p4688),
        want(&[(User, "workstation5\\wardog"), (LogonId, "0xc61d9")])
    );

    let dns = load(&dir, MAVINJECT);
    let query = record(
        &dns,
        &[
            ("QueryName", "raw.githubusercontent.com"),
            ("TimeCreated", "2020-10-21T09:40:44.583Z"),
        ],
    );
    assert_eq!(
        entities(query),
        want(&[
            (Domain, "raw.githubusercontent.com"),
            (ProcessGuid, "39e4a257-e287-5f90-cc10-000000000700"),
        ])
    );
    let bits = load(&dir, BITSADMIN);
    let local = record(
        &bits,
        &[
            ("QueryName", "localhost"),
            ("TimeCreated", "2020-10-23T02:36:44.970Z"),
        ],
    );
    assert_eq!(
        entities(local),
        want(&[(ProcessGuid, "39e4a257-79fb-5f92-7217-000000000700")])
    );
}

#[test]
fn no_stop_value_in_any_entity_of_four_datasets() {
    let Some(dir) = mordor() else { return };
    let (mut events, mut found) = (0, 0);
    let mut kinds = HashMap::new();
    for file in [COPY_SMB, IE_VERSION, MAVINJECT, BITSADMIN] {
        for (_, ev) in load(&dir, file) {
            events += 1;
            for (kind, value) in entities(&ev) {
                found += 1;
                *kinds.entry(kind).or_insert(0) += 1;
                let account = value.rsplit('\\').next().unwrap();
                let bad = match kind {
                    User => {
                        [
                            "-",
                            "system",
                            "local service",
                            "network service",
                            "anonymous logon",
                        ]
                        .contains(&account)
                            || account.starts_with("dwm-")
                            || account.starts_with("umfd-")
                    }
                    Ip => value.starts_with("127.") || value == "::1" || value.starts_with("fe80"),
                    LogonId => ["0x0", "0x3e7", "0x3e4", "0x3e5"].contains(&value.as_str()),
                    ProcessGuid => value.starts_with("00000000-"),
                    Hash => value.bytes().all(|c| c == b'0'),
                    Domain => value == "localhost" || value == "-",
                };
                assert!(!bad, "{kind:?} {value} from {file}");
                assert_eq!(value, value.to_lowercase());
            }
        }
    }
    assert!(events > 1000, "{events} events");
    // Every kind occurs in these datasets.
    assert_eq!(kinds.len(), 6, "{kinds:?} of {found}");
}

/// Names over strings interned by the test.
struct Interned {
    hosts: Vec<String>,
    entities: Vec<(EntityKind, String)>,
    rules: Vec<String>,
}

impl Names for Interned {
    fn host(&self, id: u32) -> Option<&str> {
        self.hosts.get(id as usize).map(String::as_str)
    }
    fn entity(&self, id: u32) -> (EntityKind, &str) {
        let (k, v) = &self.entities[id as usize];
        (*k, v)
    }
    fn rule_id(&self, rule: u32) -> &str {
        &self.rules[rule as usize]
    }
}

fn intern<T: PartialEq + Clone>(table: &mut Vec<T>, x: &T) -> u32 {
    match table.iter().position(|y| y == x) {
        Some(i) => i as u32,
        None => {
            table.push(x.clone());
            table.len() as u32 - 1
        }
    }
}

#[test]
fn lateral_movement_dataset_groups_into_one_incident_across_hosts() {
    let Some(dir) = mordor() else { return };
    // Every 4624 and Sysmon 3 event of the SMB copy as a "detection", in time order.
    let mut recs: Vec<Event> = load(&dir, COPY_SMB)
        .into_iter()
        .map(|(_, ev)| ev)
        .filter(|ev| {
            let id = ev.first("EventID").and_then(Value::as_i64);
            id == Some(4624) || id == Some(3)
        })
        .collect();
    recs.sort_by_key(|ev| ev.meta.timestamp);
    assert_eq!(recs.len(), 5);
    let mut names = Interned {
        hosts: Vec::new(),
        entities: Vec::new(),
        rules: Vec::new(),
    };
    let mut g = Grouper::new(Config::default());
    let mut found = Vec::new();
    for ev in &recs {
        found.clear();
        extract(ev, &mut found);
        let ids: Vec<u32> = found
            .iter()
            .map(|e| intern(&mut names.entities, e))
            .collect();
        let host = intern(&mut names.hosts, ev.meta.computer.as_ref().unwrap());
        let rule = ev.first("EventID").unwrap().to_text().into_owned();
        let rule = intern(&mut names.rules, &rule);
        let t = ev.meta.timestamp.unwrap();
        g.push(
            Some((t.timestamp(), t.timestamp_subsec_nanos())),
            host,
            rule,
            2,
            &ids,
        );
    }
    let grouping = g.finish(&names);
    // WS5's connection from 172.18.39.5 and WS6's logon from it join; the
    // DC's logon (from ::1) shares nothing rare with them.
    let hosts: Vec<Vec<String>> = grouping.incidents.iter().map(|i| i.hosts.clone()).collect();
    assert_eq!(
        hosts,
        [
            vec![
                "WORKSTATION5.theshire.local".to_owned(),
                "WORKSTATION6.theshire.local".to_owned()
            ],
            vec!["MORDORDC.theshire.local".to_owned()],
        ]
    );
    assert_eq!(grouping.incidents[0].detections, 4);
    assert_eq!(grouping.incidents[0].users, ["theshire.local\\pgustavo"]);
}
