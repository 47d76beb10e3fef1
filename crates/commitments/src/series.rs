//! Equally spaced per-period event counts (months or ISO weeks) with an
//! exposure per period (e.g. sensor-days of coverage).
//!
//! A period with exposure 0 is *missing* (no coverage: the count is unknown,
//! not zero); the analyses leave such periods out.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use serde::Serialize;

/// Length of one period of a [`Series`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Calendar month; starts on the 1st.
    Month,
    /// ISO 8601 week; starts on Monday.
    Week,
}

impl Period {
    /// Start of the period containing `d`.
    pub fn start_of(self, d: NaiveDate) -> NaiveDate {
        match self {
            Period::Month => d.with_day(1).unwrap_or(d),
            Period::Week => d - Days::new(u64::from(d.weekday().num_days_from_monday())),
        }
    }

    /// Start of the period after the one containing `d`.
    ///
    /// Saturates at [`NaiveDate::MAX`]'s period instead of overflowing.
    pub fn next(self, d: NaiveDate) -> NaiveDate {
        let s = self.start_of(d);
        let n = match self {
            Period::Month => s.checked_add_months(Months::new(1)),
            Period::Week => s.checked_add_days(Days::new(7)),
        };
        n.unwrap_or(s)
    }

    /// Label of the period containing `d`: `2015-09` for a month, the ISO
    /// week `2015-W39` for a week.
    pub fn label(self, d: NaiveDate) -> String {
        match self {
            Period::Month => format!("{:04}-{:02}", d.year(), d.month()),
            Period::Week => {
                let w = d.iso_week();
                format!("{:04}-W{:02}", w.year(), w.week())
            }
        }
    }

    /// Conventional number of periods per year (12 or 52), used for the
    /// default ITS window and to word durations.
    pub fn per_year(self) -> usize {
        match self {
            Period::Month => 12,
            Period::Week => 52,
        }
    }

    /// Unit name in words ("month" / "week").
    pub fn unit(self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Week => "week",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.unit())
    }
}

impl FromStr for Period {
    type Err = SeriesError;

    /// `month` or `week` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "month" => Ok(Period::Month),
            "week" => Ok(Period::Week),
            other => Err(SeriesError::UnknownPeriod(other.to_string())),
        }
    }
}

/// Why a series could not be built or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    /// The period name is neither `month` nor `week`.
    #[error("unknown period {0:?} (expected \"month\" or \"week\")")]
    UnknownPeriod(String),
    /// No periods at all.
    #[error("the series has no periods")]
    Empty,
    /// `counts` and `exposure` (or `starts`) differ in length.
    #[error("{what}: {got} values, expected {expected}")]
    Length {
        /// Which vector.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The number of periods.
        expected: usize,
    },
    /// The first date is not the start of its period.
    #[error("{0} is not the start of a {1}")]
    NotPeriodStart(NaiveDate, Period),
    /// A count or an exposure is negative, not finite, or a count is not an
    /// integer.
    #[error("period {index}: {message}")]
    Value {
        /// Period index (0-based).
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A CSV line could not be read; `line` is 1-based (the header is line 1).
    #[error("line {line}: {message}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Per-period counts. Invariant (checked by [`Series::new`] and
/// [`Series::validate`]): the three vectors have the same length, `starts`
/// are consecutive period starts, counts are non-negative integers (as
/// `f64`), exposures are finite and `>= 0` (0 = missing period).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Period length.
    pub period: Period,
    /// Start date of each period.
    pub starts: Vec<NaiveDate>,
    /// Event count of each period.
    pub counts: Vec<f64>,
    /// Exposure of each period (same unit throughout; 0 = no coverage).
    pub exposure: Vec<f64>,
}

/// Largest count per period: 2^40. Sums over a series stay exact in an `f64` (below 2^53
/// for up to 8,192 periods at the maximum) and the exact tests stay finite (a count above
/// 2^53 made the binomial bisection loop forever: breaker finding).
pub const MAX_COUNT: f64 = 1_099_511_627_776.0;

/// Most periods in a series (833 years of months, 192 of weeks): the trend-break search
/// fits one regression per candidate period.
pub const MAX_PERIODS: usize = 10_000;

/// Smallest non-zero exposure (a subnormal exposure made rates infinite: breaker finding).
pub const MIN_EXPOSURE: f64 = 1e-6;

