//! `tracehunt`: hunt intrusions in Windows event logs and Linux, cloud,
//! network and web server logs with Sigma rules and attribute what fired
//! to ATT&CK intrusion sets.
//!
//! Only this crate knows about clap, terminals, files on disk and exit codes.
//!
//! Exit codes:
//! - 0: the run completed.
//! - 1: usage or configuration error (bad flag, `-f` given a log path,
//!   `-o` onto an existing file without `--clobber`, unreadable
//!   rules/ATT&CK/config file); also `hunt` when a named path does not
//!   exist but others were read (the run finishes first, like ripgrep).
//! - 2: nothing could be read (no input file was a readable log).
//! - 3: `rules check` found rules that failed to load (the others loaded;
//!   `hunt` runs with them and exits 0).

/// `std::eprintln!` without its panic: a closed or broken stderr (`2>&1 |
/// head -1`) made the first message after it panic and the process exit
/// 101 (fresh-user finding); a message that cannot be written is dropped
/// and the run ends with its own exit code. Defined before the modules, so
/// it is the `eprintln!` of the whole crate.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod attribute;
mod commitments_cmd;
mod display_opts;
mod eval_cmd;
mod eval_forward;
mod hunt;
mod input;
mod ioc_cmd;
mod logon_cmd;
mod metrics_cmd;
mod nats_opts;
mod navigator_cmd;
mod publish_cmd;
mod report_cmd;
mod rule_cache;
mod rules;
mod search_cmd;
mod store_cmd;
mod update_rules;
mod watch;
mod worker_cmd;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: usage or configuration error.
pub const EXIT_USAGE: u8 = 1;
/// Exit code of `hunt`: a named path does not exist (the others were read).
pub const EXIT_PATH_MISSING: u8 = 1;
/// Exit code: no input could be read.
pub const EXIT_NOTHING_READ: u8 = 2;
/// Exit code of `rules check`: at least one rule document failed to load
/// (error diagnostic); the rest loaded.
pub const EXIT_RULES_FAILED: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "tracehunt",
    version,
    about = "Hunt intrusions with Sigma rules in Windows event logs (EVTX, JSON), Linux logs (auditd, syslog, Sysmon for Linux), cloud audit logs (CloudTrail, Azure/Entra, M365, Okta, GCP, GitHub, Kubernetes), Zeek and web server logs, and attribute them to ATT&CK intrusion sets.",
    after_help = "The built-in rules are Windows-only: for other logs pass SigmaHQ's rules with --rules (sigma/rules, or its folders linux, cloud, identity, application, network, web).\n\nExamples:\n  tracehunt hunt samples/evtx\n  tracehunt hunt /var/log/audit/audit.log /var/log/auth.log -r sigma/rules/linux\n  tracehunt hunt logs/ --rules sigma/rules --format jsonl --output hits.jsonl\n  tracehunt attribute --techniques T1059.001,T1546.008,T1021.002\n  tracehunt rules check sigma/rules --format json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scan log files with Sigma rules; print detections, a summary and the
    /// ATT&CK intrusion sets that best match what fired.
    #[command(
        after_help = "Examples:\n  tracehunt hunt samples/evtx\n  tracehunt hunt C:/logs/Security.evtx --rules sigma/rules --min-level high\n  tracehunt hunt logs/ --rules sigma/rules --format json --output report.json\n  tracehunt hunt logs/ --from 2024-01-01 --to '2024-01-31 23:59:59' --format csv > timeline.csv"
    )]
    Hunt(hunt::HuntArgs),
    /// Rank ATT&CK intrusion sets for techniques an analyst supplies.
    #[command(
        after_help = "Examples:\n  tracehunt attribute --techniques T1059.001,T1546.008,T1021.002\n  tracehunt attribute --techniques T1190,T1505.003 --software S0002 --format json"
    )]
    Attribute(attribute::AttributeArgs),
    /// Hunt, then write an ATT&CK Navigator layer (v4.5) of the observed
    /// techniques, optionally overlaid with a group's (`--overlay G0009`).
    #[command(
        after_help = "Examples:\n  tracehunt navigator samples/evtx --output layer.json\n  tracehunt navigator logs/ --rules sigma/rules --overlay G0009 -o layer.json"
    )]
    Navigator(hunt::HuntArgs),
    /// Hunt live: follow growing log files, read stdin or an HTTP endpoint,
    /// one record per line; each detection, incident and response action as
    /// it happens.
    ///
    /// Lines read: JSON (any shape `hunt` reads: Windows, cloud, Zeek JSON…),
    /// syslog/auth.log (Sysmon for Linux included), raw auditd records (one
    /// event per record; unlike `hunt`, not assembled into
    /// `linux:process_creation` events) and Apache/Nginx access logs. Zeek
    /// TSV and W3C/IIS logs need their header lines: `hunt` only. Other
    /// lines are counted as rejected and named on stderr.
    #[command(
        after_help = "Examples:\n  tracehunt watch /var/log/winlogbeat/*.ndjson --state watch-state.json\n  tail -F events.jsonl | tracehunt watch --stdin --min-level high\n  tracehunt watch /var/log/auth.log /var/log/audit/audit.log --state watch.json -r sigma/rules/linux\n  TRACEHUNT_TOKEN=$(cat token) tracehunt watch --listen 127.0.0.1:8765 --rules sigma/rules\n  tracehunt watch logs/*.ndjson --policy respond.yml --action-log actions.jsonl --store hunts.db"
    )]
    Watch(watch::WatchArgs),
    /// Scale out: publish log files' events to a NATS JetStream stream,
    /// partitioned by host, for `tracehunt worker`s to hunt.
    #[command(
        after_help = "Examples:\n  tracehunt publish logs/ --nats nats://n1:4222,nats://n2:4222,nats://n3:4222\n  tracehunt publish samples/evtx --nats nats://127.0.0.1:4222 --replicas 1"
    )]
    Publish(publish_cmd::PublishArgs),
    /// Scale out: hunt the partitions of a JetStream events stream (leased,
    /// one worker each) and publish detections and incidents, at least once.
    #[command(
        after_help = "Examples:\n  tracehunt worker --nats nats://n1:4222,nats://n2:4222 --partitions 0-7 --rules sigma/rules\n  tracehunt worker --partitions all --name w1 --store hunts.db --idle-exit 30s"
    )]
    Worker(worker_cmd::WorkerArgs),
    /// Incidents recorded in the store (`hunt --store`), newest first.
    #[command(
        after_help = "Examples:\n  tracehunt incidents --store hunts.db\n  tracehunt incidents --store hunts.db --since 2024-01-01 --format json"
    )]
    Incidents(store_cmd::IncidentsArgs),
    /// One stored incident; `--false-positive` marks it (a negative
    /// sighting, left out of actor statistics).
    #[command(
        after_help = "Examples:\n  tracehunt incident inc-3048121c0ea6ec4e --store hunts.db\n  tracehunt incident inc-3048121c0ea6ec4e --store hunts.db --false-positive"
    )]
    Incident(store_cmd::IncidentArgs),
    /// Actors (ATT&CK intrusion sets) sighted in the store: incidents,
    /// hosts, first/last seen, activity per month.
    #[command(
        after_help = "Examples:\n  tracehunt actors --store hunts.db\n  tracehunt actors --store hunts.db --ranks 3 --min-confidence 20 --format json"
    )]
    Actors(store_cmd::ActorsArgs),
    /// One actor's history in the store: its incidents and evidence over time.
    #[command(
        after_help = "Examples:\n  tracehunt actor G0009 --store hunts.db\n  tracehunt actor 'Deep Panda' --store hunts.db --format json"
    )]
    Actor(store_cmd::ActorArgs),
    /// Did a state's groups change their activity at a dated commitment?
    /// Exact rate ratios, segmented quasi-Poisson regression with a
    /// pre-trend, competing dates and change points, with a verdict in words.
    #[command(
        after_help = "Examples:\n  tracehunt commitments --store hunts.db --state CN\n  tracehunt commitments --counts monthly.csv --state CN --format json\n  tracehunt commitments --store hunts.db --file my-commitments.yaml --period week --min-confidence 20"
    )]
    Commitments(commitments_cmd::CommitmentsArgs),
    /// The store as one self-contained HTML report (no script, no network):
    /// detections, incidents, heatmap, actors over time, commitment charts.
    #[command(
        after_help = "Examples:\n  tracehunt report --store hunts.db --output report.html\n  tracehunt report --store hunts.db -o report.html --state CN --state RU"
    )]
    Report(report_cmd::ReportArgs),
    /// Export the store.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Evaluation tools.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Sigma rule tools.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// ATT&CK knowledge-base tools.
    #[command(subcommand)]
    Attack(AttackCommand),
    /// Search every event (no rules): keywords in any field value, a
    /// regex, `field:value` filters with `*` wildcards, a time window.
    #[command(
        after_help = "Keywords (-k, any; all with --and), the regex (-e) and every --field must all match. Keywords and the regex are case-sensitive unless -i; field names and values are compared case-insensitively. Field names are the event's flat names as Sigma rules see them (EventID, Image, CommandLine, TargetUserName, ScriptBlockText; dotted paths for cloud logs).\n\nExamples:\n  tracehunt search samples/evtx -k mimikatz -i\n  tracehunt search logs/ --field EventID:4104 -e 'FromBase64String|IEX' -f jsonl -o hits.jsonl\n  tracehunt search logs/ --field 'Image:*\\powershell.exe' --from 2019-03-19 --to 2019-03-20\n  tracehunt search logs/ -k lsass -k procdump --and -f csv > hits.csv"
    )]
    Search(search_cmd::SearchArgs),
    /// Logon summary: successful (4624) and failed (4625) logons and RDP
    /// sessions (4778/4779, 1149) by user, domain, computer, logon type and
    /// source, with counts and first/last times.
    #[command(
        after_help = "Examples:\n  tracehunt logon-summary samples/evtx\n  tracehunt logon-summary logs/ -f csv -o logons.csv\n  tracehunt logon-summary Security.evtx --from 2019-05-01 -f jsonl"
    )]
    LogonSummary(logon_cmd::LogonArgs),
    /// Log inventory: EventIDs per channel, computers, channels/providers,
    /// and per file its format, events, time range and lost records — which
    /// logsources were there, so "0 detections" can be trusted.
    #[command(
        after_help = "Examples:\n  tracehunt metrics samples/evtx\n  tracehunt metrics logs/ --by eid\n  tracehunt metrics logs/ --by file -f csv -o inventory.csv\n  tracehunt metrics logs/ -f json > metrics.json"
    )]
    Metrics(metrics_cmd::MetricsArgs),
    /// Download a SigmaHQ release package, verify it (SHA-256, zip checks,
    /// every rule loaded) and swap it in as the rules directory (the
    /// previous one kept as DIR.old).
    #[command(
        after_help = "Examples:\n  tracehunt update-rules\n  tracehunt update-rules --package core --dir ./sigma-rules\n  tracehunt update-rules --url https://example.org/sigma_all_rules.zip --sha256 <HEX> --dir ./sigma-rules\n  tracehunt hunt logs/ -r ~/.local/share/tracehunt/rules"
    )]
    UpdateRules(update_rules::UpdateRulesArgs),
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// The store as a STIX 2.1 bundle: incidents, sightings of intrusion
    /// sets with confidence, indicators; ids stable across exports.
    #[command(after_help = "Examples:\n  tracehunt export stix --store hunts.db -o bundle.json")]
    Stix(store_cmd::ExportStixArgs),
}

