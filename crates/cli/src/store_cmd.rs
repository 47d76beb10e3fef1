//! `hunt --store`, and the commands that read the store: `incidents`,
//! `incident`, `actors`, `actor`, `export stix`.

use crate::hunt::HuntArgs;
use crate::TextOrJson;
use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use tracehunt_attack::ActorKb;
use tracehunt_pipeline::incident::Incidents;
use tracehunt_pipeline::{Loaded, Scanned};
use tracehunt_report::{counted, terminal_safe, Summary};
use tracehunt_store::Store;

/// `--store` of the read commands.
#[derive(Args, Debug, Clone)]
pub struct StoreArg {
    /// The store (SQLite file written by `hunt --store`).
    #[arg(long, value_name = "PATH", env = "TRACEHUNT_STORE")]
    pub store: Option<PathBuf>,
}

impl StoreArg {
    /// Opens the store for reading: it must exist (a read command never
    /// creates an empty store by mistake).
    pub(crate) fn open(&self) -> Result<Store> {
        let Some(p) = &self.store else {
            anyhow::bail!("no store given: use --store PATH or set TRACEHUNT_STORE");
        };
        if p.is_dir() {
            anyhow::bail!("--store {} is a directory, not a store file", p.display());
        }
        if p.metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
            anyhow::bail!("{} is an empty file, not a store", p.display());
        }
        if !p.is_file() {
            anyhow::bail!(
                "no store at {} (`tracehunt hunt LOGS --store {}` creates it)",
                p.display(),
                p.display()
            );
        }
        Ok(Store::open(p)?)
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".to_owned(), |t| {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    })
}

/// `a, b and N more` of the first `max` items (terminal-safe), `-` for none.
fn join(v: &[String], max: usize) -> String {
    if v.is_empty() {
        return "-".to_owned();
    }
    tracehunt_pipeline::incident_out::list(v, max)
}

/// `--format json`: `v` pretty-printed, exit 0.
fn json_out<T: serde::Serialize>(out: &mut impl Write, v: &T) -> Result<u8> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)?;
    Ok(0)
}

/// Whether `a` and `b` name the same file (one may not exist yet).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = p.canonicalize() {
            return Some(c);
        }
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.canonicalize().ok()?,
            _ => std::env::current_dir().ok()?,
        };
        Some(parent.join(p.file_name()?))
    };
    matches!((canon(a), canon(b)), (Some(x), Some(y)) if x == y)
}

/// Refuses an output file that is the store itself (it would be truncated).
pub(crate) fn refuse_output_over_store(store: &Path, output: Option<&Path>) -> Result<()> {
    if let Some(o) = output {
        if same_file(store, o) {
            anyhow::bail!(
                "--output {} is the store file: choose another output path",
                o.display()
            );
        }
    }
    Ok(())
}

/// Checks an `-o` path before any reading: refuses a directory, a path whose
/// directory does not exist, and an existing regular file unless `clobber`
/// (Hayabusa's `--clobber`); devices such as `/dev/null` are no clobbering.
pub(crate) fn refuse_clobber(output: &Path, clobber: bool) -> Result<()> {
    check_output_path(output)?;
    if output.is_file() && !clobber {
        anyhow::bail!(
            "{} exists: add --clobber to overwrite it, or give another -o path",
            output.display()
        );
    }
    Ok(())
}

/// Refuses an `-o` path that is a directory or whose directory does not
/// exist, before any reading.
pub(crate) fn check_output_path(output: &Path) -> Result<()> {
    // Found before any reading (breaker finding: `-o missing/dir/x.json` failed
    // only once the whole input had been scanned).
    if output.is_dir() {
        anyhow::bail!(
            "-o {} is a directory: give a file path, e.g. {}",
            output.display(),
            output.join("tracehunt.out").display()
        );
    }
    // Breaker findings: `-o newdir/` and `-o LINK` (a link into a missing
    // directory) still failed only after the scan; `-o afile/x` said afile
    // did not exist.
    if output.as_os_str().to_string_lossy().ends_with('/') {
        anyhow::bail!(
            "-o {} names a directory: give a file path, e.g. {}",
            output.display(),
            output.join("tracehunt.out").display()
        );
    }
    if !output.exists() {
        // A dangling link whose target's directory exists is fine: the file
        // is created there.
        let target = std::fs::read_link(output).ok().filter(|t| {
            let t = output.parent().unwrap_or(Path::new(".")).join(t);
            !t.parent()
                .is_some_and(|d| d.as_os_str().is_empty() || d.is_dir())
        });
        if let Some(target) = target {
            anyhow::bail!(
                "-o {} is a link to {}, which cannot be created: give another -o path",
                output.display(),
                target.display()
            );
        }
    }
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|d| !d.is_dir()) {
        let why = if dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        anyhow::bail!("-o {}: {} {why}", output.display(), dir.display());
    }
    Ok(())
}

