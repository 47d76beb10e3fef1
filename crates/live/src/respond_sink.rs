//! The response sink: every emitted detection, IOC hit and incident update
//! goes to a [`tracehunt_respond::Responder`] (the YAML response policy);
//! each action taken or skipped is written as one JSON line to the action log.

use crate::engine::Sink;
use crate::hunter::{DetectionOut, Emitted, IncidentOut};
use crate::metrics::Metrics;
use chrono::Utc;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracehunt_incidents::EntityKind;
use tracehunt_respond::{
    ActionRecord, Actor, Indicator, IndicatorKind, Level, Responder, Trigger, TriggerKind,
};

/// How often blocks past their TTL are removed.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// Triggers waiting for the responder thread; beyond, new ones are dropped
/// (counted as `dropped`) rather than stalling the hunt.
pub const TRIGGER_QUEUE: usize = 10_000;

enum Msg {
    Trigger(Box<Trigger>),
    Tick,
}

/// Feeds the response policy and logs its actions. The responder runs on a
/// thread of its own: a command or `cscli` action that takes seconds never
/// delays detections, other sinks or acknowledgements (breaker finding: a
/// `sleep 3` command held every HTTP answer for 14.6 s).
pub struct ResponseSink {
    tx: Option<std::sync::mpsc::SyncSender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl ResponseSink {
    /// A sink acting with `responder`, logging to `log` (JSON lines of
    /// [`ActionRecord`]), counting outcomes in `metrics`.
    pub fn new(responder: Responder, log: Box<dyn Write + Send>, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(TRIGGER_QUEUE);
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("live-respond".into())
            .spawn(move || respond(responder, log, &m, &rx))
            .expect("spawning the responder thread");
        ResponseSink {
            tx: Some(tx),
            thread: Some(thread),
            metrics,
        }
    }
}

/// The responder thread: triggers in order, webhook results and expiry
/// as they come; at the end, waits up to 5 s for pending webhooks.
fn respond(
    mut responder: Responder,
    mut log: Box<dyn Write + Send>,
    metrics: &Metrics,
    rx: &std::sync::mpsc::Receiver<Msg>,
) {
    let mut expired_at = Instant::now();
    let write = |log: &mut Box<dyn Write + Send>, records: Vec<ActionRecord>| {
        for r in records {
            let outcome = serde_json::to_value(r.outcome).unwrap_or_default();
            Metrics::inc(
                &metrics.actions,
                "outcome",
                outcome.as_str().unwrap_or("other"),
            );
            // A failing action log must not stop the responses.
            let _ = serde_json::to_writer(&mut *log, &r);
            let _ = log.write_all(b"\n");
        }
        let _ = log.flush();
    };
    loop {
        let msg = rx.recv_timeout(EXPIRE_EVERY);
        let mut records = Vec::new();
        match msg {
            Ok(Msg::Trigger(t)) => records.extend(responder.handle(&t, Utc::now())),
            Ok(Msg::Tick) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        records.extend(responder.completed());
        if expired_at.elapsed() >= EXPIRE_EVERY {
            records.extend(responder.expire(Utc::now()));
            expired_at = Instant::now();
        }
        if !records.is_empty() {
            write(&mut log, records);
        }
    }
    let records = responder.flush(Duration::from_secs(5));
    write(&mut log, records);
}

fn level(word: &str) -> Option<Level> {
    Some(match word {
        "informational" => Level::Informational,
        "low" => Level::Low,
        "medium" => Level::Medium,
        "high" => Level::High,
        "critical" => Level::Critical,
        _ => return None,
    })
}

/// Whether `text` is an address of the organisation's own networks or of
/// the host itself (RFC 1918, RFC 6598 shared space, loopback, link-local,
/// unspecified, IPv6 unique local RFC 4193): never a blocklist candidate from
/// an event's fields, since the event names its own host's addresses beside
/// the remote ones (fresh-user finding: a 5156 event's own `SourceAddress`
/// was blocked). An IOC feed listing such an address still acts on it.
pub fn is_internal_ip(text: &str) -> bool {
    match text.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        Ok(std::net::IpAddr::V6(a)) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| is_internal_ip(&v4.to_string()))
        }
        Err(_) => false,
    }
}

