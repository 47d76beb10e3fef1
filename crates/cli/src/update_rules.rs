//! `tracehunt update-rules`: download a SigmaHQ release package (a zip of
//! rules), verify it, unpack it next to the rules directory and swap it in.
//!
//! Steps, each failing before anything is changed: `--sha256` syntax (64
//! hex digits) → `--dir` checks (not a file, the root, `.`, `..`, the
//! current directory or a parent; absent, empty or carrying [`MARKER`]; a
//! `DIR.old` only if it carries the marker) → the package fetched into an
//! anonymous temporary file, hashed while written (`file://` or a plain
//! path: read locally; HTTP(S): ureq with a global timeout; at most
//! [`MAX_DOWNLOAD`] bytes) → `--sha256` when given → a valid zip of at
//! most [`MAX_ENTRIES`] entries and [`MAX_UNPACKED`] bytes unpacked
//! (counted while unpacking, not taken from the headers), no duplicate
//! name, no entry with an absolute path, a drive letter, `..` or a link →
//! unpacked into a temporary directory beside `--dir` → every `.yml`
//! loaded with tracehunt's rule loader (at least one rule must load) → the
//! marker written → the old directory renamed to `DIR.old` (replacing an
//! earlier, marked `DIR.old`), the new one renamed to `DIR`. If that last
//! rename fails, `DIR.old` is renamed back. `DIR.old` stays as the previous
//! generation (delete it, or move it back to roll back). Userinfo in the URL
//! (`user:password@`) is shown as `***` in every message.

use crate::rules::{self, RuleCounts, RuleOpts};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use sha2::Digest;
use std::collections::HashSet;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Largest package downloaded (bytes): SigmaHQ's all-rules zip is a few MB.
pub const MAX_DOWNLOAD: u64 = 256 << 20;
/// Most bytes the package may unpack to (zip bombs).
pub const MAX_UNPACKED: u64 = 512 << 20;
/// Most entries (files and directories) the package may have.
pub const MAX_ENTRIES: usize = 100_000;

/// SigmaHQ's release packages (assets of every release of SigmaHQ/sigma).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Package {
    /// `sigma_core.zip`: stable/test rules of level high and critical.
    Core,
    /// `sigma_core+.zip`: also level medium.
    #[value(name = "core+")]
    CorePlus,
    /// `sigma_core++.zip`: also experimental rules.
    #[value(name = "core++")]
    CorePlusPlus,
    /// `sigma_emerging_threats_addon.zip`: the emerging-threats rules.
    EmergingThreats,
    /// `sigma_all_rules.zip`: core and emerging threats.
    All,
}

impl Package {
    /// The release asset's file name.
    pub fn asset(self) -> &'static str {
        match self {
            Package::Core => "sigma_core.zip",
            Package::CorePlus => "sigma_core+.zip",
            Package::CorePlusPlus => "sigma_core++.zip",
            Package::EmergingThreats => "sigma_emerging_threats_addon.zip",
            Package::All => "sigma_all_rules.zip",
        }
    }
}

/// `tracehunt update-rules` flags.
#[derive(Args, Debug)]
pub struct UpdateRulesArgs {
    /// Package URL, `file:///path.zip` or a local zip path (default: the
    /// latest SigmaHQ release's asset of --package,
    /// https://github.com/SigmaHQ/sigma/releases/latest/download/<asset>).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Which SigmaHQ package (ignored with --url).
    #[arg(long, value_enum, default_value = "all")]
    pub package: Package,
    /// Rules directory to replace (default: the user's data dir,
    /// e.g. ~/.local/share/tracehunt/rules). It must be absent, empty or
    /// installed by tracehunt; the previous one is kept as DIR.old.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Expected SHA-256 of the package (hex); a mismatch changes nothing.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Give up the download after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
}

/// The default rules directory: `<data dir>/tracehunt/rules`.
pub fn default_dir() -> Result<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("tracehunt").join("rules"))
        .context("no data directory for this user (set HOME or pass --dir)")
}

/// The marker file tracehunt writes into every directory it installs: only
/// a directory carrying it is ever replaced or removed.
pub const MARKER: &str = ".tracehunt-rules";

/// `url` with any userinfo (`user:password@`) replaced by `***@`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_owned(),
    }
}

