//! Resource limits (issue #6): huge fields and lines, symlink loops, many
//! tiny files. Everything is generated in a temporary directory. No timing
//! assertions: a quadratic path would make the suite visibly hang instead.

use std::io::Write;
use tracehunt_readers::{open, open_bytes, walk, Location, RecordErrorKind};

/// A 50 MB PowerShell script block in one JSON line is read in one piece,
/// and the lines around it too.
#[test]
fn fifty_mb_field_in_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    writeln!(f, "{{\"EventID\": 1, \"Channel\": \"Security\"}}").unwrap();
    let script = "IEX ".repeat(50_000_000 / 4);
    writeln!(
        f,
        "{{\"EventID\": 4104, \"Channel\": \"Microsoft-Windows-PowerShell/Operational\", \"ScriptBlockText\": \"{script}\"}}"
    )
    .unwrap();
    writeln!(f, "{{\"EventID\": 3, \"Channel\": \"Security\"}}").unwrap();
    drop(f);
    let out: Vec<_> = open(&p).unwrap().collect();
    assert_eq!(out.len(), 3);
    let ev = out[1].as_ref().unwrap();
    let text = ev.first("ScriptBlockText").unwrap().as_str().unwrap();
    assert_eq!(text.len(), script.len());
    assert_eq!(out[2].as_ref().unwrap().meta.event_id, Some(3));
}

/// A line longer than the 64 MiB record limit is reported and skipped
/// without being held in memory; the next line is read.
#[test]
fn line_over_the_record_limit_is_skipped() {
    let mut data = b"{\"EventID\": 1}\n{\"EventID\": 2, \"x\": \"".to_vec();
    data.resize(data.len() + (65 << 20), b'a');
    data.extend_from_slice(b"\"}\n{\"EventID\": 3}\n");
    let out: Vec<_> = open_bytes("huge.jsonl", data).unwrap().collect();
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        out.iter().map(|r| r.is_ok()).collect::<Vec<_>>()
    );
    assert_eq!(out[0].as_ref().unwrap().meta.event_id, Some(1));
    let e = out[1].as_ref().unwrap_err();
    assert_eq!(e.kind, RecordErrorKind::InvalidJson);
    assert_eq!(e.at, Location::Line(2));
    assert!(e.reason.contains("record limit"), "{e}");
    assert_eq!(out[2].as_ref().unwrap().meta.event_id, Some(3));
}

/// A directory that links back to itself (and to its parent): the walk
/// ends, lists the real files once and reports every link it skipped.
#[cfg(unix)]
#[test]
fn symlink_loop_terminates_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    let sub = root.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("a.jsonl"), b"{\"EventID\": 1}\n").unwrap();
    std::os::unix::fs::symlink(&root, sub.join("loop")).unwrap();
    std::os::unix::fs::symlink(&sub, sub.join("self")).unwrap();
    std::os::unix::fs::symlink(sub.join("a.jsonl"), root.join("alias.jsonl")).unwrap();
    let (files, errors) = walk(std::slice::from_ref(&root));
    assert_eq!(files, vec![sub.join("a.jsonl")]);
    let mut skipped: Vec<_> = errors.iter().map(|e| e.path.clone().unwrap()).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        vec![root.join("alias.jsonl"), sub.join("loop"), sub.join("self")]
    );
    assert!(errors[0].reason.contains("symbolic link not followed"));
    // A root that is itself a link to the loop is followed, once.
    let (files, _) = walk(&[sub.join("loop")]);
    assert_eq!(files.len(), 1);
}

/// 100,000 tiny files: walked in sorted order and each read.
#[test]
fn hundred_thousand_tiny_files() {
    let dir = tempfile::tempdir().unwrap();
    for d in 0..100 {
        let sub = dir.path().join(format!("d{d:03}"));
        std::fs::create_dir(&sub).unwrap();
        for i in 0..1000 {
            std::fs::write(
                sub.join(format!("{i:04}.jsonl")),
                format!("{{\"EventID\": {i}}}\n"),
            )
            .unwrap();
        }
    }
    let (files, errors) = walk(&[dir.path().to_path_buf()]);
    assert!(errors.is_empty());
    assert_eq!(files.len(), 100_000);
    assert!(files.windows(2).all(|w| w[0] < w[1]));
    let mut events = 0;
    for f in &files {
        events += open(f).unwrap().filter(Result::is_ok).count();
    }
    assert_eq!(events, 100_000);
}
