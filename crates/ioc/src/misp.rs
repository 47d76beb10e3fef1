//! MISP event JSON (MISP core format, `Event` objects).

use serde_json::Value;

use crate::{Actor, FeedFormat, IocError, IocSetBuilder, IocSource, LoadReport, Origin};

/// Galaxy types whose clusters name a threat actor.
const ACTOR_GALAXIES: &[&str] = &[
    "threat-actor",
    "mitre-intrusion-set",
    "mitre-enterprise-attack-intrusion-set",
    "eset-threat-actor",
    "microsoft-activity-group",
];

pub(crate) fn load(b: &mut IocSetBuilder, v: &Value, origin: &str) -> Result<LoadReport, IocError> {
    let mut events: Vec<&Value> = Vec::new();
    collect_events(v, &mut events);
    if events.is_empty() {
        let keys: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).take(5).collect())
            .unwrap_or_default();
        return Err(IocError::NotAFeed {
            origin: origin.to_owned(),
            reason: format!(
                "no MISP \"Event\" object and not a STIX bundle (top-level keys: {})",
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.join(", ")
                }
            ),
        });
    }
    let mut report = LoadReport::new(FeedFormat::Misp);
    for ev in events {
        report.entries += 1;
        load_event(b, ev, origin, &mut report);
    }
    Ok(report)
}

fn collect_events<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| collect_events(x, out)),
        Value::Object(o) => {
            if let Some(ev) = o.get("Event") {
                out.push(ev);
            } else if let Some(r) = o.get("response") {
                collect_events(r, out);
            } else if o.contains_key("Attribute") && o.contains_key("uuid") {
                out.push(v);
            }
        }
        _ => {}
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Actors named by galaxy clusters and `misp-galaxy:<type>="…"` tags of an event or attribute.
fn actors_of(v: &Value) -> Vec<Actor> {
    let mut actors: Vec<Actor> = Vec::new();
    let mut tag_names: Vec<String> = Vec::new();
    for g in arr(v, "Galaxy") {
        let gtype = str_of(g, "type").unwrap_or_default();
        if !ACTOR_GALAXIES.contains(&gtype) {
            continue;
        }
        for c in arr(g, "GalaxyCluster") {
            let Some(name) = str_of(c, "value") else {
                continue;
            };
            let synonyms: Vec<String> = c
                .get("meta")
                .map(|m| arr(m, "synonyms"))
                .unwrap_or(&[])
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            if let Some(t) = str_of(c, "tag_name") {
                tag_names.push(t.to_owned());
            }
            push_actor(&mut actors, Actor::new(name, &synonyms));
        }
    }
    for t in arr(v, "Tag") {
        let Some(name) = str_of(t, "name") else {
            continue;
        };
        if tag_names.iter().any(|x| x == name) {
            continue;
        }
        let Some(rest) = name.strip_prefix("misp-galaxy:") else {
            continue;
        };
        let Some((gtype, value)) = rest.split_once('=') else {
            continue;
        };
        if !ACTOR_GALAXIES.contains(&gtype) {
            continue;
        }
        let value = value.trim().trim_matches('"');
        // Cluster uuids without the cluster carry no name.
        if value.is_empty() || looks_like_uuid(value) {
            continue;
        }
        push_actor(&mut actors, Actor::new(value, &[]));
    }
    actors
}

fn push_actor(actors: &mut Vec<Actor>, a: Actor) {
    if !actors.iter().any(|x| x.name == a.name) {
        actors.push(a);
    }
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36 && s.bytes().filter(|c| *c == b'-').count() == 4
}

fn load_event(b: &mut IocSetBuilder, ev: &Value, origin: &str, report: &mut LoadReport) {
    let source = IocSource {
        format: FeedFormat::Misp,
        feed: origin.to_owned(),
        id: str_of(ev, "uuid")
            .map(str::to_owned)
            .or_else(|| str_of(ev, "id").map(|i| format!("event {i}")))
            .unwrap_or_else(|| "event".into()),
        title: str_of(ev, "info").map(str::to_owned),
    };
    let event_actors = actors_of(ev);
    for a in &event_actors {
        report.actor(a);
    }
    let objects = arr(ev, "Object");
    let attrs = arr(ev, "Attribute")
        .iter()
        .chain(objects.iter().flat_map(|o| arr(o, "Attribute")));
    for a in attrs {
        if a.get("deleted").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let (Some(t), Some(value)) = (str_of(a, "type"), str_of(a, "value")) else {
            report.skip("attribute without type/value");
            continue;
        };
        let mut actors = event_actors.clone();
        for x in actors_of(a) {
            report.actor(&x);
            push_actor(&mut actors, x);
        }
        let origin = Origin {
            source: source.clone(),
            actors,
            conjunction: None,
        };
        b.add_typed(t, value, &origin, report);
    }
}
