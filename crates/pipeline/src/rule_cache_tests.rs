//! Tests of the rule cache bytes: a decoded set scans exactly like the
//! compiled one (samples/evtx, built-in rules and, when the corpora are
//! present, all SigmaHQ rules); every truncation and every damaged byte is
//! refused; payloads damaged behind a recomputed checksum (what a forger or
//! a writer bug would produce) never panic the decoder or a scanner.

use super::*;
use std::path::{Path, PathBuf};
use tracehunt_engine::{CompileOptions, Scanner};
use tracehunt_event::Event;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files_with(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_with(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn loaded_from(dirs: &[PathBuf]) -> Loaded {
    let mut files = Vec::new();
    for d in dirs {
        files_with(d, "yml", &mut files);
    }
    let parsed = files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            tracehunt_sigma::load_rules(&p.display().to_string(), &text)
        })
        .collect();
    Loaded::build(Vec::new(), parsed, &CompileOptions::default())
}

fn sample_events() -> Vec<Event> {
    let mut files = Vec::new();
    files_with(&root().join("samples/evtx"), "evtx", &mut files);
    files
        .iter()
        .filter_map(|p| tracehunt_readers::open(p).ok())
        .flat_map(|it| it.filter_map(Result::ok))
        .collect()
}

fn hits(rs: &Ruleset, events: &[Event]) -> Vec<Vec<usize>> {
    let mut scanner = Scanner::new(rs);
    events
        .iter()
        .map(|ev| {
            let mut out = Vec::new();
            scanner.scan(ev, &mut out);
            out
        })
        .collect()
}

fn key() -> Key {
    let mut k = KeyBuilder::new("test build");
    k.part("rules", b"x");
    k.finish()
}

fn assert_same(a: &Loaded, b: &Loaded, events: &[Event]) {
    assert_eq!(a.diagnostics, b.diagnostics);
    assert_eq!((a.files, a.failed), (b.files, b.failed));
    assert_eq!(a.correlation_rules, b.correlation_rules);
    assert_eq!(a.correlations.len(), b.correlations.len());
    assert_eq!(
        serde_json::to_value(a.ruleset.rules()).unwrap(),
        serde_json::to_value(b.ruleset.rules()).unwrap()
    );
    let (ha, hb) = (hits(&a.ruleset, events), hits(&b.ruleset, events));
    assert_eq!(ha, hb);
}

#[test]
fn decoded_ruleset_scans_like_the_compiled_one() {
    let events = sample_events();
    assert_eq!(events.len(), 248);
    let builtin = loaded_from(&[root().join("rules/builtin")]);
    let bytes = encode(&builtin, &key()).unwrap();
    let back = decode(&bytes, &key()).unwrap();
    assert_same(&builtin, &back, &events);
    assert!(hits(&back.ruleset, &events).iter().flatten().count() > 100);

    let sigma = root().join("../shared/corpora/sigma");
    if !sigma.join("rules").is_dir() {
        eprintln!("skipped: ../shared/corpora not present");
        return;
    }
    let dirs: Vec<PathBuf> = ["rules", "rules-emerging-threats", "rules-threat-hunting"]
        .iter()
        .map(|d| sigma.join(d))
        .collect();
    let all = loaded_from(&dirs);
    assert!(all.ruleset.len() >= 3754, "{}", all.ruleset.len());
    assert!(!all.diagnostics.is_empty());
    let back = decode(&encode(&all, &key()).unwrap(), &key()).unwrap();
    assert_same(&all, &back, &events);
}

#[test]
fn every_truncation_and_damaged_byte_is_refused() {
    let loaded = Loaded::from_yaml(&[
        (
            "r.yml",
            "title: Whoami\nid: 11111111-1111-4111-8111-111111111111\n\
             logsource: {product: windows, category: process_creation}\n\
             detection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n    CommandLine|re: 'a+b'\n  condition: sel\nlevel: medium\n",
        ),
        (
            "c.yml",
            "title: Many whoami\nid: 22222222-2222-4222-8222-222222222222\n\
             correlation:\n  type: event_count\n  rules:\n    - 11111111-1111-4111-8111-111111111111\n\
             \x20 group-by:\n    - Computer\n  timespan: 5m\n  condition:\n    gte: 3\nlevel: high\n",
        ),
    ]);
    assert_eq!(loaded.correlations.len(), 1, "{:?}", loaded.diagnostics);
    let bytes = encode(&loaded, &key()).unwrap();
    let back = decode(&bytes, &key()).unwrap();
    assert_eq!(back.correlations.len(), 1);
    assert_eq!(back.correlation_rules, loaded.correlation_rules);
    assert_eq!(
        back.ruleset.rule(1).id,
        "22222222-2222-4222-8222-222222222222"
    );
    let mut other = KeyBuilder::new("another build");
    other.part("rules", b"x");
    assert_eq!(
        decode(&bytes, &other.finish()).err(),
        Some(CacheError::Stale)
    );
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len], &key()).is_err(), "length {len}");
    }
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(decode(&b, &key()).is_err(), "byte {i} ^ {bit:#x}");
        }
    }
}

/// Mutated payloads whose checksum is recomputed: the decoder returns an
/// error or a set that passes `validate`, and such a set scans the
/// samples without panicking.
#[test]
fn payload_damage_behind_a_valid_checksum_never_panics() {
    let events = sample_events();
    let loaded = loaded_from(&[root().join("rules/builtin")]);
    let bytes = encode(&loaded, &key()).unwrap();
    let payload = &bytes[HEADER_LEN..];
    let reseal = |p: &[u8]| {
        let mut out = bytes[..HEADER_LEN].to_vec();
        out[44..52].copy_from_slice(&(p.len() as u64).to_le_bytes());
        out[52..84].copy_from_slice(&Sha256::digest(p));
        out.extend_from_slice(p);
        out
    };
    assert!(decode(&reseal(payload), &key()).is_ok());
    let (mut refused, mut accepted) = (0, 0);
    // A deterministic spread of positions and values (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut p = payload.to_vec();
        let at = (x % p.len() as u64) as usize;
        p[at] = (x >> 32) as u8;
        if x.is_multiple_of(7) {
            p.truncate(at);
        }
        match decode(&reseal(&p), &key()) {
            Err(_) => refused += 1,
            Ok(l) => {
                accepted += 1;
                let _ = hits(&l.ruleset, &events);
            }
        }
    }
    assert!(refused > 100, "refused {refused}, accepted {accepted}");
}
