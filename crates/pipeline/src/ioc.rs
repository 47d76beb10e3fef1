//! IOC feeds in the hunt: scan events with the compiled set, report the
//! hits and turn them into attribution evidence.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value as J};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{resolve_actor, IocObservation};
use tracehunt_event::Event;
use tracehunt_ioc::{FeedFormat, IocHit, IocSet, LoadReport, MultiActor};

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

/// `feed: id (title)` of the feed entries that name `actor` (`; `-separated): an actor's
/// evidence cites its own listing, never another actor's line of the same value (issue #18:
/// APT39's trail line was shown for APT34).
fn source_text_for(h: &IocHit, actor: &str) -> String {
    let own = h.sources_of(actor);
    if own.is_empty() {
        return source_text(h);
    }
    own.iter()
        .map(|s| match &s.title {
            Some(t) => format!("{}: {} ({t})", s.feed, s.id),
            None => format!("{}: {}", s.feed, s.id),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Attribution evidence: one observation per (actor, IOC), events counted, citing the feed
/// entries that name that actor. Hits whose feed names no actor are reported but are no
/// evidence.
pub fn observations(dets: &[IocDetection]) -> Vec<IocObservation> {
    let mut m: BTreeMap<(String, String, String), IocObservation> = BTreeMap::new();
    for d in dets {
        for a in &d.hit.actors {
            let (format, listing) = best_listing(&d.hit, &a.name);
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
                    source: source_text_for(&d.hit, &a.name),
                    feed_format: format.map(|f| f.as_str().to_owned()).unwrap_or_default(),
                    feed_values: listing.values,
                    feed_multi_actor: listing.multi,
                    events: 0,
                });
            o.events += 1;
        }
    }
    m.into_values().collect()
}

/// The feed format of `actor`'s own entries for a hit whose actor label is the most
/// exclusive (lowest multi-actor share in the loaded set), with that format's counts.
fn best_listing(h: &IocHit, actor: &str) -> (Option<FeedFormat>, MultiActor) {
    let share = |m: &MultiActor| (m.multi as f64 + 0.5) / (m.values as f64 + 1.0);
    h.sources_of(actor)
        .iter()
        .map(|s| {
            (
                s.format,
                h.listing.get(&s.format).copied().unwrap_or_default(),
            )
        })
        .min_by(|a, b| share(&a.1).total_cmp(&share(&b.1)))
        .map_or((None, MultiActor::default()), |(f, m)| (Some(f), m))
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
/// actors, diagnostics), distinct IOCs, the multi-actor counts per feed format
/// (`{"maltrail": {"values": 12432, "multi": 11}}`), hits, hits by actor.
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
        "multi_actor": feeds.set.multi_actor_counts().iter()
            .map(|(f, m)| (f.as_str().to_owned(), json!({"values": m.values, "multi": m.multi})))
            .collect::<Map<String, J>>(),
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
pub fn write_jsonl<W: Write>(
    w: &mut W,
    kb: &ActorKb,
    dets: &[IocDetection],
) -> std::io::Result<()> {
    for d in dets {
        serde_json::to_writer(&mut *w, &hit_json(kb, d)).map_err(std::io::Error::from)?;
        writeln!(w)?;
    }
    Ok(())
}