/// Opens (creates, migrates) the store of `hunt --store PATH`, before any
/// work; `output` (`--output`) must not be the store.
pub fn open_for_hunt(p: &Path, output: Option<&Path>) -> Result<Store> {
    refuse_output_over_store(p, output)?;
    if p.is_dir() {
        anyhow::bail!(
            "--store {} is a directory: give the path of a store file (created if missing), e.g. {}",
            p.display(),
            p.join("hunts.db").display()
        );
    }
    Ok(Store::open(p)?)
}

/// Writes one hunt to `store` and says what was new on stderr.
pub fn record_hunt(
    store: &mut Store,
    a: &HuntArgs,
    started_at: DateTime<Utc>,
    (loaded, kb): (&Loaded, &ActorKb),
    (scanned, incidents, summary): (&Scanned, &Incidents, &Summary),
) -> Result<()> {
    let path = store.path().to_path_buf();
    let parameters = serde_json::json!({
        "paths": a.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "rules": a.rules.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "min_level": format!("{:?}", a.min_level).to_lowercase(),
        "from": a.from.map(|t| t.to_rfc3339()),
        "to": a.to.map(|t| t.to_rfc3339()),
        "ioc": a.ioc.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "session_gap_secs": a.session_gap,
        "max_span_secs": a.max_span,
        "entity_ceiling": a.entity_ceiling,
    });
    // Hidden, for the SIGKILL test: stall this long (ms) after every
    // TRACEHUNT_TEST_STORE_STALL_EVERY detections written (default
    // 10,000), so a test can kill the process mid-write.
    let env_u64 = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let stall = env_u64("TRACEHUNT_TEST_STORE_STALL_MS");
    let progress_every = env_u64("TRACEHUNT_TEST_STORE_STALL_EVERY").unwrap_or(10_000);
    let on_rows = |n: u64| {
        if let Some(ms) = stall {
            eprintln!("tracehunt: store: {n} detections written");
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    };
    let rule_text = |file: &str| crate::rules::rule_file_text(file);
    let tool_version = format!("tracehunt {}", env!("CARGO_PKG_VERSION"));
    let meta = tracehunt_pipeline::store_sink::HuntMeta {
        started_at,
        tool_version: &tool_version,
        parameters,
        rule_text: &rule_text,
        on_rows: &on_rows,
        progress_every,
    };
    let stats = tracehunt_pipeline::store_sink::write_store(
        store, &meta, loaded, kb, scanned, incidents, summary,
    )
    .with_context(|| format!("recording the hunt in {}", path.display()))?;
    if !a.quiet {
        eprintln!(
            "tracehunt: store {}: hunt #{}: {} new {} ({} already stored or repeated), {} ({} new), {}",
            path.display(),
            stats.hunt_id,
            stats.detections_new,
            crate::hunt::plural(stats.detections_new, "detection", "detections"),
            stats.detections_duplicate,
            counted(stats.incidents, "incident", "incidents"),
            stats.incidents_new,
            counted(
                stats.sightings_new,
                "new actor sighting",
                "new actor sightings"
            ),
        );
    }
    Ok(())
}

/// `tracehunt incidents`.
#[derive(Args, Debug)]
pub struct IncidentsArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Only incidents whose last detection is at or after this time
    /// (same forms as `hunt --from`).
    #[arg(long, value_name = "TIME", value_parser = crate::hunt::parse_time)]
    since: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(
        long,
        short = 'f',
        value_enum,
        ignore_case = true,
        default_value = "table"
    )]
    format: TextOrJson,
}

/// Lists the stored incidents, newest first.
pub fn incidents(a: IncidentsArgs) -> Result<u8> {
    let store = a.store.open()?;
    let rows = store.incidents(a.since)?;
    let mut out = std::io::stdout().lock();
    if a.format == TextOrJson::Json {
        return json_out(&mut out, &rows);
    }
    writeln!(
        out,
        "{}",
        counted(rows.len() as u64, "incident", "incidents")
    )?;
    for r in &rows {
        writeln!(
            out,
            "{}  {:<8}  {} → {}  {}  hosts: {}{}",
            r.id,
            r.max_level,
            time(r.first_seen),
            time(r.last_seen),
            counted(r.detections, "detection", "detections"),
            join(&r.hosts, 3),
            if r.false_positive {
                "  [false positive]"
            } else {
                ""
            }
        )?;
        match &r.top {
            Some(t) => writeln!(
                out,
                "    top candidate: {} {} (confidence {}); {}",
                t.group_id, t.group_name, t.confidence, r.verdict
            )?,
            None => writeln!(out, "    {}", r.verdict)?,
        }
    }
    Ok(0)
}

