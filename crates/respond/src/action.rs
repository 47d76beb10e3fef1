//! The actions a response can take, as configured in the policy. Each
//! configuration is checked when the policy is parsed, so errors carry the
//! YAML line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::policy::Period;
use crate::template::{Template, Var};
use crate::trigger::IndicatorKind;

/// One action of a response. YAML: a one-key map naming the action type:
/// `- blocklist: {…}`, `- crowdsec: {…}`, `- webhook: {…}`, `- command: {…}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Add the indicators to a blocklist file.
    Blocklist(BlocklistAction),
    /// Add a CrowdSec decision (`cscli decisions add`) per IP.
    Crowdsec(CrowdsecAction),
    /// POST the trigger's JSON payload.
    Webhook(WebhookAction),
    /// Run a program with an argument-vector template.
    Command(CommandAction),
}

/// The YAML shape of an action: a map with exactly one of these keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(default)]
    blocklist: Option<RawBlocklist>,
    #[serde(default)]
    crowdsec: Option<RawCrowdsec>,
    #[serde(default)]
    webhook: Option<RawWebhook>,
    #[serde(default)]
    command: Option<RawCommand>,
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        let r = RawAction::deserialize(d)?;
        let given = [
            r.blocklist.is_some(),
            r.crowdsec.is_some(),
            r.webhook.is_some(),
            r.command.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(serde::de::Error::custom(
                "an action is a map with exactly one key: blocklist, crowdsec, webhook or command",
            ));
        }
        let checked = if let Some(r) = r.blocklist {
            BlocklistAction::try_from(r).map(Action::Blocklist)
        } else if let Some(r) = r.crowdsec {
            CrowdsecAction::try_from(r).map(Action::Crowdsec)
        } else if let Some(r) = r.webhook {
            WebhookAction::try_from(r).map(Action::Webhook)
        } else if let Some(r) = r.command {
            CommandAction::try_from(r).map(Action::Command)
        } else {
            Err("empty action".to_owned())
        };
        checked.map_err(serde::de::Error::custom)
    }
}

impl Action {
    /// The action type as the action log names it: `blocklist`, `crowdsec`,
    /// `webhook`, `command`.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Blocklist(_) => "blocklist",
            Action::Crowdsec(_) => "crowdsec",
            Action::Webhook(_) => "webhook",
            Action::Command(_) => "command",
        }
    }

    /// What the action acts on, for the log: the blocklist path, the cscli
    /// path, the webhook URL, the program.
    pub fn target(&self) -> String {
        match self {
            Action::Blocklist(b) => b.path.display().to_string(),
            Action::Crowdsec(c) => c.cscli.display().to_string(),
            Action::Webhook(w) => w.url.clone(),
            Action::Command(c) => c.program.clone(),
        }
    }
}

/// The format of a blocklist file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlocklistFormat {
    /// An `nft -f` script: `add table`, `add set` (one `ipv4_addr` and one
    /// `ipv6_addr` set), `flush set`, `add element` — loading it replaces the
    /// sets' contents in one transaction (nftables wiki, "Scripting" and
    /// "Sets"). IP addresses only.
    Nftables,
    /// One normalised indicator per line, sorted; any kinds.
    Plain,
    /// One Suricata rule per indicator: `ip` rules for addresses, `dns.query`
    /// rules (`dotprefix; content:".name"; endswith;`, so subdomains match)
    /// for domains (Suricata rule documentation, "DNS keywords"). Hashes are
    /// not supported (Suricata matches them through `filemd5`/`filesha256`
    /// list files, a different mechanism): use the plain format for them.
    Suricata,
}

