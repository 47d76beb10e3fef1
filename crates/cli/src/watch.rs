//! `tracehunt watch`: the live hunt. Flags, threads for the sources
//! (followed files, stdin), the tokio runtime for the HTTP endpoint and the
//! signals (SIGHUP reloads the rules, SIGINT/SIGTERM stop), stderr notes.

use crate::hunt::{load_kb, parse_duration, MinLevel};
use crate::rules::{self, RuleOpts};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracehunt_follow::{FollowOptions, Follower, Start};
use tracehunt_live::{
    Engine, IncidentConfig, JsonLines, LiveConfig, Metrics, Rejected, ResponseSink, Rules, Sink,
    StoreSink, Submission,
};
use tracehunt_report::counted;
use tracehunt_respond::{Policy, Responder};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Files to follow, one record per line: JSON lines (as Winlogbeat,
    /// NXLog or Fluent Bit write them; CloudTrail, Zeek JSON…), syslog /
    /// auth.log (Sysmon for Linux included), raw auditd (one event per
    /// record, not assembled into process creations) or Apache/Nginx
    /// access logs; not Zeek TSV or W3C/IIS (`hunt` reads those). `*` and
    /// `?` allowed in the last path component (`/var/log/winlogbeat/*.ndjson`).
    /// Rotation by rename and by truncation is followed.
    pub paths: Vec<PathBuf>,
    /// Also read lines from standard input, as followed files are read
    /// (the hunt ends at its end when nothing else is watched).
    #[arg(long)]
    pub stdin: bool,
    /// Serve the HTTP endpoint here: `POST /v1/events` (lines as for
    /// files: JSON lines, syslog, auditd, access logs; bearer token), `GET /v1/health`, `GET /metrics`. Loopback unless
    /// `--allow-remote`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Allow --listen on a non-loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// File holding the bearer token of the HTTP endpoint (required with
    /// --listen unless TRACEHUNT_TOKEN is set).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Largest HTTP request body in bytes (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_body: usize,
    /// Where the read offsets of followed files are kept: a restart resumes
    /// after the last event whose detections were written.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// On a first run (no --state file yet), start followed files at their
    /// end instead of their beginning.
    #[arg(long)]
    pub from_end: bool,
    /// Sigma rule file or directory (repeatable). Default: the built-in pack
    /// (Windows rules only: for Linux, cloud, network and web logs give
    /// SigmaHQ's rules, or its folders linux, cloud, identity, application,
    /// network, web).
    #[arg(long, short = 'r', value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// ATT&CK Enterprise STIX bundle (default: the built-in v18.1 snapshot).
    #[arg(long, value_name = "FILE")]
    pub attack: Option<PathBuf>,
    /// IOC feed file or directory (repeatable), as for `hunt`.
    #[arg(long, value_name = "FILE")]
    pub ioc: Vec<PathBuf>,
    /// Only report detections of rules at or above this level (any case: `HIGH`;
    /// `-m` as in Hayabusa).
    #[arg(
        long,
        short = 'm',
        value_enum,
        ignore_case = true,
        default_value = "informational"
    )]
    pub min_level: MinLevel,
    /// Append the JSON lines here (`-`: standard output) instead of writing
    /// them to standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Scan worker threads (default: all cores).
    #[arg(long, short = 't', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Batches queued before sources wait and HTTP answers 503.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub queue: usize,
    /// Incidents: a host's detections further apart than this start a new one.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub session_gap: i64,
    /// Incidents: the longest time one incident may span on one host.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub max_span: i64,
    /// Incidents: an entity on more hosts than this links none of them.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub entity_ceiling: usize,
    /// Also record detections and incidents in this store (SQLite; created
    /// if missing), one transaction per checkpoint (`--store-interval`).
    #[arg(long, value_name = "PATH", env = "TRACEHUNT_STORE")]
    pub store: Option<PathBuf>,
    /// Longest time between store checkpoints; acknowledgements (follow
    /// offsets, HTTP answers) wait for the checkpoint.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration_ms)]
    pub store_interval: Duration,
    /// Response policy (YAML): which detections, IOC hits and incidents
    /// trigger which actions (blocklists, CrowdSec, webhooks, commands).
    /// Dry-run unless the policy says `dry_run: false`.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Force dry-run whatever the policy says (evaluate and log, act on nothing).
    #[arg(long, requires = "policy")]
    pub dry_run: bool,
    /// Append one JSON line per response action taken or skipped here
    /// (default: standard error).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub action_log: Option<PathBuf>,
    /// No notes on stderr, only errors and the final summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub rule_opts: RuleOpts,
}

