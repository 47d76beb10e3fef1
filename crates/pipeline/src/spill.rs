//! Where a hunt's rendered detections wait for the final time sort.
//!
//! Workers render each detection into the bytes the output format needs as
//! soon as it is found and append them here in pieces (one piece per work
//! unit, or per 256 KiB); the hunt keeps only a small index entry per
//! detection ([`crate::entry`]), itself sorted externally in runs stored in a
//! second `Spill` ([`crate::index`]), and once every unit is scanned copies
//! the bytes out in output order. Below [`MEM_LIMIT`]
//! bytes everything stays in memory; past it the bytes go to an anonymous
//! temporary file (`tempfile::tempfile`, deleted by the OS when closed), so
//! memory stays flat however many detections a hunt finds. Where no
//! temporary file can be created the spill stays in memory (the hunt says
//! so on stderr) rather than failing.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Mutex;

/// Rendered bytes kept in memory before the spill moves to a temporary file.
///
/// Small on purpose: a large in-memory buffer, freed when the spill moves
/// to disk, raises glibc's dynamic mmap threshold, after which the growing
/// index vectors fragment the heap (4x bench corpus: 144 MB peak RSS with
/// 64 KiB, 152–156 MB with 16 MiB; 1x: 128 vs 129 MB).
pub const MEM_LIMIT: usize = 64 << 10;

/// [`MEM_LIMIT`], or the byte count in the environment variable
/// `TRACEHUNT_SPILL_MEM` (tests use `0` to put every hunt's spill on disk).
pub fn mem_limit() -> usize {
    std::env::var("TRACEHUNT_SPILL_MEM")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(MEM_LIMIT)
}

/// Append-only store of rendered detections shared by the worker threads.
pub struct Spill {
    inner: Mutex<Inner>,
    limit: usize,
}

struct Inner {
    mem: Vec<u8>,
    file: Option<File>,
    len: u64,
    /// Why no temporary file could be created (the spill then stays in
    /// memory).
    disk_error: Option<String>,
}

impl Spill {
    /// An empty spill that moves to a temporary file past `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Spill {
            inner: Mutex::new(Inner {
                mem: Vec::new(),
                file: None,
                len: 0,
                disk_error: None,
            }),
            limit,
        }
    }

    /// Appends `bytes` and returns the offset they start at.
    ///
    /// # Errors
    /// Creating or writing the temporary file failed.
    pub fn append(&self, bytes: &[u8]) -> io::Result<u64> {
        // A poisoned lock only means another worker panicked mid-append;
        // its unit's offsets are never read, the data stays consistent.
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let at = g.len;
        if g.file.is_none() && g.disk_error.is_none() && g.mem.len() + bytes.len() > self.limit {
            match tempfile::tempfile() {
                Ok(mut f) => {
                    f.write_all(&g.mem)?;
                    g.mem = Vec::new();
                    g.file = Some(f);
                }
                Err(e) => g.disk_error = Some(e.to_string()),
            }
        }
        match &mut g.file {
            Some(f) => f.write_all(bytes)?,
            None => g.mem.extend_from_slice(bytes),
        }
        g.len += bytes.len() as u64;
        Ok(at)
    }

    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len
    }

    /// Nothing appended yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the spill went to a temporary file.
    #[cfg(test)]
    pub fn on_disk(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .file
            .is_some()
    }

    /// Why the spill stayed in memory past its limit: no temporary file
    /// could be created.
    pub fn disk_error(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .disk_error
            .clone()
    }

    /// Ends appending; the returned reader reads any appended range.
    pub fn into_reader(self) -> SpillReader {
        let g = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        SpillReader {
            mem: g.mem,
            file: g.file,
        }
    }
}

/// Random access to a finished [`Spill`].
pub struct SpillReader {
    mem: Vec<u8>,
    file: Option<File>,
}

impl SpillReader {
    /// Appends the `len` bytes at `offset` to `out`.
    ///
    /// # Errors
    /// Reading the temporary file failed, or the range is outside the spill.
    pub fn read(&self, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        match &self.file {
            None => {
                let r = usize::try_from(offset)
                    .ok()
                    .and_then(|o| self.mem.get(o..o.checked_add(len)?))
                    .ok_or_else(|| io::Error::other("spill range out of bounds"))?;
                out.extend_from_slice(r);
                Ok(())
            }
            Some(f) => {
                let start = out.len();
                out.resize(start + len, 0);
                read_exact_at(f, &mut out[start..], offset)
            }
        }
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

/// Elsewhere (Windows): seek, then read. Only the main thread reads.
#[cfg(not(unix))]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_back_in_memory_and_on_disk() {
        for limit in [1 << 20, 10] {
            let s = Spill::new(limit);
            let a = s.append(b"hello ").unwrap();
            let b = s.append(b"spilled ").unwrap();
            let c = s.append(b"world").unwrap();
            assert_eq!((a, b, c), (0, 6, 14));
            assert_eq!(s.len(), 19);
            assert_eq!(s.on_disk(), limit == 10);
            let r = s.into_reader();
            let mut out = Vec::new();
            r.read(c, 5, &mut out).unwrap();
            r.read(a, 6, &mut out).unwrap();
            r.read(b, 8, &mut out).unwrap();
            assert_eq!(out, b"worldhello spilled ");
            assert!(r.read(15, 10, &mut out).is_err());
        }
    }
}
