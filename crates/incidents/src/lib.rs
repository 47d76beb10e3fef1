//! Detections (Sigma rule hits on events) grouped into incidents, the unit an
//! analyst triages and attributes.
//!
//! 1. [`extract`] reads the rare entities of an event (users, IPs, logon ids,
//!    process GUIDs, hashes, domains) from well-known Windows Security,
//!    Sysmon and PowerShell fields, leaving out stop values such as `SYSTEM`
//!    or `127.0.0.1`.
//! 2. A [`Grouper`] is fed detections in time order: per host, detections at
//!    most `session_gap_secs` apart (and spanning at most `max_span_secs`)
//!    form a host group, kept as aggregates only.
//! 3. [`Grouper::finish`] merges host groups of different hosts that share an
//!    entity and are at most `session_gap_secs` apart in time, unless that
//!    entity occurs in more than `entity_ceiling` host groups (union-find;
//!    the result depends only on names and times, never on the caller's
//!    numeric ids), and returns the [`Grouping`]: [`Incident`]s with
//!    content-derived ids and a (host, time) → incident lookup.
//!
//! The approach follows common SOC practice of alert grouping by host
//! session and shared entities (e.g. Microsoft Sentinel's entity-based alert
//! grouping); the field names follow the Windows Security auditing and
//! Sysmon event schemas. Pure: no I/O, no threads.
//!
//! ```
//! use tracehunt_event::{Event, EventMeta, Value};
//! use tracehunt_incidents::{extract, Config, EntityKind, Grouper, Names};
//!
//! // Entities of a 4624 logon on WS6 from 172.18.39.5.
//! let mut ev = Event::with_meta(EventMeta::default());
//! ev.push("TargetUserName", Value::from("pgustavo"));
//! ev.push("TargetDomainName", Value::from("THESHIRE"));
//! ev.push("IpAddress", Value::from("172.18.39.5"));
//! ev.push("SubjectUserName", Value::from("SYSTEM")); // a stop value
//! let mut found = Vec::new();
//! extract(&ev, &mut found);
//! assert_eq!(found, [
//!     (EntityKind::User, "theshire\\pgustavo".to_owned()),
//!     (EntityKind::Ip, "172.18.39.5".to_owned()),
//! ]);
//!
//! // The caller interns hosts, rules and entities; `Names` gives them back.
//! struct Table { hosts: Vec<&'static str>, entities: Vec<(EntityKind, String)> }
//! impl Names for Table {
//!     fn host(&self, id: u32) -> Option<&str> { self.hosts.get(id as usize).copied() }
//!     fn entity(&self, id: u32) -> (EntityKind, &str) {
//!         let (k, v) = &self.entities[id as usize];
//!         (*k, v)
//!     }
//!     fn rule_id(&self, _rule: u32) -> &str { "5b1f8a3e-logon-rule" }
//! }
//! let table = Table { hosts: vec!["WS5", "WS6", "WS7"], entities: found };
//!
//! let mut g = Grouper::new(Config::default());
//! let t0 = 1_600_800_000; // Unix seconds
//! g.push(Some((t0, 0)), 0, 0, 3, &[1]); // WS5, the IP
//! g.push(Some((t0 + 600, 0)), 1, 0, 2, &[0, 1]); // WS6, user and IP: joins WS5
//! g.push(Some((t0 + 700, 0)), 2, 0, 1, &[]); // WS7 shares nothing
//! let grouping = g.finish(&table);
//!
//! assert_eq!(grouping.incidents.len(), 2);
//! let first = &grouping.incidents[0];
//! assert_eq!(first.hosts, ["WS5", "WS6"]);
//! assert_eq!((first.detections, first.max_level), (2, 3));
//! assert_eq!(first.users, ["theshire\\pgustavo"]);
//! assert!(first.id.starts_with("inc-") && first.id.len() == 20);
//! let at = chrono::DateTime::from_timestamp(t0 + 300, 0);
//! assert_eq!(grouping.incident_of(Some("WS6"), at), None); // before WS6's group
//! assert_eq!(grouping.incident_of(Some("WS5"), at), Some(0)); // within the gap after WS5's
//! assert_eq!((grouping.host_groups, grouping.merges), (3, 1));
//! ```

mod entity;
mod group;
mod incident;

pub use entity::{extract, EntityKind};
pub use group::{Config, Grouper, Names, NO_HOST, NO_HOST_NAME};
pub use incident::{Grouping, Incident, ENTITY_CAP};
