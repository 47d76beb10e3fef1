//! The compiled-rule cache on disk (issue #22): where the cache file is,
//! its key, reading it and writing it atomically. The bytes themselves are
//! [`tracehunt_pipeline::rule_cache`]'s.
//!
//! One file per executable, rule set and options (`rules-<slot>.bin`, the
//! slot a hash of the executable's path, the rule paths as given and the
//! rule options: two builds sharing the cache directory — an installed one
//! and a development one — keep a file each instead of evicting each other,
//! and a rebuild in place reuses its own), holding the key of
//! the exact inputs it was compiled from: a SHA-256 over the program build
//! (version, the executable's size and modification time), every rule
//! file's path and content, the options and the content of the files they
//! name. A file whose key differs (a rule changed, another build), or that
//! is damaged in any way, is ignored and rewritten after compiling; it is
//! never trusted. Writes go to a temporary file in the same directory,
//! renamed over the old one, so a reader sees a whole old file or a whole
//! new one. Failing to read or write the cache never fails the run.
//!
//! `TRACEHUNT_DEBUG_RULE_CACHE=1` prints what happened (hit, miss and
//! why, written) on stderr (for `bench/startup.sh` and the tests).

use crate::rules::RuleOpts;
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use tracehunt_engine::CompileOptions;
use tracehunt_pipeline::rule_cache::{decode, encode, Key, KeyBuilder};
use tracehunt_pipeline::Loaded;
use tracehunt_sigma::Diagnostic;

/// One rule file: its label (path as shown in diagnostics) and its bytes,
/// or why it could not be read.
pub type RuleSource = (String, std::io::Result<Vec<u8>>);

fn debug(msg: &str) {
    if std::env::var_os("TRACEHUNT_DEBUG_RULE_CACHE").is_some() {
        eprintln!("tracehunt: rule cache: {msg}");
    }
}

/// The cache directory: `--rule-cache` / `TRACEHUNT_RULE_CACHE`, else the
/// platform cache directory (`$XDG_CACHE_HOME`, else `~/.cache`) +
/// `tracehunt`. `None` when disabled or no directory is known.
fn cache_dir(opts: &RuleOpts) -> Option<PathBuf> {
    if opts.no_rule_cache {
        return None;
    }
    opts.rule_cache
        .clone()
        .or_else(|| dirs::cache_dir().map(|d| d.join("tracehunt")))
}

/// The running program's build: version + the executable's size and
/// modification time (a rebuilt binary never reads an older build's cache).
fn build_id() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let m = std::fs::metadata(exe).ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{} {} {}.{:09}",
        env!("CARGO_PKG_VERSION"),
        m.len(),
        mtime.as_secs(),
        mtime.subsec_nanos()
    ))
}

/// Adds the options to `k`: their debug form (every flag) and the content
/// of each file they name (a file is read again here; an unreadable one
/// failed `compile_options` already).
fn add_options(k: &mut KeyBuilder, opts: &RuleOpts) {
    let mut o = opts.clone();
    o.rule_cache = None;
    k.part("options", format!("{o:?}").as_bytes());
    let named = opts
        .logsource_map
        .iter()
        .chain(&opts.placeholders)
        .chain(&opts.exclude_rules)
        .chain(&opts.noisy_rules);
    for p in named {
        let bytes = std::fs::read(p).unwrap_or_default();
        k.part(&p.display().to_string(), &bytes);
    }
}

/// The key of exactly these inputs (see the module docs).
fn key(build: &str, diagnostics: &[Diagnostic], sources: &[RuleSource], opts: &RuleOpts) -> Key {
    let mut k = KeyBuilder::new(build);
    add_options(&mut k, opts);
    for d in diagnostics {
        k.part("diagnostic", format!("{d:?}").as_bytes());
    }
    for (label, bytes) in sources {
        match bytes {
            Ok(b) => k.part(label, b),
            Err(e) => k.part(label, format!("\0cannot read: {e}").as_bytes()),
        }
    }
    k.finish()
}

/// The cache file for these rule paths (labels) and options.
fn slot(dir: &Path, sources: &[RuleSource], opts: &RuleOpts) -> PathBuf {
    let mut k = KeyBuilder::new("slot");
    let exe = std::env::current_exe().unwrap_or_default();
    k.part("executable", exe.as_os_str().as_encoded_bytes());
    add_options(&mut k, opts);
    for (label, _) in sources {
        k.part("file", label.as_bytes());
    }
    dir.join(format!("rules-{}.bin", &k.finish().hex()[..32]))
}

