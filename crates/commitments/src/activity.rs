//! Per-period activity from tracked incidents: counts divided by what was looked at.
//!
//! A period with no source that has events in it is *unknown*, not quiet: its exposure is 0
//! and the analysis leaves it out. The exposure of a period is the number of distinct sources
//! (by content hash) whose event span overlaps it, so a month covered by 40 log files and one
//! covered by 4 are compared per file, not by raw counts.

use chrono::NaiveDate;
use serde::Serialize;

use crate::series::{Period, Series};

/// What [`activity_series`] built, and what it could not place.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// Counts and exposure per period, from the earliest to the latest period with an
    /// incident or coverage.
    pub series: Series,
    /// Incidents counted.
    pub incidents: u64,
    /// Of which in periods without coverage (counted, but those periods are left out of the
    /// analysis).
    pub incidents_uncovered: u64,
    /// Distinct sources with an event span.
    pub sources: u64,
}

/// Builds the series: `incidents` are the (first-seen) dates of the counted incidents,
/// `coverage` the `[first, last]` event dates of each distinct source (first ≤ last; reversed
/// spans are swapped). `None` when there is neither an incident nor a span.
pub fn activity_series(
    period: Period,
    incidents: &[NaiveDate],
    coverage: &[(NaiveDate, NaiveDate)],
) -> Option<Activity> {
    let spans: Vec<(NaiveDate, NaiveDate)> = coverage
        .iter()
        .map(|&(a, b)| if a <= b { (a, b) } else { (b, a) })
        .collect();
    let first = incidents
        .iter()
        .copied()
        .chain(spans.iter().map(|s| s.0))
        .min()?;
    let last = incidents
        .iter()
        .copied()
        .chain(spans.iter().map(|s| s.1))
        .max()?;
    let mut starts = vec![period.start_of(first)];
    while let Some(&s) = starts.last() {
        let next = period.next(s);
        if next > last || next <= s {
            break;
        }
        starts.push(next);
    }
    let index = |d: NaiveDate| starts.partition_point(|&s| s <= d).saturating_sub(1);
    let mut counts = vec![0.0; starts.len()];
    for &d in incidents {
        counts[index(d)] += 1.0;
    }
    // Exposure: +1 on every period a span overlaps (difference array).
    let mut diff = vec![0i64; starts.len() + 1];
    for &(a, b) in &spans {
        diff[index(a)] += 1;
        diff[index(b) + 1] -= 1;
    }
    let mut exposure = Vec::with_capacity(starts.len());
    let mut running = 0i64;
    for d in &diff[..starts.len()] {
        running += d;
        exposure.push(running as f64);
    }
    let incidents_uncovered = counts
        .iter()
        .zip(&exposure)
        .filter(|(_, &e)| e <= 0.0)
        .map(|(&c, _)| c as u64)
        .sum();
    let series = Series::new(period, starts[0], counts, exposure).ok()?;
    Some(Activity {
        series,
        incidents: incidents.len() as u64,
        incidents_uncovered,
        sources: spans.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn counts_and_exposure_per_month() {
        let a = activity_series(
            Period::Month,
            &[
                d("2021-01-30"),
                d("2021-03-02"),
                d("2021-03-31"),
                d("2021-05-01"),
            ],
            &[
                (d("2021-01-10"), d("2021-02-01")),
                (d("2021-03-15"), d("2021-01-20")),
            ],
        )
        .unwrap();
        let s = &a.series;
        assert_eq!(s.starts.first().unwrap(), &d("2021-01-01"));
        assert_eq!(s.starts.len(), 5);
        assert_eq!(s.counts, [1.0, 0.0, 2.0, 0.0, 1.0]);
        assert_eq!(s.exposure, [2.0, 2.0, 1.0, 0.0, 0.0]);
        assert_eq!((a.incidents, a.incidents_uncovered, a.sources), (4, 1, 2));
        assert!(activity_series(Period::Week, &[], &[]).is_none());
    }
}
