//! The worker: leases partitions, binds their durable consumers, feeds
//! their messages to the live pipeline in order and acknowledges each one
//! after its outputs are published.

use crate::cluster::{
    ensure_detections, ensure_events, setup, ClusterError, Names, StreamSettings,
};
use crate::lease::Lease;
use crate::partition::PartitionSpec;
use crate::publish::source_from_header;
use crate::sink::{DetectionsSink, SinkStats};
use crate::{FIRST_HEADER, SOURCE_HEADER};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, Message};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tracehunt_live::{BatchResult, Engine, Submission};

/// Where a worker's notes go (partition taken, waiting, lost, consumer
/// bound again): the CLI prints them on stderr. Library code never prints.
pub type Notify = Arc<dyn Fn(String) + Send + Sync>;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Stream names.
    pub names: Names,
    /// This worker's name (unique among running workers; a restart under
    /// the same name takes its leases back at once).
    pub owner: String,
    /// The partitions it serves.
    pub partitions: PartitionSpec,
    /// Lease TTL of a new lease bucket: how long a dead worker's
    /// partitions wait before another worker takes them.
    pub lease_ttl: Duration,
    /// Streams and bucket created when missing (the events stream with
    /// `settings.partitions`).
    pub settings: StreamSettings,
    /// Messages per partition submitted and not yet acknowledged.
    pub max_inflight: usize,
    /// Stop after this long with no message on any partition, nothing in
    /// flight and every partition leased and bound (batch-style runs,
    /// benchmarks); `None`: until stopped.
    pub idle_exit: Option<Duration>,
}

/// What a worker did (live counters; [`WorkerStats::snapshot`] for a copy).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Event messages received.
    pub messages: AtomicU64,
    /// Of them, redelivered (delivered before to a worker that did not
    /// acknowledge them: a crash, a failover, a lost acknowledgement).
    pub redelivered: AtomicU64,
    /// Messages acknowledged.
    pub acked: AtomicU64,
    /// Acknowledgements that failed after retries (the message comes back).
    pub ack_errors: AtomicU64,
    /// Lines read as events.
    pub events: AtomicU64,
    /// Lines that were not events.
    pub rejected: AtomicU64,
    /// Detections reported for the events (rule, correlation, IOC hits).
    pub detections: AtomicU64,
    /// Partition leases taken.
    pub leases_taken: AtomicU64,
    /// Partition leases lost (taken over after this worker could not refresh them).
    pub leases_lost: AtomicU64,
    /// Consumers bound again after their message stream ended or kept failing.
    pub rebinds: AtomicU64,
    /// Milliseconds from the first message to the last acknowledgement.
    pub busy_ms: AtomicU64,
    /// The detections sink's counters (published, duplicates, retries).
    pub sink: Arc<SinkStats>,
}

/// A copy of [`WorkerStats`], for reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[allow(missing_docs)]
pub struct StatsSnapshot {
    pub messages: u64,
    pub redelivered: u64,
    pub acked: u64,
    pub ack_errors: u64,
    pub events: u64,
    pub rejected: u64,
    pub detections: u64,
    pub published: u64,
    pub duplicates: u64,
    pub publish_retries: u64,
    pub leases_taken: u64,
    pub leases_lost: u64,
    pub rebinds: u64,
    pub busy_seconds: f64,
}

impl WorkerStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            messages: g(&self.messages),
            redelivered: g(&self.redelivered),
            acked: g(&self.acked),
            ack_errors: g(&self.ack_errors),
            events: g(&self.events),
            rejected: g(&self.rejected),
            detections: g(&self.detections),
            published: g(&self.sink.published),
            duplicates: g(&self.sink.duplicates),
            publish_retries: g(&self.sink.retries),
            leases_taken: g(&self.leases_taken),
            leases_lost: g(&self.leases_lost),
            rebinds: g(&self.rebinds),
            busy_seconds: g(&self.busy_ms) as f64 / 1000.0,
        }
    }
}

/// A worker connected to the cluster, before its engine starts.
pub struct Worker {
    js: jetstream::Context,
    cfg: WorkerConfig,
    lease: Lease,
    /// Revision of this process's presence under its name.
    name_rev: u64,
    partitions: Vec<u32>,
    total: u32,
    stats: Arc<WorkerStats>,
    notify: Notify,
}

