//! Sources of events (the first stage of the pipeline).
//!
//! A [`Source`] hands out *work units*, each a stream of records that one
//! worker thread reads start to end. Workers pull units concurrently
//! ([`Source::next_unit`]) until the source is exhausted. The batch source
//! is [`FileSource`]: the walked file set cut into units (whole files, EVTX
//! chunks, JSON-lines line ranges; [`FileSource::plan`]). An unbounded
//! source (followed files, stdin, HTTP, a message stream) implements the
//! same trait and hands out [`Records::Boxed`] units as data arrives.
//!
//! Units are numbered in input order (stream, then position in it); the
//! output is sorted by (time, unit, place in unit), so how a stream is cut
//! into units never changes the output.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tracehunt_event::Event;
use tracehunt_readers::RecordError;

/// The records of one work unit, in input order: events, and errors that
/// stand for lost or skipped records ([`RecordError::records`]).
pub enum Records {
    /// One chunk of an EVTX file, parsed up front.
    Chunk(std::vec::IntoIter<Result<Event, RecordError>>),
    /// One line range of a JSON-lines file.
    Lines(tracehunt_readers::JsonLinesRange),
    /// A whole file, streamed.
    Stream(tracehunt_readers::RecordIter),
    /// Any other stream of records (unbounded sources).
    Boxed(Box<dyn Iterator<Item = Result<Event, RecordError>> + Send>),
}

impl Iterator for Records {
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Records::Chunk(i) => i.next(),
            Records::Lines(i) => i.next(),
            Records::Stream(i) => i.next(),
            Records::Boxed(i) => i.next(),
        }
    }
}

/// One unit of work taken from a [`Source`].
pub struct WorkUnit {
    /// Unit number: input order (stream, then position in the stream).
    /// The tie break of equal event times in the output.
    pub index: u32,
    /// The stream (file) the unit belongs to: an index for
    /// [`Source::stream_name`].
    pub stream: usize,
    /// The records, or why the stream could not be read at all (the
    /// reason without the stream's name).
    pub records: Result<Records, String>,
}

/// Where events come from: hands out work units to the worker threads.
///
/// Implementations must be `Sync`: every worker calls [`Source::next_unit`]
/// concurrently.
pub trait Source: Sync {
    /// The next unit, or `None` when there is none left (a batch source is
    /// exhausted; an unbounded source was closed).
    fn next_unit(&self) -> Option<WorkUnit>;
    /// Number of streams (files) the source reads, for per-stream notes.
    fn streams(&self) -> usize;
    /// Display name (path) of stream `i`.
    fn stream_name(&self, i: usize) -> String;
}

/// The batch source: walked files cut into units ([`FileSource::plan`]),
/// handed out from a shared counter: in order, or biggest file first when
/// every file is one unit (the numbers, and so the output, are the same).
pub struct FileSource<'f> {
    files: &'f [PathBuf],
    /// Groups of units in order (a whole file, or all chunks / ranges of
    /// one file: issue #20 item 7, one entry per chunk grew peak RSS with
    /// the file size), and the first unit number of each.
    groups: Vec<Unit>,
    starts: Vec<usize>,
    total: usize,
    /// The order units are handed out in (`order[k]`: the unit handed out
    /// k-th), when not their numbering: biggest file first.
    order: Option<Vec<u32>>,
    next: AtomicUsize,
}

impl<'f> FileSource<'f> {
    /// Plans the units of `files` (sorted paths, as `tracehunt_readers::walk`
    /// returns them) for `threads` workers: files are split into EVTX chunks
    /// and JSON-lines ranges only when there are fewer than 4 per thread.
    pub fn plan(files: &'f [PathBuf], threads: usize) -> Self {
        let groups = plan_units(files, threads);
        let mut starts = Vec::with_capacity(groups.len());
        let mut total = 0usize;
        for g in &groups {
            starts.push(total);
            total += g.count();
        }
        let order = (groups.len() == total && total > 1).then(|| biggest_first(files, &groups));
        FileSource {
            files,
            groups,
            starts,
            total,
            order,
            next: AtomicUsize::new(0),
        }
    }

    /// Number of units planned.
    pub fn len(&self) -> usize {
        self.total
    }

    /// No unit planned (no file).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The files read.
    pub fn files(&self) -> &'f [PathBuf] {
        self.files
    }
}

