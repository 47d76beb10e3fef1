//! The index entry of one detection and where its output bytes are.

use crate::context::Contexts;
use chrono::{DateTime, Utc};
use tracehunt_report::DetectionRef;

/// The `-X` duplicate key of a detection's event (issue #19, Hayabusa's
/// `--remove-duplicate-detections`): a hash of (computer, channel, event
/// id, record id) and `fields` (a hash of the event's fields); with the rule
/// and time of its entry, two detections with equal keys are one detection
/// seen in two files (a VSS copy, a log exported twice). The fields are in
/// the key because a JSON record without `EventRecordID` gets its line
/// number as record id: line 1 of two files with other content must stay
/// two detections (breaker finding). 0 for an event without a record id:
/// such events are never merged.
pub(crate) fn dup_key(
    computer: Option<&str>,
    channel: Option<&str>,
    event_id: Option<u32>,
    record_id: Option<u64>,
    fields: u64,
) -> u64 {
    use std::hash::{Hash, Hasher};
    let Some(rec) = record_id else { return 0 };
    // SipHash with fixed keys: the same value in every worker of the run.
    let mut h = std::hash::DefaultHasher::new();
    (computer, channel, event_id, rec, fields).hash(&mut h);
    h.finish() | 1
}

/// The `fields` input of [`dup_key`] for a scanned event: its fields as
/// `name=value` text, in reader order.
pub(crate) fn event_fields_hash(ev: &tracehunt_event::Event) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for (k, v) in ev.fields() {
        k.hash(&mut h);
        v.to_text().hash(&mut h);
    }
    h.finish()
}

/// The `fields` input of [`dup_key`] for a detection kept whole (a rule
/// that feeds a correlation): its fields as JSON. Only compared with keys of
/// the same rule, which are all made this way.
pub(crate) fn detection_fields_hash(fields: &[(String, serde_json::Value)]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for (k, v) in fields {
        k.hash(&mut h);
        v.to_string().hash(&mut h);
    }
    h.finish()
}

/// Bytes of a [`dup_key`] written in the spill just before a detection's
/// rendered bytes when duplicates are removed.
pub(crate) const DUP_KEY_BYTES: u64 = 8;

/// Events with no time sort last: their key is past every real time.
pub(crate) const NO_TIME: (i64, u32) = (i64::MAX, u32::MAX);
/// A worker appends its rendered detections to the spill in pieces of about
/// this size (or one piece per unit).
pub(crate) const PIECE: usize = 256 << 10;

/// Where a detection's output bytes are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Loc {
    /// Rendered into the spill at this range (relative to the unit's
    /// pending piece until the piece is appended).
    Spill { off: u64, len: u32 },
    /// A full [`Detection`] kept in memory (rules feeding a correlation,
    /// correlation hits), rendered when written.
    Mem(u32),
}

/// The index entry kept for every detection of a hunt (40 bytes): its time
/// (sort key), rule, host and where its bytes are. Everything the summary,
/// the attribution and the aggregate formats need; the event itself left
/// the worker as rendered bytes. Sorted externally ([`crate::index`]).
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Event time: seconds since the Unix epoch ([`NO_TIME`] if none).
    pub(crate) secs: i64,
    /// Event time: nanoseconds in the second.
    pub(crate) nanos: u32,
    /// Rule index in the ruleset.
    pub(crate) rule: u32,
    /// Id in the run's context table (host and entities of the event,
    /// [`crate::context`]), or [`NO_CONTEXT`](crate::context::NO_CONTEXT).
    pub(crate) ctx: u32,
    /// Work unit (file, then chunk order) and place of the detection in
    /// it: the tie break that keeps equal times in input order (unique, so
    /// an unstable sort needs no scratch memory and gives one order).
    /// `u32::MAX` for correlation hits.
    pub(crate) unit: u32,
    /// Place of the detection in its unit.
    pub(crate) seq: u32,
    /// [`Loc`], flattened to keep the entry at 40 bytes: a spill range, or
    /// `len == MEM` and `off` the index of a detection kept whole.
    pub(crate) off: u64,
    /// See `off`.
    pub(crate) len: u32,
}

