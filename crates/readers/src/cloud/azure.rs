//! Azure / Entra ID records: which log (table) a record belongs to.
//!
//! Two shapes carry the same logs:
//!
//! * **Event Hub / diagnostic settings** (camelCase): `time`,
//!   `operationName`, `category`, `resultType`, `tenantId`, `resourceId`,
//!   details under `properties.*`. The category names the log:
//!   `SignInLogs`, `NonInteractiveUserSignInLogs`,
//!   `ServicePrincipalSignInLogs`, `ManagedIdentitySignInLogs`,
//!   `MicrosoftServicePrincipalSignInLogs` (any `…SignInLogs`) are sign-ins;
//!   `AuditLogs` is the Entra audit log; the activity-log categories
//!   (`Administrative`, `Security`, `ServiceHealth`, `Alert`,
//!   `Recommendation`, `Policy`, `Autoscale`, `ResourceHealth`) are the
//!   Azure activity log; `RiskyUsers`, `UserRiskEvents`,
//!   `RiskyServicePrincipals`, `ServicePrincipalRiskEvents` are Identity
//!   Protection; any other category is a resource's own diagnostic log.
//! * **Sentinel / Log Analytics exports** (PascalCase, flat): `TimeGenerated`,
//!   `OperationName`, `Category`, `Type` (the table: `SigninLogs`,
//!   `AADNonInteractiveUserSignInLogs`, …, `AuditLogs`, `AzureActivity`).
//!   An export can carry a `Type` column that is not the table (the OTRF
//!   `AADAuditEvents.json` rows 3–4 have `Type: Application` /
//!   `ServicePrincipal`, a target's type), so an `AuditLogs` row is also
//!   known by `LoggedByService` + (`ActivityDisplayName` or
//!   `AADOperationType`), and an `AzureActivity` row by `OperationNameValue`
//!   or `CategoryValue`.

use super::{at_text, has, text};
use serde_json::{Map, Value as J};

/// The Azure log a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    SignIn,
    Audit,
    Activity,
    Risk,
    /// A resource's own diagnostic log (Key Vault `AuditEvent`, …): no
    /// SigmaHQ logsource means it, so it is routed apart.
    Resource,
}

impl Table {
    pub(crate) fn channel(self) -> &'static str {
        match self {
            Table::SignIn => "azure:signinlogs",
            Table::Audit => "azure:auditlogs",
            Table::Activity => "azure:activitylogs",
            Table::Risk => "azure:riskdetection",
            Table::Resource => "azure:resourcelogs",
        }
    }
}

const ACTIVITY_CATEGORIES: [&str; 8] = [
    "administrative",
    "security",
    "servicehealth",
    "alert",
    "recommendation",
    "policy",
    "autoscale",
    "resourcehealth",
];

const RISK_CATEGORIES: [&str; 4] = [
    "riskyusers",
    "userriskevents",
    "riskyserviceprincipals",
    "serviceprincipalriskevents",
];

/// The table of an Azure record, or `None` when `obj` is not one.
pub(crate) fn table(obj: &Map<String, J>) -> Option<Table> {
    let operation = ["operationName", "OperationName", "OperationNameValue"]
        .iter()
        .any(|k| has(obj, k));
    if !operation {
        return None;
    }
    let ty = text(obj, "Type").map(str::to_ascii_lowercase);
    match ty.as_deref() {
        Some(t) if t.ends_with("signinlogs") => return Some(Table::SignIn),
        Some("auditlogs") => return Some(Table::Audit),
        Some("azureactivity") => return Some(Table::Activity),
        Some("aadriskyusers" | "aaduserriskevents") => return Some(Table::Risk),
        _ => {}
    }
    let category = text(obj, "category")
        .or_else(|| text(obj, "Category"))
        .map(str::to_ascii_lowercase);
    match category.as_deref() {
        Some(c) if c.ends_with("signinlogs") => return Some(Table::SignIn),
        Some("auditlogs") => return Some(Table::Audit),
        Some(c) if ACTIVITY_CATEGORIES.contains(&c) => return Some(Table::Activity),
        Some(c) if RISK_CATEGORIES.contains(&c) => return Some(Table::Risk),
        _ => {}
    }
    if has(obj, "LoggedByService")
        && (has(obj, "ActivityDisplayName") || has(obj, "AADOperationType"))
    {
        return Some(Table::Audit);
    }
    if has(obj, "OperationNameValue") || has(obj, "CategoryValue") {
        return Some(Table::Activity);
    }
    if has(obj, "category") && (has(obj, "time") || has(obj, "resourceId")) {
        return Some(Table::Resource);
    }
    None
}

/// The tenant (else the subscription) a record belongs to.
pub(crate) fn tenant(obj: &Map<String, J>) -> Option<String> {
    for k in ["tenantId", "TenantId", "AADTenantId"] {
        if let Some(t) = at_text(obj, &[k]) {
            return Some(t);
        }
    }
    let rid = text(obj, "resourceId").or_else(|| text(obj, "ResourceId"))?;
    let lower = rid.to_ascii_lowercase();
    let i = lower.find("/subscriptions/")? + "/subscriptions/".len();
    let sub = rid[i..].split('/').next()?;
    (!sub.is_empty()).then(|| sub.to_owned())
}
