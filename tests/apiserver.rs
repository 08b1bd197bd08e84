//! The embedded API server through the `kube` client, over real HTTP: the
//! same code paths Informant uses against a real cluster. With
//! `INFORMANT_TEST_KUBECONFIG` set, the same tests run against that cluster
//! (fault-injection tests skip there, saying so).

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, time::Duration};

use futures::{StreamExt, TryStreamExt};
use informant_apiserver::FailRule;
use informant_testkit::TestCluster;
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::ConfigMap},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
        PostParams, WatchEvent, WatchParams,
    },
    core::Status,
    discovery,
};
use serde_json::{Value, json};

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn api_error(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_on_a_builtin_kind() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("crud").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);

    let created = api
        .create(&PostParams::default(), &configmap("a", &[("app", "web")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let fetched = api.get("a").await.unwrap();
    assert_eq!(
        fetched.metadata.resource_version,
        created.metadata.resource_version
    );

    let err = api_error(
        api.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    let mut changed = fetched.clone();
    changed
        .data
        .as_mut()
        .unwrap()
        .insert("k".into(), "w".into());
    let replaced = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );

    // A replace carrying the old resourceVersion is refused.
    let err = api_error(
        api.replace("a", &PostParams::default(), &fetched)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));

    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap().get("extra").map(String::as_str),
        Some("1")
    );

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let err = api_error(api.get("a").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
}

#[tokio::test]
async fn generate_name_and_a_missing_namespace() {
    let cluster = TestCluster::start().await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "no-such-namespace");
    let err = api_error(
        api.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"no-such-namespace\" not found")
    );

    let ns = cluster.namespace("gen").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "cfg-"}})).unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    assert!(
        created.name_any().starts_with("cfg-") && created.name_any().len() > 4,
        "{}",
        created.name_any()
    );
}

#[tokio::test]
async fn label_selectors_and_pagination() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("select").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    for (name, app, tier) in [
        ("a", "web", "front"),
        ("b", "web", "back"),
        ("c", "db", "back"),
        ("d", "db", ""),
        ("e", "cache", "front"),
    ] {
        let mut labels = vec![("app", app)];
        if !tier.is_empty() {
            labels.push(("tier", tier));
        }
        api.create(&PostParams::default(), &configmap(name, &labels))
            .await
            .unwrap();
    }
    // Only the objects this test created: a real cluster adds
    // kube-root-ca.crt to every namespace.
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items
            .iter()
            .map(ResourceExt::name_any)
            .filter(|n| n.len() == 1)
            .collect::<Vec<_>>()
    };
    for (selector, want) in [
        ("app=web", vec!["a", "b"]),
        ("app!=web", vec!["c", "d", "e"]),
        ("app in (db,cache)", vec!["c", "d", "e"]),
        ("app notin (db,cache)", vec!["a", "b"]),
        ("tier", vec!["a", "b", "c", "e"]),
        ("!tier", vec!["d"]),
        ("app=web,tier=back", vec!["b"]),
    ] {
        let got = names(
            api.list(&ListParams::default().labels(selector))
                .await
                .unwrap(),
        );
        assert_eq!(got, want, "selector {selector}");
    }
    let by_name = names(
        api.list(&ListParams::default().fields("metadata.name=c"))
            .await
            .unwrap(),
    );
    assert_eq!(by_name, ["c"]);

    let mut pages = 0;
    let mut seen = Vec::new();
    let mut params = ListParams::default().labels("app").limit(2);
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(ResourceExt::name_any));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn a_crd_created_at_run_time_is_served() {
    let cluster = TestCluster::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let group = format!("{}.example.com", TestCluster::unique_name("t"));
    cluster.track("crd", &format!("gadgets.{group}"));
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();

    // Served (discovery included) soon after, with Established set.
    let gvk = GroupVersionKind::gvk(&group, "v1", "Gadget");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (resource, _) = loop {
        match discovery::pinned_kind(&cluster.client, &gvk).await {
            Ok(found) => break found,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the CRD was not served: {e}"),
        }
    };
    let established = crds.get(&format!("gadgets.{group}")).await.unwrap();
    let conditions = established.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let ns = cluster.namespace("crd").await;
    let gadgets: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), &ns, &resource);
    let g: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 1}
    }))
    .unwrap();
    let created = gadgets.create(&PostParams::default(), &g).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // Spec changes bump generation; status writes do not, and go only through /status.
    let patched = gadgets
        .patch(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    assert!(
        patched.data.get("status").is_none(),
        "status is ignored on the main resource"
    );
    let with_status = gadgets
        .patch_status(
            "g1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.metadata.generation, Some(2));
    assert_eq!(with_status.data["status"]["ready"], true);
    assert_eq!(
        gadgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Deleting the CRD takes the resource and its objects away.
    crds.delete(&format!("gadgets.{group}"), &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while discovery::pinned_kind(&cluster.client, &gvk).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resource is still served after its CRD was deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = ApiResource::from_gvk(&gvk);
}

#[tokio::test]
async fn the_status_subresource_leaves_generation_alone() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("status").await;
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &d).await.unwrap();
    let g0 = created.metadata.generation.unwrap();
    let scaled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(g0 + 1));
    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(g0 + 1),
        "metadata changes leave generation alone"
    );
    let status = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": g0 + 1}})),
        )
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(g0 + 1));
    assert_eq!(status.status.unwrap().observed_generation, Some(g0 + 1));
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("fin").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let mut cm = configmap("held", &[]);
    cm.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(api.get("held").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("pre").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &configmap("p", &[]))
        .await
        .unwrap();
    let wrong = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        api_error(api.delete("p", &wrong).await.unwrap_err()).code,
        409
    );
    let right = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    api.delete("p", &right).await.unwrap();
}

