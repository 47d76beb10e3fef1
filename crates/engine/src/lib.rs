//! The tracehunt matcher: Sigma rules compiled once into an immutable
//! [`Ruleset`] (`Send + Sync`), evaluated by per-thread [`Scanner`]s.
//!
//! Compilation ([`compile`]) resolves each rule's logsource through a
//! [`LogsourceMap`](tracehunt_sigma::LogsourceMap) into event sources
//! (channel + EventID + field renames), interns every field name, lowers
//! every value with its modifiers into a matcher (case-folded literals,
//! wildcards, regexes, CIDRs, numbers…) and the condition into a boolean
//! tree over selection indices. A rule whose logsource is not mapped is kept
//! but never evaluated (diagnostic `TH010`), so it can never fire on events
//! it was not written for.
//!
//! Scanning routes an event by `(channel, EventID)` to the rules that can
//! apply (cached per scanner), looks each field up once per event and
//! case-folds each value at most once.
//!
//! Semantics follow the Sigma specification v2 (`sigma-rules-specification.md`,
//! `sigma-modifiers-appendix.md`): strings match case-insensitively unless
//! `cased`; `*`/`?` wildcards with `\` escapes; a list of values is OR unless
//! `|all`; a map is AND; a list of maps is OR.
//!
//! ```
//! use tracehunt_engine::{compile, CompileOptions, Scanner};
//! use tracehunt_event::{Event, EventMeta, Value};
//! let yaml = "title: Whoami\nid: 11111111-1111-4111-8111-111111111111\n\
//!   logsource: {product: windows, category: process_creation}\n\
//!   detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\nlevel: medium\n";
//! let file = tracehunt_sigma::load_rules("whoami.yml", yaml);
//! let (ruleset, diags) = compile(file.rules, &CompileOptions::default());
//! assert!(diags.is_empty());
//! // A Security 4688 event: `Image` is mapped to `NewProcessName`.
//! let mut ev = Event::with_meta(EventMeta {
//!     channel: Some("Security".into()),
//!     event_id: Some(4688),
//!     ..EventMeta::default()
//! });
//! ev.push("NewProcessName", Value::from("C:\\Windows\\System32\\WHOAMI.EXE"));
//! let mut scanner = Scanner::new(&ruleset);
//! let mut hits = Vec::new();
//! scanner.scan(&ev, &mut hits);
//! assert_eq!(hits.len(), 1);
//! assert_eq!(ruleset.rule(hits[0]).title, "Whoami");
//! ```

mod compile;
mod match_only;
mod matcher;
pub mod persist;
mod prefilter;
mod scan;
pub mod select;

pub use compile::{
    compile, CompileOptions, NameOrigin, NamedRef, RuleMeta, Ruleset, PADDED_FIELDS,
};
pub use scan::Scanner;
pub use select::Selection;
