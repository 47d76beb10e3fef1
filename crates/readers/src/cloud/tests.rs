use super::*;
use serde_json::json;
use tracehunt_event::Value;

fn ev(v: J) -> Option<Event> {
    event_from_json(v.as_object().unwrap())
}

fn channel(v: J) -> Option<String> {
    ev(v).and_then(|e| e.meta.channel)
}

#[test]
fn cloudtrail_fields_and_meta() {
    let e = ev(
        json!({"eventVersion": "1.08", "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketPolicy", "eventTime": "2024-07-31T12:46:41Z",
        "recipientAccountId": "847129010505", "sourceIPAddress": "075.050.255.67",
        "userIdentity": {"type": "IAMUser", "accountId": "1"},
        "requestParameters": {"bucketName": "b", "policy": [{"Effect": "Allow"}]},
        "responseElements": null, "readOnly": false}),
    )
    .unwrap();
    assert_eq!(e.meta.channel.as_deref(), Some("aws:cloudtrail"));
    assert_eq!(e.meta.computer.as_deref(), Some("847129010505"));
    assert_eq!(e.meta.provider.as_deref(), Some("s3.amazonaws.com"));
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2024-07-31T12:46:41+00:00"
    );
    assert_eq!(e.meta.event_id, None);
    assert_eq!(
        e.first("userIdentity.type"),
        Some(&Value::Str("IAMUser".into()))
    );
    assert_eq!(
        e.first("requestParameters.bucketName").unwrap().as_str(),
        Some("b")
    );
    assert_eq!(
        e.first("requestParameters.policy.Effect").unwrap().as_str(),
        Some("Allow")
    );
    assert_eq!(e.first("responseElements"), Some(&Value::Null));
    assert_eq!(e.first("readOnly"), Some(&Value::Bool(false)));
    assert_eq!(
        e.first("sourceIPAddress").unwrap().as_str(),
        Some("075.050.255.67")
    );
    assert!(!e.has("Channel"));
}

/// A key field of the wrong type must not lose the record.
#[test]
fn wrong_typed_time_keeps_the_record() {
    let e = ev(
        json!({"eventVersion": 1.1, "eventSource": 7, "eventName": ["x"],
        "eventTime": 12.5e300, "recipientAccountId": {"a": 1}}),
    )
    .unwrap();
    assert_eq!(e.meta.channel.as_deref(), Some("aws:cloudtrail"));
    assert_eq!(e.meta.timestamp, None);
    assert_eq!(e.meta.computer, None);
    assert_eq!(e.first("eventSource"), Some(&Value::Int(7)));
}