#[tokio::test]
async fn server_side_apply_conflicts_between_managers() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("ssa").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let applied = |color: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"color": color}});
    let created = api
        .patch(
            "cfg",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied("red")),
        )
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["color"], "red");
    // The same value from another manager is no conflict; a different one is.
    api.patch(
        "cfg",
        &PatchParams::apply("bob"),
        &Patch::Apply(applied("red")),
    )
    .await
    .unwrap();
    let err = api_error(
        api.patch(
            "cfg",
            &PatchParams::apply("carol"),
            &Patch::Apply(applied("blue")),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(err.message.contains("alice"), "{}", err.message);
    let forced = api
        .patch(
            "cfg",
            &PatchParams::apply("carol").force(),
            &Patch::Apply(applied("blue")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["color"], "blue");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"carol".to_string()), "{managers:?}");
}

#[tokio::test]
async fn watch_resumes_after_a_drop_and_gets_410_after_compaction() {
    let cluster = TestCluster::start().await;
    let Some(server) = cluster.embedded("watch_resumes_after_a_drop_and_gets_410_after_compaction")
    else {
        return;
    };
    let ns = cluster.namespace("watch").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();

    let mut stream = api
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &configmap("one", &[]))
        .await
        .unwrap();
    let first = match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(cm) => cm,
        other => panic!("expected ADDED, got {other:?}"),
    };
    assert_eq!(first.name_any(), "one");

    // Drop every watch; changes made meanwhile arrive when the watch resumes
    // from the last resourceVersion it saw.
    server.faults().drop_watches();
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "the dropped stream ends"
    );
    api.create(&PostParams::default(), &configmap("two", &[]))
        .await
        .unwrap();
    api.delete("one", &DeleteParams::default()).await.unwrap();
    let last = first.resource_version().unwrap();
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(1), &last)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, WatchEvent::Bookmark(_)))
        .map(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["ADDED two", "DELETED one"]);

    // After compaction, the old resourceVersion is gone: 200, then one ERROR 410.
    server.storage().compact();
    let events: Vec<_> = api
        .watch(&WatchParams::default().timeout(5), &last)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let events: Vec<_> = events
        .into_iter()
        .filter(|e| !matches!(e, WatchEvent::Bookmark(_)))
        .collect();
    match events.as_slice() {
        [WatchEvent::Error(e)] => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected one 410 ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_and_the_initial_events_end_marker() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("bookmark").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    api.create(&PostParams::default(), &configmap("x", &[]))
        .await
        .unwrap();
    // Only this test's object: a real cluster adds kube-root-ca.crt too.
    // At no resourceVersion the initial events are a consistent read; at
    // "0" a real server's watch cache may not have the create yet.
    let params = WatchParams::default()
        .fields("metadata.name=x")
        .initial_events()
        .timeout(3);
    let events: Vec<_> = api
        .watch(&params, "")
        .await
        .unwrap()
        .take(2)
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(&events[0], WatchEvent::Added(cm) if cm.name_any() == "x"),
        "{:?}",
        events[0]
    );
    match &events[1] {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn injected_failures_and_request_log() {
    let cluster = TestCluster::start().await;
    let Some(server) = cluster.embedded("injected_failures_and_request_log") else {
        return;
    };
    let ns = cluster.namespace("faults").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    server.faults().fail(FailRule {
        path_prefix: path.clone(),
        method: Some("GET".into()),
        query_contains: None,
        code: 500,
        count: 1,
    });
    assert_eq!(
        api_error(api.list(&ListParams::default()).await.unwrap_err()).code,
        500
    );
    // kube-rs retries a 429 by itself: the list succeeds on the second request.
    server.faults().fail(FailRule {
        path_prefix: path.clone(),
        method: None,
        query_contains: None,
        code: 429,
        count: 1,
    });
    api.list(&ListParams::default()).await.unwrap();
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.is_list_of(&path))
        .count();
    assert_eq!(lists, 3, "one failed with 500, one with 429, one retried");
}

