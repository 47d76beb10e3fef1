//! One JSON-lines file cut into byte ranges that can be read in parallel
//! (issue #4: one big JSONL file was read by one thread while the other
//! cores idled).

use crate::error::{Location, ReadError, RecordError, RecordErrorKind};
use crate::json_reader::JsonLinesRecords;
use crate::{sniff, utf16, Format, SNIFF_LEN};
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracehunt_event::Event;

/// The range size the CLI uses: 16 MiB (about 9,000 Mordor records). A
/// constant, never derived from the thread count, so the same file is cut
/// the same way on every machine.
pub const JSON_LINES_RANGE_BYTES: u64 = 16 << 20;

/// Bytes read at a time while planning.
const PLAN_BUF: usize = 1 << 20;

/// One range of a JSON-lines file: bytes `start..end`, starting at the
/// start of line `first_line` (1-based), a line whose first byte is `{`
/// that starts a record (see [`JsonLinesRanges`]), or the file's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRange {
    /// File offset of the range's first byte.
    pub start: u64,
    /// File offset just past the range's last byte.
    pub end: u64,
    /// 1-based line number of the range's first line, counted as the
    /// reader counts lines (`\n`, `\r\n` and a bare `\r` each end one).
    pub first_line: u64,
}

enum Src {
    File(PathBuf),
    Bytes(Arc<[u8]>),
}

/// A UTF-8 JSON-lines file cut into ranges of about a fixed size, for
/// parallel reading. Made by [`plan_json_lines`] or
/// [`plan_json_lines_bytes`].
///
/// Each range starts at a line whose first byte is `{` and whose previous
/// non-blank line does not end in `[`, `,` or `:` (or starts with `{`): the
/// whole-file reader always starts a new record at such a line (an open
/// record before it is cut short there; other `{` lines continue a
/// pretty-printed record, see `json_reader::continues_value`), so a reader started at the range's first line
/// reads exactly what the whole-file reader reads from there. Concatenating
/// [`range(0)`](Self::range), `range(1)`, … gives the same events (same
/// values, including the `record_id` fallback, which is the record's line)
/// and the same record errors at the same lines as [`open`](crate::open)
/// on the file. `Send + Sync`: read ranges from several threads.
pub struct JsonLinesRanges {
    path: PathBuf,
    src: Src,
    ranges: Vec<LineRange>,
}

impl std::fmt::Debug for JsonLinesRanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesRanges")
            .field("path", &self.path)
            .field("ranges", &self.ranges)
            .finish_non_exhaustive()
    }
}

impl JsonLinesRanges {
    /// Number of ranges (at least 1); valid arguments to
    /// [`range`](Self::range) are `0..len()`.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Always false: even an empty file is one (empty) range.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The file, as given when planning.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ranges, in file order.
    pub fn ranges(&self) -> &[LineRange] {
        &self.ranges
    }

    /// The records of range `i`, streamed (one line in memory at a time,
    /// as [`open`](crate::open)), in file order. Out-of-range `i` gives an
    /// empty iterator. The file is opened again for each range; if that
    /// fails, the iterator yields one [`RecordErrorKind::Io`] error at the
    /// range's first line.
    ///
    /// A file that changes while it is read (breaker finding: records were
    /// dropped without a word): the last range reads on to the end of the
    /// file as it is then (lines appended since planning are read, as by
    /// [`open`](crate::open)); a range that ends early because the file
    /// shrank ends with one [`RecordErrorKind::Truncated`] error saying so.
    pub fn range(&self, i: usize) -> JsonLinesRange {
        let Some(r) = self.ranges.get(i).copied() else {
            return JsonLinesRange(RangeInner::Done);
        };
        let last = i + 1 == self.ranges.len();
        let len = if last { u64::MAX } else { r.end - r.start };
        let read = Arc::new(AtomicU64::new(0));
        let counted = |rd: Box<dyn Read + Send>| -> Box<dyn Read + Send> {
            Box::new(Counted {
                inner: rd,
                read: read.clone(),
            })
        };
        let reader: std::io::Result<Box<dyn Read + Send>> = match &self.src {
            Src::File(p) => File::open(p).and_then(|mut f| {
                f.seek(SeekFrom::Start(r.start))?;
                Ok(counted(Box::new(f.take(len))))
            }),
            Src::Bytes(b) => {
                let mut c = Cursor::new(b.clone());
                c.set_position(r.start);
                Ok(counted(Box::new(c.take(len))))
            }
        };
        JsonLinesRange(match reader {
            Ok(rd) => RangeInner::Lines(
                JsonLinesRecords::starting_at(&self.path, BufReader::new(rd), r.first_line),
                Shrink {
                    range: r,
                    expected: if last { 0 } else { r.end - r.start },
                    read,
                },
            ),
            Err(e) => RangeInner::Failed(Some(RecordError::new(
                &self.path,
                Location::Line(r.first_line),
                RecordErrorKind::Io,
                format!("cannot read bytes {}..{}: {e}", r.start, r.end),
            ))),
        })
    }
}

