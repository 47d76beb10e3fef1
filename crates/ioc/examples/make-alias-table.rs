//! Regenerates `data/misp-threat-actor-attack.tsv`:
//! `cargo run -p tracehunt-ioc --example make-alias-table -- ../shared/corpora/misp-galaxy crates/ioc/data/misp-threat-actor-attack.tsv`

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: make-alias-table GALAXY_DIR OUT")?,
    );
    let out = args
        .next()
        .ok_or("usage: make-alias-table GALAXY_DIR OUT")?;
    let ta = std::fs::read_to_string(dir.join("threat-actor.json"))?;
    let mis = std::fs::read_to_string(dir.join("mitre-intrusion-set.json"))?;
    std::fs::write(out, tracehunt_ioc::build_alias_table(&ta, &mis)?)?;
    Ok(())
}
