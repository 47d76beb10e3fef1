//! How the text table shows things on a terminal (issue #19): the width it
//! must fit, level colours, the time zone and format of the times it shows.
//! Machine formats (JSONL, JSON, CSV, STIX…) never use these: their times
//! stay UTC.

use anstyle::{Ansi256Color, AnsiColor, Style};
use chrono::{DateTime, Local, Utc};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The zone the table's times are shown in (`hunt --utc`, `--local`,
/// `--timezone NAME`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum DisplayZone {
    /// UTC (the default).
    #[default]
    Utc,
    /// The machine's local zone (chrono's `Local`: `TZ`, else
    /// `/etc/localtime`).
    Local,
    /// An IANA zone of the tz database compiled into `chrono-tz`
    /// (`Asia/Tokyo`, `Europe/Berlin`).
    Named(chrono_tz::Tz),
}

impl DisplayZone {
    /// Parses an IANA zone name (`Asia/Tokyo`; `UTC` gives [`DisplayZone::Utc`]).
    ///
    /// # Errors
    /// The name is not in the tz database: the message says so.
    pub fn named(name: &str) -> Result<Self, String> {
        if name.eq_ignore_ascii_case("utc") {
            return Ok(DisplayZone::Utc);
        }
        name.parse::<chrono_tz::Tz>()
            .map(DisplayZone::Named)
            .map_err(|_| {
                format!(
                    "`{name}` is not an IANA time zone name (like Asia/Tokyo, Europe/Berlin, UTC)"
                )
            })
    }

    /// The zone's name for column headers: `UTC`, `local` or the IANA name.
    pub fn label(&self) -> String {
        match self {
            DisplayZone::Utc => "UTC".into(),
            DisplayZone::Local => "local".into(),
            DisplayZone::Named(tz) => tz.name().into(),
        }
    }
}

/// How the table's times are written (`hunt --time-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2019-05-01 19:00:00` in the display zone (the zone named in the
    /// column header and the summary). The default.
    #[default]
    Plain,
    /// ISO 8601 with milliseconds and the offset: `2019-05-01T19:00:00.123+09:00`.
    Iso,
    /// RFC 3339 to the second with the offset: `2019-05-01T19:00:00+09:00`
    /// (`Z` for UTC).
    Rfc3339,
}

/// Everything the table writer needs to know about where it writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TableStyle {
    /// Columns a row may take (a row never wraps: longer text is cut with `…`).
    pub width: usize,
    /// Colour levels with ANSI escape codes (a terminal without `NO_COLOR`,
    /// or `--color always`).
    pub color: bool,
    /// The zone times are shown in.
    pub zone: DisplayZone,
    /// The format times are shown in.
    pub time_format: TimeFormat,
    /// List every skipped file (`-v`), not the first [`crate::SKIPPED_LISTED`].
    pub list_all_skipped: bool,
}

impl Default for TableStyle {
    /// 120 columns, no colour, UTC, [`TimeFormat::Plain`].
    fn default() -> Self {
        TableStyle {
            width: 120,
            color: false,
            zone: DisplayZone::Utc,
            time_format: TimeFormat::Plain,
            list_all_skipped: false,
        }
    }
}

impl TableStyle {
    /// `t` in the style's zone and format.
    pub fn time(&self, t: DateTime<Utc>) -> String {
        match self.zone {
            DisplayZone::Utc => self.fmt(t),
            DisplayZone::Local => self.fmt(t.with_timezone(&Local)),
            DisplayZone::Named(tz) => self.fmt(t.with_timezone(&tz)),
        }
    }

    /// The calendar day of `t` in the style's zone: `2019-05-01`.
    pub fn date(&self, t: DateTime<Utc>) -> String {
        match self.zone {
            DisplayZone::Utc => t.format("%Y-%m-%d").to_string(),
            DisplayZone::Local => t.with_timezone(&Local).format("%Y-%m-%d").to_string(),
            DisplayZone::Named(tz) => t.with_timezone(&tz).format("%Y-%m-%d").to_string(),
        }
    }

