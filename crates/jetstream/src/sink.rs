//! The worker's output: every detection, correlation hit, IOC hit and
//! incident of the live pipeline, published to the DETECTIONS stream with a
//! content id, acknowledged before the batch that produced it is.

use crate::cluster::Names;
use crate::partition::partition_of;
use async_nats::header::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::Context;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tracehunt_live::{Emitted, Sink};

/// Header of a rule or IOC hit: the hex [event key] of its event (the same
/// identity `hunt --store` records).
///
/// [event key]: https://docs.rs/tracehunt-pipeline (keys::event_key)
pub const EVENT_KEY_HEADER: &str = "Tracehunt-Event-Key";

/// Publishes unacknowledged at once before the oldest are awaited.
const WINDOW: usize = 512;
/// A flush that is not forced waits for the stream's acknowledgements only
/// when the oldest publish is this old (or the window half full); until
/// then the engine holds the batches' acknowledgements (one round trip per
/// 20 ms instead of one per batch).
const SETTLE_AFTER: Duration = Duration::from_millis(20);
/// Rule-hit ids remembered: a repeat among them (the same event in two
/// files) is not published again — the first was acknowledged before any
/// later batch is — and counts as a duplicate.
const RECENT_IDS: usize = 100_000;
/// Attempts per message (a publish or its acknowledgement timed out: the
/// stream's leader moved, a node stopped) before the sink fails.
const ATTEMPTS: u32 = 12;

/// What the sink did (shared with the worker's summary).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Messages acknowledged by the stream as new.
    pub published: AtomicU64,
    /// Messages the stream had already (same `Nats-Msg-Id` inside its
    /// duplicate window): re-published after a redelivery or a failover;
    /// and rule hits this sink published recently (the same event in two
    /// files), not sent again.
    pub duplicates: AtomicU64,
    /// Publishes repeated after a timeout or error.
    pub retries: AtomicU64,
}

/// The `Nats-Msg-Id` of an emitted item, from its content: a rule or IOC
/// hit `d:` + the first 16 bytes (hex) of SHA-256 over rule id, NUL and
/// event key — one id per (rule, event) like the store; a correlation hit
/// `c:` and an incident change `i:` + the same digest of their JSON line.
pub fn message_id(item: &Emitted) -> String {
    let mut h = Sha256::new();
    let tag = match item {
        Emitted::Detection(d) if d.kind != "correlation" => {
            h.update(d.rule_id.as_bytes());
            h.update([0]);
            h.update(d.event_key);
            "d"
        }
        Emitted::Detection(d) => {
            h.update(&d.line);
            "c"
        }
        Emitted::Incident(i) => {
            h.update(&i.line);
            "i"
        }
    };
    format!("{tag}:{}", hex(&h.finalize()[..16]))
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Pending {
    sent: std::time::Instant,
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    ack: Option<PublishAckFuture>,
}

/// A [`Sink`] for [`tracehunt_live::Engine`] that publishes to the
/// DETECTIONS stream, subject `detections.<partition>.<kind>` (the
/// partition of the item's host; incidents: of their first host).
/// [`Sink::flush`] returns only when the stream acknowledged everything
/// emitted (a flush that is not forced may answer "not yet" for up to
/// 20 ms, holding the batches' acknowledgements), so the engine
/// acknowledges a batch's event message after its detections are stored
/// in the cluster. Runs on the engine's ordered
/// thread and blocks on `rt` (never call it from inside the runtime).
pub struct DetectionsSink {
    js: Context,
    names: Names,
    partitions: u32,
    rt: Handle,
    pending: VecDeque<Pending>,
    stats: Arc<SinkStats>,
    recent: std::collections::HashSet<String>,
    recent_order: VecDeque<String>,
}

impl DetectionsSink {
    /// A sink publishing through `js`, hashing hosts over `partitions`.
    pub fn new(js: Context, names: Names, partitions: u32, rt: Handle) -> Self {
        DetectionsSink {
            js,
            names,
            partitions,
            rt,
            pending: VecDeque::new(),
            stats: Arc::default(),
            recent: std::collections::HashSet::new(),
            recent_order: VecDeque::new(),
        }
    }

    /// Whether rule-hit id `id` was published by this sink recently (and
    /// remembers it).
    fn seen(&mut self, id: &str) -> bool {
        if !id.starts_with("d:") {
            return false;
        }
        if !self.recent.insert(id.to_owned()) {
            return true;
        }
        self.recent_order.push_back(id.to_owned());
        if self.recent_order.len() > RECENT_IDS {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
        false
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    fn settle_front(&mut self) -> io::Result<()> {
        let Some(mut p) = self.pending.pop_front() else {
            return Ok(());
        };
        let (js, stats) = (self.js.clone(), self.stats.clone());
        self.rt.block_on(async move {
            let mut last = String::new();
            for attempt in 0..ATTEMPTS {
                let ack = match p.ack.take() {
                    Some(a) => a,
                    None => {
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(backoff(attempt)).await;
                        match js
                            .send_publish(
                                p.subject.clone(),
                                Publish::build()
                                    .headers(p.headers.clone())
                                    .payload(p.payload.clone()),
                            )
                            .await
                        {
                            Ok(a) => a,
                            Err(e) => {
                                last = e.to_string();
                                continue;
                            }
                        }
                    }
                };
                match ack.await {
                    Ok(a) => {
                        let c = if a.duplicate {
                            &stats.duplicates
                        } else {
                            &stats.published
                        };
                        c.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            Err(io::Error::other(format!(
                "publishing to {} failed {ATTEMPTS} times: {last}",
                p.subject
            )))
        })
    }
}

/// Wait before attempt `n` (1-based retries): 100 ms doubling, at most 5 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(100u64 << n.min(6)).min(Duration::from_secs(5))
}

impl Sink for DetectionsSink {
    fn emit(&mut self, item: &Emitted) -> io::Result<()> {
        let (kind, host) = match item {
            Emitted::Detection(d) => (d.kind, d.host.as_deref()),
            Emitted::Incident(i) => ("incident", i.hosts.first().map(String::as_str)),
        };
        let subject = self
            .names
            .detection_subject(partition_of(host, self.partitions), kind);
        let id = message_id(item);
        if self.seen(&id) {
            self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        if let Emitted::Detection(d) = item {
            headers.insert(EVENT_KEY_HEADER, hex(&d.event_key).as_str());
        }
        let line = item.line();
        let payload = Bytes::copy_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        let js = self.js.clone();
        let (s, h, b) = (subject.clone(), headers.clone(), payload.clone());
        // A failed send is retried when settled (ack None).
        let ack = self
            .rt
            .block_on(async move {
                js.send_publish(s, Publish::build().headers(h).payload(b))
                    .await
            })
            .ok();
        self.pending.push_back(Pending {
            sent: std::time::Instant::now(),
            subject,
            headers,
            payload,
            ack,
        });
        while self.pending.len() > WINDOW {
            self.settle_front()?;
        }
        Ok(())
    }

    fn flush(&mut self, force: bool) -> io::Result<bool> {
        let due = self
            .pending
            .front()
            .is_some_and(|p| p.sent.elapsed() >= SETTLE_AFTER);
        if !(force || due || self.pending.len() >= WINDOW / 2) {
            return Ok(self.pending.is_empty());
        }
        while !self.pending.is_empty() {
            self.settle_front()?;
        }
        Ok(true)
    }
}
