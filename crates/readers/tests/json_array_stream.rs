//! JSON arrays are streamed element by element (issue #6): a 200 MB array
//! used 5 GB when it was parsed whole; a damaged element is one error and
//! its neighbours are kept. This file is its own test binary so that the
//! peak-memory check sees only its own test.

use std::io::Write;
use tracehunt_readers::{open, open_bytes, Location, RecordErrorKind};

fn collect(name: &str, data: &[u8]) -> Vec<Result<tracehunt_event::Event, String>> {
    open_bytes(name, data.to_vec())
        .unwrap()
        .map(|r| r.map_err(|e| format!("{:?} {:?} {}", e.kind, e.at, e.reason)))
        .collect()
}

fn ids(out: &[Result<tracehunt_event::Event, String>]) -> Vec<Option<u32>> {
    out.iter()
        .map(|r| r.as_ref().ok().and_then(|e| e.meta.event_id))
        .collect()
}

/// Peak resident set size of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(l.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

/// 200 MB of pretty-printed array with a 50 MB script block in one element:
/// every element is read, and memory stays near the largest element (the
/// whole-array parse took 5 GB).
#[test]
fn two_hundred_mb_array_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    writeln!(f, "[").unwrap();
    let pad = "x".repeat(1500);
    let n = 100_000;
    for i in 0..n {
        write!(
            f,
            "  {{\n    \"EventID\": {},\n    \"Channel\": \"Security\",\n    \"CommandLine\": \"{pad}\"\n  }},\n",
            i % 60_000
        )
        .unwrap();
    }
    let script = "IEX ".repeat(50_000_000 / 4);
    writeln!(
        f,
        "  {{\"EventID\": 4104, \"Channel\": \"Microsoft-Windows-PowerShell/Operational\", \"ScriptBlockText\": \"{script}\"}}\n]"
    )
    .unwrap();
    drop(f);
    drop(script);
    assert!(std::fs::metadata(&p).unwrap().len() > 200_000_000);
    let before = peak_rss_mib();
    let mut ok = 0;
    let mut big = 0;
    for r in open(&p).unwrap() {
        let ev = r.unwrap();
        ok += 1;
        if let Some(t) = ev.first("ScriptBlockText") {
            big = t.as_str().unwrap().len();
        }
    }
    assert_eq!(ok, n + 1);
    assert_eq!(big, 50_000_000);
    if let (Some(b), Some(a)) = (before, peak_rss_mib()) {
        eprintln!("peak RSS {b} MiB before, {a} MiB after");
        // The 50 MB element is held as bytes and as a parsed value: well
        // under 1 GiB, where the whole-array parse needed about 5 GiB.
        assert!(
            a < b.max(200) + 700,
            "peak RSS {a} MiB (was {b} MiB before reading)"
        );
    }
}

/// A damaged element in the middle of a one-object-per-line array is one
/// error; the elements around it are kept.
#[test]
fn damaged_element_does_not_sink_its_neighbours() {
    let data = b"[\n{\"EventID\": 1},\n{\"EventID\": 2, \"x\": [1, 2},\n{\"EventID\": 3},\n{\"EventID\": \"4\" \"y\"},\n{\"EventID\": 5}\n]\n";
    let out = collect("d.json", data);
    assert_eq!(
        ids(&out),
        [Some(1), None, Some(3), None, Some(5)],
        "{out:?}"
    );
    let e = out[1].as_ref().unwrap_err();
    assert!(e.starts_with("InvalidJson Element(1) line 3:"), "{e}");
    assert!(e.contains("cut short by the next element at line 4"), "{e}");
    assert!(out[3].as_ref().unwrap_err().contains("Element(3) line 5:"));
}

/// Pretty-printed: an element whose closing brace is lost ends where the
/// next element starts at its indentation; an unterminated string ends at
/// its line.
#[test]
fn pretty_printed_array_resynchronises() {
    let data = b"[\n  {\n    \"EventID\": 1,\n    \"Channel\": \"Security\"\n  },\n  {\n    \"EventID\": 2,\n    \"CommandLine\": \"cut here\n  },\n  {\n    \"EventID\": 3\n  },\n  {\n    \"EventID\": 4,\n    \"a\": {\"b\": 1}\n  {\n    \"EventID\": 5\n  }\n]";
    let out = collect("p.json", data);
    assert_eq!(
        ids(&out),
        [Some(1), None, Some(3), None, Some(5)],
        "{out:?}"
    );
}

/// Truncated files keep what came before the cut and say the file ends
/// early, once.
#[test]
fn truncated_arrays() {
    let out = collect("t1.json", b"[{\"EventID\": 1}, {\"EventID\": 2, \"x\": ");
    assert_eq!(ids(&out), [Some(1), None]);
    let e = out[1].as_ref().unwrap_err();
    assert!(e.starts_with("Truncated Element(1)"), "{e}");
    let out = collect("t2.json", b"[{\"EventID\": 1}, {\"EventID\": 2}");
    assert_eq!(ids(&out), [Some(1), Some(2), None]);
    assert!(out[2].as_ref().unwrap_err().contains("no closing ']'"));
}

/// Arrays one after another are all read; other trailing data is reported.
#[test]
fn concatenated_arrays_and_trailing_garbage() {
    let out = collect(
        "c.json",
        b"[{\"EventID\": 1}]\n[{\"EventID\": 2}, {\"EventID\": 3}]\n",
    );
    assert_eq!(ids(&out), [Some(1), Some(2), Some(3)]);
    let out = collect("g.json", b"\xEF\xBB\xBF[{\"EventID\": 1}] trailing");
    assert_eq!(ids(&out), [Some(1), None]);
    assert!(out[1]
        .as_ref()
        .unwrap_err()
        .contains("after the closing ']'"));
    let out = collect("e.json", b"[ ]");
    assert!(out.is_empty());
    // Element numbers (record ids) follow the element index.
    let out = collect("n.json", b"[{\"EventID\": 1}, 7, {\"EventID\": 2}]");
    assert_eq!(out[2].as_ref().unwrap().meta.record_id, Some(3));
    let e = open_bytes("n.json", b"[{\"EventID\": 1}, 1]".to_vec())
        .unwrap()
        .nth(1)
        .unwrap()
        .unwrap_err();
    assert_eq!(e.at, Location::Element(1));
    assert_eq!(e.kind, RecordErrorKind::UnrecognisedShape);
}
