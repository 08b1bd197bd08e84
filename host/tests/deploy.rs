//! `deploy/`: every manifest is what Kubernetes expects (parsed into the
//! k8s-openapi types, with nothing dropped on the way, so a misspelt field
//! fails), the kustomization lists exactly the manifests, and
//! `kubectl apply -k` accepts the whole set.

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
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
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

#[test]
fn every_manifest_parses_into_its_kubernetes_type() {
    let manifests = manifests();
    assert!(manifests.len() >= 9);
    for (name, value) in &manifests {
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
        .expect("deploy/role-state.yaml");
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
    let text = std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).unwrap();
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