/// `tracehunt incident ID`.
#[derive(Args, Debug)]
pub struct IncidentArgs {
    /// Incident id (`inc-…`, from `tracehunt incidents` or the hunt's output).
    id: String,
    #[command(flatten)]
    store: StoreArg,
    /// Mark the incident a false positive: it then counts as a negative
    /// sighting and is left out of the actor statistics.
    #[arg(long, conflicts_with = "not_false_positive")]
    false_positive: bool,
    /// Remove a false-positive mark.
    #[arg(long)]
    not_false_positive: bool,
    /// Output format.
    #[arg(
        long,
        short = 'f',
        value_enum,
        ignore_case = true,
        default_value = "table"
    )]
    format: TextOrJson,
}

/// Shows one incident (and marks it when asked).
pub fn incident(a: IncidentArgs) -> Result<u8> {
    let mut store = a.store.open()?;
    if a.false_positive || a.not_false_positive {
        if !store.set_false_positive(&a.id, a.false_positive)? {
            anyhow::bail!("no incident {} in the store", a.id);
        }
        eprintln!(
            "tracehunt: incident {} {}",
            a.id,
            if a.false_positive {
                "marked false positive"
            } else {
                "no longer marked false positive"
            }
        );
    }
    let Some(d) = store.incident(&a.id)? else {
        anyhow::bail!("no incident {} in the store", a.id);
    };
    let mut out = std::io::stdout().lock();
    if a.format == TextOrJson::Json {
        return json_out(&mut out, &d);
    }
    let r = &d.incident;
    writeln!(
        out,
        "{}  {}  {} → {}{}",
        r.id,
        r.max_level,
        time(r.first_seen),
        time(r.last_seen),
        if r.false_positive {
            "  [false positive]"
        } else {
            ""
        }
    )?;
    writeln!(out, "hosts: {}", join(&r.hosts, 20))?;
    writeln!(out, "users: {}", join(&r.users, 20))?;
    let entities: Vec<String> = d
        .entities
        .iter()
        .filter(|(k, _)| k != "user")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    writeln!(out, "entities: {}", join(&entities, 20))?;
    writeln!(out, "tactics: {}", join(&r.tactics, 20))?;
    writeln!(out, "techniques: {}", join(&r.techniques, 30))?;
    writeln!(out, "detections: {}", r.detections)?;
    for rc in &d.rules {
        writeln!(
            out,
            "  {} ×{}  {}",
            rc.rule_id,
            rc.detections,
            terminal_safe(rc.title.as_deref().unwrap_or(""))
        )?;
    }
    writeln!(out, "verdict: {}", r.verdict)?;
    for c in &d.candidates {
        writeln!(
            out,
            "  {}. {} {}  confidence {} ({})",
            c.rank, c.group_id, c.group_name, c.confidence, c.confidence_label
        )?;
    }
    Ok(0)
}

/// `tracehunt actors`.
#[derive(Args, Debug)]
pub struct ActorsArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Count sightings up to this candidate rank per incident (1: only
    /// each incident's top candidate; 0: every stored candidate — a hunt stores
    /// its top 5 per incident).
    #[arg(long, default_value_t = 1, value_name = "N")]
    ranks: u32,
    /// Only sightings with at least this confidence (0–100).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    min_confidence: u8,
    /// Output format.
    #[arg(
        long,
        short = 'f',
        value_enum,
        ignore_case = true,
        default_value = "table"
    )]
    format: TextOrJson,
}

/// Lists the actors seen, with incidents, hosts, first/last seen and
/// activity per month (false positives counted apart).
pub fn actors(a: ActorsArgs) -> Result<u8> {
    let store = a.store.open()?;
    let ranks = if a.ranks == 0 { u32::MAX } else { a.ranks };
    let rows = store.actors(ranks, a.min_confidence)?;
    let mut out = std::io::stdout().lock();
    if a.format == TextOrJson::Json {
        return json_out(&mut out, &rows);
    }
    writeln!(
        out,
        "{} ({} of each incident, confidence ≥ {})",
        counted(rows.len() as u64, "actor", "actors"),
        if a.ranks == 0 {
            "all stored candidates".to_owned()
        } else {
            format!(
                "top {}",
                counted(u64::from(a.ranks), "candidate", "candidates")
            )
        },
        a.min_confidence
    )?;
    for r in &rows {
        let months: Vec<String> = r.months.iter().map(|(m, n)| format!("{m}:{n}")).collect();
        writeln!(
            out,
            "{} {}  {}  {} → {}  max confidence {}{}",
            r.group_id,
            r.group_name,
            counted(r.incidents, "incident", "incidents"),
            time(r.first_seen),
            time(r.last_seen),
            r.max_confidence,
            if r.false_positive_incidents > 0 {
                format!("  ({} false positive)", r.false_positive_incidents)
            } else {
                String::new()
            }
        )?;
        writeln!(out, "    hosts: {}", join(&r.hosts, 5))?;
        writeln!(out, "    per month: {}", months.join(" "))?;
    }
    Ok(0)
}

