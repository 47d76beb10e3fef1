//! The table sink's detection rows and summary (issue #19): most severe
//! level first, then by time, identical rows collapsed, capped at
//! `--max-rows` after that ordering.
//!
//! One k-way merge pass over the index per level (critical … informational,
//! 5 at most), each counting the level's detections for the summary
//! ([`TableStats`]); a detection's cells are read back from the spill only
//! while its level can still show rows, so the memory held is the shown
//! rows ([`RowGroups`]), never all detections.

use crate::{PipelineError, Scanned};
use std::io::Write;
use tracehunt_engine::Ruleset;
use tracehunt_report::{RowGroups, Summary, TableStats, TableStyle};

/// Writes the table's rows (at most `max_rows`) and the summary after them.
///
/// # Errors
/// Writing `out` failed or the temporary files could not be read back.
pub(crate) fn write_rows_and_summary<W: Write>(
    out: &mut W,
    scanned: &Scanned,
    (rs, summary): (&Ruleset, &Summary),
    style: &TableStyle,
    max_rows: usize,
) -> Result<(), PipelineError> {
    let mut groups = RowGroups::new(max_rows);
    let mut stats = TableStats::default();
    let mut cells = Vec::new();
    for rank in (0..=4u8).rev() {
        let level = ["informational", "low", "medium", "high", "critical"][rank as usize];
        if summary.detections > 0 && !level_has_detections(summary, rank, level) {
            continue;
        }
        // Whether this level starts rows: when it does not, its cells are not read.
        let room = groups.has_room();
        let mut pass = scanned.entries();
        for e in pass.by_ref() {
            let m = rs.rule(e.rule());
            if m.level_rank != rank {
                continue;
            }
            let v = e.view(scanned.contexts());
            stats.add((rank, m.level), v.rule, v.timestamp, v.computer, style);
            if room {
                cells.clear();
                scanned.output_bytes(rs, &e, &mut cells)?;
                groups.add(v.rule, v.timestamp, &cells);
            }
        }
        pass.finish().map_err(PipelineError::Index)?;
    }
    stats.shown = groups.shown();
    tracehunt_report::write_table_rows(out, rs, groups.rows(), style)?;
    tracehunt_report::write_table_summary(out, summary, &stats, style)?;
    Ok(())
}

/// Whether the summary counted detections at `level` (rank `rank`;
/// informational also stands for rules without a level).
fn level_has_detections(summary: &Summary, rank: u8, level: &str) -> bool {
    rank == 0 || summary.by_level.get(level).is_some_and(|n| *n > 0)
}
