//! Blocklist files: the live entries of one file, rendered in its format and
//! written atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::action::{BlocklistAction, BlocklistFormat};
use crate::record::TriggerRef;
use crate::trigger::{Indicator, IndicatorKind};

/// One live entry of a blocklist file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// When the entry was (last) added.
    pub added: DateTime<Utc>,
    /// When it expires; `None`: never.
    pub expires: Option<DateTime<Utc>>,
    /// Suricata sid (unused by the other formats).
    pub sid: u32,
    /// The trigger that (last) added it.
    pub by: TriggerRef,
    /// The response that (last) added it.
    pub response: String,
    /// The dedupe key of that action, forgotten when the entry expires.
    pub dedupe_key: String,
}

/// The live entries of one file and how to render them.
#[derive(Clone, Debug)]
pub(crate) struct BlockFile {
    pub config: BlocklistAction,
    pub entries: BTreeMap<Indicator, Entry>,
    pub next_sid: u32,
}

impl BlockFile {
    pub(crate) fn new(config: BlocklistAction) -> BlockFile {
        let next_sid = config.sid_base;
        BlockFile {
            config,
            entries: BTreeMap::new(),
            next_sid,
        }
    }

    /// The next free sid, or `None` when `u32` is exhausted.
    pub(crate) fn take_sid(&mut self) -> Option<u32> {
        let sid = self.next_sid;
        self.next_sid = sid.checked_add(1)?;
        Some(sid)
    }

    /// The file's text for the current entries.
    pub(crate) fn render(&self) -> String {
        match self.config.format {
            BlocklistFormat::Plain => render_plain(&self.entries),
            BlocklistFormat::Nftables => render_nftables(&self.config, &self.entries),
            BlocklistFormat::Suricata => render_suricata(&self.config, &self.entries),
        }
    }

    /// Renders and writes the file atomically.
    ///
    /// # Errors
    /// The I/O error, with the path.
    pub(crate) fn write(&self) -> Result<(), String> {
        write_atomic(&self.config.path, self.render().as_bytes())
            .map_err(|e| format!("writing {}: {e}", self.config.path.display()))
    }
}

/// One value per line, sorted by kind then value (IPs, domains, hashes).
fn render_plain(entries: &BTreeMap<Indicator, Entry>) -> String {
    let mut out = String::new();
    for ind in entries.keys() {
        out.push_str(&ind.value);
        out.push('\n');
    }
    out
}

/// An `nft -f` script that creates the table and the two sets if missing,
/// empties them and adds the live addresses, all in one nft transaction.
fn render_nftables(c: &BlocklistAction, entries: &BTreeMap<Indicator, Entry>) -> String {
    let (fam, table, set) = (&c.family, &c.table, &c.set);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for ind in entries.keys().filter(|i| i.kind == IndicatorKind::Ip) {
        if ind.value.contains(':') {
            v6.push(ind.value.as_str());
        } else {
            v4.push(ind.value.as_str());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# tracehunt blocklist: load with `nft -f`; rewritten on every change."
    );
    let _ = writeln!(
        out,
        "# Match with e.g. `ip saddr @{set}_v4 drop` and `ip6 saddr @{set}_v6 drop`."
    );
    let _ = writeln!(out, "add table {fam} {table}");
    for (suffix, ty, list) in [("v4", "ipv4_addr", &v4), ("v6", "ipv6_addr", &v6)] {
        let _ = writeln!(out, "add set {fam} {table} {set}_{suffix} {{ type {ty}; }}");
        let _ = writeln!(out, "flush set {fam} {table} {set}_{suffix}");
        for chunk in list.chunks(256) {
            let _ = writeln!(
                out,
                "add element {fam} {table} {set}_{suffix} {{ {} }}",
                chunk.join(", ")
            );
        }
    }
    out
}

/// One rule per entry, in entry order, each with its own sid.
fn render_suricata(c: &BlocklistAction, entries: &BTreeMap<Indicator, Entry>) -> String {
    let act = &c.rule_action;
    let mut out = String::new();
    for (ind, e) in entries {
        let v = &ind.value;
        let sid = e.sid;
        match ind.kind {
            IndicatorKind::Ip => {
                let _ = writeln!(
                    out,
                    "{act} ip {v} any <> any any (msg:\"tracehunt blocklist ip {v}\"; sid:{sid}; rev:1;)"
                );
            }
            IndicatorKind::Domain => {
                let _ = writeln!(
                    out,
                    "{act} dns any any -> any any (msg:\"tracehunt blocklist domain {v}\"; \
                     dns.query; dotprefix; content:\".{v}\"; nocase; endswith; sid:{sid}; rev:1;)"
                );
            }
            // Rejected when the policy is parsed.
            IndicatorKind::Hash => {}
        }
    }
    out
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames
/// it over `path`, so readers see the old or the new file, never a part.
///
/// # Errors
/// Creating, writing, syncing or renaming the temporary file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
