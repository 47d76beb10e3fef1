//! The embedded store of hunts, incidents and actor sightings (SQLite, one file).
//!
//! A [`Store`] keeps, across hunts:
//!
//! - **hunts** (`hunt_runs`): when, with which tool/ruleset/ATT&CK version and parameters, and
//!   their counters;
//! - **coverage** (`sources`): per hunt, which source (by content hash) was read and the period
//!   its events span, so what was *not* looked at is known too;
//! - **rules** and **detections**: one row per (rule, event identity) ever seen — a rerun over
//!   the same logs adds nothing;
//! - **incidents** with their entities and ranked attribution candidates;
//! - **sightings** of ATT&CK groups per incident (first/last seen only ever widen), which
//!   [`Store::actors`] and [`Store::actor`] aggregate into actor histories; an analyst can mark
//!   an incident false positive ([`Store::set_false_positive`]) and its sightings then count
//!   apart;
//! - **IOC hits** and their indicators;
//! - stable STIX ids for incidents, sightings and indicators, so [`Store::export_stix`] gives a
//!   STIX 2.1 bundle whose ids and timestamps come from the store (byte-identical exports).
//!
//! Writing is one transaction per hunt ([`Store::begin_hunt`] → [`HuntWriter`] →
//! [`HuntWriter::commit`]); dropping the writer rolls the whole hunt back. The schema is
//! versioned ([`SCHEMA_VERSION`]); [`Store::open`] migrates older files and refuses newer ones
//! ([`StoreError::TooNew`]).
//!
//! Times are stored as RFC 3339 UTC text with microsecond precision (finer digits are
//! truncated), years 0000–9999.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use tracehunt_store::*;
//!
//! let t = |h| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
//! let mut store = Store::open_in_memory()?;
//! let mut hunt = store.begin_hunt(&HuntRun {
//!     started_at: t(12),
//!     tool_version: "0.1.0".into(),
//!     ruleset_hash: "ab12".into(),
//!     attack_version: "18.1".into(),
//!     parameters: serde_json::json!({"min_level": "low"}),
//! })?;
//! let new = hunt.add_detection(&DetectionRec {
//!     rule_id: "5d1a-…",
//!     event_key: [7; 16],
//!     time: Some(t(1)),
//!     host: Some("WS1"),
//!     source: "Security.evtx",
//!     level: "high",
//!     incident_id: Some("inc-1"),
//! })?;
//! assert!(new);
//! hunt.add_incident(&IncidentRec {
//!     id: "inc-1".into(),
//!     first_seen: Some(t(1)),
//!     last_seen: Some(t(2)),
//!     hosts: vec!["WS1".into()],
//!     detections: 1,
//!     max_level: "high".into(),
//!     verdict: "attributed".into(),
//!     confident: true,
//!     sightings: vec![SightingRec {
//!         group_id: "G0009".into(),
//!         group_name: "Deep Panda".into(),
//!         state: Some("China".into()),
//!         rank: 1,
//!         confidence: 70,
//!     }],
//!     ..IncidentRec::default()
//! })?;
//! let stats = hunt.commit(t(13), 1000)?;
//! assert_eq!((stats.detections_new, stats.incidents_new, stats.sightings_new), (1, 1, 1));
//!
//! let actors = store.actors(1, 0)?;
//! assert_eq!(actors[0].group_id, "G0009");
//! assert_eq!(actors[0].incidents, 1);
//! assert_eq!(store.incidents(None)?[0].id, "inc-1");
//! # Ok::<(), StoreError>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

mod read;
mod records;
mod stats;
mod stix;
mod writer;

pub use read::{
    ActorHistory, ActorRow, ActorSighting, HuntRow, IncidentDetail, IncidentRow, RuleCount,
    SourceRow, TopCandidate,
};
pub use records::{
    CandidateRec, DetectionRec, HuntRun, HuntStats, IncidentRec, IocHitRec, RuleRec, SightingRec,
    SourceRec,
};
pub use stats::{DayCount, DetectionStats, HostCount, LevelCount, RuleTotal, SevereDetection};
pub use writer::HuntWriter;

/// The migrations, in order: `MIGRATIONS[v]` takes a store from version `v` to `v + 1`.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_false_positive",
        include_str!("../migrations/0002_false_positive.sql"),
    ),
];

/// The newest schema version this build knows (the number of migrations): 2.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// What went wrong, always naming the store's path (`:memory:` for an in-memory store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An SQLite call failed: `what` says which step (e.g. `"insert detection"`,
    /// `"migration 0002_false_positive"`).
    #[error("store {}: {what}", path.display())]
    Sqlite {
        /// The store file.
        path: PathBuf,
        /// The step that failed.
        what: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file's schema is newer than this build supports; it is not touched.
    #[error(
        "store {}: schema version {found} is newer than this build supports ({supported}); \
         use a newer tracehunt",
        path.display()
    )]
    TooNew {
        /// The store file.
        path: PathBuf,
        /// Version recorded in the file.
        found: u32,
        /// [`SCHEMA_VERSION`] (or the version asked for).
        supported: u32,
    },
    /// The file is an SQLite database with tables but no `schema_version`: not a store.
    #[error("store {}: not a tracehunt store (tables but no schema_version)", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
    },
    /// A stored value could not be decoded (bad time or JSON text).
    #[error("store {}: {what}: cannot decode stored value {value:?}", path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// Which column.
        what: String,
        /// The stored text (truncated to 200 characters).
        value: String,
    },
}

