//! The batch hunt's middle stages: detection on the worker threads, the
//! merge of what they found, correlation and `min_rank`; then attribution.

use crate::context::Contexts;
use crate::detect::{run_workers, ScanCfg, UnitStat};
use crate::entry::{Entry, Loc};
use crate::index::{Merge, Run};
use crate::ioc::IocDetection;
use crate::render::{render, OutputFormat, Render};
use crate::source::Source;
use crate::spill::{Spill, SpillReader};
use crate::{Loaded, PipelineError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracehunt_attack::ActorKb;
use tracehunt_attribution::{Attribution, Attributor, EvidenceSet, Window};
use tracehunt_engine::Ruleset;
use tracehunt_report::{ChannelEvents, Detection, Skipped, Summary};

/// What the detection stage needs besides the rules and the source.
#[derive(Clone)]
pub struct HuntConfig {
    /// Only scan events at or after this time (events without a time are
    /// scanned only when neither bound is set; otherwise they are counted in
    /// [`TimeWindow::events_without_time`](tracehunt_report::TimeWindow::events_without_time)).
    pub from: Option<DateTime<Utc>>,
    /// Only scan events at or before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only report detections of rules at or above this level rank
    /// (0 informational … 4 critical); applied after correlation.
    pub min_rank: u8,
    /// IOC feeds matched against every scanned event.
    pub iocs: Option<Arc<tracehunt_ioc::IocSet>>,
    /// What workers render per detection (from the output format).
    pub render: Render,
    /// Also record what a store needs: each reported detection's event
    /// identity ([`crate::keys`]) and each stream's coverage
    /// ([`Scanned::streams`]).
    pub store_records: bool,
    /// Name every record loss, not only the first of each file
    /// ([`Scanned::losses`], `hunt -v`).
    pub list_losses: bool,
    /// `hunt -X` (Hayabusa's `--remove-duplicate-detections`): report a
    /// detection of one rule on one event once when the event is in
    /// several files (VSS copies, a log exported twice): same rule, time,
    /// computer, channel, event id and record id ([`crate::index::Merge::with_dedupe`];
    /// events without a record id are never merged). Counted in
    /// [`Summary::duplicate_detections_removed`].
    pub remove_duplicates: bool,
}

/// Most losses [`Scanned::losses`] names (the first in input order); the
/// others are counted in [`Scanned::losses_not_listed`].
pub const LOSS_LIST_CAP: usize = 10_000;

/// One error that lost records ([`Scanned::losses`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// The stream (file) it is in.
    pub path: String,
    /// Where in it (record, line, chunk…) and why.
    pub reason: String,
    /// Records it lost.
    pub records: u64,
}

impl HuntConfig {
    /// Every event, every level, no IOC feed; rendered for `format`.
    pub fn new(format: OutputFormat) -> Self {
        HuntConfig {
            from: None,
            to: None,
            min_rank: 0,
            iocs: None,
            render: Render::of(format),
            store_records: false,
            list_losses: false,
            remove_duplicates: false,
        }
    }
}

/// Where the pipeline reports progress (the CLI draws a progress bar and
/// prints memory notes; a library caller may ignore both).
pub trait Progress: Sync {
    /// One work unit was scanned (called on the worker threads).
    fn unit_done(&self) {}
    /// A stage ended: `stage` names it, `what` counts what may grow.
    fn stage(&self, _stage: &str, _what: &str) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {}

/// The detections of a hunt after correlation and `min_rank`: sorted
/// index runs over the spilled output bytes, plus the detections kept
/// whole, the context table (hosts, entities) and the IOC hits. Stream the entries in output
/// order with [`Scanned::entries`] (one k-way merge per call).
pub struct Scanned {
    runs: Vec<Run>,
    run_store: SpillReader,
    spill: SpillReader,
    mem: Vec<Detection>,
    contexts: Contexts,
    render: Render,
    /// IOC hits in time order (events without a time last).
    pub ioc_hits: Vec<IocDetection>,
    /// What the correlation post-pass did (hits, what its memory bounds dropped).
    pub correlation: crate::correlation::Outcome,
    /// Why the detections stayed in memory (no temporary file could be created).
    pub temp_file_error: Option<String>,
    /// Per stream (file) read, in stream order, when
    /// [`HuntConfig::store_records`] was set: events, time range, records lost.
    pub streams: Vec<StreamStat>,
    /// With [`HuntConfig::list_losses`]: every error that lost records, in
    /// input order (file, then place in it), at most [`LOSS_LIST_CAP`].
    /// Empty otherwise (the summary names each file's first loss).
    pub losses: Vec<Loss>,
    /// Losses past [`LOSS_LIST_CAP`], not in [`Scanned::losses`].
    pub losses_not_listed: u64,
    keys: SpillReader,
    key_bytes: u64,
    /// Indexes into `mem` of the correlation hits reported.
    corr_hits: Vec<usize>,
    /// With [`HuntConfig::remove_duplicates`]: the duplicate key of each
    /// detection in `mem` (else empty).
    dup_keys: Option<Vec<u64>>,
}

/// Coverage of one stream (file) of the source: what a store records so
/// that activity over time can be divided by what was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStat {
    /// Stream index ([`Source::stream_name`]).
    pub stream: usize,
    /// Display name (path).
    pub name: String,
    /// Events read.
    pub events: u64,
    /// Earliest event time.
    pub first: Option<DateTime<Utc>>,
    /// Latest event time.
    pub last: Option<DateTime<Utc>>,
    /// Records lost (damaged, cut short).
    pub lost: u64,
}

