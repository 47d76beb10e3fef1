//! The running state: a [`Correlator`] over detections in time order, its windows and groups,
//! memory [`Limits`], hits and statistics.

use crate::{Correlation, CorrelationSet, Fields, Input};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use tracehunt_sigma::ast::CorrelationType;

/// `t + span`, saturating at the last representable time: an event dated at
/// the edge of the calendar (`+262142-12-31`) must not overflow (breaker
/// finding: the live mode panicked).
pub(crate) fn plus(t: DateTime<Utc>, span: chrono::Duration) -> DateTime<Utc> {
    t.checked_add_signed(span)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - span`, saturating at the first representable time.
pub(crate) fn minus(t: DateTime<Utc>, span: chrono::Duration) -> DateTime<Utc> {
    t.checked_sub_signed(span)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Memory bounds of a [`Correlator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most groups alive at once over all correlations (default 100,000).
    pub max_groups: usize,
    /// Most events one window keeps (default 100,000); older ones are
    /// dropped first.
    pub max_entries_per_group: usize,
    /// Most contributing event handles listed in one hit (default 1,000);
    /// [`CorrelationHit::event_count`] still has the full number.
    pub max_events_per_hit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups: 100_000,
            max_entries_per_group: 100_000,
            max_events_per_hit: 1_000,
        }
    }
}

/// Counters a [`Correlator`] keeps (all since creation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    /// Inputs fed (base hits plus chained correlation hits), per correlation consumer.
    pub inputs: u64,
    /// Inputs that lacked a `group-by` field (not counted).
    pub missing_group_field: u64,
    /// Inputs of value types whose value field was absent or not a number.
    pub missing_value: u64,
    /// Inputs dropped because [`Limits::max_groups`] groups were alive.
    pub dropped_group_events: u64,
    /// Window entries dropped by [`Limits::max_entries_per_group`].
    pub dropped_entries: u64,
    /// Groups whose window expired without firing.
    pub expired_groups: u64,
    /// Most groups alive at once.
    pub peak_groups: usize,
}

/// One correlation that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationHit {
    /// Index of the correlation in its [`CorrelationSet`].
    pub correlation: usize,
    /// `(group-by name, value)` in `group-by` order.
    pub group: Vec<(String, String)>,
    /// The aggregate the condition was tested on: event count, distinct
    /// value count, sum, average, percentile, or the number of distinct
    /// rules seen (temporal types).
    pub value: f64,
    /// Time of the earliest contributing event.
    pub first: DateTime<Utc>,
    /// Time of the latest contributing event.
    pub last: DateTime<Utc>,
    /// Handles (as passed to [`Correlator::feed`]) of the contributing base
    /// events in time order, at most [`Limits::max_events_per_hit`].
    pub events: Vec<u64>,
    /// Number of contributing base events.
    pub event_count: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) ts: DateTime<Utc>,
    pub(crate) handles: Vec<u64>,
    /// Distinct-value text or number, per type.
    pub(crate) text: Option<String>,
    pub(crate) num: f64,
}

/// Temporal slot: (chain start or event time, contributing handles, last time).
pub(crate) type Slot = (DateTime<Utc>, Vec<u64>, DateTime<Utc>);
/// Heap entry: (deadline, correlation, group key).
pub(crate) type Deadline = (DateTime<Utc>, usize, Vec<String>);

#[derive(Debug, Default)]
pub(crate) struct Group {
    /// Start of a close-mode window.
    pub(crate) start: Option<DateTime<Utc>>,
    pub(crate) entries: VecDeque<Entry>,
    pub(crate) distinct: HashMap<String, u32>,
    pub(crate) sum: f64,
    /// Temporal: latest event per input position. Ordered: best chain
    /// ending at each position, as (chain start, handles).
    pub(crate) slots: Vec<Option<Slot>>,
    /// When this group can be expired/closed (only ever moves later).
    pub(crate) deadline: DateTime<Utc>,
    /// The deadline of the heap entry that tracks this group.
    pub(crate) queued: DateTime<Utc>,
}

/// Window state for one pass over time-ordered hits. Single-threaded; one
/// per stream.
#[derive(Debug)]
pub struct Correlator<'s> {
    pub(crate) set: &'s CorrelationSet,
    pub(crate) limits: Limits,
    pub(crate) groups: Vec<HashMap<Vec<String>, Group>>,
    pub(crate) live: usize,
    pub(crate) heap: BinaryHeap<Reverse<Deadline>>,
    pub(crate) clock: Option<DateTime<Utc>>,
    pub(crate) stats: CorrelatorStats,
}

