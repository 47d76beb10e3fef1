//! Sigma correlation rules as a post-pass over the time-sorted detections of
//! a hunt (see `tracehunt-correlate`).

use crate::Loaded;
use serde_json::{json, Value as J};
use std::sync::Arc;
use tracehunt_correlate::{same_field, CorrelationHit, Correlator, Fields};
use tracehunt_report::Detection;

/// A detection's event fields as a correlation field source.
struct DetFields<'a>(&'a Detection);

impl Fields for DetFields<'_> {
    fn field(&self, name: &str) -> Option<String> {
        let (_, v) = self.0.fields.iter().find(|(n, _)| same_field(n, name))?;
        text(v)
    }
}

fn text(v: &J) -> Option<String> {
    match v {
        J::Null => None,
        J::String(s) => Some(s.clone()),
        J::Array(a) => a.first().and_then(text),
        other => Some(other.to_string()),
    }
}

/// What the post-pass did, for the run's stderr notes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Correlation hits output.
    pub hits: usize,
    /// Events dropped or window entries cut by the correlator's memory bounds.
    pub dropped: u64,
}

/// Feeds every timed detection of a rule some correlation references (in
/// the given, time-sorted order) to a [`Correlator`] and returns one
/// detection per correlation hit, in the order they fired. The caller
/// removes the base detections of rules referenced only by correlations
/// with `generate: false` ([`tracehunt_correlate::CorrelationSet::is_suppressed`])
/// and everything below `--min-level`, and places the hits after the
/// detections of the same time (stable time sort).
///
/// `dets` need only hold the detections of referenced rules (the others
/// are skipped anyway), which is what a hunt keeps in memory.
///
/// A correlation detection carries the correlation rule (title, level,
/// tags), the time of the last contributing event, the host and file of
/// that event, and as `event`: the `group-by` values, `correlation_type`,
/// `correlation_value` (count, distinct count, sum, average or percentile),
/// `first_timestamp`, `last_timestamp`, `event_count` and `events` (rule id,
/// timestamp, file and record id of each contributing event, at most 1,000).
pub fn apply(loaded: &Loaded, dets: &[&Detection]) -> (Vec<Detection>, Outcome) {
    let cs = &loaded.correlations;
    let mut outcome = Outcome::default();
    let mut added: Vec<Detection> = Vec::new();
    if !cs.is_empty() {
        let mut c: Correlator<'_> = cs.correlator();
        let mut hits: Vec<CorrelationHit> = Vec::new();
        for (i, d) in dets.iter().enumerate() {
            let Some(ts) = d.timestamp else { continue };
            if cs.is_referenced(d.rule) {
                hits.extend(c.feed(d.rule, ts, i as u64, &DetFields(d)));
            }
        }
        hits.extend(c.flush());
        let st = c.stats();
        outcome.dropped = st.dropped_group_events + st.dropped_entries;
        for h in hits {
            added.push(detection(loaded, dets, &h));
        }
    }
    outcome.hits = added.len();
    (added, outcome)
}

fn detection(loaded: &Loaded, dets: &[&Detection], h: &CorrelationHit) -> Detection {
    let corr = loaded.correlations.correlation(h.correlation);
    let rs = &loaded.ruleset;
    let last = h.events.last().and_then(|&i| dets.get(i as usize).copied());
    let mut fields: Vec<(String, J)> = h
        .group
        .iter()
        .map(|(k, v)| (k.clone(), J::String(v.clone())))
        .collect();
    fields.push(("correlation_type".into(), json!(corr.kind.as_str())));
    fields.push(("correlation_value".into(), json!(h.value)));
    fields.push(("first_timestamp".into(), json!(h.first.to_rfc3339())));
    fields.push(("last_timestamp".into(), json!(h.last.to_rfc3339())));
    fields.push(("event_count".into(), json!(h.event_count)));
    let events: Vec<J> = h
        .events
        .iter()
        .filter_map(|&i| dets.get(i as usize))
        .map(|&d| {
            json!({
                "rule_id": rs.rule(d.rule).id,
                "timestamp": d.timestamp.map(|t| t.to_rfc3339()),
                "source": &*d.source,
                "record_id": d.record_id,
            })
        })
        .collect();
    fields.push(("events".into(), J::Array(events)));
    Detection {
        rule: loaded.correlation_rules[h.correlation],
        timestamp: Some(h.last),
        computer: last.and_then(|d| d.computer.clone()),
        channel: None,
        event_id: None,
        record_id: None,
        source: last.map_or_else(|| Arc::from(""), |d| d.source.clone()),
        fields: std::sync::Arc::new(fields),
    }
}
