//! The publisher: events, in their files' order, batched per (source, host)
//! into messages on `events.<partition>.<host>`.

use crate::cluster::{ensure_events, ClusterError, Names, StreamSettings};
use crate::partition::{host_token, partition_of};
use crate::sink::{backoff, hex};
use crate::{FIRST_HEADER, SOURCE_HEADER};
use async_nats::header::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::Context;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use tracehunt_event::Event;

/// How the publisher batches.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Stream names.
    pub names: Names,
    /// Replicas and partitions of the events stream (created when missing).
    pub settings: StreamSettings,
    /// Most events per message.
    pub max_events: usize,
    /// Most payload bytes per message (lowered to the server's
    /// `max_payload` less 4 KiB).
    pub max_bytes: usize,
    /// Messages published and not yet acknowledged before the publisher
    /// waits for the oldest.
    pub window: usize,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            names: Names::new(None).expect("no namespace is valid"),
            settings: StreamSettings::default(),
            max_events: 500,
            max_bytes: 512 << 10,
            window: 256,
        }
    }
}

/// What a publisher did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PublishStats {
    /// Event messages acknowledged as new by the stream.
    pub messages: u64,
    /// Events in them.
    pub events: u64,
    /// Payload bytes in them.
    pub bytes: u64,
    /// Messages the stream already had (the same batch published again
    /// within its two-minute duplicate window).
    pub duplicates: u64,
    /// Publishes repeated after a timeout or error.
    pub retries: u64,
    /// Events larger than a message (skipped), with the first one's source
    /// and ordinal.
    pub too_large: u64,
    /// The first event too large to publish: (source, ordinal).
    pub first_too_large: Option<(String, u64)>,
    /// Partitions of the stream.
    pub partitions: u32,
    /// Events acknowledged per partition (index = partition): how evenly
    /// the hosts spread, i.e. how many workers can share the load.
    pub per_partition: Vec<u64>,
}

struct Batch {
    source: String,
    host: Option<String>,
    first: u64,
    events: usize,
    text: String,
}

struct Pending {
    partition: u32,
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    events: u64,
    ack: Option<PublishAckFuture>,
}

/// Publishes events to the events stream. Events of one host keep their
/// order: they are batched in the order pushed, a batch holds one source
/// and one host, and JetStream keeps a subject's messages in publish order.
pub struct Publisher {
    js: Context,
    cfg: PublisherConfig,
    partitions: u32,
    batch: Option<Batch>,
    pending: VecDeque<Pending>,
    stats: PublishStats,
}

impl Publisher {
    /// A publisher on `js`, creating the events stream if missing.
    ///
    /// # Errors
    /// The stream cannot be created, or exists with another partition count.
    pub async fn new(
        client: &async_nats::Client,
        js: Context,
        mut cfg: PublisherConfig,
    ) -> Result<Self, ClusterError> {
        let partitions = ensure_events(&js, &cfg.names, &cfg.settings, true).await?;
        let limit = client
            .server_info()
            .max_payload
            .saturating_sub(4096)
            .max(4096);
        cfg.max_bytes = cfg.max_bytes.clamp(1, limit);
        cfg.max_events = cfg.max_events.max(1);
        cfg.window = cfg.window.max(1);
        Ok(Publisher {
            js,
            cfg,
            partitions,
            batch: None,
            pending: VecDeque::new(),
            stats: PublishStats {
                partitions,
                per_partition: vec![0; partitions as usize],
                ..Default::default()
            },
        })
    }

    /// Adds event number `ordinal` (1-based) of `source`.
    ///
    /// # Errors
    /// A message could not be published after the retries.
    pub async fn push(
        &mut self,
        source: &str,
        ordinal: u64,
        ev: &Event,
    ) -> Result<(), ClusterError> {
        let line = tracehunt_readers::wire::encode(ev);
        if line.len() + 1 > self.cfg.max_bytes {
            self.stats.too_large += 1;
            if self.stats.first_too_large.is_none() {
                self.stats.first_too_large = Some((source.to_owned(), ordinal));
            }
            return Ok(());
        }
        let host = ev.meta.computer.as_deref();
        let fits = self.batch.as_ref().is_some_and(|b| {
            b.source == source
                && b.host.as_deref() == host
                && b.events < self.cfg.max_events
                && b.text.len() + line.len() < self.cfg.max_bytes
        });
        if !fits {
            self.send_batch().await?;
            self.batch = Some(Batch {
                source: source.to_owned(),
                host: host.map(str::to_owned),
                first: ordinal,
                events: 0,
                text: String::new(),
            });
        }
        let b = self.batch.as_mut().expect("a batch was just opened");
        if !b.text.is_empty() {
            b.text.push('\n');
        }
        b.text.push_str(&line);
        b.events += 1;
        Ok(())
    }

