//! Issue #6: a rule file with 20,000 YAML documents loads in linear time
//! (it used to run for minutes: every rule's line was found by scanning the
//! whole file from the top). No timing assertion: the test completes and
//! counts what loaded; it takes about a second in release.

use tracehunt_sigma::{load_rules, Code};

fn doc(i: usize, title: &str) -> String {
    format!(
        "title: {title}\nid: 00000000-0000-4000-8000-{i:012}\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    sel:\n        CommandLine|contains: 'needle{i}'\n    condition: sel\nlevel: low\n"
    )
}

#[test]
fn twenty_thousand_documents_load_with_their_lines() {
    const N: usize = 20_000;
    let docs: Vec<String> = (0..N).map(|i| doc(i, &format!("rule {i}"))).collect();
    let text = docs.join("---\n");
    let start = std::time::Instant::now();
    let f = load_rules("many.yml", &text);
    eprintln!("{N} documents: {:?}", start.elapsed());
    assert!(f.diagnostics.is_empty(), "{:?}", &f.diagnostics[..1]);
    assert_eq!(f.rules.len(), N);
    // Each rule points at its own `title:` line (10 lines per document plus its `---`).
    for (i, r) in f.rules.iter().enumerate() {
        assert_eq!(r.rule.title, format!("rule {i}"));
        assert_eq!(r.line as usize, 1 + 11 * i, "rule {i}");
    }
}

#[test]
fn same_title_documents_get_successive_lines() {
    let text = (0..5)
        .map(|i| doc(i, "same"))
        .collect::<Vec<_>>()
        .join("---\n");
    let f = load_rules("same.yml", &text);
    let lines: Vec<u32> = f.rules.iter().map(|r| r.line).collect();
    assert_eq!(lines, [1, 12, 23, 34, 45]);
}

#[test]
fn quoted_title_still_gets_its_line() {
    let text = format!("{}---\n{}", doc(0, "plain"), doc(1, "'quoted: yes'"));
    let f = load_rules("q.yml", &text);
    assert_eq!(f.rules[1].rule.title, "quoted: yes");
    assert_eq!(f.rules[1].line, 12);
}

#[test]
fn many_pipe_conditions_each_name_their_own_line() {
    let d = |i: usize| {
        format!("title: p{i}\nlogsource: {{product: windows}}\ndetection:\n  sel:\n    EventID: 4625\n  condition: sel | count() by IpAddress > 5\n")
    };
    let text = (0..3000).map(d).collect::<Vec<_>>().join("---\n");
    let f = load_rules("pipes.yml", &text);
    assert_eq!(f.diagnostics.len(), 3000);
    for (i, d) in f.diagnostics.iter().enumerate() {
        assert_eq!(d.code, Code::Unsupported);
        assert_eq!(d.line, Some(6 + 7 * i as u32), "{i}");
    }
}

/// A YAML syntax error in one document used to stop the whole file (the YAML
/// stream cannot go on after it): the documents after it are now loaded too.
#[test]
fn yaml_error_does_not_hide_later_documents() {
    let broken = "title: broken\ndetection: [\n  a: b\n";
    let text = format!(
        "{}---\n{broken}---\n{}---\n{}",
        doc(0, "a"),
        doc(1, "b"),
        doc(2, "c")
    );
    let f = load_rules("broken.yml", &text);
    let titles: Vec<&str> = f.rules.iter().map(|r| r.rule.title.as_str()).collect();
    assert_eq!(titles, ["a", "b", "c"], "{:?}", f.diagnostics);
    assert_eq!(f.diagnostics.len(), 1, "{:?}", f.diagnostics);
    assert_eq!(f.diagnostics[0].code, Code::YamlSyntax);
    // The broken document is lines 12..14 (libyaml reports the `---` after
    // it, line 15); the documents after it keep their own lines.
    assert!(
        (12..=15).contains(&f.diagnostics[0].line.unwrap()),
        "{:?}",
        f.diagnostics
    );
    assert_eq!(f.rules[1].line, 16);
    assert_eq!(f.rules[2].line, 27);
}

/// Every other document broken, 2,000 documents: all good ones load, one
/// diagnostic per broken one (the restarts stay linear).
#[test]
fn many_broken_documents_each_reported() {
    let broken = "title: broken\ndetection: [\n  a: b\n";
    let text = (0..2000)
        .map(|i| {
            if i % 2 == 0 {
                doc(i, &format!("r{i}"))
            } else {
                broken.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("---\n");
    let f = load_rules("half.yml", &text);
    assert_eq!(f.rules.len(), 1000);
    assert_eq!(f.diagnostics.len(), 1000);
    assert!(f.diagnostics.iter().all(|d| d.code == Code::YamlSyntax));
}
