//! Issue #22 item 2: JSON lines in the evtx-JSON shape (`{"Event": {…}}`,
//! what `evtx_dump -o jsonl` writes, one record per line) are read by the
//! EVTX reader's borrowing parse (`evtx_event.rs`) instead of the general
//! `serde_json::Value` path. The events must be exactly those of the
//! general path (`serde_json::Value` → [`records_of_json_value`], with the
//! reader's fallback record id, the line number) on:
//! - every record of every EVTX file of the corpora (`shared/corpora`, see
//!   its README.md: `evtx-attack-samples` GPL-3.0
//!   sbousseaden/EVTX-ATTACK-SAMPLES, `samples-cc0` CC0,
//!   `sigma/regression_data` DRL 1.1 SigmaHQ/sigma) and of `samples/evtx`,
//!   rendered by the `evtx` crate (`into_json_bytes`) one per line;
//! - the 202 pretty-printed JSON renderings of `sigma/regression_data`
//!   (multi-line values);
//! - the first copy of the benchmark lane `bench/out/evtxjson-x1/evtx.jsonl`
//!   (`bench/rsigma.sh`: `evtx_dump -o jsonl` of evtx-attack-samples) when
//!   it has been built;
//! - hand-made lines the borrowing parse must leave to the general path.
//!
//! When the corpora are missing only `samples/evtx` is compared.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracehunt_event::Event;
use tracehunt_readers::{open, records_of_json_value, RecordError};

fn files_with(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_with(&p, ext, out);
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)) {
            out.push(p);
        }
    }
}

/// Every record of the EVTX files as the `evtx` crate renders it, one line each.
fn rendered_lines(files: &[PathBuf]) -> Vec<u8> {
    let settings = evtx::ParserSettings::new()
        .num_threads(1)
        .validate_checksums(false);
    let mut out = Vec::new();
    for path in files {
        let Ok(parser) = evtx::EvtxParser::from_path(path) else {
            continue;
        };
        let mut parser = parser.with_configuration(settings.clone());
        for chunk in parser.chunks() {
            let Ok(mut chunk) = chunk else { continue };
            let Ok(mut parsed) = chunk.parse(Arc::new(settings.clone())) else {
                continue;
            };
            for rec in parsed.iter() {
                if let Ok(bytes) = rec.and_then(|r| r.into_json_bytes()) {
                    out.extend_from_slice(&bytes.data);
                    out.push(b'\n');
                }
            }
        }
    }
    out
}

