//! Inline SVG charts: the timeline (stacked bars per level), the actors'
//! Gantt-like bars and the commitment chart. Coordinates are in a fixed
//! `viewBox` (the SVG scales to the page width); every bar has a `<title>`
//! (a tooltip without script).

use super::{escape, level_colour, ActorTimeline, CommitmentChart, Timeline, LEVELS};

/// Colours of the fitted segments, in order.
pub(super) const SEGMENT_COLOURS: [&str; 4] = ["#1f3a93", "#8e44ad", "#16a085", "#c0392b"];

/// The smallest 1, 2 or 5 × 10^k at or above `v` (1 for `v` ≤ 0).
pub(super) fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let e = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * e)
        .find(|&x| x >= v)
        .unwrap_or(10.0 * e)
}

/// A number for a label: whole numbers without decimals, others with up to 2.
pub(super) fn num(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    if (v - v.round()).abs() < 1e-9 && v.abs() < 1e15 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Every `step`-th index labelled so that about `max` labels show.
fn label_step(n: usize, max: usize) -> usize {
    n.div_ceil(max.max(1)).max(1)
}

/// `s` cut to `max` characters with an ellipsis.
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The y axis: grid lines and labels at 0, ¼ … of `ymax`.
fn y_axis(out: &mut String, left: f64, right: f64, top: f64, bottom: f64, ymax: f64) {
    for k in 0..=4 {
        let v = ymax * f64::from(k) / 4.0;
        let y = bottom - (bottom - top) * f64::from(k) / 4.0;
        w!(
            out,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="ax">{}</text>"##,
            left - 4.0,
            y + 4.0,
            num(v)
        );
    }
}

/// x labels under the bars, every `step`-th, slanted.
fn x_labels(out: &mut String, labels: &[String], left: f64, bw: f64, y: f64) {
    let step = label_step(labels.len(), 14);
    for (i, l) in labels.iter().enumerate().step_by(step) {
        let x = left + (i as f64 + 0.5) * bw;
        w!(
            out,
            r#"<text x="{x:.1}" y="{y:.1}" transform="rotate(-35 {x:.1} {y:.1})" text-anchor="end" class="ax">{}</text>"#,
            escape(l)
        );
    }
}

/// The timeline as stacked bars per level (critical at the bottom).
pub(super) fn timeline_svg(out: &mut String, t: &Timeline) {
    let (w, h) = (1200.0, 300.0);
    let (left, right, top, bottom) = (56.0, w - 10.0, 12.0, h - 80.0);
    let n = t.buckets.len().max(1);
    let bw = (right - left) / n as f64;
    let total = |c: &[u64; 5]| c.iter().fold(0u64, |a, b| a.saturating_add(*b));
    let max = t
        .buckets
        .iter()
        .map(|b| total(&b.counts))
        .max()
        .unwrap_or(0);
    let ymax = nice_max(max as f64);
    w!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="detections per {} by level">"#,
        escape(&t.unit)
    );
    y_axis(out, left, right, top, bottom, ymax);
    let gap = if bw > 4.0 { 1.0 } else { 0.0 };
    for (i, b) in t.buckets.iter().enumerate() {
        let x = left + i as f64 * bw;
        let mut y = bottom;
        for rank in (0..LEVELS.len()).rev() {
            let c = b.counts[rank];
            if c == 0 {
                continue;
            }
            let bh = (bottom - top) * c as f64 / ymax;
            y -= bh;
            w!(
                out,
                r#"<rect x="{:.2}" y="{y:.2}" width="{:.2}" height="{bh:.2}" fill="{}"><title>{}: {c} {}</title></rect>"#,
                x + gap / 2.0,
                (bw - gap).max(0.5),
                level_colour(rank),
                escape(&b.label),
                LEVELS[rank]
            );
        }
    }
    let labels: Vec<String> = t.buckets.iter().map(|b| b.label.clone()).collect();
    x_labels(out, &labels, left, bw, bottom + 14.0);
    w!(
        out,
        r##"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/><text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle" class="ax">detections per {}</text></svg>"##,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        escape(&t.unit)
    );
}

/// `YYYY-MM` as a month number (year × 12 + month − 1).
fn month_number(m: &str) -> Option<i64> {
    let (y, mo) = m.split_once('-')?;
    let (y, mo): (i64, i64) = (y.parse().ok()?, mo.parse().ok()?);
    ((0..=9999).contains(&y) && (1..=12).contains(&mo)).then_some(y * 12 + mo - 1)
}

