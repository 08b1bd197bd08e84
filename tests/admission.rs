//! Admission end to end: the `informant run` binary serves real plugins'
//! webhooks over TLS with a certificate it generated, registers them with
//! server-side apply, and the API server (the embedded one, or a real
//! kube-apiserver on `INFORMANT_TEST_KUBECONFIG`, which calls the host over
//! loopback) sends its requests there. Each test narrows the webhooks to
//! namespaces of its own, so a shared cluster never sees them.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    time::Duration,
};

use informant_testkit::{
    HostProcess, TestCluster, eventually, host_command, plugin_path, terminate,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap, core::v1::Namespace};
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::{ApiResource, GroupVersionKind, Status},
};
use serde_json::{Value, json};

/// A host serving webhooks, and where.
struct Served {
    host: HostProcess,
    admin: String,
    health: String,
    webhooks: SocketAddr,
    configuration: String,
    _dir: tempfile::TempDir,
}

/// The address in a line the host printed: `... at http(s)://ADDR/...`.
fn address_in(line: &str) -> String {
    let start = line.find("://").unwrap() + 3;
    let rest = &line[start..];
    rest[..rest.find('/').unwrap_or(rest.len())].to_string()
}

/// `informant run` with `plugins` (file name, compiled fixture) and the
/// webhooks of each narrowed to `namespaces`; `extra` is YAML added under
/// every plugin's `admission.plugins.NAME`.
async fn serve(
    cluster: &TestCluster,
    plugins: &[(&str, std::path::PathBuf)],
    names: &[&str],
    namespaces: &[&str],
    extra: &str,
) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    for (file, path) in plugins {
        std::fs::copy(path, plugin_dir.join(file)).unwrap();
    }
    let configuration = TestCluster::unique_name("informant-test");
    cluster.track("validatingwebhookconfiguration", &configuration);
    cluster.track("mutatingwebhookconfiguration", &configuration);
    let mut config = format!(
        "admission:\n  addr: '127.0.0.1:0'\n  generateCertificate: true\n  configurationName: {configuration}\n  plugins:\n"
    );
    for name in names {
        config.push_str(&format!(
            "    {name}:\n      namespaceSelector: {{matchExpressions: [{{key: kubernetes.io/metadata.name, operator: In, values: [{}]}}]}}\n",
            namespaces.join(", ")
        ));
        for line in extra.lines() {
            config.push_str(&format!("      {line}\n"));
        }
    }
    let config_file = dir.path().join("informant.yaml");
    std::fs::write(&config_file, config).unwrap();
    let mut host = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "run")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--plugins")
            .arg(&plugin_dir)
            .arg("--config")
            .arg(&config_file)
            .arg("--compile-cache")
            .arg(informant_testkit::compile_cache()),
    );
    let stdout = host.stdout();
    let printed: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(4)
            .map(Result::unwrap)
            .collect()
    })
    .await
    .unwrap();
    assert!(
        printed[3].starts_with("admission webhooks at https://"),
        "{printed:?}"
    );
    Served {
        host,
        health: address_in(&printed[1]),
        admin: address_in(&printed[2]),
        webhooks: address_in(&printed[3]).parse().unwrap(),
        configuration,
        _dir: dir,
    }
}

fn status(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("not an API error: {other}"),
    }
}

fn deployment(name: &str, labels: Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [
                                  {"name": "app", "image": "busybox"},
                                  {"name": "sidecar", "image": "busybox", "resources": {"requests": {"cpu": "1"}}},
                              ]}}}
    }))
    .unwrap()
}

fn configmap(name: &str, gate: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"gate": gate}}})).unwrap()
}

async fn label_namespace(cluster: &TestCluster, ns: &str, labels: Value) {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    api.patch(
        ns,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": labels}})),
    )
    .await
    .unwrap();
}

/// A GET of the host's HTTP side, its body.
async fn get(addr: &str, path: &str) -> String {
    let (status, body) = informant_testkit::http_get(addr.parse().unwrap(), path).await;
    assert!(status == 200 || status == 503, "{path}: {status} {body}");
    body
}

/// The registered configuration of `kind`, if it exists.
async fn configuration(cluster: &TestCluster, kind: &str, name: &str) -> Option<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1",
        kind,
    ));
    Api::<DynamicObject>::all_with(cluster.client.clone(), &resource)
        .get_opt(name)
        .await
        .unwrap()
}

