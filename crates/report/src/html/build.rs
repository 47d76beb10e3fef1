//! Builders of the report's time series from hourly counts (what a hunt
//! can count in a streaming way: one `[u64; 5]` per hour with detections).

use super::{LevelTop, TimeBucket, Timeline, LEVELS};
use chrono::{DateTime, Datelike, Utc};
use std::collections::BTreeMap;

/// At most this many buckets are filled in (empty ones included); beyond
/// it the timeline moves to the next larger unit (hour → day → month →
/// year), and a yearly timeline over more years lists only the years with
/// detections.
pub const TIMELINE_MAX_BUCKETS: usize = 400;

fn time_of(hour: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(hour.checked_mul(3600)?, 0)
}

/// The bucket key of `hour` (hours since the Unix epoch, UTC) in `unit`:
/// hours, days since the epoch, months since year 0, or years.
fn key(unit: &str, hour: i64) -> i64 {
    match unit {
        "hour" => hour,
        "day" => hour.div_euclid(24),
        _ => {
            let Some(t) = time_of(hour) else { return 0 };
            if unit == "month" {
                i64::from(t.year()) * 12 + i64::from(t.month0())
            } else {
                i64::from(t.year())
            }
        }
    }
}

fn label(unit: &str, k: i64) -> String {
    match unit {
        "hour" => time_of(k).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:00").to_string()),
        "day" => time_of(k.saturating_mul(24))
            .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string()),
        "month" => format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1),
        _ => format!("{k:04}"),
    }
}

/// The timeline of hourly counts `hours` (key: hours since the Unix epoch,
/// UTC; value: detections by level rank, [`LEVELS`]): hourly buckets when
/// the detections span less than 3 days, else daily, monthly or yearly —
/// the smallest unit that needs at most [`TIMELINE_MAX_BUCKETS`] buckets.
/// `untimed`: detections without a time.
pub fn timeline_from_hours(hours: &BTreeMap<i64, [u64; 5]>, untimed: u64) -> Timeline {
    let (Some((&first, _)), Some((&last, _))) = (hours.first_key_value(), hours.last_key_value())
    else {
        return Timeline {
            unit: "day".to_owned(),
            buckets: Vec::new(),
            untimed,
        };
    };
    let span = |unit: &str| key(unit, last).saturating_sub(key(unit, first));
    let unit = if last.saturating_sub(first) < 72 {
        "hour"
    } else if span("day") < TIMELINE_MAX_BUCKETS as i64 {
        "day"
    } else if span("month") < TIMELINE_MAX_BUCKETS as i64 {
        "month"
    } else {
        "year"
    };
    let mut by: BTreeMap<i64, [u64; 5]> = BTreeMap::new();
    for (&h, c) in hours {
        let b = by.entry(key(unit, h)).or_default();
        for (x, y) in b.iter_mut().zip(c) {
            *x = x.saturating_add(*y);
        }
    }
    let fill = span(unit) < TIMELINE_MAX_BUCKETS as i64;
    let buckets = if fill {
        let (a, b) = (key(unit, first), key(unit, last));
        (a..=b)
            .map(|k| TimeBucket {
                label: label(unit, k),
                counts: by.get(&k).copied().unwrap_or_default(),
            })
            .collect()
    } else {
        by.iter()
            .map(|(&k, &counts)| TimeBucket {
                label: label(unit, k),
                counts,
            })
            .collect()
    };
    Timeline {
        unit: unit.to_owned(),
        buckets,
        untimed,
    }
}

