//! Detection per worker thread: one `Scanner` and one accumulator per
//! thread; per unit, events → rule hits and IOC hits → index entries and
//! rendered bytes in the spill.

use crate::context::{Contexts, NO_CONTEXT};
use crate::entry::{Entry, Loc, PIECE};
use crate::render::{render, Render};
use crate::source::{Source, WorkUnit};
use crate::spill::Spill;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracehunt_engine::Scanner;
use tracehunt_report::Detection;

/// What one worker thread produced over the units it scanned (one per
/// thread, whatever the number of units: nothing is kept per unit or per
/// file but rare error notes, so memory does not grow with file count).
pub(crate) struct Acc<'s> {
    pub(crate) events: u64,
    pub(crate) scanned: u64,
    /// Index entries of spilled detections not yet in a sorted run (at
    /// most `run_cap`), in scan order.
    pub(crate) entries: Vec<Entry>,
    pub(crate) run_cap: usize,
    /// The sorted runs written so far ([`crate::index`]) and where.
    pub(crate) runs: Vec<crate::index::Run>,
    pub(crate) run_store: &'s Spill,
    pub(crate) run_bytes: Vec<u8>,
    /// Detections kept whole (rules feeding a correlation) and their
    /// entries, whose `Loc::Mem` indices are local to this worker until
    /// [`Acc::globalize`].
    pub(crate) mem: Vec<Detection>,
    pub(crate) mem_entries: Vec<Entry>,
    /// The shared context table and this worker's cache of it (by key text).
    pub(crate) hosts: &'s std::sync::Mutex<Contexts>,
    /// Scratch for [`Acc::context_id`].
    pub(crate) entity_buf: Vec<(tracehunt_incidents::EntityKind, String)>,
    pub(crate) key_buf: String,
    /// The shared context table is full ([`crate::context::CONTEXT_CAP`]).
    pub(crate) contexts_full: bool,
    /// Detection events given their host's context without entities.
    pub(crate) without_entities: u64,
    pub(crate) host_ids: foldhash::HashMap<String, u32>,
    /// Rendered bytes not yet appended to the spill, and the first entry
    /// whose offset is relative to them.
    pub(crate) piece: Vec<u8>,
    pub(crate) piece_from: usize,
    pub(crate) spill_error: Option<String>,
    /// Files not read at all: (file index, reason).
    pub(crate) skipped: Vec<(usize, String)>,
    pub(crate) record_errors: u64,
    pub(crate) record_reasons: BTreeMap<String, u64>,
    /// EVTX chunks skipped as exact copies of an earlier chunk (no record lost).
    pub(crate) duplicate_chunks: u64,
    /// Damaged unused EVTX chunk slots skipped (no record lost).
    pub(crate) damaged_unused_chunks: u64,
    /// Units with lost records: (unit, file, records lost, first reason).
    pub(crate) lost: Vec<(u32, usize, u64, String)>,
    /// With [`ScanCfg::list_losses`]: every error that lost records, as
    /// ((unit, error number in unit), file, where and why, records), at
    /// most the first [`crate::hunt::LOSS_LIST_CAP`] in input order (kept
    /// below twice that, cut back when reached), and how many there were.
    pub(crate) losses: Vec<((u32, u32), usize, String, u64)>,
    pub(crate) losses_seen: u64,
    /// Units with damaged unused EVTX chunk slots: (unit, file, slots).
    pub(crate) unused: Vec<(u32, usize, u64)>,
    /// Events read without a numeric EventID or a time ([`missing_header`]).
    pub(crate) incomplete_events: u64,
    /// Units with such events: (unit, file, events, the first one).
    pub(crate) incomplete: Vec<(u32, usize, u64, String)>,
    /// Events scanned per lower-case channel that no active rule reads
    /// ([`tracehunt_engine::Ruleset::reads_channel`]); empty without rules.
    pub(crate) unread_channels: Vec<(String, u64)>,
    /// Damaged EVTX signatures read past (nothing lost by that).
    pub(crate) signatures_repaired: u64,
    /// Units with such signatures: (unit, file, signatures, first one).
    pub(crate) repaired: Vec<(u32, usize, u64, String)>,
    pub(crate) first: Option<DateTime<Utc>>,
    pub(crate) last: Option<DateTime<Utc>>,
    /// Time range of the events in the `--from`/`--to` window.
    pub(crate) win_first: Option<DateTime<Utc>>,
    pub(crate) win_last: Option<DateTime<Utc>>,
    /// Events without a time, left out because `--from`/`--to` was given.
    pub(crate) untimed_out: u64,
    /// IOC hits and the unit of each.
    pub(crate) ioc_hits: Vec<crate::ioc::IocDetection>,
    pub(crate) ioc_units: Vec<u32>,
    /// Store records not yet appended to the key spill.
    pub(crate) key_piece: Vec<u8>,
    pub(crate) key_spill: &'s Spill,
    /// Per-unit coverage (only when a store is a sink).
    pub(crate) unit_stats: Vec<UnitStat>,
}

