//! The hunt as a library pipeline, shared by the batch `hunt` and later the
//! live and worker modes:
//!
//! ```text
//! sources ──▶ detection (per worker thread) ──▶ correlation ──▶ attribution ──▶ sinks
//! (source)    (detect: Scanner + IOC matcher,   (correlation)   (evidence)      (sink: ordered
//!              rendered bytes → spill,                                            output; stix,
//!              40-byte entries → sorted runs)                                     navigator)
//! ```
//!
//! - **Sources** ([`source`]): a [`Source`] hands out work units (a file, an
//!   EVTX chunk, a JSON-lines range; or any stream of records) to worker
//!   threads. [`FileSource`] is the batch source.
//! - **Detection** ([`scan`]): one `Scanner` and one accumulator per thread;
//!   each detection leaves the worker as bytes rendered for the chosen
//!   output ([`Render`]) in a spill and a 40-byte index [`Entry`] in an
//!   externally sorted run ([`index`]). Then on the calling thread: Sigma
//!   correlations over the detections of the rules they reference, and
//!   `min_rank`. The result, [`Scanned`], streams the entries in output
//!   order as often as a stage needs ([`Scanned::entries`]).
//! - **Attribution** ([`attribute`], [`evidence`]): evidence from what fired
//!   and the observation window → ranked ATT&CK intrusion sets.
//! - **Sinks** ([`sink`]): the ordered output (table, JSON lines, JSON,
//!   CSV, STIX 2.1, ATT&CK Navigator, HTML report) written to any `Write`.
//!
//! The library never prints, never exits and never touches a terminal:
//! progress and stage notes go to a [`Progress`] the caller hands in, and
//! what went wrong comes back as data (the [`Summary`](tracehunt_report::Summary)
//! counts, [`Scanned::correlation`], [`Scanned::temp_file_error`]) or as a
//! [`PipelineError`].
//!
//! # Example
//! ```
//! use tracehunt_pipeline::{scan, sink, FileSource, HuntConfig, Loaded, NoProgress, OutputFormat};
//! use tracehunt_report::Summary;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = dir.path().join("sec.jsonl");
//! std::fs::write(&log, concat!(
//!     r#"{"EventID": 1102, "Channel": "Security", "Computer": "pc1", "#,
//!     r#""TimeCreated": "2024-03-01T10:00:00Z", "SubjectUserName": "bob"}"#, "\n",
//! )).unwrap();
//! let rule = r#"
//! title: Security log cleared
//! id: 11111111-2222-3333-4444-555555555555
//! level: high
//! tags: [attack.defense-evasion, attack.t1070.001]
//! logsource: {product: windows, service: security}
//! detection: {sel: {EventID: 1102}, condition: sel}
//! "#;
//! let loaded = Loaded::from_yaml(&[("rule.yml", rule)]);
//! let files = vec![log];
//! let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
//! let source = FileSource::plan(&files, 1);
//! let cfg = HuntConfig::new(OutputFormat::Jsonl);
//! let mut summary = Summary::default();
//! let scanned = scan(&pool, &loaded, &source, &cfg, &mut summary, &NoProgress).unwrap();
//! assert_eq!(summary.detections, 1);
//! let kb = tracehunt_attack::ActorKb::builtin();
//! // Incidents: one, on pc1, with the user's entity.
//! let incidents = tracehunt_pipeline::incident::group(
//!     &scanned, &loaded.ruleset, kb, tracehunt_incidents::Config::default()).unwrap();
//! assert_eq!(incidents.reports.len(), 1);
//! assert_eq!(incidents.reports[0].incident.hosts, ["pc1"]);
//! assert_eq!(incidents.reports[0].incident.users, ["bob"]);
//! let observed = scanned.evidence(&loaded.ruleset).unwrap();
//! let attribution = tracehunt_pipeline::attribute(kb, &observed, &summary);
//! let ctx = sink::Context { ruleset: &loaded.ruleset, kb, summary: &summary,
//!     attribution: &attribution, feeds: None, max_rows: 200, overlay: None,
//!     table_style: Default::default(),
//!     incidents: Some(&incidents), html: None, tlp: Default::default() };
//! let mut out = Vec::new();
//! sink::write_ordered(&mut out, OutputFormat::Jsonl, &scanned, &ctx).unwrap();
//! let line = String::from_utf8(out).unwrap();
//! assert!(line.contains("Security log cleared"), "{line}");
//! ```

pub mod context;
pub mod correlation;
mod detect;
mod entry;
pub mod evidence;
pub mod html_out;
mod hunt;
pub mod incident;
pub mod incident_out;
pub mod index;
pub mod ioc;
pub mod keys;
pub mod navigator;
mod render;
pub mod rule_cache;
pub mod rule_names;
pub mod sink;
pub mod source;
pub mod spill;
pub mod stix;
pub mod store_sink;
mod table_out;

pub use entry::Entry;
pub use evidence::evidence;
pub use hunt::{
    attribute, attribute_with, scan, HuntConfig, Loss, NoProgress, Progress, Scanned, StoreItem,
    StreamStat, LOSS_LIST_CAP,
};
pub use render::{OutputFormat, Render};
pub use source::{FileSource, Records, Source, WorkUnit};

use tracehunt_correlate::CorrelationSet;
use tracehunt_engine::{compile, CompileOptions, Ruleset};
use tracehunt_sigma::Diagnostic;