/// A duration for the store interval: `250ms`, or what `--session-gap` takes.
fn parse_duration_ms(s: &str) -> std::result::Result<Duration, String> {
    if let Some(ms) = s.strip_suffix("ms") {
        return ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("{s}: {e}"));
    }
    let secs = parse_duration(s)?;
    u64::try_from(secs)
        .map(Duration::from_secs)
        .map_err(|_| format!("{s}: negative"))
}

/// Notes to stderr that never panic on a closed stderr.
fn note(quiet: bool, msg: &str) {
    if !quiet {
        let cmd = NOTE_PREFIX.get().copied().unwrap_or("watch");
        let _ = writeln!(std::io::stderr(), "tracehunt {cmd}: {msg}");
    }
}

/// The command named in stderr notes (`watch`, or `worker` when it reuses them).
pub(crate) static NOTE_PREFIX: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Rule errors (TH codes, file, line) and the rule counts, on stderr.
pub(crate) fn report_rules(a: &WatchArgs, loaded: &tracehunt_pipeline::Loaded) {
    crate::hunt::report_rule_errors(&loaded.diagnostics, 20);
    let c = rules::RuleCounts::of(loaded, a.min_level as u8);
    let summary = tracehunt_report::Summary {
        rules_loaded: c.loaded,
        rules_active: c.active,
        rules_skipped: c.skipped(),
        rules_skipped_by_reason: c.skipped_by_reason.clone(),
        rules_failed: c.failed,
        rules_with_unresolved_placeholder: c.unresolved_placeholder,
        ..Default::default()
    };
    note(
        a.quiet,
        &format!("rules: {}", tracehunt_report::rules_line(&summary)),
    );
}

/// Rules, feeds and the knowledge base, loaded as `hunt` loads them.
pub(crate) fn load(
    a: &WatchArgs,
) -> Result<(
    tracehunt_pipeline::Loaded,
    Option<Arc<tracehunt_ioc::IocSet>>,
    Arc<tracehunt_attack::ActorKb>,
)> {
    let loaded = rules::load(&a.rules, &a.rule_opts)?;
    let c = rules::RuleCounts::of(&loaded, a.min_level as u8);
    if c.active == 0 {
        bail!(
            "no usable rule: {} loaded, none active at or above --min-level; see `tracehunt rules check`",
            c.loaded
        );
    }
    let feeds = crate::ioc_cmd::load(&a.ioc, true, false)?;
    // The built-in knowledge base never changes: one copy for every reload
    // (the live stage then keeps its attributor across reloads).
    static BUILTIN: std::sync::OnceLock<Arc<tracehunt_attack::ActorKb>> =
        std::sync::OnceLock::new();
    let kb = match &a.attack {
        None => BUILTIN
            .get_or_init(|| Arc::new(tracehunt_attack::ActorKb::builtin().clone()))
            .clone(),
        Some(_) => Arc::new(load_kb(&a.attack)?.into_owned()),
    };
    Ok((loaded, feeds.map(|f| f.set), kb))
}

fn token(a: &WatchArgs) -> Result<String> {
    let t = match &a.token_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading the token file {}", p.display()))?,
        None => std::env::var("TRACEHUNT_TOKEN").unwrap_or_default(),
    };
    let t = t.trim().to_owned();
    if t.len() < 16 {
        bail!("--listen needs a bearer token of at least 16 characters (--token-file FILE or TRACEHUNT_TOKEN)");
    }
    Ok(t)
}