    fn fmt<Z: chrono::TimeZone>(&self, t: DateTime<Z>) -> String
    where
        Z::Offset: std::fmt::Display,
    {
        match self.time_format {
            TimeFormat::Plain => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            TimeFormat::Iso => t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
            TimeFormat::Rfc3339 => {
                let s = t.format("%Y-%m-%dT%H:%M:%S%:z").to_string();
                match s.strip_suffix("+00:00") {
                    Some(base) if self.zone == DisplayZone::Utc => format!("{base}Z"),
                    _ => s,
                }
            }
        }
    }

    /// `text` coloured for `level` (critical red bold, high orange, medium
    /// yellow, low green, informational as is) when colour is on.
    pub fn paint(&self, level: &str, text: &str) -> String {
        let style = level_style(level);
        if !self.color || style == Style::new() {
            return text.to_owned();
        }
        format!("{}{text}{}", style.render(), style.render_reset())
    }
}

/// The ANSI style of a Sigma level (Hayabusa's colours).
fn level_style(level: &str) -> Style {
    match level {
        "critical" => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
        "high" => Style::new().fg_color(Some(Ansi256Color(208).into())),
        "medium" => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        "low" => Style::new().fg_color(Some(AnsiColor::Green.into())),
        _ => Style::new(),
    }
}

/// The short level word of a table row: `crit`, `high`, `med`, `low`,
/// `info` (Hayabusa's abbreviations).
pub fn short_level(level: &str) -> &'static str {
    match level {
        "critical" => "crit",
        "high" => "high",
        "medium" => "med",
        "low" => "low",
        _ => "info",
    }
}

/// Columns `s` takes on a terminal (East Asian wide characters take 2).
pub fn text_width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` in at most `width` terminal columns: control characters become
/// spaces and longer text is cut, ending in `…`.
pub fn fit(s: &str, width: usize) -> String {
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    if text_width(s) <= width && !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    let total = text_width(s);
    let budget = if total <= width {
        width
    } else {
        width.saturating_sub(1)
    };
    for c in s.chars().map(clean) {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    if total > width && width > 0 {
        out.push('…');
    }
    out
}

/// `s` fitted to `width` columns and padded with spaces to exactly `width`.
pub fn pad(s: &str, width: usize) -> String {
    let mut out = fit(s, width);
    let w = text_width(&out);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokyo_is_nine_hours_ahead_of_utc() {
        let t = DateTime::parse_from_rfc3339("2019-05-01T20:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut st = TableStyle {
            zone: DisplayZone::named("Asia/Tokyo").unwrap(),
            ..TableStyle::default()
        };
        assert_eq!(st.time(t), "2019-05-02 05:30:00");
        assert_eq!(st.date(t), "2019-05-02");
        st.time_format = TimeFormat::Iso;
        assert_eq!(st.time(t), "2019-05-02T05:30:00.000+09:00");
        st.time_format = TimeFormat::Rfc3339;
        assert_eq!(st.time(t), "2019-05-02T05:30:00+09:00");
        st.zone = DisplayZone::Utc;
        assert_eq!(st.time(t), "2019-05-01T20:30:00Z");
        assert!(DisplayZone::named("Mars/Olympus").is_err());
    }

    #[test]
    fn fit_cuts_at_the_width_counting_wide_characters() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abcd", 4), "abcd");
        assert_eq!(fit("漢字漢字", 5), "漢字…");
        assert_eq!(text_width(&fit("漢字漢字", 5)), 5);
        assert_eq!(fit("a\x1bb", 5), "a b");
        assert_eq!(pad("ab", 4), "ab  ");
    }

    #[test]
    fn colour_only_when_asked() {
        let mut st = TableStyle::default();
        assert_eq!(st.paint("critical", "x"), "x");
        st.color = true;
        assert_eq!(st.paint("critical", "x"), "\x1b[1m\x1b[31mx\x1b[0m");
        assert_eq!(st.paint("informational", "x"), "x");
    }
}
