//! The text table for a terminal: detection rows, then the summary
//! ([`write_table`], [`write_table_header`], [`write_table_row`],
//! [`write_table_summary`]).

use crate::{
    channels_without_rules_note, counted, details, repaired_note, rules_line, terminal_safe,
    untimed_note, Detection, Summary,
};
use chrono::{DateTime, SecondsFormat, Utc};
use std::io::{self, Write};
use tracehunt_engine::Ruleset;

/// Writes the detections as aligned text rows, then the summary, for a
/// terminal. `max_rows` caps the detection rows (the summary always shows).
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_table<W: Write>(
    w: &mut W,
    rs: &Ruleset,
    dets: &[Detection],
    s: &Summary,
    max_rows: usize,
) -> io::Result<()> {
    if !dets.is_empty() {
        write_table_header(w)?;
    }
    for d in dets.iter().take(max_rows) {
        write_table_row(w, rs, d)?;
    }
    write_table_summary(w, dets.len(), s, max_rows)
}

/// The column header of [`write_table`] (written when there is at least
/// one detection).
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_table_header<W: Write>(w: &mut W) -> io::Result<()> {
    writeln!(
        w,
        "{:<24} {:<13} {:<20} {:>5}  Rule ¦ details",
        "Timestamp (UTC)", "Level", "Computer", "EID"
    )
}

/// One detection row of [`write_table`].
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_table_row<W: Write>(w: &mut W, rs: &Ruleset, d: &Detection) -> io::Result<()> {
    let m = rs.rule(d.rule);
    let t = d
        .timestamp
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "-".into());
    let comp = ellipsize(d.computer.as_deref().unwrap_or("-"), 20);
    writeln!(
        w,
        "{:<24} {:<13} {:<20} {:>5}  {} ¦ {}",
        t,
        m.level,
        comp,
        d.event_id
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into()),
        terminal_safe(&m.title),
        details(d, 160)
    )
}

/// `s` in at most `width` characters for a table column: control characters become spaces
/// and a longer value is cut to `width - 1` characters followed by `…` (fresh-user finding:
/// host names were cut at 20 characters with no sign that they were cut).
pub fn ellipsize(s: &str, width: usize) -> String {
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    if s.chars().count() <= width {
        return s.chars().map(clean).collect();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).map(clean).collect();
    out.push('…');
    out
}

/// What [`write_table`] writes after the rows: the "more detections" note
/// when `total` detections exceed `max_rows`, then the summary.
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_table_summary<W: Write>(
    w: &mut W,
    total: usize,
    s: &Summary,
    max_rows: usize,
) -> io::Result<()> {
    if total > max_rows {
        writeln!(
            w,
            "… {} (--max-rows N shows more; --min-level high narrows; --format jsonl or csv for all)",
            counted((total - max_rows) as u64, "more detection", "more detections")
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
    let secs = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
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
    for f in &s.files_skipped {
        writeln!(w, "  - {}: {}", f.path, f.reason)?;
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
        "Elapsed:           {:.2} s",
        s.elapsed_ms as f64 / 1000.0
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuleCount;

    /// Fresh-user finding: host names were cut at 20 characters without an ellipsis.
    #[test]
    fn long_host_names_are_cut_with_an_ellipsis() {
        assert_eq!(
            ellipsize("srvdefender01.offsec.lan", 20),
            "srvdefender01.offse…"
        );
        assert_eq!(
            ellipsize("srvdefender01.offsec.lan", 20).chars().count(),
            20
        );
        assert_eq!(ellipsize("fs03vuln.offsec.lan", 20), "fs03vuln.offsec.lan");
        assert_eq!(
            ellipsize("exactly-twenty-chars", 20),
            "exactly-twenty-chars"
        );
        assert_eq!(ellipsize("a\x1bb", 20), "a b");
    }

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
        write_table_summary(&mut out, 0, &s, 10).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(t.contains("[high] Rule 24\n"), "{t}");
        assert!(!t.contains("Rule 25"), "{t}");
        assert!(
            t.contains("  … 2 more (all of them: --format json, summary.severe_rules)\n"),
            "{t}"
        );
    }
}
