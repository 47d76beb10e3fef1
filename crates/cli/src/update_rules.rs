//! `tracehunt update-rules`: download a SigmaHQ release package (a zip of
//! rules), verify it, unpack it next to the rules directory and swap it in.
//!
//! Steps, each failing before anything is changed: download (ureq: a
//! global timeout, at most [`MAX_DOWNLOAD`] bytes) → `--sha256` when given →
//! a valid zip of at most [`MAX_ENTRIES`] entries and [`MAX_UNPACKED`]
//! bytes unpacked (counted while unpacking, not taken from the headers),
//! no entry with an absolute path, `..` or a link → unpacked into a
//! temporary directory beside `--dir` → every `.yml` loaded with
//! tracehunt's rule loader (at least one rule must load) → the old
//! directory renamed to `DIR.old` (replacing an earlier `DIR.old`), the new
//! one renamed to `DIR`. If that last rename fails, `DIR.old` is renamed
//! back. `DIR.old` stays as the previous generation (delete it, or move it
//! back to roll back).

use crate::rules::{self, RuleCounts, RuleOpts};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use sha2::Digest;
use std::io::{Read, Write};
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
    /// Package URL (default: the latest SigmaHQ release's asset of --package,
    /// https://github.com/SigmaHQ/sigma/releases/latest/download/<asset>).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Which SigmaHQ package (ignored with --url).
    #[arg(long, value_enum, default_value = "all")]
    pub package: Package,
    /// Rules directory to replace (default: the user's data dir,
    /// e.g. ~/.local/share/tracehunt/rules). The previous one is kept as DIR.old.
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

/// Downloads `url` (at most [`MAX_DOWNLOAD`] bytes).
fn download(url: &str, timeout: u64) -> Result<Vec<u8>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(timeout)))
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .with_context(|| format!("downloading {url}"))?;
    resp.body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD)
        .read_to_vec()
        .with_context(|| format!("downloading {url} (at most {MAX_DOWNLOAD} bytes)"))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpacks `zip` into `into` (an empty directory), refusing the whole
/// package on an unsafe entry or past the caps. Returns the files written.
pub fn unpack(zip: &[u8], into: &Path) -> Result<u64> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).context("the package is not a zip")?;
    if archive.len() > MAX_ENTRIES {
        bail!(
            "the package has {} entries, more than {MAX_ENTRIES}: refused",
            archive.len()
        );
    }
    let mut budget = MAX_UNPACKED;
    let mut files = 0u64;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .with_context(|| format!("zip entry {i}"))?;
        let raw = entry
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.into_owned());
        let Some(rel) = entry.enclosed_name() else {
            bail!("zip entry `{raw}` has an absolute path or `..`: package refused");
        };
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

/// Renames `dir` (if any) to `DIR.old` and `new` to `dir`; on failure of the
/// second rename, the old directory is moved back.
fn swap(new: &Path, dir: &Path, old: &Path) -> Result<bool> {
    let had_old = dir.exists();
    if had_old {
        if old.exists() {
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
    let dir = match a.dir {
        Some(d) => d,
        None => default_dir()?,
    };
    let url = a.url.clone().unwrap_or_else(|| {
        format!(
            "https://github.com/SigmaHQ/sigma/releases/latest/download/{}",
            a.package.asset()
        )
    });
    let bytes = download(&url, a.timeout)?;
    let digest = hex(&sha2::Sha256::digest(&bytes));
    if let Some(want) = &a.sha256 {
        let want = want.trim().to_ascii_lowercase();
        if want != digest {
            bail!(
                "{url}: SHA-256 mismatch: expected {want}, got {digest}; {} left unchanged",
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
    let files = unpack(&bytes, tmp.path()).with_context(|| url.clone())?;
    let (loaded, failed) = match count_rules(tmp.path()) {
        Ok(c) if c.0 > 0 => c,
        Ok(_) | Err(_) => bail!(
            "{url}: the package holds no Sigma rule tracehunt can load; {} left unchanged",
            dir.display()
        ),
    };
    let previous = if dir.exists() {
        count_rules(&dir).ok()
    } else {
        None
    };
    let old = PathBuf::from(format!("{}.old", dir.display()));
    let new = tmp.keep();
    let kept_old = swap(&new, &dir, &old).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&new);
    })?;
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    writeln!(
        w,
        "update-rules: {url} (sha256 {digest}, {} bytes, {files} files)",
        bytes.len()
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
    w.flush()?;
    Ok(0)
}
