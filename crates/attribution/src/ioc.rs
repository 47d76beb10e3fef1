//! IOC evidence: an indicator of compromise that a feed ties to an actor (MISP galaxy cluster or
//! tag, STIX `indicates` relationship, CSV `actor` column, maltrail `apt_*.txt` file) and that
//! was seen in the logs.
//!
//! **Weight: a likelihood ratio from measured rates** (issue #18 item 4; it replaced a fixed
//! 30-nat bonus under which one hash of a one-line CSV feed read 99 %). Each IOC hit `i` of type
//! `t` (hash, domain, url, ip), tied by the loaded feeds to `k_i` actors, has
//!
//! ```text
//! LR_i = 1 / (k_i · (p_t + s))
//! ```
//!
//! * `p_t` — the **false-hit rate** of type `t`: the share of the reference feeds' indicators of
//!   that type that hit at least one event of the corpora's benign-or-lab logs (all of
//!   `../shared/corpora`: Mordor, EVTX samples, Linux, cloud, Zeek and web logs — none of which
//!   is an intrusion by a feed's actor), `(hit + 0.5) / (n + 1)` so that zero hits among few
//!   indicators is not read as zero ([`IocRates::false_hit`]).
//! * `s` — the **multi-actor rate** of the hit's feed: the share of the actor-tied values that
//!   the loaded feeds of its format list under more than one actor, `(multi + 0.5) /
//!   (values + 1)` ([`IocObservation::multi_actor_rate`], counts from
//!   `IocSet::multi_actor_counts`), never below the reference feeds' rate for that format
//!   ([`IocRates::multi_actor`]: maltrail's `apt_*.txt` trails, ESET's MISP events). It is the
//!   measured chance that an actor label is not exclusive (shared or re-used infrastructure
//!   and tools, disputed attribution), and it is large for a feed too small to measure it: a
//!   one-line feed gives `s` = 0.25, so its IOC moves the odds by under 4.
//! * `k_i` — the actors this hit's value is listed under: its support is split `k` ways.
//!
//! The reference numbers, with the command that measured them, are data
//! (`data/ioc-rates.json`, [`IocRates::builtin`]; `scripts/measure-ioc-rates.py` remeasures
//! them, the `tracehunt-ioc` test `maltrail.rs` checks the maltrail multi-actor count). A
//! single indicator multiplies its actor's odds by at most `1/s` whatever its type: how far one
//! IOC from one feed can carry a group from the closed-world prior (1 in ~170) is decided by
//! how large and exclusive a feed was measured to be.
//!
//! Several IOCs of one group are correlated (one report lists them together), so they add
//! logarithmically: the group's IOC log-likelihood ratio is `max_i ln LR_i + ln(n)` for `n`
//! distinct values. It enters the candidate's score as `T · ln LR` (`T` the softmax
//! temperature), so the shown probability's odds move by exactly `LR`: a separate, documented
//! input next to the technique/software model, not one of its fitted weights. Each IOC is one
//! [`Evidence`] item of kind [`EvidenceKind::Ioc`] whose weights add up to the group's
//! `ioc_bonus`; `groups_using` is `k_i` and `idf` holds `ln LR_i`.
//!
//! **Actor resolution** ([`resolve_actor`]): the ATT&CK id when the feed gives one
//! ([`IocObservation::attack_id`]), else the name as an ATT&CK group name or alias, else each
//! of [`IocObservation::aliases`] in order (feed synonyms, MISP galaxy ATT&CK ids), each also
//! compared ignoring case, spaces and punctuation (`apt 12` = `APT12`). Names that resolve to
//! no ATT&CK group are listed in [`crate::Attribution::unresolved`] as `ioc-actor:<name>`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tracehunt_attack::{ActorKb, Group};

use crate::{Candidate, Evidence, EvidenceKind, MatchKind};

/// The measured rates as shipped: `data/ioc-rates.json` (counts, the command that measured
/// them and the corpora/feeds they came from).
pub const IOC_RATES_JSON: &str = include_str!("../data/ioc-rates.json");

/// One measured proportion: `hits` of `n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Count {
    /// Indicators (or values) measured.
    pub n: u64,
    /// Of them, those that hit a benign event (false-hit rate) or are listed under more than
    /// one actor (multi-actor rate).
    pub hits: u64,
}