pub(crate) struct ScanCfg {
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
    pub(crate) min_rank: u8,
    pub(crate) iocs: Option<Arc<tracehunt_ioc::IocSet>>,
    /// Rules whose hits feed a correlation: kept whatever their level
    /// (`--min-level` applies after correlation), as full detections.
    pub(crate) correlated: Vec<bool>,
    /// What workers render per detection.
    pub(crate) render: Render,
    /// Record each reported detection's [`crate::keys::StoreRec`] and each
    /// unit's [`UnitStat`] (a store is a sink).
    pub(crate) keys: bool,
    /// Rules whose detections are not reported (correlation `generate: false`).
    pub(crate) suppressed: Vec<bool>,
    /// Keep every loss ([`crate::HuntConfig::list_losses`]).
    pub(crate) list_losses: bool,
    /// Write each spilled detection's [`crate::entry::dup_key`] before its
    /// bytes ([`crate::HuntConfig::remove_duplicates`]).
    pub(crate) dup_keys: bool,
}

/// Per unit, when a store is a sink: what the store's coverage needs.
#[derive(Debug, Clone)]
pub(crate) struct UnitStat {
    pub(crate) unit: u32,
    pub(crate) stream: usize,
    pub(crate) events: u64,
    pub(crate) first: Option<DateTime<Utc>>,
    pub(crate) last: Option<DateTime<Utc>>,
    pub(crate) lost: u64,
}

impl<'s> Acc<'s> {
    pub(crate) fn new(
        (run_store, key_spill): (&'s Spill, &'s Spill),
        run_cap: usize,
        hosts: &'s std::sync::Mutex<Contexts>,
    ) -> Self {
        Acc {
            events: 0,
            scanned: 0,
            entries: Vec::new(),
            run_cap,
            runs: Vec::new(),
            run_store,
            run_bytes: Vec::new(),
            mem: Vec::new(),
            mem_entries: Vec::new(),
            hosts,
            entity_buf: Vec::new(),
            key_buf: String::new(),
            contexts_full: false,
            without_entities: 0,
            host_ids: foldhash::HashMap::default(),
            piece: Vec::new(),
            piece_from: 0,
            spill_error: None,
            skipped: Vec::new(),
            record_errors: 0,
            record_reasons: BTreeMap::new(),
            duplicate_chunks: 0,
            damaged_unused_chunks: 0,
            lost: Vec::new(),
            losses: Vec::new(),
            losses_seen: 0,
            unused: Vec::new(),
            incomplete_events: 0,
            incomplete: Vec::new(),
            unread_channels: Vec::new(),
            signatures_repaired: 0,
            repaired: Vec::new(),
            first: None,
            last: None,
            win_first: None,
            win_last: None,
            untimed_out: 0,
            ioc_hits: Vec::new(),
            ioc_units: Vec::new(),
            key_piece: Vec::new(),
            key_spill,
            unit_stats: Vec::new(),
        }
    }

