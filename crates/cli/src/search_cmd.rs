//! `tracehunt search`: events matching keywords, a regex and `field:value`
//! filters (`tracehunt_inventory::search`), plus the reading options,
//! output and table helpers `logon-summary` and `metrics` share.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tracehunt_inventory::search::{FieldFilter, Query, SearchAcc};
use tracehunt_inventory::{ReadStats, Window};
use tracehunt_pipeline::FileSource;
use tracehunt_report::counted;

/// Inputs, time window, threads, output and quiet: shared by `search`,
/// `logon-summary` and `metrics`.
#[derive(Args, Debug)]
// Paths or `-d` directories, named together in the usage error (as `hunt`).
#[command(group(clap::ArgGroup::new("input").args(["paths", "directory"]).required(true).multiple(true)))]
pub struct ReadOpts {
    /// Log files or directories (walked recursively; every format `hunt`
    /// reads, detected by content).
    pub paths: Vec<PathBuf>,
    /// A log directory, as Hayabusa's `-d` (repeatable; the same as giving it
    /// as a path; `hunt` has it too).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub directory: Vec<PathBuf>,
    /// Only events at or after this time (as `hunt --from`).
    #[arg(long, value_name = "TIME", value_parser = crate::hunt::parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Only events at or before this time (as `hunt --to`; a bare date is
    /// the end of that day).
    #[arg(long, value_name = "TIME", value_parser = crate::hunt::parse_time_end)]
    pub to: Option<DateTime<Utc>>,
    /// Worker threads, 1–1024 (default: all cores); the output is the same.
    #[arg(long, short = 't', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Write the output here instead of standard output (an existing file
    /// only with --clobber; never one of the input files).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Let -o overwrite an existing file (`-C` as in Hayabusa).
    #[arg(long, short = 'C', requires = "output")]
    pub clobber: bool,
    /// No count line, skipped non-log files or lost-record notes on
    /// stderr (a path that cannot be walked, e.g. mistyped, is always named).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Accepted for Hayabusa's spelling (fresh-user finding: the README's
    /// Hayabusa table lists it, and these commands rejected it); their
    /// tables have no colour.
    #[arg(long, hide = true)]
    pub no_color: bool,
}

/// The walked input and the worker pool.
pub(crate) struct Input {
    pub files: Vec<PathBuf>,
    pub walk_errors: Vec<tracehunt_readers::WalkError>,
    pub pool: rayon::ThreadPool,
    pub window: Window,
    /// The named paths that do not exist (named on stderr by [`Input::report`]).
    pub missing: Vec<PathBuf>,
}

/// The `-o` file, opened (not truncated) before any input is read, or
/// standard output.
pub(crate) struct Pending {
    file: Option<(PathBuf, std::fs::File, bool)>,
}

impl Pending {
    /// The writer: the `-o` file emptied, or standard output. When nothing
    /// could be read (`read == 0`) the `-o` file is left as it was (removed
    /// if this run created it) and the output goes nowhere.
    pub(crate) fn writer(self, read: usize) -> Result<Box<dyn Write>> {
        let Some((path, file, created)) = self.file else {
            return Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock())));
        };
        if read == 0 {
            drop(file);
            if created {
                let _ = std::fs::remove_file(&path);
            }
            return Ok(Box::new(std::io::sink()));
        }
        // Only a regular file is emptied: `-o /dev/null` cannot be.
        if file.metadata().is_ok_and(|m| m.is_file()) {
            file.set_len(0)
                .with_context(|| format!("emptying {}", path.display()))?;
        }
        Ok(Box::new(std::io::BufWriter::new(file)))
    }
}

