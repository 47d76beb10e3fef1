//! The summary after the table's rows: what was read, what was lost, the
//! rule counts, and what Hayabusa's results summary shows (issue #19): per
//! level the unique rules and detections, the dates with most detections
//! and the top hosts, and the first and last detection.

use crate::display::{fit, TableStyle};
use crate::{
    channels_without_rules_note, counted, repaired_note, rules_line, terminal_safe, untimed_note,
    Summary,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};

/// The table's per-level counts, gathered while its rows are chosen (one
/// pass over the detections of each level; what the [`Summary`] does not
/// keep). Dates are calendar days in the [`TableStyle`]'s zone.
#[derive(Debug, Default)]
pub struct TableStats {
    /// By level rank (4 critical … 0 informational).
    levels: BTreeMap<u8, LevelStats>,
    /// The first detection's time.
    pub first: Option<DateTime<Utc>>,
    /// The last detection's time.
    pub last: Option<DateTime<Utc>>,
    /// Detections the table's rows stand for (a collapsed row counts each).
    pub shown: u64,
}

/// One level's counts in [`TableStats`].
#[derive(Debug, Default)]
struct LevelStats {
    level: String,
    detections: u64,
    rules: BTreeSet<usize>,
    dates: BTreeMap<String, u64>,
    hosts: HashMap<String, u64>,
}

/// Hosts named per level in the summary.
const HOSTS_PER_LEVEL: usize = 3;
/// Dates named per level in the summary.
const DATES_PER_LEVEL: usize = 3;

impl TableStats {
    /// Counts one detection of rule index `rule` at `level` (`rank`: the
    /// rule's level rank, 4 critical … 0 informational) at `time` on `host`.
    pub fn add(
        &mut self,
        (rank, level): (u8, &str),
        rule: usize,
        time: Option<DateTime<Utc>>,
        host: Option<&str>,
        style: &TableStyle,
    ) {
        let l = self.levels.entry(rank).or_insert_with(|| LevelStats {
            level: level.to_owned(),
            ..LevelStats::default()
        });
        l.detections += 1;
        l.rules.insert(rule);
        if let Some(t) = time {
            *l.dates.entry(style.date(t)).or_default() += 1;
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |f| f.max(t)));
        }
        let host = host.unwrap_or("-");
        match l.hosts.get_mut(host) {
            Some(n) => *n += 1,
            None => {
                l.hosts.insert(host.to_owned(), 1);
            }
        }
    }

    /// `(level, unique rules, detections)`, most severe level first.
    pub fn levels(&self) -> Vec<(&str, u64, u64)> {
        self.levels
            .values()
            .rev()
            .map(|l| (l.level.as_str(), l.rules.len() as u64, l.detections))
            .collect()
    }

    /// The dates with most detections at `level`, most first (then earliest), at most 3.
    pub fn top_dates(&self, level: &str) -> Vec<(&str, u64)> {
        let Some(l) = self.levels.values().find(|l| l.level == level) else {
            return Vec::new();
        };
        top(
            l.dates.iter().map(|(d, n)| (d.as_str(), *n)),
            DATES_PER_LEVEL,
        )
    }

    /// The hosts with most detections at `level`, most first (then by name), at most 3.
    pub fn top_hosts(&self, level: &str) -> Vec<(&str, u64)> {
        let Some(l) = self.levels.values().find(|l| l.level == level) else {
            return Vec::new();
        };
        top(
            l.hosts.iter().map(|(h, n)| (h.as_str(), *n)),
            HOSTS_PER_LEVEL,
        )
    }
}

/// The `k` pairs with the highest count, ties by name.
fn top<'a>(it: impl Iterator<Item = (&'a str, u64)>, k: usize) -> Vec<(&'a str, u64)> {
    let mut v: Vec<_> = it.collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(k);
    v
}

