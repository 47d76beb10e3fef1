//! `hunt --ioc FILE...`: load IOC feeds, scan events with them, report the hits and turn them
//! into attribution evidence.

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value as J};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{resolve_actor, IocObservation};
use tracehunt_event::Event;
use tracehunt_ioc::{IocHit, IocSet, IocSetBuilder, LoadReport};

/// One IOC found in one event.
#[derive(Debug, Clone)]
pub struct IocDetection {
    /// Event time.
    pub timestamp: Option<DateTime<Utc>>,
    /// `System/Computer`.
    pub computer: Option<String>,
    /// `System/Channel`.
    pub channel: Option<String>,
    /// `System/EventID`.
    pub event_id: Option<u32>,
    /// `System/EventRecordID`.
    pub record_id: Option<u64>,
    /// Log file.
    pub source: Arc<str>,
    /// What matched.
    pub hit: IocHit,
    /// The event's fields.
    pub fields: Vec<(String, J)>,
}

/// The loaded feeds: the compiled set and one report per file.
pub struct Feeds {
    /// All IOCs of all feeds.
    pub set: Arc<IocSet>,
    /// `(path, report)` per feed file, in command-line order.
    pub reports: Vec<(String, LoadReport)>,
}

/// Loads every `--ioc` file (format by content). A single file that is not a feed is a
/// configuration error (exit 1); in a directory such a file is skipped. Unless `quiet`, each
/// `--ioc` argument gets one summary line on stderr when something in it was unusable
/// (entries by type, files that are not feeds, diagnostics); `verbose` adds every file's
/// unusable entries and every diagnostic.
pub fn load(paths: &[PathBuf], quiet: bool, verbose: bool) -> Result<Option<Feeds>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut b = IocSetBuilder::default();
    let mut reports = Vec::new();
    for p in paths {
        // A directory means every .json/.csv/.txt file under it.
        let mut files = Vec::new();
        let is_dir = p.is_dir();
        if is_dir {
            for e in walkdir::WalkDir::new(p)
                .sort_by_file_name()
                .into_iter()
                .flatten()
            {
                let q = e.path();
                if e.file_type().is_file()
                    && q.extension()
                        .is_some_and(|x| x == "json" || x == "csv" || x == "txt")
                {
                    files.push(q.to_path_buf());
                }
            }
        } else {
            files.push(p.clone());
        }
        let mut tally = FeedTally::default();
        for f in &files {
            let text = crate::input::read_text_file(f)
                .with_context(|| format!("reading IOC feed {}", f.display()))?;
            let label = f.display().to_string();
            let r = match b.load(&text, &label) {
                Ok(r) => r,
                // One file that is not a feed must not sink the others.
                Err(e) if is_dir => {
                    if verbose && !quiet {
                        // The error names the file already.
                        eprintln!("tracehunt: warning: skipped IOC feed {e:#}");
                    }
                    tally.not_feeds.push(label);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if verbose && !quiet {
                for d in &r.diagnostics {
                    eprintln!("tracehunt: IOC feed {label}: {d}");
                }
                let skipped: usize = r.skipped.values().sum();
                if skipped > 0 {
                    eprintln!(
                        "tracehunt: IOC feed {label}: {}",
                        unusable_text(&r.skipped, usize::MAX)
                    );
                }
            }
            tally.add(&r);
            reports.push((label, r));
        }
        if !quiet {
            if let Some(line) = tally.line(&p.display().to_string(), files.len(), verbose) {
                eprintln!("tracehunt: {line}");
            }
        }
    }
    Ok(Some(Feeds {
        set: Arc::new(b.build()),
        reports,
    }))
}

/// What one `--ioc` argument (a file or a directory of feeds) yielded, summed over its files.
#[derive(Default)]
struct FeedTally {
    /// Feed files loaded.
    files: usize,
    /// IOCs loaded.
    loaded: usize,
    /// Entries read (MISP events, STIX indicators, CSV rows).
    entries: usize,
    /// Unusable entries by feed type or reason.
    skipped: BTreeMap<String, usize>,
    /// Diagnostics (rejected STIX patterns, repaired JSON, bad CSV rows).
    diagnostics: usize,
    /// Files in a directory that are not IOC feeds.
    not_feeds: Vec<String>,
}

impl FeedTally {
    fn add(&mut self, r: &LoadReport) {
        self.files += 1;
        self.loaded += r.total();
        self.entries += r.entries;
        for (k, n) in &r.skipped {
            *self.skipped.entry(k.clone()).or_default() += n;
        }
        self.diagnostics += r.diagnostics.len();
    }

    /// The one summary line of a `--ioc` argument, or None when everything in it was usable.
    fn line(&self, arg: &str, files: usize, verbose: bool) -> Option<String> {
        let unusable: usize = self.skipped.values().sum();
        if unusable == 0 && self.diagnostics == 0 && self.not_feeds.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if unusable > 0 {
            parts.push(unusable_text(&self.skipped, 5));
        }
        if !self.not_feeds.is_empty() {
            parts.push(format!(
                "skipped {} non-feed {} (first: {})",
                self.not_feeds.len(),
                plural(self.not_feeds.len(), "file", "files"),
                self.not_feeds[0]
            ));
        }
        if self.diagnostics > 0 {
            parts.push(format!(
                "{} {}",
                self.diagnostics,
                plural(self.diagnostics, "feed warning", "feed warnings")
            ));
        }
        let files = if files > 1 {
            format!(" ({files} files)")
        } else {
            String::new()
        };
        Some(format!(
            "IOC feed {arg}{files}: {} {} loaded; {}{}",
            self.loaded,
            plural(self.loaded, "IOC", "IOCs"),
            parts.join("; "),
            if verbose { "" } else { " (-v for details)" }
        ))
    }
}

/// "N entries unusable: 40 of type text, 12 of type filename, … and 3 more types", the
/// `max` most frequent types first.
fn unusable_text(skipped: &BTreeMap<String, usize>, max: usize) -> String {
    let total: usize = skipped.values().sum();
    let mut by_count: Vec<(&String, &usize)> = skipped.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut kinds: Vec<String> = by_count
        .iter()
        .take(max)
        .map(|(k, n)| {
            if k.starts_with("invalid ") {
                format!("{n} {k}")
            } else {
                format!("{n} of type {k}")
            }
        })
        .collect();
    if by_count.len() > max {
        let rest = by_count.len() - max;
        kinds.push(format!("and {rest} more {}", plural(rest, "type", "types")));
    }
    format!(
        "{total} {} unusable: {}",
        plural(total, "entry", "entries"),
        kinds.join(", ")
    )
}

/// `one` for 1, else `many`.
fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    crate::hunt::plural(n as u64, one, many)
}

