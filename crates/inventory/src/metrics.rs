//! The log inventory (Hayabusa 4 `eid-metrics`, `computer-metrics`,
//! `log-metrics`): which logsources were present, so that "0 detections"
//! can be trusted — EventIDs per channel, computers, channels and
//! providers, and per file its format, events, time range, computers,
//! channels and lost records.
//!
//! Counts are of the events inside the [`Window`] (all events without one,
//! then equal to `hunt`'s event count). An event without a channel counts
//! under the empty channel, without a computer under the empty name.
//! Shares are percentages of all counted events.

use crate::{ReadStats, Window};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tracehunt_event::Event;
use tracehunt_pipeline::WorkUnit;

/// What one file held (summed over its work units).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileStats {
    /// The reader's format name ([`crate::unit_format`]).
    pub format: &'static str,
    /// Events counted.
    pub events: u64,
    /// Events counted that have no time.
    pub untimed: u64,
    /// Earliest event time.
    pub first: Option<DateTime<Utc>>,
    /// Latest event time.
    pub last: Option<DateTime<Utc>>,
    /// Distinct computers.
    pub computers: BTreeSet<String>,
    /// Distinct channels.
    pub channels: BTreeSet<String>,
}

/// The accumulator: one per thread, merged.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (channel, EventID) → events.
    pub event_ids: HashMap<(String, Option<u32>), u64>,
    /// Computer → events.
    pub computers: HashMap<String, u64>,
    /// (channel, provider) → events.
    pub channels: HashMap<(String, String), u64>,
    /// File index (the source's stream) → what it held; every file read
    /// has an entry, also with no event.
    pub files: BTreeMap<usize, FileStats>,
    /// What reading cost (lost records per file, unreadable files).
    pub stats: ReadStats,
}

/// One EventID row: channel, EventID, its name when known, count and share.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventIdRow {
    /// The channel (route key for non-Windows logs, e.g. `linux:auditd`).
    pub channel: String,
    /// The EventID, if the events have one.
    pub event_id: Option<u32>,
    /// [`crate::event_name`], when known.
    pub name: Option<&'static str>,
    /// Events.
    pub count: u64,
    /// Share of all counted events, in percent.
    pub percent: f64,
}

/// One (name, count, share) row: a computer, or a channel with its provider.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CountRow {
    /// The computer or channel.
    pub name: String,
    /// The provider (channel rows only; empty when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Events.
    pub count: u64,
    /// Share of all counted events, in percent.
    pub percent: f64,
}

fn pct(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (n as f64 * 10_000.0 / total as f64).round() / 100.0
    }
}

fn min_t(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_t(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl Metrics {
    /// Reads one unit, counting its events inside `window`.
    pub fn add_unit(&mut self, window: &Window, unit: WorkUnit) {
        let file = unit.stream;
        let mut stats = std::mem::take(&mut self.stats);
        let mut fs = FileStats::default();
        let format = crate::read_unit(unit, window, &mut stats, |_, ev| {
            self.add(&ev, &mut fs);
        });
        self.stats = stats;
        if let Some(format) = format {
            fs.format = format;
            self.merge_file(file, fs);
        }
    }

    fn add(&mut self, ev: &Event, fs: &mut FileStats) {
        let m = &ev.meta;
        let channel = m.channel.clone().unwrap_or_default();
        let computer = m.computer.clone().unwrap_or_default();
        *self
            .event_ids
            .entry((channel.clone(), m.event_id))
            .or_default() += 1;
        *self
            .channels
            .entry((channel.clone(), m.provider.clone().unwrap_or_default()))
            .or_default() += 1;
        fs.events += 1;
        match m.timestamp {
            Some(t) => {
                fs.first = min_t(fs.first, Some(t));
                fs.last = max_t(fs.last, Some(t));
            }
            None => fs.untimed += 1,
        }
        if !fs.computers.contains(&computer) {
            fs.computers.insert(computer.clone());
        }
        if !fs.channels.contains(&channel) {
            fs.channels.insert(channel);
        }
        *self.computers.entry(computer).or_default() += 1;
    }

    fn merge_file(&mut self, file: usize, fs: FileStats) {
        let e = self.files.entry(file).or_default();
        e.format = fs.format;
        e.events += fs.events;
        e.untimed += fs.untimed;
        e.first = min_t(e.first, fs.first);
        e.last = max_t(e.last, fs.last);
        e.computers.extend(fs.computers);
        e.channels.extend(fs.channels);
    }

    /// Merges another thread's counts.
    pub fn merge(&mut self, o: Metrics) {
        for (k, n) in o.event_ids {
            *self.event_ids.entry(k).or_default() += n;
        }
        for (k, n) in o.computers {
            *self.computers.entry(k).or_default() += n;
        }
        for (k, n) in o.channels {
            *self.channels.entry(k).or_default() += n;
        }
        for (f, fs) in o.files {
            self.merge_file(f, fs);
        }
        self.stats.merge(o.stats);
    }

    /// Events counted (inside the window).
    pub fn total(&self) -> u64 {
        self.event_ids.values().sum()
    }

    /// EventID rows by count descending, then channel and EventID.
    pub fn event_id_rows(&self) -> Vec<EventIdRow> {
        let total = self.total();
        let mut rows: Vec<EventIdRow> = self
            .event_ids
            .iter()
            .map(|((c, id), n)| EventIdRow {
                channel: c.clone(),
                event_id: *id,
                name: id.and_then(|id| crate::event_name(c, id)),
                count: *n,
                percent: pct(*n, total),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.channel.cmp(&b.channel))
                .then(a.event_id.cmp(&b.event_id))
        });
        rows
    }

    /// Computer rows by count descending, then name.
    pub fn computer_rows(&self) -> Vec<CountRow> {
        let total = self.total();
        let mut rows: Vec<CountRow> = self
            .computers
            .iter()
            .map(|(c, n)| CountRow {
                name: c.clone(),
                provider: None,
                count: *n,
                percent: pct(*n, total),
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        rows
    }

    /// Channel/provider rows by count descending, then channel and provider.
    pub fn channel_rows(&self) -> Vec<CountRow> {
        let total = self.total();
        let mut rows: Vec<CountRow> = self
            .channels
            .iter()
            .map(|((c, p), n)| CountRow {
                name: c.clone(),
                provider: Some(p.clone()),
                count: *n,
                percent: pct(*n, total),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.provider.cmp(&b.provider))
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracehunt_event::EventMeta;

    #[test]
    fn counts_shares_and_file_ranges() {
        let mut m = Metrics::default();
        let mut fs = FileStats::default();
        for (id, t) in [(4624, Some(5)), (4624, Some(1)), (4688, None)] {
            let ev = Event::with_meta(EventMeta {
                event_id: Some(id),
                channel: Some("Security".into()),
                computer: Some("DC1".into()),
                timestamp: t.and_then(|t| DateTime::from_timestamp(t, 0)),
                ..EventMeta::default()
            });
            m.add(&ev, &mut fs);
        }
        m.merge_file(0, fs);
        assert_eq!(m.total(), 3);
        let rows = m.event_id_rows();
        assert_eq!(rows[0].event_id, Some(4624));
        assert_eq!(rows[0].name, Some("Logon success"));
        assert_eq!(rows[0].percent, 66.67);
        let f = &m.files[&0];
        assert_eq!((f.events, f.untimed), (3, 1));
        assert_eq!(f.first, DateTime::from_timestamp(1, 0));
        assert_eq!(f.last, DateTime::from_timestamp(5, 0));
        assert_eq!(m.computer_rows()[0].count, 3);
    }
}
