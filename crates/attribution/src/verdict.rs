//! Which kind of evidence decided the ranking (issue #18 item 8: the verdict spoke of
//! techniques when IOCs had decided it).
//!
//! A candidate's score is the sum of its evidence weights ([`Evidence::weight`](crate::Evidence::weight), one per
//! matched technique, software, group tag or IOC), its `missing_penalty` and its `prior`
//! ([`Candidate`]), so the lead of the top candidate over the runner-up splits exactly into
//! one share per evidence kind plus the group-level terms (profile size, campaigns, time,
//! features the group lacks). [`decide`] computes that split; the kind with the largest
//! positive share **decided** the ranking, and every verdict ends with a clause naming it
//! ([`explain`]). When no evidence kind has a positive share, the group-level terms decided.

use crate::{Candidate, EvidenceKind};

/// What decided the ranking between the top candidate and the runner-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// Matched ATT&CK techniques.
    Techniques,
    /// Matched ATT&CK software.
    Software,
    /// IOCs tied to the group by a feed.
    Iocs,
    /// Group ids tagged on, or named by, the rules that fired.
    GroupTags,
    /// No evidence kind: profile size, campaigns, time and the features the groups lack.
    GroupTerms,
}

impl Decider {
    /// Words for the verdict: `techniques`, `software`, `IOCs`, `group tags`,
    /// `group-level terms (profile size, time, missing features)`.
    pub fn words(self) -> &'static str {
        match self {
            Decider::Techniques => "techniques",
            Decider::Software => "software",
            Decider::Iocs => "IOCs",
            Decider::GroupTags => "group tags",
            Decider::GroupTerms => "group-level terms (profile size, time, missing features)",
        }
    }
}

/// The split of the top candidate's lead over the runner-up ([`decide`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The kind with the largest positive share (nats), or [`Decider::GroupTerms`].
    pub decided_by: Decider,
    /// Score of the top candidate minus the runner-up's (nats, ≥ 0); the top candidate's own
    /// score when it has no runner-up.
    pub lead: f64,
    /// Share of the lead per kind (nats), in [`Decider`] order; they add up to `lead`.
    pub shares: Vec<(Decider, f64)>,
    /// `id name` of the runner-up, if any.
    pub runner_up: Option<String>,
}

/// Evidence weight of `c` per kind, and its group-level terms, in [`Decider`] order.
fn parts(c: &Candidate) -> [f64; 5] {
    let mut p = [0.0; 5];
    for e in &c.matched {
        let k = match e.kind {
            EvidenceKind::Technique => 0,
            EvidenceKind::Software => 1,
            EvidenceKind::Ioc => 2,
            EvidenceKind::GroupTag => 3,
        };
        p[k] += e.weight;
    }
    p[4] = c.missing_penalty + c.prior;
    p
}

/// The split of the lead of `candidates[0]` over `candidates[1]` (sorted by score, as in
/// [`crate::Attribution::candidates`]); `None` without candidates. Without a runner-up the
/// top candidate's score is split.
pub fn decide(candidates: &[Candidate]) -> Option<Decision> {
    let top = candidates.first()?;
    let a = parts(top);
    let b = candidates.get(1).map_or([0.0; 5], parts);
    let kinds = [
        Decider::Techniques,
        Decider::Software,
        Decider::Iocs,
        Decider::GroupTags,
        Decider::GroupTerms,
    ];
    let shares: Vec<(Decider, f64)> = kinds
        .iter()
        .zip(a.iter().zip(b.iter()))
        .map(|(k, (x, y))| (*k, x - y))
        .collect();
    let decided_by = shares[..4]
        .iter()
        .filter(|(_, s)| *s > 1e-9)
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map_or(Decider::GroupTerms, |(k, _)| *k);
    Some(Decision {
        decided_by,
        lead: top.score - candidates.get(1).map_or(0.0, |c| c.score),
        shares,
        runner_up: candidates.get(1).map(|c| format!("{} {}", c.id, c.name)),
    })
}

/// The clause every verdict ends with: `ranking decided by IOCs (+30.0 of the 30.4-nat lead
/// over G0087 APT39; techniques +0.4)`; shares under 0.005 nats in absolute value are left out.
pub fn clause(d: &Decision) -> String {
    let main = d
        .shares
        .iter()
        .find(|(k, _)| *k == d.decided_by)
        .map_or(0.0, |(_, s)| *s);
    let others: Vec<String> = d
        .shares
        .iter()
        .filter(|(k, s)| *k != d.decided_by && s.abs() >= 0.005)
        .map(|(k, s)| {
            let w = if *k == Decider::GroupTerms {
                "group-level terms"
            } else {
                k.words()
            };
            format!("{w} {s:+.2}")
        })
        .collect();
    let over = d
        .runner_up
        .as_deref()
        .map_or("with no runner-up".to_owned(), |r| format!("over {r}"));
    let rest = if others.is_empty() {
        String::new()
    } else {
        format!("; {}", others.join(", "))
    };
    if d.decided_by == Decider::GroupTerms {
        format!(
            "ranking decided by no evidence kind but the {} ({main:+.2} of the {:.2}-nat lead {over}{rest})",
            d.decided_by.words(),
            d.lead
        )
    } else {
        format!(
            "ranking decided by {} ({main:+.2} of the {:.2}-nat lead {over}{rest})",
            d.decided_by.words(),
            d.lead
        )
    }
}

/// Reason of a verdict when no technique or software resolved (see [`explain`]).
pub const NO_FEATURES: &str =
    "no confident attribution: no technique or software evidence resolved against ATT&CK";

/// The verdict `(confident, reason)` with the deciding kind named: the [`clause`] appended;
/// and when no technique or software resolved but IOCs or group tags are there, a reason that
/// names them instead of [`NO_FEATURES`].
pub fn explain((confident, reason): (bool, String), candidates: &[Candidate]) -> (bool, String) {
    let Some(d) = decide(candidates) else {
        return (confident, reason);
    };
    let with_iocs = candidates.iter().filter(|c| c.ioc_bonus > 0.0).count();
    let with_tags = candidates.iter().filter(|c| c.tag_bonus > 0.0).count();
    let present = if with_iocs > 0 {
        Some((Decider::Iocs, with_iocs))
    } else if with_tags > 0 {
        Some((Decider::GroupTags, with_tags))
    } else {
        None
    };
    let reason = match present {
        Some((kind, 1)) if reason == NO_FEATURES => format!(
            "no confident attribution: only {} as evidence (one group), no technique or \
             software evidence",
            kind.words()
        ),
        Some((kind, n)) if reason == NO_FEATURES => format!(
            "no confident attribution: only {} as evidence, pointing at {n} groups, and no \
             technique or software evidence to separate them",
            kind.words()
        ),
        _ => reason,
    };
    (confident, format!("{reason}; {}", clause(&d)))
}
