//! Runs every case in `tests/conformance/*.yml` (see the crate docs for the
//! format) and reports all failures at once.

use std::collections::BTreeSet;
use std::path::Path;
use tracehunt_conformance::{run, Case};

#[test]
fn conformance_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/conformance exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} cases", files.len());
    let mut failures = Vec::new();
    for p in &files {
        let text = std::fs::read_to_string(p).expect("readable");
        let case: Case = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{}: bad case file: {e}", p.display()));
                continue;
            }
        };
        let want: BTreeSet<(String, usize)> = case.expect.iter().cloned().collect();
        match run(&case) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{} ({}): expected {want:?}, got {got:?}",
                p.display(),
                case.spec
            )),
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
