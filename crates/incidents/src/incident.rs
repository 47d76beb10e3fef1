//! Merging host groups by shared rare entities into incidents, their
//! content-derived ids, and the (host, time) → incident lookup.

use crate::entity::EntityKind;
use crate::group::{from_nanos, Group, Names, NANOS, NO_HOST, NO_HOST_NAME};
use chrono::{DateTime, SecondsFormat, Utc};
use foldhash::HashMap;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Most entities (and users) listed per incident.
pub const ENTITY_CAP: usize = 200;

/// One incident: host groups joined by shared rare entities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// `inc-` + the first 16 lowercase hex digits of the SHA-256 of this
    /// UTF-8 text (lines end with `\n`; `<len>` is the byte length of the
    /// string after the colon, in decimal):
    ///
    /// ```text
    /// tracehunt-incident-v1
    /// host <len>:<host name>          one line per host, hosts sorted by bytes
    /// first <time>                    RFC 3339 UTC with 9 fraction digits and `Z`
    /// last <time>                     (2020-10-21T11:28:11.220000000Z), or `-` untimed
    /// rule <len>:<rule id> <count>    one line per distinct rule id, sorted by bytes;
    ///                                 counts of rule numbers with the same id summed
    /// ```
    ///
    /// So the id depends on content only, never on the caller's numbering.
    /// Should two incidents of one grouping get the same digest, the later
    /// one (in incident order) gets `-2`, `-3`… appended.
    pub id: String,
    /// Host names, sorted, distinct ([`crate::NO_HOST_NAME`] for no host).
    pub hosts: Vec<String>,
    /// Time of the first detection (UTC), `None` for an untimed incident.
    pub first: Option<DateTime<Utc>>,
    /// Time of the last detection (UTC), `None` for an untimed incident.
    pub last: Option<DateTime<Utc>>,
    /// Highest detection level: 0 informational … 4 critical.
    pub max_level: u8,
    /// Number of detections fed for this incident.
    pub detections: u64,
    /// (rule number, detections) per rule, in first-seen (feed) order.
    pub rules: Vec<(u32, u64)>,
    /// The entities of its detections, sorted by (kind, value), distinct,
    /// at most [`ENTITY_CAP`] (the first ones in that order).
    pub entities: Vec<(EntityKind, String)>,
    /// The [`EntityKind::User`] entity values, sorted, at most [`ENTITY_CAP`].
    pub users: Vec<String>,
}

/// The result of [`crate::Grouper::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    /// Incidents sorted by (first time, id); untimed ones last, by id.
    pub incidents: Vec<Incident>,
    /// Number of host groups formed by the time split.
    pub host_groups: usize,
    /// Number of merges that joined two different incidents (host groups
    /// minus incidents).
    pub merges: usize,
    /// Number of distinct entities not used to merge because they occur in
    /// more than `entity_ceiling` host groups.
    pub entities_over_ceiling: usize,
    lookup: BTreeMap<String, HostIndex>,
    gap_ns: i128,
}

/// One host's groups for [`Grouping::incident_of`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct HostIndex {
    /// (first, last, incident) of each timed group, sorted by first time
    /// (the groups of one host do not overlap).
    timed: Vec<(i128, i128, usize)>,
    untimed: Option<usize>,
}

impl Grouping {
    /// The index in [`Grouping::incidents`] of the incident holding `host`'s
    /// group whose time range contains `time`; a time within
    /// `session_gap_secs` after a group's last detection also counts (the
    /// latest group starting at or before `time` is asked). `host` `None`
    /// means [`crate::NO_HOST_NAME`]; `time` `None` asks for the host's
    /// untimed group. `None` when no group matches (unknown host, a time
    /// before or between the host's groups).
    ///
    /// For an IOC hit or a stored detection: O(log groups of the host).
    pub fn incident_of(&self, host: Option<&str>, time: Option<DateTime<Utc>>) -> Option<usize> {
        let index = self.lookup.get(host.unwrap_or(NO_HOST_NAME))?;
        let Some(time) = time else {
            return index.untimed;
        };
        let t = i128::from(time.timestamp()) * NANOS + i128::from(time.timestamp_subsec_nanos());
        let after = index.timed.partition_point(|&(first, _, _)| first <= t);
        let &(_, last, incident) = index.timed.get(after.checked_sub(1)?)?;
        (t <= last + self.gap_ns).then_some(incident)
    }
}

