//! Plugins by reference: `informant push`, `pull`, `sign`, `keygen` and
//! `check REF` against a real OCI registry, and Plugin objects that the host
//! (the real binary) pulls, verifies, loads, reloads when their tag moves,
//! and reports on, keeping the running version through every failure.
//!
//! They need a registry: `INFORMANT_TEST_REGISTRY` (`host:port`, plain HTTP;
//! the kit started with `WITH_REGISTRY=1` prints it). Without it they skip,
//! saying why. They run on the embedded API server and on a real one.
//! Each test's host watches only its own Plugin objects (by label), and the
//! plugins may write only in the test's namespace.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use informant_testkit::{
    HostProcess, TestCluster, compile_cache, guest_plugin, host_command, plugin_path, terminate,
    variant,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_informant");

/// The registry, or why the test skips.
fn registry(test: &str) -> Option<String> {
    let registry = std::env::var("INFORMANT_TEST_REGISTRY").ok();
    if registry.is_none() {
        eprintln!(
            "{test}: skipped: it needs an OCI registry: set INFORMANT_TEST_REGISTRY=host:port (plain HTTP), e.g. the kit started with WITH_REGISTRY=1"
        );
    }
    registry
}

/// `informant ARGS`: stdout, stderr, success.
fn informant(args: &[&str]) -> (String, String, bool) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("INFORMANT_LOG")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
        out.status.success(),
    )
}

/// Push a component; its digest.
fn push(file: &Path, reference: &str) -> String {
    let (stdout, stderr, ok) =
        informant(&["push", file.to_str().unwrap(), reference, "--plain-http"]);
    assert!(ok, "informant push {reference}: {stderr}");
    let digest = stdout.rsplit('@').next().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{stdout}");
    digest
}

/// A repository no other test or run uses.
fn repository(registry: &str, name: &str) -> String {
    format!(
        "{registry}/informant-test/{}",
        TestCluster::unique_name(name)
    )
}

/// Plugin objects, as kube-rs reads them.
fn plugins_api(cluster: &TestCluster) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "informant.dev".into(),
        version: "v1alpha1".into(),
        api_version: "informant.dev/v1alpha1".into(),
        kind: "Plugin".into(),
        plural: "plugins".into(),
    };
    Api::all_with(cluster.client.clone(), &resource)
}

/// Install the Plugin CRD from deploy/ (left installed: other tests of this
/// run share it) and wait until it is served.
async fn install_crd(cluster: &TestCluster) {
    let crd = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/base/crd-plugins.yaml");
    let out = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(["apply", "--server-side", "-f", crd.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = plugins_api(cluster);
    within(
        "the Plugin CRD to be served",
        Duration::from_secs(30),
        || async { api.list(&Default::default()).await.ok().map(|_| ()) },
    )
    .await;
}

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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the label enforcer needs, writing only in `ns`.
fn enforcer_permissions(ns: &str) -> Value {
    json!([
        {"apiVersion": "v1", "kind": "ConfigMap", "verbs": ["read"]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "verbs": ["read"]},
        {"apiVersion": "v1", "kind": "Namespace", "verbs": ["read"]},
        {"apiVersion": "v1", "kind": "ConfigMap", "verbs": ["patch"], "namespaces": [ns]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "verbs": ["patch"], "namespaces": [ns]},
    ])
}

/// A running host that watches the Plugin objects labelled `selector`.
struct Host {
    process: HostProcess,
    admin: String,
    _dir: tempfile::TempDir,
}

/// Start `informant run`, watching only Plugin objects labelled
/// `informant.dev/test=<label>`, with more of the `oci:` section in
/// `oci_extra` and more top-level configuration in `extra`.
fn host(
    cluster: &TestCluster,
    registry: &str,
    label: &str,
    (oci_extra, extra): (&str, &str),
    plugin_dir: Option<&Path>,
) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "compileCacheDir: {}\noci:\n  insecureRegistries: ['{registry}']\n  resolveIntervalSeconds: 1\n{oci_extra}pluginObjects:\n  labelSelector: informant.dev/test={label}\n{extra}",
            compile_cache().display()
        ),
    )
    .unwrap();
    let mut command = host_command(BIN, "run");
    command
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--config")
        .arg(&config);
    if let Some(plugins) = plugin_dir {
        command.arg("--plugins").arg(plugins);
    }
    let mut process = HostProcess::spawn(&mut command);
    let stdout = process.stdout();
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(3)
        .map(Result::unwrap)
        .collect();
    if lines.len() < 3 {
        let (status, stderr) = futures::executor::block_on(terminate(process));
        panic!("the host did not start ({status}):\n{stderr}");
    }
    let admin = lines[2]
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    Host {
        process,
        admin,
        _dir: dir,
    }
}

