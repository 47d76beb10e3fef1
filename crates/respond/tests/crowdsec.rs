//! The `crowdsec` action: the argv given to `cscli`, checked with a stand-in
//! script in place of cscli (one test in this binary, so no other test
//! thread forks while the script file is written).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use tracehunt_respond::IndicatorKind::{Domain, Ip};
use tracehunt_respond::Outcome;

#[test]
fn crowdsec_decision_argv_per_ip_with_duration_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cscli = dir.path().join("cscli");
    let out = dir.path().join("cscli.argv");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\0' \"$@\" >> '{}'\nprintf '\\n\\0' >> '{}'\n",
        out.display(),
        out.display()
    );
    std::fs::write(&cscli, script).unwrap();
    std::fs::set_permissions(&cscli, std::fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = format!(
        r#"
dry_run: false
allowlist: {{ ips: ["2001:db8::/32"] }}
responses:
  - name: ban
    when: {{ min_level: high }}
    actions:
      - crowdsec: {{ cscli: "{}", duration: 6h, reason: "tracehunt {{rule_id}} on {{host}}" }}
"#,
        cscli.display()
    );
    let mut r = responder(&yaml);
    let mut t = detection(
        "rule-x; $(reboot)",
        &[
            (Ip, "203.0.113.7"),
            (Domain, "evil.example"),
            (Ip, "2001:db8::1"),
        ],
    );
    t.host = "WS1\nWS2".into();
    let recs = r.handle(&t, t0());
    assert_eq!(
        outcomes(&recs),
        owned(&[
            ("203.0.113.7", Outcome::Taken),
            ("2001:db8::1", Outcome::SkippedAllowlisted)
        ])
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let args: Vec<&str> = text.split('\0').collect();
    assert_eq!(
        args,
        [
            "decisions",
            "add",
            "--ip",
            "203.0.113.7",
            "--duration",
            "21600s",
            "--type",
            "ban",
            "--reason",
            "tracehunt rule-x; $(reboot) on WS1\nWS2",
            "\n",
            ""
        ]
    );
    // Once per IP within the dedupe period.
    let again = r.handle(&t, t0() + mins(10));
    assert_eq!(again[0].outcome, Outcome::SkippedDuplicate);
    // CrowdSec expires its decisions itself: nothing for expire() to do.
    assert!(r.expire(t0() + mins(24 * 60)).is_empty());
}
