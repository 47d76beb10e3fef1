//! Cloud and SaaS audit readers (issue #21) on the real public corpora in
//! `shared/corpora/cloud` (see its README.md): `cloudtrail-stratus`
//! (Apache-2.0, DataDog/stratus-red-team `docs/detonation-logs/`),
//! `k8s-falco` (Apache-2.0, falcosecurity/falco
//! `test/trace_files/k8s_audit/`), `otrf` (MIT, OTRF/Security-Datasets,
//! Golden SAML AD FS Mail Access) and `elastic-integrations` (Elastic
//! License 2.0, elastic/integrations pipeline-test fixtures).
//!
//! Every count was cross-checked independently with Python's `json` module
//! (Python 3, outside this crate): a file whose first non-blank byte is `[`
//! was loaded whole and its `len()` taken; any other file was read line by
//! line, each non-blank line `json.loads`-ed and counted:
//!
//! ```text
//! for f in files: txt = open(f).read()
//!   n = len(json.loads(txt)) if txt.lstrip().startswith('[')
//!       else sum(1 for l in txt.splitlines() if l.strip() and json.loads(l) is not None)
//! ```
//!
//! giving 295 / 40 / 14 / 138 records for the four folders (per file
//! below). The only record that is not an event is falco's hostile
//! `fal_01_003.json` (`{"kind": 0}`).
//!
//! When the corpora are missing the tests print a note and pass.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tracehunt_event::{Event, Value};
use tracehunt_readers::{
    open, open_bytes, plan_json_lines_bytes, Format, RecordError, RecordErrorKind,
};

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/cloud"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        println!("note: {} not found; cloud corpus test skipped", p.display());
        None
    }
}

fn split(it: impl Iterator<Item = Result<Event, RecordError>>) -> (Vec<Event>, Vec<RecordError>) {
    let (mut evs, mut errs) = (Vec::new(), Vec::new());
    for r in it {
        match r {
            Ok(e) => evs.push(e),
            Err(e) => errs.push(e),
        }
    }
    (evs, errs)
}

fn read_all(path: &Path) -> (Vec<Event>, Vec<RecordError>) {
    split(open(path).unwrap_or_else(|e| panic!("{e}")))
}

fn text(ev: &Event, name: &str) -> Option<String> {
    ev.first(name).map(|v| v.to_text().into_owned())
}

fn texts(ev: &Event, name: &str) -> Vec<String> {
    ev.get(name).map(|v| v.to_text().into_owned()).collect()
}

/// The data files of a folder (licences, SOURCE.txt and `_metadata` YAML
/// are not logs), sorted.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let (files, errs) = tracehunt_readers::walk(&[dir.to_path_buf()]);
    assert!(errs.is_empty(), "{errs:?}");
    files
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".json") || n.ends_with(".log")
        })
        .collect()
}

/// Per file (relative name): events, record errors, and the one channel
/// every event has.
fn per_file(dir: &Path) -> BTreeMap<String, (usize, usize, String)> {
    let mut out = BTreeMap::new();
    for f in data_files(dir) {
        let (evs, errs) = read_all(&f);
        let mut channels: Vec<String> = evs
            .iter()
            .map(|e| {
                e.meta
                    .channel
                    .clone()
                    .expect("every cloud event has a channel")
            })
            .collect();
        channels.dedup();
        assert!(channels.len() <= 1, "{}: {channels:?}", f.display());
        for e in &evs {
            assert!(!e.has("Channel"), "no Channel field is pushed");
            assert_eq!(e.meta.event_id, None);
            assert!(e.meta.record_id.is_some());
        }
        let name = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        out.insert(
            name,
            (evs.len(), errs.len(), channels.pop().unwrap_or_default()),
        );
    }
    out
}