async fn raw(
    cluster: &TestCluster,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    let response = cluster
        .client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_the_server_keeps_serving() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("bad").await;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");

    let (code, status) = raw(
        &cluster,
        "POST",
        &cms,
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/widgetses",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 404);
    let (code, _) = raw(
        &cluster,
        "GET",
        "/apis/no.such.group/v1/things",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(code, 404);
    let body = br#"{"metadata":{"name":"x"}}"#.to_vec();
    let (code, status) = raw(
        &cluster,
        "POST",
        "/api/v1/namespaces/missing-ns/configmaps",
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let (code, status) = raw(&cluster, "POST", &cms, "text/plain", body.clone()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, _) = raw(
        &cluster,
        "PATCH",
        &format!("{cms}/x"),
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(code, 415);
    let huge = format!(
        r#"{{"metadata":{{"name":"huge"}},"data":{{"blob":"{}"}}}}"#,
        "x".repeat(10 << 20)
    )
    .into_bytes();
    let (code, _) = raw(&cluster, "POST", &cms, "application/json", huge).await;
    assert_eq!(code, 413);
    let bad_name = br#"{"metadata":{"name":"Not_Valid"}}"#.to_vec();
    let (code, status) = raw(&cluster, "POST", &cms, "application/json", bad_name).await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    // Still serving.
    let (code, _) = raw(&cluster, "POST", &cms, "application/json", body).await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn a_stalled_watch_stays_open_and_silent_and_latency_delays_requests() {
    let cluster = TestCluster::start().await;
    let Some(server) =
        cluster.embedded("a_stalled_watch_stays_open_and_silent_and_latency_delays_requests")
    else {
        return;
    };
    let ns = cluster.namespace("stall").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    server.faults().set_stall(true);
    api.create(&PostParams::default(), &configmap("unseen", &[]))
        .await
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(700), stream.try_next()).await;
    assert!(
        waited.is_err(),
        "a stalled watch delivers nothing and does not close: {waited:?}"
    );
    server.faults().set_stall(false);

    server.faults().set_latency(Duration::from_millis(300));
    let started = std::time::Instant::now();
    api.get("unseen").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the request was delayed"
    );
    server.faults().reset();
}
