//! The YAML response policy: global settings, the allowlist, and the
//! responses (a `when` condition and its actions).

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::action::Action;
use crate::trigger::{normal_domain, Indicator, IndicatorKind, Level, Trigger, TriggerKind};

/// The longest period a policy accepts (3650 days), so that times computed
/// from it never overflow.
pub const MAX_PERIOD: Duration = Duration::from_secs(3650 * 86_400);

/// A duration written as a number and a unit: `250ms`, `30s`, `15m`, `24h`,
/// `7d` (no spaces, no fractions, at most [`MAX_PERIOD`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period(pub Duration);

impl Period {
    /// Parses `text` (see [`Period`]).
    ///
    /// # Errors
    /// A message quoting the text when it has no number, an unknown unit or
    /// is longer than [`MAX_PERIOD`].
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || format!("{text:?} is not a duration like 250ms, 30s, 15m, 24h or 7d");
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = text.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => return Err(bad()),
        };
        let d = ms.map(Duration::from_millis).filter(|d| *d <= MAX_PERIOD);
        d.map(Period)
            .ok_or_else(|| format!("{text:?} is longer than 3650d"))
    }

    /// The period as a `chrono::TimeDelta` (exact: at most [`MAX_PERIOD`]).
    pub fn delta(self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.0).unwrap_or(chrono::TimeDelta::MAX)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
        let s = String::deserialize(d)?;
        Period::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
        ] {
            if ms != 0 && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// Why a policy could not be loaded. Every variant names the policy file
/// (`origin`, as the caller gave it).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The YAML is malformed, has an unknown key or a bad value; `line` and
    /// `column` are 1-based (0 when the YAML parser gave no place).
    #[error("{origin}:{line}:{column}: {message}")]
    Yaml {
        /// The file name the caller gave.
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The YAML is well-formed but the policy is inconsistent (duplicate
    /// response names, one file written in two formats).
    #[error("{origin}: {message}")]
    Invalid {
        /// The file name the caller gave.
        origin: String,
        /// What is wrong, naming the response.
        message: String,
    },
}

/// Addresses, networks, domains and hashes that are never blocked.
///
/// YAML: `ips:` (addresses or CIDR networks, IPv4 or IPv6), `domains:` (a
/// domain covers its subdomains: `example.org` allows `www.example.org`),
/// `hashes:`. Allowlisting applies to every action that acts on an
/// indicator (blocklist, crowdsec, command with `{indicator}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    nets: Vec<IpNet>,
    domains: HashSet<String>,
    hashes: HashSet<String>,
}

/// One checked allowlist value, so that a bad one is reported at its line.
struct Checked<T>(T);

impl<'de> Deserialize<'de> for Checked<IpNet> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_net(&s).map(Checked).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Checked<Domain> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        normal_domain(&s)
            .map(|d| Checked(Domain(d)))
            .ok_or_else(|| serde::de::Error::custom(format!("allowlist: {s:?} is not a domain")))
    }
}

impl<'de> Deserialize<'de> for Checked<Hash> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Indicator::new(IndicatorKind::Hash, s.as_str())
            .normalized()
            .map(|h| Checked(Hash(h.value)))
            .map_err(|e| serde::de::Error::custom(format!("allowlist: {s:?}: {e}")))
    }
}

struct Domain(String);
struct Hash(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllowlist {
    #[serde(default)]
    ips: Vec<Checked<IpNet>>,
    #[serde(default)]
    domains: Vec<Checked<Domain>>,
    #[serde(default)]
    hashes: Vec<Checked<Hash>>,
}

impl<'de> Deserialize<'de> for Allowlist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Allowlist, D::Error> {
        let raw = RawAllowlist::deserialize(d)?;
        Ok(Allowlist {
            nets: raw.ips.into_iter().map(|n| n.0).collect(),
            domains: raw.domains.into_iter().map(|d| d.0 .0).collect(),
            hashes: raw.hashes.into_iter().map(|h| h.0 .0).collect(),
        })
    }
}

