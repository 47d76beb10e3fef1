//! The state file: per followed file its identity and committed offset, as JSON, replaced
//! atomically.
//!
//! ```json
//! {"version":1,"files":[{"path":"/var/log/app.log","dev":2049,"ino":1835011,
//!   "fp_len":256,"fp":1234567890123,"offset":40960,"line":512}]}
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::types::FollowError;

/// The version this crate writes and reads.
pub(crate) const VERSION: u32 = 1;

/// The whole state file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateFile {
    pub version: u32,
    pub files: Vec<Entry>,
}

/// One followed file generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// The path it was last followed under.
    pub path: PathBuf,
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// How many first bytes `fp` covers (0 to `FP_MAX`).
    pub fp_len: u32,
    /// FNV-1a 64 of the first `fp_len` bytes.
    pub fp: u64,
    /// Committed offset: everything before it was processed downstream.
    pub offset: u64,
    /// Number of lines before `offset`, when known.
    pub line: Option<u64>,
}

/// Reads the state file; `Ok(None)` when it does not exist.
pub(crate) fn load(path: &Path) -> Result<Option<Vec<Entry>>, FollowError> {
    let err = |reason: String| FollowError::State {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(format!("cannot read: {e}"))),
    };
    let state: StateFile = serde_json::from_slice(&bytes)
        .map_err(|e| err(format!("not a tracehunt follow state ({e})")))?;
    if state.version != VERSION {
        return Err(err(format!(
            "unsupported version {} (this build reads version {VERSION})",
            state.version
        )));
    }
    Ok(Some(state.files))
}

/// Replaces the state file atomically: writes `<name>.tmp` in the same directory, fsyncs
/// it, renames it over `path`, fsyncs the directory.
pub(crate) fn store(path: &Path, files: Vec<Entry>) -> Result<(), FollowError> {
    let err = |source| FollowError::Persist {
        path: path.to_path_buf(),
        source,
    };
    let state = StateFile {
        version: VERSION,
        files,
    };
    let bytes = serde_json::to_vec(&state).map_err(|e| err(io::Error::other(e)))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })
}