impl Source for FileSource<'_> {
    fn next_unit(&self) -> Option<WorkUnit> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        if k >= self.total {
            return None;
        }
        let i = self
            .order
            .as_ref()
            .and_then(|o| o.get(k))
            .map_or(k, |&u| u as usize);
        let g = self.starts.partition_point(|&s| s <= i) - 1;
        let unit = &self.groups[g];
        let k = i - self.starts[g];
        let records = match unit {
            Unit::Chunks(_, chunks, _) => Ok(Records::Chunk(chunks.chunk(k).into_iter())),
            Unit::Lines(_, ranges, _) => Ok(Records::Lines(ranges.range(k))),
            Unit::Stream(f) => {
                let path = &self.files[*f];
                match tracehunt_readers::open(path) {
                    Ok(r) => Ok(Records::Stream(r)),
                    Err(e) => {
                        // The error text starts with the path; the summary shows it apart.
                        let text = e.to_string();
                        let prefix = format!("{}: ", path.display());
                        Err(text.strip_prefix(&prefix).unwrap_or(&text).to_owned())
                    }
                }
            }
        };
        Some(WorkUnit {
            index: i as u32,
            stream: unit.file(),
            records,
        })
    }

    fn streams(&self) -> usize {
        self.files.len()
    }

    fn stream_name(&self, i: usize) -> String {
        self.files[i].display().to_string()
    }
}

/// The order to hand out units that are whole files in (one unit per
/// group): by file size, biggest first, equal sizes in file order, so a big
/// file is not the last one read while the other workers are idle (the
/// triage collection's 1.9 MB Apache log came last in path order). Units
/// keep their numbers, so the output does not change. A file whose size
/// cannot be read counts as empty.
fn biggest_first(files: &[PathBuf], groups: &[Unit]) -> Vec<u32> {
    let size = |g: &Unit| {
        files
            .get(g.file())
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    };
    let mut by_size: Vec<(u64, u32)> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (size(g), i as u32))
        .collect();
    by_size.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    by_size.into_iter().map(|(_, i)| i).collect()
}

/// A unit of parallel work: a whole file read as a stream (a small file,
/// a JSON array, UTF-16 JSON…), one chunk of an EVTX file, or one line
/// range of a JSON-lines file — so one big EVTX or JSONL file spreads over
/// all cores too.
enum Unit {
    Stream(usize),
    /// All `n` chunks of a file, units in chunk order.
    Chunks(usize, Arc<tracehunt_readers::EvtxChunks>, usize),
    /// All `n` line ranges of a file, units in range order.
    Lines(usize, Arc<tracehunt_readers::JsonLinesRanges>, usize),
}

impl Unit {
    fn file(&self) -> usize {
        match self {
            Unit::Stream(f) | Unit::Chunks(f, _, _) | Unit::Lines(f, _, _) => *f,
        }
    }

    /// Units in this group.
    fn count(&self) -> usize {
        match self {
            Unit::Stream(_) => 1,
            Unit::Chunks(_, _, n) | Unit::Lines(_, _, n) => *n,
        }
    }
}

/// The size of the line ranges a big JSON-lines file is cut into:
/// [`tracehunt_readers::JSON_LINES_RANGE_BYTES`] (16 MiB), or the hidden
/// environment variable `TRACEHUNT_JSONL_RANGE_BYTES` (bytes, at least 1;
/// for tests, which cut small files into many ranges). Never derived from
/// the thread count.
fn jsonl_range_bytes() -> u64 {
    std::env::var("TRACEHUNT_JSONL_RANGE_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(tracehunt_readers::JSON_LINES_RANGE_BYTES)
}

/// Splits the input files into units, in file order then position order.
///
/// Files are split only when there are too few of them to keep every
/// thread busy (fewer than 4 per thread): EVTX files into chunks, UTF-8
/// JSON-lines files bigger than one range into line ranges (planning scans
/// such a file once for its line ends). A chunk plan holds the file open
/// until the scan ends, so thousands of files are read one unit per file
/// instead (bounded open files). Units are numbered in this order and
/// output is sorted by (time, unit, record), so splitting does not change
/// the output.
fn plan_units(files: &[PathBuf], threads: usize) -> Vec<Unit> {
    if files.len() >= 4 * threads.max(1) {
        return (0..files.len()).map(Unit::Stream).collect();
    }
    let range_bytes = jsonl_range_bytes();
    let mut units = Vec::new();
    for (i, p) in files.iter().enumerate() {
        match tracehunt_readers::open_evtx_chunks(p) {
            Ok(c) if !c.is_empty() => {
                let n = c.len();
                units.push(Unit::Chunks(i, Arc::new(c), n));
                continue;
            }
            Ok(_) => {}
            Err(_) => {
                let big = std::fs::metadata(p).is_ok_and(|m| m.len() > range_bytes);
                if let Some(r) = big
                    .then(|| {
                        tracehunt_readers::plan_json_lines(p, range_bytes)
                            .ok()
                            .flatten()
                    })
                    .flatten()
                    .filter(|r| r.len() > 1)
                {
                    let n = r.len();
                    units.push(Unit::Lines(i, Arc::new(r), n));
                    continue;
                }
            }
        }
        units.push(Unit::Stream(i));
    }
    units
}
