//! The cached compiled ruleset (issue #22): a [`Loaded`] as bytes and back.
//!
//! Parsing and compiling the 3,754 SigmaHQ rules takes about half a second
//! of every run; a cache file written after a compile lets the next run
//! with the same rules and options load the result instead. This module is
//! pure (bytes in, bytes out); the CLI chooses the file, reads it and
//! writes it atomically.
//!
//! A cache file is `MAGIC` (8 bytes), the format number (`u32` LE), the
//! 32-byte [`Key`] of what it was built from, the payload length (`u64` LE),
//! the SHA-256 of the payload, then the payload: the [`Loaded`] (ruleset,
//! correlations, diagnostics, counts) in postcard, serde's compact binary
//! format. [`decode`] trusts nothing: a wrong magic, format, key, length or
//! checksum, a payload that does not decode, or a decoded set whose indices
//! are inconsistent ([`Ruleset::validate`](tracehunt_engine::Ruleset::validate))
//! is a [`CacheError`], and the caller compiles the rules instead.
//!
//! The key is a SHA-256 over the build ([`KeyBuilder::new`]: format, crate
//! version and a build id the caller supplies, so a cache is never read by
//! another build of the program, whose compiled form may differ) and every
//! input of the compile, each added with [`KeyBuilder::part`]: each rule
//! file's label and content, the options and the files they name.

use crate::Loaded;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracehunt_correlate::CorrelationSet;
use tracehunt_engine::Ruleset;
use tracehunt_sigma::Diagnostic;

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"THRULES\0";
/// The layout version of the header and payload; bump on any change of
/// either (the build id in the key also separates builds).
pub const FORMAT: u32 = 1;
/// Bytes before the payload: magic, format, key, length, checksum.
pub const HEADER_LEN: usize = 8 + 4 + 32 + 8 + 32;

/// The 32-byte identity of a compile's inputs (see [`KeyBuilder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// Lower-case hex, 64 characters.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Builds a [`Key`]: SHA-256 over length-prefixed parts, so no two
/// different sequences of parts give the same input to the hash.
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    /// A key for this build: `build` names the program build (the CLI
    /// passes its version and its executable's size and modification time).
    pub fn new(build: &str) -> KeyBuilder {
        let mut k = KeyBuilder(Sha256::new());
        k.part("magic", MAGIC);
        k.part("format", &FORMAT.to_le_bytes());
        k.part("version", env!("CARGO_PKG_VERSION").as_bytes());
        k.part("build", build.as_bytes());
        k
    }

    /// Adds one named input (a rule file's label and bytes, an option's
    /// value, a file an option names).
    pub fn part(&mut self, label: &str, bytes: &[u8]) {
        self.0.update((label.len() as u64).to_le_bytes());
        self.0.update(label.as_bytes());
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The key.
    pub fn finish(self) -> Key {
        Key(self.0.finalize().into())
    }
}

/// Why a cache file was not used. Every one means: compile instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    /// Shorter than its header or its stated payload.
    #[error("truncated ({0} bytes)")]
    Truncated(usize),
    /// Not a tracehunt ruleset cache (wrong magic).
    #[error("not a tracehunt rule cache")]
    NotACache,
    /// Written with another layout version.
    #[error("cache format {0}, this build reads {FORMAT}")]
    Format(u32),
    /// Built from other rules, options or another build of the program.
    #[error("stale: built from other rules, options or program build")]
    Stale,
    /// Longer than its stated payload.
    #[error("trailing bytes after the payload")]
    Trailing,
    /// The payload's SHA-256 does not match the header's.
    #[error("checksum mismatch")]
    Checksum,
    /// The payload did not decode.
    #[error("payload does not decode: {0}")]
    Decode(String),
    /// The payload decoded into an inconsistent ruleset.
    #[error("inconsistent ruleset: {0}")]
    Inconsistent(String),
    /// Serialising failed (never expected: every type serialises).
    #[error("cannot serialise the ruleset: {0}")]
    Encode(String),
}

