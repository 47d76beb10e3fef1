//! `tracehunt hunt`: read logs, scan with the ruleset, report, attribute.

use crate::rules::{self, RuleOpts};
use crate::spill::Spill;
use crate::Format;
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{
    Attribution, Attributor, EvidenceSet, Observation, TagObservation, Window,
};
use tracehunt_engine::{Ruleset, Scanner};
use tracehunt_report::{counted, Detection, DetectionRef, Skipped, Summary, TimeWindow};

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
    /// Only scan events at or before this time (same forms as --from; a bare
    /// `YYYY-MM-DD` means the end of that day, so `--from D --to D` is day D).
    #[arg(long, value_name = "TIME", value_parser = parse_time_end)]
    pub to: Option<DateTime<Utc>>,
    /// Worker threads, 1–1024 (default: all cores). Output is the same
    /// whatever the count.
    #[arg(long, short = 't', value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub threads: Option<u16>,
    /// No progress bar, summary or warnings on stderr: only errors, and a
    /// one-line count of the rules that failed to load (if any).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// More detail on stderr: every rule error (not just the first 20),
    /// every rule with an `expand` placeholder without value (TH011), every
    /// IOC feed file's unusable entries and warnings.
    #[arg(long, short = 'v', conflicts_with = "quiet")]
    pub verbose: bool,
    /// Read every event but evaluate no rule: measures the reading ceiling
    /// (used by `bench/run.sh`).
    #[arg(long)]
    pub parse_only: bool,
    /// Table format: at most this many detection rows (the summary always shows).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_rows: usize,
    /// IOC feed file or directory of feeds (repeat the flag for several:
    /// `--ioc a.json --ioc feeds/`): MISP event JSON, STIX 2.1 bundle with
    /// indicators, `type,value,actor` CSV, or a plain list of indicators one
    /// a line (IP, CIDR, domain, URL or hash; type inferred) — detected by
    /// content. A file that is none of these is an error; in a directory
    /// (its .json/.csv/.txt files) it is skipped with a warning. Hits are
    /// reported like detections and are the strongest attribution evidence.
    #[arg(long, value_name = "FILE")]
    pub ioc: Vec<PathBuf>,
    /// With `--format navigator` (or `tracehunt navigator`): overlay this
    /// ATT&CK group's techniques (id like G0009, or a name/alias). An error
    /// with any other format.
    #[arg(long, value_name = "GROUP")]
    pub overlay: Option<String>,
    #[command(flatten)]
    pub rule_opts: RuleOpts,
}

/// Prints rule-loading errors (not warnings) to stderr: the first `max`, then a count.
fn report_rule_errors(diags: &[tracehunt_sigma::Diagnostic], max: usize) {
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.severity == tracehunt_sigma::Severity::Error)
        .collect();
    for d in errors.iter().take(max) {
        eprintln!("tracehunt: {d}");
    }
    if errors.len() > max {
        eprintln!(
            "tracehunt: … {} more (-v or `tracehunt rules check` lists them all)",
            counted((errors.len() - max) as u64, "rule error", "rule errors")
        );
    }
}

/// `one` when `n` is 1, else `many` ("1 file", "2 files").
pub fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
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

/// Parses `--to`: as [`parse_time`], except that a bare date `YYYY-MM-DD`
/// is the last instant of that day (23:59:59.999999999 UTC) — `--from
/// 2021-04-26 --to 2021-04-26` selected nothing when it meant midnight
/// (fresh-user finding).
pub fn parse_time_end(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        let end = d
            .and_hms_nano_opt(23, 59, 59, 999_999_999)
            .expect("a valid time of day");
        return Ok(end.and_utc());
    }
    parse_time(s)
}

/// Events with no time sort last: their key is past every real time.
const NO_TIME: (i64, u32) = (i64::MAX, u32::MAX);
/// Host id of a detection without `System/Computer`.
const NO_HOST: u32 = u32::MAX;
/// A worker appends its rendered detections to the spill in pieces of about
/// this size (or one piece per unit).
const PIECE: usize = 256 << 10;

/// Where a detection's output bytes are.
#[derive(Clone, Copy, Debug)]
enum Loc {
    /// Rendered into the spill at this range (relative to the unit's
    /// pending piece until the piece is appended).
    Spill { off: u64, len: u32 },
    /// A full [`Detection`] kept in memory (rules feeding a correlation,
    /// correlation hits), rendered when written.
    Mem(u32),
}

/// The index entry kept for every detection of a hunt (40 bytes): its time
/// (sort key), rule, host and where its bytes are. Everything the summary,
/// the attribution and the aggregate formats need; the event itself left
/// the worker as rendered bytes. Sorted externally ([`crate::index`]).
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Event time: seconds since the Unix epoch ([`NO_TIME`] if none).
    pub(crate) secs: i64,
    /// Event time: nanoseconds in the second.
    pub(crate) nanos: u32,
    /// Rule index in the ruleset.
    pub(crate) rule: u32,
    /// Index in the run's host table, or [`NO_HOST`].
    pub(crate) host: u32,
    /// Work unit (file, then chunk order) and place of the detection in
    /// it: the tie break that keeps equal times in input order (unique, so
    /// an unstable sort needs no scratch memory and gives one order).
    /// `u32::MAX` for correlation hits.
    pub(crate) unit: u32,
    /// Place of the detection in its unit.
    pub(crate) seq: u32,
    /// [`Loc`], flattened to keep the entry at 40 bytes: a spill range, or
    /// `len == MEM` and `off` the index of a detection kept whole.
    pub(crate) off: u64,
    /// See `off`.
    pub(crate) len: u32,
}

/// `Entry::len` of a detection kept whole.
const MEM: u32 = u32::MAX;

impl Entry {
    fn new(
        time: Option<DateTime<Utc>>,
        rule: usize,
        host: u32,
        (unit, seq): (u32, u32),
        loc: Loc,
    ) -> Self {
        let (secs, nanos) = time_key(time);
        let mut e = Entry {
            secs,
            nanos,
            rule: rule as u32,
            host,
            unit,
            seq,
            off: 0,
            len: 0,
        };
        e.set_loc(loc);
        e
    }