#[test]
fn cloudtrail_stratus_counts_channels_and_values() {
    let Some(root) = corpora() else { return };
    let dir = root.join("cloudtrail-stratus");
    let got = per_file(&dir);
    let want: &[(&str, usize)] = &[
        ("aws.credential-access.ec2-get-password-data.json", 34),
        (
            "aws.credential-access.ec2-steal-instance-credentials.json",
            45,
        ),
        (
            "aws.credential-access.secretsmanager-retrieve-secrets.json",
            21,
        ),
        (
            "aws.credential-access.ssm-retrieve-securestring-parameters.json",
            10,
        ),
        ("aws.defense-evasion.cloudtrail-delete.json", 1),
        ("aws.defense-evasion.cloudtrail-event-selectors.json", 1),
        ("aws.defense-evasion.dns-delete-logs.json", 1),
        ("aws.defense-evasion.organizations-leave.json", 3),
        ("aws.defense-evasion.vpc-remove-flow-logs.json", 1),
        ("aws.discovery.ec2-download-user-data.json", 19),
        ("aws.execution.ec2-launch-unusual-instances.json", 3),
        ("aws.execution.ec2-user-data.json", 35),
        ("aws.execution.ssm-send-command.json", 56),
        ("aws.execution.ssm-start-session.json", 29),
        (
            "aws.exfiltration.ec2-security-group-open-port-22-ingress.json",
            1,
        ),
        ("aws.exfiltration.ec2-share-ebs-snapshot.json", 1),
        ("aws.exfiltration.rds-share-snapshot.json", 1),
        ("aws.impact.bedrock-invoke-model.json", 15),
        (
            "aws.lateral-movement.ec2-serial-console-send-ssh-public-key.json",
            4,
        ),
        ("aws.persistence.iam-backdoor-role.json", 1),
        ("aws.persistence.iam-backdoor-user.json", 1),
        ("aws.persistence.iam-create-backdoor-role.json", 2),
        ("aws.persistence.iam-create-user-login-profile.json", 3),
        ("aws.persistence.lambda-backdoor-function.json", 1),
        ("aws.persistence.lambda-layer-extension.json", 1),
        ("aws.persistence.rolesanywhere-create-trust-anchor.json", 2),
        ("aws.persistence.sts-federation-token.json", 2),
        (
            "aws.privilege-escalation.iam-update-user-login-profile.json",
            1,
        ),
    ];
    let want: BTreeMap<String, (usize, usize, String)> = want
        .iter()
        .map(|(f, n)| (f.to_string(), (*n, 0, "aws:cloudtrail".to_string())))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.values().map(|v| v.0).sum::<usize>(), 295);

    let path = dir.join("aws.defense-evasion.cloudtrail-delete.json");
    assert_eq!(open(&path).unwrap().format(), Format::JsonArray);
    let (evs, _) = read_all(&path);
    let e = &evs[0];
    assert_eq!(text(e, "eventName").as_deref(), Some("DeleteTrail"));
    assert_eq!(
        text(e, "eventSource").as_deref(),
        Some("cloudtrail.amazonaws.com")
    );
    assert_eq!(text(e, "userIdentity.type").as_deref(), Some("IAMUser"));
    assert_eq!(
        text(e, "userIdentity.arn").as_deref(),
        Some("arn:aws:iam::847129010505:user/christophe")
    );
    assert_eq!(
        text(e, "requestParameters.name").as_deref(),
        Some("stratus-red-team-cloudtraild-trail-kvrwohmiai")
    );
    assert_eq!(e.first("responseElements"), Some(&Value::Null));
    assert_eq!(e.first("managementEvent"), Some(&Value::Bool(true)));
    // Pseudonymised addresses are kept exactly as written.
    assert_eq!(text(e, "sourceIPAddress").as_deref(), Some("08.1.250.216"));
    assert_eq!(e.meta.computer.as_deref(), Some("847129010505"));
    assert_eq!(e.meta.provider.as_deref(), Some("cloudtrail.amazonaws.com"));
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2024-07-31T12:46:41+00:00"
    );
    assert_eq!(e.meta.record_id, Some(1));
}

