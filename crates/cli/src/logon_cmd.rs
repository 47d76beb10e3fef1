//! `tracehunt logon-summary`: successful and failed logons and RDP
//! sessions grouped by user, domain, computer, logon type and source
//! (`tracehunt_inventory::logon`).

use crate::search_cmd::{
    cell, csv_cell, csv_io, time_cell, time_json, write_table, ReadOpts, RowsFormat,
};
use anyhow::Result;
use clap::Args;
use std::io::Write;
use tracehunt_inventory::logon::{LogonRow, LogonSummary, Section};
use tracehunt_report::counted;

#[derive(Args, Debug)]
pub struct LogonArgs {
    #[command(flatten)]
    pub read: ReadOpts,
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, short = 'f', value_enum, ignore_case = true)]
    pub format: Option<RowsFormat>,
}

/// Runs `tracehunt logon-summary`.
pub fn run(a: LogonArgs) -> Result<u8> {
    let format = a.format.unwrap_or(if a.read.on_terminal() {
        RowsFormat::Table
    } else {
        RowsFormat::Jsonl
    });
    let input = a.read.input()?;
    let pending = a.read.open_output(&input)?;
    let sum = input.fold(
        LogonSummary::default,
        |acc, unit| acc.add_unit(&input.window, unit),
        LogonSummary::merge,
    );
    let read = input.report(&sum.stats, a.read.quiet);
    let rows = sum.rows();
    let totals = format!(
        "{}, {}, {} in {} ({} read)",
        counted(
            sum.total(Section::Successful),
            "successful logon",
            "successful logons"
        ),
        counted(sum.total(Section::Failed), "failed logon", "failed logons"),
        counted(
            sum.total(Section::Rdp),
            "RDP session event",
            "RDP session events"
        ),
        counted(sum.stats.events, "event", "events"),
        counted(read as u64, "file", "files"),
    );
    let mut out = pending.writer(read)?;
    match format {
        RowsFormat::Table => {
            write_logon_table(&mut *out, &rows, a.read.table_width())?;
            writeln!(out, "{totals}")?;
        }
        RowsFormat::Jsonl => {
            for r in &rows {
                serde_json::to_writer(&mut *out, &row_json(r))?;
                writeln!(out)?;
            }
        }
        RowsFormat::Csv => write_logon_csv(&mut *out, &rows).map_err(csv_io)?,
    }
    out.flush()?;
    drop(out);
    if (format != RowsFormat::Table || a.read.output.is_some()) && !a.read.quiet {
        eprintln!("tracehunt: {totals}");
    }
    Ok(input.exit_code(read))
}

fn logon_type_cell(r: &LogonRow) -> String {
    match (r.logon_type, r.logon_type_name) {
        (Some(t), Some(n)) => format!("{t} {n}"),
        (Some(t), None) => t.to_string(),
        _ => "-".into(),
    }
}

fn write_logon_table(w: &mut dyn Write, rows: &[LogonRow], width: usize) -> Result<()> {
    let sections = [
        (Section::Successful, "Successful logons (Security 4624)"),
        (Section::Failed, "Failed logons (Security 4625)"),
        (
            Section::Rdp,
            "RDP (Security 4778 reconnect, 4779 disconnect; RemoteConnectionManager 1149 auth)",
        ),
    ];
    for (i, (section, title)) in sections.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        writeln!(w, "{}", tracehunt_report::fit(title, width))?;
        let cells: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r.section == *section)
            .map(|r| {
                let mut c = vec![r.count.to_string()];
                if *section == Section::Rdp {
                    c.push(format!("{} {}", r.event_id, r.event));
                }
                c.extend([
                    cell(&r.user, 30),
                    cell(&r.domain, 20),
                    cell(&r.computer, 30),
                ]);
                if *section != Section::Rdp {
                    c.push(logon_type_cell(r));
                }
                c.extend([
                    cell(&r.source_ip, 39),
                    cell(&r.workstation, 20),
                    time_cell(r.first),
                    time_cell(r.last),
                ]);
                c
            })
            .collect();
        if cells.is_empty() {
            writeln!(w, "  none")?;
            continue;
        }
        let (headers, right): (Vec<&str>, Vec<bool>) = if *section == Section::Rdp {
            (
                vec![
                    "count",
                    "event",
                    "user",
                    "domain",
                    "computer",
                    "source IP",
                    "workstation",
                    "first (UTC)",
                    "last (UTC)",
                ],
                vec![true],
            )
        } else {
            (
                vec![
                    "count",
                    "user",
                    "domain",
                    "computer",
                    "logon type",
                    "source IP",
                    "workstation",
                    "first (UTC)",
                    "last (UTC)",
                ],
                vec![true],
            )
        };
        write_table(w, &headers, &right, &cells, width)?;
    }
    Ok(())
}

fn row_json(r: &LogonRow) -> serde_json::Value {
    serde_json::json!({
        "section": r.section.name(),
        "event_id": r.event_id,
        "event": r.event,
        "user": r.user,
        "domain": r.domain,
        "computer": r.computer,
        "logon_type": r.logon_type,
        "logon_type_name": r.logon_type_name,
        "source_ip": r.source_ip,
        "workstation": r.workstation,
        "count": r.count,
        "first": time_json(r.first),
        "last": time_json(r.last),
    })
}

fn write_logon_csv(w: &mut dyn Write, rows: &[LogonRow]) -> csv::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record([
        "section",
        "event_id",
        "event",
        "user",
        "domain",
        "computer",
        "logon_type",
        "logon_type_name",
        "source_ip",
        "workstation",
        "count",
        "first",
        "last",
    ])?;
    let t = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| tracehunt_inventory::rfc3339(&t))
            .unwrap_or_default()
    };
    for r in rows {
        c.write_record([
            r.section.name().to_owned(),
            r.event_id.to_string(),
            r.event.to_owned(),
            csv_cell(&r.user),
            csv_cell(&r.domain),
            csv_cell(&r.computer),
            r.logon_type.map(|t| t.to_string()).unwrap_or_default(),
            r.logon_type_name.unwrap_or("").to_owned(),
            csv_cell(&r.source_ip),
            csv_cell(&r.workstation),
            r.count.to_string(),
            t(r.first),
            t(r.last),
        ])?;
    }
    c.flush()?;
    Ok(())
}
