//! The live engine end to end, in process: detections, correlations across
//! batches and across a rule reload, incidents and their attribution.

use serde_json::Value as J;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracehunt_live::{
    Engine, JsonLines, LiveConfig, LiveSummary, Metrics, Rules, Sink, Submission,
};
use tracehunt_pipeline::Loaded;

const BASE: &str = r#"
title: Whoami run
id: 5f0c3a35-0000-4000-8000-000000000001
name: whoami_run
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\whoami.exe'}
  condition: sel
level: medium
tags: [attack.discovery, attack.t1033]
"#;

fn correlation(threshold: u32) -> String {
    format!(
        r#"
title: Whoami burst
id: 5f0c3a35-0000-4000-8000-0000000000c1
correlation:
  type: event_count
  rules: [whoami_run]
  group-by: [Computer]
  timespan: 1h
  condition: {{gte: {threshold}}}
level: high
"#
    )
}

const OTHER: &str = r#"
title: Net user
id: 5f0c3a35-0000-4000-8000-000000000002
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\net.exe'}
  condition: sel
level: low
"#;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Buf {
    fn lines(&self) -> Vec<J> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn rules(docs: &[(&str, &str)], generation: u64) -> (Loaded, Arc<tracehunt_attack::ActorKb>) {
    let _ = generation;
    (
        Loaded::from_yaml(docs),
        Arc::new(tracehunt_attack::ActorKb::builtin().clone()),
    )
}

fn start(docs: &[(&str, &str)]) -> (Engine, Buf) {
    let (loaded, kb) = rules(docs, 0);
    assert_eq!(loaded.failed, 0, "{:?}", loaded.diagnostics);
    let buf = Buf::default();
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonLines(buf.clone()))];
    let e = Engine::start(
        Rules::new(loaded, None, kb, 0),
        LiveConfig::default(),
        sinks,
        Arc::new(Metrics::new()),
    );
    (e, buf)
}

fn event(host: &str, image: &str, minute: u32) -> String {
    serde_json::json!({
        "EventID": 1,
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": host,
        "Image": image,
        "@timestamp": format!("2024-05-01T10:{minute:02}:00Z"),
    })
    .to_string()
}

fn submit(e: &Engine, lines: Vec<String>) {
    let sub = Submission {
        source: Arc::from("test"),
        lines,
        first_line: 1,
        done: None,
        rejected: Vec::new(),
    };
    assert!(e.submit(sub).is_ok());
}

fn of_kind<'a>(lines: &'a [J], kind: &str) -> Vec<&'a J> {
    lines.iter().filter(|l| l["kind"] == kind).collect()
}

#[test]
fn correlation_fires_across_batches_and_joins_the_hosts_incident() {
    let corr = correlation(3);
    let (e, buf) = start(&[("base.yml", BASE), ("corr.yml", &corr)]);
    for m in 0..3 {
        submit(&e, vec![event("WS1", r"C:\Windows\System32\whoami.exe", m)]);
    }
    let s: LiveSummary = e.finish().unwrap();
    let lines = buf.lines();
    // generate: false (the default): the base hits are not reported, the correlation is.
    assert!(of_kind(&lines, "detection").is_empty());
    let corr = of_kind(&lines, "correlation");
    assert_eq!(corr.len(), 1);
    assert_eq!(corr[0]["rule_title"], "Whoami burst");
    assert_eq!(corr[0]["event"]["event_count"], 3);
    assert_eq!(corr[0]["event"]["events"].as_array().unwrap().len(), 3);
    let inc = of_kind(&lines, "incident");
    assert_eq!(inc.last().unwrap()["status"], "closed");
    assert_eq!(inc.last().unwrap()["incident_id"], corr[0]["incident_id"]);
    assert_eq!((s.events, s.detections), (3, 1));
}

#[test]
fn reload_keeps_the_window_of_an_unchanged_correlation() {
    let corr = correlation(3);
    let (e, buf) = start(&[("base.yml", BASE), ("corr.yml", &corr)]);
    submit(&e, vec![event("WS1", r"C:\Windows\System32\whoami.exe", 0)]);
    submit(&e, vec![event("WS1", r"C:\Windows\System32\whoami.exe", 1)]);
    // A rule added: the correlation and the rule it reads are unchanged
    // (the base rule's index moves: OTHER comes first).
    let (loaded, kb) = rules(
        &[
            ("other.yml", OTHER),
            ("base.yml", BASE),
            ("corr.yml", &corr),
        ],
        1,
    );
    assert_eq!(e.reload(loaded, None, kb), 1);
    submit(&e, vec![event("WS1", r"C:\Windows\System32\whoami.exe", 2)]);
    let s = e.finish().unwrap();
    let lines = buf.lines();
    assert_eq!(
        of_kind(&lines, "correlation").len(),
        1,
        "two hits before the reload + one after"
    );
    assert_eq!(s.windows_dropped_by_reload, 0);
}