#[test]
fn k8s_falco_counts_and_the_hostile_kind_0() {
    let Some(root) = corpora() else { return };
    let dir = root.join("k8s-falco");
    let got = per_file(&dir);
    assert_eq!(got.len(), 40);
    for (name, (evs, errs, channel)) in &got {
        if name.ends_with("fal_01_003.json") {
            assert_eq!((*evs, *errs), (0, 1), "{name}");
        } else {
            assert_eq!(
                (*evs, *errs, channel.as_str()),
                (1, 0, "kubernetes:audit"),
                "{name}"
            );
        }
    }
    let (evs, errs) = read_all(&dir.join("audit/fal_01_003.json"));
    assert!(evs.is_empty());
    assert_eq!(errs[0].kind, RecordErrorKind::UnrecognisedShape);
    assert!(
        errs[0].reason.contains("Kubernetes audit"),
        "{}",
        errs[0].reason
    );

    // v1beta1, with kind but no apiVersion-less trick: real values.
    let (evs, _) = read_all(&dir.join("audit/create_nginx_pod_privileged.json"));
    let e = &evs[0];
    assert_eq!(text(e, "verb").as_deref(), Some("create"));
    assert_eq!(text(e, "objectRef.resource").as_deref(), Some("pods"));
    assert_eq!(text(e, "objectRef.namespace").as_deref(), Some("default"));
    assert_eq!(e.first("responseStatus.code"), Some(&Value::Int(201)));
    assert_eq!(
        e.first("requestObject.spec.containers.securityContext.privileged"),
        Some(&Value::Bool(true))
    );
    assert_eq!(texts(e, "sourceIPs"), ["::1"]);
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2018-10-25T14:09:12.572676+00:00"
    );
    // An event without `apiVersion` (27 of the falco events).
    let (evs, _) = read_all(&dir.join("audit/attach_pod.json"));
    assert!(!evs[0].has("apiVersion"));
    assert_eq!(
        text(&evs[0], "objectRef.subresource").as_deref(),
        Some("attach")
    );
}

#[test]
fn otrf_sentinel_exports() {
    let Some(root) = corpora() else { return };
    let dir = root.join("otrf");
    let got = per_file(&dir);
    let want: BTreeMap<String, (usize, usize, String)> = [
        ("azure/AADAuditEvents.json", 4, "azure:auditlogs"),
        ("m365/Microsoft365DefenderEvents.json", 9, "m365:defender"),
        ("m365/OfficeActivityEvents.json", 1, "m365:audit"),
    ]
    .iter()
    .map(|(f, n, c)| (f.to_string(), (*n, 0, c.to_string())))
    .collect();
    assert_eq!(got, want);

    let (evs, _) = read_all(&dir.join("azure/AADAuditEvents.json"));
    let e = &evs[0];
    assert_eq!(
        text(e, "OperationName").as_deref(),
        Some("Update application – Certificates and secrets management ")
    );
    assert_eq!(
        text(e, "Category").as_deref(),
        Some("ApplicationManagement")
    );
    // JSON-text columns: kept, and flattened under their name.
    assert!(text(e, "TargetResources").unwrap().starts_with("[{"));
    assert_eq!(
        text(e, "TargetResources.displayName").as_deref(),
        Some("SimuLandApp")
    );
    assert_eq!(
        texts(e, "TargetResources.modifiedProperties.displayName"),
        ["KeyDescription", "Included Updated Properties"]
    );
    assert_eq!(
        text(e, "InitiatedBy.user.userPrincipalName").as_deref(),
        Some("pgustavo@simulandlabs.com")
    );
    assert_eq!(
        e.meta.computer.as_deref(),
        Some("00000000-0000-0000-0000-000000000000")
    );
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2021-08-02T13:29:25.983+00:00"
    );
    // Rows whose `Type` column is not the table still are audit rows.
    assert_eq!(text(&evs[2], "Type").as_deref(), Some("Application"));
    assert_eq!(evs[2].meta.channel.as_deref(), Some("azure:auditlogs"));

    let (evs, _) = read_all(&dir.join("m365/OfficeActivityEvents.json"));
    let e = &evs[0];
    assert_eq!(text(e, "Operation").as_deref(), Some("MailItemsAccessed"));
    assert_eq!(text(e, "OfficeWorkload").as_deref(), Some("Exchange"));
    assert_eq!(text(e, "RecordType").as_deref(), Some("50"));
    assert_eq!(
        e.meta.computer.as_deref(),
        Some("simulandlabs.onmicrosoft.com")
    );

    let (evs, _) = read_all(&dir.join("m365/Microsoft365DefenderEvents.json"));
    assert_eq!(text(&evs[0], "ActionType").as_deref(), Some("LdapSearch"));
    assert_eq!(
        evs[0].meta.computer.as_deref(),
        Some("adfs01.simulandlabs.com")
    );
    assert_eq!(
        text(&evs[0], "InitiatingProcessFileName").as_deref(),
        Some("powershell.exe")
    );
}

