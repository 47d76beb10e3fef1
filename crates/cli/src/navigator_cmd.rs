//! `tracehunt navigator [hunt args] [--overlay G0009]` and `hunt --format navigator`: an ATT&CK
//! Navigator layer (format 4.5) of the observed techniques (built by
//! `tracehunt_pipeline::navigator`).

use crate::hunt::HuntArgs;
use crate::Format;
use anyhow::Result;

/// `tracehunt navigator`: the hunt with `--format navigator`.
pub fn run(mut a: HuntArgs) -> Result<u8> {
    // `navigator -f csv` was silently a Navigator layer (issue #19).
    if let Some(f) = a.format.filter(|f| *f != Format::Navigator) {
        anyhow::bail!(
            "`tracehunt navigator` writes a Navigator layer; -f {} is for `tracehunt hunt -f {}`",
            f.name(),
            f.name()
        );
    }
    a.format = Some(Format::Navigator);
    crate::hunt::run(a)
}