#[test]
fn reload_drops_the_window_of_a_changed_correlation() {
    let (e, buf) = start(&[("base.yml", BASE), ("corr.yml", &correlation(3))]);
    submit(&e, vec![event("WS1", r"C:\Windows\System32\whoami.exe", 0)]);
    submit(&e, vec![event("WS1", r"C:\Windows\System32\whoami.exe", 1)]);
    let changed = correlation(2);
    let (loaded, kb) = rules(&[("base.yml", BASE), ("corr.yml", &changed)], 1);
    e.reload(loaded, None, kb);
    submit(&e, vec![event("WS1", r"C:\Windows\System32\whoami.exe", 2)]);
    let s = e.finish().unwrap();
    // The new threshold (2) is not reached by the one hit after the reload.
    assert!(of_kind(&buf.lines(), "correlation").is_empty());
    assert_eq!(s.windows_dropped_by_reload, 1);
}

#[test]
fn detections_carry_their_incident_and_bad_lines_are_counted_not_fatal() {
    let (e, buf) = start(&[("base.yml", BASE), ("other.yml", OTHER)]);
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let sub = Submission {
        source: Arc::from("test"),
        lines: vec![
            event("WS1", r"C:\Windows\System32\whoami.exe", 0),
            "{not json".into(),
            "[1, 2]".into(),
            event("WS1", r"C:\Windows\System32\net.exe", 1),
            event("WS2", r"C:\Windows\System32\net.exe", 1),
        ],
        first_line: 10,
        done: Some(Box::new(move |r| *g.lock().unwrap() = Some(r.clone()))),
        rejected: Vec::new(),
    };
    assert!(e.submit(sub).is_ok());
    let s = e.finish().unwrap();
    let r = got.lock().unwrap().clone().expect("done called");
    assert_eq!((r.events, r.rejected, r.detections), (3, 2, 3));
    assert_eq!(
        r.errors.iter().map(|x| x.line).collect::<Vec<_>>(),
        [11, 12]
    );
    assert!(r.errors[0].reason.starts_with("not JSON"));
    let lines = buf.lines();
    let dets = of_kind(&lines, "detection");
    assert_eq!(dets.len(), 3);
    // WS1's two detections share an incident; WS2 has its own.
    assert_eq!(dets[0]["incident_id"], dets[1]["incident_id"]);
    assert_ne!(dets[0]["incident_id"], dets[2]["incident_id"]);
    let opened: Vec<_> = of_kind(&lines, "incident")
        .into_iter()
        .filter(|i| i["status"] == "opened")
        .collect();
    assert_eq!(opened.len(), 2);
    assert_eq!(opened[0]["rules"].as_array().unwrap().len(), 2);
    assert_eq!(opened[0]["tactics"], serde_json::json!(["discovery"]));
    assert_eq!((s.incidents_opened, s.incidents_closed), (2, 2));
}

