//! syslog logs. Issue #21.

pub(crate) mod lines;

use crate::error::RecordError;
use std::io::BufRead;
use std::path::Path;
use tracehunt_event::Event;

/// True when `head` (the first bytes of a file) is a syslog log.
pub(crate) fn sniff(_head: &[u8]) -> bool {
    false
}

/// The records of a syslog log.
pub(crate) fn records(
    _path: &Path,
    _r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(std::iter::empty())
}

/// A JSON row that carries a syslog line (a Sentinel `Syslog` row with
/// Sysmon-for-Linux XML in `SyslogMessage`), or `None`.
pub(crate) fn event_from_json(_obj: &serde_json::Map<String, serde_json::Value>) -> Option<Event> {
    None
}
