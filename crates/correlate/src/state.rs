//! Window state detached from its [`CorrelationSet`], so a long-running
//! consumer (the live mode) can keep the open windows of unchanged
//! correlations when the rules are reloaded.

use super::correlator::{Deadline, Group};
use super::{CorrelationHit, CorrelationSet, Correlator, CorrelatorStats, Limits};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// The window state of a [`Correlator`] without the set it was fed
/// against: per correlation index its open groups, the deadline heap, the
/// clock and the counters. Made by [`Correlator::into_state`], turned back
/// into a correlator by [`Correlator::resume`].
#[derive(Debug, Default)]
pub struct WindowState {
    limits: Limits,
    groups: Vec<HashMap<Vec<String>, Group>>,
    heap: BinaryHeap<Reverse<Deadline>>,
    clock: Option<DateTime<Utc>>,
    stats: CorrelatorStats,
    live: usize,
}

impl WindowState {
    /// Open groups over all correlations.
    pub fn live_groups(&self) -> usize {
        self.groups.iter().map(HashMap::len).sum()
    }
}

impl<'s> Correlator<'s> {
    /// Detaches the window state from the set (nothing fires or expires).
    pub fn into_state(self) -> WindowState {
        WindowState {
            limits: self.limits,
            groups: self.groups,
            heap: self.heap,
            clock: self.clock,
            stats: self.stats,
            live: self.live,
        }
    }

    /// A correlator over `set` that continues `state`. `map[old]` is the
    /// index in `set` of the correlation that was `old` in the state's set,
    /// or `None` when it changed or went away: its open groups are dropped
    /// (returned as their number). With `map[i] == Some(i)` for all `i` and
    /// the same set this is the correlator `state` came from.
    ///
    /// The caller decides what "unchanged" means (the live mode compares a
    /// correlation's compiled form and the ids of the rules it reads);
    /// a mapped correlation must have the same number of inputs, else its
    /// groups are dropped too.
    pub fn resume(
        set: &'s CorrelationSet,
        state: WindowState,
        map: &[Option<usize>],
    ) -> (Self, u64) {
        let n = state.groups.len();
        let identity =
            n == set.len() && map.len() == n && map.iter().enumerate().all(|(i, m)| *m == Some(i));
        if identity || n == 0 {
            // The same set (the live mode resumes once per hit): a move.
            let mut groups = state.groups;
            groups.resize_with(set.len(), HashMap::new);
            let live = state.live;
            let c = Correlator {
                set,
                limits: state.limits,
                groups,
                live,
                heap: state.heap,
                clock: state.clock,
                stats: state.stats,
            };
            return (c, 0);
        }
        let mut groups: Vec<HashMap<Vec<String>, Group>> =
            (0..set.len()).map(|_| HashMap::new()).collect();
        let mut dropped = 0u64;
        let mut new_ci = vec![None; state.groups.len()];
        for (old, g) in state.groups.into_iter().enumerate() {
            let target = map.get(old).copied().flatten().filter(|&n| {
                n < set.len()
                    && g.values().all(|grp| {
                        grp.slots.is_empty() || grp.slots.len() == set.corrs[n].inputs.len()
                    })
            });
            match target {
                Some(n) if groups[n].is_empty() => {
                    groups[n] = g;
                    new_ci[old] = Some(n);
                }
                _ => dropped += g.len() as u64,
            }
        }
        let heap = state
            .heap
            .into_iter()
            .filter_map(|Reverse((t, ci, key))| {
                new_ci
                    .get(ci)
                    .copied()
                    .flatten()
                    .map(|n| Reverse((t, n, key)))
            })
            .collect();
        let live = groups.iter().map(HashMap::len).sum();
        let c = Correlator {
            set,
            limits: state.limits,
            groups,
            live,
            heap,
            clock: state.clock,
            stats: state.stats,
        };
        (c, dropped)
    }

    /// Moves the clock to `now` (when later than it) and returns what fires
    /// or expires by then: windows close as time passes even when no
    /// referenced rule fires (the live mode calls this with the latest
    /// event time of each batch).
    pub fn advance_to(&mut self, now: DateTime<Utc>) -> Vec<CorrelationHit> {
        let mut out = Vec::new();
        if self.clock.is_none_or(|c| now > c) {
            self.clock = Some(now);
            self.advance(now, &mut out);
        }
        out
    }

    /// The latest time seen (fed or advanced to).
    pub fn clock(&self) -> Option<DateTime<Utc>> {
        self.clock
    }
}
