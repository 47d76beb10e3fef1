//! Range-parallel reading of JSON lines (issue #4) on the real Mordor
//! corpus (`shared/corpora/mordor/windows`, MIT, OTRF/Security-Datasets: 54
//! files of flat JSON lines, 29 of them with CRLF line ends): reading a file
//! through [`plan_json_lines`] ranges gives exactly the events and record
//! errors (same line numbers) of reading it whole with [`open`].
//!
//! When the corpora are missing the tests print a note and pass.

use std::path::PathBuf;
use tracehunt_event::Event;
use tracehunt_readers::{
    open, open_bytes, plan_json_lines, plan_json_lines_bytes, walk, JsonLinesRanges, Location,
    RecordError, RecordErrorKind,
};

type Item = Result<Event, RecordError>;

fn mordor_files() -> Option<Vec<PathBuf>> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/mordor/windows"
    ));
    if !p.is_dir() {
        println!("note: {} not found; corpus test skipped", p.display());
        return None;
    }
    let (mut files, errs) = walk(&[p]);
    assert!(errs.is_empty(), "{errs:?}");
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    assert_eq!(files.len(), 54);
    Some(files)
}

fn ranged(plan: &JsonLinesRanges) -> Vec<Item> {
    (0..plan.len()).flat_map(|i| plan.range(i)).collect()
}

/// The planner's invariants: ranges tile the data, every range but the
/// first starts at a line start on a `{`.
fn check_tiling(plan: &JsonLinesRanges, data: &[u8]) {
    let r = plan.ranges();
    assert_eq!(r[0].start, 0);
    assert_eq!(r[0].first_line, 1);
    assert_eq!(r.last().unwrap().end, data.len() as u64);
    for w in r.windows(2) {
        assert_eq!(w[0].end, w[1].start);
        let s = w[1].start as usize;
        assert!(matches!(data[s - 1], b'\n' | b'\r') && data[s] == b'{');
        // The line number is the number of line ends before the start + 1.
        let ends = data[..s].iter().filter(|b| **b == b'\n').count()
            + data[..s]
                .windows(2)
                .filter(|w| w[0] == b'\r' && w[1] != b'\n')
                .count();
        assert_eq!(w[1].first_line, ends as u64 + 1);
    }
}

/// Each of the 54 files, cut into 64 KiB ranges (the size marks fall
/// mid-line, so each range is moved on to the next line start), reads
/// exactly like the whole file: 48,241 events, no error.
#[test]
fn every_mordor_file_reads_the_same_through_64k_ranges() {
    let Some(files) = mordor_files() else { return };
    const SIZE: u64 = 64 << 10;
    let (mut events, mut split, mut crlf, mut moved) = (0, 0, 0, 0);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let plan = plan_json_lines(f, SIZE)
            .unwrap()
            .expect("Mordor is JSON lines");
        check_tiling(&plan, &data);
        let whole: Vec<Item> = open(f).unwrap().collect();
        let got = ranged(&plan);
        assert!(
            got == whole,
            "{}: ranges differ from the whole file",
            f.display()
        );
        assert!(whole.iter().all(Result::is_ok), "{}", f.display());
        events += whole.len();
        if plan.len() > 1 {
            split += 1;
            crlf += usize::from(data.windows(2).any(|w| w == b"\r\n"));
        }
        moved += plan.ranges()[..plan.len() - 1]
            .iter()
            .filter(|r| r.end - r.start > SIZE)
            .count();
    }
    assert_eq!(events, 48_241);
    assert_eq!(split, 52, "files of more than 64 KiB");
    assert!(crlf >= 20, "{crlf} CRLF files split");
    assert!(moved > 1000, "size marks moved on from mid-line: {moved}");
}

/// All 54 files concatenated (LF and CRLF files mixed, the shape of the
/// benchmark's one big JSONL file), read through 1 MiB ranges.
#[test]
fn concatenated_mordor_reads_the_same_through_1m_ranges() {
    let Some(files) = mordor_files() else { return };
    let data: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    let plan = plan_json_lines_bytes("all.jsonl", data.clone(), 1 << 20).unwrap();
    assert!(plan.len() >= 90, "{} ranges", plan.len());
    check_tiling(&plan, &data);
    let whole: Vec<Item> = open_bytes("all.jsonl", data).unwrap().collect();
    assert_eq!(whole.len(), 48_241);
    assert!(ranged(&plan) == whole);
}

