//! Restarts: committed offsets persisted, resumed, and what happens to files that changed
//! while nothing was following them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use tracehunt_follow::{Batch, FollowError, FollowOptions, Follower, Note, Start};

fn opts() -> FollowOptions {
    FollowOptions {
        rescan_interval: Duration::ZERO,
        drain_grace: Duration::ZERO,
        ..FollowOptions::default()
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn lines(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("{{\"n\":{i}}}\n")).collect()
}

fn texts(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| l.text.clone()))
        .collect()
}

fn numbers(batches: &[Batch]) -> Vec<usize> {
    texts(batches)
        .iter()
        .map(|t| t[5..t.len() - 1].parse().unwrap())
        .collect()
}

fn notes(batches: &[Batch]) -> Vec<Note> {
    batches.iter().flat_map(|b| b.notes.clone()).collect()
}

#[test]
fn restart_resumes_exactly_after_the_last_persisted_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (log, state) = (dir.path().join("a.ndjson"), dir.path().join("state.json"));
    append(&log, lines(0, 10).as_bytes());
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert_eq!(numbers(&b), (0..10).collect::<Vec<_>>());
    let id = b[0].file;
    let at6 = b[0].lines[5].end_offset;
    assert!(f.commit(id, at6));
    f.persist().unwrap();
    // Committed further but never persisted: lost with the process.
    assert!(f.commit(id, b[0].lines[7].end_offset));
    drop(f);
    append(&log, lines(10, 15).as_bytes());
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert_eq!(numbers(&b), (6..15).collect::<Vec<_>>());
    assert_eq!(b[0].notes, [Note::Resumed { offset: at6 }]);
    assert_eq!(b[0].lines[0].line_no, 7);
    assert_eq!(f.committed(b[0].file), Some(at6));
}

/// Deterministic xorshift for the kill test.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn killed_without_persist_redelivers_only_lines_after_the_persisted_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (log, state) = (dir.path().join("a.ndjson"), dir.path().join("state.json"));
    let total = 3000;
    let mut written = 0;
    let mut seen = vec![0u32; total];
    let mut persisted_next = 0usize; // first line not covered by the persisted offset
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut restarts = 0;
    while written < total || persisted_next < total {
        // One "process life": open, poll and commit a bit, maybe persist, then SIGKILL.
        let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
        restarts += 1;
        let mut expect_next = persisted_next;
        for _ in 0..(next(&mut seed) % 5 + 1) {
            let n = (next(&mut seed) % 200) as usize;
            let upto = (written + n).min(total);
            // Appended in two pieces split mid-line.
            let text = lines(written, upto);
            let cut = text.len() / 2;
            append(&log, &text.as_bytes()[..cut]);
            let b1 = f.poll();
            append(&log, &text.as_bytes()[cut..]);
            let b2 = f.poll();
            written = upto;
            let mut last = None;
            for b in b1.iter().chain(&b2) {
                for l in &b.lines {
                    let n: usize = l.text[5..l.text.len() - 1].parse().unwrap();
                    assert_eq!(n, expect_next, "lines in order, none skipped");
                    assert_eq!(l.line_no, n as u64 + 1);
                    expect_next += 1;
                    seen[n] += 1;
                    last = Some((b.file, l.end_offset, n));
                }
            }
            if let Some((id, end, n)) = last {
                if next(&mut seed).is_multiple_of(2) {
                    assert!(f.commit(id, end));
                    if next(&mut seed).is_multiple_of(2) {
                        f.persist().unwrap();
                        persisted_next = n + 1;
                    }
                }
            }
        }
        drop(f); // no persist: what was committed since the last persist is lost
    }
    assert!(restarts > 3);
    assert!(seen.iter().all(|&c| c >= 1), "no line lost");
    // Only lines after a persisted offset are delivered again, so never more often than
    // there were restarts.
    assert!(seen.iter().all(|&c| c as usize <= restarts));
}

