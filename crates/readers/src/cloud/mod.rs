//! Cloud and SaaS audit records (issue #21): AWS CloudTrail, Kubernetes
//! audit, Okta System Log, GCP Cloud Audit Logs, GitHub audit log, Azure /
//! Entra sign-in, audit and activity logs (Event Hub / diagnostic-setting
//! JSON and Sentinel table exports), M365 unified audit (Management Activity
//! API and Sentinel `OfficeActivity`), and Microsoft 365 Defender
//! advanced-hunting rows.
//!
//! # Recognition (by marker fields, never by file name)
//!
//! Only objects that no Windows shape claimed reach here (no `EventID`,
//! `winlog`, `System`), and Zeek records (`_path`, `uid`, `id.orig_h`,
//! `id_orig_h`) are refused outright. Markers are checked by presence, not
//! type, so a record whose key field has the wrong type (`"eventTime": 5`)
//! is still read (without a time) rather than lost. In this order:
//!
//! | format | markers | `meta.channel` |
//! |---|---|---|
//! | CloudTrail | `eventSource` + `eventName` + one of `eventVersion`, `awsRegion`, `recipientAccountId`, `userIdentity` | `aws:cloudtrail` |
//! | Kubernetes audit | `auditID` + `verb` + (`objectRef` or `requestURI`), with or without `kind`/`apiVersion` | `kubernetes:audit` |
//! | Okta System Log | `eventType` + `actor` + (`uuid` or `published`) | `okta:okta` |
//! | GCP Cloud Audit | `protoPayload.@type` ending in `.AuditLog`, or `logName` containing `cloudaudit.googleapis.com` | `gcp:audit` |
//! | M365 unified audit | `Operation` + `RecordType` + (`Workload` or, Sentinel, `OfficeWorkload`) | `m365:audit` |
//! | Azure / Entra | an operation (`operationName`, `OperationName`, `OperationNameValue`) + a category or table (`category`, `Category`, `CategoryValue`, `Type`); see [`azure`] | `azure:signinlogs`, `azure:auditlogs`, `azure:activitylogs`, `azure:riskdetection`, `azure:resourcelogs` |
//! | M365 Defender hunting rows | `ActionType` + `Timestamp` + (`DeviceName`, `ReportId` or `Application`) | `m365:defender` |
//! | GitHub audit log | `action` + `actor` + (`@timestamp` or `created_at`) | `github:audit` |
//!
//! An envelope (`{"Records": [...]}` as CloudTrail writes to S3, or Azure's
//! `{"records": [...]}`) is not a record: the JSON readers give one event
//! per element ([`envelope`]).
//!
//! # Fields
//!
//! Every key by its full dotted path (`userIdentity.type`,
//! `requestParameters.bucketName`, `objectRef.resource`,
//! `protoPayload.methodName`), arrays as repeated fields under the array's
//! path (objects in arrays flattened under it: `Parameters.Name`,
//! `Parameters.Value`), scalars typed, `null` as `Value::Null`; text kept
//! as written (`075.050.255.67`). Sentinel exports store nested columns as
//! JSON text (`InitiatedBy`, `TargetResources`, `Folders`, `Parameters`):
//! the text is kept, and when it parses as a JSON object or array it is
//! also flattened under the column's name (`TargetResources.displayName`).
//! Caps: [`flatten::MAX_DEPTH`], [`MAX_FIELDS`](crate::caps::MAX_FIELDS), [`MAX_NAME_BYTES`](crate::caps::MAX_NAME_BYTES) (dropped fields
//! counted in `tracehunt.dropped_fields`).
//!
//! # Meta
//!
//! `meta.timestamp` from the format's own time field; `meta.computer` is
//! what an analyst groups one intrusion by (see [`meta_for`]);
//! `meta.provider` the emitting service where the format names one;
//! `meta.event_id` and `meta.record_id` stay `None` (the file readers set
//! the record ordinal).

mod azure;
mod flatten;

pub use flatten::DROPPED_FIELD;

use crate::shape::parse_time;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as J};
use tracehunt_event::Event;

/// The cloud formats, each with its route key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    CloudTrail,
    K8s,
    Okta,
    Gcp,
    M365 { sentinel: bool },
    Azure(azure::Table),
    Defender,
    GitHub,
}

impl Kind {
    pub(crate) fn channel(self) -> &'static str {
        match self {
            Kind::CloudTrail => "aws:cloudtrail",
            Kind::K8s => "kubernetes:audit",
            Kind::Okta => "okta:okta",
            Kind::Gcp => "gcp:audit",
            Kind::M365 { .. } => "m365:audit",
            Kind::Azure(t) => t.channel(),
            Kind::Defender => "m365:defender",
            Kind::GitHub => "github:audit",
        }
    }

    /// Sentinel exports: nested columns are JSON text.
    fn sentinel(self, obj: &Map<String, J>) -> bool {
        match self {
            Kind::M365 { sentinel } => sentinel,
            Kind::Azure(_) => obj.contains_key("TimeGenerated") || obj.contains_key("TenantId"),
            _ => false,
        }
    }
}

