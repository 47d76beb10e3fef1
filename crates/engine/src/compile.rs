//! Rules → immutable [`Ruleset`].

use crate::matcher::{Cond, Det, FieldId, Item, Matcher, NumOp, RefMode, StrOp, TimePart};
use crate::persist::LazyRegex;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use tracehunt_sigma::ast::{
    ConditionExpr, Detection, DetectionItem, Level, Modifier, Quantifier, SelectorPattern,
    SigmaString, SigmaValue, SpecialChar, StringPart,
};
use tracehunt_sigma::{Code, Diagnostic, LogsourceMap, RuleDoc, Source};

/// Fields Windows writes padded with trailing spaces to a fixed width:
/// the Security log's `LogonProcessName` (4624, 4625, 4648, 4611…) is
/// `"NtLmSsp "`, `"Advapi  "`, `"User32 "`, while rules write `NtLmSsp`.
/// Their values are compared with the trailing spaces removed; no other
/// value is trimmed (a command line's trailing space is real data).
pub const PADDED_FIELDS: &[&str] = &["LogonProcessName"];

/// Compile-time settings.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// Logsource → event-source mapping (default: the built-in Windows map).
    pub logsources: LogsourceMap,
    /// Values for `expand` placeholders: `%name%` → values (Sigma
    /// placeholder convention; SigmaHQ `rules-placeholder`). A placeholder
    /// without values makes its item never match (diagnostic `TH011`).
    pub placeholders: HashMap<String, Vec<String>>,
    /// Upper bound on one compiled regex (bytes of the `regex` crate's
    /// program); a larger one is rejected with `TH006`. Default 16 MiB.
    pub regex_size_limit: usize,
    /// Most `*`/`?` wildcards one value may have (SigmaHQ's maximum is 13);
    /// more is rejected with `TH006`, since such patterns make matching
    /// slow on long fields. Default 64.
    pub max_wildcards: usize,
    /// Most values one detection item may list; more is rejected with
    /// `TH006`. Default 10,000.
    pub max_values: usize,
    /// Evaluate every candidate rule of an event, without the literal
    /// prefilter (slower, same detections). For differential tests of the
    /// prefilter; not part of the stable API.
    #[doc(hidden)]
    pub no_prefilter: bool,
    /// Which loaded rules run ([`Selection`](crate::Selection)); the
    /// others stay in the ruleset, inactive, with
    /// [`RuleMeta::excluded`] set. Default: every rule.
    pub selection: crate::Selection,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            logsources: LogsourceMap::builtin(),
            placeholders: HashMap::new(),
            regex_size_limit: 16 << 20,
            max_wildcards: 64,
            max_values: 10_000,
            no_prefilter: false,
            selection: crate::Selection::default(),
        }
    }
}

/// What a detection reports about the rule that fired: its Sigma metadata
/// plus the ATT&CK ids parsed from its tags.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMeta {
    /// Sigma `id` (UUID), or the title when the rule has no id.
    pub id: String,
    /// Sigma `title`.
    pub title: String,
    /// Sigma `name` (the handle correlation rules and filters may use
    /// instead of the id), when present.
    pub name: Option<String>,
    /// Sigma `level` as a lower-case word; `informational` when absent.
    pub level: &'static str,
    /// Numeric rank of `level`: informational 0 … critical 4.
    pub level_rank: u8,
    /// Sigma `status`, lower-case, when present.
    pub status: Option<String>,
    /// Sigma `description`.
    pub description: Option<String>,
    /// Sigma `author`.
    pub author: Option<String>,
    /// All tags as written.
    pub tags: Vec<String>,
    /// ATT&CK technique ids from `attack.tNNNN[.NNN]` tags, upper-case (`T1059.001`).
    pub techniques: Vec<String>,
    /// ATT&CK tactic names from other `attack.*` tags (`execution`, `lateral-movement`…).
    pub tactics: Vec<String>,
    /// ATT&CK intrusion-set ids from `attack.gNNNN` tags (`G0009`).
    pub groups: Vec<String>,
    /// ATT&CK software ids from `attack.sNNNN` tags (`S0002`).
    pub software: Vec<String>,
    /// The rule file label and 1-based line it was loaded from.
    pub file: String,
    /// 1-based line of the rule in `file`.
    pub line: u32,
    /// False when the logsource is not mapped or the rule selection left
    /// the rule out (`excluded`): the rule never runs.
    pub active: bool,
    /// Why [`CompileOptions::selection`] left the rule out (a key of
    /// [`select::reason`](crate::select::reason), e.g. `excluded_by_status`),
    /// `None` when it was selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded: Option<&'static str>,
    /// Sigma `logsource.product`, lower-case (`windows`, `linux`, `aws`…);
    /// `None` when the rule names none (SigmaHQ's webserver and proxy rules).
    pub product: Option<String>,
    /// Sigma `logsource.category`, lower-case, when present.
    pub category: Option<String>,
    /// Sigma `logsource.service`, lower-case, when present.
    pub service: Option<String>,
    /// ATT&CK software and groups the rule *names* rather than tags (issue
    /// #18 item 5: SigmaHQ emerging-threats folder names and titles such as
    /// `2017/TA/Turla/…`, "Potential Emotet Activity"), resolved against a
    /// knowledge base after compilation by the caller
    /// (`tracehunt_pipeline::Loaded::resolve_names`) through
    /// [`Ruleset::set_named`]; empty until then. Tags stay in `software` /
    /// `groups`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub named: Vec<NamedRef>,
}

/// An ATT&CK software or group a rule names in its folder or title.
///
/// JSON: `{"id":"G0010","name":"Turla","origin":"folder"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedRef {
    /// ATT&CK id, upper-case: `S0367` (software) or `G0010` (group).
    pub id: String,
    /// The name as the rule wrote it (`Turla`, `Cozy-Bear`, `Emotet`).
    pub name: String,
    /// Where the rule wrote it.
    pub origin: NameOrigin,
}

impl NamedRef {
    /// True for an intrusion set (`G…`), false for software (`S…`).
    pub fn is_group(&self) -> bool {
        self.id.starts_with('G')
    }
}

/// Where a rule names an ATT&CK software or group ([`NamedRef::origin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameOrigin {
    /// The folder the rule file sits in (`rules-emerging-threats/2017/TA/Turla/`).
    Folder,
    /// The rule's `title`.
    Title,
}