#[test]
fn an_incident_opened_and_closed_in_one_batch_still_has_its_opened_line() {
    let (e, buf) = start(&[("base.yml", BASE), ("other.yml", OTHER)]);
    // Two hours apart on one host, in one batch: the first session closes
    // when the second detection arrives.
    let late = serde_json::json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1",
        "Image": r"C:\Windows\System32\net.exe", "@timestamp": "2024-05-01T12:30:00Z",
    })
    .to_string();
    submit(
        &e,
        vec![event("WS1", r"C:\Windows\System32\whoami.exe", 0), late],
    );
    let s = e.finish().unwrap();
    let lines = buf.lines();
    let seq: Vec<(String, String)> = of_kind(&lines, "incident")
        .iter()
        .map(|i| {
            (
                i["incident_id"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(seq.len(), 4, "{seq:?}");
    assert_eq!((seq[0].1.as_str(), seq[1].1.as_str()), ("opened", "closed"));
    assert_eq!(seq[0].0, seq[1].0);
    assert_ne!(seq[0].0, seq[2].0);
    assert_eq!((s.incidents_opened, s.incidents_closed), (2, 2));
}

fn event_at(host: &str, image: &str, time: &str) -> String {
    serde_json::json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": host,
        "Image": image, "@timestamp": time,
    })
    .to_string()
}

#[test]
fn times_at_the_edges_of_the_calendar_do_not_panic_the_stage() {
    let corr = correlation(2);
    let (e, buf) = start(&[
        ("base.yml", BASE),
        ("corr.yml", &corr),
        ("other.yml", OTHER),
    ]);
    let whoami = r"C:\Windows\System32\whoami.exe";
    submit(
        &e,
        vec![event_at(
            "X",
            r"C:\Windows\System32\net.exe",
            "+262142-12-31T23:59:59Z",
        )],
    );
    submit(
        &e,
        vec![
            event_at("Y", whoami, "-262143-01-01T00:00:00Z"),
            event_at("Y", whoami, "-262143-01-01T00:00:01Z"),
        ],
    );
    submit(
        &e,
        vec![
            event_at("Z", whoami, "+262142-12-31T23:59:58Z"),
            event_at("Z", whoami, "+262142-12-31T23:59:59Z"),
        ],
    );
    let s = e.finish().expect("no stage panic");
    assert_eq!(s.events, 5);
    let lines = buf.lines();
    assert_eq!(of_kind(&lines, "detection").len(), 1, "the net.exe rule");
    assert_eq!(of_kind(&lines, "correlation").len(), 2, "Y and Z bursts");
}

#[test]
fn a_far_future_event_does_not_close_later_incidents() {
    let (e, buf) = start(&[("base.yml", BASE), ("other.yml", OTHER)]);
    submit(
        &e,
        vec![event_at(
            "X",
            r"C:\Windows\System32\net.exe",
            "9999-12-31T00:00:00Z",
        )],
    );
    let now = chrono::Utc::now();
    for i in 0..5 {
        let t = (now + chrono::Duration::seconds(i)).to_rfc3339();
        submit(
            &e,
            vec![event_at("WS1", r"C:\Windows\System32\whoami.exe", &t)],
        );
    }
    e.finish().unwrap();
    let lines = buf.lines();
    let ws1: BTreeSet<&str> = of_kind(&lines, "detection")
        .iter()
        .filter(|d| d["computer"] == "WS1")
        .map(|d| d["incident_id"].as_str().unwrap())
        .collect();
    assert_eq!(ws1.len(), 1, "five detections 1 s apart are one incident");
}

#[test]
fn slow_response_commands_do_not_hold_back_detections_or_acknowledgements() {
    let (loaded, kb) = rules(&[("base.yml", BASE)], 0);
    let policy = tracehunt_respond::Policy::from_yaml(
        "dry_run: false\nresponses:\n  - name: slow\n    when: { kinds: [detection] }\n    actions:\n      - command: { argv: [\"/bin/sleep\", \"3\"], timeout: 10s }\n",
        "slow.yml",
    )
    .unwrap();
    let responder = tracehunt_respond::Responder::new(policy, chrono::Utc::now()).unwrap();
    let log = Buf::default();
    let metrics = Arc::new(Metrics::new());
    let buf = Buf::default();
    let sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(JsonLines(buf.clone())),
        Box::new(tracehunt_live::ResponseSink::new(
            responder,
            Box::new(log.clone()),
            metrics.clone(),
        )),
    ];
    let e = Engine::start(
        Rules::new(loaded, None, kb, 0),
        LiveConfig::default(),
        sinks,
        metrics,
    );
    let started = std::time::Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, host) in ["A", "B"].into_iter().enumerate() {
        let tx = tx.clone();
        let sub = Submission {
            source: Arc::from("test"),
            lines: vec![event(host, r"C:\Windows\System32\whoami.exe", i as u32)],
            first_line: 1,
            done: Some(Box::new(move |_| {
                tx.send(std::time::Instant::now()).unwrap()
            })),
            rejected: Vec::new(),
        };
        assert!(e.submit(sub).is_ok());
    }
    let acked: Vec<_> = (0..2).map(|_| rx.recv().unwrap()).collect();
    // Two 3 s commands in a row would take 6 s; the acknowledgements come
    // long before the first one ends.
    assert!(
        acked
            .iter()
            .all(|t| t.duration_since(started) < std::time::Duration::from_millis(2500)),
        "{:?}",
        acked
            .iter()
            .map(|t| t.duration_since(started))
            .collect::<Vec<_>>()
    );
    let got = buf.lines();
    assert_eq!(of_kind(&got, "detection").len(), 2, "{got:?}");
    e.finish().unwrap();
    // At the end the responder ran both (one per host).
    let taken = log
        .lines()
        .iter()
        .filter(|r| r["outcome"] == "taken")
        .count();
    assert_eq!(taken, 2);
}
