//! Logon summary (Hayabusa 4 `logon-summary`, extended with RDP): who
//! logged on where, from where, how often and when.
//!
//! Events read (by EventID and channel, case-insensitive):
//!
//! | section | channel | EventID | user, domain | source address, workstation | logon type |
//! |---|---|---|---|---|---|
//! | successful | `Security` | 4624 | `TargetUserName`, `TargetDomainName` | `IpAddress`, `WorkstationName` | `LogonType` |
//! | failed | `Security` | 4625 | same as 4624 | same as 4624 | `LogonType` |
//! | rdp | `Security` | 4778 (session reconnected), 4779 (disconnected) | `AccountName`, `AccountDomain` | `ClientAddress`, `ClientName` | — |
//! | rdp | `Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational` | 1149 (RDP authentication succeeded) | `Param1`, `Param2` | `Param3`, — | — |
//!
//! Rows group by (section, EventID, user, domain, computer, logon type,
//! source address, workstation) with a count and the first and last time;
//! each section is sorted by count (descending), then by its key.

use crate::{ReadStats, Window};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tracehunt_event::Event;
use tracehunt_pipeline::WorkUnit;

/// The Security channel.
const SECURITY: &str = "Security";
/// The channel of EventID 1149 (RDP authentication succeeded).
pub const RDP_CHANNEL: &str =
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational";

/// Which section a logon row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Security 4624.
    Successful,
    /// Security 4625.
    Failed,
    /// Security 4778/4779, RemoteConnectionManager 1149.
    Rdp,
}

impl Section {
    /// `successful`, `failed` or `rdp`.
    pub fn name(self) -> &'static str {
        match self {
            Section::Successful => "successful",
            Section::Failed => "failed",
            Section::Rdp => "rdp",
        }
    }
}

/// The name Windows gives a logon type (`LogonType` of 4624/4625), e.g.
/// 3 → `Network`, 10 → `RemoteInteractive`; `None` for unknown numbers.
pub fn logon_type_name(t: i64) -> Option<&'static str> {
    Some(match t {
        0 => "System",
        2 => "Interactive",
        3 => "Network",
        4 => "Batch",
        5 => "Service",
        7 => "Unlock",
        8 => "NetworkCleartext",
        9 => "NewCredentials",
        10 => "RemoteInteractive",
        11 => "CachedInteractive",
        12 => "CachedRemoteInteractive",
        13 => "CachedUnlock",
        _ => return None,
    })
}

/// What an RDP row's EventID means: `reconnect` (4778), `disconnect`
/// (4779), `auth` (1149); logon rows' EventIDs: `logon` (4624),
/// `failed` (4625).
pub fn event_meaning(event_id: u32) -> &'static str {
    match event_id {
        4624 => "logon",
        4625 => "failed",
        4778 => "reconnect",
        4779 => "disconnect",
        1149 => "auth",
        _ => "",
    }
}

/// The grouping key of a row. Text fields hold the value as logged
/// (`-` and empty included), empty when the event lacks the field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    section: Section,
    event_id: u32,
    user: String,
    domain: String,
    computer: String,
    logon_type: Option<i64>,
    source_ip: String,
    workstation: String,
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogonRow {
    /// The section.
    pub section: Section,
    /// 4624, 4625, 4778, 4779 or 1149.
    pub event_id: u32,
    /// [`event_meaning`] of the EventID.
    pub event: &'static str,
    /// Target user (4624/4625), account (4778/4779), `Param1` (1149).
    pub user: String,
    /// Its domain.
    pub domain: String,
    /// The computer that logged the event.
    pub computer: String,
    /// `LogonType` (4624/4625 only).
    pub logon_type: Option<i64>,
    /// [`logon_type_name`] of it.
    pub logon_type_name: Option<&'static str>,
    /// Source network address (`IpAddress`, `ClientAddress`, `Param3`).
    pub source_ip: String,
    /// Source workstation (`WorkstationName`, `ClientName`).
    pub workstation: String,
    /// Events in the group.
    pub count: u64,
    /// Earliest event time in the group.
    pub first: Option<DateTime<Utc>>,
    /// Latest event time in the group.
    pub last: Option<DateTime<Utc>>,
}

