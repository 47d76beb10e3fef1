//! What happened: the [`Trigger`] the live engine hands to
//! [`Responder::handle`](crate::Responder::handle) for every detection,
//! incident update or IOC hit, and the [`Indicator`]s an action can block.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of event caused a trigger.
///
/// Serialized in snake case (`detection`, `incident`, `ioc_hit`), the words a
/// policy's `when.kinds` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A Sigma rule (or correlation) matched an event.
    Detection,
    /// An incident (a group of detections) was opened or updated.
    Incident,
    /// An event contained an indicator of an IOC feed.
    IocHit,
}

/// A Sigma severity level, ordered `Informational < Low < Medium < High <
/// Critical` (Sigma specification, "level" field).
///
/// Serialized as the lowercase Sigma word (`informational`, `low`, `medium`,
/// `high`, `critical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `informational`.
    Informational,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl Level {
    /// The Sigma word for the level (`"high"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// An ATT&CK intrusion set attributed to the trigger, with the attribution
/// confidence on the STIX 2.1 0–100 scale (STIX 2.1 §3.2 "confidence").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// ATT&CK group id, e.g. `G0009`.
    pub id: String,
    /// Group name, e.g. `Deep Panda`.
    pub name: String,
    /// Confidence 0–100 (values above 100 are treated as 100).
    pub confidence: u8,
}

/// The kind of an [`Indicator`]: what a blocklist can hold.
///
/// Serialized in snake case (`ip`, `domain`, `hash`), the words a policy's
/// `indicators:` lists use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    /// An IPv4 or IPv6 address (no prefix).
    Ip,
    /// A DNS name.
    Domain,
    /// A file hash: MD5, SHA-1, SHA-256 or SHA-512, in hex.
    Hash,
}

impl IndicatorKind {
    /// The policy word for the kind (`"ip"`, `"domain"`, `"hash"`).
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Ip => "ip",
            IndicatorKind::Domain => "domain",
            IndicatorKind::Hash => "hash",
        }
    }
}

/// An entity of the event an action may act on: `kind` plus its value as
/// the caller extracted it (e.g. `Ip` / `"203.0.113.7"`).
///
/// Values are checked and normalised by [`Indicator::normalized`] before any
/// action uses them, so nothing the event contains can reach a blocklist file
/// unchecked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Indicator {
    /// What the value is.
    pub kind: IndicatorKind,
    /// The value.
    pub value: String,
}

impl Indicator {
    /// An indicator of `kind` with `value` (not yet checked).
    pub fn new(kind: IndicatorKind, value: impl Into<String>) -> Indicator {
        Indicator {
            kind,
            value: value.into(),
        }
    }

    /// The canonical form of the indicator, or why it is not one:
    ///
    /// - `Ip`: parsed by `std::net::IpAddr` (RFC 4291 §2.2 text for IPv6,
    ///   dotted quad for IPv4) and printed canonically (`::ffff:a.b.c.d`
    ///   mapped addresses become IPv4); surrounding `[` `]` are accepted.
    /// - `Domain`: lowercased, one trailing dot removed; 1–253 bytes of labels
    ///   of 1–63 ASCII letters, digits, `-` (not first or last) and `_`
    ///   (RFC 1035 §2.3.1 preferred syntax, plus `_` seen in real names).
    /// - `Hash`: lowercased hex of 32, 40, 64 or 128 digits (MD5, SHA-1,
    ///   SHA-256, SHA-512).
    ///
    /// # Errors
    /// A message naming the kind, e.g. `"not an IP address"`.
    pub fn normalized(&self) -> Result<Indicator, String> {
        let v = self.value.trim();
        let value = match self.kind {
            IndicatorKind::Ip => {
                let inner = v
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(']'))
                    .unwrap_or(v);
                let ip: IpAddr = inner.parse().map_err(|_| "not an IP address".to_owned())?;
                ip.to_canonical().to_string()
            }
            IndicatorKind::Domain => {
                normal_domain(v).ok_or_else(|| "not a domain name".to_owned())?
            }
            IndicatorKind::Hash => {
                let ok = matches!(v.len(), 32 | 40 | 64 | 128)
                    && v.bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Err("not an MD5, SHA-1, SHA-256 or SHA-512 hex hash".to_owned());
                }
                v.to_ascii_lowercase()
            }
        };
        Ok(Indicator {
            kind: self.kind,
            value,
        })
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

/// `text` as a lowercase domain without trailing dot, if it is one (see
/// [`Indicator::normalized`]).
pub(crate) fn normal_domain(text: &str) -> Option<String> {
    let d = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if d.is_empty() || d.len() > 253 {
        return None;
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return None;
        }
    }
    Some(d)
}

/// One detection, incident update or IOC hit, as the live engine reports it.
///
/// Built by the caller; every field but `kind` and `time` may be left empty
/// (`Default`). Conditions of a policy's `when` that look at an empty field
/// do not hold (e.g. `min_confidence` with no `actor`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// What happened.
    pub kind: TriggerKind,
    /// Sigma rule id (UUID) or correlation id; empty for a bare IOC hit.
    pub rule_id: String,
    /// Rule title.
    pub rule_title: String,
    /// Rule level.
    pub level: Option<Level>,
    /// Rule tags, e.g. `attack.t1059.001`, `attack.execution`.
    pub tags: Vec<String>,
    /// Host (Computer) the event came from.
    pub host: String,
    /// Attributed intrusion set, if any.
    pub actor: Option<Actor>,
    /// Incident id (`inc-…`), for incident updates and detections in one.
    pub incident_id: String,
    /// Severity of the incident (a Sigma level word).
    pub incident_severity: Option<Level>,
    /// The IOC the event hit: set for [`TriggerKind::IocHit`] and for
    /// detections whose event also hit an IOC. Also acted on as an indicator.
    pub ioc: Option<Indicator>,
    /// Entities of the event the caller extracted (IPs, domains, hashes).
    pub indicators: Vec<Indicator>,
    /// Event time, UTC.
    pub time: DateTime<Utc>,
    /// The detection / incident JSON a webhook posts (JSON `null`: the
    /// trigger itself, without this field, is posted).
    pub payload: serde_json::Value,
}

impl Trigger {
    /// An empty trigger of `kind` at `time`.
    pub fn new(kind: TriggerKind, time: DateTime<Utc>) -> Trigger {
        Trigger {
            kind,
            rule_id: String::new(),
            rule_title: String::new(),
            level: None,
            tags: Vec::new(),
            host: String::new(),
            actor: None,
            incident_id: String::new(),
            incident_severity: None,
            ioc: None,
            indicators: Vec::new(),
            time,
            payload: serde_json::Value::Null,
        }
    }

    /// The indicators actions act on: the IOC hit first, then `indicators`,
    /// each normalised; an indicator that fails normalisation is returned as
    /// `Err((raw, reason))` so it can be logged. Duplicates (after
    /// normalisation) are left out.
    pub(crate) fn all_indicators(&self) -> Vec<Result<Indicator, (Indicator, String)>> {
        let mut out: Vec<Result<Indicator, (Indicator, String)>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for raw in self.ioc.iter().chain(self.indicators.iter()) {
            match raw.normalized() {
                Ok(ind) => {
                    if seen.insert(ind.clone()) {
                        out.push(Ok(ind));
                    }
                }
                Err(why) => out.push(Err((raw.clone(), why))),
            }
        }
        out
    }
}