#[derive(Subcommand, Debug)]
enum EvalCommand {
    /// ATT&CK campaign hold-out of the attribution ranking vs. a naive-overlap baseline:
    /// top-1/3/5, MRR, Brier scores, naive and leakage-aware hold-out.
    #[command(
        after_help = "Examples:\n  tracehunt eval attribution\n  tracehunt eval attribution --attack enterprise-attack-18.1.json --format json\n  tracehunt eval attribution --techniques-only -v"
    )]
    Attribution(eval_cmd::EvalArgs),
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Load rules and report every diagnostic (code, file, line, message),
    /// the rule counts and how many rules of each product will run.
    #[command(
        after_help = "Examples:\n  tracehunt rules check sigma/rules sigma/rules-emerging-threats\n  tracehunt rules check -r sigma/rules/linux -r sigma/rules/cloud\n  tracehunt rules check my-rule.yml --format json\n  tracehunt rules check sigma/rules --include-status stable,test --exclude-tag attack.discovery\n  tracehunt rules check sigma/deprecated --enable-deprecated-rules"
    )]
    Check(rules::CheckArgs),
}

#[derive(Subcommand, Debug)]
enum AttackCommand {
    /// Build the compact knowledge-base snapshot (the one built into the
    /// binary is made this way) from an ATT&CK Enterprise STIX bundle.
    #[command(
        after_help = "Example:\n  tracehunt attack snapshot enterprise-attack-18.1.json crates/attack/data/attack-snapshot.json"
    )]
    Snapshot {
        /// ATT&CK Enterprise STIX bundle (JSON).
        bundle: PathBuf,
        /// Where to write the snapshot JSON.
        output: PathBuf,
    },
}

