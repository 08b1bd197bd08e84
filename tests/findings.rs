//! What a real API server does that a client must expect, one test per
//! finding of `shared/reference/k8s-api` (39-43, recorded with the real
//! kube-apiserver kit). Each runs against the embedded server by default and
//! against `INFORMANT_TEST_KUBECONFIG`'s cluster when it is set, so the
//! default suite catches the embedded server drifting from the real one.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use informant_testkit::{TestCluster, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
    core::Status,
};
use serde_json::json;

async fn configmap(cluster: &TestCluster, ns: &str, name: &str) -> Api<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api
}

fn status(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("not an API error: {other}"),
    }
}

/// 39: every JSON patch that cannot apply gets the same anonymous 422,
/// whether its `test` failed or a path is missing. A client that wants to
/// know which has to look at the object again.
#[tokio::test]
async fn a_json_patch_that_cannot_apply_gets_an_anonymous_422() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("f39").await;
    let api = configmap(&cluster, &ns, "b").await;
    for patch in [
        json!([{"op": "test", "path": "/data/k", "value": "old"},
               {"op": "replace", "path": "/data/k", "value": "new"}]),
        json!([{"op": "remove", "path": "/data/nothere"}]),
        json!([{"op": "replace", "path": "/spec/x", "value": 1}]),
    ] {
        let s = status(
            api.patch(
                "b",
                &PatchParams::default(),
                &Patch::<()>::Json(serde_json::from_value(patch.clone()).unwrap()),
            )
            .await
            .unwrap_err(),
        );
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{patch}");
        assert_eq!(
            s.message, "the server rejected our request due to an error in our request",
            "{patch}"
        );
        // Nothing in the details either: `{}` (or none at all).
        if let Some(details) = s.details {
            assert!(
                details.causes.is_empty() && details.name.is_empty() && details.kind.is_empty(),
                "{patch}: {details:?}"
            );
        }
    }
    assert_eq!(api.get("b").await.unwrap().data.unwrap()["k"], "v");
}

/// 40: `replace` of a member missing from an object adds it (RFC 6902 says
/// it is an error; the API server's patch library does not).
#[tokio::test]
async fn a_json_patch_replace_of_a_missing_member_adds_it() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("f40").await;
    let api = configmap(&cluster, &ns, "b").await;
    let patch = json!([{"op": "replace", "path": "/data/missing", "value": "x"}]);
    let patched = api
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(patch).unwrap()),
        )
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!((data["k"].as_str(), data["missing"].as_str()), ("v", "x"));
}

/// 41: a `generateName` must be a valid name itself (but for a trailing
/// dash), so `"<name>."` is refused; client-go names Events
/// `<object name>.<hex nanoseconds>`, which works.
#[tokio::test]
async fn generate_name_must_itself_be_valid() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("f41").await;
    let resource = ApiResource {
        group: "events.k8s.io".into(),
        version: "v1".into(),
        api_version: "events.k8s.io/v1".into(),
        kind: "Event".into(),
        plural: "events".into(),
    };
    let events: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), &ns, &resource);
    let event = |meta: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta,
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "informant",
            "reportingInstance": "test", "action": "Check", "reason": "Probe", "type": "Normal",
            "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": ns, "name": "b"},
        }))
        .unwrap()
    };
    let s = status(
        events
            .create(
                &PostParams::default(),
                &event(json!({"generateName": "b."})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
    let causes = s.details.unwrap().causes;
    assert!(
        causes.iter().any(|c| c.field == "metadata.generateName"),
        "{causes:?}"
    );
    let created = events
        .create(
            &PostParams::default(),
            &event(json!({"name": "b.187d1c2a3f4e5a6b"})),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.name.as_deref(), Some("b.187d1c2a3f4e5a6b"));
    let generated = events
        .create(
            &PostParams::default(),
            &event(json!({"generateName": "b-"})),
        )
        .await
        .unwrap();
    assert!(generated.metadata.name.unwrap().starts_with("b-"));
}

/// 42: kube-controller-manager puts a `kube-root-ca.crt` ConfigMap and a
/// `default` ServiceAccount into every new namespace.
#[tokio::test]
async fn a_new_namespace_gets_the_root_ca_and_the_default_service_account() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("f42").await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let sas: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), &ns);
    // kube-controller-manager's queues lag when the suite keeps it busy.
    let ca = eventually("kube-root-ca.crt", Duration::from_secs(60), || async {
        cms.get_opt("kube-root-ca.crt").await.unwrap()
    })
    .await;
    assert!(ca.data.unwrap().contains_key("ca.crt"));
    eventually(
        "the default ServiceAccount",
        Duration::from_secs(60),
        || async { sas.get_opt("default").await.unwrap() },
    )
    .await;
}

/// 43: a server-side dry run persists nothing, so a dry-run namespace does
/// not exist for the dry-run objects inside it: they get NotFound.
#[tokio::test]
async fn a_dry_run_namespace_does_not_hold_dry_run_objects() {
    let cluster = TestCluster::start().await;
    let name = TestCluster::unique_name("f43");
    // Never created, but tracked: if a server got it wrong, the run cleans up.
    cluster.track("namespace", &name);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    let planned = namespaces.create(&dry, &ns).await.unwrap();
    assert_eq!(planned.metadata.name.as_deref(), Some(name.as_str()));
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &name);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let s = status(cms.create(&dry, &cm).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"), "{s:?}");
    assert!(namespaces.get_opt(&name).await.unwrap().is_none());
}

/// Found while naming Events: a name is a DNS-1123 subdomain as Kubernetes
/// checks it, at most 253 characters, and one part of it may be longer than
/// DNS's 63 (the embedded server used to refuse it).
#[tokio::test]
async fn a_name_may_have_a_part_longer_than_63_characters() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("names").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let named = |name: String| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    };
    api.create(&PostParams::default(), &named("a".repeat(100)))
        .await
        .unwrap();
    let s = status(
        api.create(&PostParams::default(), &named("a".repeat(254)))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{s:?}");
}