#[test]
fn elastic_integrations_fixtures() {
    let Some(root) = corpora() else { return };
    let dir = root.join("elastic-integrations");
    let got = per_file(&dir);
    let want: BTreeMap<String, (usize, usize, String)> = [
        ("azure/test-auditlogs-raw.log", 3, "azure:auditlogs"),
        ("azure/test-signinlogs-raw.log", 5, "azure:signinlogs"),
        ("gcp/test-audit.first-11-records.log", 11, "gcp:audit"),
        (
            "github/test-audit-json.first-98-records.log",
            98,
            "github:audit",
        ),
        (
            "m365/test-exchange-admin.first-12-records.log",
            12,
            "m365:audit",
        ),
        (
            "okta/test-okta-system-events.first-9-records.log",
            9,
            "okta:okta",
        ),
    ]
    .iter()
    .map(|(f, n, c)| (f.to_string(), (*n, 0, c.to_string())))
    .collect();
    assert_eq!(got, want);

    let (evs, _) = read_all(&dir.join("okta/test-okta-system-events.first-9-records.log"));
    let e = &evs[0];
    assert_eq!(text(e, "eventType").as_deref(), Some("user.session.end"));
    assert_eq!(
        text(e, "actor.alternateId").as_deref(),
        Some("username@elastic.co")
    );
    assert_eq!(text(e, "client.ipAddress").as_deref(), Some("175.16.199.1"));
    assert_eq!(
        e.first("authenticationContext.authenticationStep"),
        Some(&Value::Int(0))
    );
    assert_eq!(e.first("actor.detailEntry"), Some(&Value::Null));
    assert_eq!(
        text(e, "request.ipChain.ip").as_deref(),
        Some("175.16.199.1")
    );
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2020-02-14T22:18:51.843+00:00"
    );

    let (evs, _) = read_all(&dir.join("gcp/test-audit.first-11-records.log"));
    let e = &evs[0];
    assert_eq!(
        text(e, "protoPayload.methodName").as_deref(),
        Some("GetResourceBillingInfo")
    );
    assert_eq!(
        text(e, "protoPayload.authorizationInfo.permission").as_deref(),
        Some("resourcemanager.projects.get")
    );
    assert_eq!(
        e.first("protoPayload.authorizationInfo.granted"),
        Some(&Value::Bool(true))
    );
    assert_eq!(e.meta.computer.as_deref(), Some("elastic-beats"));
    assert_eq!(
        e.meta.provider.as_deref(),
        Some("cloudbilling.googleapis.com")
    );
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2019-12-19T00:49:36.086+00:00"
    );
    let gke = evs
        .iter()
        .filter(|e| text(e, "resource.type").as_deref() == Some("k8s_cluster"))
        .count();
    assert_eq!(gke, 5);

    let (evs, _) = read_all(&dir.join("github/test-audit-json.first-98-records.log"));
    let org = evs
        .iter()
        .filter(|e| e.meta.computer.as_deref() == Some("Example-Org"))
        .count();
    assert_eq!(org, 69);
    let rejected = evs
        .iter()
        .filter(|e| text(e, "action").as_deref() == Some("protected_branch.rejected_ref_update"))
        .count();
    assert_eq!(rejected, 19);
    assert_eq!(
        evs[0].meta.timestamp.unwrap().to_rfc3339(),
        "2020-03-04T23:24:11.067+00:00"
    );

    let (evs, _) = read_all(&dir.join("azure/test-signinlogs-raw.log"));
    let cats: Vec<String> = evs.iter().map(|e| text(e, "category").unwrap()).collect();
    assert_eq!(
        cats,
        [
            "SignInLogs",
            "NonInteractiveUserSignInLogs",
            "ServicePrincipalSignInLogs",
            "MicrosoftServicePrincipalSignInLogs",
            "ManagedIdentitySignInLogs"
        ]
    );
    assert_eq!(
        evs[0].first("properties.status.errorCode"),
        Some(&Value::Int(50140))
    );
    assert_eq!(
        evs[0].first("properties.location.geoCoordinates.latitude"),
        Some(&Value::Float(48.12341234))
    );
    assert_eq!(
        evs[0].meta.computer.as_deref(),
        Some("8a4de8b5-095c-47d0-a96f-a75130c61d53")
    );

    let (evs, _) = read_all(&dir.join("azure/test-auditlogs-raw.log"));
    assert_eq!(
        text(&evs[0], "operationName").as_deref(),
        Some("Update device")
    );
    assert_eq!(
        text(
            &evs[0],
            "properties.targetResources.modifiedProperties.displayName"
        )
        .as_deref(),
        Some("Included Updated Properties")
    );

    let (evs, _) = read_all(&dir.join("m365/test-exchange-admin.first-12-records.log"));
    let e = &evs[0];
    assert_eq!(text(e, "Operation").as_deref(), Some("Set-Mailbox"));
    assert_eq!(
        texts(e, "Parameters.Name"),
        ["DomainController", "Identity"]
    );
    assert_eq!(e.first("RecordType"), Some(&Value::Int(1)));
    assert_eq!(e.meta.computer.as_deref(), Some("testsiem.onmicrosoft.com"));
    assert_eq!(e.meta.provider.as_deref(), Some("Exchange"));
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2020-02-07T20:49:49+00:00"
    );
}