/// A kube client for the host's webhook server, trusting the CA the host
/// registered.
async fn webhook_client(cluster: &TestCluster, served: &Served) -> kube::Client {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let registered = eventually(
        "a registered configuration",
        Duration::from_secs(30),
        || async {
            configuration(
                cluster,
                "ValidatingWebhookConfiguration",
                &served.configuration,
            )
            .await
        },
    )
    .await;
    let bundle = registered.data["webhooks"][0]["clientConfig"]["caBundle"]
        .as_str()
        .unwrap()
        .to_string();
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(bundle)
        .unwrap();
    let ders: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.unwrap().to_vec())
        .collect();
    let mut config = kube::Config::new(format!("https://{}", served.webhooks).parse().unwrap());
    config.root_cert = Some(ders);
    kube::Client::try_from(config).unwrap()
}

/// POST `body` to the webhook server: status and body.
async fn post(client: &kube::Client, path: &str, body: Vec<u8>) -> (u16, Value) {
    use http_body_util::BodyExt as _;
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn review(uid: &str, name: &str, ns: &str, gate: &str) -> Vec<u8> {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
        "resource": {"group": "", "version": "v1", "resource": "configmaps"},
        "name": name, "namespace": ns, "operation": "CREATE",
        "userInfo": {"username": "test"},
        "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": {"gate": gate}}},
        "oldObject": null, "dryRun": false}})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn owner_required_and_default_requests_answer_the_api_server() {
    owner_required_end_to_end(plugin_path("owner_required")).await;
}

/// The Python twin of owner-required, through the API server.
#[tokio::test]
async fn the_python_owner_required_answers_the_api_server() {
    owner_required_end_to_end(informant_testkit::guest_plugin("python", "owner-required")).await;
}

async fn owner_required_end_to_end(owner_required: std::path::PathBuf) {
    let cluster = TestCluster::start().await;
    let strict = cluster.namespace("adm-strict").await;
    let relaxed = cluster.namespace("adm-relaxed").await;
    label_namespace(
        &cluster,
        &strict,
        json!({"informant.dev/owner-required": "true"}),
    )
    .await;
    let served = serve(
        &cluster,
        &[
            ("owner-required.wasm", owner_required),
            ("default-requests.wasm", plugin_path("default_requests")),
        ],
        &["owner-required", "default-requests"],
        &[&strict, &relaxed],
        "",
    )
    .await;
    let strict_api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &strict);
    let relaxed_api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &relaxed);

    // Once registered (a real API server picks configurations up from its
    // informers, and the host registers a webhook once its plugin's cache
    // has synced), a Deployment without an owner is refused in the
    // labelled namespace, naming the Deployment and the namespace.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let denial = eventually("owner-required in effect", Duration::from_secs(60), || {
        let api = strict_api.clone();
        let dry = dry.clone();
        async move { api.create(&dry, &deployment("web", json!({}))).await.err() }
    })
    .await;
    // A real API server picks the mutating and the validating configuration
    // up through two informers: wait for default-requests too.
    eventually(
        "default-requests in effect",
        Duration::from_secs(60),
        || {
            let api = strict_api.clone();
            let dry = dry.clone();
            async move {
                let created = api
                    .create(&dry, &deployment("owned", json!({"owner": "team-a"})))
                    .await
                    .ok()?;
                let containers = created.spec?.template.spec?.containers;
                containers[0]
                    .resources
                    .as_ref()?
                    .requests
                    .as_ref()
                    .map(|_| ())
            }
        },
    )
    .await;
    let s = status(denial);
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        s.message,
        format!(
            "admission webhook \"owner-required.informant.dev\" denied the request: Deployment {strict}/web has no \"owner\" label, and namespace {strict} requires one (informant.dev/owner-required=true): add metadata.labels.owner"
        )
    );
    // With an owner it passes, and default-requests (mutating, so first)
    // gave the container without requests its defaults, and said so.
    let created = strict_api
        .create(
            &PostParams::default(),
            &deployment("owned", json!({"owner": "team-a"})),
        )
        .await
        .unwrap();
    let containers = created.spec.unwrap().template.spec.unwrap().containers;
    let requests = |i: usize| {
        serde_json::to_value(&containers[i].resources.as_ref().unwrap().requests).unwrap()
    };
    assert_eq!(requests(0), json!({"cpu": "10m", "memory": "32Mi"}));
    assert_eq!(requests(1), json!({"cpu": "1"}), "requests it set are kept");
    // Elsewhere, no owner is needed.
    relaxed_api
        .create(&PostParams::default(), &deployment("web", json!({})))
        .await
        .unwrap();
    // An update that removes the owner is refused too.
    let s = status(
        strict_api
            .patch(
                "owned",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"owner": null}}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 403, "{}", s.message);

    // Metrics by plugin and decision, the duration histogram, readiness.
    let metrics = get(&served.health, "/metrics").await;
    for expected in [
        "informant_admission_requests_total{plugin=\"owner-required\",decision=\"denied\"}",
        "informant_admission_requests_total{plugin=\"owner-required\",decision=\"allowed\"}",
        "informant_admission_requests_total{plugin=\"default-requests\",decision=\"mutated\"}",
        "informant_admission_duration_seconds_count{plugin=\"owner-required\"}",
        "informant_webhook_ready{plugin=\"owner-required\"} 1",
    ] {
        assert!(metrics.contains(expected), "{expected} missing:\n{metrics}");
    }
    let ready = get(&served.health, "/readyz?verbose").await;
    assert!(
        ready.contains("[+] webhooks: every webhook answers"),
        "{ready}"
    );
    // The admin API lists the webhooks, their counts and the registration.
    let view: Value = serde_json::from_str(&get(&served.admin, "/api/v1/webhooks").await).unwrap();
    assert_eq!(view["enabled"], true);
    let owner = view["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["plugin"] == "owner-required")
        .unwrap();
    assert_eq!(owner["state"], "ready");
    assert_eq!(owner["name"], "owner-required.informant.dev");
    assert!(
        owner["requests"]["denied"].as_u64().unwrap() >= 2,
        "{owner}"
    );
    assert!(
        owner["durations"]["count"].as_u64().unwrap() >= 3,
        "{owner}"
    );
    let registered = view["registration"]["registered"].as_array().unwrap();
    assert_eq!(registered.len(), 2, "{view}");

    // The webhooks point at this process: on shutdown they go with it.
    let (exit, _stderr) = terminate(served.host).await;
    assert!(exit.success());
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        assert!(
            configuration(&cluster, kind, &served.configuration)
                .await
                .is_none(),
            "{kind} left behind"
        );
    }
}