impl NameOrigin {
    /// `folder` or `title`.
    pub fn as_str(self) -> &'static str {
        match self {
            NameOrigin::Folder => "folder",
            NameOrigin::Title => "title",
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct CompiledRule {
    pub(crate) dets: Vec<Det>,
    pub(crate) cond: Cond,
}

impl CompiledRule {
    /// Renumbers the field ids of every detection through `ids` (a rule
    /// compiled with its own interner → the ruleset's ids).
    fn renumber_fields(&mut self, ids: &[FieldId]) {
        self.dets.iter_mut().for_each(|d| d.renumber_fields(ids));
    }
}

/// One distinct event source across all rules, with field renames
/// resolved to interned ids.
#[derive(Serialize, Deserialize)]
pub(crate) struct CompiledSource {
    /// Lower-case channels; empty = any channel not in `not_channels`.
    pub(crate) channels: Vec<String>,
    /// Lower-case channels never matched (issue #21: the channels of other
    /// products, for a Windows source that names no channel).
    pub(crate) not_channels: Vec<String>,
    pub(crate) event_ids: Vec<u32>,
    pub(crate) remap: HashMap<FieldId, FieldId>,
    /// Fields whose values this source's events give through a derivation
    /// ([`tracehunt_sigma::Derived`]); `remap` sends the Sigma field to the
    /// derivation's virtual field.
    pub(crate) derived: Vec<CompiledDerived>,
    /// Rules (indices) that apply to events of this source, ascending.
    pub(crate) rules: Vec<u32>,
}

/// A [`tracehunt_sigma::Derived`] with its field names interned.
#[derive(Serialize, Deserialize)]
pub(crate) struct CompiledDerived {
    /// The virtual field the derived values are placed under: a name no
    /// event field resolves to (`Ruleset::is_virtual`), one per source
    /// and Sigma field.
    pub(crate) to: FieldId,
    /// The event fields the values come from.
    pub(crate) from: Vec<FieldId>,
    /// Lower-case event value → the value Sigma rules write.
    pub(crate) values: HashMap<String, String>,
    /// Join the `from` values with this text into one value.
    pub(crate) join: Option<String>,
    /// `0x…` values also give their decimal form.
    pub(crate) hex: bool,
}

/// An immutable, compiled rule set: `Send + Sync`, shared by all scanners.
///
/// Rule indices (`usize`) are stable for the life of the set and follow the
/// order the rules were given in (duplicates by id dropped).
///
/// Serialisable with serde (issue #22, the cached compiled ruleset; see
/// [`persist`](crate::persist) for what is rebuilt rather than stored). A
/// deserialised set should be checked with [`Ruleset::validate`] before use.
#[derive(Serialize, Deserialize)]
pub struct Ruleset {
    /// Lower-case channels of non-Windows sources, sorted
    /// ([`LogsourceMap::foreign_channels`]).
    pub(crate) foreign: Vec<String>,
    #[serde(with = "crate::persist::metas")]
    pub(crate) meta: Vec<RuleMeta>,
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) sources: Vec<CompiledSource>,
    pub(crate) names: foldhash::HashMap<String, FieldId>,
    pub(crate) name_count: usize,
    /// Per interned field id: the needles that must occur in that field.
    pub(crate) field_prefilter: Vec<Option<NeedleIndex>>,
    /// Needles of rules with keyword selections, searched in every field.
    pub(crate) kw_prefilter: Option<NeedleIndex>,
    /// Total needles over all automata (size of the scanner's stamp array).
    pub(crate) needle_count: usize,
    /// Per compiled rule: true when it is only evaluated if a needle hit.
    pub(crate) prefiltered: Vec<bool>,
    /// Per compiled rule: some of its needles come from keyword selections
    /// and may occur in any field.
    pub(crate) any_field: Vec<bool>,
    /// Per compiled rule: the field ids whose automaton in `field_prefilter`
    /// holds one of its needles (renamed fields included), ascending. A
    /// scanner runs a field's automaton only when some rule routed to the
    /// event has that field here.
    pub(crate) rule_fields: Vec<Box<[FieldId]>>,
    /// The interned id of `EventID`, if some rule names it.
    pub(crate) eventid_field: Option<FieldId>,
    /// Per interned field id: a derivation's virtual field, which no event
    /// field name may resolve to.
    pub(crate) is_virtual: Vec<bool>,
    /// Per interned field id: a field Windows pads with trailing spaces
    /// ([`PADDED_FIELDS`]); its values are compared without them.
    pub(crate) padded: Vec<bool>,
    /// Per compiled rule: the EventIDs it can match on an event with one
    /// canonical `EventID` value (`crate::prefilter::rule_event_ids`);
    /// `None` when unrestricted (and for every rule under
    /// [`CompileOptions::no_prefilter`]). A scanner leaves a rule out of
    /// the candidates of an EventID not in its set.
    pub(crate) event_ids: Vec<Option<Box<[u32]>>>,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("rules", &self.meta.len())
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl Ruleset {
    /// Number of rules (active and inactive).
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Number of rules that can run (logsource mapped).
    pub fn active_len(&self) -> usize {
        self.meta.iter().filter(|m| m.active).count()
    }

    /// Metadata of rule `i`. Panics if `i >= len()`.
    pub fn rule(&self, i: usize) -> &RuleMeta {
        &self.meta[i]
    }

    /// All rule metadata in index order.
    pub fn rules(&self) -> &[RuleMeta] {
        &self.meta
    }

    /// Frees what scanning built on first use — compiled regexes (and
    /// their per-thread search caches), `contains` finders and the needle
    /// automata — keeping everything else. The set matches exactly as
    /// before: a later scan builds them again when it needs them. A batch
    /// hunt calls this between its scan and its reports, which read only
    /// rule metadata (issue #22, memory: 21 MB of the EVTX bench's heap,
    /// so the attribution after the scan no longer adds to its peak).
    pub fn release_built(&mut self) {
        for rule in &mut self.rules {
            rule.dets.iter_mut().for_each(crate::matcher::Det::release);
        }
        for index in self.field_prefilter.iter_mut().flatten() {
            index.ac = std::sync::OnceLock::new();
        }
        if let Some(index) = &mut self.kw_prefilter {
            index.ac = std::sync::OnceLock::new();
        }
    }

    /// True when `channel` (any case) belongs to a non-Windows source of the
    /// logsource map the set was compiled with (issue #21): such events
    /// have no EventID by design.
    pub fn is_foreign_channel(&self, channel: &str) -> bool {
        tracehunt_sigma::channel_listed(&self.foreign, &channel.to_ascii_lowercase())
    }

    /// True when some active rule reads events of `channel` (any case; a
    /// source naming channels lists it, or a source naming none does not
    /// exclude it), whatever their EventID. A hunt warns about events of a
    /// channel no rule reads (fresh-user finding, issue #21: CloudTrail
    /// hunted with the Windows-only built-in rules gave "0 detections" and
    /// looked clean).
    pub fn reads_channel(&self, channel: &str) -> bool {
        let key = channel.to_ascii_lowercase();
        self.sources.iter().any(|s| {
            if s.channels.is_empty() {
                !tracehunt_sigma::channel_listed(&s.not_channels, &key)
            } else {
                s.channels.contains(&key)
            }
        })
    }

    /// Index of the rule with this Sigma id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.meta.iter().position(|m| m.id == id)
    }

    /// Adds the metadata of a rule that is evaluated outside the scanner
    /// (a Sigma correlation rule, see `tracehunt-correlate`) and returns its
    /// index. Such a rule has no compiled detection: [`Scanner`](crate::Scanner)
    /// never reports it, but detections can name it like any other rule.
    /// Its `active` flag is kept as given.
    pub fn push_derived(&mut self, meta: RuleMeta) -> usize {
        self.meta.push(meta);
        self.meta.len() - 1
    }

    /// Sets the ATT&CK software and groups rule `i` names in its folder or
    /// title ([`RuleMeta::named`]); metadata only, matching is unchanged.
    /// Panics if `i >= len()`.
    pub fn set_named(&mut self, i: usize, named: Vec<NamedRef>) {
        self.meta[i].named = named;
    }
}

impl RuleMeta {
    /// Metadata built from Sigma attributes for a rule that is not a
    /// detection rule (a correlation rule): `level`/`level_rank` from
    /// `level`, ATT&CK ids from `tags` as for detection rules; `active` true.
    #[allow(clippy::too_many_arguments)]
    pub fn derived(
        id: String,
        title: String,
        name: Option<String>,
        level: Option<Level>,
        status: Option<String>,
        description: Option<String>,
        author: Option<String>,
        tags: Vec<String>,
        file: String,
        line: u32,
    ) -> RuleMeta {
        let (level, level_rank) = level_word(level);
        let (techniques, tactics, groups, software) = attack_tags(&tags);
        RuleMeta {
            id,
            title,
            name,
            level,
            level_rank,
            status,
            description,
            author,
            tags,
            techniques,
            tactics,
            groups,
            software,
            file,
            line,
            active: true,
            excluded: None,
            // A correlation has no logsource of its own.
            product: None,
            category: None,
            service: None,
            named: Vec::new(),
        }
    }
}

/// Field names → ids, numbered in order of first use.
#[derive(Default)]
struct Interner {
    names: foldhash::HashMap<String, FieldId>,
}

impl Interner {
    fn id(&mut self, name: &str) -> FieldId {
        let mut key = String::new();
        crate::scan::field_key(name, &mut key);
        self.id_of_key(key)
    }

    /// The id of an already normalised name ([`crate::scan::field_key`]).
    fn id_of_key(&mut self, key: String) -> FieldId {
        let n = self.names.len() as FieldId;
        *self.names.entry(key).or_insert(n)
    }