/// Union-find with path halving; the smaller index becomes the root.
struct Sets(Vec<usize>);

impl Sets {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    /// Joins the sets of `a` and `b`; true when they were different.
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        self.0[hi] = lo;
        true
    }
}

/// True when two host groups may merge over a shared entity: different
/// hosts, and both untimed or both timed with ranges at most `gap_ns` apart.
/// Groups of the same host are kept apart: the time split (gap or
/// `max_span_secs`) separated them on purpose.
fn compatible(a: &Resolved<'_>, b: &Resolved<'_>, gap_ns: i128) -> bool {
    if a.host == b.host {
        return false;
    }
    match (a.span, b.span) {
        (None, None) => true,
        (Some((f1, l1)), Some((f2, l2))) => f1.max(f2) - l1.min(l2) <= gap_ns,
        _ => false,
    }
}

/// A host group with its host named.
struct Resolved<'n> {
    host: &'n str,
    span: Option<(i128, i128)>,
    group: Group,
}

/// Builds the [`Grouping`] from the host groups of a [`crate::Grouper`].
pub(crate) fn build(
    groups: Vec<Group>,
    gap_ns: i128,
    ceiling: usize,
    names: &dyn Names,
) -> Grouping {
    let mut groups: Vec<Resolved<'_>> = groups
        .into_iter()
        .map(|group| Resolved {
            host: match group.host {
                NO_HOST => NO_HOST_NAME,
                id => names.host(id).unwrap_or(NO_HOST_NAME),
            },
            span: group.span,
            group,
        })
        .collect();
    // Canonical order: timed by (first, host, last), then untimed by host.
    groups.sort_by(|a, b| {
        (a.span.is_none(), a.span.map(|s| s.0), a.host, a.span).cmp(&(
            b.span.is_none(),
            b.span.map(|s| s.0),
            b.host,
            b.span,
        ))
    });
    let host_groups = groups.len();
    // Entity → the host groups (positions in canonical order) holding it.
    let mut holders: HashMap<(EntityKind, &str), Vec<usize>> = HashMap::default();
    for (pos, g) in groups.iter().enumerate() {
        for &e in &g.group.entities {
            let list = holders.entry(names.entity(e)).or_default();
            if list.last() != Some(&pos) {
                list.push(pos);
            }
        }
    }
    let mut sets = Sets((0..host_groups).collect());
    let (mut merges, mut over) = (0, 0);
    for list in holders.values() {
        if list.len() > ceiling {
            over += 1;
            continue;
        }
        for (i, &a) in list.iter().enumerate() {
            for &b in &list[i + 1..] {
                if compatible(&groups[a], &groups[b], gap_ns) && sets.union(a, b) {
                    merges += 1;
                }
            }
        }
    }
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for pos in 0..host_groups {
        members.entry(sets.find(pos)).or_default().push(pos);
    }
    let mut incidents: Vec<(Incident, Vec<usize>)> = members
        .into_values()
        .map(|m| (incident(&groups, &m, names), m))
        .collect();
    incidents.sort_by(|(a, _), (b, _)| {
        let key = |i: &Incident| (i.first.is_none(), i.first, i.id.clone(), i.hosts.clone());
        key(a).cmp(&key(b))
    });
    unique_ids(&mut incidents);
    let mut lookup: BTreeMap<String, HostIndex> = BTreeMap::new();
    for (n, (_, m)) in incidents.iter().enumerate() {
        for &pos in m {
            let g = &groups[pos];
            let index = lookup.entry(g.host.to_owned()).or_default();
            match g.span {
                Some((first, last)) => index.timed.push((first, last, n)),
                None => index.untimed = Some(n),
            }
        }
    }
    for index in lookup.values_mut() {
        index.timed.sort_unstable();
    }
    Grouping {
        incidents: incidents.into_iter().map(|(i, _)| i).collect(),
        host_groups,
        merges,
        entities_over_ceiling: over,
        lookup,
        gap_ns,
    }
}