/// Largest exposure.
pub const MAX_EXPOSURE: f64 = 1e12;

impl Series {
    /// Builds a series of `counts.len()` consecutive periods from
    /// `first_start` (which must be a period start).
    ///
    /// # Errors
    /// [`SeriesError::Empty`], [`SeriesError::Length`],
    /// [`SeriesError::NotPeriodStart`], [`SeriesError::Value`].
    pub fn new(
        period: Period,
        first_start: NaiveDate,
        counts: Vec<f64>,
        exposure: Vec<f64>,
    ) -> Result<Series, SeriesError> {
        if period.start_of(first_start) != first_start {
            return Err(SeriesError::NotPeriodStart(first_start, period));
        }
        let mut starts = Vec::with_capacity(counts.len());
        let mut d = first_start;
        for _ in 0..counts.len() {
            starts.push(d);
            d = period.next(d);
        }
        let s = Series {
            period,
            starts,
            counts,
            exposure,
        };
        s.validate()?;
        Ok(s)
    }

    /// Checks the invariant (the fields are public, so a series built by
    /// hand is checked again by the analyses).
    ///
    /// # Errors
    /// The first violation found.
    pub fn validate(&self) -> Result<(), SeriesError> {
        let n = self.counts.len();
        if n == 0 {
            return Err(SeriesError::Empty);
        }
        if n > MAX_PERIODS {
            return Err(SeriesError::Value {
                index: MAX_PERIODS,
                message: format!("{n} periods; a series holds at most {MAX_PERIODS}"),
            });
        }
        for (what, got) in [
            ("exposure", self.exposure.len()),
            ("starts", self.starts.len()),
        ] {
            if got != n {
                return Err(SeriesError::Length {
                    what,
                    got,
                    expected: n,
                });
            }
        }
        for i in 0..n {
            let (c, e) = (self.counts[i], self.exposure[i]);
            let bad = |message: &str| SeriesError::Value {
                index: i,
                message: message.to_string(),
            };
            if !c.is_finite() || c < 0.0 || c.fract() != 0.0 {
                return Err(bad("count must be a non-negative integer"));
            }
            if c > MAX_COUNT {
                return Err(bad("count must be at most 2^40 (about 1.1e12)"));
            }
            if !e.is_finite() || e < 0.0 {
                return Err(bad("exposure must be finite and >= 0"));
            }
            if e != 0.0 && !(MIN_EXPOSURE..=MAX_EXPOSURE).contains(&e) {
                return Err(bad(
                    "exposure must be 0 (no coverage) or between 1e-6 and 1e12",
                ));
            }
            if i > 0 && self.starts[i] != self.period.next(self.starts[i - 1]) {
                return Err(bad("period starts are not consecutive"));
            }
        }
        Ok(())
    }

    /// Number of periods (missing ones included).
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when there are no periods.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Label of period `i` (see [`Period::label`]); empty if out of range.
    pub fn label(&self, i: usize) -> String {
        self.starts
            .get(i)
            .map(|d| self.period.label(*d))
            .unwrap_or_default()
    }

    /// Splits the series at `date`: `t0` is the index of the first period
    /// whose start is `>= date` (`len()` if none). `transition` is true when
    /// `date` is not a period start but falls inside period `t0 - 1`; that
    /// period is then part before, part after the date, and the analyses
    /// drop it.
    pub fn index_of(&self, date: NaiveDate) -> (usize, bool) {
        let t0 = self.starts.partition_point(|s| *s < date);
        let transition = t0 > 0
            && self.period.start_of(date) != date
            && self.starts[t0 - 1] == self.period.start_of(date);
        (t0, transition)
    }