    /// Moves a rule's own names (compiled with an interner of its own, in
    /// parallel) into this one, in the order the rule first used them, so
    /// the ids are those one shared interner gives rule after rule; returns
    /// the rule's id → this interner's id.
    fn absorb(&mut self, local: Interner) -> Vec<FieldId> {
        let mut names: Vec<(String, FieldId)> = local.names.into_iter().collect();
        names.sort_unstable_by_key(|&(_, id)| id);
        names.into_iter().map(|(k, _)| self.id_of_key(k)).collect()
    }
}

/// One rule's compilation, done in parallel with the others: the result,
/// the warnings, and the names it interned (ids local to the rule).
type RuleOutcome = (Result<CompiledRule, CErr>, Vec<CErr>, Interner);

/// Compiles one rule with an interner of its own (see [`Interner::absorb`]).
fn compile_alone(r: &tracehunt_sigma::ast::SigmaRule, opts: &CompileOptions) -> RuleOutcome {
    let mut interner = Interner::default();
    let mut warn = Vec::new();
    let compiled = compile_rule(r, opts, &mut interner, &mut warn);
    (compiled, warn, interner)
}

type CErr = (Code, String);

/// Compiles rules into a [`Ruleset`].
///
/// Partial success: each rule that cannot be compiled becomes a
/// [`Diagnostic`] and is left out; rules whose logsource is not mapped are
/// kept inactive with a `TH010` warning. Duplicate ids: the first copy of
/// an id that compiles is kept, a later copy is dropped with `TH013` (a
/// copy after one that failed to compile is compiled: issue #20). Rules
/// without an `id` are never de-duplicated by title: each is kept, its
/// [`RuleMeta::id`] the title, or for a later rule whose title is already
/// an id, the title with its file and line (`Title (rules/x.yml:3)`); only a
/// document equal to an id-less rule already kept (the same rule loaded
/// twice, e.g. one file copied) is dropped with `TH013`.
pub fn compile(docs: Vec<RuleDoc>, opts: &CompileOptions) -> (Ruleset, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut interner = Interner::default();
    let mut meta = Vec::new();
    let mut rules = Vec::new();
    // Ids of the rules kept.
    let mut seen_ids = HashSet::new();
    // Rules without an id that were kept, by title (to tell a copy of one).
    let mut untitled: HashMap<String, Vec<tracehunt_sigma::ast::SigmaRule>> = HashMap::new();
    // Distinct sources, keyed by their content.
    let mut source_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut sources: Vec<CompiledSource> = Vec::new();

    // Rules compile in parallel (on the caller's rayon pool), each naming its
    // fields with ids of its own, renumbered below in rule order.
    use rayon::prelude::*;
    let outcomes: Vec<RuleOutcome> = docs
        .par_iter()
        .map(|doc| compile_alone(&doc.rule, opts))
        .collect();
    for (doc, (compiled, warn, local)) in docs.iter().zip(outcomes) {
        let r = &doc.rule;
        let duplicate = match &r.id {
            Some(id) => seen_ids
                .contains(id)
                .then_some("a rule with this id was already loaded; this copy is skipped"),
            None => untitled
                .get(&r.title)
                .is_some_and(|kept| kept.contains(r))
                .then_some(
                    "this rule (no `id`) is identical to one already loaded; this copy is skipped",
                ),
        };
        if let Some(msg) = duplicate {
            diags.push(
                Diagnostic::new(Code::DuplicateId, &doc.file, Some(doc.line), msg)
                    .with_rule(Some(r.id.clone().unwrap_or_else(|| r.title.clone()))),
            );
            continue;
        }
        let id = match &r.id {
            Some(id) => id.clone(),
            None if seen_ids.contains(&r.title) => {
                format!("{} ({}:{})", r.title, doc.file, doc.line)
            }
            None => r.title.clone(),
        };
        // Diagnostics name the rule by its id, or its title (they give the file and line).
        let label = Some(r.id.clone().unwrap_or_else(|| r.title.clone()));
        // Also for a rule that failed: the names it interned before failing
        // took ids, as they did when rules were compiled one after another.
        let ids = interner.absorb(local);
        let compiled = match compiled {
            Ok(mut c) => {
                c.renumber_fields(&ids);
                c
            }
            Err((code, msg)) => {
                diags.push(Diagnostic::new(code, &doc.file, Some(doc.line), msg).with_rule(label));
                continue;
            }
        };
        for (code, msg) in warn {
            diags.push(
                Diagnostic::new(code, &doc.file, Some(doc.line), msg).with_rule(label.clone()),
            );
        }
        let idx = rules.len() as u32;
        let status = r.status.map(|s| format!("{s:?}").to_ascii_lowercase());
        let excluded =
            opts.selection
                .excludes(&id, status.as_deref(), &r.tags, level_word(r.level).1);
        // A rule the selection leaves out is kept (counted) but never routed.
        let resolved = match excluded {
            None => opts.logsources.resolve(&r.logsource),
            Some(_) => None,
        };
        let active = resolved.is_some();
        match resolved {
            Some(srcs) => {
                for s in srcs {
                    let si = source_index(s, &mut source_keys, &mut sources, &mut interner);
                    if sources[si].rules.last() != Some(&idx) {
                        sources[si].rules.push(idx);
                    }
                }
            }
            None if excluded.is_some() => {}
            None => diags.push(
                Diagnostic::new(
                    Code::UnmappedLogsource,
                    &doc.file,
                    Some(doc.line),
                    format!(
                        "logsource (product: {}, category: {}, service: {}) is not mapped to any event source; the rule is loaded but never evaluated",
                        r.logsource.product.as_deref().unwrap_or("-"),
                        r.logsource.category.as_deref().unwrap_or("-"),
                        r.logsource.service.as_deref().unwrap_or("-"),
                    ),
                )
                .with_rule(label),
            ),
        }
        seen_ids.insert(id.clone());
        if r.id.is_none() {
            untitled.entry(r.title.clone()).or_default().push(r.clone());
        }
        let mut m = rule_meta(doc, id, active);
        m.excluded = excluded;
        meta.push(m);
        rules.push(compiled);
    }
    // The parsed documents are freed on the pool too (one by one, in the
    // loop above, they took a tenth of the sequential part).
    docs.into_par_iter().for_each(drop);
    let name_count = interner.names.len();
    let eventid_field = interner.names.get("eventid").copied();
    let mut is_virtual = vec![false; name_count];
    for d in sources.iter().flat_map(|s| s.derived.iter()) {
        is_virtual[d.to as usize] = true;
    }
    let mut padded = vec![false; name_count];
    for name in PADDED_FIELDS {
        let mut key = String::new();
        crate::scan::field_key(name, &mut key);
        if let Some(&id) = interner.names.get(key.as_str()) {
            padded[id as usize] = true;
        }
    }
    let event_ids = rules
        .iter()
        .map(|r| match eventid_field {
            Some(e) if !opts.no_prefilter => {
                crate::prefilter::rule_event_ids(&r.dets, &r.cond, e).map(Vec::into_boxed_slice)
            }
            _ => None,
        })
        .collect();
    let pf = if opts.no_prefilter {
        Prefilter::disabled(rules.len())
    } else {
        build_prefilter(&rules, &sources, interner.names.len())
    };
    (
        Ruleset {
            foreign: opts.logsources.foreign_channels().to_vec(),
            meta,
            rules,
            sources,
            names: interner.names,
            name_count,
            field_prefilter: pf.fields,
            kw_prefilter: pf.keywords,
            needle_count: pf.needles,
            prefiltered: pf.prefiltered,
            any_field: pf.any_field,
            rule_fields: pf.rule_fields,
            eventid_field,
            is_virtual,
            padded,
            event_ids,
        },
        diags,
    )
}

struct Prefilter {
    fields: Vec<Option<NeedleIndex>>,
    keywords: Option<NeedleIndex>,
    prefiltered: Vec<bool>,
    any_field: Vec<bool>,
    rule_fields: Vec<Box<[FieldId]>>,
    needles: usize,
}

/// Needle sets up to this size get a DFA automaton; larger ones a
/// contiguous NFA. A DFA's table for 600-1,100 needles (several MB) missed
/// the cache on most bytes: with 2,000 here, all SigmaHQ rules on
/// EVTX-ATTACK-SAMPLES x40 took 8.1-8.4 CPU-s and 147 MB, with 100 7.6-7.9
/// CPU-s and 124 MB (2 threads; samples alone 137 -> 118 MB, and rule
/// loading is faster: fewer DFAs to build).
const DFA_MAX_NEEDLES: usize = 100;
impl Prefilter {
    /// No automaton: every candidate rule is evaluated.
    fn disabled(n: usize) -> Prefilter {
        Prefilter {
            fields: Vec::new(),
            keywords: None,
            prefiltered: vec![false; n],
            any_field: vec![false; n],
            rule_fields: vec![Box::default(); n],
            needles: 0,
        }
    }
}

/// ... and up to this many needle bytes (a DFA's build time grows with the
/// square of long needles: a 64 KiB `contains` value took 17 s).
const DFA_MAX_BYTES: usize = 32 * 1024;

/// One Aho-Corasick automaton over case-folded needles, and for each
/// needle the compiled rules that need it. `base` offsets its needle ids
/// into the scanner's stamp array. The automaton is built on first use
/// ([`NeedleIndex::search`]): only the fields a hunt's events have pay for
/// one, and a deserialised set (which cannot store it) builds it the same way.
#[derive(Serialize, Deserialize)]
pub(crate) struct NeedleIndex {
    #[serde(skip)]
    ac: std::sync::OnceLock<Option<NeedleSearch>>,
    /// The needles, in pattern-id order (for [`NeedleIndex::subset`]).
    pub(crate) needles: Vec<String>,
    pub(crate) rules: Vec<Vec<u32>>,
    pub(crate) base: usize,
}

/// An automaton over some of a [`NeedleIndex`]'s needles: `pats` maps its
/// pattern ids to the parent's. Built per route by a scanner, so an event
/// only meets the needles of rules it can be evaluated against.
pub(crate) struct SubIndex {
    /// `None` when no automaton could be built: every needle counts as hit.
    pub(crate) ac: Option<NeedleSearch>,
    pub(crate) pats: Vec<u32>,
}

/// Needle sets up to this size are searched with the `aho-corasick`
/// crate's packed (Teddy, SIMD) searcher where the CPU has it: on Mordor
/// ×1 the 20-needle keyword set scanned 863 MB of values at 2.4 ns/byte
/// with a byte-at-a-time DFA (2.1 of 13.7 CPU-s). 64 is Teddy's limit.
const PACKED_MAX_NEEDLES: usize = 64;

/// ... and whose verification work per candidate position is at most this
/// many bytes (see [`verify_work`]). Teddy confirms a candidate by
/// comparing every needle of its bucket against the text, so needles that
/// are long or share long prefixes cost that much at *every* position of a
/// crafted value (breaker finding: one 40,000-byte `contains` needle made
/// a 4 MB value take 16 s, O(value x needle); 64 needles of 32 bytes with
/// a common prefix took 0.3 s/MB, against 2 ms/MB for the DFA). At 128
/// the worst case stays within ~10x the DFA; every SigmaHQ Windows keyword
/// set (work <= 56) and 169 of 183 field sets stay packed.
const PACKED_MAX_WORK: usize = 128;

/// The most needle bytes a search can compare at one text position: the
/// text there shares with each needle at most its longest common prefix
/// with some needle, so this is `max over p of sum over q of lcp(p, q)`
/// (at least the longest needle's length).
fn verify_work(needles: &[&str]) -> usize {
    let lcp = |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    needles
        .iter()
        .map(|p| needles.iter().map(|q| lcp(p, q)).sum::<usize>())
        .max()
        .unwrap_or(0)
}

/// A search that reports every needle occurring in a text.
#[derive(Clone)]
pub(crate) enum NeedleSearch {
    /// Aho-Corasick, overlapping search (reports every occurrence).
    Ac(aho_corasick::AhoCorasick),
    /// Teddy leftmost-longest, restarted one byte after each match start,
    /// so every start position with a needle is visited; there the
    /// longest needle is reported and the needles occurring at the same
    /// position are exactly its prefixes: `closure[p]` lists the needles
    /// that are prefixes of needle `p` (itself included).
    Packed {
        searcher: aho_corasick::packed::Searcher,
        closure: Vec<Vec<u32>>,
    },
}

impl NeedleSearch {
    /// Calls `f` with the id of every needle occurring in `text` (a needle
    /// may be reported more than once).
    pub(crate) fn for_each_hit(&self, text: &[u8], mut f: impl FnMut(usize)) {
        match self {
            NeedleSearch::Ac(ac) => {
                for m in ac.find_overlapping_iter(text) {
                    f(m.pattern().as_usize());
                }
            }
            NeedleSearch::Packed { searcher, closure } => {
                let mut at = 0;
                while at < text.len() {
                    let Some(m) = searcher.find_in(text, aho_corasick::Span::from(at..text.len()))
                    else {
                        break;
                    };
                    for &p in &closure[m.pattern().as_usize()] {
                        f(p as usize);
                    }
                    at = m.start() + 1;
                }
            }
        }
    }
}

/// The search for `needles`: Teddy for up to [`PACKED_MAX_NEEDLES`] whose
/// [`verify_work`] is at most [`PACKED_MAX_WORK`]; else
/// an Aho-Corasick DFA (one table lookup per byte) where it stays small and
/// a contiguous NFA for the largest or longest needle sets.
fn build_ac(needles: &[&str]) -> Result<NeedleSearch, ()> {
    if needles.len() <= PACKED_MAX_NEEDLES
        && needles.iter().all(|n| n.len() <= PACKED_MAX_WORK)
        && verify_work(needles) <= PACKED_MAX_WORK
    {
        let searcher = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(needles)
            .build();
        if let Some(searcher) = searcher {
            let closure = needles
                .iter()
                .map(|n| {
                    (0..needles.len() as u32)
                        .filter(|&q| n.as_bytes().starts_with(needles[q as usize].as_bytes()))
                        .collect()
                })
                .collect();
            return Ok(NeedleSearch::Packed { searcher, closure });
        }
    }
    let bytes: usize = needles.iter().map(|n| n.len()).sum();
    let builder = |kind, needles: &[&[u8]]| {
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .kind(Some(kind))
            .build(needles)
            .map(NeedleSearch::Ac)
            .map_err(|_| ())
    };
    if needles.len() <= DFA_MAX_NEEDLES && bytes <= DFA_MAX_BYTES {
        let needles: Vec<&[u8]> = needles.iter().map(|n| n.as_bytes()).collect();
        return builder(aho_corasick::AhoCorasickKind::DFA, &needles);
    }
    // Explicitly a contiguous NFA: the crate's own choice would still pick
    // a DFA for fewer than 100 (possibly huge) needles. Over NFA_CUT_BYTES
    // of needles, they are cut to their first NFA_NEEDLE_BYTES bytes (see
    // there).
    let keep = if bytes > NFA_CUT_BYTES {
        NFA_NEEDLE_BYTES
    } else {
        usize::MAX
    };
    let cut: Vec<&[u8]> = needles
        .iter()
        .map(|n| &n.as_bytes()[..n.len().min(keep)])
        .collect();
    builder(aho_corasick::AhoCorasickKind::ContiguousNFA, &cut)
}

/// Contiguous-NFA automata over more needle bytes than this hold only each
/// needle's first [`NFA_NEEDLE_BYTES`] bytes. Only SigmaHQ's `Hashes` set
/// (282 KB) is that large; its `CommandLine` set (7,361 needles, 118 KB)
/// is not cut: prefixes such as `powershell.exe -executio` occur in most
/// events of a Mordor-like log and would mark their rules everywhere (the
/// flat JSON lane took 3-10 % more CPU with every large set cut).
const NFA_CUT_BYTES: usize = 192 * 1024;

/// The longest needle prefix a contiguous-NFA automaton over more than
/// [`NFA_CUT_BYTES`] of needles holds. A needle's first bytes occur
/// wherever the needle does, so a cut needle still marks every rule it
/// marked (and maybe a few more, which are then evaluated: the prefilter
/// only skips work). Building the automaton costs about its needle bytes:
/// SigmaHQ's 5,687 `Hashes` needles (`imphash=` + 32 hex digits and the
/// like, 282 KB) took 20-33 ms to build and 2.8 MB, on first use in every
/// hunt that meets a Sysmon event; cut at 24 bytes (still 16 hex digits
/// after `imphash=`) 7.6 ms and 1.1 MB, searched as fast (0.9 ns/byte).
const NFA_NEEDLE_BYTES: usize = 24;

impl NeedleIndex {
    /// The automaton over all needles, built on first call; `None` when it
    /// cannot be built (then every needle counts as hit: correct, slower).
    pub(crate) fn search(&self) -> Option<&NeedleSearch> {
        self.ac
            .get_or_init(|| {
                let needles: Vec<&str> = self.needles.iter().map(String::as_str).collect();
                build_ac(&needles).ok()
            })
            .as_ref()
    }

