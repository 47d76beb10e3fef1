//! SigmaHQ's own regression data (`../shared/corpora/sigma/regression_data`,
//! Detection Rule License 1.1): every case names one rule and ships an
//! `.evtx` that must trigger it. We load all active SigmaHQ rule folders,
//! scan each case's EVTX through our reader, and require the named rule to
//! fire. Failures are listed by case.

use std::path::{Path, PathBuf};
use tracehunt_engine::{compile, CompileOptions, Scanner};

fn corpora() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora");
    p.join("sigma/regression_data").is_dir().then_some(p)
}

fn yml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_sigmahq_regression_case_fires_its_rule() {
    let Some(c) = corpora() else {
        eprintln!("skipped: ../shared/corpora not present");
        return;
    };
    let sigma = c.join("sigma");
    let mut rule_files = Vec::new();
    for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        yml_files(&sigma.join(d), &mut rule_files);
    }
    let mut docs = Vec::new();
    for f in &rule_files {
        let loaded =
            tracehunt_sigma::load_rules_bytes(&f.display().to_string(), &std::fs::read(f).unwrap());
        docs.extend(loaded.rules);
    }
    let (rs, _) = compile(docs, &CompileOptions::default());

    let mut infos = Vec::new();
    yml_files(&sigma.join("regression_data"), &mut infos);
    infos.retain(|p| p.file_name().is_some_and(|n| n == "info.yml"));
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut scanner = Scanner::new(&rs);
    for info in &infos {
        let v: yaml_serde::Value =
            yaml_serde::from_str(&std::fs::read_to_string(info).unwrap()).unwrap();
        let rule_id = v["rule_metadata"][0]["id"].as_str().unwrap().to_owned();
        let Some(tests) = v["regression_tests_info"].as_sequence() else {
            continue;
        };
        for t in tests {
            if t["type"].as_str() != Some("evtx") {
                continue;
            }
            cases += 1;
            let evtx = sigma.join(t["path"].as_str().unwrap());
            let Some(ri) = rs.find(&rule_id) else {
                failures.push(format!("{}: rule {rule_id} not loaded", info.display()));
                continue;
            };
            let mut fired = false;
            let mut events = 0;
            match tracehunt_readers::open(&evtx) {
                Ok(records) => {
                    for ev in records.flatten() {
                        events += 1;
                        let mut hits = Vec::new();
                        scanner.scan(&ev, &mut hits);
                        fired |= hits.contains(&ri);
                    }
                }
                Err(e) => {
                    failures.push(format!("{}: {e}", evtx.display()));
                    continue;
                }
            }
            if !fired {
                failures.push(format!(
                    "{} ({events} events): rule {rule_id} `{}` did not fire",
                    evtx.display(),
                    rs.rule(ri).title
                ));
            }
        }
    }
    eprintln!("{cases} cases, {} failures", failures.len());
    for f in &failures {
        eprintln!("  FAIL {f}");
    }
    assert!(
        cases >= 202,
        "expected the 202+ SigmaHQ cases, found {cases}"
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} regression cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
