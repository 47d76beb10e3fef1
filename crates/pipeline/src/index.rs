//! The external sort of a hunt's detection index (issue #4, flat memory).
//!
//! Every detection leaves a worker as rendered bytes in the spill
//! ([`crate::spill`]) plus one 40-byte [`Entry`] (time, rule, host, unit,
//! place in the unit, spill range). Entries are not kept for the whole
//! run: a worker collects at most its run budget ([`run_budget`]) of them,
//! sorts them into output order and appends the sorted *run* to a run store
//! (a second [`Spill`]: in memory up to 64 KiB, then an anonymous temporary
//! file), then starts the next run. What is left when the scan ends stays in
//! memory as one last run per worker. The main thread then streams the
//! entries in output order with a k-way merge ([`Merge`]: a binary heap over
//! one cursor per run, each reading [`BLOCK`] entries at a time), as often
//! as it needs a pass (summary, attribution evidence, the output itself).
//!
//! Memory: the workers' run buffers (the budget, shared by the threads),
//! plus per stored run one cursor block (10 KiB) during a merge; the
//! entries themselves stay on disk. Output order is the total order of
//! [`Entry::order`] (time, unit, place; unique), so where the runs are cut
//! never changes the output (tested with a tiny budget).

use crate::entry::Entry;
use crate::spill::{Spill, SpillReader};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;

/// Index entries all workers together hold before writing a sorted run
/// (64 Ki entries, 2.5 MiB); each of `n` workers gets `RUN_BUDGET / n`, at
/// least [`MIN_RUN`].
pub const RUN_BUDGET: usize = 64 << 10;
/// Smallest per-worker run (entries) derived from [`RUN_BUDGET`].
const MIN_RUN: usize = 4096;
/// Entries a merge cursor reads from the run store at a time (10 KiB).
pub const BLOCK: usize = 256;
/// Bytes of one stored entry.
const ENTRY_BYTES: usize = 40;

/// Entries per run for each of `threads` workers: [`RUN_BUDGET`] shared,
/// or the entry count in the environment variable `TRACEHUNT_INDEX_RUN`
/// (per worker, at least 1; tests use tiny values to cut the index into
/// many runs).
pub fn run_budget(threads: usize) -> usize {
    std::env::var("TRACEHUNT_INDEX_RUN")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(|n| n.max(1))
        .unwrap_or_else(|| (RUN_BUDGET / threads.max(1)).max(MIN_RUN))
}

/// A sorted run of index entries.
pub enum Run {
    /// Kept in memory (the last, partial run of a worker; the detections
    /// kept whole; correlation hits).
    Mem(Vec<Entry>),
    /// `count` entries at byte `off` of the run store.
    Stored {
        /// Byte offset of the run in the run store.
        off: u64,
        /// Entries in the run.
        count: u64,
    },
}

/// Sorts `entries` into output order and appends them to `store` as one
/// run.
///
/// # Errors
/// Creating or writing the run store's temporary file failed.
pub fn write_run(entries: &mut [Entry], store: &Spill, bytes: &mut Vec<u8>) -> io::Result<Run> {
    entries.sort_unstable_by_key(Entry::order);
    bytes.clear();
    bytes.reserve(entries.len() * ENTRY_BYTES);
    for e in entries.iter() {
        encode(e, bytes);
    }
    let off = store.append(bytes)?;
    Ok(Run::Stored {
        off,
        count: entries.len() as u64,
    })
}

fn encode(e: &Entry, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.secs.to_le_bytes());
    for x in [e.nanos, e.rule, e.ctx, e.unit, e.seq] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&e.off.to_le_bytes());
    out.extend_from_slice(&e.len.to_le_bytes());
}

fn decode(b: &[u8]) -> Entry {
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        a
    };
    let u32_at = |i: usize| {
        let mut a = [0u8; 4];
        a.copy_from_slice(&b[i..i + 4]);
        u32::from_le_bytes(a)
    };
    Entry {
        secs: i64::from_le_bytes(u64_at(0)),
        nanos: u32_at(8),
        rule: u32_at(12),
        ctx: u32_at(16),
        unit: u32_at(20),
        seq: u32_at(24),
        off: u64::from_le_bytes(u64_at(28)),
        len: u32_at(36),
    }
}

