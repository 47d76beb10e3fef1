//! `tracehunt hunt`: flags, terminal and exit codes around the library
//! pipeline (`tracehunt_pipeline`): walk the paths, load rules and feeds,
//! scan, attribute, write the chosen sink.

use crate::rules::{self, RuleOpts};
use crate::Format;
use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;
use tracehunt_attack::ActorKb;
use tracehunt_pipeline::{sink, FileSource, HuntConfig, Loss, OutputFormat};
use tracehunt_report::{counted, Skipped, Summary, TimeWindow};

/// Sigma rule levels, lowest first.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
///
/// Hayabusa's and Chainsaw's short spellings are accepted too: `info`, `med`, `crit`.
pub enum MinLevel {
    #[value(alias = "info")]
    Informational,
    Low,
    #[value(alias = "med")]
    Medium,
    High,
    #[value(alias = "crit")]
    Critical,
}

#[derive(Args, Debug)]
// Paths or `-d` directories: without either, clap named only `<PATHS>`
// (breaker finding: the usage line never mentioned `-d`).
#[command(group(clap::ArgGroup::new("input").args(["paths", "directory"]).required(true).multiple(true)))]
pub struct HuntArgs {
    /// Log files or directories (walked recursively). Formats are detected
    /// by content: EVTX; JSON lines or arrays, also gzipped (Windows:
    /// evtx-crate JSON, Winlogbeat/ECS, Mordor/nxlog flat; CloudTrail,
    /// Kubernetes audit, Okta, GCP audit, GitHub audit, Azure/Entra, M365,
    /// Zeek JSON); raw auditd; syslog/auth.log incl. Sysmon for Linux; Zeek
    /// TSV; W3C extended (IIS); Apache/Nginx access logs.
    pub paths: Vec<PathBuf>,
    /// A log directory, as Hayabusa's `-d` (repeatable; the same as giving it as
    /// an argument).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub directory: Vec<PathBuf>,
    /// Sigma rule file or directory (repeatable). Default: the built-in pack
    /// (Windows rules only: for Linux, cloud, network and web logs give
    /// SigmaHQ's rules, or its folders linux, cloud, identity, application,
    /// network, web).
    #[arg(long, short = 'r', value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// ATT&CK Enterprise STIX bundle to attribute with (default: the
    /// built-in ATT&CK v18.1 snapshot).
    #[arg(long, value_name = "FILE")]
    pub attack: Option<PathBuf>,
    /// Output format (default: from -o's extension — .csv, .json, .jsonl/.ndjson,
    /// .html, .stix/.stix.json — else table on a terminal, jsonl otherwise). Log
    /// paths are arguments, not `-f` values.
    #[arg(long, short = 'f', value_enum, ignore_case = true)]
    pub format: Option<Format>,
    /// Write the output here instead of standard output (an existing file
    /// only with --clobber). The summary and the attribution verdict then
    /// go to stderr.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Let -o overwrite an existing file (`-C` as in Hayabusa).
    #[arg(long, short = 'C', requires = "output")]
    pub clobber: bool,
    /// Only report detections of rules at or above this level (any case: `HIGH`;
    /// `-m` as in Hayabusa).
    #[arg(
        long,
        short = 'm',
        value_enum,
        ignore_case = true,
        default_value = "informational"
    )]
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
    #[arg(long, short = 't', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// No progress bar, summary or warnings on stderr: only errors, and a
    /// one-line count of the rules that failed to load (if any).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// More detail on stderr: every rule error (not just the first 20),
    /// every rule with an `expand` placeholder without value (TH011), every
    /// IOC feed file's unusable entries and warnings, every record loss of
    /// each file (not just the first; up to 10,000).
    #[arg(long, short = 'v', conflicts_with = "quiet")]
    pub verbose: bool,
    /// Read every event but evaluate no rule: measures the reading ceiling
    /// (used by `bench/run.sh`; hidden from --help).
    #[arg(long, hide = true)]
    pub parse_only: bool,
    /// Table format: at most this many rows, most severe level first
    /// (critical, high, …), then by time; identical rows (rule, host,
    /// details) are one row with a count. The summary always shows.
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
    /// With `--format stix`: the TLP 2.0 marking of every object
    /// (clear, green, amber, amber+strict, red). Amber when not given: the
    /// bundle names internal hosts and users. An error with any other format.
    #[arg(long, value_name = "LEVEL", value_parser = crate::parse_tlp)]
    pub tlp: Option<tracehunt_report::Tlp>,
    /// Also record the hunt in this store (SQLite; created if missing):
    /// the run, its sources, rules, detections, incidents, attributions and
    /// actor sightings, in one transaction. Re-hunting the same files adds
    /// nothing. Read it back with `tracehunt incidents`, `actors`, `actor`,
    /// `export stix`.
    #[arg(long, value_name = "PATH", env = "TRACEHUNT_STORE")]
    pub store: Option<PathBuf>,
    /// Incidents: a host's detections further apart than this start a new
    /// incident (`90m`, `1h`, `3600s`, `2d`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub session_gap: i64,
    /// Incidents: the longest time one host's detections may span in one
    /// incident before a new one starts (same forms as --session-gap).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub max_span: i64,
    /// Incidents: an entity (user, IP, logon id, process GUID, hash,
    /// domain) seen in more host groups than this is too common to merge
    /// incidents across hosts (a domain controller, a NAT address).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub entity_ceiling: usize,
    /// Report a detection once when its event is in several files (VSS
    /// copies, a log exported twice under two names): same rule, time,
    /// computer, channel, EventID and record id (Hayabusa's -X). The
    /// summary counts the removed. (Files given twice are always read once.)
    #[arg(short = 'X', long)]
    pub remove_duplicate_detections: bool,
    #[command(flatten)]
    pub rule_opts: RuleOpts,
    #[command(flatten)]
    pub display: crate::display_opts::DisplayOpts,
}

