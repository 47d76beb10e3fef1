//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use tracehunt_respond::{
    ActionRecord, Indicator, IndicatorKind, Level, Outcome, Policy, Responder, Trigger, TriggerKind,
};

/// 2024-05-01 12:00:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

pub fn mins(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

/// A high-level detection on WS1 with the given indicators.
pub fn detection(rule_id: &str, inds: &[(IndicatorKind, &str)]) -> Trigger {
    let mut t = Trigger::new(TriggerKind::Detection, t0());
    t.rule_id = rule_id.into();
    t.rule_title = "Suspicious beacon".into();
    t.level = Some(Level::High);
    t.host = "WS1".into();
    t.indicators = inds.iter().map(|(k, v)| Indicator::new(*k, *v)).collect();
    t.payload = serde_json::json!({"rule": {"id": rule_id}, "host": "WS1", "level": "high"});
    t
}

pub fn responder(yaml: &str) -> Responder {
    let policy = Policy::from_yaml(yaml, "test-policy.yml").unwrap_or_else(|e| panic!("{e}"));
    Responder::new(policy, t0()).unwrap()
}

/// (indicator value or "", outcome) per record.
pub fn outcomes(records: &[ActionRecord]) -> Vec<(String, Outcome)> {
    records
        .iter()
        .map(|r| {
            (
                r.indicator
                    .as_ref()
                    .map_or(String::new(), |i| i.value.clone()),
                r.outcome,
            )
        })
        .collect()
}

/// (action, indicator value or "", outcome) per record.
pub fn actions(records: &[ActionRecord]) -> Vec<(String, String, Outcome)> {
    records
        .iter()
        .map(|r| {
            let v = r
                .indicator
                .as_ref()
                .map_or(String::new(), |i| i.value.clone());
            (r.action.clone(), v, r.outcome)
        })
        .collect()
}

pub fn owned(v: &[(&str, Outcome)]) -> Vec<(String, Outcome)> {
    v.iter().map(|(s, o)| (s.to_string(), *o)).collect()
}
