//! The action executor against the embedded API server (or the cluster in
//! `INFORMANT_TEST_KUBECONFIG`): every action kind, the field manager,
//! dry-run, and which failures are worth a retry.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use informant::{
    action::{Action, Done, Executor, Severity},
    vocabulary::ObjectRef,
};
use informant_apiserver::FailRule;
use informant_testkit::TestCluster;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;

fn cm_ref(ns: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.into()),
        name: name.into(),
    }
}

fn apply(ns: &str, name: &str, color: &str) -> Action {
    Action::Apply {
        target: cm_ref(ns, name),
        object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"color": color}}),
        force: false,
    }
}

#[tokio::test]
async fn every_action_kind_reaches_the_cluster() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("act").await;
    let exec = Executor::new(cluster.client.clone(), false, "test-host");
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);

    assert_eq!(
        exec.execute("demo", &apply(&ns, "a", "red")).await.unwrap(),
        Done::Applied
    );
    let a = cms.get("a").await.unwrap();
    assert_eq!(a.data.as_ref().unwrap()["color"], "red");
    let managers: Vec<_> = a
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"informant.demo".to_string()),
        "{managers:?}"
    );

    let create = Action::Create {
        target: cm_ref(&ns, "b"),
        object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": ns}}),
    };
    assert_eq!(exec.execute("demo", &create).await.unwrap(), Done::Applied);
    assert_eq!(
        exec.execute("demo", &create).await.unwrap(),
        Done::AlreadyDone
    );

    let merge = Action::MergePatch {
        target: cm_ref(&ns, "b"),
        patch: json!({"metadata": {"labels": {"x": "1"}}}).into(),
    };
    exec.execute("demo", &merge).await.unwrap();
    let json_patch = Action::JsonPatch {
        target: cm_ref(&ns, "b"),
        patch: json!([{"op": "add", "path": "/data", "value": {"k": "v"}}]).into(),
    };
    exec.execute("demo", &json_patch).await.unwrap();
    let b = cms.get("b").await.unwrap();
    assert_eq!(b.metadata.labels.unwrap()["x"], "1");
    assert_eq!(b.data.unwrap()["k"], "v");
    // A guard that no longer holds (someone changed the value since the
    // plugin saw it): nothing changes, and that is not a failure.
    let guarded = Action::JsonPatch {
        target: cm_ref(&ns, "b"),
        patch: json!([{"op": "test", "path": "/data/k", "value": "old"},
                      {"op": "replace", "path": "/data/k", "value": "new"}])
        .into(),
    };
    assert_eq!(
        exec.execute("demo", &guarded).await.unwrap(),
        Done::Superseded
    );
    assert_eq!(cms.get("b").await.unwrap().data.unwrap()["k"], "v");
    // A patch that cannot apply for another reason is a final failure.
    let impossible = Action::JsonPatch {
        target: cm_ref(&ns, "b"),
        patch: json!([{"op": "test", "path": "/data/k", "value": "v"},
                      {"op": "remove", "path": "/data/missing"}])
        .into(),
    };
    let failure = exec.execute("demo", &impossible).await.unwrap_err();
    assert_eq!(failure.code, 422, "{failure}");
    assert!(!failure.retryable, "{failure}");

    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &ns);
    deployments
        .patch("web", &PatchParams::apply("setup"), &Patch::Apply(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})))
        .await
        .unwrap();
    let deploy_ref = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(ns.clone()),
        name: "web".into(),
    };
    let status = Action::PatchStatus {
        target: deploy_ref.clone(),
        patch: json!({"status": {"observedGeneration": 1}}).into(),
    };
    exec.execute("demo", &status).await.unwrap();
    assert_eq!(
        deployments
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .observed_generation,
        Some(1)
    );

    let event = Action::EmitEvent {
        regarding: deploy_ref,
        severity: Severity::Warning,
        reason: "ConfigMapChanged".into(),
        message: "restarting".into(),
        action: "Restart".into(),
    };
    exec.execute("demo", &event).await.unwrap();
    let events: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        &ns,
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "events.k8s.io",
            "v1",
            "Event",
        )),
    );
    let listed = events.list(&ListParams::default()).await.unwrap();
    // Ours: on a real cluster the deployment controller reports on `web` too.
    let e = &listed
        .items
        .iter()
        .find(|e| e.data["reportingController"] == "informant")
        .unwrap()
        .data;
    assert_eq!(
        (
            e["reportingController"].as_str(),
            e["type"].as_str(),
            e["reason"].as_str()
        ),
        (Some("informant"), Some("Warning"), Some("ConfigMapChanged"))
    );
    assert_eq!(e["regarding"]["name"], "web");

    let uid = cms.get("a").await.unwrap().metadata.uid;
    let wrong = Action::Delete {
        target: cm_ref(&ns, "a"),
        uid: Some("not-it".into()),
        resource_version: None,
    };
    let failure = exec.execute("demo", &wrong).await.unwrap_err();
    assert_eq!((failure.code, failure.retryable), (409, true));
    let delete = Action::Delete {
        target: cm_ref(&ns, "a"),
        uid,
        resource_version: None,
    };
    assert_eq!(exec.execute("demo", &delete).await.unwrap(), Done::Applied);
    assert_eq!(
        exec.execute("demo", &delete).await.unwrap(),
        Done::AlreadyDone,
        "a delete of what is gone is done"
    );

    let requeue = Action::RequeueAfter {
        target: cm_ref(&ns, "b"),
        delay_ms: 10,
    };
    assert_eq!(exec.execute("demo", &requeue).await.unwrap(), Done::Requeue);
}