/// `blocklist:` — write indicators into a file that a firewall or IDS loads.
///
/// The file holds every live entry (added and not expired) and is rewritten
/// atomically (temporary file in the same directory, then rename) whenever
/// an entry is added or expires. Without a policy `state` file the entries
/// start empty at each start, so the file is owned by tracehunt.
#[derive(Clone, Debug, PartialEq)]
pub struct BlocklistAction {
    /// File format.
    pub format: BlocklistFormat,
    /// File path.
    pub path: PathBuf,
    /// Which indicator kinds go in (default: every kind the format holds;
    /// nftables: `ip`; suricata: `ip`, `domain`; plain: all).
    pub indicators: Vec<IndicatorKind>,
    /// Remove an entry this long after it was (last) added; `None`: never.
    pub ttl: Option<Period>,
    /// nftables address family (`inet`, `ip`, `ip6`, `bridge`, `netdev`,
    /// `arp`), default `inet`.
    pub family: String,
    /// nftables table, default `tracehunt`.
    pub table: String,
    /// nftables set name prefix, default `blocklist`: the sets are
    /// `<set>_v4` and `<set>_v6`.
    pub set: String,
    /// Suricata rule action, `drop` (default) or `alert`.
    pub rule_action: String,
    /// First Suricata `sid` (default 1,900,000, in the 1,000,000–1,999,999
    /// range reserved for local rules); each entry gets its own sid.
    pub sid_base: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlocklist {
    format: BlocklistFormat,
    path: PathBuf,
    #[serde(default)]
    indicators: Option<Vec<IndicatorKind>>,
    #[serde(default)]
    ttl: Option<Period>,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    set: Option<String>,
    #[serde(default)]
    rule_action: Option<String>,
    #[serde(default)]
    sid_base: Option<u32>,
}

/// An nftables identifier we accept: an ASCII letter, then letters, digits
/// and `_`, at most 64 bytes (stricter than nft's own grammar, so that a name
/// can never break the script).
fn nft_name(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl TryFrom<RawBlocklist> for BlocklistAction {
    type Error = String;

    fn try_from(r: RawBlocklist) -> Result<BlocklistAction, String> {
        use BlocklistFormat as F;
        use IndicatorKind as K;
        let holds: &[K] = match r.format {
            F::Nftables => &[K::Ip],
            F::Suricata => &[K::Ip, K::Domain],
            F::Plain => &[K::Ip, K::Domain, K::Hash],
        };
        let indicators = r.indicators.unwrap_or_else(|| holds.to_vec());
        if let Some(k) = indicators.iter().find(|k| !holds.contains(k)) {
            let hint = if *k == K::Hash {
                " (blocklist hashes in the plain format)"
            } else {
                ""
            };
            return Err(format!(
                "blocklist {}: the {:?} format cannot hold {} indicators{hint}",
                r.path.display(),
                r.format,
                k.as_str()
            ));
        }
        if indicators.is_empty() {
            return Err(format!(
                "blocklist {}: `indicators` is empty",
                r.path.display()
            ));
        }
        let nft_keys = r.family.is_some() || r.table.is_some() || r.set.is_some();
        let suri_keys = r.rule_action.is_some() || r.sid_base.is_some();
        if (nft_keys && r.format != F::Nftables) || (suri_keys && r.format != F::Suricata) {
            return Err(format!(
                "blocklist {}: family/table/set are for nftables, rule_action/sid_base for suricata",
                r.path.display()
            ));
        }
        let family = r.family.unwrap_or_else(|| "inet".to_owned());
        if !["inet", "ip", "ip6", "bridge", "netdev", "arp"].contains(&family.as_str()) {
            return Err(format!("blocklist: unknown nftables family {family:?}"));
        }
        let table = r.table.unwrap_or_else(|| "tracehunt".to_owned());
        let set = r.set.unwrap_or_else(|| "blocklist".to_owned());
        if !nft_name(&table) || !nft_name(&set) {
            return Err(format!(
                "blocklist: nftables table {table:?} / set {set:?}: use letters, digits and _"
            ));
        }
        let rule_action = r.rule_action.unwrap_or_else(|| "drop".to_owned());
        if !["drop", "alert", "reject"].contains(&rule_action.as_str()) {
            return Err(format!(
                "blocklist: suricata rule_action {rule_action:?} is not drop, alert or reject"
            ));
        }
        Ok(BlocklistAction {
            format: r.format,
            path: r.path,
            indicators,
            ttl: r.ttl,
            family,
            table,
            set,
            rule_action,
            sid_base: r.sid_base.unwrap_or(1_900_000),
        })
    }
}

impl BlocklistAction {
    /// Whether `other` renders the file the same way (format and format
    /// parameters), so two responses may share it.
    pub fn same_file_format(&self, other: &BlocklistAction) -> bool {
        (
            self.format,
            &self.family,
            &self.table,
            &self.set,
            &self.rule_action,
            self.sid_base,
        ) == (
            other.format,
            &other.family,
            &other.table,
            &other.set,
            &other.rule_action,
            other.sid_base,
        )
    }
}

/// `crowdsec:` — per IP, run `cscli decisions add --ip <ip> --duration
/// <duration> --reason <reason> --type <type>` (CrowdSec `cscli decisions
/// add` documentation), as an argument vector without a shell. CrowdSec
/// expires the decision itself after `duration`.
#[derive(Clone, Debug, PartialEq)]
pub struct CrowdsecAction {
    /// The cscli program (default `cscli`, looked up in `PATH`).
    pub cscli: PathBuf,
    /// Decision duration (default `4h`), passed as seconds (`14400s`).
    pub duration: Period,
    /// Decision type (default `ban`).
    pub decision_type: String,
    /// Reason template (default `tracehunt {response}: {rule_id}`); one
    /// argument whatever the values contain.
    pub reason: String,
    pub(crate) reason_template: Template,
    /// Kill cscli after this long (default `30s`).
    pub timeout: Period,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrowdsec {
    #[serde(default)]
    cscli: Option<PathBuf>,
    #[serde(default)]
    duration: Option<Period>,
    #[serde(default, rename = "type")]
    decision_type: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    timeout: Option<Period>,
}

impl TryFrom<RawCrowdsec> for CrowdsecAction {
    type Error = String;

    fn try_from(r: RawCrowdsec) -> Result<CrowdsecAction, String> {
        let reason = r
            .reason
            .unwrap_or_else(|| "tracehunt {response}: {rule_id}".to_owned());
        let reason_template =
            Template::parse(&reason).map_err(|e| format!("crowdsec reason: {e}"))?;
        let duration = r.duration.unwrap_or(Period(Duration::from_secs(4 * 3600)));
        if duration.0 < Duration::from_secs(1) {
            return Err("crowdsec duration: at least 1s".to_owned());
        }
        Ok(CrowdsecAction {
            cscli: r.cscli.unwrap_or_else(|| PathBuf::from("cscli")),
            duration,
            decision_type: r.decision_type.unwrap_or_else(|| "ban".to_owned()),
            reason,
            reason_template,
            timeout: r.timeout.unwrap_or(Period(Duration::from_secs(30))),
        })
    }
}

/// `webhook:` — POST the trigger's payload as JSON (`Content-Type:
/// application/json`), from a worker thread per webhook with a bounded queue.
///
/// At-least-once: an attempt that gets no 2xx answer (HTTP error status,
/// connection error, timeout) is retried up to `retries` times, waiting
/// `backoff`, then twice as long each time, at most `max_backoff`.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookAction {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Extra request headers (no CR/LF in names or values).
    pub headers: BTreeMap<String, String>,
    /// Timeout of one attempt, connection to end of response (default `10s`).
    pub timeout: Period,
    /// Retries after the first attempt (default 3).
    pub retries: u32,
    /// First wait before a retry (default `1s`).
    pub backoff: Period,
    /// Longest wait between retries (default `60s`).
    pub max_backoff: Period,
    /// Deliveries waiting at most (default 1000); when the queue is full a
    /// delivery is recorded as `dropped`, the caller never waits.
    pub queue: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    timeout: Option<Period>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    backoff: Option<Period>,
    #[serde(default)]
    max_backoff: Option<Period>,
    #[serde(default)]
    queue: Option<usize>,
}

impl TryFrom<RawWebhook> for WebhookAction {
    type Error = String;

    fn try_from(r: RawWebhook) -> Result<WebhookAction, String> {
        if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
            return Err(format!(
                "webhook url {:?}: must start with http:// or https://",
                r.url
            ));
        }
        let bad = |s: &str| s.contains(['\r', '\n', '\0']);
        if let Some((k, _)) = r
            .headers
            .iter()
            .find(|(k, v)| bad(k) || bad(v) || k.is_empty())
        {
            return Err(format!("webhook header {k:?}: empty name or a line break"));
        }
        let retries = r.retries.unwrap_or(3);
        if retries > 100 {
            return Err("webhook retries: at most 100".to_owned());
        }
        Ok(WebhookAction {
            url: r.url,
            headers: r.headers,
            timeout: r.timeout.unwrap_or(Period(Duration::from_secs(10))),
            retries,
            backoff: r.backoff.unwrap_or(Period(Duration::from_secs(1))),
            max_backoff: r.max_backoff.unwrap_or(Period(Duration::from_secs(60))),
            queue: r.queue.unwrap_or(1000).clamp(1, 1_000_000),
        })
    }
}

/// `command:` — run `argv[0]` with `argv[1..]` (no shell). Each element is a
/// template whose `{placeholders}` are replaced inside that one argument:
/// a value never becomes several arguments or code. Placeholders:
/// `{indicator}`, `{indicator_kind}`, `{rule_id}`, `{rule_title}`,
/// `{level}`, `{host}`, `{incident_id}`, `{actor_id}`, `{actor_name}`,
/// `{response}`, `{time}` (RFC 3339); `{{`/`}}` are literal braces. With
/// `{indicator}` or `{indicator_kind}` the command runs once per indicator
/// (of the kinds in `indicators`, default all); otherwise once per trigger.
/// `argv[0]` must be literal. Values may start with `-`: programs should
/// take them as `--opt={value}` or after `--`.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandAction {
    /// The argument vector as written.
    pub argv: Vec<String>,
    /// The program (`argv[0]`).
    pub program: String,
    pub(crate) args: Vec<Template>,
    /// Whether the command runs once per indicator.
    pub per_indicator: bool,
    /// Indicator kinds a per-indicator command runs for.
    pub indicators: Vec<IndicatorKind>,
    /// Kill the command (and its process group) after this long (default
    /// `30s`). The caller waits at most this long.
    pub timeout: Period,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    argv: Vec<String>,
    #[serde(default)]
    indicators: Option<Vec<IndicatorKind>>,
    #[serde(default)]
    timeout: Option<Period>,
}