/// A CRLF file and an LF file from the corpus, without their final line
/// end, and with the line under a range's size mark cut short at the mark
/// (so the range before the boundary ends inside an unfinished record):
/// the broken record is one error at its line, with the same message, in
/// both readings; the events around it are all read; the record_id
/// fallback of events without one (the line) is the same.
#[test]
fn cut_record_at_a_range_boundary_and_no_final_newline() {
    let Some(files) = mordor_files() else { return };
    let pick = |name: &str| {
        files
            .iter()
            .find(|f| f.to_string_lossy().contains(name))
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, crlf) in [
        ("psh_python_webserver", true),
        ("empire_shell_net_local_users", false),
    ] {
        let mut data = std::fs::read(pick(name)).unwrap();
        assert_eq!(data.windows(2).any(|w| w == b"\r\n"), crlf, "{name}");
        while matches!(data.last(), Some(b'\n' | b'\r')) {
            data.pop();
        }
        // Cut the line holding byte MARK at MARK: a line end there.
        const MARK: usize = 300_000;
        let line_start = data[..MARK].iter().rposition(|b| *b == b'\n').unwrap() + 1;
        let line_end = MARK + data[MARK..].iter().position(|b| *b == b'\n').unwrap() + 1;
        let broken_line = data[..line_start].iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let mut cut = data[..MARK].to_vec();
        cut.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        cut.extend_from_slice(&data[line_end..]);
        let path = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, &cut).unwrap();

        let plan = plan_json_lines(&path, MARK as u64).unwrap().unwrap();
        check_tiling(&plan, &cut);
        let b = plan.ranges()[1];
        assert_eq!(b.start as usize, MARK + if crlf { 2 } else { 1 });
        assert_eq!(b.first_line, broken_line + 1);
        let whole: Vec<Item> = open(&path).unwrap().collect();
        let got = ranged(&plan);
        assert!(got == whole, "{name}");
        let errors: Vec<&RecordError> = whole.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        assert_eq!(errors[0].at, Location::Line(broken_line));
        assert_eq!(errors[0].kind, RecordErrorKind::InvalidJson);
        let lines = cut.iter().filter(|b| **b == b'\n').count() + 1;
        assert_eq!(whole.len(), lines, "{name}: one item per line");
        // The last record, on a line without a line end, is read.
        let last = whole.last().unwrap().as_ref().unwrap();
        if last.first("RecordNumber").is_none() && last.first("EventRecordID").is_none() {
            assert_eq!(last.meta.record_id, Some(lines as u64));
        }
    }
}

/// Breaker finding: a file that changed between planning and reading lost
/// records without a word: lines appended after planning were not read
/// (the last range stopped at the planned end, where reading the file
/// whole reads them), and a file truncated under a range just ended it
/// early. Now the last range reads on to the end, and a range that finds
/// fewer bytes than planned ends with one Truncated error naming them.
#[test]
fn file_changing_size_between_planning_and_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.jsonl");
    let line = |i: u32| format!("{{\"EventID\": {i}, \"Channel\": \"Security\"}}\n");
    let text: String = (0..100).map(line).collect();
    std::fs::write(&path, &text).unwrap();
    let plan = plan_json_lines(&path, 500).unwrap().unwrap();
    assert!(plan.len() > 5, "{:?}", plan.ranges());
    // Appended after planning: read, as reading the file whole reads them.
    let more: String = (100..110).map(line).collect();
    std::fs::write(&path, format!("{text}{more}")).unwrap();
    let got = ranged(&plan);
    assert_eq!(got.len(), 110);
    assert!(got.iter().all(Result::is_ok));
    assert_eq!(got[109].as_ref().unwrap().meta.event_id, Some(109));
    // Truncated after planning, inside the second range: its records up
    // to the cut, then one Truncated error per range that came up short.
    let cut = plan.ranges()[1].start as usize + 60;
    std::fs::write(&path, &text.as_bytes()[..cut]).unwrap();
    let got = ranged(&plan);
    let errors: Vec<&RecordError> = got.iter().filter_map(|r| r.as_ref().err()).collect();
    let short = plan.len() - 2; // ranges 1 ..= len-2; the last reads what is there
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.kind == RecordErrorKind::Truncated)
            .count(),
        short
    );
    assert!(
        errors[0].reason.starts_with("invalid JSON")
            || errors[0].reason.contains("the file shrank"),
        "{errors:?}"
    );
    let shrank = errors
        .iter()
        .find(|e| e.kind == RecordErrorKind::Truncated)
        .unwrap();
    assert_eq!(
        shrank.reason,
        format!(
            "the file shrank while being read: bytes {}..{} planned, only {} there; the records after are lost",
            plan.ranges()[1].start,
            plan.ranges()[1].end,
            cut
        )
    );
    let events = got.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        events,
        text.as_bytes()[..cut]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
    );
}

