//! Detections as Elastic Common Schema documents (`--format ecs`).
//!
//! One JSON object per detection, nested (not dotted keys), following
//! ECS 8.17 (`generated/ecs/ecs_flat.yml` of elastic/ecs, tag v8.17.0) for
//! the ECS fields and Winlogbeat's `winlog.*` fields for Windows events:
//!
//! | field | type | value |
//! |---|---|---|
//! | `@timestamp` | date (RFC 3339 UTC) | event time; absent when the event has none |
//! | `ecs.version` | keyword | [`ECS_VERSION`] |
//! | `message` | text | `[level] title: details` (whole, as in the CSV) |
//! | `host.name` | keyword | `System/Computer` |
//! | `event.kind` | keyword | `alert` |
//! | `event.module` / `event.dataset` | keyword | `tracehunt` / `tracehunt.detection` |
//! | `event.code` | keyword | EventID as a string |
//! | `event.provider` | keyword | the event's `Provider_Name`, else the provider of a `Provider/Channel` channel (`Microsoft-Windows-Sysmon`); absent otherwise |
//! | `event.severity` | long | [`severity_score`] of the rule level (Elastic's risk scores) |
//! | `event.risk_score` | float | the same number |
//! | `winlog.channel`, `winlog.event_id`, `winlog.record_id`, `winlog.computer_name` | keyword | Windows events only (Winlogbeat's types: ids as strings) |
//! | `winlog.event_data.<name>` | keyword | every event field as a string (objects and arrays as JSON text; a repeated name's later values under `<name>_2`, `<name>_3`, …; `.` in names becomes `_`) |
//! | `tracehunt.channel`, `tracehunt.event_data.<name>` | keyword | the same for non-Windows events (route keys `product:name`, Sysmon for Linux) |
//! | `rule.id`, `rule.name`, `rule.description`, `rule.author`, `rule.category`, `rule.ruleset` | keyword | Sigma rule id, title, description, author, logsource category, `sigma` |
//! | `threat.framework` | keyword | `MITRE ATT&CK` (only when the rule has ATT&CK tags) |
//! | `threat.technique.id`/`.name`/`.reference` | keyword arrays | from the rule's `attack.tNNNN` tags |
//! | `threat.tactic.id`/`.name`/`.reference` | keyword arrays | from its tactic tags (ids and references for the 14 Enterprise tactics) |
//! | `log.file.path` | keyword | the log file |
//! | `log.level` | keyword | the rule level |
//! | `tags` | keyword array | every rule tag |
//! | `labels.level` | keyword | the rule level |
//!
//! Every field has one JSON type in every document (the ids are strings,
//! every event value is a string), so one Elasticsearch mapping takes all of
//! them.

use crate::{details, Detection};
use chrono::SecondsFormat;
use serde_json::{json, Map, Value as J};
use std::io::{self, Write};
use tracehunt_engine::Ruleset;

/// The ECS version the documents follow (`ecs.version`).
pub const ECS_VERSION: &str = "8.17.0";

/// `event.severity` / `event.risk_score` of a Sigma level: Elastic
/// Security's default risk scores (low 21, medium 47, high 73, critical
/// 99); informational 0.
pub fn severity_score(level: &str) -> u8 {
    match level {
        "low" => 21,
        "medium" => 47,
        "high" => 73,
        "critical" => 99,
        _ => 0,
    }
}

