//! Sigma rule loading for tracehunt: YAML text → typed rules + diagnostics,
//! and the logsource → channel/EventID mapping as data.
//!
//! Parsing is done by [`rsigma_parser`] (MIT; parses every current SigmaHQ
//! rule), re-exported as [`ast`]. This crate adds what an analyst needs
//! around it: every document that cannot be used becomes a [`Diagnostic`]
//! with a stable code, the file, the line and a message, and the other
//! documents of the file still load (partial success).
//!
//! The crate does no I/O: callers hand it file contents.
//!
//! ```
//! use tracehunt_sigma::{load_rules, LogsourceMap};
//! let yaml = "title: Whoami\nid: 00000000-0000-4000-8000-000000000001\n\
//!   logsource: {product: windows, category: process_creation}\n\
//!   detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\nlevel: medium\n";
//! let file = load_rules("whoami.yml", yaml);
//! assert_eq!(file.rules.len(), 1);
//! assert!(file.diagnostics.is_empty());
//! let map = LogsourceMap::builtin();
//! let sources = map.resolve(&file.rules[0].rule.logsource).expect("mapped");
//! assert!(sources.iter().any(|s| s.event_ids.contains(&4688)));
//! ```

mod diag;
mod filter;
mod load;
mod logsource;

pub use diag::{Code, Diagnostic, Severity};
pub use filter::{apply_filters, name_glob, FilterDoc, FILTER_PREFIX};
pub use load::{
    load_rules, load_rules_bytes, CorrelationDoc, LoadedFile, RuleDoc, MAX_CONDITION_NESTING,
};
pub use logsource::{
    channel_listed, Derived, LogsourceEntry, LogsourceError, LogsourceMap, Source,
};
/// The Sigma AST produced by `rsigma-parser` 0.23 (rules, detections,
/// conditions, modifiers, values, correlations, filters).
pub use rsigma_parser as ast;