    fn key(&self) -> (i64, u32) {
        (self.secs, self.nanos)
    }

    /// Output order: time (none last), then input order.
    pub(crate) fn order(&self) -> (i64, u32, u32, u32) {
        (self.secs, self.nanos, self.unit, self.seq)
    }

    fn loc(&self) -> Loc {
        if self.len == MEM {
            Loc::Mem(self.off as u32)
        } else {
            Loc::Spill {
                off: self.off,
                len: self.len,
            }
        }
    }

    fn set_loc(&mut self, loc: Loc) {
        (self.off, self.len) = match loc {
            Loc::Spill { off, len } => {
                debug_assert!(len != MEM, "a rendered detection of 4 GiB");
                (off, len)
            }
            Loc::Mem(i) => (u64::from(i), MEM),
        };
    }

    fn timestamp(&self) -> Option<DateTime<Utc>> {
        if self.key() == NO_TIME {
            None
        } else {
            DateTime::from_timestamp(self.secs, self.nanos)
        }
    }

    fn view<'a>(&self, hosts: &'a [String]) -> DetectionRef<'a> {
        DetectionRef {
            rule: self.rule as usize,
            timestamp: self.timestamp(),
            computer: hosts.get(self.host as usize).map(String::as_str),
        }
    }
}

/// The sort key of an event time: chronological order, `None` last.
fn time_key(t: Option<DateTime<Utc>>) -> (i64, u32) {
    t.map_or(NO_TIME, |t| (t.timestamp(), t.timestamp_subsec_nanos()))
}

/// What the output format needs rendered per detection (known before the
/// scan, so workers render in parallel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Render {
    /// `detection_json` and a newline.
    Jsonl,
    /// `detection_json` (the writer adds the separators).
    Json,
    /// The CSV timeline row.
    Csv,
    /// The text table row.
    Table,
    /// Nothing: STIX and Navigator aggregate from the index.
    Nothing,
}

impl Render {
    fn of(f: Format) -> Self {
        match f {
            Format::Jsonl => Render::Jsonl,
            Format::Json => Render::Json,
            Format::Csv => Render::Csv,
            Format::Table => Render::Table,
            Format::Stix | Format::Navigator => Render::Nothing,
        }
    }
}

/// Appends `d`'s output bytes for `mode` to `out`.
fn render(mode: Render, rs: &Ruleset, d: &Detection, out: &mut Vec<u8>) -> std::io::Result<()> {
    match mode {
        Render::Jsonl => {
            tracehunt_report::write_detection_json(out, rs, d)?;
            out.push(b'\n');
        }
        Render::Json => tracehunt_report::write_detection_json(out, rs, d)?,
        Render::Csv => tracehunt_report::csv_row(rs, d, out)?,
        Render::Table => tracehunt_report::write_table_row(out, rs, d)?,
        Render::Nothing => {}
    }
    Ok(())
}

/// The run's host table, shared by the workers (a worker asks it only for
/// hosts it has not seen yet): host ids are global from the start, so an
/// index entry needs no rewriting once it is written to a sorted run.
#[derive(Default)]
struct Hosts {
    names: Vec<String>,
    ids: std::collections::HashMap<String, u32>,
}

impl Hosts {
    /// The id of host `h`, added if new.
    fn id(&mut self, h: &str) -> u32 {
        if let Some(&i) = self.ids.get(h) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(h.to_owned());
        self.ids.insert(h.to_owned(), i);
        i
    }
}

/// What one worker thread produced over the units it scanned (one per
/// thread, whatever the number of units: nothing is kept per unit or per
/// file but rare error notes, so memory does not grow with file count).
struct Acc<'s> {
    events: u64,
    scanned: u64,
    /// Index entries of spilled detections not yet in a sorted run (at
    /// most `run_cap`), in scan order.
    entries: Vec<Entry>,
    run_cap: usize,
    /// The sorted runs written so far ([`crate::index`]) and where.
    runs: Vec<crate::index::Run>,
    run_store: &'s Spill,
    run_bytes: Vec<u8>,
    /// Detections kept whole (rules feeding a correlation) and their
    /// entries, whose `Loc::Mem` indices are local to this worker until
    /// [`Acc::globalize`].
    mem: Vec<Detection>,
    mem_entries: Vec<Entry>,
    /// The shared host table and this worker's cache of it.
    hosts: &'s std::sync::Mutex<Hosts>,
    host_ids: std::collections::HashMap<String, u32>,
    /// Rendered bytes not yet appended to the spill, and the first entry
    /// whose offset is relative to them.
    piece: Vec<u8>,
    piece_from: usize,
    spill_error: Option<String>,
    /// Files not read at all: (file index, reason).
    skipped: Vec<(usize, String)>,
    record_errors: u64,
    record_reasons: BTreeMap<String, u64>,
    /// EVTX chunks skipped as exact copies of an earlier chunk (no record lost).
    duplicate_chunks: u64,
    /// Damaged unused EVTX chunk slots skipped (no record lost).
    damaged_unused_chunks: u64,
    /// Units with lost records: (unit, file, records lost, first reason).
    lost: Vec<(u32, usize, u64, String)>,
    /// Units with damaged unused EVTX chunk slots: (unit, file, slots).
    unused: Vec<(u32, usize, u64)>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    /// Time range of the events in the `--from`/`--to` window.
    win_first: Option<DateTime<Utc>>,
    win_last: Option<DateTime<Utc>>,
    /// IOC hits and the unit of each.
    ioc_hits: Vec<crate::ioc_cmd::IocDetection>,
    ioc_units: Vec<u32>,
}

struct ScanCfg {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    min_rank: u8,
    iocs: Option<Arc<tracehunt_ioc::IocSet>>,
    /// Rules whose hits feed a correlation: kept whatever their level
    /// (`--min-level` applies after correlation), as full detections.
    correlated: Vec<bool>,
    /// What workers render per detection.
    render: Render,
}