/// The per-level lines of the summary and the first/last detection, each
/// line fitted to the style's width.
fn write_level_stats<W: Write>(w: &mut W, st: &TableStats, style: &TableStyle) -> io::Result<()> {
    let levels = st.levels();
    if levels.is_empty() {
        return Ok(());
    }
    if let (Some(a), Some(b)) = (st.first, st.last) {
        writeln!(
            w,
            "First detection:   {}\nLast detection:    {}",
            style.time(a),
            style.time(b)
        )?;
    }
    writeln!(
        w,
        "By level (unique rules, detections, the dates with most, the top hosts):"
    )?;
    for (level, rules, dets) in levels {
        let list = |v: Vec<(&str, u64)>| {
            v.iter()
                .map(|(x, n)| format!("{} ({n})", terminal_safe(x)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let line = format!(
            "{:<13} {} {} · most on {} · hosts {}",
            level,
            counted(rules, "rule,", "rules,"),
            counted(dets, "detection", "detections"),
            list(st.top_dates(level)),
            list(st.top_hosts(level)),
        );
        let line = fit(&line, style.width.saturating_sub(2));
        // Colour the level word only (it is the line's first word).
        let (word, rest) = line.split_at(line.find(' ').unwrap_or(line.len()));
        writeln!(w, "  {}{rest}", style.paint(level, word))?;
    }
    Ok(())
}

/// Skipped files the table summary and stderr list one a line before
/// [`skipped_more_line`] sums up the rest (`-v` lists them all).
pub const SKIPPED_LISTED: usize = 20;

/// `… N more files skipped (K distinct reasons; -v lists them all)` for
/// the files of `skipped` after the first `listed`; `None` when none is left.
pub fn skipped_more_line(skipped: &[crate::Skipped], listed: usize) -> Option<String> {
    let rest = skipped.get(listed..).filter(|r| !r.is_empty())?;
    let reasons: std::collections::BTreeSet<&str> =
        rest.iter().map(|f| f.reason.as_str()).collect();
    Some(format!(
        "… {} skipped ({}; -v lists them all)",
        counted(rest.len() as u64, "more file", "more files"),
        counted(reasons.len() as u64, "distinct reason", "distinct reasons")
    ))
}

/// What [`write_table`] writes after the rows: the "more detections" note
/// when `total` detections exceed `max_rows`, then the summary.
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_table_summary<W: Write>(
    w: &mut W,
    s: &Summary,
    stats: &TableStats,
    style: &TableStyle,
) -> io::Result<()> {
    let hidden = s.detections.saturating_sub(stats.shown);
    if hidden > 0 {
        writeln!(
            w,
            "… {} (--max-rows N shows more; --min-level high narrows; --format jsonl or csv for all)",
            counted(hidden, "more detection", "more detections")
        )?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "── Summary ─────────────────────────────────────────────"
    )?;
    writeln!(w, "Files read:        {}", s.files)?;
    writeln!(
        w,
        "Events read:       {} ({} in time window)",
        s.events, s.events_scanned
    )?;
    let secs = |t: DateTime<Utc>| style.time(t);
    if let (Some(a), Some(b)) = (s.first_event, s.last_event) {
        writeln!(
            w,
            "Event time range:  {} → {}{}",
            secs(a),
            secs(b),
            if s.time_window.is_some() {
                " (all events read)"
            } else {
                ""
            }
        )?;
    }
    // Fresh-user finding: with --from/--to the range above described all
    // input, not the events scanned; the window's own range follows.
    if let Some(tw) = &s.time_window {
        let bound = |t: Option<DateTime<Utc>>| t.map_or("…".to_owned(), secs);
        match (tw.first_event, tw.last_event) {
            (Some(a), Some(b)) => writeln!(
                w,
                "In time window:    {} → {} (window {} → {})",
                secs(a),
                secs(b),
                bound(tw.from),
                bound(tw.to)
            )?,
            _ => writeln!(
                w,
                "In time window:    no event (window {} → {})",
                bound(tw.from),
                bound(tw.to)
            )?,
        }
        if tw.events_without_time > 0 {
            writeln!(w, "  - {}", untimed_note(tw.events_without_time))?;
        }
    }
    writeln!(w, "Files skipped:     {}", s.files_skipped.len())?;
    let listed = if style.list_all_skipped {
        s.files_skipped.len()
    } else {
        SKIPPED_LISTED
    };
    for f in s.files_skipped.iter().take(listed) {
        writeln!(w, "  - {}: {}", f.path, f.reason)?;
    }
    if let Some(more) = skipped_more_line(&s.files_skipped, listed) {
        writeln!(w, "  {more}")?;
    }
    writeln!(w, "Records skipped:   {}", s.records_skipped)?;
    if s.duplicate_chunks_skipped > 0 {
        writeln!(
            w,
            "  - {} skipped (their records were read once; none lost)",
            counted(
                s.duplicate_chunks_skipped,
                "duplicate EVTX chunk",
                "duplicate EVTX chunks"
            )
        )?;
    }
    if s.damaged_unused_chunks_skipped > 0 {
        writeln!(
            w,
            "  - {} with damaged bytes skipped (no records there; none lost)",
            counted(
                s.damaged_unused_chunks_skipped,
                "unused EVTX chunk slot",
                "unused EVTX chunk slots"
            )
        )?;
    }
    for (r, n) in &s.records_skipped_by_reason {
        writeln!(w, "  - {n} × {r}")?;
    }
    for f in s.files_with_record_errors.iter().take(10) {
        writeln!(
            w,
            "  - {} lost in {}: {}",
            counted(f.records, "record", "records"),
            f.path,
            f.reason
        )?;
    }
    for f in s.files_with_damaged_unused_chunks.iter().take(10) {
        writeln!(
            w,
            "  - {} with damaged bytes in {} (none lost)",
            counted(f.chunks, "unused chunk slot", "unused chunk slots"),
            f.path
        )?;
    }
    if let Some(note) = channels_without_rules_note(s) {
        writeln!(w, "Not looked at:     {note}")?;
    }
    if s.events_incomplete > 0 {
        writeln!(
            w,
            "Events incomplete: {} without an EventID or a time (scanned, but rules whose logsource names EventIDs cannot match them; without a time they sort last and --from/--to leave them out)",
            s.events_incomplete
        )?;
        for f in s.files_with_incomplete_events.iter().take(10) {
            writeln!(w, "  - {} in {} (first: {})", f.events, f.path, f.first)?;
        }
    }
    for f in s.files_with_repaired_signatures.iter().take(10) {
        writeln!(w, "  - {}", repaired_note(f))?;
    }
    writeln!(w, "Rules:             {}", rules_line(s))?;
    write!(w, "Detections:        {}", s.detections)?;
    let levels = ["critical", "high", "medium", "low", "informational"];
    let parts: Vec<String> = levels
        .iter()
        .filter_map(|l| s.by_level.get(*l).map(|n| format!("{l} {n}")))
        .collect();
    if !parts.is_empty() {
        write!(w, " ({})", parts.join(", "))?;
    }
    writeln!(w)?;
    write_level_stats(w, stats, style)?;
    if !s.severe_rules.is_empty() {
        writeln!(w, "Critical and high rules (look here first):")?;
        for r in s.severe_rules.iter().take(25) {
            writeln!(
                w,
                "  {:>6}  [{}] {}",
                r.count,
                r.level,
                terminal_safe(&r.title)
            )?;
        }
        if s.severe_rules.len() > 25 {
            writeln!(
                w,
                "  … {} more (all of them: --format json, summary.severe_rules)",
                s.severe_rules.len() - 25
            )?;
        }
    }
    if !s.top_rules.is_empty() {
        writeln!(w, "Top rules:")?;
        for r in &s.top_rules {
            writeln!(w, "  {:>6}  [{}] {}", r.count, r.level, r.title)?;
        }
    }
    if !s.top_hosts.is_empty() {
        writeln!(w, "Top hosts:")?;
        for (h, n) in &s.top_hosts {
            writeln!(w, "  {n:>6}  {}", terminal_safe(h))?;
        }
    }
    writeln!(
        w,
        "Times shown in:    {} (--timezone NAME, --local, --utc; JSON, CSV and STIX stay UTC)",
        style.zone.label()
    )?;
    writeln!(
        w,
        "Elapsed:           {:.2} s",
        s.elapsed_ms as f64 / 1000.0
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleCount;

    /// Fresh-user finding: the table listed 25 critical/high rules then
    /// "… 126 more" with no way to see them; it now says where they all are.
    #[test]
    fn more_severe_rules_line_says_where_to_see_them_all() {
        let s = Summary {
            severe_rules: (0..27)
                .map(|i| RuleCount {
                    id: format!("r{i}"),
                    title: format!("Rule {i}"),
                    level: "high".into(),
                    count: 1,
                })
                .collect(),
            ..Summary::default()
        };
        let mut out = Vec::new();
        write_table_summary(&mut out, &s, &TableStats::default(), &TableStyle::default()).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(t.contains("[high] Rule 24\n"), "{t}");
        assert!(!t.contains("Rule 25"), "{t}");
        assert!(
            t.contains("  … 2 more (all of them: --format json, summary.severe_rules)\n"),
            "{t}"
        );
    }
}
