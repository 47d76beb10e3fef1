//! Regenerates the built-in snapshot from a full ATT&CK STIX bundle.
//!
//! ```text
//! cargo run -p tracehunt-attack --example make-snapshot -- INPUT.json OUTPUT.json [LABEL]
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 || args.len() > 3 {
        eprintln!("usage: make-snapshot INPUT-bundle.json OUTPUT-snapshot.json [LABEL]");
        return ExitCode::from(2);
    }
    let text = match std::fs::read_to_string(&args[0]) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("make-snapshot: cannot read {}: {e}", args[0]);
            return ExitCode::FAILURE;
        }
    };
    let mut kb = match tracehunt_attack::ActorKb::from_stix_json(&text) {
        Ok(kb) => kb,
        Err(e) => {
            eprintln!("make-snapshot: {}: {e}", args[0]);
            return ExitCode::FAILURE;
        }
    };
    if let Some(label) = args.get(2) {
        kb.set_label(label.clone());
    }
    let out = kb.to_snapshot_json();
    if let Err(e) = std::fs::write(&args[1], &out) {
        eprintln!("make-snapshot: cannot write {}: {e}", args[1]);
        return ExitCode::FAILURE;
    }
    eprintln!(
        "make-snapshot: {} groups, {} techniques, {} software, {} campaigns, {} revocations -> {} ({} bytes)",
        kb.groups().len(),
        kb.techniques().len(),
        kb.software_all().len(),
        kb.campaigns().len(),
        kb.revoked_by().len(),
        args[1],
        out.len()
    );
    ExitCode::SUCCESS
}