/// A cloud audit record, or `None` when the object is in no known cloud shape.
pub(crate) fn event_from_json(obj: &Map<String, J>) -> Option<Event> {
    let kind = classify(obj)?;
    Some(build(obj, kind))
}

fn has(obj: &Map<String, J>, k: &str) -> bool {
    obj.contains_key(k)
}

fn text<'a>(obj: &'a Map<String, J>, k: &str) -> Option<&'a str> {
    obj.get(k).and_then(J::as_str)
}

/// Which cloud format `obj` is in (see the module table), or `None`.
pub(crate) fn classify(obj: &Map<String, J>) -> Option<Kind> {
    // Zeek (its reader runs first; never claim its records here).
    if ["_path", "uid", "id.orig_h", "id_orig_h"]
        .iter()
        .any(|k| has(obj, k))
    {
        return None;
    }
    if has(obj, "eventSource")
        && has(obj, "eventName")
        && [
            "eventVersion",
            "awsRegion",
            "recipientAccountId",
            "userIdentity",
        ]
        .iter()
        .any(|k| has(obj, k))
    {
        return Some(Kind::CloudTrail);
    }
    if has(obj, "auditID") && has(obj, "verb") && (has(obj, "objectRef") || has(obj, "requestURI"))
    {
        return Some(Kind::K8s);
    }
    if has(obj, "eventType") && has(obj, "actor") && (has(obj, "uuid") || has(obj, "published")) {
        return Some(Kind::Okta);
    }
    let audit_type = obj
        .get("protoPayload")
        .and_then(|p| p.get("@type"))
        .and_then(J::as_str)
        .is_some_and(|t| t.ends_with(".AuditLog"));
    if audit_type || text(obj, "logName").is_some_and(|l| l.contains("cloudaudit.googleapis.com")) {
        return Some(Kind::Gcp);
    }
    if has(obj, "Operation") && has(obj, "RecordType") {
        if has(obj, "Workload") {
            return Some(Kind::M365 { sentinel: false });
        }
        if has(obj, "OfficeWorkload") {
            return Some(Kind::M365 { sentinel: true });
        }
    }
    if let Some(t) = azure::table(obj) {
        return Some(Kind::Azure(t));
    }
    if has(obj, "ActionType")
        && has(obj, "Timestamp")
        && ["DeviceName", "ReportId", "Application"]
            .iter()
            .any(|k| has(obj, k))
    {
        return Some(Kind::Defender);
    }
    if has(obj, "action") && has(obj, "actor") && (has(obj, "@timestamp") || has(obj, "created_at"))
    {
        return Some(Kind::GitHub);
    }
    None
}

/// The records of an envelope: an object whose `Records` (CloudTrail's S3
/// files) or `records` (Azure diagnostic exports) is an array, and which
/// is not itself a record of a known shape. `None` for anything else.
pub(crate) fn envelope(v: &mut J) -> Option<Vec<J>> {
    let obj = v.as_object_mut()?;
    let key = ["Records", "records"]
        .into_iter()
        .find(|k| obj.get(*k).is_some_and(J::is_array))?;
    if classify(obj).is_some() {
        return None;
    }
    match obj.remove(key) {
        Some(J::Array(a)) => Some(a),
        _ => None,
    }
}

fn build(obj: &Map<String, J>, kind: Kind) -> Event {
    let mut ev = Event::default();
    let mut f = flatten::Flattener::new(&mut ev);
    if kind.sentinel(obj) {
        for (k, v) in obj {
            f.value(k, v, 0);
            if let Some(nested) = json_text(v) {
                f.value(k, &nested, 0);
            }
        }
    } else {
        f.object(obj);
    }
    f.finish();
    let (timestamp, computer, provider) = meta_for(obj, kind);
    ev.meta.timestamp = timestamp;
    ev.meta.computer = computer;
    ev.meta.provider = provider;
    ev.meta.channel = Some(kind.channel().to_owned());
    ev
}

