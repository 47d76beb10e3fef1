//! `hunt --format html`: the counts the HTML report needs, gathered in one
//! streaming pass over the index (counts per rule, per hour and level, per
//! level and host, and the first [`SEVERE_ROWS`] high and critical
//! detections: nothing per detection beyond that), then the
//! [`HtmlReport`] built from them, the summary, the incidents and the
//! attribution.

use crate::incident::{IncidentReport, Incidents};
use crate::incident_out::level_word;
use crate::sink::Context;
use crate::{Entry, PipelineError, Scanned};
use std::collections::BTreeMap;
use std::io::Write;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{Attribution, Candidate, EvidenceKind};
use tracehunt_engine::Ruleset;
use tracehunt_report::html::{
    self, AttributionView, CandidateView, DetectionRow, HeatCell, HtmlReport, IncidentView,
    LevelCount, LevelTop, RuleView, SevereTable, SummaryView, TacticColumn, LEVELS,
};

/// High and critical detections listed in the report (the rest are counted).
pub const SEVERE_ROWS: usize = 500;
/// Incidents shown, most severe first (the rest are counted).
pub const INCIDENT_CARDS: usize = 200;
/// Entries per level in the top dates, hosts and rules.
const TOP: usize = 10;

/// ATT&CK Enterprise tactics in kill-chain order (the heatmap's columns;
/// other tactic names follow, sorted); ATT&CK v19's `stealth` and
/// `defense-impairment` (which SigmaHQ rules now tag instead of
/// `defense-evasion`) next to `defense-evasion`.
pub const TACTIC_ORDER: [&str; 16] = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "stealth",
    "defense-impairment",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// Position of a tactic in [`TACTIC_ORDER`]; `usize::MAX` for any other name.
pub fn tactic_rank(tactic: &str) -> usize {
    TACTIC_ORDER
        .iter()
        .position(|x| *x == tactic)
        .unwrap_or(usize::MAX)
}

/// The report's title, time and tool version (the hunt's output is
/// otherwise a pure function of its input: the caller passes the clock).
#[derive(Debug, Clone, Default)]
pub struct HtmlMeta {
    /// Page title.
    pub title: String,
    /// When the report was made (text); empty: not shown.
    pub generated_at: String,
    /// `tracehunt <version>`.
    pub tool_version: String,
}

/// What one pass over the detections counts.
#[derive(Default)]
struct Counts<'a> {
    by_rule: BTreeMap<usize, u64>,
    hours: BTreeMap<i64, [u64; 5]>,
    untimed: u64,
    hosts: BTreeMap<(u8, &'a str), u64>,
    severe: Vec<DetectionRow>,
    severe_total: u64,
}

impl<'a> Counts<'a> {
    fn add(&mut self, rs: &Ruleset, d: tracehunt_report::DetectionRef<'a>) {
        let rank = rs.rule(d.rule).level_rank.min(4);
        *self.by_rule.entry(d.rule).or_default() += 1;
        match d.timestamp {
            Some(t) => {
                let c = self
                    .hours
                    .entry(t.timestamp().div_euclid(3600))
                    .or_default();
                c[usize::from(rank)] += 1;
            }
            None => self.untimed += 1,
        }
        *self
            .hosts
            .entry((rank, d.computer.unwrap_or("-")))
            .or_default() += 1;
        if rank >= 3 {
            self.severe_total += 1;
            if self.severe.len() < SEVERE_ROWS {
                self.severe.push(DetectionRow {
                    time: d.timestamp.map(time_text).unwrap_or_default(),
                    level: level_word(rank).to_owned(),
                    host: d.computer.unwrap_or("-").to_owned(),
                    rule: rs.rule(d.rule).title.clone(),
                });
            }
        }
    }
}

fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Writes the HTML report of the detections `pass` yields (output order)
/// to `out`.
///
/// # Errors
/// Writing `out` failed.
pub(crate) fn write<W: Write>(
    out: &mut W,
    scanned: &Scanned,
    cx: &Context<'_>,
    pass: &mut crate::index::Merge<'_>,
) -> Result<(), PipelineError> {
    let mut counts = Counts::default();
    let contexts = scanned.contexts();
    for e in pass.by_ref() {
        let e: Entry = e;
        counts.add(cx.ruleset, e.view(contexts));
    }
    let report = build(cx, &counts);
    out.write_all(html::render(&report).as_bytes())?;
    Ok(())
}

