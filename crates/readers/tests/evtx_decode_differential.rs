//! Issue #22 item 2: the EVTX reader turns each record's rendered JSON
//! into an [`Event`] with a borrowing parse instead of `serde_json::Value`.
//! This compares the two conversions on every record of every EVTX file of
//! the corpora (`shared/corpora`, see its README.md: `evtx-attack-samples`
//! GPL-3.0 sbousseaden/EVTX-ATTACK-SAMPLES, `samples-cc0` CC0,
//! `sigma/regression_data` DRL 1.1 SigmaHQ/sigma) and of `samples/evtx`:
//! same fields in the same order, same names, values and value types, same
//! `meta`, same errors.
//!
//! Records come from the `evtx` crate's own walk of each file (the reader's
//! settings: no checksum validation), rendered once with
//! `into_json_bytes`, the bytes the reader converts. When the corpora are
//! missing only `samples/evtx` is compared (and a note printed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracehunt_readers::evtx_record_json_paths;

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            evtx_files(&p, out);
        } else if p
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("evtx"))
        {
            out.push(p);
        }
    }
}

/// Totals over a set of files.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    files: usize,
    records: usize,
    events: usize,
    /// Records the borrowing parse left to the `Value` path.
    fallbacks: usize,
    /// Records whose rendering or conversion failed (both paths alike).
    errors: usize,
}

fn compare(files: &[PathBuf]) -> Tally {
    let mut t = Tally::default();
    let settings = evtx::ParserSettings::new()
        .num_threads(1)
        .validate_checksums(false);
    for path in files {
        let Ok(parser) = evtx::EvtxParser::from_path(path) else {
            continue;
        };
        t.files += 1;
        let mut parser = parser.with_configuration(settings.clone());
        for chunk in parser.chunks() {
            let Ok(mut chunk) = chunk else { continue };
            let Ok(mut parsed) = chunk.parse(Arc::new(settings.clone())) else {
                continue;
            };
            for rec in parsed.iter() {
                let Ok(rec) = rec else { continue };
                let id = rec.event_record_id;
                let Ok(bytes) = rec.into_json_bytes() else {
                    t.errors += 1;
                    continue;
                };
                t.records += 1;
                let (new, fast, reference) = evtx_record_json_paths(&bytes.data);
                assert_eq!(
                    new,
                    reference,
                    "{} record {id}: the new conversion differs from the Value path\n{}",
                    path.display(),
                    String::from_utf8_lossy(&bytes.data)
                );
                match new {
                    Ok(Some(_)) => t.events += 1,
                    Ok(None) | Err(_) => t.errors += 1,
                }
                if !fast {
                    t.fallbacks += 1;
                }
            }
        }
    }
    t
}

#[test]
fn bundled_samples_convert_identically() {
    let mut files = Vec::new();
    evtx_files(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/evtx")),
        &mut files,
    );
    let t = compare(&files);
    // README: 248 events in 10 files.
    assert_eq!(
        t,
        Tally {
            files: 10,
            records: 248,
            events: 248,
            fallbacks: 0,
            errors: 0
        }
    );
}

#[test]
fn every_corpus_record_converts_identically() {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora"
    ));
    if !root.is_dir() {
        println!("skipped: ../shared/corpora not present");
        return;
    }
    let mut per_dir = Vec::new();
    for dir in [
        "evtx-attack-samples",
        "samples-cc0",
        "sigma/regression_data",
    ] {
        let mut files = Vec::new();
        evtx_files(&root.join(dir), &mut files);
        per_dir.push((dir, compare(&files)));
    }
    println!("{per_dir:?}");
    // The record counts are those of tests/corpora.rs (7,455 records in the
    // 269 files of evtx-attack-samples, 248 in samples-cc0, cross-checked
    // there with python-evtx).
    assert_eq!(
        per_dir,
        [
            (
                "evtx-attack-samples",
                Tally {
                    files: 269,
                    records: 7455,
                    events: 7455,
                    fallbacks: 0,
                    errors: 0
                }
            ),
            (
                "samples-cc0",
                Tally {
                    files: 10,
                    records: 248,
                    events: 248,
                    fallbacks: 0,
                    errors: 0
                }
            ),
            (
                "sigma/regression_data",
                Tally {
                    files: 202,
                    records: 238,
                    events: 238,
                    fallbacks: 0,
                    errors: 0
                }
            ),
        ]
    );
}