/// The records of one range of a [`JsonLinesRanges`] plan:
/// `Ok(event)` per record, `Err` per record that was skipped (as
/// [`RecordIter`](crate::RecordIter)).
pub struct JsonLinesRange(RangeInner);

enum RangeInner {
    Lines(JsonLinesRecords<BufReader<Box<dyn Read + Send>>>, Shrink),
    Failed(Option<RecordError>),
    Done,
}

/// What a range expects to read, to tell when the file shrank under it.
struct Shrink {
    range: LineRange,
    /// Bytes the range must read (0 for the last range, which reads on).
    expected: u64,
    /// Bytes read so far (shared with the [`Counted`] reader).
    read: Arc<AtomicU64>,
}

/// A reader that counts the bytes it gives.
struct Counted {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl std::fmt::Debug for JsonLinesRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesRange").finish_non_exhaustive()
    }
}

impl Iterator for JsonLinesRange {
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            RangeInner::Lines(r, shrink) => match r.next() {
                Some(item) => Some(item),
                None => {
                    let got = shrink.read.load(Ordering::Relaxed);
                    let s = &shrink.range;
                    let err = (got < shrink.expected).then(|| {
                        RecordError::new(
                            &r.path,
                            Location::Line(r.line_no + 1),
                            RecordErrorKind::Truncated,
                            format!(
                                "the file shrank while being read: bytes {}..{} planned, only {} there; the records after are lost",
                                s.start,
                                s.end,
                                s.start + got
                            ),
                        )
                    });
                    self.0 = RangeInner::Done;
                    err.map(Err)
                }
            },
            RangeInner::Failed(e) => e.take().map(Err),
            RangeInner::Done => None,
        }
    }
}

/// Plans a JSON-lines file into ranges of at least `range_bytes` bytes
/// (the last one may be shorter; a range is longer when no line starting
/// with `{` follows the size mark soon). A file of at most `range_bytes`
/// bytes is one range and is not scanned; a bigger one is scanned once
/// (lines counted with `memchr`, about 1 s per 2-4 GB from the page cache)
/// to give each range its first line number.
///
/// Returns `Ok(None)` when the file is not UTF-8 JSON lines (EVTX, a JSON
/// array, UTF-16 JSON, JSON after more than [`SNIFF_LEN`] bytes of
/// whitespace…): read it whole with [`open`](crate::open).
///
/// # Errors
///
/// [`ReadError::Io`] when the file cannot be opened or read.
pub fn plan_json_lines(
    path: &Path,
    range_bytes: u64,
) -> Result<Option<JsonLinesRanges>, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::other("is a directory")));
    }
    let ranges = plan(&mut file, range_bytes).map_err(io)?;
    Ok(ranges.map(|ranges| JsonLinesRanges {
        path: path.to_path_buf(),
        src: Src::File(path.to_path_buf()),
        ranges,
    }))
}

