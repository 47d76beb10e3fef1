//! Follower behaviour on real files in temporary directories.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracehunt_follow::{Batch, FileId, FollowOptions, Follower, Note, Start};

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

fn texts(batches: &[Batch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| b.lines.iter().map(|l| l.text.clone()))
        .collect()
}

fn notes(batches: &[Batch]) -> Vec<Note> {
    batches.iter().flat_map(|b| b.notes.clone()).collect()
}

fn open(targets: &[&Path], state: Option<&Path>) -> Follower {
    Follower::open(targets, state, opts()).unwrap()
}

#[test]
fn appends_in_pieces_deliver_only_complete_lines_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.ndjson");
    append(&log, b"");
    let mut f = open(&[&log], None);
    assert!(f.poll().is_empty());
    append(&log, b"{\"n\":1}\n{\"n\"");
    let b = f.poll();
    assert_eq!(texts(&b), ["{\"n\":1}"]);
    assert_eq!((b[0].lines[0].line_no, b[0].lines[0].end_offset), (1, 8));
    assert_eq!(b[0].end_offset, 8);
    assert!(f.poll().is_empty());
    append(&log, b":2");
    assert!(f.poll().is_empty());
    append(&log, b"}\n{\"n\":3}\n{");
    let b = f.poll();
    assert_eq!(texts(&b), ["{\"n\":2}", "{\"n\":3}"]);
    let nums: Vec<_> = b[0]
        .lines
        .iter()
        .map(|l| (l.line_no, l.end_offset))
        .collect();
    assert_eq!(nums, [(2, 16), (3, 24)]);
    append(&log, b"}\n");
    assert_eq!(texts(&f.poll()), ["{}"]);
}

#[test]
fn crlf_line_endings_are_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("nxlog.json");
    append(&log, b"one\r\ntwo\r\n\r\nthree\r");
    let mut f = open(&[&log], None);
    let b = f.poll();
    assert_eq!(texts(&b), ["one", "two", ""]);
    assert_eq!(b[0].end_offset, 12);
    append(&log, b"\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["three"]);
    assert_eq!(b[0].lines[0].end_offset, 19);
}

#[test]
fn over_long_line_is_skipped_and_noted_while_neighbours_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let long = "x".repeat(40);
    append(&log, format!("short1\n{long}\nshort2\n").as_bytes());
    let o = FollowOptions {
        max_line_bytes: 16,
        ..opts()
    };
    let mut f = Follower::open(&[&log], None, o).unwrap();
    let b = f.poll();
    assert_eq!(texts(&b), ["short1", "short2"]);
    assert_eq!(b[0].lines[1].line_no, 3);
    assert_eq!(
        b[0].notes,
        [Note::LineTooLong {
            line_no: 2,
            start_offset: 7,
            end_offset: 48
        }]
    );
    // A long line arriving in pieces over several polls: never buffered past the cap.
    append(&log, b"0123456789");
    assert!(f.poll().is_empty());
    append(&log, b"0123456789");
    assert!(f.poll().is_empty());
    append(&log, b"0123456789\nok\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["ok"]);
    assert_eq!(
        b[0].notes,
        [Note::LineTooLong {
            line_no: 4,
            start_offset: 55,
            end_offset: 86
        }]
    );
    // A line of exactly the cap is delivered.
    append(&log, format!("{}\n", "y".repeat(16)).as_bytes());
    assert_eq!(texts(&f.poll()), ["y".repeat(16)]);
}

#[test]
fn invalid_utf8_is_replaced_and_noted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"ok\nbad\xff\xfe\n");
    let mut f = open(&[&log], None);
    let b = f.poll();
    assert_eq!(texts(&b), ["ok", "bad\u{fffd}\u{fffd}"]);
    assert_eq!(b[0].notes, [Note::InvalidUtf8 { line_no: 2 }]);
}

#[test]
fn rotation_by_rename_delivers_old_tail_then_new_file_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"1\n2\n");
    let mut f = open(&[&log], None);
    let b = f.poll();
    assert_eq!(texts(&b), ["1", "2"]);
    let old_id = b[0].file;
    // The writer appends, rotates, and starts the new file before we poll again.
    append(&log, b"3\n4");
    let mut held = OpenOptions::new().append(true).open(&log).unwrap();
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    held.write_all(b"\n").unwrap(); // the old writer finishes its line after the rename
    append(&log, b"5\n6\n");
    let b = f.poll();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].file, old_id);
    assert_eq!(b[0].path, log);
    assert_eq!(texts(&b[..1]), ["3", "4"]);
    assert_eq!(b[0].notes, [Note::Rotated, Note::Closed { end_offset: 8 }]);
    assert_ne!(b[1].file, old_id);
    assert_eq!(texts(&b[1..]), ["5", "6"]);
    assert_eq!(b[1].lines[0].line_no, 1);
    append(&log, b"7\n");
    assert_eq!(texts(&f.poll()), ["7"]);
    assert_eq!(f.files().len(), 1);
}

