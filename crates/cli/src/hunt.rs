//! `tracehunt hunt`: read logs, scan with the ruleset, report, attribute.

use crate::rules::{self, RuleOpts};
use crate::Format;
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{Attribution, Attributor, EvidenceSet, Observation, TagObservation};
use tracehunt_engine::{Ruleset, Scanner};
use tracehunt_report::{Detection, Skipped, Summary};

/// Sigma rule levels, lowest first.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MinLevel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Args, Debug)]
pub struct HuntArgs {
    /// Log files or directories (walked recursively). Formats are detected
    /// by content: EVTX, JSON lines, JSON arrays (evtx-crate JSON,
    /// Winlogbeat/ECS, Mordor/nxlog flat).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Sigma rule file or directory (repeatable). Default: the built-in pack.
    #[arg(long, short = 'r', value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// ATT&CK Enterprise STIX bundle to attribute with (default: the
    /// built-in ATT&CK v18.1 snapshot).
    #[arg(long, value_name = "FILE")]
    pub attack: Option<PathBuf>,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Write the output here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only report detections of rules at or above this level.
    #[arg(long, value_enum, default_value = "informational")]
    pub min_level: MinLevel,
    /// Only scan events at or after this time (RFC 3339, `YYYY-MM-DD` or
    /// `YYYY-MM-DD HH:MM:SS`; UTC unless an offset is given).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Only scan events at or before this time (same forms as --from).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Worker threads, 1–1024 (default: all cores). Output is the same
    /// whatever the count.
    #[arg(long, short = 't', value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: Option<u16>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Read every event but evaluate no rule: measures the reading ceiling
    /// (used by `bench/run.sh`).
    #[arg(long)]
    pub parse_only: bool,
    /// Table format: at most this many detection rows (the summary always shows).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_rows: usize,
    /// IOC feed file or directory of feeds (repeat the flag for several:
    /// `--ioc a.json --ioc feeds/`): MISP event JSON, STIX 2.1 bundle with
    /// indicators, or `type,value,actor` CSV (detected by content). In a
    /// directory, a file that is not a feed is skipped with a warning. Hits are
    /// reported like detections and are the strongest attribution evidence.
    #[arg(long, value_name = "FILE")]
    pub ioc: Vec<PathBuf>,
    /// With `--format navigator`: overlay this ATT&CK group's techniques
    /// (id like G0009, or a name/alias).
    #[arg(long, value_name = "GROUP")]
    pub overlay: Option<String>,
    #[command(flatten)]
    pub rule_opts: RuleOpts,
}

/// Prints rule-loading errors (not warnings) to stderr: the first 20, then a count.
fn report_rule_errors(diags: &[tracehunt_sigma::Diagnostic]) {
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == tracehunt_sigma::Severity::Error)
        .collect();
    for d in errors.iter().take(20) {
        eprintln!("tracehunt: {d}");
    }
    if errors.len() > 20 {
        eprintln!(
            "tracehunt: … {} more rule errors (`tracehunt rules check` lists them all)",
            errors.len() - 20
        );
    }
}

/// Parses `--from`/`--to` values.
pub fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2024-01-31T23:59:59Z), `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS` (UTC)"
    ))
}

/// What one input file produced.
struct FileResult {
    events: u64,
    scanned: u64,
    detections: Vec<Detection>,
    /// Whole-file failure.
    skipped: Option<String>,
    record_errors: u64,
    record_reasons: BTreeMap<String, u64>,
    first_record_error: Option<String>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    ioc_hits: Vec<crate::ioc_cmd::IocDetection>,
}

struct ScanCfg {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    min_rank: u8,
    iocs: Option<Arc<tracehunt_ioc::IocSet>>,
    /// Rules whose hits feed a correlation: kept whatever their level
    /// (`--min-level` applies after correlation).
    correlated: Vec<bool>,
}