impl Scanned {
    /// One pass over the detections in output order: time (none last),
    /// then input order. Check [`Merge::finish`] after the pass.
    pub fn entries(&self) -> Merge<'_> {
        let m = Merge::new(&self.runs, &self.run_store);
        match &self.dup_keys {
            Some(keys) => m.with_dedupe(&self.spill, keys),
            None => m,
        }
    }

    /// The context table: host and entities of each detection ([`Entry::view`]).
    pub fn contexts(&self) -> &Contexts {
        &self.contexts
    }

    /// Appends the output bytes of `e` (rendered by the workers for the
    /// configured format, or now for detections kept whole) to `out`.
    ///
    /// # Errors
    /// Reading the spill's temporary file back failed.
    pub fn output_bytes(
        &self,
        rs: &Ruleset,
        e: &Entry,
        out: &mut Vec<u8>,
    ) -> Result<(), PipelineError> {
        match e.loc() {
            Loc::Spill { off, len } => self
                .spill
                .read(off, len as usize, out)
                .map_err(PipelineError::SpillRead)?,
            Loc::Mem(i) => render(self.render, rs, &self.mem[i as usize], out)?,
        }
        Ok(())
    }

    /// Calls `f` with every reported detection's store record (workers'
    /// order, not output order), then with every correlation hit's
    /// detection.
    ///
    /// # Errors
    /// Reading the key spill back failed, or `f` failed.
    pub fn for_each_store_record<E: From<PipelineError>>(
        &self,
        mut f: impl FnMut(StoreItem<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        const BATCH: usize = 4096 * crate::keys::REC_BYTES;
        let mut buf = Vec::new();
        let mut off = 0u64;
        while off < self.key_bytes {
            let len = (self.key_bytes - off).min(BATCH as u64) as usize;
            buf.clear();
            self.keys
                .read(off, len, &mut buf)
                .map_err(PipelineError::SpillRead)?;
            for rec in buf.chunks_exact(crate::keys::REC_BYTES) {
                f(StoreItem::Event(crate::keys::StoreRec::decode(rec)))?;
            }
            off += len as u64;
        }
        for &i in &self.corr_hits {
            f(StoreItem::Correlation(&self.mem[i]))?;
        }
        Ok(())
    }

    /// The attribution evidence of every detection ([`crate::evidence`]),
    /// with the IOC hits' actors.
    ///
    /// # Errors
    /// Reading the index back failed.
    pub fn evidence(&self, rs: &Ruleset) -> Result<EvidenceSet, PipelineError> {
        let mut pass = self.entries();
        let mut observed = crate::evidence(rs, pass.by_ref().map(|e| e.rule()));
        pass.finish().map_err(PipelineError::Index)?;
        observed.iocs = crate::ioc::observations(&self.ioc_hits);
        Ok(observed)
    }
}

