//! ATT&CK software and groups that rules *name* (issue #18 item 5).
//!
//! SigmaHQ's `rules-emerging-threats` files sit in `YEAR/CATEGORY/NAME/` folders, CATEGORY
//! being `Malware`, `TA` (threat actor) or `Exploits`, and their titles name the malware or
//! actor ("Potential Emotet Activity", "Turla Group Lateral Movement") while most carry no
//! `attack.sNNNN` / `attack.gNNNN` tag. [`NameIndex`] resolves those names against the
//! knowledge base the hunt attributes with, so that such a rule firing is software or group
//! evidence like a tag:
//!
//! * **Which rules**: files whose path has a `YEAR/Malware/` or `YEAR/TA/` segment pair
//!   ([`emerging_place`]); the folder after it (if the file is not directly in the category
//!   folder) and the title are read. `Exploits` rules are skipped: their folders are CVE ids and
//!   their titles name the *exploited product* (`ScreenConnect`, `Apache Spark`), not the
//!   attacker's tools; likewise a title containing a word starting with `exploit`.
//! * **Names**: the text is cut into ASCII letter/digit tokens (`Cozy-Bear` → `Cozy`, `Bear`);
//!   from left to right the longest run of up to [`MAX_TOKENS`] tokens whose letters and digits,
//!   lower-cased and joined (`cozybear`), equal a name's is taken: ATT&CK software and group
//!   names and aliases first; then, for folder names only, group names without a trailing
//!   `Group`/`Team`/`Gang` (`Lazarus`, `Winnti`: SigmaHQ folders drop it); then the MISP
//!   galaxy's threat-actor synonyms linked to ATT&CK groups
//!   ([`tracehunt_ioc::galaxy_attack_ids`]: `EquationGroup` → G0020). The MISP galaxy's
//!   `mitre-malware`/`mitre-tool` synonyms are not used: on the corpora they add no name that
//!   resolves to a software of the v18.1 knowledge base (only v19 ids such as `Shai-Hulud`
//!   S9008, which the knowledge base does not have).
//! * **Generic words** ([`GENERIC`]): single tokens that are ATT&CK software or group names but
//!   that SigmaHQ titles use as ordinary words are never a match; each entry is justified there.
//! * **Ambiguity**: a name that resolves to several ids keeps the software ids in a `Malware`
//!   folder and the group ids in a `TA` folder (`SNAKE` in `Malware/` → S0022 Uroburos, not
//!   G0010 Turla; `Cozy-Bear` in `TA/` → G0016, not CozyCar). A name still pointing at several
//!   ids is reported ([`Resolution::ambiguous`]) and not used.

use std::collections::{BTreeMap, HashMap, HashSet};

use tracehunt_attack::ActorKb;
use tracehunt_engine::{NameOrigin, NamedRef};

/// Longest run of tokens compared with a name (`Blue Mockingbird`: 2, `Threat Group 3390`: 3).
pub const MAX_TOKENS: usize = 5;

/// Shortest name compared (letters and digits): shorter ones (`LV`, `at`) are too common.
const MIN_KEY: usize = 3;

/// Names never matched, as keys (lower-case letters and digits; also with `exe` appended, as
/// in `Net.EXE`). ATT&CK software/group names or aliases that SigmaHQ
/// titles use as ordinary words (counted over the titles of `rules/` and
/// `rules-threat-hunting/`, see `tests/rule_names.rs`):
/// Windows/Unix command names that titles cite as the executable, not as evidence of the
/// ATT&CK tool entry (`net` S0039: 30 titles, `reg` S0075: 24, `cmd` S0106: 14, `at` S0110,
/// `ftp` S0095, `ping` S0097, `route` S0103, `attrib` S1176, `expand` S0361); the PowerShell
/// file extension `ps1` (S0613 PS1); the browser name `chromium` (G1006 Chromium); and
/// common English words that are aliases (`page`: S0081 Elise; `play`: S1162; `epic`: S0091).
pub const GENERIC: &[&str] = &[
    "at", "attrib", "chromium", "cmd", "epic", "expand", "ftp", "net", "page", "ping", "play",
    "ps1", "reg", "route",
];

/// The emerging-threats category of a rule file ([`emerging_place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `YEAR/Malware/…`: names are malware first.
    Malware,
    /// `YEAR/TA/…`: names are threat actors first.
    ThreatActor,
}

/// Where a rule file sits in the emerging-threats layout: its category and, when the file is
/// in a sub-folder of it, that folder's name (`Turla` for `2017/TA/Turla/x.yml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// `Malware` or `TA`.
    pub category: Category,
    /// The folder between the category and the file, if any.
    pub folder: Option<&'a str>,
}

