//! Loading rule files from disk (or the built-in pack) and `rules check`.

use anyhow::{Context, Result};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use tracehunt_engine::CompileOptions;
use tracehunt_sigma::{Diagnostic, LogsourceMap};

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));

/// Sigma rule statuses (`--include-status`, `--exclude-status`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Stable,
    Test,
    Experimental,
    Deprecated,
    Unsupported,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Stable => "stable",
            Status::Test => "test",
            Status::Experimental => "experimental",
            Status::Deprecated => "deprecated",
            Status::Unsupported => "unsupported",
        }
    }
}

/// Rule-related flags shared by `hunt`, `watch`, `worker`, `navigator` and
/// `rules check`: the logsource map, placeholders and the rule selection
/// (Hayabusa's options; a rule left out is loaded but never runs, and is
/// counted under its reason in the rule counts).
#[derive(Args, Debug, Clone, Default)]
pub struct RuleOpts {
    /// Extra logsource mapping file (YAML, schema in crates/sigma/data/README.md);
    /// its entries take precedence over the built-in Windows map.
    #[arg(long, value_name = "FILE")]
    pub logsource_map: Option<PathBuf>,
    /// Values for `expand` placeholders: YAML mapping `name: [values]`.
    #[arg(long, value_name = "FILE")]
    pub placeholders: Option<PathBuf>,
    /// Only rules with one of these Sigma statuses (comma list or
    /// repeated; naming deprecated or unsupported enables them).
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        value_delimiter = ',',
        value_name = "STATUS"
    )]
    pub include_status: Vec<Status>,
    /// Leave out rules with these statuses (comma list or repeated).
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        value_delimiter = ',',
        value_name = "STATUS"
    )]
    pub exclude_status: Vec<Status>,
    /// Also run rules of status deprecated (left out by default, as Hayabusa does).
    #[arg(long)]
    pub enable_deprecated_rules: bool,
    /// Also run rules of status unsupported (left out by default).
    #[arg(long)]
    pub enable_unsupported_rules: bool,
    /// Only rules with one of these tags (`attack.t1059`, `attack.execution`;
    /// any case; a technique also selects its sub-techniques; ATT&CK v19 and
    /// v18.1 ids of the same technique match each other, e.g. `attack.t1070.001`
    /// and `attack.t1685.005`; `attack.defense-evasion` also selects v19's
    /// `attack.stealth` and `attack.defense-impairment`; comma list or repeated).
    #[arg(long, value_delimiter = ',', value_name = "TAG")]
    pub include_tag: Vec<String>,
    /// Leave out rules with any of these tags (same forms as --include-tag).
    #[arg(long, value_delimiter = ',', value_name = "TAG")]
    pub exclude_tag: Vec<String>,
    /// Only the rule with this Sigma id (repeatable or comma list).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub rule_id: Vec<String>,
    /// Leave out the rule with this Sigma id (repeatable or comma list).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub exclude_rule_id: Vec<String>,
    /// Leave out the rules listed in FILE: one rule id a line, `#` starts a
    /// comment (Hayabusa's exclude_rules.txt format). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub exclude_rules: Vec<PathBuf>,
    /// Rules known to be noisy, same format as --exclude-rules: left out
    /// (counted as `noisy`) unless --enable-noisy-rules. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub noisy_rules: Vec<PathBuf>,
    /// Run the rules of --noisy-rules after all.
    #[arg(long)]
    pub enable_noisy_rules: bool,
    /// Only rules of exactly this level (any case).
    #[arg(long, value_enum, ignore_case = true, value_name = "LEVEL")]
    pub exact_level: Option<crate::hunt::MinLevel>,
    /// Directory of the compiled-rule cache (default: $XDG_CACHE_HOME/tracehunt,
    /// else ~/.cache/tracehunt): the rules compiled once are loaded from it
    /// while the rule files (by content), these options and the program are
    /// unchanged.
    #[arg(long, value_name = "DIR", env = "TRACEHUNT_RULE_CACHE")]
    pub rule_cache: Option<PathBuf>,
    /// Compile the rules without reading or writing the rule cache.
    #[arg(long)]
    pub no_rule_cache: bool,
}

