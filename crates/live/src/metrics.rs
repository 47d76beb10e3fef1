//! Counters of the live hunt, exposed in the Prometheus / OpenMetrics text
//! format (`GET /metrics`) with the Prometheus project's Rust client.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label set of the labelled families: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

/// The live hunt's metrics. Cheap to update from any thread (atomics).
pub struct Metrics {
    registry: Registry,
    /// Lines read as events.
    pub events_in: Counter,
    /// Lines that were not one JSON event.
    pub lines_rejected: Counter,
    /// Batches taken in (a poll of a followed file, a stdin read, an HTTP body).
    pub batches: Counter,
    /// Detections, correlation hits and IOC hits emitted.
    pub detections_out: Counter,
    /// Incident lines emitted, by status (`opened`, `updated`, `closed`).
    pub incidents_out: Family<Labels, Counter>,
    /// Batches waiting to be scanned or ordered.
    pub queue_depth: Gauge,
    /// Incidents open now.
    pub open_incidents: Gauge,
    /// Seconds from a batch's arrival to its outputs being flushed.
    pub latency: Histogram,
    /// HTTP ingest responses by status code.
    pub http_responses: Family<Labels, Counter>,
    /// Response actions by outcome (`dry_run`, `taken`, `skipped_duplicate`…).
    pub actions: Family<Labels, Counter>,
    /// Rule reloads that took effect.
    pub reloads: Counter,
    /// Rule reloads that failed (the old rules stay).
    pub reload_failures: Counter,
    /// Generation of the rules in use (0 = as started).
    pub rules_generation: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `tracehunt_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tracehunt");
        let m = Metrics {
            events_in: Counter::default(),
            lines_rejected: Counter::default(),
            batches: Counter::default(),
            detections_out: Counter::default(),
            incidents_out: Family::default(),
            queue_depth: Gauge::default(),
            open_incidents: Gauge::default(),
            // 0.25 ms … ~4 s.
            latency: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
            http_responses: Family::default(),
            actions: Family::default(),
            reloads: Counter::default(),
            reload_failures: Counter::default(),
            rules_generation: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("events", "Lines read as events", m.events_in.clone());
        registry.register(
            "lines_rejected",
            "Lines that were not one JSON event",
            m.lines_rejected.clone(),
        );
        registry.register("batches", "Batches taken in", m.batches.clone());
        registry.register(
            "detections",
            "Detections, correlation and IOC hits emitted",
            m.detections_out.clone(),
        );
        registry.register(
            "incident_updates",
            "Incident lines emitted by status",
            m.incidents_out.clone(),
        );
        registry.register(
            "queue_depth",
            "Batches waiting to be scanned or ordered",
            m.queue_depth.clone(),
        );
        registry.register(
            "open_incidents",
            "Incidents open now",
            m.open_incidents.clone(),
        );
        registry.register(
            "alert_latency_seconds",
            "Seconds from a batch's arrival to its detections being flushed",
            m.latency.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP ingest responses by status code",
            m.http_responses.clone(),
        );
        registry.register(
            "response_actions",
            "Response actions by outcome",
            m.actions.clone(),
        );
        registry.register(
            "rule_reloads",
            "Rule reloads that took effect",
            m.reloads.clone(),
        );
        registry.register(
            "rule_reload_failures",
            "Rule reloads that failed",
            m.reload_failures.clone(),
        );
        registry.register(
            "rules_generation",
            "Generation of the rules in use",
            m.rules_generation.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The exposition text (OpenMetrics 1.0, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }

    /// One more in a labelled family.
    pub fn inc(family: &Family<Labels, Counter>, name: &str, value: &str) {
        family
            .get_or_create(&vec![(name.to_owned(), value.to_owned())])
            .inc();
    }
}
