//! The whole loop, end to end: the embedded API server (or the cluster in
//! `INFORMANT_TEST_KUBECONFIG`) over HTTP, the informers, dispatch, the real
//! compiled example plugins, the action queue, and back to the cluster.
//!
//! Writes are confined to each test's namespaces by the operator allowlist,
//! so the tests are safe on a shared cluster.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use informant::{
    action::{Reason, Rule},
    config::Config,
    runtime::Runtime,
    vocabulary::Verb,
};
use informant_apiserver::FailRule;
use informant_testkit::{LogCapture, TestCluster, create_cm, eventually, plugin_path};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace, Secret},
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

fn rule(api_version: &str, kind: &str, verbs: &[Verb], namespaces: &[&str]) -> Rule {
    Rule {
        api_version: api_version.into(),
        kind: kind.into(),
        verbs: verbs.to_vec(),
        read: false,
        namespaces: Some(namespaces.iter().map(|s| s.to_string()).collect()),
    }
}

/// A config whose allowlist confines each plugin to the given rules; every
/// other plugin of these tests may write nothing at all. The tests share a
/// real cluster with other tests and other users: none may write outside
/// its own namespaces.
fn confined(allow: &[(&str, Vec<Rule>)]) -> Config {
    let mut config = Config::default();
    let mut rules: HashMap<String, Vec<Rule>> = [
        "label-enforcer",
        "replicator",
        "restarter",
        "tenant-namespaces",
        "hostile",
        "sequencer",
    ]
    .into_iter()
    .map(|p| (p.to_string(), informant_testkit::reads_everything()))
    .collect();
    rules.extend(allow.iter().map(|(p, r)| {
        let mut all = informant_testkit::reads_everything();
        all.extend(r.iter().cloned());
        (p.to_string(), all)
    }));
    config.allowlist = informant::action::Allowlist::new(rules);
    config.actions = config
        .actions
        .backoff(Duration::from_millis(5), Duration::from_millis(200));
    config
}

/// A host with these example plugins. The sequencer reports only objects in
/// `ns`: on a shared cluster, other tests' hosts in this process see them too.
async fn host(cluster: &TestCluster, mut config: Config, plugins: &[&str], ns: &str) -> Runtime {
    logs();
    // Durable stores (the restarter's) in the test's namespace.
    config.state.namespace = Some(ns.to_string());
    let runtime = Runtime::start(cluster.client.clone(), config).unwrap();
    for p in plugins {
        let path = plugin_path(p);
        let settings = match *p {
            "sequencer" => json!({"namespace": ns}),
            _ => serde_json::Value::Null,
        };
        let bytes = std::fs::read(&path).unwrap();
        runtime.load_bytes(&path, bytes, settings).await.unwrap();
    }
    eventually(
        "the subscriptions to sync",
        Duration::from_secs(20),
        || async { runtime.synced().await.then_some(()) },
    )
    .await;
    runtime
}

fn label(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.metadata.labels.as_ref()?.get(key).cloned()
}