#[test]
fn corrupted_or_foreign_state_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"x\n");
    let state = dir.path().join("state.json");
    for bad in [
        &b"{\"version\":1,\"files\":["[..],
        b"not json at all",
        b"{\"files\":3}",
        b"{\"version\":9,\"files\":[]}",
        b"",
    ] {
        fs::write(&state, bad).unwrap();
        let err = Follower::open(&[&log], Some(&state), opts()).unwrap_err();
        match &err {
            FollowError::State { path, .. } => assert_eq!(path, &state),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("state.json"), "{err}");
    }
}

#[test]
fn state_of_a_replaced_file_starts_the_new_file_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (log, state) = (dir.path().join("a.log"), dir.path().join("state.json"));
    append(&log, lines(0, 5).as_bytes());
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert!(f.commit(b[0].file, b[0].end_offset));
    f.persist().unwrap();
    let saved_offset = b[0].end_offset;
    drop(f);
    // Replaced while down; the new file may even reuse the inode.
    fs::remove_file(&log).unwrap();
    append(&log, lines(100, 103).as_bytes());
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert_eq!(numbers(&b), [100, 101, 102]);
    let n = notes(&b);
    assert!(n.contains(&Note::Replaced { saved_offset }), "{n:?}");
    assert!(n.contains(&Note::Lost { saved_offset }), "{n:?}");
}

#[test]
fn file_rotated_while_down_is_finished_from_saved_offset_then_new_file_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (log, state) = (dir.path().join("app.log"), dir.path().join("state.json"));
    append(&log, lines(0, 4).as_bytes());
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let b = f.poll();
    let at2 = b[0].lines[1].end_offset;
    assert!(f.commit(b[0].file, at2));
    f.persist().unwrap();
    drop(f);
    append(&log, lines(4, 5).as_bytes());
    let rotated = dir.path().join("app.log.1");
    fs::rename(&log, &rotated).unwrap();
    append(&log, lines(5, 7).as_bytes());
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].path, rotated);
    assert_eq!(numbers(&b[..1]), [2, 3, 4]);
    assert_eq!(
        b[0].notes,
        [
            Note::Recovered {
                saved_path: log.clone(),
                offset: at2
            },
            Note::Closed {
                end_offset: b[0].end_offset
            }
        ]
    );
    assert_eq!(b[1].path, log);
    assert_eq!(numbers(&b[1..]), [5, 6]);
    assert_eq!(b[1].notes, [Note::Replaced { saved_offset: at2 }]);
    // Everything committed and persisted: the rotated file leaves the state.
    for x in &b {
        assert!(f.commit(x.file, x.end_offset));
    }
    assert!(f.poll().is_empty());
    f.persist().unwrap();
    drop(f);
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert!(texts(&b).is_empty());
    assert_eq!(notes(&b), [Note::Resumed { offset: 16 }]);
}

#[test]
fn saved_file_deleted_while_down_is_noted_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let state = dir.path().join("state.json");
    append(&a, b"1\n");
    append(&b_log, b"2\n");
    let pattern = dir.path().join("*.log");
    let mut f = Follower::open(&[&pattern], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert_eq!(texts(&b), ["1", "2"]);
    f.persist().unwrap(); // nothing committed: offsets 0
    drop(f);
    fs::remove_file(&a).unwrap();
    let mut f = Follower::open(&[&pattern], Some(&state), opts()).unwrap();
    let b = f.poll();
    assert_eq!(texts(&b), ["2"]);
    let lost: Vec<_> = b.iter().filter(|x| x.lines.is_empty()).collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].path, a);
    assert_eq!(lost[0].notes, [Note::Lost { saved_offset: 0 }]);
}

#[test]
fn start_end_applies_only_to_a_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let a = dir.path().join("a.log");
    append(&a, b"old\n");
    let pattern = dir.path().join("*.log");
    let o = FollowOptions {
        start: Start::End,
        ..opts()
    };
    let mut f = Follower::open(&[&pattern], Some(&state), o.clone()).unwrap();
    assert!(f.poll().is_empty());
    f.persist().unwrap();
    drop(f);
    // Appeared while down: read from 0 although `start` is `End`.
    append(&dir.path().join("b.log"), b"b1\n");
    append(&a, b"a2\n");
    let mut f = Follower::open(&[&pattern], Some(&state), o).unwrap();
    let mut got = texts(&f.poll());
    got.sort();
    assert_eq!(got, ["a2", "b1"]);
}