/// The [`Detection`](tracehunt_report::Detection) of `rule` on `ev`, read
/// from `source`. `fields` caches the event's fields as JSON values: the
/// first detection of an event converts them, later ones share them (the
/// batch workers and the live scan both build detections this way).
pub fn detection_of(
    ev: &tracehunt_event::Event,
    rule: usize,
    source: &std::sync::Arc<str>,
    fields: &mut Option<std::sync::Arc<Vec<(String, serde_json::Value)>>>,
) -> tracehunt_report::Detection {
    let fields = fields
        .get_or_insert_with(|| {
            std::sync::Arc::new(
                ev.fields()
                    .map(|(k, v)| (k.to_owned(), serde_json::to_value(v).unwrap_or_default()))
                    .collect(),
            )
        })
        .clone();
    tracehunt_report::Detection {
        rule,
        timestamp: ev.meta.timestamp,
        computer: ev.meta.computer.clone(),
        channel: ev.meta.channel.clone(),
        event_id: ev.meta.event_id,
        record_id: ev.meta.record_id,
        source: source.clone(),
        fields,
    }
}

/// Rules loaded and compiled, with everything that went wrong (the CLI
/// reads them from disk or the built-in pack; [`Loaded::from_yaml`] from
/// text).
pub struct Loaded {
    /// The compiled detection rules (correlation rules' metadata included).
    pub ruleset: Ruleset,
    /// Every diagnostic of loading and compiling, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Rule files read.
    pub files: usize,
    /// Rule documents that failed (error diagnostics).
    pub failed: usize,
    /// Sigma correlation rules, compiled against `ruleset`.
    pub correlations: CorrelationSet,
    /// `ruleset` index of each correlation's metadata (`push_derived`), by
    /// correlation index.
    pub correlation_rules: Vec<usize>,
}

impl Loaded {
    /// No rules at all (`hunt --parse-only`).
    pub fn empty() -> Self {
        Loaded {
            ruleset: compile(Vec::new(), &CompileOptions::default()).0,
            diagnostics: Vec::new(),
            files: 0,
            failed: 0,
            correlations: CorrelationSet::default(),
            correlation_rules: Vec::new(),
        }
    }

    /// Compiles parsed rule files (in file order): Sigma filters applied
    /// to the rules they target, rules compiled with `opts`, correlations
    /// compiled against them. `diagnostics` are earlier ones (files that
    /// could not be listed); each file's follow in order; a file that could
    /// not be read is a [`LoadedFile`](tracehunt_sigma::LoadedFile) holding
    /// only its diagnostic. `files` counts `parsed`.
    pub fn build(
        mut diagnostics: Vec<Diagnostic>,
        parsed: Vec<tracehunt_sigma::LoadedFile>,
        opts: &CompileOptions,
    ) -> Self {
        let files = parsed.len();
        let (mut docs, mut filters, mut corrs) = (Vec::new(), Vec::new(), Vec::new());
        for f in parsed {
            docs.extend(f.rules);
            filters.extend(f.filters);
            corrs.extend(f.correlations);
            diagnostics.extend(f.diagnostics);
        }
        // Sigma filters rewrite the rules they target before compilation.
        diagnostics.extend(tracehunt_sigma::apply_filters(&mut docs, &filters));
        let (mut ruleset, d) = compile(docs, opts);
        diagnostics.extend(d);
        let (correlations, d) = CorrelationSet::compile(&corrs, &ruleset);
        diagnostics.extend(d);
        let correlation_rules = correlations
            .correlations()
            .iter()
            .map(|c| ruleset.push_derived(c.meta.clone()))
            .collect();
        let failed = diagnostics
            .iter()
            .filter(|d| d.severity == tracehunt_sigma::Severity::Error)
            .count();
        Loaded {
            ruleset,
            diagnostics,
            files,
            failed,
            correlations,
            correlation_rules,
        }
    }

    /// Rules from Sigma YAML texts `(file name, text)` with the default
    /// compile options and the built-in logsource map (for tests and
    /// examples; the CLI reads folders and passes [`Loaded::build`] the
    /// parsed files).
    pub fn from_yaml(docs: &[(&str, &str)]) -> Self {
        let parsed = docs
            .iter()
            .map(|(name, text)| tracehunt_sigma::load_rules(name, text))
            .collect();
        Self::build(Vec::new(), parsed, &CompileOptions::default())
    }
}

/// What can stop a pipeline stage. Everything else (a damaged record, an
/// unreadable file, a broken rule) is counted in the summary instead.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Writing rendered detections or index runs to the temporary file failed.
    #[error("writing detections to a temporary file: {0}")]
    Spill(String),
    /// Reading the sorted index runs back failed.
    #[error("reading the detection index back from the temporary file: {0}")]
    Index(std::io::Error),
    /// Reading rendered detections back failed.
    #[error("reading detections back from the temporary file")]
    SpillRead(#[source] std::io::Error),
    /// `--overlay` names no ATT&CK group (Navigator sink).
    #[error("{0}")]
    Overlay(String),
    /// Writing the output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Serialising JSON output failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The store sink failed (the store's path and what failed are in it).
    #[error(transparent)]
    Store(#[from] tracehunt_store::StoreError),
}

impl PipelineError {
    /// The output's reader went away (`tracehunt hunt … | head`): not an error for a CLI.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            PipelineError::Io(e) => e.kind() == std::io::ErrorKind::BrokenPipe,
            PipelineError::Json(e) => e.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe),
            _ => false,
        }
    }
}