/// Where one run's next entries come from during a merge.
struct Cursor<'a> {
    run: &'a Run,
    /// Entries of the run consumed into `block` so far.
    next: u64,
    block: Vec<Entry>,
    at: usize,
}

impl Cursor<'_> {
    /// The cursor's next entry, reading the next block when needed.
    fn pop(&mut self, store: &SpillReader, bytes: &mut Vec<u8>) -> io::Result<Option<Entry>> {
        match self.run {
            Run::Mem(v) => {
                let e = v.get(self.next as usize).copied();
                self.next += 1;
                Ok(e)
            }
            Run::Stored { off, count } => {
                if self.at == self.block.len() {
                    if self.next == *count {
                        return Ok(None);
                    }
                    let n = (*count - self.next).min(BLOCK as u64) as usize;
                    bytes.clear();
                    store.read(off + self.next * ENTRY_BYTES as u64, n * ENTRY_BYTES, bytes)?;
                    self.block.clear();
                    self.block
                        .extend(bytes.chunks_exact(ENTRY_BYTES).map(decode));
                    self.next += n as u64;
                    self.at = 0;
                }
                let e = self.block[self.at];
                self.at += 1;
                Ok(Some(e))
            }
        }
    }
}

/// All entries of a set of runs in output order (k-way merge). A read
/// error of the run store ends the stream early; [`Merge::finish`] returns
/// it.
pub struct Merge<'a> {
    /// `-X`: duplicates dropped as they come out ([`Merge::with_dedupe`]).
    dedupe: Option<Dedupe<'a>>,
    store: &'a SpillReader,
    cursors: Vec<Cursor<'a>>,
    /// The head entry of every cursor that has one, keyed by output order.
    heap: BinaryHeap<Reverse<(OrderKey, usize)>>,
    heads: Vec<Option<Entry>>,
    bytes: Vec<u8>,
    error: Option<io::Error>,
}

type OrderKey = (i64, u32, u32, u32);

/// Most rules and most keys of one time [`Merge::with_dedupe`] remembers;
/// later ones of that time are passed on unchecked (a burst of 65,536
/// detections with one time stamp is not a copied log).
pub const DEDUPE_GROUP_CAP: usize = 1 << 16;

/// The state of [`Merge::with_dedupe`].
struct Dedupe<'a> {
    spill: &'a SpillReader,
    mem_keys: &'a [u64],
    /// The time of the entries seen in `rules` and `keys`.
    time: (i64, u32),
    /// Per rule seen at this time: its first entry while its key is not
    /// read (a rule seen once at a time needs no key), `None` after.
    rules: std::collections::HashMap<u32, Option<Entry>>,
    /// (rule, key) of this time's entries whose keys were read.
    keys: std::collections::HashSet<(u32, u64)>,
    removed: u64,
    buf: Vec<u8>,
}

impl Dedupe<'_> {
    fn key(&mut self, e: &Entry) -> io::Result<u64> {
        match e.loc() {
            crate::entry::Loc::Mem(i) => Ok(self.mem_keys.get(i as usize).copied().unwrap_or(0)),
            crate::entry::Loc::Spill { off, .. } => {
                let Some(at) = off.checked_sub(crate::entry::DUP_KEY_BYTES) else {
                    return Ok(0);
                };
                self.buf.clear();
                self.spill.read(at, 8, &mut self.buf)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(&self.buf[..8]);
                Ok(u64::from_le_bytes(a))
            }
        }
    }

    /// Whether `e` repeats an entry already yielded: at most one key read
    /// per entry (two for the second entry of a rule at a time).
    fn is_duplicate(&mut self, e: &Entry) -> io::Result<bool> {
        if e.key() == crate::entry::NO_TIME || e.unit == u32::MAX {
            return Ok(false);
        }
        if e.key() != self.time {
            self.time = e.key();
            self.rules.clear();
            self.keys.clear();
        }
        let first = match self.rules.get_mut(&e.rule) {
            None => {
                if self.rules.len() < DEDUPE_GROUP_CAP {
                    self.rules.insert(e.rule, Some(*e));
                }
                return Ok(false);
            }
            Some(slot) => slot.take(),
        };
        if let Some(first) = first {
            let k = self.key(&first)?;
            if k != 0 {
                self.keys.insert((e.rule, k));
            }
        }
        let k = self.key(e)?;
        if k == 0 {
            return Ok(false);
        }
        if self.keys.contains(&(e.rule, k)) {
            return Ok(true);
        }
        if self.keys.len() < DEDUPE_GROUP_CAP {
            self.keys.insert((e.rule, k));
        }
        Ok(false)
    }
}

