//! Forward-in-time test cases: what a later ATT&CK release added about groups an older one
//! already knew (see [`super`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use tracehunt_attack::{citation_year, ActorKb};

use crate::bundle::{Bundle, ExtRef, Obj};
use crate::Window;

/// One ATT&CK release: its knowledge base and, per group, the reports it cites.
pub struct Release {
    /// Label, e.g. `v14.1`.
    pub label: String,
    /// The knowledge base built from the bundle ([`ActorKb::from_stix_json`]).
    pub kb: ActorKb,
    /// Per group id: citation key (trimmed `external_references[].source_name`) → what the
    /// group's active `uses` relationships citing it link the group to.
    pub reports: BTreeMap<String, BTreeMap<String, ReportLinks>>,
    /// Per group id: every citation key of the intrusion set and of any relationship (active
    /// or not) touching it: what the release "knew" about the group.
    pub cited: BTreeMap<String, BTreeSet<String>>,
}

/// The techniques and software one report is cited for on a group's `uses` relationships.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportLinks {
    /// Publication year ([`citation_year`]).
    pub year: Option<u16>,
    /// Technique ids (this release's).
    pub techniques: BTreeSet<String>,
    /// Software ids.
    pub software: BTreeSet<String>,
}

/// The reports `o` cites: its named, non-ATT&CK external references.
fn cited_refs(o: &Obj) -> impl Iterator<Item = &ExtRef> {
    o.external_references.iter().filter(|r| {
        r.source_name
            .as_deref()
            .is_some_and(|s| s != "mitre-attack" && !s.trim().is_empty())
    })
}

fn key(r: &ExtRef) -> String {
    r.source_name
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl Release {
    /// Reads an ATT&CK Enterprise STIX bundle (JSON text) once: the knowledge base and the
    /// per-group citations. Errors: not a STIX bundle (from [`ActorKb::from_stix_json`]) or
    /// not JSON, as text naming `label`.
    pub fn from_stix_json(label: &str, json: &str) -> Result<Release, String> {
        let mut kb = ActorKb::from_stix_json(json).map_err(|e| format!("ATT&CK {label}: {e}"))?;
        kb.set_label(format!("ATT&CK {label}"));
        let bundle: Bundle =
            serde_json::from_str(json).map_err(|e| format!("ATT&CK {label}: {e}"))?;
        let by_ref: HashMap<&str, &Obj> = bundle
            .objects
            .iter()
            .filter(|o| o.kind != "relationship")
            .map(|o| (o.id.as_str(), o))
            .collect();
        let group_of = |r: &str| -> Option<String> {
            let o = by_ref.get(r)?;
            (o.kind == "intrusion-set").then(|| o.attack_id()).flatten()
        };
        let mut reports: BTreeMap<String, BTreeMap<String, ReportLinks>> = BTreeMap::new();
        let mut cited: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // Citations of each campaign (object and its relationships), credited to the groups
        // it is attributed to: what the release learnt about a group through its campaigns.
        let mut campaign_cites: HashMap<&str, BTreeSet<String>> = HashMap::new();
        let mut attributed: Vec<(&str, String)> = Vec::new();
        for o in &bundle.objects {
            let (s, t) = (
                o.source_ref.as_deref().unwrap_or_default(),
                o.target_ref.as_deref().unwrap_or_default(),
            );
            if o.kind == "campaign" {
                campaign_cites
                    .entry(o.id.as_str())
                    .or_default()
                    .extend(cited_refs(o).map(key));
            } else if o.kind == "relationship" && s.starts_with("campaign--") {
                campaign_cites
                    .entry(s)
                    .or_default()
                    .extend(cited_refs(o).map(key));
                if o.relationship_type.as_deref() == Some("attributed-to") {
                    if let Some(g) = group_of(t) {
                        attributed.push((s, g));
                    }
                }
            }
        }
        for (c, g) in attributed {
            if let Some(keys) = campaign_cites.get(c) {
                cited.entry(g).or_default().extend(keys.iter().cloned());
            }
        }
        for o in &bundle.objects {
            if o.kind == "intrusion-set" {
                if let Some(g) = o.attack_id() {
                    cited.entry(g).or_default().extend(cited_refs(o).map(key));
                }
                continue;
            }
            if o.kind != "relationship" {
                continue;
            }
            let (s, t) = (
                o.source_ref.as_deref().unwrap_or_default(),
                o.target_ref.as_deref().unwrap_or_default(),
            );
            for g in [group_of(s), group_of(t)].into_iter().flatten() {
                cited.entry(g).or_default().extend(cited_refs(o).map(key));
            }
            if o.inactive() || o.relationship_type.as_deref() != Some("uses") {
                continue;
            }
            let (Some(g), Some(target)) = (group_of(s), by_ref.get(t)) else {
                continue;
            };
            if by_ref.get(s).is_some_and(|x| x.inactive()) || target.inactive() {
                continue;
            }
            let Some(tid) = target.attack_id() else {
                continue;
            };
            for r in cited_refs(o) {
                let links = reports
                    .entry(g.clone())
                    .or_default()
                    .entry(key(r))
                    .or_default();
                links.year = links
                    .year
                    .or_else(|| citation_year(r.description.as_deref(), r.source_name.as_deref()));
                match target.kind.as_str() {
                    "attack-pattern" => {
                        links.techniques.insert(tid.clone());
                    }
                    "malware" | "tool" => {
                        links.software.insert(tid.clone());
                    }
                    _ => {}
                }
            }
        }
        Ok(Release {
            label: label.to_string(),
            kb,
            reports,
            cited,
        })
    }
}

/// Where a forward case comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// A campaign the newer release added, attributed to a group the older one knew.
    Campaign,
    /// A report the newer release cites for a group the older one knew but did not cite it.
    Report,
}