/// The userinfo of `url` (`user:password`), if any, to scrub from messages.
fn userinfo(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..auth_end].rfind('@')?;
    Some(&rest[..at]).filter(|u| !u.is_empty())
}

/// Checks `--sha256`: 64 hex digits (any case); returns it in lower case.
fn parse_sha256(s: &str) -> Result<String> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("--sha256 `{s}` is not a SHA-256 (64 hex digits)");
    }
    Ok(s.to_ascii_lowercase())
}

/// Where the package comes from: a local file (`file://` URL or a plain
/// existing path) or an HTTP(S) URL.
enum Source {
    File(PathBuf),
    Http(String),
}

fn source(url: &str) -> Result<Source> {
    if let Some(rest) = url.strip_prefix("file://") {
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        if !path.starts_with('/') {
            bail!(
                "{}: a file URL needs an absolute path (file:///path/to/package.zip)",
                redact(url)
            );
        }
        return Ok(Source::File(PathBuf::from(path)));
    }
    if !url.contains("://") && Path::new(url).exists() {
        return Ok(Source::File(PathBuf::from(url)));
    }
    Ok(Source::Http(url.to_owned()))
}

/// Copies `r` into `out` (at most [`MAX_DOWNLOAD`] bytes), hashing as it
/// writes; returns the bytes copied and the lower-case hex SHA-256.
fn copy_hashed(r: &mut dyn Read, out: &mut std::fs::File) -> std::io::Result<(u64, String)> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > MAX_DOWNLOAD {
            return Err(std::io::Error::other(format!(
                "more than {MAX_DOWNLOAD} bytes"
            )));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
    }
    out.flush()?;
    Ok((total, hex(&hasher.finalize())))
}

/// Fetches the package into an anonymous temporary file (never into
/// memory); returns the file (rewound), its size and its SHA-256.
fn fetch(src: &Source, url: &str, timeout: u64) -> Result<(std::fs::File, u64, String)> {
    let shown = redact(url);
    let scrub = |e: &dyn std::fmt::Display| {
        let s = e.to_string();
        match userinfo(url) {
            Some(u) => s.replace(u, "***"),
            None => s,
        }
    };
    let mut out = tempfile::tempfile().context("creating a temporary file for the package")?;
    let (n, digest) = match src {
        Source::File(p) => {
            let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
            if !meta.is_file() {
                bail!("{} is not a regular file", p.display());
            }
            let mut f =
                std::fs::File::open(p).with_context(|| format!("reading {}", p.display()))?;
            copy_hashed(&mut f, &mut out).with_context(|| {
                format!("reading {} (at most {MAX_DOWNLOAD} bytes)", p.display())
            })?
        }
        Source::Http(u) => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(timeout)))
                .build()
                .into();
            let mut resp = agent
                .get(u)
                .call()
                .map_err(|e| anyhow::anyhow!("downloading {shown}: {}", scrub(&e)))?;
            let mut body = resp.body_mut().as_reader();
            copy_hashed(&mut body, &mut out).map_err(|e| {
                anyhow::anyhow!(
                    "downloading {shown} (at most {MAX_DOWNLOAD} bytes): {}",
                    scrub(&e)
                )
            })?
        }
    };
    out.seek(std::io::SeekFrom::Start(0))?;
    Ok((out, n, digest))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first name met twice in the central directory starting at `start`
/// (the zip crate keeps one entry per name, so duplicates are named here).
fn first_duplicate<R: Read + Seek>(mut r: R, start: u64) -> Option<String> {
    r.seek(std::io::SeekFrom::Start(start)).ok()?;
    let mut r = std::io::BufReader::new(r);
    let mut seen = HashSet::new();
    for _ in 0..=MAX_ENTRIES {
        let mut head = [0u8; 46];
        r.read_exact(&mut head).ok()?;
        if head[..4] != [0x50, 0x4b, 0x01, 0x02] {
            return None;
        }
        let le = |i: usize| u64::from(u16::from_le_bytes([head[i], head[i + 1]]));
        let mut name = vec![0u8; le(28) as usize];
        r.read_exact(&mut name).ok()?;
        let name = String::from_utf8_lossy(&name).into_owned();
        std::io::copy(&mut (&mut r).take(le(30) + le(32)), &mut std::io::sink()).ok()?;
        if !seen.insert(name.clone()) {
            return Some(name);
        }
    }
    None
}

