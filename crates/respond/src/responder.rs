//! The [`Responder`]: evaluates a policy against triggers and takes, skips
//! or logs the actions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::action::{Action, BlocklistAction, CommandAction, CrowdsecAction, WebhookAction};
use crate::blocklist::{BlockFile, Entry};
use crate::policy::Policy;
use crate::record::{ActionRecord, Outcome, TriggerRef};
use crate::state::{Dedupe, FileState, StateFile, MAX_ENTRIES};
use crate::template::Values;
use crate::trigger::{Indicator, IndicatorKind, Trigger};
use crate::webhook::{Delivery, Done, Worker};

/// How long dropping a [`Responder`] waits for queued webhook deliveries.
pub const DROP_WAIT: Duration = Duration::from_secs(5);

/// A live-mode state write happens on every blocklist change and otherwise
/// at most this often (in the caller's `now`), and on [`Responder::flush`].
const STATE_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Why a [`Responder`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The policy's `state` file exists but cannot be read or parsed.
    #[error("{0}")]
    State(String),
}

/// An indicator of the trigger: normalised, or the raw one and why not.
type Ind = Result<Indicator, (Indicator, String)>;

/// One indicator for an action: already decided (skipped), or to act on
/// with its dedupe key.
enum Step {
    Done(ActionRecord),
    Go(Indicator, String),
}

/// Evaluates a [`Policy`] against [`Trigger`]s.
///
/// Not thread-safe by design (`&mut self`): the live engine owns one and
/// calls it from one thread. Webhook deliveries run on worker threads (one
/// per webhook action, started on first use).
///
/// Dedupe keys (an action is not repeated for the same key within the
/// policy's `dedupe` period): `<response>#<action index>` plus the
/// indicator for blocklist, crowdsec and per-indicator command actions;
/// plus the trigger kind, rule id, host and incident id for webhooks and
/// other commands. A key is recorded when the action is taken (or would be,
/// in dry run; for a webhook, when it is queued — a delivery that finally
/// fails is forgotten so the next trigger tries again); a failed command
/// records none. An expiring blocklist entry forgets its key.
pub struct Responder {
    policy: Arc<Policy>,
    dedupe: Dedupe,
    files: BTreeMap<PathBuf, BlockFile>,
    workers: HashMap<String, Worker>,
    done_tx: Sender<Done>,
    done_rx: Receiver<Done>,
    pending: usize,
    stop: Arc<AtomicBool>,
    state_saved: Option<DateTime<Utc>>,
    state_dirty: bool,
}

/// What one action of one response is evaluated with.
struct Ctx<'a> {
    response: &'a str,
    action_id: String,
    kind: &'static str,
    target: String,
    trigger: &'a Trigger,
    now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn record(&self, ind: Option<&Indicator>, outcome: Outcome, detail: String) -> ActionRecord {
        ActionRecord {
            time: self.now,
            response: self.response.to_owned(),
            action: self.kind.to_owned(),
            target: self.target.clone(),
            indicator: ind.cloned(),
            outcome,
            detail,
            trigger: TriggerRef::of(self.trigger),
        }
    }

    fn values<'v>(&'v self, ind: Option<&'v Indicator>) -> Values<'v> {
        Values {
            trigger: self.trigger,
            indicator: ind,
            response: self.response,
        }
    }

    fn key_of(&self, ind: &Indicator) -> String {
        format!("{}\u{1f}{ind}", self.action_id)
    }

    fn key_of_trigger(&self) -> String {
        let t = self.trigger;
        let kind = serde_json::to_string(&t.kind).unwrap_or_default();
        format!(
            "{}\u{1f}{kind}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.action_id, t.rule_id, t.host, t.incident_id
        )
    }
}

fn argv_text(program: &OsStr, args: &[String]) -> String {
    let mut all = vec![program.to_string_lossy().into_owned()];
    all.extend(args.iter().cloned());
    serde_json::to_string(&all).unwrap_or_default()
}