/// The rule ids of a list file (`--exclude-rules`, `--noisy-rules`): one id
/// a line, blank lines and `#` comments (whole-line or after the id)
/// ignored. An id is letters, digits, `-`, `_` and `.`; any other line is
/// an error naming the file and line.
pub fn read_id_list(path: &std::path::Path) -> Result<Vec<String>> {
    let text = crate::input::read_text_file(path)
        .with_context(|| format!("reading rule id list {}", path.display()))?;
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let ok = line
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            anyhow::bail!(
                "{}:{}: `{line}` is not a rule id (one Sigma id a line, `#` for comments)",
                path.display(),
                i + 1
            );
        }
        ids.push(line.to_owned());
    }
    Ok(ids)
}

/// The rule selection of `opts` (deprecated and unsupported rules left out
/// unless enabled or named by --include-status).
///
/// # Errors
/// A list file cannot be read or has a line that is not an id.
pub fn selection(opts: &RuleOpts) -> Result<tracehunt_engine::Selection> {
    let words = |v: &[Status]| v.iter().map(|s| s.word().to_owned()).collect::<Vec<_>>();
    let mut exclude_status = words(&opts.exclude_status);
    for (st, enabled) in [
        (Status::Deprecated, opts.enable_deprecated_rules),
        (Status::Unsupported, opts.enable_unsupported_rules),
    ] {
        if !enabled && !opts.include_status.contains(&st) {
            exclude_status.push(st.word().to_owned());
        }
    }
    let mut exclude_ids: std::collections::HashSet<String> =
        opts.exclude_rule_id.iter().cloned().collect();
    for f in &opts.exclude_rules {
        exclude_ids.extend(read_id_list(f)?);
    }
    let mut noisy_ids = std::collections::HashSet::new();
    for f in &opts.noisy_rules {
        // Read (and checked) even when enabled: a typo is still an error.
        let ids = read_id_list(f)?;
        if !opts.enable_noisy_rules {
            noisy_ids.extend(ids);
        }
    }
    Ok(tracehunt_engine::Selection {
        include_status: words(&opts.include_status),
        exclude_status,
        include_tags: attack_tag_expansion(&opts.include_tag),
        exclude_tags: attack_tag_expansion(&opts.exclude_tag),
        include_ids: opts.rule_id.iter().cloned().collect(),
        exclude_ids,
        noisy_ids,
        exact_level: opts.exact_level.map(|l| l as u8),
        tag_aliases: attack_tag_aliases(),
    }
    .normalised())
}

/// ATT&CK v19 tactics that split v18.1's `defense-evasion` (TA0005 was
/// renamed `stealth`; `defense-impairment` is new).
const V19_DEFENSE_EVASION_SPLIT: [&str; 2] = ["attack.stealth", "attack.defense-impairment"];

/// A rule tag → its ATT&CK v18.1 equivalents, from the v19 → v18.1 table
/// ([`tracehunt_attack::v19_mapping`]): `attack.t1685.005` also counts as
/// `attack.t1070.001`, and `attack.stealth` and `attack.defense-impairment`
/// as `attack.defense-evasion`, so a selection naming either version
/// matches rules tagged with the other.
fn attack_tag_aliases() -> std::collections::HashMap<String, Vec<String>> {
    let mut map: std::collections::HashMap<String, Vec<String>> = tracehunt_attack::v19_mapping()
        .iter()
        .filter(|m| !m.v18_ids.is_empty())
        .map(|m| {
            let v18 = m
                .v18_ids
                .iter()
                .map(|t| format!("attack.{}", t.to_ascii_lowercase()));
            (
                format!("attack.{}", m.v19_id.to_ascii_lowercase()),
                v18.collect(),
            )
        })
        .collect();
    for t in V19_DEFENSE_EVASION_SPLIT {
        map.insert(t.to_owned(), vec!["attack.defense-evasion".to_owned()]);
    }
    map
}