    /// Reads `period,count[,exposure]` CSV text (header line required;
    /// columns found by name, in any order; no quoted fields). `period` is
    /// `YYYY-MM`, `YYYY-MM-DD` (the period containing that day) or ISO week
    /// `YYYY-Www` (weeks only); exposure defaults to 1. Rows must be in
    /// increasing period order; periods absent between two rows are filled
    /// with count 0 and exposure 0 (missing). Blank lines are skipped.
    ///
    /// # Errors
    /// [`SeriesError::Csv`] naming the 1-based line, or [`SeriesError::Empty`].
    pub fn from_csv(text: &str, period: Period) -> Result<Series, SeriesError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty());
        let (hline, header) = lines.next().ok_or(SeriesError::Empty)?;
        let names: Vec<String> = header
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let col = |name: &str| names.iter().position(|h| h == name);
        let csv_err = |line: usize, message: String| SeriesError::Csv { line, message };
        let (pc, cc) = match (col("period"), col("count")) {
            (Some(p), Some(c)) => (p, c),
            _ => {
                return Err(csv_err(
                    hline,
                    "header needs `period` and `count` columns".into(),
                ))
            }
        };
        let ec = col("exposure");
        let mut rows: Vec<(NaiveDate, f64, f64)> = Vec::new();
        for (line, l) in lines {
            let fields: Vec<&str> = l.split(',').map(str::trim).collect();
            let get = |c: usize| {
                fields
                    .get(c)
                    .copied()
                    .ok_or_else(|| csv_err(line, format!("missing column {}", c + 1)))
            };
            let start = parse_period(get(pc)?, period).map_err(|m| csv_err(line, m))?;
            let count = parse_num(get(cc)?, "count").map_err(|m| csv_err(line, m))?;
            if count < 0.0 || count.fract() != 0.0 {
                return Err(csv_err(
                    line,
                    format!("count {count} is not a non-negative integer"),
                ));
            }
            if count > MAX_COUNT {
                return Err(csv_err(
                    line,
                    format!("count {count:e} is larger than 2^40 (about 1.1e12)"),
                ));
            }
            let exposure = match ec {
                Some(c) => parse_num(get(c)?, "exposure").map_err(|m| csv_err(line, m))?,
                None => 1.0,
            };
            if exposure < 0.0 {
                return Err(csv_err(line, format!("exposure {exposure} is negative")));
            }
            if exposure != 0.0 && !(MIN_EXPOSURE..=MAX_EXPOSURE).contains(&exposure) {
                return Err(csv_err(
                    line,
                    format!(
                        "exposure {exposure:e} is not 0 (no coverage) or between 1e-6 and 1e12"
                    ),
                ));
            }
            if let Some((first, _, _)) = rows.first() {
                if period_distance(period, *first, start) >= MAX_PERIODS {
                    return Err(csv_err(
                        line,
                        format!(
                            "period {} is {MAX_PERIODS} or more periods after the first row's; a series holds at most {MAX_PERIODS}",
                            period.label(start)
                        ),
                    ));
                }
            }
            if let Some((prev, _, _)) = rows.last() {
                if start <= *prev {
                    return Err(csv_err(
                        line,
                        format!(
                            "period {} is not after the previous row's",
                            period.label(start)
                        ),
                    ));
                }
            }
            rows.push((start, count, exposure));
        }
        let first = rows.first().ok_or(SeriesError::Empty)?.0;
        let (mut counts, mut exposure) = (Vec::new(), Vec::new());
        let mut d = first;
        for (start, c, e) in rows {
            while d < start {
                counts.push(0.0);
                exposure.push(0.0);
                d = period.next(d);
            }
            counts.push(c);
            exposure.push(e);
            d = period.next(d);
        }
        Series::new(period, first, counts, exposure)
    }
}

fn parse_num(s: &str, what: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => {
            let shown: String = s.chars().take(40).collect();
            let more = if s.chars().count() > 40 { "…" } else { "" };
            Err(format!("{what} {shown:?}{more} is not a finite number"))
        }
    }
}

/// Periods from `a` to `b` (an upper bound for weeks and months; 0 when `b <= a`).
fn period_distance(period: Period, a: NaiveDate, b: NaiveDate) -> usize {
    let days = (b - a).num_days().max(0) as usize;
    match period {
        Period::Week => days / 7,
        Period::Month => days / 28,
    }
}

