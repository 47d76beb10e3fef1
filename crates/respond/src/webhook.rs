//! Webhook deliveries: one worker thread per webhook action, a bounded
//! queue, retries with capped exponential backoff.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::action::WebhookAction;
use crate::record::{ActionRecord, Outcome};

/// One queued delivery: the body and the record to complete.
pub(crate) struct Delivery {
    pub body: Vec<u8>,
    pub record: ActionRecord,
    pub dedupe_key: String,
}

/// A finished delivery: its record (outcome `taken` or `failed`) and the
/// dedupe key to forget when it failed.
pub(crate) struct Done {
    pub record: ActionRecord,
    pub dedupe_key: String,
}

/// The queue of one webhook action and its worker thread.
pub(crate) struct Worker {
    queue: SyncSender<Delivery>,
}

impl Worker {
    /// Starts the worker for `cfg`; finished deliveries go to `done`. The
    /// worker stops retrying (and ends after the attempt in flight) once
    /// `stop` is set, and ends when the queue is dropped and empty.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub(crate) fn start(
        cfg: WebhookAction,
        done: Sender<Done>,
        stop: Arc<AtomicBool>,
    ) -> Result<Worker, String> {
        let (queue, rx) = mpsc::sync_channel(cfg.queue);
        std::thread::Builder::new()
            .name("tracehunt-webhook".to_owned())
            .spawn(move || work(&cfg, &rx, &done, &stop))
            .map_err(|e| format!("cannot start the webhook thread: {e}"))?;
        Ok(Worker { queue })
    }

    /// Queues `d` without waiting.
    ///
    /// # Errors
    /// Why `d` was not queued: the queue is full or the worker ended.
    pub(crate) fn offer(&self, d: Delivery) -> Result<(), &'static str> {
        match self.queue.try_send(d) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err("queue full"),
            Err(TrySendError::Disconnected(_)) => Err("webhook worker ended"),
        }
    }
}

fn work(cfg: &WebhookAction, rx: &Receiver<Delivery>, done: &Sender<Done>, stop: &AtomicBool) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout.0))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    while let Ok(d) = rx.recv() {
        let result = deliver(&agent, cfg, &d.body, stop);
        let mut record = d.record;
        record.time = chrono::Utc::now();
        match result {
            Ok(detail) => {
                record.outcome = Outcome::Taken;
                record.detail = detail;
            }
            Err(detail) => {
                record.outcome = Outcome::Failed;
                record.detail = detail;
            }
        }
        let _ = done.send(Done {
            record,
            dedupe_key: d.dedupe_key,
        });
    }
}

/// Posts `body` until a 2xx answer or the retries are exhausted.
fn deliver(
    agent: &ureq::Agent,
    cfg: &WebhookAction,
    body: &[u8],
    stop: &AtomicBool,
) -> Result<String, String> {
    let mut wait = cfg.backoff.0;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last = match post(agent, cfg, body) {
            Ok(status) if (200..300).contains(&status) => {
                return Ok(format!("HTTP {status} after {attempt} attempt(s)"));
            }
            Ok(status) => format!("HTTP {status}"),
            Err(e) => e,
        };
        if attempt > cfg.retries || stop.load(Ordering::Relaxed) {
            return Err(format!("gave up after {attempt} attempt(s); last: {last}"));
        }
        nap(wait, stop);
        wait = (wait * 2).min(cfg.max_backoff.0);
    }
}

fn post(agent: &ureq::Agent, cfg: &WebhookAction, body: &[u8]) -> Result<u16, String> {
    let mut req = agent.post(&cfg.url);
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// Sleeps `d`, waking early when `stop` is set.
fn nap(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