/// Appends `-2`, `-3`… to repeated ids, in incident order.
fn unique_ids(incidents: &mut [(Incident, Vec<usize>)]) {
    let mut seen: HashMap<String, usize> = HashMap::default();
    for (inc, _) in incidents.iter_mut() {
        let n = seen.entry(inc.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            inc.id = format!("{}-{n}", inc.id);
        }
    }
}

/// The incident made of the host groups at `members`.
fn incident(groups: &[Resolved<'_>], members: &[usize], names: &dyn Names) -> Incident {
    let mut hosts = BTreeSet::new();
    let mut span: Option<(i128, i128)> = None;
    let (mut max_level, mut detections) = (0, 0);
    let mut rules: HashMap<u32, (u64, u64)> = HashMap::default();
    let mut entities: BTreeSet<(EntityKind, &str)> = BTreeSet::new();
    for &pos in members {
        let g = &groups[pos];
        hosts.insert(g.host);
        if let Some((f, l)) = g.span {
            span = Some(span.map_or((f, l), |(a, b)| (a.min(f), b.max(l))));
        }
        max_level = max_level.max(g.group.level);
        detections += g.group.detections;
        for r in &g.group.rules {
            let e = rules.entry(r.rule).or_insert((0, r.first_seq));
            e.0 += r.count;
            e.1 = e.1.min(r.first_seq);
        }
        entities.extend(g.group.entities.iter().map(|&e| names.entity(e)));
    }
    let mut rules: Vec<(u32, u64, u64)> = rules.into_iter().map(|(r, (c, s))| (r, c, s)).collect();
    rules.sort_unstable_by_key(|&(_, _, seq)| seq);
    let first = span.and_then(|s| from_nanos(s.0));
    let last = span.and_then(|s| from_nanos(s.1));
    let hosts: Vec<String> = hosts.into_iter().map(str::to_owned).collect();
    let id = incident_id(&hosts, first, last, &rules, names);
    let users = entities
        .iter()
        .filter(|(k, _)| *k == EntityKind::User)
        .take(ENTITY_CAP)
        .map(|(_, v)| (*v).to_owned())
        .collect();
    Incident {
        id,
        hosts,
        first,
        last,
        max_level,
        detections,
        rules: rules.into_iter().map(|(r, c, _)| (r, c)).collect(),
        entities: entities
            .into_iter()
            .take(ENTITY_CAP)
            .map(|(k, v)| (k, v.to_owned()))
            .collect(),
        users,
    }
}

/// The id recipe documented on [`Incident::id`].
fn incident_id(
    hosts: &[String],
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    rules: &[(u32, u64, u64)],
    names: &dyn Names,
) -> String {
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        )
    };
    let mut text = String::from("tracehunt-incident-v1\n");
    for h in hosts {
        text += &format!("host {}:{h}\n", h.len());
    }
    text += &format!("first {}\nlast {}\n", time(first), time(last));
    let mut by_id: BTreeMap<&str, u64> = BTreeMap::new();
    for &(rule, count, _) in rules {
        *by_id.entry(names.rule_id(rule)).or_insert(0) += count;
    }
    for (rule, count) in by_id {
        text += &format!("rule {}:{rule} {count}\n", rule.len());
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut id = String::from("inc-");
    for b in digest.iter().take(8) {
        id += &format!("{b:02x}");
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N;
    impl Names for N {
        fn host(&self, _: u32) -> Option<&str> {
            None
        }
        fn entity(&self, _: u32) -> (EntityKind, &str) {
            (EntityKind::User, "")
        }
        fn rule_id(&self, _: u32) -> &str {
            "r1"
        }
    }

    /// The recipe, recomputed by hand with an independent SHA-256 (the
    /// `sha256sum` of the text below starts 3048121c0ea6ec4e; computed with coreutils).
    #[test]
    fn id_recipe_text() {
        let t = DateTime::from_timestamp(1_603_279_691, 220_000_000);
        let id = incident_id(&["WS5".to_owned()], t, t, &[(0, 3, 1)], &N);
        let text = "tracehunt-incident-v1\nhost 3:WS5\nfirst 2020-10-21T11:28:11.220000000Z\n\
                    last 2020-10-21T11:28:11.220000000Z\nrule 2:r1 3\n";
        let digest = Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(id, format!("inc-{hex}"));
        assert_eq!(id, EXPECTED_ID);
    }

    const EXPECTED_ID: &str = "inc-3048121c0ea6ec4e";
}