/// Runs detection over `source` on `pool` (one worker per thread) with the
/// rules of `loaded`, then correlation and `cfg.min_rank`, and counts
/// everything in `summary` (events, records lost by reason, files skipped,
/// time ranges, detections by level and rule). Output is the same for any
/// thread count and however the source cut its streams into units.
///
/// # Errors
/// Writing to or reading from the temporary files failed.
pub fn scan(
    pool: &rayon::ThreadPool,
    loaded: &Loaded,
    source: &dyn Source,
    cfg: &HuntConfig,
    summary: &mut Summary,
    progress: &dyn Progress,
) -> Result<Scanned, PipelineError> {
    let rs = &loaded.ruleset;
    let scfg = ScanCfg {
        from: cfg.from,
        to: cfg.to,
        min_rank: cfg.min_rank,
        iocs: cfg.iocs.clone(),
        correlated: (0..rs.len())
            .map(|r| loaded.correlations.is_referenced(r))
            .collect(),
        render: cfg.render,
        keys: cfg.store_records,
        suppressed: (0..rs.len())
            .map(|r| loaded.correlations.is_suppressed(r))
            .collect(),
        list_losses: cfg.list_losses,
        dup_keys: cfg.remove_duplicates,
    };
    let spill = Spill::new(crate::spill::mem_limit());
    // The index entries' sorted runs ([`crate::index`]).
    let run_store = Spill::new(crate::spill::mem_limit());
    // What a store needs of each detection ([`crate::keys`]).
    let key_spill = Spill::new(crate::spill::mem_limit());
    let hosts = std::sync::Mutex::new(Contexts::default());
    let run_cap = crate::index::run_budget(pool.current_num_threads());
    let accs = run_workers(
        pool,
        rs,
        source,
        &scfg,
        (&spill, &run_store, &key_spill, run_cap),
        &hosts,
        progress,
    );
    progress.stage(
        "scanned",
        &format!(
            "index runs {}, run store {} B",
            accs.iter().map(|a| a.runs.len() + 1).sum::<usize>(),
            run_store.len(),
        ),
    );
    let mut contexts = std::mem::take(&mut *hosts.lock().unwrap_or_else(|e| e.into_inner()));
    contexts.capped += accs.iter().map(|a| a.without_entities).sum::<u64>();
    let mut mem: Vec<Detection> = Vec::new();
    let mut mem_entries: Vec<Entry> = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    let mut stats = Vec::new();
    let mut losses = (Vec::new(), 0);
    let mut ioc_hits = collect(
        source,
        accs,
        summary,
        (&mut runs, &mut stats, &mut losses),
        &mut mem,
        &mut mem_entries,
    )?;
    // Equal times keep file, chunk and record order (`Entry::order`).
    mem_entries.sort_unstable_by_key(Entry::order);
    // Sigma correlations over the time-sorted hits of the rules they
    // reference (kept whole in `mem`); then `min_rank`.
    let base: Vec<&Detection> = mem_entries
        .iter()
        .filter_map(|e| match e.loc() {
            Loc::Mem(i) => Some(&mem[i as usize]),
            Loc::Spill { .. } => None,
        })
        .collect();
    let (added, correlation) = crate::correlation::apply(loaded, &base);
    drop(base);
    let cs = &loaded.correlations;
    // Only rules a correlation references can be suppressed or below
    // `min_rank` here: workers dropped the other low-level hits.
    mem_entries.retain(|e| {
        let r = e.rule();
        !cs.is_suppressed(r) && rs.rule(r).level_rank >= cfg.min_rank
    });
    runs.push(Run::Mem(mem_entries));
    let mut hits: Vec<Entry> = Vec::new();
    let mut corr_hits = Vec::new();
    for (k, d) in added.into_iter().enumerate() {
        if rs.rule(d.rule).level_rank < cfg.min_rank {
            continue;
        }
        let host = contexts.id(d.computer.as_deref(), &[]);
        // Unit past every input unit: after the detections of the same
        // time, in the order the correlator produced them.
        hits.push(Entry::new(
            d.timestamp,
            d.rule,
            host,
            (u32::MAX, k as u32),
            Loc::Mem(mem.len() as u32),
        ));
        corr_hits.push(mem.len());
        mem.push(d);
    }
    hits.sort_unstable_by_key(Entry::order);
    runs.push(Run::Mem(hits));
    let temp_file_error = spill
        .disk_error()
        .or_else(|| run_store.disk_error())
        .or_else(|| key_spill.disk_error());
    let key_bytes = key_spill.len();
    let dup_keys = cfg.remove_duplicates.then(|| {
        mem.iter()
            .map(|d| {
                crate::entry::dup_key(
                    d.computer.as_deref(),
                    d.channel.as_deref(),
                    d.event_id,
                    d.record_id,
                    crate::entry::detection_fields_hash(&d.fields),
                )
            })
            .collect()
    });
    let scanned = Scanned {
        runs,
        run_store: run_store.into_reader(),
        spill: spill.into_reader(),
        mem,
        contexts,
        render: cfg.render,
        ioc_hits: Vec::new(),
        correlation,
        temp_file_error,
        streams: stream_stats(source, stats),
        losses: losses.0,
        losses_not_listed: losses.1,
        keys: key_spill.into_reader(),
        key_bytes,
        corr_hits,
        dup_keys,
    };
    let mut pass = scanned.entries();
    summary.count(rs, pass.by_ref().map(|e| e.view(&scanned.contexts)));
    summary.duplicate_detections_removed = pass.duplicates_removed();
    pass.finish().map_err(PipelineError::Index)?;
    crate::ioc::sort_by_time(&mut ioc_hits);
    Ok(Scanned {
        ioc_hits,
        ..scanned
    })
}

