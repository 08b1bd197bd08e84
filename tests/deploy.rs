//! `deploy/`: every manifest is what Kubernetes expects (parsed into the
//! k8s-openapi types, with nothing dropped on the way, so a misspelt field
//! fails), the kustomization lists exactly the manifests, the kit overlay
//! renders into valid objects, `kubectl apply -k` accepts the whole set, and
//! `deploy/build-image.sh` makes a reproducible image whose binary runs.
//! (Running it on a real node: `node.rs`.)

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use informant_testkit::TestCluster;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace, Service, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("deploy")
}

fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(deploy_dir().join("base")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.extension().is_some_and(|e| e == "yaml") && name != "kustomization.yaml" {
            let text = std::fs::read_to_string(&path).unwrap();
            let value: Value =
                serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
            out.push((name, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Parse into `T` and back: what the type drops was not a field of it.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str, value: &Value) {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{name}: does not parse as its kind: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    let mut missing = Vec::new();
    dropped(value, &back, String::new(), &mut missing);
    assert!(
        missing.is_empty(),
        "{name}: unknown fields (typos?): {missing:?}"
    );
}

fn dropped(original: &Value, parsed: &Value, at: String, out: &mut Vec<String>) {
    match (original, parsed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let here = format!("{at}.{k}");
                match b.get(k) {
                    Some(w) => dropped(v, w, here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                dropped(v, w, format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Check `value` as the Kubernetes type its `kind` names.
fn check_kind(name: &str, value: &Value) {
    match value["kind"].as_str().unwrap_or_default() {
        "Namespace" => round_trip::<Namespace>(name, value),
        "ServiceAccount" => round_trip::<ServiceAccount>(name, value),
        "ClusterRole" => round_trip::<ClusterRole>(name, value),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(name, value),
        "Role" => round_trip::<Role>(name, value),
        "RoleBinding" => round_trip::<RoleBinding>(name, value),
        "ConfigMap" => round_trip::<ConfigMap>(name, value),
        "Deployment" => round_trip::<Deployment>(name, value),
        "Service" => round_trip::<Service>(name, value),
        "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(name, value),
        other => panic!("{name}: kind {other:?} has no check here; add one"),
    }
}

#[test]
fn every_manifest_parses_into_its_kubernetes_type() {
    let manifests = manifests();
    assert!(manifests.len() >= 9);
    for (name, value) in &manifests {
        check_kind(name, value);
    }
    // The host's configuration inside the ConfigMap is valid too.
    let (_, cm) = manifests
        .iter()
        .find(|(_, v)| v["kind"] == "ConfigMap")
        .unwrap();
    informant::config::Config::parse(
        cm["data"]["informant.yaml"].as_str().unwrap(),
        "configmap.yaml",
    )
    .unwrap();
}

/// The durable state tier reads, watches, creates and patches its
/// PluginState objects in the host's namespace, and does nothing else.
#[test]
fn the_state_role_grants_exactly_what_the_durable_tier_does() {
    let role = manifests()
        .into_iter()
        .find(|(_, v)| v["kind"] == "Role" && v["metadata"]["name"] == "informant-state")
        .map(|(_, v)| serde_json::from_value::<Role>(v).unwrap())
        .expect("deploy/base/role-state.yaml");
    let rules = role.rules.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].api_groups.as_deref(),
        Some(&["informant.dev".to_string()][..])
    );
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["pluginstates".to_string()][..])
    );
    assert_eq!(rules[0].verbs, ["get", "list", "watch", "create", "patch"]);
    let binding = manifests()
        .into_iter()
        .find(|(_, v)| v["kind"] == "RoleBinding" && v["roleRef"]["name"] == "informant-state");
    assert!(
        binding.is_some(),
        "the Role is bound to the host's ServiceAccount"
    );
}

#[test]
fn the_kustomization_lists_exactly_the_manifests() {
    let text = std::fs::read_to_string(deploy_dir().join("base/kustomization.yaml")).unwrap();
    let k: Value = serde_norway::from_str(&text).unwrap();
    let mut listed: Vec<String> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let present: Vec<String> = manifests().into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, present);
}

#[tokio::test]
async fn kubectl_applies_the_whole_set() {
    let cluster = TestCluster::start().await;
    let mut args = vec!["apply", "-k"];
    let dir = deploy_dir();
    let dir = dir.to_str().unwrap();
    args.push(dir);
    if cluster.is_real() {
        // On a real cluster, let the server validate without changing it.
        // A dry run persists nothing, so the objects inside the namespace
        // need it to exist (reference finding 43): make it for real if it
        // is missing, and remove it again afterwards.
        eprintln!(
            "kubectl_applies_the_whole_set: server-side dry run against INFORMANT_TEST_KUBECONFIG"
        );
        let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
        if namespaces
            .get_opt("informant-system")
            .await
            .unwrap()
            .is_none()
        {
            let ns: Namespace = serde_json::from_value(
                serde_json::json!({"metadata": {"name": "informant-system"}}),
            )
            .unwrap();
            namespaces
                .create(&kube::api::PostParams::default(), &ns)
                .await
                .unwrap();
            cluster.track("namespace", "informant-system");
        }
        args.push("--dry-run=server");
    }
    // Asynchronously: the embedded server runs on this test's runtime.
    let out = tokio::process::Command::new("kubectl")
        .args(&args)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl apply -k failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "namespace/informant-system",
        "clusterrole.rbac.authorization.k8s.io/informant",
        "customresourcedefinition.apiextensions.k8s.io/plugins.informant.dev",
        "deployment.apps/informant",
        "service/informant",
    ] {
        assert!(stdout.contains(expected), "{expected} not in:\n{stdout}");
    }
    if cluster.server.is_some() {
        let deploys: Api<Deployment> = Api::namespaced(cluster.client.clone(), "informant-system");
        let d = deploys.get("informant").await.unwrap();
        let labels = d.metadata.labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "informant");
        let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
        let role = roles.get("informant").await.unwrap();
        assert!(
            role.rules
                .unwrap()
                .iter()
                .all(|r| !r.verbs.contains(&"*".to_string()))
        );
    }
}

/// `kubectl kustomize DIR`, parsed into its documents.
fn render(dir: &str) -> Vec<Value> {
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", deploy_dir().join(dir).to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

#[test]
fn the_kit_overlay_changes_only_what_the_kit_needs() {
    let base = render(".");
    let kit = render("overlays/kit");
    assert_eq!(base.len(), kit.len(), "the overlay adds or drops objects");
    let deployment = |docs: &[Value]| {
        docs.iter()
            .find(|d| d["kind"] == "Deployment")
            .unwrap()
            .clone()
    };
    for (b, k) in base.iter().zip(&kit) {
        check_kind("overlays/kit", k);
        match k["kind"].as_str().unwrap() {
            "Deployment" => {}
            "Namespace" => {
                // Host networking is a `baseline` violation: enforced no
                // more, but warned and audited at `restricted`.
                let labels = &k["metadata"]["labels"];
                assert_eq!(labels["pod-security.kubernetes.io/enforce"], "privileged");
                assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
                assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
            }
            _ => assert_eq!(b, k, "the kit overlay changed {}", k["kind"]),
        }
    }
    let (b, k) = (deployment(&base), deployment(&kit));
    let pod = &k["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(k["spec"]["replicas"], 1);
    let container = &pod["containers"][0];
    assert_eq!(container["imagePullPolicy"], "Never");
    assert_eq!(container["ports"][0]["containerPort"], 18080);
    let env: Vec<(&str, &str)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    for expected in [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("INFORMANT_HTTP_ADDR", "127.0.0.1:18080"),
        ("INFORMANT_ADMIN_ADDR", "127.0.0.1:18081"),
    ] {
        assert!(env.contains(&expected), "{expected:?} not in {env:?}");
    }
    // Everything else about the Pod is the base's: the security context,
    // probes, volumes, arguments and image.
    let base_pod = &b["spec"]["template"]["spec"];
    for field in ["securityContext", "volumes", "serviceAccountName"] {
        assert_eq!(base_pod[field], pod[field], "{field} changed");
    }
    let base_container = &base_pod["containers"][0];
    for field in [
        "securityContext",
        "args",
        "image",
        "livenessProbe",
        "readinessProbe",
        "volumeMounts",
        "resources",
    ] {
        assert_eq!(base_container[field], container[field], "{field} changed");
    }
}

#[test]
fn the_image_is_reproducible_and_its_binary_runs_from_its_root_filesystem() {
    if let Some(why) = informant_testkit::image::missing_tools() {
        eprintln!(
            "the_image_is_reproducible_and_its_binary_runs_from_its_root_filesystem: skipped: {why}"
        );
        return;
    }
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_informant"));
    let image = informant_testkit::image::shared(&binary);
    // The same inputs, built again elsewhere: the same digest, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let again = informant_testkit::image::build(&binary, &dir.path().join("again.tar"));
    assert_eq!(image.digest, again.digest, "the image is not reproducible");
    assert_eq!(
        std::fs::read(&image.archive).unwrap(),
        std::fs::read(&again.archive).unwrap()
    );
    assert_eq!(image.name, "ghcr.io/informant-dev/informant:0.1.0");

    // Unpack it as a runtime would: index, manifest, config, the layer.
    let oci = dir.path().join("oci");
    std::fs::create_dir(&oci).unwrap();
    tar(&[
        "-xf",
        image.archive.to_str().unwrap(),
        "-C",
        oci.to_str().unwrap(),
    ]);
    let blob = |digest: &str| -> Vec<u8> {
        std::fs::read(
            oci.join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], image.digest.as_str());
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        image.name.as_str()
    );
    let manifest: Value = serde_json::from_slice(&blob(&image.digest)).unwrap();
    let config: Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "the image runs as nonroot");
    assert_eq!(
        c["Entrypoint"],
        serde_json::json!(["/usr/local/bin/informant"])
    );
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["run", "--plugins", "/plugins", "--log-format", "json"])
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let layer = oci.join("blobs/sha256").join(
        layers[0]["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    tar(&[
        "-xzf",
        layer.to_str().unwrap(),
        "-C",
        rootfs.to_str().unwrap(),
    ]);

    // What is in it, and what is not: the binary, the examples, libc and
    // the CA bundle; no shell and no package manager.
    for present in [
        "usr/local/bin/informant",
        "usr/share/informant/examples/label-enforcer.wasm",
        "usr/share/informant/examples/tenant-namespaces.wasm",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib/x86_64-linux-gnu/libgcc_s.so.1",
        "etc/ssl/certs/ca-certificates.crt",
        "etc/passwd",
        "var/lib/dpkg/status.d/libc6",
    ] {
        assert!(rootfs.join(present).exists(), "{present} is missing");
    }
    for absent in [
        "bin/sh",
        "usr/bin/sh",
        "bin/bash",
        "usr/bin/apt-get",
        "usr/bin/dpkg",
    ] {
        assert!(!rootfs.join(absent).exists(), "{absent} is in the image");
    }
    let bundle = std::fs::read_to_string(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 100);
    assert!(
        std::fs::read_to_string(rootfs.join("etc/passwd"))
            .unwrap()
            .contains("nonroot:x:65532:65532")
    );

    // The binary runs on the image's own libc: through its dynamic loader
    // with its libraries only, and, where the tests run as root, chrooted
    // into it as uid 65532.
    let loader = std::process::Command::new(rootfs.join("lib64/ld-linux-x86-64.so.2"))
        .arg("--library-path")
        .arg(rootfs.join("lib/x86_64-linux-gnu"))
        .arg(rootfs.join("usr/local/bin/informant"))
        .arg("--version")
        .output()
        .unwrap();
    let version = format!("informant {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        String::from_utf8_lossy(&loader.stdout),
        version,
        "{}",
        String::from_utf8_lossy(&loader.stderr)
    );
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root.stdout).trim() == "0" {
        let chrooted = std::process::Command::new("chroot")
            .arg("--userspec=65532:65532")
            .arg(&rootfs)
            .args(["/usr/local/bin/informant", "--version"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&chrooted.stdout),
            version,
            "{}",
            String::from_utf8_lossy(&chrooted.stderr)
        );
    } else {
        eprintln!("not root: the chrooted run as uid 65532 is skipped; the loader run passed");
    }
}

fn tar(args: &[&str]) {
    let status = std::process::Command::new("tar")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "tar {args:?}");
}
