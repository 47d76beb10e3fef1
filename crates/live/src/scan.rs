//! The scan stage: a worker thread turns one submitted batch of JSON lines
//! into events and their rule and IOC hits (in parallel with the other
//! workers); the ordered stage ([`crate::hunter`]) does the rest.

use crate::rules::Rules;
use chrono::{DateTime, Utc};
use serde_json::Value as J;
use std::sync::Arc;
use std::time::Instant;
use tracehunt_engine::Scanner;
use tracehunt_incidents::EntityKind;
use tracehunt_pipeline::ioc::IocDetection;
use tracehunt_report::Detection;

/// Called once a batch's outputs are written and flushed (and the store
/// checkpointed when the batch carried a detection), with what became of
/// its lines. A followed file commits its read offset here; the HTTP
/// endpoint answers the request.
pub type Done = Box<dyn FnOnce(&BatchResult) + Send>;

/// Lines handed to the live hunt: one JSON event per line (evtx-JSON,
/// Winlogbeat/ECS or flat NXLog/Mordor shape, as `hunt` reads them).
pub struct Submission {
    /// Where the lines came from (a path, `stdin`, `http`): the
    /// detections' `source`.
    pub source: Arc<str>,
    /// The lines, without their newlines.
    pub lines: Vec<String>,
    /// Line number of `lines[0]` in its source (1-based), for errors.
    pub first_line: u64,
    /// Called when the batch is done ([`Done`]).
    pub done: Option<Done>,
    /// Lines the source already rejected (too long to read): counted and
    /// reported with the batch's own rejected lines.
    pub rejected: Vec<Rejected>,
}

/// What became of one batch's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchResult {
    /// Lines read as events.
    pub events: u64,
    /// Lines that were not one JSON event (skipped; the others of the
    /// batch are read).
    pub rejected: u64,
    /// The first [`REJECTED_LISTED`] of them, with line numbers and reasons.
    pub errors: Vec<Rejected>,
    /// Detections and IOC hits reported for the batch's events.
    pub detections: u64,
}

/// A line that was not an event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// Its line number in the source.
    pub line: u64,
    /// Why (the JSON parser's message, or what the value was).
    pub reason: String,
}

/// A submission with its place in the input order.
pub(crate) struct Queued {
    /// Its weight against the byte budget, given back when processed.
    pub(crate) cost: usize,
    pub(crate) seq: u64,
    pub(crate) rules: Arc<Rules>,
    pub(crate) sub: Submission,
    pub(crate) received: Instant,
}

/// One rule hit of an event.
pub(crate) struct HitOut {
    pub(crate) rule: usize,
    /// The detection JSON object (no newline) when it is reported.
    pub(crate) line: Option<Vec<u8>>,
    /// The whole detection when a correlation reads the rule.
    pub(crate) det: Option<Detection>,
}

/// An event with at least one hit.
pub(crate) struct EventHits {
    pub(crate) time: Option<DateTime<Utc>>,
    pub(crate) host: Option<String>,
    /// Entities of the event (users, IPs, hashes, domains…).
    pub(crate) entities: Vec<(EntityKind, String)>,
    /// The event's identity ([`tracehunt_pipeline::keys::event_key`]).
    pub(crate) key: [u8; 16],
    pub(crate) hits: Vec<HitOut>,
    pub(crate) iocs: Vec<IocDetection>,
}

/// A scanned batch, on its way to the ordered stage.
pub(crate) struct Scanned {
    pub(crate) cost: usize,
    pub(crate) seq: u64,
    pub(crate) rules: Arc<Rules>,
    pub(crate) source: Arc<str>,
    pub(crate) received: Instant,
    pub(crate) result: BatchResult,
    pub(crate) done: Option<Done>,
    pub(crate) events: Vec<EventHits>,
    /// Latest event time of the batch.
    pub(crate) latest: Option<DateTime<Utc>>,
}

/// Most rejected lines listed per batch (all are counted).
pub const REJECTED_LISTED: usize = 100;