impl<'s> Acc<'s> {
    fn new(run_store: &'s Spill, run_cap: usize, hosts: &'s std::sync::Mutex<Hosts>) -> Self {
        Acc {
            events: 0,
            scanned: 0,
            entries: Vec::new(),
            run_cap,
            runs: Vec::new(),
            run_store,
            run_bytes: Vec::new(),
            mem: Vec::new(),
            mem_entries: Vec::new(),
            hosts,
            host_ids: std::collections::HashMap::new(),
            piece: Vec::new(),
            piece_from: 0,
            spill_error: None,
            skipped: Vec::new(),
            record_errors: 0,
            record_reasons: BTreeMap::new(),
            duplicate_chunks: 0,
            damaged_unused_chunks: 0,
            lost: Vec::new(),
            unused: Vec::new(),
            first: None,
            last: None,
            win_first: None,
            win_last: None,
            ioc_hits: Vec::new(),
            ioc_units: Vec::new(),
        }
    }

    /// The run-wide id of a host.
    fn host_id(&mut self, h: Option<&str>) -> u32 {
        let Some(h) = h else { return NO_HOST };
        if let Some(&i) = self.host_ids.get(h) {
            return i;
        }
        // A poisoned lock only means another worker panicked; the table
        // itself is consistent (one push and one insert).
        let i = self.hosts.lock().unwrap_or_else(|e| e.into_inner()).id(h);
        self.host_ids.insert(h.to_owned(), i);
        i
    }

    /// Records a detection's index entry.
    fn push(&mut self, e: Entry) {
        match e.loc() {
            Loc::Mem(_) => self.mem_entries.push(e),
            Loc::Spill { .. } => self.entries.push(e),
        }
    }

    /// After each event: appends the pending rendered bytes to the spill
    /// once they are a piece, and the index entries to the run store once
    /// they are a run.
    fn after_event(&mut self, spill: &Spill) {
        if self.entries.len() >= self.run_cap {
            self.flush_piece(spill);
            self.write_run();
        } else if self.piece.len() >= PIECE {
            self.flush_piece(spill);
        }
    }

    /// Sorts the pending entries (every offset absolute: the piece was just
    /// flushed) into a run in the run store.
    fn write_run(&mut self) {
        if !self.entries.is_empty() && self.spill_error.is_none() {
            match crate::index::write_run(&mut self.entries, self.run_store, &mut self.run_bytes) {
                Ok(run) => self.runs.push(run),
                Err(e) => self.spill_error = Some(e.to_string()),
            }
        }
        // After an error the hunt fails at the end; the entries are dropped
        // meanwhile so memory stays bounded.
        self.entries.clear();
        self.piece_from = 0;
    }

    /// Appends the pending rendered bytes to the spill and makes the
    /// offsets of their entries absolute.
    fn flush_piece(&mut self, spill: &Spill) {
        if !self.piece.is_empty() && self.spill_error.is_none() {
            match spill.append(&self.piece) {
                Ok(base) => {
                    for e in &mut self.entries[self.piece_from..] {
                        e.off += base;
                    }
                }
                Err(e) => self.spill_error = Some(e.to_string()),
            }
        }
        self.piece.clear();
        self.piece_from = self.entries.len();
    }

    /// Ends the worker's index: its runs, the last one (sorted, in memory)
    /// included; the entries of detections kept whole are rewritten to
    /// index the run's table `mem` and returned apart (`mem_entries`).
    fn globalize(
        &mut self,
        mem: &mut Vec<Detection>,
        mem_entries: &mut Vec<Entry>,
    ) -> Result<Vec<crate::index::Run>> {
        if let Some(e) = self.spill_error.take() {
            anyhow::bail!("writing detections to a temporary file: {e}");
        }
        let base = mem.len() as u32;
        for mut e in self.mem_entries.drain(..) {
            if let Loc::Mem(i) = e.loc() {
                e.set_loc(Loc::Mem(i + base));
            }
            mem_entries.push(e);
        }
        mem.append(&mut self.mem);
        let mut last = std::mem::take(&mut self.entries);
        last.sort_unstable_by_key(Entry::order);
        let mut runs = std::mem::take(&mut self.runs);
        runs.push(crate::index::Run::Mem(last));
        Ok(runs)
    }
}

/// A unit of parallel work: a whole file read as a stream (a small file,
/// a JSON array, UTF-16 JSON…), one chunk of an EVTX file, or one line
/// range of a JSON-lines file — so one big EVTX or JSONL file spreads over
/// all cores too.
enum Unit {
    Stream(usize),
    Chunk(usize, Arc<tracehunt_readers::EvtxChunks>, usize),
    Lines(usize, Arc<tracehunt_readers::JsonLinesRanges>, usize),
}

impl Unit {
    fn file(&self) -> usize {
        match self {
            Unit::Stream(f) | Unit::Chunk(f, _, _) | Unit::Lines(f, _, _) => *f,
        }
    }
}