/// The user's tags plus, for an ATT&CK v19 technique tag, the primary
/// v18.1 equivalent of it and of each of its sub-techniques (so
/// `attack.t1685` also selects rules still tagged `attack.t1070.001`).
/// A v19 tactic is not widened to v18.1's `attack.defense-evasion`: that
/// covers both of its halves, and the rule side maps it already
/// ([`attack_tag_aliases`]: `attack.defense-evasion` selects `stealth`
/// and `defense-impairment` rules).
fn attack_tag_expansion(tags: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for tag in tags {
        let t = tag.trim().to_ascii_lowercase();
        if let Some(id) = t.strip_prefix("attack.t") {
            let id = format!("T{id}");
            for m in tracehunt_attack::v19_mapping() {
                let under = m.v19_id == id
                    || m.v19_id
                        .strip_prefix(&id)
                        .is_some_and(|r| r.starts_with('.'));
                if let Some(v18) = m.v18_ids.first().filter(|_| under) {
                    out.push(format!("attack.{}", v18.to_ascii_lowercase()));
                }
            }
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    out
}

pub use tracehunt_pipeline::Loaded;

/// The bytes of the rule file a rule came from (`RuleMeta::file`): the
/// built-in pack's text, or the file read again from disk.
pub fn rule_file_text(file: &str) -> Option<Vec<u8>> {
    BUILTIN_RULES
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, text)| text.as_bytes().to_vec())
        .or_else(|| std::fs::read(file).ok())
}

/// Rule counts in the words `hunt` and `rules check` share: `loaded`
/// (parsed and compiled), `active` (used: logsource mapped to an event
/// source and level at or above the minimum), `skipped` (loaded, not
/// used; by reason) and `failed` (documents with an error diagnostic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCounts {
    /// Rules parsed and compiled (correlations included), plus the duplicates dropped.
    pub loaded: u64,
    /// Loaded rules in use.
    pub active: u64,
    /// Loaded rules not in use: `(reason, count)` with reasons
    /// `logsource_not_mapped`, `below_min_level`, `duplicate_id` (`TH013`:
    /// a later copy of a rule id) and the rule selection's reasons
    /// (`excluded_by_status`, `excluded_by_tag`, `excluded_by_id`, `noisy`,
    /// `level_not_exact`), zero counts left out.
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Rule documents that failed to load.
    pub failed: u64,
    /// Loaded rules with a `TH011` warning (an `expand` placeholder
    /// without value), counted once per rule.
    pub unresolved_placeholder: u64,
}

impl RuleCounts {
    /// Counts for `loaded` when only rules of level rank `min_rank` or
    /// above are reported (0: every level, as `rules check` counts).
    pub fn of(loaded: &Loaded, min_rank: u8) -> Self {
        let rs = &loaded.ruleset;
        let (mut active, mut unmapped, mut below) = (0u64, 0u64, 0u64);
        let mut excluded: BTreeMap<&'static str, u64> = BTreeMap::new();
        for i in 0..rs.len() {
            let m = rs.rule(i);
            if let Some(r) = m.excluded {
                *excluded.entry(r).or_default() += 1;
            } else if !m.active {
                unmapped += 1;
            } else if m.level_rank < min_rank {
                below += 1;
            } else {
                active += 1;
            }
        }
        // A second rule with an id already seen parsed but was dropped (`TH013`).
        let duplicates = loaded
            .diagnostics
            .iter()
            .filter(|d| d.code == tracehunt_sigma::Code::DuplicateId)
            .count() as u64;
        let skipped_by_reason = [
            ("logsource_not_mapped", unmapped),
            ("below_min_level", below),
            ("duplicate_id", duplicates),
        ]
        .into_iter()
        .chain(excluded)
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.to_owned(), n))
        .collect();
        let unresolved_placeholder = loaded
            .diagnostics
            .iter()
            .filter(|d| d.code == tracehunt_sigma::Code::UnresolvedPlaceholder)
            .map(|d| (&d.file, &d.rule))
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        RuleCounts {
            unresolved_placeholder,
            loaded: rs.len() as u64 + duplicates,
            active,
            skipped_by_reason,
            failed: loaded.failed as u64,
        }
    }

    /// Loaded rules not in use.
    pub fn skipped(&self) -> u64 {
        self.loaded - self.active
    }
}

