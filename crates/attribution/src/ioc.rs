//! IOC evidence: an indicator of compromise that a feed ties to an actor (MISP galaxy cluster or
//! tag, STIX `indicates` relationship, CSV `actor` column) and that was seen in the logs.
//!
//! This is the strongest evidence tracehunt has: a technique is shared by dozens of groups, an
//! IOC listed in a report about one actor points at that actor (or at someone reusing its
//! infrastructure or tools — the evidence list says which IOC did it, so an analyst can judge).
//!
//! **Weight.** A group with IOC evidence gets `ioc_bonus = IOC_WEIGHT + ln(k)` added to its
//! score, `k` = distinct IOC values tied to it (several IOCs from one report are correlated,
//! so they add logarithmically, not linearly). Scores are log-likelihood ratios in nats;
//! [`IOC_WEIGHT`] = 30 nats is about twice what a whole intrusion's technique evidence scores
//! (the eight distinctive Deep Panda techniques of the crate example give G0009 ≈ 15 nats),
//! so a group with an IOC hit ranks above groups with technique evidence only; between groups
//! that all have IOC hits, the number of IOCs and then the technique evidence decide. Each IOC
//! is one [`Evidence`] item of kind [`EvidenceKind::Ioc`] whose weights add up to the bonus.
//!
//! **Actor resolution** ([`resolve_actor`]): the ATT&CK id when the feed gives one
//! ([`IocObservation::attack_id`]), else the name as an ATT&CK group name or alias, else each
//! of [`IocObservation::aliases`] in order (feed synonyms, MISP galaxy ATT&CK ids). Names that
//! resolve to no ATT&CK group are listed in [`crate::Attribution::unresolved`] as
//! `ioc-actor:<name>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracehunt_attack::{ActorKb, Group};

use crate::{Candidate, Evidence, EvidenceKind, MatchKind};

/// Score added to a group with IOC evidence, before the `ln(k)` term (see the module docs).
pub const IOC_WEIGHT: f64 = 30.0;

/// One IOC seen in the logs and tied to an actor by its feed.
///
/// JSON: `{"actor":"Turla Group","attack_id":null,"aliases":["Turla","G0010"],
/// "ioc_type":"sha1","value":"f5ab…","source":"5a5395d1-… (Turla: Mosquito Whitepaper)",
/// "events":2}` (all but `actor`, `ioc_type`, `value` optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IocObservation {
    /// Actor name as the feed gives it (`Turla Group`, `Sofacy`, `APT32`) or an ATT&CK id.
    pub actor: String,
    /// ATT&CK group id stated by the feed (`G0010`), tried first.
    #[serde(default)]
    pub attack_id: Option<String>,
    /// Other names to try, in order (feed synonyms, MISP galaxy ATT&CK ids).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// IOC kind: `md5`, `sha1`, `sha256`, `sha512`, `imphash`, `domain`, `url`, `ip`.
    pub ioc_type: String,
    /// IOC value (normalised by the feed loader).
    pub value: String,
    /// Where the IOC comes from (feed, MISP event uuid and title, STIX indicator id).
    #[serde(default)]
    pub source: String,
    /// Events in which the IOC was found.
    #[serde(default)]
    pub events: u64,
}

/// The ATT&CK group an IOC observation points at (see the module docs for the order tried).
pub fn resolve_actor<'kb>(kb: &'kb ActorKb, o: &IocObservation) -> Option<&'kb Group> {
    o.attack_id
        .as_deref()
        .and_then(|id| kb.group(id))
        .or_else(|| kb.group_by_name_or_alias(&o.actor))
        .or_else(|| o.aliases.iter().find_map(|a| kb.group_by_name_or_alias(a)))
}

/// IOC evidence per ATT&CK group id, with weights set so they add up to the group's bonus.
pub(crate) fn by_group(
    kb: &ActorKb,
    iocs: &[IocObservation],
    unresolved: &mut Vec<String>,
) -> BTreeMap<String, Vec<Evidence>> {
    // (group id, ioc type, value) → evidence, merged over repeated observations.
    let mut merged: BTreeMap<(String, String, String), Evidence> = BTreeMap::new();
    let mut groups_per_value: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for o in iocs {
        let Some(g) = resolve_actor(kb, o) else {
            let u = format!("ioc-actor:{}", o.actor);
            if !unresolved.contains(&u) {
                unresolved.push(u);
            }
            continue;
        };
        let gs = groups_per_value
            .entry((o.ioc_type.clone(), o.value.clone()))
            .or_default();
        if !gs.contains(&g.id) {
            gs.push(g.id.clone());
        }
        let e = merged
            .entry((g.id.clone(), o.ioc_type.clone(), o.value.clone()))
            .or_insert_with(|| Evidence {
                kind: EvidenceKind::Ioc,
                id: o.value.clone(),
                name: format!("{} IOC tied to {}", o.ioc_type, o.actor),
                matched_id: g.id.clone(),
                match_kind: MatchKind::Ioc,
                sources: Vec::new(),
                idf: 0.0,
                groups_using: 0,
                weight: 0.0,
                observed_as: Vec::new(),
                rule_ids: Vec::new(),
                rule_titles: Vec::new(),
                events: 0,
            });
        if !e.observed_as.contains(&o.actor) {
            e.observed_as.push(o.actor.clone());
        }
        if !o.source.is_empty() && !e.rule_titles.contains(&o.source) {
            e.rule_titles.push(o.source.clone());
        }
        e.events = e.events.saturating_add(o.events);
    }
    let mut out: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
    for ((gid, t, v), mut e) in merged {
        e.groups_using = groups_per_value.get(&(t, v)).map_or(1, Vec::len);
        out.entry(gid).or_default().push(e);
    }
    for ev in out.values_mut() {
        let bonus = bonus(ev.len());
        let each = bonus / ev.len() as f64;
        for e in ev.iter_mut() {
            e.weight = each;
        }
    }
    out
}

/// `IOC_WEIGHT + ln(k)` for `k ≥ 1` distinct IOCs, 0 for none.
pub(crate) fn bonus(k: usize) -> f64 {
    if k == 0 {
        0.0
    } else {
        IOC_WEIGHT + (k as f64).ln()
    }
}

/// A confident verdict when the top candidate is the only one with IOC evidence.
pub(crate) fn verdict(candidates: &[Candidate]) -> Option<(bool, String)> {
    let top = candidates.first()?;
    if top.ioc_bonus <= 0.0 || candidates[1..].iter().any(|c| c.ioc_bonus > 0.0) {
        return None;
    }
    let iocs: Vec<String> = top
        .matched
        .iter()
        .filter(|e| e.kind == EvidenceKind::Ioc)
        .map(|e| e.id.clone())
        .collect();
    Some((
        true,
        format!(
            "{} {} leads with score {:.3}: {} IOC(s) tied to it by threat-intelligence feeds were seen \
             ({}), and no other group has IOC evidence",
            top.id,
            top.name,
            top.score,
            iocs.len(),
            iocs.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        ),
    ))
}