#[test]
fn persist_without_state_path_does_nothing_and_state_survives_a_failed_persist() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"1\n");
    let mut f = Follower::open(&[&log], None, opts()).unwrap();
    f.poll();
    f.persist().unwrap();
    // A state path in a directory that does not exist: the error names it.
    let state = dir.path().join("missing-dir").join("state.json");
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    let err = f.persist().unwrap_err();
    assert!(matches!(&err, FollowError::Persist { path, .. } if path == &state));
}

#[test]
fn state_file_matched_by_the_pattern_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (log, state) = (dir.path().join("a.json"), dir.path().join("state.json"));
    append(&log, b"{}\n");
    let pattern = dir.path().join("*.json*");
    let mut f = Follower::open(&[&pattern], Some(&state), opts()).unwrap();
    for _ in 0..3 {
        let b = f.poll();
        for x in &b {
            assert_eq!(x.path, log);
            f.commit(x.file, x.end_offset);
        }
        f.persist().unwrap();
    }
    assert_eq!(f.files().len(), 1);
    drop(f);
    let mut f = Follower::open(&[&pattern], Some(&state), opts()).unwrap();
    assert_eq!(notes(&f.poll()), [Note::Resumed { offset: 3 }]);
}

#[test]
fn huge_durations_do_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"1\n");
    let o = FollowOptions {
        rescan_interval: Duration::MAX,
        drain_grace: Duration::MAX,
        poll_interval: Duration::MAX,
        ..FollowOptions::default()
    };
    let mut f = Follower::open(&[dir.path().join("*.log")], None, o).unwrap();
    assert_eq!(texts(&f.poll()), ["1"]);
    fs::remove_file(&log).unwrap();
    assert_eq!(notes(&f.poll()), [Note::Vanished]);
    assert_eq!(f.files().len(), 1); // kept open: the grace never ends
}

/// A hand-written state entry for `path` (its real device and inode).
fn entry(path: &Path, fp_len: u64, fp: u64, offset: u64, line: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap();
    format!(
        r#"{{"path":{:?},"dev":{},"ino":{},"fp_len":{fp_len},"fp":{fp},"offset":{offset},"line":{line}}}"#,
        path.to_str().unwrap(),
        m.dev(),
        m.ino()
    )
}

#[test]
fn hostile_state_entries_restart_at_zero_or_resume_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let log = dir.path().join("a.log");
    append(&log, b"ab\ncd\nef\n");
    let fnv_empty = 0xcbf2_9ce4_8422_2325u64;
    let cases = [
        // (fp_len, fp, offset, line) → first delivered line, note
        (
            0,
            fnv_empty,
            1_000_000,
            "null",
            "ab",
            Note::Truncated { at: 1_000_000 },
        ),
        (0, fnv_empty, 4, "null", "ab", Note::Truncated { at: 4 }),
        (0, fnv_empty, 3, "null", "cd", Note::Resumed { offset: 3 }),
        (0, fnv_empty, 6, "99", "ef", Note::Resumed { offset: 6 }),
        (
            4_000_000_000,
            1,
            3,
            "1",
            "ab",
            Note::Replaced { saved_offset: 3 },
        ),
        (3, 12345, 3, "1", "ab", Note::Replaced { saved_offset: 3 }),
    ];
    for (fp_len, fp, offset, line, first, note) in cases {
        let e = entry(&log, fp_len, fp, offset, line);
        fs::write(&state, format!(r#"{{"version":1,"files":[{e}]}}"#)).unwrap();
        let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
        let b = f.poll();
        assert_eq!(texts(&b)[0], first, "{e}");
        assert!(notes(&b).contains(&note), "{e}: {:?}", notes(&b));
    }
    // An unknown line count is counted again: "cd" is line 2.
    let e = entry(&log, 0, fnv_empty, 3, "null");
    fs::write(&state, format!(r#"{{"version":1,"files":[{e}]}}"#)).unwrap();
    let mut f = Follower::open(&[&log], Some(&state), opts()).unwrap();
    assert_eq!(f.poll()[0].lines[0].line_no, 2);
}
