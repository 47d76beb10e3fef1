//! Webhooks against a real HTTP server on 127.0.0.1 started by the test.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tracehunt_respond::IndicatorKind::Ip;
use tracehunt_respond::Outcome;

/// One request the server received: (request head, body).
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A one-thread HTTP/1.1 server on 127.0.0.1: answers the n-th request with
/// `statuses[n]` (the last one after that) after `delay`, closes every
/// connection, and stops by itself after 20 s or 50 requests.
struct Server {
    url: String,
    seen: Seen,
}

fn serve(statuses: &[u16], delay: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let statuses = statuses.to_vec();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        while Instant::now() < end && n < 50 {
            match listener.accept() {
                Ok((conn, _)) => {
                    let status = statuses[n.min(statuses.len() - 1)];
                    n += 1;
                    answer(conn, status, delay, &log);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server { url, seen }
}

fn answer(conn: TcpStream, status: u16, delay: Duration, log: &Seen) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(conn);
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        head.push_str(&line);
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    log.lock().unwrap().push((head, body));
    std::thread::sleep(delay);
    let mut conn = r.into_inner();
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

fn policy(url: &str, dry_run: bool, extra: &str) -> String {
    format!(
        r#"
dry_run: {dry_run}
responses:
  - name: notify
    when: {{ kinds: [detection, incident] }}
    actions:
      - webhook:
          url: "{url}"
          headers: {{ X-Token: s3cret }}
          retries: 3
          backoff: 20ms
          max_backoff: 50ms
          timeout: 5s
{extra}
"#
    )
}

#[test]
fn webhook_retries_after_500s_until_200_and_posts_the_payload_json() {
    let server = serve(&[500, 500, 200], Duration::ZERO);
    let mut r = responder(&policy(&server.url, false, ""));
    let t = detection("rule-web", &[(Ip, "203.0.113.7")]);
    let recs = r.handle(&t, t0());
    assert_eq!(outcomes(&recs), owned(&[("", Outcome::Queued)]));
    assert_eq!(r.pending(), 1);

    let done = r.flush(Duration::from_secs(10));
    assert_eq!(outcomes(&done), owned(&[("", Outcome::Taken)]));
    assert_eq!(done[0].detail, "HTTP 200 after 3 attempt(s)");
    assert_eq!(
        (done[0].response.as_str(), done[0].target.as_str()),
        ("notify", server.url.as_str())
    );
    assert_eq!(r.pending(), 0);

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "500, 500, then 200");
    for (head, body) in &seen {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json, t.payload);
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("post /hook http/1.1"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-token: s3cret"), "{head}");
    }

    // Delivered: the same trigger within the period is a duplicate.
    let again = r.handle(&t, t0() + mins(1));
    assert_eq!(outcomes(&again), owned(&[("", Outcome::SkippedDuplicate)]));
}

#[test]
fn webhook_gives_up_after_the_retries_and_a_later_trigger_tries_again() {
    let server = serve(&[503], Duration::ZERO);
    let yaml = policy(&server.url, false, "").replace("retries: 3", "retries: 1");
    let mut r = responder(&yaml);
    let t = detection("rule-web", &[]);
    r.handle(&t, t0());
    let done = r.flush(Duration::from_secs(10));
    assert_eq!(outcomes(&done), owned(&[("", Outcome::Failed)]));
    assert_eq!(done[0].detail, "gave up after 2 attempt(s); last: HTTP 503");
    assert_eq!(server.seen.lock().unwrap().len(), 2);
    // The failed delivery is not remembered as done.
    let again = r.handle(&t, t0() + mins(1));
    assert_eq!(outcomes(&again), owned(&[("", Outcome::Queued)]));
    r.flush(Duration::from_secs(10));
    assert_eq!(server.seen.lock().unwrap().len(), 4);
}

#[test]
fn webhook_without_payload_posts_the_trigger() {
    let server = serve(&[204], Duration::ZERO);
    let mut r = responder(&policy(&server.url, false, ""));
    let mut t = detection("rule-inc", &[]);
    t.kind = tracehunt_respond::TriggerKind::Incident;
    t.incident_id = "inc-42".into();
    t.payload = serde_json::Value::Null;
    r.handle(&t, t0());
    let done = r.flush(Duration::from_secs(10));
    assert_eq!(done[0].outcome, Outcome::Taken, "{}", done[0].detail);
    let seen = server.seen.lock().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(json["kind"], "incident");
    assert_eq!(json["incident_id"], "inc-42");
    assert_eq!(json["rule_id"], "rule-inc");
    assert!(json.get("payload").is_none());
}

#[test]
fn full_queue_drops_instead_of_blocking_the_caller() {
    let server = serve(&[200], Duration::from_millis(400));
    let yaml =
        policy(&server.url, false, "").replace("timeout: 5s", "timeout: 5s\n          queue: 1");
    let mut r = responder(&yaml);
    let start = Instant::now();
    let mut recs = Vec::new();
    for i in 0..6 {
        recs.extend(r.handle(&detection(&format!("rule-{i}"), &[]), t0()));
    }
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "the caller waited {:?}",
        start.elapsed()
    );
    let queued = recs.iter().filter(|r| r.outcome == Outcome::Queued).count();
    let dropped: Vec<_> = recs
        .iter()
        .filter(|r| r.outcome == Outcome::Dropped)
        .collect();
    assert!((1..=2).contains(&queued), "{:?}", outcomes(&recs));
    assert_eq!(queued + dropped.len(), 6);
    assert_eq!(dropped[0].detail, "not queued: queue full");
    let done = r.flush(Duration::from_secs(10));
    assert_eq!(done.len(), queued);
    assert!(done.iter().all(|d| d.outcome == Outcome::Taken));
    // A dropped delivery is not remembered: the next trigger is queued.
    let rule = &dropped[0].trigger.rule_id;
    let again = r.handle(&detection(rule, &[]), t0() + mins(1));
    assert_eq!(again[0].outcome, Outcome::Queued);
    r.flush(Duration::from_secs(10));
}

#[test]
fn dry_run_posts_nothing() {
    let server = serve(&[200], Duration::ZERO);
    let mut r = responder(&policy(&server.url, true, ""));
    let recs = r.handle(&detection("rule-web", &[]), t0());
    assert_eq!(outcomes(&recs), owned(&[("", Outcome::DryRun)]));
    assert!(recs[0].detail.starts_with("would POST ") && recs[0].detail.ends_with(&server.url));
    assert_eq!(r.pending(), 0);
    assert!(r.flush(Duration::from_millis(300)).is_empty());
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.seen.lock().unwrap().is_empty());
}
