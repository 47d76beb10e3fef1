//! The live hunt's threads: submissions → bounded queue → scan workers →
//! the ordered stage ([`crate::hunter`]) → sinks, then each batch's
//! [`Done`](crate::Done) callback.

use crate::hunter::{Emitted, Hunter};
use crate::incidents::IncidentConfig;
use crate::metrics::Metrics;
use crate::rules::Rules;
use crate::scan::{scan_batch, BatchResult, Done, Queued, Scanned, Submission};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracehunt_attack::ActorKb;
use tracehunt_attribution::Attributor;
use tracehunt_engine::Scanner;

/// Settings of a live hunt.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Scan worker threads (at least 1).
    pub threads: usize,
    /// Batches queued before submitters wait (files, stdin) or are
    /// refused (HTTP: 503). Memory is bounded by this times the largest
    /// batch (the HTTP body cap, a follow poll's read cap).
    pub queue_batches: usize,
    /// Most bytes of queued lines (each line counted with 64 bytes of
    /// overhead) from submission until its batch is processed; beyond,
    /// submitters wait or are refused like a full queue. Bounds memory
    /// whatever the batch shape (breaker finding: 4 MiB polls of 2-byte
    /// lines grew a watch to 4 GB). A batch larger than the budget is
    /// taken alone.
    pub queue_bytes: usize,
    /// Lowest reported level rank (0 informational … 4 critical).
    pub min_rank: u8,
    /// Incident grouping.
    pub incidents: IncidentConfig,
    /// With no input for this long, windows and incidents are advanced
    /// by the wall time passed and sinks are flushed.
    pub idle_tick: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            threads: 2,
            queue_batches: 256,
            queue_bytes: 256 << 20,
            min_rank: 0,
            incidents: IncidentConfig::default(),
            idle_tick: Duration::from_millis(250),
        }
    }
}

/// Where emitted lines go. Called from the ordered stage's thread only.
pub trait Sink: Send {
    /// Takes one emitted item.
    ///
    /// # Errors
    /// Writing failed; the live hunt stops (the batch is not acknowledged,
    /// so a followed file resumes before it).
    fn emit(&mut self, item: &Emitted) -> io::Result<()>;
    /// Makes what was emitted visible (stdout) or durable (the store).
    /// Returns whether everything emitted so far is durable; a sink that
    /// batches (the store) may return false until `force` or its interval.
    ///
    /// # Errors
    /// As for [`Sink::emit`].
    fn flush(&mut self, force: bool) -> io::Result<bool>;
}

/// JSON lines to any writer (stdout, a file), flushed after every batch.
pub struct JsonLines<W: Write + Send>(pub W);

impl<W: Write + Send> Sink for JsonLines<W> {
    fn emit(&mut self, item: &Emitted) -> io::Result<()> {
        self.0.write_all(item.line())
    }
    fn flush(&mut self, _force: bool) -> io::Result<bool> {
        self.0.flush()?;
        Ok(true)
    }
}

/// What a submission counts against [`LiveConfig::queue_bytes`].
fn cost(s: &Submission) -> usize {
    256 + s.lines.iter().map(|l| l.len() + 64).sum::<usize>()
}

/// Why a submission was not taken.
pub enum SubmitError {
    /// The queue is full (HTTP answers 503; files and stdin wait).
    Full(Submission),
    /// The live hunt is stopping or stopped.
    Closed(Submission),
}

/// What a live hunt did, when it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveSummary {
    /// Batches processed.
    pub batches: u64,
    /// Lines read as events.
    pub events: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Detections emitted (rule, correlation and IOC hits).
    pub detections: u64,
    /// Incidents opened and closed.
    pub incidents_opened: u64,
    /// Incidents closed.
    pub incidents_closed: u64,
    /// Correlation window groups dropped because a reload changed their correlation.
    pub windows_dropped_by_reload: u64,
}

/// Errors that stop a live hunt.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A sink failed (its message says which and why).
    #[error("writing the live output: {0}")]
    Sink(#[from] io::Error),
    /// A thread of the live hunt panicked.
    #[error("a live hunt thread stopped unexpectedly")]
    Thread,
}

