//! Rare entities of one event: users, IPs, logon ids, process GUIDs, hashes
//! and domains, read from well-known Windows Security, Sysmon and PowerShell
//! field names.

use std::net::IpAddr;
use tracehunt_event::{Event, Value};

/// The kind of an entity that can tie detections on several hosts together.
///
/// Ordered as declared (`User` < `Ip` < … < `Domain`); incidents list their
/// entities in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntityKind {
    /// An account, `domain\user` or `user`, lowercase.
    User,
    /// An IPv4 or IPv6 address in `std::net::IpAddr` display form.
    Ip,
    /// A Windows logon id (`0x` + lowercase hex, no leading zeros).
    LogonId,
    /// A Sysmon process GUID, lowercase, without braces.
    ProcessGuid,
    /// An MD5, SHA-1 or SHA-256 file hash, lowercase hex.
    Hash,
    /// A DNS name, lowercase, without a trailing dot.
    Domain,
}

impl EntityKind {
    /// The stable lowercase name: `"user"`, `"ip"`, `"logon_id"`,
    /// `"process_guid"`, `"hash"` or `"domain"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Ip => "ip",
            EntityKind::LogonId => "logon_id",
            EntityKind::ProcessGuid => "process_guid",
            EntityKind::Hash => "hash",
            EntityKind::Domain => "domain",
        }
    }
}

/// What a field name means for entity extraction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A user name, optionally combined with the domain field at index 0
    /// (`TargetDomainName`) or 1 (`SubjectDomainName`).
    User(Option<usize>),
    Ip,
    LogonId,
    Guid,
    /// Sysmon `Hashes` (`SHA1=…,MD5=…`) or a plain hash field.
    Hash,
    Domain,
}

/// Field name → role. Names compare ASCII case-insensitively, spaces ignored.
const FIELDS: &[(&str, Role)] = &[
    ("TargetUserName", Role::User(Some(0))),
    ("SubjectUserName", Role::User(Some(1))),
    ("User", Role::User(None)),
    ("AccountName", Role::User(None)),
    ("TargetUser", Role::User(None)),
    ("SourceUser", Role::User(None)),
    ("IpAddress", Role::Ip),
    ("SourceIp", Role::Ip),
    ("SourceAddress", Role::Ip),
    ("ClientAddress", Role::Ip),
    ("DestinationIp", Role::Ip),
    ("TargetLogonId", Role::LogonId),
    ("SubjectLogonId", Role::LogonId),
    ("LogonId", Role::LogonId),
    ("ProcessGuid", Role::Guid),
    ("ParentProcessGuid", Role::Guid),
    ("SourceProcessGuid", Role::Guid),
    ("TargetProcessGuid", Role::Guid),
    ("Hashes", Role::Hash),
    ("Hash", Role::Hash),
    ("sha256", Role::Hash),
    ("sha1", Role::Hash),
    ("md5", Role::Hash),
    ("QueryName", Role::Domain),
    ("DestinationHostname", Role::Domain),
];