fn build(cx: &Context<'_>, c: &Counts<'_>) -> HtmlReport {
    let rs = cx.ruleset;
    let default_meta = HtmlMeta {
        title: "tracehunt hunt report".to_owned(),
        ..HtmlMeta::default()
    };
    let meta = cx.html.unwrap_or(&default_meta);
    let mut report = HtmlReport {
        title: meta.title.clone(),
        generated_at: meta.generated_at.clone(),
        tool_version: meta.tool_version.clone(),
        summary: SummaryView::from_summary(cx.summary),
        levels: levels(rs, &c.by_rule),
        timeline: html::timeline_from_hours(&c.hours, c.untimed),
        top_dates: html::top_dates_from_hours(&c.hours, 3),
        top_hosts_per_level: top_hosts(&c.hosts),
        top_rules: top_rules(rs, &c.by_rule),
        heatmap: heatmap(cx.kb, rs, &c.by_rule),
        severe: SevereTable {
            rows: c.severe.clone(),
            total: c.severe_total,
        },
        ..HtmlReport::default()
    };
    if let Some(inc) = cx.incidents {
        report.incidents_total = inc.reports.len() as u64;
        report.incidents = inc
            .by_severity()
            .into_iter()
            .take(INCIDENT_CARDS)
            .map(|r| incident_view(rs, r))
            .collect();
        report.incidents_note = grouping_note(inc);
    }
    report.collection_attribution = Some(attribution_view(cx.attribution, 5));
    report
}

fn grouping_note(inc: &Incidents) -> String {
    let cfg = &inc.config;
    let counted = tracehunt_report::counted;
    let mut s = format!(
        "Grouped per host by a {} session gap and a {} span cap, merged across hosts by shared rare entities ({}, {}).",
        crate::incident_out::duration_text(cfg.session_gap_secs),
        crate::incident_out::duration_text(cfg.max_span_secs),
        counted(inc.merges as u64, "merge", "merges"),
        counted(
            inc.entities_over_ceiling as u64,
            "entity too common to merge",
            "entities too common to merge"
        ),
    );
    if inc.contexts_capped > 0 {
        s.push_str(&format!(
            " Entity table full (over {} host/entity combinations): incidents grouped by host and time only.",
            inc.context_cap
        ));
    }
    s
}

/// Detections and distinct rules per level, critical first (all five levels).
fn levels(rs: &Ruleset, by_rule: &BTreeMap<usize, u64>) -> Vec<LevelCount> {
    let mut v: [(u64, u64); 5] = [(0, 0); 5];
    for (&r, &n) in by_rule {
        let k = usize::from(rs.rule(r).level_rank.min(4));
        v[k].0 += n;
        v[k].1 += 1;
    }
    (0..5)
        .rev()
        .map(|k| LevelCount {
            level: LEVELS[k].to_owned(),
            detections: v[k].0,
            unique: v[k].1,
        })
        .collect()
}

/// The `TOP` largest of `items` (ties by label), as a [`LevelTop`].
fn top_of(level: usize, mut items: Vec<(String, u64)>) -> LevelTop {
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    items.truncate(TOP);
    LevelTop {
        level: LEVELS[level].to_owned(),
        items,
    }
}

fn top_hosts(hosts: &BTreeMap<(u8, &str), u64>) -> Vec<LevelTop> {
    (0..5usize)
        .rev()
        .filter_map(|k| {
            let items: Vec<(String, u64)> = hosts
                .iter()
                .filter(|((r, _), _)| usize::from(*r) == k)
                .map(|((_, h), &n)| ((*h).to_owned(), n))
                .collect();
            (!items.is_empty()).then(|| top_of(k, items))
        })
        .collect()
}

fn top_rules(rs: &Ruleset, by_rule: &BTreeMap<usize, u64>) -> Vec<LevelTop> {
    (0..5usize)
        .rev()
        .filter_map(|k| {
            let items: Vec<(String, u64)> = by_rule
                .iter()
                .filter(|(&r, _)| usize::from(rs.rule(r).level_rank.min(4)) == k)
                .map(|(&r, &n)| (rs.rule(r).title.clone(), n))
                .collect();
            (!items.is_empty()).then(|| top_of(k, items))
        })
        .collect()
}