impl FileResult {
    fn new() -> Self {
        FileResult {
            events: 0,
            scanned: 0,
            detections: Vec::new(),
            skipped: None,
            record_errors: 0,
            record_reasons: BTreeMap::new(),
            first_record_error: None,
            first: None,
            last: None,
            ioc_hits: Vec::new(),
        }
    }

    /// Appends a later unit of the same file (units arrive in file order).
    fn absorb(&mut self, o: FileResult) {
        self.events += o.events;
        self.scanned += o.scanned;
        self.detections.extend(o.detections);
        if self.skipped.is_none() {
            self.skipped = o.skipped;
        }
        self.record_errors += o.record_errors;
        for (k, n) in o.record_reasons {
            *self.record_reasons.entry(k).or_default() += n;
        }
        if self.first_record_error.is_none() {
            self.first_record_error = o.first_record_error;
        }
        self.first = match (self.first, o.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, o.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.ioc_hits.extend(o.ioc_hits);
    }
}

/// A unit of parallel work: a whole file read as a stream (JSON, or a file
/// the EVTX chunk planner did not take), or one chunk of an EVTX file — so
/// one big EVTX file spreads over all cores too.
enum Unit {
    Stream(usize),
    Chunk(usize, Arc<tracehunt_readers::EvtxChunks>, usize),
}

impl Unit {
    fn file(&self) -> usize {
        match self {
            Unit::Stream(f) | Unit::Chunk(f, _, _) => *f,
        }
    }
}

/// Splits the input files into units, in file order then chunk order.
///
/// EVTX files are split into chunks only when there are too few files to
/// keep every thread busy (fewer than 4 per thread): a chunk plan holds the
/// file open until the scan ends, so thousands of files are read one unit
/// per file instead (bounded open files).
fn plan_units(files: &[PathBuf], threads: usize) -> Vec<Unit> {
    if files.len() >= 4 * threads.max(1) {
        return (0..files.len()).map(Unit::Stream).collect();
    }
    let mut units = Vec::new();
    for (i, p) in files.iter().enumerate() {
        match tracehunt_readers::open_evtx_chunks(p) {
            Ok(c) if !c.is_empty() => {
                let c = Arc::new(c);
                units.extend((0..c.len()).map(|k| Unit::Chunk(i, c.clone(), k)));
            }
            _ => units.push(Unit::Stream(i)),
        }
    }
    units
}

fn scan_unit(sc: &mut Scanner<'_>, files: &[PathBuf], unit: &Unit, cfg: &ScanCfg) -> FileResult {
    let mut r = FileResult::new();
    let path = &files[unit.file()];
    let source: Arc<str> = Arc::from(path.display().to_string());
    match unit {
        Unit::Chunk(_, chunks, k) => scan_records(sc, chunks.chunk(*k), &source, cfg, &mut r),
        Unit::Stream(_) => match tracehunt_readers::open(path) {
            Ok(records) => scan_records(sc, records, &source, cfg, &mut r),
            Err(e) => {
                // The error text starts with the path; the summary shows it apart.
                let text = e.to_string();
                let prefix = format!("{}: ", path.display());
                r.skipped = Some(text.strip_prefix(&prefix).unwrap_or(&text).to_owned());
            }
        },
    }
    r
}

fn scan_records(
    sc: &mut Scanner<'_>,
    records: impl IntoIterator<Item = Result<tracehunt_event::Event, tracehunt_readers::RecordError>>,
    source: &Arc<str>,
    cfg: &ScanCfg,
    r: &mut FileResult,
) {
    let rs = sc.ruleset();
    let mut hits = Vec::new();
    for rec in records {
        let ev = match rec {
            Ok(ev) => ev,
            Err(e) => {
                r.record_errors += 1;
                *r.record_reasons.entry(format!("{:?}", e.kind)).or_default() += 1;
                if r.first_record_error.is_none() {
                    r.first_record_error = Some(format!("{}: {}", e.at, e.reason));
                }
                continue;
            }
        };
        r.events += 1;
        let ts = ev.meta.timestamp;
        if let Some(t) = ts {
            r.first = Some(r.first.map_or(t, |f| f.min(t)));
            r.last = Some(r.last.map_or(t, |l| l.max(t)));
        }
        let in_window = match ts {
            Some(t) => cfg.from.is_none_or(|f| t >= f) && cfg.to.is_none_or(|to| t <= to),
            None => cfg.from.is_none() && cfg.to.is_none(),
        };
        if !in_window {
            continue;
        }
        r.scanned += 1;
        hits.clear();
        sc.scan(&ev, &mut hits);
        if let Some(set) = &cfg.iocs {
            crate::ioc_cmd::scan_event(set, &ev, source, &mut r.ioc_hits);
        }
        let mut fields: Option<Arc<Vec<(String, serde_json::Value)>>> = None;
        for &rule in &hits {
            if rs.rule(rule).level_rank < cfg.min_rank && !cfg.correlated[rule] {
                continue;
            }
            // One copy of the event's fields, shared by all its detections.
            let fields = fields
                .get_or_insert_with(|| {
                    Arc::new(
                        ev.fields()
                            .map(|(k, v)| {
                                (k.to_owned(), serde_json::to_value(v).unwrap_or_default())
                            })
                            .collect(),
                    )
                })
                .clone();
            r.detections.push(Detection {
                rule,
                timestamp: ts,
                computer: ev.meta.computer.clone(),
                channel: ev.meta.channel.clone(),
                event_id: ev.meta.event_id,
                record_id: ev.meta.record_id,
                source: source.clone(),
                fields,
            });
        }
    }
}

/// Builds the attribution evidence from what fired: per technique the rules
/// and number of detections; software and group tags likewise.
pub fn evidence(rs: &Ruleset, dets: &[Detection]) -> EvidenceSet {
    let mut tech: BTreeMap<String, (Vec<usize>, u64)> = BTreeMap::new();
    let mut soft: BTreeMap<String, (Vec<usize>, u64)> = BTreeMap::new();
    let mut grp: BTreeMap<String, (Vec<usize>, u64)> = BTreeMap::new();
    for d in dets {
        let m = rs.rule(d.rule);
        for (ids, map) in [
            (&m.techniques, &mut tech),
            (&m.software, &mut soft),
            (&m.groups, &mut grp),
        ] {
            for t in ids {
                let e = map.entry(t.clone()).or_default();
                if !e.0.contains(&d.rule) {
                    e.0.push(d.rule);
                }
                e.1 += 1;
            }
        }
    }
    let names = |rules: &[usize]| -> (Vec<String>, Vec<String>) {
        (
            rules.iter().map(|&r| rs.rule(r).id.clone()).collect(),
            rules.iter().map(|&r| rs.rule(r).title.clone()).collect(),
        )
    };
    let tags = |m: BTreeMap<String, (Vec<usize>, u64)>| -> Vec<TagObservation> {
        m.into_iter()
            .map(|(id, (rules, events))| {
                let (rule_ids, rule_titles) = names(&rules);
                TagObservation {
                    id,
                    rule_ids,
                    rule_titles,
                    events,
                }
            })
            .collect()
    };
    EvidenceSet {
        techniques: tech
            .into_iter()
            .map(|(t, (rules, events))| {
                let (rule_ids, rule_titles) = names(&rules);
                Observation {
                    technique: t,
                    rule_ids,
                    rule_titles,
                    events,
                }
            })
            .collect(),
        software: tags(soft),
        groups: tags(grp),
        ..EvidenceSet::default()
    }
}

/// Loads `--attack FILE` or the built-in snapshot.
pub fn load_kb(path: &Option<PathBuf>) -> Result<std::borrow::Cow<'static, ActorKb>> {
    match path {
        None => Ok(std::borrow::Cow::Borrowed(ActorKb::builtin())),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let kb =
                if text.contains("\"type\": \"bundle\"") || text.contains("\"type\":\"bundle\"") {
                    ActorKb::from_stix_json(&text)
                } else {
                    ActorKb::from_snapshot_json(&text)
                }
                .with_context(|| {
                    format!(
                        "{}: not an ATT&CK STIX bundle or tracehunt snapshot",
                        p.display()
                    )
                })?;
            Ok(std::borrow::Cow::Owned(kb))
        }
    }
}

