//! `deploy/` on a real node: the image `deploy/build-image.sh` makes around
//! this build's binary, loaded onto the node, run by `deploy/overlays/kit`
//! with the RBAC of `deploy/base`. What a user relies on when they
//! `kubectl apply -k deploy/`: the Pod becomes Available with green probes,
//! runs non-root on a read-only root filesystem within the `restricted`
//! Pod Security level (host networking aside, which only the kit needs),
//! acts with its service account's token and nothing more, hot-reloads its
//! plugins ConfigMap, keeps a running plugin when a broken file arrives,
//! recovers from a missing RBAC rule without a restart, survives SIGKILL,
//! drains and exits 0 when deleted, and hands leadership over to a second
//! replica.
//!
//! These tests need a real cluster with a node that can run the image:
//! `INFORMANT_TEST_KUBECONFIG` (the kit started with `WITH_NODE=1`) and
//! `INFORMANT_TEST_LOAD_IMAGE`, a command that puts an image archive on the
//! node (the kit's `load-image.sh`). Without them they skip, saying why.
//! They use the namespace `informant-system` and the cluster-scoped
//! `informant` ClusterRole and binding that deploy/ names, one test at a
//! time, and delete them when done.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use informant_testkit::{TestCluster, http_get, image, plugin_bytes, variant};
use k8s_openapi::api::{
    apps::v1::Deployment,
    coordination::v1::Lease,
    core::v1::{ConfigMap, Namespace, Node, Pod},
};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::{Value, json};

const NS: &str = "informant-system";
/// The ports deploy/overlays/kit gives the host.
const HTTP: u16 = 18080;
const ADMIN: u16 = 18081;
/// The second replica's, for the leader election test.
const HTTP_B: u16 = 18090;
const ADMIN_B: u16 = 18091;