#[test]
fn rotated_file_is_drained_during_grace_then_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"1\n");
    let o = FollowOptions {
        drain_grace: Duration::from_millis(150),
        ..opts()
    };
    let mut f = Follower::open(&[&log], None, o).unwrap();
    assert_eq!(texts(&f.poll()), ["1"]);
    let mut held = OpenOptions::new().append(true).open(&log).unwrap();
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    assert_eq!(notes(&f.poll()), [Note::Vanished]); // no new app.log yet
    held.write_all(b"late\n").unwrap();
    assert_eq!(texts(&f.poll()), ["late"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(notes(&f.poll()), [Note::Closed { end_offset: 7 }]);
    assert!(f.files().is_empty());
}

#[test]
fn copytruncate_restarts_at_zero_under_a_new_id() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"aaaa\nbbbb\n");
    let mut f = open(&[&log], None);
    let b = f.poll();
    let first = b[0].file;
    assert_eq!(texts(&b), ["aaaa", "bbbb"]);
    // copytruncate: truncate in place, the writer goes on from 0.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, b"cc\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["cc"]);
    assert_ne!(b[0].file, first);
    assert_eq!(b[0].notes, [Note::Truncated { at: 10 }]);
    assert_eq!((b[0].lines[0].line_no, b[0].lines[0].end_offset), (1, 3));
    // A commit of the old generation is refused.
    assert!(!f.commit(first, 10));
    // Truncated and refilled past the old offset before the poll: the first bytes differ.
    let second = b[0].file;
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, b"dddddd\neeeeee\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["dddddd", "eeeeee"]);
    assert_ne!(b[0].file, second);
    assert_eq!(b[0].notes, [Note::Truncated { at: 3 }]);
}

#[test]
fn deleted_file_is_drained_and_recreated_file_read_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, b"1\n");
    let mut f = open(&[&log], None);
    assert_eq!(texts(&f.poll()), ["1"]);
    append(&log, b"2\n");
    fs::remove_file(&log).unwrap();
    let b = f.poll();
    assert_eq!(texts(&b), ["2"]);
    assert_eq!(b[0].notes, [Note::Vanished, Note::Closed { end_offset: 4 }]);
    assert!(f.poll().is_empty());
    append(&log, b"new\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["new"]);
    assert_ne!(b[0].file, FileId(0));
    assert_eq!(b[0].lines[0].end_offset, 4);
}

#[test]
fn glob_picks_up_new_files_and_renamed_matches() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.ndjson");
    append(&a, b"a1\n");
    append(&dir.path().join("skip.txt"), b"no\n");
    let pattern = dir.path().join("*.ndjson");
    let mut f = open(&[&pattern], None);
    assert_eq!(texts(&f.poll()), ["a1"]);
    let b_path = dir.path().join("b.ndjson");
    append(&b_path, b"b1\nb2\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["b1", "b2"]);
    assert_eq!(b[0].path, b_path);
    // Renamed to another matching name: followed on, nothing read twice.
    let a2 = dir.path().join("a-old.ndjson");
    fs::rename(&a, &a2).unwrap();
    append(&a2, b"a2\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["a2"]);
    assert_eq!(b[0].path, a2);
    let mut paths: Vec<PathBuf> = f.files().into_iter().map(|(_, p)| p.to_owned()).collect();
    paths.sort();
    assert_eq!(paths, [a2, b_path]);
}

#[test]
fn missing_plain_target_is_noted_once_and_followed_when_created() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later.log");
    let mut f = open(&[&log], None);
    assert_eq!(notes(&f.poll()), [Note::NotFound]);
    assert!(f.poll().is_empty());
    append(&log, b"x\n");
    assert_eq!(texts(&f.poll()), ["x"]);
}

#[test]
fn start_end_skips_existing_lines_but_keeps_the_line_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"old1\nold2\npart");
    let o = FollowOptions {
        start: Start::End,
        ..opts()
    };
    let mut f = Follower::open(&[&log], None, o).unwrap();
    assert!(f.poll().is_empty());
    append(&log, b"ial\nnew\n");
    let b = f.poll();
    assert_eq!(texts(&b), ["partial", "new"]);
    assert_eq!(b[0].lines[0].line_no, 3);
}

#[test]
fn max_batch_bytes_bounds_one_poll_and_says_more() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"0123456789\n0123456789\n0123456789\n");
    let o = FollowOptions {
        max_batch_bytes: 15,
        ..opts()
    };
    let mut f = Follower::open(&[&log], None, o).unwrap();
    let mut got = Vec::new();
    let mut polls = 0;
    loop {
        let b = f.poll();
        polls += 1;
        got.extend(texts(&b));
        if !b.iter().any(|b| b.more) {
            break;
        }
    }
    assert_eq!(got, ["0123456789"; 3]);
    assert_eq!(polls, 3);
}

#[test]
fn commit_accepts_only_delivered_line_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, b"ab\ncd\nef");
    let mut f = open(&[&log], None);
    let b = f.poll();
    let id = b[0].file;
    assert!(!f.commit(id, 4)); // inside a line
    assert!(!f.commit(id, 9)); // not delivered
    assert!(f.commit(id, 3));
    assert!(f.commit(id, 6));
    assert!(!f.commit(id, 3)); // before the last commit
    assert!(!f.commit(FileId(99), 3));
    assert_eq!(f.committed(id), Some(6));
}

#[test]
fn fifo_and_directory_matches_are_noted_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.log");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !status.is_ok_and(|s| s.success()) {
        return; // no mkfifo here
    }
    fs::create_dir(dir.path().join("sub.log")).unwrap();
    append(&dir.path().join("a.log"), b"a\n");
    let mut f = open(&[&dir.path().join("*.log")], None);
    let b = f.poll(); // would block forever if the FIFO were opened
    assert_eq!(texts(&b), ["a"]);
    let unreadable = notes(&b)
        .iter()
        .filter(|n| matches!(n, Note::Unreadable { .. }))
        .count();
    assert_eq!(unreadable, 2);
    assert!(f.poll().is_empty()); // reported once
}