/// `tracehunt actor G0009`.
#[derive(Args, Debug)]
pub struct ActorArgs {
    /// ATT&CK group id, name or alias (`G0009`, `Deep Panda`, `Shell Crew`).
    query: String,
    #[command(flatten)]
    store: StoreArg,
    /// ATT&CK bundle to resolve names and aliases (default: built-in snapshot).
    #[arg(long, value_name = "FILE")]
    attack: Option<PathBuf>,
    /// Output format.
    #[arg(
        long,
        short = 'f',
        value_enum,
        ignore_case = true,
        default_value = "table"
    )]
    format: TextOrJson,
}

/// One actor's history: every incident it was a candidate for, over time.
pub fn actor(a: ActorArgs) -> Result<u8> {
    let store = a.store.open()?;
    let kb = crate::hunt::load_kb(&a.attack)?;
    let id = kb
        .group_by_name_or_alias(&a.query)
        .map_or(a.query.clone(), |g| g.id.clone());
    let Some(h) = store.actor(&id)? else {
        anyhow::bail!("{} was never sighted in this store", a.query);
    };
    let mut out = std::io::stdout().lock();
    if a.format == TextOrJson::Json {
        return json_out(&mut out, &h);
    }
    writeln!(
        out,
        "{} {}: {}",
        h.group_id,
        h.group_name,
        counted(h.sightings.len() as u64, "sighting", "sightings")
    )?;
    for s in &h.sightings {
        writeln!(
            out,
            "  {} → {}  {}  rank {}  confidence {}{}  hosts: {}",
            time(s.first_seen),
            time(s.last_seen),
            s.incident_id,
            s.rank,
            s.confidence,
            if s.false_positive {
                "  [false positive]"
            } else {
                ""
            },
            join(&s.hosts, 3)
        )?;
        if let Some(serde_json::Value::Array(ev)) = &s.evidence {
            let ids: Vec<String> = ev
                .iter()
                .take(6)
                .filter_map(|e| e.get("id").and_then(|v| v.as_str()).map(str::to_owned))
                .collect();
            writeln!(out, "      evidence: {}", join(&ids, 6))?;
        }
    }
    Ok(0)
}

/// `tracehunt export stix`.
#[derive(Args, Debug)]
pub struct ExportStixArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Write the bundle here instead of standard output (an existing file
    /// only with --clobber).
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite an existing --output file.
    #[arg(long)]
    clobber: bool,
    /// The TLP 2.0 marking of every object (clear, green, amber,
    /// amber+strict, red). Amber by default: the store names internal hosts.
    #[arg(long, value_name = "LEVEL", default_value = "amber", value_parser = crate::parse_tlp)]
    tlp: tracehunt_report::Tlp,
}

/// The store as a STIX 2.1 bundle.
pub fn export_stix(a: ExportStixArgs) -> Result<u8> {
    if let Some(p) = &a.store.store {
        refuse_output_over_store(p, a.output.as_deref())?;
    }
    if let Some(o) = &a.output {
        refuse_clobber(o, a.clobber)?;
    }
    let store = a.store.open()?;
    // Intrusion sets under ATT&CK's own STIX ids (the built-in ATT&CK snapshot).
    let attack_ids: std::collections::BTreeMap<String, String> =
        tracehunt_attack::ActorKb::builtin()
            .groups()
            .iter()
            .filter_map(|(id, g)| Some((id.clone(), g.stix_id.clone()?)))
            .collect();
    let mut bundle = store.export_stix_with(Utc::now(), a.tlp, &attack_ids)?;
    // Written as ATT&CK's own version of those objects (its times, author and marking).
    tracehunt_report::adopt_attack_versions(
        &mut bundle,
        &tracehunt_pipeline::stix::attack_versions(tracehunt_attack::ActorKb::builtin()),
    );
    match &a.output {
        Some(p) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            );
            serde_json::to_writer_pretty(&mut f, &bundle)?;
            writeln!(f)?;
            f.flush()?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &bundle)?;
            writeln!(out)?;
            if std::io::stdout().is_terminal() {
                out.flush()?;
            }
        }
    }
    Ok(0)
}