/// Parses a duration: a whole number with a unit `s`, `m`, `h` or `d`
/// (`90m`, `1h`); a bare number is seconds. Returns seconds.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3600),
        Some((i, 'd')) => (&t[..i], 86_400),
        _ => (t, 1),
    };
    num.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!("`{s}` is not a duration: use a whole number with s, m, h or d (90m, 1h, 2d)")
        })
}

/// Prints rule-loading errors (not warnings) to stderr: the first `max`, then a count.
pub fn report_rule_errors(diags: &[tracehunt_sigma::Diagnostic], max: usize) {
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

pub use tracehunt_pipeline::evidence::plural;

/// Parses `--from`/`--to` values.
pub fn parse_time(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // Hayabusa's form: `2019-05-01 10:00:00 +09:00` (issue #19).
    for f in [
        "%Y-%m-%d %H:%M:%S %:z",
        "%Y-%m-%d %H:%M:%S%.f %:z",
        "%Y-%m-%d %H:%M:%S%:z",
        "%Y-%m-%d %H:%M:%S %z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s.trim(), f) {
            return Ok(t.with_timezone(&Utc));
        }
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
        "`{s}` is not a time: use RFC 3339 (2024-01-31T23:59:59Z), `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD HH:MM:SS +09:00`"
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

/// The pipeline's progress hooks: the progress bar and, with
/// `TRACEHUNT_DEBUG_MEM`, memory notes.
struct CliProgress {
    bar: ProgressBar,
    debug_mem: bool,
}

impl tracehunt_pipeline::Progress for CliProgress {
    fn unit_done(&self) {
        self.bar.inc(1);
    }

    fn stage(&self, stage: &str, what: &str) {
        debug_mem_note(self.debug_mem, stage, what);
    }
}

impl Format {
    /// The pipeline's name for this output format.
    pub fn output(self) -> OutputFormat {
        match self {
            Format::Table => OutputFormat::Table,
            Format::Jsonl => OutputFormat::Jsonl,
            Format::Json => OutputFormat::Json,
            Format::Csv => OutputFormat::Csv,
            Format::Ecs => OutputFormat::Ecs,
            Format::Stix => OutputFormat::Stix,
            Format::Navigator => OutputFormat::Navigator,
            Format::Html => OutputFormat::Html,
        }
    }
}

/// The HTML report's title: the hunted paths (at most 3 named).
fn html_title(paths: &[std::path::PathBuf]) -> String {
    let mut names: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    if paths.len() > 3 {
        names.push(format!("and {} more", paths.len() - 3));
    }
    format!("tracehunt hunt: {}", names.join(", "))
}

pub fn run(mut a: HuntArgs) -> Result<u8> {
    a.paths.append(&mut a.directory);
    let start = Instant::now();
    let start_time = chrono::Utc::now();
    check_args(&a)?;
    // The store is opened (created, migrated) before any work: a bad path
    // fails now, not after the whole hunt (fresh-user finding).
    let mut store = match &a.store {
        Some(p) => Some(crate::store_cmd::open_for_hunt(p, a.output.as_deref())?),
        None => None,
    };
    // Hayabusa refuses to overwrite without --clobber; so do we (was
    // silent). After the store check, which names `-o` onto the store.
    // Only regular files: `-o /dev/null` (the benchmarks) is no clobbering.
    if let Some(p) = &a.output {
        crate::store_cmd::refuse_clobber(p, a.clobber)?;
    }
    let threads = usize::from(a.threads.unwrap_or(0));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting worker threads")?;
    // Rules are parsed on the workers while the input paths are walked and
    // the ATT&CK knowledge base is loaded.
    let (loaded, (walked, kb)) = pool.install(|| {
        rayon::join(
            || {
                if a.parse_only {
                    Ok((rules::Loaded::empty(), None))
                } else {
                    rules::load_deferred(&a.rules, &a.rule_opts)
                }
            },
            || {
                rayon::join(
                    || tracehunt_readers::walk_counted(&a.paths),
                    || load_kb(&a.attack),
                )
            },
        )
    });
    let (mut loaded, cache_write) = loaded?;
    let kb = kb?;
    // Malware and actor names in emerging-threats folders and titles become
    // software/group evidence (issue #18 item 5; not part of the cache).
    loaded.resolve_names(&kb);
    // Never freed: the process ends with the hunt (dropping the compiled
    // rules one by one took ~10 ms of every run). Shared with the thread
    // that writes the rule cache while the hunt goes on; once it is joined
    // (after the scan), the hunt owns it alone again and frees what the
    // scan built.
    let mut loaded = std::mem::ManuallyDrop::new(std::sync::Arc::new(loaded));
    // Joined (the write finished) after the scan, or when `run` returns.
    let cache_write =
        crate::rule_cache::BackgroundWrite::start(cache_write, std::sync::Arc::clone(&loaded));
    // A named path that does not exist is an error whatever -q says
    // (ripgrep: the run finishes, then exits 1).
    let missing = missing_paths(&a.paths);
    for p in &missing {
        eprintln!(
            "tracehunt: error: {}: no such file or directory",
            p.display()
        );
    }
    let tracehunt_readers::Walked {
        files,
        errors: walk_errors,
        duplicates,
    } = walked;
    // `-o` onto a log being read destroyed it, even with --clobber (breaker
    // finding): refused, whatever --clobber says.
    // Same test as `search -o`: (device, inode), so a hard link counts too.
    let output_file = a
        .output
        .as_deref()
        .and_then(|o| Some((o, std::fs::metadata(o).ok().filter(|m| m.is_file())?)));
    if let Some((o, m)) = output_file {
        if let Some(f) = files
            .iter()
            .find(|f| crate::search_cmd::same_file(&m, o, f))
        {
            anyhow::bail!(
                "--output {} is one of the input files ({}): choose another output path",
                o.display(),
                f.display()
            );
        }
    }
    // Issue #19: `logs/ logs/Security.evtx` read the file twice and doubled every count.
    if duplicates > 0 && !a.quiet {
        eprintln!(
            "tracehunt: {} given more than once (or inside a directory given too): read once",
            counted(duplicates, "file", "files")
        );
    }
    let debug_mem = std::env::var_os("TRACEHUNT_DEBUG_MEM").is_some();
    debug_mem_note(debug_mem, "rules and ATT&CK loaded", "");
    let stderr_tty = std::io::stderr().is_terminal();
    let mut summary = start_summary(&a, &loaded);
    report_rules(&a, &loaded, &summary, stderr_tty);
    // No rule that can report (active and at or above --min-level): the
    // same usage error whichever option left them all out.
    if !a.parse_only && summary.rules_active == 0 {
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
    // -f, else -o's extension, else a table on a terminal and JSON lines otherwise.
    let on_terminal = a.output.is_none() && std::io::stdout().is_terminal();
    let inferred = format_from_output(&a);
    if let (Some(o), None, false) = (&a.output, a.format, a.quiet) {
        // Also for an extension that names no format (fresh-user finding:
        // `-o out.txt` wrote JSON lines without a word, as the README says it does).
        let (f, why) = match inferred {
            Some(f) => (f, "format from its extension"),
            None => (Format::Jsonl, "no format extension"),
        };
        eprintln!(
            "tracehunt: writing {} to {} ({why}; -f to choose)",
            f.to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_owned()),
            o.display()
        );
    }
    let format = a.format.or(inferred).unwrap_or(if on_terminal {
        Format::Table
    } else {
        Format::Jsonl
    });
    let cfg = HuntConfig {
        from: a.from,
        to: a.to,
        min_rank: a.min_level as u8,
        iocs: feeds.as_ref().map(|f| f.set.clone()),
        store_records: a.store.is_some(),
        list_losses: a.verbose,
        remove_duplicates: a.remove_duplicate_detections,
        ..HuntConfig::new(format.output())
    };
    let source = FileSource::plan(&files, pool.current_num_threads());
    let bar = progress_bar(stderr_tty && !a.quiet, source.len());
    // Files the walk could not list come first among the skipped files.
    summary.files_skipped.extend(walk_errors.iter().map(|e| {
        Skipped {
            path: e
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: e.reason.clone(),
            records: 0,
        }
    }));
    let progress = CliProgress { bar, debug_mem };
    let scanned = tracehunt_pipeline::scan(&pool, &loaded, &source, &cfg, &mut summary, &progress)?;
    drop(source);
    drop(cache_write);
    // What follows reads rule metadata only: the regexes, finders and
    // automata the scan built are freed before the attribution allocates
    // (the cache writer has finished, so the hunt is the sole owner).
    if let Some(l) = std::sync::Arc::get_mut(&mut loaded) {
        l.ruleset.release_built();
    }
    let loaded: &rules::Loaded = &loaded;
    let rs = &loaded.ruleset;
    progress.bar.finish_and_clear();
    if summary.duplicate_detections_removed > 0 && !a.quiet {
        eprintln!(
            "tracehunt: -X: {} of events seen in several files removed",
            counted(
                summary.duplicate_detections_removed,
                "duplicate detection",
                "duplicate detections"
            )
        );
    }
    if scanned.correlation.dropped > 0 && stderr_tty && !a.quiet {
        eprintln!(
            "tracehunt: correlation memory bound reached: {} dropped",
            counted(
                scanned.correlation.dropped,
                "event or window entry",
                "events or window entries"
            )
        );
    }
    // One attributor (it indexes every group) for the incidents and the whole
    // collection; built after the scan, so its index (≈ 1.5 MB) is not resident
    // beside the scan's matchers (issue #22, peak RSS).
    let attributor = tracehunt_attribution::Attributor::new(&kb);
    let incidents = pool.install(|| {
        tracehunt_pipeline::incident::group_with(
            &scanned,
            rs,
            &attributor,
            tracehunt_incidents::Config {
                session_gap_secs: a.session_gap,
                max_span_secs: a.max_span,
                entity_ceiling: a.entity_ceiling,
            },
        )
    })?;
    debug_mem_note(debug_mem, "incidents grouped", "");
    let observed = scanned.evidence(rs)?;
    let mut attribution = tracehunt_pipeline::attribute_with(&attributor, &observed, &summary);
    tracehunt_pipeline::incident::aggregate_verdict(&incidents, &mut attribution);
    debug_mem_note(debug_mem, "summary and attribution", "");
    summary.elapsed_ms = start.elapsed().as_millis() as u64;

    if let Some(e) = &scanned.temp_file_error {
        if !a.quiet {
            eprintln!("tracehunt: no temporary file for the detections ({e}): kept in memory");
        }
    }
    // Nothing read: no output file is created or truncated (an existing
    // `--clobber` target was emptied; breaker finding).
    if summary.files == 0 && a.output.is_some() {
        eprintln!("tracehunt: nothing could be read from the given paths (no output written)");
        for f in &summary.files_skipped {
            eprintln!("  - {}: {}", f.path, f.reason);
        }
        return Ok(crate::EXIT_NOTHING_READ);
    }
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let html_meta = tracehunt_pipeline::html_out::HtmlMeta {
        title: html_title(&a.paths),
        generated_at: chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        tool_version: concat!("tracehunt ", env!("CARGO_PKG_VERSION")).to_owned(),
    };
    let cx = sink::Context {
        ruleset: rs,
        kb: &kb,
        summary: &summary,
        attribution: &attribution,
        feeds: feeds.as_ref(),
        max_rows: a.max_rows,
        table_style: tracehunt_report::TableStyle {
            list_all_skipped: a.verbose,
            ..a.display.style(a.output.is_none())
        },
        overlay: a.overlay.as_deref(),
        incidents: Some(&incidents),
        html: Some(&html_meta),
        tlp: a.tlp.unwrap_or_default(),
    };
    sink::write_ordered(&mut out, format.output(), &scanned, &cx)?;
    out.flush()?;
    debug_mem_note(debug_mem, "output written", "");
    drop(out);
    if let Some(store) = &mut store {
        crate::store_cmd::record_hunt(
            store,
            &a,
            start_time,
            (loaded, &kb),
            (&scanned, &incidents, &summary),
        )?;
    }
    let losses = a
        .verbose
        .then_some((&scanned.losses[..], scanned.losses_not_listed));
    // The table on stdout has its own summary and attribution; anything
    // else (a machine format, or any format into -o FILE) gets them on
    // stderr (issue #19: piped or -o runs showed no attribution).
    let table_on_stdout = format == Format::Table && a.output.is_none();
    if !table_on_stdout && !a.quiet {
        stderr_summary(
            &summary,
            (loaded, losses),
            feeds.is_some().then_some(scanned.ioc_hits.len()),
            (stderr_tty, &missing),
            a.verbose,
        );
        stderr_verdict(&attribution);
    } else if a.verbose {
        // The table lists the first 10 files with losses on stdout; `-v` names every loss.
        report_lost(&summary, losses);
    }
    if summary.files == 0 {
        eprintln!("tracehunt: nothing could be read from the given paths");
        for f in &summary.files_skipped {
            eprintln!("  - {}: {}", f.path, f.reason);
        }
        return Ok(crate::EXIT_NOTHING_READ);
    }
    if !missing.is_empty() {
        eprintln!(
            "tracehunt: {} not found (named above); the others were read",
            counted(missing.len() as u64, "path", "paths")
        );
        return Ok(crate::EXIT_PATH_MISSING);
    }
    Ok(0)
}

/// The named paths that do not exist (not even as a broken symlink).
fn missing_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_err())
        .cloned()
        .collect()
}