impl<'s> Correlator<'s> {
    /// A correlator with the given bounds.
    pub fn new(set: &'s CorrelationSet, limits: Limits) -> Self {
        Correlator {
            set,
            limits,
            groups: (0..set.len()).map(|_| HashMap::new()).collect(),
            live: 0,
            heap: BinaryHeap::new(),
            clock: None,
            stats: CorrelatorStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &CorrelatorStats {
        &self.stats
    }

    /// Groups alive now.
    pub fn live_groups(&self) -> usize {
        self.live
    }

    /// Feeds one hit of base rule `rule` (its [`Ruleset`](tracehunt_engine::Ruleset) index) at time
    /// `ts`; `handle` identifies the event to the caller (it comes back in
    /// [`CorrelationHit::events`]); `event` gives the group-by and value
    /// fields. Returns the correlation hits that fired, chained ones
    /// included, in firing order.
    ///
    /// Hits must come in non-decreasing `ts` order; an earlier `ts` is
    /// treated as the latest time seen.
    pub fn feed(
        &mut self,
        rule: usize,
        ts: DateTime<Utc>,
        handle: u64,
        event: &dyn Fields,
    ) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        let ts = match self.clock {
            Some(c) if ts < c => c,
            _ => ts,
        };
        self.clock = Some(ts);
        self.advance(ts, &mut out);
        if let Some(cons) = self.set.consumers.get(&Input::Rule(rule)) {
            for &(ci, pos) in cons {
                self.input(ci, pos, ts, vec![handle], event, &mut out);
            }
        }
        out
    }

    /// Closes every open window (end of input) and returns what fires.
    pub fn flush(&mut self) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        for ci in 0..self.groups.len() {
            let mut keys: Vec<Vec<String>> = self.groups[ci].keys().cloned().collect();
            keys.sort();
            for k in keys {
                self.close(ci, &k, &mut out);
            }
        }
        self.heap.clear();
        out
    }

    /// Expires or closes groups whose deadline passed.
    pub(crate) fn advance(&mut self, now: DateTime<Utc>, out: &mut Vec<CorrelationHit>) {
        while let Some(Reverse((t, _, _))) = self.heap.peek() {
            if *t >= now {
                break;
            }
            let Some(Reverse((t, ci, key))) = self.heap.pop() else {
                break;
            };
            let Some(g) = self.groups[ci].get_mut(&key) else {
                continue;
            };
            if g.queued != t {
                continue; // stale entry of an earlier group with this key
            }
            if g.deadline < now {
                self.close(ci, &key, out);
            } else {
                g.queued = g.deadline;
                self.heap.push(Reverse((g.deadline, ci, key)));
            }
        }
    }

    /// Evaluates a close-mode group (or just drops an expired one).
    fn close(&mut self, ci: usize, key: &[String], out: &mut Vec<CorrelationHit>) {
        let Some(g) = self.groups[ci].remove(key) else {
            return;
        };
        self.live -= 1;
        let c = &self.set.corrs[ci];
        if c.on_close && !g.entries.is_empty() {
            let v = aggregate(c, &g);
            if c.predicates.iter().all(|p| p.holds(v)) {
                let hit = self.hit_from_entries(ci, key, v, g.entries.iter());
                self.emit(hit, out);
                return;
            }
        }
        self.stats.expired_groups += 1;
    }

