//! Window semantics on synthetic hits (the real-event tests are in
//! `tests/real_events.rs`).

use super::*;
use chrono::TimeZone;
use chrono::{DateTime, Utc};
use tracehunt_engine::Ruleset;
use tracehunt_engine::{compile, CompileOptions};
use tracehunt_sigma::{Code, Diagnostic};

const BASE: &str = "title: Failed logon
id: 00000000-0000-4000-8000-0000000000f1
name: failed_login
logsource: {product: windows, service: security}
detection:
  sel:
    EventID: 4625
  condition: sel
---
title: Successful logon
id: 00000000-0000-4000-8000-0000000000f2
name: successful_login
logsource: {product: windows, service: security}
detection:
  sel:
    EventID: 4624
  condition: sel
---
title: Network
name: net
logsource: {product: windows, category: network_connection}
detection:
  sel:
    Initiated: 'true'
  condition: sel
";

fn set(corr: &str) -> (Ruleset, CorrelationSet, Vec<Diagnostic>) {
    let y = format!("{BASE}---\n{corr}");
    let f = tracehunt_sigma::load_rules("c.yml", &y);
    assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
    let (rs, d) = compile(f.rules, &CompileOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let (cs, diags) = CorrelationSet::compile(&f.correlations, &rs);
    (rs, cs, diags)
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn ev(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn event_count_fires_once_per_burst_and_windows_slide() {
    let (_, cs, d) = set("title: Brute force
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [IpAddress]
  timespan: 1m
  condition: {gte: 3}
level: high
");
    assert!(d.is_empty(), "{d:?}");
    let mut c = cs.correlator();
    let a = ev(&[("IpAddress", "10.0.0.1")]);
    let b = ev(&[("ipaddress", "10.0.0.2")]);
    assert!(c.feed(0, t(0), 1, &a).is_empty());
    assert!(c.feed(0, t(10), 2, &b).is_empty());
    assert!(c.feed(0, t(30), 3, &a).is_empty());
    // t=70: the event at t=0 left the window [10, 70].
    assert!(c.feed(0, t(70), 4, &a).is_empty());
    let hits = c.feed(0, t(80), 5, &a);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].events, vec![3, 4, 5]);
    assert_eq!(hits[0].value, 3.0);
    assert_eq!(hits[0].group, vec![("IpAddress".into(), "10.0.0.1".into())]);
    assert_eq!((hits[0].first, hits[0].last), (t(30), t(80)));
    // Cleared after firing: two more are not enough.
    assert!(c.feed(0, t(81), 6, &a).is_empty());
    assert!(c.feed(0, t(82), 7, &a).is_empty());
    assert_eq!(c.feed(0, t(83), 8, &a).len(), 1);
    // The base rule is not output on its own (generate defaults to false).
    assert!(cs.is_suppressed(0));
    assert!(!cs.is_suppressed(1));
}

#[test]
fn groups_expire_and_memory_is_bounded() {
    let (_, cs, _) = set("title: Many
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [IpAddress]
  timespan: 10s
  condition: {gte: 100}
");
    let mut c = Correlator::new(
        &cs,
        Limits {
            max_groups: 50,
            ..Limits::default()
        },
    );
    for i in 0..200 {
        let e = ev(&[("IpAddress", &format!("10.0.0.{i}"))]);
        c.feed(0, t(i / 20), i as u64, &e);
    }
    // 20 new groups per second, 10 s windows: the cap bites.
    assert!(c.stats().dropped_group_events > 0);
    assert!(c.live_groups() <= 50);
    // Much later: every window expired.
    c.feed(0, t(1000), 999, &ev(&[("IpAddress", "x")]));
    assert_eq!(c.live_groups(), 1);
    assert!(c.stats().expired_groups >= 50);
}

#[test]
fn value_count_counts_distinct_values() {
    let (_, cs, _) = set("title: Spray
correlation:
  type: value_count
  rules: [failed_login]
  group-by: [IpAddress]
  timespan: 5m
  condition: {field: TargetUserName, gte: 3}
");
    let mut c = cs.correlator();
    let u = |n: &str| ev(&[("IpAddress", "1.2.3.4"), ("TargetUserName", n)]);
    assert!(c.feed(0, t(0), 1, &u("a")).is_empty());
    assert!(c.feed(0, t(1), 2, &u("a")).is_empty());
    assert!(c.feed(0, t(2), 3, &u("b")).is_empty());
    let h = c.feed(0, t(3), 4, &u("c"));
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].value, 3.0);
    assert_eq!(h[0].event_count, 4);
}

#[test]
fn range_condition_is_evaluated_when_the_window_closes() {
    let (_, cs, _) = set("title: Few
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [IpAddress]
  timespan: 1m
  condition: {gt: 1, lte: 3}
");
    assert!(cs.correlation(0).on_close);
    let mut c = cs.correlator();
    let a = ev(&[("IpAddress", "a")]);
    let b = ev(&[("IpAddress", "b")]);
    for i in 0..2 {
        assert!(c.feed(0, t(i), i as u64, &a).is_empty());
    }
    for i in 0..5 {
        assert!(c.feed(0, t(i), 10 + i as u64, &b).is_empty());
    }
    // Time passes the windows' end: a (2 events) fires, b (5) does not.
    let h = c.feed(1, t(120), 99, &a);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].value, 2.0);
    assert_eq!(h[0].group[0].1, "a");
    assert!(c.flush().is_empty());
}

#[test]
fn temporal_needs_all_rules_in_window_with_aliases() {
    let (_, cs, d) = set("title: Logon then connection
correlation:
  type: temporal
  rules: [successful_login, net]
  group-by: [ip]
  timespan: 30s
  aliases:
    ip:
      successful_login: IpAddress
      net: DestinationIp
");
    assert!(d.is_empty(), "{d:?}");
    let mut c = cs.correlator();
    assert!(c
        .feed(1, t(0), 1, &ev(&[("IpAddress", "9.9.9.9")]))
        .is_empty());
    // Too late for the first logon.
    assert!(c
        .feed(2, t(40), 2, &ev(&[("DestinationIp", "9.9.9.9")]))
        .is_empty());
    let h = c.feed(1, t(50), 3, &ev(&[("IpAddress", "9.9.9.9")]));
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].events, vec![2, 3]);
    assert_eq!(h[0].group, vec![("ip".into(), "9.9.9.9".into())]);
}