impl TryFrom<RawCommand> for CommandAction {
    type Error = String;

    fn try_from(r: RawCommand) -> Result<CommandAction, String> {
        let program = r.argv.first().cloned().unwrap_or_default();
        if program.is_empty() || program.contains(['{', '}', '\0']) {
            return Err(
                "command argv: the first element must be a literal program path".to_owned(),
            );
        }
        let args = r.argv[1..]
            .iter()
            .map(|a| Template::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("command argv: {e}"))?;
        let per_indicator = args
            .iter()
            .any(|t| t.uses(Var::Indicator) || t.uses(Var::IndicatorKind));
        if r.indicators.is_some() && !per_indicator {
            return Err("command: `indicators` given but argv has no {indicator}".to_owned());
        }
        let indicators = r.indicators.unwrap_or_else(|| {
            vec![
                IndicatorKind::Ip,
                IndicatorKind::Domain,
                IndicatorKind::Hash,
            ]
        });
        Ok(CommandAction {
            argv: r.argv,
            program,
            args,
            per_indicator,
            indicators,
            timeout: r.timeout.unwrap_or(Period(Duration::from_secs(30))),
        })
    }
}

impl CommandAction {
    /// Whether every argument is literal (no placeholder).
    pub fn is_literal(&self) -> bool {
        self.args.iter().all(Template::is_literal)
    }
}