/// The emerging-threats place of a rule file path (`/` or `\` separated; any prefix), or
/// `None` when the path has no `YEAR/Malware/` or `YEAR/TA/` pair (`YEAR`: four digits,
/// 1990–2099).
pub fn emerging_place(file: &str) -> Option<Place<'_>> {
    let segs: Vec<&str> = file.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
    let year = |s: &str| {
        s.len() == 4
            && s.bytes().all(|b| b.is_ascii_digit())
            && (1990..=2099).contains(&s.parse::<u32>().unwrap_or(0))
    };
    (0..segs.len().saturating_sub(2)).rev().find_map(|i| {
        if !year(segs[i]) {
            return None;
        }
        let category = if segs[i + 1].eq_ignore_ascii_case("malware") {
            Category::Malware
        } else if segs[i + 1].eq_ignore_ascii_case("ta") {
            Category::ThreatActor
        } else {
            return None;
        };
        // segs[i + 2] is the file itself when nothing follows it.
        let folder = (segs.len() > i + 3).then(|| segs[i + 2]);
        Some(Place { category, folder })
    })
}

/// What one rule's folder and title resolve to ([`NameIndex::resolve`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// The ATT&CK software and groups named, once per (id, origin), folder first.
    pub named: Vec<NamedRef>,
    /// Names that resolved to several ids even after the category preference: (name, ids).
    pub ambiguous: Vec<(String, Vec<String>)>,
    /// True when the folder name gave nothing (no folder, or no name in it).
    pub folder_unresolved: bool,
}

/// Names of ATT&CK software and groups (and MISP galaxy threat-actor synonyms) → ids, built
/// once from a knowledge base; see the module docs for the rules.
pub struct NameIndex {
    /// Name key → ATT&CK ids (software and groups, names and aliases).
    exact: HashMap<String, Vec<String>>,
    /// Group name key without a trailing `Group`/`Team`/`Gang` → group ids (folders only).
    stripped: HashMap<String, Vec<String>>,
    /// Group ids of the knowledge base (MISP links to other ids are dropped).
    groups: HashSet<String>,
}

/// Lower-case ASCII letters and digits of `s` (`APT-29` = `apt29`).
pub fn name_key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn is_generic(key: &str) -> bool {
    GENERIC.contains(&key)
        || key
            .strip_suffix("exe")
            .is_some_and(|k| GENERIC.contains(&k))
}

impl NameIndex {
    /// The index of `kb`'s software and group names and aliases (see the module docs).
    pub fn new(kb: &ActorKb) -> NameIndex {
        let mut exact: HashMap<String, Vec<String>> = HashMap::new();
        let mut stripped: HashMap<String, Vec<String>> = HashMap::new();
        let add = |map: &mut HashMap<String, Vec<String>>, name: &str, id: &str| {
            let k = name_key(name);
            if k.len() < MIN_KEY {
                return;
            }
            let ids = map.entry(k).or_default();
            if !ids.iter().any(|x| x == id) {
                ids.push(id.to_owned());
            }
        };
        for s in kb.software_all().values() {
            for n in std::iter::once(&s.name).chain(&s.aliases) {
                add(&mut exact, n, &s.id);
            }
        }
        for g in kb.groups().values() {
            for n in std::iter::once(&g.name).chain(&g.aliases) {
                add(&mut exact, n, &g.id);
                let lower = n.to_ascii_lowercase();
                for suffix in [" group", " team", " gang"] {
                    if let Some(base) = lower.strip_suffix(suffix) {
                        add(&mut stripped, base, &g.id);
                    }
                }
            }
        }
        for ids in exact.values_mut().chain(stripped.values_mut()) {
            ids.sort();
        }
        NameIndex {
            exact,
            stripped,
            groups: kb.groups().keys().cloned().collect(),
        }
    }

    /// Ids a name key stands for, in the order of the module docs; empty for none.
    fn lookup(&self, key: &str, in_folder: bool) -> Vec<String> {
        if let Some(ids) = self.exact.get(key) {
            return ids.clone();
        }
        if in_folder {
            if let Some(ids) = self.stripped.get(key) {
                return ids.clone();
            }
        }
        tracehunt_ioc::galaxy_attack_ids(key)
            .iter()
            .filter(|id| self.groups.contains(id.as_str()))
            .cloned()
            .collect()
    }