    /// The run-wide context id of an event: its host and rare entities
    /// ([`crate::context`]). The shared table is asked only for contexts
    /// this worker has not seen yet.
    fn context_id(&mut self, ev: &tracehunt_event::Event) -> u32 {
        self.entity_buf.clear();
        if self.contexts_full {
            // The table is full: the host's context, without entities.
            self.without_entities += 1;
        } else {
            tracehunt_incidents::extract(ev, &mut self.entity_buf);
        }
        // Logon ids and process GUIDs are local to one machine: equal values
        // on two hosts are a coincidence, never a link, and same-host groups
        // never merge directly; they would only grow the table.
        self.entity_buf.retain(|(k, _)| {
            !matches!(
                k,
                tracehunt_incidents::EntityKind::LogonId
                    | tracehunt_incidents::EntityKind::ProcessGuid
            )
        });
        let host = ev.meta.computer.as_deref();
        if host.is_none() && self.entity_buf.is_empty() {
            return NO_CONTEXT;
        }
        // The cache key: host, then each entity, NUL-separated (NUL occurs
        // in neither: hosts and entity values are normalised text).
        self.key_buf.clear();
        self.key_buf.push_str(host.unwrap_or("\u{1}"));
        for (k, v) in &self.entity_buf {
            self.key_buf.push('\0');
            self.key_buf.push_str(k.as_str());
            self.key_buf.push('\0');
            self.key_buf.push_str(v);
        }
        if let Some(&i) = self.host_ids.get(self.key_buf.as_str()) {
            return i;
        }
        // A poisoned lock only means another worker panicked; the table
        // itself is consistent (interning pushes then inserts).
        let mut table = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let i = table.id(host, &self.entity_buf);
        if table.is_full() && !self.contexts_full {
            // From now on: host contexts only, and a cache that stops growing.
            self.contexts_full = true;
            self.host_ids.clear();
            return i;
        }
        drop(table);
        self.host_ids.insert(self.key_buf.clone(), i);
        i
    }

    /// Counts a record error of a unit: a duplicate or damaged unused EVTX
    /// chunk and a repaired EVTX signature (the unit's count and first one
    /// kept in `repaired`) lose nothing; any other error stands for `e.records` lost
    /// records (an EVTX chunk note with the count its header declares, or
    /// none), counted by reason, the unit's first such error kept. Returns
    /// the records this error lost.
    fn record_error(
        &mut self,
        e: &tracehunt_readers::RecordError,
        (lost, first_lost, unused, repaired): (
            &mut u64,
            &mut Option<String>,
            &mut u64,
            &mut (u64, Option<String>),
        ),
    ) -> u64 {
        match e.kind {
            // Its records were read from the first copy: nothing lost.
            tracehunt_readers::RecordErrorKind::DuplicateChunk => self.duplicate_chunks += 1,
            // Damaged bytes where no record was: nothing lost.
            tracehunt_readers::RecordErrorKind::DamagedUnusedChunk => {
                self.damaged_unused_chunks += 1;
                *unused += 1;
            }
            // Read past a damaged signature: nothing lost by that.
            tracehunt_readers::RecordErrorKind::RepairedSignature => {
                self.signatures_repaired += 1;
                repaired.0 += 1;
                repaired
                    .1
                    .get_or_insert_with(|| format!("{}: {}", e.at, e.reason));
            }
            _ => {
                self.record_errors += e.records;
                *lost += e.records;
                if e.records > 0 {
                    *self
                        .record_reasons
                        .entry(format!("{:?}", e.kind))
                        .or_default() += e.records;
                    first_lost.get_or_insert_with(|| format!("{}: {}", e.at, e.reason));
                }
                return e.records;
            }
        }
        0
    }

    /// Keeps one loss for [`crate::Scanned::losses`] (see [`Acc::losses`]).
    fn keep_loss(&mut self, at: (u32, u32), file: usize, what: String, records: u64) {
        let cap = crate::hunt::LOSS_LIST_CAP;
        self.losses_seen += 1;
        self.losses.push((at, file, what, records));
        if self.losses.len() >= 2 * cap {
            self.losses.sort_unstable_by_key(|l| l.0);
            self.losses.truncate(cap);
        }
    }

