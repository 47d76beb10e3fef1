//! Response actions for `tracehunt watch` (issue #16, part 2: "prevent").
//!
//! A YAML [`Policy`] maps triggers — detections, incident updates and IOC
//! hits, by rule id, level, tag, attributed actor and confidence, IOC hit and
//! incident severity ([`When`]) — to actions ([`Action`]):
//!
//! - `blocklist`: add the trigger's IPs, domains or hashes to a file in one
//!   of three formats ([`BlocklistFormat`]): an `nft -f` script of two
//!   nftables sets, a plain list, Suricata rules. The file holds the live
//!   entries and is rewritten atomically on every change; entries may carry
//!   a TTL and are removed by [`Responder::expire`].
//! - `crowdsec`: `cscli decisions add --ip …` per IP.
//! - `webhook`: POST the detection / incident JSON, off the caller's thread,
//!   at least once (retries with capped exponential backoff).
//! - `command`: run a program with an argument-vector template; a value is
//!   always exactly one argument and never goes through a shell.
//!
//! Dry run is the default: everything is evaluated and logged, nothing is
//! written, posted or run. The same action on the same indicator is not
//! repeated within the `dedupe` period; allowlisted addresses (CIDRs),
//! domains (with subdomains) and hashes are never acted on. Every action
//! taken, skipped or failed is an [`ActionRecord`] returned to the caller,
//! which logs it (this crate never prints). Memory is bounded: at most
//! [`MAX_ENTRIES`] dedupe keys and blocklist entries, oldest evicted.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tracehunt_respond::{Indicator, IndicatorKind, Level, Outcome, Policy, Responder, Trigger, TriggerKind};
//!
//! let yaml = r#"
//! dedupe: 1h
//! allowlist:
//!   ips: [10.0.0.0/8]
//! responses:
//!   - name: block-c2
//!     when: { kinds: [detection], min_level: high, tags: ["attack.command_and_control"] }
//!     actions:
//!       - blocklist: { format: plain, path: /var/lib/tracehunt/block.txt, ttl: 24h }
//! "#;
//! let policy = Policy::from_yaml(yaml, "policy.yml")?;
//! assert!(policy.dry_run); // the default
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
//! let mut responder = Responder::new(policy, now)?;
//!
//! let mut t = Trigger::new(TriggerKind::Detection, now);
//! t.rule_id = "c2-beacon".into();
//! t.level = Some(Level::High);
//! t.tags = vec!["attack.command_and_control".into()];
//! t.indicators = vec![
//!     Indicator::new(IndicatorKind::Ip, "203.0.113.7"),
//!     Indicator::new(IndicatorKind::Ip, "10.1.2.3"), // allowlisted
//! ];
//! let records = responder.handle(&t, now);
//! let outcomes: Vec<_> = records.iter().map(|r| (r.indicator.as_ref().unwrap().value.as_str(), r.outcome)).collect();
//! assert_eq!(outcomes, [("203.0.113.7", Outcome::DryRun), ("10.1.2.3", Outcome::SkippedAllowlisted)]);
//!
//! // Within the dedupe period the same indicator is skipped.
//! let again = responder.handle(&t, now + chrono::TimeDelta::minutes(5));
//! assert_eq!(again[0].outcome, Outcome::SkippedDuplicate);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod action;
mod blocklist;
mod policy;
mod record;
mod responder;
mod run;
mod state;
mod template;
mod trigger;
mod webhook;

pub use action::{
    Action, BlocklistAction, BlocklistFormat, CommandAction, CrowdsecAction, WebhookAction,
};
pub use policy::{Allowlist, Period, Policy, PolicyError, Response, When, MAX_PERIOD};
pub use record::{ActionRecord, Outcome, TriggerRef};
pub use responder::{RespondError, Responder, DROP_WAIT};
pub use run::STDERR_HEAD;
pub use state::MAX_ENTRIES;
pub use trigger::{Actor, Indicator, IndicatorKind, Level, Trigger, TriggerKind};
