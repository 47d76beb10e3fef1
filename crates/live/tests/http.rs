//! The HTTP endpoint on a real loopback socket with a real client (ureq):
//! authentication, the body cap, malformed lines, backpressure, metrics.

use std::sync::{Arc, Condvar, Mutex};
use tracehunt_live::http::{serve, HttpConfig};
use tracehunt_live::{Emitted, Engine, LiveConfig, Metrics, Rules, Sink};

const RULE: &str = r#"
title: Whoami run
id: 5f0c3a35-0000-4000-8000-000000000001
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\whoami.exe'}
  condition: sel
level: high
"#;

const TOKEN: &str = "0123456789abcdef-test-token";

/// A sink that counts detections and can be held shut (backpressure tests).
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<(bool, u64)>, Condvar)>);
impl Sink for Gate {
    fn emit(&mut self, item: &Emitted) -> std::io::Result<()> {
        let (m, cv) = &*self.0;
        let mut g = m.lock().unwrap();
        while g.0 {
            g = cv.wait(g).unwrap();
        }
        if matches!(item, Emitted::Detection(_)) {
            g.1 += 1;
        }
        Ok(())
    }
    fn flush(&mut self, _: bool) -> std::io::Result<bool> {
        Ok(true)
    }
}
impl Gate {
    fn set(&self, closed: bool) {
        let (m, cv) = &*self.0;
        m.lock().unwrap().0 = closed;
        cv.notify_all();
    }
    fn detections(&self) -> u64 {
        self.0 .0.lock().unwrap().1
    }
}

struct Server {
    base: String,
    engine: Arc<Engine>,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn server(cfg: LiveConfig, gate: Gate, max_body: usize) -> Server {
    let loaded = tracehunt_pipeline::Loaded::from_yaml(&[("r.yml", RULE)]);
    let kb = Arc::new(tracehunt_attack::ActorKb::builtin().clone());
    let engine = Arc::new(Engine::start(
        Rules::new(loaded, None, kb, 0),
        cfg,
        vec![Box::new(gate)],
        Arc::new(Metrics::new()),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let http = HttpConfig {
        token: TOKEN.into(),
        max_body,
    };
    rt.spawn(serve(listener, engine.clone(), http, async move {
        let _ = rx.await;
    }));
    Server {
        base,
        engine,
        rt,
        stop: Some(tx),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.engine.finish();
        let _ = &self.rt;
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(base: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut req = agent().post(format!("{base}/v1/events"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.send(body).unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

fn event(n: u32) -> String {
    serde_json::json!({
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1",
        "Image": r"C:\Windows\System32\whoami.exe", "n": n, "@timestamp": "2024-05-01T10:00:00Z",
    })
    .to_string()
}

#[test]
fn missing_or_wrong_token_is_401_with_a_json_error() {
    let gate = Gate::default();
    let s = server(LiveConfig::default(), gate.clone(), 1 << 20);
    let (code, body) = post(&s.base, None, &event(1));
    assert_eq!(code, 401);
    assert_eq!(body["error"], "missing or wrong bearer token");
    assert_eq!(
        post(&s.base, Some("0123456789abcdef-test-tokeX"), &event(1)).0,
        401
    );
    assert_eq!(
        post(
            &s.base,
            Some("0123456789abcdef-test-token-longer"),
            &event(1)
        )
        .0,
        401
    );
    // Metrics need the token too.
    let r = agent().get(format!("{}/metrics", s.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(gate.detections(), 0);
    // Other paths and methods: JSON errors too, counted.
    let mut r = agent().get(format!("{}/foo", s.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r
        .body_mut()
        .read_to_string()
        .unwrap()
        .starts_with("{\"error\":\"no such endpoint"));
    let mut r = agent().get(format!("{}/v1/events", s.base)).call().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r
        .body_mut()
        .read_to_string()
        .unwrap()
        .starts_with("{\"error\":\"method not allowed"));
}

#[test]
fn oversized_body_is_413_and_nothing_is_queued() {
    let gate = Gate::default();
    let s = server(LiveConfig::default(), gate.clone(), 1000);
    let body: String = (0..20).map(|n| event(n) + "\n").collect();
    assert!(body.len() > 1000);
    let (code, v) = post(&s.base, Some(TOKEN), &body);
    assert_eq!(code, 413);
    assert_eq!(v["error"], "body over 1000 bytes");
    assert_eq!(s.engine.metrics().events_in.get(), 0);
}

#[test]
fn malformed_lines_are_reported_and_the_good_lines_of_the_same_body_kept() {
    let gate = Gate::default();
    let s = server(LiveConfig::default(), gate.clone(), 1 << 20);
    let body = format!(
        "{}\n{{broken\n{}\n\n\"a string\"\n{}\n",
        event(1),
        event(2),
        event(3)
    );
    let (code, v) = post(&s.base, Some(TOKEN), &body);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["accepted"], 3);
    assert_eq!(v["rejected"], 2);
    assert_eq!(v["detections"], 3);
    let lines: Vec<u64> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 5]);
    // The answer comes after the batch's outputs were flushed.
    assert_eq!(gate.detections(), 3);
    // Only bad lines: 400.
    let (code, v) = post(&s.base, Some(TOKEN), "{broken\n[1]\n");
    assert_eq!(code, 400);
    assert_eq!(v["rejected"], 2);
    assert_eq!(post(&s.base, Some(TOKEN), "\n\n").0, 400);
    // Metrics with the token: the counters of what happened.
    let mut r = agent()
        .get(format!("{}/metrics", s.base))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .call()
        .unwrap();
    let text = r.body_mut().read_to_string().unwrap();
    assert!(text.contains("tracehunt_events_total 3"), "{text}");
    assert!(text.contains("tracehunt_lines_rejected_total 4"), "{text}");
    assert!(text.contains("tracehunt_detections_total 3"), "{text}");
    assert!(
        text.contains("tracehunt_alert_latency_seconds_count"),
        "{text}"
    );
    let mut h = agent().get(format!("{}/v1/health", s.base)).call().unwrap();
    let health: serde_json::Value =
        serde_json::from_str(&h.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(health["status"], "ok");
}

#[test]
fn full_queue_answers_503_with_retry_after_and_loses_nothing_accepted() {
    let gate = Gate::default();
    let cfg = LiveConfig {
        threads: 1,
        queue_batches: 1,
        ..LiveConfig::default()
    };
    let s = server(cfg, gate.clone(), 1 << 20);
    gate.set(true);
    // Requests wait for their batch: send them from threads; with the sink
    // held, the stage, the scanned queue and the intake fill, then 503s come.
    let base = s.base.clone();
    let clients: Vec<_> = (0..12)
        .map(|n| {
            let base = base.clone();
            std::thread::spawn(move || {
                let mut req = agent().post(format!("{base}/v1/events"));
                req = req.header("Authorization", format!("Bearer {TOKEN}"));
                let mut resp = req.send(event(n)).unwrap();
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (
                    resp.status().as_u16(),
                    retry,
                    resp.body_mut().read_to_string().unwrap(),
                )
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    gate.set(false);
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let ok = answers.iter().filter(|a| a.0 == 200).count() as u64;
    let busy: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(!busy.is_empty(), "{answers:?}");
    assert_eq!(ok + busy.len() as u64, 12, "{answers:?}");
    assert!(busy
        .iter()
        .all(|a| a.1.as_deref() == Some("1") && a.2.contains("queue full")));
    // Every accepted request's event was detected; none of the refused.
    assert_eq!(gate.detections(), ok);
}
