//! Regenerates the built-in state-sponsor table from a MISP galaxy checkout.
//!
//! ```text
//! cargo run -p tracehunt-attack --example make-sponsors -- \
//!     ../shared/corpora/misp-galaxy crates/attack/data/state-sponsors.tsv "MISP/misp-galaxy 9434ace4"
//! ```

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out, provenance] = &args[..] else {
        eprintln!("usage: make-sponsors GALAXY-DIR OUTPUT.tsv PROVENANCE");
        return ExitCode::from(2);
    };
    let read = |name: &str| {
        let p = Path::new(dir).join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let table = read("threat-actor.json").and_then(|a| {
        let s = read("mitre-intrusion-set.json")?;
        tracehunt_attack::StateSponsors::from_misp_galaxy(&a, &s).map_err(|e| e.to_string())
    });
    match table.and_then(|t| {
        std::fs::write(out, t.to_tsv(provenance))
            .map_err(|e| format!("cannot write {out}: {e}"))?;
        Ok(t.len())
    }) {
        Ok(n) => {
            eprintln!("make-sponsors: {n} groups written to {out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("make-sponsors: {e}");
            ExitCode::FAILURE
        }
    }
}
