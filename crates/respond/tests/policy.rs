//! Policy parsing (errors with file and line) and `when` matching.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use tracehunt_respond::{
    Action, Actor, BlocklistFormat, Indicator, IndicatorKind, Level, Period, Policy, PolicyError,
    Trigger, TriggerKind,
};

fn yaml_error(text: &str) -> (usize, String) {
    match Policy::from_yaml(text, "bad.yml") {
        Err(PolicyError::Yaml {
            origin,
            line,
            message,
            ..
        }) => {
            assert_eq!(origin, "bad.yml");
            (line, message)
        }
        other => panic!("expected a YAML error, got {other:?}"),
    }
}

#[test]
fn parse_errors_name_the_line() {
    // (policy, expected line, a word the message must contain)
    let cases: &[(&str, usize, &str)] = &[
        ("dry_run: true\nresponses: []\nbogus: 1\n", 3, "bogus"),
        (
            "responses:\n  - name: a\n    when: { min_levle: high }\n    actions: []\n",
            3,
            "min_levle",
        ),
        (
            "responses:\n  - name: a\n    actions:\n      - blocklist: { format: nftables, path: /x }\n      - blocklist: { format: csv, path: /y }\n",
            5,
            "csv",
        ),
        ("dedupe: 10 minutes\nresponses: []\n", 1, "not a duration"),
        (
            "responses:\n  - name: a\n    actions:\n      - command:\n          argv: [/bin/echo, \"{ip}\"]\n",
            4, // a checked action points at its first line
            "unknown placeholder {ip}",
        ),
        (
            "responses:\n  - name: a\n    actions:\n\n      - blocklist: { format: suricata, path: /s, indicators: [hash] }\n",
            5,
            "plain format",
        ),
        ("allowlist:\n  ips: [10.0.0.0/33]\nresponses: []\n", 2, "10.0.0.0/33"),
        (
            "responses:\n  - name: a\n    when: { levels: [severe] }\n    actions: []\n",
            3,
            "severe",
        ),
        ("responses: [\n", 2, ""),
    ];
    for (text, line, word) in cases {
        let (got_line, message) = yaml_error(text);
        assert_eq!(got_line, *line, "line for {text:?}: {message}");
        assert!(
            message.contains(word),
            "{message:?} should mention {word:?}"
        );
    }
}

