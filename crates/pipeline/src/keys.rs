//! What the store needs of each detection, recorded by the workers when a
//! store is the sink: the event's identity (a 16-byte key) and the
//! detection's time, rule, context and stream, as fixed 40-byte records in
//! a spill of their own (order does not matter to the store).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tracehunt_event::Event;

/// Bytes of one encoded [`StoreRec`].
pub const REC_BYTES: usize = 40;

/// The identity of a correlation hit (it has no single event): the first 16
/// bytes of the SHA-256 of its rule id, time and host (Debug forms) and its
/// fields as JSON (group, window, contributing events). The same hit found
/// twice has the same key.
pub fn correlation_key(rule_id: &str, d: &tracehunt_report::Detection) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update(format!("\0{:?}\0{:?}\0", d.timestamp, d.computer).as_bytes());
    h.update(serde_json::to_vec(&*d.fields).unwrap_or_default());
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize()[..16]);
    key
}

/// The identity of an event: the first 16 bytes of the SHA-256 of its
/// `System` values (computer, channel, provider, EventID, EventRecordID,
/// time) and every field as `name=value`, each NUL-terminated, in reader
/// order. The same event read twice (the same file given twice, a copy of
/// a log) has the same key; a detection is stored once per (rule, key).
pub fn event_key(ev: &Event) -> [u8; 16] {
    let mut h = Sha256::new();
    let m = &ev.meta;
    for s in [
        m.computer.as_deref(),
        m.channel.as_deref(),
        m.provider.as_deref(),
    ] {
        h.update(s.unwrap_or("").as_bytes());
        h.update([0]);
    }
    h.update(m.event_id.map_or(u64::MAX, u64::from).to_le_bytes());
    h.update(m.record_id.unwrap_or(u64::MAX).to_le_bytes());
    let t = m.timestamp.map_or((i64::MAX, 0), |t| {
        (t.timestamp(), t.timestamp_subsec_nanos())
    });
    h.update(t.0.to_le_bytes());
    h.update(t.1.to_le_bytes());
    for (k, v) in ev.fields() {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.to_text().as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&d[..16]);
    key
}

/// One detection as the store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRec {
    /// Event time (`None`: the event had none).
    pub time: Option<(i64, u32)>,
    /// Rule index in the ruleset.
    pub rule: u32,
    /// Context id (host and entities).
    pub ctx: u32,
    /// Stream (file) index of the source.
    pub stream: u32,
    /// [`event_key`] of the event.
    pub key: [u8; 16],
}

impl StoreRec {
    /// Appends the record's [`REC_BYTES`] bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (s, n) = self.time.unwrap_or((i64::MIN, u32::MAX));
        out.extend_from_slice(&s.to_le_bytes());
        for x in [n, self.rule, self.ctx, self.stream] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.key);
    }

    /// The record in `b` (at least [`REC_BYTES`] bytes).
    pub fn decode(b: &[u8]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        let s = i64::from_le_bytes(s);
        let n = u32_at(8);
        let mut key = [0u8; 16];
        key.copy_from_slice(&b[24..40]);
        StoreRec {
            time: (s != i64::MIN || n != u32::MAX).then_some((s, n)),
            rule: u32_at(12),
            ctx: u32_at(16),
            stream: u32_at(20),
            key,
        }
    }

    /// The event time as a date.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.time.and_then(|(s, n)| DateTime::from_timestamp(s, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracehunt_event::{EventMeta, Value};

    fn ev(rec: u64, user: &str) -> Event {
        let mut e = Event::with_meta(EventMeta {
            computer: Some("pc1".into()),
            event_id: Some(4624),
            record_id: Some(rec),
            ..EventMeta::default()
        });
        e.push("TargetUserName", Value::Str(user.into()));
        e
    }

    #[test]
    fn event_key_is_the_same_for_the_same_event_and_differs_otherwise() {
        assert_eq!(event_key(&ev(1, "bob")), event_key(&ev(1, "bob")));
        assert_ne!(event_key(&ev(1, "bob")), event_key(&ev(2, "bob")));
        assert_ne!(event_key(&ev(1, "bob")), event_key(&ev(1, "eve")));
    }

    #[test]
    fn store_records_round_trip() {
        for time in [None, Some((1_700_000_000, 5)), Some((-5, 0))] {
            let r = StoreRec {
                time,
                rule: 7,
                ctx: u32::MAX,
                stream: 3,
                key: [9; 16],
            };
            let mut b = Vec::new();
            r.encode(&mut b);
            assert_eq!(b.len(), REC_BYTES);
            assert_eq!(StoreRec::decode(&b), r);
        }
    }
}