/// Largest cache file read (the SigmaHQ rule set's is ≈ 3 MB).
const MAX_CACHE_FILE: u64 = 256 << 20;

/// The cache file's bytes: only a regular file (a link is followed) of at
/// most [`MAX_CACHE_FILE`] bytes; anything else at that path — a FIFO, a
/// link to `/dev/zero`, a directory — is a miss, never read (breaker
/// finding: a link to `/dev/zero` grew the hunt to 11.7 GB, a FIFO hung it).
fn read_cache_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let m = std::fs::metadata(path)?;
    if !m.is_file() || m.len() > MAX_CACHE_FILE {
        return Err(std::io::Error::other(format!(
            "not a regular file of at most {MAX_CACHE_FILE} bytes"
        )));
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    std::fs::File::open(path)?
        .take(MAX_CACHE_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CACHE_FILE {
        return Err(std::io::Error::other("grew past the size limit while read"));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` through a temporary file in its directory
/// renamed over it (atomic on POSIX file systems).
/// Errors say what failed in the words of the directory (fresh-user
/// finding: a `--rule-cache` naming a file gave "File exists", `/proc` a
/// temporary file's name).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |what: &str, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{what} ({})", e.kind()))
    };
    if dir.exists() && !dir.is_dir() {
        return Err(std::io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory", e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".rules-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| fail("cannot create a file in it", e))?;
    tmp.write_all(bytes)
        .map_err(|e| fail("cannot write a file in it", e))?;
    tmp.persist(path)
        .map_err(|e| fail("cannot rename the file into place", e.error))?;
    Ok(())
}

/// A cache file still to be written: the rules were compiled on a miss and
/// the caller writes them ([`PendingWrite::write`]) when it suits it, e.g.
/// on another thread while the hunt runs.
#[must_use = "the cache is only written by PendingWrite::write"]
pub struct PendingWrite {
    path: PathBuf,
    key: Key,
    /// The directory was named (`--rule-cache`, `TRACEHUNT_RULE_CACHE`):
    /// failing to write there is a warning, not only a debug note.
    explicit: bool,
}

/// Cache files kept in a directory after a write: the most recently written
/// ones (each executable, rule path list and option set has its own file),
/// at most this many…
const KEEP_FILES: usize = 64;

/// …and at most this many bytes together (the SigmaHQ rule set's file is
/// ≈ 4 MB; the test suite writes ~70 files in one run, most a few KB).
const KEEP_BYTES: u64 = 128 << 20;

/// A cache file not rewritten for this long is removed after a write.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// A temporary file of an interrupted write older than this is removed.
const STALE_TMP_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether `name` is one [`slot`] makes: `rules-` + 32 hex digits + `.bin`
/// (so a user's own `rules-backup.bin` in a named directory is never pruned).
fn is_cache_file_name(name: &str) -> bool {
    name.strip_prefix("rules-")
        .and_then(|n| n.strip_suffix(".bin"))
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Removes, besides `written`, the cache files of `dir` beyond the
/// [`KEEP_FILES`] newest or [`KEEP_BYTES`], or older than [`MAX_AGE`], and temporary files of
/// writes interrupted over [`STALE_TMP_AGE`] ago (breaker finding: the
/// directory only grew — one file per build, rule path list and options).
/// Only names this module writes (`rules-<32 hex>.bin`, `.rules-*.tmp`) are
/// touched; errors leave a file in place. Returns how many were removed.
fn prune(dir: &Path, written: &Path) -> usize {
    let now = std::time::SystemTime::now();
    let age = |m: &std::fs::Metadata| {
        m.modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default()
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut caches = Vec::new();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() || e.path() == written {
            continue;
        }
        if name.starts_with(".rules-") && name.ends_with(".tmp") {
            if age(&m) > STALE_TMP_AGE && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        } else if is_cache_file_name(&name) {
            caches.push((age(&m), m.len(), e.path()));
        }
    }
    caches.sort();
    // `written` is the newest and counts as one of the kept.
    let mut bytes = std::fs::metadata(written).map(|m| m.len()).unwrap_or(0);
    for (i, (age, len, path)) in caches.iter().enumerate() {
        bytes = bytes.saturating_add(*len);
        let keep = i + 1 < KEEP_FILES && bytes <= KEEP_BYTES && *age <= MAX_AGE;
        if !keep && std::fs::remove_file(path).is_ok() {
            removed += 1;
        }
    }
    removed
}

impl PendingWrite {
    /// Encodes `loaded` (the rules as compiled; [`Loaded::resolve_names`]
    /// may have run: the names it sets are not cached) and writes the cache
    /// file atomically. Failing is only a debug note: the next run compiles.
    pub fn write(self, loaded: &Loaded) {
        match encode(loaded, &self.key).map_err(std::io::Error::other) {
            Ok(bytes) => match write_atomic(&self.path, &bytes) {
                Ok(()) => {
                    let dir = self.path.parent().unwrap_or(Path::new("."));
                    let removed = prune(dir, &self.path);
                    debug(&format!(
                        "wrote {} ({} bytes); {removed} old files removed",
                        self.path.display(),
                        bytes.len()
                    ))
                }
                // A directory the user named that cannot hold the cache was
                // silent without the debug variable (breaker finding).
                Err(e) if self.explicit => eprintln!(
                    "tracehunt: warning: rule cache not written in {}: {e} (the rules are compiled on every run; --no-rule-cache turns the cache off)",
                    self.path.parent().unwrap_or(Path::new(".")).display()
                ),
                Err(e) => debug(&format!("cannot write {}: {e}", self.path.display())),
            },
            Err(e) => debug(&format!("cannot encode: {e}")),
        }
    }
}

/// A [`PendingWrite`] running on a thread of its own; dropping this waits
/// for it, so the process never exits half-way through a write (which
/// would leave a stray temporary file, never a damaged cache file).
pub struct BackgroundWrite(Option<std::thread::JoinHandle<()>>);

impl BackgroundWrite {
    /// Starts writing `pending` (if any) for `loaded` on a thread of its
    /// own, which holds its share of `loaded` until it has written; where
    /// no thread can be started, the write is skipped (a missed cache only).
    pub fn start(pending: Option<PendingWrite>, loaded: std::sync::Arc<Loaded>) -> BackgroundWrite {
        let Some(pending) = pending else {
            return BackgroundWrite(None);
        };
        // The pending write moves into the closure; a failed spawn drops it
        // unwritten, so the next run compiles (only a missed cache).
        let spawned = std::thread::Builder::new()
            .name("rule-cache".into())
            .spawn(move || pending.write(&loaded));
        match spawned {
            Ok(handle) => BackgroundWrite(Some(handle)),
            Err(e) => {
                debug(&format!("cannot start the cache writer: {e}"));
                BackgroundWrite(None)
            }
        }
    }
}

impl Drop for BackgroundWrite {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            // A panic in the writer (none is expected) only loses the cache file.
            let _ = h.join();
        }
    }
}

/// The compiled rules of `sources` (with the earlier `diagnostics`): from
/// the cache when it holds exactly these inputs, else compiled, with the
/// cache file to write ([`PendingWrite`]; `None` on a hit or with the
/// cache off). Output is identical either way.
pub fn load_or_compile(
    diagnostics: Vec<Diagnostic>,
    sources: Vec<RuleSource>,
    opts: &RuleOpts,
    copts: &CompileOptions,
) -> Result<(Loaded, Option<PendingWrite>)> {
    let start = std::time::Instant::now();
    let ms = || format!("{:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    let Some((dir, build)) = cache_dir(opts).zip(build_id()) else {
        let loaded = crate::rules::compile_sources(diagnostics, &sources, copts);
        debug(&format!("off, compiled in {}", ms()));
        return Ok((loaded, None));
    };
    let key = key(&build, &diagnostics, &sources, opts);
    let path = slot(&dir, &sources, opts);
    match read_cache_file(&path) {
        Ok(bytes) => match decode(&bytes, &key) {
            Ok(loaded) => {
                debug(&format!("hit {} in {}", path.display(), ms()));
                return Ok((loaded, None));
            }
            Err(e) => debug(&format!("miss {}: {e}", path.display())),
        },
        Err(e) => debug(&format!("miss {}: {e}", path.display())),
    }
    let loaded = crate::rules::compile_sources(diagnostics, &sources, copts);
    debug(&format!("compiled in {}", ms()));
    let explicit = opts.rule_cache.is_some();
    Ok((
        loaded,
        Some(PendingWrite {
            path,
            key,
            explicit,
        }),
    ))
}