/// The general path over `text`'s lines, or (`values`) over the JSON
/// values it holds one after another (pretty-printed, each starting on a
/// line of its own), with the reader's fallback record id: the line the
/// value starts on.
fn general(text: &str, values: bool) -> Vec<Result<Event, String>> {
    let mut parsed: Vec<(u64, Result<serde_json::Value, String>)> = Vec::new();
    if values {
        let mut it = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
        let mut end = 0;
        while let Some(v) = it.next() {
            let begin = end + text[end..].len() - text[end..].trim_start().len();
            let line = text[..begin].matches('\n').count() as u64 + 1;
            parsed.push((line, v.map_err(|e| e.to_string())));
            end = it.byte_offset();
        }
    } else {
        for (i, l) in text.lines().enumerate() {
            if !l.trim().is_empty() {
                let v = serde_json::from_str(l).map_err(|e| format!("invalid JSON: {e}"));
                parsed.push((i as u64 + 1, v));
            }
        }
    }
    let mut out = Vec::new();
    for (line, v) in parsed {
        match v {
            Ok(v) => out.extend(records_of_json_value(v).into_iter().map(|r| {
                r.map(|mut ev| {
                    ev.meta.record_id.get_or_insert(line);
                    ev
                })
            })),
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// The reader's records of `path` equal the general path's; their number.
fn same(path: &Path, values: bool) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let read: Vec<Result<Event, RecordError>> = open(path).unwrap().collect();
    let want = general(&text, values);
    assert_eq!(read.len(), want.len(), "{}", path.display());
    for (i, (r, w)) in read.iter().zip(&want).enumerate() {
        match (r, w) {
            (Ok(r), Ok(w)) => assert_eq!(r, w, "{} record {i}", path.display()),
            (Err(_), Err(_)) => {}
            _ => panic!("{} record {i}: {r:?} against {w:?}", path.display()),
        }
    }
    read.iter().filter(|r| r.is_ok()).count()
}

fn lines_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    f.write_all(bytes).unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn evtx_json_lines_of_the_bundled_samples_equal_the_general_path() {
    let mut files = Vec::new();
    files_with(
        &PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/evtx")),
        "evtx",
        &mut files,
    );
    let f = lines_file(&rendered_lines(&files));
    // README: 248 events in 10 files.
    assert_eq!(same(f.path(), false), 248);
}

#[test]
fn evtx_json_lines_of_every_corpus_record_equal_the_general_path() {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora"
    ));
    if !root.is_dir() {
        println!("skipped: ../shared/corpora not present");
        return;
    }
    let mut counts = Vec::new();
    for dir in [
        "evtx-attack-samples",
        "samples-cc0",
        "sigma/regression_data",
    ] {
        let mut files = Vec::new();
        files_with(&root.join(dir), "evtx", &mut files);
        let f = lines_file(&rendered_lines(&files));
        counts.push((dir, same(f.path(), false)));
    }
    // The record counts of tests/evtx_decode_differential.rs.
    assert_eq!(
        counts,
        [
            ("evtx-attack-samples", 7455),
            ("samples-cc0", 248),
            ("sigma/regression_data", 238)
        ]
    );
    // The pretty-printed renderings beside the regression EVTX files.
    let mut pretty = Vec::new();
    files_with(&root.join("sigma/regression_data"), "json", &mut pretty);
    assert_eq!(pretty.len(), 202);
    let events: usize = pretty.iter().map(|p| same(p, true)).sum();
    assert_eq!(events, 238);
}

#[test]
fn first_copy_of_the_evtx_json_bench_lane_equals_the_general_path() {
    let lane = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/out/evtxjson-x1/evtx.jsonl"
    ));
    let Ok(file) = std::fs::File::open(&lane) else {
        println!("skipped: {} not built (bench/rsigma.sh)", lane.display());
        return;
    };
    // One copy of evtx-attack-samples (bench/run.sh: 7,455 records).
    let mut head = Vec::new();
    for line in std::io::BufReader::new(file).split(b'\n').take(7455) {
        head.extend_from_slice(&line.unwrap());
        head.push(b'\n');
    }
    let f = lines_file(&head);
    assert_eq!(same(f.path(), false), 7455);
}

#[test]
fn lines_the_borrowing_parse_declines_read_as_before() {
    // Duplicate keys, Velociraptor's numeric forms, a member beside
    // `Event`, an envelope-like sibling, invalid JSON, a flat record, an
    // `Event` that is not an object, blanks before the key.
    let lines = [
        r#"{"Event":{"System":{"EventID":1,"EventID":2,"Channel":"Security"}}}"#,
        r#"{"Event":{"System":{"EventID":4688,"TimeCreated":{"SystemTime":1549462715.9}}}}"#,
        r#"{"Event":{"System":{"EventID":1,"Keywords":9}}}"#,
        r#"{"Event":{"System":{"EventID":1}},"Records":[{"EventID":2}]}"#,
        r#"{"Event":{"System":{"EventID":1}},"tracehunt_event":1}"#,
        r#"{"Event":{"System":{"EventID":1}}"#,
        r#"{"Event":{"System":{"EventID":1e999}}}"#,
        r#"{"Event":7,"EventID":3}"#,
        r#"{"EventID":4624,"Channel":"Security","Event":1}"#,
        r#"  {  "Event":{"System":{"EventID":4624,"Channel":"security"},"EventData":{"A":"b"}}}  "#,
        r#"{"Event":{"EventData":{"A":"b"},"System":{"EventID":1}}}"#,
    ];
    let f = lines_file(lines.join("\n").as_bytes());
    assert_eq!(same(f.path(), false), 9);
}
