//! The action log: one [`ActionRecord`] per action taken, skipped or
//! failed, which the caller writes (e.g. as JSON lines).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::trigger::{Indicator, Trigger, TriggerKind};

/// What became of one action on one indicator (or one trigger).
///
/// Serialized in snake case (`dry_run`, `taken`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Dry run: it would have been taken; nothing was written, posted or run.
    DryRun,
    /// Done: the blocklist file was written, the command or cscli exited 0,
    /// the webhook answered 2xx.
    Taken,
    /// A webhook delivery was queued; its result comes later from
    /// [`Responder::completed`](crate::Responder::completed) or
    /// [`Responder::flush`](crate::Responder::flush) as `taken` or `failed`.
    Queued,
    /// The same action on the same indicator (or trigger) was taken within
    /// the policy's `dedupe` period.
    SkippedDuplicate,
    /// The indicator is in the allowlist.
    SkippedAllowlisted,
    /// The indicator is malformed (not an IP, domain or hash); `detail` says why.
    SkippedInvalid,
    /// It was tried and did not succeed (I/O error, non-zero exit, timeout,
    /// webhook retries exhausted); `detail` says why.
    Failed,
    /// A blocklist entry was removed: its TTL passed, or it was evicted
    /// because the entry table was full (`detail` says which).
    Expired,
    /// A webhook delivery was not queued because the queue was full.
    Dropped,
}

/// The trigger an action record comes from: enough to find the detection or
/// incident in the hunt output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRef {
    /// Trigger kind (`None` only in records of entries restored from a state
    /// file written without it).
    pub kind: Option<TriggerKind>,
    /// Sigma rule id.
    pub rule_id: String,
    /// Incident id.
    pub incident_id: String,
    /// Host.
    pub host: String,
    /// Event time of the trigger.
    pub time: Option<DateTime<Utc>>,
}

impl TriggerRef {
    /// The reference of `t`.
    pub fn of(t: &Trigger) -> TriggerRef {
        TriggerRef {
            kind: Some(t.kind),
            rule_id: t.rule_id.clone(),
            incident_id: t.incident_id.clone(),
            host: t.host.clone(),
            time: Some(t.time),
        }
    }
}

/// One line of the action log.
///
/// JSON shape: `{"time": RFC 3339, "response": name, "action":
/// "blocklist"|"crowdsec"|"webhook"|"command", "target": path/URL/program,
/// "indicator": {"kind","value"} or null, "outcome": Outcome, "detail":
/// text, "trigger": TriggerRef}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// When the action was decided or finished (the `now` the caller gave,
    /// or the wall clock for webhook completions).
    pub time: DateTime<Utc>,
    /// Response name.
    pub response: String,
    /// Action type.
    pub action: String,
    /// Blocklist path, cscli path, webhook URL or program.
    pub target: String,
    /// The indicator acted on, if the action acts on one.
    pub indicator: Option<Indicator>,
    /// What became of it.
    pub outcome: Outcome,
    /// Human-readable detail: the file written, the argv run, the exit
    /// status and the start of stderr, the HTTP status and attempts, the
    /// error.
    pub detail: String,
    /// What caused it.
    pub trigger: TriggerRef,
}