/// The attribution's verdict and its top 3 candidates, one line each, on
/// stderr (for runs whose stdout is not the table).
fn stderr_verdict(a: &tracehunt_attribution::Attribution) {
    eprintln!("tracehunt: attribution: {}", a.reason);
    if let Some(line) = tracehunt_pipeline::evidence::state_line(a) {
        eprintln!("tracehunt:   {line}");
    }
    for c in a.candidates.iter().take(3) {
        eprintln!(
            "tracehunt:   {}. {} {}  confidence {} ({})",
            c.rank, c.id, c.name, c.confidence, c.confidence_label
        );
    }
}

/// Flag combinations clap cannot check: usage errors (exit 1) before any work.
/// The format `-o FILE`'s extension names when `-f` is absent: `.csv`,
/// `.json`, `.jsonl`/`.ndjson`, `.html`, `.stix`/`.stix.json`; `None`
/// otherwise (JSON lines then).
fn format_from_output(a: &HuntArgs) -> Option<Format> {
    if a.format.is_some() {
        return None;
    }
    let name = a
        .output
        .as_ref()?
        .file_name()?
        .to_string_lossy()
        .to_ascii_lowercase();
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "csv" => Format::Csv,
        "json" if name.ends_with(".stix.json") => Format::Stix,
        "json" => Format::Json,
        "jsonl" | "ndjson" => Format::Jsonl,
        "html" | "htm" => Format::Html,
        "stix" => Format::Stix,
        _ => return None,
    })
}

