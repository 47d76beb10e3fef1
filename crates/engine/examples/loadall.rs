//! Loads and compiles every rule under the given directories; prints counts.
use std::collections::BTreeMap;
fn main() {
    let t = std::time::Instant::now();
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    let mut files = 0;
    for d in std::env::args().skip(1) {
        let mut stack = vec![std::path::PathBuf::from(d)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                for e in std::fs::read_dir(&p).unwrap() {
                    stack.push(e.unwrap().path());
                }
            } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files += 1;
                let b = std::fs::read(&p).unwrap();
                let f = tracehunt_sigma::load_rules_bytes(&p.display().to_string(), &b);
                docs.extend(f.rules);
                diags.extend(f.diagnostics);
            }
        }
    }
    let parsed = t.elapsed();
    let n = docs.len();
    let (rs, d2) = tracehunt_engine::compile(docs, &tracehunt_engine::CompileOptions::default());
    diags.extend(d2);
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for d in &diags {
        *by.entry(d.code.to_string()).or_default() += 1;
    }
    println!(
        "files {files} parsed {n} compiled {} active {} parse {:?} total {:?}",
        rs.len(),
        rs.active_len(),
        parsed,
        t.elapsed()
    );
    println!("{by:?}");
    for d in diags
        .iter()
        .filter(|d| d.severity == tracehunt_sigma::Severity::Error)
        .take(30)
    {
        println!("{d}");
    }
}
