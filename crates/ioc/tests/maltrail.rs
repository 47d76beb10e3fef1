//! maltrail trail files on real data: the 129 `apt_*.txt` files of
//! `../shared/corpora/ioc/maltrail` (stamparm/maltrail 8adace159e, MIT), and the multi-actor
//! measurement of issue #18 item 4. Corpus tests skip with a message when the corpora are not
//! beside the project.

use std::path::{Path, PathBuf};

use tracehunt_event::{Event, Value};
use tracehunt_ioc::{FeedFormat, IocKind, IocSet, IocSetBuilder};

fn maltrail_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/ioc/maltrail");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared/corpora/ioc/maltrail not found");
        None
    }
}

/// Every `apt_*.txt` file, sorted, with its text.
fn trail_files(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("apt_") && n.ends_with(".txt"))
        })
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn all_129_trail_files_load_by_content_with_their_actor() {
    let Some(dir) = maltrail_dir() else { return };
    let files = trail_files(&dir);
    assert_eq!(files.len(), 129);
    let mut b = IocSetBuilder::default();
    let mut entries = 0;
    let mut loaded = std::collections::BTreeMap::new();
    let mut diagnostics = Vec::new();
    for (path, text) in &files {
        let r = b.load(text, path).unwrap();
        assert_eq!(r.format, Some(FeedFormat::Maltrail), "{path}");
        assert_eq!(r.actors.len(), 1, "{path}");
        entries += r.entries;
        for (k, n) in &r.loaded {
            *loaded.entry(*k).or_insert(0) += n;
        }
        diagnostics.extend(r.diagnostics);
    }
    // 12,603 value lines: 8,006 domains, 3,277 ip:port (+ `213.165.60.118:22:443` in
    // apt_boteam.txt, read as the address; grep counted it a domain), 516 with a scheme, 771 path-only and 33 host/path
    // URL trails (counted with grep/awk over the files).
    assert_eq!(entries, 12_603);
    assert_eq!(loaded[&IocKind::Ip], 3_277 + 1);
    assert_eq!(loaded[&IocKind::Url], 516 + 771 + 33);
    assert_eq!(loaded[&IocKind::Domain], 8_006 - 1 - diagnostics.len());
    assert_eq!(
        diagnostics,
        [format!(
            "{}:250: not loaded: \"support\u{ac}forum.org\"",
            dir.join("apt_darkhotel.txt").display()
        )],
    );
    let set = b.build();
    let m = set.multi_actor_counts()[&FeedFormat::Maltrail];
    // Issue #18 item 4: how many values the trails list under more than one actor.
    assert_eq!((m.values, m.multi), (10_655, 12), "{m:?}");
}

/// Issue #18: the evidence line of an IOC that two actors' feed entries list cited the first
/// entry whatever the actor (APT39's line shown for APT34). A hit now pairs each actor with its
/// own entries.
#[test]
fn evidence_line_of_a_shared_value_is_the_actors_own_not_apt39s() {
    let apt39 = "# Aliases: chafer\n\n# Reference: https://example.org/apt39\n\nshared.example.com\nonly39.example.com\n";
    let apt34 = "# Aliases: oilrig\n\n# Reference: https://example.org/apt34\n\nonly34.example.com\nx.example.net\nshared.example.com\n";
    let mut b = IocSet::builder();
    b.load(apt39, "t/apt_39.txt").unwrap();
    b.load(apt34, "t/apt_34.txt").unwrap();
    let set = b.build();
    let mut ev = Event::default();
    ev.push("QueryName", Value::from("a.shared.example.com"));
    let hits = set.matches(&ev);
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    let names: Vec<&str> = h.actors.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["APT39", "APT34"]);
    // `sources[0]` is APT39's line: citing it for APT34 was the bug.
    assert_eq!(h.sources[0].feed, "t/apt_39.txt");
    let own = h.sources_of("APT34");
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].feed, "t/apt_34.txt");
    assert_eq!(own[0].id, "line 7");
    assert_eq!(own[0].title.as_deref(), Some("https://example.org/apt34"));
    let own39 = h.sources_of("APT39");
    assert_eq!(
        (own39[0].feed.as_str(), own39[0].id.as_str()),
        ("t/apt_39.txt", "line 5")
    );
    let m = set.multi_actor_counts()[&FeedFormat::Maltrail];
    assert_eq!((m.values, m.multi), (4, 1));
}