/// True when `a` and `b` are the same file (same device and inode on Unix,
/// the same canonical path elsewhere).
pub(crate) fn same_file(a: &std::fs::Metadata, a_path: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = a_path;
        std::fs::metadata(b).is_ok_and(|m| m.dev() == a.dev() && m.ino() == a.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = a;
        match (std::fs::canonicalize(a_path), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
}

impl ReadOpts {
    /// The paths and the `-d` directories, in that order.
    fn all_paths(&self) -> Vec<PathBuf> {
        self.paths.iter().chain(&self.directory).cloned().collect()
    }

    /// Checks the window, starts the pool and walks the paths.
    pub(crate) fn input(&self) -> Result<Input> {
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f > t {
                anyhow::bail!("--from ({f}) is after --to ({t}): the time window is empty");
            }
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(self.threads.unwrap_or(0)))
            .build()
            .context("starting worker threads")?;
        let paths = self.all_paths();
        let (files, walk_errors) = tracehunt_readers::walk(&paths);
        let missing = paths
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_err())
            .cloned()
            .collect();
        Ok(Input {
            files,
            walk_errors,
            pool,
            window: Window {
                from: self.from,
                to: self.to,
            },
            missing,
        })
    }

    /// Checks and opens `-o` before any input is read (as `hunt`): an
    /// existing regular file only with `--clobber`, never one of the input
    /// files; opened without truncating (see [`Pending::writer`]).
    pub(crate) fn open_output(&self, input: &Input) -> Result<Pending> {
        let Some(p) = &self.output else {
            return Ok(Pending { file: None });
        };
        crate::store_cmd::check_output_path(p)?;
        let existing = std::fs::metadata(p).ok();
        if let Some(m) = &existing {
            if self
                .all_paths()
                .iter()
                .chain(&input.files)
                .any(|f| same_file(m, p, f))
            {
                // The words of `hunt` (fresh-user finding: two wordings).
                anyhow::bail!(
                    "--output {} is one of the input files: choose another output path",
                    p.display()
                );
            }
            crate::store_cmd::refuse_clobber(p, self.clobber)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .with_context(|| format!("creating {}", p.display()))?;
        Ok(Pending {
            file: Some((p.clone(), file, existing.is_none())),
        })
    }

    /// The columns a table row may take (as `hunt`'s table: `COLUMNS`, the
    /// terminal's width, else 120).
    pub(crate) fn table_width(&self) -> usize {
        crate::display_opts::table_width(self.output.is_none())
    }

    /// True when the output is a terminal (the default format is then `table`).
    pub(crate) fn on_terminal(&self) -> bool {
        self.output.is_none() && std::io::stdout().is_terminal()
    }
}

impl Input {
    /// Runs `each` over every unit of the input, one accumulator per thread
    /// (`init`), and merges them with `merge`.
    pub(crate) fn fold<A: Send>(
        &self,
        init: impl Fn() -> A + Sync,
        each: impl Fn(&mut A, tracehunt_pipeline::WorkUnit) + Sync,
        merge: impl Fn(&mut A, A),
    ) -> A {
        let source = FileSource::plan(&self.files, self.pool.current_num_threads());
        let mut accs = tracehunt_inventory::fold_units(&self.pool, &source, init, each);
        let mut first = accs.pop().expect("a pool has at least one thread");
        for a in accs {
            merge(&mut first, a);
        }
        first
    }

    /// Names on stderr every path that could not be walked or read (always)
    /// and, unless `quiet`, every file with lost records; returns the number
    /// of files read.
    pub(crate) fn report(&self, stats: &ReadStats, quiet: bool) -> usize {
        for e in &self.walk_errors {
            let p = e.path.as_ref().map(|p| p.display().to_string());
            eprintln!(
                "tracehunt: skipped {}: {}",
                p.as_deref().unwrap_or("?"),
                e.reason
            );
        }
        if !quiet {
            for (f, reason) in &stats.unreadable {
                eprintln!("tracehunt: skipped {}: {reason}", self.files[*f].display());
            }
            for (f, (n, first)) in &stats.lost {
                eprintln!(
                    "tracehunt: {} lost in {} (first: {first})",
                    counted(*n, "record", "records"),
                    self.files[*f].display()
                );
            }
        }
        self.files.len() - stats.unreadable.len()
    }

    /// The exit code once the output is written: 2 when nothing could be
    /// read, 1 when a named path does not exist (as `hunt`: the others were
    /// read), else 0; each said on stderr, whatever `-q` says.
    pub(crate) fn exit_code(&self, read: usize) -> u8 {
        if read == 0 {
            eprintln!("tracehunt: nothing could be read from the given paths");
            crate::EXIT_NOTHING_READ
        } else if !self.missing.is_empty() {
            eprintln!(
                "tracehunt: {} not found (named above); the others were read",
                counted(self.missing.len() as u64, "path", "paths")
            );
            crate::EXIT_PATH_MISSING
        } else {
            0
        }
    }
}

/// A time as tables show it: `YYYY-MM-DD HH:MM:SS` (UTC), or `-`.
pub(crate) fn time_cell(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".to_owned(), |t| {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    })
}

/// A time as JSON and CSV write it: RFC 3339 UTC, or null / empty.
pub(crate) fn time_json(t: Option<DateTime<Utc>>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        tracehunt_inventory::rfc3339(&t).into()
    })
}