/// Every way a plugin can fail to decide, under `failurePolicy: Fail`.
#[tokio::test]
async fn a_plugin_that_cannot_decide_is_answered_by_its_failure_policy() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("adm-fail").await;
    let served = serve(
        &cluster,
        &[("gatekeeper.wasm", plugin_path("gatekeeper"))],
        &["gatekeeper"],
        &[&ns],
        "",
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    eventually("gatekeeper in effect", Duration::from_secs(60), || {
        let api = api.clone();
        let dry = dry.clone();
        async move { api.create(&dry, &configmap("probe", "deny")).await.err() }
    })
    .await;
    for (gate, cause, says) in [
        ("trap", "trap", "the plugin trapped: panicked at"),
        ("loop", "timeout", "the call ran past its 100ms deadline"),
        ("error", "failed", "gatekeeper failed on purpose"),
        (
            "read-secret",
            "refused",
            "cache read refused (forbidden): plugin gatekeeper may not read v1/Secret",
        ),
        (
            "enqueue",
            "refused",
            "an admission call cannot enqueue actions",
        ),
    ] {
        let s = status(
            api.create(&PostParams::default(), &configmap(gate, gate))
                .await
                .unwrap_err(),
        );
        assert_eq!(s.code, 500, "{gate}: {}", s.message);
        let prefix = format!(
            "admission webhook \"gatekeeper.informant.dev\" denied the request: plugin gatekeeper could not decide ({cause}): "
        );
        assert!(
            s.message.starts_with(&prefix) && s.message.contains(says),
            "{gate}: {}",
            s.message
        );
        assert!(
            s.message
                .ends_with("; failurePolicy Fail refuses the request"),
            "{}",
            s.message
        );
    }
    // A plain one still works: the host recovered from each.
    api.create(&PostParams::default(), &configmap("fine", "fine"))
        .await
        .unwrap();
    let metrics = get(&served.health, "/metrics").await;
    for cause in ["trap", "timeout", "failed", "refused"] {
        let line = format!(
            "informant_admission_failures_total{{plugin=\"gatekeeper\",cause=\"{cause}\"}}"
        );
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    let view: Value = serde_json::from_str(&get(&served.admin, "/api/v1/webhooks").await).unwrap();
    let last = &view["webhooks"][0]["lastError"];
    assert_eq!(last["cause"], "refused", "{view}");
    assert!(
        last["request"]
            .as_str()
            .unwrap()
            .contains(&format!("CREATE v1 configmaps {ns}/enqueue")),
        "{last}"
    );

    // Malformed reviews get a 400 with a message; a request for a plugin
    // that was never loaded, a 404.
    let client = webhook_client(&cluster, &served).await;
    let (code, body) = post(&client, "/validate/gatekeeper", b"{not json".to_vec()).await;
    assert_eq!(code, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("malformed AdmissionReview: the body is not an AdmissionReview"),
        "{body}"
    );
    let (code, _) = post(&client, "/validate/nobody", review("u1", "x", &ns, "fine")).await;
    assert_eq!(code, 404);
    let (_, stderr) = terminate(served.host).await;
    assert!(
        stderr.contains("admission request answered by the failure policy")
            && stderr.contains("cause=\"timeout\"")
            && stderr.contains("malformed AdmissionReview answered with 400"),
        "{stderr}"
    );
}

/// The operator's configuration overrides a plugin's failure policy; a
/// mutating webhook's bad patch never reaches the API server.
#[tokio::test]
async fn the_operator_overrides_the_failure_policy_and_bad_patches_stay_home() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("adm-ignore").await;
    let served = serve(
        &cluster,
        &[("gatekeeper.wasm", plugin_path("gatekeeper_mutating"))],
        &["gatekeeper"],
        &[&ns],
        "failurePolicy: Ignore",
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let patched = eventually("gatekeeper in effect", Duration::from_secs(60), || {
        let api = api.clone();
        let dry = dry.clone();
        async move {
            let cm = api.create(&dry, &configmap("probe", "patch")).await.ok()?;
            cm.metadata.labels?.get("gated").cloned()
        }
    })
    .await;
    assert_eq!(patched, "yes");
    // Ignore: a trap lets the request through, unchanged.
    let created = api
        .create(&PostParams::default(), &configmap("trap", "trap"))
        .await
        .unwrap();
    assert!(!created.metadata.labels.unwrap().contains_key("gated"));
    // A patch that does not apply is never sent: the host answers for it.
    let created = api
        .create(&PostParams::default(), &configmap("bad", "badpatch"))
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.unwrap()["gate"], "badpatch");
    let registered = configuration(
        &cluster,
        "MutatingWebhookConfiguration",
        &served.configuration,
    )
    .await
    .unwrap();
    assert_eq!(registered.data["webhooks"][0]["failurePolicy"], "Ignore");
    let metrics = get(&served.health, "/metrics").await;
    assert!(
        metrics.contains(
            "informant_admission_failures_total{plugin=\"gatekeeper\",cause=\"bad_patch\"} 1"
        ),
        "{metrics}"
    );
    terminate(served.host).await;
}

