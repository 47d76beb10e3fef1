//! Channel names: their canonical casing ([`canonical_channel`]), and the
//! source channel of events labelled `Channel: ForwardedEvents`.
//!
//! `ForwardedEvents` is the log a Windows Event Forwarding (WEF) collector
//! stores what its sources send, and the label some collectors and exports
//! give every event read from it. The channel the event was written to on
//! its source machine is not in the record, so Sigma logsources (which name
//! channels) never met these events (issue #20: 352 detections on the
//! SigmaHQ regression events fell to 0). The provider, and for a few
//! providers the EventID, tells the source channel: [`FORWARDED_SOURCES`]
//! lists them, and [`unforward`] rewrites such an event to that channel,
//! keeping the label as the field `CollectorChannel`.

use tracehunt_event::{Event, Value};

/// Windows channel names in their canonical casing. A channel that matches
/// one of these ignoring ASCII case is rewritten to it (Mordor has both
/// `Security` and `security`). Sources: SigmaHQ `tests/thor.yml`
/// (`WinEventLog:` sources) and channels seen in the sample corpora.
const CANONICAL_CHANNELS: &[&str] = &[
    "Application",
    "Security",
    "System",
    "Setup",
    "ForwardedEvents",
    "Windows PowerShell",
    "PowerShellCore/Operational",
    "DNS Server",
    "Directory Service",
    "Microsoft-Windows-Sysmon/Operational",
    "Microsoft-Windows-PowerShell/Operational",
    "Microsoft-Windows-WMI-Activity/Operational",
    "Microsoft-Windows-TaskScheduler/Operational",
    "Microsoft-Windows-Windows Defender/Operational",
    "Microsoft-Windows-CodeIntegrity/Operational",
    "Microsoft-Windows-DHCP-Server/Operational",
    "Microsoft-Windows-NTLM/Operational",
    "Microsoft-Windows-PrintService/Admin",
    "Microsoft-Windows-PrintService/Operational",
    "Microsoft-Windows-SMBServer/Connectivity",
    "Microsoft-Windows-SMBServer/Security",
    "Microsoft-Windows-SmbClient/Connectivity",
    "Microsoft-Windows-SmbClient/Security",
    "Microsoft-Windows-Bits-Client/Operational",
    "Microsoft-Windows-DNS-Client/Operational",
    "Microsoft-Windows-WinRM/Operational",
    "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
    "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational",
    "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational",
    "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",
    "Microsoft-Windows-AppLocker/EXE and DLL",
    "Microsoft-Windows-AppLocker/MSI and Script",
    "Microsoft-Windows-AppLocker/Packaged app-Deployment",
    "Microsoft-Windows-AppLocker/Packaged app-Execution",
    "Microsoft-Windows-LSA/Operational",
    "Microsoft-Windows-Security-Mitigations/KernelMode",
    "Microsoft-Windows-Security-Mitigations/UserMode",
    "Microsoft-Windows-Shell-Core/Operational",
    "Microsoft-Windows-OpenSSH/Operational",
    "Microsoft-Windows-AppXDeployment-Server/Operational",
    "Microsoft-Windows-Kernel-ShimEngine/Operational",
    "Microsoft-Windows-Application-Experience/Program-Telemetry",
];

/// The canonical casing of a well-known Windows channel name, or the name
/// unchanged (trimmed) if it is not one of the known channels.
///
/// ```
/// assert_eq!(tracehunt_readers::canonical_channel("security"), "Security");
/// assert_eq!(
///     tracehunt_readers::canonical_channel("microsoft-windows-sysmon/operational"),
///     "Microsoft-Windows-Sysmon/Operational"
/// );
/// assert_eq!(tracehunt_readers::canonical_channel("My/Custom"), "My/Custom");
/// ```
pub fn canonical_channel(name: &str) -> &str {
    let t = name.trim();
    CANONICAL_CHANNELS
        .iter()
        .find(|c| c.eq_ignore_ascii_case(t))
        .copied()
        .unwrap_or(t)
}

/// The channel as written in an event forwarded to a WEF collector, kept by
/// [`event_from_json_value`](crate::event_from_json_value) under this field name when it routes the event to its
/// source channel.
pub const COLLECTOR_CHANNEL_FIELD: &str = "CollectorChannel";