    fn build(pairs: &[(String, u32)], base: usize) -> Option<NeedleIndex> {
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut needles: Vec<&str> = Vec::new();
        let mut rules: Vec<Vec<u32>> = Vec::new();
        for (n, r) in pairs {
            let id = *ids.entry(n).or_insert_with(|| {
                needles.push(n);
                rules.push(Vec::new());
                needles.len() - 1
            });
            if !rules[id].contains(r) {
                rules[id].push(*r);
            }
        }
        if needles.is_empty() {
            return None;
        }
        let needles = needles.into_iter().map(str::to_owned).collect();
        Some(NeedleIndex {
            ac: std::sync::OnceLock::new(),
            needles,
            rules,
            base,
        })
    }

    /// An automaton over the needles some rule of which `keep` accepts;
    /// `None` when that is none of them. Falls back to all needles if the
    /// smaller automaton cannot be built (never fewer marks than needed).
    pub(crate) fn subset(&self, keep: impl Fn(u32) -> bool) -> Option<SubIndex> {
        let pats: Vec<u32> = (0..self.needles.len() as u32)
            .filter(|&p| self.rules[p as usize].iter().any(|&r| keep(r)))
            .collect();
        if pats.is_empty() {
            return None;
        }
        let needles: Vec<&str> = pats
            .iter()
            .map(|&p| self.needles[p as usize].as_str())
            .collect();
        match build_ac(&needles) {
            Ok(ac) => Some(SubIndex { ac: Some(ac), pats }),
            Err(()) => Some(SubIndex {
                ac: self.search().cloned(),
                pats: (0..self.needles.len() as u32).collect(),
            }),
        }
    }
}

/// Builds the needle automata (see `crate::prefilter`): one per field,
/// holding the needles that must occur in that field (a field renamed by a
/// source, e.g. Security 4688 `Image` → `NewProcessName`, gets the needles
/// of both names), and one over the needles of rules with keyword
/// selections, searched in every field.
fn build_prefilter(rules: &[CompiledRule], sources: &[CompiledSource], names: usize) -> Prefilter {
    let mut per_field: Vec<Vec<(String, u32)>> = vec![Vec::new(); names];
    let mut kw = Vec::new();
    let mut prefiltered = vec![false; rules.len()];
    let mut any_field = vec![false; rules.len()];
    for (ri, r) in rules.iter().enumerate() {
        let Some(ns) = crate::prefilter::rule_needles(&r.dets, &r.cond) else {
            continue;
        };
        prefiltered[ri] = true;
        any_field[ri] = ns.iter().any(|(f, _)| f.is_none());
        for (field, n) in ns {
            if any_field[ri] {
                kw.push((n.clone(), ri as u32));
            }
            if let Some(f) = field {
                per_field[f as usize].push((n, ri as u32));
            }
        }
    }
    for s in sources {
        for (from, to) in &s.remap {
            let extra = per_field[*from as usize].clone();
            per_field[*to as usize].extend(extra);
        }
    }
    let mut rule_fields: Vec<Vec<FieldId>> = vec![Vec::new(); rules.len()];
    for (f, pairs) in per_field.iter().enumerate() {
        for &(_, r) in pairs {
            let fs = &mut rule_fields[r as usize];
            if fs.last() != Some(&(f as FieldId)) {
                fs.push(f as FieldId);
            }
        }
    }
    let rule_fields = rule_fields.into_iter().map(Vec::into_boxed_slice).collect();
    let mut base = 0;
    let mut fields = Vec::with_capacity(names);
    // Automata are built on first use (`NeedleIndex::search`); one that
    // cannot be built marks all its rules (correct, slower).
    for pairs in &per_field {
        let idx = NeedleIndex::build(pairs, base);
        base += idx.as_ref().map_or(0, |i| i.rules.len());
        fields.push(idx);
    }
    let keywords = NeedleIndex::build(&kw, base);
    base += keywords.as_ref().map_or(0, |i| i.rules.len());
    Prefilter {
        fields,
        keywords,
        prefiltered,
        any_field,
        rule_fields,
        needles: base,
    }
}

fn source_index(
    s: &Source,
    keys: &mut BTreeMap<String, usize>,
    sources: &mut Vec<CompiledSource>,
    interner: &mut Interner,
) -> usize {
    let key = format!("{:?}", s);
    if let Some(&i) = keys.get(&key) {
        return i;
    }
    let mut remap: HashMap<FieldId, FieldId> = s
        .field_map
        .iter()
        .map(|(from, to)| (interner.id(from), interner.id(to)))
        .collect();
    let si = sources.len();
    let derived = s
        .derived
        .iter()
        .map(|(field, d)| {
            // `\u{1}` keeps the virtual name apart from every event field
            // name; the scanner also refuses to resolve one to it.
            let to = interner.id(&format!("\u{1}{si}:{field}"));
            remap.insert(interner.id(field), to);
            CompiledDerived {
                to,
                from: d.from.iter().map(|f| interner.id(f)).collect(),
                values: d
                    .values
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect(),
                join: d.join.clone(),
                hex: d.hex,
            }
        })
        .collect();
    sources.push(CompiledSource {
        channels: s.channels.iter().map(|c| c.to_ascii_lowercase()).collect(),
        not_channels: s
            .not_channels
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect(),
        event_ids: s.event_ids.clone(),
        remap,
        derived,
        rules: Vec::new(),
    });
    keys.insert(key, sources.len() - 1);
    sources.len() - 1
}

/// Level words by rank (informational 0 … critical 4).
pub(crate) const LEVEL_WORDS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

fn level_word(level: Option<Level>) -> (&'static str, u8) {
    match level {
        Some(Level::Critical) => ("critical", 4),
        Some(Level::High) => ("high", 3),
        Some(Level::Medium) => ("medium", 2),
        Some(Level::Low) => ("low", 1),
        Some(Level::Informational) | None => ("informational", 0),
    }
}

/// `(techniques, tactics, groups, software)` from `attack.*` tags.
type AttackTags = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

fn attack_tags(tags: &[String]) -> AttackTags {
    let mut techniques = Vec::new();
    let mut tactics = Vec::new();
    let mut groups = Vec::new();
    let mut software = Vec::new();
    for t in tags {
        let Some(rest) = t
            .to_ascii_lowercase()
            .strip_prefix("attack.")
            .map(str::to_owned)
        else {
            continue;
        };
        let digits =
            |s: &str| s.len() > 1 && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.');
        if rest.starts_with('t') && digits(&rest) {
            techniques.push(rest.to_ascii_uppercase());
        } else if rest.starts_with('g') && digits(&rest) {
            groups.push(rest.to_ascii_uppercase());
        } else if rest.starts_with('s') && digits(&rest) {
            software.push(rest.to_ascii_uppercase());
        } else {
            tactics.push(rest);
        }
    }
    (techniques, tactics, groups, software)
}

fn rule_meta(doc: &RuleDoc, id: String, active: bool) -> RuleMeta {
    let r = &doc.rule;
    let (level, level_rank) = level_word(r.level);
    let (techniques, tactics, groups, software) = attack_tags(&r.tags);
    RuleMeta {
        id,
        title: r.title.clone(),
        name: r.name.clone(),
        level,
        level_rank,
        status: r.status.map(|s| format!("{s:?}").to_ascii_lowercase()),
        description: r.description.clone(),
        author: r.author.clone(),
        tags: r.tags.clone(),
        techniques,
        tactics,
        groups,
        software,
        file: doc.file.clone(),
        line: doc.line,
        active,
        excluded: None,
        product: r.logsource.product.as_deref().map(str::to_ascii_lowercase),
        category: r.logsource.category.as_deref().map(str::to_ascii_lowercase),
        service: r.logsource.service.as_deref().map(str::to_ascii_lowercase),
        named: Vec::new(),
    }
}

fn compile_rule(
    r: &tracehunt_sigma::ast::SigmaRule,
    opts: &CompileOptions,
    interner: &mut Interner,
    warn: &mut Vec<CErr>,
) -> Result<CompiledRule, CErr> {
    // Stable order of named detections: sorted by name.
    let mut names: Vec<&String> = r.detection.named.keys().collect();
    names.sort();
    let mut dets = Vec::with_capacity(names.len());
    for n in &names {
        let d = compile_det(&r.detection.named[*n], opts, interner, warn)
            .map_err(|(c, m)| (c, format!("selection `{n}`: {m}")))?;
        dets.push(d);
    }
    if r.detection.conditions.is_empty() {
        return Err((Code::Condition, "detection has no condition".into()));
    }
    let mut conds = Vec::new();
    for c in &r.detection.conditions {
        conds.push(compile_cond(c, &names)?);
    }
    let cond = if conds.len() == 1 {
        conds.pop().expect("one condition")
    } else {
        Cond::Or(conds)
    };
    Ok(CompiledRule { dets, cond })
}

fn compile_cond(c: &ConditionExpr, names: &[&String]) -> Result<Cond, CErr> {
    Ok(match c {
        ConditionExpr::And(v) => Cond::And(
            v.iter()
                .map(|c| compile_cond(c, names))
                .collect::<Result<_, _>>()?,
        ),
        ConditionExpr::Or(v) => Cond::Or(
            v.iter()
                .map(|c| compile_cond(c, names))
                .collect::<Result<_, _>>()?,
        ),
        ConditionExpr::Not(c) => Cond::Not(Box::new(compile_cond(c, names)?)),
        ConditionExpr::Identifier(id) => match names.iter().position(|n| *n == id) {
            Some(i) => Cond::Det(i),
            None => {
                return Err((
                    Code::Condition,
                    format!("condition names `{id}`, which is not a selection of this rule"),
                ))
            }
        },
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let idx: Vec<usize> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| match pattern {
                    SelectorPattern::Them => !n.starts_with('_'),
                    SelectorPattern::Pattern(p) => tracehunt_sigma::name_glob(p, n),
                })
                .map(|(i, _)| i)
                .collect();
            if idx.is_empty() {
                return Err((
                    Code::Condition,
                    format!("`{quantifier} of {pattern}` matches no selection of this rule"),
                ));
            }
            match quantifier {
                Quantifier::All => Cond::And(idx.into_iter().map(Cond::Det).collect()),
                Quantifier::Any => Cond::AtLeast(1, idx),
                Quantifier::Count(n) => Cond::AtLeast((*n).max(1) as usize, idx),
            }
        }
    })
}