/// Fields and meta of an event, without the record id (which names the
/// record's place in its file, so it differs between layouts).
fn content(e: &Event) -> (String, Vec<(String, String)>) {
    let m = &e.meta;
    (
        format!(
            "{:?} {:?} {:?} {:?}",
            m.timestamp, m.computer, m.channel, m.provider
        ),
        e.fields()
            .map(|(k, v)| (k.to_owned(), format!("{v:?}")))
            .collect(),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The CloudTrail layouts (Stratus' bare array; the S3 `{"Records": […]}`
/// envelope, compact and pretty-printed; one record per line; the
/// envelope gzipped as S3 delivers it; the JSON lines cut into ranges)
/// give the same events.
#[test]
fn cloudtrail_layouts_give_the_same_events() {
    let Some(root) = corpora() else { return };
    let path = root.join("cloudtrail-stratus/aws.execution.ssm-send-command.json");
    let bytes = std::fs::read(&path).unwrap();
    let records: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(records.len(), 56);
    let want: Vec<_> = read_all(&path).0.iter().map(content).collect();
    assert_eq!(want.len(), 56);

    let envelope = serde_json::to_vec(&serde_json::json!({ "Records": records })).unwrap();
    let pretty = serde_json::to_vec_pretty(&serde_json::json!({ "Records": records })).unwrap();
    let mut lines = Vec::new();
    for r in &records {
        lines.extend(serde_json::to_vec(r).unwrap());
        lines.push(b'\n');
    }
    let layouts: Vec<(&str, Vec<u8>, Format)> = vec![
        ("envelope.json", envelope.clone(), Format::JsonLines),
        ("pretty-envelope.json", pretty, Format::JsonLines),
        ("lines.jsonl", lines.clone(), Format::JsonLines),
        ("envelope.json.gz", gzip(&envelope), Format::JsonLines),
        ("lines.jsonl.gz", gzip(&lines), Format::JsonLines),
        (
            "array-of-envelopes.json",
            format!("[{}]", String::from_utf8(envelope.clone()).unwrap()).into_bytes(),
            Format::JsonArray,
        ),
    ];
    for (name, data, format) in layouts {
        let it = open_bytes(name, data).unwrap();
        assert_eq!(it.format(), format, "{name}");
        let (evs, errs) = split(it);
        assert!(errs.is_empty(), "{name}: {errs:?}");
        let got: Vec<_> = evs.iter().map(content).collect();
        assert_eq!(got.len(), want.len(), "{name}");
        assert!(got == want, "{name}: events differ");
    }

    // The JSON-lines ranges path (parallel reading of big files), with the
    // envelope on lines of its own between plain records.
    let mut mixed = lines.clone();
    mixed.extend(&envelope);
    mixed.push(b'\n');
    mixed.extend(&lines);
    let ranges = plan_json_lines_bytes("mixed.jsonl", mixed.clone(), 4096).unwrap();
    assert!(ranges.len() > 10);
    let (evs, errs) = split((0..ranges.len()).flat_map(|i| ranges.range(i)));
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(evs.len(), 3 * 56);
    let whole: Vec<_> = split(open_bytes("mixed.jsonl", mixed).unwrap()).0;
    assert_eq!(
        evs.iter().map(content).collect::<Vec<_>>(),
        whole.iter().map(content).collect::<Vec<_>>()
    );
    assert_eq!(
        evs.iter()
            .map(content)
            .skip(56)
            .take(56)
            .collect::<Vec<_>>(),
        want
    );
    // Every record of the envelope line names that line.
    assert!(evs[56..112].iter().all(|e| e.meta.record_id == Some(57)));

    // A gzip file is never cut into ranges.
    assert!(plan_json_lines_bytes("g.jsonl.gz", gzip(&lines), 4096).is_none());
}

/// Damaged input: a cut last record, invalid UTF-8, a wrong type for a key
/// field, a huge record — each reported (or kept) without losing its
/// neighbours.
#[test]
fn damaged_cloud_input_keeps_neighbours() {
    let ct = |name: &str, extra: &str| {
        format!(
            r#"{{"eventVersion":"1.08","eventSource":"iam.amazonaws.com","eventName":"{name}","eventTime":"2024-01-01T00:00:00Z","recipientAccountId":"1"{extra}}}"#
        )
    };
    // A cut last record (a file copied while CloudTrail wrote it).
    let data = format!("{}\n{}\n{}", ct("A", ""), ct("B", ""), &ct("C", "")[..40]);
    let (evs, errs) = split(open_bytes("cut.jsonl", data.into_bytes()).unwrap());
    assert_eq!(evs.len(), 2);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].kind, RecordErrorKind::InvalidJson);
    assert_eq!(errs[0].at, tracehunt_readers::Location::Line(3));

    // Invalid UTF-8 in a record between two good ones.
    let mut data = ct("A", "").into_bytes();
    data.extend(b"\n{\"eventVersion\":\"1\",\"eventSource\":\"\xff\xfe\",\"eventName\":\"x\",\"awsRegion\":\"r\"}\n");
    data.extend(ct("C", "").into_bytes());
    let (evs, errs) = split(open_bytes("utf8.jsonl", data).unwrap());
    assert_eq!(
        evs.iter()
            .map(|e| text(e, "eventName").unwrap())
            .collect::<Vec<_>>(),
        ["A", "C"]
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].kind, RecordErrorKind::InvalidUtf8);

    // A key field of the wrong type: the record is kept (no time, no
    // account), its neighbours too.
    let bad = r#"{"eventVersion":1.08,"eventSource":["iam"],"eventName":{"n":1},"eventTime":17,"recipientAccountId":null}"#;
    let data = format!("{}\n{bad}\n{}\n", ct("A", ""), ct("C", ""));
    let (evs, errs) = split(open_bytes("types.jsonl", data.into_bytes()).unwrap());
    assert!(errs.is_empty());
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[1].meta.channel.as_deref(), Some("aws:cloudtrail"));
    assert_eq!(evs[1].first("eventName.n"), Some(&Value::Int(1)));
    assert_eq!(evs[1].meta.computer, None);
    assert_eq!(
        evs[1].meta.timestamp.unwrap().to_rfc3339(),
        "1970-01-01T00:00:17+00:00"
    );

    // A huge record (a `RunInstances` with 200,000 items): capped, the
    // drop counted in the event, neighbours intact.
    let items: Vec<String> = (0..200_000)
        .map(|i| format!("{{\"instanceId\":\"i-{i}\"}}"))
        .collect();
    let huge = ct(
        "RunInstances",
        &format!(
            r#","responseElements":{{"instancesSet":{{"items":[{}]}}}}"#,
            items.join(",")
        ),
    );
    let data = format!("{}\n{huge}\n{}\n", ct("A", ""), ct("C", ""));
    let (evs, errs) = split(open_bytes("huge.jsonl", data.into_bytes()).unwrap());
    assert!(errs.is_empty());
    assert_eq!(evs.len(), 3);
    let h = &evs[1];
    assert_eq!(h.len(), 10_001);
    assert_eq!(text(h, "eventName").as_deref(), Some("RunInstances"));
    let kept = h
        .get("responseElements.instancesSet.items.instanceId")
        .count() as i64;
    assert_eq!(
        h.first(tracehunt_readers::DROPPED_FIELD),
        Some(&Value::Int(200_000 - kept))
    );
    assert_eq!(text(&evs[2], "eventName").as_deref(), Some("C"));

    // Deep nesting (a hostile record): read, the deep part kept as text.
    let mut deep = String::from("1");
    for _ in 0..100 {
        deep = format!("{{\"k\":{deep}}}");
    }
    let data = format!(
        "{}\n{}\n",
        ct("D", &format!(",\"requestParameters\":{deep}")),
        ct("E", "")
    );
    let (evs, errs) = split(open_bytes("deep.jsonl", data.into_bytes()).unwrap());
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(evs.len(), 2);

    // A corrupt gzip stream: reported, not a panic; what was decoded is kept.
    let mut gz = gzip(format!("{}\n{}\n", ct("A", ""), ct("B", "")).as_bytes());
    let n = gz.len();
    gz.truncate(n - 12);
    let (evs, errs) = split(open_bytes("cut.json.gz", gz).unwrap());
    assert_eq!(evs.len(), 1, "{errs:?}");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].kind, RecordErrorKind::Io);
    assert!(errs[0].reason.contains("deflate"), "{}", errs[0].reason);
    // Not gzip at all after the magic: one whole-file error, no panic.
    let r = open_bytes("junk.gz", vec![0x1f, 0x8b, 0, 0, 0, 0]);
    assert!(r.is_err());
}

/// An empty S3 delivery (`{"Records": []}`) is no record and no error, and
/// an envelope element that is not an object is one error.
#[test]
fn empty_envelope_and_scalar_elements() {
    let (evs, errs) = split(open_bytes("e.json", b"{\"Records\": []}\n".to_vec()).unwrap());
    assert!(evs.is_empty() && errs.is_empty());
    let (evs, errs) = split(open_bytes("e.json", b"[{\"Records\": []}]".to_vec()).unwrap());
    assert!(evs.is_empty() && errs.is_empty());
    let data =
        b"{\"Records\": [1, {\"eventVersion\":\"1\",\"eventSource\":\"a\",\"eventName\":\"b\"}]}\n";
    let (evs, errs) = split(open_bytes("e.json", data.to_vec()).unwrap());
    assert_eq!(evs.len(), 1);
    assert_eq!(errs[0].kind, RecordErrorKind::UnrecognisedShape);
    assert!(errs[0]
        .reason
        .contains("element 0 of the Records envelope is a number"));
}