impl Responder {
    /// A responder for `policy` at `now`. With a policy `state` file, the
    /// dedupe table and the blocklist entries of the files the policy still
    /// names are restored from it (entries of other files are dropped);
    /// a missing state file is an empty state. Nothing is written here.
    ///
    /// # Errors
    /// [`RespondError::State`] when the state file exists but cannot be
    /// read or parsed.
    pub fn new(policy: Policy, now: DateTime<Utc>) -> Result<Responder, RespondError> {
        let mut files = BTreeMap::new();
        for r in &policy.responses {
            for a in &r.actions {
                if let Action::Blocklist(b) = a {
                    files
                        .entry(b.path.clone())
                        .or_insert_with(|| BlockFile::new(b.clone()));
                }
            }
        }
        let mut dedupe = Dedupe::default();
        if let Some(path) = &policy.state {
            let mut st = StateFile::load(path).map_err(RespondError::State)?;
            dedupe = st.take_dedupe();
            dedupe.prune(now, policy.dedupe.delta());
            for fs in st.files {
                if let Some(f) = files.get_mut(&PathBuf::from(&fs.path)) {
                    f.next_sid = fs.next_sid.max(f.config.sid_base);
                    f.entries.extend(fs.entries.into_iter().take(MAX_ENTRIES));
                }
            }
        }
        let (done_tx, done_rx) = mpsc::channel();
        Ok(Responder {
            policy: Arc::new(policy),
            dedupe,
            files,
            workers: HashMap::new(),
            done_tx,
            done_rx,
            pending: 0,
            stop: Arc::new(AtomicBool::new(false)),
            state_saved: None,
            state_dirty: false,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Webhook deliveries queued whose result has not been collected.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Evaluates every response whose `when` holds for `t` and returns one
    /// record per action and indicator (or per action, for actions without
    /// one), in policy order. `now` is the decision time (dedupe, TTLs).
    ///
    /// Blocks the caller only for commands and cscli (each at most its
    /// `timeout`) and blocklist file writes; webhooks are queued.
    pub fn handle(&mut self, t: &Trigger, now: DateTime<Utc>) -> Vec<ActionRecord> {
        let mut out = Vec::new();
        let inds = t.all_indicators();
        let policy = Arc::clone(&self.policy);
        let mut blocklist_changed = false;
        for r in policy.responses.iter().filter(|r| r.when.matches(t)) {
            for (i, action) in r.actions.iter().enumerate() {
                let ctx = Ctx {
                    response: &r.name,
                    action_id: format!("{}#{i}", r.name),
                    kind: action.kind(),
                    target: action.target(),
                    trigger: t,
                    now,
                };
                match action {
                    Action::Blocklist(b) => {
                        blocklist_changed |= self.blocklist(&ctx, b, &inds, &mut out);
                    }
                    Action::Crowdsec(c) => self.crowdsec(&ctx, c, &inds, &mut out),
                    Action::Webhook(w) => self.webhook(&ctx, w, &mut out),
                    Action::Command(c) => self.command(&ctx, c, &inds, &mut out),
                }
            }
        }
        self.save_state(now, blocklist_changed, &mut out);
        out
    }

    /// The indicators of `inds` of the given kinds, in order: those that
    /// pass the checks common to every indicator action (valid, not
    /// allowlisted, not a duplicate) as [`Step::Go`] with their dedupe key,
    /// the others as their record.
    fn eligible(&self, ctx: &Ctx<'_>, kinds: &[IndicatorKind], inds: &[Ind]) -> Vec<Step> {
        let mut steps = Vec::new();
        let period = self.policy.dedupe.delta();
        for ind in inds {
            match ind {
                Err((raw, why)) if kinds.contains(&raw.kind) => {
                    steps.push(Step::Done(ctx.record(
                        Some(raw),
                        Outcome::SkippedInvalid,
                        why.clone(),
                    )));
                }
                Err(_) => {}
                Ok(ind) if !kinds.contains(&ind.kind) => {}
                Ok(ind) if self.policy.allowlist.allows(ind) => {
                    let rec = ctx.record(
                        Some(ind),
                        Outcome::SkippedAllowlisted,
                        "in the allowlist".into(),
                    );
                    steps.push(Step::Done(rec));
                }
                Ok(ind) => {
                    let key = ctx.key_of(ind);
                    if self.dedupe.recent(&key, ctx.now, period) {
                        let detail = format!("already actioned within {}", self.policy.dedupe);
                        steps.push(Step::Done(ctx.record(
                            Some(ind),
                            Outcome::SkippedDuplicate,
                            detail,
                        )));
                    } else {
                        steps.push(Step::Go(ind.clone(), key));
                    }
                }
            }
        }
        steps
    }

    /// Whether a trigger-keyed action is a duplicate; records it if so.
    fn duplicate(&self, ctx: &Ctx<'_>, key: &str, out: &mut Vec<ActionRecord>) -> bool {
        let dup = self.dedupe.recent(key, ctx.now, self.policy.dedupe.delta());
        if dup {
            let detail = format!("already actioned within {}", self.policy.dedupe);
            out.push(ctx.record(None, Outcome::SkippedDuplicate, detail));
        }
        dup
    }

    fn mark(&mut self, key: String, now: DateTime<Utc>) {
        self.dedupe.mark(key, now, self.policy.dedupe.delta());
        self.state_dirty = true;
    }

    /// Adds the eligible indicators to the file; returns whether it changed.
    fn blocklist(
        &mut self,
        ctx: &Ctx<'_>,
        b: &BlocklistAction,
        inds: &[Ind],
        out: &mut Vec<ActionRecord>,
    ) -> bool {
        let steps = self.eligible(ctx, &b.indicators, inds);
        // Past the end of chrono's calendar: never expires (no panic).
        let expires = b
            .ttl
            .and_then(|ttl| ctx.now.checked_add_signed(ttl.delta()));
        let until = expires.map_or("no expiry".to_owned(), |e| {
            format!("until {}", e.to_rfc3339())
        });
        let mut taken = Vec::new();
        let mut to_write = BTreeSet::new();
        for step in steps {
            let (ind, key) = match step {
                Step::Done(rec) => {
                    out.push(rec);
                    continue;
                }
                Step::Go(ind, key) => (ind, key),
            };
            if self.policy.dry_run {
                let detail = format!("would add to {} ({until})", b.path.display());
                out.push(ctx.record(Some(&ind), Outcome::DryRun, detail));
                self.mark(key, ctx.now);
                continue;
            }
            if let Some((path, rec)) = self.evict_if_full(&b.path, &ind, ctx.now) {
                to_write.insert(path);
                out.push(rec);
            }
            let Some(file) = self.files.get_mut(&b.path) else {
                continue;
            };
            let sid = match file.entries.get(&ind) {
                Some(e) => Some(e.sid),
                None => file.take_sid(),
            };
            let Some(sid) = sid else {
                out.push(ctx.record(Some(&ind), Outcome::Failed, "no Suricata sid left".into()));
                continue;
            };
            let entry = Entry {
                added: ctx.now,
                expires,
                sid,
                by: TriggerRef::of(ctx.trigger),
                response: ctx.response.to_owned(),
                dedupe_key: key.clone(),
            };
            file.entries.insert(ind.clone(), entry);
            to_write.insert(b.path.clone());
            taken.push(out.len());
            out.push(ctx.record(
                Some(&ind),
                Outcome::Taken,
                format!("added to {} ({until})", b.path.display()),
            ));
            self.mark(key, ctx.now);
        }
        for path in &to_write {
            let Err(e) = self.files.get(path).map_or(Ok(()), BlockFile::write) else {
                continue;
            };
            if *path == b.path {
                for &i in &taken {
                    out[i].outcome = Outcome::Failed;
                    out[i].detail = e.clone();
                }
            } else {
                out.push(ctx.record(None, Outcome::Failed, format!("eviction not written: {e}")));
            }
        }
        !to_write.is_empty()
    }

    /// When the blocklist entries of all files reach [`MAX_ENTRIES`] and
    /// `ind` is new to `path`, removes the oldest entry and returns its
    /// `expired` record.
    fn evict_if_full(
        &mut self,
        path: &PathBuf,
        ind: &Indicator,
        now: DateTime<Utc>,
    ) -> Option<(PathBuf, ActionRecord)> {
        let total: usize = self.files.values().map(|f| f.entries.len()).sum();
        let present = self
            .files
            .get(path)
            .is_some_and(|f| f.entries.contains_key(ind));
        if total < MAX_ENTRIES || present {
            return None;
        }
        let (p, i) = self
            .files
            .iter()
            .flat_map(|(p, f)| f.entries.iter().map(move |(i, e)| (e.added, p, i)))
            .min()
            .map(|(_, p, i)| (p.clone(), i.clone()))?;
        let entry = self.files.get_mut(&p)?.entries.remove(&i)?;
        let detail = format!("evicted: the blocklist entry table is full ({MAX_ENTRIES} entries)");
        let rec = expired_record(&p, i, entry, now, detail);
        Some((p, rec))
    }

    fn crowdsec(
        &mut self,
        ctx: &Ctx<'_>,
        c: &CrowdsecAction,
        inds: &[Ind],
        out: &mut Vec<ActionRecord>,
    ) {
        for step in self.eligible(ctx, &[IndicatorKind::Ip], inds) {
            let (ind, key) = match step {
                Step::Done(rec) => {
                    out.push(rec);
                    continue;
                }
                Step::Go(ind, key) => (ind, key),
            };
            let reason = c.reason_template.render(&ctx.values(Some(&ind)));
            let args: Vec<String> = vec![
                "decisions".into(),
                "add".into(),
                "--ip".into(),
                ind.value.clone(),
                "--duration".into(),
                format!("{}s", c.duration.0.as_secs()),
                "--type".into(),
                c.decision_type.clone(),
                "--reason".into(),
                reason,
            ];
            let argv = argv_text(c.cscli.as_os_str(), &args);
            let rec = self.run_one(
                ctx,
                Some(&ind),
                c.cscli.as_os_str(),
                &args,
                c.timeout.0,
                argv,
                key,
            );
            out.push(rec);
        }
    }

    /// Runs (or, in dry run, describes) one command; records the dedupe key
    /// when it succeeded or would run.
    #[allow(clippy::too_many_arguments)]
    fn run_one(
        &mut self,
        ctx: &Ctx<'_>,
        ind: Option<&Indicator>,
        program: &OsStr,
        args: &[String],
        timeout: Duration,
        argv: String,
        key: String,
    ) -> ActionRecord {
        if self.policy.dry_run {
            self.mark(key, ctx.now);
            return ctx.record(ind, Outcome::DryRun, format!("would run {argv}"));
        }
        match crate::run::run(program, args, timeout) {
            Ok(ran) if ran.success() => {
                self.mark(key, ctx.now);
                ctx.record(
                    ind,
                    Outcome::Taken,
                    format!("ran {argv}: {}", ran.describe(timeout)),
                )
            }
            Ok(ran) => ctx.record(
                ind,
                Outcome::Failed,
                format!("ran {argv}: {}", ran.describe(timeout)),
            ),
            Err(e) => ctx.record(ind, Outcome::Failed, format!("{argv}: {e}")),
        }
    }

    fn command(
        &mut self,
        ctx: &Ctx<'_>,
        c: &CommandAction,
        inds: &[Ind],
        out: &mut Vec<ActionRecord>,
    ) {
        let program = OsStr::new(&c.program);
        if c.per_indicator {
            for step in self.eligible(ctx, &c.indicators, inds) {
                let (ind, key) = match step {
                    Step::Done(rec) => {
                        out.push(rec);
                        continue;
                    }
                    Step::Go(ind, key) => (ind, key),
                };
                let args: Vec<String> = c
                    .args
                    .iter()
                    .map(|a| a.render(&ctx.values(Some(&ind))))
                    .collect();
                let argv = argv_text(program, &args);
                let rec = self.run_one(ctx, Some(&ind), program, &args, c.timeout.0, argv, key);
                out.push(rec);
            }
        } else {
            let key = ctx.key_of_trigger();
            if self.duplicate(ctx, &key, out) {
                return;
            }
            let args: Vec<String> = c.args.iter().map(|a| a.render(&ctx.values(None))).collect();
            let argv = argv_text(program, &args);
            let rec = self.run_one(ctx, None, program, &args, c.timeout.0, argv, key);
            out.push(rec);
        }
    }

    fn webhook(&mut self, ctx: &Ctx<'_>, w: &WebhookAction, out: &mut Vec<ActionRecord>) {
        let key = ctx.key_of_trigger();
        if self.duplicate(ctx, &key, out) {
            return;
        }
        let t = ctx.trigger;
        let body = if t.payload.is_null() {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.remove("payload");
            }
            serde_json::to_vec(&v)
        } else {
            serde_json::to_vec(&t.payload)
        }
        .unwrap_or_default();
        if self.policy.dry_run {
            self.mark(key, ctx.now);
            let detail = format!("would POST {} bytes to {}", body.len(), w.url);
            out.push(ctx.record(None, Outcome::DryRun, detail));
            return;
        }
        if !self.workers.contains_key(&ctx.action_id) {
            match Worker::start(w.clone(), self.done_tx.clone(), Arc::clone(&self.stop)) {
                Ok(worker) => {
                    self.workers.insert(ctx.action_id.clone(), worker);
                }
                Err(e) => {
                    out.push(ctx.record(None, Outcome::Failed, e));
                    return;
                }
            }
        }
        let size = body.len();
        let d = Delivery {
            body,
            record: ctx.record(None, Outcome::Queued, String::new()),
            dedupe_key: key.clone(),
        };
        match self.workers.get(&ctx.action_id).map(|wk| wk.offer(d)) {
            Some(Ok(())) => {
                self.pending += 1;
                self.mark(key, ctx.now);
                out.push(ctx.record(
                    None,
                    Outcome::Queued,
                    format!("{size} bytes queued for {}", w.url),
                ));
            }
            Some(Err(why)) => {
                out.push(ctx.record(None, Outcome::Dropped, format!("not queued: {why}")));
            }
            None => {}
        }
    }

    /// Removes the blocklist entries whose TTL has passed at `now`, rewrites
    /// their files, forgets their dedupe keys, drops dedupe keys older than
    /// the period, and returns one `expired` record per entry (with the
    /// trigger that added it). In dry run nothing was added, so nothing
    /// expires. A file that cannot be rewritten gives a `failed` record.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<ActionRecord> {
        let mut out = Vec::new();
        let mut forget = Vec::new();
        let mut changed = false;
        for (path, file) in &mut self.files {
            let gone: Vec<Indicator> = file
                .entries
                .iter()
                .filter(|(_, e)| e.expires.is_some_and(|x| x <= now))
                .map(|(i, _)| i.clone())
                .collect();
            if gone.is_empty() {
                continue;
            }
            let first = out.len();
            for ind in gone {
                if let Some(e) = file.entries.remove(&ind) {
                    forget.push(e.dedupe_key.clone());
                    let at = e.expires.map(|x| x.to_rfc3339()).unwrap_or_default();
                    out.push(expired_record(
                        path,
                        ind,
                        e,
                        now,
                        format!("TTL passed at {at}"),
                    ));
                }
            }
            changed = true;
            if let Err(e) = file.write() {
                for rec in &mut out[first..] {
                    rec.outcome = Outcome::Failed;
                    rec.detail = format!("expiry not written: {e}");
                }
            }
        }
        for k in forget {
            self.dedupe.forget(&k);
        }
        let before = self.dedupe.len();
        self.dedupe.prune(now, self.policy.dedupe.delta());
        self.state_dirty |= changed || before != self.dedupe.len();
        self.save_state(now, changed, &mut out);
        out
    }

    /// The records of webhook deliveries finished since the last call
    /// (`taken` or `failed`), without waiting.
    pub fn completed(&mut self) -> Vec<ActionRecord> {
        let mut out = Vec::new();
        while let Ok(d) = self.done_rx.try_recv() {
            self.finish(d, &mut out);
        }
        out
    }

    fn finish(&mut self, d: Done, out: &mut Vec<ActionRecord>) {
        self.pending = self.pending.saturating_sub(1);
        if d.record.outcome != Outcome::Taken {
            self.dedupe.forget(&d.dedupe_key);
            self.state_dirty = true;
        }
        out.push(d.record);
    }

    /// Waits up to `timeout` for the queued webhook deliveries, returns the
    /// records of those finished (as [`completed`](Self::completed)), and
    /// writes the state file (live mode) if it changed.
    pub fn flush(&mut self, timeout: Duration) -> Vec<ActionRecord> {
        let start = Instant::now();
        let mut out = self.completed();
        while self.pending > 0 {
            let left = timeout.saturating_sub(start.elapsed());
            match self.done_rx.recv_timeout(left) {
                Ok(d) => self.finish(d, &mut out),
                Err(_) => break,
            }
        }
        let now = Utc::now();
        self.save_state(now, true, &mut out);
        out
    }

    /// Writes the state file (live mode, a `state` path set) when `force`
    /// or when something changed and the last write is [`STATE_EVERY`] old.
    /// A failed write gives a `failed` record with action `state`.
    fn save_state(&mut self, now: DateTime<Utc>, force: bool, out: &mut Vec<ActionRecord>) {
        let Some(path) = self.policy.state.clone() else {
            return;
        };
        let due = self
            .state_saved
            .is_none_or(|at| now.signed_duration_since(at) >= STATE_EVERY);
        if self.policy.dry_run || !(self.state_dirty && (force || due)) {
            return;
        }
        let files = self
            .files
            .iter()
            .map(|(p, f)| FileState {
                path: p.display().to_string(),
                next_sid: f.next_sid,
                entries: f
                    .entries
                    .iter()
                    .map(|(i, e)| (i.clone(), e.clone()))
                    .collect(),
            })
            .collect();
        let state = StateFile::of(&self.dedupe, files);
        let written = serde_json::to_vec(&state)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                crate::blocklist::write_atomic(&path, &bytes).map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => {
                self.state_saved = Some(now);
                self.state_dirty = false;
            }
            Err(e) => out.push(ActionRecord {
                time: now,
                response: String::new(),
                action: "state".to_owned(),
                target: path.display().to_string(),
                indicator: None,
                outcome: Outcome::Failed,
                detail: format!("state file not written: {e}"),
                trigger: TriggerRef::default(),
            }),
        }
    }
}

fn expired_record(
    path: &std::path::Path,
    ind: Indicator,
    e: Entry,
    now: DateTime<Utc>,
    detail: String,
) -> ActionRecord {
    ActionRecord {
        time: now,
        response: e.response,
        action: "blocklist".to_owned(),
        target: path.display().to_string(),
        indicator: Some(ind),
        outcome: Outcome::Expired,
        detail,
        trigger: e.by,
    }
}

impl Drop for Responder {
    /// Waits up to [`DROP_WAIT`] for queued webhook deliveries (their
    /// records are lost: call [`Responder::flush`] first to get them), then
    /// tells the workers to stop retrying, and writes the state file.
    fn drop(&mut self) {
        if self.pending > 0 {
            let _ = self.flush(DROP_WAIT);
        } else {
            let mut sink = Vec::new();
            self.save_state(Utc::now(), true, &mut sink);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}