fn month_label(k: i64) -> String {
    format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1)
}

/// The actors chart's x axis: every month from the first to the last
/// sighting when the labels are `YYYY-MM` and span at most 600 months,
/// else the sorted labels that occur.
pub(super) fn month_axis(actors: &[ActorTimeline]) -> Vec<String> {
    let mut months: Vec<&str> = actors
        .iter()
        .flat_map(|a| a.per_month.iter().map(|(m, _)| m.as_str()))
        .collect();
    months.sort_unstable();
    months.dedup();
    let nums: Option<Vec<i64>> = months.iter().map(|m| month_number(m)).collect();
    if let Some((lo, hi)) = nums.and_then(|v| Some((*v.iter().min()?, *v.iter().max()?))) {
        if hi - lo < 600 {
            return (lo..=hi).map(month_label).collect();
        }
    }
    months.into_iter().map(str::to_owned).collect()
}

/// Rows shown in the actors chart.
pub(super) const ACTOR_ROWS: usize = 60;

/// The actors as Gantt-like bars: one row per actor from its first to its
/// last month, each month with sightings shaded by its count.
pub(super) fn actors_svg(out: &mut String, actors: &[ActorTimeline]) {
    let months = month_axis(actors);
    if months.is_empty() {
        return;
    }
    let rows = actors.len().min(ACTOR_ROWS);
    let (w, label_w, row_h, top) = (1200.0, 300.0, 24.0, 40.0);
    let h = top + rows as f64 * row_h + 10.0;
    let mw = (w - label_w - 10.0) / months.len() as f64;
    let max = actors
        .iter()
        .flat_map(|a| a.per_month.iter().map(|p| p.1))
        .max()
        .unwrap_or(1)
        .max(1);
    // The axis holds normalised `YYYY-MM` labels or, as a fallback, the raw ones.
    let pos = |m: &str| {
        let norm = month_number(m).map(month_label);
        let find = |l: &str| months.binary_search_by(|x| x.as_str().cmp(l)).ok();
        norm.as_deref()
            .and_then(find)
            .or_else(|| find(m))
            .unwrap_or(0)
    };
    w!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h:.0}" class="chart" role="img" aria-label="actors over time">"#
    );
    let step = label_step(months.len(), 16);
    for (i, m) in months.iter().enumerate().step_by(step) {
        let x = label_w + i as f64 * mw;
        w!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{x:.1}" y="{:.1}" class="ax">{}</text>"##,
            top - 6.0,
            h - 10.0,
            top - 10.0,
            escape(m)
        );
    }
    for (r, a) in actors.iter().take(rows).enumerate() {
        let y = top + r as f64 * row_h;
        let name = match &a.state {
            Some(s) => format!("{} {} ({s})", a.group_id, a.name),
            None => format!("{} {}", a.group_id, a.name),
        };
        w!(
            out,
            r#"<text x="4" y="{:.1}" class="lbl">{}</text>"#,
            y + 16.0,
            escape(&short(&name, 42))
        );
        let idx: Vec<usize> = a.per_month.iter().map(|(m, _)| pos(m)).collect();
        if let (Some(lo), Some(hi)) = (idx.iter().min(), idx.iter().max()) {
            w!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#dbe8f5" rx="3"><title>{}: {} → {}, {} incidents</title></rect>"##,
                label_w + *lo as f64 * mw,
                y + 4.0,
                (hi - lo + 1) as f64 * mw,
                row_h - 8.0,
                escape(&name),
                escape(&a.first_seen),
                escape(&a.last_seen),
                a.incidents
            );
        }
        for ((m, c), i) in a.per_month.iter().zip(&idx) {
            if *c == 0 {
                continue;
            }
            w!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#1f77b4" fill-opacity="{:.2}"><title>{} {}: {c}</title></rect>"##,
                label_w + *i as f64 * mw,
                y + 4.0,
                mw.max(1.0),
                row_h - 8.0,
                0.3 + 0.7 * (*c as f64 / max as f64),
                escape(&a.group_id),
                escape(m)
            );
        }
    }
    out.push_str("</svg>");
}

