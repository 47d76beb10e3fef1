//! Cloud and SaaS audit records (CloudTrail, Kubernetes audit, Okta, GCP,
//! GitHub, Azure / Entra, M365). Issue #21.

use serde_json::{Map, Value as J};
use tracehunt_event::Event;

/// A cloud audit record, or `None` when the object is in no known cloud shape.
pub(crate) fn event_from_json(_obj: &Map<String, J>) -> Option<Event> {
    None
}