/// Unpacks `zip` into `into` (an empty directory), refusing the whole
/// package on an unsafe entry or past the caps. Returns the files written.
pub fn unpack<R: Read + Seek>(zip: R, into: &Path) -> Result<u64> {
    let mut archive = zip::ZipArchive::new(zip).context("the package is not a zip")?;
    if archive.has_duplicate_names() {
        let start = archive.central_directory_start();
        let name = first_duplicate(archive.into_inner(), start).unwrap_or_else(|| "?".to_owned());
        bail!("zip entry `{name}` appears twice: package refused");
    }
    if archive.len() > MAX_ENTRIES {
        bail!(
            "the package has {} entries, more than {MAX_ENTRIES}: refused",
            archive.len()
        );
    }
    let mut budget = MAX_UNPACKED;
    let mut files = 0u64;
    let mut seen = HashSet::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .with_context(|| format!("zip entry {i}"))?;
        let raw = entry
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.into_owned());
        let b = raw.as_bytes();
        let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
        let absolute = raw.starts_with(['/', '\\']) || drive;
        let Some(rel) = entry.enclosed_name().filter(|_| !absolute) else {
            bail!("zip entry `{raw}` has an absolute path or `..`: package refused");
        };
        if !entry.is_dir() && !seen.insert(rel.clone()) {
            bail!("zip entry `{raw}` appears twice: package refused");
        }
        if entry.is_symlink() {
            bail!("zip entry `{raw}` is a link: package refused");
        }
        let path = into.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut out = std::fs::File::create_new(&path)
            .with_context(|| format!("creating {} (entry `{raw}`)", path.display()))?;
        // Counted as written: a header may understate the size.
        let n = std::io::copy(&mut (&mut entry).take(budget + 1), &mut out)
            .with_context(|| format!("unpacking zip entry `{raw}`"))?;
        if n > budget {
            bail!("the package unpacks to more than {MAX_UNPACKED} bytes: refused");
        }
        budget -= n;
        files += 1;
    }
    Ok(files)
}

/// Rules loaded and failed in `dir` (every level, selection off).
fn count_rules(dir: &Path) -> Result<(u64, u64)> {
    let opts = RuleOpts {
        enable_deprecated_rules: true,
        enable_unsupported_rules: true,
        ..RuleOpts::default()
    };
    let loaded = rules::load(&[dir.to_path_buf()], &opts)?;
    let c = RuleCounts::of(&loaded, 0);
    Ok((c.loaded, c.failed))
}

/// Whether `dir` was installed by tracehunt (carries [`MARKER`]).
fn has_marker(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file())
}

/// Refuses a `--dir` tracehunt must not replace: the filesystem root, `.`,
/// `..`, a path ending in `/.` or `/..`, the current directory or one of
/// its parents, a file, or a directory holding files it did not install.
/// Also refuses when `DIR.old` exists without the marker.
fn check_dir(dir: &Path, old: &Path) -> Result<()> {
    let raw = dir.to_string_lossy();
    let last = raw.trim_end_matches(['/', '\\']);
    let name = last.rsplit(['/', '\\']).next().unwrap_or("");
    if last.is_empty() || name == "." || name == ".." || dir.parent().is_none() {
        bail!(
            "--dir {}: not a rules directory (the filesystem root, `.` or `..`); choose another --dir",
            dir.display()
        );
    }
    if let (Ok(canon), Ok(cwd)) = (
        std::fs::canonicalize(dir),
        std::env::current_dir().and_then(std::fs::canonicalize),
    ) {
        if canon.parent().is_none() || cwd.starts_with(&canon) {
            bail!(
                "--dir {}: the current directory or one of its parents; choose another --dir",
                dir.display()
            );
        }
    }
    match std::fs::symlink_metadata(dir) {
        Err(_) => {}
        Ok(m) if !m.is_dir() => bail!(
            "--dir {} is not a directory; choose another --dir",
            dir.display()
        ),
        Ok(_) => {
            let empty = std::fs::read_dir(dir)
                .with_context(|| format!("reading {}", dir.display()))?
                .next()
                .is_none();
            if !empty && !has_marker(dir) {
                bail!(
                    "{} holds files tracehunt did not install (no {MARKER}); choose another --dir",
                    dir.display()
                );
            }
        }
    }
    if std::fs::symlink_metadata(old).is_ok() && !(old.is_dir() && has_marker(old)) {
        bail!(
            "{} (where the previous rules would be kept) was not installed by tracehunt (no {MARKER}); move it away or choose another --dir",
            old.display()
        );
    }
    Ok(())
}