/// One test at a time: they share `informant-system`.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster, when it has what these tests need; otherwise why not.
async fn node_cluster(test: &str) -> Option<(TestCluster, image::Image)> {
    let cluster = TestCluster::start().await;
    let skip = |why: &str| eprintln!("{test}: skipped: {why}");
    if !cluster.is_real() {
        skip(
            "it needs a real cluster with a node (INFORMANT_TEST_KUBECONFIG, e.g. the kit started with WITH_NODE=1)",
        );
        return None;
    }
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let ready = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
    if !ready {
        skip("the cluster has no Ready node to run Pods on (start the kit with WITH_NODE=1)");
        return None;
    }
    let Some(loader) = std::env::var_os("INFORMANT_TEST_LOAD_IMAGE") else {
        skip(
            "INFORMANT_TEST_LOAD_IMAGE is not set: a command that puts an image archive on the node, such as the kit's load-image.sh",
        );
        return None;
    };
    if let Some(why) = image::missing_tools() {
        skip(&why);
        return None;
    }
    let image = image::shared(&PathBuf::from(env!("CARGO_BIN_EXE_informant")));
    static LOADED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    LOADED.get_or_init(|| {
        let out = Command::new(&loader).arg(&image.archive).output().unwrap();
        assert!(
            out.status.success(),
            "{} {}: {}",
            loader.to_string_lossy(),
            image.archive.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    Some((cluster, image))
}

/// `kubectl ARGS` against the cluster, with `stdin`; its stdout.
fn kubectl(cluster: &TestCluster, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Wait for `check` to give a value, looking every half second.
async fn within<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The port of the API server the kubeconfig names: the kit's may not be
/// 6443 (CI runs its own on other ports).
fn api_port(cluster: &TestCluster) -> u16 {
    let kc = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap();
    let server = kc.clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();
    server
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(443)
}

/// deploy/overlays/kit as `kubectl kustomize` renders it, with what a test
/// on a shared cluster must add: the API server's port, and an allowlist
/// that lets the label enforcer write only in `test_ns`.
fn rendered(cluster: &TestCluster, test_ns: &str) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/overlays/kit");
    let text = kubectl(cluster, &["kustomize", dir.to_str().unwrap()], None);
    let mut docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    for doc in &mut docs {
        match doc["kind"].as_str().unwrap() {
            "ConfigMap" if doc["metadata"]["name"] == "informant-config" => {
                let config = doc["data"]["informant.yaml"].as_str().unwrap().to_string();
                doc["data"]["informant.yaml"] = json!(format!(
                    "{config}allow:\n  label-enforcer:\n{}  - {{apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [{test_ns}]}}\n",
                    informant_testkit::READS_EVERYTHING_YAML
                ));
            }
            "Deployment" => {
                let env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
                    .as_array_mut()
                    .unwrap();
                for var in env.iter_mut() {
                    if var["name"] == "KUBERNETES_SERVICE_PORT" {
                        var["value"] = json!(api_port(cluster).to_string());
                    }
                }
            }
            _ => {}
        }
    }
    docs
}

/// A second Deployment of the same host on other ports, for leader election
/// (two replicas of one Deployment would share the host's ports).
fn second_replica(deployment: &Value) -> Value {
    let mut d = deployment.clone();
    d["metadata"]["name"] = json!("informant-b");
    d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] = json!("b");
    d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] = json!("b");
    let container = &mut d["spec"]["template"]["spec"]["containers"][0];
    container["ports"][0]["containerPort"] = json!(HTTP_B);
    for var in container["env"].as_array_mut().unwrap() {
        match var["name"].as_str().unwrap() {
            "INFORMANT_HTTP_ADDR" => var["value"] = json!(format!("127.0.0.1:{HTTP_B}")),
            "INFORMANT_ADMIN_ADDR" => var["value"] = json!(format!("127.0.0.1:{ADMIN_B}")),
            _ => {}
        }
    }
    d
}

/// Apply the documents, with the plugins ConfigMap holding the label
/// enforcer made first (unless `plugins` is false), as a user who follows
/// the README would.
async fn deploy(cluster: &TestCluster, docs: &[Value], plugins: bool) {
    // A namespace left by an earlier run may still be terminating.
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    within(
        "the previous informant-system to be gone",
        Duration::from_secs(120),
        || async {
            namespaces
                .get_opt(NS)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    cluster.track("clusterrolebinding", "informant");
    cluster.track("clusterrole", "informant");
    cluster.track("namespace", NS);
    let (first, rest): (Vec<&Value>, Vec<&Value>) =
        docs.iter().partition(|d| d["kind"] == "Namespace");
    let list =
        |docs: &[&Value]| json!({"apiVersion": "v1", "kind": "List", "items": docs}).to_string();
    kubectl(cluster, &["apply", "-f", "-"], Some(&list(&first)));
    if plugins {
        set_plugins(cluster, &plugin_bytes("label_enforcer"), None, "create");
    }
    kubectl(cluster, &["apply", "-f", "-"], Some(&list(&rest)));
}

/// Write the plugins ConfigMap: `label-enforcer.wasm` and, if given, its
/// settings. `verb` is `create` or `replace`: `kubectl apply` cannot carry
/// a plugin (its last-applied annotation is limited to 256 KiB).
fn set_plugins(cluster: &TestCluster, wasm: &[u8], settings: Option<&Value>, verb: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("label-enforcer.wasm"), wasm).unwrap();
    if let Some(settings) = settings {
        std::fs::write(dir.path().join("label-enforcer.json"), settings.to_string()).unwrap();
    }
    let manifest = kubectl(
        cluster,
        &[
            "create",
            "configmap",
            "informant-plugins",
            "-n",
            NS,
            &format!("--from-file={}", dir.path().display()),
            "--dry-run=client",
            "-o",
            "json",
        ],
        None,
    );
    kubectl(cluster, &[verb, "-f", "-"], Some(&manifest));
}

/// Wait until the Deployment is Available with every replica ready.
async fn available(cluster: &TestCluster, name: &str) {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), NS);
    within(
        &format!("Deployment {name} to be Available"),
        Duration::from_secs(180),
        || async {
            let d = deployments.get(name).await.ok()?;
            let status = d.status?;
            let available = status
                .conditions?
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True");
            (available && status.ready_replicas == Some(1) && status.updated_replicas == Some(1))
                .then_some(())
        },
    )
    .await;
}

/// The running, ready Pod of a Deployment (selected by its instance label,
/// or the first replica's when `instance` is none).
async fn pod(cluster: &TestCluster, instance: Option<&str>) -> Pod {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let selector = match instance {
        Some(i) => format!("app.kubernetes.io/name=informant,app.kubernetes.io/instance={i}"),
        None => "app.kubernetes.io/name=informant,!app.kubernetes.io/instance".to_string(),
    };
    within(
        "a ready informant Pod",
        Duration::from_secs(120),
        || async {
            pods.list(&ListParams::default().labels(&selector))
                .await
                .ok()?
                .items
                .into_iter()
                .find(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|c| {
                                c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                })
        },
    )
    .await
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map_or(0, |c| c.restart_count)
}