pub fn run(a: HuntArgs) -> Result<u8> {
    let start = Instant::now();
    if let (Some(f), Some(t)) = (a.from, a.to) {
        if f > t {
            anyhow::bail!("--from ({f}) is after --to ({t}): the time window is empty");
        }
    }
    let loaded = if a.parse_only {
        rules::Loaded::empty()
    } else {
        rules::load(&a.rules, &a.rule_opts)?
    };
    let kb = load_kb(&a.attack)?;
    let rs = &loaded.ruleset;
    let stderr_tty = std::io::stderr().is_terminal();
    if !a.quiet {
        // Which rules did not load and why (Chainsaw #135): on stderr, so
        // machine formats on stdout stay clean.
        report_rule_errors(&loaded.diagnostics);
        if stderr_tty {
            eprintln!(
                "tracehunt: {} rules loaded ({} failed, {} inactive) from {} files",
                rs.active_len(),
                loaded.failed,
                rs.len() - rs.active_len(),
                loaded.files
            );
        }
    }
    if !a.parse_only && rs.active_len() == 0 {
        anyhow::bail!(
            "no usable rule: {} loaded, {} failed, {} inactive (logsource not mapped); see `tracehunt rules check`",
            rs.len(),
            loaded.failed,
            rs.len() - rs.active_len()
        );
    }

    let feeds = crate::ioc_cmd::load(&a.ioc, a.quiet)?;
    let (files, walk_errors) = tracehunt_readers::walk(&a.paths);
    let cfg = ScanCfg {
        from: a.from,
        to: a.to,
        min_rank: a.min_level as u8,
        iocs: feeds.as_ref().map(|f| f.set.clone()),
        correlated: (0..rs.len())
            .map(|r| loaded.correlations.is_referenced(r))
            .collect(),
    };
    let threads = usize::from(a.threads.unwrap_or(0));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    let units = plan_units(&files, pool.current_num_threads());
    let pb = if stderr_tty && !a.quiet && units.len() > 1 {
        let pb = ProgressBar::new(units.len() as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} chunks/files {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let unit_results: Vec<FileResult> = pool.install(|| {
        units
            .par_iter()
            .map_init(
                || Scanner::new(rs),
                |sc, unit| {
                    let r = scan_unit(sc, &files, unit, &cfg);
                    pb.inc(1);
                    r
                },
            )
            .collect()
    });
    // Units back into files, in file order then chunk order.
    let mut results: Vec<FileResult> = files.iter().map(|_| FileResult::new()).collect();
    for (unit, r) in units.iter().zip(unit_results) {
        results[unit.file()].absorb(r);
    }
    drop(units);
    pb.finish_and_clear();

    // Merge in file order, then a stable sort by time: deterministic
    // whatever the thread count.
    let mut summary = Summary {
        rules_loaded: rs.active_len() as u64,
        rules_inactive: (rs.len() - rs.active_len()) as u64,
        rules_failed: loaded.failed as u64,
        ..Summary::default()
    };
    for e in &walk_errors {
        summary.files_skipped.push(Skipped {
            path: e
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: e.reason.clone(),
            records: 0,
        });
    }
    let mut dets = Vec::new();
    let mut ioc_dets = Vec::new();
    for (path, r) in files.iter().zip(results) {
        if let Some(reason) = r.skipped {
            summary.files_skipped.push(Skipped {
                path: path.display().to_string(),
                reason,
                records: 0,
            });
            continue;
        }
        summary.files += 1;
        summary.events += r.events;
        summary.events_scanned += r.scanned;
        summary.records_skipped += r.record_errors;
        for (k, n) in r.record_reasons {
            *summary.records_skipped_by_reason.entry(k).or_default() += n;
        }
        if r.record_errors > 0 {
            summary.files_with_record_errors.push(Skipped {
                path: path.display().to_string(),
                reason: r.first_record_error.unwrap_or_default(),
                records: r.record_errors,
            });
        }
        if let Some(f) = r.first {
            summary.first_event = Some(summary.first_event.map_or(f, |x| x.min(f)));
        }
        if let Some(l) = r.last {
            summary.last_event = Some(summary.last_event.map_or(l, |x| x.max(l)));
        }
        dets.extend(r.detections);
        ioc_dets.extend(r.ioc_hits);
    }
    dets.sort_by(|x, y| match (x.timestamp, y.timestamp) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    // Sigma correlations over the time-sorted hits; then `--min-level`.
    let (dets, corr) = crate::correlation::apply(&loaded, dets, cfg.min_rank);
    if corr.dropped > 0 && stderr_tty && !a.quiet {
        eprintln!(
            "tracehunt: correlation memory bound reached: {} events or window entries dropped",
            corr.dropped
        );
    }
    summary.count_detections(rs, &dets);

    crate::ioc_cmd::sort_by_time(&mut ioc_dets);
    let mut observed = evidence(rs, &dets);
    observed.iocs = crate::ioc_cmd::observations(&ioc_dets);
    let attribution = Attributor::new(&kb).attribute(&observed);
    summary.elapsed_ms = start.elapsed().as_millis() as u64;

    let format = a
        .format
        .unwrap_or(if a.output.is_none() && std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Jsonl
        });
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match format {
        Format::Table => {
            tracehunt_report::write_table(&mut out, rs, &dets, &summary, a.max_rows)?;
            if let Some(f) = &feeds {
                crate::ioc_cmd::write_table(&mut out, f, &ioc_dets, a.max_rows)?;
            }
            write_attribution_table(&mut out, &attribution, 5)?;
        }
        Format::Jsonl => {
            tracehunt_report::write_jsonl(&mut out, rs, &dets)?;
            crate::ioc_cmd::write_jsonl(&mut out, &kb, &ioc_dets)?;
        }
        Format::Stix => {
            let input = crate::stix_cmd::input(&kb, rs, &dets, &ioc_dets, &attribution, &summary);
            tracehunt_report::write_stix_bundle(&mut out, &input)?;
        }
        Format::Navigator => {
            let layer = crate::navigator_cmd::layer(
                &kb,
                rs,
                &dets,
                a.overlay.as_deref(),
                "tracehunt hunt",
            )?;
            serde_json::to_writer_pretty(&mut out, &layer)?;
            writeln!(out)?;
        }
        Format::Csv => tracehunt_report::write_csv(&mut out, rs, &dets)?,
        Format::Json => {
            // Streamed: one detection at a time, never the whole document
            // as a JSON tree in memory.
            out.write_all(b"{\n\"summary\": ")?;
            serde_json::to_writer_pretty(&mut out, &summary)?;
            out.write_all(b",\n\"detections\": [")?;
            for (i, d) in dets.iter().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut out, &tracehunt_report::detection_json(rs, d))?;
            }
            out.write_all(b"\n],\n\"attribution\": ")?;
            serde_json::to_writer_pretty(&mut out, &attribution_json(&attribution, 10))?;
            out.write_all(b",\n\"attribution_verdict\": ")?;
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({
                    "confident": attribution.confident,
                    "reason": attribution.reason,
                    "unresolved_techniques": attribution.unresolved,
                }),
            )?;
            if let Some(f) = &feeds {
                out.write_all(b",\n\"ioc\": ")?;
                serde_json::to_writer_pretty(
                    &mut out,
                    &crate::ioc_cmd::summary_json(f, &ioc_dets),
                )?;
                out.write_all(b",\n\"ioc_hits\": ")?;
                let hits: Vec<serde_json::Value> = ioc_dets
                    .iter()
                    .map(|d| crate::ioc_cmd::hit_json(&kb, d))
                    .collect();
                serde_json::to_writer_pretty(&mut out, &hits)?;
            }
            out.write_all(b"\n}\n")?;
        }
    }
    out.flush()?;
    drop(out);
    // Machine formats still get the summary and every skipped file on
    // stderr (stdout carries only the chosen format).
    if format != Format::Table && !a.quiet {
        for f in &summary.files_skipped {
            eprintln!("tracehunt: skipped {}: {}", f.path, f.reason);
        }
        for f in &summary.files_with_record_errors {
            eprintln!(
                "tracehunt: {} record(s) lost in {} (first: {})",
                f.records, f.path, f.reason
            );
        }
        eprintln!(
            "tracehunt: {} events in {} files ({} files skipped, {} records skipped), {} detections, {:.2} s",
            summary.events,
            summary.files,
            summary.files_skipped.len(),
            summary.records_skipped,
            summary.detections,
            summary.elapsed_ms as f64 / 1000.0
        );
    }
    if summary.files == 0 {
        eprintln!("tracehunt: nothing could be read from the given paths");
        for f in &summary.files_skipped {
            eprintln!("  - {}: {}", f.path, f.reason);
        }
        return Ok(crate::EXIT_NOTHING_READ);
    }
    Ok(0)
}

