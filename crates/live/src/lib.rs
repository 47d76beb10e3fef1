//! The live hunt (`tracehunt watch`): JSON-lines events as they arrive —
//! from followed files ([`tracehunt_follow`] in the CLI), standard input or
//! the HTTP ingest endpoint ([`http`]) — through the same Sigma rules,
//! correlations, IOC feeds, incident grouping and attribution as a batch
//! hunt, with each detection written as soon as its batch is scanned.
//!
//! The flow, one [`Engine`]:
//!
//! ```text
//! Submission (lines + Done) ─▶ bounded queue ─▶ scan workers (one Scanner each, in parallel)
//!   ─▶ ordered stage (input order: correlations, incidents, attribution)
//!   ─▶ sinks (JSON lines, store, response policy) ─▶ flush ─▶ Done (offset commit / HTTP answer)
//! ```
//!
//! Guarantees: batches are processed in submission order; a batch's
//! [`Done`] runs only after its outputs are flushed (and durable in every
//! sink), so a source that commits its read position there delivers every
//! event at least once across crashes; memory is bounded by the queue
//! ([`LiveConfig::queue_batches`]), the correlator's limits and the open
//! incidents cap. Library code: no printing; threads are started by
//! [`Engine::start`] and the HTTP server by [`http::serve`].
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tracehunt_live::{Engine, JsonLines, LiveConfig, Metrics, Rules, Sink, Submission};
//!
//! let loaded = tracehunt_pipeline::Loaded::from_yaml(&[("r.yml", r#"
//! title: Whoami
//! id: 5f0c3a35-0000-4000-8000-000000000001
//! logsource: {product: windows, category: process_creation}
//! detection:
//!   sel: {Image|endswith: '\whoami.exe'}
//!   condition: sel
//! level: high
//! "#)]);
//! let kb = Arc::new(tracehunt_attack::ActorKb::builtin().clone());
//! let rules = Rules::new(loaded, None, kb, 0);
//! let out = Arc::new(Mutex::new(Vec::new()));
//! struct Shared(Arc<Mutex<Vec<u8>>>);
//! impl std::io::Write for Shared {
//!     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().write(b) }
//!     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
//! }
//! let sinks: Vec<Box<dyn Sink>> = vec![Box::new(JsonLines(Shared(out.clone())))];
//! let engine = Engine::start(rules, LiveConfig::default(), sinks, Arc::new(Metrics::new()));
//! let line = r#"{"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1", "Image": "C:\\Windows\\System32\\whoami.exe", "@timestamp": "2024-05-01T10:00:00Z"}"#;
//! let sub = Submission { source: Arc::from("doc"), lines: vec![line.to_owned()], first_line: 1, done: None, rejected: Vec::new() };
//! assert!(engine.submit(sub).is_ok());
//! let summary = engine.finish().unwrap();
//! assert_eq!((summary.events, summary.detections), (1, 1));
//! let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
//! assert!(text.contains(r#""rule_title":"Whoami""#) && text.contains(r#""kind":"incident""#));
//! ```

pub mod conn;
mod engine;
pub mod http;
mod hunter;
pub mod incidents;
mod metrics;
mod respond_sink;
mod rules;
mod scan;
mod store_sink;

pub use engine::{Engine, JsonLines, LiveConfig, LiveError, LiveSummary, Sink, SubmitError};
pub use hunter::{DetectionOut, Emitted, IncidentOut};
pub use incidents::IncidentConfig;
pub use metrics::{Labels, Metrics};
pub use respond_sink::{is_internal_ip, ResponseSink};
pub use rules::Rules;
pub use scan::{BatchResult, Done, Rejected, Submission, REJECTED_LISTED};
pub use store_sink::StoreSink;