impl<'a> Merge<'a> {
    /// Starts a merge of `runs`, each sorted by [`Entry::order`], whose
    /// stored runs are in `store`.
    pub fn new(runs: &'a [Run], store: &'a SpillReader) -> Self {
        let mut m = Merge {
            dedupe: None,
            store,
            cursors: runs
                .iter()
                .map(|run| Cursor {
                    run,
                    next: 0,
                    block: Vec::new(),
                    at: 0,
                })
                .collect(),
            heap: BinaryHeap::with_capacity(runs.len()),
            heads: vec![None; runs.len()],
            bytes: Vec::new(),
            error: None,
        };
        for i in 0..runs.len() {
            m.advance(i);
        }
        m
    }

    /// Loads cursor `i`'s next entry into the heap.
    fn advance(&mut self, i: usize) {
        match self.cursors[i].pop(self.store, &mut self.bytes) {
            Ok(Some(e)) => {
                self.heads[i] = Some(e);
                self.heap.push(Reverse((e.order(), i)));
            }
            Ok(None) => self.heads[i] = None,
            Err(e) => {
                self.error.get_or_insert(e);
                self.heap.clear();
            }
        }
    }

    /// Drops duplicate detections as the merge yields them (`hunt -X`,
    /// issue #19): an entry whose rule and time equal an earlier one's and
    /// whose [`dup_key`](crate::entry::dup_key) (computer, channel, event
    /// id, record id) equals it too. Entries of one time come out together,
    /// so only that time's rules and keys are held (at most
    /// [`DEDUPE_GROUP_CAP`] each); keys are read back only for the entries
    /// of a rule that has more than one at that time: `spill` holds a spilled entry's key in the 8 bytes before its
    /// bytes, `mem_keys` the keys of the detections kept whole. Entries
    /// without a time and correlation hits are never dropped.
    pub(crate) fn with_dedupe(mut self, spill: &'a SpillReader, mem_keys: &'a [u64]) -> Self {
        self.dedupe = Some(Dedupe {
            spill,
            mem_keys,
            time: crate::entry::NO_TIME,
            rules: Default::default(),
            keys: Default::default(),
            removed: 0,
            buf: Vec::new(),
        });
        self
    }

    /// Entries dropped as duplicates so far ([`Merge::with_dedupe`]).
    pub fn duplicates_removed(&self) -> u64 {
        self.dedupe.as_ref().map_or(0, |d| d.removed)
    }

