//! Names of the streams, subjects, consumers and lease bucket of one
//! deployment, the connection, and the streams' creation.

use async_nats::jetstream::{self, stream};
use std::time::Duration;

/// Errors talking to the cluster. Each names what was being done.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Connecting failed (no server answered, bad credentials).
    #[error("connecting to NATS at {urls}: {why}")]
    Connect {
        /// The server URLs tried.
        urls: String,
        /// The client's reason.
        why: String,
    },
    /// A stream, consumer or bucket could not be created or read.
    #[error("{what}: {why}")]
    Setup {
        /// What was being set up.
        what: String,
        /// The server's or client's reason.
        why: String,
    },
    /// A configuration that does not fit the existing stream.
    #[error("{0}")]
    Mismatch(String),
    /// Publishing or acknowledging failed after the retries.
    #[error("{what}: {why}")]
    Io {
        /// What was being done.
        what: String,
        /// The last reason.
        why: String,
    },
}

pub(crate) fn setup(what: impl Into<String>, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Setup {
        what: what.into(),
        why: e.to_string(),
    }
}

/// The names of one deployment. Without a namespace: streams `EVENTS` and
/// `DETECTIONS`, subjects `events.<partition>.<host>` and
/// `detections.<partition>.<kind>`, lease bucket `TRACEHUNT_LEASES`,
/// consumers `tracehunt-p<partition>`. A namespace `ns` prefixes the
/// subjects with `ns.` and the stream, bucket and consumer names with
/// `ns_` (several deployments, or tests, share one cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    ns: Option<String>,
}

impl Names {
    /// Names in namespace `ns` (letters, digits, `_`, `-`; 1 to 32 characters).
    ///
    /// # Errors
    /// Another character or length: the message says what is allowed.
    pub fn new(ns: Option<&str>) -> Result<Self, String> {
        if let Some(n) = ns {
            let ok = (1..=32).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(format!(
                    "namespace {n:?}: use 1 to 32 letters, digits, '_' or '-'"
                ));
            }
        }
        Ok(Names {
            ns: ns.map(str::to_owned),
        })
    }

    fn subject(&self, rest: &str) -> String {
        match &self.ns {
            Some(n) => format!("{n}.{rest}"),
            None => rest.to_owned(),
        }
    }

    fn name(&self, rest: &str) -> String {
        match &self.ns {
            Some(n) => format!("{n}_{rest}"),
            None => rest.to_owned(),
        }
    }

    /// The events stream.
    pub fn events_stream(&self) -> String {
        self.name("EVENTS")
    }
    /// The detections stream.
    pub fn detections_stream(&self) -> String {
        self.name("DETECTIONS")
    }
    /// The subject of an event message: `events.<partition>.<host token>`.
    pub fn event_subject(&self, partition: u32, host_token: &str) -> String {
        self.subject(&format!("events.{partition}.{host_token}"))
    }
    /// The filter of one partition's consumer: `events.<partition>.>`.
    pub fn partition_filter(&self, partition: u32) -> String {
        self.subject(&format!("events.{partition}.>"))
    }
    /// The subject of a detection or incident: `detections.<partition>.<kind>`
    /// (`detection`, `correlation`, `ioc_hit`, `incident`).
    pub fn detection_subject(&self, partition: u32, kind: &str) -> String {
        self.subject(&format!("detections.{partition}.{kind}"))
    }
    /// The durable consumer of a partition.
    pub fn consumer(&self, partition: u32) -> String {
        match &self.ns {
            Some(n) => format!("{n}-p{partition}"),
            None => format!("tracehunt-p{partition}"),
        }
    }
    /// The key-value bucket of the partition leases.
    pub fn lease_bucket(&self) -> String {
        self.name("TRACEHUNT_LEASES")
    }
}

/// How the streams are created (an existing stream is used as it is,
/// except that its partition count must agree).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Replicas of each stream and of the lease bucket (1 to 5; 3 on a
    /// three-node cluster survives one node down).
    pub replicas: usize,
    /// Partitions of the events stream (kept in the stream's metadata,
    /// `tracehunt.partitions`).
    pub partitions: u32,
    /// How long events are kept (0: for ever).
    pub max_age: Duration,
    /// The detections stream's duplicate window: a detection published
    /// again within it (a redelivered batch) is dropped and counted.
    pub duplicate_window: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            replicas: 3,
            partitions: 16,
            max_age: Duration::from_secs(7 * 86_400),
            duplicate_window: Duration::from_secs(30 * 60),
        }
    }
}

const PARTITIONS_KEY: &str = "tracehunt.partitions";

