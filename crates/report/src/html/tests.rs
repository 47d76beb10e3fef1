use super::*;
use std::collections::BTreeMap;

/// Checks that every element opened is closed in order (HTML void elements
/// and `/>` excepted); returns the number of `<svg>` elements.
fn balanced(doc: &str) -> usize {
    const VOID: [&str; 6] = ["meta", "br", "link", "img", "hr", "input"];
    let mut stack: Vec<String> = Vec::new();
    let mut svgs = 0;
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let end = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().unwrap_or_else(|| panic!("stray </{name}>"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(!name.is_empty(), "bad tag <{tag}>");
        if name == "svg" {
            svgs += 1;
        }
        if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            continue;
        }
        stack.push(name);
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    svgs
}

const EVIL: &str = r#"<script>alert("x")</script> & 'q'"#;

fn full() -> HtmlReport {
    let mut hours = BTreeMap::new();
    hours.insert(473_000, [0, 1, 2, 3, 1]);
    hours.insert(473_050, [5, 0, 0, 1, 0]);
    let cand = CandidateView {
        group_id: "G0009".into(),
        name: EVIL.into(),
        state: Some("X".into()),
        confidence: 42,
        label: "Roughly even chance".into(),
        evidence: vec![format!("T1059.001 PowerShell via {EVIL}")],
    };
    HtmlReport {
        title: format!("hunt of {EVIL}"),
        generated_at: "2026-01-01T00:00:00Z".into(),
        tool_version: "tracehunt 0.1.0".into(),
        summary: SummaryView {
            events: 10,
            files_skipped: vec![SkipView {
                path: EVIL.into(),
                reason: "not a log".into(),
            }],
            ..SummaryView::default()
        },
        levels: vec![LevelCount {
            level: "high".into(),
            detections: 4,
            unique: 2,
        }],
        timeline: timeline_from_hours(&hours, 1),
        top_dates: top_dates_from_hours(&hours, 3),
        top_hosts_per_level: vec![LevelTop {
            level: "high".into(),
            items: vec![(EVIL.into(), 4)],
        }],
        top_rules: vec![LevelTop {
            level: "high".into(),
            items: vec![(EVIL.into(), 4)],
        }],
        heatmap_note: String::new(),
        heatmap: vec![TacticColumn {
            tactic: "execution".into(),
            techniques: vec![HeatCell {
                id: "T1059.001".into(),
                name: "PowerShell".into(),
                count: 3,
                rules: 1,
            }],
        }],
        severe: SevereTable {
            rows: vec![DetectionRow {
                time: "2024-01-01 00:00:00".into(),
                level: "high".into(),
                host: EVIL.into(),
                rule: EVIL.into(),
            }],
            total: 4,
        },
        incidents: vec![IncidentView {
            id: "inc-1".into(),
            hosts: vec![EVIL.into()],
            max_level: "critical".into(),
            top_rules: vec![RuleView {
                title: EVIL.into(),
                level: "high".into(),
                count: 2,
            }],
            attribution: vec![cand.clone()],
            verdict: EVIL.into(),
            ..IncidentView::default()
        }],
        incidents_total: 1,
        incidents_note: String::new(),
        collection_attribution: Some(AttributionView {
            candidates: vec![cand],
            verdict: "v".into(),
            confident: true,
        }),
        actors: vec![ActorTimeline {
            group_id: "G0009".into(),
            name: EVIL.into(),
            state: None,
            first_seen: "2024-01".into(),
            last_seen: "2024-03".into(),
            incidents: 2,
            per_month: vec![("2024-01".into(), 1), ("2024-03".into(), 4)],
        }],
        commitments: vec![CommitmentChart {
            title: EVIL.into(),
            period_labels: vec!["2024-01".into(), "2024-02".into(), "2024-03".into()],
            counts: vec![Some(3.0), None, Some(f64::NAN)],
            exposure: vec![1.0, 0.0],
            rates: vec![Some(3.0), None, None],
            dates: vec![
                ChartDate {
                    position: 1.5,
                    label: EVIL.into(),
                    competing: false,
                },
                ChartDate {
                    position: f64::INFINITY,
                    label: "inf".into(),
                    competing: true,
                },
            ],
            fitted: vec![FittedSegment {
                label: EVIL.into(),
                points: vec![(0, 2.5), (1, 2.0), (9, 1.0)],
                dashed: true,
            }],
            change_points: vec![(1, EVIL.into()), (99, "out".into())],
            verdict: EVIL.into(),
            assumptions: vec![EVIL.into()],
        }],
    }
}

#[test]
fn attacker_text_is_escaped_everywhere() {
    let doc = render(&full());
    assert!(!doc.contains("<script"), "raw script tag in the page");
    assert!(!doc.contains(r#"alert("x")"#));
    assert!(doc.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"));
    assert_eq!(balanced(&doc), 3, "timeline, actors, commitment chart");
}

#[test]
fn every_section_has_its_id_and_empty_ones_say_why() {
    let doc = render(&HtmlReport::default());
    for id in [
        "summary",
        "timeline",
        "incidents",
        "heatmap",
        "actors",
        "commitments",
    ] {
        assert!(doc.contains(&format!(r#"<section id="{id}">"#)), "{id}");
    }
    assert!(doc.contains("No actors in this report: actors over time come from the store"));
    assert!(doc.contains("No commitment analysis in this report"));
    assert!(doc.contains("No incidents"));
    assert!(doc.contains("No ATT&amp;CK technique"));
    assert!(doc.contains("No detection with a time"));
    assert!(doc.contains(CSP));
    assert!(!doc.contains("http://") || !doc.contains("src="));
    assert_eq!(balanced(&doc), 0);
}

#[test]
fn full_report_is_balanced_and_self_contained() {
    let doc = render(&full());
    assert!(!doc.contains(" src="), "nothing is loaded");
    assert!(!doc.contains("<link"), "no external stylesheet");
    assert!(doc.contains("no coverage"));
    assert!(doc.contains("stroke-dasharray"));
    assert!(doc.contains("change point: "));
    assert!(doc.contains("42 % (Roughly even chance)"));
}

#[test]
fn escape_replaces_control_characters() {
    assert_eq!(escape("a\u{0}b\tc\u{1b}"), "a\u{FFFD}b\tc\u{FFFD}");
    // Bidi overrides and zero-width characters from the logs cannot reorder the page.
    assert_eq!(escape("\u{202E}gnp.exe\u{200B}"), "\u{FFFD}gnp.exe\u{FFFD}");
    assert!(matches!(escape("plain"), Cow::Borrowed(_)));
}

#[test]
fn timeline_units_follow_the_span() {
    let h = |v: &[(i64, [u64; 5])]| v.iter().copied().collect::<BTreeMap<_, _>>();
    // 2024-01-01T00 is hour 473_352.
    let t = timeline_from_hours(
        &h(&[(473_352, [1, 0, 0, 0, 0]), (473_355, [0, 0, 0, 0, 2])]),
        0,
    );
    assert_eq!(t.unit, "hour");
    assert_eq!(t.buckets.len(), 4);
    assert_eq!(t.buckets[0].label, "2024-01-01 00:00");
    assert_eq!(t.buckets[3].counts, [0, 0, 0, 0, 2]);
    let t = timeline_from_hours(&h(&[(473_352, [1; 5]), (473_352 + 24 * 9, [1; 5])]), 0);
    assert_eq!(t.unit, "day");
    assert_eq!(t.buckets.len(), 10);
    assert_eq!(t.buckets[9].label, "2024-01-10");
    let t = timeline_from_hours(&h(&[(473_352, [1; 5]), (473_352 + 24 * 800, [1; 5])]), 0);
    assert_eq!(t.unit, "month");
    assert_eq!(t.buckets[0].label, "2024-01");
    assert_eq!(t.buckets.len(), 27);
    // Year 1601 to 2024: yearly, only the years with detections.
    let t = timeline_from_hours(&h(&[(-3_234_576, [1; 5]), (473_352, [1; 5])]), 0);
    assert_eq!(t.unit, "year");
    assert_eq!(t.buckets.len(), 2);
    assert_eq!(t.buckets[0].label, "1601");
    let t = timeline_from_hours(&BTreeMap::new(), 3);
    assert!(t.buckets.is_empty());
    assert_eq!(t.untimed, 3);
    // Extreme keys do not panic.
    let _ = timeline_from_hours(&h(&[(i64::MIN, [1; 5]), (i64::MAX, [1; 5])]), 0);
}

#[test]
fn top_dates_per_level() {
    let h: BTreeMap<i64, [u64; 5]> = [
        (473_352, [0, 0, 0, 1, 0]),
        (473_353, [0, 0, 0, 1, 0]),
        (473_352 + 24, [0, 0, 0, 1, 1]),
    ]
    .into_iter()
    .collect();
    let t = top_dates_from_hours(&h, 5);
    assert_eq!(t[0].level, "critical");
    assert_eq!(t[0].items, vec![("2024-01-02".to_owned(), 1)]);
    assert_eq!(t[1].level, "high");
    assert_eq!(
        t[1].items,
        vec![("2024-01-01".to_owned(), 2), ("2024-01-02".to_owned(), 1)]
    );
}

#[test]
fn summary_view_of_a_summary() {
    let mut s = crate::Summary {
        events: 5,
        duplicate_chunks_skipped: 2,
        ..crate::Summary::default()
    };
    s.rules_skipped_by_reason
        .insert("logsource_not_mapped".into(), 3);
    let v = SummaryView::from_summary(&s);
    assert_eq!(v.events, 5);
    assert_eq!(
        v.rules_skipped_by_reason,
        vec![("logsource_not_mapped".to_owned(), 3)]
    );
    assert!(v.notes[0].starts_with("2 duplicate EVTX chunks skipped"));
    let doc = render(&HtmlReport {
        summary: v,
        ..HtmlReport::default()
    });
    assert!(doc.contains("logsource_not_mapped"));
    balanced(&doc);
}

#[test]
fn actors_axis_is_every_month_between_the_sightings() {
    let a = ActorTimeline {
        group_id: "G1".into(),
        per_month: vec![("2022-11".into(), 1), ("2023-2".into(), 2)],
        ..ActorTimeline::default()
    };
    assert_eq!(
        charts::month_axis(std::slice::from_ref(&a)),
        ["2022-11", "2022-12", "2023-01", "2023-02"]
    );
    let b = ActorTimeline {
        per_month: vec![("spring".into(), 1), ("2023-02".into(), 2)],
        ..a
    };
    assert_eq!(charts::month_axis(&[b]), ["2023-02", "spring"]);
}