/// One line of text at most `max` characters: control characters (line
/// breaks, tabs) become spaces, a longer text ends with `…`.
pub(crate) fn cell(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max + 1)
        .collect();
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
    }
    if out.is_empty() {
        "-".to_owned()
    } else {
        out
    }
}

/// Writes an aligned text table: a header, a rule, the rows; columns
/// separated by two spaces, those marked in `right` right-aligned; the
/// last column is not padded. Every cell goes through
/// [`tracehunt_report::terminal_safe`] (no escape, bidi or zero-width
/// characters) and a row fits in `max_width` columns: the widest column is
/// cut (with `…`) until it does, as `hunt`'s table.
pub(crate) fn write_table(
    w: &mut dyn Write,
    headers: &[&str],
    right: &[bool],
    rows: &[Vec<String>],
    max_width: usize,
) -> std::io::Result<()> {
    use tracehunt_report::{fit, terminal_safe, text_width};
    let safe = |s: &str| terminal_safe(s).into_owned();
    let hs: Vec<String> = headers.iter().map(|h| safe(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| safe(c)).collect())
        .collect();
    let mut width: Vec<usize> = hs.iter().map(|h| text_width(h)).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(text_width(c));
        }
    }
    let gaps = 2 * width.len().saturating_sub(1);
    while width.iter().sum::<usize>() + gaps > max_width {
        let Some((i, &widest)) = width.iter().enumerate().max_by_key(|(_, w)| **w) else {
            break;
        };
        if widest <= 4 {
            break;
        }
        width[i] -= 1;
    }
    let line = |w: &mut dyn Write, cells: &[String]| -> std::io::Result<()> {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let c = fit(c, width[i]);
            let pad = width[i].saturating_sub(text_width(&c));
            if right.get(i).copied().unwrap_or(false) {
                s.push_str(&" ".repeat(pad));
                s.push_str(&c);
            } else {
                s.push_str(&c);
                if i < last {
                    s.push_str(&" ".repeat(pad));
                }
            }
            if i < last {
                s.push_str("  ");
            }
        }
        writeln!(w, "{}", s.trim_end())
    };
    line(w, &hs)?;
    let rule: Vec<String> = width.iter().map(|n| "─".repeat(*n)).collect();
    line(w, &rule)?;
    for r in &rows {
        line(w, r)?;
    }
    Ok(())
}