/// The host process of a Pod, as this machine sees it (the node is this
/// machine): its pid, found by the Pod name in its environment.
fn host_pid(pod_name: &str) -> Option<u32> {
    let marker = format!("POD_NAME={pod_name}");
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
        if !cmdline.starts_with(b"/usr/local/bin/informant\0") {
            return None;
        }
        let environ = std::fs::read(entry.path().join("environ")).ok()?;
        environ
            .split(|b| *b == 0)
            .any(|v| v == marker.as_bytes())
            .then_some(pid)
    })
}

async fn labelled(cluster: &TestCluster, ns: &str, name: &str, key: &str, timeout: Duration) {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    within(
        &format!("ConfigMap {ns}/{name} to get the label {key}"),
        timeout,
        || async {
            let cm = api.get(name).await.ok()?;
            cm.metadata.labels?.contains_key(key).then_some(())
        },
    )
    .await;
}

async fn create_cm(cluster: &TestCluster, ns: &str, name: &str) {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
}

fn logs(cluster: &TestCluster, pod: &str) -> String {
    kubectl(cluster, &["logs", "-n", NS, pod], None)
}

#[tokio::test]
async fn deploy_runs_on_a_real_node() {
    let test = "deploy_runs_on_a_real_node";
    let Some((cluster, image)) = node_cluster(test).await else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let ns = cluster.namespace("node").await;
    let docs = rendered(&cluster, &ns);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        image.name.as_str(),
        "the overlay runs the image the script names"
    );

    // The Pod, minus the host networking only the kit needs, passes the
    // `restricted` level the base namespace enforces: ask the API server,
    // with a server-side dry run into a namespace that enforces it.
    let strict = cluster.namespace("restricted").await;
    kubectl(
        &cluster,
        &[
            "label",
            "namespace",
            &strict,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    );
    let mut template = deployment["spec"]["template"].clone();
    // (Its service account lives in informant-system, not here.)
    for field in ["hostNetwork", "serviceAccountName"] {
        template["spec"].as_object_mut().unwrap().remove(field);
    }
    let pod_json = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "restricted-check", "namespace": strict},
        "spec": template["spec"]});
    kubectl(
        &cluster,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&pod_json.to_string()),
    );

    let started = Instant::now();
    deploy(&cluster, &docs, true).await;
    available(&cluster, "informant").await;
    let pod = pod(&cluster, None).await;
    let pod_name = pod.metadata.name.clone().unwrap();
    eprintln!("{test}: Available after {:?}", started.elapsed());

    // The probes' endpoints, from the node (the Pod is on its network).
    let http: std::net::SocketAddr = ([127, 0, 0, 1], HTTP).into();
    let (status, body) = http_get(http, "/readyz?verbose").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("ready\n"), "{body}");
    assert_eq!(http_get(http, "/healthz").await.0, 200);

    // Non-root on a read-only root filesystem, as the kernel sees it.
    let pid = host_pid(&pod_name).expect("the host process is visible on the node");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid.split_whitespace().skip(1).all(|u| u == "65532"),
        "{uid}"
    );
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap();
    let options = root.split_whitespace().nth(5).unwrap();
    assert!(
        options.split(',').any(|o| o == "ro"),
        "the root filesystem is writable: {root}"
    );
    assert!(
        mounts
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some("/var/cache/informant")),
        "no compile cache volume"
    );

    // It acts with its service account, and RBAC holds it to deploy/'s rules.
    let sa = "system:serviceaccount:informant-system:informant";
    let can = |verb: &str, resource: &str| {
        let out = Command::new("kubectl")
            .env("KUBECONFIG", &cluster.kubeconfig)
            .args(["auth", "can-i", verb, resource, "--as", sa, "-n", &ns])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    assert!(can("patch", "configmaps") && can("watch", "configmaps"));
    assert!(!can("get", "pods") && !can("delete", "deployments") && !can("patch", "nodes"));
    create_cm(&cluster, &ns, "after-start").await;
    labelled(
        &cluster,
        &ns,
        "after-start",
        "owner",
        Duration::from_secs(60),
    )
    .await;

    // A new version through the ConfigMap: kubelet swaps `..data`, the host
    // reloads it, and the new version (other settings) acts.
    let admin: std::net::SocketAddr = ([127, 0, 0, 1], ADMIN).into();
    let digest = |body: &str| -> String {
        let v: Value = serde_json::from_str(body).unwrap();
        v["plugins"][0]["digest"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let before = digest(&http_get(admin, "/api/v1/plugins").await.1);
    let v2 = variant(&plugin_bytes("label_enforcer"), "v2");
    let settings = json!({"required": {"team": "platform"}});
    set_plugins(&cluster, &v2, Some(&settings), "replace");
    let reloaded = Instant::now();
    within(
        "the new version to load",
        Duration::from_secs(60),
        || async {
            let after = digest(&http_get(admin, "/api/v1/plugins").await.1);
            (after != before && !after.is_empty()).then_some(())
        },
    )
    .await;
    eprintln!(
        "{test}: reloaded {:?} after the ConfigMap update",
        reloaded.elapsed()
    );
    create_cm(&cluster, &ns, "after-reload").await;
    labelled(
        &cluster,
        &ns,
        "after-reload",
        "team",
        Duration::from_secs(60),
    )
    .await;

    // A broken file: the running version stays, the log and readiness say so.
    set_plugins(&cluster, b"\0asm broken", Some(&settings), "replace");
    let body = within(
        "readiness to report the broken file",
        Duration::from_secs(60),
        || async {
            let (status, body) = http_get(http, "/readyz?verbose").await;
            (status == 200
                && body.contains(
                    "label-enforcer.wasm (plugin label-enforcer keeps its running version)",
                ))
            .then_some(body)
        },
    )
    .await;
    eprintln!("{test}: {body}");
    assert!(logs(&cluster, &pod_name).contains("plugin file not loaded"));
    create_cm(&cluster, &ns, "after-broken").await;
    labelled(
        &cluster,
        &ns,
        "after-broken",
        "team",
        Duration::from_secs(60),
    )
    .await;
    // Mend the ConfigMap: a restarted container reads only what is there.
    set_plugins(&cluster, &v2, Some(&settings), "replace");
    within(
        "readiness to stop reporting the file",
        Duration::from_secs(60),
        || async {
            let (_, body) = http_get(http, "/readyz?verbose").await;
            (!body.contains("not loaded")).then_some(())
        },
    )
    .await;

    // A missing RBAC rule: a 403 that names the verb and the resource, no
    // crash; once the rule is back, the host catches up without a restart.
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .unwrap()
        .clone();
    let mut narrowed = role.clone();
    for rule in narrowed["rules"].as_array_mut().unwrap() {
        if rule["resources"] == json!(["configmaps"]) {
            rule["verbs"]
                .as_array_mut()
                .unwrap()
                .retain(|v| v != "patch");
        }
    }
    kubectl(&cluster, &["apply", "-f", "-"], Some(&narrowed.to_string()));
    within(
        "RBAC to refuse the patch",
        Duration::from_secs(30),
        || async { (!can("patch", "configmaps")).then_some(()) },
    )
    .await;
    create_cm(&cluster, &ns, "while-forbidden").await;
    let line = within("the 403 in the log", Duration::from_secs(60), || async {
        logs(&cluster, &pod_name)
            .lines()
            .find(|l| l.contains("action forbidden") && l.contains("while-forbidden"))
            .map(str::to_string)
    })
    .await;
    assert!(
        line.contains("cannot patch resource \\\"configmaps\\\""),
        "the 403 names the verb and resource: {line}"
    );
    kubectl(&cluster, &["apply", "-f", "-"], Some(&role.to_string()));
    let granted = Instant::now();
    labelled(
        &cluster,
        &ns,
        "while-forbidden",
        "team",
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "{test}: caught up {:?} after the rule came back",
        granted.elapsed()
    );
    let current = self::pod(&cluster, None).await;
    assert_eq!(current.metadata.name.as_deref(), Some(pod_name.as_str()));
    assert_eq!(restarts(&current), 0, "the 403 restarted the host");

    // SIGKILL: nothing half-done that the restarted container cannot finish.
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for i in 0..3 {
        create_cm(&cluster, &ns, &format!("after-kill-{i}")).await;
    }
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    within(
        "the container to restart",
        Duration::from_secs(120),
        || async {
            let p = pods.get(&pod_name).await.ok()?;
            (restarts(&p) >= 1).then_some(())
        },
    )
    .await;
    for i in 0..3 {
        labelled(
            &cluster,
            &ns,
            &format!("after-kill-{i}"),
            "team",
            Duration::from_secs(120),
        )
        .await;
    }

    // Deleting the Pod: it drains, says so and exits 0 within its grace.
    let follow = Command::new("kubectl")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(["logs", "-f", "-n", NS, &pod_name])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Every state the Pod has until it is gone, watched (a poll can miss
    // the one between the exit and the removal): kubelet records the exit
    // before the object goes. The watch is open before the delete.
    let params = kube::api::WatchParams::default()
        .fields(&format!("metadata.name={pod_name}"))
        .timeout(90);
    let mut states = futures::StreamExt::boxed(pods.watch(&params, "0").await.unwrap());
    let watcher = tokio::spawn(async move {
        use futures::TryStreamExt;
        use kube::api::WatchEvent;
        let exit = |p: Pod| {
            p.status
                .and_then(|s| s.container_statuses)
                .and_then(|c| c.into_iter().next())
                .and_then(|c| c.state)
                .and_then(|s| s.terminated)
                .map(|t| t.exit_code)
        };
        let mut code = None;
        while let Ok(Some(event)) = states.try_next().await {
            match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => code = exit(p).or(code),
                WatchEvent::Deleted(p) => return exit(p).or(code),
                _ => {}
            }
        }
        code
    });
    let deleted = Instant::now();
    kubectl(
        &cluster,
        &["delete", "pod", "-n", NS, &pod_name, "--wait=false"],
        None,
    );
    let out = tokio::task::spawn_blocking(move || follow.wait_with_output().unwrap())
        .await
        .unwrap();
    let stopped = deleted.elapsed();
    let log = String::from_utf8_lossy(&out.stdout);
    let code = watcher.await.unwrap();
    eprintln!("{test}: exited {code:?} {stopped:?} after the delete");
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains("shutdown complete: nothing left undone"),
        "{log}"
    );
    assert_eq!(code, Some(0), "the host's exit code");
    assert!(stopped < Duration::from_secs(30), "{stopped:?}");
}

#[tokio::test]
async fn a_second_replica_takes_over_when_the_leader_is_deleted() {
    let test = "a_second_replica_takes_over_when_the_leader_is_deleted";
    let Some((cluster, _image)) = node_cluster(test).await else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let ns = cluster.namespace("leader").await;
    let mut docs = rendered(&cluster, &ns);
    let second = second_replica(docs.iter().find(|d| d["kind"] == "Deployment").unwrap());
    docs.push(second);
    deploy(&cluster, &docs, true).await;
    available(&cluster, "informant").await;
    available(&cluster, "informant-b").await;
    let a = pod(&cluster, None).await.metadata.name.unwrap();
    let b = pod(&cluster, Some("b")).await.metadata.name.unwrap();
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NS);
    let holder = || async {
        leases
            .get_opt("informant")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
    };
    let leader = within("a leader", Duration::from_secs(60), || async {
        holder().await.filter(|h| *h == a || *h == b)
    })
    .await;
    create_cm(&cluster, &ns, "before").await;
    labelled(&cluster, &ns, "before", "owner", Duration::from_secs(60)).await;

    // Delete the leader's Pod: the other replica takes the Lease (handed
    // over at once on a graceful stop) and handles what came in meanwhile.
    let other = if leader == a { b.clone() } else { a.clone() };
    let deleted = Instant::now();
    kubectl(
        &cluster,
        &["delete", "pod", "-n", NS, &leader, "--wait=false"],
        None,
    );
    for i in 0..3 {
        create_cm(&cluster, &ns, &format!("between-{i}")).await;
    }
    let new_leader = within("another leader", Duration::from_secs(60), || async {
        holder().await.filter(|h| *h != leader)
    })
    .await;
    eprintln!(
        "{test}: {new_leader} leads {:?} after {leader} was deleted",
        deleted.elapsed()
    );
    // Usually the warm replica; the Pod its Deployment starts in place of
    // the deleted one may win the released Lease first, which is as good:
    // what matters is that another replica leads and catches up.
    if new_leader != other {
        eprintln!("{test}: the replacement Pod {new_leader} took the Lease before {other}");
    }
    for i in 0..3 {
        labelled(
            &cluster,
            &ns,
            &format!("between-{i}"),
            "owner",
            Duration::from_secs(60),
        )
        .await;
    }
}

