//! How kube-apiserver calls admission webhooks, pinned with a scripted
//! webhook (each path answers one way) on both servers: the embedded one
//! must call webhooks exactly as the real one does, or the admission tests
//! run against it would mean nothing. What was recorded on the kit's
//! kube-apiserver v1.35: denials and their codes, warnings as `Warning`
//! headers, JSON patches, failure policies, timeouts, a wrong uid, a patch
//! that does not apply, mutating before validating, what each operation
//! sends, and the `kubernetes.io/metadata.name` label every namespace has.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    response::IntoResponse,
    routing::post,
};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use informant::admission::{CertSource, certs::Certificates, server};
use informant_testkit::{TestCluster, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind, Status},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What the scripted webhook received: the path with its query, and the review.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook that answers by path, over TLS with a CA of its own.
struct Scripted {
    addr: SocketAddr,
    ca: Vec<u8>,
    seen: Seen,
    _stop: tokio_util::sync::DropGuard,
}

async fn scripted() -> Scripted {
    let stop = CancellationToken::new();
    let certs = Certificates::start(&CertSource::Generate, &[], &stop).unwrap();
    let ca = certs.ca_bundle().borrow().to_vec();
    let seen = Seen::default();
    let router = Router::new()
        .route("/{case}", post(respond))
        .with_state(seen.clone());
    let addr = server::serve(
        "127.0.0.1:0".parse().unwrap(),
        certs.server_config().unwrap(),
        router,
        stop.clone(),
    )
    .await
    .unwrap();
    Scripted {
        addr,
        ca,
        seen,
        _stop: stop.drop_guard(),
    }
}

async fn respond(
    State(seen): State<Seen>,
    Path(case): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> axum::response::Response {
    let review: Value = serde_json::from_slice(&body).unwrap();
    let request = &review["request"];
    let uid = request["uid"].as_str().unwrap().to_string();
    seen.lock().unwrap().push((
        format!("/{case}?{}", query.unwrap_or_default()),
        review.clone(),
    ));
    let patch = |ops: Value| base64::engine::general_purpose::STANDARD.encode(ops.to_string());
    let response = match case.as_str() {
        "deny403" => json!({"uid": uid, "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": format!("owner label missing on {}", request["name"].as_str().unwrap_or(""))}}),
        "denyplain" => json!({"uid": uid, "allowed": false, "status": {"message": "plain denial"}}),
        "denybare" => json!({"uid": uid, "allowed": false}),
        "warn" => {
            json!({"uid": uid, "allowed": true, "warnings": ["first warning", "second \"quoted\" warning"]})
        }
        "patch" => json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
            "patch": patch(json!([{"op": "add", "path": "/metadata/labels/patched", "value": "yes"}]))}),
        "badpatch" => json!({"uid": uid, "allowed": true, "patchType": "JSONPatch",
            "patch": patch(json!([{"op": "replace", "path": "/nope/nothing", "value": 1}]))}),
        "needspatch" => {
            let patched = request["object"]["metadata"]["labels"]["patched"] == "yes";
            json!({"uid": uid, "allowed": patched, "status": {"code": 403, "message": "not patched first"}})
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            json!({"uid": uid, "allowed": true})
        }
        "e500" => {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        "wronguid" => json!({"uid": "not-the-uid", "allowed": true}),
        _ => json!({"uid": uid, "allowed": true}),
    };
    axum::Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
        .into_response()
}

/// One webhook of the configurations: called for ConfigMaps (and
/// Deployments' status) labelled `case: NAME` in namespace `ns` only.
fn webhook(hooks: &Scripted, case: &str, ns: &str, policy: &str, timeout: u32) -> Value {
    json!({
        "name": format!("{case}.webhooks.informant.dev"),
        "clientConfig": {
            "url": format!("https://{}/{case}", hooks.addr),
            "caBundle": base64::engine::general_purpose::STANDARD.encode(&hooks.ca),
        },
        "rules": [
            {"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "scope": "Namespaced"},
            {"operations": ["UPDATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments/status"]},
        ],
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
        "objectSelector": {"matchLabels": {"case": case}},
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": policy,
        "timeoutSeconds": timeout,
    })
}

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        kind,
    ))
}