/// One row of [`FORWARDED_SOURCES`]: events of `provider` (compared ASCII
/// case-insensitively) with an EventID in `event_ids` (inclusive ranges;
/// empty: every EventID) are written to `channel` on their source machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedSource {
    /// `System/Provider/@Name`.
    pub provider: &'static str,
    /// Inclusive EventID ranges; empty for every EventID of the provider.
    pub event_ids: &'static [(u32, u32)],
    /// The channel those events are written to.
    pub channel: &'static str,
}

/// Which channel a provider writes to on the source machine, for events a
/// WEF collector stored in `ForwardedEvents`.
///
/// Only providers that write to one channel (or, for AppLocker, one channel
/// per EventID range; Microsoft, "Using Event Viewer with AppLocker") are
/// listed. Left out on purpose, so their events stay in `ForwardedEvents`:
/// providers with events in several channels that the EventID does not tell
/// apart (SMB client and server, PrintService, Security-Mitigations, DNS
/// server), and `Microsoft-Windows-Eventlog`, whose events about a log
/// (104 "log cleared") carry that log's own channel — a 104 in
/// `ForwardedEvents` is about the collector's log itself.
pub const FORWARDED_SOURCES: &[ForwardedSource] = &[
    ForwardedSource {
        provider: "Microsoft-Windows-Security-Auditing",
        event_ids: &[],
        channel: "Security",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-Sysmon",
        event_ids: &[],
        channel: "Microsoft-Windows-Sysmon/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-PowerShell",
        event_ids: &[],
        channel: "Microsoft-Windows-PowerShell/Operational",
    },
    ForwardedSource {
        provider: "PowerShellCore",
        event_ids: &[],
        channel: "PowerShellCore/Operational",
    },
    // Classic Windows PowerShell (400, 403, 600, 800).
    ForwardedSource {
        provider: "PowerShell",
        event_ids: &[],
        channel: "Windows PowerShell",
    },
    ForwardedSource {
        provider: "Service Control Manager",
        event_ids: &[],
        channel: "System",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-Windows Defender",
        event_ids: &[],
        channel: "Microsoft-Windows-Windows Defender/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-TaskScheduler",
        event_ids: &[],
        channel: "Microsoft-Windows-TaskScheduler/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-WMI-Activity",
        event_ids: &[],
        channel: "Microsoft-Windows-WMI-Activity/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-Bits-Client",
        event_ids: &[],
        channel: "Microsoft-Windows-Bits-Client/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-DNS-Client",
        event_ids: &[],
        channel: "Microsoft-Windows-DNS-Client/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-CodeIntegrity",
        event_ids: &[],
        channel: "Microsoft-Windows-CodeIntegrity/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-NTLM",
        event_ids: &[],
        channel: "Microsoft-Windows-NTLM/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-WinRM",
        event_ids: &[],
        channel: "Microsoft-Windows-WinRM/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-TerminalServices-LocalSessionManager",
        event_ids: &[],
        channel: "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
        event_ids: &[],
        channel: "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-LSA",
        event_ids: &[],
        channel: "Microsoft-Windows-LSA/Operational",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-Windows Firewall With Advanced Security",
        event_ids: &[],
        channel: "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-AppLocker",
        event_ids: &[(8002, 8004)],
        channel: "Microsoft-Windows-AppLocker/EXE and DLL",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-AppLocker",
        event_ids: &[(8005, 8007)],
        channel: "Microsoft-Windows-AppLocker/MSI and Script",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-AppLocker",
        event_ids: &[(8020, 8022)],
        channel: "Microsoft-Windows-AppLocker/Packaged app-Execution",
    },
    ForwardedSource {
        provider: "Microsoft-Windows-AppLocker",
        event_ids: &[(8023, 8025)],
        channel: "Microsoft-Windows-AppLocker/Packaged app-Deployment",
    },
];

