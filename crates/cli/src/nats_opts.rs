//! The NATS flags `publish` and `worker` share, and their tokio runtime.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct NatsOpts {
    /// NATS servers, comma-separated (the client moves to another one when
    /// one goes down).
    #[arg(
        long,
        value_name = "URLS",
        env = "TRACEHUNT_NATS_URLS",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats: String,
    /// File holding the servers' authorization token (default: the
    /// TRACEHUNT_NATS_TOKEN variable, if set).
    #[arg(long, value_name = "FILE")]
    pub nats_token_file: Option<PathBuf>,
    /// Prefix of every stream, subject, consumer and bucket name, to run
    /// several deployments on one cluster (letters, digits, '_', '-').
    #[arg(long, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Partitions of the events stream when this command creates it (the
    /// first `publish` or `worker` does; an existing stream keeps its count,
    /// and `publish` refuses another).
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(tracehunt_jetstream::MAX_PARTITIONS)))]
    pub partition_count: u32,
    /// Replicas of the streams and of the lease bucket when created (3 on a
    /// three-node cluster survives one node down; 1 on a single server).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=5))]
    pub replicas: u16,
}

impl NatsOpts {
    pub fn token(&self) -> Result<Option<String>> {
        let t = match &self.nats_token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading the NATS token file {}", p.display()))?,
            ),
            None => std::env::var("TRACEHUNT_NATS_TOKEN").ok(),
        };
        Ok(t.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
    }

    pub fn names(&self) -> Result<tracehunt_jetstream::Names> {
        tracehunt_jetstream::Names::new(self.namespace.as_deref())
            .map_err(|e| anyhow::anyhow!("--namespace: {e}"))
    }

    pub fn settings(&self) -> tracehunt_jetstream::StreamSettings {
        tracehunt_jetstream::StreamSettings {
            replicas: usize::from(self.replicas),
            partitions: self.partition_count,
            ..Default::default()
        }
    }
}

/// A multi-threaded runtime with `threads` workers (block_in_place needs more than one).
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(2))
        .enable_all()
        .build()
        .context("starting the async runtime")
}