/// One forward test case, in the older release's ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardCase {
    /// Campaign or report.
    pub kind: CaseKind,
    /// Campaign id (`C0051`) or the report's citation key.
    pub id: String,
    /// The true group, as the older release names it (`G0016`).
    pub group: String,
    /// Observed techniques, mapped to the older release's ids.
    pub techniques: Vec<String>,
    /// Observed software the older release knows.
    pub software: Vec<String>,
    /// Observation window: the campaign's `first_seen … last_seen`, or the report's
    /// publication year.
    pub window: Option<Window>,
    /// Techniques / software of the newer release that have no counterpart in the older one
    /// (dropped from the evidence).
    pub unmapped: usize,
}

/// Counts of what [`forward_cases`] left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSkips {
    /// New campaigns or reports of groups the older release did not know (or knew with an
    /// empty profile).
    pub new_group: usize,
    /// New campaigns attributed to no group or to several.
    pub not_one_group: usize,
    /// Cases with no technique left after mapping to the older release.
    pub no_technique: usize,
}

/// Maps ids of the newer release onto the older one.
struct IdMap<'a> {
    old: &'a ActorKb,
    /// New-release id → ids it revoked (the older ids ATT&CK replaced by it).
    revoked_into: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> IdMap<'a> {
    fn new(old: &'a ActorKb, new: &'a ActorKb) -> IdMap<'a> {
        let mut revoked_into: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, to) in new.revoked_by() {
            revoked_into
                .entry(to.as_str())
                .or_default()
                .push(from.as_str());
        }
        IdMap { old, revoked_into }
    }

    /// A technique of the newer release in the older one's ids: the same id; else an id the
    /// newer release revoked in its favour that the older one has; else the older release's
    /// own resolution ([`ActorKb::canonical_technique`]: its revoked-by chain, the parent of
    /// an unknown sub-technique).
    fn technique(&self, id: &str) -> Option<String> {
        if self.old.techniques().get(id).is_some_and(|t| !t.deprecated) {
            return Some(id.to_string());
        }
        if let Some(x) = self.revoked_into.get(id).into_iter().flatten().find(|x| {
            self.old
                .techniques()
                .get(**x)
                .is_some_and(|t| !t.deprecated)
        }) {
            return Some(x.to_string());
        }
        self.old
            .canonical_technique(id)
            .filter(|t| self.old.techniques().get(t).is_some_and(|t| !t.deprecated))
    }

    fn software(&self, id: &str) -> Option<String> {
        if self.old.software(id).is_some() {
            return Some(id.to_string());
        }
        self.revoked_into
            .get(id)
            .into_iter()
            .flatten()
            .find(|x| self.old.software(x).is_some())
            .map(|x| x.to_string())
    }

    /// A group of the newer release as the older one names it, if it had a profile there.
    fn group(&self, id: &str) -> Option<String> {
        let known = |g: &str| {
            self.old
                .groups()
                .get(g)
                .is_some_and(|g| !g.techniques.is_empty() || !g.software.is_empty())
        };
        if known(id) {
            return Some(id.to_string());
        }
        self.revoked_into
            .get(id)
            .into_iter()
            .flatten()
            .find(|x| known(x))
            .map(|x| x.to_string())
    }
}

