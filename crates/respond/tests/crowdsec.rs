//! The `crowdsec` action: the argv given to `cscli`, checked with a stand-in
//! script in place of cscli; and, when `TRACEHUNT_TEST_CROWDSEC=1` says a
//! CrowdSec LAPI is running here (`crowdsec -no-cs`), a real decision.
//! The tests hold one lock, so no test thread forks while the stand-in
//! script file is open for writing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

use common::*;
use tracehunt_respond::IndicatorKind::{Domain, Ip};
use tracehunt_respond::Outcome;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn crowdsec_decision_argv_per_ip_with_duration_and_reason() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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

#[test]
fn real_cscli_adds_the_decision_when_a_lapi_runs_here() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if std::env::var("TRACEHUNT_TEST_CROWDSEC").as_deref() != Ok("1") {
        eprintln!("TRACEHUNT_TEST_CROWDSEC is not 1: real cscli not tested");
        return;
    }
    let yaml = r#"
dry_run: false
responses:
  - name: ban
    actions:
      - crowdsec: { duration: 2m, reason: "tracehunt test {rule_id}" }
"#;
    let ip = "203.0.113.201";
    let cscli = |args: &[&str]| {
        std::process::Command::new("cscli")
            .args(args)
            .output()
            .unwrap()
    };
    cscli(&["decisions", "delete", "--ip", ip]);
    let mut r = responder(yaml);
    let recs = r.handle(&detection("rule-real", &[(Ip, ip)]), t0());
    assert_eq!(recs[0].outcome, Outcome::Taken, "{}", recs[0].detail);
    let list = cscli(&["decisions", "list", "-i", ip, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let d = &json[0]["decisions"][0];
    assert_eq!(d["value"], ip);
    assert_eq!(d["type"], "ban");
    assert_eq!(d["scenario"], "tracehunt test rule-real");
    cscli(&["decisions", "delete", "--ip", ip]);
}