/// The channel an event of `provider` with `event_id` was written to on its
/// source machine, by [`FORWARDED_SOURCES`]; `None` when the table does not
/// tell (unknown provider, or an EventID outside the provider's ranges).
///
/// ```
/// use tracehunt_readers::forwarded_source_channel;
/// assert_eq!(
///     forwarded_source_channel("microsoft-windows-sysmon", Some(1)),
///     Some("Microsoft-Windows-Sysmon/Operational")
/// );
/// assert_eq!(
///     forwarded_source_channel("Microsoft-Windows-AppLocker", Some(8004)),
///     Some("Microsoft-Windows-AppLocker/EXE and DLL")
/// );
/// assert_eq!(forwarded_source_channel("Microsoft-Windows-AppLocker", None), None);
/// assert_eq!(forwarded_source_channel("Microsoft-Windows-Eventlog", Some(104)), None);
/// ```
pub fn forwarded_source_channel(provider: &str, event_id: Option<u32>) -> Option<&'static str> {
    let provider = provider.trim();
    FORWARDED_SOURCES
        .iter()
        .find(|s| {
            s.provider.eq_ignore_ascii_case(provider)
                && (s.event_ids.is_empty()
                    || event_id
                        .is_some_and(|e| s.event_ids.iter().any(|&(a, b)| (a..=b).contains(&e))))
        })
        .map(|s| s.channel)
}

/// An event whose channel is `ForwardedEvents` (any case; already made
/// canonical by the shape readers) and whose provider is in
/// [`FORWARDED_SOURCES`]: its `Channel` field(s) and `meta.channel` become
/// the source channel, and the label it had is kept as
/// [`COLLECTOR_CHANNEL_FIELD`]. Any other event is returned unchanged.
pub(crate) fn unforward(ev: Event) -> Event {
    let forwarded = ev
        .meta
        .channel
        .as_deref()
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("ForwardedEvents"));
    if !forwarded {
        return ev;
    }
    let Some(channel) = ev
        .meta
        .provider
        .as_deref()
        .and_then(|p| forwarded_source_channel(p, ev.meta.event_id))
    else {
        return ev;
    };
    let mut meta = ev.meta.clone();
    let label = meta.channel.replace(channel.to_owned());
    let mut out = Event::with_meta(meta);
    for (k, v) in ev.fields() {
        let v = if k == "Channel" {
            Value::Str(channel.to_owned())
        } else {
            v.clone()
        };
        out.push(k, v);
    }
    if let Some(label) = label {
        out.push(COLLECTOR_CHANNEL_FIELD, Value::Str(label));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracehunt_event::EventMeta;

    fn forwarded(provider: &str, event_id: u32) -> Event {
        let mut ev = Event::with_meta(EventMeta {
            channel: Some("ForwardedEvents".into()),
            provider: Some(provider.into()),
            event_id: Some(event_id),
            ..EventMeta::default()
        });
        ev.push("EventID", Value::Int(i64::from(event_id)));
        ev.push("Channel", Value::from("ForwardedEvents"));
        ev.push("Provider_Name", Value::from(provider));
        ev
    }

    #[test]
    fn forwarded_sysmon_event_gets_its_source_channel_and_keeps_the_label() {
        let ev = unforward(forwarded("Microsoft-Windows-Sysmon", 1));
        let ch = "Microsoft-Windows-Sysmon/Operational";
        assert_eq!(ev.meta.channel.as_deref(), Some(ch));
        assert_eq!(ev.first("Channel").and_then(Value::as_str), Some(ch));
        assert_eq!(
            ev.first(COLLECTOR_CHANNEL_FIELD).and_then(Value::as_str),
            Some("ForwardedEvents")
        );
        assert_eq!(ev.len(), 4);
    }

    #[test]
    fn unmapped_provider_or_eventid_stays_forwarded() {
        for (p, id) in [
            ("Microsoft-Windows-Eventlog", 104),
            ("Microsoft-Windows-AppLocker", 8001),
            ("Some-Vendor-Agent", 1),
        ] {
            let before = forwarded(p, id);
            assert_eq!(unforward(before.clone()), before, "{p} {id}");
        }
    }

    #[test]
    fn other_channels_are_untouched() {
        let mut ev = forwarded("Microsoft-Windows-Sysmon", 1);
        ev.meta.channel = Some("Microsoft-Windows-Sysmon/Operational".into());
        assert_eq!(unforward(ev.clone()), ev);
    }
}