/// Per level with detections, most severe first: the `n` dates
/// (`YYYY-MM-DD`, UTC) with most detections of that level (ties: earlier
/// date first), from the hourly counts of [`timeline_from_hours`].
pub fn top_dates_from_hours(hours: &BTreeMap<i64, [u64; 5]>, n: usize) -> Vec<LevelTop> {
    let mut days: BTreeMap<i64, [u64; 5]> = BTreeMap::new();
    for (&h, c) in hours {
        let d = days.entry(h.div_euclid(24)).or_default();
        for (x, y) in d.iter_mut().zip(c) {
            *x = x.saturating_add(*y);
        }
    }
    (0..LEVELS.len())
        .rev()
        .filter_map(|rank| {
            let mut v: Vec<(i64, u64)> = days
                .iter()
                .filter(|(_, c)| c[rank] > 0)
                .map(|(&d, c)| (d, c[rank]))
                .collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            Some(LevelTop {
                level: LEVELS[rank].to_owned(),
                items: v
                    .into_iter()
                    .take(n)
                    .map(|(d, c)| (label("day", d), c))
                    .collect(),
            })
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of `t`.
pub(super) fn time_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

impl super::SummaryView {
    /// The display data of a hunt's [`Summary`](crate::Summary): counts,
    /// skipped files with their reasons, records lost by reason, rules
    /// skipped by reason, and one note per other thing left out or repaired.
    pub fn from_summary(s: &crate::Summary) -> Self {
        let counted = crate::counted;
        let mut notes = Vec::new();
        if !s.files_with_record_errors.is_empty() {
            notes.push(format!(
                "{} lost records to damage (first: {}: {})",
                counted(s.files_with_record_errors.len() as u64, "file", "files"),
                s.files_with_record_errors[0].path,
                s.files_with_record_errors[0].reason
            ));
        }
        if s.duplicate_chunks_skipped > 0 {
            notes.push(format!(
                "{} skipped: byte-identical copies of an earlier chunk, read once (nothing lost)",
                counted(
                    s.duplicate_chunks_skipped,
                    "duplicate EVTX chunk",
                    "duplicate EVTX chunks"
                )
            ));
        }
        if s.damaged_unused_chunks_skipped > 0 {
            notes.push(format!(
                "{} skipped (no records, nothing lost)",
                counted(
                    s.damaged_unused_chunks_skipped,
                    "damaged unused EVTX chunk slot",
                    "damaged unused EVTX chunk slots"
                )
            ));
        }
        if s.events_incomplete > 0 {
            notes.push(format!(
                "{} without a numeric EventID or a time (scanned; rules naming EventIDs cannot match them)",
                counted(s.events_incomplete, "event", "events")
            ));
        }
        notes.extend(
            s.files_with_repaired_signatures
                .iter()
                .map(crate::repaired_note),
        );
        if s.rules_with_unresolved_placeholder > 0 {
            notes.push(format!(
                "{} with an unresolved placeholder (pass --placeholders FILE)",
                counted(s.rules_with_unresolved_placeholder, "rule", "rules")
            ));
        }
        let time_window = s.time_window.as_ref().map(|tw| {
            let bound = |t: Option<DateTime<Utc>>| t.map_or("…".to_owned(), time_text);
            let mut text = match (tw.first_event, tw.last_event) {
                (Some(a), Some(b)) => format!(
                    "{} → {} (window {} → {})",
                    time_text(a),
                    time_text(b),
                    bound(tw.from),
                    bound(tw.to)
                ),
                _ => format!("no event (window {} → {})", bound(tw.from), bound(tw.to)),
            };
            if tw.events_without_time > 0 {
                text.push_str("; ");
                text.push_str(&crate::untimed_note(tw.events_without_time));
            }
            text
        });
        super::SummaryView {
            events: s.events,
            events_scanned: s.events_scanned,
            files: s.files,
            files_skipped: s
                .files_skipped
                .iter()
                .map(|f| super::SkipView {
                    path: f.path.clone(),
                    reason: f.reason.clone(),
                })
                .collect(),
            records_skipped: s.records_skipped,
            records_skipped_by_reason: s
                .records_skipped_by_reason
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            notes,
            rules_loaded: s.rules_loaded,
            rules_active: s.rules_active,
            rules_skipped: s.rules_skipped,
            rules_skipped_by_reason: s
                .rules_skipped_by_reason
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            rules_failed: s.rules_failed,
            detections: s.detections,
            first_event: s.first_event.map(time_text),
            last_event: s.last_event.map(time_text),
            time_window,
            elapsed_ms: s.elapsed_ms,
        }
    }
}