#[derive(Serialize)]
struct PayloadRef<'a> {
    ruleset: &'a Ruleset,
    diagnostics: &'a [Diagnostic],
    files: u64,
    failed: u64,
    correlations: &'a CorrelationSet,
    correlation_rules: &'a [usize],
}

#[derive(Deserialize)]
struct Payload {
    ruleset: Ruleset,
    diagnostics: Vec<Diagnostic>,
    files: u64,
    failed: u64,
    correlations: CorrelationSet,
    correlation_rules: Vec<usize>,
}

/// The cache file bytes of `loaded`, built from the inputs `key` names.
///
/// # Errors
/// [`CacheError::Encode`] if serialisation fails (not expected).
pub fn encode(loaded: &Loaded, key: &Key) -> Result<Vec<u8>, CacheError> {
    let payload = postcard::to_allocvec(&PayloadRef {
        ruleset: &loaded.ruleset,
        diagnostics: &loaded.diagnostics,
        files: loaded.files as u64,
        failed: loaded.failed as u64,
        correlations: &loaded.correlations,
        correlation_rules: &loaded.correlation_rules,
    })
    .map_err(|e| CacheError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The [`Loaded`] in cache file `bytes`, if they are a complete, intact
/// cache of the inputs `key` names. Never panics on any input.
///
/// # Errors
/// Every check that failed, as a [`CacheError`] (see the module docs).
pub fn decode(bytes: &[u8], key: &Key) -> Result<Loaded, CacheError> {
    if bytes.len() < HEADER_LEN {
        if bytes.len() >= MAGIC.len() && &bytes[..MAGIC.len()] != MAGIC {
            return Err(CacheError::NotACache);
        }
        return Err(CacheError::Truncated(bytes.len()));
    }
    let (magic, rest) = bytes.split_at(8);
    if magic != MAGIC {
        return Err(CacheError::NotACache);
    }
    let (format, rest) = rest.split_at(4);
    let format = u32::from_le_bytes(format.try_into().unwrap_or_default());
    if format != FORMAT {
        return Err(CacheError::Format(format));
    }
    let (k, rest) = rest.split_at(32);
    if k != key.0 {
        return Err(CacheError::Stale);
    }
    let (len, rest) = rest.split_at(8);
    let len = u64::from_le_bytes(len.try_into().unwrap_or_default());
    let (sum, payload) = rest.split_at(32);
    match (payload.len() as u64).cmp(&len) {
        std::cmp::Ordering::Less => return Err(CacheError::Truncated(bytes.len())),
        std::cmp::Ordering::Greater => return Err(CacheError::Trailing),
        std::cmp::Ordering::Equal => {}
    }
    if Sha256::digest(payload).as_slice() != sum {
        return Err(CacheError::Checksum);
    }
    let (p, rest): (Payload, &[u8]) =
        postcard::take_from_bytes(payload).map_err(|e| CacheError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CacheError::Decode(format!(
            "{} bytes left after the payload",
            rest.len()
        )));
    }
    p.ruleset.validate().map_err(CacheError::Inconsistent)?;
    p.correlations
        .validate(p.ruleset.len())
        .map_err(CacheError::Inconsistent)?;
    if p.correlation_rules.len() != p.correlations.len()
        || p.correlation_rules.iter().any(|&r| r >= p.ruleset.len())
    {
        return Err(CacheError::Inconsistent(
            "correlation rule indices out of range".into(),
        ));
    }
    Ok(Loaded {
        ruleset: p.ruleset,
        diagnostics: p.diagnostics,
        files: usize::try_from(p.files).map_err(|e| CacheError::Decode(e.to_string()))?,
        failed: usize::try_from(p.failed).map_err(|e| CacheError::Decode(e.to_string()))?,
        correlations: p.correlations,
        correlation_rules: p.correlation_rules,
    })
}

#[cfg(test)]
#[path = "rule_cache_tests.rs"]
mod tests;
