//! `tracehunt metrics`: the log inventory — EventIDs per channel,
//! computers, channels/providers, and per file its format, events, time
//! range, computers, channels and lost records
//! (`tracehunt_inventory::metrics`).

use crate::search_cmd::{
    cell, csv_cell, csv_io, csv_lines, time_cell, time_json, write_table, Input, ReadOpts,
};
use anyhow::Result;
use clap::{Args, ValueEnum};
use std::io::Write;
use tracehunt_inventory::metrics::Metrics;
use tracehunt_report::counted;

/// Which inventory `metrics` shows.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// EventIDs per channel, with names of common ones and shares.
    Eid,
    /// Events per computer.
    Computer,
    /// Events per channel and provider.
    Channel,
    /// Per file: format, events, first/last time, computers, channels, lost records.
    File,
    /// All of the above.
    All,
}

/// Output formats of `metrics`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsFormat {
    /// Aligned text (default on a terminal).
    Table,
    /// One JSON document (default when piped).
    Json,
    /// CSV with a header row (one inventory: needs --by other than all).
    Csv,
}

#[derive(Args, Debug)]
pub struct MetricsArgs {
    #[command(flatten)]
    pub read: ReadOpts,
    /// Which inventory to show.
    #[arg(long, value_enum, ignore_case = true, default_value = "all")]
    pub by: By,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, short = 'f', value_enum, ignore_case = true)]
    pub format: Option<MetricsFormat>,
}

/// Runs `tracehunt metrics`.
pub fn run(a: MetricsArgs) -> Result<u8> {
    let format = a.format.unwrap_or(if a.read.on_terminal() {
        MetricsFormat::Table
    } else {
        MetricsFormat::Json
    });
    if format == MetricsFormat::Csv && a.by == By::All {
        anyhow::bail!("--format csv writes one inventory: add --by eid, computer, channel or file");
    }
    let input = a.read.input()?;
    let pending = a.read.open_output(&input)?;
    let m = input.fold(
        Metrics::default,
        |acc, unit| acc.add_unit(&input.window, unit),
        Metrics::merge,
    );
    let read = input.report(&m.stats, a.read.quiet);
    let total_line = format!(
        "{} in {} ({} read, {} outside the time window, {} lost)",
        counted(m.total(), "event", "events"),
        counted(read as u64, "file", "files"),
        counted(m.stats.events, "event", "events"),
        m.stats.outside_window,
        counted(m.stats.records_lost(), "record", "records"),
    );
    let mut out = pending.writer(read)?;
    match format {
        MetricsFormat::Table => {
            write_metrics_table(&mut *out, &m, &input, a.by, a.read.table_width())?;
            writeln!(out, "{total_line}")?;
        }
        MetricsFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &metrics_json(&m, &input, a.by, read))?;
            writeln!(out)?;
        }
        MetricsFormat::Csv => write_metrics_csv(&mut *out, &m, &input, a.by).map_err(csv_io)?,
    }
    out.flush()?;
    drop(out);
    if (format != MetricsFormat::Table || a.read.output.is_some()) && !a.read.quiet {
        eprintln!("tracehunt: {total_line}");
    }
    Ok(input.exit_code(read))
}

/// A set of names as one cell: the first 3, then `+N`.
fn names_cell(names: &std::collections::BTreeSet<String>) -> String {
    let mut v: Vec<String> = names.iter().take(3).map(|n| cell(n, 40)).collect();
    if names.len() > 3 {
        v.push(format!("+{}", names.len() - 3));
    }
    v.join(", ")
}

