//! Incidents in the table and JSON outputs.

use crate::incident::{IncidentReport, Incidents};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value as J};
use std::io::{self, Write};
use tracehunt_engine::Ruleset;
use tracehunt_report::{counted, terminal_safe, TableStyle};

/// Sigma level word of a level rank (0 informational … 4 critical).
pub fn level_word(rank: u8) -> &'static str {
    match rank {
        4 => "critical",
        3 => "high",
        2 => "medium",
        1 => "low",
        _ => "informational",
    }
}

/// `t` in the table's display zone and time format (`--timezone`,
/// `--time-format`), as the detection rows show it.
fn time_text(t: Option<DateTime<Utc>>, style: &TableStyle) -> String {
    t.map_or("-".to_owned(), |t| style.time(t))
}

fn rfc3339(t: Option<DateTime<Utc>>) -> J {
    t.map_or(J::Null, |t| {
        J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    })
}

/// `a, b, c and N more` of the first `max` items, each made terminal-safe.
pub fn list(items: &[String], max: usize) -> String {
    let mut s = items
        .iter()
        .take(max)
        .map(|x| terminal_safe(x).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

/// A duration in its largest whole unit: `90 min`, `1 h`, `30 d`, `45 s`.
pub fn duration_text(secs: i64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s > 0 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The table section: incidents by severity (highest level first, then
/// time), at most `max` of them, each with its hosts, users, time range,
/// detections, top rules and its own top candidate and verdict.
///
/// # Errors
/// Writing `w` failed.
pub fn write_table<W: Write>(
    w: &mut W,
    incidents: &Incidents,
    rs: &Ruleset,
    max: usize,
    style: &TableStyle,
) -> io::Result<()> {
    writeln!(w)?;
    let n = incidents.reports.len() as u64;
    writeln!(
        w,
        "── Incidents ({}, by severity) ──────────────────────────",
        counted(n, "incident", "incidents")
    )?;
    let cfg = &incidents.config;
    writeln!(
        w,
        "Grouped per host by a {} session gap and a {} span cap, merged across hosts by shared rare entities ({}, {}).",
        duration_text(cfg.session_gap_secs),
        duration_text(cfg.max_span_secs),
        counted(incidents.merges as u64, "merge", "merges"),
        counted(
            incidents.entities_over_ceiling as u64,
            "entity too common to merge",
            "entities too common to merge"
        ),
    )?;
    if incidents.contexts_capped > 0 {
        writeln!(
            w,
            "Entity table full (over {} host/entity combinations): incidents grouped by host and time only, not merged across hosts.",
            incidents.context_cap
        )?;
    }
    if n == 0 {
        writeln!(w, "  none")?;
    }
    let sorted = incidents.by_severity();
    for r in sorted.iter().take(max) {
        write_one(w, r, rs, style)?;
    }
    if sorted.len() > max {
        writeln!(
            w,
            "  … {} (--format json lists them all)",
            counted(
                (sorted.len() - max) as u64,
                "more incident",
                "more incidents"
            )
        )?;
    }
    Ok(())
}

fn write_one<W: Write>(
    w: &mut W,
    r: &IncidentReport,
    rs: &Ruleset,
    style: &TableStyle,
) -> io::Result<()> {
    let i = &r.incident;
    writeln!(
        w,
        "  {}  {:<8}  {} → {}  {}  on {}",
        i.id,
        level_word(i.max_level),
        time_text(i.first, style),
        time_text(i.last, style),
        counted(i.detections, "detection", "detections"),
        list(&i.hosts, 4),
    )?;
    if !i.users.is_empty() {
        writeln!(w, "      users: {}", list(&i.users, 4))?;
    }
    let mut rules: Vec<(u32, u64)> = i.rules.clone();
    rules.sort_by(|a, b| {
        let (ra, rb) = (rs.rule(a.0 as usize), rs.rule(b.0 as usize));
        rb.level_rank.cmp(&ra.level_rank).then(b.1.cmp(&a.1))
    });
    let shown: Vec<String> = rules
        .iter()
        .take(3)
        .map(|&(r, c)| format!("{} ×{c}", terminal_safe(&rs.rule(r as usize).title)))
        .collect();
    let more = rules.len().saturating_sub(3);
    if !shown.is_empty() {
        writeln!(
            w,
            "      rules: {}{}",
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        )?;
    }
    if !r.ioc_hits.is_empty() {
        writeln!(
            w,
            "      {}",
            counted(r.ioc_hits.len() as u64, "IOC hit", "IOC hits")
        )?;
    }
    let a = &r.attribution;
    match a.candidates.first() {
        Some(c) => writeln!(
            w,
            "      attribution: {} {} confidence {} ({}); {}",
            c.id, c.name, c.confidence, c.confidence_label, a.reason
        )?,
        None => writeln!(w, "      attribution: {}", a.reason)?,
    }
    Ok(())
}

/// The `incidents` array of `--format json`, written one incident at a
/// time (never the whole array as one JSON tree): one object per incident
/// in time order with `id`, `first`/`last` (RFC 3339), `hosts`, `users`,
/// `max_level`, `detections`, `rules` (id, title, level, detections),
/// `tactics`, `techniques`, `entities` (kind, value), `ioc_hits` (count),
/// its own `attribution` (top 5 candidates with evidence) and
/// `attribution_verdict`.
///
/// # Errors
/// Writing `w` failed.
pub fn write_json<W: Write>(w: &mut W, incidents: &Incidents, rs: &Ruleset) -> io::Result<()> {
    w.write_all(b"[")?;
    for (k, r) in incidents.reports.iter().enumerate() {
        w.write_all(if k == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer_pretty(&mut *w, &one_json(r, rs)).map_err(io::Error::from)?;
    }
    w.write_all(if incidents.reports.is_empty() {
        b"]"
    } else {
        b"\n]"
    })
}

/// One incident as JSON (see [`write_json`]).
fn one_json(r: &IncidentReport, rs: &Ruleset) -> J {
    let i = &r.incident;
    json!({
        "id": i.id,
        "first": rfc3339(i.first),
        "last": rfc3339(i.last),
        "hosts": i.hosts,
        "users": i.users,
        "max_level": level_word(i.max_level),
        "detections": i.detections,
        "rules": i.rules.iter().map(|&(rule, n)| {
            let m = rs.rule(rule as usize);
            json!({"id": m.id, "title": m.title, "level": m.level, "detections": n})
        }).collect::<Vec<_>>(),
        "tactics": r.tactics,
        "techniques": r.techniques,
        "entities": i.entities.iter().map(|(k, v)| json!({"kind": k.as_str(), "value": v})).collect::<Vec<_>>(),
        "ioc_hits": r.ioc_hits.len(),
        "attribution": crate::evidence::attribution_json(&r.attribution, 5),
        "attribution_verdict": {
            "confident": r.attribution.confident,
            "reason": r.attribution.reason,
        },
    })
}
