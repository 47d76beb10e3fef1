//! Host groups: detections of one host split into sessions by time, kept as
//! aggregates only.

use crate::entity::EntityKind;
use crate::incident::{self, Grouping};
use foldhash::{HashMap, HashSet};

/// The host id meaning "no host"; such detections form the host
/// [`NO_HOST_NAME`].
pub const NO_HOST: u32 = u32::MAX;

/// The host name given to detections without a host (and to host ids that
/// [`Names::host`] does not know).
pub const NO_HOST_NAME: &str = "(no host)";

pub(crate) const NANOS: i128 = 1_000_000_000;

/// Grouping thresholds. All durations are in seconds; negative values act as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest gap between consecutive detections of one host inside one
    /// host group, and largest distance between the time ranges of two host
    /// groups merged by a shared entity (default 3600 s).
    pub session_gap_secs: i64,
    /// Largest span from a host group's first detection to its last
    /// (default 86400 s): a longer run of activity is cut into several groups.
    pub max_span_secs: i64,
    /// An entity found in more than this many host groups is not used to
    /// merge (default 8): one domain controller, NAT address or an account
    /// seen everywhere must not merge everything.
    pub entity_ceiling: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            session_gap_secs: 3600,
            max_span_secs: 86_400,
            entity_ceiling: 8,
        }
    }
}

/// The names behind the caller's ids, asked for once per id by
/// [`Grouper::finish`].
///
/// The ids are the caller's interned strings. Their numeric values may be
/// arbitrary (they can depend on thread scheduling), so the grouping result
/// depends on them only through these names: two ids must not name the same
/// host, and each entity id names one (kind, value).
pub trait Names {
    /// The host name of id `id`, or `None` when it has none (then
    /// [`NO_HOST_NAME`] is used). Never asked for [`NO_HOST`].
    fn host(&self, id: u32) -> Option<&str>;
    /// The kind and normalised value of entity id `id` (as
    /// [`crate::extract`] produces them).
    fn entity(&self, id: u32) -> (EntityKind, &str);
    /// The rule's stable id (the Sigma rule `id`, or its title when it has
    /// none); it enters the incident id.
    fn rule_id(&self, rule: u32) -> &str;
}

/// Per-rule aggregate of a host group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleAgg {
    pub rule: u32,
    pub count: u64,
    /// Feed sequence number of the rule's first detection in the group.
    pub first_seq: u64,
}

/// One host group: aggregates only, never per-detection data.
#[derive(Debug)]
pub(crate) struct Group {
    pub host: u32,
    /// First and last detection time in nanoseconds since the Unix epoch;
    /// `None` for the host's untimed group.
    pub span: Option<(i128, i128)>,
    pub level: u8,
    pub detections: u64,
    pub rules: Vec<RuleAgg>,
    rule_pos: HashMap<u32, usize>,
    pub entities: HashSet<u32>,
}

impl Group {
    fn new(host: u32, time: Option<i128>) -> Self {
        Group {
            host,
            span: time.map(|t| (t, t)),
            level: 0,
            detections: 0,
            rules: Vec::new(),
            rule_pos: HashMap::default(),
            entities: HashSet::default(),
        }
    }

    fn add(&mut self, time: Option<i128>, rule: u32, level: u8, entities: &[u32], seq: u64) {
        if let (Some(t), Some((first, last))) = (time, self.span.as_mut()) {
            *first = (*first).min(t);
            *last = (*last).max(t);
        }
        self.level = self.level.max(level);
        self.detections += 1;
        match self.rule_pos.get(&rule) {
            Some(&i) => self.rules[i].count += 1,
            None => {
                self.rule_pos.insert(rule, self.rules.len());
                self.rules.push(RuleAgg {
                    rule,
                    count: 1,
                    first_seq: seq,
                });
            }
        }
        self.entities.extend(entities.iter().copied());
    }
}