    /// Records a detection's index entry.
    fn push(&mut self, e: Entry) {
        match e.loc() {
            Loc::Mem(_) => self.mem_entries.push(e),
            Loc::Spill { .. } => self.entries.push(e),
        }
    }

    /// After each event: appends the pending rendered bytes to the spill
    /// once they are a piece, and the index entries to the run store once
    /// they are a run.
    fn after_event(&mut self, spill: &Spill) {
        if self.entries.len() >= self.run_cap {
            self.flush_piece(spill);
            self.write_run();
        } else if self.piece.len() >= PIECE || self.key_piece.len() >= PIECE {
            self.flush_piece(spill);
        }
    }

    /// Sorts the pending entries (every offset absolute: the piece was just
    /// flushed) into a run in the run store.
    fn write_run(&mut self) {
        if !self.entries.is_empty() && self.spill_error.is_none() {
            match crate::index::write_run(&mut self.entries, self.run_store, &mut self.run_bytes) {
                Ok(run) => self.runs.push(run),
                Err(e) => self.spill_error = Some(e.to_string()),
            }
        }
        // After an error the hunt fails at the end; the entries are dropped
        // meanwhile so memory stays bounded.
        self.entries.clear();
        self.piece_from = 0;
    }

    /// Appends the pending rendered bytes to the spill and makes the
    /// offsets of their entries absolute.
    fn flush_piece(&mut self, spill: &Spill) {
        if !self.piece.is_empty() && self.spill_error.is_none() {
            match spill.append(&self.piece) {
                Ok(base) => {
                    for e in &mut self.entries[self.piece_from..] {
                        e.off += base;
                    }
                }
                Err(e) => self.spill_error = Some(e.to_string()),
            }
        }
        self.piece.clear();
        self.piece_from = self.entries.len();
        if !self.key_piece.is_empty() && self.spill_error.is_none() {
            if let Err(e) = self.key_spill.append(&self.key_piece) {
                self.spill_error = Some(e.to_string());
            }
        }
        self.key_piece.clear();
    }

    /// Ends the worker's index: its runs, the last one (sorted, in memory)
    /// included; the entries of detections kept whole are rewritten to
    /// index the run's table `mem` and returned apart (`mem_entries`).
    pub(crate) fn globalize(
        &mut self,
        mem: &mut Vec<Detection>,
        mem_entries: &mut Vec<Entry>,
    ) -> Result<Vec<crate::index::Run>, crate::PipelineError> {
        if let Some(e) = self.spill_error.take() {
            return Err(crate::PipelineError::Spill(e));
        }
        let base = mem.len() as u32;
        for mut e in self.mem_entries.drain(..) {
            if let Loc::Mem(i) = e.loc() {
                e.set_loc(Loc::Mem(i + base));
            }
            mem_entries.push(e);
        }
        mem.append(&mut self.mem);
        let mut last = std::mem::take(&mut self.entries);
        last.sort_unstable_by_key(Entry::order);
        let mut runs = std::mem::take(&mut self.runs);
        runs.push(crate::index::Run::Mem(last));
        Ok(runs)
    }
}

fn scan_unit(
    sc: &mut Scanner<'_>,
    unit: WorkUnit,
    name: &Arc<str>,
    cfg: &ScanCfg,
    spill: &Spill,
    r: &mut Acc,
) {
    match unit.records {
        Ok(records) => scan_records(sc, records, (unit.index, unit.stream), name, cfg, spill, r),
        Err(reason) => r.skipped.push((unit.stream, reason)),
    }
    r.flush_piece(spill);
}