/// The table rows of one inventory: headers, right-aligned columns, rows.
type TableRows = (Vec<&'static str>, Vec<bool>, Vec<Vec<String>>);

fn rows_of(m: &Metrics, input: &Input, by: By) -> TableRows {
    let pct = |p: f64| format!("{p:.2}");
    match by {
        By::Eid => (
            vec!["count", "%", "channel", "EventID", "event"],
            vec![true, true, false, true, false],
            m.event_id_rows()
                .into_iter()
                .map(|r| {
                    vec![
                        r.count.to_string(),
                        pct(r.percent),
                        cell(&r.channel, 60),
                        r.event_id.map_or("-".into(), |i| i.to_string()),
                        r.name.unwrap_or("").to_owned(),
                    ]
                })
                .collect(),
        ),
        By::Computer => (
            vec!["count", "%", "computer"],
            vec![true, true, false],
            m.computer_rows()
                .into_iter()
                .map(|r| vec![r.count.to_string(), pct(r.percent), cell(&r.name, 60)])
                .collect(),
        ),
        By::Channel => (
            vec!["count", "%", "channel", "provider"],
            vec![true, true, false, false],
            m.channel_rows()
                .into_iter()
                .map(|r| {
                    vec![
                        r.count.to_string(),
                        pct(r.percent),
                        cell(&r.name, 60),
                        cell(r.provider.as_deref().unwrap_or(""), 50),
                    ]
                })
                .collect(),
        ),
        By::File | By::All => (
            vec![
                "events",
                "lost",
                "format",
                "first (UTC)",
                "last (UTC)",
                "computers",
                "channels",
                "file",
            ],
            vec![true, true],
            m.files
                .iter()
                .map(|(f, s)| {
                    let lost = m.stats.lost.get(f).map_or(0, |l| l.0);
                    vec![
                        s.events.to_string(),
                        lost.to_string(),
                        s.format.to_owned(),
                        time_cell(s.first),
                        time_cell(s.last),
                        names_cell(&s.computers),
                        names_cell(&s.channels),
                        input.files[*f].display().to_string(),
                    ]
                })
                .collect(),
        ),
    }
}

fn write_metrics_table(
    w: &mut dyn Write,
    m: &Metrics,
    input: &Input,
    by: By,
    width: usize,
) -> Result<()> {
    let all = [
        (By::Eid, "EventIDs per channel"),
        (By::Computer, "Computers"),
        (By::Channel, "Channels and providers"),
        (By::File, "Files"),
    ];
    for (b, title) in all.iter().filter(|(b, _)| by == By::All || by == *b) {
        writeln!(w, "{title}")?;
        let (headers, right, rows) = rows_of(m, input, *b);
        if rows.is_empty() {
            writeln!(w, "  none")?;
        } else {
            write_table(w, &headers, &right, &rows, width)?;
        }
        writeln!(w)?;
    }
    Ok(())
}

fn files_json(m: &Metrics, input: &Input) -> serde_json::Value {
    m.files
        .iter()
        .map(|(f, s)| {
            serde_json::json!({
                "file": input.files[*f].display().to_string(),
                "format": s.format,
                "events": s.events,
                "events_without_time": s.untimed,
                "first": time_json(s.first),
                "last": time_json(s.last),
                "computers": s.computers,
                "channels": s.channels,
                "records_lost": m.stats.lost.get(f).map_or(0, |l| l.0),
            })
        })
        .collect()
}

fn metrics_json(m: &Metrics, input: &Input, by: By, read: usize) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "events": m.total(),
        "events_read": m.stats.events,
        "events_outside_window": m.stats.outside_window,
        "records_lost": m.stats.records_lost(),
        "files_read": read,
        "files_unreadable": m.stats.unreadable.iter().map(|(f, reason)| serde_json::json!({
            "file": input.files[*f].display().to_string(),
            "reason": reason,
        })).collect::<Vec<_>>(),
    });
    let all = by == By::All;
    if all || by == By::Eid {
        doc["event_ids"] = serde_json::to_value(m.event_id_rows()).unwrap_or_default();
    }
    if all || by == By::Computer {
        doc["computers"] = serde_json::to_value(m.computer_rows()).unwrap_or_default();
    }
    if all || by == By::Channel {
        doc["channels"] = serde_json::to_value(m.channel_rows()).unwrap_or_default();
    }
    if all || by == By::File {
        doc["files"] = files_json(m, input);
    }
    doc
}

fn write_metrics_csv(w: &mut dyn Write, m: &Metrics, input: &Input, by: By) -> csv::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    if by == By::File {
        c.write_record([
            "file",
            "format",
            "events",
            "events_without_time",
            "first",
            "last",
            "computers",
            "channels",
            "records_lost",
        ])?;
        let t = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| tracehunt_inventory::rfc3339(&t))
                .unwrap_or_default()
        };
        for (f, s) in &m.files {
            c.write_record([
                csv_cell(&input.files[*f].display().to_string()),
                s.format.to_owned(),
                s.events.to_string(),
                s.untimed.to_string(),
                t(s.first),
                t(s.last),
                csv_lines(&s.computers),
                csv_lines(&s.channels),
                m.stats.lost.get(f).map_or(0, |l| l.0).to_string(),
            ])?;
        }
    } else {
        let (headers, _, _) = rows_of(m, input, by);
        c.write_record(
            headers
                .iter()
                .map(|h| if *h == "%" { "percent" } else { h }),
        )?;
        // Full values (the table's cells are cut).
        match by {
            By::Eid => {
                for r in m.event_id_rows() {
                    c.write_record([
                        r.count.to_string(),
                        r.percent.to_string(),
                        csv_cell(&r.channel),
                        r.event_id.map(|i| i.to_string()).unwrap_or_default(),
                        csv_cell(r.name.unwrap_or("")),
                    ])?;
                }
            }
            _ => {
                let rows = if by == By::Computer {
                    m.computer_rows()
                } else {
                    m.channel_rows()
                };
                for r in rows {
                    let mut rec = vec![
                        r.count.to_string(),
                        r.percent.to_string(),
                        csv_cell(&r.name),
                    ];
                    if by == By::Channel {
                        rec.push(csv_cell(r.provider.as_deref().unwrap_or("")));
                    }
                    c.write_record(rec)?;
                }
            }
        }
    }
    c.flush()?;
    Ok(())
}