/// Parses one `period` field to the start of its period.
fn parse_period(s: &str, period: Period) -> Result<NaiveDate, String> {
    let bad = || format!("period {s:?} is not YYYY-MM, YYYY-MM-DD or YYYY-Www");
    if let Some((y, w)) = s.split_once("-W").or_else(|| s.split_once("-w")) {
        if period != Period::Week {
            return Err(format!("ISO week {s:?} in a monthly series"));
        }
        let (y, w) = (
            y.parse::<i32>().map_err(|_| bad())?,
            w.parse::<u32>().map_err(|_| bad())?,
        );
        return NaiveDate::from_isoywd_opt(y, w, Weekday::Mon).ok_or_else(bad);
    }
    let parts: Vec<&str> = s.split('-').collect();
    let d = match parts.as_slice() {
        [y, m] => {
            let (y, m) = (
                y.parse::<i32>().map_err(|_| bad())?,
                m.parse::<u32>().map_err(|_| bad())?,
            );
            NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?
        }
        [_, _, _] => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if period == Period::Week && parts.len() == 2 {
        return Err(format!("month {s:?} in a weekly series"));
    }
    Ok(period.start_of(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn labels_and_starts() {
        assert_eq!(Period::Month.label(d(2015, 9, 25)), "2015-09");
        assert_eq!(Period::Week.label(d(2015, 9, 25)), "2015-W39");
        assert_eq!(Period::Week.start_of(d(2015, 9, 25)), d(2015, 9, 21));
        assert_eq!(Period::Month.next(d(2015, 12, 7)), d(2016, 1, 1));
        assert_eq!("Week".parse::<Period>(), Ok(Period::Week));
        assert!("day".parse::<Period>().is_err());
    }

    #[test]
    fn index_of_mid_period_date_is_a_transition() {
        let s = Series::new(Period::Month, d(2015, 1, 1), vec![1.0; 12], vec![1.0; 12]).unwrap();
        assert_eq!(s.index_of(d(2015, 9, 25)), (9, true));
        assert_eq!(s.index_of(d(2015, 9, 1)), (8, false));
        assert_eq!(s.index_of(d(2014, 5, 19)), (0, false));
        assert_eq!(s.index_of(d(2016, 5, 19)), (12, false));
    }

    #[test]
    fn csv_gaps_are_missing_periods_and_errors_name_the_line() {
        let s = Series::from_csv("period,count\n2015-01,3\n2015-03-15,4\n", Period::Month).unwrap();
        assert_eq!(s.counts, vec![3.0, 0.0, 4.0]);
        assert_eq!(s.exposure, vec![1.0, 0.0, 1.0]);
        let w = Series::from_csv(
            "count,period,exposure\n2,2015-W52,7\n1,2016-W01,7\n",
            Period::Week,
        )
        .unwrap();
        // 2015 has an ISO week 53: the gap is filled as a missing week.
        assert_eq!(
            w.starts,
            vec![d(2015, 12, 21), d(2015, 12, 28), d(2016, 1, 4)]
        );
        assert_eq!(w.exposure, vec![7.0, 0.0, 7.0]);
        assert_eq!(w.label(1), "2015-W53");
        let e =
            Series::from_csv("period,count\n2015-01,3\n2015-02,x\n", Period::Month).unwrap_err();
        assert!(matches!(e, SeriesError::Csv { line: 3, .. }), "{e}");
        let e =
            Series::from_csv("period,count\n2015-02,3\n2015-01,1\n", Period::Month).unwrap_err();
        assert!(matches!(e, SeriesError::Csv { line: 3, .. }), "{e}");
        assert_eq!(
            Series::from_csv("period,count\n", Period::Month),
            Err(SeriesError::Empty)
        );
        assert!(Series::from_csv("when,count\n2015-01,3\n", Period::Month).is_err());
    }

    #[test]
    fn new_rejects_bad_values() {
        let s = Series::new(Period::Month, d(2015, 1, 2), vec![1.0], vec![1.0]);
        assert!(matches!(s, Err(SeriesError::NotPeriodStart(..))));
        assert!(Series::new(Period::Month, d(2015, 1, 1), vec![-1.0], vec![1.0]).is_err());
        assert!(Series::new(Period::Month, d(2015, 1, 1), vec![1.5], vec![1.0]).is_err());
        assert!(Series::new(Period::Month, d(2015, 1, 1), vec![1.0], vec![f64::NAN]).is_err());
        assert!(Series::new(Period::Month, d(2015, 1, 1), vec![1.0], vec![]).is_err());
        assert_eq!(
            Series::new(Period::Month, d(2015, 1, 1), vec![], vec![]),
            Err(SeriesError::Empty)
        );
    }
}