/// The sinks: JSON lines (`--output`, else stdout when `stdout` is true),
/// the store, the response policy.
pub(crate) fn sinks(
    a: &WatchArgs,
    rules: &Rules,
    metrics: &Arc<Metrics>,
    stdout: bool,
) -> Result<Vec<Box<dyn Sink>>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    match &a.output {
        Some(p) if p.as_os_str() == "-" => sinks.push(Box::new(JsonLines(
            std::io::BufWriter::new(std::io::stdout()),
        ))),
        Some(p) => sinks.push(Box::new(JsonLines(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        )))),
        None if stdout => sinks.push(Box::new(JsonLines(std::io::BufWriter::new(
            std::io::stdout(),
        )))),
        None => {}
    }
    if let Some(p) = &a.store {
        let store = crate::store_cmd::open_for_hunt(p, a.output.as_deref())?;
        let run = tracehunt_store::HuntRun {
            started_at: chrono::Utc::now(),
            tool_version: format!("tracehunt {}", env!("CARGO_PKG_VERSION")),
            ruleset_hash: tracehunt_pipeline::store_sink::ruleset_hash(&rules.loaded, &|f| {
                rules::rule_file_text(f)
            }),
            attack_version: rules.kb.label().unwrap_or("unknown").to_owned(),
            parameters: serde_json::Value::Null,
        };
        sinks.push(Box::new(StoreSink::new(store, a.store_interval, run)));
    }
    if let Some(p) = &a.policy {
        let text =
            crate::input::read_text_file(p).with_context(|| format!("reading {}", p.display()))?;
        let mut policy = Policy::from_yaml(&text, &p.display().to_string())?;
        if a.dry_run {
            policy.dry_run = true;
        }
        note(
            a.quiet,
            &format!(
                "response policy {}: {} responses, {}",
                p.display(),
                policy.responses.len(),
                if policy.dry_run {
                    "dry-run"
                } else {
                    "LIVE: actions are taken"
                }
            ),
        );
        let responder = Responder::new(policy, chrono::Utc::now())?;
        let log: Box<dyn Write + Send> = match &a.action_log {
            Some(p) => Box::new(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("opening {}", p.display()))?,
            )),
            None => Box::new(std::io::stderr()),
        };
        sinks.push(Box::new(ResponseSink::new(responder, log, metrics.clone())));
    }
    Ok(sinks)
}