#[test]
fn kubernetes_without_kind_and_hostile_kind() {
    let e = ev(
        json!({"auditID": "a", "verb": "create", "requestURI": "/api/v1/pods",
        "objectRef": {"resource": "pods", "subresource": "exec"},
        "responseStatus": {"code": 201}, "sourceIPs": ["10.0.0.1"],
        "stageTimestamp": "2020-04-21T17:57:05.548299Z"}),
    )
    .unwrap();
    assert_eq!(e.meta.channel.as_deref(), Some("kubernetes:audit"));
    assert_eq!(e.first("responseStatus.code"), Some(&Value::Int(201)));
    assert_eq!(
        e.first("objectRef.subresource").unwrap().as_str(),
        Some("exec")
    );
    assert!(e.meta.timestamp.is_some());
    assert!(ev(json!({"kind": 0})).is_none());
    assert!(ev(json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1"})).is_none());
}

#[test]
fn each_format_gets_its_channel() {
    let cases = [
        (
            json!({"eventType": "user.session.start", "actor": {"id": "x"}, "uuid": "u",
            "published": "2020-02-14T22:18:51.843Z"}),
            "okta:okta",
        ),
        (
            json!({"protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "methodName": "m"}, "timestamp": "2019-12-19T00:49:36.086Z"}),
            "gcp:audit",
        ),
        (
            json!({"action": "org.add_member", "actor": "a", "created_at": 1583365350878_i64}),
            "github:audit",
        ),
        (
            json!({"category": "SignInLogs", "operationName": "Sign-in activity",
            "time": "2019-10-18T09:45:48.0729893Z"}),
            "azure:signinlogs",
        ),
        (
            json!({"category": "AuditLogs", "operationName": "Update device"}),
            "azure:auditlogs",
        ),
        (
            json!({"category": "Administrative", "operationName": "MICROSOFT.X/DELETE"}),
            "azure:activitylogs",
        ),
        (
            json!({"Type": "SigninLogs", "OperationName": "Sign-in activity"}),
            "azure:signinlogs",
        ),
        (
            json!({"Type": "Application", "OperationName": "Update application",
            "Category": "ApplicationManagement", "LoggedByService": "Core Directory",
            "ActivityDisplayName": "Update application"}),
            "azure:auditlogs",
        ),
        (
            json!({"OperationNameValue": "MICROSOFT.X/WRITE", "CategoryValue": "Administrative"}),
            "azure:activitylogs",
        ),
        (
            json!({"Workload": "Exchange", "Operation": "Set-Mailbox", "RecordType": 1}),
            "m365:audit",
        ),
        (
            json!({"OfficeWorkload": "Exchange", "Operation": "MailItemsAccessed",
            "RecordType": "50", "Type": "OfficeActivity"}),
            "m365:audit",
        ),
        (
            json!({"ActionType": "LdapSearch", "Timestamp": "2021-08-02T13:11:39Z",
            "DeviceName": "adfs01"}),
            "m365:defender",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(channel(v.clone()).as_deref(), Some(want), "{v}");
    }
}

#[test]
fn github_epoch_millis_and_org() {
    let e = ev(
        json!({"action": "org.add_member", "actor": "a", "org": "Example-Org",
        "created_at": 1583365350878_i64}),
    )
    .unwrap();
    assert_eq!(
        e.meta.timestamp.unwrap().to_rfc3339(),
        "2020-03-04T23:42:30.878+00:00"
    );
    assert_eq!(e.meta.computer.as_deref(), Some("Example-Org"));
}

#[test]
fn zeek_windows_and_strangers_are_not_claimed() {
    assert!(ev(json!({"_path": "http", "action": "x", "actor": "y", "@timestamp": 1})).is_none());
    assert!(
        ev(json!({"uid": "C1", "eventSource": "a", "eventName": "b", "awsRegion": "r"})).is_none()
    );
    assert!(ev(json!({"a": 1})).is_none());
    assert!(ev(json!({"action": "x"})).is_none());
}

#[test]
fn sentinel_json_text_columns_are_kept_and_flattened() {
    let e = ev(json!({"TenantId": "t", "Type": "AuditLogs", "OperationName": "Add app",
        "TimeGenerated": "2021-08-02T13:29:25.983Z",
        "TargetResources": "[{\"displayName\":\"SimuLandApp\",\"modifiedProperties\":[{\"newValue\":\"x\"}]}]",
        "InitiatedBy": "{\"user\":{\"userPrincipalName\":\"p@x\"}}", "Result": "[not json"}))
    .unwrap();
    assert_eq!(e.meta.computer.as_deref(), Some("t"));
    assert!(e
        .first("TargetResources")
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("[{"));
    assert_eq!(
        e.first("TargetResources.displayName").unwrap().as_str(),
        Some("SimuLandApp")
    );
    assert_eq!(
        e.first("TargetResources.modifiedProperties.newValue")
            .unwrap()
            .as_str(),
        Some("x")
    );
    assert_eq!(
        e.first("InitiatedBy.user.userPrincipalName")
            .unwrap()
            .as_str(),
        Some("p@x")
    );
    assert_eq!(e.first("Result").unwrap().as_str(), Some("[not json"));
}

#[test]
fn envelopes_give_their_records() {
    let mut v =
        json!({"Records": [{"eventVersion": "1", "eventSource": "a", "eventName": "b"}, 3]});
    assert_eq!(envelope(&mut v).unwrap().len(), 2);
    let mut v = json!({"records": [{"category": "AuditLogs", "operationName": "x"}]});
    assert_eq!(envelope(&mut v).unwrap().len(), 1);
    let mut v = json!({"Records": "x"});
    assert!(envelope(&mut v).is_none());
    let mut v = json!([1]);
    assert!(envelope(&mut v).is_none());
}
