//! `tracehunt report --store P --output FILE.html`: the self-contained HTML report of
//! everything the store remembers — detections per level and day, top hosts and rules,
//! incidents with their attribution, the tactic × technique heatmap, actors over time and the
//! commitment charts of a state's groups.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tracehunt_attack::{ActorKb, StateSponsors};
use tracehunt_commitments::commitment::Kind;
use tracehunt_commitments::series::Series;
use tracehunt_report::counted;
use tracehunt_report::html::LevelCount as HtmlLevel;
use tracehunt_report::html::{
    self, ActorTimeline, CandidateView, ChartDate, CommitmentChart, FittedSegment, HeatCell,
    HtmlReport, IncidentView, LevelTop, RuleView, SummaryView, TacticColumn,
};
use tracehunt_store::Store;

use crate::commitments_cmd::{CommitmentsArgs, CommitmentsReport};
use crate::store_cmd::StoreArg;

/// `tracehunt report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Where to write the HTML file (`-`: standard output). An existing file
    /// is refused unless --clobber; the store itself always.
    #[arg(long, short = 'o', value_name = "FILE.html")]
    output: PathBuf,
    /// Overwrite an existing --output file.
    #[arg(long)]
    clobber: bool,
    /// States whose groups get a commitment chart (ISO code or name; repeatable).
    #[arg(long = "state", value_name = "STATE", default_value = "CN")]
    states: Vec<String>,
    /// Commitments YAML for the charts (default: the built-in file; `commitments --file`).
    #[arg(long, value_name = "FILE")]
    commitments: Option<PathBuf>,
    /// Chart counts per period from a CSV (`period,count[,exposure]`, as `commitments
    /// --counts`) instead of the store's incidents.
    #[arg(long, value_name = "CSV")]
    counts: Option<PathBuf>,
    /// Count incidents whose top candidate has at least this confidence (0–100) in the
    /// commitment charts.
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    min_confidence: u8,
    /// At most this many incidents in the incidents section (most severe, then newest).
    #[arg(long, default_value_t = 100, value_name = "N")]
    max_incidents: usize,
}