/// The 14 Enterprise ATT&CK tactics as Sigma tags name them → (id, name).
const TACTICS: &[(&str, &str, &str)] = &[
    ("reconnaissance", "TA0043", "Reconnaissance"),
    ("resource-development", "TA0042", "Resource Development"),
    ("initial-access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege-escalation", "TA0004", "Privilege Escalation"),
    ("defense-evasion", "TA0005", "Defense Evasion"),
    ("credential-access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral-movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command-and-control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
];

/// Whether a channel is a Windows event log channel (not a non-Windows
/// route key `product:name`, not Sysmon for Linux).
fn is_windows_channel(c: &str) -> bool {
    !c.contains(':') && !c.starts_with("Linux-")
}

/// `event.provider`: the event's `Provider_Name` (`System/Provider/@Name`), else for a
/// Windows `Provider/Channel` channel its provider part.
fn provider<'a>(fields: &'a [(String, J)], channel: &'a str, windows: bool) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == "Provider_Name")
        .and_then(|(_, v)| v.as_str())
        .or_else(|| channel.split_once('/').filter(|_| windows).map(|(p, _)| p))
}

/// The event's fields as ECS keyword values: every value a string, later
/// values of a repeated name under `<name>_2`, `<name>_3`…, dots in names
/// replaced by `_` (so no name is both a value and an object in a mapping).
fn event_data(fields: &[(String, J)]) -> Map<String, J> {
    let mut m = Map::new();
    for (k, v) in fields {
        let text = match v {
            J::Null => continue,
            J::String(s) => s.clone(),
            other => other.to_string(),
        };
        let base = k.replace('.', "_");
        let mut name = base.clone();
        let mut n = 1;
        while m.contains_key(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        m.insert(name, J::String(text));
    }
    m
}

/// The ECS document of one detection (see the module docs).
/// `technique_name` gives an ATT&CK technique's name from its id
/// (`T1059.001` → `PowerShell`), `None` when unknown (the id stands in).
pub fn ecs_json(rs: &Ruleset, d: &Detection, technique_name: &dyn Fn(&str) -> Option<String>) -> J {
    let m = rs.rule(d.rule);
    let mut doc = Map::new();
    if let Some(t) = d.timestamp {
        doc.insert(
            "@timestamp".into(),
            json!(t.to_rfc3339_opts(SecondsFormat::Micros, true)),
        );
    }
    doc.insert("ecs".into(), json!({ "version": ECS_VERSION }));
    doc.insert(
        "message".into(),
        json!(format!(
            "[{}] {}: {}",
            m.level,
            m.title,
            details(d, usize::MAX)
        )),
    );
    if let Some(h) = &d.computer {
        doc.insert("host".into(), json!({ "name": h }));
    }
    let score = severity_score(m.level);
    let mut event = Map::new();
    event.insert("kind".into(), json!("alert"));
    event.insert("module".into(), json!("tracehunt"));
    event.insert("dataset".into(), json!("tracehunt.detection"));
    if let Some(id) = d.event_id {
        event.insert("code".into(), json!(id.to_string()));
    }
    let channel = d.channel.as_deref().unwrap_or("");
    let windows = is_windows_channel(channel);
    if let Some(p) = provider(&d.fields, channel, windows) {
        event.insert("provider".into(), json!(p));
    }
    event.insert("severity".into(), json!(score));
    event.insert("risk_score".into(), json!(f64::from(score)));
    doc.insert("event".into(), J::Object(event));
    let data = event_data(&d.fields);
    if windows {
        let mut w = Map::new();
        if !channel.is_empty() {
            w.insert("channel".into(), json!(channel));
        }
        if let Some(id) = d.event_id {
            w.insert("event_id".into(), json!(id.to_string()));
        }
        if let Some(r) = d.record_id {
            w.insert("record_id".into(), json!(r.to_string()));
        }
        if let Some(h) = &d.computer {
            w.insert("computer_name".into(), json!(h));
        }
        w.insert("event_data".into(), J::Object(data));
        doc.insert("winlog".into(), J::Object(w));
    } else {
        doc.insert(
            "tracehunt".into(),
            json!({ "channel": channel, "event_data": data }),
        );
    }
    let mut rule = Map::new();
    rule.insert("id".into(), json!(m.id));
    rule.insert("name".into(), json!(m.title));
    if let Some(x) = &m.description {
        rule.insert("description".into(), json!(x));
    }
    if let Some(x) = &m.author {
        rule.insert("author".into(), json!([x]));
    }
    if let Some(x) = &m.category {
        rule.insert("category".into(), json!(x));
    }
    rule.insert("ruleset".into(), json!("sigma"));
    doc.insert("rule".into(), J::Object(rule));
    if let Some(t) = threat(&m.techniques, &m.tactics, technique_name) {
        doc.insert("threat".into(), t);
    }
    doc.insert(
        "log".into(),
        json!({ "file": { "path": &*d.source }, "level": m.level }),
    );
    doc.insert("tags".into(), json!(m.tags));
    doc.insert("labels".into(), json!({ "level": m.level }));
    J::Object(doc)
}

/// The `threat` object of a rule's ATT&CK tags, `None` without any.
fn threat(
    techniques: &[String],
    tactics: &[String],
    technique_name: &dyn Fn(&str) -> Option<String>,
) -> Option<J> {
    if techniques.is_empty() && tactics.is_empty() {
        return None;
    }
    let mut t = Map::new();
    t.insert("framework".into(), json!("MITRE ATT&CK"));
    if !techniques.is_empty() {
        let ids: Vec<String> = techniques.iter().map(|x| x.to_uppercase()).collect();
        let names: Vec<String> = ids
            .iter()
            .map(|id| technique_name(id).unwrap_or_else(|| id.clone()))
            .collect();
        let refs: Vec<String> = ids
            .iter()
            .map(|id| {
                format!(
                    "https://attack.mitre.org/techniques/{}/",
                    id.replace('.', "/")
                )
            })
            .collect();
        t.insert(
            "technique".into(),
            json!({ "id": ids, "name": names, "reference": refs }),
        );
    }
    let known: Vec<&(&str, &str, &str)> = tactics
        .iter()
        .filter_map(|x| TACTICS.iter().find(|(tag, _, _)| tag == x))
        .collect();
    if !known.is_empty() {
        let ids: Vec<&str> = known.iter().map(|k| k.1).collect();
        let names: Vec<&str> = known.iter().map(|k| k.2).collect();
        let refs: Vec<String> = ids
            .iter()
            .map(|id| format!("https://attack.mitre.org/tactics/{id}/"))
            .collect();
        t.insert(
            "tactic".into(),
            json!({ "id": ids, "name": names, "reference": refs }),
        );
    }
    Some(J::Object(t))
}

/// Writes the ECS document of `d` ([`ecs_json`]) and a newline.
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_ecs_line<W: Write>(
    w: &mut W,
    rs: &Ruleset,
    d: &Detection,
    technique_name: &dyn Fn(&str) -> Option<String>,
) -> io::Result<()> {
    serde_json::to_writer(&mut *w, &ecs_json(rs, d, technique_name)).map_err(io::Error::other)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repeated names (unnamed `Data` items) and numbers stay strings under
    /// distinct names, so a field never changes type between documents.
    #[test]
    fn event_data_values_are_strings_under_distinct_names() {
        let f = vec![
            ("Data".to_owned(), json!("a")),
            ("Data".to_owned(), json!("b")),
            ("ProcessId".to_owned(), json!(4)),
            ("user.name".to_owned(), json!({"x": 1})),
            ("Gone".to_owned(), J::Null),
        ];
        let m = event_data(&f);
        assert_eq!(m["Data"], "a");
        assert_eq!(m["Data_2"], "b");
        assert_eq!(m["ProcessId"], "4");
        assert_eq!(m["user_name"], "{\"x\":1}");
        assert!(!m.contains_key("Gone"));
        assert_eq!(severity_score("high"), 73);
        assert!(is_windows_channel("Microsoft-Windows-Sysmon/Operational"));
        assert!(!is_windows_channel("linux:auditd"));
        assert!(!is_windows_channel("Linux-Sysmon/Operational"));
    }
}