/// `Entry::len` of a detection kept whole.
pub(crate) const MEM: u32 = u32::MAX;

impl Entry {
    pub(crate) fn new(
        time: Option<DateTime<Utc>>,
        rule: usize,
        ctx: u32,
        (unit, seq): (u32, u32),
        loc: Loc,
    ) -> Self {
        let (secs, nanos) = time_key(time);
        let mut e = Entry {
            secs,
            nanos,
            rule: rule as u32,
            ctx,
            unit,
            seq,
            off: 0,
            len: 0,
        };
        e.set_loc(loc);
        e
    }

    pub(crate) fn key(&self) -> (i64, u32) {
        (self.secs, self.nanos)
    }

    /// Output order: time (none last), then input order.
    pub(crate) fn order(&self) -> (i64, u32, u32, u32) {
        (self.secs, self.nanos, self.unit, self.seq)
    }

    pub(crate) fn loc(&self) -> Loc {
        if self.len == MEM {
            Loc::Mem(self.off as u32)
        } else {
            Loc::Spill {
                off: self.off,
                len: self.len,
            }
        }
    }

    pub(crate) fn set_loc(&mut self, loc: Loc) {
        (self.off, self.len) = match loc {
            Loc::Spill { off, len } => {
                debug_assert!(len != MEM, "a rendered detection of 4 GiB");
                (off, len)
            }
            Loc::Mem(i) => (u64::from(i), MEM),
        };
    }

    /// The event time (`None`: the event had none).
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        if self.key() == NO_TIME {
            None
        } else {
            DateTime::from_timestamp(self.secs, self.nanos)
        }
    }

    /// Rule, time and host name (from `cx`, the hunt's context table).
    pub fn view<'a>(&self, cx: &'a Contexts) -> DetectionRef<'a> {
        DetectionRef {
            rule: self.rule as usize,
            timestamp: self.timestamp(),
            computer: cx.host(self.ctx),
        }
    }
}

/// The sort key of an event time: chronological order, `None` last.
pub(crate) fn time_key(t: Option<DateTime<Utc>>) -> (i64, u32) {
    t.map_or(NO_TIME, |t| (t.timestamp(), t.timestamp_subsec_nanos()))
}

impl Entry {
    /// Index of the detection's rule in the ruleset.
    pub fn rule(&self) -> usize {
        self.rule as usize
    }

    /// The detection's context id (host and entities, [`crate::context`]).
    pub fn context(&self) -> u32 {
        self.ctx
    }

    /// Event time as (seconds since the Unix epoch, nanoseconds), `None` if the event had none.
    pub fn time_parts(&self) -> Option<(i64, u32)> {
        (self.key() != NO_TIME).then_some((self.secs, self.nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entry_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
    }

    #[test]
    fn time_key_orders_like_the_times_and_puts_none_last() {
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let mut v = vec![
            None,
            t("2024-01-01T00:00:01Z"),
            t("1601-01-01T00:00:00Z"),
            t("2024-01-01T00:00:00.5Z"),
        ];
        let mut by_key = v.clone();
        by_key.sort_by_key(|x| time_key(*x));
        v.sort_by(|x, y| match (x, y) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        assert_eq!(v, by_key);
        for x in v.into_iter().flatten() {
            let (s, n) = time_key(Some(x));
            let e = Entry::new(Some(x), 0, crate::context::NO_CONTEXT, (0, 0), Loc::Mem(7));
            assert_eq!((e.secs, e.nanos), (s, n));
            assert_eq!(e.timestamp(), Some(x));
            assert!(matches!(e.loc(), Loc::Mem(7)));
        }
    }
}