fn scan_records(
    sc: &mut Scanner<'_>,
    records: impl IntoIterator<Item = Result<tracehunt_event::Event, tracehunt_readers::RecordError>>,
    (ui, file): (u32, usize),
    source: &Arc<str>,
    cfg: &ScanCfg,
    spill: &Spill,
    r: &mut Acc,
) {
    let rs = sc.ruleset();
    let mut hits = Vec::new();
    let mut lost = 0u64;
    let mut first_lost = None;
    let mut unused = 0u64;
    let mut incomplete = 0u64;
    let mut first_incomplete = None;
    let mut repaired = (0u64, None);
    let mut seq = 0u32;
    let mut error_seq = 0u32;
    let mut stat = UnitStat {
        unit: ui,
        stream: file,
        events: 0,
        first: None,
        last: None,
        lost: 0,
    };
    for rec in records {
        let ev = match rec {
            Ok(ev) => ev,
            Err(e) => {
                let n =
                    r.record_error(&e, (&mut lost, &mut first_lost, &mut unused, &mut repaired));
                if n > 0 && cfg.list_losses {
                    r.keep_loss((ui, error_seq), file, format!("{}: {}", e.at, e.reason), n);
                    error_seq += 1;
                }
                continue;
            }
        };
        r.events += 1;
        stat.events += 1;
        if let Some(what) = missing_header(&ev, rs) {
            incomplete += 1;
            first_incomplete.get_or_insert_with(|| match ev.meta.record_id {
                Some(id) => format!("record {id}: {what}"),
                None => what.to_owned(),
            });
        }
        let ts = ev.meta.timestamp;
        if let Some(t) = ts {
            r.first = Some(r.first.map_or(t, |f| f.min(t)));
            r.last = Some(r.last.map_or(t, |l| l.max(t)));
            stat.first = Some(stat.first.map_or(t, |f| f.min(t)));
            stat.last = Some(stat.last.map_or(t, |l| l.max(t)));
        }
        let in_window = match ts {
            Some(t) => cfg.from.is_none_or(|f| t >= f) && cfg.to.is_none_or(|to| t <= to),
            None => cfg.from.is_none() && cfg.to.is_none(),
        };
        if !in_window {
            // Counted: a window cannot place an event without a time (issue
            // #20: they dropped out silently).
            r.untimed_out += u64::from(ts.is_none());
            continue;
        }
        r.scanned += 1;
        if let Some(t) = ts {
            r.win_first = Some(r.win_first.map_or(t, |f| f.min(t)));
            r.win_last = Some(r.win_last.map_or(t, |l| l.max(t)));
        }
        hits.clear();
        sc.scan(&ev, &mut hits);
        if let Some(set) = &cfg.iocs {
            crate::ioc::scan_event(set, &ev, source, &mut r.ioc_hits);
            r.ioc_units.resize(r.ioc_hits.len(), ui);
        }
        let mut fields: Option<Arc<Vec<(String, serde_json::Value)>>> = None;
        let mut host = None;
        let mut key = None;
        for &rule in &hits {
            let correlated = cfg.correlated[rule];
            if rs.rule(rule).level_rank < cfg.min_rank && !correlated {
                continue;
            }
            let host = *host.get_or_insert_with(|| r.context_id(&ev));
            if cfg.keys && rs.rule(rule).level_rank >= cfg.min_rank && !cfg.suppressed[rule] {
                crate::keys::StoreRec {
                    time: ts.map(|t| (t.timestamp(), t.timestamp_subsec_nanos())),
                    rule: rule as u32,
                    ctx: host,
                    stream: file as u32,
                    key: *key.get_or_insert_with(|| crate::keys::event_key(&ev)),
                }
                .encode(&mut r.key_piece);
            }
            let mut entry = Entry::new(ts, rule, host, (ui, seq), Loc::Mem(r.mem.len() as u32));
            seq += 1;
            if !correlated && cfg.dup_keys {
                let m = &ev.meta;
                let k = crate::entry::dup_key(
                    m.computer.as_deref(),
                    m.channel.as_deref(),
                    m.event_id,
                    m.record_id,
                    crate::entry::event_fields_hash(&ev),
                );
                r.piece.extend_from_slice(&k.to_le_bytes());
            }
            if !correlated && cfg.render == Render::Nothing {
                // With duplicate keys, the offset is just past this one's key.
                let off = if cfg.dup_keys {
                    r.piece.len() as u64
                } else {
                    0
                };
                entry.set_loc(Loc::Spill { off, len: 0 });
                r.push(entry);
                continue;
            }
            // One copy of the event's fields, shared by all its detections.
            let d = crate::detection_of(&ev, rule, source, &mut fields);
            if correlated {
                r.mem.push(d);
            } else {
                // Rendered here, in parallel; only the index entry stays.
                let start = r.piece.len();
                if let Err(e) = render(cfg.render, rs, &d, &mut r.piece) {
                    r.piece.truncate(start);
                    r.spill_error.get_or_insert_with(|| e.to_string());
                }
                entry.set_loc(Loc::Spill {
                    off: start as u64,
                    len: (r.piece.len() - start) as u32,
                });
            }
            r.push(entry);
        }
        r.after_event(spill);
    }
    if cfg.keys {
        stat.lost = lost;
        r.unit_stats.push(stat);
    }
    if lost > 0 {
        r.lost
            .push((ui, file, lost, first_lost.unwrap_or_default()));
    }
    if unused > 0 {
        r.unused.push((ui, file, unused));
    }
    if let (n @ 1.., Some(first)) = repaired {
        r.repaired.push((ui, file, n, first));
    }
    if incomplete > 0 {
        r.incomplete_events += incomplete;
        r.incomplete
            .push((ui, file, incomplete, first_incomplete.unwrap_or_default()));
    }
}

