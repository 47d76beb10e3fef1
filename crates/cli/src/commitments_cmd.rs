//! `tracehunt commitments`: did a state's groups change their activity at a dated
//! commitment? Counts come from the store (incidents whose top candidate's suspected state is
//! the state, per period, divided by coverage) or from a CSV; the analysis is
//! `tracehunt_commitments`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Args;
use serde::Serialize;
use tracehunt_attack::StateSponsors;
use tracehunt_commitments::activity::{activity_series, Activity};
use tracehunt_commitments::analysis::{self, ChangePoints, DateAnalysis, Options};
use tracehunt_commitments::commitment::{Commitment, Commitments};
use tracehunt_commitments::series::{Period, Series};
use tracehunt_store::Store;

use crate::store_cmd::StoreArg;
use crate::TextOrJson;

/// `tracehunt commitments`.
#[derive(Args, Debug)]
pub struct CommitmentsArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Commitments YAML (default: the built-in 2015 US–China, UK–China, G20 Antalya
    /// commitments and the 2014 PLA indictment).
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Counts per period from a CSV (`period,count[,exposure]`) instead of the store: an
    /// analyst's SIEM export or a published series.
    #[arg(long, value_name = "CSV")]
    counts: Option<PathBuf>,
    /// The state whose groups are counted: ISO code or name (`CN`, `China`, `RU`).
    #[arg(long, default_value = "CN")]
    state: String,
    /// Period of the series.
    #[arg(long, default_value = "month", value_parser = parse_period)]
    period: Period,
    /// Count incidents whose top candidate has at least this confidence (0–100).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    min_confidence: u8,
    /// Only these commitments or events (ids; repeatable). Default: all that concern the state.
    #[arg(long = "only", value_name = "ID")]
    only: Vec<String>,
    /// Periods each side of a date in the segmented fit (default 12 months / 52 weeks); 0 =
    /// the whole series.
    #[arg(long, value_name = "N")]
    window: Option<usize>,
    /// Periods before a date left out as anticipation (the change may start early).
    #[arg(long, default_value_t = 0, value_name = "N")]
    anticipation: usize,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: TextOrJson,
}

impl CommitmentsArgs {
    /// The arguments `tracehunt report` uses for a state's charts: every date that concerns
    /// it, monthly, default window.
    pub fn for_report(
        store: StoreArg,
        file: Option<PathBuf>,
        state: &str,
        min_confidence: u8,
    ) -> Self {
        CommitmentsArgs {
            store,
            file,
            counts: None,
            state: state.to_owned(),
            period: Period::Month,
            min_confidence,
            only: vec![],
            window: None,
            anticipation: 0,
            format: TextOrJson::Table,
        }
    }
}

fn parse_period(s: &str) -> Result<Period, String> {
    s.parse::<Period>().map_err(|e| e.to_string())
}

/// What the command reports (its `--format json` document).
#[derive(Debug, Serialize)]
pub struct CommitmentsReport {
    /// ISO code of the state.
    pub state: String,
    /// Display name.
    pub state_name: String,
    /// Where the counts came from, in words.
    pub source: String,
    /// The series analysed.
    pub series: Series,
    /// Incidents counted, and of which in periods without coverage (store input only).
    pub incidents: Option<(u64, u64)>,
    /// Change points from the data alone.
    pub change_points: ChangePoints,
    /// One analysis per date.
    pub dates: Vec<DateReport>,
    /// Competing dates compared (lower ΔQAIC fits better).
    pub comparison: Vec<analysis::Comparison>,
    /// Assumptions common to every date.
    pub assumptions: Vec<String>,
}

/// One commitment or event, analysed.
#[derive(Debug, Serialize)]
pub struct DateReport {
    /// The entry.
    pub commitment: Commitment,
    /// The analysis, or why there is none.
    pub analysis: std::result::Result<DateAnalysis, String>,
    /// The verdict in words.
    pub verdict: String,
}

/// Runs `tracehunt commitments`.
pub fn run(a: CommitmentsArgs) -> Result<u8> {
    let report = build(&a)?;
    let mut out = std::io::stdout().lock();
    if a.format == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
        return Ok(0);
    }
    write_table(&mut out, &report)?;
    Ok(0)
}