/// Registration follows the plugin directory: a webhook appears with its
/// plugin and goes with it; a request that arrives for a plugin just
/// unloaded is answered by the failure policy it had.
#[tokio::test]
async fn webhooks_follow_hot_reload() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("adm-reload").await;
    let served = serve(&cluster, &[], &["gatekeeper"], &[&ns], "").await;
    let plugins = served._dir.path().join("plugins");
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    std::fs::copy(plugin_path("gatekeeper"), plugins.join("gatekeeper.wasm")).unwrap();
    eventually(
        "the new plugin's webhook in effect",
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move {
                api.create(
                    &PostParams::default(),
                    &configmap(&TestCluster::unique_name("d"), "deny"),
                )
                .await
                .err()
            }
        },
    )
    .await;
    let client = webhook_client(&cluster, &served).await;
    std::fs::remove_file(plugins.join("gatekeeper.wasm")).unwrap();
    eventually(
        "the configuration gone with the plugin",
        Duration::from_secs(60),
        || async {
            configuration(
                &cluster,
                "ValidatingWebhookConfiguration",
                &served.configuration,
            )
            .await
            .is_none()
            .then_some(())
        },
    )
    .await;
    // An API server that had not seen it go yet still calls; the host
    // answers by the failure policy the webhook had (Fail).
    let (code, body) = post(
        &client,
        "/validate/gatekeeper",
        review("u-late", "late", &ns, "fine"),
    )
    .await;
    assert_eq!(code, 200);
    let response = &body["response"];
    assert_eq!(response["uid"], "u-late");
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("plugin gatekeeper could not decide (unloaded)"),
        "{body}"
    );
    // And the API server no longer calls it.
    eventually("no webhook any more", Duration::from_secs(30), || {
        let api = api.clone();
        async move {
            api.create(
                &PostParams::default(),
                &configmap(&TestCluster::unique_name("d"), "deny"),
            )
            .await
            .ok()
        }
    })
    .await;
    let (_, stderr) = terminate(served.host).await;
    assert!(stderr.contains("cause=\"unloaded\""), "{stderr}");
}