impl Count {
    /// `(hits + 0.5) / (n + 1)`: the proportion with half a pseudo-count each way (Jeffreys
    /// prior mean), so that 0 of few is not 0.
    pub fn rate(self) -> f64 {
        (self.hits as f64 + 0.5) / (self.n as f64 + 1.0)
    }
}

/// Measured rates behind the IOC likelihood ratio (see the module docs).
///
/// JSON (`data/ioc-rates.json`): `{"measured_by": "…", "corpora": "…", "feeds": "…",
/// "events": 61234, "multi_actor": {"maltrail": {"n": 12432, "hits": 11}, …}, "false_hit":
/// {"domain": {"n": 8000, "hits": 3}, …}, "by_feed": {…}}` (`by_feed` keeps the per-format counts for the record;
/// the ratio uses the pooled ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IocRates {
    /// How the numbers were measured (the command).
    pub measured_by: String,
    /// The logs the false hits were counted on.
    pub corpora: String,
    /// The reference feeds.
    pub feeds: String,
    /// Events read from the corpora.
    pub events: u64,
    /// Per reference feed format (`maltrail`, `misp`): actor-tied values, and those listed
    /// under more than one actor.
    pub multi_actor: BTreeMap<String, Count>,
    /// Per IOC type (`md5`, `sha1`, `sha256`, `sha512`, `domain`, `url`, `ip`): indicators of
    /// the reference feeds, and those that hit at least one corpus event.
    pub false_hit: BTreeMap<String, Count>,
    /// The same counts per feed format and type, for the record.
    #[serde(default)]
    pub by_feed: BTreeMap<String, BTreeMap<String, Count>>,
}

impl IocRates {
    /// The shipped measurement ([`IOC_RATES_JSON`]).
    pub fn builtin() -> &'static IocRates {
        static R: OnceLock<IocRates> = OnceLock::new();
        R.get_or_init(|| {
            serde_json::from_str(IOC_RATES_JSON).expect("data/ioc-rates.json is valid")
        })
    }

    /// The reference multi-actor rate of a feed format, 0 for a format not measured (its own
    /// loaded counts then decide, [`IocObservation::multi_actor_rate`]).
    pub fn multi_actor(&self, feed_format: &str) -> f64 {
        self.multi_actor.get(feed_format).map_or(0.0, |c| c.rate())
    }

    /// `p_t`: the false-hit rate of IOC type `t`; for a type not measured, the highest
    /// measured rate.
    pub fn false_hit(&self, ioc_type: &str) -> f64 {
        self.false_hit.get(ioc_type).map_or_else(
            || {
                self.false_hit
                    .values()
                    .map(|c| c.rate())
                    .fold(0.5, f64::max)
                    .min(1.0)
            },
            |c| c.rate(),
        )
    }

    /// `LR = 1 / (k · (p_t + s))` for a hit of type `ioc_type` listed under `k` actors
    /// (`k` 0 is read as 1) whose feed's multi-actor rate is `s`.
    pub fn likelihood_ratio(&self, ioc_type: &str, k: usize, s: f64) -> f64 {
        1.0 / (k.max(1) as f64 * (self.false_hit(ioc_type) + s))
    }
}

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
    /// Where the IOC comes from: the feed entries that tie it to *this* actor (feed, MISP
    /// event uuid and title, STIX indicator id, CSV/maltrail line and references).
    #[serde(default)]
    pub source: String,
    /// Feed format of those entries (`maltrail`, `misp`, `stix`, `csv`, `list`), empty when
    /// unknown.
    #[serde(default)]
    pub feed_format: String,
    /// Actor-tied values the loaded feeds of that format hold (the multi-actor measurement's
    /// sample; 0 = not measured).
    #[serde(default)]
    pub feed_values: u64,
    /// Of them, those listed under more than one actor.
    #[serde(default)]
    pub feed_multi_actor: u64,
    /// Events in which the IOC was found.
    #[serde(default)]
    pub events: u64,
}

impl IocObservation {
    /// `s` for this observation: the multi-actor share of its feed format measured on the
    /// loaded feeds (`(multi + 0.5) / (values + 1)`), never below the reference measurement
    /// of that format ([`IocRates::multi_actor`]); a one-line feed gives 0.25.
    pub fn multi_actor_rate(&self, rates: &IocRates) -> f64 {
        let own = Count {
            n: self.feed_values,
            hits: self.feed_multi_actor,
        }
        .rate();
        own.max(rates.multi_actor(&self.feed_format))
    }
}