/// Merges the workers' accumulators: counts are sums; what is listed per
/// file goes in file order; host ids and in-memory detections into the
/// run's tables. Returns the IOC hits in unit order.
fn collect(
    source: &dyn Source,
    accs: Vec<crate::detect::Acc<'_>>,
    summary: &mut Summary,
    (runs, stats, losses): (&mut Vec<Run>, &mut Vec<UnitStat>, &mut (Vec<Loss>, u64)),
    mem: &mut Vec<Detection>,
    mem_entries: &mut Vec<Entry>,
) -> Result<Vec<IocDetection>, PipelineError> {
    let mut skipped: Vec<(usize, String)> = Vec::new();
    let mut lost: Vec<(u32, usize, u64, String)> = Vec::new();
    let mut unused: Vec<(u32, usize, u64)> = Vec::new();
    let mut incomplete: Vec<(u32, usize, u64, String)> = Vec::new();
    let mut repaired: Vec<(u32, usize, u64, String)> = Vec::new();
    let mut iocs: Vec<(u32, IocDetection)> = Vec::new();
    let mut all_losses = Vec::new();
    let mut losses_seen = 0u64;
    let mut unread: BTreeMap<String, u64> = BTreeMap::new();
    for mut r in accs {
        runs.extend(r.globalize(mem, mem_entries)?);
        summary.events += r.events;
        summary.events_scanned += r.scanned;
        summary.records_skipped += r.record_errors;
        summary.duplicate_chunks_skipped += r.duplicate_chunks;
        summary.damaged_unused_chunks_skipped += r.damaged_unused_chunks;
        summary.events_incomplete += r.incomplete_events;
        summary.evtx_signatures_repaired += r.signatures_repaired;
        for (k, n) in r.record_reasons {
            *summary.records_skipped_by_reason.entry(k).or_default() += n;
        }
        if let Some(f) = r.first {
            summary.first_event = Some(summary.first_event.map_or(f, |x| x.min(f)));
        }
        if let Some(l) = r.last {
            summary.last_event = Some(summary.last_event.map_or(l, |x| x.max(l)));
        }
        if let Some(tw) = &mut summary.time_window {
            if let Some(f) = r.win_first {
                tw.first_event = Some(tw.first_event.map_or(f, |x| x.min(f)));
            }
            if let Some(l) = r.win_last {
                tw.last_event = Some(tw.last_event.map_or(l, |x| x.max(l)));
            }
            tw.events_without_time += r.untimed_out;
        }
        for (c, n) in std::mem::take(&mut r.unread_channels) {
            *unread.entry(c).or_default() += n;
        }
        skipped.append(&mut r.skipped);
        lost.append(&mut r.lost);
        unused.append(&mut r.unused);
        incomplete.append(&mut r.incomplete);
        repaired.append(&mut r.repaired);
        all_losses.append(&mut r.losses);
        losses_seen += r.losses_seen;
        iocs.extend(r.ioc_units.into_iter().zip(r.ioc_hits));
        stats.append(&mut r.unit_stats);
    }
    let mut unread: Vec<ChannelEvents> = unread
        .into_iter()
        .map(|(channel, events)| ChannelEvents { channel, events })
        .collect();
    unread.sort_by(|a, b| b.events.cmp(&a.events).then(a.channel.cmp(&b.channel)));
    summary.channels_without_rules = unread;
    skipped.sort_by_key(|s| s.0);
    summary.files = (source.streams() - skipped.len()) as u64;
    for (f, reason) in skipped {
        summary.files_skipped.push(Skipped {
            path: source.stream_name(f),
            reason,
            records: 0,
        });
    }
    // Lost records per file: the units of a file are consecutive.
    lost.sort_by_key(|l| l.0);
    let mut last_file = None;
    for (_, f, n, reason) in lost {
        match summary.files_with_record_errors.last_mut() {
            Some(last) if last_file == Some(f) => last.records += n,
            _ => summary.files_with_record_errors.push(Skipped {
                path: source.stream_name(f),
                reason,
                records: n,
            }),
        }
        last_file = Some(f);
    }
    // Each worker kept its first losses in input order: the first
    // `LOSS_LIST_CAP` of all are among them.
    all_losses.sort_unstable_by_key(|l| l.0);
    all_losses.truncate(LOSS_LIST_CAP);
    losses.1 = losses_seen - all_losses.len() as u64;
    losses.0 = all_losses
        .into_iter()
        .map(|(_, f, reason, records)| Loss {
            path: source.stream_name(f),
            reason,
            records,
        })
        .collect();
    unused.sort_by_key(|u| u.0);
    let mut last_file = None;
    for (_, f, n) in unused {
        match summary.files_with_damaged_unused_chunks.last_mut() {
            Some(last) if last_file == Some(f) => last.chunks += n,
            _ => summary
                .files_with_damaged_unused_chunks
                .push(tracehunt_report::UnusedChunks {
                    path: source.stream_name(f),
                    chunks: n,
                }),
        }
        last_file = Some(f);
    }
    // Events without EventID or time per file, the first one of the file kept.
    incomplete.sort_by_key(|l| l.0);
    let mut last_file = None;
    for (_, f, n, first) in incomplete {
        match summary.files_with_incomplete_events.last_mut() {
            Some(last) if last_file == Some(f) => last.events += n,
            _ => summary
                .files_with_incomplete_events
                .push(tracehunt_report::IncompleteEvents {
                    path: source.stream_name(f),
                    events: n,
                    first,
                }),
        }
        last_file = Some(f);
    }
    repaired.sort_by_key(|u| u.0);
    let mut last_file = None;
    for (_, f, n, first) in repaired {
        match summary.files_with_repaired_signatures.last_mut() {
            Some(last) if last_file == Some(f) => last.signatures += n,
            _ => {
                summary
                    .files_with_repaired_signatures
                    .push(tracehunt_report::RepairedSignatures {
                        path: source.stream_name(f),
                        signatures: n,
                        first,
                    })
            }
        }
        last_file = Some(f);
    }
    iocs.sort_by_key(|h| h.0);
    Ok(iocs.into_iter().map(|(_, h)| h).collect())
}

