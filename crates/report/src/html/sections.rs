//! The page and its sections.

use super::charts::{actors_svg, commitment_svg, num, timeline_svg, ACTOR_ROWS, SEGMENT_COLOURS};
use super::{
    escape, level_colour, level_rank, AttributionView, CandidateView, HtmlReport, IncidentView,
    LevelTop, SummaryView, CSP, LEVELS,
};

/// Skipped files listed (the rest are counted).
const SKIPPED_ROWS: usize = 50;

/// The section ids, in page order, with their headings.
pub(super) const SECTIONS: [(&str, &str); 6] = [
    ("summary", "Summary"),
    ("timeline", "Detection timeline"),
    ("incidents", "Incidents"),
    ("heatmap", "ATT&CK heatmap"),
    ("actors", "Actors over time"),
    ("commitments", "Commitments"),
];

/// The whole document.
pub(super) fn page(out: &mut String, r: &HtmlReport) {
    let title = if r.title.is_empty() {
        "tracehunt report"
    } else {
        &r.title
    };
    w!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="Content-Security-Policy" content="{CSP}"><meta name="referrer" content="no-referrer"><title>{}</title><style>{}</style></head>
<body><header><h1>{}</h1><p>"#,
        escape(title),
        include_str!("style.css"),
        escape(title)
    );
    let mut meta = Vec::new();
    if !r.tool_version.is_empty() {
        meta.push(escape(&r.tool_version).into_owned());
    }
    if !r.generated_at.is_empty() {
        meta.push(format!("generated {}", escape(&r.generated_at)));
    }
    meta.push("self-contained: no script, nothing loaded from the network".to_owned());
    out.push_str(&meta.join(" · "));
    out.push_str("</p><nav>");
    for (id, h) in SECTIONS {
        w!(out, r##"<a href="#{id}">{}</a>"##, escape(h));
    }
    out.push_str("</nav></header>\n<main>\n");
    summary(out, r);
    timeline(out, r);
    incidents(out, r);
    heatmap(out, r);
    actors(out, r);
    commitments(out, r);
    out.push_str("</main></body></html>\n");
}

fn open(out: &mut String, k: usize) {
    let (id, h) = SECTIONS[k];
    w!(out, "<section id=\"{id}\"><h2>{}</h2>\n", escape(h));
}

