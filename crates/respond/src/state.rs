//! The responder's memory: the dedupe table, and its JSON state file.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::blocklist::Entry;
use crate::trigger::Indicator;

/// At most this many dedupe keys, and at most this many blocklist entries
/// over all files, are kept; past it the oldest are evicted.
pub const MAX_ENTRIES: usize = 100_000;

/// Last time each dedupe key was actioned, bounded by [`MAX_ENTRIES`].
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    seen: HashMap<String, DateTime<Utc>>,
}

impl Dedupe {
    /// Whether `key` was actioned less than `period` before `now`.
    pub(crate) fn recent(&self, key: &str, now: DateTime<Utc>, period: TimeDelta) -> bool {
        self.seen
            .get(key)
            .is_some_and(|at| now.signed_duration_since(*at) < period)
    }

    /// Records `key` as actioned at `now`; when the table is full, drops the
    /// keys older than `period`, then if still full the oldest tenth.
    pub(crate) fn mark(&mut self, key: String, now: DateTime<Utc>, period: TimeDelta) {
        if self.seen.len() >= MAX_ENTRIES && !self.seen.contains_key(&key) {
            self.prune(now, period);
            if self.seen.len() >= MAX_ENTRIES {
                let mut times: Vec<DateTime<Utc>> = self.seen.values().copied().collect();
                times.sort_unstable();
                let cut = times[MAX_ENTRIES / 10];
                self.seen.retain(|_, at| *at > cut);
            }
        }
        self.seen.insert(key, now);
    }

    /// Forgets `key` (a delivery that failed may be tried again).
    pub(crate) fn forget(&mut self, key: &str) {
        self.seen.remove(key);
    }

    /// Drops keys older than `period`.
    pub(crate) fn prune(&mut self, now: DateTime<Utc>, period: TimeDelta) {
        self.seen
            .retain(|_, at| now.signed_duration_since(*at) < period);
    }

    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

/// The state file (JSON): `{"version": 1, "dedupe": {key: time}, "files":
/// [{"path", "next_sid", "entries": [{"indicator", "entry"}]}]}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StateFile {
    pub version: u32,
    pub dedupe: HashMap<String, DateTime<Utc>>,
    pub files: Vec<FileState>,
}

/// The entries of one blocklist file in the state file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FileState {
    pub path: String,
    pub next_sid: u32,
    pub entries: Vec<(Indicator, Entry)>,
}

impl StateFile {
    /// Reads the state file at `path`; a missing file is an empty state.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed, or has another version.
    pub(crate) fn load(path: &Path) -> Result<StateFile, String> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
            Err(e) => return Err(format!("reading state {}: {e}", path.display())),
        };
        let state: StateFile =
            serde_json::from_slice(&text).map_err(|e| format!("state {}: {e}", path.display()))?;
        if state.version != 1 {
            return Err(format!(
                "state {}: version {} (this build reads 1)",
                path.display(),
                state.version
            ));
        }
        Ok(state)
    }

    /// The dedupe table of the state.
    pub(crate) fn take_dedupe(&mut self) -> Dedupe {
        let mut seen = std::mem::take(&mut self.dedupe);
        if seen.len() > MAX_ENTRIES {
            let mut v: Vec<_> = seen.into_iter().collect();
            v.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
            v.truncate(MAX_ENTRIES);
            seen = v.into_iter().collect();
        }
        Dedupe { seen }
    }

    /// A state of `dedupe` and `files` to write.
    pub(crate) fn of(dedupe: &Dedupe, files: Vec<FileState>) -> StateFile {
        StateFile {
            version: 1,
            dedupe: dedupe.seen.clone(),
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dedupe_table_is_bounded_and_evicts_the_oldest() {
        let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
        let day = TimeDelta::days(2); // longer than the 100,000 s the keys span
        let mut d = Dedupe::default();
        for i in 0..MAX_ENTRIES {
            d.mark(format!("k{i}"), t0 + TimeDelta::seconds(i as i64), day);
        }
        assert_eq!(d.len(), MAX_ENTRIES);
        // All within the period: the oldest tenth goes to make room.
        let now = t0 + TimeDelta::seconds(MAX_ENTRIES as i64);
        d.mark("new".into(), now, day);
        assert_eq!(d.len(), MAX_ENTRIES - MAX_ENTRIES / 10);
        assert!(d.recent("new", now, day));
        assert!(!d.recent("k0", now, day));
        assert!(!d.recent(&format!("k{}", MAX_ENTRIES / 10), now, day));
        assert!(d.recent(&format!("k{}", MAX_ENTRIES / 10 + 1), now, day));
        // Keys past the period are dropped first.
        d.prune(now + day - TimeDelta::seconds(1), day);
        assert_eq!(d.len(), 1);
    }
}
