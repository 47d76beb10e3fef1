//! The text table for a terminal (issue #19): detection rows most severe
//! level first, then by time; identical rows (same rule, host and details)
//! collapsed into one with a count and the first and last time; each row
//! fitted to the terminal's width; then the summary
//! ([`crate::write_table_summary`]).
//!
//! A hunt renders each detection's cells once ([`table_cells`]: EventID,
//! host, details), keeps them in its spill, and chooses the rows with one
//! pass over the detections per level ([`RowGroups`]), so only the shown
//! rows are ever in memory.

use crate::display::{fit, pad, short_level, text_width, TableStyle};
use crate::table_summary::TableStats;
use crate::{details, terminal_safe, write_table_summary, Detection, Summary};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::io::{self, Write};
use tracehunt_engine::Ruleset;

/// How many characters of details a detection's cells keep (a row shows
/// what fits its width).
pub const DETAILS_CHARS: usize = 400;

/// Appends `d`'s table cells to `out`: `EventID \t host \t details` (no
/// newline), each terminal-safe (so no tab or newline inside), details cut
/// at [`DETAILS_CHARS`]. Read back by [`RowGroups::add`].
pub fn table_cells(d: &Detection, out: &mut Vec<u8>) {
    use std::fmt::Write as _;
    let mut s = String::new();
    if let Some(e) = d.event_id {
        let _ = write!(s, "{e}");
    }
    s.push('\t');
    s.push_str(&terminal_safe(d.computer.as_deref().unwrap_or("-")));
    s.push('\t');
    s.push_str(&details(d, DETAILS_CHARS));
    out.extend_from_slice(s.as_bytes());
}

/// One row of the table: one detection, or several identical ones
/// collapsed (same rule, host and details).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// Rule index in the ruleset.
    pub rule: usize,
    /// Time of the first detection of the row.
    pub first: Option<DateTime<Utc>>,
    /// Time of the last detection of the row.
    pub last: Option<DateTime<Utc>>,
    /// Detections the row stands for (1 or more).
    pub count: u64,
    /// Host (`System/Computer`), `-` when none.
    pub host: String,
    /// EventID, when the event had one.
    pub event_id: Option<u32>,
    /// `key: value ¦ …` details ([`details`]), possibly empty.
    pub details: String,
}

/// The rows a table shows, chosen in the order detections are given
/// (a hunt gives them most severe level first, then by time): a detection
/// identical to a row's (rule, host, details) joins that row; others
/// start a new row while fewer than the cap exist, and are left out after.
/// Holds only the shown rows.
#[derive(Debug, Default)]
pub struct RowGroups {
    rows: Vec<TableRow>,
    /// Hash of (rule, cells) → the rows with that hash (compared in full).
    index: HashMap<u64, Vec<usize>>,
    cap: usize,
    shown: u64,
}

impl RowGroups {
    /// At most `cap` rows (`--max-rows`).
    pub fn new(cap: usize) -> Self {
        RowGroups {
            cap,
            ..RowGroups::default()
        }
    }

    /// Whether a new row could still start.
    pub fn has_room(&self) -> bool {
        self.rows.len() < self.cap
    }

    /// Adds one detection of rule `rule` at `time` with its [`table_cells`]
    /// bytes; returns whether a row shows it.
    pub fn add(&mut self, rule: usize, time: Option<DateTime<Utc>>, cells: &[u8]) -> bool {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let text = String::from_utf8_lossy(cells);
        let mut parts = text.splitn(3, '\t');
        let eid = parts.next().and_then(|e| e.parse::<u32>().ok());
        let host = parts.next().unwrap_or("-");
        let det = parts.next().unwrap_or("");
        // Found without allocating: a hash, then the rows that have it.
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one((rule, host, det));
        let same = |r: &TableRow| r.rule == rule && r.host == host && r.details == det;
        if let Some(&i) = self
            .index
            .get(&h)
            .and_then(|v| v.iter().find(|&&i| same(&self.rows[i])))
        {
            let r = &mut self.rows[i];
            r.count += 1;
            r.last = time.or(r.last);
            self.shown += 1;
            return true;
        }
        if !self.has_room() {
            return false;
        }
        self.index.entry(h).or_default().push(self.rows.len());
        self.rows.push(TableRow {
            rule,
            first: time,
            last: time,
            count: 1,
            host: host.to_owned(),
            event_id: eid,
            details: det.to_owned(),
        });
        self.shown += 1;
        true
    }

    /// The rows, in the order they started.
    pub fn rows(&self) -> &[TableRow] {
        &self.rows
    }

    /// Detections the rows stand for.
    pub fn shown(&self) -> u64 {
        self.shown
    }
}

/// Column widths of the rows of one table.
struct Layout {
    time: usize,
    host: usize,
    eid: usize,
    count: usize,
    rest: usize,
}

impl Layout {
    fn of(rows: &[TableRow], style: &TableStyle) -> Self {
        let label = time_label(style);
        let time = rows
            .iter()
            .filter_map(|r| r.first)
            .map(|t| text_width(&style.time(t)))
            .max()
            .unwrap_or(1)
            .max(text_width(&label));
        let eid = rows
            .iter()
            .filter_map(|r| r.event_id)
            .map(|e| e.to_string().len())
            .max()
            .unwrap_or(1)
            .max(3);
        let count = rows
            .iter()
            .filter(|r| r.count > 1)
            .map(|r| text_width(&format!("×{}", r.count)))
            .max()
            .unwrap_or(0);
        // time, level (4), EventID, count: each followed by a space.
        let fixed = time + 1 + 4 + 1 + eid + 1 + if count > 0 { count + 1 } else { 0 };
        let free = style.width.saturating_sub(fixed + 1);
        let longest = rows
            .iter()
            .map(|r| text_width(&r.host))
            .max()
            .unwrap_or(1)
            .max("Computer".len());
        // Hosts take at most 3/10 of the free room (whole names of the
        // usual FQDNs at 120 columns), the rule and details the rest.
        let host = longest.min((free * 3 / 10).clamp(8, 48));
        let rest = free.saturating_sub(host).max(10);
        Layout {
            time,
            host,
            eid,
            count,
            rest,
        }
    }