/// Groups detections into incidents; fed one detection at a time with
/// [`Grouper::push`], then turned into a [`Grouping`] by [`Grouper::finish`].
///
/// Memory: one aggregate per host group (first/last time, level, count,
/// per-rule counts, the set of entity ids) plus one open group per host;
/// nothing per detection.
#[derive(Debug)]
pub struct Grouper {
    gap_ns: i128,
    span_ns: i128,
    ceiling: usize,
    pub(crate) groups: Vec<Group>,
    open: HashMap<u32, usize>,
    untimed: HashMap<u32, usize>,
    seq: u64,
}

impl Grouper {
    /// A grouper with thresholds `cfg`.
    pub fn new(cfg: Config) -> Self {
        Grouper {
            gap_ns: i128::from(cfg.session_gap_secs.max(0)) * NANOS,
            span_ns: i128::from(cfg.max_span_secs.max(0)) * NANOS,
            ceiling: cfg.entity_ceiling,
            groups: Vec::new(),
            open: HashMap::default(),
            untimed: HashMap::default(),
            seq: 0,
        }
    }

    /// Feeds one detection.
    ///
    /// - `time`: (Unix seconds, nanoseconds) of the event, `None` when it has
    ///   none; a time chrono cannot represent counts as `None`.
    ///   Detections arrive in time order, `None` times last, after all timed
    ///   ones (the order `hunt` writes them). A detection older than the
    ///   host's previous one is accepted and widens its group (no error), but
    ///   then the split into groups depends on the feed order.
    /// - `host`: the caller's host id, [`NO_HOST`] for none.
    /// - `rule`: the caller's rule number ([`Names::rule_id`] names it).
    /// - `level`: 0 informational, 1 low, 2 medium, 3 high, 4 critical.
    /// - `entities`: the caller's entity ids ([`Names::entity`] names them).
    ///
    /// A timed detection joins the host's open group when the gap to the
    /// host's previous detection is at most `session_gap_secs` and the span
    /// from the group's first detection is at most `max_span_secs`;
    /// otherwise it opens a new group. Untimed detections form one group per
    /// host.
    pub fn push(
        &mut self,
        time: Option<(i64, u32)>,
        host: u32,
        rule: u32,
        level: u8,
        entities: &[u32],
    ) {
        let t = time.and_then(|(s, n)| to_nanos(s, n));
        self.seq += 1;
        let idx = match t {
            Some(t) => match self.open.get(&host) {
                Some(&g) if self.fits(g, t) => g,
                _ => {
                    self.groups.push(Group::new(host, Some(t)));
                    self.open.insert(host, self.groups.len() - 1);
                    self.groups.len() - 1
                }
            },
            None => match self.untimed.get(&host) {
                Some(&g) => g,
                None => {
                    self.groups.push(Group::new(host, None));
                    self.untimed.insert(host, self.groups.len() - 1);
                    self.groups.len() - 1
                }
            },
        };
        self.groups[idx].add(t, rule, level, entities, self.seq);
    }

    /// True when a detection at `t` continues the open group `g`.
    fn fits(&self, g: usize, t: i128) -> bool {
        let Some((first, last)) = self.groups[g].span else {
            return false;
        };
        let gap = t - last;
        let span = last.max(t) - first.min(t);
        gap <= self.gap_ns && span <= self.span_ns
    }

    /// Merges host groups by shared rare entities and builds the incidents;
    /// see [`Grouping`] for what it holds and [`crate::Incident::id`] for
    /// the id recipe. `names` is asked for the name of every host, entity and
    /// rule id seen.
    pub fn finish(self, names: &dyn Names) -> Grouping {
        incident::build(self.groups, self.gap_ns, self.ceiling, names)
    }
}

/// Nanoseconds since the Unix epoch, or `None` outside chrono's range.
fn to_nanos(secs: i64, nanos: u32) -> Option<i128> {
    let n = i128::from(secs) * NANOS + i128::from(nanos);
    from_nanos(n).map(|_| n)
}

/// The UTC time of `n` nanoseconds since the Unix epoch.
pub(crate) fn from_nanos(n: i128) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs = i64::try_from(n.div_euclid(NANOS)).ok()?;
    let sub = u32::try_from(n.rem_euclid(NANOS)).ok()?;
    chrono::DateTime::from_timestamp(secs, sub)
}
