//! One big JSON record at a time across the process (issue #20 item 7).
//!
//! Reading a JSON record costs several times its size: the line buffer,
//! the `serde_json::Value` tree (measured about 9× the text for records of
//! many small fields) and the event. With one worker thread per core each
//! reading its own 58 MB record, peak memory grew with the thread count
//! (eight such records: 0.82 GB at 1 thread, 4.2 GB at 8), and even a line
//! over the 64 MiB limit, buffered up to the limit before it is skipped,
//! cost 0.23–0.94 GB. A reader whose record grows past [`BIG_RECORD_BYTES`]
//! therefore takes the process-wide [`BigPermit`] and keeps it until the
//! consumer asks for the record after (by then the previous event has been
//! dropped in the usual `for event in records` loop): big records are read
//! one after another whatever the thread count, small ones never wait.
//!
//! The permit is re-entrant on one thread (a thread that holds it may read
//! another big record, e.g. a nested reader), and a wait longer than
//! [`MAX_WAIT`] goes ahead without it, so a consumer that holds a reader
//! while waiting on another thread can slow the hunt down but never
//! deadlock it.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Records (lines, multi-line values, array elements) above this many bytes
/// are read under the [`BigPermit`]: 4 MiB, far above every record of the
/// corpora (the largest evtx-JSON record of Mordor is about 60 KiB), far
/// below the 64 MiB record limit.
pub(crate) const BIG_RECORD_BYTES: usize = 4 << 20;

/// The longest a reader waits for the permit before going ahead without it.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(30);

/// Who holds the permit, and how many times (re-entrant).
struct State {
    holder: Option<ThreadId>,
    depth: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    holder: None,
    depth: 0,
});
static FREED: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, State> {
    // The state is two plain fields, consistent after any panic.
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The right to hold one big record in memory; released on drop.
#[derive(Debug)]
pub(crate) struct BigPermit {
    /// `false` when the wait timed out and the reader went ahead without it.
    held: bool,
}

impl BigPermit {
    /// Waits (at most [`MAX_WAIT`]) until no other thread holds the permit,
    /// then takes it.
    pub(crate) fn acquire() -> BigPermit {
        Self::acquire_within(MAX_WAIT)
    }

    fn acquire_within(max_wait: Duration) -> BigPermit {
        let me = std::thread::current().id();
        let deadline = Instant::now() + max_wait;
        let mut s = lock();
        loop {
            match s.holder {
                None => {
                    s.holder = Some(me);
                    s.depth = 1;
                    return BigPermit { held: true };
                }
                Some(h) if h == me => {
                    s.depth += 1;
                    return BigPermit { held: true };
                }
                Some(_) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return BigPermit { held: false };
                    }
                    s = FREED
                        .wait_timeout(s, deadline - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
            }
        }
    }

    /// Whether this permit is held (it is not after a timed-out wait).
    #[cfg(test)]
    pub(crate) fn is_held(&self) -> bool {
        self.held
    }
}

impl Drop for BigPermit {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let mut s = lock();
        s.depth = s.depth.saturating_sub(1);
        if s.depth == 0 {
            s.holder = None;
            drop(s);
            FREED.notify_one();
        }
    }
}

/// Takes the permit into `slot` when `len` passes [`BIG_RECORD_BYTES`] and
/// the slot is empty.
pub(crate) fn hold_if_big(slot: &mut Option<BigPermit>, len: usize) {
    if len > BIG_RECORD_BYTES && slot.is_none() {
        *slot = Some(BigPermit::acquire());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Issue #20 item 7: big records were read by every worker at once.
    #[test]
    fn big_records_are_held_by_one_thread_at_a_time() {
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (inside, most) = (inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let p = BigPermit::acquire();
                        assert!(p.is_held());
                        // Re-entrant on the holding thread.
                        let again = BigPermit::acquire();
                        assert!(again.is_held());
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(again);
                        drop(p);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_permit_held_elsewhere_too_long_is_gone_around() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let p = BigPermit::acquire();
            tx.send(()).unwrap();
            done_rx.recv().unwrap();
            drop(p);
        });
        rx.recv().unwrap();
        let p = BigPermit::acquire_within(Duration::from_millis(50));
        assert!(!p.is_held());
        drop(p); // not held: must not release the other thread's permit
        assert!(lock().holder.is_some());
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }
}