/// Parses one line into its events: a JSON value as the batch JSON-lines
/// reader reads it (an object of any shape the readers know, a
/// `{"Records": […]}` envelope, an array of events: breaker finding, these
/// were rejected), or (issue #21) a line of a line-by-line text log the
/// readers recognise on its own — syslog / auth.log (incl. Sysmon for
/// Linux), one raw auditd record (records are not assembled into process
/// events here), an Apache/Nginx access log line. Returns the events and
/// one reason per part of the line that is not an event (the whole line
/// when nothing is).
fn parse(text: &str) -> (Vec<tracehunt_event::Event>, Vec<String>) {
    let one = |r: Result<tracehunt_event::Event, String>| match r {
        Ok(ev) => (vec![ev], Vec::new()),
        Err(e) => (Vec::new(), vec![e]),
    };
    if !text.trim_start().starts_with(['{', '[']) {
        match parse_text_line(text) {
            Ok(ev) => return (vec![ev], Vec::new()),
            Err(e) if serde_json::from_str::<J>(text).is_err() => return (Vec::new(), vec![e]),
            Err(_) => {} // a JSON scalar: said below
        }
    }
    let v: J = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return one(Err(format!("not JSON: {e}"))),
    };
    match &v {
        J::Object(o) if o.contains_key(tracehunt_readers::wire::MARK) => {
            one(tracehunt_readers::wire::from_value(&v)
                .map_err(|e| format!("a bad wire event: {e}")))
        }
        J::Object(_) | J::Array(_) => {
            let (mut evs, mut errs) = (Vec::new(), Vec::new());
            for r in tracehunt_readers::records_of_json_value(v) {
                match r {
                    Ok(ev) => evs.push(ev),
                    Err(e) => errs.push(e),
                }
            }
            if evs.is_empty() && errs.is_empty() {
                errs.push("an empty JSON array: no event".to_owned());
            }
            (evs, errs)
        }
        other => one(Err(format!(
            "a JSON {} where one event object per line was expected",
            match other {
                J::String(_) => "string",
                J::Number(_) => "number",
                J::Bool(_) => "boolean",
                _ => "null",
            }
        ))),
    }
}

/// One text log line through the file readers (format by content).
fn parse_text_line(text: &str) -> Result<tracehunt_event::Event, String> {
    const NOT: &str = "neither JSON nor a syslog, auditd or access-log line";
    let records = tracehunt_readers::open_bytes("line", text.as_bytes().to_vec())
        .map_err(|_| NOT.to_owned())?;
    let mut first_error = None;
    for r in records {
        match r {
            Ok(ev) => return Ok(ev),
            Err(e) if e.records > 0 => {
                first_error.get_or_insert(e.reason);
            }
            Err(_) => {}
        }
    }
    Err(first_error.unwrap_or_else(|| NOT.to_owned()))
}

