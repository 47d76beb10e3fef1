//! `hunt`'s display flags (issue #19): colour, terminal width, the time
//! zone and format of the table's times. They change only the table (and
//! the summary on a terminal); machine formats keep UTC.

use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use tracehunt_report::{DisplayZone, TableStyle, TimeFormat};

/// `--color` (ripgrep's and Hayabusa's choice of words).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour when standard output is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always colour (also into a pipe or `-o` file).
    Always,
    /// Never colour.
    Never,
}

/// `--time-format`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimeFormatArg {
    /// `2019-05-01 19:00:00` (the zone is in the column header).
    #[default]
    Plain,
    /// ISO 8601 with milliseconds and offset: `2019-05-01T19:00:00.000+09:00`.
    Iso,
    /// RFC 3339 to the second with offset: `2019-05-01T19:00:00+09:00`.
    Rfc3339,
}

/// The table's display flags.
#[derive(Args, Debug, Default)]
pub struct DisplayOpts {
    /// Colour the table by level: auto (on a terminal, unless NO_COLOR is
    /// set), always, never.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorChoice,
    /// Same as --color never.
    #[arg(long, conflicts_with = "color")]
    pub no_color: bool,
    /// Show the table's times in this IANA time zone (Asia/Tokyo,
    /// Europe/Berlin). Only the table and its summary: JSONL, JSON, CSV,
    /// STIX and the store stay UTC.
    #[arg(long, value_name = "ZONE", value_parser = DisplayZone::named, conflicts_with_all = ["local", "utc"])]
    pub timezone: Option<DisplayZone>,
    /// Show the table's times in this machine's local time zone.
    #[arg(long, conflicts_with = "utc")]
    pub local: bool,
    /// Show the table's times in UTC (the default).
    #[arg(long)]
    pub utc: bool,
    /// How the table writes times: plain (`2019-05-01 19:00:00`, zone in
    /// the header), iso (ISO 8601 with ms and offset), rfc3339.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        default_value = "plain",
        value_name = "FORMAT"
    )]
    pub time_format: TimeFormatArg,
}

/// Columns used when the width is unknown (not a terminal, no `COLUMNS`).
pub const DEFAULT_WIDTH: usize = 120;

/// The columns a table row may take: `COLUMNS` when set (a number ≥ 40),
/// else the terminal's when standard output is one and `to_stdout`, else
/// [`DEFAULT_WIDTH`] (`hunt`'s table, and those of `search`,
/// `logon-summary`, `metrics`).
pub fn table_width(to_stdout: bool) -> usize {
    let tty = to_stdout && std::io::stdout().is_terminal();
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w >= 40)
        .or_else(|| {
            tty.then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
                .flatten()
        })
        .unwrap_or(DEFAULT_WIDTH)
}

impl DisplayOpts {
    /// The table style: width from `COLUMNS` when set (a number ≥ 40), else
    /// the terminal's when standard output is one and `to_stdout`, else
    /// [`DEFAULT_WIDTH`]; colour per [`ColorChoice`].
    pub fn style(&self, to_stdout: bool) -> TableStyle {
        let tty = to_stdout && std::io::stdout().is_terminal();
        let width = table_width(to_stdout);
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match (self.no_color, self.color) {
            (true, _) | (false, ColorChoice::Never) => false,
            (false, ColorChoice::Always) => true,
            (false, ColorChoice::Auto) => tty && !no_color_env,
        };
        let zone = match (self.timezone, self.local) {
            (Some(z), _) => z,
            (None, true) => DisplayZone::Local,
            (None, false) => DisplayZone::Utc,
        };
        TableStyle {
            width,
            color,
            zone,
            time_format: match self.time_format {
                TimeFormatArg::Plain => TimeFormat::Plain,
                TimeFormatArg::Iso => TimeFormat::Iso,
                TimeFormatArg::Rfc3339 => TimeFormat::Rfc3339,
            },
            list_all_skipped: false,
        }
    }
}