/// A Sentinel column holding JSON text of an object or array (at most
/// 1 MiB), parsed; `None` for any other value.
fn json_text(v: &J) -> Option<J> {
    let s = v.as_str()?.trim();
    if s.len() > 1 << 20 || !(s.starts_with('{') || s.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<J>(s)
        .ok()
        .filter(|n| n.as_object().is_some_and(|m| !m.is_empty()) || n.is_array())
}

/// `obj` at a dotted path of object keys, non-null.
fn at<'a>(obj: &'a Map<String, J>, path: &[&str]) -> Option<&'a J> {
    let (first, rest) = path.split_first()?;
    let mut cur = obj.get(*first)?;
    for p in rest {
        cur = cur.get(*p)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// A non-empty text value at `path` (numbers rendered: account ids are
/// sometimes written as numbers).
fn at_text(obj: &Map<String, J>, path: &[&str]) -> Option<String> {
    match at(obj, path)? {
        J::String(s) if !s.trim().is_empty() => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `paths` that is a time: text parsed as RFC 3339 / naive
/// UTC, a number as epoch milliseconds (GitHub's `created_at`,
/// `@timestamp`) when it is above 10^11, else epoch seconds.
fn time_of(obj: &Map<String, J>, paths: &[&[&str]]) -> Option<DateTime<Utc>> {
    paths.iter().find_map(|p| match at(obj, p)? {
        J::String(s) => parse_time(s),
        J::Number(n) => {
            let x = n.as_f64()?;
            if !x.is_finite() || !(0.0..=1e16).contains(&x) {
                return None;
            }
            let ms = if x > 1e11 { x } else { x * 1000.0 };
            DateTime::from_timestamp_millis(ms as i64)
        }
        _ => None,
    })
}

type Meta = (Option<DateTime<Utc>>, Option<String>, Option<String>);

/// Time, "computer" and provider of a record. The computer is what one
/// intrusion is grouped by in incidents:
///
/// * CloudTrail: the AWS account the call was made in (`recipientAccountId`,
///   else `userIdentity.accountId`); provider `eventSource`.
/// * Kubernetes: audit events do not name their cluster; the API server
///   host of the request is not recorded either, so `None` (all events of
///   a file group together rather than by client IP, which would split one
///   attacker's requests from one kubectl across NAT).
/// * Okta: events do not name the org either; `None`.
/// * GCP: the project (`resource.labels.project_id`, else the `projects/…`
///   of `logName`); provider `protoPayload.serviceName`.
/// * GitHub: the organisation (`org`, else `business`).
/// * Azure / Entra: the tenant (`tenantId`, `TenantId`, `AADTenantId`),
///   else the subscription of `resourceId`; provider `category`.
/// * M365: the tenant's name (`OrganizationName`, else `OrganizationId`);
///   provider `Workload`.
/// * Defender rows: the device (`DeviceName`), else the tenant.
fn meta_for(obj: &Map<String, J>, kind: Kind) -> Meta {
    match kind {
        Kind::CloudTrail => (
            time_of(obj, &[&["eventTime"]]),
            at_text(obj, &["recipientAccountId"])
                .or_else(|| at_text(obj, &["userIdentity", "accountId"])),
            at_text(obj, &["eventSource"]),
        ),
        Kind::K8s => (
            time_of(
                obj,
                &[
                    &["requestReceivedTimestamp"],
                    &["stageTimestamp"],
                    &["timestamp"],
                    &["metadata", "creationTimestamp"],
                ],
            ),
            None,
            None,
        ),
        Kind::Okta => (time_of(obj, &[&["published"]]), None, None),
        Kind::Gcp => (
            time_of(obj, &[&["timestamp"], &["receiveTimestamp"]]),
            at_text(obj, &["resource", "labels", "project_id"]).or_else(|| {
                let l = text(obj, "logName")?.strip_prefix("projects/")?;
                Some(l.split('/').next()?.to_owned()).filter(|p| !p.is_empty())
            }),
            at_text(obj, &["protoPayload", "serviceName"]),
        ),
        Kind::GitHub => (
            time_of(obj, &[&["@timestamp"], &["created_at"]]),
            at_text(obj, &["org"]).or_else(|| at_text(obj, &["business"])),
            None,
        ),
        Kind::Azure(_) => (
            time_of(
                obj,
                &[
                    &["time"],
                    &["TimeGenerated"],
                    &["properties", "createdDateTime"],
                    &["properties", "activityDateTime"],
                ],
            ),
            azure::tenant(obj),
            at_text(obj, &["category"]).or_else(|| at_text(obj, &["Category"])),
        ),
        Kind::M365 { .. } => (
            time_of(obj, &[&["CreationTime"], &["TimeGenerated"]]),
            at_text(obj, &["OrganizationName"]).or_else(|| at_text(obj, &["OrganizationId"])),
            at_text(obj, &["Workload"]).or_else(|| at_text(obj, &["OfficeWorkload"])),
        ),
        Kind::Defender => (
            time_of(obj, &[&["Timestamp"], &["TimeGenerated"]]),
            at_text(obj, &["DeviceName"])
                .filter(|d| !d.is_empty())
                .or_else(|| at_text(obj, &["TenantId"])),
            None,
        ),
    }
}

#[cfg(test)]
mod tests;
