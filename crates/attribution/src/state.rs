//! The state-level answer (issue #18 item 7): which state's groups the evidence points to.
//!
//! Each ATT&CK group may have a suspected state sponsor in the MISP galaxy
//! (`threat-actor` clusters, `meta.cfr-suspected-state-sponsor` / `meta.country`, linked to
//! ATT&CK ids by [`StateSponsors`]). The probability of a state is the sum of the
//! probabilities of its groups ([`Candidate::probability`](crate::Candidate), the closed-world
//! softmax over every ATT&CK group); the mass of groups the galaxy gives no state is shown as
//! `unknown`, never spread over the states.

use serde::{Deserialize, Serialize};
use tracehunt_attack::StateSponsors;

/// One suspected state and the probability that the actor is one of its groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateShare {
    /// ISO 3166-1 alpha-2 code (`"CN"`).
    pub country: String,
    /// Display name (`"China"`, [`StateSponsor::state_name`](tracehunt_attack::StateSponsor)).
    pub state: String,
    /// Sum of its groups' probabilities, in `[0, 1]`.
    pub probability: f64,
    /// Its groups holding at least 1 % of the probability, most probable first (ATT&CK ids).
    pub groups: Vec<String>,
}

/// Probabilities per suspected state sponsor, most probable first, plus the unknown mass.
///
/// JSON: `{"states":[{"country":"RU","state":"Russia","probability":0.62,"groups":["G0016"]}],
/// "unknown":0.08}`. `states[i].probability` and `unknown` add up to the total probability of
/// the groups given (1 for a full softmax).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateAnswer {
    /// States with any probability, descending (ties by code).
    pub states: Vec<StateShare>,
    /// Probability of the groups with no suspected state in the galaxy.
    pub unknown: f64,
}

impl StateAnswer {
    /// The most probable state, if any has probability above 0.
    pub fn top(&self) -> Option<&StateShare> {
        self.states.first().filter(|s| s.probability > 0.0)
    }
}

/// Per state: display name, summed probability, (probability, group) of its groups ≥ 1 %.
type Tally = (String, f64, Vec<(f64, String)>);

/// Sums group probabilities (`(ATT&CK group id, probability)`, e.g. every group's
/// [`Candidate::probability`](crate::Candidate) or an evaluation's softmax) per suspected
/// state sponsor of `sponsors` ([`StateSponsors::builtin`] is the MISP-galaxy table). Groups
/// without a sponsor add to [`StateAnswer::unknown`]. Non-finite or negative probabilities
/// count as 0.
pub fn state_answer<'a>(
    probabilities: impl IntoIterator<Item = (&'a str, f64)>,
    sponsors: &StateSponsors,
) -> StateAnswer {
    let mut by_state: std::collections::BTreeMap<String, Tally> = std::collections::BTreeMap::new();
    let mut unknown = 0.0;
    for (g, p) in probabilities {
        let p = if p.is_finite() && p > 0.0 { p } else { 0.0 };
        match sponsors.get(g) {
            Some(s) => {
                let e = by_state
                    .entry(s.country.clone())
                    .or_insert_with(|| (s.state_name(), 0.0, Vec::new()));
                e.1 += p;
                if p >= 0.01 {
                    e.2.push((p, g.to_owned()));
                }
            }
            None => unknown += p,
        }
    }
    let mut states: Vec<StateShare> = by_state
        .into_iter()
        .filter(|(_, (_, p, _))| *p > 0.0)
        .map(|(country, (state, probability, mut groups))| {
            groups.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            StateShare {
                country,
                state,
                probability,
                groups: groups.into_iter().map(|(_, g)| g).collect(),
            }
        })
        .collect();
    states.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then_with(|| a.country.cmp(&b.country))
    });
    StateAnswer { states, unknown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_state_and_keeps_unknown_mass() {
        let s = StateSponsors::builtin();
        // G0009 Deep Panda and G0006 APT1 are placed in China by the galaxy; G9999 is no group.
        let a = state_answer([("G0009", 0.5), ("G0006", 0.2), ("G9999", 0.3)], s);
        assert_eq!(a.states.len(), 1);
        assert_eq!(a.states[0].country, "CN");
        assert_eq!(a.states[0].state, "China");
        assert!((a.states[0].probability - 0.7).abs() < 1e-12);
        assert_eq!(a.states[0].groups, vec!["G0009", "G0006"]);
        assert!((a.unknown - 0.3).abs() < 1e-12);
        assert_eq!(a.top().map(|t| t.country.as_str()), Some("CN"));
    }
}
