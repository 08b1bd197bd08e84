//! Real `kubectl` against the embedded API server (or the cluster named by
//! `INFORMANT_TEST_KUBECONFIG`), through the kubeconfig the tests write.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{io::Write, process::Command, time::Duration};

use informant_testkit::TestCluster;
use serde_json::Value;

/// kubectl, or a clear note that it is missing (the test then skips).
fn kubectl_available(test: &str) -> bool {
    let ok = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "{test}: skipped: kubectl is not installed (these tests use it as a real client)"
        );
    }
    ok
}

struct Kubectl<'a> {
    cluster: &'a TestCluster,
}

impl Kubectl<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", &self.cluster.kubeconfig)
            .env(
                "KUBECACHEDIR",
                self.cluster.kubeconfig.with_file_name("kubectl-cache"),
            )
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run and require success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args, None);
        assert!(ok, "kubectl {args:?} failed: {stderr}");
        stdout
    }

    fn apply(&self, args: &[&str], manifest: &str) -> String {
        let mut all = vec!["apply", "-f", "-"];
        all.extend_from_slice(args);
        let (ok, stdout, stderr) = self.run(&all, Some(manifest));
        assert!(ok, "kubectl {all:?} failed: {stderr}");
        stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_manages_builtin_objects() {
    if !kubectl_available("kubectl_manages_builtin_objects") {
        return;
    }
    let cluster = TestCluster::start().await;
    let k = Kubectl { cluster: &cluster };
    tokio::task::block_in_place(|| {
        let ns = TestCluster::unique_name("kubectl");
        cluster.track("namespace", &ns);
        // The generators send protobuf bodies.
        k.ok(&["create", "namespace", &ns]);
        k.ok(&[
            "create",
            "configmap",
            "gen",
            "-n",
            &ns,
            "--from-literal=a=b",
        ]);
        k.ok(&[
            "create",
            "secret",
            "generic",
            "sec",
            "-n",
            &ns,
            "--from-literal=p=q",
        ]);
        k.ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            &ns,
            "--image=nginx",
            "--replicas=2",
        ]);
        assert_eq!(
            k.json(&["get", "deployment", "web", "-n", &ns])["spec"]["replicas"],
            2
        );

        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: {ns}\n  labels: {{app: web}}\ndata:\n  color: blue\n"
        );
        assert!(k.apply(&[], &manifest).contains("created"));
        assert!(
            k.apply(&[], &manifest.replace("blue", "green"))
                .contains("configured")
        );
        assert!(
            k.apply(&["--server-side"], &manifest.replace("blue", "red"))
                .contains("serverside-applied")
        );
        k.ok(&["label", "cm", "app", "-n", &ns, "tier=front"]);
        k.ok(&["annotate", "cm", "app", "-n", &ns, "note=hello"]);
        k.ok(&[
            "patch",
            "cm",
            "app",
            "-n",
            &ns,
            "--type",
            "merge",
            "-p",
            r#"{"data":{"size":"L"}}"#,
        ]);
        k.ok(&[
            "patch",
            "cm",
            "app",
            "-n",
            &ns,
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/data/size","value":"XL"}]"#,
        ]);
        let app = k.json(&["get", "cm", "app", "-n", &ns]);
        assert_eq!(app["data"]["color"], "red");
        assert_eq!(app["data"]["size"], "XL");
        assert_eq!(app["metadata"]["labels"]["tier"], "front");
        assert_eq!(app["metadata"]["annotations"]["note"], "hello");

        let table = k.ok(&["get", "cm", "-n", &ns, "-l", "app in (web)"]);
        assert!(table.contains("app") && !table.contains("gen"), "{table}");
        let yaml = k.ok(&["get", "cm", "app", "-n", &ns, "-o", "yaml"]);
        assert!(yaml.contains("color: red"), "{yaml}");

        let (ok, _, stderr) = k.run(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                "other",
                "-f",
                "-",
            ],
            Some(&manifest),
        );
        assert!(
            !ok && stderr.contains("conflict"),
            "a second manager's apply conflicts: {stderr}"
        );

        k.ok(&["delete", "cm", "app", "-n", &ns]);
        let (ok, _, stderr) = k.run(&["get", "cm", "app", "-n", &ns], None);
        assert!(!ok && stderr.contains("NotFound"), "{stderr}");
        k.ok(&["delete", "namespace", &ns]);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_waits_for_a_crd_and_manages_its_objects() {
    if !kubectl_available("kubectl_waits_for_a_crd_and_manages_its_objects") {
        return;
    }
    let cluster = TestCluster::start().await;
    let k = Kubectl { cluster: &cluster };
    let group = format!("{}.example.com", TestCluster::unique_name("k"));
    cluster.track("crd", &format!("widgets.{group}"));
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    subresources: {{status: {{}}}}\n    schema:\n      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
    );
    tokio::task::block_in_place(|| {
        k.apply(&[], &crd);
        k.ok(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/widgets.{group}"),
            "--timeout=30s",
        ]);
        // A real server's discovery lists the group a moment after
        // Established: ask again for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let resources = loop {
            let resources = k.ok(&["api-resources", "--api-group", &group]);
            if resources.contains("widgets") || std::time::Instant::now() > deadline {
                break resources;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            resources.contains("widgets") && resources.contains("wdg"),
            "{resources}"
        );
        let widget = format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 1\n"
        );
        k.apply(&[], &widget);
        k.apply(&[], &widget.replace("size: 1", "size: 2"));
        let w = k.json(&["get", &format!("widgets.{group}"), "w1", "-n", "default"]);
        assert_eq!(w["spec"]["size"], 2);
        assert_eq!(w["metadata"]["generation"], 2);
        k.ok(&["delete", "crd", &format!("widgets.{group}")]);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_watches_with_event_types() {
    if !kubectl_available("kubectl_watches_with_event_types") {
        return;
    }
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace("kwatch").await;
    let k = Kubectl { cluster: &cluster };
    let mut watcher = Command::new("kubectl")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args([
            "get",
            "cm",
            "-n",
            &ns,
            // Only this test's object: a real cluster adds kube-root-ca.crt
            // to every new namespace.
            "--field-selector=metadata.name=w",
            "-w",
            "--output-watch-events",
            "--request-timeout=60s",
            // Logs each request once answered: the watch's says it is open.
            "-v=6",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (
        watcher.stdout.take().unwrap(),
        watcher.stderr.take().unwrap(),
    );
    let (open_tx, open_rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut text = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("watch=true") && line.contains("200 OK") {
                let _ = open_tx.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let (event_tx, event_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if event_tx.send(line).is_err() {
                break;
            }
        }
    });
    tokio::task::block_in_place(|| {
        open_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("kubectl's watch opens within 30 s");
        k.ok(&["create", "configmap", "w", "-n", &ns, "--from-literal=a=b"]);
        k.ok(&["label", "cm", "w", "-n", &ns, "x=y"]);
        k.ok(&["delete", "cm", "w", "-n", &ns]);
    });
    let mut lines = Vec::new();
    tokio::task::block_in_place(|| {
        while let Ok(line) = event_rx.recv_timeout(Duration::from_secs(30)) {
            let deleted = line.starts_with("DELETED");
            lines.push(line);
            if deleted {
                break;
            }
        }
    });
    let _ = watcher.kill();
    let _ = watcher.wait();
    let stderr = log.join().unwrap_or_default();
    let text = lines.join("\n");
    let events: Vec<&str> = lines
        .iter()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(events, ["ADDED", "MODIFIED", "DELETED"], "{text}\n{stderr}");
}
