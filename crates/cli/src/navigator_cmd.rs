//! `tracehunt navigator [hunt args] [--overlay G0009]` and `hunt --format navigator`: an ATT&CK
//! Navigator layer (format 4.5) of the observed techniques (built by
//! `tracehunt_pipeline::navigator`).

use crate::hunt::HuntArgs;
use crate::Format;
use anyhow::Result;

/// `tracehunt navigator`: the hunt with `--format navigator`.
pub fn run(mut a: HuntArgs) -> Result<u8> {
    a.format = Some(Format::Navigator);
    crate::hunt::run(a)
}