/// Register the scripted webhooks for namespace `ns`, and wait until the
/// API server calls them.
async fn register(cluster: &TestCluster, hooks: &Scripted, ns: &str) -> String {
    let name = TestCluster::unique_name("webhooks");
    let validating: Vec<Value> = [
        ("deny403", "Fail", 5),
        ("denyplain", "Fail", 5),
        ("denybare", "Fail", 5),
        ("warn", "Fail", 5),
        ("slow", "Fail", 1),
        ("slowignore", "Ignore", 1),
        ("e500", "Fail", 5),
        ("e500ignore", "Ignore", 5),
        ("wronguid", "Fail", 5),
        ("chain", "Fail", 5),
        ("record", "Fail", 5),
    ]
    .iter()
    .map(|(case, policy, timeout)| {
        let mut w = webhook(hooks, case, ns, policy, *timeout);
        // Both paths answer like their Fail twins.
        let path = case.trim_end_matches("ignore");
        let path = if *case == "chain" { "needspatch" } else { path };
        w["clientConfig"]["url"] = json!(format!("https://{}/{path}", hooks.addr));
        w
    })
    .collect();
    let mutating: Vec<Value> = [
        ("patch", "patch"),
        ("badpatch", "badpatch"),
        ("chain", "patch"),
        ("record", "record"),
    ]
    .iter()
    .map(|(case, path)| {
        let mut w = webhook(hooks, case, ns, "Fail", 5);
        w["clientConfig"]["url"] = json!(format!("https://{}/{path}", hooks.addr));
        w["reinvocationPolicy"] = json!("Never");
        w
    })
    .collect();
    for (kind, hooks, resource_name) in [
        (
            "ValidatingWebhookConfiguration",
            validating,
            "validatingwebhookconfiguration",
        ),
        (
            "MutatingWebhookConfiguration",
            mutating,
            "mutatingwebhookconfiguration",
        ),
    ] {
        cluster.track(resource_name, &name);
        let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource(kind));
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": {"name": name}, "webhooks": hooks,
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
    }
    // A real API server picks configurations up from its informers: wait
    // until a denial shows it calls them.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    eventually(
        "the webhooks are in effect",
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let dry = PostParams {
                    dry_run: true,
                    ..PostParams::default()
                };
                let denied = api
                    .create(&dry, &configmap("probe", "deny403"))
                    .await
                    .is_err();
                // The mutating configuration comes through an informer of
                // its own: wait for it too.
                let patched = api
                    .create(&dry, &configmap("probe", "patch"))
                    .await
                    .ok()
                    .and_then(|cm| cm.metadata.labels)
                    .is_some_and(|l| l.get("patched").map(String::as_str) == Some("yes"));
                (denied && patched).then_some(())
            }
        },
    )
    .await;
    name
}

fn configmap(name: &str, case: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"case": case}}, "data": {"a": "b"}}),
    )
    .unwrap()
}

fn status(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("not an API error: {other}"),
    }
}

/// A create of ConfigMap `name` labelled `case` that must fail: its Status.
async fn refused(api: &Api<ConfigMap>, name: &str, case: &str) -> Status {
    status(
        api.create(&PostParams::default(), &configmap(name, case))
            .await
            .unwrap_err(),
    )
}

#[tokio::test]
async fn every_namespace_is_labelled_with_its_own_name() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("wh-label").await;
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let labels = api.get(&ns).await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], ns);
    // Whatever a client writes there, the server puts the name back.
    let patch =
        json!({"metadata": {"labels": {"kubernetes.io/metadata.name": "other", "team": "a"}}});
    let patched = api
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let labels = patched.metadata.labels.unwrap();
    assert_eq!(labels["kubernetes.io/metadata.name"], ns);
    assert_eq!(labels["team"], "a");
}