/// Issue #21: field name → role for non-Windows events (route keys
/// `product:name`, e.g. `aws:cloudtrail`: see [`is_foreign`]). Kept apart
/// from [`FIELDS`] because names compare case-insensitively and some
/// collide with Windows fields of another meaning (M365 `UserId`, a user
/// name, vs the Windows System `UserID`, a SID).
const FOREIGN_FIELDS: &[(&str, Role)] = &[
    // Each format's own names (nested JSON keys as dotted paths). Users:
    ("userIdentity.arn", Role::User(None)),  // CloudTrail
    ("user.username", Role::User(None)),     // Kubernetes audit
    ("actor.alternateId", Role::User(None)), // Okta System Log
    (
        "protoPayload.authenticationInfo.principalEmail",
        Role::User(None),
    ), // GCP audit
    ("actor", Role::User(None)),             // GitHub audit log
    ("UserPrincipalName", Role::User(None)), // Azure sign-in (Sentinel)
    ("properties.userPrincipalName", Role::User(None)), // Azure sign-in (Event Hub)
    ("UserId", Role::User(None)),            // M365 unified audit
    ("cs-username", Role::User(None)),       // W3C / access logs
    ("acct", Role::User(None)),              // auditd PAM records
    // Addresses:
    ("sourceIPAddress", Role::Ip),                       // CloudTrail
    ("sourceIPs", Role::Ip),                             // Kubernetes audit
    ("client.ipAddress", Role::Ip),                      // Okta
    ("protoPayload.requestMetadata.callerIp", Role::Ip), // GCP audit
    ("actor_ip", Role::Ip),                              // GitHub
    ("callerIpAddress", Role::Ip),                       // Azure activity / Event Hub
    ("properties.ipAddress", Role::Ip),                  // Azure sign-in (Event Hub)
    ("IPAddress", Role::Ip),                             // Azure sign-in (Sentinel)
    ("ClientIP", Role::Ip),                              // M365 unified audit
    ("c-ip", Role::Ip),                                  // W3C / access logs
    ("id.orig_h", Role::Ip),                             // Zeek
    ("id.resp_h", Role::Ip),                             // Zeek
    ("addr", Role::Ip),                                  // auditd (USER_*, SOCKADDR)
    // Names:
    ("query", Role::Domain),   // Zeek dns
    ("cs-host", Role::Domain), // W3C
];

/// True for an event of a non-Windows reader: its channel is a route key
/// `product:name` (`linux:auditd`, `zeek:dns`); Windows channel names
/// never contain `:`.
fn is_foreign(ev: &Event) -> bool {
    ev.meta.channel.as_deref().is_some_and(|c| c.contains(':'))
}

/// The domain fields combined with `TargetUserName` / `SubjectUserName`.
const DOMAIN_FIELDS: [&str; 2] = ["TargetDomainName", "SubjectDomainName"];

/// Account names (the part after the last `\`, compared case-insensitively)
/// that never become entities.
const STOP_USERS: &[&str] = &[
    "-",
    "system",
    "local service",
    "network service",
    "anonymous logon",
    "localservice",
    "networkservice",
    // Service Control Manager's name for SYSTEM (7045 `AccountName`): a
    // fresh-user finding merged two hosts' PsExec services through it.
    "localsystem",
];

/// Well-known logon ids: SYSTEM, NETWORK SERVICE, LOCAL SERVICE, none.
const STOP_LOGON_IDS: [u64; 4] = [0x3e7, 0x3e4, 0x3e5, 0x0];

/// True when `a` equals `b` ASCII case-insensitively, ignoring spaces (the
/// workspace rule for field names: `Threat Name` = `ThreatName`).
fn name_eq(a: &str, b: &str) -> bool {
    let mut x = a.bytes().filter(|&c| c != b' ');
    let mut y = b.bytes().filter(|&c| c != b' ');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.eq_ignore_ascii_case(&q) => {}
            _ => return false,
        }
    }
}

fn role_of(name: &str, foreign: bool) -> Option<Role> {
    let extra: &[(&str, Role)] = if foreign { FOREIGN_FIELDS } else { &[] };
    FIELDS
        .iter()
        .chain(extra)
        .find(|(n, _)| name_eq(n, name))
        .map(|&(_, r)| r)
}