/// The tactics a rule's technique `id` counts under: the rule's tactic tags
/// that ATT&CK lists for the technique; else every tactic ATT&CK lists for
/// it; else the rule's tactic tags.
fn tactics_of(kb: &ActorKb, rule_tactics: &[String], id: &str) -> Vec<String> {
    let kb_tactics = kb
        .technique(id)
        .map(|t| t.tactics.clone())
        .unwrap_or_default();
    let both: Vec<String> = rule_tactics
        .iter()
        .filter(|t| kb_tactics.contains(t))
        .cloned()
        .collect();
    if !both.is_empty() {
        both
    } else if !kb_tactics.is_empty() {
        kb_tactics
    } else {
        rule_tactics.to_vec()
    }
}

/// Tactic × technique counts of the rules that fired (techniques resolved
/// through the knowledge base, as the Navigator layer).
fn heatmap(kb: &ActorKb, rs: &Ruleset, by_rule: &BTreeMap<usize, u64>) -> Vec<TacticColumn> {
    let mut cells: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for (&r, &n) in by_rule {
        let m = rs.rule(r);
        let mut ids: Vec<String> = m
            .techniques
            .iter()
            .filter_map(|t| kb.canonical_technique(t))
            .collect();
        ids.sort();
        ids.dedup();
        let mut pairs: Vec<(String, String)> = Vec::new();
        for id in &ids {
            for t in tactics_of(kb, &m.tactics, id) {
                pairs.push((t, id.clone()));
            }
        }
        if ids.is_empty() {
            pairs.extend(m.tactics.iter().map(|t| (t.clone(), String::new())));
        }
        pairs.sort();
        pairs.dedup();
        for p in pairs {
            let c = cells.entry(p).or_default();
            c.0 += n;
            c.1 += 1;
        }
    }
    let mut cols: BTreeMap<String, Vec<HeatCell>> = BTreeMap::new();
    for ((tactic, id), (count, rules)) in cells {
        let name = kb
            .technique(&id)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        cols.entry(tactic).or_default().push(HeatCell {
            id,
            name,
            count,
            rules,
        });
    }
    let rank = tactic_rank;
    let mut v: Vec<TacticColumn> = cols
        .into_iter()
        .map(|(tactic, mut techniques)| {
            techniques.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
            TacticColumn { tactic, techniques }
        })
        .collect();
    v.sort_by(|a, b| {
        rank(&a.tactic)
            .cmp(&rank(&b.tactic))
            .then_with(|| a.tactic.cmp(&b.tactic))
    });
    v
}

fn incident_view(rs: &Ruleset, r: &IncidentReport) -> IncidentView {
    let i = &r.incident;
    let mut rules = i.rules.clone();
    rules.sort_by(|a, b| {
        let (x, y) = (rs.rule(a.0 as usize), rs.rule(b.0 as usize));
        y.level_rank.cmp(&x.level_rank).then(b.1.cmp(&a.1))
    });
    IncidentView {
        id: i.id.clone(),
        hosts: i.hosts.clone(),
        users: i.users.clone(),
        first_seen: i.first.map(time_text),
        last_seen: i.last.map(time_text),
        detections: i.detections,
        max_level: level_word(i.max_level).to_owned(),
        tactics: r.tactics.clone(),
        techniques: r.techniques.clone(),
        top_rules: rules
            .iter()
            .take(5)
            .map(|&(rule, count)| {
                let m = rs.rule(rule as usize);
                RuleView {
                    title: m.title.clone(),
                    level: m.level.to_owned(),
                    count,
                }
            })
            .collect(),
        attribution: r
            .attribution
            .candidates
            .iter()
            .take(5)
            .map(candidate_view)
            .collect(),
        verdict: r.attribution.reason.clone(),
        confident: r.attribution.confident,
    }
}

fn candidate_view(c: &Candidate) -> CandidateView {
    let mut ev: Vec<_> = c.matched.iter().collect();
    ev.sort_by(|x, y| y.weight.total_cmp(&x.weight));
    let evidence = ev
        .iter()
        .take(8)
        .map(|e| {
            let kind = match e.kind {
                EvidenceKind::Technique => "technique",
                EvidenceKind::Software => "software",
                EvidenceKind::GroupTag => "group tag",
                EvidenceKind::Ioc => "IOC",
            };
            let from = if e.rule_titles.is_empty() && e.events == 0 {
                "given".to_owned()
            } else {
                format!(
                    "{} [{}]",
                    crate::evidence::rule_list(&e.rule_titles, 3),
                    tracehunt_report::counted(e.events, "event", "events")
                )
            };
            format!(
                "{kind} {} {} (used by {}; {}; weight {:.2}) ← {from}",
                e.id,
                e.name,
                tracehunt_report::counted(e.groups_using as u64, "group", "groups"),
                crate::evidence::how_matched(e),
                e.weight
            )
        })
        .collect();
    CandidateView {
        group_id: c.id.clone(),
        name: c.name.clone(),
        state: tracehunt_attack::StateSponsors::builtin()
            .get(&c.id)
            .map(|s| s.state_name()),
        confidence: c.confidence,
        label: c.confidence_label.clone(),
        evidence,
    }
}