pub fn run(a: WatchArgs) -> Result<u8> {
    raise_open_files_limit();
    if a.paths.is_empty() && !a.stdin && a.listen.is_none() {
        bail!("nothing to watch: give files to follow, --stdin or --listen ADDR:PORT");
    }
    let token = match a.listen {
        Some(addr) => {
            if !addr.ip().is_loopback() && !a.allow_remote {
                bail!("--listen {addr} is not a loopback address; add --allow-remote to serve it");
            }
            Some(token(&a)?)
        }
        None => None,
    };
    let (loaded, iocs, kb) = load(&a)?;
    report_rules(&a, &loaded);
    let rules = Rules::new(loaded, iocs, kb, 0);
    let metrics = Arc::new(Metrics::new());
    let sinks = sinks(&a, &rules, &metrics, true)?;
    let threads = a
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cfg = LiveConfig {
        threads,
        queue_batches: a.queue.max(1),
        min_rank: a.min_level as u8,
        incidents: IncidentConfig {
            session_gap_secs: a.session_gap,
            max_span_secs: a.max_span,
            entity_ceiling: a.entity_ceiling,
            ..IncidentConfig::default()
        },
        ..LiveConfig::default()
    };
    let engine = Arc::new(Engine::start(rules, cfg, sinks, metrics));
    let stop = Arc::new(AtomicBool::new(false));
    let acks: Acks = Arc::default();
    let mut sources = Vec::new();
    if !a.paths.is_empty() {
        let opts = FollowOptions {
            start: if a.from_end {
                Start::End
            } else {
                Start::Beginning
            },
            ..FollowOptions::default()
        };
        let mut follower = Follower::open(&a.paths, a.state.as_deref(), opts)
            .context("following the given files")?;
        // A state file that cannot be written fails now, not at the first
        // save (fresh-user finding: detection went quiet until Ctrl-C).
        follower
            .persist()
            .context("--state: the follow state file cannot be written")?;
        let (e, s, q, ac) = (engine.clone(), stop.clone(), a.quiet, acks.clone());
        sources.push(std::thread::spawn(move || follow(follower, &ac, &e, &s, q)));
    }
    let stdin_done = Arc::new(AtomicBool::new(false));
    if a.stdin {
        let (e, d, q) = (engine.clone(), stdin_done.clone(), a.quiet);
        std::thread::spawn(move || {
            read_stdin(&e, q);
            d.store(true, Ordering::SeqCst);
        });
    }
    let only_stdin = a.paths.is_empty() && a.listen.is_none();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(control(&a, &engine, token, only_stdin, &stdin_done))?;
    stop.store(true, Ordering::SeqCst);
    let mut followers = Vec::new();
    let mut source_error = None;
    for s in sources {
        match s.join() {
            Ok(f) => followers.push(f),
            Err(_) => {
                source_error = Some(anyhow::anyhow!("the file follower stopped unexpectedly"))
            }
        }
    }
    let summary = engine.finish().context("live hunt")?;
    // Everything queued is written: its positions are committed and saved.
    for mut f in followers {
        commit_acks(&mut f, &acks);
        f.persist().context("saving the follow state")?;
    }
    if let Some(e) = source_error {
        return Err(e);
    }
    let _ = writeln!(
        std::io::stderr(),
        "tracehunt watch: {}, {}, {}, {} opened, {} closed",
        counted(summary.events, "event", "events"),
        counted(summary.rejected, "rejected line", "rejected lines"),
        counted(summary.detections, "detection", "detections"),
        counted(summary.incidents_opened, "incident", "incidents"),
        summary.incidents_closed
    );
    Ok(0)
}

/// Serves HTTP (when asked) and waits for a stop: SIGINT, SIGTERM, the end
/// of stdin when it is the only source, or the engine failing. SIGHUP
/// reloads the rules.
async fn control(
    a: &WatchArgs,
    engine: &Arc<Engine>,
    token: Option<String>,
    only_stdin: bool,
    stdin_done: &Arc<AtomicBool>,
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server = None;
    if let (Some(addr), Some(token)) = (a.listen, token) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        note(
            a.quiet,
            &format!("listening on http://{}", listener.local_addr()?),
        );
        let cfg = tracehunt_live::http::HttpConfig {
            token,
            max_body: a.max_body,
        };
        let mut rx = stop_rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        server = Some(tokio::spawn(tracehunt_live::http::serve(
            listener,
            engine.clone(),
            cfg,
            shutdown,
        )));
    }
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut poll = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(a, engine),
            _ = poll.tick() => {
                if (only_stdin && stdin_done.load(Ordering::SeqCst))
                    || engine.failed()
                {
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some(mut s) = server {
        // Graceful, but not forever: a client holding a connection open
        // must not keep the watch from stopping (breaker finding).
        tokio::select! {
            r = &mut s => r.context("HTTP server")?.context("HTTP server")?,
            _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
                s.abort();
                note(a.quiet, "HTTP connections still open at shutdown: closed");
            }
        }
    }
    Ok(())
}

/// Files with a rule that failed to load (error diagnostics).
fn failing_files(loaded: &tracehunt_pipeline::Loaded) -> std::collections::BTreeSet<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == tracehunt_sigma::Severity::Error)
        .map(|d| d.file.clone())
        .collect()
}