/// An address (as a one-address network) or a CIDR network (host bits
/// cleared).
fn parse_net(s: &str) -> Result<IpNet, String> {
    match s.parse::<IpNet>() {
        Ok(n) => Ok(n.trunc()),
        Err(_) => s
            .parse::<IpAddr>()
            .map(|ip| IpNet::from(ip.to_canonical()))
            .map_err(|_| format!("allowlist: {s:?} is not an IP address or CIDR network")),
    }
}

impl Allowlist {
    /// An allowlist of `ips` (addresses or CIDRs), `domains` (with their
    /// subdomains) and `hashes`.
    ///
    /// # Errors
    /// The first value that is not an address/network, domain or hash.
    pub fn new(ips: &[String], domains: &[String], hashes: &[String]) -> Result<Allowlist, String> {
        let mut a = Allowlist::default();
        for s in ips {
            a.nets.push(parse_net(s)?);
        }
        for s in domains {
            let d = normal_domain(s).ok_or_else(|| format!("allowlist: {s:?} is not a domain"))?;
            a.domains.insert(d);
        }
        for s in hashes {
            let h = Indicator::new(IndicatorKind::Hash, s.as_str())
                .normalized()
                .map_err(|e| format!("allowlist: {s:?}: {e}"))?;
            a.hashes.insert(h.value);
        }
        Ok(a)
    }

    /// Whether `ind` (normalised, see [`Indicator::normalized`]) is allowed:
    /// an IP inside one of the networks, a domain equal to or under an
    /// allowed domain, a listed hash.
    pub fn allows(&self, ind: &Indicator) -> bool {
        match ind.kind {
            IndicatorKind::Ip => match ind.value.parse::<IpAddr>() {
                Ok(ip) => self.nets.iter().any(|n| n.contains(&ip)),
                Err(_) => false,
            },
            IndicatorKind::Domain => {
                let mut d = ind.value.as_str();
                loop {
                    if self.domains.contains(d) {
                        return true;
                    }
                    match d.split_once('.') {
                        Some((_, parent)) => d = parent,
                        None => return false,
                    }
                }
            }
            IndicatorKind::Hash => self.hashes.contains(&ind.value),
        }
    }
}

/// When a response applies: every condition given must hold (an empty
/// `when` holds for every trigger). Lists hold when any element matches.
///
/// Text comparisons are ASCII case-insensitive; a `tags` element ending in
/// `*` matches by prefix (`attack.t1059*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// Trigger kinds (`detection`, `incident`, `ioc_hit`).
    #[serde(default)]
    pub kinds: Vec<TriggerKind>,
    /// Sigma rule ids.
    #[serde(default)]
    pub rule_ids: Vec<String>,
    /// Exact levels.
    #[serde(default)]
    pub levels: Vec<Level>,
    /// Lowest level (inclusive).
    #[serde(default)]
    pub min_level: Option<Level>,
    /// Tags, any of which the trigger must carry.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Attributed actor, by ATT&CK id (`G0009`) or name.
    #[serde(default)]
    pub actors: Vec<String>,
    /// Lowest attribution confidence, 0–100 (needs an actor).
    #[serde(default)]
    pub min_confidence: Option<u8>,
    /// `true`: the trigger hit an IOC; `false`: it did not.
    #[serde(default)]
    pub ioc_hit: Option<bool>,
    /// Exact incident severities.
    #[serde(default)]
    pub incident_severity: Vec<Level>,
    /// Lowest incident severity (inclusive).
    #[serde(default)]
    pub min_incident_severity: Option<Level>,
}