fn check_args(a: &HuntArgs) -> Result<()> {
    // Fresh-user finding: `--overlay` without the Navigator format was silently ignored.
    // clap's `requires` can only demand that `--format` be present, not its value; so checked
    // here, before any work, as the same usage error (exit 1).
    if let (Some(g), false) = (
        &a.overlay,
        a.format.or(format_from_output(a)) == Some(Format::Navigator),
    ) {
        anyhow::bail!(
            "--overlay {g} only applies to an ATT&CK Navigator layer: add --format navigator (or run `tracehunt navigator`)"
        );
    }
    if let (Some(t), false) = (
        a.tlp,
        a.format.or(format_from_output(a)) == Some(Format::Stix),
    ) {
        anyhow::bail!(
            "--tlp {} only applies to a STIX bundle: add --format stix",
            t.as_str()
        );
    }
    if let (Some(f), Some(t)) = (a.from, a.to) {
        if f > t {
            anyhow::bail!("--from ({f}) is after --to ({t}): the time window is empty");
        }
    }
    Ok(())
}

/// The progress bar over `units` work units (hidden unless `show` and more than one).
fn progress_bar(show: bool, units: usize) -> ProgressBar {
    if !show || units <= 1 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(units as u64);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} chunks/files {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

/// The summary before the scan: rule counts and the time window.
fn start_summary(a: &HuntArgs, loaded: &rules::Loaded) -> Summary {
    let rule_counts = rules::RuleCounts::of(loaded, a.min_level as u8);
    Summary {
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
    }
}

/// Rule errors and counts on stderr before the scan.
fn report_rules(a: &HuntArgs, loaded: &rules::Loaded, summary: &Summary, stderr_tty: bool) {
    if a.quiet {
        // Fresh-user finding: `-q` promises "only errors" but said nothing
        // of rules that failed to load. One line, whatever their number.
        if summary.rules_failed > 0 {
            eprintln!(
                "tracehunt: {} to load (run without -q, or `tracehunt rules check`, for details)",
                counted(summary.rules_failed, "rule failed", "rules failed")
            );
        }
        return;
    }
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
            tracehunt_report::rules_line(summary)
        );
    }
}