/// The compile options of `opts`: logsource map, placeholders, rule selection.
///
/// # Errors
/// A file named by `opts` cannot be read or parsed (the error names it).
pub fn compile_options(opts: &RuleOpts) -> Result<CompileOptions> {
    let mut c = CompileOptions {
        selection: selection(opts)?,
        ..CompileOptions::default()
    };
    if let Some(p) = &opts.logsource_map {
        let text =
            crate::input::read_text_file(p).with_context(|| format!("reading {}", p.display()))?;
        let extra =
            LogsourceMap::from_yaml(&text).with_context(|| format!("in {}", p.display()))?;
        c.logsources.extend_front(extra);
    }
    if let Some(p) = &opts.placeholders {
        let text =
            crate::input::read_text_file(p).with_context(|| format!("reading {}", p.display()))?;
        c.placeholders = yaml_serde::from_str(&text).with_context(|| {
            format!(
                "{}: expected a mapping of placeholder name to list of values",
                p.display()
            )
        })?;
    }
    Ok(c)
}

/// Every `.yml`/`.yaml` file under the given files/directories, sorted.
/// Unreadable directories become diagnostics-free errors returned as text.
pub fn rule_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        if p.is_file() {
            files.push(p.clone());
            continue;
        }
        if !p.exists() {
            errors.push(format!("{}: no such file or directory", p.display()));
            continue;
        }
        for e in walkdir::WalkDir::new(p)
            .follow_links(false)
            .sort_by_file_name()
        {
            match e {
                Ok(e) if e.file_type().is_file() => {
                    let path = e.path();
                    if path.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                        files.push(path.to_path_buf());
                    }
                }
                Ok(_) => {}
                Err(err) => errors.push(err.to_string()),
            }
        }
    }
    (files, errors)
}

/// Loads rules from `dirs` (or the built-in pack when empty) and compiles
/// them, or loads the compiled result from the rule cache when the same
/// rules (by content), options and build were compiled before
/// ([`crate::rule_cache`]; `--no-rule-cache` turns it off).
pub fn load(dirs: &[PathBuf], opts: &RuleOpts) -> Result<Loaded> {
    let (loaded, pending) = load_deferred(dirs, opts)?;
    if let Some(p) = pending {
        p.write(&loaded);
    }
    Ok(loaded)
}

/// [`load`], leaving the rule cache write after a compile to the caller
/// ([`crate::rule_cache::PendingWrite`]).
pub fn load_deferred(
    dirs: &[PathBuf],
    opts: &RuleOpts,
) -> Result<(Loaded, Option<crate::rule_cache::PendingWrite>)> {
    let copts = compile_options(opts)?;
    let mut diagnostics = Vec::new();
    let sources: Vec<crate::rule_cache::RuleSource> = if dirs.is_empty() {
        BUILTIN_RULES
            .iter()
            .map(|(name, text)| ((*name).to_owned(), Ok(text.as_bytes().to_vec())))
            .collect()
    } else {
        let (paths, errors) = rule_files(dirs);
        if paths.is_empty() {
            anyhow::bail!(
                "no rule files (.yml/.yaml) found in {}{}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", errors.join("; "))
                }
            );
        }
        for e in errors {
            diagnostics.push(Diagnostic::new(
                tracehunt_sigma::Code::YamlSyntax,
                &e,
                None,
                "cannot read",
            ));
        }
        // Files are read (and, on a cache miss, parsed) in parallel on the
        // caller's rayon pool (`hunt` runs this inside its own, sized by
        // --threads), and kept in path order, so rule order and diagnostics
        // do not depend on the thread count.
        use rayon::prelude::*;
        paths
            .par_iter()
            .map(|p| (p.display().to_string(), std::fs::read(p)))
            .collect()
    };
    crate::rule_cache::load_or_compile(diagnostics, sources, opts, &copts)
}

