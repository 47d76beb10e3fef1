//! Raw Linux audit logs (`/var/log/audit/audit.log`). Issue #21.

use crate::error::RecordError;
use std::io::BufRead;
use std::path::Path;
use tracehunt_event::Event;

/// True when `head` (the first bytes of a file) is a raw auditd log.
pub(crate) fn sniff(_head: &[u8]) -> bool {
    false
}

/// The records of an auditd log.
pub(crate) fn records(
    _path: &Path,
    _r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(std::iter::empty())
}