#[test]
fn duplicate_names_and_one_file_in_two_formats_are_invalid() {
    let dup = "responses:\n  - {name: a, actions: []}\n  - {name: a, actions: []}\n";
    let e = Policy::from_yaml(dup, "p.yml").unwrap_err();
    assert_eq!(e.to_string(), "p.yml: response name \"a\" is used twice");

    let two = "responses:\n  - name: a\n    actions: [{blocklist: {format: plain, path: /b}}]\n  - name: b\n    actions: [{blocklist: {format: suricata, path: /b}}]\n";
    let e = Policy::from_yaml(two, "p.yml").unwrap_err();
    assert!(matches!(e, PolicyError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("different formats"), "{e}");
}

#[test]
fn defaults_and_durations() {
    let p = Policy::from_yaml(
        "responses:\n  - name: a\n    actions:\n      - blocklist: {format: suricata, path: /s}\n      - webhook: {url: 'http://127.0.0.1:1/x'}\n",
        "p.yml",
    )
    .unwrap();
    assert!(p.dry_run);
    assert_eq!(p.dedupe, Period(Duration::from_secs(3600)));
    assert_eq!(p.state, None);
    let Action::Blocklist(b) = &p.responses[0].actions[0] else {
        panic!()
    };
    assert_eq!(b.format, BlocklistFormat::Suricata);
    assert_eq!(b.indicators, [IndicatorKind::Ip, IndicatorKind::Domain]);
    assert_eq!(
        (b.sid_base, b.rule_action.as_str(), b.ttl),
        (1_900_000, "drop", None)
    );
    let Action::Webhook(w) = &p.responses[0].actions[1] else {
        panic!()
    };
    assert_eq!(
        (w.retries, w.timeout.0, w.queue),
        (3, Duration::from_secs(10), 1000)
    );

    for (text, secs) in [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
    ] {
        assert_eq!(Period::parse(text).unwrap().0.as_secs_f64(), secs, "{text}");
    }
    for bad in [
        "",
        "5",
        "m",
        "1.5h",
        "-1s",
        "3651d",
        "99999999999999999999s",
    ] {
        assert!(Period::parse(bad).is_err(), "{bad:?} should not parse");
    }
    assert_eq!(Period::parse("90m").unwrap().to_string(), "90m");
    assert_eq!(Period::parse("120m").unwrap().to_string(), "2h");
}

fn trigger() -> Trigger {
    let mut t = Trigger::new(
        TriggerKind::Detection,
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
    );
    t.rule_id = "5F1A-rule".into();
    t.level = Some(Level::High);
    t.tags = vec!["attack.execution".into(), "attack.t1059.001".into()];
    t.host = "WS1".into();
    t.actor = Some(Actor {
        id: "G0016".into(),
        name: "APT29".into(),
        confidence: 70,
    });
    t.incident_severity = Some(Level::Medium);
    t
}

#[test]
fn when_conditions_match_as_documented() {
    let mut ioc = trigger();
    ioc.kind = TriggerKind::IocHit;
    ioc.ioc = Some(Indicator::new(IndicatorKind::Domain, "evil.example"));
    ioc.actor = None;
    // (when, matches the detection, matches the IOC hit)
    let cases: &[(&str, bool, bool)] = &[
        ("{}", true, true),
        ("{kinds: [detection]}", true, false),
        ("{kinds: [ioc_hit, incident]}", false, true),
        ("{rule_ids: ['5f1a-RULE']}", true, true),
        ("{rule_ids: [other]}", false, false),
        ("{levels: [high]}", true, true),
        ("{levels: [critical, low]}", false, false),
        ("{min_level: medium}", true, true),
        ("{min_level: critical}", false, false),
        ("{tags: [attack.T1059.001]}", true, true),
        ("{tags: ['attack.t1059*']}", true, true),
        (
            "{tags: ['attack.t1003*', attack.persistence]}",
            false,
            false,
        ),
        ("{actors: [apt29]}", true, false),
        ("{actors: [g0016]}", true, false),
        ("{actors: [G0007]}", false, false),
        ("{min_confidence: 70}", true, false),
        ("{min_confidence: 71}", false, false),
        ("{ioc_hit: true}", false, true),
        ("{ioc_hit: false}", true, false),
        ("{incident_severity: [medium]}", true, true),
        ("{min_incident_severity: high}", false, false),
        (
            "{kinds: [detection], min_level: high, actors: [APT29], min_confidence: 50}",
            true,
            false,
        ),
    ];
    for (when, det, hit) in cases {
        let yaml = format!("responses:\n  - name: r\n    when: {when}\n    actions: []\n");
        let p = Policy::from_yaml(&yaml, "p.yml").unwrap_or_else(|e| panic!("{when}: {e}"));
        let w = &p.responses[0].when;
        assert_eq!(w.matches(&trigger()), *det, "detection vs {when}");
        assert_eq!(w.matches(&ioc), *hit, "ioc hit vs {when}");
    }
}

#[test]
fn indicators_are_checked_and_normalised() {
    use IndicatorKind::*;
    let ok: &[(IndicatorKind, &str, &str)] = &[
        (Ip, " 203.0.113.7 ", "203.0.113.7"),
        (Ip, "[2001:DB8::1]", "2001:db8::1"),
        (Ip, "::ffff:192.0.2.1", "192.0.2.1"),
        (Domain, "Evil.Example.", "evil.example"),
        (Domain, "_dmarc.x-y.example", "_dmarc.x-y.example"),
        (
            Hash,
            "D41D8CD98F00B204E9800998ECF8427E",
            "d41d8cd98f00b204e9800998ecf8427e",
        ),
    ];
    for (kind, raw, want) in ok {
        let n = Indicator::new(*kind, *raw).normalized().unwrap();
        assert_eq!(n.value, *want);
    }
    let bad: &[(IndicatorKind, &str)] = &[
        (Ip, "1.2.3.4; rm -rf /"),
        (Ip, "10.0.0.0/8"),
        (Domain, "evil.example\"; sid:1;"),
        (Domain, "-bad.example"),
        (Domain, "a..b"),
        (Domain, "evil.example\nadd element"),
        (Hash, "xyz"),
        (Hash, "d41d8cd98f00b204e9800998ecf8427"),
    ];
    for (kind, raw) in bad {
        assert!(
            Indicator::new(*kind, *raw).normalized().is_err(),
            "{raw:?} accepted"
        );
    }
}

#[test]
fn responder_and_records_can_move_to_another_thread() {
    fn send<T: Send>() {}
    send::<tracehunt_respond::Responder>();
    send::<tracehunt_respond::ActionRecord>();
    send::<Policy>();
}