    /// The names in `text` (a folder name or a title): (name as written, ids), left to right,
    /// longest match first.
    pub fn names_in(&self, text: &str, in_folder: bool) -> Vec<(String, Vec<String>)> {
        let tokens: Vec<&str> = text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|t| !t.is_empty())
            .collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let mut step = 1;
            for n in (1..=MAX_TOKENS.min(tokens.len() - i)).rev() {
                let key = name_key(&tokens[i..i + n].concat());
                if key.len() < MIN_KEY || is_generic(&key) {
                    continue;
                }
                let ids = self.lookup(&key, in_folder);
                if !ids.is_empty() {
                    out.push((tokens[i..i + n].join(" "), ids));
                    step = n;
                    break;
                }
            }
            i += step;
        }
        out
    }

    /// What the rule in `file` titled `title` names, or `None` when the file is not in an
    /// emerging-threats `Malware`/`TA` folder ([`emerging_place`]).
    pub fn resolve(&self, file: &str, title: &str) -> Option<Resolution> {
        let place = emerging_place(file)?;
        let mut res = Resolution::default();
        let mut found: Vec<(NameOrigin, String, Vec<String>)> = Vec::new();
        let folder_names = place
            .folder
            .map(|f| self.names_in(f, true))
            .unwrap_or_default();
        res.folder_unresolved = folder_names.is_empty();
        found.extend(
            folder_names
                .into_iter()
                .map(|(n, ids)| (NameOrigin::Folder, n, ids)),
        );
        let exploit = title
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| t.to_ascii_lowercase().starts_with("exploit"));
        if !exploit {
            found.extend(
                self.names_in(title, false)
                    .into_iter()
                    .map(|(n, ids)| (NameOrigin::Title, n, ids)),
            );
        }
        for (origin, name, mut ids) in found {
            if ids.len() > 1 {
                let want_group = place.category == Category::ThreatActor;
                let preferred: Vec<String> = ids
                    .iter()
                    .filter(|id| id.starts_with('G') == want_group)
                    .cloned()
                    .collect();
                if !preferred.is_empty() {
                    ids = preferred;
                }
            }
            if ids.len() > 1 {
                if !res.ambiguous.iter().any(|(n, _)| *n == name) {
                    res.ambiguous.push((name, ids));
                }
                continue;
            }
            let id = ids.remove(0);
            if !res.named.iter().any(|r| r.id == id && r.origin == origin) {
                res.named.push(NamedRef { id, name, origin });
            }
        }
        Some(res)
    }
}

/// What [`crate::Loaded::resolve_names`] found over a rule set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameReport {
    /// Rules in an emerging-threats `Malware`/`TA` folder.
    pub considered: usize,
    /// Of those, rules that name at least one ATT&CK software or group.
    pub resolved: usize,
    /// Rules naming each id, by id (`S0367` → 7).
    pub by_id: BTreeMap<String, usize>,
    /// Folder names (`YEAR/CATEGORY/NAME`) none of whose rules resolved, with their rule count.
    pub unresolved_folders: BTreeMap<String, usize>,
    /// Names that stayed ambiguous, with the ids they point at.
    pub ambiguous: BTreeMap<String, Vec<String>>,
}

/// Resolves the names every rule of `rs` carries in its emerging-threats folder and title
/// against `kb` ([`NameIndex`]) and records them as [`RuleMeta::named`](tracehunt_engine::RuleMeta)
/// (replacing earlier ones), so that [`crate::evidence`] turns a firing rule into software or
/// group evidence. Rules outside an emerging-threats `Malware`/`TA` folder keep an empty list.
pub fn resolve_names(rs: &mut tracehunt_engine::Ruleset, kb: &ActorKb) -> NameReport {
    let index = NameIndex::new(kb);
    let mut report = NameReport::default();
    // Folder (`YEAR/CATEGORY/NAME`) → (rules, any resolved).
    let mut folders: BTreeMap<String, (usize, bool)> = BTreeMap::new();
    for i in 0..rs.len() {
        let m = rs.rule(i);
        let Some(res) = index.resolve(&m.file, &m.title) else {
            if !m.named.is_empty() {
                rs.set_named(i, Vec::new());
            }
            continue;
        };
        report.considered += 1;
        let resolved = !res.named.is_empty();
        if resolved {
            report.resolved += 1;
        }
        let mut ids: Vec<&str> = res.named.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            *report.by_id.entry(id.to_owned()).or_default() += 1;
        }
        for (name, ids) in &res.ambiguous {
            report.ambiguous.insert(name.clone(), ids.clone());
        }
        let folder = folder_label(&m.file);
        let f = folders.entry(folder).or_default();
        f.0 += 1;
        f.1 |= resolved;
        rs.set_named(i, res.named);
    }
    report.unresolved_folders = folders
        .into_iter()
        .filter(|(_, (_, any))| !any)
        .map(|(k, (n, _))| (k, n))
        .collect();
    report
}

/// `YEAR/CATEGORY/NAME` (or `YEAR/CATEGORY` for a file directly in it) of an emerging-threats
/// rule path.
fn folder_label(file: &str) -> String {
    let segs: Vec<&str> = file.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
    let Some(i) = (0..segs.len().saturating_sub(2)).rev().find(|&i| {
        segs[i].len() == 4
            && segs[i].bytes().all(|b| b.is_ascii_digit())
            && emerging_place(&segs[i..].join("/")).is_some()
    }) else {
        return String::new();
    };
    let end = if segs.len() > i + 3 { i + 3 } else { i + 2 };
    segs[i..end].join("/")
}

impl crate::Loaded {
    /// [`resolve_names`] over this rule set: call once after loading, with the knowledge base
    /// the hunt attributes with.
    pub fn resolve_names(&mut self, kb: &ActorKb) -> NameReport {
        resolve_names(&mut self.ruleset, kb)
    }
}