/// One commitment chart: bars per period (grey background where there is
/// no coverage), fitted segments as polylines (counterfactuals dashed),
/// vertical lines at the dates (competing ones dashed grey), change-point
/// markers at the start of the period they open, and the axes.
pub(super) fn commitment_svg(out: &mut String, c: &CommitmentChart) {
    let n = c.period_labels.len().max(c.counts.len());
    if n == 0 {
        return;
    }
    let (w, h) = (1200.0, 360.0);
    let (left, right, top, bottom) = (64.0, w - 16.0, 64.0, h - 76.0);
    let bw = (right - left) / n as f64;
    let fin = |v: f64| v.is_finite().then_some(v);
    let max = c
        .counts
        .iter()
        .filter_map(|v| v.and_then(fin))
        .chain(
            c.fitted
                .iter()
                .flat_map(|s| s.points.iter().filter_map(|p| fin(p.1))),
        )
        .fold(0.0f64, f64::max);
    let ymax = nice_max(max);
    let y_of = |v: f64| bottom - (bottom - top) * (v.clamp(0.0, ymax) / ymax);
    w!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="chart" role="img" aria-label="{}">"#,
        escape(&c.title)
    );
    y_axis(out, left, right, top, bottom, ymax);
    for i in 0..n {
        let x = left + i as f64 * bw;
        let label = c.period_labels.get(i).map_or("", String::as_str);
        let exposure = c.exposure.get(i).copied().map_or("-".to_owned(), num);
        let rate = c
            .rates
            .get(i)
            .copied()
            .flatten()
            .map_or("-".to_owned(), num);
        match c.counts.get(i).copied().flatten().and_then(fin) {
            None => w!(
                out,
                r##"<rect x="{x:.2}" y="{top}" width="{bw:.2}" height="{:.1}" fill="#eeeeee"><title>{}: no coverage</title></rect>"##,
                bottom - top,
                escape(label)
            ),
            Some(v) => {
                let y = y_of(v);
                w!(
                    out,
                    r##"<rect x="{:.2}" y="{y:.2}" width="{:.2}" height="{:.2}" fill="#9ecae1"><title>{}: count {}, exposure {exposure}, rate {rate}</title></rect>"##,
                    x + bw * 0.1,
                    bw * 0.8,
                    bottom - y,
                    escape(label),
                    num(v)
                );
            }
        }
    }
    for (k, s) in c.fitted.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|(i, v)| *i < n && v.is_finite())
            .map(|&(i, v)| format!("{:.1},{:.1}", left + (i as f64 + 0.5) * bw, y_of(v)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        w!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.5"{}><title>{}</title></polyline>"#,
            pts.join(" "),
            SEGMENT_COLOURS[k % SEGMENT_COLOURS.len()],
            if s.dashed {
                r#" stroke-dasharray="7 5""#
            } else {
                ""
            },
            escape(&s.label)
        );
    }
    dates_and_change_points(out, c, n, (left, top, bottom, bw));
    x_labels(out, &c.period_labels, left, bw, bottom + 14.0);
    w!(
        out,
        r##"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/><text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle" class="ax">count per period</text></svg>"##,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
}

/// The vertical date lines (labels staggered over the plot) and the
/// change-point markers of a commitment chart.
fn dates_and_change_points(
    out: &mut String,
    c: &CommitmentChart,
    n: usize,
    (left, top, bottom, bw): (f64, f64, f64, f64),
) {
    for (k, d) in c.dates.iter().enumerate() {
        if !d.position.is_finite() {
            continue;
        }
        let x = left + d.position.clamp(0.0, n as f64) * bw;
        let (colour, dash) = if d.competing {
            ("#777777", r#" stroke-dasharray="4 3""#)
        } else {
            ("#d62728", "")
        };
        let ly = 14.0 + (k % 3) as f64 * 15.0;
        w!(
            out,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom}" stroke="{colour}" stroke-width="1.5"{dash}><title>{}</title></line><text x="{:.1}" y="{ly:.1}" class="dl" fill="{colour}">{}</text>"#,
            ly + 3.0,
            escape(&d.label),
            x + 3.0,
            escape(&short(&d.label, 36))
        );
    }
    for (i, label) in &c.change_points {
        if *i > n {
            continue;
        }
        let x = left + *i as f64 * bw;
        w!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#6a1b9a" stroke-width="1" stroke-dasharray="2 3"/><path d="M {:.1} {:.1} L {:.1} {:.1} L {:.1} {:.1} Z" fill="#6a1b9a"><title>change point: {}</title></path>"##,
            x - 6.0,
            bottom + 10.0,
            x + 6.0,
            bottom + 10.0,
            x,
            bottom,
            escape(label)
        );
    }
}