/// Parses rule files read by [`load`] (in parallel, in order) and compiles
/// them: a file that could not be read is its `cannot read` diagnostic.
pub fn compile_sources(
    diagnostics: Vec<Diagnostic>,
    sources: &[crate::rule_cache::RuleSource],
    copts: &CompileOptions,
) -> Loaded {
    use rayon::prelude::*;
    let parsed: Vec<tracehunt_sigma::LoadedFile> = sources
        .par_iter()
        .map(|(label, bytes)| match bytes {
            Ok(bytes) => tracehunt_sigma::load_rules_bytes(label, bytes),
            Err(e) => tracehunt_sigma::LoadedFile {
                diagnostics: vec![Diagnostic::new(
                    tracehunt_sigma::Code::YamlSyntax,
                    label,
                    None,
                    format!("cannot read: {e}"),
                )],
                ..Default::default()
            },
        })
        .collect();
    Loaded::build(diagnostics, parsed, copts)
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Rule files or directories (walked recursively). Default: the built-in
    /// pack (Windows rules only).
    pub paths: Vec<PathBuf>,
    /// More rule files or directories, as `hunt --rules` takes them
    /// (repeatable; checked together with PATHS).
    #[arg(short = 'r', long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Output format: table (text) or json.
    #[arg(
        long,
        short = 'f',
        value_enum,
        ignore_case = true,
        default_value = "table"
    )]
    pub format: crate::TextOrJson,
    #[command(flatten)]
    pub opts: RuleOpts,
}

/// What `rules check` counts a rule under: its Sigma `logsource.product`;
/// a rule without one by its category, else its service (SigmaHQ's
/// `webserver`, `proxy`, `dns`… rules name no product); correlation rules
/// (no logsource of their own) apart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleGroup {
    Product(String),
    Category(String),
    Service(String),
    Correlation,
    /// A detection rule whose logsource names no product, category or service.
    NoLogsource,
}

impl RuleGroup {
    /// The key of JSON `rules_by_product`, as earlier builds wrote it: the
    /// product, else the category, else `-`.
    pub fn product_key(&self) -> &str {
        match self {
            RuleGroup::Product(p) | RuleGroup::Category(p) => p,
            _ => "-",
        }
    }

    /// How the text output names a group of rules without a product.
    fn label(&self) -> String {
        match self {
            RuleGroup::Product(p) => p.clone(),
            RuleGroup::Category(c) => format!("category {c}"),
            RuleGroup::Service(s) => format!("service {s}"),
            RuleGroup::Correlation => "correlation rules".to_owned(),
            RuleGroup::NoLogsource => "no logsource".to_owned(),
        }
    }
}

/// Per [`RuleGroup`]: `(loaded, active)` rule counts, the rules of every
/// level (issue #21: how many non-Windows rules run).
pub fn by_group(loaded: &Loaded) -> BTreeMap<RuleGroup, (u64, u64)> {
    let correlations: std::collections::HashSet<usize> =
        loaded.correlation_rules.iter().copied().collect();
    let mut out: BTreeMap<RuleGroup, (u64, u64)> = BTreeMap::new();
    for (i, m) in loaded.ruleset.rules().iter().enumerate() {
        let key = match (&m.product, &m.category, &m.service) {
            (Some(p), _, _) => RuleGroup::Product(p.clone()),
            (None, Some(c), _) => RuleGroup::Category(c.clone()),
            (None, None, Some(s)) => RuleGroup::Service(s.clone()),
            _ if correlations.contains(&i) => RuleGroup::Correlation,
            _ => RuleGroup::NoLogsource,
        };
        let e = out.entry(key).or_default();
        e.0 += 1;
        e.1 += u64::from(m.active);
    }
    out
}

/// `{"loaded": n, "active": a}`.
fn counts_json((n, act): (u64, u64)) -> serde_json::Value {
    serde_json::json!({"loaded": n, "active": act})
}

/// JSON `rules_by_product` (product, else category, else `-`: the keys
/// of earlier builds) and `rules_without_product` (the rules without a
/// product by category, by service, correlation rules, and rules with no
/// logsource at all).
fn groups_json(groups: &BTreeMap<RuleGroup, (u64, u64)>) -> (serde_json::Value, serde_json::Value) {
    let mut by_product: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let (mut by_category, mut by_service) = (serde_json::Map::new(), serde_json::Map::new());
    let (mut correlation, mut none) = ((0, 0), (0, 0));
    for (g, &(n, act)) in groups {
        let e = by_product.entry(g.product_key()).or_default();
        e.0 += n;
        e.1 += act;
        match g {
            RuleGroup::Product(_) => {}
            RuleGroup::Category(c) => {
                by_category.insert(c.clone(), counts_json((n, act)));
            }
            RuleGroup::Service(s) => {
                by_service.insert(s.clone(), counts_json((n, act)));
            }
            RuleGroup::Correlation => correlation = (n, act),
            RuleGroup::NoLogsource => none = (n, act),
        }
    }
    let by_product: serde_json::Map<String, serde_json::Value> = by_product
        .into_iter()
        .map(|(k, c)| (k.to_owned(), counts_json(c)))
        .collect();
    (
        serde_json::Value::Object(by_product),
        serde_json::json!({
            "by_category": by_category,
            "by_service": by_service,
            "correlation_rules": counts_json(correlation),
            "no_logsource": counts_json(none),
        }),
    )
}