/// The report for `a` (shared with `tracehunt report`).
pub fn build(a: &CommitmentsArgs) -> Result<CommitmentsReport> {
    let code = StateSponsors::normalise_state(&a.state).with_context(|| {
        format!(
            "--state {:?}: not an ISO 3166-1 alpha-2 code or a known state name",
            a.state
        )
    })?;
    let state_name = StateSponsors::builtin()
        .iter()
        .find(|(_, s)| s.country == code)
        .map_or(code.clone(), |(_, s)| s.state_name());
    let commitments = match &a.file {
        Some(p) => {
            let text = crate::input::read_text_file(p)
                .with_context(|| format!("reading {}", p.display()))?;
            Commitments::from_yaml(&text).with_context(|| format!("{}", p.display()))?
        }
        None => Commitments::builtin().clone(),
    };
    let entries: Vec<Commitment> = if a.only.is_empty() {
        commitments.relevant_to(&code).cloned().collect()
    } else {
        a.only
            .iter()
            .map(|id| {
                commitments.get(id).cloned().with_context(|| {
                    format!("--only {id}: no such commitment or event in the file")
                })
            })
            .collect::<Result<_>>()?
    };
    if entries.is_empty() {
        anyhow::bail!("no commitment or event in the file concerns {code}; use --only ID");
    }
    let (series, source, incidents) = match &a.counts {
        Some(p) => {
            let text = crate::input::read_text_file(p)
                .with_context(|| format!("reading {}", p.display()))?;
            let s = Series::from_csv(&text, a.period)
                .with_context(|| format!("{}", p.display()))?;
            (s, format!("counts per period from {}", p.display()), None)
        }
        None => {
            let store = a.store.open()?;
            let act = from_store(&store, &code, a.period, a.min_confidence)?;
            let src = format!(
                "incidents whose top candidate (confidence ≥ {}) is a group whose suspected state \
                 is {code} (MISP galaxy `country` / `cfr-suspected-state-sponsor`), by first seen, \
                 per {} divided by the sources with events in it",
                a.min_confidence,
                period_word(a.period)
            );
            (act.series, src, Some((act.incidents, act.incidents_uncovered)))
        }
    };
    let opts = Options {
        window: match a.window {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(match a.period {
                Period::Month => 12,
                Period::Week => 52,
            }),
        },
        anticipation: a.anticipation,
        ..Options::default()
    };
    let change_points = analysis::change_points(&series);
    let analysed: Vec<(Commitment, std::result::Result<DateAnalysis, String>)> = entries
        .into_iter()
        .map(|c| {
            let r = analysis::analyse_date(&series, c.effective, &opts).map_err(|e| e.to_string());
            (c, r)
        })
        .collect();
    let ok: Vec<(String, DateAnalysis)> = analysed
        .iter()
        .filter_map(|(c, r)| Some((c.id.clone(), r.as_ref().ok()?.clone())))
        .collect();
    let comparison = analysis::compare(&ok);
    let dates = analysed
        .into_iter()
        .map(|(c, r)| {
            let verdict = match &r {
                Ok(d) => analysis::verdict(&c.name, c.effective, d, &change_points, &comparison),
                Err(e) => format!("not estimable at {}: {e}", c.effective),
            };
            DateReport {
                commitment: c,
                analysis: r,
                verdict,
            }
        })
        .collect();
    Ok(CommitmentsReport {
        state: code,
        state_name,
        source,
        series,
        incidents,
        change_points,
        dates,
        comparison,
        assumptions: vec![
            "a period without coverage is unknown, not quiet: it is left out".into(),
            "counts are incidents, not events: one intrusion seen by many rules counts once".into(),
        ],
    })
}

fn period_word(p: Period) -> &'static str {
    match p {
        Period::Month => "month",
        Period::Week => "week",
    }
}

/// Incident first-seen dates of the state's groups and the distinct sources' event spans.
fn from_store(store: &Store, code: &str, period: Period, min_conf: u8) -> Result<Activity> {
    let sponsors = StateSponsors::builtin();
    let dates: Vec<NaiveDate> = store
        .incidents(None)?
        .into_iter()
        .filter(|i| !i.false_positive)
        .filter_map(|i| {
            let top = i.top.as_ref()?;
            (top.confidence >= min_conf && sponsors.matches_state(&top.group_id, code))
                .then(|| i.first_seen.map(|t| t.date_naive()))
                .flatten()
        })
        .collect();
    let mut spans = std::collections::BTreeMap::new();
    for s in store.sources()? {
        if let (Some(a), Some(b)) = (s.first_event, s.last_event) {
            let e = spans
                .entry(s.content_hash)
                .or_insert((a.date_naive(), b.date_naive()));
            e.0 = e.0.min(a.date_naive());
            e.1 = e.1.max(b.date_naive());
        }
    }
    let spans: Vec<(NaiveDate, NaiveDate)> = spans.into_values().collect();
    activity_series(period, &dates, &spans).with_context(|| {
        format!(
            "{}: no incident and no source with event times in the store",
            store.path().display()
        )
    })
}

fn write_table(out: &mut impl Write, r: &CommitmentsReport) -> Result<()> {
    let s = &r.series;
    writeln!(out, "{} ({}): {}", r.state_name, r.state, r.source)?;
    let covered = s.exposure.iter().filter(|e| **e > 0.0).count();
    let total: f64 = s.counts.iter().sum();
    if let (Some(first), Some(last)) = (s.starts.first(), s.starts.last()) {
        writeln!(
            out,
            "series: {} … {}, {} periods, {} with coverage, {} counted",
            s.period.label(*first),
            s.period.label(*last),
            s.starts.len(),
            covered,
            total
        )?;
    }
    if let Some((n, uncovered)) = r.incidents {
        if uncovered > 0 {
            writeln!(
                out,
                "note: {uncovered} of {n} incidents fall in periods without coverage and are left out"
            )?;
        }
    }
    writeln!(out, "change points: {}", r.change_points.describe(s))?;
    for d in &r.dates {
        writeln!(out)?;
        writeln!(
            out,
            "{}  {} ({}, {:?})",
            d.commitment.effective, d.commitment.name, d.commitment.id, d.commitment.kind
        )?;
        match &d.analysis {
            Ok(a) => {
                for line in a.describe() {
                    writeln!(out, "  {line}")?;
                }
            }
            Err(e) => writeln!(out, "  not estimable: {e}")?,
        }
        writeln!(out, "  verdict: {}", d.verdict)?;
    }
    if r.comparison.len() > 1 {
        writeln!(out)?;
        writeln!(out, "dates compared (ΔQAIC, lower fits better):")?;
        for c in &r.comparison {
            writeln!(out, "  {c}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "assumptions:")?;
    let mut seen = std::collections::BTreeSet::new();
    for line in r
        .assumptions
        .iter()
        .chain(r.dates.iter().filter_map(|d| d.analysis.as_ref().ok()).flat_map(|a| &a.assumptions))
    {
        if seen.insert(line) {
            writeln!(out, "  - {line}")?;
        }
    }
    Ok(())
}
