//! Aggregate counts over every stored detection: what a report's summary shows (detections
//! and unique detections per level, per day, top hosts per level, top rules), in the manner of
//! Hayabusa's HTML summary.

use std::collections::BTreeMap;

use crate::{Result, Store};

/// Detections of one level.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LevelCount {
    /// Sigma level (`critical`, `high`, `medium`, `low`, `informational`, or the rule's text).
    pub level: String,
    /// Stored detections (one per rule and event).
    pub detections: u64,
    /// Distinct rules among them (Hayabusa's "unique detections").
    pub rules: u64,
}

/// Detections of one level on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Level.
    pub level: String,
    /// Detections.
    pub detections: u64,
}

/// One host's detections of one level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostCount {
    /// Level.
    pub level: String,
    /// Host name as logged.
    pub host: String,
    /// Detections.
    pub detections: u64,
}

/// One rule's detections.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleTotal {
    /// Rule id.
    pub rule_id: String,
    /// Title of the rule's first stored version (by content hash), if stored.
    pub title: Option<String>,
    /// Level of these detections (a rule whose versions had different levels has one entry
    /// per level).
    pub level: String,
    /// Detections.
    pub detections: u64,
    /// Distinct hosts of these detections.
    pub hosts: u64,
}

/// One stored detection at level high or critical ([`Store::severe_detections`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SevereDetection {
    /// Event time (RFC 3339 UTC text as stored), `None` when the event had none.
    pub time: Option<String>,
    /// `critical` or `high`.
    pub level: String,
    /// Host, if logged.
    pub host: Option<String>,
    /// Rule title (its first stored version's), else the rule id.
    pub rule: String,
}

/// Every stored detection, aggregated ([`Store::detection_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DetectionStats {
    /// Stored detections.
    pub detections: u64,
    /// Of which without a time.
    pub untimed: u64,
    /// Per level, most detections first.
    pub levels: Vec<LevelCount>,
    /// Per day and level, by day.
    pub days: Vec<DayCount>,
    /// The `top` hosts of each level, most detections first.
    pub top_hosts: Vec<HostCount>,
    /// The `top` rules of each level, most detections first (then by id).
    pub top_rules: Vec<RuleTotal>,
}

impl Store {
    /// Counts over all stored detections, keeping `top` hosts per level and `top` rules.
    /// Errors: [`crate::StoreError::Sqlite`], [`crate::StoreError::Corrupt`].
    pub fn detection_stats(&self, top: usize) -> Result<DetectionStats> {
        let levels = self.rows(
            "count detections per level",
            "SELECT level, count(*), count(DISTINCT rule_id) FROM detections \
             GROUP BY level ORDER BY 2 DESC, level",
            [],
            |c| {
                Ok(LevelCount {
                    level: c.get(0, "detections.level")?,
                    detections: c.uint(1, "count")?,
                    rules: c.uint(2, "count")?,
                })
            },
        )?;
        let untimed = self.rows(
            "count untimed detections",
            "SELECT count(*) FROM detections WHERE time IS NULL",
            [],
            |c| c.uint(0, "count"),
        )?;
        let days = self.rows(
            "count detections per day",
            "SELECT substr(time, 1, 10), level, count(*) FROM detections \
             WHERE time IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
            [],
            |c| {
                Ok(DayCount {
                    day: c.get(0, "detections.time")?,
                    level: c.get(1, "detections.level")?,
                    detections: c.uint(2, "count")?,
                })
            },
        )?;
        let hosts = self.rows(
            "count detections per host",
            "SELECT level, coalesce(host, ''), count(*) FROM detections \
             GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
            [],
            |c| {
                Ok(HostCount {
                    level: c.get(0, "detections.level")?,
                    host: c.get(1, "detections.host")?,
                    detections: c.uint(2, "count")?,
                })
            },
        )?;
        let mut kept: BTreeMap<String, usize> = BTreeMap::new();
        let mut top_hosts: Vec<HostCount> = hosts
            .into_iter()
            .filter(|h| {
                let n = kept.entry(h.level.clone()).or_default();
                *n += 1;
                *n <= top
            })
            .collect();
        top_hosts.sort_by(|a, b| b.detections.cmp(&a.detections).then(a.host.cmp(&b.host)));
        let top_rules = self.top_rules(top)?;
        Ok(DetectionStats {
            detections: levels.iter().map(|l| l.detections).sum(),
            untimed: untimed.first().copied().unwrap_or(0),
            levels,
            days,
            top_hosts,
            top_rules,
        })
    }

    /// The `top` rules of each level by detections: one grouped scan (a correlated subquery
    /// per rule would scan the table once per rule: no index leads with `rule_id`).
    fn top_rules(&self, top: usize) -> Result<Vec<RuleTotal>> {
        let per_level = self.rows(
            "count detections per rule",
            "SELECT rule_id, level, count(*), count(DISTINCT host) FROM detections \
             GROUP BY rule_id, level ORDER BY rule_id, level",
            [],
            |c| {
                Ok((
                    c.get::<String>(0, "detections.rule_id")?,
                    c.get::<String>(1, "detections.level")?,
                    c.uint(2, "count")?,
                    c.uint(3, "count")?,
                ))
            },
        )?;
        // One entry per (rule, level); the `top` of each level kept.
        let mut by_level: BTreeMap<String, Vec<RuleTotal>> = BTreeMap::new();
        for (rule_id, level, n, hosts) in per_level {
            by_level.entry(level.clone()).or_default().push(RuleTotal {
                rule_id,
                title: None,
                level,
                detections: n,
                hosts,
            });
        }
        let mut rules: Vec<RuleTotal> = Vec::new();
        for mut v in by_level.into_values() {
            v.sort_by(|a, b| {
                b.detections
                    .cmp(&a.detections)
                    .then(a.rule_id.cmp(&b.rule_id))
            });
            v.truncate(top);
            rules.extend(v);
        }
        rules.sort_by(|a, b| {
            b.detections
                .cmp(&a.detections)
                .then(a.rule_id.cmp(&b.rule_id))
        });
        for r in &mut rules {
            r.title = self
                .rows(
                    "rule title",
                    "SELECT title FROM rules WHERE rule_id = ?1 ORDER BY content_hash LIMIT 1",
                    [&r.rule_id],
                    |c| c.get::<String>(0, "rules.title"),
                )?
                .pop();
        }
        Ok(rules)
    }

    /// The first `limit` detections at level critical or high, by time (untimed last), and
    /// how many there are in all. Errors as [`Store::detection_stats`].
    pub fn severe_detections(&self, limit: usize) -> Result<(Vec<SevereDetection>, u64)> {
        let total = self.rows(
            "count severe detections",
            "SELECT count(*) FROM detections WHERE level IN ('critical', 'high')",
            [],
            |c| c.uint(0, "count"),
        )?;
        let rows = self.rows(
            "list severe detections",
            "SELECT d.time, d.level, d.host, \
               coalesce((SELECT r.title FROM rules r WHERE r.rule_id = d.rule_id \
                         ORDER BY r.content_hash LIMIT 1), d.rule_id) \
             FROM detections d WHERE d.level IN ('critical', 'high') \
             ORDER BY d.time IS NULL, d.time, d.id LIMIT ?1",
            [i64::try_from(limit).unwrap_or(i64::MAX)],
            |c| {
                Ok(SevereDetection {
                    time: c.get(0, "detections.time")?,
                    level: c.get(1, "detections.level")?,
                    host: c.get(2, "detections.host")?,
                    rule: c.get(3, "rules.title")?,
                })
            },
        )?;
        Ok((rows, total.first().copied().unwrap_or(0)))
    }
}