fn reload(a: &WatchArgs, engine: &Engine) {
    let started = Instant::now();
    match load(a) {
        Ok((loaded, iocs, kb)) => {
            report_rules(a, &loaded);
            // A rule file that loaded before and fails now (an edit in
            // progress, a typo) would silently drop its rules: the reload is
            // refused and the running rules stay (breaker finding).
            let before = failing_files(&engine.rules().loaded);
            let broken: Vec<String> = failing_files(&loaded)
                .difference(&before)
                .cloned()
                .collect();
            if !broken.is_empty() {
                engine.metrics().reload_failures.inc();
                let _ = writeln!(
                    std::io::stderr(),
                    "tracehunt watch: SIGHUP: reload refused, the running rules stay: {} newly failing ({}); fix and send SIGHUP again",
                    counted(broken.len() as u64, "rule file", "rule files"),
                    broken.join(", ")
                );
                return;
            }
            let n = loaded.ruleset.active_len();
            let g = engine.reload(loaded, iocs, kb);
            note(
                a.quiet,
                &format!(
                    "SIGHUP: {n} rules reloaded (generation {g}) in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
            );
        }
        Err(e) => {
            engine.metrics().reload_failures.inc();
            let _ = writeln!(
                std::io::stderr(),
                "tracehunt watch: SIGHUP: reload failed, the old rules stay: {e:#}"
            );
        }
    }
}

/// How long open HTTP connections may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Raises the soft limit of open files to the hard limit: a watch holds a
/// descriptor per followed file and HTTP connection (breaker finding: 1,100
/// matching files stopped the follower at the default 1,024).
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// Most rejected lines named on stderr per batch (all are counted).
const REJECTED_SHOWN: usize = 10;

/// Names a batch's rejected lines on stderr: `source line N: reason`
/// (fresh-user finding: stdin and files only counted them).
fn report_rejected(source: &str, r: &tracehunt_live::BatchResult) {
    let mut err = std::io::stderr().lock();
    for e in r.errors.iter().take(REJECTED_SHOWN) {
        let _ = writeln!(
            err,
            "tracehunt watch: {source} line {}: {}",
            e.line, e.reason
        );
    }
    if r.rejected > REJECTED_SHOWN as u64 {
        let _ = writeln!(
            err,
            "tracehunt watch: {source}: {} more rejected lines in this batch",
            r.rejected - REJECTED_SHOWN as u64
        );
    }
}

/// Most lines per stdin batch.
const STDIN_BATCH: usize = 4096;

/// Longest stdin line read (bytes); a longer one is skipped to its newline
/// and reported, so a stream without newlines cannot grow memory.
const STDIN_MAX_LINE: u64 = 16 << 20;

/// Reads one line of at most [`STDIN_MAX_LINE`] bytes into `buf` (without
/// its newline). `Ok(None)` at end of input; `Ok(Some(false))` for a line
/// that was too long (skipped through its newline).
fn stdin_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let n = std::io::Read::take(&mut *r, STDIN_MAX_LINE + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(true));
    }
    if (buf.len() as u64) <= STDIN_MAX_LINE {
        // The last line, without a newline.
        return Ok(Some(true));
    }
    // Too long: skip the rest of it, a buffer at a time.
    loop {
        let (skip, done) = {
            let avail = r.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            }
        };
        r.consume(skip);
        if done {
            break;
        }
    }
    buf.clear();
    Ok(Some(false))
}

fn read_stdin(engine: &Engine, quiet: bool) {
    let stdin = std::io::stdin();
    let mut r = std::io::BufReader::with_capacity(1 << 20, stdin.lock());
    let mut line_no = 1u64;
    let mut buf = Vec::new();
    loop {
        let mut lines = Vec::new();
        let mut rejected = Vec::new();
        let first = line_no;
        let mut eof = false;
        // One line (blocking), then whatever is already buffered: low
        // latency when events trickle, large batches when they pour.
        loop {
            match stdin_line(&mut r, &mut buf) {
                Ok(None) => {
                    eof = true;
                    break;
                }
                Err(e) => {
                    note(false, &format!("stdin: {e}; stopped reading it"));
                    eof = true;
                    break;
                }
                Ok(Some(fits)) => {
                    if !fits {
                        note(
                            quiet,
                            &format!(
                                "stdin: line {line_no} longer than {STDIN_MAX_LINE} bytes, skipped"
                            ),
                        );
                        rejected.push(Rejected {
                            line: line_no,
                            reason: format!("longer than {STDIN_MAX_LINE} bytes"),
                        });
                    }
                    // A skipped line stays as an empty line: numbers stay right.
                    lines.push(String::from_utf8_lossy(&buf).into_owned());
                    line_no += 1;
                }
            }
            if r.buffer().is_empty() || lines.len() >= STDIN_BATCH {
                break;
            }
        }
        if !lines.is_empty() {
            let sub = Submission {
                source: Arc::from("stdin"),
                lines,
                first_line: first,
                done: Some(Box::new(|r| report_rejected("stdin", r))),
                rejected,
            };
            if engine.submit(sub).is_err() {
                return;
            }
        }
        if eof {
            return;
        }
    }
}

