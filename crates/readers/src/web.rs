//! Web server access logs: W3C extended (IIS) and Apache/Nginx combined. Issue #21.

pub(crate) mod lines;

use crate::error::RecordError;
use std::io::BufRead;
use std::path::Path;
use tracehunt_event::Event;

/// True when `head` is a W3C extended log (`#Software:`/`#Version:`/`#Fields:` header).
pub(crate) fn sniff_w3c(_head: &[u8]) -> bool {
    false
}

/// True when `head` is an Apache/Nginx common or combined access log.
pub(crate) fn sniff_access(_head: &[u8]) -> bool {
    false
}

/// The entries of a W3C extended log.
pub(crate) fn w3c_records(
    _path: &Path,
    _r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(std::iter::empty())
}

/// The entries of an access log.
pub(crate) fn access_records(
    _path: &Path,
    _r: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = Result<Event, RecordError>> + Send> {
    Box::new(std::iter::empty())
}