/// How long a writer waits for another writer's hunt to commit (seconds).
/// A hunt writes its store in one transaction, which takes about 10 s per
/// million detections; a second hunt into the same store waits that long.
pub const BUSY_TIMEOUT_SECS: u64 = 120;

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open store: one SQLite connection (not `Sync`; open one `Store` per thread).
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if missing) the store file at `path` and migrates it to
    /// [`SCHEMA_VERSION`].
    ///
    /// Sets `journal_mode=WAL`, `foreign_keys=ON`, `busy_timeout` [`BUSY_TIMEOUT_SECS`] and `synchronous=NORMAL`
    /// (durable across application crashes; a power loss may lose the last committed hunts,
    /// never corrupt the file), a 64 MiB page cache, and 16 KiB pages for a new file. Each missing migration runs in its own `BEGIN IMMEDIATE`
    /// transaction, so concurrent openers migrate once.
    ///
    /// Errors: [`StoreError::Sqlite`] (cannot open/create, locked past the timeout, …),
    /// [`StoreError::TooNew`] when the file's version is above [`SCHEMA_VERSION`],
    /// [`StoreError::NotAStore`] for another application's database.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_to(path, SCHEMA_VERSION)
    }

    /// Like [`Store::open`] but migrates only up to `version` (tests of the migrations: create a
    /// version-1 store). A file newer than `version` is [`StoreError::TooNew`]. Only the
    /// statements that exist at that version may work on the result.
    #[doc(hidden)]
    pub fn open_at_version(path: &Path, version: u32) -> Result<Store> {
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Self::open_to(path, version)
    }

    /// A fresh store in memory (tests, dry runs), at [`SCHEMA_VERSION`]. Errors as
    /// [`Store::open`].
    pub fn open_in_memory() -> Result<Store> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(sql(&path, "open"))?;
        Self::setup(conn, path, SCHEMA_VERSION)
    }

    fn open_to(path: &Path, version: u32) -> Result<Store> {
        let conn = Connection::open(path).map_err(sql(path, "open"))?;
        Self::setup(conn, path.to_owned(), version)
    }

    fn setup(mut conn: Connection, path: PathBuf, version: u32) -> Result<Store> {
        conn.busy_timeout(Duration::from_secs(BUSY_TIMEOUT_SECS))
            .map_err(sql(&path, "set busy_timeout"))?;
        // Only takes effect on a new (empty) file; must precede WAL.
        conn.execute_batch("PRAGMA page_size=16384;")
            .map_err(sql(&path, "set page_size"))?;
        // Returns the new mode: "wal", or "memory" for an in-memory database.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql(&path, "set journal_mode=WAL"))?;
        // 64 MiB page cache (allocated as used): a hunt's random inserts into the detections
        // indexes stay in memory instead of spilling pages to the WAL repeatedly.
        conn.execute_batch(
            "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;",
        )
        .map_err(sql(&path, "set foreign_keys/synchronous/cache_size"))?;
        migrate(&mut conn, &path, version)?;
        Ok(Store { conn, path })
    }

    /// The schema version of the open store (== [`SCHEMA_VERSION`] after [`Store::open`]).
    /// Errors: [`StoreError::Sqlite`].
    pub fn schema_version(&self) -> Result<u32> {
        stored_version(&self.conn, &self.path)
    }

    /// The path the store was opened from (`:memory:` for [`Store::open_in_memory`]).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Version recorded in the file: 0 for an empty database.
fn stored_version(conn: &Connection, path: &Path) -> Result<u32> {
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .map_err(sql(path, "read schema_version"))?;
    if !has_table {
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .map_err(sql(path, "read schema"))?;
        return if tables == 0 {
            Ok(0)
        } else {
            Err(StoreError::NotAStore {
                path: path.to_owned(),
            })
        };
    }
    conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(sql(path, "read schema_version"))?
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_owned(),
            what: "schema_version".into(),
            value: "(no row)".into(),
        })
}

/// Applies `MIGRATIONS[found..target]`, each in its own immediate transaction that re-reads
/// the version (another process may have migrated meanwhile).
fn migrate(conn: &mut Connection, path: &Path, target: u32) -> Result<()> {
    // Up to date: no write lock taken, so opening a store while a hunt
    // writes to it (WAL: readers never wait for the writer) does not block.
    if stored_version(conn, path)? == target {
        return Ok(());
    }
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, "begin migration"))?;
        let found = stored_version(&tx, path)?;
        if found > target {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found,
                supported: target,
            });
        }
        if found == target {
            return Ok(());
        }
        let (name, script) = MIGRATIONS[found as usize];
        let what = || format!("migration {name}");
        tx.execute_batch(script)
            .map_err(|e| sql_err(path, what(), e))?;
        let now = ts(Utc::now());
        if found == 0 {
            tx.execute_batch(
                "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL);",
            )
            .map_err(|e| sql_err(path, what(), e))?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
                (found + 1, &now),
            )
        } else {
            tx.execute(
                "UPDATE schema_version SET version = ?1, applied_at = ?2",
                (found + 1, &now),
            )
        }
        .map_err(|e| sql_err(path, what(), e))?;
        tx.commit().map_err(|e| sql_err(path, what(), e))?;
    }
}

/// `map_err` helper: an SQLite error at step `what` of the store at `path`.
pub(crate) fn sql<'a>(
    path: &'a Path,
    what: &'a str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| sql_err(path, what.to_owned(), source)
}

pub(crate) fn sql_err(path: &Path, what: String, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        what,
        source,
    }
}

/// The stored shape of a time: `2024-03-01T12:00:00.000000Z` (always 27 characters for years
/// 0000–9999, so text order is time order).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a stored time.
pub(crate) fn parse_ts(path: &Path, what: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| corrupt(path, what, s))
}

pub(crate) fn corrupt(path: &Path, what: &str, value: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        what: what.to_owned(),
        value: value.chars().take(200).collect(),
    }
}
