//! Names of common Windows EventIDs (Security auditing, Sysmon, PowerShell,
//! System, TerminalServices, Defender), as Microsoft's documentation titles
//! them, shortened.

/// The name of `event_id` on `channel` (case-insensitive channel match),
/// for the commonest Security, Sysmon, PowerShell, System, RDP and
/// Defender events; `None` when not in the table.
pub fn event_name(channel: &str, event_id: u32) -> Option<&'static str> {
    let c = channel.to_ascii_lowercase();
    let table: &[(u32, &str)] = match c.as_str() {
        "security" => SECURITY,
        "microsoft-windows-sysmon/operational" | "linux-sysmon/operational" => SYSMON,
        "microsoft-windows-powershell/operational" | "windows powershell" => POWERSHELL,
        "system" => SYSTEM,
        "microsoft-windows-terminalservices-remoteconnectionmanager/operational"
        | "microsoft-windows-terminalservices-localsessionmanager/operational" => RDP,
        "microsoft-windows-windows defender/operational" => DEFENDER,
        _ => return None,
    };
    table
        .iter()
        .find(|(id, _)| *id == event_id)
        .map(|(_, n)| *n)
}

const SECURITY: &[(u32, &str)] = &[
    (1102, "Audit log cleared"),
    (4624, "Logon success"),
    (4625, "Logon failure"),
    (4634, "Logoff"),
    (4647, "User initiated logoff"),
    (4648, "Explicit credential logon"),
    (4656, "Handle to an object requested"),
    (4657, "Registry value modified"),
    (4658, "Handle to an object closed"),
    (4660, "Object deleted"),
    (4661, "Handle to an object requested (SAM/AD)"),
    (4662, "Operation performed on an AD object"),
    (4663, "Object access attempt"),
    (4672, "Special privileges assigned to new logon"),
    (4673, "Privileged service called"),
    (4688, "Process created"),
    (4689, "Process exited"),
    (4697, "Service installed"),
    (4698, "Scheduled task created"),
    (4699, "Scheduled task deleted"),
    (4702, "Scheduled task updated"),
    (4719, "System audit policy changed"),
    (4720, "User account created"),
    (4722, "User account enabled"),
    (4723, "Password change attempt"),
    (4724, "Password reset attempt"),
    (4726, "User account deleted"),
    (4728, "Member added to global security group"),
    (4732, "Member added to local security group"),
    (4738, "User account changed"),
    (4756, "Member added to universal security group"),
    (4768, "Kerberos TGT requested"),
    (4769, "Kerberos service ticket requested"),
    (4771, "Kerberos pre-authentication failed"),
    (4776, "Credential validation (NTLM)"),
    (4778, "Session reconnected"),
    (4779, "Session disconnected"),
    (4781, "Account name changed"),
    (4794, "DSRM password set attempt"),
    (4798, "User's local group membership enumerated"),
    (4799, "Local group membership enumerated"),
    (5136, "Directory service object modified"),
    (5140, "Network share accessed"),
    (5145, "Network share object access checked"),
    (5156, "Connection permitted (WFP)"),
    (5158, "Bind permitted (WFP)"),
];

const SYSMON: &[(u32, &str)] = &[
    (1, "Process creation"),
    (2, "File creation time changed"),
    (3, "Network connection"),
    (4, "Sysmon service state changed"),
    (5, "Process terminated"),
    (6, "Driver loaded"),
    (7, "Image loaded"),
    (8, "CreateRemoteThread"),
    (9, "RawAccessRead"),
    (10, "Process access"),
    (11, "File created"),
    (12, "Registry object added or deleted"),
    (13, "Registry value set"),
    (14, "Registry object renamed"),
    (15, "File stream created"),
    (16, "Sysmon configuration change"),
    (17, "Pipe created"),
    (18, "Pipe connected"),
    (19, "WMI event filter"),
    (20, "WMI event consumer"),
    (21, "WMI consumer to filter"),
    (22, "DNS query"),
    (23, "File delete archived"),
    (24, "Clipboard changed"),
    (25, "Process tampering"),
    (26, "File delete logged"),
    (27, "File block executable"),
    (28, "File block shredding"),
    (29, "File executable detected"),
    (255, "Sysmon error"),
];

const POWERSHELL: &[(u32, &str)] = &[
    (400, "Engine state changed to Available"),
    (403, "Engine state changed to Stopped"),
    (600, "Provider started"),
    (800, "Pipeline execution details"),
    (4100, "Error message"),
    (4103, "Module logging"),
    (4104, "Script block logging"),
    (4105, "Script block invocation started"),
    (4106, "Script block invocation completed"),
];

const SYSTEM: &[(u32, &str)] = &[
    (104, "Event log cleared"),
    (7034, "Service crashed"),
    (7036, "Service state changed"),
    (7040, "Service start type changed"),
    (7045, "Service installed"),
];

const RDP: &[(u32, &str)] = &[
    (21, "RDP session logon succeeded"),
    (22, "RDP shell start notification"),
    (23, "RDP session logoff succeeded"),
    (24, "RDP session disconnected"),
    (25, "RDP session reconnected"),
    (1149, "RDP user authentication succeeded"),
];

const DEFENDER: &[(u32, &str)] = &[
    (1116, "Malware detected"),
    (1117, "Malware action taken"),
    (5001, "Real-time protection disabled"),
    (5007, "Configuration changed"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_channel() {
        assert_eq!(event_name("Security", 4624), Some("Logon success"));
        assert_eq!(event_name("security", 4625), Some("Logon failure"));
        assert_eq!(
            event_name("Microsoft-Windows-Sysmon/Operational", 1),
            Some("Process creation")
        );
        // The same number means something else elsewhere.
        assert_eq!(event_name("Application", 4624), None);
        assert_eq!(event_name("Security", 1), None);
    }
}