/// Appends the rare entities of `ev` to `out`.
///
/// Source: the field names of the Windows Security audit events (4624,
/// 4625, 4648, 4672, 4688, 4768/4769/4776 …), Sysmon (1, 3, 5, 8, 10, 15,
/// 22 …) and PowerShell, as the readers name them (see `tracehunt-event`);
/// for non-Windows events (issue #21) each format's own field names: the
/// AWS CloudTrail record, Kubernetes audit Event, Okta System Log, GCP
/// `AuditLog`, GitHub audit log, Azure/Entra and M365 audit schemas, Zeek's
/// `id.orig_h`/`id.resp_h`, W3C `c-ip`/`cs-username`, auditd `acct`/`addr`
/// — these only for events whose channel is a `product:name` route key.
/// Field names compare ASCII case-insensitively with spaces ignored; every
/// value of a repeated field counts; integer values are read as text
/// (logon ids as numbers).
///
/// | kind | fields | normal form |
/// |---|---|---|
/// | [`EntityKind::User`] | `TargetUserName`, `SubjectUserName`, `User`, `AccountName`, `TargetUser`, `SourceUser`; non-Windows: `userIdentity.arn`, `user.username`, `actor.alternateId`, `protoPayload.authenticationInfo.principalEmail`, `actor`, `UserPrincipalName`, `properties.userPrincipalName`, `UserId`, `cs-username`, `acct` | lowercase; `TargetUserName` / `SubjectUserName` prefixed `domain\` from the first usable `TargetDomainName` / `SubjectDomainName` |
/// | [`EntityKind::Ip`] | `IpAddress`, `SourceIp`, `SourceAddress`, `ClientAddress`, `DestinationIp`; non-Windows: `sourceIPAddress`, `sourceIPs`, `client.ipAddress`, `protoPayload.requestMetadata.callerIp`, `actor_ip`, `callerIpAddress`, `properties.ipAddress`, `IPAddress`, `ClientIP`, `c-ip`, `id.orig_h`, `id.resp_h`, `addr` | `::ffff:` stripped, parsed by `std::net::IpAddr` (else no entity), its display form |
/// | [`EntityKind::LogonId`] | `TargetLogonId`, `SubjectLogonId`, `LogonId` | `0x` hex or decimal read as a `u64`, written `0x` + lowercase hex |
/// | [`EntityKind::ProcessGuid`] | `ProcessGuid`, `ParentProcessGuid`, `SourceProcessGuid`, `TargetProcessGuid` | braces removed, lowercase; must be 8-4-4-4-12 hex digits |
/// | [`EntityKind::Hash`] | `Hashes`, `Hash` (`ALG=hex,…` lists: every algorithm but `IMPHASH`), `sha256`, `sha1`, `md5` | lowercase; must be 32, 40 or 64 hex digits |
/// | [`EntityKind::Domain`] | `QueryName`, `DestinationHostname`; non-Windows: `query` (Zeek dns), `cs-host` | lowercase, one trailing `.` removed; IP literals are not domains |
///
/// Stop values never become entities: empty values and `-`; the accounts
/// `SYSTEM`, `LOCAL SERVICE`, `NETWORK SERVICE`, `ANONYMOUS LOGON` (also
/// written `LocalService`/`NetworkService`, and `LocalSystem`) under any domain such as
/// `NT AUTHORITY\`, and the virtual accounts `DWM-*` and `UMFD-*`; the logon
/// ids `0x3e7`, `0x3e4`, `0x3e5` and `0x0`; the all-zero GUID; loopback
/// (`127.0.0.0/8`, `::1`), unspecified (`0.0.0.0`, `::`) and link-local
/// (`169.254.0.0/16`, `fe80::/10`) addresses; the domain `localhost`; hashes
/// of all zeros. A domain value that is `-` leaves the user name bare.
///
/// Entities are appended in field order, each (kind, value) at most once per
/// call; what `out` held before is left as it was. No errors: a value that
/// does not parse as its kind is skipped.
pub fn extract(ev: &Event, out: &mut Vec<(EntityKind, String)>) {
    let start = out.len();
    let foreign = is_foreign(ev);
    let mut domains: [Option<String>; 2] = [None, None];
    for (name, value) in ev.fields() {
        for (slot, field) in DOMAIN_FIELDS.iter().enumerate() {
            if domains[slot].is_none() && name_eq(field, name) {
                let d = value.to_text();
                let d = d.trim();
                if !d.is_empty() && d != "-" {
                    domains[slot] = Some(d.to_lowercase());
                }
            }
        }
    }
    let mut found = Vec::new();
    for (name, value) in ev.fields() {
        let Some(role) = role_of(name, foreign) else {
            continue;
        };
        found.clear();
        match role {
            Role::User(dom) => {
                let domain = dom.and_then(|i| domains[i].as_deref());
                found.extend(user(value, domain).map(|u| (EntityKind::User, u)));
            }
            Role::Ip => found.extend(ip(&value.to_text()).map(|v| (EntityKind::Ip, v))),
            Role::LogonId => found.extend(logon_id(value).map(|v| (EntityKind::LogonId, v))),
            Role::Guid => {
                found.extend(guid(&value.to_text()).map(|v| (EntityKind::ProcessGuid, v)))
            }
            Role::Hash => hashes(&value.to_text(), &mut found),
            Role::Domain => found.extend(domain(&value.to_text()).map(|v| (EntityKind::Domain, v))),
        }
        for e in found.drain(..) {
            if !out[start..].contains(&e) {
                out.push(e);
            }
        }
    }
}

