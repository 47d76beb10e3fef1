//! Attribution: evidence from what fired, and its table and JSON forms.

use std::collections::BTreeMap;
use std::io::Write;
use tracehunt_attribution::{
    Attribution, Evidence, EvidenceKind, EvidenceSet, Observation, TagObservation,
};
use tracehunt_engine::Ruleset;

/// `one` when `n` is 1, else `many` ("1 file", "2 files").
pub fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Builds the attribution evidence from what fired: per technique the rules
/// and number of detections; software and groups likewise, from the rules'
/// `attack.sNNNN`/`attack.gNNNN` tags and from the names they carry in their
/// emerging-threats folder or title ([`RuleMeta::named`](tracehunt_engine::RuleMeta),
/// set by [`crate::Loaded::resolve_names`]), each with where it came from
/// ([`TagObservation::origins`]: `tag attack.g0010`, `folder "Turla"`,
/// `title "Emotet"`). `rules` are the rules of the detections in output order
/// (a rule's place in the evidence lists is that of its first detection).
pub fn evidence(rs: &Ruleset, rules: impl IntoIterator<Item = usize>) -> EvidenceSet {
    type Acc = BTreeMap<String, (Vec<usize>, u64, Vec<String>)>;
    let mut tech: Acc = BTreeMap::new();
    let mut soft: Acc = BTreeMap::new();
    let mut grp: Acc = BTreeMap::new();
    // Counted per rule first: one map update per rule, not per detection.
    let mut order: Vec<usize> = Vec::new();
    let mut count: BTreeMap<usize, u64> = BTreeMap::new();
    for r in rules {
        let c = count.entry(r).or_default();
        if *c == 0 {
            order.push(r);
        }
        *c += 1;
    }
    let add = |map: &mut Acc, id: &str, rule: usize, n: u64, origin: String| {
        let e = map.entry(id.to_owned()).or_default();
        if !e.0.contains(&rule) {
            e.0.push(rule);
            e.1 += n;
        }
        if !origin.is_empty() && !e.2.contains(&origin) {
            e.2.push(origin);
        }
    };
    for rule in order {
        let n = count[&rule];
        let m = rs.rule(rule);
        for t in &m.techniques {
            add(&mut tech, t, rule, n, String::new());
        }
        for (ids, map) in [(&m.software, &mut soft), (&m.groups, &mut grp)] {
            for t in ids {
                add(
                    map,
                    t,
                    rule,
                    n,
                    format!("tag attack.{}", t.to_ascii_lowercase()),
                );
            }
        }
        for r in &m.named {
            let map = if r.is_group() { &mut grp } else { &mut soft };
            add(
                map,
                &r.id,
                rule,
                n,
                format!("{} \"{}\"", r.origin.as_str(), r.name),
            );
        }
    }
    let names = |rules: &[usize]| -> (Vec<String>, Vec<String>) {
        (
            rules.iter().map(|&r| rs.rule(r).id.clone()).collect(),
            rules.iter().map(|&r| rs.rule(r).title.clone()).collect(),
        )
    };
    let tags = |m: Acc| -> Vec<TagObservation> {
        m.into_iter()
            .map(|(id, (rules, events, origins))| {
                let (rule_ids, rule_titles) = names(&rules);
                TagObservation {
                    id,
                    rule_ids,
                    rule_titles,
                    events,
                    origins,
                }
            })
            .collect()
    };
    EvidenceSet {
        techniques: tech
            .into_iter()
            .map(|(t, (rules, events, _))| {
                let (rule_ids, rule_titles) = names(&rules);
                Observation {
                    technique: t,
                    rule_ids,
                    rule_titles,
                    events,
                }
            })
            .collect(),
        software: tags(soft),
        groups: tags(grp),
        ..EvidenceSet::default()
    }
}

/// Where a software or group item came from, for its evidence line: ` via tag attack.s0002,
/// folder "Turla"` (issue #18 item 5); empty for other kinds and for analyst input.
fn via(e: &Evidence) -> String {
    let shown: Vec<&str> = e
        .observed_as
        .iter()
        .filter(|o| **o != e.id)
        .map(String::as_str)
        .collect();
    if !matches!(e.kind, EvidenceKind::Software | EvidenceKind::GroupTag) || shown.is_empty() {
        return String::new();
    }
    format!(
        " via {}",
        tracehunt_report::terminal_safe(&shown.join(", "))
    )
}

/// `top` as a count for `take`: 0 means all.
fn shown(top: usize) -> usize {
    if top == 0 {
        usize::MAX
    } else {
        top
    }
}

/// The `attribution` array of `--format json`: the first `top` candidates (0 = all the
/// attribution holds) with their evidence.
pub fn attribution_json(a: &Attribution, top: usize) -> serde_json::Value {
    serde_json::Value::Array(
        a.candidates
            .iter()
            .take(shown(top))
            .map(|c| {
                serde_json::json!({
                    "rank": c.rank,
                    "id": c.id,
                    "name": c.name,
                    "aliases": c.aliases,
                    "score": c.score,
                    "probability": c.probability,
                    "confidence": c.confidence,
                    "confidence_label": c.confidence_label,
                    "coverage": c.coverage,
                    "matched_count": c.matched_count,
                    "distinctive_matches": c.distinctive_matches,
                    "evidence": c.matched,
                })
            })
            .collect(),
    )
}