struct Intake {
    tx: Option<Sender<Queued>>,
    next_seq: u64,
}

/// A running live hunt. Submit batches from any thread; [`Engine::finish`]
/// drains the queue, closes open windows and incidents and returns the summary.
pub struct Engine {
    intake: Mutex<Intake>,
    /// Bytes of lines submitted and not processed yet ([`LiveConfig::queue_bytes`]).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    queue_bytes: usize,
    rules: RwLock<Arc<Rules>>,
    metrics: Arc<Metrics>,
    queue: Receiver<Queued>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    stage: Mutex<Option<JoinHandle<Result<LiveSummary, LiveError>>>>,
}

impl Engine {
    /// Starts the workers and the ordered stage.
    pub fn start(
        rules: Arc<Rules>,
        cfg: LiveConfig,
        sinks: Vec<Box<dyn Sink>>,
        metrics: Arc<Metrics>,
    ) -> Engine {
        let (tx, rx) = bounded::<Queued>(cfg.queue_batches.max(1));
        let (stx, srx) = bounded::<Scanned>(cfg.queue_batches.max(1));
        let workers = (0..cfg.threads.max(1))
            .map(|i| {
                let (rx, stx) = (rx.clone(), stx.clone());
                let min_rank = cfg.min_rank;
                std::thread::Builder::new()
                    .name(format!("live-scan-{i}"))
                    .spawn(move || worker(rx, stx, min_rank))
                    .expect("spawning a scan thread")
            })
            .collect();
        drop(stx);
        let hunter = Hunter::new(rules.clone(), cfg.incidents, cfg.min_rank);
        let m = metrics.clone();
        let tick = cfg.idle_tick;
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let f = in_flight.clone();
        let stage = std::thread::Builder::new()
            .name("live-order".into())
            .spawn(move || stage(srx, hunter, sinks, m, tick, f))
            .expect("spawning the ordered stage");
        metrics.rules_generation.set(rules.generation as i64);
        Engine {
            intake: Mutex::new(Intake {
                tx: Some(tx),
                next_seq: 0,
            }),
            rules: RwLock::new(rules),
            in_flight,
            queue_bytes: cfg.queue_bytes.max(1),
            metrics,
            queue: rx,
            workers: Mutex::new(workers),
            stage: Mutex::new(Some(stage)),
        }
    }

    /// The metrics (shared with `/metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The rules in use for new submissions.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Batches queued now.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Queues `s` if there is room.
    ///
    /// # Errors
    /// [`SubmitError::Full`] when the queue is full, [`SubmitError::Closed`]
    /// after [`Engine::finish`]; both give the submission back.
    pub fn try_submit(&self, s: Submission) -> Result<(), SubmitError> {
        let mut intake = self.intake.lock().unwrap_or_else(|e| e.into_inner());
        let seq = intake.next_seq;
        let Some(tx) = &intake.tx else {
            return Err(SubmitError::Closed(s));
        };
        let cost = cost(&s);
        let used = self.in_flight.load(std::sync::atomic::Ordering::Acquire);
        if used > 0 && used + cost > self.queue_bytes {
            return Err(SubmitError::Full(s));
        }
        let q = Queued {
            seq,
            rules: self.rules(),
            sub: s,
            received: Instant::now(),
            cost,
        };
        match tx.try_send(q) {
            Ok(()) => {
                self.in_flight
                    .fetch_add(cost, std::sync::atomic::Ordering::AcqRel);
                intake.next_seq += 1;
                self.metrics.batches.inc();
                self.metrics.queue_depth.set(self.queue.len() as i64);
                Ok(())
            }
            Err(TrySendError::Full(q)) => Err(SubmitError::Full(q.sub)),
            Err(TrySendError::Disconnected(q)) => Err(SubmitError::Closed(q.sub)),
        }
    }