/// Scans one batch with `sc` (a scanner over `q.rules`' ruleset).
pub(crate) fn scan_batch(sc: &mut Scanner<'_>, q: Queued, min_rank: u8) -> Scanned {
    let Queued {
        cost,
        seq,
        rules,
        sub,
        received,
    } = q;
    let rs = &rules.loaded.ruleset;
    let mut result = BatchResult::default();
    for r in &sub.rejected {
        result.rejected += 1;
        if result.errors.len() < REJECTED_LISTED {
            result.errors.push(r.clone());
        }
    }
    let mut events = Vec::new();
    let mut latest: Option<DateTime<Utc>> = None;
    // Times more than a day past the wall clock do not move the event clock.
    let horizon = Utc::now() + chrono::Duration::days(1);
    let mut hits = Vec::new();
    for (i, text) in sub.lines.iter().enumerate() {
        let line = sub.first_line + i as u64;
        if text.trim().is_empty() {
            continue;
        }
        let (evs, errs) = parse(text);
        // A line with a part that is no event is one rejected line, listed
        // with its first reason (and how many more parts it lost).
        if let Some(first) = errs.first() {
            result.rejected += 1;
            if result.errors.len() < REJECTED_LISTED {
                let reason = match errs.len() {
                    1 => first.clone(),
                    n => format!("{first} (and {} more parts of the line)", n - 1),
                };
                result.errors.push(Rejected { line, reason });
            }
        }
        for mut ev in evs {
            // As the batch JSON reader: the record's number in its source when
            // the event carries no EventRecordID.
            ev.meta.record_id.get_or_insert(line);
            result.events += 1;
            let ts = ev.meta.timestamp;
            if let Some(t) = ts.filter(|&t| t <= horizon) {
                latest = Some(latest.map_or(t, |l| l.max(t)));
            }
            hits.clear();
            sc.scan(&ev, &mut hits);
            let mut iocs = Vec::new();
            if let Some(set) = &rules.iocs {
                tracehunt_pipeline::ioc::scan_event(set, &ev, &sub.source, &mut iocs);
            }
            let mut outs = Vec::new();
            let mut fields: Option<Arc<Vec<(String, J)>>> = None;
            for &rule in &hits {
                let correlated = rules.correlated[rule];
                let reported = rs.rule(rule).level_rank >= min_rank && !rules.suppressed[rule];
                if !reported && !correlated {
                    continue;
                }
                // One copy of the event's fields, shared by all its detections.
                let d = tracehunt_pipeline::detection_of(&ev, rule, &sub.source, &mut fields);
                let line = reported.then(|| {
                    let mut out = Vec::new();
                    // Writing to a Vec cannot fail.
                    let _ = tracehunt_report::write_detection_json(&mut out, rs, &d);
                    out
                });
                outs.push(HitOut {
                    rule,
                    line,
                    det: correlated.then_some(d),
                });
            }
            if outs.is_empty() && iocs.is_empty() {
                continue;
            }
            let mut entities = Vec::new();
            tracehunt_incidents::extract(&ev, &mut entities);
            events.push(EventHits {
                time: ts,
                host: ev.meta.computer.clone(),
                entities,
                key: tracehunt_pipeline::keys::event_key(&ev),
                hits: outs,
                iocs,
            });
        }
    }
    Scanned {
        cost,
        seq,
        rules,
        source: sub.source,
        received,
        result,
        done: sub.done,
        events,
        latest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one event of a line, or its one reason.
    fn one(text: &str) -> Result<tracehunt_event::Event, String> {
        match parse(text) {
            (mut evs, errs) if evs.len() == 1 && errs.is_empty() => Ok(evs.remove(0)),
            (evs, errs) if evs.is_empty() && errs.len() == 1 => Err(errs[0].clone()),
            (evs, errs) => panic!("{} events, errors {errs:?}", evs.len()),
        }
    }

    #[test]
    fn parse_rejects_what_is_not_one_event_object() {
        assert!(one("{\"EventID\": 1, \"Image\": \"x\"}").is_ok());
        assert!(one("{\"a\":").unwrap_err().starts_with("not JSON"));
        assert!(one("42").unwrap_err().contains("number"));
        assert!(one("just words").unwrap_err().contains("neither JSON"));
        let (evs, errs) = parse("[1,2]");
        assert!(evs.is_empty());
        assert_eq!(
            errs,
            [
                "element 0 of the JSON array is a number, not an event object",
                "element 1 of the JSON array is a number, not an event object"
            ]
        );
    }

    /// Breaker finding (issue #21): `watch` rejected a CloudTrail envelope
    /// line and an array of events on one line, which `hunt` reads.
    #[test]
    fn envelope_and_array_lines_give_their_events() {
        let rec = r#"{"eventVersion":"1.08","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","eventTime":"2024-01-01T00:00:00Z"}"#;
        let (evs, errs) = parse(&format!(r#"{{"Records":[{rec},{rec},7,{rec}]}}"#));
        assert_eq!(evs.len(), 3);
        assert!(evs
            .iter()
            .all(|e| e.meta.channel.as_deref() == Some("aws:cloudtrail")));
        assert_eq!(
            errs,
            ["element 2 of the Records envelope is a number, not an event object"]
        );
        let (evs, errs) = parse(
            r#"[{"EventID": 1, "Channel": "Security"}, [{"EventID": 2, "Channel": "Security"}]]"#,
        );
        assert_eq!(evs.len(), 2);
        assert!(errs.is_empty());
        assert_eq!(evs[1].meta.event_id, Some(2));
    }

    #[test]
    fn text_log_lines_are_events_too() {
        // Issue #21: `watch` on auth.log, audit.log or an access log.
        let ev = one(
            "Feb 21 21:54:44 web1 sshd[3402]: Failed password for root from 10.0.0.9 port 22 ssh2",
        )
        .unwrap();
        assert_eq!(ev.meta.channel.as_deref(), Some("linux:syslog"));
        assert_eq!(ev.meta.computer.as_deref(), Some("web1"));
        assert_eq!(ev.first("program").and_then(|v| v.as_str()), Some("sshd"));
        let ev = one(
            r#"type=EXECVE msg=audit(1364481363.243:24287): argc=2 a0="whoami" a1=2D2D68656C70"#,
        )
        .unwrap();
        assert_eq!(ev.meta.channel.as_deref(), Some("linux:auditd"));
        assert_eq!(ev.first("a1").and_then(|v| v.as_str()), Some("--help"));
        let ev = one(r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /wp-login.php?x=1 HTTP/1.1" 200 203 "-" "curl/8""#).unwrap();
        assert_eq!(ev.meta.channel.as_deref(), Some("webserver:access"));
        assert_eq!(
            ev.first("cs-uri-stem").and_then(|v| v.as_str()),
            Some("/wp-login.php")
        );
    }
}