/// The rules behind one piece of evidence, for the attribution table: the first `max`
/// titles, then "and N more" (fresh-user finding: only the first rule was named when two
/// rules showed the technique); "-" for none (analyst input).
pub fn rule_list(titles: &[String], max: usize) -> String {
    if titles.is_empty() {
        return "-".to_owned();
    }
    let shown: Vec<String> = titles
        .iter()
        .take(max)
        .map(|t| tracehunt_report::terminal_safe(t).into_owned())
        .collect();
    let mut s = shown.join("; ");
    if titles.len() > max {
        s.push_str(&format!("; and {} more", titles.len() - max));
    }
    s
}

/// Human-readable attribution: verdict and top candidates with their evidence.
pub fn write_attribution_table<W: Write>(
    w: &mut W,
    a: &Attribution,
    top: usize,
) -> std::io::Result<()> {
    write_attribution_heading(w, "Attribution (ATT&CK intrusion sets)")?;
    write_attribution_body(w, a, top)
}

/// The heading line of an attribution section: `── {title} ───…`.
pub fn write_attribution_heading<W: Write>(w: &mut W, title: &str) -> std::io::Result<()> {
    writeln!(w)?;
    let pad = 56usize.saturating_sub(title.chars().count() + 4).max(3);
    writeln!(w, "── {title} {}", "─".repeat(pad))
}

/// The state-level answer in one line (issue #18 item 7), `None` without probabilities:
/// `Suspected state sponsor: Russia 62% (G0016, G0007), China 20% (G0096); no known state
/// 11%` — the summed probability of each state's groups ([`Attribution::states`], MISP galaxy
/// sponsors), at most four states, the groups holding ≥ 1 % of it (at most three).
pub fn state_line(a: &Attribution) -> Option<String> {
    let st = &a.states;
    st.top()?;
    let states: Vec<String> = st
        .states
        .iter()
        .take(4)
        .map(|s| {
            let groups: Vec<&str> = s.groups.iter().take(3).map(String::as_str).collect();
            if groups.is_empty() {
                format!("{} {:.0}%", s.state, s.probability * 100.0)
            } else {
                format!(
                    "{} {:.0}% ({})",
                    s.state,
                    s.probability * 100.0,
                    groups.join(", ")
                )
            }
        })
        .collect();
    Some(format!(
        "Suspected state sponsor: {}; no known state {:.0}%",
        states.join(", "),
        st.unknown * 100.0
    ))
}

/// How an evidence item met the candidate's profile, for its evidence line (issue #18):
/// `exact`, `via sub-technique T1087.002` (an observed parent the group lists a
/// sub-technique of), `via parent T1059` (an observed sub-technique whose parent the group
/// lists), `group tag`, `IOC`.
pub fn how_matched(e: &tracehunt_attribution::Evidence) -> String {
    use tracehunt_attribution::MatchKind;
    match e.match_kind {
        MatchKind::Exact => "exact".to_owned(),
        MatchKind::SubTechnique => format!("via sub-technique {}", e.matched_id),
        MatchKind::Parent => format!("via parent {}", e.matched_id),
        MatchKind::Tag => "group tag".to_owned(),
        MatchKind::Ioc => "IOC".to_owned(),
    }
}

/// An attribution's verdict and its top `top` candidates (0 = all the attribution holds)
/// with their evidence.
pub fn write_attribution_body<W: Write>(
    w: &mut W,
    a: &Attribution,
    top: usize,
) -> std::io::Result<()> {
    writeln!(w, "Verdict: {}", a.reason)?;
    if let Some(line) = state_line(a) {
        writeln!(w, "{line}")?;
    }
    for c in a.candidates.iter().take(shown(top)) {
        let aliases: Vec<&str> = c
            .aliases
            .iter()
            .filter(|x| **x != c.name)
            .map(String::as_str)
            .take(4)
            .collect();
        writeln!(
            w,
            "  {}. {} {}{}  score {:.3}  confidence {} ({})  ({} matched {}, {} distinctive)",
            c.rank,
            c.id,
            c.name,
            if aliases.is_empty() {
                String::new()
            } else {
                format!(" ({})", aliases.join(", "))
            },
            c.score,
            c.confidence,
            c.confidence_label,
            c.matched_count,
            plural(
                c.matched_count as u64,
                "technique/software",
                "techniques/software"
            ),
            c.distinctive_matches
        )?;
        let mut ev: Vec<_> = c.matched.iter().collect();
        ev.sort_by(|x, y| y.weight.total_cmp(&x.weight));
        for e in ev.iter().take(4) {
            let groups = e.groups_using as u64;
            let events = e.events;
            // Techniques an analyst typed (`attribute --techniques`) come
            // from no rule and no event (fresh-user finding: "← - [0 events]").
            let from = if e.rule_titles.is_empty() && events == 0 {
                "(given)".to_owned()
            } else {
                format!(
                    "{} [{} {}]",
                    rule_list(&e.rule_titles, 3),
                    events,
                    plural(events, "event", "events")
                )
            };
            let used = match e.kind {
                EvidenceKind::GroupTag => "group named by the rules".to_owned(),
                EvidenceKind::Software => format!(
                    "software, used by {} {}",
                    groups,
                    plural(groups, "group", "groups")
                ),
                _ => format!("used by {} {}", groups, plural(groups, "group", "groups")),
            };
            writeln!(
                w,
                "       {} {} ({used}; {}){} ← {from}",
                e.id,
                e.name,
                how_matched(e),
                via(e)
            )?;
        }
    }
    Ok(())
}