/// A user entity: `domain\user` lowercase, or `None` for a stop value.
fn user(value: &Value, domain: Option<&str>) -> Option<String> {
    let text = value.to_text();
    let text = text.trim();
    let account = text.rsplit('\\').next().unwrap_or(text).trim();
    if is_stop_account(account) {
        return None;
    }
    let lower = text.to_lowercase();
    Some(match domain {
        Some(d) if !text.contains('\\') => format!("{d}\\{lower}"),
        _ => lower,
    })
}

/// True for the accounts that are on every Windows machine.
pub(crate) fn is_stop_account(account: &str) -> bool {
    if account.is_empty() {
        return true;
    }
    let lower = account.to_ascii_lowercase();
    STOP_USERS.contains(&lower.as_str()) || lower.starts_with("dwm-") || lower.starts_with("umfd-")
}

/// An IP entity, or `None` for text that is not an address or a stop address.
fn ip(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("::ffff:"))
        .map_or(t, |_| &t[7..]);
    let addr: IpAddr = t.parse().ok()?;
    let stop = match addr {
        IpAddr::V4(a) => a.is_loopback() || a.is_unspecified() || a.is_link_local(),
        IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    (!stop).then(|| addr.to_string())
}

/// A logon id entity (`0x` + lowercase hex), or `None`.
fn logon_id(value: &Value) -> Option<String> {
    let n = match value {
        Value::Int(i) => u64::try_from(*i).ok()?,
        other => {
            let text = other.to_text();
            let t = text.trim();
            match t.get(..2) {
                Some(p) if p.eq_ignore_ascii_case("0x") => u64::from_str_radix(&t[2..], 16).ok()?,
                _ => t.parse().ok()?,
            }
        }
    };
    (!STOP_LOGON_IDS.contains(&n)).then(|| format!("{n:#x}"))
}

/// A process GUID entity (lowercase, no braces), or `None`.
fn guid(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t.strip_prefix('{').unwrap_or(t);
    let t = t.strip_suffix('}').unwrap_or(t);
    let groups: Vec<&str> = t.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(shape)
            .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()));
    let zero = t.bytes().all(|c| c == b'0' || c == b'-');
    (ok && !zero).then(|| t.to_ascii_lowercase())
}

/// Hash entities of a `Hashes`-style list or one plain hash.
fn hashes(text: &str, found: &mut Vec<(EntityKind, String)>) {
    for part in text.split(',') {
        let part = part.trim();
        let hex = match part.split_once('=') {
            Some((alg, _)) if alg.trim().eq_ignore_ascii_case("imphash") => continue,
            Some((_, h)) => h.trim(),
            None => part,
        };
        let ok = matches!(hex.len(), 32 | 40 | 64)
            && hex.bytes().all(|c| c.is_ascii_hexdigit())
            && !hex.bytes().all(|c| c == b'0');
        if ok {
            found.push((EntityKind::Hash, hex.to_ascii_lowercase()));
        }
    }
}