#[test]
fn temporal_ordered_requires_order_and_chains_on_correlations() {
    // The specification's example: many failed logins (a correlation)
    // followed by a successful login of the same user.
    let (_, cs, d) = set("title: Multiple failed logons followed by success
correlation:
  type: temporal_ordered
  rules: [multiple_failed_login, successful_login]
  group-by: [User]
  timespan: 10m
level: high
---
title: Multiple failed logons
name: multiple_failed_login
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [User]
  timespan: 10m
  condition: {gte: 3}
");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(
        cs.correlation(0).inputs,
        vec![Input::Correlation(1), Input::Rule(1)]
    );
    let mut c = cs.correlator();
    let u = ev(&[("User", "bob")]);
    // Success first: no order.
    assert!(c.feed(1, t(0), 1, &u).is_empty());
    assert!(c.feed(0, t(1), 2, &u).is_empty());
    assert!(c.feed(0, t(2), 3, &u).is_empty());
    let h = c.feed(0, t(3), 4, &u);
    assert_eq!(h.len(), 1, "the inner event_count fires");
    assert_eq!(h[0].correlation, 1);
    let h = c.feed(1, t(60), 5, &u);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].correlation, 0);
    assert_eq!(h[0].events, vec![2, 3, 4, 5]);
    assert_eq!(h[0].first, t(3));
}

#[test]
fn value_sum_avg_percentile_median() {
    let mk = |kind: &str, cond: &str| {
        set(&format!(
            "title: Bytes
correlation:
  type: {kind}
  rules: [net]
  group-by: [Image]
  timespan: 1h
  condition: {cond}
"
        ))
        .1
    };
    let vals = [10.0, 20.0, 30.0, 40.0, 1000.0];
    let run = |cs: &CorrelationSet| {
        let mut c = cs.correlator();
        let mut out = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            let e = ev(&[("Image", "x.exe"), ("DestinationPort", &v.to_string())]);
            out.extend(c.feed(2, t(i as i64), i as u64, &e));
        }
        out.extend(c.flush());
        out
    };
    let sum = mk("value_sum", "{field: DestinationPort, gte: 101}");
    let h = run(&sum);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].value, 1100.0);
    let avg = mk("value_avg", "{field: DestinationPort, gt: 200}");
    let h = run(&avg);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].value, 220.0);
    let p = mk(
        "value_percentile",
        "{field: DestinationPort, percentile: 80, gte: 40}",
    );
    assert_eq!(run(&p)[0].value, 40.0);
    let med = mk("value_median", "{field: DestinationPort, lt: 31}");
    assert_eq!(run(&med)[0].value, 30.0);
    let med_no = mk("value_median", "{field: DestinationPort, gt: 31}");
    assert!(run(&med_no).is_empty());
}

#[test]
fn unknown_reference_and_cycle_are_diagnosed() {
    let (_, cs, d) = set("title: A
name: a
correlation:
  type: event_count
  rules: [b]
  timespan: 1m
  condition: {gte: 1}
---
title: B
name: b
correlation:
  type: event_count
  rules: [a]
  timespan: 1m
  condition: {gte: 1}
---
title: C
correlation:
  type: event_count
  rules: [no_such_rule]
  timespan: 1m
  condition: {gte: 1}
");
    assert!(cs.is_empty());
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(d.iter().all(|d| d.code == Code::UnresolvedReference));
    assert!(d.iter().any(|d| d.message.contains("no_such_rule")));
}

#[test]
fn generate_true_keeps_base_rules() {
    let (_, cs, _) = set("title: G
correlation:
  type: event_count
  rules: [failed_login]
  timespan: 1m
  condition: {gte: 2}
generate: true
");
    assert!(cs.is_referenced(0));
    assert!(!cs.is_suppressed(0));
}

#[test]
fn missing_group_field_does_not_count() {
    let (_, cs, _) = set("title: M
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [IpAddress]
  timespan: 1m
  condition: {gte: 1}
");
    let mut c = cs.correlator();
    assert!(c.feed(0, t(0), 1, &ev(&[("Other", "x")])).is_empty());
    assert_eq!(c.stats().missing_group_field, 1);
}