impl Worker {
    /// Connects the worker: creates the streams and the lease bucket when
    /// missing and resolves its partitions against the events stream's count.
    ///
    /// # Errors
    /// The cluster cannot be set up, or `--partitions` names a partition
    /// the stream does not have.
    pub async fn connect(js: jetstream::Context, cfg: WorkerConfig) -> Result<Self, ClusterError> {
        let total = ensure_events(&js, &cfg.names, &cfg.settings, false).await?;
        ensure_detections(&js, &cfg.names, &cfg.settings).await?;
        let partitions = cfg
            .partitions
            .resolve(total)
            .map_err(ClusterError::Mismatch)?;
        let lease = Lease::open(
            &js,
            &cfg.names,
            &cfg.owner,
            cfg.lease_ttl,
            cfg.settings.replicas,
        )
        .await?;
        // A bucket just created by another worker may not answer reads for
        // a moment (503 no responders: CI finding): transient errors are
        // retried, a name in use is not.
        let mut attempt = 0;
        let name_rev = loop {
            match lease.claim_name().await {
                Ok(r) => break r,
                Err(e @ ClusterError::Mismatch(_)) => return Err(e),
                Err(e) if attempt >= 8 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(crate::sink::backoff(attempt)).await;
                }
            }
        };
        Ok(Worker {
            js,
            cfg,
            lease,
            name_rev,
            partitions,
            total,
            stats: Arc::default(),
            notify: Arc::new(|_| {}),
        })
    }

    /// Sends the worker's notes to `f` (default: nowhere).
    pub fn set_notify(&mut self, f: Notify) {
        self.notify = f;
    }

    /// The partitions this worker serves.
    pub fn partitions(&self) -> &[u32] {
        &self.partitions
    }

    /// Partitions of the events stream.
    pub fn partition_count(&self) -> u32 {
        self.total
    }

    /// The lease TTL in force (the bucket's).
    pub fn lease_ttl(&self) -> Duration {
        self.lease.ttl()
    }

    /// The sink to give the engine (its counters feed [`Worker::stats`]).
    /// `rt` is the runtime [`Worker::run`] runs on.
    pub fn sink(&mut self, rt: tokio::runtime::Handle) -> DetectionsSink {
        let s = DetectionsSink::new(self.js.clone(), self.cfg.names.clone(), self.total, rt);
        Arc::get_mut(&mut self.stats)
            .expect("the sink is made before the worker runs")
            .sink = s.stats();
        s
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    /// Serves the partitions until `stop` turns true (or the idle exit, or
    /// the engine fails): every message is submitted to `engine` in stream
    /// order per partition and acknowledged after its batch is done. On
    /// return nothing is in flight and the leases are released; the caller
    /// then finishes the engine. Needs a multi-threaded runtime.
    ///
    /// # Errors
    /// The engine stopped (a sink failed) or a consumer could not be bound.
    pub async fn run(
        &self,
        engine: Arc<Engine>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ClusterError> {
        let (halt_tx, halt) = watch::channel(false);
        let start = Instant::now();
        let activity = Arc::new(Activity {
            start,
            last_ms: AtomicU64::new(0),
            first_ms: AtomicU64::new(u64::MAX),
            inflight: AtomicU64::new(0),
            unbound: AtomicU64::new(self.partitions.len() as u64),
        });
        let mut tasks = Vec::new();
        for &p in &self.partitions {
            let part = Partition {
                p,
                js: self.js.clone(),
                names: self.cfg.names.clone(),
                lease: self.lease.clone(),
                engine: engine.clone(),
                stats: self.stats.clone(),
                activity: activity.clone(),
                max_inflight: self.cfg.max_inflight.max(1),
                notify: self.notify.clone(),
            };
            tasks.push(tokio::spawn(part.serve(halt.clone())));
        }
        let mut failure = None;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut name_rev = self.name_rev;
        let mut name_kept = Instant::now();
        loop {
            tokio::select! {
                _ = stop.changed() => if *stop.borrow() { break },
                _ = tick.tick() => {
                    if name_kept.elapsed() >= self.lease.ttl() / 3 {
                        match self.lease.keep_name(name_rev).await {
                            Ok(r) => { name_rev = r; name_kept = Instant::now(); }
                            Err(e @ ClusterError::Mismatch(_)) => { failure = Some(e); break; }
                            Err(_) => {}
                        }
                    }
                    if engine.failed() {
                        failure = Some(ClusterError::Io { what: "the live pipeline".into(), why: "an output failed".into() });
                        break;
                    }
                    if tasks.iter().any(|t| t.is_finished()) {
                        break;
                    }
                    if let Some(idle) = self.cfg.idle_exit {
                        let now = start.elapsed().as_millis() as u64;
                        let last = activity.last_ms.load(Ordering::Relaxed);
                        if activity.inflight.load(Ordering::Relaxed) == 0
                            && activity.unbound.load(Ordering::Relaxed) == 0
                            && now.saturating_sub(last) >= idle.as_millis() as u64
                            && self.drained().await
                        {
                            break;
                        }
                    }
                }
            }
        }
        let _ = halt_tx.send(true);
        for t in tasks {
            if engine.failed() {
                // The pipeline stopped: batches it still holds never finish,
                // so their acknowledgements would be awaited for ever
                // (breaker finding: a hang that ignored SIGTERM). Their
                // messages stay unacknowledged and come back to the next owner.
                t.abort();
                let _ = t.await;
                continue;
            }
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(e) => failure = failure.or(Some(setup("a partition task", e))),
            }
        }
        let _ = self.lease.release_name(name_rev).await;
        let (first, last) = (
            activity.first_ms.load(Ordering::Relaxed),
            activity.last_ack_ms(),
        );
        if first != u64::MAX {
            self.stats
                .busy_ms
                .store(last.saturating_sub(first), Ordering::Relaxed);
        }
        failure.map_or(Ok(()), Err)
    }
}