    /// Queues `s`, waiting while the queue is full (backpressure for
    /// followed files and stdin).
    ///
    /// # Errors
    /// The live hunt is stopping: the submission comes back.
    pub fn submit(&self, mut s: Submission) -> Result<(), Submission> {
        loop {
            match self.try_submit(s) {
                Ok(()) => return Ok(()),
                Err(SubmitError::Full(back)) => {
                    s = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(SubmitError::Closed(back)) => return Err(back),
            }
        }
    }

    /// Replaces the rules for every batch submitted from now on; the
    /// windows of unchanged correlations are kept. Returns the new generation.
    pub fn reload(
        &self,
        loaded: tracehunt_pipeline::Loaded,
        iocs: Option<Arc<tracehunt_ioc::IocSet>>,
        kb: Arc<tracehunt_attack::ActorKb>,
    ) -> u64 {
        // Under the intake lock: batches queued after it carry the new rules.
        let _intake = self.intake.lock().unwrap_or_else(|e| e.into_inner());
        let mut cur = self.rules.write().unwrap_or_else(|e| e.into_inner());
        let generation = cur.generation + 1;
        *cur = Rules::new(loaded, iocs, kb, generation);
        self.metrics.reloads.inc();
        self.metrics.rules_generation.set(generation as i64);
        generation
    }

    /// Stops taking submissions, processes everything queued, closes open
    /// correlation windows and incidents (emitting what that produces),
    /// flushes the sinks and returns the summary.
    ///
    /// # Errors
    /// A sink failed, or a thread panicked.
    pub fn finish(&self) -> Result<LiveSummary, LiveError> {
        self.intake.lock().unwrap_or_else(|e| e.into_inner()).tx = None;
        for w in self
            .workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            w.join().map_err(|_| LiveError::Thread)?;
        }
        match self.stage.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(h) => h.join().map_err(|_| LiveError::Thread)?,
            None => Ok(LiveSummary::default()),
        }
    }

    /// Whether the ordered stage stopped (a sink failed): submissions are
    /// then pointless; [`Engine::finish`] returns the error.
    pub fn failed(&self) -> bool {
        self.stage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|h| h.is_finished())
    }
}