#[tokio::test]
async fn a_new_configmap_gets_its_missing_label() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("enforce").await;
    let config = confined(&[(
        "label-enforcer",
        vec![rule("v1", "ConfigMap", &[Verb::Patch], &[&ns])],
    )]);
    let runtime = host(&cluster, config, &["label_enforcer"], &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);

    // Through the kube client...
    let started = Instant::now();
    create_cm(&api, "via-client", json!({}), json!({"a": "b"})).await;
    eventually("the owner label", Duration::from_secs(10), || async {
        let cm = api.get("via-client").await.unwrap();
        (label(&cm, "owner").as_deref() == Some("unassigned")).then_some(())
    })
    .await;
    eprintln!("label added {:?} after the create", started.elapsed());

    // ...and through kubectl, a real client of the server.
    // Asynchronously: the embedded server runs on this test's runtime.
    let out = tokio::process::Command::new("kubectl")
        .args([
            "create",
            "configmap",
            "via-kubectl",
            "-n",
            &ns,
            "--from-literal=a=b",
        ])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        "the owner label on the kubectl object",
        Duration::from_secs(10),
        || async {
            let cm = api.get("via-kubectl").await.unwrap();
            (label(&cm, "owner").as_deref() == Some("unassigned")).then_some(())
        },
    )
    .await;
    // A label set by the user is left alone.
    create_cm(&api, "owned", json!({"owner": "team-a"}), json!({})).await;
    runtime
        .dispatcher()
        .wait_idle(Duration::from_secs(10))
        .await;
    assert_eq!(
        label(&api.get("owned").await.unwrap(), "owner").as_deref(),
        Some("team-a")
    );
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_replicator_copies_into_every_namespace_including_later_ones() {
    let cluster = TestCluster::start().await;
    let source = cluster.namespace("source").await;
    let early = cluster.namespace("early").await;
    let late_name = format!("{early}-late");
    cluster.track("namespace", &late_name);
    let writes = [Verb::Apply, Verb::Delete];
    let config = confined(&[(
        "replicator",
        vec![
            rule("v1", "Secret", &writes, &[&early, &late_name]),
            rule("v1", "ConfigMap", &writes, &[&early, &late_name]),
        ],
    )]);
    let secrets = |ns: &str| Api::<Secret>::namespaced(cluster.client.clone(), ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "registry", "labels": {"informant.dev/replicate": "true"}},
        "stringData": {"token": "s3cret"},
    }))
    .unwrap();
    secrets(&source)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let runtime = host(&cluster, config, &["replicator"], &source).await;

    eventually(
        "the copy in an existing namespace",
        Duration::from_secs(10),
        || async { secrets(&early).get_opt("registry").await.unwrap() },
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": late_name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let copy = eventually(
        "the copy in a namespace created later",
        Duration::from_secs(10),
        || async { secrets(&late_name).get_opt("registry").await.unwrap() },
    )
    .await;
    assert_eq!(
        copy.metadata.annotations.unwrap()["informant.dev/replicated-from"],
        format!("{source}/registry")
    );
    // Namespaces the allowlist does not cover got nothing, and no request.
    assert!(
        secrets(&source)
            .get_opt("registry")
            .await
            .unwrap()
            .is_some()
    );

    // Deleting the source removes the copies.
    secrets(&source)
        .delete("registry", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the copies to go", Duration::from_secs(10), || async {
        let early_gone = secrets(&early).get_opt("registry").await.unwrap().is_none();
        let late_gone = secrets(&late_name)
            .get_opt("registry")
            .await
            .unwrap()
            .is_none();
        (early_gone && late_gone).then_some(())
    })
    .await;
    runtime.shutdown(Duration::from_secs(5)).await;
    namespaces
        .delete(&late_name, &DeleteParams::default())
        .await
        .unwrap();
}

fn deployment(name: &str, configmap: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "busybox"}],
                    "volumes": [{"name": "config", "configMap": {"name": configmap}}],
                },
            },
        },
    }))
    .unwrap()
}

fn restarted_by(d: &Deployment, configmap: &str) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(&format!("informant.dev/configmap-{configmap}"))
        .cloned()
}