/// Create (or replace the spec of) the Plugin object `name`.
async fn set_plugin(cluster: &TestCluster, name: &str, label: &str, spec: Value) {
    let api = plugins_api(cluster);
    let object = json!({
        "apiVersion": "informant.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": name, "labels": {"informant.dev/test": label}},
        "spec": spec,
    });
    api.patch(
        name,
        &PatchParams::apply("informant-tests").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap();
    cluster.track("plugins.informant.dev", name);
}

/// The Plugin object's `Ready` condition and digest, once its status is
/// about its current generation and `ok` says it is the one awaited.
async fn ready(
    cluster: &TestCluster,
    name: &str,
    timeout: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let api = plugins_api(cluster);
    within(&format!("Plugin {name}'s status"), timeout, || async {
        let object = api.get(name).await.ok()?;
        let generation = object.metadata.generation?;
        let status = object.data.get("status")?.clone();
        (status["observedGeneration"].as_i64() == Some(generation) && ok(&status)).then_some(status)
    })
    .await
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn condition(status: &Value) -> (&str, &str, &str) {
    let c = &status["conditions"][0];
    (
        c["status"].as_str().unwrap_or_default(),
        c["reason"].as_str().unwrap_or_default(),
        c["message"].as_str().unwrap_or_default(),
    )
}

async fn create_cm(cluster: &TestCluster, ns: &str, name: &str) {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
}

async fn labelled(cluster: &TestCluster, ns: &str, name: &str, key: &str) -> String {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), ns);
    within(
        &format!("{ns}/{name} to get the label {key}"),
        Duration::from_secs(60),
        || async {
            let cm = api.get(name).await.ok()?;
            cm.metadata.labels?.get(key).cloned()
        },
    )
    .await
}