impl Worker {
    /// Whether the server has nothing left for any of this worker's
    /// partitions: no message pending delivery, none delivered and not
    /// acknowledged (so an idle exit never leaves work behind a slow pull).
    async fn drained(&self) -> bool {
        let stream_name = self.cfg.names.events_stream();
        let Ok(stream) = self.js.get_stream(&stream_name).await else {
            return false;
        };
        for &p in &self.partitions {
            match stream.consumer_info(self.cfg.names.consumer(p)).await {
                Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0 => {}
                _ => return false,
            }
        }
        true
    }
}

struct Activity {
    start: Instant,
    /// Last message received or acknowledged (ms since start).
    last_ms: AtomicU64,
    first_ms: AtomicU64,
    inflight: AtomicU64,
    /// Partitions not leased and bound (waiting for a lease, binding, or
    /// binding again): an idle exit waits for them.
    unbound: AtomicU64,
}

impl Activity {
    fn touch(&self) -> u64 {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
        now
    }
    fn last_ack_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }
}

struct Partition {
    p: u32,
    js: jetstream::Context,
    names: Names,
    lease: Lease,
    engine: Arc<Engine>,
    stats: Arc<WorkerStats>,
    activity: Arc<Activity>,
    max_inflight: usize,
    notify: Notify,
}

type InFlight = (Message, oneshot::Receiver<BatchResult>);

/// Pull errors in a row (missed heartbeats, no responders) before the
/// consumer is bound again.
const MAX_PULL_ERRORS: u32 = 10;

/// Why a partition stopped consuming.
enum Ended {
    /// Asked to stop; the lease (at this revision) is to be released.
    Halted(u64),
    /// The lease expired and another worker may hold it.
    Lost,
    /// The message stream ended or kept failing: bind again.
    Unbound,
}