/// Output formats shared by the subcommands.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text (default on a terminal).
    Table,
    /// One JSON object per detection per line.
    Jsonl,
    /// One JSON document: summary, detections, attribution.
    Json,
    /// Timesketch-compatible CSV timeline: full messages, the event's fields as JSON (`event_data`).
    Csv,
    /// One Elastic Common Schema 8.17 document per detection per line (Elasticsearch, Kibana).
    Ecs,
    /// STIX 2.1 bundle: sightings of techniques and IOCs, attribution, ATT&CK's own ids, a TLP marking.
    Stix,
    /// ATT&CK Navigator layer (format 4.5): every observed technique coloured, count as score.
    Navigator,
    /// Self-contained HTML report (no script, nothing loaded from the network).
    Html,
}

/// `--tlp`: a TLP 2.0 level ([`tracehunt_report::Tlp::parse`]).
pub(crate) fn parse_tlp(s: &str) -> Result<tracehunt_report::Tlp, String> {
    tracehunt_report::Tlp::parse(s)
        .ok_or_else(|| format!("{s:?} is no TLP level: clear, green, amber, amber+strict or red"))
}

/// Output formats of `rules check` and `attribute`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextOrJson {
    /// Human-readable text.
    Table,
    /// JSON.
    Json,
}

/// The global allocator: mimalloc's v2 line (`tracehunt-alloc`). The scan
/// allocates and frees many small strings per event (EVTX parsing builds each
/// record's values); with glibc's malloc the whole hunt ran ~40 % slower and
/// two threads scaled worse (README's benchmark section). Its arenas are
/// committed lazily (`.cargo/config.toml`) and freed pages returned at once
/// (`tracehunt_alloc::tune`, first thing in `main`), so peak RSS stays flat.
#[global_allocator]
static GLOBAL: tracehunt_alloc::MiMalloc = tracehunt_alloc::MiMalloc;