/// Per-unit coverage merged per stream, in stream order.
fn stream_stats(source: &dyn Source, mut units: Vec<UnitStat>) -> Vec<StreamStat> {
    units.sort_by_key(|u| u.unit);
    let mut out: Vec<StreamStat> = Vec::new();
    for u in units {
        match out.last_mut() {
            Some(s) if s.stream == u.stream => {
                s.events += u.events;
                s.lost += u.lost;
                s.first = [s.first, u.first].into_iter().flatten().min();
                s.last = [s.last, u.last].into_iter().flatten().max();
            }
            _ => out.push(StreamStat {
                stream: u.stream,
                name: source.stream_name(u.stream),
                events: u.events,
                first: u.first,
                last: u.last,
                lost: u.lost,
            }),
        }
    }
    out
}

/// One detection for a store ([`Scanned::for_each_store_record`]).
pub enum StoreItem<'a> {
    /// A rule hit on an event.
    Event(crate::keys::StoreRec),
    /// A Sigma correlation hit (no single event: its own detection).
    Correlation(&'a Detection),
}

/// Attributes `observed` with `kb`, the observation window being the
/// hunt's event-time span (with a time window: the span of the events in
/// it), so groups whose dated ATT&CK reporting is far from it rank lower.
pub fn attribute(kb: &ActorKb, observed: &EvidenceSet, summary: &Summary) -> Attribution {
    attribute_with(&Attributor::new(kb), observed, summary)
}

/// [`attribute`] with an attributor built once for the hunt (building one
/// indexes every group of the knowledge base; `hunt` shares one between
/// this and [`crate::incident::group_with`]).
pub fn attribute_with(
    attributor: &Attributor<'_>,
    observed: &EvidenceSet,
    summary: &Summary,
) -> Attribution {
    let span = match &summary.time_window {
        Some(tw) => (tw.first_event, tw.last_event),
        None => (summary.first_event, summary.last_event),
    };
    let window = match span {
        (Some(f), Some(l)) => Window::from_dates(&f.to_rfc3339(), &l.to_rfc3339()),
        _ => None,
    };
    attributor.attribute_in(observed, window)
}