/// Fresh-user trial: pretty-printed JSON without indentation lost every
/// record holding an array of objects (`"X": [` / `{` — a line starting
/// with `{` always started a new record: 4 errors, 0 events). Now such a
/// line continues the open value when the previous line ends with `[`, `,`
/// or `:` and is not a record's first line; the range planner applies the
/// same rule, so ranges of any size read exactly what the whole file reads.
/// A JSON line cut after a `,` still ends at the next `{` line.
#[test]
fn pretty_json_without_indentation_keeps_objects_inside_arrays() {
    let one = b"{\n\"EventID\": 1,\n\"X\": [\n{\n\"a\": 1\n},\n{\n\"b\": 2\n}\n],\n\"Y\":\n{\n\"c\": 3\n}\n}\n";
    let (ev, er): (Vec<Item>, Vec<Item>) = open_bytes("p0.json", one.to_vec())
        .unwrap()
        .partition(|r| r.is_ok());
    assert_eq!((ev.len(), er.len()), (1, 0), "{er:?}");
    let e = ev[0].as_ref().unwrap();
    assert_eq!(e.meta.event_id, Some(1));
    let mut data = Vec::new();
    for _ in 0..50 {
        data.extend_from_slice(one);
    }
    // A JSON line cut after a comma, then whole JSON lines.
    data.extend_from_slice(b"{\"EventID\": 2, \"X\": [1,\n{\"EventID\": 3}\n{\"EventID\": 4}\n");
    let whole: Vec<Item> = open_bytes("p.json", data.clone()).unwrap().collect();
    let ok = whole.iter().filter(|r| r.is_ok()).count();
    let errs: Vec<&RecordError> = whole.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(ok, 52);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].at, Location::Line(50 * 15 + 1));
    for size in [1, 7, 64, 200, 1000] {
        let plan = plan_json_lines_bytes("p.json", data.clone(), size).unwrap();
        check_tiling(&plan, &data);
        assert!(plan.len() > 1 || size == 1000 && data.len() <= 1000);
        assert!(ranged(&plan) == whole, "range size {size}");
        // No range starts at a `{` line inside a record.
        for r in &plan.ranges()[1..] {
            let before = &data[..r.start as usize - 1];
            let prev = &before[before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1)..];
            assert!(
                prev.first() == Some(&b'{')
                    || !prev.ends_with(b"[") && !prev.ends_with(b",") && !prev.ends_with(b":")
            );
        }
    }
}

/// The planner's rule across its 1 MiB read buffer: a line ending in `[`
/// followed by 1.2 MB of blanks, then a `{` line, is not a range start;
/// the next record's `{` line is.
#[test]
fn pretty_json_rule_holds_across_the_planner_buffer() {
    let mut data = b"{\n\"EventID\": 1,\n\"X\": [".to_vec();
    data.resize(data.len() + 1_200_000, b' ');
    data.extend_from_slice(b"\n{\n\"a\": 1\n}\n]\n}\n{\n\"EventID\": 2\n}\n");
    let whole: Vec<Item> = open_bytes("big.json", data.clone()).unwrap().collect();
    assert_eq!(whole.len(), 2);
    assert!(whole.iter().all(|r| r.is_ok()), "{whole:?}");
    let plan = plan_json_lines_bytes("big.json", data.clone(), 1000).unwrap();
    check_tiling(&plan, &data);
    let starts: Vec<u64> = plan.ranges().iter().map(|r| r.first_line).collect();
    assert_eq!(starts, vec![1, 9]);
    assert!(ranged(&plan) == whole);
}