/// A CSV cell a spreadsheet will not run as a formula
/// ([`tracehunt_report::csv_safe`], as `hunt`'s CSV) and without control
/// characters (ESC, BEL, NUL… become spaces; line breaks too).
pub(crate) fn csv_cell(s: &str) -> String {
    tracehunt_report::csv_safe(s)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Several values as one CSV cell, one per line: each value cleaned as
/// [`csv_cell`], the joined cell made formula-safe.
pub(crate) fn csv_lines<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> String {
    let joined: Vec<String> = values
        .into_iter()
        .map(|v| {
            v.as_ref()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        })
        .collect();
    tracehunt_report::csv_safe(&joined.join("\n")).into_owned()
}

/// A CSV writer's error as the I/O error it wraps, so that a closed pipe
/// (`… -f csv | head`) ends the run quietly as with the other formats.
pub(crate) fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        k => std::io::Error::other(format!("{k:?}")),
    }
}

/// Output formats of `search` and `logon-summary`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsFormat {
    /// Aligned text (default on a terminal).
    Table,
    /// One JSON object per line (default when piped).
    Jsonl,
    /// CSV with a header row.
    Csv,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub read: ReadOpts,
    /// Keyword: events with a field value containing it (repeatable: any
    /// of them; all of them with --and).
    #[arg(long, short = 'k', value_name = "KEYWORD")]
    pub keyword: Vec<String>,
    /// With several -k: an event must contain every keyword (in any fields).
    /// Hayabusa's `--and-logic` is accepted too.
    #[arg(long, visible_alias = "and-logic")]
    pub and: bool,
    /// Regular expression (Rust `regex` syntax, unanchored) one of the
    /// event's field values must match.
    #[arg(long = "regex", short = 'e', value_name = "RE")]
    pub regex: Option<String>,
    /// NAME:VALUE: the event's field NAME (as Sigma rules name it:
    /// EventID, Image, TargetUserName…; case-insensitive) equals VALUE, `*`
    /// matching any text, case-insensitively (repeatable: all must hold).
    /// Hayabusa's `-F/--filter` is accepted too.
    #[arg(long, short = 'F', visible_alias = "filter", value_name = "NAME:VALUE")]
    pub field: Vec<String>,
    /// Keywords and the regex ignore case (field values always do).
    #[arg(long, short = 'i')]
    pub ignore_case: bool,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, short = 'f', value_enum, ignore_case = true)]
    pub format: Option<RowsFormat>,
}