/// `informant` with `args`: exit code, stdout, stderr.
fn informant(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_informant"))
        .env_remove("INFORMANT_LOG")
        .env_remove("INFORMANT_LOG_FORMAT")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `informant replay --reviews`: AdmissionReview fixtures in, the host's
/// answers out, offline, for both admission examples.
#[test]
fn replay_answers_reviews_as_the_host_would() {
    for (name, file) in [
        ("owner-required", "owner_required"),
        ("default-requests", "default_requests"),
    ] {
        let dir = informant_testkit::fixture(&format!("replay/{name}"));
        let plugin = plugin_path(file);
        let reviews = dir.join("reviews.json");
        let objects = dir.join("objects.yaml");
        let mut args = vec![
            std::ffi::OsStr::new("replay"),
            plugin.as_os_str(),
            std::ffi::OsStr::new("--reviews"),
            reviews.as_os_str(),
        ];
        if objects.exists() {
            args.extend([std::ffi::OsStr::new("--objects"), objects.as_os_str()]);
        }
        let (code, stdout, stderr) = informant(&args);
        assert_eq!(code, 0, "{name}: {stderr}");
        let expected = json_lines(&std::fs::read_to_string(dir.join("expected.jsonl")).unwrap());
        assert_eq!(json_lines(&stdout), expected, "{name}: {stderr}");
    }
    // What the fixtures show, said plainly.
    let owner = json_lines(
        &std::fs::read_to_string(informant_testkit::fixture(
            "replay/owner-required/expected.jsonl",
        ))
        .unwrap(),
    );
    let decisions: Vec<&str> = owner
        .iter()
        .map(|a| a["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        ["denied", "allowed", "allowed", "denied", "denied"]
    );
    let requests = json_lines(
        &std::fs::read_to_string(informant_testkit::fixture(
            "replay/default-requests/expected.jsonl",
        ))
        .unwrap(),
    );
    assert_eq!(requests[0]["decision"], "mutated");
    assert_eq!(
        requests[0]["patch"][0]["value"],
        json!({"requests": {"cpu": "10m", "memory": "32Mi"}})
    );
}

#[test]
fn replay_reports_reviews_the_plugin_cannot_decide() {
    let dir = tempfile::tempdir().unwrap();
    let reviews = dir.path().join("reviews.json");
    let lines: Vec<String> = ["trap", "fine", "read-secret"]
        .iter()
        .map(|gate| String::from_utf8(review(&format!("u-{gate}"), gate, "default", gate)).unwrap())
        .collect();
    std::fs::write(&reviews, lines.join("\n")).unwrap();
    let plugin = plugin_path("gatekeeper");
    let (code, stdout, stderr) = informant(&[
        "replay".as_ref(),
        plugin.as_os_str(),
        "--reviews".as_ref(),
        reviews.as_os_str(),
    ]);
    assert_eq!(code, 1, "{stderr}");
    let answers = json_lines(&stdout);
    assert_eq!(answers.len(), 3, "{stdout}");
    assert_eq!(answers[0]["decision"], "error");
    assert_eq!(answers[0]["allowed"], false);
    assert_eq!(answers[1]["decision"], "allowed");
    assert_eq!(answers[2]["decision"], "error");
    assert!(
        stderr.contains("reviews.json:1: admission request answered by the failure policy: CREATE v1 configmaps default/trap (trap): the plugin trapped: panicked at")
            && stderr.contains("reviews.json:3: admission request answered by the failure policy: CREATE v1 configmaps default/read-secret (refused): cache read refused (forbidden)"),
        "{stderr}"
    );
    // A plugin without a webhook, and a review that is not one, say so.
    let (code, _, stderr) = informant(&[
        "replay".as_ref(),
        plugin_path("label_enforcer").as_os_str(),
        "--reviews".as_ref(),
        reviews.as_os_str(),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("declares no admission webhook"), "{stderr}");
    std::fs::write(&reviews, "{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}\n").unwrap();
    let (code, _, stderr) = informant(&[
        "replay".as_ref(),
        plugin.as_os_str(),
        "--reviews".as_ref(),
        reviews.as_os_str(),
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("line 1: expected apiVersion admission.k8s.io/v1 kind AdmissionReview"),
        "{stderr}"
    );
}

#[test]
fn check_says_what_webhook_a_plugin_serves() {
    let plugin = plugin_path("owner_required");
    let (code, stdout, stderr) = informant(&["check".as_ref(), plugin.as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    let manifest: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(manifest["admission"]["mode"], "validating");
    assert_eq!(
        manifest["admission"]["rules"][0]["resources"][0],
        "deployments"
    );
    assert!(
        stderr.contains("a validating admission webhook"),
        "{stderr}"
    );
}

/// The Python owner-required declares what its Rust twin declares and
/// answers the same reviews the same way.
#[test]
fn the_python_owner_required_is_the_twin_of_the_rust_one() {
    let python = informant_testkit::guest_plugin("python", "owner-required");
    let cache = informant_testkit::compile_cache();
    let manifest = |plugin: &std::path::Path| -> Value {
        let (code, stdout, stderr) = informant(&[
            "check".as_ref(),
            "--compile-cache".as_ref(),
            cache.as_os_str(),
            plugin.as_os_str(),
        ]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str(&stdout).unwrap()
    };
    assert_eq!(manifest(&python), manifest(&plugin_path("owner_required")));
    let dir = informant_testkit::fixture("replay/owner-required");
    let (reviews, objects) = (dir.join("reviews.json"), dir.join("objects.yaml"));
    let (code, stdout, stderr) = informant(&[
        "replay".as_ref(),
        "--compile-cache".as_ref(),
        cache.as_os_str(),
        python.as_os_str(),
        "--reviews".as_ref(),
        reviews.as_os_str(),
        "--objects".as_ref(),
        objects.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let expected = json_lines(&std::fs::read_to_string(dir.join("expected.jsonl")).unwrap());
    assert_eq!(json_lines(&stdout), expected, "{stderr}");
}

/// `deploy/admission` (and its cert-manager component) over `deploy/`, as
/// an operator turns it on: every replica serves webhooks on :9443 with the
/// certificate from `informant-webhook-tls`, the Service has the port the
/// registered webhooks point at, and the leader may register them.
#[test]
fn deploy_wires_admission_as_a_component() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("deploy");
    let overlay = tempfile::tempdir().unwrap();
    // kustomize takes relative paths only, and no overlay inside its base.
    let up = "../".repeat(overlay.path().components().count() - 1);
    let base = format!(
        "{up}{}",
        deploy.display().to_string().trim_start_matches('/')
    );
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [{base}]\ncomponents: [{base}/admission, {base}/admission/cert-manager]\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|d| serde_norway::from_str(d).unwrap())
        .collect();
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };
    let deployment: Deployment = serde_json::from_value(find("Deployment", "informant")).unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let env: std::collections::BTreeMap<_, _> = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.as_str(), e.value.clone()?)))
        .collect();
    assert_eq!(env["INFORMANT_WEBHOOK_ADDR"], "0.0.0.0:9443");
    assert_eq!(
        env["INFORMANT_WEBHOOK_CERT_DIR"],
        "/etc/informant/webhook-certs"
    );
    assert!(
        container
            .ports
            .iter()
            .flatten()
            .any(|p| p.container_port == 9443 && p.name.as_deref() == Some("webhook"))
    );
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "webhook-certs")
        .unwrap();
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("informant-webhook-tls")
    );
    let service: k8s_openapi::api::core::v1::Service =
        serde_json::from_value(find("Service", "informant")).unwrap();
    let ports = service.spec.unwrap().ports.unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p.port == 443 && p.name.as_deref() == Some("webhook"))
    );
    assert!(
        ports.iter().any(|p| p.port == 8080),
        "the metrics port stays"
    );
    let role: k8s_openapi::api::rbac::v1::ClusterRole =
        serde_json::from_value(find("ClusterRole", "informant-admission")).unwrap();
    assert!(role.rules.unwrap().iter().any(|r| {
        r.verbs.contains(&"patch".to_string())
            && r.resource_names
                .as_ref()
                .is_some_and(|n| n == &["informant"])
    }));
    let certificate = find("Certificate", "informant-webhook");
    assert_eq!(certificate["spec"]["secretName"], "informant-webhook-tls");
    assert_eq!(
        certificate["spec"]["dnsNames"][0], "informant.informant-system.svc",
        "the name the registered webhooks' Service reference resolves to"
    );
}