#[tokio::test]
async fn a_pod_runs_a_python_plugin_pulled_by_reference() {
    let test = "a_pod_runs_a_python_plugin_pulled_by_reference";
    let Some((cluster, _image)) = node_cluster(test).await else {
        return;
    };
    let Ok(registry) = std::env::var("INFORMANT_TEST_REGISTRY") else {
        eprintln!(
            "{test}: skipped: it needs the kit's registry (INFORMANT_TEST_REGISTRY; WITH_REGISTRY=1)"
        );
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let ns = cluster.namespace("byref").await;
    let mut docs = rendered(&cluster, &ns);
    for doc in &mut docs {
        if doc["kind"] == "ConfigMap" && doc["metadata"]["name"] == "informant-config" {
            let config = doc["data"]["informant.yaml"].as_str().unwrap().to_string();
            doc["data"]["informant.yaml"] = json!(format!(
                "{config}oci:\n  insecureRegistries: ['{registry}']\n"
            ));
        }
    }
    // The 18 MB Python plugin, which no ConfigMap can hold, by reference.
    let reference = format!(
        "{registry}/informant-test/{}:v1",
        TestCluster::unique_name("py-enforcer")
    );
    let file = informant_testkit::guest_plugin("python", "label-enforcer");
    let out = Command::new(env!("CARGO_BIN_EXE_informant"))
        .args(["push", file.to_str().unwrap(), &reference, "--plain-http"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushed = String::from_utf8_lossy(&out.stdout);
    let digest = pushed.trim().rsplit('@').next().unwrap().to_string();
    deploy(&cluster, &docs, false).await;
    available(&cluster, "informant").await;
    let name = TestCluster::unique_name("py-enforcer");
    cluster.track("plugins.informant.dev", &name);
    let plugin = json!({
        "apiVersion": "informant.dev/v1alpha1", "kind": "Plugin",
        "metadata": {"name": name},
        "spec": {
            "image": reference,
            "settings": {"required": {"team": "python"}},
            "permissions": [
                {"apiVersion": "v1", "kind": "ConfigMap", "verbs": ["read"]},
                {"apiVersion": "apps/v1", "kind": "Deployment", "verbs": ["read"]},
                {"apiVersion": "v1", "kind": "Namespace", "verbs": ["read"]},
                {"apiVersion": "v1", "kind": "ConfigMap", "verbs": ["patch"], "namespaces": [ns]},
                {"apiVersion": "apps/v1", "kind": "Deployment", "verbs": ["patch"], "namespaces": [ns]},
            ],
        },
    });
    let applied = Instant::now();
    kubectl(&cluster, &["apply", "-f", "-"], Some(&plugin.to_string()));
    let status = within(
        "the Plugin to be Ready",
        Duration::from_secs(300),
        || async {
            let out = Command::new("kubectl")
                .env("KUBECONFIG", &cluster.kubeconfig)
                .args(["get", "plugin", &name, "-o", "json"])
                .output()
                .ok()?;
            let object: Value = serde_json::from_slice(&out.stdout).ok()?;
            let status = object["status"].clone();
            // A refusal that waiting does not mend fails at once, saying why.
            let reason = status["conditions"][0]["reason"]
                .as_str()
                .unwrap_or_default();
            assert!(
                ![
                    "PermissionDenied",
                    "LimitsTooHigh",
                    "InvalidSpec",
                    "NotAComponent"
                ]
                .contains(&reason),
                "the Plugin object was refused: {status}"
            );
            (status["conditions"][0]["status"] == "True").then_some(status)
        },
    )
    .await;
    eprintln!(
        "{test}: Ready {:?} after the Plugin object was applied: {status}",
        applied.elapsed()
    );
    assert_eq!(status["digest"], digest.as_str());
    create_cm(&cluster, &ns, "by-reference").await;
    labelled(
        &cluster,
        &ns,
        "by-reference",
        "team",
        Duration::from_secs(60),
    )
    .await;
}
