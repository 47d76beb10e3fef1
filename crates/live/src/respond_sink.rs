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

/// Feeds the response policy and logs its actions.
pub struct ResponseSink {
    responder: Responder,
    log: Box<dyn Write + Send>,
    metrics: Arc<Metrics>,
    expired_at: Instant,
}

impl ResponseSink {
    /// A sink acting with `responder`, logging to `log` (JSON lines of
    /// [`ActionRecord`]), counting outcomes in `metrics`.
    pub fn new(responder: Responder, log: Box<dyn Write + Send>, metrics: Arc<Metrics>) -> Self {
        ResponseSink {
            responder,
            log,
            metrics,
            expired_at: Instant::now(),
        }
    }

    fn write(&mut self, records: Vec<ActionRecord>) -> io::Result<()> {
        for r in records {
            let outcome = serde_json::to_value(r.outcome).unwrap_or_default();
            Metrics::inc(
                &self.metrics.actions,
                "outcome",
                outcome.as_str().unwrap_or("other"),
            );
            serde_json::to_writer(&mut self.log, &r)?;
            self.log.write_all(b"\n")?;
        }
        Ok(())
    }
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
        let records = self.responder.handle(&t, Utc::now());
        self.write(records)
    }

    fn flush(&mut self, _force: bool) -> io::Result<bool> {
        let mut records = self.responder.completed();
        if self.expired_at.elapsed() >= EXPIRE_EVERY {
            records.extend(self.responder.expire(Utc::now()));
            self.expired_at = Instant::now();
        }
        self.write(records)?;
        self.log.flush()?;
        Ok(true)
    }
}

impl Drop for ResponseSink {
    fn drop(&mut self) {
        let records = self.responder.flush(Duration::from_secs(5));
        let _ = self.write(records);
        let _ = self.log.flush();
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