fn empty(out: &mut String, text: &str) {
    w!(out, r#"<p class="empty">{}</p>"#, escape(text));
}

fn level_badge(level: &str) -> String {
    let l = LEVELS[level_rank(level)];
    format!(r#"<span class="lv lv-{l}">{}</span>"#, escape(level))
}

fn kv(out: &mut String, k: &str, v: &str) {
    w!(out, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
}

fn summary_table(out: &mut String, s: &SummaryView) {
    out.push_str(r#"<table class="kv">"#);
    kv(out, "Events read", &s.events.to_string());
    if s.events_scanned != s.events {
        kv(out, "Events scanned", &s.events_scanned.to_string());
    }
    kv(out, "Files read", &s.files.to_string());
    kv(out, "Files skipped", &s.files_skipped.len().to_string());
    kv(
        out,
        "Records lost to damage",
        &s.records_skipped.to_string(),
    );
    let range = match (&s.first_event, &s.last_event) {
        (Some(a), Some(b)) => format!("{a} → {b}"),
        _ => "-".to_owned(),
    };
    kv(out, "Event time range", &range);
    if let Some(wn) = &s.time_window {
        kv(out, "Time window", wn);
    }
    // A report built from the store has no rule counts (each hunt had its own rules).
    if s.rules_loaded + s.rules_failed > 0 {
        kv(
            out,
            "Rules",
            &format!(
                "{} loaded, {} active, {} skipped, {} failed",
                s.rules_loaded, s.rules_active, s.rules_skipped, s.rules_failed
            ),
        );
    }
    kv(out, "Detections", &s.detections.to_string());
    kv(out, "Run time", &format!("{} ms", s.elapsed_ms));
    out.push_str("</table>");
}

fn pairs_table(out: &mut String, head: (&str, &str), rows: &[(String, u64)]) {
    w!(
        out,
        r#"<table><tr><th>{}</th><th>{}</th></tr>"#,
        escape(head.0),
        escape(head.1)
    );
    for (k, v) in rows {
        w!(
            out,
            r#"<tr><td>{}</td><td class="n">{v}</td></tr>"#,
            escape(k)
        );
    }
    out.push_str("</table>");
}

fn skipped(out: &mut String, s: &SummaryView) {
    if s.files_skipped.is_empty()
        && s.records_skipped_by_reason.is_empty()
        && s.rules_skipped_by_reason.is_empty()
        && s.notes.is_empty()
    {
        out.push_str(r#"<p class="note">Nothing was skipped: every file was read whole and every rule ran.</p>"#);
        return;
    }
    out.push_str("<h3>What was skipped and why</h3>");
    if !s.files_skipped.is_empty() {
        out.push_str("<table><tr><th>Skipped file</th><th>Reason</th></tr>");
        for f in s.files_skipped.iter().take(SKIPPED_ROWS) {
            w!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(&f.path),
                escape(&f.reason)
            );
        }
        out.push_str("</table>");
        if s.files_skipped.len() > SKIPPED_ROWS {
            w!(
                out,
                r#"<p class="note">… and {} more skipped files.</p>"#,
                s.files_skipped.len() - SKIPPED_ROWS
            );
        }
    }
    if !s.records_skipped_by_reason.is_empty() {
        pairs_table(
            out,
            ("Records lost: reason", "records"),
            &s.records_skipped_by_reason,
        );
    }
    if !s.rules_skipped_by_reason.is_empty() {
        pairs_table(
            out,
            ("Rules skipped: reason", "rules"),
            &s.rules_skipped_by_reason,
        );
    }
    if !s.notes.is_empty() {
        out.push_str("<ul>");
        for n in &s.notes {
            w!(out, "<li>{}</li>", escape(n));
        }
        out.push_str("</ul>");
    }
}

fn level_tops(out: &mut String, heading: &str, what: &str, tops: &[LevelTop]) {
    w!(out, "<div><h3>{}</h3>", escape(heading));
    if tops.is_empty() {
        empty(out, "none");
    } else {
        w!(
            out,
            "<table><tr><th>level</th><th>{}</th><th>detections</th></tr>",
            escape(what)
        );
        for t in tops {
            for (i, (k, v)) in t.items.iter().enumerate() {
                let lv = if i == 0 {
                    level_badge(&t.level)
                } else {
                    String::new()
                };
                w!(
                    out,
                    r#"<tr><td>{lv}</td><td>{}</td><td class="n">{v}</td></tr>"#,
                    escape(k)
                );
            }
        }
        out.push_str("</table>");
    }
    out.push_str("</div>");
}

fn summary(out: &mut String, r: &HtmlReport) {
    open(out, 0);
    let s = &r.summary;
    out.push_str(r#"<div class="grid"><div>"#);
    summary_table(out, s);
    out.push_str("</div><div><h3>Detections per level</h3>");
    out.push_str(
        "<table><tr><th>level</th><th>detections</th><th>unique detections (rules)</th><th>share</th></tr>",
    );
    let total = r
        .levels
        .iter()
        .fold(0u64, |a, l| a.saturating_add(l.detections));
    let unique = r
        .levels
        .iter()
        .fold(0u64, |a, l| a.saturating_add(l.unique));
    for l in &r.levels {
        w!(
            out,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{:.1} %</td></tr>"#,
            level_badge(&l.level),
            l.detections,
            l.unique,
            if total == 0 {
                0.0
            } else {
                100.0 * l.detections as f64 / total as f64
            }
        );
    }
    w!(
        out,
        r#"<tr><th>total</th><th class="n">{total}</th><th class="n">{unique}</th><th></th></tr></table></div></div>"#
    );
    skipped(out, s);
    out.push_str(r#"<div class="grid">"#);
    level_tops(
        out,
        "Dates with most detections",
        "date (UTC)",
        &r.top_dates,
    );
    level_tops(out, "Top hosts per level", "host", &r.top_hosts_per_level);
    level_tops(out, "Top rules per level", "rule", &r.top_rules);
    out.push_str("</div></section>\n");
}

fn legend_levels(out: &mut String) {
    out.push_str(r#"<p class="legend">"#);
    for rank in (0..LEVELS.len()).rev() {
        w!(
            out,
            r#"<span><i class="sw" style="background:{}"></i>{}</span>"#,
            level_colour(rank),
            LEVELS[rank]
        );
    }
    out.push_str("</p>");
}

fn timeline(out: &mut String, r: &HtmlReport) {
    open(out, 1);
    let t = &r.timeline;
    if t.buckets.is_empty() {
        empty(out, "No detection with a time: nothing to chart.");
    } else {
        w!(
            out,
            r#"<p class="note">Detections per {} (UTC), {} to {}, stacked by level (critical at the bottom).</p>"#,
            escape(&t.unit),
            escape(&t.buckets[0].label),
            escape(&t.buckets[t.buckets.len() - 1].label)
        );
        legend_levels(out);
        timeline_svg(out, t);
    }
    if t.untimed > 0 {
        w!(
            out,
            r#"<p class="note">{} detections of events without a time are not charted.</p>"#,
            t.untimed
        );
    }
    let sv = &r.severe;
    w!(
        out,
        "<h3>High and critical detections ({} in total{})</h3>",
        sv.total,
        if (sv.rows.len() as u64) < sv.total {
            format!(", the first {} listed", sv.rows.len())
        } else {
            String::new()
        }
    );
    if sv.rows.is_empty() {
        empty(out, "No detection at level high or critical.");
    } else {
        out.push_str("<details><summary>show the list</summary><table><tr><th>time (UTC)</th><th>level</th><th>host</th><th>rule</th></tr>");
        for d in &sv.rows {
            w!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&d.time),
                level_badge(&d.level),
                escape(&d.host),
                escape(&d.rule)
            );
        }
        out.push_str("</table></details>");
    }
    out.push_str("</section>\n");
}

fn candidates(out: &mut String, cands: &[CandidateView]) {
    if cands.is_empty() {
        empty(out, "No candidate group.");
        return;
    }
    out.push_str("<table><tr><th>#</th><th>group</th><th>state</th><th>confidence</th><th>evidence</th></tr>");
    for (i, c) in cands.iter().enumerate() {
        w!(
            out,
            r#"<tr><td class="n">{}</td><td>{} {}</td><td>{}</td><td class="n">{} % ({})</td><td>"#,
            i + 1,
            escape(&c.group_id),
            escape(&c.name),
            escape(c.state.as_deref().unwrap_or("-")),
            c.confidence,
            escape(&c.label)
        );
        if c.evidence.is_empty() {
            out.push('-');
        } else {
            w!(
                out,
                "<details><summary>{}</summary><ul>",
                crate::counted(c.evidence.len() as u64, "item", "items")
            );
            for e in &c.evidence {
                w!(out, "<li>{}</li>", escape(e));
            }
            out.push_str("</ul></details>");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table>");
}

fn verdict(out: &mut String, confident: bool, text: &str) {
    let (class, word) = if confident {
        ("ok", "confident")
    } else {
        ("warn", "not confident")
    };
    w!(
        out,
        r#"<p><span class="{class}">{word}</span>: {}</p>"#,
        escape(text)
    );
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        escape(&items.join(", ")).into_owned()
    }
}

/// Incidents unfolded at first (the most severe).
const OPEN_INCIDENTS: usize = 3;

fn span(i: &IncidentView) -> String {
    format!(
        "{} → {}",
        i.first_seen.as_deref().unwrap_or("-"),
        i.last_seen.as_deref().unwrap_or("-")
    )
}

/// One line per incident: level, id (a link to its card), hosts, span,
/// detections, tactics, top candidate.
fn incident_table(out: &mut String, r: &HtmlReport) {
    out.push_str("<table><tr><th>level</th><th>incident</th><th>hosts</th><th>time span (UTC)</th><th>detections</th><th>tactics</th><th>top candidate</th></tr>");
    for i in &r.incidents {
        let top = i.attribution.first().map_or("-".to_owned(), |c| {
            format!(
                "{} {} ({} %)",
                escape(&c.group_id),
                escape(&c.name),
                c.confidence
            )
        });
        w!(
            out,
            r##"<tr><td>{}</td><td><a href="#{id}"><code>{id}</code></a></td><td>{}</td><td>{}</td><td class="n">{}</td><td class="tags">{}</td><td>{top}</td></tr>"##,
            level_badge(&i.max_level),
            list(&i.hosts),
            escape(&span(i)),
            i.detections,
            list(&i.tactics),
            id = escape(&i.id),
        );
    }
    out.push_str("</table>");
}

/// An incident's card (folded but for the first few): hosts, users, span,
/// tactics, techniques, rules, its attribution with the evidence.
fn incident_card(out: &mut String, i: &IncidentView, open: bool) {
    w!(
        out,
        r#"<details class="inc" id="{}"{}><summary>{} <code>{}</code> — {}, {} detections</summary><table class="kv">"#,
        escape(&i.id),
        if open { " open" } else { "" },
        level_badge(&i.max_level),
        escape(&i.id),
        list(&i.hosts),
        i.detections
    );
    kv(out, "Hosts", &i.hosts.join(", "));
    if !i.users.is_empty() {
        kv(out, "Users", &i.users.join(", "));
    }
    kv(out, "Time span (UTC)", &span(i));
    w!(
        out,
        "<tr><td>Tactics</td><td class=\"tags\">{}</td></tr><tr><td>Techniques</td><td class=\"tags\">{}</td></tr>",
        list(&i.tactics),
        list(&i.techniques)
    );
    out.push_str("<tr><td>Rules</td><td>");
    for (k, rule) in i.top_rules.iter().enumerate() {
        if k > 0 {
            out.push_str("<br>");
        }
        w!(
            out,
            "{} {} ×{}",
            level_badge(&rule.level),
            escape(&rule.title),
            rule.count
        );
    }
    out.push_str("</td></tr></table>");
    verdict(out, i.confident, &i.verdict);
    candidates(out, &i.attribution);
    out.push_str("</details>");
}

fn incidents(out: &mut String, r: &HtmlReport) {
    open(out, 2);
    if !r.incidents_note.is_empty() {
        w!(out, r#"<p class="note">{}</p>"#, escape(&r.incidents_note));
    }
    if r.incidents.is_empty() {
        empty(out, "No incidents: no detections to group.");
    } else {
        w!(
            out,
            r#"<p class="note">{} incidents, most severe first{}; each card below has its own attribution with the evidence.</p>"#,
            r.incidents_total.max(r.incidents.len() as u64),
            if (r.incidents.len() as u64) < r.incidents_total {
                format!(" (the {} most severe shown)", r.incidents.len())
            } else {
                String::new()
            }
        );
        incident_table(out, r);
        for (k, i) in r.incidents.iter().enumerate() {
            incident_card(out, i, k < OPEN_INCIDENTS);
        }
    }
    if let Some(a) = &r.collection_attribution {
        collection(out, a);
    }
    out.push_str("</section>\n");
}

fn collection(out: &mut String, a: &AttributionView) {
    out.push_str("<h3>Attribution of the whole collection</h3>");
    verdict(out, a.confident, &a.verdict);
    candidates(out, &a.candidates);
}

/// Background of a heatmap cell: white → red by `count / max`.
fn heat_colour(count: u64, max: u64) -> String {
    let f = if max == 0 {
        0.0
    } else {
        (count as f64 / max as f64).sqrt()
    };
    let g = (235.0 - 170.0 * f) as u8;
    let r = (255.0 - 20.0 * f) as u8;
    format!("rgb({r},{g},{g})")
}

fn heatmap(out: &mut String, r: &HtmlReport) {
    open(out, 3);
    if r.heatmap.is_empty() {
        empty(
            out,
            "No ATT&CK technique or tactic among the rules that fired.",
        );
        out.push_str("</section>\n");
        return;
    }
    let max = r
        .heatmap
        .iter()
        .flat_map(|c| c.techniques.iter().map(|t| t.count))
        .max()
        .unwrap_or(0);
    if r.heatmap_note.is_empty() {
        out.push_str(r#"<p class="note">Detections per ATT&amp;CK technique of the rules that fired, under its tactics (those its rule names when ATT&amp;CK lists them for the technique, else ATT&amp;CK's); rules tagged with a tactic only count as “(tactic only)”; darker: more detections; hover a cell for its rule count.</p>"#);
    } else {
        w!(out, r#"<p class="note">{}</p>"#, escape(&r.heatmap_note));
    }
    out.push_str(r#"<div class="heat">"#);
    for col in &r.heatmap {
        let total: u64 = col.techniques.iter().map(|t| t.count).sum();
        w!(
            out,
            r#"<div class="col"><h4>{} ({total})</h4>"#,
            escape(&col.tactic)
        );
        for t in &col.techniques {
            let id = if t.id.is_empty() {
                "(tactic only)"
            } else {
                &t.id
            };
            w!(
                out,
                r#"<div class="cell" style="background:{}" title="{} rules"><b>{}</b>{} {}</div>"#,
                heat_colour(t.count, max),
                t.rules,
                t.count,
                escape(id),
                escape(&t.name)
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</div></section>\n");
}

fn actors(out: &mut String, r: &HtmlReport) {
    open(out, 4);
    if r.actors.is_empty() {
        empty(
            out,
            "No actors in this report: actors over time come from the store (hunts with --store, then `tracehunt report --store PATH`).",
        );
        out.push_str("</section>\n");
        return;
    }
    actors_svg(out, &r.actors);
    if r.actors.len() > ACTOR_ROWS {
        w!(
            out,
            r#"<p class="note">The chart shows the first {ACTOR_ROWS} of {} actors; the table lists all.</p>"#,
            r.actors.len()
        );
    }
    out.push_str("<table><tr><th>group</th><th>state</th><th>first seen</th><th>last seen</th><th>incidents</th></tr>");
    for a in &r.actors {
        w!(
            out,
            r#"<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td class="n">{}</td></tr>"#,
            escape(&a.group_id),
            escape(&a.name),
            escape(a.state.as_deref().unwrap_or("-")),
            escape(&a.first_seen),
            escape(&a.last_seen),
            a.incidents
        );
    }
    out.push_str("</table></section>\n");
}

fn commitments(out: &mut String, r: &HtmlReport) {
    open(out, 5);
    if r.commitments.is_empty() {
        empty(
            out,
            "No commitment analysis in this report: it comes from the store (`tracehunt report --store`).",
        );
    }
    for c in &r.commitments {
        w!(out, "<h3>{}</h3>", escape(&c.title));
        if c.period_labels.is_empty() && c.counts.is_empty() {
            empty(out, "No periods to chart.");
        } else {
            commitment_legend(out, c);
            commitment_svg(out, c);
        }
        w!(out, "<p><b>Verdict:</b> {}</p>", escape(&c.verdict));
        if !c.assumptions.is_empty() {
            out.push_str("<details><summary>assumptions</summary><ul>");
            for a in &c.assumptions {
                w!(out, "<li>{}</li>", escape(a));
            }
            out.push_str("</ul></details>");
        }
        commitment_values(out, c);
    }
    out.push_str("</section>\n");
}

fn commitment_legend(out: &mut String, c: &super::CommitmentChart) {
    out.push_str(r#"<p class="legend"><span><i class="sw" style="background:#9ecae1"></i>count per period</span><span><i class="sw" style="background:#eeeeee;border:1px solid #ccc"></i>no coverage</span>"#);
    for (k, s) in c.fitted.iter().enumerate() {
        w!(
            out,
            r#"<span><i class="sw" style="background:{}"></i>{}{}</span>"#,
            SEGMENT_COLOURS[k % SEGMENT_COLOURS.len()],
            escape(&s.label),
            if s.dashed { " (dashed)" } else { "" }
        );
    }
    out.push_str(r#"<span><i class="sw" style="background:#d62728"></i>date</span><span><i class="sw" style="background:#777"></i>competing event (dashed)</span><span><i class="sw" style="background:#6a1b9a"></i>change point ▲</span></p>"#);
}

fn commitment_values(out: &mut String, c: &super::CommitmentChart) {
    out.push_str("<details><summary>values per period</summary><table><tr><th>period</th><th>count</th><th>exposure</th><th>rate</th></tr>");
    let n = c.period_labels.len().max(c.counts.len());
    for i in 0..n {
        let cell = |v: Option<f64>| v.map_or("no coverage".to_owned(), num);
        w!(
            out,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            escape(c.period_labels.get(i).map_or("", String::as_str)),
            cell(c.counts.get(i).copied().flatten()),
            c.exposure.get(i).copied().map_or("-".to_owned(), num),
            cell(c.rates.get(i).copied().flatten())
        );
    }
    out.push_str("</table>");
    if !c.change_points.is_empty() {
        out.push_str("<p>Change points: ");
        let cps: Vec<String> = c
            .change_points
            .iter()
            .map(|(i, l)| {
                format!(
                    "{} ({})",
                    escape(l),
                    escape(c.period_labels.get(*i).map_or("?", String::as_str))
                )
            })
            .collect();
        out.push_str(&cps.join("; "));
        out.push_str("</p>");
    }
    out.push_str("</details>");
}
