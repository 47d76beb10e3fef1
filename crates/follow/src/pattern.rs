//! Follow targets: plain paths, and patterns with `*` / `?` in the last path component
//! (shell-style, matched byte-wise on the file name; `*` also matches a leading `.`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::types::FollowError;

/// One parsed target.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A path followed as given.
    Path(PathBuf),
    /// Files of `dir` whose name matches `pattern`.
    Glob { dir: PathBuf, pattern: Vec<u8> },
}

fn has_wildcard(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'*' || b == b'?')
}

impl Target {
    /// Parses a target; errors on an empty path or a wildcard in a directory component.
    pub(crate) fn parse(t: &Path) -> Result<Target, FollowError> {
        let err = |reason| FollowError::Target {
            target: t.to_path_buf(),
            reason,
        };
        if t.as_os_str().is_empty() {
            return Err(err("empty path"));
        }
        let name = match t.file_name() {
            Some(n) => n.as_bytes(),
            None => return Err(err("no file name (ends in `..` or `/`)")),
        };
        let dir = t.parent().unwrap_or(Path::new(""));
        if has_wildcard(dir.as_os_str().as_bytes()) {
            return Err(err(
                "wildcards are only supported in the last path component",
            ));
        }
        if !has_wildcard(name) {
            return Ok(Target::Path(t.to_path_buf()));
        }
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        };
        Ok(Target::Glob {
            dir,
            pattern: name.to_vec(),
        })
    }
}

/// Lists the entries of `dir` whose names match `pattern`, sorted by path.
pub(crate) fn list_matches(dir: &Path, pattern: &[u8]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if wildcard_match(pattern, OsStr::as_bytes(&name)) {
            out.push(dir.join(name));
        }
    }
    out.sort();
    Ok(out)
}

/// Shell-style match of `name` against `pattern` (`*`: any bytes, `?`: one byte), linear
/// backtracking on the last `*` (O(len(pattern) · len(name)) worst case).
pub(crate) fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_match_cases() {
        assert!(wildcard_match(b"*.ndjson", b"winlogbeat-1.ndjson"));
        assert!(!wildcard_match(b"*.ndjson", b"winlogbeat-1.ndjson.1"));
        assert!(wildcard_match(b"app.log*", b"app.log"));
        assert!(wildcard_match(b"app.log*", b"app.log.1"));
        assert!(wildcard_match(b"a?c", b"abc"));
        assert!(!wildcard_match(b"a?c", b"ac"));
        assert!(wildcard_match(b"*a*b*", b"xxaxxbxx"));
        assert!(!wildcard_match(b"*a*b", b"xxaxxbxxa"));
        assert!(wildcard_match(b"*", b""));
        assert!(!wildcard_match(b"", b"a"));
    }

    #[test]
    fn parse_rejects_wildcard_in_directory() {
        assert!(Target::parse(Path::new("/var/*/x.log")).is_err());
        assert!(Target::parse(Path::new("")).is_err());
        assert!(matches!(
            Target::parse(Path::new("/var/log/*.json")),
            Ok(Target::Glob { .. })
        ));
        assert!(matches!(
            Target::parse(Path::new("x.log")),
            Ok(Target::Path(_))
        ));
    }
}