/// A certificate directory as cert-manager writes one (`tls.crt`,
/// `tls.key`, `ca.crt`), for 127.0.0.1.
fn certificate_dir(dir: &std::path::Path) -> Vec<u8> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    ca.der().to_vec()
}

/// A kube client for a webhook server at `addr`, trusting `ca` (DER).
fn client_for(addr: SocketAddr, ca: &[u8]) -> kube::Client {
    let mut config = kube::Config::new(format!("https://{addr}").parse().unwrap());
    config.root_cert = Some(vec![ca.to_vec()]);
    kube::Client::try_from(config).unwrap()
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A webhook answers only once its plugin's cache has synced: before, its
/// failure policy answers and readiness says why. The API server is down
/// (a closed gate) while the host starts, on either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_ready_only_once_its_plugin_has_synced() {
    let cluster = TestCluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = certificate_dir(&dir.path().join("certs"));
    let mut gate = informant_testkit::Gate::closed(&cluster.kubeconfig);
    let kubeconfig = dir.path().join("kubeconfig");
    gate.kubeconfig(&cluster.kubeconfig, &kubeconfig);
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(plugin_path("gatekeeper"), plugins.join("gatekeeper.wasm")).unwrap();
    let config = dir.path().join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "admission:\n  addr: '127.0.0.1:0'\n  certDir: {}\n  register: false\n",
            dir.path().join("certs").display()
        ),
    )
    .unwrap();
    let mut host = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "run")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--plugins")
            .arg(&plugins)
            .arg("--config")
            .arg(&config),
    );
    let stdout = host.stdout();
    let printed: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(4)
            .map(Result::unwrap)
            .collect()
    })
    .await
    .unwrap();
    let health = address_in(&printed[1]);
    let webhooks: SocketAddr = address_in(&printed[3]).parse().unwrap();
    let client = client_for(webhooks, &ca);

    let (status, ready) =
        informant_testkit::http_get(health.parse().unwrap(), "/readyz?verbose").await;
    assert_eq!(status, 503);
    assert!(
        ready
            .contains("[-] webhooks: waiting for their plugins' subscriptions to sync: gatekeeper"),
        "{ready}"
    );
    let (code, body) = post(
        &client,
        "/validate/gatekeeper",
        review("u1", "a", "default", "fine"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert!(
        body["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("plugin gatekeeper could not decide (not_ready): it is not ready: its subscriptions have not synced yet"),
        "{body}"
    );

    gate.open().await;
    eventually("the webhook ready", Duration::from_secs(60), || async {
        let (status, _) = informant_testkit::http_get(health.parse().unwrap(), "/readyz").await;
        (status == 200).then_some(())
    })
    .await;
    let (_, body) = post(
        &client,
        "/validate/gatekeeper",
        review("u2", "a", "default", "fine"),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let (_, body) = post(
        &client,
        "/validate/gatekeeper",
        review("u3", "b", "default", "deny"),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false, "{body}");
    assert_eq!(body["response"]["status"]["code"], 403, "{body}");
    terminate(host).await;
}

/// With leader election, every replica serves the webhooks and exactly one
/// registers them; when it stops, the other takes over the registration.
/// Both mount the same certificate, as replicas of one Deployment do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_serves_and_the_leader_registers() {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("adm-leader").await;
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let ca = certificate_dir(&certs);
    let name = TestCluster::unique_name("informant-test");
    cluster.track("validatingwebhookconfiguration", &name);
    let lease = TestCluster::unique_name("lease");
    let mut replicas = Vec::new();
    for i in 0..2 {
        let port = free_port();
        let plugins = dir.path().join(format!("plugins-{i}"));
        std::fs::create_dir(&plugins).unwrap();
        std::fs::copy(plugin_path("gatekeeper"), plugins.join("gatekeeper.wasm")).unwrap();
        let config = dir.path().join(format!("informant-{i}.yaml"));
        std::fs::write(
            &config,
            format!(
                "admission:\n  addr: '127.0.0.1:{port}'\n  certDir: {}\n  url: 'https://127.0.0.1:{port}'\n  configurationName: {name}\n  plugins:\n    gatekeeper:\n      namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {ns}}}}}\n",
                certs.display()
            ),
        )
        .unwrap();
        let mut host = HostProcess::spawn(
            host_command(env!("CARGO_BIN_EXE_informant"), "run")
                .arg("--kubeconfig")
                .arg(&cluster.kubeconfig)
                .arg("--plugins")
                .arg(&plugins)
                .arg("--config")
                .arg(&config)
                .args([
                    "--leader-elect",
                    "--lease-name",
                    &lease,
                    "--lease-namespace",
                    &ns,
                ])
                .env("POD_NAME", format!("replica-{i}")),
        );
        let stdout = host.stdout();
        let printed: Vec<String> = tokio::task::spawn_blocking(move || {
            BufReader::new(stdout)
                .lines()
                .take(4)
                .map(Result::unwrap)
                .collect()
        })
        .await
        .unwrap();
        replicas.push((host, address_in(&printed[2]), port));
    }
    // Both answer.
    for (_, _, port) in &replicas {
        let client = client_for(SocketAddr::from(([127, 0, 0, 1], *port)), &ca);
        let body = eventually(
            "a replica's webhook answers",
            Duration::from_secs(60),
            || {
                let client = client.clone();
                let ns = ns.clone();
                async move {
                    let (_, body) = post(
                        &client,
                        "/validate/gatekeeper",
                        review("u", "x", &ns, "deny"),
                    )
                    .await;
                    (body["response"]["status"]["code"] == 403).then_some(body)
                }
            },
        )
        .await;
        assert_eq!(body["response"]["allowed"], false);
    }
    // Exactly one registers, and the configuration points at it.
    let registering = |admin: String| async move {
        let view: Value = serde_json::from_str(&get(&admin, "/api/v1/webhooks").await).unwrap();
        view["registration"]["registering"] == true
    };
    let leader = eventually("one replica registers", Duration::from_secs(60), || {
        let admins: Vec<String> = replicas.iter().map(|r| r.1.clone()).collect();
        async move {
            let mut leaders = Vec::new();
            for (i, admin) in admins.into_iter().enumerate() {
                if registering(admin).await {
                    leaders.push(i);
                }
            }
            (leaders.len() == 1).then(|| leaders[0])
        }
    })
    .await;
    let url_of = |port: u16| format!("https://127.0.0.1:{port}/validate/gatekeeper");
    let registered_url = || async {
        configuration(&cluster, "ValidatingWebhookConfiguration", &name)
            .await
            .and_then(|c| {
                c.data["webhooks"][0]["clientConfig"]["url"]
                    .as_str()
                    .map(str::to_string)
            })
    };
    let leader_port = replicas[leader].2;
    eventually(
        "the leader's URL registered",
        Duration::from_secs(30),
        || async { (registered_url().await == Some(url_of(leader_port))).then_some(()) },
    )
    .await;
    // The leader stops; the other replica takes the Lease and registers
    // itself.
    let (host, _, _) = replicas.remove(leader);
    terminate(host).await;
    let other_port = replicas[0].2;
    eventually(
        "the other replica registered",
        Duration::from_secs(60),
        || async { (registered_url().await == Some(url_of(other_port))).then_some(()) },
    )
    .await;
    let (host, _, _) = replicas.remove(0);
    terminate(host).await;
}

/// A certificate file that is missing or unreadable stops start-up, naming
/// the file.
#[test]
fn missing_certificate_files_fail_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n",
    )
    .unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("tls.key"), "not a key").unwrap();
    let run = |certs: &std::path::Path| {
        informant(&[
            "run".as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            "--http-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--admin-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--webhook-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--webhook-cert-dir".as_ref(),
            certs.as_os_str(),
        ])
    };
    let (code, _, stderr) = run(&certs);
    assert_ne!(code, 0);
    let missing = certs.join("tls.crt");
    assert!(
        stderr.contains(&format!(
            "{}: cannot read the webhook certificate file",
            missing.display()
        )),
        "{stderr}"
    );
    // A certificate, but a key that is not one.
    certificate_dir(&dir.path().join("good"));
    std::fs::copy(dir.path().join("good/tls.crt"), &missing).unwrap();
    let (code, _, stderr) = run(&certs);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!(
            "{}: no usable PEM private key in it",
            certs.join("tls.key").display()
        )),
        "{stderr}"
    );
}