/// A group's count and first and last time.
type Group = (u64, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The accumulator: one per thread, merged, then [`LogonSummary::rows`].
#[derive(Debug, Default)]
pub struct LogonSummary {
    groups: HashMap<Key, Group>,
    /// What reading cost.
    pub stats: ReadStats,
}

fn text(ev: &Event, name: &str) -> String {
    ev.first(name)
        .map(|v| v.to_text().into_owned())
        .unwrap_or_default()
}

impl LogonSummary {
    /// Reads one unit, counting the logon events inside `window`.
    pub fn add_unit(&mut self, window: &Window, unit: WorkUnit) {
        let mut stats = std::mem::take(&mut self.stats);
        crate::read_unit(unit, window, &mut stats, |_, ev| self.add(&ev));
        self.stats = stats;
    }

    /// Counts one event if it is a logon event (see the module table).
    pub fn add(&mut self, ev: &Event) {
        let Some(id) = ev.meta.event_id else { return };
        let channel = ev.meta.channel.as_deref().unwrap_or("");
        let security = channel.eq_ignore_ascii_case(SECURITY);
        let key = match id {
            4624 | 4625 if security => Key {
                section: if id == 4624 {
                    Section::Successful
                } else {
                    Section::Failed
                },
                event_id: id,
                user: text(ev, "TargetUserName"),
                domain: text(ev, "TargetDomainName"),
                computer: ev.meta.computer.clone().unwrap_or_default(),
                logon_type: ev.first("LogonType").and_then(|v| v.as_i64()),
                source_ip: text(ev, "IpAddress"),
                workstation: text(ev, "WorkstationName"),
            },
            4778 | 4779 if security => Key {
                section: Section::Rdp,
                event_id: id,
                user: text(ev, "AccountName"),
                domain: text(ev, "AccountDomain"),
                computer: ev.meta.computer.clone().unwrap_or_default(),
                logon_type: None,
                source_ip: text(ev, "ClientAddress"),
                workstation: text(ev, "ClientName"),
            },
            1149 if channel.eq_ignore_ascii_case(RDP_CHANNEL) => Key {
                section: Section::Rdp,
                event_id: id,
                user: text(ev, "Param1"),
                domain: text(ev, "Param2"),
                computer: ev.meta.computer.clone().unwrap_or_default(),
                logon_type: None,
                source_ip: text(ev, "Param3"),
                workstation: String::new(),
            },
            _ => return,
        };
        let t = ev.meta.timestamp;
        let g = self.groups.entry(key).or_insert((0, None, None));
        g.0 += 1;
        if let Some(t) = t {
            g.1 = Some(g.1.map_or(t, |f| f.min(t)));
            g.2 = Some(g.2.map_or(t, |l| l.max(t)));
        }
    }

    /// Merges another thread's groups and counts.
    pub fn merge(&mut self, o: LogonSummary) {
        for (k, (n, first, last)) in o.groups {
            let g = self.groups.entry(k).or_insert((0, None, None));
            g.0 += n;
            g.1 = match (g.1, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            g.2 = match (g.2, last) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        self.stats.merge(o.stats);
    }

    /// Events counted in `section`.
    pub fn total(&self, section: Section) -> u64 {
        self.groups
            .iter()
            .filter(|(k, _)| k.section == section)
            .map(|(_, g)| g.0)
            .sum()
    }

    /// The rows: sections in order (successful, failed, rdp), each by count
    /// descending, then by key (deterministic).
    pub fn rows(&self) -> Vec<LogonRow> {
        let mut g: Vec<_> = self.groups.iter().collect();
        g.sort_by(|a, b| {
            a.0.section
                .cmp(&b.0.section)
                .then(b.1 .0.cmp(&a.1 .0))
                .then(a.0.cmp(b.0))
        });
        g.into_iter()
            .map(|(k, (n, first, last))| LogonRow {
                section: k.section,
                event_id: k.event_id,
                event: event_meaning(k.event_id),
                user: k.user.clone(),
                domain: k.domain.clone(),
                computer: k.computer.clone(),
                logon_type: k.logon_type,
                logon_type_name: k.logon_type.and_then(logon_type_name),
                source_ip: k.source_ip.clone(),
                workstation: k.workstation.clone(),
                count: *n,
                first: *first,
                last: *last,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracehunt_event::{EventMeta, Value};

    fn logon(id: u32, channel: &str, user: &str, t: i64, ty: i64) -> Event {
        let mut e = Event::with_meta(EventMeta {
            event_id: Some(id),
            channel: Some(channel.into()),
            computer: Some("DC1".into()),
            timestamp: DateTime::from_timestamp(t, 0),
            ..EventMeta::default()
        });
        e.push("TargetUserName", Value::from(user));
        e.push("LogonType", Value::from(ty.to_string()));
        e.push("IpAddress", Value::from("10.0.0.5"));
        e
    }

    #[test]
    fn groups_count_and_time_range_sorted_by_count() {
        let mut s = LogonSummary::default();
        s.add(&logon(4624, "Security", "bob", 20, 3));
        s.add(&logon(4624, "security", "bob", 10, 3));
        s.add(&logon(4624, "Security", "amy", 5, 10));
        s.add(&logon(4625, "Security", "eve", 7, 3));
        // Wrong channel: not a logon.
        s.add(&logon(4624, "Application", "x", 1, 3));
        let rows = s.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].user, "bob");
        assert_eq!(rows[0].count, 2);
        assert_eq!(rows[0].first, DateTime::from_timestamp(10, 0));
        assert_eq!(rows[0].last, DateTime::from_timestamp(20, 0));
        assert_eq!(rows[0].logon_type_name, Some("Network"));
        assert_eq!(rows[1].logon_type_name, Some("RemoteInteractive"));
        assert_eq!(rows[2].section, Section::Failed);
        assert_eq!(s.total(Section::Successful), 3);
    }
}
