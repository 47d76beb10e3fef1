//! `tracehunt publish`: read log files with the hunt's readers and publish
//! their events to the JetStream events stream, partitioned by host.

use crate::nats_opts::{runtime, NatsOpts};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;
use tracehunt_event::Event;
use tracehunt_jetstream::{async_nats, connect, PublishStats, Publisher, PublisherConfig};
use tracehunt_report::counted;

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Log files or directories, read as `hunt` reads them (every format it
    /// recognises: EVTX, JSON, auditd, syslog, Zeek, web server logs).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub nats: NatsOpts,
    /// Most events per message (messages also stay under the server's
    /// max_payload).
    #[arg(long, value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_events: u32,
    /// No progress notes, only errors and the summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Events in flight from the reading thread to the publisher.
type Chunk = (std::sync::Arc<str>, Vec<(u64, Event)>);

/// What the reading thread saw.
#[derive(Default)]
struct ReadCounts {
    files: u64,
    unreadable: u64,
    record_errors: u64,
    records_lost: u64,
}

fn read_files(
    paths: Vec<PathBuf>,
    tx: tokio::sync::mpsc::Sender<Chunk>,
    quiet: bool,
) -> ReadCounts {
    let mut c = ReadCounts::default();
    let (files, walk_errors) = tracehunt_readers::walk(&paths);
    for e in &walk_errors {
        eprintln!("tracehunt publish: {e}");
    }
    c.unreadable += walk_errors.len() as u64;
    for path in files {
        let iter = match tracehunt_readers::open(&path) {
            Ok(i) => i,
            Err(e) => {
                if !quiet {
                    eprintln!("tracehunt publish: skipped: {e}");
                }
                c.unreadable += 1;
                continue;
            }
        };
        c.files += 1;
        let source: std::sync::Arc<str> = std::sync::Arc::from(path.display().to_string());
        let mut chunk = Vec::with_capacity(256);
        let mut ordinal = 0u64;
        for r in iter {
            match r {
                Ok(ev) => {
                    ordinal += 1;
                    chunk.push((ordinal, ev));
                    if chunk.len() == 256 {
                        let full = std::mem::replace(&mut chunk, Vec::with_capacity(256));
                        if tx.blocking_send((source.clone(), full)).is_err() {
                            return c;
                        }
                    }
                }
                Err(e) => {
                    if c.record_errors < 20 && !quiet {
                        eprintln!("tracehunt publish: skipped: {e}");
                    }
                    c.record_errors += 1;
                    c.records_lost += e.records;
                }
            }
        }
        if !chunk.is_empty() && tx.blocking_send((source, chunk)).is_err() {
            return c;
        }
    }
    c
}

pub fn run(a: PublishArgs) -> Result<u8> {
    let names = a.nats.names()?;
    let token = a.nats.token()?;
    let rt = runtime(2)?;
    let started = Instant::now();
    let (stats, counts) = rt.block_on(async {
        let client = connect(&a.nats.nats, token, "tracehunt-publish", None).await?;
        let js = async_nats::jetstream::new(client.clone());
        let cfg = PublisherConfig {
            names,
            settings: a.nats.settings(),
            max_events: a.batch_events as usize,
            ..Default::default()
        };
        let mut publisher = Publisher::new(&client, js, cfg).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(8);
        let (paths, quiet) = (a.paths.clone(), a.quiet);
        let reader = std::thread::spawn(move || read_files(paths, tx, quiet));
        while let Some((source, events)) = rx.recv().await {
            for (n, ev) in &events {
                publisher.push(&source, *n, ev).await?;
            }
        }
        let counts = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reading thread stopped unexpectedly"))?;
        let stats = publisher.finish().await?;
        client
            .flush()
            .await
            .context("flushing the NATS connection")?;
        anyhow::Ok((stats, counts))
    })?;
    report(&a, &stats, &counts, started.elapsed().as_secs_f64());
    if counts.files == 0 {
        bail!("no file could be read");
    }
    Ok(0)
}

fn report(a: &PublishArgs, s: &PublishStats, c: &ReadCounts, secs: f64) {
    let mut err = std::io::stderr().lock();
    let rate = if secs > 0.0 {
        s.events as f64 / secs
    } else {
        0.0
    };
    let _ = writeln!(
        err,
        "tracehunt publish: {} from {} in {} ({}) to {} partitions of {} in {secs:.1} s ({rate:.0} events/s)",
        counted(s.events, "event", "events"),
        counted(c.files, "file", "files"),
        counted(s.messages, "message", "messages"),
        size(s.bytes),
        s.partitions,
        a.nats.names().map(|n| n.events_stream()).unwrap_or_default(),
    );
    if s.events > 0 && !a.quiet {
        let load: Vec<String> = s
            .per_partition
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(p, &n)| format!("{p}:{n}"))
            .collect();
        let _ = writeln!(
            err,
            "tracehunt publish: events per partition (partition:events): {}",
            load.join(" ")
        );
    }
    if s.duplicates > 0 {
        let _ = writeln!(
            err,
            "tracehunt publish: {} already in the stream (published within its 2-minute duplicate window), not stored again",
            counted(s.duplicates, "message was", "messages were")
        );
    }
    if s.too_large > 0 {
        let (src, n) = s.first_too_large.clone().unwrap_or_default();
        let _ = writeln!(
            err,
            "tracehunt publish: skipped {} larger than a message (first: event {n} of {src})",
            counted(s.too_large, "event", "events")
        );
    }
    if c.record_errors > 0 || c.unreadable > 0 {
        let _ = writeln!(
            err,
            "tracehunt publish: skipped {} and {} ({} lost)",
            counted(
                c.unreadable,
                "path that is not a log or could not be read",
                "paths that are not logs or could not be read"
            ),
            counted(c.record_errors, "damaged record", "damaged records"),
            counted(c.records_lost, "record", "records")
        );
    }
}

/// Bytes as `830 KB` or `569 MB`.
fn size(b: u64) -> String {
    if b < 1_000_000 {
        format!("{} KB", b.div_ceil(1000))
    } else {
        format!("{} MB", b / 1_000_000)
    }
}
