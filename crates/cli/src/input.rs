//! Reading the configuration files the CLI is given (IOC feeds, ATT&CK bundles,
//! logsource maps, placeholders), each parsed whole.

use std::io::Read;
use std::path::Path;

/// Largest configuration file read.
pub const MAX_TEXT_FILE_BYTES: u64 = 512 << 20;

/// Reads a regular UTF-8 file of at most [`MAX_TEXT_FILE_BYTES`] (issue #6:
/// `--ioc /dev/zero`, `--placeholders /dev/zero`, `--logsource-map /dev/zero`
/// grew memory until the process was killed; a FIFO blocked). The path is
/// checked before it is opened: opening a FIFO without a writer blocks
/// (breaker finding, issue #15: `commitments --counts FIFO` hung).
pub fn read_text_file(p: &Path) -> anyhow::Result<String> {
    if !std::fs::metadata(p)?.is_file() {
        anyhow::bail!("not a regular file (FIFO, device or directory)");
    }
    let f = std::fs::File::open(p)?;
    if !f.metadata()?.is_file() {
        anyhow::bail!("not a regular file (FIFO, device or directory)");
    }
    let mut bytes = Vec::new();
    f.take(MAX_TEXT_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TEXT_FILE_BYTES {
        anyhow::bail!("larger than {} MiB", MAX_TEXT_FILE_BYTES >> 20);
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        // A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the text.
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| anyhow::anyhow!("not UTF-8: {}", e.utf8_error()))
}