#[tokio::test]
async fn denials_come_back_with_the_webhooks_name_code_and_message() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("wh-deny").await;
    let hooks = scripted().await;
    register(&cluster, &hooks, &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);

    let s = refused(&api, "a", "deny403").await;
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        s.message,
        "admission webhook \"deny403.webhooks.informant.dev\" denied the request: owner label missing on a"
    );
    let s = refused(&api, "b", "denyplain").await;
    assert_eq!((s.code, s.reason.as_str()), (400, ""));
    assert_eq!(
        s.message,
        "admission webhook \"denyplain.webhooks.informant.dev\" denied the request: plain denial"
    );
    let s = refused(&api, "c", "denybare").await;
    assert_eq!(s.code, 400);
    assert_eq!(
        s.message,
        "admission webhook \"denybare.webhooks.informant.dev\" denied the request without explanation"
    );
    assert!(api.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn failures_follow_the_failure_policy() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("wh-fail").await;
    let hooks = scripted().await;
    register(&cluster, &hooks, &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);

    let s = refused(&api, "a", "e500").await;
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert_eq!(
        s.message,
        "Internal error occurred: failed calling webhook \"e500.webhooks.informant.dev\": failed to call webhook: an error on the server (\"boom\") has prevented the request from succeeding"
    );
    let s = refused(&api, "b", "slow").await;
    assert_eq!(s.code, 500);
    assert!(
        s.message.starts_with(
            "Internal error occurred: failed calling webhook \"slow.webhooks.informant.dev\": failed to call webhook: Post \"https://"
        ) && s.message.ends_with("/slow?timeout=1s\": context deadline exceeded"),
        "{}",
        s.message
    );
    let s = refused(&api, "c", "wronguid").await;
    assert_eq!(s.code, 500);
    assert!(
        s.message.contains("failed calling webhook \"wronguid.webhooks.informant.dev\": received invalid webhook response: expected response.uid=")
            && s.message.ends_with(", got \"not-the-uid\""),
        "{}",
        s.message
    );
    // Ignore lets the request through.
    for (name, case) in [("d", "e500ignore"), ("e", "slowignore")] {
        api.create(&PostParams::default(), &configmap(name, case))
            .await
            .unwrap();
    }
    // A patch that does not apply fails the request, whatever the policy,
    // and without the webhook's name.
    let s = refused(&api, "f", "badpatch").await;
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert_eq!(
        s.message,
        "Internal error occurred: replace operation does not apply: doc is missing path: /nope/nothing: missing value"
    );
}

#[tokio::test]
async fn patches_apply_before_validation_and_warnings_reach_the_client() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("wh-patch").await;
    let hooks = scripted().await;
    register(&cluster, &hooks, &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);

    // The mutating `chain` webhook adds `patched: yes`; the validating one
    // refuses objects without it: it must see the patched object.
    let created = api
        .create(&PostParams::default(), &configmap("a", "chain"))
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.unwrap()["patched"], "yes");
    let created = api
        .create(&PostParams::default(), &configmap("b", "patch"))
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.unwrap()["patched"], "yes");

    // Warnings come back as `Warning: 299 - "..."` headers.
    let body = serde_json::to_vec(&configmap("c", "warn")).unwrap();
    let request = axum::http::Request::post(format!("/api/v1/namespaces/{ns}/configmaps"))
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))
        .unwrap();
    let response = cluster.client.send(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let warnings: Vec<String> = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            "299 - \"first warning\"",
            "299 - \"second \\\"quoted\\\" warning\""
        ]
    );
    let _ = response.into_body().collect().await.unwrap();
}