    fn hit_from_entries<'e>(
        &self,
        ci: usize,
        key: &[String],
        value: f64,
        entries: impl Iterator<Item = &'e Entry>,
    ) -> CorrelationHit {
        let mut events = Vec::new();
        let mut count = 0u64;
        let mut first = None;
        let mut last = None;
        for e in entries {
            first = Some(first.map_or(e.ts, |f: DateTime<Utc>| f.min(e.ts)));
            last = Some(last.map_or(e.ts, |l: DateTime<Utc>| l.max(e.ts)));
            count += e.handles.len() as u64;
            for h in &e.handles {
                if events.len() < self.limits.max_events_per_hit {
                    events.push(*h);
                }
            }
        }
        let c = &self.set.corrs[ci];
        let t0 = self.clock.unwrap_or_default();
        CorrelationHit {
            correlation: ci,
            group: c
                .group_by
                .iter()
                .cloned()
                .zip(key.iter().cloned())
                .collect(),
            value,
            first: first.unwrap_or(t0),
            last: last.unwrap_or(t0),
            events,
            event_count: count,
        }
    }

    /// Records a hit and feeds it to correlations that chain on it.
    fn emit(&mut self, hit: CorrelationHit, out: &mut Vec<CorrelationHit>) {
        let ci = hit.correlation;
        let chained = self.set.consumers.get(&Input::Correlation(ci)).cloned();
        let fields: Vec<(String, String)> = hit.group.clone();
        let (ts, handles) = (hit.last, hit.events.clone());
        out.push(hit);
        if let Some(cons) = chained {
            for (cj, pos) in cons {
                self.input(cj, pos, ts, handles.clone(), &fields, out);
            }
        }
    }

    fn input(
        &mut self,
        ci: usize,
        pos: usize,
        ts: DateTime<Utc>,
        handles: Vec<u64>,
        event: &dyn Fields,
        out: &mut Vec<CorrelationHit>,
    ) {
        self.stats.inputs += 1;
        let set = self.set;
        let c = &set.corrs[ci];
        if !c.enabled {
            return;
        }
        let mut key = Vec::with_capacity(c.group_by.len());
        for f in &c.group_fields[pos] {
            match event.field(f) {
                Some(v) => key.push(v),
                None => {
                    self.stats.missing_group_field += 1;
                    return;
                }
            }
        }
        let (text, num) = match &c.value_fields[pos] {
            None => (None, f64::NAN),
            Some(f) => {
                let v = event.field(f);
                match c.kind {
                    CorrelationType::ValueCount => match v {
                        Some(v) => (Some(v), f64::NAN),
                        None => {
                            self.stats.missing_value += 1;
                            return;
                        }
                    },
                    _ => match v.as_deref().and_then(number) {
                        Some(n) => (None, n),
                        None => {
                            self.stats.missing_value += 1;
                            return;
                        }
                    },
                }
            }
        };
        let span = chrono::Duration::milliseconds(c.timespan_ms);
        // Close-mode: an event past the window closes it first.
        if c.on_close {
            let past = self.groups[ci]
                .get(&key)
                .and_then(|g| g.start)
                .is_some_and(|s| ts > plus(s, span));
            if past {
                self.close(ci, &key, out);
            }
        }
        if !self.groups[ci].contains_key(&key) {
            if self.live >= self.limits.max_groups {
                self.stats.dropped_group_events += 1;
                return;
            }
            self.live += 1;
            self.stats.peak_groups = self.stats.peak_groups.max(self.live);
            let first = plus(ts, span);
            let g = Group {
                start: Some(ts),
                slots: vec![None; c.inputs.len()],
                deadline: first,
                queued: first,
                ..Group::default()
            };
            self.groups[ci].insert(key.clone(), g);
            self.heap.push(Reverse((first, ci, key.clone())));
        }
        let limits = self.limits;
        let g = self.groups[ci].get_mut(&key).expect("inserted");
        let fired: Option<(f64, Vec<Entry>)> = match c.kind {
            CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
                let ordered = c.kind == CorrelationType::TemporalOrdered;
                let horizon = minus(ts, span);
                for s in g.slots.iter_mut() {
                    if s.as_ref().is_some_and(|(start, _, _)| *start < horizon) {
                        *s = None;
                    }
                }
                if ordered {
                    // Positions of this input (a rule may be listed twice), last first.
                    let positions: Vec<usize> = (0..c.inputs.len())
                        .rev()
                        .filter(|p| c.inputs[*p] == c.inputs[pos])
                        .collect();
                    for p in positions {
                        if p == 0 {
                            g.slots[0] = Some((ts, handles.clone(), ts));
                        } else if let Some((start, hs, _)) = g.slots[p - 1].clone() {
                            let better = g.slots[p].as_ref().is_none_or(|(s, _, _)| start >= *s);
                            if better {
                                let mut hs = hs;
                                hs.extend(&handles);
                                g.slots[p] = Some((start, hs, ts));
                            }
                        }
                    }
                    let n = c.inputs.len();
                    g.slots[n - 1].take().map(|(start, hs, end)| {
                        let e = vec![
                            Entry {
                                ts: start,
                                handles: Vec::new(),
                                text: None,
                                num: 0.0,
                            },
                            Entry {
                                ts: end,
                                handles: hs,
                                text: None,
                                num: 0.0,
                            },
                        ];
                        (n as f64, e)
                    })
                } else {
                    // Temporal: this input is seen now (all positions it holds).
                    for p in 0..c.inputs.len() {
                        if c.inputs[p] == c.inputs[pos] {
                            g.slots[p] = Some((ts, handles.clone(), ts));
                        }
                    }
                    let present: Vec<bool> = g.slots.iter().map(Option::is_some).collect();
                    let distinct = present.iter().filter(|x| **x).count() as f64;
                    let ok = match &c.extended {
                        Some(e) => e.eval(&present),
                        None => c.predicates.iter().all(|p| p.holds(distinct)),
                    };
                    ok.then(|| {
                        let mut es: Vec<Entry> = g
                            .slots
                            .iter()
                            .flatten()
                            .map(|(t, hs, _)| Entry {
                                ts: *t,
                                handles: hs.clone(),
                                text: None,
                                num: 0.0,
                            })
                            .collect();
                        es.sort_by_key(|e| e.ts);
                        (distinct, es)
                    })
                }
            }
            _ => {
                if !c.on_close {
                    // Sliding: evict entries before the window.
                    let horizon = minus(ts, span);
                    while g.entries.front().is_some_and(|e| e.ts < horizon) {
                        let e = g.entries.pop_front().expect("front");
                        unaccount(g, &e);
                    }
                }
                let e = Entry {
                    ts,
                    handles,
                    text,
                    num,
                };
                account(g, &e);
                g.entries.push_back(e);
                if g.entries.len() > limits.max_entries_per_group {
                    let e = g.entries.pop_front().expect("front");
                    unaccount(g, &e);
                    self.stats.dropped_entries += 1;
                }
                if c.on_close {
                    None
                } else {
                    let v = aggregate(c, g);
                    c.predicates
                        .iter()
                        .all(|p| p.holds(v))
                        .then(|| (v, g.entries.drain(..).collect()))
                }
            }
        };
        // Deadline: sliding groups die when their newest entry leaves the
        // window; close-mode groups close at start + timespan.
        let deadline = if c.on_close {
            plus(g.start.unwrap_or(ts), span)
        } else {
            plus(ts, span)
        };
        if let Some((v, entries)) = fired {
            self.groups[ci].remove(&key);
            self.live -= 1;
            let hit = self.hit_from_entries(ci, &key, v, entries.iter());
            self.emit(hit, out);
        } else {
            g.deadline = deadline;
        }
    }
}