#[tokio::test]
async fn failures_say_whether_a_retry_may_help() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("fail").await;
    let exec = Executor::new(cluster.client.clone(), false, "test-host");

    // Another manager's field: an apply conflict (409) may pass later.
    exec.execute("owner", &apply(&ns, "c", "red"))
        .await
        .unwrap();
    let conflict = exec
        .execute("other", &apply(&ns, "c", "blue"))
        .await
        .unwrap_err();
    assert_eq!((conflict.code, conflict.retryable), (409, true));
    // Invalid (422) will not.
    let invalid = exec
        .execute("demo", &apply(&ns, "Not_Valid", "red"))
        .await
        .unwrap_err();
    assert_eq!((invalid.code, invalid.retryable), (422, false));

    let Some(server) = cluster.embedded("failures_say_whether_a_retry_may_help") else {
        return;
    };
    let path = format!("/api/v1/namespaces/{ns}/configmaps/c");
    let rule = |code| FailRule {
        path_prefix: path.clone(),
        method: Some("PATCH".into()),
        query_contains: None,
        code,
        count: 1,
    };
    server.faults().fail(rule(500));
    let e = exec
        .execute("owner", &apply(&ns, "c", "red"))
        .await
        .unwrap_err();
    assert_eq!((e.code, e.retryable), (500, true));
    server.faults().fail(rule(403));
    let e = exec
        .execute("owner", &apply(&ns, "c", "red"))
        .await
        .unwrap_err();
    assert_eq!((e.code, e.retryable), (403, false));
    assert_eq!(
        exec.execute("owner", &apply(&ns, "c", "red"))
            .await
            .unwrap(),
        Done::Applied
    );
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("dry").await;
    let exec = Executor::new(cluster.client.clone(), true, "test-host");
    assert_eq!(
        exec.execute("demo", &apply(&ns, "d", "red")).await.unwrap(),
        Done::Applied
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    assert!(cms.get_opt("d").await.unwrap().is_none());
}

#[tokio::test]
async fn repeated_events_are_aggregated_into_one_series() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("series").await;
    let recorder = informant::action::recorder::Recorder::new(
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(360),
        100,
    );
    let exec = Executor::with_recorder(cluster.client.clone(), false, "test-host", recorder);
    let event = |reason: &str, note: &str| Action::EmitEvent {
        regarding: cm_ref(&ns, "noisy"),
        severity: Severity::Warning,
        reason: reason.into(),
        message: note.into(),
        action: "Check".into(),
    };
    // A plugin in a loop: 50 occurrences, with different messages.
    assert_eq!(
        exec.execute("loop", &event("Bad", "first")).await.unwrap(),
        Done::Applied
    );
    for i in 0..49 {
        assert_eq!(
            exec.execute("loop", &event("Bad", &format!("again {i}")))
                .await
                .unwrap(),
            Done::Aggregated
        );
    }
    // Another reason is another Event.
    exec.execute("loop", &event("Other", "x")).await.unwrap();
    exec.flush_event_series().await;

    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(cluster.client.clone(), &ns);
    let list: Vec<_> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("informant"))
        .collect();
    assert_eq!(list.len(), 2, "one Event per series: {list:?}");
    let bad = list
        .iter()
        .find(|e| e.reason.as_deref() == Some("Bad"))
        .unwrap();
    assert_eq!(bad.series.as_ref().map(|s| s.count), Some(50));
    assert_eq!(bad.reporting_controller.as_deref(), Some("informant"));
}
