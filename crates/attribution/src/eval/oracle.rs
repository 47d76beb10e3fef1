//! Oracle diagnostics: what the true group's held-out profile still shares with a case's
//! evidence ([`Overlap`]), whatever the ranking.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tracehunt_attack::ActorKb;

use crate::EvidenceSet;

/// What the true group's held-out profile still shares with a campaign's evidence: the oracle
/// diagnostics of one case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    /// Observed techniques and software the true group's held-out profile has, exactly or as
    /// a parent/sub-technique.
    pub matched: usize,
    /// Of those, exact matches.
    pub exact: usize,
    /// Most observed features matched (exactly or related) by any *other* group.
    pub best_other: usize,
    /// Other groups whose matched set strictly contains the true group's (a ranking that only
    /// rewards matches puts each of them above it).
    pub dominated_by: usize,
    /// Dated activity items (citations + campaign years) left in the true group's profile.
    pub dated: usize,
    /// The true group's `time` input for the campaign's window (0 without time).
    pub time: f64,
    /// Rank of the true group by the `time` input alone (ties split; 0 when time is off).
    pub time_rank: f64,
}

/// Observed technique/software ids the group's profile has (exact, or parent/sub-technique),
/// and how many of them are exact.
fn matched_set(
    g: &tracehunt_attack::Group,
    ev: &EvidenceSet,
    kb: &ActorKb,
) -> (BTreeSet<String>, usize) {
    let mut set = BTreeSet::new();
    let mut exact = 0;
    for o in &ev.techniques {
        let Some(t) = kb.canonical_technique(&o.technique) else {
            continue;
        };
        let hit = if g.techniques.contains_key(&t) {
            exact += 1;
            true
        } else {
            match tracehunt_attack::parent_technique(&t) {
                Some(p) => g.techniques.contains_key(p),
                None => g
                    .techniques
                    .keys()
                    .any(|k| tracehunt_attack::parent_technique(k) == Some(t.as_str())),
            }
        };
        if hit {
            set.insert(t);
        }
    }
    for o in &ev.software {
        if let Some(sw) = kb.software(&o.id) {
            if g.software.contains_key(&sw.id) {
                exact += 1;
                set.insert(sw.id.clone());
            }
        }
    }
    (set, exact)
}

pub(super) fn overlap(held: &ActorKb, ev: &EvidenceSet, truth: &str) -> Overlap {
    let sets: Vec<(&String, BTreeSet<String>, usize)> = held
        .groups()
        .iter()
        .map(|(id, g)| {
            let (s, e) = matched_set(g, ev, held);
            (id, s, e)
        })
        .collect();
    let Some((_, mine, exact)) = sets.iter().find(|(id, _, _)| id.as_str() == truth) else {
        return Overlap::default();
    };
    let others = || sets.iter().filter(|(id, _, _)| id.as_str() != truth);
    Overlap {
        matched: mine.len(),
        exact: *exact,
        best_other: others().map(|(_, s, _)| s.len()).max().unwrap_or(0),
        dominated_by: others()
            .filter(|(_, s, _)| s.len() > mine.len() && s.is_superset(mine))
            .count(),
        ..Overlap::default()
    }
}