fn compile_det(
    d: &Detection,
    opts: &CompileOptions,
    interner: &mut Interner,
    warn: &mut Vec<CErr>,
) -> Result<Det, CErr> {
    Ok(match d {
        // pySigma refuses an empty detection ("Detection is empty"; an
        // empty list fails its conversion): `sel: {}` matched every event
        // and `sel: []` none, with no diagnostic (issue #20).
        Detection::AllOf(items) if items.is_empty() => return Err(empty_selection("map")),
        Detection::AnyOf(ds) if ds.is_empty() => return Err(empty_selection("list")),
        Detection::Keywords(vals) if vals.is_empty() => return Err(empty_selection("list")),
        Detection::AllOf(items) => Det::AllOf(
            items
                .iter()
                .map(|i| compile_item(i, opts, interner, warn))
                .collect::<Result<_, _>>()?,
        ),
        Detection::AnyOf(ds) => Det::AnyOf(
            ds.iter()
                .map(|d| compile_det(d, opts, interner, warn))
                .collect::<Result<_, _>>()?,
        ),
        Detection::And(ds) => Det::And(
            ds.iter()
                .map(|d| compile_det(d, opts, interner, warn))
                .collect::<Result<_, _>>()?,
        ),
        Detection::Keywords(vals) => {
            let item = DetectionItem {
                field: tracehunt_sigma::ast::FieldSpec::new(None, Vec::new()),
                values: vals.clone(),
            };
            Det::AllOf(vec![compile_item(&item, opts, interner, warn)?])
        }
        Detection::ArrayMatch { field, .. } => {
            return Err((
                Code::Unsupported,
                format!("array matching on `{field}` (Sigma v3 array selectors) is not supported"),
            ))
        }
        Detection::Conditional { .. } => {
            return Err((
                Code::Unsupported,
                "nested array-block conditions are not supported".into(),
            ))
        }
    })
}

/// The error for an empty selection map or list (`sel: {}`, `sel: []`,
/// also inside a list of maps).
fn empty_selection(what: &str) -> CErr {
    (
        Code::InvalidRule,
        format!(
            "empty {what}: a selection needs at least one field or value (an empty one would match every event or none); the rule is not loaded"
        ),
    )
}

