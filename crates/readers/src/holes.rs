//! The holes of a sparse file: byte ranges the file system stores no data
//! for and that read as zeros (`lseek` with `SEEK_HOLE` / `SEEK_DATA`).
//!
//! An EVTX file is preallocated in 64 KiB chunk slots, most of them unused
//! (all zeros); the reader reads every such slot to tell an unused slot
//! from a damaged chunk (issue #20). A copy made sparse (`cp
//! --sparse=always`, as `bench/run.sh` makes its corpus, or a sparse-aware
//! archiver) keeps those slots as holes: a slot inside a hole is all zeros
//! without reading it (issue #22). Only on Linux; elsewhere, or when the
//! file system does not say, there are no holes and every slot is read.

/// At most this many holes are kept per file (a file fragmented into more
/// is read in full beyond them).
const MAX_HOLES: usize = 4096;

/// The holes of one file: sorted, disjoint, half-open byte ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Holes(Vec<(u64, u64)>);

impl Holes {
    /// The holes of `file`'s first `len` bytes; `None` when it has none
    /// or they cannot be asked for. Moves the file position (callers seek
    /// before every read).
    #[cfg(target_os = "linux")]
    pub(crate) fn of(file: &std::fs::File, len: u64) -> Option<Holes> {
        use rustix::fs::{seek, SeekFrom};
        let mut holes = Vec::new();
        let mut pos = 0;
        while pos < len && holes.len() < MAX_HOLES {
            // The end of the file counts as a hole: no hole before it ends the list.
            let hole = seek(file, SeekFrom::Hole(pos)).ok()?;
            if hole >= len {
                break;
            }
            let data = match seek(file, SeekFrom::Data(hole)) {
                Ok(d) => d.min(len),
                // No data after the hole: it runs to the end.
                Err(e) if e == rustix::io::Errno::NXIO => len,
                Err(_) => return None,
            };
            if data <= hole {
                break;
            }
            holes.push((hole, data));
            pos = data;
        }
        (!holes.is_empty()).then_some(Holes(holes))
    }

    /// No holes known off Linux.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn of(_file: &std::fs::File, _len: u64) -> Option<Holes> {
        None
    }

    /// Whether the bytes `start..end` all lie in one hole (read as zeros).
    pub(crate) fn covers(&self, start: u64, end: u64) -> bool {
        let i = self.0.partition_point(|&(s, _)| s <= start);
        i > 0 && end <= self.0[i - 1].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn covers_only_ranges_inside_one_hole() {
        let h = Holes(vec![(4096, 69_632), (135_168, 200_704)]);
        assert!(h.covers(4096, 69_632));
        assert!(h.covers(5000, 6000));
        assert!(!h.covers(0, 4096));
        assert!(!h.covers(4096, 69_633));
        assert!(!h.covers(69_632, 135_168));
        assert!(h.covers(135_168, 200_704));
        assert!(!h.covers(200_704, 200_705));
        assert!(!Holes::default().covers(0, 1));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn holes_of_a_sparse_file_read_as_zeros() {
        // 4 KiB of data, a 1 MiB hole, 4 KiB of data, a hole to the end.
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut f = tmp.reopen().unwrap();
        f.write_all(&[7u8; 4096]).unwrap();
        f.seek(SeekFrom::Start(4096 + (1 << 20))).unwrap();
        f.write_all(&[7u8; 4096]).unwrap();
        let len = 2 * 4096 + (2 << 20);
        f.set_len(len).unwrap();
        let Some(h) = Holes::of(&f, len) else {
            // A file system that does not report holes: nothing to check.
            return;
        };
        let data = std::fs::read(tmp.path()).unwrap();
        assert_eq!(data.len() as u64, len);
        for &(s, e) in &h.0 {
            assert!(s < e && e <= len);
            assert!(data[s as usize..e as usize].iter().all(|&b| b == 0));
        }
        assert!(!h.covers(0, 4096));
        assert!(h.covers(8192, 8192 + 65_536));
    }
}