#[test]
fn push_pull_keygen_sign_and_check_a_reference() {
    let Some(registry) = registry("push_pull_keygen_sign_and_check_a_reference") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(&registry, "cli");
    let bytes = std::fs::read(plugin_path("label_enforcer")).unwrap();
    let file = dir.path().join("le.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let digest = push(&file, &format!("{repo}:v1"));
    // The same bytes again: the same digest (a fixed config), so tags can
    // be compared by digest.
    assert_eq!(push(&file, &format!("{repo}:v1-again")), digest);

    let out = dir.path().join("pulled.wasm");
    let (stdout, stderr, ok) = informant(&[
        "pull",
        &format!("{repo}:v1"),
        "-o",
        out.to_str().unwrap(),
        "--plain-http",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout, digest);
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let (stdout, _, ok) = informant(&[
        "pull",
        &format!("{repo}@{digest}"),
        "-o",
        out.to_str().unwrap(),
        "--plain-http",
    ]);
    assert!(ok && stdout == digest);

    // Not a plugin file; a tag that is not there; a registry that is down.
    std::fs::write(dir.path().join("text.wasm"), "hello").unwrap();
    let (_, stderr, ok) = informant(&[
        "push",
        dir.path().join("text.wasm").to_str().unwrap(),
        &format!("{repo}:bad"),
        "--plain-http",
    ]);
    assert!(!ok && stderr.contains("not a WebAssembly file"), "{stderr}");
    let (_, stderr, ok) = informant(&["pull", &format!("{repo}:missing"), "--plain-http"]);
    assert!(
        !ok && stderr.contains("not found in the registry"),
        "{stderr}"
    );
    let (_, stderr, ok) = informant(&["pull", "127.0.0.1:1/nothing/here:v1", "--plain-http"]);
    assert!(!ok && stderr.contains("cannot be reached"), "{stderr}");

    // A key pair, a policy that requires it, and check REF before and after
    // signing.
    let key = dir.path().join("cosign");
    let (_, stderr, ok) = informant(&["keygen", key.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let (_, stderr, ok) = informant(&["keygen", key.to_str().unwrap()]);
    assert!(!ok && stderr.contains("never overwritten"), "{stderr}");
    let config = dir.path().join("host.yaml");
    std::fs::write(
        &config,
        format!(
            "oci:\n  insecureRegistries: ['{registry}']\n  signatures:\n  - references: ['{repo}']\n    keys: ['{}']\n",
            key.with_extension("pub").display()
        ),
    )
    .unwrap();
    let reference = format!("{repo}:v1");
    let (_, stderr, ok) = informant(&["check", &reference, "--config", config.to_str().unwrap()]);
    assert!(!ok && stderr.contains("is not signed"), "{stderr}");
    let (stdout, stderr, ok) = informant(&[
        "sign",
        &reference,
        "--key",
        key.with_extension("key").to_str().unwrap(),
        "--plain-http",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.ends_with(&format!("sha256-{}.sig", &digest[7..])),
        "{stdout}"
    );
    let (stdout, stderr, ok) =
        informant(&["check", &reference, "--config", config.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("signature verified"), "{stderr}");
    let manifest: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(manifest["name"], "label-enforcer");

    // Signed by another key: refused, naming what was tried.
    let other = dir.path().join("other");
    assert!(informant(&["keygen", other.to_str().unwrap()]).2);
    std::fs::write(
        &config,
        format!(
            "oci:\n  insecureRegistries: ['{registry}']\n  signatures:\n  - references: ['{repo}']\n    keys: ['{}']\n",
            other.with_extension("pub").display()
        ),
    )
    .unwrap();
    let (_, stderr, ok) = informant(&["check", &reference, "--config", config.to_str().unwrap()]);
    assert!(
        !ok && stderr.contains("is by a signer the policy accepts"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_enforcers_by_reference_label_objects() {
    let Some(registry) = registry("python_and_javascript_enforcers_by_reference_label_objects")
    else {
        return;
    };
    let cluster = TestCluster::start().await;
    install_crd(&cluster).await;
    let ns = cluster.namespace("byref").await;
    let label = TestCluster::unique_name("t");
    let mut names = Vec::new();
    for (language, key) in [("python", "py-team"), ("js", "js-team")] {
        let file = guest_plugin(language, "label-enforcer");
        let reference = format!("{}:v1", repository(&registry, language));
        let digest = push(&file, &reference);
        let name = TestCluster::unique_name(&format!("{language}-enforcer"));
        set_plugin(
            &cluster,
            &name,
            &label,
            json!({
                "image": reference,
                "settings": {"required": {key: language}},
                "permissions": enforcer_permissions(&ns),
            }),
        )
        .await;
        names.push((name, digest, key));
    }
    let started = Instant::now();
    let host = host(&cluster, &registry, &label, ("", ""), None);
    for (name, digest, _) in &names {
        let status = ready(&cluster, name, Duration::from_secs(240), |s| {
            condition(s).0 == "True"
        })
        .await;
        eprintln!(
            "{name}: Ready {:?} after the host started",
            started.elapsed()
        );
        assert_eq!(status["digest"], digest.as_str());
        assert!(condition(&status).2.contains(digest.as_str()), "{status}");
        assert!(status["loadedAt"].is_string());
    }
    create_cm(&cluster, &ns, "app").await;
    for (_, _, key) in &names {
        labelled(&cluster, &ns, "app", key).await;
    }
    // The admin API lists them under their objects' names.
    let (_, body) =
        informant_testkit::http_get(host.admin.parse().unwrap(), "/api/v1/plugins").await;
    for (name, _, _) in &names {
        assert!(body.contains(&format!("\"name\":\"{name}\"")), "{body}");
    }
    let (status, stderr) = terminate(host.process).await;
    assert!(status.success(), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_reloads_and_failures_keep_the_running_version() {
    let Some(registry) = registry("a_moved_tag_reloads_and_failures_keep_the_running_version")
    else {
        return;
    };
    let cluster = TestCluster::start().await;
    install_crd(&cluster).await;
    let ns = cluster.namespace("tags").await;
    let label = TestCluster::unique_name("t");
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(&registry, "enforcer");
    let bytes = std::fs::read(plugin_path("label_enforcer")).unwrap();
    let v1 = dir.path().join("v1.wasm");
    let v2 = dir.path().join("v2.wasm");
    std::fs::write(&v1, variant(&bytes, "v1")).unwrap();
    std::fs::write(&v2, variant(&bytes, "v2")).unwrap();
    let d1 = push(&v1, &format!("{repo}:stable"));
    // A repository that must be signed, and the key that signs it.
    let signed_repo = repository(&registry, "signed");
    let key = dir.path().join("cosign");
    assert!(informant(&["keygen", key.to_str().unwrap()]).2);
    let extra = format!(
        "  signatures:\n  - references: ['{signed_repo}']\n    keys: ['{}']\n",
        key.with_extension("pub").display()
    );
    // (Indented, the second part continues `pluginObjects:`.)
    let secrets = format!("  secretsNamespace: {ns}\n");
    let host = host(&cluster, &registry, &label, (&extra, &secrets), None);
    let name = TestCluster::unique_name("enforcer");
    let spec = |image: &str| json!({"image": image, "settings": {"required": {"owner": "tags"}}, "permissions": enforcer_permissions(&ns)});
    set_plugin(&cluster, &name, &label, spec(&format!("{repo}:stable"))).await;
    let status = ready(&cluster, &name, Duration::from_secs(60), |s| {
        condition(s).0 == "True"
    })
    .await;
    assert_eq!(status["digest"], d1.as_str());

    // The tag moves: the host resolves it again and reloads.
    let moved = Instant::now();
    let d2 = push(&v2, &format!("{repo}:stable"));
    assert_ne!(d1, d2);
    ready(&cluster, &name, Duration::from_secs(60), |s| {
        s["digest"] == d2.as_str()
    })
    .await;
    eprintln!(
        "the moved tag was running {:?} after the push",
        moved.elapsed()
    );
    create_cm(&cluster, &ns, "after-move").await;
    labelled(&cluster, &ns, "after-move", "owner").await;

    // Each failure: Ready=False with its reason, d2 keeps running and acting.
    let missing = format!("{repo}@sha256:{}", "0".repeat(64));
    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, b"\0asm\x01\0\0\0").unwrap();
    let not_component = format!("{}:v1", repository(&registry, "core"));
    push(&core_module, &not_component);
    let unsigned = format!("{signed_repo}:v1");
    push(&v1, &unsigned);
    for (i, (image, reason)) in [
        (missing.as_str(), "NotFound"),
        (&format!("{repo}:no-such-tag"), "NotFound"),
        ("127.0.0.1:1/informant-test/down:v1", "RegistryUnreachable"),
        (unsigned.as_str(), "Unsigned"),
        (not_component.as_str(), "LoadFailed"),
    ]
    .into_iter()
    .enumerate()
    {
        set_plugin(&cluster, &name, &label, spec(image)).await;
        let status = ready(&cluster, &name, Duration::from_secs(60), |s| {
            condition(s).0 == "False"
        })
        .await;
        let (_, got, message) = condition(&status);
        assert_eq!(got, reason, "{image}: {message}");
        assert!(
            message.contains(&format!("{d2} keeps running")),
            "{message}"
        );
        assert_eq!(
            status["digest"],
            d2.as_str(),
            "the running version is reported"
        );
        let cm = format!("still-{i}");
        create_cm(&cluster, &ns, &cm).await;
        labelled(&cluster, &ns, &cm, "owner").await;
    }

    // Signed: it loads, and the status says by whom.
    let (_, stderr, ok) = informant(&[
        "sign",
        &unsigned,
        "--key",
        key.with_extension("key").to_str().unwrap(),
        "--plain-http",
    ]);
    assert!(ok, "{stderr}");
    set_plugin(&cluster, &name, &label, spec(&format!("{unsigned}-again"))).await;
    push(&v1, &format!("{unsigned}-again"));
    let status = ready(&cluster, &name, Duration::from_secs(60), |s| {
        condition(s).0 == "True"
    })
    .await;
    assert!(condition(&status).2.contains("signed by key"), "{status}");

    // Credentials from a pull Secret: a missing one is refused, saying so;
    // one that is there is used (the test registry accepts any).
    let mut with_secret = spec(&format!("{repo}:stable"));
    with_secret["imagePullSecrets"] = json!([{"name": "missing"}]);
    set_plugin(&cluster, &name, &label, with_secret.clone()).await;
    let status = ready(&cluster, &name, Duration::from_secs(60), |s| {
        condition(s).0 == "False"
    })
    .await;
    let (_, reason, message) = condition(&status);
    assert_eq!(reason, "Unauthorized", "{message}");
    assert!(
        message.contains(&format!("Secret {ns}/missing: not found")),
        "{message}"
    );
    let auth = base64_of(&format!(
        "{{\"auths\":{{\"{registry}\":{{\"auth\":\"{}\"}}}}}}",
        base64_of("tester:secret")
    ));
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "regcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": auth},
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(cluster.client.clone(), &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    with_secret["imagePullSecrets"] = json!([{"name": "regcred"}]);
    set_plugin(&cluster, &name, &label, with_secret).await;
    let status = ready(&cluster, &name, Duration::from_secs(60), |s| {
        condition(s).0 == "True"
    })
    .await;
    assert_eq!(status["digest"], d2.as_str());

    // A digest already pulled needs no registry: the content cache has it.
    set_plugin(
        &cluster,
        &name,
        &label,
        spec(&format!("127.0.0.1:1/informant-test/down@{d1}")),
    )
    .await;
    let status = ready(&cluster, &name, Duration::from_secs(60), |s| {
        condition(s).0 == "True"
    })
    .await;
    assert_eq!(
        status["digest"],
        d1.as_str(),
        "loaded from the content cache"
    );

    // Deleted: unloaded.
    plugins_api(&cluster)
        .delete(&name, &Default::default())
        .await
        .unwrap();
    within(
        "the plugin to be unloaded",
        Duration::from_secs(30),
        || async {
            let (_, body) =
                informant_testkit::http_get(host.admin.parse().unwrap(), "/api/v1/plugins").await;
            (!body.contains(&name)).then_some(())
        },
    )
    .await;
    let (status, stderr) = terminate(host.process).await;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("Plugin object unloaded"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_used_by_a_file_and_an_object_is_refused_saying_where_each_is() {
    let Some(registry) =
        registry("a_name_used_by_a_file_and_an_object_is_refused_saying_where_each_is")
    else {
        return;
    };
    let cluster = TestCluster::start().await;
    install_crd(&cluster).await;
    let ns = cluster.namespace("names").await;
    let label = TestCluster::unique_name("t");
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    // The directory runs the label enforcer (its manifest's name) with
    // nothing to write.
    std::fs::copy(
        plugin_path("label_enforcer"),
        plugins.join("label-enforcer.wasm"),
    )
    .unwrap();
    let extra = format!(
        "allow:\n  label-enforcer:\n  - {{apiVersion: '*', kind: '*', verbs: [read]}}\n  - {{apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [{ns}]}}\n"
    );
    let reference = format!("{}:v1", repository(&registry, "dup"));
    push(&plugin_path("label_enforcer"), &reference);
    // A Plugin object runs under its own name: one named label-enforcer
    // clashes with the file's plugin.
    std::fs::write(
        plugins.join("label-enforcer.json"),
        json!({"required": {"owner": "file"}}).to_string(),
    )
    .unwrap();
    let host = host(&cluster, &registry, &label, ("", &extra), Some(&plugins));
    set_plugin(
        &cluster,
        "label-enforcer",
        &label,
        json!({"image": reference, "permissions": enforcer_permissions(&ns)}),
    )
    .await;
    let status = ready(&cluster, "label-enforcer", Duration::from_secs(60), |s| {
        condition(s).0 == "False"
    })
    .await;
    let (_, reason, message) = condition(&status);
    assert_eq!(reason, "NameConflict", "{message}");
    assert!(message.contains("label-enforcer.wasm"), "{message}");
    let (status, stderr) = terminate(host.process).await;
    assert!(status.success(), "{stderr}");
}