fn indicators(entities: &[(EntityKind, String)]) -> Vec<Indicator> {
    entities
        .iter()
        .filter(|(k, v)| !(*k == EntityKind::Ip && is_internal_ip(v)))
        .filter_map(|(k, v)| {
            let kind = match k {
                EntityKind::Ip => IndicatorKind::Ip,
                EntityKind::Domain => IndicatorKind::Domain,
                EntityKind::Hash => IndicatorKind::Hash,
                _ => return None,
            };
            Some(Indicator::new(kind, v.clone()))
        })
        .collect()
}

fn payload(line: &[u8]) -> serde_json::Value {
    serde_json::from_slice(line).unwrap_or_default()
}

fn detection_trigger(d: &DetectionOut) -> Trigger {
    let kind = if d.kind == "ioc_hit" {
        TriggerKind::IocHit
    } else {
        TriggerKind::Detection
    };
    let mut t = Trigger::new(kind, d.time.unwrap_or_else(Utc::now));
    t.rule_id = d.rule_id.clone();
    t.rule_title = d.title.clone();
    t.level = level(d.level);
    t.tags = d.tags.clone();
    t.host = d.host.clone().unwrap_or_default();
    t.incident_id = d.incident_id.clone();
    t.ioc = d.ioc.as_ref().and_then(|(k, v)| {
        let kind = match k.as_str() {
            "ip" | "ip-src" | "ip-dst" | "cidr" => IndicatorKind::Ip,
            "domain" | "hostname" => IndicatorKind::Domain,
            "md5" | "sha1" | "sha256" | "sha512" | "hash" => IndicatorKind::Hash,
            _ => return None,
        };
        Some(Indicator::new(kind, v.clone()))
    });
    t.indicators = indicators(&d.entities);
    t.payload = payload(&d.line);
    t
}

fn incident_trigger(i: &IncidentOut) -> Trigger {
    let mut t = Trigger::new(TriggerKind::Incident, i.last.unwrap_or_else(Utc::now));
    t.host = i.hosts.first().cloned().unwrap_or_default();
    t.incident_id = i.id.clone();
    t.incident_severity = level(i.level);
    t.level = level(i.level);
    t.tags = i
        .techniques
        .iter()
        .map(|x| format!("attack.{}", x.to_lowercase()))
        .collect();
    t.actor = i.actors.first().map(|(id, name, confidence)| Actor {
        id: id.clone(),
        name: name.clone(),
        confidence: *confidence,
    });
    t.indicators = indicators(&i.entities);
    t.payload = payload(&i.line);
    t
}

impl Sink for ResponseSink {
    fn emit(&mut self, item: &Emitted) -> io::Result<()> {
        let t = match item {
            Emitted::Detection(d) => detection_trigger(d),
            // A closed incident is history: nothing more to prevent.
            Emitted::Incident(i) if i.status == "closed" => return Ok(()),
            Emitted::Incident(i) => incident_trigger(i),
        };
        if let Some(tx) = &self.tx {
            if tx.try_send(Msg::Trigger(Box::new(t))).is_err() {
                Metrics::inc(&self.metrics.actions, "outcome", "dropped");
            }
        }
        Ok(())
    }

    fn flush(&mut self, _force: bool) -> io::Result<bool> {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Msg::Tick);
        }
        Ok(true)
    }
}

impl Drop for ResponseSink {
    fn drop(&mut self) {
        // The thread takes what is queued, then waits for pending webhooks.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_never_indicators_from_event_fields() {
        for ip in [
            "10.1.2.3",
            "192.168.2.5",
            "172.16.0.1",
            "100.64.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:192.168.1.1",
            "0.0.0.0",
        ] {
            assert!(is_internal_ip(ip), "{ip}");
        }
        for ip in [
            "168.63.129.16",
            "203.0.113.9",
            "8.8.8.8",
            "2001:db8::1",
            "100.128.0.1",
        ] {
            assert!(!is_internal_ip(ip), "{ip}");
        }
        let e = vec![
            (EntityKind::Ip, "192.168.2.5".to_owned()),
            (EntityKind::Ip, "168.63.129.16".to_owned()),
            (EntityKind::User, "corp\\alice".to_owned()),
        ];
        let got: Vec<String> = indicators(&e).into_iter().map(|i| i.value).collect();
        assert_eq!(got, ["168.63.129.16"]);
    }
}