pub(crate) fn account(g: &mut Group, e: &Entry) {
    if let Some(t) = &e.text {
        *g.distinct.entry(t.clone()).or_default() += 1;
    }
    if !e.num.is_nan() {
        g.sum += e.num;
    }
}

pub(crate) fn unaccount(g: &mut Group, e: &Entry) {
    if let Some(t) = &e.text {
        if let Some(n) = g.distinct.get_mut(t) {
            *n -= 1;
            if *n == 0 {
                g.distinct.remove(t);
            }
        }
    }
    if !e.num.is_nan() {
        g.sum -= e.num;
    }
}

/// The aggregate the condition is tested on.
pub(crate) fn aggregate(c: &Correlation, g: &Group) -> f64 {
    match c.kind {
        CorrelationType::EventCount => g.entries.len() as f64,
        CorrelationType::ValueCount => g.distinct.len() as f64,
        CorrelationType::ValueSum => g.entries.iter().map(|e| e.num).sum(),
        CorrelationType::ValueAvg => {
            if g.entries.is_empty() {
                0.0
            } else {
                g.entries.iter().map(|e| e.num).sum::<f64>() / g.entries.len() as f64
            }
        }
        CorrelationType::ValuePercentile | CorrelationType::ValueMedian => {
            let mut v: Vec<f64> = g.entries.iter().map(|e| e.num).collect();
            v.sort_by(f64::total_cmp);
            nearest_rank(&v, c.percentile)
        }
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => 0.0,
    }
}

/// Nearest-rank percentile `p` (0–100) of sorted values; 0 when empty.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A field value as a number: decimal, or `0x` hexadecimal.
pub fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok().map(|n| n as f64);
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}
