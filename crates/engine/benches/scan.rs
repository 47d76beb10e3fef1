//! Criterion benchmarks of the matcher on in-memory events (issue #4):
//! all active SigmaHQ rules (`../shared/corpora/sigma/rules*`) over every
//! event of EVTX-ATTACK-SAMPLES and of the Mordor corpus, decoded once
//! before timing. Reports events/s (criterion "elements"). Skips with a note
//! when the corpora are absent.

#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::{Path, PathBuf};
use tracehunt_engine::{compile, CompileOptions, Ruleset, Scanner};
use tracehunt_event::Event;

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn sigmahq() -> Ruleset {
    let mut paths = Vec::new();
    for d in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        files(&corpora().join("sigma").join(d), "yml", &mut paths);
    }
    let mut docs = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).unwrap_or_default();
        docs.extend(tracehunt_sigma::load_rules_bytes(&p.display().to_string(), &bytes).rules);
    }
    compile(docs, &CompileOptions::default()).0
}

fn events(dir: &Path, ext: &str) -> Vec<Event> {
    let mut paths = Vec::new();
    files(dir, ext, &mut paths);
    paths
        .iter()
        .filter_map(|p| tracehunt_readers::open(p).ok())
        .flat_map(|it| it.flatten())
        .collect()
}

fn bench(c: &mut Criterion) {
    if !corpora().join("sigma/rules").is_dir() {
        eprintln!("skipped: ../shared/corpora not present");
        return;
    }
    let t = std::time::Instant::now();
    let rs = sigmahq();
    eprintln!(
        "compiled {} rules ({} active) in {:?}",
        rs.len(),
        rs.active_len(),
        t.elapsed()
    );
    c.bench_function("compile all SigmaHQ rules", |b| {
        b.iter(|| sigmahq().len());
    });
    for (name, evs) in [
        (
            "evtx-attack-samples",
            events(&corpora().join("evtx-attack-samples"), "evtx"),
        ),
        ("mordor", events(&corpora().join("mordor/windows"), "json")),
    ] {
        let mut g = c.benchmark_group(format!("scan {name}"));
        g.throughput(Throughput::Elements(evs.len() as u64));
        g.sample_size(10);
        g.bench_function("all SigmaHQ rules", |b| {
            let mut sc = Scanner::new(&rs);
            let mut hits = Vec::new();
            b.iter(|| {
                let mut n = 0;
                for e in &evs {
                    hits.clear();
                    sc.scan(e, &mut hits);
                    n += hits.len();
                }
                n
            });
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