/// Persist the follow offsets at most this often.
const PERSIST_EVERY: Duration = Duration::from_millis(200);

/// Read positions acknowledged by the engine, not yet committed to the follower.
type Acks = Arc<Mutex<Vec<(tracehunt_follow::FileId, u64)>>>;

/// Commits the acknowledged positions.
fn commit_acks(f: &mut Follower, acks: &Acks) {
    let done: Vec<_> = std::mem::take(&mut *acks.lock().unwrap_or_else(|e| e.into_inner()));
    for (file, end) in done {
        f.commit(file, end);
    }
}

/// Polls the follower and submits its lines until `stop`; gives the
/// follower back (its last positions are committed after the engine has
/// drained the queue). A failed save of the state is reported and retried.
fn follow(
    mut f: Follower,
    acks: &Acks,
    engine: &Engine,
    stop: &AtomicBool,
    quiet: bool,
) -> Follower {
    let mut persisted = Instant::now();
    let mut save_failing: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) && !engine.failed() {
        let batches = f.poll();
        let more = batches.iter().any(|b| b.more);
        for b in batches {
            for n in &b.notes {
                note(quiet, &format!("{}: {n}", b.path.display()));
            }
            let first_line = b.lines.first().map_or(0, |l| l.line_no);
            let (file, end) = (b.file, b.end_offset);
            let acks = acks.clone();
            // Lines skipped by the follower (too long) are rejected lines
            // here, and their places stay empty so line numbers stay right.
            let rejected: Vec<Rejected> = b
                .notes
                .iter()
                .filter_map(|n| match n {
                    tracehunt_follow::Note::LineTooLong { line_no, .. } => Some(Rejected {
                        line: *line_no,
                        reason: "longer than the line cap (1 MiB)".into(),
                    }),
                    _ => None,
                })
                .collect();
            let mut lines = Vec::with_capacity(b.lines.len());
            for l in b.lines {
                while first_line + (lines.len() as u64) < l.line_no {
                    lines.push(String::new());
                }
                lines.push(l.text);
            }
            let name = b.path.display().to_string();
            let sub = Submission {
                source: Arc::from(name.as_str()),
                lines,
                first_line,
                done: Some(Box::new(move |r| {
                    report_rejected(&name, r);
                    acks.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((file, end));
                })),
                rejected,
            };
            if engine.submit(sub).is_err() {
                break;
            }
        }
        commit_acks(&mut f, acks);
        if persisted.elapsed() >= PERSIST_EVERY {
            // A failed save (disk full, out of descriptors, the directory
            // gone for a moment) is reported and retried: following goes
            // on, and a crash meanwhile repeats more lines, losing none
            // (breaker finding: the follower stopped silently).
            match f.persist() {
                Ok(()) => {
                    if save_failing.take().is_some() {
                        note(false, "the follow state is saved again");
                    }
                }
                Err(e) => {
                    if save_failing.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(10))
                    {
                        note(false, &format!("{e:#}: retrying; following goes on"));
                        save_failing = Some(Instant::now());
                    }
                }
            }
            persisted = Instant::now();
        }
        if !more {
            std::thread::sleep(f.poll_interval());
        }
    }
    f
}