#[tokio::test]
async fn the_restarter_patches_exactly_the_deployments_using_the_changed_configmap() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("restart").await;
    let config = confined(&[(
        "restarter",
        vec![
            rule("apps/v1", "Deployment", &[Verb::Patch], &[&ns]),
            rule("events.k8s.io/v1", "Event", &[Verb::Create], &[&ns]),
        ],
    )]);
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let deploys: Api<Deployment> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(&cms, "one", json!({}), json!({"v": "1"})).await;
    create_cm(&cms, "two", json!({}), json!({"v": "1"})).await;
    for (d, cm) in [
        ("uses-one", "one"),
        ("also-one", "one"),
        ("uses-two", "two"),
    ] {
        deploys
            .create(&PostParams::default(), &deployment(d, cm))
            .await
            .unwrap();
    }
    let runtime = host(&cluster, config, &["restarter"], &ns).await;

    cms.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    for d in ["uses-one", "also-one"] {
        eventually(
            "the restart annotation",
            Duration::from_secs(10),
            || async { restarted_by(&deploys.get(d).await.unwrap(), "one") },
        )
        .await;
    }
    runtime
        .dispatcher()
        .wait_idle(Duration::from_secs(10))
        .await;
    let untouched = deploys.get("uses-two").await.unwrap();
    assert_eq!(restarted_by(&untouched, "two"), None);
    assert_eq!(restarted_by(&untouched, "one"), None);
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_refused_action_never_reaches_the_server() {
    let cluster = TestCluster::start().await;
    let Some(server) = cluster.embedded("a_refused_action_never_reaches_the_server") else {
        return;
    };
    let ns = cluster.namespace("refused").await;
    // The label-enforcer declares ConfigMap patches; the operator allows none.
    let config = confined(&[("label-enforcer", vec![])]);
    let runtime = host(&cluster, config, &["label_enforcer"], &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    server.clear_requests();
    create_cm(&api, "unlabelled", json!({}), json!({})).await;

    let actions = runtime.actions().clone();
    let dead = eventually("the refusal", Duration::from_secs(10), || async {
        actions
            .dead_letters()
            .into_iter()
            .find(|d| d.action.target().name == "unlabelled")
    })
    .await;
    assert_eq!(dead.reason, Reason::Refused);
    assert!(dead.message.contains("allowlist"), "{}", dead.message);
    let path = format!("/api/v1/namespaces/{ns}/configmaps/unlabelled");
    let writes: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == path && r.method != "GET")
        .collect();
    assert!(
        writes.is_empty(),
        "refused actions reached the server: {writes:?}"
    );
    assert_eq!(label(&api.get("unlabelled").await.unwrap(), "owner"), None);
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn server_errors_are_retried_and_forbidden_is_retried_slowly_then_redriven() {
    let cluster = TestCluster::start().await;
    let Some(server) =
        cluster.embedded("server_errors_are_retried_and_forbidden_is_retried_slowly_then_redriven")
    else {
        return;
    };
    let ns = cluster.namespace("retry").await;
    let mut config = confined(&[(
        "label-enforcer",
        vec![rule("v1", "ConfigMap", &[Verb::Patch], &[&ns])],
    )]);
    // Refused actions are retried for 3 s here (an hour by default).
    config.actions = config
        .actions
        .forbidden(Duration::from_secs(1), Duration::from_secs(3));
    let runtime = host(&cluster, config, &["label_enforcer"], &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let fail = |name: &str, code, count| FailRule {
        path_prefix: format!("/api/v1/namespaces/{ns}/configmaps/{name}"),
        method: Some("PATCH".into()),
        query_contains: None,
        code,
        count,
    };

    // Three 500s, then success.
    server.faults().fail(fail("flaky", 500, 3));
    create_cm(&api, "flaky", json!({}), json!({})).await;
    eventually(
        "the label despite the 500s",
        Duration::from_secs(10),
        || async {
            let cm = api.get("flaky").await.unwrap();
            label(&cm, "owner").map(|_| ())
        },
    )
    .await;
    let stats = runtime.actions().stats();
    assert!(stats.counts().retries >= 3);

    // Two 403s (an RBAC rule missing, then granted): retried slowly, done.
    server.faults().fail(fail("granted", 403, 2));
    create_cm(&api, "granted", json!({}), json!({})).await;
    eventually(
        "the label once the permission is granted",
        Duration::from_secs(15),
        || async {
            let cm = api.get("granted").await.unwrap();
            label(&cm, "owner").map(|_| ())
        },
    )
    .await;
    assert!(stats.counts().forbidden_retries >= 2);

    // Refused for longer than the window: a dead letter, which the admin
    // API's re-drive queues again once the permission is there.
    server.faults().fail(fail("denied", 403, 1000));
    create_cm(&api, "denied", json!({}), json!({})).await;
    let actions = runtime.actions().clone();
    let dead = eventually("the 403 dead letter", Duration::from_secs(20), || async {
        actions
            .dead_letters()
            .into_iter()
            .find(|d| d.action.target().name == "denied")
    })
    .await;
    assert_eq!((dead.reason, dead.code), (Reason::Forbidden, 403));
    assert!(
        dead.attempts >= 2,
        "retried before it was given up: {dead:?}"
    );
    assert_eq!(label(&api.get("denied").await.unwrap(), "owner"), None);
    server.faults().reset();
    let (requeued, _) = actions.redrive(Some("label-enforcer"));
    assert!(requeued >= 1);
    eventually("the re-driven label", Duration::from_secs(10), || async {
        let cm = api.get("denied").await.unwrap();
        label(&cm, "owner").map(|_| ())
    })
    .await;
    assert!(
        actions
            .dead_letters()
            .iter()
            .all(|d| d.action.target().name != "denied"),
        "a re-driven letter leaves the record"
    );
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn an_apply_conflict_is_retried_then_dead_lettered_with_an_event() {
    let cluster = TestCluster::start().await;
    let source = cluster.namespace("csource").await;
    let target = cluster.namespace("ctarget").await;
    let writes = [Verb::Apply, Verb::Delete];
    let mut config = confined(&[(
        "replicator",
        vec![
            rule("v1", "Secret", &writes, &[&target]),
            rule("v1", "ConfigMap", &writes, &[&target]),
        ],
    )]);
    config.actions = config.actions.max_retries(2);
    // Someone else owns the copy's data: the replicator's apply conflicts.
    let secrets = |ns: &str| Api::<Secret>::namespaced(cluster.client.clone(), ns);
    let theirs = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shared"}, "data": {"token": "dGhlaXJz"}});
    secrets(&target)
        .patch(
            "shared",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    let ours: Secret = serde_json::from_value(json!({
        "metadata": {"name": "shared", "labels": {"informant.dev/replicate": "true"}},
        "data": {"token": "b3Vycw=="},
    }))
    .unwrap();
    secrets(&source)
        .create(&PostParams::default(), &ours)
        .await
        .unwrap();
    let runtime = host(&cluster, config, &["replicator"], &source).await;

    let actions = runtime.actions().clone();
    let dead = eventually(
        "the conflict dead letter",
        Duration::from_secs(20),
        || async {
            actions
                .dead_letters()
                .into_iter()
                .find(|d| d.action.target().namespace.as_deref() == Some(target.as_str()))
        },
    )
    .await;
    assert_eq!(
        (dead.reason, dead.code, dead.attempts),
        (Reason::RetriesExhausted, 409, 3)
    );
    // The copy keeps its owner's value.
    let copy = secrets(&target).get("shared").await.unwrap();
    assert_eq!(copy.data.unwrap()["token"].0, b"theirs");
    // And the failure is visible on the object as a Warning Event.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(cluster.client.clone(), &target);
    let event = eventually(
        "the ActionFailed event",
        Duration::from_secs(10),
        || async {
            events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("ActionFailed"))
        },
    )
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.note.unwrap_or_default().contains("replicator"));
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// Every log line of the test process, for the sequencer's reports.
fn logs() -> LogCapture {
    LogCapture::global("info")
}

/// The sequence numbers the sequencer reported for `ns/name`, in order.
fn reported(logs: &LogCapture, ns: &str, name: &str) -> Vec<u64> {
    let needle = format!("sequence {ns}/{name} ");
    logs.text()
        .lines()
        .filter_map(|l| l.split_once(&needle))
        .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn rapid_updates_keep_per_object_order_and_latest_state_ends_on_the_final_state() {
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("order").await;
    let runtime = host(&cluster, confined(&[]), &["sequencer"], &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    const UPDATES: u64 = 1000;
    let objects = [("latest", "l"), ("every", "e")];
    for (delivery, name) in objects {
        create_cm(
            &api,
            name,
            json!({"informant.test/sequence": delivery}),
            json!({"seq": "0"}),
        )
        .await;
    }
    // Both objects updated in parallel streams, as fast as the server takes it.
    let writers = objects.map(|(_, name)| {
        let api = api.clone();
        tokio::spawn(async move {
            for seq in 1..=UPDATES {
                let patch = json!({"data": {"seq": seq.to_string()}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
            }
        })
    });
    for w in writers {
        w.await.unwrap();
    }
    for (_, name) in objects {
        eventually("the final state", Duration::from_secs(30), || async {
            (reported(&logs, &ns, name).last() == Some(&UPDATES)).then_some(())
        })
        .await;
    }
    let latest = reported(&logs, &ns, "l");
    let every = reported(&logs, &ns, "e");
    for (name, seen) in [("latest", &latest), ("every", &every)] {
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "{name}: per-object order violated: {seen:?}"
        );
    }
    // Every event, every update; latest state may skip, never repeat.
    let missing: Vec<u64> = (0..=UPDATES).filter(|n| !every.contains(n)).collect();
    assert!(missing.is_empty(), "every-event missed updates {missing:?}");
    eprintln!(
        "latest-state: {} calls for {} updates",
        latest.len(),
        UPDATES + 1
    );
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_plugin_stuck_at_its_deadline_does_not_delay_another() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("slow").await;
    let config = confined(&[
        (
            "label-enforcer",
            vec![rule("v1", "ConfigMap", &[Verb::Patch], &[&ns])],
        ),
        (
            "hostile",
            vec![rule("v1", "ConfigMap", &[Verb::Patch], &[&ns])],
        ),
    ]);
    let runtime = host(&cluster, config, &["label_enforcer", "hostile"], &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    const N: usize = 20;
    for i in 0..N {
        // `loop` makes the hostile plugin spin until its deadline, every time.
        create_cm(&api, &format!("cm-{i}"), json!({}), json!({"mode": "loop"})).await;
    }
    eventually(
        "every label from the label-enforcer",
        Duration::from_secs(20),
        || async {
            let all = (0..N).map(|i| {
                let api = api.clone();
                async move { label(&api.get(&format!("cm-{i}")).await.unwrap(), "owner").is_some() }
            });
            futures::future::join_all(all)
                .await
                .into_iter()
                .all(|labelled| labelled)
                .then_some(())
        },
    )
    .await;
    // By then the stuck plugin has not got through its own backlog: the
    // label-enforcer did not wait behind it.
    let hostile = runtime.dispatcher().lane("hostile").unwrap();
    let stats = hostile.stats();
    let done = stats.counts().given_up;
    assert!(
        (done as usize) < N,
        "the stuck plugin finished first ({done} of {N} given up)"
    );
    // And it is stuck indeed: its calls end at their deadline.
    eventually(
        "the stuck plugin's first call to hit its deadline",
        Duration::from_secs(10),
        || async { (stats.counts().failed > 0).then_some(()) },
    )
    .await;
    runtime.shutdown(Duration::from_secs(5)).await;
}

/// The label-enforcer watches every ConfigMap, the sequencer a labelled
/// subset: both watches must report every object, though the first one to
/// see it has already cached it.
#[tokio::test]
async fn overlapping_watches_of_one_kind_each_deliver_every_object() {
    let logs = logs();
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("many").await;
    let runtime = host(
        &cluster,
        confined(&[]),
        &["label_enforcer", "sequencer"],
        &ns,
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    for i in 0..50 {
        create_cm(
            &api,
            &format!("e-{i}"),
            json!({"informant.test/sequence": "every", "owner": "me"}),
            json!({"seq": "0"}),
        )
        .await;
    }
    for i in 0..50 {
        eventually("every object", Duration::from_secs(10), || async {
            (!reported(&logs, &ns, &format!("e-{i}")).is_empty()).then_some(())
        })
        .await;
    }
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dry_run_reaches_the_server_and_changes_nothing() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("dryrun").await;
    let config = confined(&[(
        "label-enforcer",
        vec![rule("v1", "ConfigMap", &[Verb::Patch], &[&ns])],
    )]);
    let config = Config {
        dry_run: true,
        ..config
    };
    logs();
    let runtime = Runtime::start(cluster.client.clone(), config).unwrap();
    runtime
        .load_file(&plugin_path("label_enforcer"))
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    create_cm(&api, "untouched", json!({}), json!({})).await;
    let actions = runtime.actions().clone();
    eventually("the dry-run patch", Duration::from_secs(10), || async {
        (actions.stats().counts().applied > 0).then_some(())
    })
    .await;
    assert_eq!(label(&api.get("untouched").await.unwrap(), "owner"), None);
    runtime.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_tenant_operator_creates_then_requeues_until_ready() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let cluster = TestCluster::start().await;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(cluster.client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "tenants.informant.dev"},
        "spec": {"group": "informant.dev", "scope": "Cluster",
                 "names": {"plural": "tenants", "singular": "tenant", "kind": "Tenant"},
                 "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    crds.patch(
        "tenants.informant.dev",
        &PatchParams::apply("informant-testkit"),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    cluster.track("crd", "tenants.informant.dev");
    let name = TestCluster::unique_name("t");
    let namespace = format!("tenant-{name}");
    cluster.track("namespace", &namespace);
    let config = confined(&[(
        "tenant-namespaces",
        vec![
            Rule {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                verbs: vec![Verb::Create, Verb::Delete],
                read: false,
                namespaces: None,
            },
            Rule {
                api_version: "informant.dev/v1alpha1".into(),
                kind: "Tenant".into(),
                verbs: vec![Verb::PatchStatus],
                read: false,
                namespaces: None,
            },
        ],
    )]);
    let runtime = host(&cluster, config, &["tenant_namespaces"], &namespace).await;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "informant.dev",
        "v1alpha1",
        "Tenant",
    ));
    let tenants: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &resource);
    let tenant: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "informant.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": name}, "spec": {"owner": "team-a"}}))
    .unwrap();
    eventually(
        "the Tenant kind to be served",
        Duration::from_secs(30),
        || async { tenants.create(&PostParams::default(), &tenant).await.ok() },
    )
    .await;

    eventually(
        "the tenant to be Ready",
        Duration::from_secs(15),
        || async {
            let t = tenants.get(&name).await.unwrap();
            (t.data.pointer("/status/phase").and_then(|p| p.as_str()) == Some("Ready"))
                .then_some(())
        },
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let ns = namespaces.get(&namespace).await.unwrap();
    assert_eq!(ns.metadata.labels.unwrap()["owner"], "team-a");
    // The requeue asked for on creation came back as a resync.
    let lane = runtime.dispatcher().lane("tenant-namespaces").unwrap();
    eventually("the requeued resync", Duration::from_secs(10), || async {
        (lane.stats().counts().requeued > 0).then_some(())
    })
    .await;

    // Deleting the tenant deletes its namespace.
    tenants
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the namespace to go", Duration::from_secs(10), || async {
        let ns = namespaces.get_opt(&namespace).await.unwrap();
        // A real cluster keeps it Terminating for a while.
        ns.is_none_or(|n| n.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    runtime.shutdown(Duration::from_secs(5)).await;
}