/// Connects to the cluster. `urls` is a comma-separated list of servers
/// (`nats://127.0.0.1:4222,nats://127.0.0.1:4223`); the client moves to
/// another server when one goes down. `token`: the servers' authorization
/// token, if they require one; a `user:password@` in a URL works too.
/// `notify` receives connection events (disconnected, connected again).
///
/// # Errors
/// No server could be reached within 10 s, or it refused the credentials.
pub async fn connect(
    urls: &str,
    token: Option<String>,
    name: &str,
    notify: Option<crate::Notify>,
) -> Result<async_nats::Client, ClusterError> {
    let list: Vec<async_nats::ServerAddr> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| ClusterError::Connect {
            urls: urls.to_owned(),
            why: format!("not a NATS URL: {e}"),
        })?;
    if list.is_empty() {
        return Err(ClusterError::Connect {
            urls: urls.to_owned(),
            why: "no URL given".into(),
        });
    }
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(10))
        .request_timeout(Some(Duration::from_secs(10)));
    let has_token = token.is_some();
    if let Some(t) = token {
        opts = opts.token(t);
    }
    if let Some(n) = notify {
        // Disconnections and reconnections (a node stopped) are noted; the
        // client reconnects by itself.
        opts = opts.event_callback(move |e| {
            let n = n.clone();
            async move { n(format!("NATS connection: {e}")) }
        });
    }
    opts.connect(list).await.map_err(|e| {
        let mut why = e.to_string();
        if why.contains("authorization") && !has_token {
            why.push_str(
                " (the servers want a token: --nats-token-file FILE or TRACEHUNT_NATS_TOKEN)",
            );
        } else if why.contains("authorization") {
            why.push_str(" (the token given was refused)");
        }
        ClusterError::Connect {
            urls: urls.to_owned(),
            why,
        }
    })
}

/// Creates the events stream if it is missing and returns its partition
/// count (from its metadata; `settings.partitions` for a new stream).
/// With `require`, an existing stream's count must equal
/// `settings.partitions`.
///
/// # Errors
/// The stream cannot be created (fewer servers than replicas, no
/// JetStream), or its partition count differs.
pub async fn ensure_events(
    js: &jetstream::Context,
    names: &Names,
    settings: &StreamSettings,
    require: bool,
) -> Result<u32, ClusterError> {
    let name = names.events_stream();
    let cfg = stream::Config {
        name: name.clone(),
        subjects: vec![names.subject("events.>")],
        num_replicas: settings.replicas,
        max_age: settings.max_age,
        duplicate_window: Duration::from_secs(120),
        metadata: [(PARTITIONS_KEY.to_owned(), settings.partitions.to_string())].into(),
        ..Default::default()
    };
    let mut s = get_or_create(js, cfg)
        .await
        .map_err(|e| setup(format!("creating the stream {name}"), e))?;
    let info = s
        .info()
        .await
        .map_err(|e| setup(format!("reading the stream {name}"), e))?;
    let n = info
        .config
        .metadata
        .get(PARTITIONS_KEY)
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| (1..=crate::MAX_PARTITIONS).contains(&n))
        .ok_or_else(|| {
            ClusterError::Mismatch(format!(
                "the stream {name} exists but was not made by tracehunt (no {PARTITIONS_KEY} metadata)"
            ))
        })?;
    if require && n != settings.partitions {
        return Err(ClusterError::Mismatch(format!(
            "the stream {name} has {n} partitions, not {}; publish with --partition-count {n} (or delete the stream)",
            settings.partitions
        )));
    }
    Ok(n)
}

/// Creates the detections stream if it is missing.
///
/// # Errors
/// As for [`ensure_events`].
pub async fn ensure_detections(
    js: &jetstream::Context,
    names: &Names,
    settings: &StreamSettings,
) -> Result<jetstream::stream::Stream, ClusterError> {
    let name = names.detections_stream();
    let cfg = stream::Config {
        name: name.clone(),
        subjects: vec![names.subject("detections.>")],
        num_replicas: settings.replicas,
        max_age: settings.max_age,
        duplicate_window: settings.duplicate_window,
        ..Default::default()
    };
    get_or_create(js, cfg)
        .await
        .map_err(|e| setup(format!("creating the stream {name}"), e))
}

/// Attempts at creating or looking up a stream before its error is given.
const CREATE_ATTEMPTS: u32 = 5;

/// `get_or_create_stream`, tried again (after 0.25, 0.5, 1 and 2 s) when the
/// request timed out: while a replicated stream is being created by
/// another process or a meta leader is being elected, JetStream can leave
/// a request unanswered (CI: two workers starting together, "creating the
/// stream …_DETECTIONS: jetstream request timed out"). Other errors are
/// given at once.
async fn get_or_create(
    js: &jetstream::Context,
    cfg: stream::Config,
) -> Result<jetstream::stream::Stream, jetstream::context::CreateStreamError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match js.get_or_create_stream(cfg.clone()).await {
            Err(e)
                if attempt < CREATE_ATTEMPTS
                    && matches!(
                        e.kind(),
                        jetstream::context::CreateStreamErrorKind::TimedOut
                    ) =>
            {
                tokio::time::sleep(Duration::from_millis(250 << (attempt - 1))).await;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_a_namespace() {
        let n = Names::new(None).unwrap();
        assert_eq!(n.events_stream(), "EVENTS");
        assert_eq!(n.partition_filter(3), "events.3.>");
        assert_eq!(n.detection_subject(3, "incident"), "detections.3.incident");
        assert_eq!(n.consumer(3), "tracehunt-p3");
        let n = Names::new(Some("t1")).unwrap();
        assert_eq!(n.events_stream(), "t1_EVENTS");
        assert_eq!(n.event_subject(0, "ws1"), "t1.events.0.ws1");
        assert_eq!(n.lease_bucket(), "t1_TRACEHUNT_LEASES");
        assert!(Names::new(Some("a.b")).is_err());
        assert!(Names::new(Some("")).is_err());
    }
}