#[tokio::test]
async fn each_operation_sends_what_the_real_server_sends() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("wh-ops").await;
    let hooks = scripted().await;
    register(&cluster, &hooks, &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    hooks.seen.lock().unwrap().clear();

    // CREATE with a generated name: the mutating webhook sees no name yet,
    // the validating one the name, uid and creation time it will be stored with.
    let mut cm = configmap("", "record");
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("gen-".into());
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    let seen = std::mem::take(&mut *hooks.seen.lock().unwrap());
    assert_eq!(seen.len(), 2, "one mutating and one validating call");
    let (path, mutating) = &seen[0];
    assert_eq!(path, "/record?timeout=5s");
    let m = &mutating["request"];
    assert_eq!(m["operation"], "CREATE");
    assert!(m.get("name").is_none_or(Value::is_null), "{m}");
    assert_eq!(m["namespace"], ns.as_str());
    assert_eq!(
        m["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        m["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(m["object"]["metadata"]["generateName"], "gen-");
    assert!(m["object"]["metadata"].get("uid").is_none());
    assert_eq!(m["oldObject"], Value::Null);
    assert_eq!(m["dryRun"], false);
    assert_eq!(m["options"]["kind"], "CreateOptions");
    let v = &seen[1].1["request"];
    assert_eq!(v["name"], name.as_str());
    assert!(
        v["object"]["metadata"].get("resourceVersion").is_none(),
        "{v}"
    );
    assert_eq!(
        v["object"]["metadata"]["uid"],
        created.metadata.uid.clone().unwrap().as_str()
    );
    assert_ne!(v["uid"], m["uid"], "each call has a uid of its own");

    // UPDATE: the new object and the old one, UpdateOptions with the manager.
    let patch = json!({"data": {"a": "c"}});
    api.patch(
        &name,
        &PatchParams::apply("wh-test").force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"case": "record"}}, "data": {"a": "c"}})),
    )
    .await
    .unwrap();
    let seen = std::mem::take(&mut *hooks.seen.lock().unwrap());
    let u = &seen.last().unwrap().1["request"];
    assert_eq!(u["operation"], "UPDATE");
    assert_eq!(u["object"]["data"], patch["data"]);
    assert_eq!(u["oldObject"]["data"]["a"], "b");
    assert_eq!(u["options"]["kind"], "UpdateOptions");
    assert_eq!(u["options"]["fieldManager"], "wh-test");

    // DELETE: no object, the old one, DeleteOptions; mutating webhooks too.
    // A real server that read the object from a watch cache behind the
    // update retries the delete, asking both webhooks again: a pair per
    // attempt, the last one on the current object.
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    let seen = std::mem::take(&mut *hooks.seen.lock().unwrap());
    assert!(seen.len() >= 2 && seen.len() % 2 == 0, "{seen:?}");
    let d = &seen[seen.len() - 1].1["request"];
    assert_eq!(d["operation"], "DELETE");
    assert_eq!(d["object"], Value::Null);
    assert_eq!(d["oldObject"]["metadata"]["name"], name.as_str());
    assert_eq!(d["options"]["kind"], "DeleteOptions");

    // A dry run says so.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&dry, &configmap("dry", "record")).await.unwrap();
    let seen = std::mem::take(&mut *hooks.seen.lock().unwrap());
    assert!(
        seen.iter().all(|(_, r)| r["request"]["dryRun"] == true),
        "{seen:?}"
    );
    assert!(api.get_opt("dry").await.unwrap().is_none());
}

#[tokio::test]
async fn subresources_are_admitted_under_their_own_rule() {
    use k8s_openapi::api::apps::v1::Deployment;
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("wh-sub").await;
    let hooks = scripted().await;
    register(&cluster, &hooks, &ns).await;
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"case": "record"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .unwrap();
    hooks.seen.lock().unwrap().clear();
    api.create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let params = PatchParams {
        field_manager: Some("wh-status".into()),
        ..PatchParams::default()
    };
    api.patch_status(
        "web",
        &params,
        &Patch::Merge(json!({"status": {"observedGeneration": 7}})),
    )
    .await
    .unwrap();
    let seen = hooks.seen.lock().unwrap().clone();
    // The rules name deployments/status only: the create was not sent; the
    // status write was, to both webhooks (a controller may write status too).
    assert!(
        seen.iter()
            .all(|(_, r)| r["request"]["subResource"] == "status"),
        "{seen:?}"
    );
    let ours: Vec<_> = seen
        .iter()
        .filter(|(_, r)| r["request"]["options"]["fieldManager"] == "wh-status")
        .collect();
    // Once to the mutating webhook and once to the validating one; a real
    // server whose write conflicts with the Deployment controller's status
    // update applies the patch again to the newer object and asks both
    // again, so a pair per attempt.
    assert!(
        ours.len() >= 2 && ours.len() % 2 == 0,
        "{} calls: {seen:?}",
        ours.len()
    );
    for (_, review) in ours {
        let r = &review["request"];
        assert_eq!(r["operation"], "UPDATE");
        assert_eq!(
            r["resource"],
            json!({"group": "apps", "version": "v1", "resource": "deployments"})
        );
        assert_eq!(r["name"], "web");
        assert_eq!(r["object"]["status"]["observedGeneration"], 7);
    }
}