/// The size of the line ranges a big JSON-lines file is cut into:
/// [`tracehunt_readers::JSON_LINES_RANGE_BYTES`] (16 MiB), or the hidden
/// environment variable `TRACEHUNT_JSONL_RANGE_BYTES` (bytes, at least 1;
/// for tests, which cut small files into many ranges). Never derived from
/// the thread count.
fn jsonl_range_bytes() -> u64 {
    std::env::var("TRACEHUNT_JSONL_RANGE_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(tracehunt_readers::JSON_LINES_RANGE_BYTES)
}

/// Splits the input files into units, in file order then position order.
///
/// Files are split only when there are too few of them to keep every
/// thread busy (fewer than 4 per thread): EVTX files into chunks, UTF-8
/// JSON-lines files bigger than one range into line ranges (planning scans
/// such a file once for its line ends). A chunk plan holds the file open
/// until the scan ends, so thousands of files are read one unit per file
/// instead (bounded open files). Units are numbered in this order and
/// output is sorted by (time, unit, record), so splitting does not change
/// the output.
fn plan_units(files: &[PathBuf], threads: usize) -> Vec<Unit> {
    if files.len() >= 4 * threads.max(1) {
        return (0..files.len()).map(Unit::Stream).collect();
    }
    let range_bytes = jsonl_range_bytes();
    let mut units = Vec::new();
    for (i, p) in files.iter().enumerate() {
        match tracehunt_readers::open_evtx_chunks(p) {
            Ok(c) if !c.is_empty() => {
                let c = Arc::new(c);
                units.extend((0..c.len()).map(|k| Unit::Chunk(i, c.clone(), k)));
                continue;
            }
            Ok(_) => {}
            Err(_) => {
                let big = std::fs::metadata(p).is_ok_and(|m| m.len() > range_bytes);
                if let Some(r) = big
                    .then(|| {
                        tracehunt_readers::plan_json_lines(p, range_bytes)
                            .ok()
                            .flatten()
                    })
                    .flatten()
                    .filter(|r| r.len() > 1)
                {
                    let r = Arc::new(r);
                    units.extend((0..r.len()).map(|k| Unit::Lines(i, r.clone(), k)));
                    continue;
                }
            }
        }
        units.push(Unit::Stream(i));
    }
    units
}

fn scan_unit(
    sc: &mut Scanner<'_>,
    files: &[PathBuf],
    (ui, unit): (u32, &Unit),
    cfg: &ScanCfg,
    spill: &Spill,
    r: &mut Acc,
) {
    let path = &files[unit.file()];
    let source: Arc<str> = Arc::from(path.display().to_string());
    match unit {
        Unit::Chunk(_, chunks, k) => scan_records(
            sc,
            chunks.chunk(*k),
            (ui, unit.file()),
            &source,
            cfg,
            spill,
            r,
        ),
        Unit::Lines(_, ranges, k) => scan_records(
            sc,
            ranges.range(*k),
            (ui, unit.file()),
            &source,
            cfg,
            spill,
            r,
        ),
        Unit::Stream(_) => match tracehunt_readers::open(path) {
            Ok(records) => scan_records(sc, records, (ui, unit.file()), &source, cfg, spill, r),
            Err(e) => {
                // The error text starts with the path; the summary shows it apart.
                let text = e.to_string();
                let prefix = format!("{}: ", path.display());
                r.skipped.push((
                    unit.file(),
                    text.strip_prefix(&prefix).unwrap_or(&text).to_owned(),
                ));
            }
        },
    }
    r.flush_piece(spill);
}

fn scan_records(
    sc: &mut Scanner<'_>,
    records: impl IntoIterator<Item = Result<tracehunt_event::Event, tracehunt_readers::RecordError>>,
    (ui, file): (u32, usize),
    source: &Arc<str>,
    cfg: &ScanCfg,
    spill: &Spill,
    r: &mut Acc,
) {
    let rs = sc.ruleset();
    let mut hits = Vec::new();
    let mut lost = 0u64;
    let mut first_lost = None;
    let mut unused = 0u64;
    let mut seq = 0u32;
    for rec in records {
        let ev = match rec {
            Ok(ev) => ev,
            Err(e) if e.kind == tracehunt_readers::RecordErrorKind::DuplicateChunk => {
                // Its records were read from the first copy: nothing lost.
                r.duplicate_chunks += 1;
                continue;
            }
            Err(e) if e.kind == tracehunt_readers::RecordErrorKind::DamagedUnusedChunk => {
                // Damaged bytes where no record was: nothing lost.
                r.damaged_unused_chunks += 1;
                unused += 1;
                continue;
            }
            Err(e) => {
                // One error can stand for several records (an EVTX chunk
                // note with the count its header declares) or none.
                r.record_errors += e.records;
                lost += e.records;
                if e.records > 0 {
                    *r.record_reasons.entry(format!("{:?}", e.kind)).or_default() += e.records;
                }
                if first_lost.is_none() && e.records > 0 {
                    first_lost = Some(format!("{}: {}", e.at, e.reason));
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
        if let Some(t) = ts {
            r.win_first = Some(r.win_first.map_or(t, |f| f.min(t)));
            r.win_last = Some(r.win_last.map_or(t, |l| l.max(t)));
        }
        hits.clear();
        sc.scan(&ev, &mut hits);
        if let Some(set) = &cfg.iocs {
            crate::ioc_cmd::scan_event(set, &ev, source, &mut r.ioc_hits);
            r.ioc_units.resize(r.ioc_hits.len(), ui);
        }
        let mut fields: Option<Arc<Vec<(String, serde_json::Value)>>> = None;
        let mut host = None;
        for &rule in &hits {
            let correlated = cfg.correlated[rule];
            if rs.rule(rule).level_rank < cfg.min_rank && !correlated {
                continue;
            }
            let host = *host.get_or_insert_with(|| r.host_id(ev.meta.computer.as_deref()));
            let mut entry = Entry::new(ts, rule, host, (ui, seq), Loc::Mem(r.mem.len() as u32));
            seq += 1;
            if !correlated && cfg.render == Render::Nothing {
                entry.set_loc(Loc::Spill { off: 0, len: 0 });
                r.push(entry);
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
            let d = Detection {
                rule,
                timestamp: ts,
                computer: ev.meta.computer.clone(),
                channel: ev.meta.channel.clone(),
                event_id: ev.meta.event_id,
                record_id: ev.meta.record_id,
                source: source.clone(),
                fields,
            };
            if correlated {
                r.mem.push(d);
            } else {
                // Rendered here, in parallel; only the index entry stays.
                let start = r.piece.len();
                if let Err(e) = render(cfg.render, rs, &d, &mut r.piece) {
                    r.piece.truncate(start);
                    r.spill_error.get_or_insert_with(|| e.to_string());
                }
                entry.set_loc(Loc::Spill {
                    off: start as u64,
                    len: (r.piece.len() - start) as u32,
                });
            }
            r.push(entry);
        }
        r.after_event(spill);
    }
    if lost > 0 {
        r.lost
            .push((ui, file, lost, first_lost.unwrap_or_default()));
    }
    if unused > 0 {
        r.unused.push((ui, file, unused));
    }
}

/// Builds the attribution evidence from what fired: per technique the rules
/// and number of detections; software and group tags likewise.
/// `rules` are the rules of the detections in output order (a rule's place
/// in the evidence lists is that of its first detection).
pub fn evidence(rs: &Ruleset, rules: impl IntoIterator<Item = usize>) -> EvidenceSet {
    let mut tech: BTreeMap<String, (Vec<usize>, u64)> = BTreeMap::new();
    let mut soft: BTreeMap<String, (Vec<usize>, u64)> = BTreeMap::new();
    let mut grp: BTreeMap<String, (Vec<usize>, u64)> = BTreeMap::new();
    // Counted per rule first: one map update per rule, not per detection.
    let mut order: Vec<usize> = Vec::new();
    let mut count: BTreeMap<usize, u64> = BTreeMap::new();
    for r in rules {
        let c = count.entry(r).or_default();
        if *c == 0 {
            order.push(r);
        }
        *c += 1;
    }
    for rule in order {
        let n = count[&rule];
        let m = rs.rule(rule);
        for (ids, map) in [
            (&m.techniques, &mut tech),
            (&m.software, &mut soft),
            (&m.groups, &mut grp),
        ] {
            for t in ids {
                let e = map.entry(t.clone()).or_default();
                if !e.0.contains(&rule) {
                    e.0.push(rule);
                }
                e.1 += n;
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
            // Bounded, regular files only (`--attack /dev/zero` grew memory).
            let text = crate::input::read_text_file(p)
                .with_context(|| format!("reading {}", p.display()))?;
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
    // Fresh-user finding: `--overlay` without the Navigator format was silently ignored.
    // clap's `requires` can only demand that `--format` be present, not its value; so checked
    // here, before any work, as the same usage error (exit 1).
    if let (Some(g), false) = (&a.overlay, a.format == Some(Format::Navigator)) {
        anyhow::bail!(
            "--overlay {g} only applies to an ATT&CK Navigator layer: add --format navigator (or run `tracehunt navigator`)"
        );
    }
    if let (Some(f), Some(t)) = (a.from, a.to) {
        if f > t {
            anyhow::bail!("--from ({f}) is after --to ({t}): the time window is empty");
        }
    }
    let threads = usize::from(a.threads.unwrap_or(0));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    // Rules are parsed on the workers while the input paths are walked.
    let (loaded, (files, walk_errors)) = pool.install(|| {
        rayon::join(
            || {
                if a.parse_only {
                    Ok(rules::Loaded::empty())
                } else {
                    rules::load(&a.rules, &a.rule_opts)
                }
            },
            || tracehunt_readers::walk(&a.paths),
        )
    });
    let loaded = loaded?;
    let kb = load_kb(&a.attack)?;
    let debug_mem = std::env::var_os("TRACEHUNT_DEBUG_MEM").is_some();
    debug_mem_note(debug_mem, "rules and ATT&CK loaded", "");
    let rs = &loaded.ruleset;
    let stderr_tty = std::io::stderr().is_terminal();
    let rule_counts = rules::RuleCounts::of(&loaded, a.min_level as u8);
    let mut summary = Summary {
        rules_loaded: rule_counts.loaded,
        rules_active: rule_counts.active,
        rules_skipped: rule_counts.skipped(),
        rules_skipped_by_reason: rule_counts.skipped_by_reason.clone(),
        rules_failed: rule_counts.failed,
        rules_with_unresolved_placeholder: rule_counts.unresolved_placeholder,
        time_window: (a.from.is_some() || a.to.is_some()).then(|| TimeWindow {
            from: a.from,
            to: a.to,
            ..TimeWindow::default()
        }),
        ..Summary::default()
    };
    if a.quiet {
        // Fresh-user finding: `-q` promises "only errors" but said nothing
        // of rules that failed to load. One line, whatever their number.
        if summary.rules_failed > 0 {
            eprintln!(
                "tracehunt: {} to load (run without -q, or `tracehunt rules check`, for details)",
                counted(summary.rules_failed, "rule failed", "rules failed")
            );
        }
    } else {
        // Which rules did not load and why (Chainsaw #135): on stderr, so
        // machine formats on stdout stay clean.
        report_rule_errors(&loaded.diagnostics, if a.verbose { usize::MAX } else { 20 });
        if a.verbose {
            // Warnings that change what a loaded rule can match (TH011).
            for d in loaded
                .diagnostics
                .iter()
                .filter(|d| d.code == tracehunt_sigma::Code::UnresolvedPlaceholder)
            {
                eprintln!("tracehunt: {d}");
            }
        }
        if stderr_tty {
            eprintln!(
                "tracehunt: rules from {} {}: {}",
                loaded.files,
                plural(loaded.files as u64, "file", "files"),
                tracehunt_report::rules_line(&summary)
            );
        }
    }
    if !a.parse_only && rs.active_len() == 0 {
        anyhow::bail!(
            "no usable rule: {}; see `tracehunt rules check`",
            tracehunt_report::rules_line(&summary)
        );
    }

    let feeds = crate::ioc_cmd::load(&a.ioc, a.quiet, a.verbose)?;
    debug_mem_note(
        debug_mem,
        "input walked",
        &format!(
            "{} files, {} path bytes",
            files.len(),
            files.iter().map(|f| f.as_os_str().len()).sum::<usize>()
        ),
    );
    let format = a
        .format
        .unwrap_or(if a.output.is_none() && std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Jsonl
        });
    let cfg = ScanCfg {
        from: a.from,
        to: a.to,
        min_rank: a.min_level as u8,
        iocs: feeds.as_ref().map(|f| f.set.clone()),
        correlated: (0..rs.len())
            .map(|r| loaded.correlations.is_referenced(r))
            .collect(),
        render: Render::of(format),
    };
    let spill = Spill::new(crate::spill::mem_limit());
    // The index entries' sorted runs ([`crate::index`]).
    let run_store = Spill::new(crate::spill::mem_limit());
    let hosts = std::sync::Mutex::new(Hosts::default());
    let units = plan_units(&files, pool.current_num_threads());
    let run_cap = crate::index::run_budget(pool.current_num_threads());
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
    // One worker per thread, each with one scanner and one accumulator,
    // taking units in order from a shared counter.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let accs: Vec<Acc> = pool.broadcast(|_| {
        let mut sc = Scanner::new(rs);
        let mut acc = Acc::new(&run_store, run_cap, &hosts);
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(unit) = units.get(i) else { break };
            scan_unit(&mut sc, &files, (i as u32, unit), &cfg, &spill, &mut acc);
            if debug_mem && i % 4096 == 4095 {
                debug_mem_note(true, &format!("{} units scanned", i + 1), "");
            }
            pb.inc(1);
        }
        acc.piece = Vec::new();
        acc.run_bytes = Vec::new();
        acc.host_ids = std::collections::HashMap::new();
        acc
    });
    debug_mem_note(
        debug_mem,
        "scanned",
        &format!(
            "{} units ({} B each), index runs {}, run store {} B",
            units.len(),
            std::mem::size_of::<Unit>(),
            accs.iter().map(|a| a.runs.len() + 1).sum::<usize>(),
            run_store.len(),
        ),
    );
    drop(units);
    pb.finish_and_clear();

    // Merge: counts are sums; what is listed per file goes in file order;
    // host ids and in-memory detections into the run's tables.
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
    let Hosts {
        names: mut hosts,
        ids: mut host_ids,
    } = std::mem::take(&mut *hosts.lock().unwrap_or_else(|e| e.into_inner()));
    let mut mem: Vec<Detection> = Vec::new();
    let mut mem_entries: Vec<Entry> = Vec::new();
    // The index: sorted runs, most of them in the run store.
    let mut runs: Vec<crate::index::Run> = Vec::new();
    let mut skipped: Vec<(usize, String)> = Vec::new();
    let mut lost: Vec<(u32, usize, u64, String)> = Vec::new();
    let mut unused: Vec<(u32, usize, u64)> = Vec::new();
    let mut iocs: Vec<(u32, crate::ioc_cmd::IocDetection)> = Vec::new();
    for mut r in accs {
        runs.extend(r.globalize(&mut mem, &mut mem_entries)?);
        summary.events += r.events;
        summary.events_scanned += r.scanned;
        summary.records_skipped += r.record_errors;
        summary.duplicate_chunks_skipped += r.duplicate_chunks;
        summary.damaged_unused_chunks_skipped += r.damaged_unused_chunks;
        for (k, n) in r.record_reasons {
            *summary.records_skipped_by_reason.entry(k).or_default() += n;
        }
        if let Some(f) = r.first {
            summary.first_event = Some(summary.first_event.map_or(f, |x| x.min(f)));
        }
        if let Some(l) = r.last {
            summary.last_event = Some(summary.last_event.map_or(l, |x| x.max(l)));
        }
        if let Some(tw) = &mut summary.time_window {
            if let Some(f) = r.win_first {
                tw.first_event = Some(tw.first_event.map_or(f, |x| x.min(f)));
            }
            if let Some(l) = r.win_last {
                tw.last_event = Some(tw.last_event.map_or(l, |x| x.max(l)));
            }
        }
        skipped.append(&mut r.skipped);
        lost.append(&mut r.lost);
        unused.append(&mut r.unused);
        iocs.extend(r.ioc_units.into_iter().zip(r.ioc_hits));
    }
    skipped.sort_by_key(|s| s.0);
    summary.files = (files.len() - skipped.len()) as u64;
    for (f, reason) in skipped {
        summary.files_skipped.push(Skipped {
            path: files[f].display().to_string(),
            reason,
            records: 0,
        });
    }
    // Lost records per file: the units of a file are consecutive.
    lost.sort_by_key(|l| l.0);
    let mut last_file = None;
    for (_, f, n, reason) in lost {
        match summary.files_with_record_errors.last_mut() {
            Some(last) if last_file == Some(f) => last.records += n,
            _ => summary.files_with_record_errors.push(Skipped {
                path: files[f].display().to_string(),
                reason,
                records: n,
            }),
        }
        last_file = Some(f);
    }
    unused.sort_by_key(|u| u.0);
    let mut last_file = None;
    for (_, f, n) in unused {
        match summary.files_with_damaged_unused_chunks.last_mut() {
            Some(last) if last_file == Some(f) => last.chunks += n,
            _ => summary
                .files_with_damaged_unused_chunks
                .push(tracehunt_report::UnusedChunks {
                    path: files[f].display().to_string(),
                    chunks: n,
                }),
        }
        last_file = Some(f);
    }
    iocs.sort_by_key(|h| h.0);
    let mut ioc_dets: Vec<_> = iocs.into_iter().map(|(_, h)| h).collect();
    // Equal times keep file, chunk and record order (`Entry::order`).
    mem_entries.sort_unstable_by_key(Entry::order);
    // Sigma correlations over the time-sorted hits of the rules they
    // reference (kept whole in `mem`); then `--min-level`.
    let base: Vec<&Detection> = mem_entries
        .iter()
        .filter_map(|e| match e.loc() {
            Loc::Mem(i) => Some(&mem[i as usize]),
            Loc::Spill { .. } => None,
        })
        .collect();
    let (added, corr) = crate::correlation::apply(&loaded, &base);
    drop(base);
    if corr.dropped > 0 && stderr_tty && !a.quiet {
        eprintln!(
            "tracehunt: correlation memory bound reached: {} dropped",
            counted(
                corr.dropped,
                "event or window entry",
                "events or window entries"
            )
        );
    }
    let cs = &loaded.correlations;
    // Only rules a correlation references can be suppressed or below
    // `--min-level` here: workers dropped the other low-level hits.
    mem_entries.retain(|e| {
        let r = e.rule as usize;
        !cs.is_suppressed(r) && rs.rule(r).level_rank >= cfg.min_rank
    });
    runs.push(crate::index::Run::Mem(mem_entries));
    let mut hits: Vec<Entry> = Vec::new();
    for (k, d) in added.into_iter().enumerate() {
        if rs.rule(d.rule).level_rank < cfg.min_rank {
            continue;
        }
        let host = match d.computer.as_deref() {
            None => NO_HOST,
            Some(h) => {
                let n = hosts.len() as u32;
                *host_ids.entry(h.to_owned()).or_insert_with_key(|h| {
                    hosts.push(h.clone());
                    n
                })
            }
        };
        // Unit past every input unit: after the detections of the same
        // time, in the order the correlator produced them.
        hits.push(Entry::new(
            d.timestamp,
            d.rule,
            host,
            (u32::MAX, k as u32),
            Loc::Mem(mem.len() as u32),
        ));
        mem.push(d);
    }
    hits.sort_unstable_by_key(Entry::order);
    runs.push(crate::index::Run::Mem(hits));
    drop(host_ids);
    // Each pass over the index in output order is one k-way merge of the
    // runs; a read error of the run store fails the hunt after the pass.
    let run_store_disk_error = run_store.disk_error();
    let run_store = run_store.into_reader();
    let index_error = |e: std::io::Error| {
        anyhow::anyhow!("reading the detection index back from the temporary file: {e}")
    };
    let mut pass = crate::index::Merge::new(&runs, &run_store);
    summary.count(rs, pass.by_ref().map(|e| e.view(&hosts)));
    pass.finish().map_err(index_error)?;

    crate::ioc_cmd::sort_by_time(&mut ioc_dets);
    let mut pass = crate::index::Merge::new(&runs, &run_store);
    let mut observed = evidence(rs, pass.by_ref().map(|e| e.rule as usize));
    pass.finish().map_err(index_error)?;
    observed.iocs = crate::ioc_cmd::observations(&ioc_dets);
    // The hunt's event-time span is the observation window: groups whose
    // dated ATT&CK reporting is far from it rank lower (issue #5 time input).
    // With --from/--to, the span of the events in the window (those scanned).
    let span = match &summary.time_window {
        Some(tw) => (tw.first_event, tw.last_event),
        None => (summary.first_event, summary.last_event),
    };
    let window = match span {
        (Some(f), Some(l)) => Window::from_dates(&f.to_rfc3339(), &l.to_rfc3339()),
        _ => None,
    };
    let attribution = Attributor::new(&kb).attribute_in(&observed, window);
    debug_mem_note(debug_mem, "summary and attribution", "");
    summary.elapsed_ms = start.elapsed().as_millis() as u64;

    if let Some(e) = spill.disk_error().or_else(|| run_store_disk_error.clone()) {
        if !a.quiet {
            eprintln!("tracehunt: no temporary file for the detections ({e}): kept in memory");
        }
    }
    let spill = spill.into_reader();
    let mut buf = Vec::new();
    // The output bytes of one detection, from the spill or rendered now.
    let mut emit = |out: &mut dyn Write, e: &Entry| -> Result<()> {
        buf.clear();
        match e.loc() {
            Loc::Spill { off, len } => spill
                .read(off, len as usize, &mut buf)
                .context("reading detections back from the temporary file")?,
            Loc::Mem(i) => render(cfg.render, rs, &mem[i as usize], &mut buf)?,
        }
        out.write_all(&buf)?;
        Ok(())
    };
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut pass = crate::index::Merge::new(&runs, &run_store);
    match format {
        Format::Table => {
            if summary.detections > 0 {
                tracehunt_report::write_table_header(&mut out)?;
            }
            for e in pass.by_ref().take(a.max_rows) {
                emit(&mut out, &e)?;
            }
            tracehunt_report::write_table_summary(
                &mut out,
                summary.detections as usize,
                &summary,
                a.max_rows,
            )?;
            if let Some(f) = &feeds {
                crate::ioc_cmd::write_table(&mut out, f, &ioc_dets, a.max_rows)?;
            }
            write_attribution_table(&mut out, &attribution, 5)?;
        }
        Format::Jsonl => {
            for e in pass.by_ref() {
                emit(&mut out, &e)?;
            }
            crate::ioc_cmd::write_jsonl(&mut out, &kb, &ioc_dets)?;
        }
        Format::Stix => {
            let views = pass.by_ref().map(|e| e.view(&hosts));
            let input = crate::stix_cmd::input(&kb, rs, views, &ioc_dets, &attribution, &summary);
            tracehunt_report::write_stix_bundle(&mut out, &input)?;
        }
        Format::Navigator => {
            let layer = crate::navigator_cmd::layer(
                &kb,
                rs,
                pass.by_ref().map(|e| e.view(&hosts)),
                a.overlay.as_deref(),
                "tracehunt hunt",
            )?;
            serde_json::to_writer_pretty(&mut out, &layer)?;
            writeln!(out)?;
        }
        Format::Csv => {
            let mut head = Vec::new();
            tracehunt_report::csv_header(&mut head)?;
            out.write_all(&head)?;
            for e in pass.by_ref() {
                emit(&mut out, &e)?;
            }
        }
        Format::Json => {
            // Streamed: one detection at a time, never the whole document
            // as a JSON tree in memory.
            out.write_all(b"{\n\"summary\": ")?;
            serde_json::to_writer_pretty(&mut out, &summary)?;
            out.write_all(b",\n\"detections\": [")?;
            for (i, e) in pass.by_ref().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                emit(&mut out, &e)?;
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
    pass.finish().map_err(index_error)?;
    out.flush()?;
    debug_mem_note(debug_mem, "output written", "");
    drop(out);
    // Machine formats still get the summary and every skipped file on
    // stderr (stdout carries only the chosen format).
    if format != Format::Table && !a.quiet {
        for f in &summary.files_skipped {
            eprintln!("tracehunt: skipped {}: {}", f.path, f.reason);
        }
        for f in &summary.files_with_record_errors {
            eprintln!(
                "tracehunt: {} lost in {} (first: {})",
                counted(f.records, "record", "records"),
                f.path,
                f.reason
            );
        }
        // Named per file, like lost records (was one total without a file).
        for f in &summary.files_with_damaged_unused_chunks {
            eprintln!(
                "tracehunt: {} with damaged bytes skipped in {} (no records there; none lost)",
                counted(
                    f.chunks,
                    "unused EVTX chunk slot",
                    "unused EVTX chunk slots"
                ),
                f.path
            );
        }
        eprintln!(
            "tracehunt: {} in {} ({} skipped, {} skipped), {}{}, {:.2} s",
            counted(summary.events, "event", "events"),
            counted(summary.files, "file", "files"),
            counted(summary.files_skipped.len() as u64, "file", "files"),
            counted(summary.records_skipped, "record", "records"),
            counted(summary.detections, "detection", "detections"),
            if feeds.is_some() {
                format!(
                    ", {}",
                    counted(ioc_dets.len() as u64, "IOC hit", "IOC hits")
                )
            } else {
                String::new()
            },
            summary.elapsed_ms as f64 / 1000.0
        );
        // Fresh-user finding: piped JSONL ended with no word of the rules
        // that failed; the rule counts, in `rules check`'s words (on a
        // terminal they were printed before the scan).
        if !stderr_tty {
            eprintln!(
                "tracehunt: rules from {} {}: {}",
                loaded.files,
                plural(loaded.files as u64, "file", "files"),
                tracehunt_report::rules_line(&summary)
            );
        }
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

/// With `TRACEHUNT_DEBUG_MEM` set (issue #4 accounting): prints the
/// process's resident memory now and at its peak so far (`VmRSS`, `VmHWM`
/// of `/proc/self/status`, Linux only) after a stage of the hunt, with
/// `what` (counts of what may grow), to stderr.
fn debug_mem_note(on: bool, stage: &str, what: &str) {
    if !on {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or("?".to_owned(), |v| v.trim().to_owned())
    };
    eprintln!(
        "tracehunt: mem {stage}: rss {} peak {} {what}",
        field("VmRSS:"),
        field("VmHWM:")
    );
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

/// The rules behind one piece of evidence, for the attribution table: the first `max`
/// titles, then "and N more" (fresh-user finding: only the first rule was named when two
/// rules showed the technique); "-" for none (analyst input).
pub fn rule_list(titles: &[String], max: usize) -> String {
    if titles.is_empty() {
        return "-".to_owned();
    }
    let shown: Vec<String> = titles
        .iter()
        .take(max)
        .map(|t| tracehunt_report::terminal_safe(t).into_owned())
        .collect();
    let mut s = shown.join("; ");
    if titles.len() > max {
        s.push_str(&format!("; and {} more", titles.len() - max));
    }
    s
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
            "  {}. {} {}{}  score {:.3}  confidence {} ({})  ({} matched {}, {} distinctive)",
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
            plural(
                c.matched_count as u64,
                "technique/software",
                "techniques/software"
            ),
            c.distinctive_matches
        )?;
        let mut ev: Vec<_> = c.matched.iter().collect();
        ev.sort_by(|x, y| y.weight.total_cmp(&x.weight));
        for e in ev.iter().take(4) {
            let groups = e.groups_using as u64;
            let events = e.events;
            // Techniques an analyst typed (`attribute --techniques`) come
            // from no rule and no event (fresh-user finding: "← - [0 events]").
            let from = if e.rule_titles.is_empty() && events == 0 {
                "(given)".to_owned()
            } else {
                format!(
                    "{} [{} {}]",
                    rule_list(&e.rule_titles, 3),
                    events,
                    plural(events, "event", "events")
                )
            };
            writeln!(
                w,
                "       {} {} (used by {} {}) ← {from}",
                e.id,
                e.name,
                groups,
                plural(groups, "group", "groups"),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-detection memory of a hunt (issue #4): keep it small.
    #[test]
    fn a_date_only_to_means_the_end_of_that_day() {
        let to = parse_time_end("2021-04-26").unwrap();
        assert_eq!(to.to_rfc3339(), "2021-04-26T23:59:59.999999999+00:00");
        assert!(to > parse_time("2021-04-26T18:30:00Z").unwrap());
        assert!(to < parse_time("2021-04-27").unwrap());
        // Full times are taken as given.
        assert_eq!(
            parse_time_end("2021-04-26T10:00:00Z").unwrap(),
            parse_time("2021-04-26T10:00:00Z").unwrap()
        );
        assert!(parse_time_end("2021-13-01").is_err());
    }

    #[test]
    fn index_entry_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
    }

    #[test]
    fn time_key_orders_like_the_times_and_puts_none_last() {
        let t = |s: &str| Some(parse_time(s).unwrap());
        let mut v = vec![
            None,
            t("2024-01-01T00:00:01Z"),
            t("1601-01-01T00:00:00Z"),
            t("2024-01-01T00:00:00.5Z"),
        ];
        let mut by_key = v.clone();
        by_key.sort_by_key(|x| time_key(*x));
        v.sort_by(|x, y| match (x, y) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        assert_eq!(v, by_key);
        for x in v.into_iter().flatten() {
            let (s, n) = time_key(Some(x));
            let e = Entry::new(Some(x), 0, NO_HOST, (0, 0), Loc::Mem(7));
            assert_eq!((e.secs, e.nanos), (s, n));
            assert_eq!(e.timestamp(), Some(x));
            assert!(matches!(e.loc(), Loc::Mem(7)));
        }
    }
}
