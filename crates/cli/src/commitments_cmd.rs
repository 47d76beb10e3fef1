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
use tracehunt_commitments::analysis::{self, Competing, DateAnalysis, Estimate, Options};
use tracehunt_commitments::changepoint::ChangePoints;
use tracehunt_commitments::commitment::{Commitment, Commitments, Kind};
use tracehunt_commitments::series::{Period, Series};
use tracehunt_store::Store;

use crate::store_cmd::StoreArg;
use crate::TextOrJson;
use tracehunt_report::{counted, terminal_safe};

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
    /// Period of the series: `month` or `week` (ISO weeks, `YYYY-Www` in a CSV).
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
    #[arg(
        long,
        short = 'f',
        value_enum,
        ignore_case = true,
        default_value = "table"
    )]
    format: TextOrJson,
}

impl CommitmentsArgs {
    /// The arguments `tracehunt report` uses for a state's charts: every date that concerns
    /// it, monthly, default window.
    pub fn for_report(
        store: StoreArg,
        file: Option<PathBuf>,
        counts: Option<PathBuf>,
        state: &str,
        min_confidence: u8,
    ) -> Self {
        CommitmentsArgs {
            store,
            file,
            counts,
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
    /// Incidents counted (store input only).
    pub incidents: Option<IncidentCounts>,
    /// Change points from the data alone.
    pub change_points: ChangePoints,
    /// One analysis per date.
    pub dates: Vec<DateReport>,
    /// Every date refitted on one common sample and ranked (lower ΔQAIC fits better).
    pub comparison: Vec<Competing>,
    /// Why the dates could not be compared, if so.
    pub comparison_note: Option<String>,
    /// Assumptions common to every date.
    pub assumptions: Vec<String>,
    /// What one unit of exposure is (`source`, `period`, `exposure unit`): rates are per it.
    pub rate_unit: String,
}

/// The incidents behind a series from the store.
#[derive(Debug, Serialize)]
pub struct IncidentCounts {
    /// Incidents counted.
    pub counted: u64,
    /// Of which in periods without coverage (left out of the analysis).
    pub uncovered: u64,
}

/// One commitment or event, analysed.
#[derive(Debug, Serialize)]
pub struct DateReport {
    /// The entry.
    pub commitment: Commitment,
    /// The analysis (`null` when none: see `error`).
    pub analysis: Option<DateAnalysis>,
    /// Why there is no analysis.
    pub error: Option<String>,
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
    let mut only: Vec<&String> = Vec::new();
    for id in &a.only {
        if !only.contains(&id) {
            only.push(id);
        }
    }
    let entries: Vec<Commitment> = if only.is_empty() {
        commitments.relevant_to(&code).cloned().collect()
    } else {
        only.iter()
            .map(|id| {
                commitments.get(id).cloned().with_context(|| {
                    let ids: Vec<&str> =
                        commitments.entries.iter().map(|c| c.id.as_str()).collect();
                    format!(
                        "--only {id}: no such commitment or event in the file (ids: {})",
                        ids.join(", ")
                    )
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
            let s = Series::from_csv(&text, a.period).map_err(|e| {
                let m = e.to_string();
                let hint = if m.contains("ISO week") {
                    " (a weekly series: add --period week)"
                } else if m.contains("header") {
                    " (the first line names the columns, comma-separated: period,count[,exposure])"
                } else {
                    ""
                };
                anyhow::anyhow!("{}: {m}{hint}", p.display())
            })?;
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
            (
                act.series,
                src,
                Some(IncidentCounts {
                    counted: act.incidents,
                    uncovered: act.incidents_uncovered,
                }),
            )
        }
    };
    let mut assumptions = vec![
        "a period without coverage (exposure 0) is unknown, not quiet: it is left out".to_string(),
    ];
    let rate_unit = if incidents.is_some() {
        assumptions.push(
            "counts are incidents, not events: one intrusion seen by many rules counts once".into(),
        );
        assumptions.push(format!(
            "an incident counts for {code} when its top attribution candidate is a group the MISP \
             galaxy places in {code} (`country`; also groups the CFR tracker does not call \
             state-sponsored) with confidence ≥ {} — raise --min-confidence to count only \
             stronger attributions",
            a.min_confidence
        ));
        "source"
    } else if series.exposure.iter().all(|e| *e == 1.0 || *e == 0.0) {
        "period"
    } else {
        "exposure unit"
    };
    let mut opts = Options::for_period(a.period);
    match a.window {
        Some(0) => opts.window = None,
        Some(n) => opts.window = Some(n),
        None => {}
    }
    opts.anticipation = a.anticipation;
    let change_points = analysis::change_points(&series);
    let named: Vec<(String, NaiveDate)> = entries
        .iter()
        .map(|c| (c.id.clone(), c.effective))
        .collect();
    let (comparison, comparison_note) = if named.len() > 1 {
        match analysis::compare_dates(&series, &named, &opts) {
            Ok(c) => {
                let note = comparison_words(&c, &series);
                (c, Some(note))
            }
            Err(e) => (vec![], Some(e.to_string())),
        }
    } else {
        (vec![], None)
    };
    let dates = entries
        .into_iter()
        .map(|c| {
            let r = analysis::analyse_date(&series, c.effective, &opts).map_err(|e| e.to_string());
            let mut verdict = match &r {
                Ok(d) => analysis::verdict(&c.name, c.effective, d, &change_points, &comparison),
                Err(e) => format!("{} ({}): not estimable: {e}", c.name, c.effective),
            };
            if c.kind == Kind::Event {
                verdict = verdict.replace(" the commitment", " the event");
            }
            if let (Ok(d), Some(tb)) = (&r, &change_points.trend_break) {
                if tb.fit.supported && tb.index > d.window_start && tb.index + 3 < d.t0 {
                    verdict.push_str(&format!(
                        "; caution: the data's own trend break ({}) lies inside this fit's \
                         pre-period, so its straight pre-trend is misspecified and the level \
                         change is unreliable (narrow --window)",
                        tb.label
                    ));
                }
            }
            let (analysis, error) = match r {
                Ok(a) => (Some(a), None),
                Err(e) => (None, Some(e)),
            };
            DateReport {
                commitment: c,
                analysis,
                error,
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
        comparison_note,
        assumptions,
        rate_unit: rate_unit.into(),
    })
}

/// What the comparison is and is not: one common sample (longer than each date's own fit,
/// so its level changes differ from theirs), and the dates it cannot tell apart.
fn comparison_words(c: &[Competing], series: &Series) -> String {
    let n = c.first().map_or(0, |x| x.n_used);
    let mut words = format!(
        "the dates are refitted on one common sample ({n} {}s: the union of their windows, every \
         date's transition periods left out), so a date's level change here can differ from its \
         own fit above; only ΔQAIC compares them",
        series.period.unit()
    );
    let mut same: Vec<Vec<&str>> = Vec::new();
    for x in c {
        let Some(l) = x.loglik else { continue };
        match same.iter_mut().find(|g| {
            c.iter()
                .find(|y| y.name == g[0])
                .and_then(|y| y.loglik)
                .is_some_and(|m| (m - l).abs() < 1e-6 * (1.0 + l.abs()))
        }) {
            Some(g) => g.push(&x.name),
            None => same.push(vec![&x.name]),
        }
    }
    for g in same.iter().filter(|g| g.len() > 1) {
        words.push_str(&format!(
            "; {} are the same model once their transition periods are left out: the {} series \
             cannot tell them apart",
            g.join(", "),
            period_word(series.period)
        ));
    }
    words
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
            "{}: nothing to count: no incident of {code}'s groups with a time, and no source \
             with event times",
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
    if let Some(IncidentCounts { counted, uncovered }) = r.incidents {
        if uncovered > 0 {
            writeln!(
                out,
                "note: {uncovered} of {counted} incidents fall in periods without coverage and are left out"
            )?;
        }
    }
    writeln!(
        out,
        "change points (PELT, Poisson cost): {}",
        describe_points(&r.change_points, &r.rate_unit)
    )?;
    if let Some(tb) = &r.change_points.trend_break {
        writeln!(
            out,
            "trend break (data alone): {}{}",
            tb.label,
            if tb.fit.supported {
                ""
            } else {
                " (not significant)"
            }
        )?;
    }
    for d in &r.dates {
        writeln!(out)?;
        writeln!(
            out,
            "{}  {} ({}, {:?})",
            d.commitment.effective,
            terminal_safe(&d.commitment.name),
            terminal_safe(&d.commitment.id),
            d.commitment.kind
        )?;
        match (&d.analysis, &d.error) {
            (Some(a), _) => {
                for line in describe(a, &r.rate_unit) {
                    writeln!(out, "  {line}")?;
                }
            }
            (None, e) => writeln!(out, "  not estimable: {}", e.as_deref().unwrap_or("-"))?,
        }
        writeln!(out, "  verdict: {}", terminal_safe(&d.verdict))?;
    }
    if r.comparison.len() > 1 {
        writeln!(out)?;
        writeln!(
            out,
            "dates compared on one common sample (ΔQAIC, lower fits better; ≥ 2 favours the lower):"
        )?;
        if let Some(n) = &r.comparison_note {
            writeln!(out, "  ({n})")?;
        }
        for c in &r.comparison {
            match (c.delta_qaic, &c.level_change) {
                (Some(d), Some(l)) => writeln!(
                    out,
                    "  {}  {:<22} ΔQAIC {d:>6.1}  level change {}",
                    c.date,
                    c.name,
                    estimate(l)
                )?,
                _ => writeln!(
                    out,
                    "  {}  {:<22} not estimable: {}",
                    c.date,
                    c.name,
                    c.note.as_deref().unwrap_or("-")
                )?,
            }
        }
    } else if let Some(n) = &r.comparison_note {
        writeln!(out)?;
        writeln!(out, "dates not compared: {n}")?;
    }
    writeln!(out)?;
    writeln!(out, "assumptions:")?;
    let mut seen = std::collections::BTreeSet::new();
    for line in r.assumptions.iter().chain(
        r.dates
            .iter()
            .filter_map(|d| d.analysis.as_ref())
            .flat_map(|a| &a.assumptions),
    ) {
        if seen.insert(line) {
            writeln!(out, "  - {line}")?;
        }
    }
    Ok(())
}

fn describe_points(cp: &ChangePoints, unit: &str) -> String {
    if cp.points.is_empty() {
        return cp.note.clone().unwrap_or_else(|| "none".into());
    }
    cp.points
        .iter()
        .map(|p| {
            format!(
                "{} ({:.2} → {:.2} per {unit})",
                p.label, p.rate_before, p.rate_after
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `0.58 (95 % CI 0.42–0.80, p 0.001)`.
fn estimate(e: &Estimate) -> String {
    format!(
        "{:.2} (CI {:.2}–{:.2}, p {:.3})",
        e.ratio, e.ci_low, e.ci_high, e.p_value
    )
}

/// The figures of one date, one line each.
fn describe(a: &DateAnalysis, unit: &str) -> Vec<String> {
    let r = &a.rate;
    let mut v = vec![format!(
        "window: {} before, {} after (of {} in the window; {} left out)",
        counted(a.n_before as u64, "period", "periods"),
        a.n_after,
        a.window_end.saturating_sub(a.window_start),
        a.dropped.len()
    )];
    v.push(match (r.ratio, r.ci_high) {
        (Some(x), Some(h)) => format!(
            "naive rate ratio after/before: {x:.2} (exact {:.0} % CI {:.2}–{h:.2}, p {:.3}); \
             rates {:.2} → {:.2} per {unit}",
            a.level * 100.0,
            r.ci_low,
            r.p_value,
            r.before_rate,
            r.after_rate
        ),
        _ => format!(
            "naive rates {:.2} before, {:.2} after per {unit} (no ratio)",
            r.before_rate, r.after_rate
        ),
    });
    match &a.its {
        Some(f) => {
            v.push(format!(
                "segmented quasi-Poisson (HAC {} lags, dispersion {:.2}): pre-trend ×{} per period",
                f.hac_lags,
                f.dispersion,
                estimate(&f.pre_trend)
            ));
            v.push(format!("  level change ×{}", estimate(&f.level_change)));
            v.push(format!(
                "  slope change ×{} per period",
                estimate(&f.slope_change)
            ));
        }
        None => v.push(format!(
            "segmented regression: {}",
            a.its_note.as_deref().unwrap_or("not estimable")
        )),
    }
    v
}