/// A domain entity (lowercase, no trailing dot), or `None`.
fn domain(text: &str) -> Option<String> {
    let t = text.trim();
    let t = t.strip_suffix('.').unwrap_or(t);
    if t.is_empty() || t == "-" || t.parse::<IpAddr>().is_ok() {
        return None;
    }
    let lower = t.to_lowercase();
    (lower != "localhost").then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracehunt_event::EventMeta;

    fn ev(fields: &[(&str, Value)]) -> Event {
        let mut e = Event::with_meta(EventMeta::default());
        for (n, v) in fields {
            e.push(*n, v.clone());
        }
        e
    }

    fn run(e: &Event) -> Vec<(EntityKind, String)> {
        let mut out = Vec::new();
        extract(e, &mut out);
        out
    }

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    #[test]
    fn logon_4624_user_domain_ip_logon_id() {
        let e = ev(&[
            ("SubjectUserName", s("-")),
            ("SubjectDomainName", s("-")),
            ("SubjectLogonId", s("0x0")),
            ("TargetUserName", s("PGustavo")),
            ("TargetDomainName", s("THESHIRE.LOCAL")),
            ("TargetLogonId", s("0x4E13B2E")),
            ("IpAddress", s("::ffff:172.18.39.5")),
        ]);
        assert_eq!(
            run(&e),
            vec![
                (EntityKind::User, "theshire.local\\pgustavo".to_owned()),
                (EntityKind::LogonId, "0x4e13b2e".to_owned()),
                (EntityKind::Ip, "172.18.39.5".to_owned()),
            ]
        );
    }

    #[test]
    fn cloudtrail_zeek_and_web_fields_give_entities() {
        // Field names as the issue #21 readers write them (dotted paths).
        let foreign = |fields: &[(&str, Value)], channel: &str| {
            let mut e = ev(fields);
            e.meta.channel = Some(channel.into());
            e
        };
        let trail = foreign(
            &[
                ("eventName", s("CreateAccessKey")),
                (
                    "userIdentity.arn",
                    s("arn:aws:iam::012345678901:user/Alice"),
                ),
                ("sourceIPAddress", s("203.0.113.7")),
                // Stratus pseudonymised addresses do not parse: no entity.
                ("sourceIPAddress", s("075.050.255.67")),
            ],
            "aws:cloudtrail",
        );
        assert_eq!(
            run(&trail),
            vec![
                (
                    EntityKind::User,
                    "arn:aws:iam::012345678901:user/alice".to_owned()
                ),
                (EntityKind::Ip, "203.0.113.7".to_owned()),
            ]
        );
        let zeek = foreign(
            &[
                ("id.orig_h", s("10.47.2.154")),
                ("id.resp_h", s("10.47.1.10")),
                ("query", s("WPAD.example.org.")),
            ],
            "zeek:dns",
        );
        assert_eq!(
            run(&zeek),
            vec![
                (EntityKind::Ip, "10.47.2.154".to_owned()),
                (EntityKind::Ip, "10.47.1.10".to_owned()),
                (EntityKind::Domain, "wpad.example.org".to_owned()),
            ]
        );
        let web = foreign(
            &[("c-ip", s("83.149.9.216")), ("cs-username", s("-"))],
            "webserver:access",
        );
        assert_eq!(run(&web), vec![(EntityKind::Ip, "83.149.9.216".to_owned())]);
    }

    #[test]
    fn windows_user_id_sid_is_not_an_m365_user() {
        // Regression: M365's `UserId` matched the Windows System `UserID`
        // (a SID, case-insensitively) and merged unrelated hosts' incidents.
        let mut e = ev(&[(
            "UserID",
            s("S-1-5-21-4230534742-2542757381-3142984815-1111"),
        )]);
        e.meta.channel = Some("Microsoft-Windows-PowerShell/Operational".into());
        assert!(run(&e).is_empty());
        e.meta.channel = Some("m365:audit".into());
        assert_eq!(run(&e).len(), 1);
    }

    #[test]
    fn stop_values_give_nothing() {
        let e = ev(&[
            ("User", s("NT AUTHORITY\\SYSTEM")),
            ("AccountName", s("SYSTEM")),
            ("SubjectUserName", s("LOCAL SERVICE")),
            ("TargetUserName", s("ANONYMOUS LOGON")),
            ("SourceUser", s("Window Manager\\DWM-1")),
            ("TargetUser", s("Font Driver Host\\UMFD-0")),
            ("User", s("NT AUTHORITY\\NETWORK SERVICE")),
            ("User", s("")),
            ("IpAddress", s("127.0.0.1")),
            ("IpAddress", s("127.8.9.1")),
            ("SourceIp", s("::1")),
            ("SourceIp", s("::")),
            ("SourceAddress", s("0.0.0.0")),
            ("ClientAddress", s("169.254.3.4")),
            ("DestinationIp", s("fe80::1c2b:3c4d")),
            ("DestinationIp", s("::ffff:127.0.0.1")),
            ("IpAddress", s("-")),
            ("TargetLogonId", s("0x3E7")),
            ("SubjectLogonId", s("0x3e4")),
            ("LogonId", s("0x3e5")),
            ("LogonId", Value::Int(0)),
            ("ProcessGuid", s("{00000000-0000-0000-0000-000000000000}")),
            ("Hashes", s("MD5=00000000000000000000000000000000")),
            ("QueryName", s("localhost")),
            ("DestinationHostname", s("-")),
            ("DestinationHostname", s("LOCALHOST.")),
        ]);
        assert_eq!(run(&e), vec![]);
    }

    #[test]
    fn sysmon_process_fields() {
        let e = ev(&[
            ("ProcessGuid", s("{39E4A257-FC4B-5F90-9411-000000000700}")),
            ("ParentProcessGuid", s("{39e4a257-fc2f-5f90-9211-000000000700}")),
            ("User", s("WORKSTATION5\\wardog")),
            ("LogonId", s("0xc61d9")),
            (
                "Hashes",
                s("SHA1=EB3B03616EEE42F16D0703F64DE23E7E34FE8524,MD5=601BDDF7691C5AF626A5719F1D7E35F1,IMPHASH=BE482BE427FE212CFEF2CDA0E61F19AC"),
            ),
            ("hashes", s("MD5=601BDDF7691C5AF626A5719F1D7E35F1")),
        ]);
        assert_eq!(
            run(&e),
            vec![
                (
                    EntityKind::ProcessGuid,
                    "39e4a257-fc4b-5f90-9411-000000000700".to_owned()
                ),
                (
                    EntityKind::ProcessGuid,
                    "39e4a257-fc2f-5f90-9211-000000000700".to_owned()
                ),
                (EntityKind::User, "workstation5\\wardog".to_owned()),
                (EntityKind::LogonId, "0xc61d9".to_owned()),
                (
                    EntityKind::Hash,
                    "eb3b03616eee42f16d0703f64de23e7e34fe8524".to_owned()
                ),
                (
                    EntityKind::Hash,
                    "601bddf7691c5af626a5719f1d7e35f1".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn names_case_and_spaces_domains_and_junk() {
        let e = ev(&[
            ("queryname", s("Evil.Example.COM.")),
            ("Destination Hostname", s("10.0.0.1")),
            ("SOURCEIP", s("2001:DB8::1")),
            ("DestinationIp", s("not-an-ip")),
            ("LogonId", s("zz")),
            ("ProcessGuid", s("{not-a-guid}")),
            ("sha256", s("abc")),
            ("TargetLogonId", Value::Int(0x1234)),
            ("SubjectLogonId", s("4660")),
        ]);
        assert_eq!(
            run(&e),
            vec![
                (EntityKind::Domain, "evil.example.com".to_owned()),
                (EntityKind::Ip, "2001:db8::1".to_owned()),
                (EntityKind::LogonId, "0x1234".to_owned()),
            ]
        );
    }

    #[test]
    fn kind_names() {
        let all = [
            (EntityKind::User, "user"),
            (EntityKind::Ip, "ip"),
            (EntityKind::LogonId, "logon_id"),
            (EntityKind::ProcessGuid, "process_guid"),
            (EntityKind::Hash, "hash"),
            (EntityKind::Domain, "domain"),
        ];
        for (k, n) in all {
            assert_eq!(k.as_str(), n);
        }
    }
}