    async fn send_batch(&mut self) -> Result<(), ClusterError> {
        let Some(b) = self.batch.take() else {
            return Ok(());
        };
        let host = b.host.as_deref();
        let partition = partition_of(host, self.partitions);
        let subject = self.cfg.names.event_subject(partition, &host_token(host));
        let mut id = Sha256::new();
        id.update(b.source.as_bytes());
        id.update(format!("\0{}\0{}\0", b.first, b.events).as_bytes());
        // The events themselves too: two hosts' files at one path (or a file
        // rewritten in place) are other messages (breaker finding: the
        // second was dropped as "already in the stream").
        id.update(b.text.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("e:{}", hex(&id.finalize()[..16])).as_str(),
        );
        headers.insert(SOURCE_HEADER, header_text(&b.source).as_str());
        headers.insert(FIRST_HEADER, b.first.to_string().as_str());
        let payload = Bytes::from(b.text);
        let ack = self
            .js
            .send_publish(
                subject.clone(),
                Publish::build()
                    .headers(headers.clone())
                    .payload(payload.clone()),
            )
            .await
            .ok();
        self.pending.push_back(Pending {
            partition,
            subject,
            headers,
            payload,
            events: b.events as u64,
            ack,
        });
        while self.pending.len() > self.cfg.window {
            self.settle_front().await?;
        }
        Ok(())
    }

    async fn settle_front(&mut self) -> Result<(), ClusterError> {
        let Some(mut p) = self.pending.pop_front() else {
            return Ok(());
        };
        let mut last = String::new();
        for attempt in 0..12 {
            let ack = match p.ack.take() {
                Some(a) => a,
                None => {
                    self.stats.retries += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                    match self
                        .js
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
                Ok(a) if a.duplicate => {
                    self.stats.duplicates += 1;
                    return Ok(());
                }
                Ok(_) => {
                    self.stats.messages += 1;
                    self.stats.events += p.events;
                    if let Some(n) = self.stats.per_partition.get_mut(p.partition as usize) {
                        *n += p.events;
                    }
                    self.stats.bytes += p.payload.len() as u64;
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(ClusterError::Io {
            what: format!("publishing to {}", p.subject),
            why: last,
        })
    }

    /// Publishes the last batch, waits for every acknowledgement and
    /// returns the counts.
    ///
    /// # Errors
    /// A message could not be published after the retries.
    pub async fn finish(mut self) -> Result<PublishStats, ClusterError> {
        self.send_batch().await?;
        while !self.pending.is_empty() {
            self.settle_front().await?;
        }
        Ok(self.stats)
    }

    /// Counts so far (acknowledged messages only).
    pub fn stats(&self) -> &PublishStats {
        &self.stats
    }
}

/// A source as a header value: bytes outside printable ASCII, and `%`,
/// as `%XX` (a header holds no control characters); [`source_from_header`]
/// gives the exact text back.
pub(crate) fn header_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b' '..=b'~').contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`header_text`] (invalid escapes are kept as they are).
pub(crate) fn source_from_header(h: &str) -> String {
    let b = h.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let esc = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|x| u8::from_str_radix(x, 16).ok());
        match esc {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_through_the_header() {
        for s in ["C:\\logs\\a b.evtx", "/tmp/é%20x\n\u{7f}", "%", "a%4", ""] {
            let h = header_text(s);
            assert!(h.bytes().all(|b| (b' '..=b'~').contains(&b)), "{h}");
            assert_eq!(source_from_header(&h), s);
        }
    }
}
