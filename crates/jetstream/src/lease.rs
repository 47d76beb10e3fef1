//! One worker per partition: leases in a JetStream key-value bucket whose
//! entries expire after the lease TTL (the bucket's `max_age`).
//!
//! Taking a lease is a create-if-absent of key `p<partition>` with the
//! worker's name; keeping it is a compare-and-set update at a third of the
//! TTL; releasing it deletes the key. A worker restarted under the same
//! name takes its own lease back at once; another worker waits until the
//! owner releases it or stops refreshing it for a TTL. A name is held by one
//! running process at a time (a presence key, [`Lease::claim_name`]).

use crate::cluster::{setup, ClusterError, Names};
use async_nats::jetstream::{self, kv};
use std::time::Duration;

/// What [`Lease::try_take`] names as the owner of a lease released or
/// expired between its two reads (try again).
pub(crate) const RELEASED: &str = "(released)";

/// A lease bucket.
#[derive(Clone)]
pub struct Lease {
    kv: kv::Store,
    owner: String,
    ttl: Duration,
    /// This process's presence value (the owner name can only be used by
    /// one running process: [`Lease::claim_name`]).
    instance: String,
}

impl Lease {
    /// Opens (creating when missing) the lease bucket with entries that
    /// expire after `ttl` (an existing bucket keeps its own TTL, returned by
    /// [`Lease::ttl`]). `owner` names this worker; names must be unique
    /// among running workers.
    ///
    /// # Errors
    /// The bucket cannot be created or read.
    pub async fn open(
        js: &jetstream::Context,
        names: &Names,
        owner: &str,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self, ClusterError> {
        let bucket = names.lease_bucket();
        let kv = match js.get_key_value(&bucket).await {
            Ok(kv) => kv,
            Err(_) => match js
                .create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    history: 1,
                    max_age: ttl,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
            {
                Ok(kv) => kv,
                // Another worker created it in between.
                Err(e) => js
                    .get_key_value(&bucket)
                    .await
                    .map_err(|_| setup(format!("creating the lease bucket {bucket}"), e))?,
            },
        };
        let mut s = kv.stream.clone();
        let ttl = match s.info().await {
            Ok(i) if !i.config.max_age.is_zero() => i.config.max_age,
            _ => ttl,
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Lease {
            kv,
            owner: owner.to_owned(),
            ttl,
            instance: format!("{owner}#{}#{nanos}", std::process::id()),
        })
    }

    /// The presence key of the owner name: `w-` + 16 hex digits of its SHA-256.
    fn name_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(self.owner.as_bytes());
        format!("w-{}", crate::sink::hex(&d[..8]))
    }

    /// Claims the owner name for this process, so that two running workers
    /// never share a name (they would both hold its leases). A presence
    /// left by a dead process under the same name is taken after checking
    /// that nobody refreshes it for a third of the TTL (plus 1.5 s); a live
    /// one is an error. Returns the presence revision ([`Lease::keep_name`]).
    ///
    /// # Errors
    /// Another running worker has this name ([`ClusterError::Mismatch`]), or
    /// the bucket cannot be reached.
    pub async fn claim_name(&self) -> Result<u64, ClusterError> {
        let key = self.name_key();
        let busy = || {
            ClusterError::Mismatch(format!(
                "a worker named {:?} is running (it keeps its presence in the lease bucket); worker names must be unique: give another --name",
                self.owner
            ))
        };
        match self.kv.create(&key, self.instance.clone().into()).await {
            Ok(rev) => return Ok(rev),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(io("claiming the worker name".into(), e)),
        }
        let read = || async {
            self.kv
                .entry(&key)
                .await
                .map_err(|e| io("reading the worker name".into(), e))
        };
        let first = read().await?.filter(|e| e.operation == kv::Operation::Put);
        if let Some(e) = &first {
            tokio::time::sleep(self.ttl / 3 + Duration::from_millis(1500)).await;
            let now = read().await?.filter(|e| e.operation == kv::Operation::Put);
            match now {
                Some(n) if n.revision != e.revision => return Err(busy()),
                Some(n) => {
                    return self
                        .kv
                        .update(&key, self.instance.clone().into(), n.revision)
                        .await
                        .map_err(|_| busy())
                }
                None => {}
            }
        }
        self.kv
            .create(&key, self.instance.clone().into())
            .await
            .map_err(|_| busy())
    }

    /// Refreshes this process's presence (every third of the TTL): the new
    /// revision.
    ///
    /// # Errors
    /// [`ClusterError::Mismatch`] when another process took the name (this
    /// one must stop), or the bucket could not be reached (transient).
    pub async fn keep_name(&self, rev: u64) -> Result<u64, ClusterError> {
        match self
            .kv
            .update(self.name_key(), self.instance.clone().into(), rev)
            .await
        {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(ClusterError::Mismatch(format!(
                    "another worker took the name {:?}; this one stops",
                    self.owner
                )))
            }
            Err(e) => Err(io("refreshing the worker name".into(), e)),
        }
    }

    /// Gives the name up (a clean stop).
    ///
    /// # Errors
    /// The bucket could not be reached; the presence then expires by itself.
    pub async fn release_name(&self, rev: u64) -> Result<(), ClusterError> {
        self.kv
            .delete_expect_revision(self.name_key(), Some(rev))
            .await
            .map_err(|e| io("releasing the worker name".into(), e))
    }

    /// The TTL of the bucket's leases.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn key(p: u32) -> String {
        format!("p{p}")
    }

    /// Tries to take partition `p`: the lease's revision when taken (or
    /// already ours), or the current owner's name.
    ///
    /// # Errors
    /// The bucket could not be reached (transient: try again).
    pub async fn try_take(&self, p: u32) -> Result<Result<u64, String>, ClusterError> {
        let key = Self::key(p);
        match self.kv.create(&key, self.owner.clone().into()).await {
            Ok(rev) => return Ok(Ok(rev)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(format!("taking the lease of partition {p}"), e)),
        }
        let entry = self
            .kv
            .entry(&key)
            .await
            .map_err(|e| io(format!("reading the lease of partition {p}"), e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                if e.value == self.owner.as_bytes() {
                    match self
                        .kv
                        .update(&key, self.owner.clone().into(), e.revision)
                        .await
                    {
                        Ok(rev) => Ok(Ok(rev)),
                        Err(_) => Ok(Err(self.owner.clone())),
                    }
                } else {
                    Ok(Err(String::from_utf8_lossy(&e.value).into_owned()))
                }
            }
            // Deleted or expired between the two calls: try again soon.
            _ => Ok(Err(RELEASED.to_owned())),
        }
    }

    /// Keeps partition `p` for another TTL: the new revision, or `None`
    /// when the lease is no longer ours (taken over after expiring).
    ///
    /// # Errors
    /// The bucket could not be reached (transient).
    pub async fn refresh(&self, p: u32, rev: u64) -> Result<Option<u64>, ClusterError> {
        match self
            .kv
            .update(Self::key(p), self.owner.clone().into(), rev)
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(io(format!("refreshing the lease of partition {p}"), e)),
        }
    }

    /// Gives partition `p` up (when the lease is still ours).
    ///
    /// # Errors
    /// The bucket could not be reached; the lease then expires by itself.
    pub async fn release(&self, p: u32, rev: u64) -> Result<(), ClusterError> {
        self.kv
            .delete_expect_revision(Self::key(p), Some(rev))
            .await
            .map_err(|e| io(format!("releasing the lease of partition {p}"), e))
    }
}

fn io(what: String, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Io {
        what,
        why: e.to_string(),
    }
}