fn worker(rx: Receiver<Queued>, tx: Sender<Scanned>, min_rank: u8) {
    let mut pending: Option<Queued> = None;
    loop {
        let first = match pending.take() {
            Some(q) => q,
            None => match rx.recv() {
                Ok(q) => q,
                Err(_) => return,
            },
        };
        // One scanner per rules generation: its caches belong to the ruleset.
        let rules = first.rules.clone();
        let mut sc = Scanner::new(&rules.loaded.ruleset);
        let mut q = first;
        loop {
            if tx.send(scan_batch(&mut sc, q, min_rank)).is_err() {
                return;
            }
            match rx.recv() {
                Ok(n) if n.rules.generation == rules.generation => q = n,
                Ok(n) => {
                    pending = Some(n);
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

struct Stage {
    hunter: Hunter,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    sinks: Vec<Box<dyn Sink>>,
    metrics: Arc<Metrics>,
    summary: LiveSummary,
    /// Done callbacks of batches whose outputs are not durable yet.
    waiting: Vec<(Done, BatchResult)>,
    out: Vec<Emitted>,
}

impl Stage {
    fn emit(&mut self) -> Result<(), LiveError> {
        for e in self.out.drain(..) {
            match &e {
                Emitted::Detection(_) => {
                    self.metrics.detections_out.inc();
                }
                Emitted::Incident(i) => {
                    Metrics::inc(&self.metrics.incidents_out, "status", i.status);
                    if i.status == "closed" {
                        self.summary.incidents_closed += 1;
                    } else if i.status == "opened" {
                        self.summary.incidents_opened += 1;
                    }
                }
            }
            for s in &mut self.sinks {
                s.emit(&e)?;
            }
        }
        Ok(())
    }

    /// Flushes the sinks; when all are durable, acknowledges the waiting batches.
    fn flush(&mut self, force: bool) -> Result<(), LiveError> {
        let mut durable = true;
        for s in &mut self.sinks {
            durable &= s.flush(force)?;
        }
        if durable {
            for (done, r) in self.waiting.drain(..) {
                done(&r);
            }
        }
        Ok(())
    }

    fn batch(&mut self, mut b: Scanned, att: &Attributor<'_>) -> Result<(), LiveError> {
        self.in_flight
            .fetch_sub(b.cost, std::sync::atomic::Ordering::AcqRel);
        self.hunter.process(&mut b, &mut self.out, att);
        self.emit()?;
        let r = std::mem::take(&mut b.result);
        self.summary.batches += 1;
        self.summary.events += r.events;
        self.summary.rejected += r.rejected;
        self.summary.detections += r.detections;
        self.metrics.events_in.inc_by(r.events);
        self.metrics.lines_rejected.inc_by(r.rejected);
        self.metrics
            .open_incidents
            .set(self.hunter.open_incidents() as i64);
        if let Some(done) = b.done.take() {
            self.waiting.push((done, r));
        }
        self.flush(false)?;
        self.metrics
            .latency
            .observe(b.received.elapsed().as_secs_f64());
        Ok(())
    }
}

/// Processes the held batches that are next in order, until one needs
/// another ATT&CK knowledge base than `kb` (a reload): that one is
/// returned, unprocessed.
fn drain_ready(
    st: &mut Stage,
    held: &mut BTreeMap<u64, Scanned>,
    next: &mut u64,
    (kb, att): (&Arc<ActorKb>, &Attributor<'_>),
) -> Result<Option<Scanned>, LiveError> {
    while let Some(b) = held.remove(next) {
        if !Arc::ptr_eq(&b.rules.kb, kb) {
            return Ok(Some(b));
        }
        *next += 1;
        st.batch(b, att)?;
    }
    Ok(None)
}

fn stage(
    rx: Receiver<Scanned>,
    hunter: Hunter,
    sinks: Vec<Box<dyn Sink>>,
    metrics: Arc<Metrics>,
    tick: Duration,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
) -> Result<LiveSummary, LiveError> {
    let mut kb = hunter.kb();
    let mut st = Stage {
        hunter,
        sinks,
        metrics,
        in_flight,
        summary: LiveSummary::default(),
        waiting: Vec::new(),
        out: Vec::new(),
    };
    let mut next = 0u64;
    let mut held: BTreeMap<u64, Scanned> = BTreeMap::new();
    let mut last_input = Instant::now();
    let mut ticked_at: Option<chrono::DateTime<chrono::Utc>> = None;
    // One attributor per knowledge base: building one indexes every ATT&CK
    // group (milliseconds), so it lives as long as its rules generation's
    // knowledge base (breaker finding: one per batch cost 13 % with many
    // new incidents).
    loop {
        let att = Attributor::new(&kb);
        let mut switch = drain_ready(&mut st, &mut held, &mut next, (&kb, &att))?;
        let mut done = false;
        while switch.is_none() {
            match rx.recv_timeout(tick) {
                Ok(s) => {
                    held.insert(s.seq, s);
                    switch = drain_ready(&mut st, &mut held, &mut next, (&kb, &att))?;
                    last_input = Instant::now();
                    ticked_at = None;
                    st.metrics
                        .queue_depth
                        .set(rx.len() as i64 + held.len() as i64);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Event time moves on with the wall clock while nothing comes.
                    if let Some(clock) = st.hunter.clock {
                        let now = clock
                            .checked_add_signed(
                                chrono::Duration::from_std(last_input.elapsed())
                                    .unwrap_or_default(),
                            )
                            .unwrap_or(clock);
                        if ticked_at.is_none_or(|t| now > t) {
                            st.hunter.tick(now, &mut st.out, &att);
                            st.emit()?;
                            ticked_at = Some(now);
                        }
                    }
                    st.flush(true)?;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    done = true;
                    break;
                }
            }
        }
        if done {
            // Batches can only be missing from `held` if a worker died.
            for (_, b) in std::mem::take(&mut held) {
                st.batch(b, &att)?;
            }
            st.hunter.finish(&mut st.out, &att);
            st.emit()?;
            st.flush(true)?;
            st.summary.windows_dropped_by_reload = st.hunter.reload_dropped;
            return Ok(st.summary);
        }
        if let Some(b) = switch {
            kb = b.rules.kb.clone();
            held.insert(b.seq, b);
        }
    }
}