/// Scans one event with the IOC set, appending a detection per hit.
pub fn scan_event(set: &IocSet, ev: &Event, source: &Arc<str>, out: &mut Vec<IocDetection>) {
    let hits = set.matches(ev);
    if hits.is_empty() {
        return;
    }
    let fields: Vec<(String, J)> = ev
        .fields()
        .map(|(k, v)| (k.to_owned(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    for hit in hits {
        out.push(IocDetection {
            timestamp: ev.meta.timestamp,
            computer: ev.meta.computer.clone(),
            channel: ev.meta.channel.clone(),
            event_id: ev.meta.event_id,
            record_id: ev.meta.record_id,
            source: source.clone(),
            hit,
            fields: fields.clone(),
        });
    }
}

/// `feed: id (title)` of a hit's first source.
fn source_text(h: &IocHit) -> String {
    h.sources
        .first()
        .map(|s| match &s.title {
            Some(t) => format!("{}: {} ({t})", s.feed, s.id),
            None => format!("{}: {}", s.feed, s.id),
        })
        .unwrap_or_default()
}

/// Attribution evidence: one observation per (actor, IOC), events counted. Hits whose feed
/// names no actor are reported but are no evidence.
pub fn observations(dets: &[IocDetection]) -> Vec<IocObservation> {
    let mut m: BTreeMap<(String, String, String), IocObservation> = BTreeMap::new();
    for d in dets {
        for a in &d.hit.actors {
            let o = m
                .entry((
                    a.name.clone(),
                    d.hit.kind.as_str().to_owned(),
                    d.hit.value.clone(),
                ))
                .or_insert_with(|| IocObservation {
                    actor: a.name.clone(),
                    attack_id: a.attack_id.clone(),
                    aliases: a.aliases.clone(),
                    ioc_type: d.hit.kind.as_str().to_owned(),
                    value: d.hit.value.clone(),
                    source: source_text(&d.hit),
                    events: 0,
                });
            o.events += 1;
        }
    }
    m.into_values().collect()
}

fn ts(t: &Option<DateTime<Utc>>) -> J {
    t.map_or(J::Null, |t| {
        J::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    })
}

/// The actors of a hit with the ATT&CK group each resolves to.
fn actors_json(kb: &ActorKb, h: &IocHit) -> J {
    J::Array(
        h.actors
            .iter()
            .map(|a| {
                let obs = IocObservation {
                    actor: a.name.clone(),
                    attack_id: a.attack_id.clone(),
                    aliases: a.aliases.clone(),
                    ..IocObservation::default()
                };
                let g = resolve_actor(kb, &obs);
                json!({
                    "name": a.name,
                    "attack_id": a.attack_id,
                    "group": g.map(|g| json!({"id": g.id, "name": g.name})),
                })
            })
            .collect(),
    )
}

/// One IOC hit as a JSONL record with the detection keys (a synthetic rule
/// `ioc:<type>:<value>`, level `high`, tags `ioc`, `ioc.<type>`) plus an `ioc` object:
/// `{"type","value","field","matched","actors":[{"name","attack_id","group":{"id","name"}}],
/// "sources":[{"format","feed","id","title"}]}`.
pub fn hit_json(kb: &ActorKb, d: &IocDetection) -> J {
    let h = &d.hit;
    let mut ev = Map::new();
    for (k, v) in &d.fields {
        match ev.get_mut(k) {
            Some(J::Array(a)) => a.push(v.clone()),
            Some(prev) => {
                let p = prev.take();
                *prev = J::Array(vec![p, v.clone()]);
            }
            None => {
                ev.insert(k.clone(), v.clone());
            }
        }
    }
    let actors: Vec<&str> = h.actors.iter().map(|a| a.name.as_str()).collect();
    json!({
        "timestamp": ts(&d.timestamp),
        "rule_id": format!("ioc:{}:{}", h.kind, h.value),
        "rule_title": if actors.is_empty() {
            format!("IOC {} {}", h.kind, h.value)
        } else {
            format!("IOC {} {} ({})", h.kind, h.value, actors.join(", "))
        },
        "level": "high",
        "computer": d.computer,
        "channel": d.channel,
        "event_id": d.event_id,
        "record_id": d.record_id,
        "source": &*d.source,
        "techniques": [],
        "tactics": [],
        "tags": ["ioc", format!("ioc.{}", h.kind)],
        "rule_file": h.sources.first().map(|s| s.feed.clone()).unwrap_or_default(),
        "event": ev,
        "ioc": {
            "type": h.kind,
            "value": h.value,
            "field": h.field,
            "matched": h.matched,
            "actors": actors_json(kb, h),
            "sources": h.sources,
        },
    })
}

/// The `ioc` summary object of `--format json`: feeds (path, format, loaded by type, skipped,
/// actors, diagnostics), distinct IOCs, hits, hits by actor.
pub fn summary_json(feeds: &Feeds, dets: &[IocDetection]) -> J {
    let mut by_actor: BTreeMap<&str, u64> = BTreeMap::new();
    for d in dets {
        for a in &d.hit.actors {
            *by_actor.entry(a.name.as_str()).or_default() += 1;
        }
    }
    json!({
        "feeds": feeds.reports.iter().map(|(p, r)| json!({
            "path": p,
            "format": r.format,
            "entries": r.entries,
            "loaded": r.loaded,
            "skipped": r.skipped,
            "actors": r.actors,
            "diagnostics": r.diagnostics,
        })).collect::<Vec<_>>(),
        "iocs": feeds.set.len(),
        "hits": dets.len(),
        "hits_by_actor": by_actor,
    })
}

/// Table section listing IOC hits.
pub fn write_table<W: Write>(
    w: &mut W,
    feeds: &Feeds,
    dets: &[IocDetection],
    max_rows: usize,
) -> std::io::Result<()> {
    writeln!(w)?;
    writeln!(
        w,
        "── IOC hits ({} from {}) ──────────────────",
        tracehunt_report::counted(feeds.set.len() as u64, "IOC", "IOCs"),
        tracehunt_report::counted(feeds.reports.len() as u64, "feed", "feeds")
    )?;
    if dets.is_empty() {
        writeln!(w, "  none")?;
    }
    for d in dets.iter().take(max_rows) {
        let h = &d.hit;
        let actors: Vec<&str> = h.actors.iter().map(|a| a.name.as_str()).collect();
        writeln!(
            w,
            "  {}  {}  {} {}  {}={}  actor: {}  [{}]",
            d.timestamp
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            d.computer.as_deref().unwrap_or("-"),
            h.kind,
            h.value,
            h.field,
            h.matched,
            if actors.is_empty() {
                "-".to_owned()
            } else {
                actors.join(", ")
            },
            source_text(h)
        )?;
    }
    if dets.len() > max_rows {
        writeln!(w, "  … {} more", dets.len() - max_rows)?;
    }
    Ok(())
}

/// Stable sort by event time (events without a time last), like the detections.
pub fn sort_by_time(dets: &mut [IocDetection]) {
    dets.sort_by(|x, y| match (x.timestamp, y.timestamp) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// Writes the IOC hits as JSONL records ([`hit_json`]).
pub fn write_jsonl<W: Write>(w: &mut W, kb: &ActorKb, dets: &[IocDetection]) -> Result<()> {
    for d in dets {
        serde_json::to_writer(&mut *w, &hit_json(kb, d))?;
        writeln!(w)?;
    }
    Ok(())
}