/// Renames `dir` (if any) to `DIR.old` and `new` to `dir`; on failure of the
/// second rename, the old directory is moved back. An empty `dir` is
/// removed, not kept. A `DIR.old` is only removed if it carries the marker.
fn swap(new: &Path, dir: &Path, old: &Path) -> Result<bool> {
    if dir.is_dir() && std::fs::read_dir(dir)?.next().is_none() {
        std::fs::remove_dir(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let had_old = dir.exists();
    if had_old {
        if std::fs::symlink_metadata(old).is_ok() {
            if !(old.is_dir() && has_marker(old)) {
                bail!(
                    "{} was not installed by tracehunt (no {MARKER}): not removed",
                    old.display()
                );
            }
            std::fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
        }
        std::fs::rename(dir, old)
            .with_context(|| format!("moving {} to {}", dir.display(), old.display()))?;
    }
    if let Err(e) = std::fs::rename(new, dir) {
        if had_old {
            let _ = std::fs::rename(old, dir);
        }
        return Err(e).with_context(|| format!("moving the new rules to {}", dir.display()));
    }
    Ok(had_old)
}

/// Runs `tracehunt update-rules`.
pub fn run(a: UpdateRulesArgs) -> Result<u8> {
    let want = a.sha256.as_deref().map(parse_sha256).transpose()?;
    let dir = match a.dir {
        Some(d) => d,
        None => default_dir()?,
    };
    let old = PathBuf::from(format!("{}.old", dir.display()));
    check_dir(&dir, &old)?;
    let url = a.url.clone().unwrap_or_else(|| {
        format!(
            "https://github.com/SigmaHQ/sigma/releases/latest/download/{}",
            a.package.asset()
        )
    });
    let shown = redact(&url);
    let src = source(&url)?;
    let (file, size, digest) = fetch(&src, &url, a.timeout)?;
    if let Some(want) = &want {
        if *want != digest {
            bail!(
                "{shown}: SHA-256 mismatch: expected {want}, got {digest}; {} left unchanged",
                dir.display()
            );
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rules".into());
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.new-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let files = unpack(std::io::BufReader::new(file), tmp.path()).with_context(|| shown.clone())?;
    let (loaded, failed) = match count_rules(tmp.path()) {
        Ok(c) if c.0 > 0 => c,
        Ok(_) => bail!(
            "{shown}: the package holds no Sigma rule tracehunt can load; {} left unchanged",
            dir.display()
        ),
        Err(e) => bail!(
            "{shown}: the package's rules do not load ({e:#}); {} left unchanged",
            dir.display()
        ),
    };
    let when = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::write(
        tmp.path().join(MARKER),
        format!("# installed by tracehunt update-rules\nurl = {shown}\nsha256 = {digest}\ninstalled = {when}\n"),
    )
    .with_context(|| format!("writing {MARKER}"))?;
    let previous = if dir.exists() {
        count_rules(&dir).ok()
    } else {
        None
    };
    let new = tmp.keep();
    let kept_old = swap(&new, &dir, &old).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&new);
    })?;
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    writeln!(
        w,
        "update-rules: {shown} (sha256 {digest}, {size} bytes, {files} files)"
    )?;
    writeln!(
        w,
        "update-rules: {} now holds {loaded} rules ({failed} failed to load){}",
        dir.display(),
        match (kept_old, previous) {
            (true, Some((p, _))) => format!("; previously {p} rules, kept in {}", old.display()),
            (true, None) => format!("; the previous directory is kept in {}", old.display()),
            (false, _) => "; no previous rules".to_owned(),
        }
    )?;
    writeln!(
        w,
        "update-rules: hunt with them: tracehunt hunt LOGS -r {} (without -r, hunt uses the built-in rules)",
        dir.display()
    )?;
    w.flush()?;
    Ok(0)
}