    fn count_cell(&self, n: u64) -> String {
        if self.count == 0 {
            return String::new();
        }
        let c = if n > 1 {
            format!("×{n}")
        } else {
            String::new()
        };
        format!("{}{c} ", " ".repeat(self.count - text_width(&c)))
    }
}

/// The time column's header: `Time (UTC)`, `Time (Asia/Tokyo)`.
fn time_label(style: &TableStyle) -> String {
    format!("Time ({})", style.zone.label())
}

/// Writes the header and `rows` fitted to `style.width` (nothing when
/// there is no row): `Time  Lvl  Computer  EID  [×N]  Rule ¦ details`; a
/// collapsed row's rule is followed by `(last TIME)`; the level and the
/// rule title are coloured when `style.color`.
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_table_rows<W: Write>(
    w: &mut W,
    rs: &Ruleset,
    rows: &[TableRow],
    style: &TableStyle,
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let l = Layout::of(rows, style);
    let header = format!(
        "{} {} {} {:>eid$} {}Rule ¦ details",
        pad(&time_label(style), l.time),
        pad("Lvl", 4),
        pad("Computer", l.host),
        "EID",
        l.count_cell(1),
        eid = l.eid
    );
    writeln!(w, "{}", fit(&header, style.width).trim_end())?;
    for r in rows {
        let m = rs.rule(r.rule);
        let title = terminal_safe(&m.title).into_owned();
        let mut rest = title.clone();
        if r.count > 1 {
            if let Some(last) = r.last {
                rest.push_str(&format!(" (last {})", style.time(last)));
            }
        }
        if !r.details.is_empty() {
            rest.push_str(" ¦ ");
            rest.push_str(&r.details);
        }
        let rest = fit(&rest, l.rest);
        // Colour the title part of what is shown.
        let cut = rest
            .char_indices()
            .nth(title.chars().count())
            .map_or(rest.len(), |(i, _)| i);
        let (t, after) = rest.split_at(cut);
        let time = r.first.map_or("-".to_owned(), |t| style.time(t));
        writeln!(
            w,
            "{} {} {} {:>eid$} {}{}{}",
            pad(&time, l.time),
            style.paint(m.level, &pad(short_level(m.level), 4)),
            pad(&r.host, l.host),
            r.event_id.map_or("-".to_owned(), |e| e.to_string()),
            l.count_cell(r.count),
            style.paint(m.level, t),
            after,
            eid = l.eid
        )?;
    }
    Ok(())
}

/// Writes `dets` as a whole table for a terminal: rows most severe level
/// first (then in the order given), identical ones collapsed, at most
/// `max_rows` rows, then the summary `s` (whose counts must be `dets`').
/// What a hunt does over its index, for detections in memory.
///
/// # Errors
/// Any I/O error of `w`.
pub fn write_table<W: Write>(
    w: &mut W,
    rs: &Ruleset,
    dets: &[Detection],
    s: &Summary,
    style: &TableStyle,
    max_rows: usize,
) -> io::Result<()> {
    let mut groups = RowGroups::new(max_rows);
    let mut stats = TableStats::default();
    let mut cells = Vec::new();
    for rank in (0..=4u8).rev() {
        let room = groups.has_room();
        for d in dets.iter().filter(|d| rs.rule(d.rule).level_rank == rank) {
            let m = rs.rule(d.rule);
            stats.add(
                (rank, m.level),
                d.rule,
                d.timestamp,
                d.computer.as_deref(),
                style,
            );
            if room {
                cells.clear();
                table_cells(d, &mut cells);
                groups.add(d.rule, d.timestamp, &cells);
            }
        }
    }
    stats.shown = groups.shown();
    write_table_rows(w, rs, groups.rows(), style)?;
    write_table_summary(w, s, &stats, style)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Issue #19: 91 identical "Windows Event Log Cleared" rows one by one.
    /// Identical (rule, host, details) join one row with the count and the
    /// last time; a new row starts only while there is room, a repeat of a
    /// shown row still counts after the cap.
    #[test]
    fn identical_detections_collapse_and_the_cap_counts_only_rows() {
        let t = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let mut g = RowGroups::new(2);
        assert!(g.add(3, t("2021-10-25T18:04:30Z"), b"104\tFS03\tChannel: System"));
        assert!(g.add(3, t("2021-10-25T18:04:31Z"), b"104\tFS03\tChannel: System"));
        assert!(g.add(3, t("2021-10-25T18:04:32Z"), b"104\tFS04\tChannel: System"));
        assert!(!g.add(4, t("2021-10-25T18:04:33Z"), b"104\tFS03\tChannel: System"));
        assert!(g.add(3, t("2021-10-25T18:05:00Z"), b"104\tFS03\tChannel: System"));
        assert_eq!(g.rows().len(), 2);
        assert_eq!(g.shown(), 4);
        let r = &g.rows()[0];
        assert_eq!(
            (r.count, r.event_id, r.host.as_str()),
            (3, Some(104), "FS03")
        );
        assert_eq!(r.details, "Channel: System");
        assert_eq!(
            (r.first, r.last),
            (t("2021-10-25T18:04:30Z"), t("2021-10-25T18:05:00Z"))
        );
    }
}