/// The text lines of the groups: one for the products, one for the rules
/// without a product (when there are any); `active/loaded` explained.
fn group_lines(groups: &BTreeMap<RuleGroup, (u64, u64)>) -> Vec<String> {
    let part = |(g, (n, act)): (&RuleGroup, &(u64, u64))| format!("{} {act}/{n}", g.label());
    let products: Vec<String> = groups
        .iter()
        .filter(|(g, _)| matches!(g, RuleGroup::Product(_)))
        .map(part)
        .collect();
    let others: Vec<String> = groups
        .iter()
        .filter(|(g, _)| !matches!(g, RuleGroup::Product(_)))
        .map(part)
        .collect();
    let mut lines = Vec::new();
    if !products.is_empty() {
        lines.push(format!(
            "rules by Sigma product, active/loaded (active: its logsource maps to a log type tracehunt reads; the others get TH010): {}",
            products.join(", ")
        ));
    }
    if !others.is_empty() {
        lines.push(format!(
            "rules without a Sigma product, active/loaded: {}",
            others.join(", ")
        ));
    }
    lines
}

pub fn check(a: CheckArgs) -> Result<u8> {
    let t = std::time::Instant::now();
    let mut paths = a.paths;
    paths.extend(a.rules);
    let loaded = load(&paths, &a.opts)?;
    let counts = RuleCounts::of(&loaded, 0);
    let total = counts.loaded + counts.failed;
    let pct = if total == 0 {
        100.0
    } else {
        100.0 * counts.loaded as f64 / total as f64
    };
    let mut by_code: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &loaded.diagnostics {
        *by_code.entry(d.code.as_str()).or_default() += 1;
    }
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let summary = tracehunt_report::Summary {
        rules_loaded: counts.loaded,
        rules_active: counts.active,
        rules_skipped: counts.skipped(),
        rules_skipped_by_reason: counts.skipped_by_reason.clone(),
        rules_failed: counts.failed,
        rules_with_unresolved_placeholder: counts.unresolved_placeholder,
        ..Default::default()
    };
    let groups = by_group(&loaded);
    if a.format == crate::TextOrJson::Json {
        let (by_product, without_product) = groups_json(&groups);
        let v = serde_json::json!({
            "files": loaded.files,
            "rules_by_product": by_product,
            "rules_without_product": without_product,
            "rules_loaded": counts.loaded,
            "rules_active": counts.active,
            "rules_skipped": counts.skipped(),
            "rules_skipped_by_reason": counts.skipped_by_reason,
            "rules_failed": counts.failed,
            "load_ratio": pct / 100.0,
            "diagnostics_by_code": by_code,
            "diagnostics": loaded.diagnostics,
            "elapsed_ms": t.elapsed().as_millis() as u64,
        });
        serde_json::to_writer_pretty(&mut w, &v)?;
        writeln!(w)?;
    } else {
        for d in &loaded.diagnostics {
            writeln!(w, "{d}")?;
        }
        writeln!(
            w,
            "{} {}, rules: {}; {:.2} % of the rule documents loaded; {:.0} ms",
            loaded.files,
            if loaded.files == 1 { "file" } else { "files" },
            tracehunt_report::rules_line(&summary),
            pct,
            t.elapsed().as_secs_f64() * 1000.0
        )?;
        if !by_code.is_empty() {
            let parts: Vec<String> = by_code.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            writeln!(w, "diagnostics by code: {}", parts.join(", "))?;
        }
        for line in group_lines(&groups) {
            writeln!(w, "{line}")?;
        }
    }
    w.flush()?;
    // Scripts and CI can tell "some rules failed" from a clean load.
    Ok(if counts.failed > 0 {
        crate::EXIT_RULES_FAILED
    } else {
        0
    })
}