fn year_window(y: u16) -> Window {
    Window {
        first: f64::from(y),
        last: f64::from(y) + 11.0 / 12.0,
    }
}

/// The forward cases of `old` → `new`, campaigns first (by id), then reports (by group and
/// citation key):
///
/// * every campaign of `new` absent from `old`, attributed to exactly one group that `old`
///   knew, with its techniques and software;
/// * every report `new` cites on a `uses` relationship of a group `old` knew and that `old`
///   never cited for that group (on the intrusion set or any relationship touching it), with
///   the techniques and software `new` links to the group citing it.
///
/// Ids are mapped to `old`'s (see `IdMap`); cases left with no technique are skipped.
pub fn forward_cases(old: &Release, new: &Release) -> (Vec<ForwardCase>, CaseSkips) {
    let map = IdMap::new(&old.kb, &new.kb);
    let mut skips = CaseSkips::default();
    let mut cases = Vec::new();
    let mut push = |kind,
                    id: &str,
                    group: String,
                    ts: &BTreeSet<String>,
                    ss: &BTreeSet<String>,
                    window,
                    skips: &mut CaseSkips| {
        let techniques: BTreeSet<String> = ts.iter().filter_map(|t| map.technique(t)).collect();
        let software: BTreeSet<String> = ss.iter().filter_map(|s| map.software(s)).collect();
        let unmapped = ts.iter().filter(|t| map.technique(t).is_none()).count()
            + ss.iter().filter(|s| map.software(s).is_none()).count();
        if techniques.is_empty() {
            skips.no_technique += 1;
            return;
        }
        cases.push(ForwardCase {
            kind,
            id: id.to_string(),
            group,
            techniques: techniques.into_iter().collect(),
            software: software.into_iter().collect(),
            window,
            unmapped,
        });
    };
    for c in new.kb.campaigns().values() {
        if old.kb.campaigns().contains_key(&c.id) {
            continue;
        }
        let [g] = c.groups.as_slice() else {
            skips.not_one_group += 1;
            continue;
        };
        let Some(group) = map.group(g) else {
            skips.new_group += 1;
            continue;
        };
        let window = c
            .first_seen
            .as_deref()
            .and_then(|f| Window::from_dates(f, c.last_seen.as_deref().unwrap_or(f)));
        push(
            CaseKind::Campaign,
            &c.id,
            group,
            &c.techniques,
            &c.software,
            window,
            &mut skips,
        );
    }
    let empty = BTreeSet::new();
    for (g, reports) in &new.reports {
        let Some(group) = map.group(g) else {
            skips.new_group += reports.len();
            continue;
        };
        let known = old.cited.get(&group).unwrap_or(&empty);
        for (key, links) in reports {
            if known.contains(key) {
                continue;
            }
            push(
                CaseKind::Report,
                key,
                group.clone(),
                &links.techniques,
                &links.software,
                links.year.map(year_window),
                &mut skips,
            );
        }
    }
    (cases, skips)
}