/// Machine formats still get the summary and every skipped file on
/// stderr (stdout carries only the chosen format). `ioc_hits`: the number
/// of IOC hits when feeds were given.
fn stderr_summary(
    summary: &Summary,
    (loaded, losses): (&rules::Loaded, Option<(&[Loss], u64)>),
    ioc_hits: Option<usize>,
    (stderr_tty, missing): (bool, &[PathBuf]),
    verbose: bool,
) {
    // Missing named paths were reported as errors already.
    let named_missing = |f: &Skipped| missing.iter().any(|p| p.display().to_string() == f.path);
    let skipped: Vec<Skipped> = summary
        .files_skipped
        .iter()
        .filter(|f| !named_missing(f))
        .cloned()
        .collect();
    // Thousands of non-log files (a KAPE folder) would bury the summary: the
    // first ones, then a count (-v lists them all; JSON keeps every one).
    let listed = if verbose {
        skipped.len()
    } else {
        tracehunt_report::SKIPPED_LISTED
    };
    for f in skipped.iter().take(listed) {
        eprintln!("tracehunt: skipped {}: {}", f.path, f.reason);
    }
    if let Some(more) = tracehunt_report::skipped_more_line(&skipped, listed) {
        eprintln!("tracehunt: {more}");
    }
    report_lost(summary, losses);
    if let Some(n) = summary
        .time_window
        .as_ref()
        .map(|tw| tw.events_without_time)
        .filter(|n| *n > 0)
    {
        eprintln!("tracehunt: {}", tracehunt_report::untimed_note(n));
    }
    // Issue #20: read past damaged EVTX signatures with no word of it.
    for f in &summary.files_with_repaired_signatures {
        eprintln!("tracehunt: {}", tracehunt_report::repaired_note(f));
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
    if let Some(note) = tracehunt_report::channels_without_rules_note(summary) {
        eprintln!("tracehunt: warning: {note}");
    }
    for f in &summary.files_with_incomplete_events {
        eprintln!(
            "tracehunt: {} without an EventID or a time in {} (first: {}): scanned, but rules whose logsource names EventIDs cannot match them",
            counted(f.events, "event", "events"),
            f.path,
            f.first
        );
    }
    eprintln!(
        "tracehunt: {} in {} ({} skipped, {} skipped), {}{}, {:.2} s",
        counted(summary.events, "event", "events"),
        counted(summary.files, "file", "files"),
        counted(summary.files_skipped.len() as u64, "file", "files"),
        counted(summary.records_skipped, "record", "records"),
        counted(summary.detections, "detection", "detections"),
        match ioc_hits {
            Some(n) => format!(", {}", counted(n as u64, "IOC hit", "IOC hits")),
            None => String::new(),
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
            tracehunt_report::rules_line(summary)
        );
    }
}

/// Each file with lost records on stderr: how many and the first loss;
/// with `-v` (`losses`: [`Scanned::losses`](tracehunt_pipeline::Scanned::losses)
/// and how many were not listed) every loss of the file under it (issue
/// #20: `-v` named only the first).
fn report_lost(summary: &Summary, losses: Option<(&[Loss], u64)>) {
    let mut rest = losses.map_or(&[][..], |l| l.0);
    for f in &summary.files_with_record_errors {
        eprintln!(
            "tracehunt: {} lost in {} (first: {})",
            counted(f.records, "record", "records"),
            f.path,
            f.reason
        );
        // Losses come in file order, as the files do.
        let n = rest.iter().take_while(|l| l.path == f.path).count();
        for l in &rest[..n] {
            eprintln!(
                "tracehunt:   - {} ({})",
                l.reason,
                counted(l.records, "record", "records")
            );
        }
        rest = &rest[n..];
    }
    if let Some((_, n)) = losses.filter(|l| l.1 > 0) {
        eprintln!(
            "tracehunt:   … {} not listed (the first {} are)",
            counted(n, "more loss", "more losses"),
            tracehunt_pipeline::LOSS_LIST_CAP
        );
    }
}

/// With `TRACEHUNT_DEBUG_MEM` set (issue #4 accounting): prints the
/// process's resident memory now and at its peak so far (`VmRSS`, `VmHWM`
/// of `/proc/self/status`, Linux only) after a stage of the hunt, with
/// `what` (counts of what may grow), to stderr.
/// When `main` started (the time base of the `TRACEHUNT_DEBUG_MEM` notes).
pub static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Milliseconds since `main` started ([`STARTED`]; 0 if it was not set).
fn process_ms() -> f64 {
    STARTED
        .get()
        .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e3)
}

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
        "tracehunt: mem {stage}: rss {} peak {} at {:.1} ms {what}",
        field("VmRSS:"),
        field("VmHWM:"),
        process_ms()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