/// Runs `tracehunt report`.
pub fn run(a: ReportArgs) -> Result<u8> {
    let start = Instant::now();
    // A bad state or commitments file is the user's error: say so before any work (breaker
    // finding: both ended as a note inside the page and exit 0).
    let mut states: Vec<String> = Vec::new();
    for s in &a.states {
        let code = StateSponsors::normalise_state(s).with_context(|| {
            format!("--state {s:?}: not an ISO 3166-1 alpha-2 code or a known state name")
        })?;
        if !states.contains(&code) {
            states.push(code);
        }
    }
    if let Some(p) = &a.commitments {
        let text =
            crate::input::read_text_file(p).with_context(|| format!("reading {}", p.display()))?;
        tracehunt_commitments::commitment::Commitments::from_yaml(&text)
            .with_context(|| format!("{}", p.display()))?;
    }
    // `report -o` onto the store it reads destroyed the store (breaker
    // finding; `export stix` refused it already): refused, and an existing
    // file needs --clobber, as for `hunt -o`.
    if a.output.as_os_str() != "-" {
        if let Some(p) = &a.store.store {
            crate::store_cmd::refuse_output_over_store(p, Some(&a.output))?;
        }
        crate::store_cmd::refuse_clobber(&a.output, a.clobber)?;
    }
    let store = a.store.open()?;
    let mut r = from_store(&store, a.max_incidents)?;
    let mut notes = Vec::new();
    for state in &states {
        match commitment_charts(&a, state) {
            Ok((c, missing)) => {
                r.commitments.extend(c);
                notes.extend(missing);
            }
            Err(e) => {
                eprintln!("tracehunt report: no commitment chart for {state}: {e:#}");
                notes.push(format!("no commitment chart for {state}: {e:#}"));
            }
        }
    }
    r.summary.notes.extend(notes);
    r.summary.elapsed_ms = start.elapsed().as_millis() as u64;
    let page = html::render(&r);
    if a.output.as_os_str() == "-" {
        std::io::stdout().lock().write_all(page.as_bytes())?;
    } else {
        std::fs::write(&a.output, page.as_bytes())
            .with_context(|| format!("writing {}", a.output.display()))?;
        eprintln!(
            "tracehunt report: {} ({} bytes, {} incidents, {} actors, {} commitment charts) in {:.2} s",
            a.output.display(),
            page.len(),
            r.incidents.len(),
            r.actors.len(),
            r.commitments.len(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}

/// The report's sections that come from the store alone.
fn from_store(store: &Store, max_incidents: usize) -> Result<HtmlReport> {
    let stats = store.detection_stats(10)?;
    let hunts = store.hunts()?;
    let mut by_hash: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut first, mut last) = (None, None);
    for s in store.sources()? {
        let e = by_hash.entry(s.content_hash).or_default();
        e.0 = e.0.max(s.events_read);
        e.1 = e.1.max(s.records_lost);
        first = match (first, s.first_event) {
            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
            (a, b) => a.or(b),
        };
        last = last.max(s.last_event);
    }
    let summary = SummaryView {
        events: by_hash.values().map(|v| v.0).sum(),
        events_scanned: by_hash.values().map(|v| v.0).sum(),
        files: by_hash.len() as u64,
        records_skipped: by_hash.values().map(|v| v.1).sum(),
        detections: stats.detections,
        first_event: first.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        last_event: last.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        ..SummaryView::default()
    };
    let hunts_line = match (hunts.first(), hunts.last()) {
        (Some(h0), Some(h1)) => format!(
            " · {} stored from {} to {} (each source counted once, by content)",
            counted(hunts.len() as u64, "hunt", "hunts"),
            h0.started_at.format("%Y-%m-%d %H:%M"),
            h1.started_at.format("%Y-%m-%d %H:%M")
        ),
        _ => " · no hunt stored".into(),
    };
    let mut hours: BTreeMap<i64, [u64; 5]> = BTreeMap::new();
    for d in &stats.days {
        let Ok(day) = chrono::NaiveDate::parse_from_str(&d.day, "%Y-%m-%d") else {
            continue;
        };
        let hour = day
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp() / 3600);
        hours.entry(hour).or_default()[html::level_rank(&d.level)] += d.detections;
    }
    let per_level = |items: Vec<(String, String, u64)>| -> Vec<LevelTop> {
        let mut m: BTreeMap<usize, LevelTop> = BTreeMap::new();
        for (level, label, n) in items {
            let e = m
                .entry(usize::MAX - html::level_rank(&level))
                .or_insert(LevelTop {
                    level,
                    items: vec![],
                });
            e.items.push((label, n));
        }
        m.into_values().collect()
    };
    let incidents = store.incidents(None)?;
    let kb = ActorKb::builtin();
    let mut views = Vec::new();
    let mut ranked: Vec<&tracehunt_store::IncidentRow> = incidents.iter().collect();
    ranked.sort_by(|a, b| {
        html::level_rank(&b.max_level)
            .cmp(&html::level_rank(&a.max_level))
            .then(b.first_seen.cmp(&a.first_seen))
    });
    for i in ranked.into_iter().take(max_incidents) {
        views.push(incident_view(store, i)?);
    }
    let (severe_rows, severe_total) = store.severe_detections(500)?;
    let severe = html::SevereTable {
        rows: severe_rows
            .into_iter()
            .map(|d| html::DetectionRow {
                time: d
                    .time
                    .map(|t| t.get(..19).unwrap_or(&t).replace('T', " "))
                    .unwrap_or_default(),
                level: d.level,
                host: d.host.unwrap_or_default(),
                rule: d.rule,
            })
            .collect(),
        total: severe_total,
    };
    Ok(HtmlReport {
        title: format!("tracehunt report: {}", store.path().display()),
        severe,
        generated_at: format!(
            "{}{hunts_line}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        ),
        tool_version: format!("tracehunt {}", env!("CARGO_PKG_VERSION")),
        summary,
        levels: {
            let mut v: Vec<HtmlLevel> = stats
                .levels
                .iter()
                .map(|l| HtmlLevel {
                    level: l.level.clone(),
                    detections: l.detections,
                    unique: l.rules,
                })
                .collect();
            v.sort_by_key(|l| std::cmp::Reverse(html::level_rank(&l.level)));
            v
        },
        timeline: html::timeline_from_hours(&hours, stats.untimed),
        top_dates: html::top_dates_from_hours(&hours, 5),
        top_hosts_per_level: per_level(
            stats
                .top_hosts
                .iter()
                .map(|h| (h.level.clone(), h.host.clone(), h.detections))
                .collect(),
        ),
        top_rules: per_level(
            stats
                .top_rules
                .iter()
                .map(|r| {
                    let t = r.title.clone().unwrap_or_else(|| r.rule_id.clone());
                    (r.level.clone(), t, r.detections)
                })
                .collect(),
        ),
        heatmap: heatmap(kb, &incidents),
        heatmap_note: "Incidents (not marked false positive) per ATT&CK technique they showed, \
                       under ATT&CK's tactics for it; darker: more incidents."
            .into(),
        incidents_total: incidents.len() as u64,
        incidents_note: "incidents as stored: detections grouped per host session and across \
                         hosts by shared rare entities"
            .into(),
        incidents: views,
        actors: actors(store)?,
        ..HtmlReport::default()
    })
}

fn incident_view(store: &Store, i: &tracehunt_store::IncidentRow) -> Result<IncidentView> {
    let detail = store.incident(&i.id)?;
    let sponsors = StateSponsors::builtin();
    let (attribution, top_rules) = match &detail {
        Some(d) => (
            d.candidates
                .iter()
                .map(|c| CandidateView {
                    group_id: c.group_id.clone(),
                    name: c.group_name.clone(),
                    state: sponsors.get(&c.group_id).map(|s| s.state_name()),
                    confidence: c.confidence,
                    label: c.confidence_label.clone(),
                    evidence: evidence_lines(&c.evidence),
                })
                .collect(),
            d.rules
                .iter()
                .take(5)
                .map(|r| RuleView {
                    title: r.title.clone().unwrap_or_else(|| r.rule_id.clone()),
                    level: String::new(),
                    count: r.detections,
                })
                .collect(),
        ),
        None => (vec![], vec![]),
    };
    let t = |x: Option<chrono::DateTime<chrono::Utc>>| {
        x.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    };
    Ok(IncidentView {
        id: i.id.clone(),
        hosts: i.hosts.clone(),
        users: i.users.clone(),
        first_seen: t(i.first_seen),
        last_seen: t(i.last_seen),
        detections: i.detections,
        max_level: i.max_level.clone(),
        tactics: i.tactics.clone(),
        techniques: i.techniques.clone(),
        top_rules,
        attribution,
        verdict: if i.false_positive {
            format!("{} (marked false positive)", i.verdict)
        } else {
            i.verdict.clone()
        },
        confident: i.confident,
    })
}

/// The stored evidence of a candidate (its matched features) as sentences.
fn evidence_lines(v: &serde_json::Value) -> Vec<String> {
    let Some(items) = v.as_array() else {
        return vec![];
    };
    items
        .iter()
        .take(8)
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => {
                let text = |k: &str| o.get(k).and_then(|x| x.as_str()).unwrap_or("");
                let via: Vec<String> = o
                    .get("sources")
                    .and_then(|x| x.as_array())
                    .map(|v| {
                        v.iter()
                            .map(|src| {
                                let kind = src.get("kind").and_then(|k| k.as_str()).unwrap_or("");
                                match src.get("software").and_then(|k| k.as_str()) {
                                    Some(sw) => format!("{kind} {sw}"),
                                    None => kind.to_owned(),
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let users = o.get("groups_using").and_then(|x| x.as_u64());
                let mut line = format!("{} {} {}", text("kind"), text("id"), text("name"));
                if !via.is_empty() {
                    line.push_str(&format!(" — via {}", via.join(", ")));
                }
                if let Some(n) = users {
                    line.push_str(&format!("; used by {n} groups"));
                }
                line.trim().to_owned()
            }
            other => other.to_string(),
        })
        .collect()
}

/// Incidents per (tactic, technique), in the order of the report.
fn heatmap(kb: &ActorKb, incidents: &[tracehunt_store::IncidentRow]) -> Vec<TacticColumn> {
    let mut cells: BTreeMap<(String, String), u64> = BTreeMap::new();
    for i in incidents.iter().filter(|i| !i.false_positive) {
        let techs: BTreeSet<&String> = i.techniques.iter().collect();
        for t in techs {
            let tactics = kb
                .technique(t)
                .map(|x| x.tactics.clone())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| vec!["unknown".into()]);
            for tac in tactics {
                *cells.entry((tac, t.clone())).or_default() += 1;
            }
        }
    }
    let mut cols: BTreeMap<String, Vec<HeatCell>> = BTreeMap::new();
    for ((tac, t), n) in cells {
        cols.entry(tac).or_default().push(HeatCell {
            name: kb.technique(&t).map(|x| x.name.clone()).unwrap_or_default(),
            id: t,
            count: n,
            rules: 0,
        });
    }
    let mut out: Vec<TacticColumn> = cols
        .into_iter()
        .map(|(tactic, mut techniques)| {
            techniques.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
            TacticColumn { tactic, techniques }
        })
        .collect();
    // The hunt report's column order (ATT&CK v19's stealth and defense-impairment included).
    out.sort_by(|a, b| {
        tracehunt_pipeline::html_out::tactic_rank(&a.tactic)
            .cmp(&tracehunt_pipeline::html_out::tactic_rank(&b.tactic))
            .then_with(|| a.tactic.cmp(&b.tactic))
    });
    out
}

fn actors(store: &Store) -> Result<Vec<ActorTimeline>> {
    let sponsors = StateSponsors::builtin();
    let t = |x: Option<chrono::DateTime<chrono::Utc>>| {
        x.map_or(String::new(), |t| t.format("%Y-%m-%d").to_string())
    };
    Ok(store
        .actors(1, 0)?
        .into_iter()
        .map(|r| ActorTimeline {
            state: r
                .state
                .clone()
                .or_else(|| sponsors.get(&r.group_id).map(|s| s.state_name())),
            group_id: r.group_id,
            name: r.group_name,
            first_seen: t(r.first_seen),
            last_seen: t(r.last_seen),
            incidents: r.incidents,
            per_month: r.months.into_iter().collect(),
        })
        .collect())
}

/// One chart per commitment (not per competing event) that concerns `state`.
fn commitment_charts(a: &ReportArgs, state: &str) -> Result<(Vec<CommitmentChart>, Vec<String>)> {
    let args = CommitmentsArgs::for_report(
        a.store.clone(),
        a.commitments.clone(),
        a.counts.clone(),
        state,
        a.min_confidence,
    );
    let rep = crate::commitments_cmd::build(&args)?;
    Ok((charts_of(&rep), unestimable(&rep)))
}

/// The dates of `rep` that could not be analysed, one sentence each (they get no chart).
fn unestimable(rep: &CommitmentsReport) -> Vec<String> {
    rep.dates
        .iter()
        .filter(|d| d.commitment.kind == Kind::Commitment && d.analysis.is_none())
        .map(|d| format!("no commitment chart for {}: {}", rep.state, d.verdict))
        .collect()
}

/// The charts of a commitments report: counts per period, every date as a line (events
/// dashed), the fitted segments of that date's analysis and its counterfactual, the change
/// points, the verdict and the assumptions.
pub fn charts_of(rep: &CommitmentsReport) -> Vec<CommitmentChart> {
    let s: &Series = &rep.series;
    let labels: Vec<String> = (0..s.len()).map(|i| s.label(i)).collect();
    let covered = |i: usize| s.exposure[i] > 0.0;
    let counts: Vec<Option<f64>> = (0..s.len())
        .map(|i| covered(i).then(|| s.counts[i]))
        .collect();
    let rates: Vec<Option<f64>> = (0..s.len())
        .map(|i| covered(i).then(|| s.counts[i] / s.exposure[i]))
        .collect();
    let position = |d: chrono::NaiveDate| {
        let (t0, transition) = s.index_of(d);
        if !transition {
            return t0 as f64;
        }
        let start = s.starts[t0 - 1];
        let next = s.period.next(start);
        let frac = (d - start).num_days() as f64 / (next - start).num_days().max(1) as f64;
        (t0 - 1) as f64 + frac
    };
    let first = s.starts.first().copied();
    let end = s.starts.last().map(|l| s.period.next(*l));
    let dates: Vec<ChartDate> = rep
        .dates
        .iter()
        .filter(|d| {
            // A date outside the series would be pinned to an edge.
            first.is_some_and(|f| d.commitment.effective >= f)
                && end.is_some_and(|e| d.commitment.effective < e)
        })
        .map(|d| ChartDate {
            position: position(d.commitment.effective),
            label: format!("{} {}", d.commitment.effective, d.commitment.id),
            competing: d.commitment.kind == Kind::Event,
        })
        .collect();
    let change_points: Vec<(usize, String)> = rep
        .change_points
        .points
        .iter()
        .map(|p| (p.index, format!("change point {}", p.label)))
        .collect();
    rep.dates
        .iter()
        .filter(|d| d.commitment.kind == Kind::Commitment && d.analysis.is_some())
        .map(|d| {
            let mut fitted = Vec::new();
            let mut assumptions = rep.assumptions.clone();
            if let Some(an) = &d.analysis {
                // Fitted rates are per exposure unit: back to counts for the chart.
                let to_counts = |v: &[(usize, f64)]| -> Vec<(usize, f64)> {
                    v.iter().map(|&(i, r)| (i, r * s.exposure[i])).collect()
                };
                let before: Vec<(usize, f64)> = an
                    .fitted
                    .iter()
                    .copied()
                    .filter(|(i, _)| *i < an.t0)
                    .collect();
                let after: Vec<(usize, f64)> = an
                    .fitted
                    .iter()
                    .copied()
                    .filter(|(i, _)| *i >= an.t0)
                    .collect();
                fitted.push(FittedSegment {
                    label: "fitted before".into(),
                    points: to_counts(&before),
                    dashed: false,
                });
                fitted.push(FittedSegment {
                    label: "fitted after".into(),
                    points: to_counts(&after),
                    dashed: false,
                });
                fitted.push(FittedSegment {
                    label: "pre-trend continued (counterfactual)".into(),
                    points: to_counts(&an.counterfactual),
                    dashed: true,
                });
                assumptions.extend(an.assumptions.iter().cloned());
            }
            CommitmentChart {
                title: format!(
                    "{} ({}): {} — {}",
                    rep.state_name, rep.state, d.commitment.name, d.commitment.effective
                ),
                period_labels: labels.clone(),
                counts: counts.clone(),
                exposure: s.exposure.clone(),
                rates: rates.clone(),
                dates: dates.clone(),
                fitted,
                change_points: change_points.clone(),
                verdict: d.verdict.clone(),
                assumptions,
            }
        })
        .collect()
}
