//! `hunt --ioc FILE...`: load IOC feeds from disk (the scan, the hits and
//! the evidence are `tracehunt_pipeline::ioc`).

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tracehunt_ioc::{IocSetBuilder, LoadReport};
use tracehunt_pipeline::ioc::Feeds;

/// Loads every `--ioc` file (format by content). A single file that is not a feed is a
/// configuration error (exit 1); in a directory such a file is skipped. Unless `quiet`, each
/// `--ioc` argument gets one summary line on stderr when something in it was unusable
/// (entries by type, files that are not feeds, diagnostics); `verbose` adds every file's
/// unusable entries and every diagnostic.
pub fn load(paths: &[PathBuf], quiet: bool, verbose: bool) -> Result<Option<Feeds>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut b = IocSetBuilder::default();
    let mut reports = Vec::new();
    for p in paths {
        // A directory means every .json/.csv/.txt file under it.
        let mut files = Vec::new();
        let is_dir = p.is_dir();
        if is_dir {
            for e in walkdir::WalkDir::new(p)
                .sort_by_file_name()
                .into_iter()
                .flatten()
            {
                let q = e.path();
                if e.file_type().is_file()
                    && q.extension()
                        .is_some_and(|x| x == "json" || x == "csv" || x == "txt")
                {
                    files.push(q.to_path_buf());
                }
            }
        } else {
            files.push(p.clone());
        }
        let mut tally = FeedTally::default();
        for f in &files {
            let text = crate::input::read_text_file(f)
                .with_context(|| format!("reading IOC feed {}", f.display()))?;
            let label = f.display().to_string();
            let r = match b.load(&text, &label) {
                Ok(r) => r,
                // One file that is not a feed must not sink the others.
                Err(e) if is_dir => {
                    if verbose && !quiet {
                        // The error names the file already.
                        eprintln!("tracehunt: warning: skipped IOC feed {e:#}");
                    }
                    tally.not_feeds.push(label);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if verbose && !quiet {
                for d in &r.diagnostics {
                    eprintln!("tracehunt: IOC feed {label}: {d}");
                }
                let skipped: usize = r.skipped.values().sum();
                if skipped > 0 {
                    eprintln!(
                        "tracehunt: IOC feed {label}: {}",
                        unusable_text(&r.skipped, usize::MAX)
                    );
                }
            }
            tally.add(&r);
            reports.push((label, r));
        }
        if !quiet {
            if let Some(line) = tally.line(&p.display().to_string(), files.len(), verbose) {
                eprintln!("tracehunt: {line}");
            }
        }
    }
    Ok(Some(Feeds {
        set: Arc::new(b.build()),
        reports,
    }))
}

/// What one `--ioc` argument (a file or a directory of feeds) yielded, summed over its files.
#[derive(Default)]
struct FeedTally {
    /// Feed files loaded.
    files: usize,
    /// IOCs loaded.
    loaded: usize,
    /// Entries read (MISP events, STIX indicators, CSV rows).
    entries: usize,
    /// Unusable entries by feed type or reason.
    skipped: BTreeMap<String, usize>,
    /// Diagnostics (rejected STIX patterns, repaired JSON, bad CSV rows).
    diagnostics: usize,
    /// Files in a directory that are not IOC feeds.
    not_feeds: Vec<String>,
}

impl FeedTally {
    fn add(&mut self, r: &LoadReport) {
        self.files += 1;
        self.loaded += r.total();
        self.entries += r.entries;
        for (k, n) in &r.skipped {
            *self.skipped.entry(k.clone()).or_default() += n;
        }
        self.diagnostics += r.diagnostics.len();
    }

    /// The one summary line of a `--ioc` argument, or None when everything in it was usable.
    fn line(&self, arg: &str, files: usize, verbose: bool) -> Option<String> {
        let unusable: usize = self.skipped.values().sum();
        if unusable == 0 && self.diagnostics == 0 && self.not_feeds.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        if unusable > 0 {
            parts.push(unusable_text(&self.skipped, 5));
        }
        if !self.not_feeds.is_empty() {
            parts.push(format!(
                "skipped {} non-feed {} (first: {})",
                self.not_feeds.len(),
                plural(self.not_feeds.len(), "file", "files"),
                self.not_feeds[0]
            ));
        }
        if self.diagnostics > 0 {
            parts.push(format!(
                "{} {}",
                self.diagnostics,
                plural(self.diagnostics, "feed warning", "feed warnings")
            ));
        }
        let files = if files > 1 {
            format!(" ({files} files)")
        } else {
            String::new()
        };
        Some(format!(
            "IOC feed {arg}{files}: {} {} loaded; {}{}",
            self.loaded,
            plural(self.loaded, "IOC", "IOCs"),
            parts.join("; "),
            if verbose { "" } else { " (-v for details)" }
        ))
    }
}

/// "N entries unusable: 40 of type text, 12 of type filename, … and 3 more types", the
/// `max` most frequent types first.
fn unusable_text(skipped: &BTreeMap<String, usize>, max: usize) -> String {
    let total: usize = skipped.values().sum();
    let mut by_count: Vec<(&String, &usize)> = skipped.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut kinds: Vec<String> = by_count
        .iter()
        .take(max)
        .map(|(k, n)| {
            if k.starts_with("invalid ") {
                format!("{n} {k}")
            } else {
                format!("{n} of type {k}")
            }
        })
        .collect();
    if by_count.len() > max {
        let rest = by_count.len() - max;
        kinds.push(format!("and {rest} more {}", plural(rest, "type", "types")));
    }
    format!(
        "{total} {} unusable: {}",
        plural(total, "entry", "entries"),
        kinds.join(", ")
    )
}

/// `one` for 1, else `many`.
fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    crate::hunt::plural(n as u64, one, many)
}
