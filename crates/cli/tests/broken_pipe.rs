//! A reader that goes away (`tracehunt hunt … | head`) is not an error.

use std::path::Path;
use std::process::{Command, Stdio};

/// Issue #6: `hunt --format csv | head` exited 1 (the CSV writer turned the
/// `BrokenPipe` into a generic error) while jsonl and json exited 0.
#[test]
fn csv_to_a_closed_pipe_exits_0_like_the_other_formats() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/evtx");
    let s = samples.to_str().unwrap();
    for format in ["csv", "jsonl", "json"] {
        // The samples three times: more output than a pipe holds (64 KiB).
        let mut child = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
            .args(["hunt", s, s, s, "--format", format, "-q"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tracehunt");
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Fresh-user finding: with stderr closed (`hunt /nope 2>&1 | head -1`),
/// the first message after it panicked (exit 101); now it is dropped and the
/// run keeps its own exit code: 2 for nothing readable, 0 for a hunt that
/// printed its summary and verdict to the closed stderr.
#[test]
fn a_closed_stderr_is_not_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (args, code) in [
        (vec!["hunt", "/nonexistent/tracehunt-input"], 2),
        (vec!["hunt", "samples/evtx", "-f", "jsonl"], 0),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // every write to stderr now fails (EPIPE)
        let out = Command::new(env!("CARGO_BIN_EXE_tracehunt"))
            .args(&args)
            .current_dir(&root)
            .stdout(Stdio::piped())
            .stderr(writer)
            .output()
            .expect("run tracehunt");
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}