/// Lower-case letters and digits only: `APT 12` = `apt12`.
fn key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A group whose name or alias equals `name` ignoring case, spaces and punctuation (lowest id
/// on a tie); `None` for names under 3 such characters.
fn group_by_key<'kb>(kb: &'kb ActorKb, name: &str) -> Option<&'kb Group> {
    let k = key(name);
    if k.len() < 3 {
        return None;
    }
    kb.groups()
        .values()
        .filter(|g| key(&g.name) == k || g.aliases.iter().any(|a| key(a) == k))
        .min_by(|a, b| a.id.cmp(&b.id))
}

/// The ATT&CK group an IOC observation points at (see the module docs for the order tried).
pub fn resolve_actor<'kb>(kb: &'kb ActorKb, o: &IocObservation) -> Option<&'kb Group> {
    o.attack_id
        .as_deref()
        .and_then(|id| kb.group(id))
        .or_else(|| kb.group_by_name_or_alias(&o.actor))
        .or_else(|| group_by_key(kb, &o.actor))
        .or_else(|| {
            o.aliases
                .iter()
                .find_map(|a| kb.group_by_name_or_alias(a).or_else(|| group_by_key(kb, a)))
        })
}

/// IOC evidence per ATT&CK group id, each item weighted `T · ln LR_i` (`T` = `temperature`),
/// the items of a group scaled so that they add up to its [`bonus`].
pub(crate) fn by_group(
    kb: &ActorKb,
    iocs: &[IocObservation],
    temperature: f64,
    unresolved: &mut Vec<String>,
) -> BTreeMap<String, Vec<Evidence>> {
    let rates = IocRates::builtin();
    // (group id, ioc type, value) → evidence, merged over repeated observations.
    let mut merged: BTreeMap<(String, String, String), Evidence> = BTreeMap::new();
    // (group, type, value) → the lowest multi-actor rate among its observations.
    let mut s_of: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    // (type, value) → the groups (or unresolved names) it is listed under.
    let mut listed_under: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for o in iocs {
        let who = resolve_actor(kb, o);
        let l = listed_under
            .entry((o.ioc_type.clone(), o.value.clone()))
            .or_default();
        let tag = who.map_or_else(|| format!("?{}", o.actor), |g| g.id.clone());
        if !l.contains(&tag) {
            l.push(tag);
        }
        let Some(g) = who else {
            let u = format!("ioc-actor:{}", o.actor);
            if !unresolved.contains(&u) {
                unresolved.push(u);
            }
            continue;
        };
        let key3 = (g.id.clone(), o.ioc_type.clone(), o.value.clone());
        let s = o.multi_actor_rate(rates);
        s_of.entry(key3.clone())
            .and_modify(|x| *x = x.min(s))
            .or_insert(s);
        let e = merged.entry(key3).or_insert_with(|| Evidence {
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
        let s = s_of
            .get(&(gid.clone(), t.clone(), v.clone()))
            .copied()
            .unwrap_or(0.5);
        let k = listed_under.get(&(t.clone(), v)).map_or(1, Vec::len);
        e.groups_using = k;
        e.idf = rates.likelihood_ratio(&t, k, s).ln();
        out.entry(gid).or_default().push(e);
    }
    let t = if temperature > 0.0 { temperature } else { 1.0 };
    for ev in out.values_mut() {
        let total = t * group_log_lr(ev);
        let raw: f64 = ev.iter().map(|e| e.idf.max(0.0)).sum();
        let n = ev.len() as f64;
        for e in ev.iter_mut() {
            e.weight = if raw > 0.0 {
                total * e.idf.max(0.0) / raw
            } else {
                total / n
            };
        }
    }
    out
}

/// `max_i ln LR_i + ln(n)` over a group's `n` IOC evidence items (their `idf` holds
/// `ln LR_i`); 0 for none.
fn group_log_lr(ev: &[Evidence]) -> f64 {
    if ev.is_empty() {
        return 0.0;
    }
    let best = ev.iter().map(|e| e.idf).fold(f64::NEG_INFINITY, f64::max);
    best + (ev.len() as f64).ln()
}

/// The score a group's IOC evidence adds: the sum of its items' weights (`T · (max_i ln LR_i
/// + ln n)`), 0 without IOC evidence.
pub(crate) fn bonus(ev: Option<&Vec<Evidence>>) -> f64 {
    ev.map_or(0.0, |v| v.iter().map(|e| e.weight).sum())
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