/// The value given to `-f`/`--format` when it looks like a log path
/// rather than a format: an existing file or directory, or a name ending in
/// `.evtx`, `.json`, `.jsonl`, `.log` (or `.gz`).
fn format_value_is_a_path(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    let args: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let mut values = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        }
        if a == "-f" || a == "--format" {
            values.extend(args.get(i + 1).cloned());
        } else if let Some(v) = a.strip_prefix("--format=") {
            values.push(v.to_owned());
        } else if let Some(v) = a
            .strip_prefix("-f")
            .filter(|v| !v.is_empty() && !a.starts_with("--"))
        {
            values.push(v.trim_start_matches('=').to_owned());
        }
    }
    values.into_iter().find(|v| {
        let lower = v.to_ascii_lowercase();
        Format::from_str(v, true).is_err()
            && (std::path::Path::new(v).exists()
                || v.contains('/')
                || v.contains('\\')
                || [
                    ".evtx", ".json", ".jsonl", ".ndjson", ".log", ".gz", ".csv", ".txt", ".html",
                    ".xml",
                ]
                .iter()
                .any(|e| lower.ends_with(e)))
    })
}

fn main() -> ExitCode {
    // Before any thread: mimalloc's option writes are not synchronised.
    tracehunt_alloc::tune();
    let _ = hunt::STARTED.set(std::time::Instant::now());
    // An empty TRACEHUNT_STORE means no store, an empty TRACEHUNT_RULE_CACHE
    // the default cache directory (clap would take either as its flag given
    // without a value and fail every command; breaker finding for the cache).
    for var in ["TRACEHUNT_STORE", "TRACEHUNT_RULE_CACHE"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            if let Some(v) = format_value_is_a_path(std::env::args_os().skip(1)) {
                // Hayabusa's `-f FILE` (issue #19): say what -f is here, in the
                // words of the command that was run (breaker: `search … -f
                // x.jsonl` was told `tracehunt hunt <path>`; `-f out.csv` got
                // clap's message).
                let cmd = std::env::args()
                    .nth(1)
                    .filter(|c| !c.starts_with('-'))
                    .unwrap_or_else(|| "hunt".into());
                eprintln!(
                    "tracehunt: error: -f is --format here (`{v}` is not a format): give log paths as arguments (tracehunt {cmd} <path>) and an output file with -o FILE"
                );
                return ExitCode::from(EXIT_USAGE);
            }
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Hunt(a) => hunt::run(a),
        Command::Attribute(a) => attribute::run(a),
        Command::Navigator(a) => navigator_cmd::run(a),
        Command::Watch(a) => watch::run(a),
        Command::Publish(a) => publish_cmd::run(a),
        Command::Worker(a) => worker_cmd::run(a),
        Command::Incidents(a) => store_cmd::incidents(a),
        Command::Incident(a) => store_cmd::incident(a),
        Command::Actors(a) => store_cmd::actors(a),
        Command::Actor(a) => store_cmd::actor(a),
        Command::Commitments(a) => commitments_cmd::run(a),
        Command::Report(a) => report_cmd::run(a),
        Command::Export(ExportCommand::Stix(a)) => store_cmd::export_stix(a),
        Command::Eval(EvalCommand::Attribution(a)) => eval_cmd::run(a),
        Command::Rules(RulesCommand::Check(a)) => rules::check(a),
        Command::Attack(AttackCommand::Snapshot { bundle, output }) => {
            attribute::snapshot(&bundle, &output)
        }
        Command::Search(a) => search_cmd::run(a),
        Command::LogonSummary(a) => logon_cmd::run(a),
        Command::Metrics(a) => metrics_cmd::run(a),
        Command::UpdateRules(a) => update_rules::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A closed pipe (`tracehunt hunt … | head`) is not an error.
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    || c.downcast_ref::<serde_json::Error>()
                        .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
                    || c.downcast_ref::<tracehunt_pipeline::PipelineError>()
                        .is_some_and(|p| p.is_broken_pipe())
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            // Not eprintln!: a closed or full stderr must not turn the
            // error into a panic (exit 101).
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "tracehunt: error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

impl Format {
    /// The format's name as typed on the command line (`jsonl`).
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned())
    }
}