/// The `attribution` array of `--format json`: candidates with their evidence.
pub fn attribution_json(a: &Attribution, top: usize) -> serde_json::Value {
    serde_json::Value::Array(
        a.candidates
            .iter()
            .take(top)
            .map(|c| {
                serde_json::json!({
                    "rank": c.rank,
                    "id": c.id,
                    "name": c.name,
                    "aliases": c.aliases,
                    "score": c.score,
                    "probability": c.probability,
                    "confidence": c.confidence,
                    "confidence_label": c.confidence_label,
                    "coverage": c.coverage,
                    "matched_count": c.matched_count,
                    "distinctive_matches": c.distinctive_matches,
                    "evidence": c.matched,
                })
            })
            .collect(),
    )
}

/// Human-readable attribution: verdict and top candidates with their evidence.
pub fn write_attribution_table<W: Write>(
    w: &mut W,
    a: &Attribution,
    top: usize,
) -> std::io::Result<()> {
    writeln!(w)?;
    writeln!(
        w,
        "── Attribution (ATT&CK intrusion sets) ─────────────────"
    )?;
    writeln!(w, "Verdict: {}", a.reason)?;
    for c in a.candidates.iter().take(top) {
        let aliases: Vec<&str> = c
            .aliases
            .iter()
            .filter(|x| **x != c.name)
            .map(String::as_str)
            .take(4)
            .collect();
        writeln!(
            w,
            "  {}. {} {}{}  score {:.3}  confidence {} ({})  ({} matched techniques/software, {} distinctive)",
            c.rank,
            c.id,
            c.name,
            if aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", aliases.join(", "))
            },
            c.score,
            c.confidence,
            c.confidence_label,
            c.matched_count,
            c.distinctive_matches
        )?;
        let mut ev: Vec<_> = c.matched.iter().collect();
        ev.sort_by(|x, y| y.weight.total_cmp(&x.weight));
        for e in ev.iter().take(4) {
            let rules = e.rule_titles.first().map(String::as_str).unwrap_or("-");
            writeln!(
                w,
                "       {} {} (used by {} groups) ← {} [{} events]",
                e.id, e.name, e.groups_using, rules, e.events
            )?;
        }
    }
    Ok(())
}