/// Runs `tracehunt search`.
pub fn run(a: SearchArgs) -> Result<u8> {
    let fields = a
        .field
        .iter()
        .map(|f| FieldFilter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let q = Query::new(&a.keyword, a.and, a.regex.as_deref(), fields, a.ignore_case)?;
    let format = a.format.unwrap_or(if a.read.on_terminal() {
        RowsFormat::Table
    } else {
        RowsFormat::Jsonl
    });
    let input = a.read.input()?;
    let pending = a.read.open_output(&input)?;
    let mut acc = input.fold(
        SearchAcc::default,
        |acc, unit| acc.add_unit(&q, &input.window, unit),
        SearchAcc::merge,
    );
    acc.finish();
    let read = input.report(&acc.stats, a.read.quiet);
    let count_line = format!(
        "{} matched in {} ({} read)",
        counted(acc.hits.len() as u64, "event", "events"),
        counted(acc.files_matched() as u64, "file", "files"),
        read
    );
    let mut out = pending.writer(read)?;
    match format {
        RowsFormat::Table => {
            write_hits_table(&mut *out, &acc, a.read.table_width())?;
            writeln!(out, "{count_line}")?;
        }
        RowsFormat::Jsonl => {
            for h in &acc.hits {
                serde_json::to_writer(&mut *out, &hit_json(h, &input.files))?;
                writeln!(out)?;
            }
        }
        RowsFormat::Csv => write_hits_csv(&mut *out, &acc, &input.files).map_err(csv_io)?,
    }
    out.flush()?;
    drop(out);
    if (format != RowsFormat::Table || a.read.output.is_some()) && !a.read.quiet {
        eprintln!("tracehunt: {count_line}");
    }
    Ok(input.exit_code(read))
}

/// `value` as a [`cell`] of at most `max` characters that shows the match
/// at byte `at`: a long value whose match lies further than 20 characters
/// in starts with `…` 20 characters before it (a keyword deep in a script
/// block stays visible).
fn around(value: &str, at: usize, max: usize) -> String {
    let before = value.get(..at).map_or(0, |p| p.chars().count());
    if before <= 20 || value.chars().count() <= max {
        return cell(value, max);
    }
    let skip = before - 20;
    let rest: String = value.chars().skip(skip).collect();
    format!("…{}", cell(&rest, max - 1))
}

/// The matching fields of a hit as `name=value` cells, at most 3 (then
/// `+N more`), each value cut to 80 characters around its match.
fn snippets_cell(h: &tracehunt_inventory::search::Hit) -> String {
    let mut parts: Vec<String> = h
        .snippets
        .iter()
        .take(3)
        .map(|s| format!("{}={}", s.name, around(&s.value, s.at, 80)))
        .collect();
    if h.snippets.len() > 3 {
        parts.push(format!("+{} more", h.snippets.len() - 3));
    }
    parts.join(" ¦ ")
}

fn write_hits_table(w: &mut dyn Write, acc: &SearchAcc, width: usize) -> Result<()> {
    let rows: Vec<Vec<String>> = acc
        .hits
        .iter()
        .map(|h| {
            let m = &h.event.meta;
            vec![
                time_cell(h.time),
                cell(m.computer.as_deref().unwrap_or(""), 30),
                cell(m.channel.as_deref().unwrap_or(""), 45),
                m.event_id.map_or("-".into(), |i| i.to_string()),
                m.record_id.map_or("-".into(), |i| i.to_string()),
                snippets_cell(h),
            ]
        })
        .collect();
    if !rows.is_empty() {
        write_table(
            w,
            &[
                "time (UTC)",
                "computer",
                "channel",
                "EventID",
                "record",
                "matches",
            ],
            &[false, false, false, true, true, false],
            &rows,
            width,
        )?;
    }
    Ok(())
}

/// A hit as one JSON object: time, computer, channel, provider, EventID,
/// record id, file, the matching fields and the whole event.
fn hit_json(h: &tracehunt_inventory::search::Hit, files: &[PathBuf]) -> serde_json::Value {
    let m = &h.event.meta;
    serde_json::json!({
        "timestamp": time_json(h.time),
        "computer": m.computer,
        "channel": m.channel,
        "provider": m.provider,
        "event_id": m.event_id,
        "record_id": m.record_id,
        "source": files[h.file].display().to_string(),
        "matches": h.snippets,
        "event": tracehunt_inventory::event_fields_json(&h.event),
    })
}

fn write_hits_csv(w: &mut dyn Write, acc: &SearchAcc, files: &[PathBuf]) -> csv::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record([
        "timestamp",
        "computer",
        "channel",
        "provider",
        "event_id",
        "record_id",
        "source",
        "matches",
        "event",
    ])?;
    for h in &acc.hits {
        let m = &h.event.meta;
        let matches = h.snippets.iter().map(|s| format!("{}={}", s.name, s.value));
        c.write_record([
            h.time
                .map(|t| tracehunt_inventory::rfc3339(&t))
                .unwrap_or_default(),
            csv_cell(m.computer.as_deref().unwrap_or_default()),
            csv_cell(m.channel.as_deref().unwrap_or_default()),
            csv_cell(m.provider.as_deref().unwrap_or_default()),
            m.event_id.map(|i| i.to_string()).unwrap_or_default(),
            m.record_id.map(|i| i.to_string()).unwrap_or_default(),
            csv_cell(&files[h.file].display().to_string()),
            csv_lines(matches),
            csv_cell(&tracehunt_inventory::event_fields_json(&h.event).to_string()),
        ])?;
    }
    c.flush()?;
    Ok(())
}