/// Like [`plan_json_lines`], for a file already in memory; `name` is only
/// used in errors and [`JsonLinesRanges::path`].
pub fn plan_json_lines_bytes(
    name: impl Into<PathBuf>,
    bytes: Vec<u8>,
    range_bytes: u64,
) -> Option<JsonLinesRanges> {
    let bytes: Arc<[u8]> = bytes.into();
    let mut c = Cursor::new(&bytes[..]);
    let ranges = plan(&mut c, range_bytes).ok()??;
    let path = name.into();
    Some(JsonLinesRanges {
        path,
        src: Src::Bytes(bytes),
        ranges,
    })
}

/// The ranges of the JSON-lines data in `src` (positioned at its start),
/// or `None` when it is not UTF-8 JSON lines.
fn plan<R: Read>(src: &mut R, range_bytes: u64) -> std::io::Result<Option<Vec<LineRange>>> {
    let range_bytes = range_bytes.max(1);
    let mut buf = vec![0u8; PLAN_BUF.max(SNIFF_LEN)];
    // `have` bytes of `buf` hold the file from offset `base` on.
    let (mut have, mut base, mut eof) = (0usize, 0u64, false);
    let mut fill = |buf: &mut [u8], have: &mut usize, eof: &mut bool| -> std::io::Result<()> {
        while *have < buf.len() && !*eof {
            match src.read(&mut buf[*have..]) {
                Ok(0) => *eof = true,
                Ok(n) => *have += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    fill(&mut buf, &mut have, &mut eof)?;
    let head = &buf[..have.min(SNIFF_LEN)];
    // gzip (`1f 8b`) is never cut into byte ranges: it is read whole
    // through a decoder by `open` (issue #21).
    if head.starts_with(&crate::gz::MAGIC)
        || utf16::detect(head).is_some()
        || sniff(head) != Some(Format::JsonLines)
    {
        return Ok(None);
    }
    let mut ranges = Vec::new();
    let (mut start, mut first_line, mut target) = (0u64, 1u64, range_bytes);
    if eof && have as u64 <= range_bytes {
        ranges.push(LineRange {
            start,
            end: have as u64,
            first_line,
        });
        return Ok(Some(ranges));
    }
    // Line ends before the current position, counted as the reader counts
    // them: `\n`, `\r\n` (once) and a bare `\r`.
    let mut lines = 0u64;
    // The line being scanned: file offset of its start, its first byte, and
    // its last non-whitespace byte in buffers already shifted out; then the
    // first and last non-whitespace byte of the last non-blank line (the
    // reader's `continues_value` rule).
    let mut line_start = 0u64;
    let mut line_first = buf.first().copied().filter(|_| have > 0);
    let mut line_last: Option<u8> = None;
    let mut prev: Option<(u8, u8)> = None;
    loop {
        // Positions whose next byte is known (or is the end of the file).
        let limit = if eof { have } else { have - 1 };
        for i in memchr::memchr2_iter(b'\n', b'\r', &buf[..limit]) {
            let next = buf[..have].get(i + 1).copied();
            if buf[i] == b'\r' && next == Some(b'\n') {
                continue;
            }
            lines += 1;
            let at = base + i as u64 + 1;
            let from = usize::try_from(line_start.saturating_sub(base)).unwrap_or(0);
            let last = buf[from.min(i)..i]
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace())
                .copied()
                .or(line_last);
            if let (Some(first), Some(last)) = (line_first, last) {
                prev = Some((first, last));
            }
            (line_start, line_first, line_last) = (at, next, None);
            if at >= target && next == Some(b'{') && !crate::json_reader::continues_value(prev) {
                ranges.push(LineRange {
                    start,
                    end: at,
                    first_line,
                });
                (start, first_line, target) = (at, lines + 1, at + range_bytes);
            }
        }
        if eof {
            break;
        }
        // The current line's last non-whitespace byte so far.
        let from = usize::try_from(line_start.saturating_sub(base)).unwrap_or(0);
        if let Some(b) = buf[from.min(limit)..limit]
            .iter()
            .rev()
            .find(|b| !b.is_ascii_whitespace())
        {
            line_last = Some(*b);
        }
        buf.copy_within(limit..have, 0);
        base += limit as u64;
        have -= limit;
        fill(&mut buf, &mut have, &mut eof)?;
    }
    ranges.push(LineRange {
        start,
        end: base + have as u64,
        first_line,
    });
    Ok(Some(ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(it: impl Iterator<Item = Result<Event, RecordError>>) -> Vec<String> {
        it.map(|r| match r {
            Ok(e) => format!("ok {:?} {:?}", e.meta.event_id, e.meta.record_id),
            Err(e) => e.to_string(),
        })
        .collect()
    }

    /// Every range size from 1 byte up gives what the whole-file reader
    /// gives, on data with every line-end kind, blank lines, pretty-printed
    /// and broken records, an array line and no final newline.
    #[test]
    fn ranges_of_every_size_read_like_the_whole_file() {
        let data: &[u8] = b"\xEF\xBB\xBF{\"EventID\": 1}\r\n\r\n{\"EventID\": 2,\n  \"x\": [1,\n 2]}\r{\"EventID\": \n{\"EventID\": 4}\n\xff\n  {\"EventID\": 5}\n[{\"EventID\": 6}, 7, [{\"EventID\": 8}]]\r\r\n{\"EventID\": 9}";
        let whole = outline(crate::open_bytes("d.jsonl", data.to_vec()).unwrap());
        assert_eq!(whole.len(), 10, "{whole:#?}");
        // Size 1: a range at every line starting with `{` (but the first).
        assert_eq!(
            plan_json_lines_bytes("d.jsonl", data.to_vec(), 1)
                .unwrap()
                .ranges()
                .iter()
                .map(|r| r.first_line)
                .collect::<Vec<_>>(),
            [1, 3, 6, 7, 12]
        );
        for size in 1..=data.len() as u64 + 1 {
            let plan = plan_json_lines_bytes("d.jsonl", data.to_vec(), size).unwrap();
            let got = outline((0..plan.len()).flat_map(|i| plan.range(i)));
            assert_eq!(got, whole, "range size {size}: {:?}", plan.ranges());
            let r = plan.ranges();
            assert_eq!(r[0].start, 0);
            assert_eq!(r.last().unwrap().end, data.len() as u64);
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            assert!(r[1..].iter().all(|x| data[x.start as usize] == b'{'));
        }
    }

    /// Random damage (a small alphabet of JSON-significant bytes and line
    /// ends, mixed with real records) never makes a ranged reading differ
    /// from the whole-file one, for any range size.
    #[test]
    fn random_bytes_read_the_same_through_ranges() {
        let alphabet = b"{}[]\",:\\ \n\r\r\n1aE\xff";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for case in 0..3000 {
            let mut data = b"{\"".to_vec();
            for _ in 0..rnd(300) {
                if rnd(8) == 0 {
                    data.extend_from_slice(b"\n{\"EventID\": 4, \"a\": [1, {\"b\": \"}\"}]}\r\n");
                } else {
                    data.push(alphabet[rnd(alphabet.len())]);
                }
            }
            let whole = outline(crate::open_bytes("r.jsonl", data.clone()).unwrap());
            for size in [1, 2, 7, 1 + rnd(data.len() + 1) as u64] {
                let plan = plan_json_lines_bytes("r.jsonl", data.clone(), size).unwrap();
                let got = outline((0..plan.len()).flat_map(|i| plan.range(i)));
                assert_eq!(got, whole, "case {case}, size {size}: {data:?}");
            }
        }
    }

    #[test]
    fn only_utf8_json_lines_is_planned() {
        for data in [
            &b"[{\"EventID\": 1}]"[..],
            b"ElfFile\0",
            b"\xFF\xFE{\0\"\0}\0",
            b"hello",
        ] {
            assert!(plan_json_lines_bytes("x", data.to_vec(), 1).is_none());
        }
        let one = plan_json_lines_bytes("x", b"{}\n{}\n".to_vec(), 100).unwrap();
        assert_eq!(
            one.ranges(),
            [LineRange {
                start: 0,
                end: 6,
                first_line: 1
            }]
        );
    }
}
