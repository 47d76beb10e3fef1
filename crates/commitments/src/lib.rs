//! Did a state's groups keep attacking after a dated commitment?
//!
//! The founding question of tracehunt: after the 2015 US–China and UK–China pledges against
//! cyber-enabled theft of intellectual property, did activity by China-linked groups change
//! *at the pledge*, or had it changed before (FireEye's "Red Line Drawn", 2016, saw the
//! decline begin in mid-2014, around the indictment of five PLA officers)? This crate answers
//! such questions honestly for any series of counts per period:
//!
//! - [`commitment`]: dated commitments and competing events (YAML; a built-in file with the
//!   2015 US–China, UK–China, G20 Antalya dates and the 2014 PLA indictment);
//! - [`series`] and [`activity`]: counts per month or ISO week with an exposure (the sources
//!   that cover the period; no coverage = unknown, not zero), from a CSV or from tracked
//!   incidents;
//! - [`rate`]: the exact conditional rate ratio after/before (Clopper–Pearson);
//! - [`glm`]: Poisson IRLS with quasi-Poisson dispersion and Newey–West HAC errors, as
//!   statsmodels computes them;
//! - [`analysis`]: the interrupted time series at a date (pre-trend, level change, slope
//!   change; window, transition and anticipation periods left out), competing dates refitted
//!   on one common sample and ranked by QAIC;
//! - [`verdict`]: the verdict in words (also `analysis::verdict`);
//! - [`changepoint`]: change points from the data alone (PELT with a Poisson cost, checked
//!   against exact optimal partitioning) and the single trend break ("when did the decline
//!   begin").
//!
//! Figures are checked against statsmodels 0.15 on four reference series
//! (`tests/fixtures/reference.py` computed them once). Pure: no I/O, no printing.
//!
//! ```
//! use chrono::NaiveDate;
//! use tracehunt_commitments::analysis::{analyse_date, change_points, verdict, Options};
//! use tracehunt_commitments::series::{Period, Series};
//!
//! // 36 months from 2014-01: 20 incidents a month, 5 a month from 2015-10 (one source each).
//! let counts: Vec<f64> = (0..36).map(|i| if i < 21 { 20.0 + (i % 3) as f64 } else { 5.0 }).collect();
//! let start = NaiveDate::from_ymd_opt(2014, 1, 1).unwrap();
//! let series = Series::new(Period::Month, start, counts, vec![1.0; 36]).unwrap();
//! let date = NaiveDate::from_ymd_opt(2015, 9, 25).unwrap();
//! let a = analyse_date(&series, date, &Options::default()).unwrap();
//! let level = &a.its.as_ref().unwrap().level_change;
//! assert!(level.ratio < 0.3 && level.ci_high < 1.0);
//! let cp = change_points(&series);
//! assert_eq!(cp.points[0].label, "2015-10");
//! let v = verdict("US–China commitment", date, &a, &cp, &[]);
//! assert!(v.contains("significant level drop at 2015-09-25"), "{v}");
//! ```

pub mod activity;
pub mod analysis;
pub mod changepoint;
pub mod commitment;
pub mod glm;
pub mod rate;
pub mod series;
pub mod verdict;
