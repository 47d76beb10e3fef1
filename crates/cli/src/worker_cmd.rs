//! `tracehunt worker`: one of a set of workers sharing the partitions of the
//! JetStream events stream; each runs the live pipeline on its partitions
//! and publishes detections and incidents to the DETECTIONS stream.

use crate::hunt::{parse_duration, MinLevel};
use crate::nats_opts::{runtime, NatsOpts};
use crate::rules::RuleOpts;
use crate::watch::{self, WatchArgs};
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracehunt_jetstream::{async_nats, connect, PartitionSpec, Worker, WorkerConfig};
use tracehunt_live::{Engine, IncidentConfig, LiveConfig, Metrics, Rules};
use tracehunt_report::counted;

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub nats: NatsOpts,
    /// Partitions this worker serves: `all`, or numbers and ranges
    /// (`0-7`, `0,2,4`). Each is leased: a partition another worker holds is
    /// taken when that worker stops or its lease expires.
    #[arg(long, value_name = "SPEC", default_value = "all", value_parser = PartitionSpec::parse)]
    pub partitions: PartitionSpec,
    /// This worker's name, unique among running workers (default:
    /// host-pid). Restarted under the same name, a worker takes its
    /// partitions back at once instead of after the lease TTL.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long a dead worker's partitions wait before another worker takes
    /// them. Set when the lease bucket is created (by the first worker); an
    /// existing bucket keeps its TTL, printed at start.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub lease_ttl: i64,
    /// Stop after this long without a message, once every partition is
    /// leased and its consumer has nothing pending or unacknowledged on the
    /// server: for batch-style runs and benchmarks. Default: run until
    /// SIGINT/SIGTERM.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_exit: Option<i64>,
    /// Event messages per partition in flight (submitted, not yet acknowledged).
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_inflight: u16,
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
    /// Also append the JSON lines (as `watch` writes them) here (`-`: standard output).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Scan threads (default: all cores).
    #[arg(long, short = 't', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Incidents: a host's detections further apart than this start a new one.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub session_gap: i64,
    /// Incidents: the longest time one incident may span on one host.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub max_span: i64,
    /// Incidents: an entity on more hosts than this links none of them.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub entity_ceiling: usize,
    /// Also record detections and incidents in this store (SQLite).
    #[arg(long, value_name = "PATH", env = "TRACEHUNT_STORE")]
    pub store: Option<PathBuf>,
    /// Response policy (YAML), as for `watch`.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// No notes on stderr, only errors and the final summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub rule_opts: RuleOpts,
}

/// The `watch` arguments that load rules and build sinks the same way.
fn as_watch(a: &WorkerArgs) -> WatchArgs {
    WatchArgs {
        paths: Vec::new(),
        stdin: false,
        listen: None,
        allow_remote: false,
        token_file: None,
        max_body: 0,
        state: None,
        from_end: false,
        rules: a.rules.clone(),
        attack: a.attack.clone(),
        ioc: a.ioc.clone(),
        min_level: a.min_level,
        output: a.output.clone(),
        threads: a.threads,
        queue: 256,
        session_gap: a.session_gap,
        max_span: a.max_span,
        entity_ceiling: a.entity_ceiling,
        store: a.store.clone(),
        store_interval: Duration::from_secs(1),
        policy: a.policy.clone(),
        dry_run: false,
        action_log: None,
        quiet: a.quiet,
        rule_opts: a.rule_opts.clone(),
    }
}

fn note(quiet: bool, msg: &str) {
    if !quiet {
        let _ = writeln!(std::io::stderr(), "tracehunt worker: {msg}");
    }
}

pub fn run(a: WorkerArgs) -> Result<u8> {
    let _ = watch::NOTE_PREFIX.set("worker");
    let wa = as_watch(&a);
    let names = a.nats.names()?;
    let token = a.nats.token()?;
    let owner = a.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let (loaded, iocs, kb) = watch::load(&wa)?;
    watch::report_rules(&wa, &loaded);
    let rules = Rules::new(loaded, iocs, kb, 0);
    let metrics = Arc::new(Metrics::new());
    let rt = runtime(2)?;
    let cfg = WorkerConfig {
        names,
        owner: owner.clone(),
        partitions: a.partitions.clone(),
        lease_ttl: Duration::from_secs(a.lease_ttl.max(1) as u64),
        settings: a.nats.settings(),
        max_inflight: usize::from(a.max_inflight),
        idle_exit: a.idle_exit.map(|s| Duration::from_secs(s.max(0) as u64)),
    };
    let quiet = a.quiet;
    let prefix = owner.clone();
    let notify: tracehunt_jetstream::Notify =
        Arc::new(move |m: String| note(quiet, &format!("{prefix}: {m}")));
    let mut worker = rt.block_on(async {
        let client = connect(
            &a.nats.nats,
            token,
            &format!("tracehunt-worker {owner}"),
            Some(notify.clone()),
        )
        .await?;
        Worker::connect(async_nats::jetstream::new(client), cfg).await
    })?;
    worker.set_notify(notify);
    note(
        a.quiet,
        &format!(
            "{owner}: partitions {} of {} (lease TTL {} s)",
            spec_text(worker.partitions()),
            worker.partition_count(),
            worker.lease_ttl().as_secs()
        ),
    );
    let mut sinks = watch::sinks(&wa, &rules, &metrics, false)?;
    sinks.insert(0, Box::new(worker.sink(rt.handle().clone())));
    let threads = a
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let live = LiveConfig {
        threads,
        min_rank: a.min_level as u8,
        incidents: IncidentConfig {
            session_gap_secs: a.session_gap,
            max_span_secs: a.max_span,
            entity_ceiling: a.entity_ceiling,
            ..IncidentConfig::default()
        },
        ..LiveConfig::default()
    };
    let engine = Arc::new(Engine::start(rules, live, sinks, metrics));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = rt.block_on(async {
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = stop_tx.send(true);
        });
        worker.run(engine.clone(), stop_rx).await
    });
    // Everything submitted is processed; close windows and incidents (their
    // closing lines are published too) before reporting.
    let e2 = engine.clone();
    let summary = std::thread::spawn(move || e2.finish())
        .join()
        .map_err(|_| anyhow::anyhow!("the live pipeline stopped unexpectedly"))?
        .context("live hunt")?;
    let s = worker.stats().snapshot();
    let _ = writeln!(
        std::io::stderr(),
        "tracehunt worker: {owner}: {} ({} redelivered), {}, {}, {} published (detections and incident changes; {} repeats not stored again), {} opened, {} acknowledged; busy {:.1} s (first message to last acknowledgement)",
        counted(s.messages, "message", "messages"),
        s.redelivered,
        counted(s.events, "event", "events"),
        counted(summary.detections, "detection", "detections"),
        counted(s.published, "message", "messages"),
        s.duplicates,
        counted(summary.incidents_opened, "incident", "incidents"),
        counted(s.acked, "message", "messages"),
        s.busy_seconds,
    );
    if let Ok(line) = serde_json::to_string(&s) {
        note(a.quiet, &format!("stats {line}"));
    }
    run?;
    Ok(0)
}

/// `0-3,6` for [0, 1, 2, 3, 6].
fn spec_text(p: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let mut j = i;
        while j + 1 < p.len() && p[j + 1] == p[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            p[i].to_string()
        } else {
            format!("{}-{}", p[i], p[j])
        });
        i = j + 1;
    }
    out.join(",")
}