/// What an event lacks of the header every Windows event has: a numeric
/// EventID and a time. Such an event is scanned, but rules whose logsource
/// names EventIDs never meet it, and without a time it sorts last and is
/// outside every `--from`/`--to` window; the summary counts it so it is not
/// passed silently (issue #20: Velociraptor's rows were read with neither,
/// 0 detections and no warning). An event of a non-Windows channel (issue
/// #21: auditd, CloudTrail, Zeek…) has no EventID by design; only its time
/// is asked for.
fn missing_header(
    ev: &tracehunt_event::Event,
    rs: &tracehunt_engine::Ruleset,
) -> Option<&'static str> {
    let no_id = ev.meta.event_id.is_none()
        && !ev
            .meta
            .channel
            .as_deref()
            .is_some_and(|c| rs.is_foreign_channel(c));
    match (no_id, ev.meta.timestamp.is_none()) {
        (false, false) => None,
        (true, false) => Some("no EventID"),
        (false, true) => Some("no time"),
        (true, true) => Some("no EventID and no time"),
    }
}

/// Runs one worker per thread of `pool`, each with one [`Scanner`] and one
/// accumulator, taking units from `source` until it is exhausted; returns
/// the accumulators (one per thread).
pub(crate) fn run_workers<'s>(
    pool: &rayon::ThreadPool,
    rs: &tracehunt_engine::Ruleset,
    source: &dyn Source,
    cfg: &ScanCfg,
    (spill, run_store, key_spill, run_cap): (&'s Spill, &'s Spill, &'s Spill, usize),
    hosts: &'s std::sync::Mutex<Contexts>,
    progress: &dyn crate::Progress,
) -> Vec<Acc<'s>> {
    pool.broadcast(|_| {
        let mut sc = Scanner::new(rs);
        let mut acc = Acc::new((run_store, key_spill), run_cap, hosts);
        while let Some(unit) = source.next_unit() {
            let i = unit.index as usize;
            let name: Arc<str> = Arc::from(source.stream_name(unit.stream));
            scan_unit(&mut sc, unit, &name, cfg, spill, &mut acc);
            if i % 4096 == 4095 {
                progress.stage(&format!("{} units scanned", i + 1), "");
            }
            progress.unit_done();
        }
        if !rs.is_empty() {
            acc.unread_channels = sc
                .channel_events()
                .filter(|(c, _)| !rs.reads_channel(c))
                .map(|(c, n)| (c.to_owned(), n))
                .collect();
        }
        acc.piece = Vec::new();
        acc.run_bytes = Vec::new();
        acc.key_piece = Vec::new();
        acc.host_ids = foldhash::HashMap::default();
        acc
    })
}