impl When {
    /// Whether every given condition holds for `t`.
    pub fn matches(&self, t: &Trigger) -> bool {
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        let level_ok = |want: &[Level], min: Option<Level>, got: Option<Level>| {
            (want.is_empty() || got.is_some_and(|g| want.contains(&g)))
                && min.is_none_or(|m| got.is_some_and(|g| g >= m))
        };
        let tag_ok = |pat: &str| {
            t.tags.iter().any(|tag| match pat.strip_suffix('*') {
                Some(prefix) => tag.get(..prefix.len()).is_some_and(|head| eq(head, prefix)),
                None => eq(tag, pat),
            })
        };
        let actor = t.actor.as_ref();
        let hit = t.ioc.is_some() || t.kind == TriggerKind::IocHit;
        (self.kinds.is_empty() || self.kinds.contains(&t.kind))
            && (self.rule_ids.is_empty() || self.rule_ids.iter().any(|r| eq(r, &t.rule_id)))
            && level_ok(&self.levels, self.min_level, t.level)
            && (self.tags.is_empty() || self.tags.iter().any(|p| tag_ok(p)))
            && (self.actors.is_empty()
                || actor
                    .is_some_and(|a| self.actors.iter().any(|w| eq(w, &a.id) || eq(w, &a.name))))
            && self
                .min_confidence
                .is_none_or(|m| actor.is_some_and(|a| a.confidence.min(100) >= m))
            && self.ioc_hit.is_none_or(|want| want == hit)
            && level_ok(
                &self.incident_severity,
                self.min_incident_severity,
                t.incident_severity,
            )
    }
}

/// One response: a name (unique in the policy; it names the actions in the
/// action log and in dedupe keys), a condition, and the actions taken when it
/// holds, in order.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// Unique name.
    pub name: String,
    /// Condition (default: always).
    #[serde(default)]
    pub when: When,
    /// Actions, in order.
    pub actions: Vec<Action>,
}

fn yes() -> bool {
    true
}

fn one_hour() -> Period {
    Period(Duration::from_secs(3600))
}

/// A response policy (YAML, see the crate documentation for an example).
///
/// Keys: `dry_run` (default `true`: every action is evaluated and logged as
/// `dry_run`, nothing is written, posted or run), `dedupe` (default `1h`:
/// the same action on the same indicator is not repeated within it),
/// `allowlist`, `state` (optional JSON file keeping dedupe and blocklist
/// entries across restarts), `responses`. Unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Evaluate and log only (default `true`).
    #[serde(default = "yes")]
    pub dry_run: bool,
    /// Dedupe period (default 1 hour).
    #[serde(default = "one_hour")]
    pub dedupe: Period,
    /// Never acted on.
    #[serde(default)]
    pub allowlist: Allowlist,
    /// State file for dedupe and blocklist entries across restarts.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// The responses, in order.
    pub responses: Vec<Response>,
}

impl Policy {
    /// Parses a policy from YAML `text`; `origin` (usually the file path)
    /// names it in errors.
    ///
    /// # Errors
    /// [`PolicyError::Yaml`] with the 1-based line and column for malformed
    /// YAML, unknown keys, bad values (durations, levels, templates,
    /// addresses); [`PolicyError::Invalid`] for duplicate response names and
    /// for one blocklist file configured with two different formats.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = yaml_serde::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            PolicyError::Yaml {
                origin: origin.to_owned(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        policy.check().map_err(|message| PolicyError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(policy)
    }

    /// Checks what one response cannot see: unique response names, one
    /// rendering per blocklist file.
    fn check(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        let mut files: Vec<(&PathBuf, &crate::action::BlocklistAction, &str)> = Vec::new();
        for r in &self.responses {
            if !names.insert(r.name.as_str()) {
                return Err(format!("response name {:?} is used twice", r.name));
            }
            for a in &r.actions {
                let Action::Blocklist(b) = a else { continue };
                if let Some((_, other, owner)) = files.iter().find(|(p, _, _)| **p == b.path) {
                    if !other.same_file_format(b) {
                        return Err(format!(
                            "responses {owner:?} and {:?} write {} in different formats",
                            r.name,
                            b.path.display()
                        ));
                    }
                }
                files.push((&b.path, b, &r.name));
            }
        }
        Ok(())
    }
}