    /// Ends the merge: the first read error, if the stream ended early.
    ///
    /// # Errors
    /// Reading the run store failed.
    pub fn finish(self) -> io::Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

impl Iterator for Merge<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            let Reverse((_, i)) = self.heap.pop()?;
            let e = self.heads[i].take()?;
            self.advance(i);
            let Some(d) = &mut self.dedupe else {
                return Some(e);
            };
            match d.is_duplicate(&e) {
                Ok(true) => d.removed += 1,
                Ok(false) => return Some(e),
                Err(err) => {
                    self.error.get_or_insert(err);
                    self.heap.clear();
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(secs: i64, unit: u32, seq: u32) -> Entry {
        Entry {
            secs,
            nanos: 7,
            rule: unit * 3,
            ctx: u32::MAX,
            unit,
            seq,
            off: (u64::from(unit) << 33) | u64::from(seq),
            len: seq + 1,
        }
    }

    #[test]
    fn entries_round_trip_through_their_bytes() {
        let e = entry(-62_135_596_800, 4_000_000_000, 17);
        let mut b = Vec::new();
        encode(&e, &mut b);
        assert_eq!(b.len(), ENTRY_BYTES);
        let d = decode(&b);
        assert_eq!(
            (d.secs, d.nanos, d.rule, d.ctx, d.unit, d.seq, d.off, d.len),
            (e.secs, e.nanos, e.rule, e.ctx, e.unit, e.seq, e.off, e.len)
        );
    }

    /// Runs cut anywhere (stored, on disk or not, and in memory) merge into
    /// the one sorted order, block boundaries included.
    #[test]
    fn merge_of_runs_is_the_full_sort() {
        // Pseudo-random times with many ties.
        let mut x = 12345u64;
        let all: Vec<Entry> = (0..3000u32)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                entry((x >> 40) as i64 % 50, i / 100, i % 100)
            })
            .collect();
        let mut want = all.clone();
        want.sort_unstable_by_key(Entry::order);
        for (limit, run) in [(1 << 30, 1000), (0, 1), (0, 257), (64, 3000)] {
            let store = Spill::new(limit);
            let mut bytes = Vec::new();
            let mut runs: Vec<Run> = all[..2000]
                .chunks(run)
                .map(|c| write_run(&mut c.to_vec(), &store, &mut bytes).unwrap())
                .collect();
            let mut tail = all[2000..].to_vec();
            tail.sort_unstable_by_key(Entry::order);
            runs.push(Run::Mem(tail));
            runs.push(Run::Mem(Vec::new()));
            let reader = store.into_reader();
            let mut m = Merge::new(&runs, &reader);
            let got: Vec<OrderKey> = m.by_ref().map(|e| e.order()).collect();
            m.finish().unwrap();
            let want: Vec<OrderKey> = want.iter().map(Entry::order).collect();
            assert_eq!(got, want, "limit {limit}, run {run}");
        }
    }

    /// `-X`: entries of one rule and time with equal keys are one; other
    /// rules, other keys, key 0 (no record id), other times and
    /// correlation hits pass.
    #[test]
    fn dedupe_drops_equal_keys_of_one_rule_and_time() {
        let spill = Spill::new(1 << 20);
        let mut bytes = Vec::new();
        let mut offs = Vec::new();
        for k in [7u64, 7, 9, 7, 0, 0, 7, 7] {
            offs.push(bytes.len() as u64 + 8);
            bytes.extend_from_slice(&k.to_le_bytes());
            bytes.push(b'x');
        }
        spill.append(&bytes).unwrap();
        let e = |i: usize, secs: i64, rule: u32, unit: u32| Entry {
            secs,
            nanos: 0,
            rule,
            ctx: 0,
            unit,
            seq: i as u32,
            off: offs[i],
            len: 1,
        };
        let mut v = vec![
            e(0, 1, 1, 0),        // kept
            e(1, 1, 1, 1),        // same rule, time, key: dropped
            e(2, 1, 1, 2),        // other key: kept
            e(3, 1, 2, 3),        // other rule: kept
            e(4, 1, 1, 4),        // key 0: kept
            e(5, 1, 1, 5),        // key 0 again: kept
            e(6, 2, 1, 6),        // other time: kept
            e(7, 2, 1, u32::MAX), // a correlation hit: kept
        ];
        v.sort_unstable_by_key(Entry::order);
        let runs = [Run::Mem(v)];
        let run_store = Spill::new(0).into_reader();
        let reader = spill.into_reader();
        let mut m = Merge::new(&runs, &run_store).with_dedupe(&reader, &[]);
        let kept: Vec<u32> = m.by_ref().map(|e| e.seq).collect();
        assert_eq!(m.duplicates_removed(), 1);
        m.finish().unwrap();
        assert_eq!(kept, [0, 2, 3, 4, 5, 6, 7]);
    }
}
