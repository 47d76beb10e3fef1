//! Every `tracehunt` example of README.md runs and exits as documented
//! (issue #19: "the README is correct for every example"), through
//! `scripts/readme-examples.py` with this build's binary and the real corpora
//! in `../shared/corpora`. The script prints one line per example; this test
//! fails on any failed example and checks that the examples were found at all.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_readme_example_runs_as_documented() {
    let corpora = root().join("../shared/corpora");
    if !corpora.is_dir() {
        eprintln!("skipped: ../shared/corpora not present");
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        panic!("python3 is needed to run scripts/readme-examples.py");
    }
    let out = Command::new("python3")
        .arg(root().join("scripts/readme-examples.py"))
        .args(["--bin", env!("CARGO_BIN_EXE_tracehunt"), "--corpora"])
        .arg(&corpora)
        .current_dir(root())
        .output()
        .expect("run scripts/readme-examples.py");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{text}{err}");
    assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
    // "readme-examples: N passed, 0 failed, K blocks skipped"
    let last = text.lines().last().unwrap_or_default();
    let passed: usize = last
        .strip_prefix("readme-examples: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no total line: {last}"));
    assert!(
        passed >= 30,
        "only {passed} README commands ran: the extraction lost examples\n{text}"
    );
    assert!(last.contains(" 0 failed"), "{last}");
}