/// Lowers one `field|modifiers: values` item.
fn compile_item(
    item: &DetectionItem,
    opts: &CompileOptions,
    interner: &mut Interner,
    warn: &mut Vec<CErr>,
) -> Result<Item, CErr> {
    let mods = &item.field.modifiers;
    let has = |m: Modifier| mods.contains(&m);
    let field = item.field.name.as_deref().map(|n| interner.id(n));

    if has(Modifier::Exists) {
        let Some(field) = field else {
            return Err((Code::InvalidValue, "`exists` needs a field name".into()));
        };
        let want = match item.values.as_slice() {
            [SigmaValue::Bool(b)] => *b,
            [SigmaValue::String(s)] if s.original.eq_ignore_ascii_case("true") => true,
            [SigmaValue::String(s)] if s.original.eq_ignore_ascii_case("false") => false,
            _ => {
                return Err((
                    Code::InvalidValue,
                    "`exists` takes a single true/false value".into(),
                ))
            }
        };
        return Ok(Item::Exists { field, want });
    }

    let cased = has(Modifier::Cased);
    let num_op = if has(Modifier::Gt) {
        Some(NumOp::Gt)
    } else if has(Modifier::Gte) {
        Some(NumOp::Gte)
    } else if has(Modifier::Lt) {
        Some(NumOp::Lt)
    } else if has(Modifier::Lte) {
        Some(NumOp::Lte)
    } else {
        None
    };
    let time_part = [
        (Modifier::Minute, TimePart::Minute),
        (Modifier::Hour, TimePart::Hour),
        (Modifier::Day, TimePart::Day),
        (Modifier::Week, TimePart::Week),
        (Modifier::Month, TimePart::Month),
        (Modifier::Year, TimePart::Year),
    ]
    .into_iter()
    .find(|(m, _)| has(*m))
    .map(|(_, p)| p);

    if item.values.len() > opts.max_values {
        return Err((
            Code::InvalidValue,
            format!(
                "item lists {} values (limit {}; CompileOptions::max_values)",
                item.values.len(),
                opts.max_values
            ),
        ));
    }
    let mut matchers = Vec::new();
    // Where each value's matchers (its variants) end, for `|all`.
    let mut ends = Vec::with_capacity(item.values.len());
    for v in &item.values {
        'value: {
            if let Some(part) = time_part {
                let n = number_of(v).ok_or((
                    Code::InvalidValue,
                    format!("time modifier needs a number, got `{v}`"),
                ))?;
                matchers.push(Matcher::Time {
                    part,
                    op: num_op.unwrap_or(NumOp::Eq),
                    n,
                });
                break 'value;
            }
            if let Some(op) = num_op {
                let n = number_of(v).ok_or((
                    Code::InvalidValue,
                    format!("numeric comparison needs a number, got `{v}`"),
                ))?;
                matchers.push(Matcher::Num { op, n });
                break 'value;
            }
            match v {
                SigmaValue::Null => matchers.push(Matcher::Null),
                SigmaValue::Bool(b) => matchers.push(Matcher::Str {
                    op: StrOp::Exact(if *b { "true" } else { "false" }.into()),
                    cased: false,
                }),
                SigmaValue::Integer(_) | SigmaValue::Float(_)
                    if !has_string_mods(mods) && field.is_some() =>
                {
                    let n = number_of(v).unwrap_or(f64::NAN);
                    // Numeric equality, falling back to text for non-numeric values.
                    matchers.push(Matcher::Num { op: NumOp::Eq, n });
                    matchers.push(Matcher::Str {
                        op: StrOp::Exact(v.to_string().to_lowercase().into()),
                        cased: false,
                    });
                }
                SigmaValue::Integer(_) | SigmaValue::Float(_) => {
                    let s = SigmaString::new(&v.to_string());
                    string_matchers(&s, mods, field.is_none(), opts, cased, &mut matchers, warn)?;
                }
                SigmaValue::String(s) => {
                    if has(Modifier::Re) {
                        let mut flags = String::new();
                        if has(Modifier::IgnoreCase) {
                            flags.push('i');
                        }
                        if has(Modifier::Multiline) {
                            flags.push('m');
                        }
                        if has(Modifier::DotAll) {
                            flags.push('s');
                        }
                        let pat = if flags.is_empty() {
                            s.original.clone()
                        } else {
                            format!("(?{flags}){}", s.original)
                        };
                        matchers.push(Matcher::Regex(regex(&pat, opts)?));
                    } else if has(Modifier::Cidr) {
                        let net: ipnet::IpNet = s
                            .original
                            .trim()
                            .parse()
                            .or_else(|_| {
                                s.original
                                    .trim()
                                    .parse::<std::net::IpAddr>()
                                    .map(ipnet::IpNet::from)
                            })
                            .map_err(|_| {
                                (
                                    Code::InvalidValue,
                                    format!("`{}` is not a CIDR network", s.original),
                                )
                            })?;
                        matchers.push(Matcher::Cidr(net));
                    } else if has(Modifier::FieldRef) {
                        let mode = if has(Modifier::Contains) {
                            RefMode::Contains
                        } else if has(Modifier::StartsWith) {
                            RefMode::Starts
                        } else if has(Modifier::EndsWith) {
                            RefMode::Ends
                        } else {
                            RefMode::Exact
                        };
                        matchers.push(Matcher::FieldRef {
                            other: interner.id(&s.original),
                            mode,
                            cased,
                        });
                    } else {
                        string_matchers(
                            s,
                            mods,
                            field.is_none(),
                            opts,
                            cased,
                            &mut matchers,
                            warn,
                        )?;
                    }
                }
            }
        }
        ends.push(matchers.len() as u32);
    }
    Ok(Item::Values {
        field,
        matchers,
        all: has(Modifier::All).then(|| ends.into_boxed_slice()),
        negate: has(Modifier::Neq),
    })
}

fn has_string_mods(mods: &[Modifier]) -> bool {
    mods.iter().any(|m| {
        matches!(
            m,
            Modifier::Contains
                | Modifier::StartsWith
                | Modifier::EndsWith
                | Modifier::Base64
                | Modifier::Base64Offset
                | Modifier::WindAsh
                | Modifier::Wide
                | Modifier::Utf16be
                | Modifier::Utf16
                | Modifier::Cased
        )
    })
}

fn number_of(v: &SigmaValue) -> Option<f64> {
    match v {
        SigmaValue::Integer(i) => Some(*i as f64),
        SigmaValue::Float(f) => Some(*f),
        SigmaValue::String(s) => s.original.trim().parse().ok(),
        _ => None,
    }
}

fn regex(pat: &str, opts: &CompileOptions) -> Result<LazyRegex, CErr> {
    LazyRegex::new(pat, opts.regex_size_limit).map_err(|e| {
        (
            Code::InvalidValue,
            format!("bad regular expression `{pat}`: {e}"),
        )
    })
}

/// A Sigma string as a sequence of literal text and wildcards.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(String),
    Star,
    One,
}

fn tokens(s: &SigmaString) -> Vec<Tok> {
    s.parts
        .iter()
        .map(|p| match p {
            StringPart::Plain(t) => Tok::Lit(t.clone()),
            StringPart::Special(SpecialChar::WildcardMulti) => Tok::Star,
            StringPart::Special(SpecialChar::WildcardSingle) => Tok::One,
        })
        .collect()
}

fn lit_text(toks: &[Tok]) -> Option<String> {
    let mut s = String::new();
    for t in toks {
        match t {
            Tok::Lit(l) => s.push_str(l),
            _ => return None,
        }
    }
    Some(s)
}

/// Dash characters `windash` expands to (Sigma modifiers appendix:
/// `-`, `/`, en dash, em dash, horizontal bar).
const WINDASH: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

/// `windash`: every `-` or `/` that starts a word (preceded by start or a
/// non-word character, followed by a word character — pySigma's
/// `\B[-/]\b`) is replaced, all at once, by each dash character.
fn windash(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    WINDASH
        .iter()
        .map(|&d| {
            let mut out = Vec::new();
            // Track the previous char across tokens (wildcards count as non-word).
            let mut prev: Option<char> = None;
            for (ti, t) in toks.iter().enumerate() {
                match t {
                    Tok::Lit(l) => {
                        let chars: Vec<char> = l.chars().collect();
                        let mut s = String::new();
                        for (i, &c) in chars.iter().enumerate() {
                            let next =
                                chars
                                    .get(i + 1)
                                    .copied()
                                    .or_else(|| match toks.get(ti + 1) {
                                        Some(Tok::Lit(n)) => n.chars().next(),
                                        _ => None,
                                    });
                            let starts_word = (c == '-' || c == '/')
                                && !prev.is_some_and(is_word)
                                && next.is_some_and(is_word);
                            s.push(if starts_word { d } else { c });
                            prev = Some(c);
                        }
                        out.push(Tok::Lit(s));
                    }
                    other => {
                        prev = Some(' ');
                        out.push(other.clone());
                    }
                }
            }
            out
        })
        .collect()
}

fn encode_text(text: &str, mods: &[Modifier]) -> Vec<u8> {
    if mods.contains(&Modifier::Wide) {
        text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    } else if mods.contains(&Modifier::Utf16be) {
        text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
    } else if mods.contains(&Modifier::Utf16) {
        let mut v = vec![0xFF, 0xFE];
        v.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        v
    } else {
        text.as_bytes().to_vec()
    }
}

