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
