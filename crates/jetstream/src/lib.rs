//! Scale-out hunting on a NATS JetStream cluster (`tracehunt publish` and
//! `tracehunt worker`).
//!
//! ```text
//! files ─▶ readers ─▶ Publisher ─▶ stream EVENTS, subject events.<partition>.<host>   (replicas 3)
//!                                        │ one durable pull consumer per partition
//!                                        ▼ (a worker holds the partition's lease)
//!          Worker: live pipeline (tracehunt-live Engine: rules, correlations, IOC, incidents,
//!                  attribution) ─▶ DetectionsSink ─▶ stream DETECTIONS, detections.<partition>.<kind>
//!                  ─▶ (store) ─▶ flush ─▶ ack the event message
//! ```
//!
//! The partition of an event is a stable hash of its host ([`partition_of`]),
//! so one host's events are read by one worker, in the order they were
//! published: correlation windows and incidents are computed where all of
//! a host's events are — the state the open peer rsigma leaves
//! unpartitioned. Guarantees, in full in the README ("Scale-out"):
//!
//! - **At least once.** An event message is acknowledged only after every
//!   detection and incident it produced is published and acknowledged by
//!   the DETECTIONS stream (and written to the store when one is given). A
//!   worker that dies leaves its unacknowledged messages to the next owner
//!   of the partition, which resumes from the durable consumer's ack floor.
//! - **Duplicates are detectable.** Each published detection carries a
//!   `Nats-Msg-Id` from its content (`d:<rule id>:<event key>` for a rule
//!   hit, the same identity the store de-duplicates on); the stream drops a
//!   repeat inside its duplicate window and the worker counts it
//!   ([`WorkerStats::duplicates`]); after the window, readers de-duplicate
//!   by the id.
//! - **One owner per partition.** A worker leases each partition in a
//!   key-value bucket (create-if-absent, refreshed at a third of the TTL);
//!   a partition whose owner stopped refreshing is taken by a waiting worker
//!   after the TTL, and a stopped worker releases its leases at once.
//!
//! This crate never prints; the CLI reports [`PublishStats`] and
//! [`WorkerStats`].
//!
//! ```
//! use tracehunt_jetstream::{partition_of, host_token, Names, PartitionSpec};
//! let names = Names::new(None).unwrap();
//! let p = partition_of(Some("WS1.corp"), 16);
//! assert_eq!(names.event_subject(p, &host_token(Some("WS1.corp"))), format!("events.{p}.ws1_corp"));
//! assert_eq!(PartitionSpec::parse("0-3").unwrap().resolve(16).unwrap(), vec![0, 1, 2, 3]);
//! ```

mod cluster;
mod lease;
mod partition;
mod publish;
mod sink;
mod worker;

pub use cluster::{connect, ensure_detections, ensure_events, ClusterError, Names, StreamSettings};
pub use lease::Lease;
pub use partition::{host_token, partition_of, PartitionSpec, MAX_PARTITIONS};
pub use publish::{PublishStats, Publisher, PublisherConfig};
pub use sink::{message_id, DetectionsSink, SinkStats};
pub use worker::{Notify, StatsSnapshot, Worker, WorkerConfig, WorkerStats};

/// Header naming the file (or other source) an event message's events came from.
pub const SOURCE_HEADER: &str = "Tracehunt-Source";
/// Header giving the ordinal (1-based) of a message's first event in its source.
pub const FIRST_HEADER: &str = "Tracehunt-First";

/// The NATS client this crate is built on (for connecting and the JetStream context).
pub use async_nats;