/// `base64offset` (Sigma modifiers appendix; pySigma): the three encodings
/// of the value at byte offsets 0, 1, 2, with the characters that depend on
/// the unknown neighbouring bytes cut off.
fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let start = [0usize, 2, 3];
    let end = [0usize, 3, 2];
    (0..3)
        .map(|i| {
            let mut buf = vec![b' '; i];
            buf.extend_from_slice(bytes);
            let enc = b64.encode(&buf);
            let cut_end = end[(bytes.len() + i) % 3];
            let e = enc.len().saturating_sub(cut_end);
            enc.get(start[i]..e).unwrap_or("").to_owned()
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn string_matchers(
    s: &SigmaString,
    mods: &[Modifier],
    keyword: bool,
    opts: &CompileOptions,
    cased: bool,
    out: &mut Vec<Matcher>,
    warn: &mut Vec<CErr>,
) -> Result<(), CErr> {
    let has = |m: Modifier| mods.contains(&m);
    let mut variants: Vec<Vec<Tok>> = vec![tokens(s)];

    if has(Modifier::Expand) {
        variants = expand(&s.original, opts, warn);
        if variants.is_empty() {
            out.push(Matcher::Never);
            return Ok(());
        }
    }
    if has(Modifier::WindAsh) {
        variants = variants.iter().flat_map(|v| windash(v)).collect();
    }
    let encoded = has(Modifier::Base64) || has(Modifier::Base64Offset);
    if encoded {
        let mut enc = Vec::new();
        for v in &variants {
            let text = lit_text(v).ok_or((
                Code::InvalidValue,
                "base64/base64offset values cannot contain wildcards".to_string(),
            ))?;
            let bytes = encode_text(&text, mods);
            if has(Modifier::Base64Offset) {
                enc.extend(base64_offsets(&bytes));
            } else {
                enc.push(base64::engine::general_purpose::STANDARD.encode(&bytes));
            }
        }
        variants = enc.into_iter().map(|e| vec![Tok::Lit(e)]).collect();
    }
    for mut v in variants {
        let contains = has(Modifier::Contains) || keyword;
        if contains || has(Modifier::StartsWith) {
            if contains && v.first() != Some(&Tok::Star) {
                v.insert(0, Tok::Star);
            }
            if v.last() != Some(&Tok::Star) {
                v.push(Tok::Star);
            }
        } else if has(Modifier::EndsWith) && v.first() != Some(&Tok::Star) {
            v.insert(0, Tok::Star);
        }
        out.push(str_matcher(v, cased, opts)?);
    }
    Ok(())
}

/// Keyword-style values with no field: `item.field.name == None` goes through
/// the same path; callers wrap keywords in `*…*` (see [`compile_item`]).
fn str_matcher(mut v: Vec<Tok>, cased: bool, opts: &CompileOptions) -> Result<Matcher, CErr> {
    let fold = |s: &str| {
        if cased {
            s.to_owned()
        } else {
            crate::scan::fold_case(s)
        }
    };
    // Collapse runs of stars.
    v.dedup_by(|a, b| *a == Tok::Star && *b == Tok::Star);
    let wildcards = v.iter().filter(|t| !matches!(t, Tok::Lit(_))).count();
    if wildcards > opts.max_wildcards {
        return Err((
            Code::InvalidValue,
            format!(
                "value has {wildcards} wildcards (limit {}; CompileOptions::max_wildcards)",
                opts.max_wildcards
            ),
        ));
    }
    let op = match v.as_slice() {
        [] => StrOp::Exact("".into()),
        [Tok::Star] => StrOp::Any,
        [Tok::Lit(l)] => StrOp::Exact(fold(l).into()),
        [Tok::Star, Tok::Lit(l), Tok::Star] => {
            StrOp::Contains(crate::persist::LazyFinder::new(fold(l).as_bytes()))
        }
        [Tok::Lit(l), Tok::Star] => StrOp::Starts(fold(l).into()),
        [Tok::Star, Tok::Lit(l)] => StrOp::Ends(fold(l).into()),
        toks if !toks.contains(&Tok::One) => {
            // Literal runs between stars (stars are collapsed: runs are
            // never empty but at the ends).
            let mut parts = Vec::new();
            let mut run = String::new();
            for t in toks {
                match t {
                    Tok::Lit(l) => run.push_str(&fold(l)),
                    _ => parts.push(std::mem::take(&mut run)),
                }
            }
            parts.push(run);
            let longest = parts
                .iter()
                .max_by_key(|p| p.len())
                .filter(|p| !p.is_empty())
                .map(|p| p.clone().into_boxed_str());
            StrOp::Stars(
                parts.into_iter().map(String::into_boxed_str).collect(),
                longest,
            )
        }
        toks => {
            // Not `(?i)` when uncased: the value is matched case-folded
            // (see `fold_case`), as for the literal operators; the regex's
            // own simple case folding would also equate `ſ` and `s`, `ς` and
            // `σ`, which `contains` does not and the prefilter's literal
            // cannot see (breaker finding: `'*ſystem*32*'` matched `system32`
            // without the prefilter and not with it).
            let mut pat = String::from("(?s)^");
            for t in toks {
                match t {
                    Tok::Lit(l) => pat.push_str(&regex::escape(&fold(l))),
                    Tok::Star => pat.push_str(".*"),
                    Tok::One => pat.push('.'),
                }
            }
            pat.push('$');
            let longest = toks
                .iter()
                .filter_map(|t| match t {
                    Tok::Lit(l) => Some(fold(l)),
                    _ => None,
                })
                .max_by_key(String::len)
                .map(String::into_boxed_str);
            StrOp::Glob(regex(&pat, opts)?, longest)
        }
    };
    Ok(Matcher::Str { op, cased })
}

/// `expand`: replaces `%name%` placeholders with their configured values.
/// Returns no variants (and a `TH011` warning) when a placeholder is unknown.
fn expand(original: &str, opts: &CompileOptions, warn: &mut Vec<CErr>) -> Vec<Vec<Tok>> {
    let mut outs = vec![String::new()];
    let mut rest = original;
    while let Some(start) = rest.find('%') {
        let Some(len) = rest[start + 1..].find('%') else {
            break;
        };
        let name = &rest[start + 1..start + 1 + len];
        let Some(vals) = opts.placeholders.get(name).filter(|v| !v.is_empty()) else {
            warn.push((
                Code::UnresolvedPlaceholder,
                format!("placeholder `%{name}%` has no value (pass --placeholders FILE); the item never matches"),
            ));
            return Vec::new();
        };
        let prefix = &rest[..start];
        outs = outs
            .iter()
            .flat_map(|o| vals.iter().map(move |v| format!("{o}{prefix}{v}")))
            .collect();
        rest = &rest[start + 2 + len..];
    }
    outs.into_iter()
        .map(|o| tokens(&SigmaString::new(&format!("{o}{rest}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules compile in parallel with field ids of their own, renumbered in
    /// rule order: the ids are those of one interner used rule after rule,
    /// whatever the thread count, including the names a rule interned
    /// before it failed (its bad regex comes after `Zeta`).
    #[test]
    fn parallel_compile_numbers_fields_in_rule_order() {
        let yaml = |title: &str, detection: &str| {
            format!(
                "title: {title}\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n{detection}\n  condition: all of them\n"
            )
        };
        let texts = [
            yaml("a", "  sel:\n    Alpha: x\n    Beta|contains: y"),
            yaml("b", "  sel1:\n    Zeta: z\n  sel2:\n    Beta|re: '('"),
            yaml("c", "  sel:\n    Gamma: w\n    Zeta|fieldref: Delta"),
        ];
        let docs = || {
            texts
                .iter()
                .enumerate()
                .flat_map(|(i, t)| tracehunt_sigma::load_rules(&format!("{i}.yml"), t).rules)
                .collect::<Vec<_>>()
        };
        for threads in [1, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (rs, diags) = pool.install(|| compile(docs(), &CompileOptions::default()));
            assert_eq!(rs.len(), 2, "{diags:?}");
            assert!(diags.iter().any(|d| d.code == Code::InvalidValue));
            let id = |n: &str| rs.names[n];
            // Rule a's fields first (0, 1), then the source's renames, then
            // b's `zeta` (before c's `gamma`: c names it second), then `delta`.
            assert_eq!((id("alpha"), id("beta")), (0, 1));
            assert!(id("beta") < id("zeta") && id("zeta") < id("gamma"));
            assert!(id("gamma") < id("delta"));
            assert_eq!(rs.names.len(), rs.name_count);
            // Rule c's items and its fieldref name the renumbered ids.
            let Det::AllOf(items) = &rs.rules[1].dets[0] else {
                panic!("one map")
            };
            let fields: Vec<Option<FieldId>> = items
                .iter()
                .map(|i| match i {
                    Item::Values { field, .. } => *field,
                    Item::Exists { field, .. } => Some(*field),
                })
                .collect();
            assert_eq!(fields, [Some(id("gamma")), Some(id("zeta"))]);
            let Item::Values { matchers, .. } = &items[1] else {
                panic!("values")
            };
            assert!(matches!(matchers[0], Matcher::FieldRef { other, .. } if other == id("delta")));
        }
    }

    #[test]
    fn base64offset_matches_pysigma_vectors() {
        // Values from the Sigma modifiers appendix / pySigma tests for "/bin/bash".
        let v = base64_offsets(b"/bin/bash");
        assert_eq!(v, ["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
    }

    #[test]
    fn windash_replaces_word_start_dashes_only() {
        let v = windash(&[Tok::Lit(" -enc x-y /c".into())]);
        let texts: Vec<String> = v.iter().map(|t| lit_text(t).unwrap()).collect();
        assert_eq!(texts[0], " -enc x-y -c");
        assert_eq!(texts[1], " /enc x-y /c");
        assert_eq!(texts[2], " \u{2013}enc x-y \u{2013}c");
        assert_eq!(texts.len(), 5);
    }

    #[test]
    fn selection_name_globs() {
        let glob_name = tracehunt_sigma::name_glob;
        assert!(glob_name("selection_*", "selection_img"));
        assert!(!glob_name("selection_*", "filter_img"));
        assert!(glob_name("*_img", "selection_img"));
        assert!(glob_name("sel*img", "sel_x_img"));
        assert!(glob_name("exact", "exact"));
    }

    /// Star-only wildcards are matched without a regex (no build on first
    /// use): on every pattern of runs and stars over a small alphabet, and
    /// every text up to 5 characters (multi-byte ones included), the same
    /// answer as the anchored regex they were compiled to before.
    #[test]
    fn star_wildcards_match_as_their_anchored_regex() {
        let runs = ["", "a", "ab", "é", "bé", "aa"];
        let mut patterns: Vec<Vec<Tok>> = Vec::new();
        for a in runs {
            for b in runs {
                for c in runs {
                    for shape in 0..4 {
                        let lit = |s: &str| Tok::Lit(s.to_owned());
                        patterns.push(match shape {
                            0 => vec![lit(a), Tok::Star, lit(b)],
                            1 => vec![lit(a), Tok::Star, lit(b), Tok::Star, lit(c)],
                            2 => vec![Tok::Star, lit(a), Tok::Star, lit(b), Tok::Star],
                            _ => vec![lit(a), lit(b), Tok::Star, Tok::Star, lit(c)],
                        });
                    }
                }
            }
        }
        let alphabet = ["a", "b", "é", "\n"];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let more: Vec<String> = texts
                .iter()
                .filter(|t| t.chars().count() < 5)
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(more);
            texts.sort();
            texts.dedup();
        }
        let opts = CompileOptions::default();
        for toks in patterns {
            let Ok(Matcher::Str { op, .. }) = str_matcher(toks.clone(), true, &opts) else {
                panic!("{toks:?}");
            };
            let StrOp::Stars(parts, _) = &op else {
                continue;
            };
            let mut pat = String::from("(?s)^");
            for t in &toks {
                match t {
                    Tok::Lit(l) => pat.push_str(&regex::escape(l)),
                    Tok::Star => pat.push_str(".*"),
                    Tok::One => pat.push('.'),
                }
            }
            pat.push('$');
            let re = regex::Regex::new(&pat).unwrap();
            for t in &texts {
                assert_eq!(
                    crate::matcher::stars_match(parts, t),
                    re.is_match(t),
                    "{toks:?} on {t:?}"
                );
            }
        }
    }

    /// A large needle set's automaton holds each needle's first
    /// `NFA_NEEDLE_BYTES` bytes: every needle that occurs is still
    /// reported (needles sharing the cut prefix are reported together),
    /// whatever the needle's length or where a character boundary falls.
    #[test]
    fn cut_needles_of_a_large_set_still_report_every_occurring_needle() {
        let mut ns: Vec<String> = (0..NFA_CUT_BYTES / 40 + 1)
            .map(|i| format!("imphash={i:032x}"))
            .collect();
        ns.push(format!("{}é{}", "x".repeat(NFA_NEEDLE_BYTES - 1), "tail"));
        ns.push(format!("{}ü", "y".repeat(NFA_NEEDLE_BYTES - 1)));
        let refs: Vec<&str> = ns.iter().map(String::as_str).collect();
        let search = build_ac(&refs).unwrap();
        assert!(matches!(search, NeedleSearch::Ac(_)));
        let hits = |text: &str| {
            let mut v = Vec::new();
            search.for_each_hit(text.as_bytes(), |p| v.push(p));
            v.sort_unstable();
            v.dedup();
            v
        };
        for (i, n) in ns.iter().enumerate() {
            let text = format!("md5=0,{n},sha1=1");
            assert!(hits(&text).contains(&i), "{n}");
        }
        // 16 hex digits after `imphash=` survive the cut: these needles
        // differ only in their last 16, so they are reported together; a
        // hash sharing none of the cut prefixes marks nothing.
        let h = hits(&format!("imphash={:032x}", 0x10));
        assert!(h.contains(&0x10) && h.contains(&0x11), "{h:?}");
        assert!(hits(&format!("imphash={:032x}", u128::MAX)).is_empty());
    }

    /// Breaker finding: Teddy verifies every needle of a candidate's
    /// bucket at every candidate position, so a long needle (or needles
    /// sharing a long prefix) made the prefilter O(value x needle) on a
    /// crafted value (one 40,000-byte needle: 16 s on 4 MB). Such sets now
    /// get the linear Aho-Corasick search; the Windows keyword sets stay
    /// packed.
    #[test]
    fn long_or_prefix_sharing_needles_are_not_searched_with_teddy() {
        let packed = |ns: &[String]| {
            let refs: Vec<&str> = ns.iter().map(String::as_str).collect();
            matches!(build_ac(&refs).unwrap(), NeedleSearch::Packed { .. })
        };
        let long = vec![format!("{}b", "a".repeat(39_999))];
        assert!(!packed(&long));
        assert_eq!(verify_work(&[long[0].as_str()]), 40_000);
        let shared: Vec<String> = (0..64)
            .map(|i| format!("{}{i:02}z", "a".repeat(30)))
            .collect();
        // `aaa…a00z` shares 30 bytes with the others (31 with `aaa…a0?z`).
        assert_eq!(
            verify_work(&shared.iter().map(String::as_str).collect::<Vec<_>>()),
            33 + 9 * 31 + 54 * 30
        );
        assert!(!packed(&shared));
        assert!(!packed(&["a".repeat(129)]));
        let keywords: Vec<String> = [
            "sekurlsa::",
            "mimikatz",
            "invoke-mimikatz",
            "lsadump::",
            "kerberos::",
            "privilege::debug",
            "token::elevate",
            "crypto::",
            "dpapi::",
            "misc::",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if cfg!(target_arch = "x86_64") {
            assert!(packed(&keywords));
            assert!(packed(&["a".repeat(128)]));
        }
        // Either way, the same needles are found.
        for ns in [&long, &shared, &keywords] {
            let refs: Vec<&str> = ns.iter().map(String::as_str).collect();
            let s = build_ac(&refs).unwrap();
            let text = format!("xx{}yy{}", ns[ns.len() - 1], ns[0]);
            let mut hit = vec![false; refs.len()];
            s.for_each_hit(text.as_bytes(), |p| hit[p] = true);
            assert!(hit[0] && hit[refs.len() - 1], "{hit:?}");
        }
    }

    /// Hostile variant of the property test below (breaker): up to 64
    /// needles over an alphabet whose bytes collide in Teddy's nybble
    /// fingerprints (`a`/`q`/`A`/`1` share the low nybble), multi-byte
    /// characters (`İ`, `ß`, `σ`, Kelvin sign) and NUL, texts built from
    /// needle pieces so that needles overlap, nest and straddle: the packed
    /// search reports exactly what overlapping Aho-Corasick reports.
    #[test]
    fn packed_needle_search_agrees_on_colliding_multibyte_needles() {
        let mut x: u64 = 0xdead_beef_cafe_f00d;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        const ALPHA: [&str; 10] = ["a", "q", "A", "1", "İ", "ß", "σ", "\u{212A}", "\0", ":"];
        let mut packed_sets = 0;
        for round in 0..400 {
            let n = 1 + next(64);
            let mut needles: Vec<String> = (0..n)
                .map(|_| (0..3 + next(5)).map(|_| ALPHA[next(ALPHA.len())]).collect())
                .collect();
            needles.sort();
            needles.dedup();
            let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
            let packed = build_ac(&refs).unwrap();
            if !matches!(packed, NeedleSearch::Packed { .. }) {
                continue;
            }
            packed_sets += 1;
            let ac = NeedleSearch::Ac(
                aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::Standard)
                    .build(&refs)
                    .unwrap(),
            );
            for _ in 0..30 {
                let mut text = String::new();
                for _ in 0..next(40) {
                    if next(3) == 0 {
                        let nd = refs[next(refs.len())];
                        let cut = nd
                            .char_indices()
                            .map(|(i, _)| i)
                            .nth(next(nd.chars().count()))
                            .unwrap_or(0);
                        text.push_str(if next(2) == 0 { nd } else { &nd[cut..] });
                    } else {
                        text.push_str(ALPHA[next(ALPHA.len())]);
                    }
                }
                let hits = |s: &NeedleSearch| {
                    let mut v = vec![false; refs.len()];
                    s.for_each_hit(text.as_bytes(), |p| v[p] = true);
                    v
                };
                assert_eq!(
                    hits(&packed),
                    hits(&ac),
                    "round {round}: {refs:?} in {text:?}"
                );
            }
        }
        if cfg!(target_arch = "x86_64") {
            assert!(packed_sets > 200, "{packed_sets}");
        }
    }

    /// The packed (Teddy) needle search reports exactly the needles an
    /// overlapping Aho-Corasick search reports, on texts built to overlap
    /// (small alphabet: needles inside, across and as prefixes of others,
    /// shorter and longer than Teddy's minimum haystack).
    #[test]
    fn packed_needle_search_finds_what_overlapping_aho_corasick_finds() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut packed_sets = 0;
        for round in 0..300 {
            let n = 1 + (next() % 40) as usize;
            let mut needles: Vec<String> = (0..n)
                .map(|_| {
                    let len = 3 + (next() % 6) as usize;
                    (0..len)
                        .map(|_| b"ab:"[(next() % 3) as usize] as char)
                        .collect()
                })
                .collect();
            needles.sort();
            needles.dedup();
            let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
            let packed = build_ac(&refs).unwrap();
            if matches!(packed, NeedleSearch::Packed { .. }) {
                packed_sets += 1;
            }
            let ac = NeedleSearch::Ac(
                aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::Standard)
                    .build(&refs)
                    .unwrap(),
            );
            for _ in 0..20 {
                let len = (next() % 200) as usize;
                let text: Vec<u8> = (0..len).map(|_| b"ab:\0x"[(next() % 5) as usize]).collect();
                let hits = |s: &NeedleSearch| {
                    let mut v = vec![false; refs.len()];
                    s.for_each_hit(&text, |p| v[p] = true);
                    v
                };
                assert_eq!(
                    hits(&packed),
                    hits(&ac),
                    "round {round}: {refs:?} in {text:?}"
                );
            }
        }
        // Teddy is available on this machine (x86-64 SSSE3/AVX2): the
        // packed path is what was compared.
        if cfg!(target_arch = "x86_64") {
            assert!(packed_sets > 250, "{packed_sets}");
        }
    }
}