impl Partition {
    /// Takes the lease (waiting for it), consumes, and takes it again after
    /// losing it, until halted.
    async fn serve(self, mut halt: watch::Receiver<bool>) -> Result<(), ClusterError> {
        let wait = (self.lease.ttl() / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        let mut waiting_for: Option<String> = None;
        loop {
            if *halt.borrow() {
                return Ok(());
            }
            let rev = match self.lease.try_take(self.p).await {
                Ok(Ok(rev)) => {
                    waiting_for = None;
                    rev
                }
                Ok(Err(owner)) => {
                    if owner != crate::lease::RELEASED
                        && waiting_for.as_deref() != Some(owner.as_str())
                    {
                        (self.notify)(format!(
                            "partition {}: waiting for the lease {owner} holds",
                            self.p
                        ));
                        waiting_for = Some(owner);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = halt.changed() => return Ok(()),
                    }
                }
                Err(_) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = halt.changed() => return Ok(()),
                    }
                }
            };
            self.stats.leases_taken.fetch_add(1, Ordering::Relaxed);
            match self.consume(rev, &mut halt).await? {
                Ended::Halted(rev) => {
                    let _ = self.lease.release(self.p, rev).await;
                    return Ok(());
                }
                Ended::Lost => {
                    self.stats.leases_lost.fetch_add(1, Ordering::Relaxed);
                    (self.notify)(format!(
                        "partition {}: lease lost (not refreshed in time); taking it again when free",
                        self.p
                    ));
                }
                // The consumer went away (deleted, a cluster change): bind
                // it again under the same lease (ours: taken back at once).
                Ended::Unbound => {
                    self.stats.rebinds.fetch_add(1, Ordering::Relaxed);
                    (self.notify)(format!(
                        "partition {}: its message stream ended or kept failing; binding the consumer again",
                        self.p
                    ));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Binds the partition's durable consumer so that delivery starts
    /// right after its ack floor: messages a previous owner received and did
    /// not acknowledge come again at once, in order (not after their ack
    /// wait, interleaved).
    async fn bind(&self) -> Result<jetstream::consumer::Consumer<pull::Config>, ClusterError> {
        let stream_name = self.names.events_stream();
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .map_err(|e| setup(format!("reading the stream {stream_name}"), e))?;
        let name = self.names.consumer(self.p);
        let deliver = match stream.consumer_info(&name).await {
            Ok(info) => {
                // Resume after the ack floor; a consumer that acknowledged
                // nothing since it was bound at sequence s reports a floor
                // of 0, so it resumes at s (not at the stream's start:
                // fresh-user finding, a takeover replayed acknowledged
                // messages).
                let start = match info.config.deliver_policy {
                    DeliverPolicy::ByStartSequence { start_sequence } => start_sequence,
                    _ => 1,
                };
                let resume = (info.ack_floor.stream_sequence + 1).max(start);
                stream
                    .delete_consumer(&name)
                    .await
                    .map_err(|e| setup(format!("rebinding the consumer {name}"), e))?;
                (self.notify)(format!(
                    "partition {}: taken, resuming at stream sequence {resume}",
                    self.p
                ));
                if resume <= 1 {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::ByStartSequence {
                        start_sequence: resume,
                    }
                }
            }
            Err(_) => {
                (self.notify)(format!(
                    "partition {}: taken, from its first message",
                    self.p
                ));
                DeliverPolicy::All
            }
        };
        stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: self.names.partition_filter(self.p),
                deliver_policy: deliver,
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(120),
                max_ack_pending: (self.max_inflight * 2) as i64,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(format!("creating the consumer {name}"), e))
    }

    /// Consumes while the lease holds and the consumer is bound.
    async fn consume(
        &self,
        mut rev: u64,
        halt: &mut watch::Receiver<bool>,
    ) -> Result<Ended, ClusterError> {
        let consumer = self.bind().await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.max_inflight.min(64))
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| setup(format!("pulling partition {}", self.p), e))?;
        // Bound: the consumer's first pull is on its way (the idle exit may
        // count this partition as caught up once nothing comes).
        self.activity.touch();
        self.activity.unbound.fetch_sub(1, Ordering::Relaxed);
        let (ack_tx, ack_rx) = mpsc::channel::<InFlight>(self.max_inflight);
        let acker = tokio::spawn(ack_in_order(
            ack_rx,
            self.stats.clone(),
            self.activity.clone(),
        ));
        let ttl = self.lease.ttl();
        let mut refresh = tokio::time::interval(ttl / 3);
        refresh.tick().await;
        let mut refreshed = Instant::now();
        let mut ended = Ended::Unbound;
        let mut errors_in_a_row = 0;
        let mut result = Ok(());
        loop {
            tokio::select! {
                _ = halt.changed() => if *halt.borrow() { ended = Ended::Halted(0); break },
                _ = refresh.tick() => match self.lease.refresh(self.p, rev).await {
                    Ok(Some(r)) => { rev = r; refreshed = Instant::now(); }
                    Ok(None) => { ended = Ended::Lost; break; }
                    // Unreachable bucket (a node restarting): keep going
                    // while the lease cannot have expired.
                    Err(_) if refreshed.elapsed() < ttl * 2 / 3 => {}
                    Err(_) => { ended = Ended::Lost; break; }
                },
                m = messages.next() => match m {
                    Some(Ok(msg)) => {
                        errors_in_a_row = 0;
                        if let Err(e) = self.submit(msg, &ack_tx).await {
                            result = Err(e);
                            break;
                        }
                    }
                    // Heartbeats missed, a leader change: the stream
                    // recovers by itself; many errors in a row, or its end,
                    // and the consumer is bound again.
                    Some(Err(_)) => {
                        errors_in_a_row += 1;
                        if errors_in_a_row >= MAX_PULL_ERRORS {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        drop(messages);
        drop(ack_tx);
        match acker.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(e) => result = result.and(Err(setup("the acknowledging task", e))),
        }
        self.activity.unbound.fetch_add(1, Ordering::Relaxed);
        if let Ended::Halted(r) = &mut ended {
            *r = rev;
        }
        result.map(|()| ended)
    }

    async fn submit(
        &self,
        msg: Message,
        ack_tx: &mpsc::Sender<InFlight>,
    ) -> Result<(), ClusterError> {
        self.stats.messages.fetch_add(1, Ordering::Relaxed);
        let now = self.activity.touch();
        self.activity.first_ms.fetch_min(now, Ordering::Relaxed);
        if msg.info().is_ok_and(|i| i.delivered > 1) {
            self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        let header = |k: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(k))
                .map(|v| v.as_str().to_owned())
        };
        let source = header(SOURCE_HEADER)
            .map(|s| source_from_header(&s))
            .unwrap_or_else(|| msg.subject.to_string());
        let first_line = header(FIRST_HEADER)
            .and_then(|f| f.parse().ok())
            .unwrap_or(1);
        let text = String::from_utf8_lossy(&msg.payload);
        let lines: Vec<String> = text
            .split('\n')
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let (tx, rx) = oneshot::channel();
        let sub = Submission {
            source: Arc::from(source),
            lines,
            first_line,
            done: Some(Box::new(move |r: &BatchResult| {
                let _ = tx.send(r.clone());
            })),
            rejected: Vec::new(),
        };
        self.activity.inflight.fetch_add(1, Ordering::Relaxed);
        let engine = self.engine.clone();
        let taken = tokio::task::block_in_place(|| engine.submit(sub));
        if taken.is_err() {
            self.activity.inflight.fetch_sub(1, Ordering::Relaxed);
            return Err(ClusterError::Io {
                what: "submitting to the live pipeline".into(),
                why: "it has stopped".into(),
            });
        }
        ack_tx
            .send((msg, rx))
            .await
            .map_err(|_| setup("the acknowledging task", "stopped"))
    }
}

/// Acknowledges messages in the order they were submitted, each once its
/// batch is done (outputs published).
async fn ack_in_order(
    mut rx: mpsc::Receiver<InFlight>,
    stats: Arc<WorkerStats>,
    activity: Arc<Activity>,
) -> Result<(), ClusterError> {
    while let Some((msg, done)) = rx.recv().await {
        let r = done.await.map_err(|_| ClusterError::Io {
            what: "the live pipeline".into(),
            why: "it stopped before finishing a batch".into(),
        });
        activity.inflight.fetch_sub(1, Ordering::Relaxed);
        let r = r?;
        stats.events.fetch_add(r.events, Ordering::Relaxed);
        stats.rejected.fetch_add(r.rejected, Ordering::Relaxed);
        stats.detections.fetch_add(r.detections, Ordering::Relaxed);
        let mut ok = false;
        for attempt in 0..5 {
            if msg.double_ack().await.is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(crate::sink::backoff(attempt + 1)).await;
        }
        let c = if ok { &stats.acked } else { &stats.ack_errors };
        c.fetch_add(1, Ordering::Relaxed);
        activity.touch();
    }
    Ok(())
}