/// An attribution's verdict and its top `top` candidates.
pub fn attribution_view(a: &Attribution, top: usize) -> AttributionView {
    AttributionView {
        candidates: a.candidates.iter().take(top).map(candidate_view).collect(),
        verdict: a.reason.clone(),
        confident: a.confident,
    }
}

#[cfg(test)]
mod tests {
    use crate::{scan, sink, FileSource, HuntConfig, Loaded, NoProgress, OutputFormat};
    use tracehunt_report::Summary;

    /// A host name and a rule title with markup, quotes and ampersands end
    /// up escaped; the counts, the heatmap and the incident are there.
    #[test]
    fn hostile_host_and_rule_title_are_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sec.jsonl");
        let host = r#"<script>alert(\"h\")</script>&pc"#;
        let line = |t: &str| {
            format!(
                r#"{{"EventID": 1102, "Channel": "Security", "Computer": "{host}", "TimeCreated": "{t}", "SubjectUserName": "bob"}}"#
            )
        };
        std::fs::write(
            &log,
            format!(
                "{}\n{}\n",
                line("2024-03-01T10:00:00Z"),
                line("2024-03-01T10:30:00Z")
            ),
        )
        .unwrap();
        let rule = r#"
title: 'Log cleared <script>alert("r")</script> & more'
id: 11111111-2222-3333-4444-555555555555
level: high
tags: [attack.defense-evasion, attack.t1070.001]
logsource: {product: windows, service: security}
detection: {sel: {EventID: 1102}, condition: sel}
"#;
        let loaded = Loaded::from_yaml(&[("rule.yml", rule)]);
        let files = vec![log];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let source = FileSource::plan(&files, 1);
        let cfg = HuntConfig::new(OutputFormat::Html);
        let mut summary = Summary::default();
        let scanned = scan(&pool, &loaded, &source, &cfg, &mut summary, &NoProgress).unwrap();
        let kb = tracehunt_attack::ActorKb::builtin();
        let incidents = crate::incident::group(
            &scanned,
            &loaded.ruleset,
            kb,
            tracehunt_incidents::Config::default(),
        )
        .unwrap();
        let observed = scanned.evidence(&loaded.ruleset).unwrap();
        let attribution = crate::attribute(kb, &observed, &summary);
        let meta = super::HtmlMeta {
            title: "t & <b>".into(),
            ..super::HtmlMeta::default()
        };
        let ctx = sink::Context {
            ruleset: &loaded.ruleset,
            kb,
            summary: &summary,
            attribution: &attribution,
            feeds: None,
            max_rows: 200,
            table_style: Default::default(),
            overlay: None,
            incidents: Some(&incidents),
            html: Some(&meta),
            tlp: Default::default(),
        };
        let mut out = Vec::new();
        sink::write_ordered(&mut out, OutputFormat::Html, &scanned, &ctx).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(!page.contains("<script"), "unescaped markup");
        assert!(page.contains("&lt;script&gt;alert(&quot;h&quot;)&lt;/script&gt;&amp;pc"));
        assert!(page
            .contains("Log cleared &lt;script&gt;alert(&quot;r&quot;)&lt;/script&gt; &amp; more"));
        assert!(page.contains("<title>t &amp; &lt;b&gt;</title>"));
        assert!(
            page.contains(r#"lv-high">high</span></td><td class="n">2</td><td class="n">1</td>"#)
        );
        assert!(page.contains("defense-evasion (2)"), "heatmap column");
        assert!(page.contains("T1070.001"));
        assert!(page.contains("Detections per hour (UTC)"));
        assert!(page.contains("<h3>High and critical detections (2 in total)</h3>"));
        assert_eq!(incidents.reports.len(), 1);
        assert!(page.contains(&incidents.reports[0].incident.id));
    }
}
