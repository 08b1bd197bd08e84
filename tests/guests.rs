//! Plugins in Python, JavaScript and Go, from the same WIT contract: the
//! examples under `plugins/python`, `plugins/js` and `plugins/go`, built by
//! their SDKs' build commands, checked, replayed against the fixtures of
//! their Rust twins, and run end to end by the real binary.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Command,
    time::Duration,
};

use informant_testkit::{
    HostProcess, TestCluster, build_guest, compile_cache, eventually, fixture, guest_plugin,
    host_command, plugin_path, python_tools, terminate,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use serde_json::{Value, json};

const GUESTS: [(&str, &str); 7] = [
    ("python", "label-enforcer"),
    ("python", "replicator"),
    ("python", "restarter"),
    ("js", "label-enforcer"),
    ("js", "replicator"),
    ("go", "label-enforcer"),
    ("go", "replicator"),
];

/// The languages with an SDK besides Rust.
const LANGUAGES: [&str; 3] = ["python", "js", "go"];

fn informant() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_informant"));
    command.arg("--log=warn").env_remove("INFORMANT_LOG");
    command
}

fn output(command: &mut Command) -> (i32, String, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(plugin: &Path) -> Value {
    let (code, stdout, stderr) = output(
        informant()
            .arg("check")
            .arg("--compile-cache")
            .arg(compile_cache())
            .arg(plugin),
    );
    assert_eq!(code, 0, "{}: {stderr}", plugin.display());
    serde_json::from_str(&stdout).unwrap()
}

fn replay(plugin: &Path, fixture_name: &str, settings: Option<&str>) -> (i32, Vec<Value>, String) {
    let dir = fixture(&format!("replay/{fixture_name}"));
    let mut command = informant();
    command
        .arg("replay")
        .arg("--compile-cache")
        .arg(compile_cache())
        .arg(plugin)
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .arg("--objects")
        .arg(dir.join("objects.yaml"));
    match settings {
        Some(json) => {
            command.arg("--settings").arg(json);
        }
        None if dir.join("settings.json").exists() => {
            command
                .arg("--settings")
                .arg(format!("@{}", dir.join("settings.json").display()));
        }
        None => {}
    }
    let (code, stdout, stderr) = output(&mut command);
    let actions = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (code, actions, stderr)
}

fn expected(fixture_name: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(fixture(&format!("replay/{fixture_name}/expected.jsonl"))).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_guest_example_declares_what_its_rust_twin_declares() {
    for (language, name) in GUESTS {
        let guest = check(&guest_plugin(language, name));
        let rust = check(&plugin_path(&name.replace('-', "_")));
        assert_eq!(guest, rust, "{language} {name} against its Rust twin");
    }
}

#[test]
fn every_guest_example_replays_to_the_actions_of_its_rust_twin() {
    for (language, name) in GUESTS {
        let (code, actions, stderr) = replay(&guest_plugin(language, name), name, None);
        assert_eq!(code, 0, "{language} {name}: {stderr}");
        assert_eq!(
            actions,
            expected(name),
            "{language} {name}; stderr: {stderr}"
        );
    }
}

/// A fixture per SDK that calls every function of it (each action kind,
/// each cache query, the manifest's every field, refusals) and reports
/// what it saw through its actions: every SDK must produce the same.
#[test]
fn every_sdk_covers_the_whole_contract_alike() {
    let python = check(&guest_plugin("python", "sdk-tour"));
    for language in ["js", "go"] {
        assert_eq!(
            check(&guest_plugin(language, "sdk-tour")),
            python,
            "{language}"
        );
    }
    assert_eq!(
        python["resources"],
        json!({"memoryMib": 48, "deadlineMs": 100})
    );
    assert_eq!(python["indexes"][0]["fieldPaths"][0], "metadata.labels.app");
    assert_eq!(
        python["subscriptions"][1]["fields"],
        json!(["metadata.labels"])
    );
    for language in LANGUAGES {
        let (code, actions, stderr) = replay(&guest_plugin(language, "sdk-tour"), "sdk-tour", None);
        // The fourth event fails on purpose, with a code of the plugin's choosing.
        assert_eq!(code, 1, "{language}: {stderr}");
        assert!(
            stderr.contains(
                "events.jsonl:4: plugin call failed: v1/ConfigMap tour/fail (failed): the plugin returned an error (limit-exceeded): asked to fail"
            ),
            "{language}: {stderr}"
        );
        assert_eq!(
            actions,
            expected("sdk-tour"),
            "{language}; stderr: {stderr}"
        );
    }
}

#[test]
fn guest_errors_reach_the_host_with_their_code_and_message() {
    for language in LANGUAGES {
        let plugin = guest_plugin(language, "label-enforcer");
        // Refused settings: the plugin's own error, with its code.
        let (code, _, stderr) = replay(
            &plugin,
            "label-enforcer",
            Some(r#"{"allowed": {"env": []}}"#),
        );
        assert_ne!(code, 0, "{language}");
        assert!(
            stderr.contains("invalid") && stderr.contains("allowed.env lists no value"),
            "{language}: {stderr}"
        );
        let (code, _, stderr) = replay(&plugin, "label-enforcer", Some(r#"{"colour": "red"}"#));
        assert_ne!(code, 0, "{language}");
        assert!(stderr.contains("colour"), "{language}: {stderr}");
        // A settings value of the wrong type: in Python and JavaScript a
        // bug that makes `handle` fail, naming the language's own error; Go
        // decodes settings into a typed struct, so `init` refuses them,
        // naming the field. No action is committed either way.
        let (code, actions, stderr) = replay(
            &plugin,
            "label-enforcer",
            Some(r#"{"required": {"owner": "x"}, "ignoreNamespaces": 7}"#),
        );
        assert_ne!(code, 0, "{language}");
        assert!(actions.is_empty(), "{language}: {actions:?}");
        let named = if language == "go" {
            stderr.contains("(invalid)") && stderr.contains("ignoreNamespaces")
        } else {
            stderr.contains("the plugin returned an error (failed)") && stderr.contains("TypeError")
        };
        assert!(named, "{language}: {stderr}");
    }
    // A panic in Go fails the call with the panic's value and where it
    // happened, and commits nothing.
    let (code, actions, stderr) = replay(
        &guest_plugin("go", "sdk-tour"),
        "sdk-tour",
        Some(r#"{"mode": "panic"}"#),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(actions.is_empty(), "{actions:?}");
    assert!(
        stderr.contains("the plugin returned an error (failed): panic: panicking on purpose for v1/Namespace tour at ")
            && stderr.contains("main.go:"),
        "{stderr}"
    );
}

/// `informant run` against the test cluster with one plugin of `language`
/// in its plugin directory, its settings beside it, and a configuration
/// with the allowlist `allow`; returns once the plugin is loaded.
async fn run_host(
    cluster: &TestCluster,
    (language, name): (&str, &str),
    settings: Option<&str>,
    allow: &str,
) -> (tempfile::TempDir, HostProcess) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(
        guest_plugin(language, name),
        plugins.join(format!("{name}.wasm")),
    )
    .unwrap();
    if let Some(settings) = settings {
        std::fs::write(plugins.join(format!("{name}.yaml")), settings).unwrap();
    }
    let config = dir.path().join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "allow:\n  {name}:\n{}  - {allow}\n",
            informant_testkit::READS_EVERYTHING_YAML
        ),
    )
    .unwrap();
    let mut child = HostProcess::spawn(
        host_command(env!("CARGO_BIN_EXE_informant"), "run")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--plugins")
            .arg(&plugins)
            .arg("--config")
            .arg(&config)
            .arg("--compile-cache")
            .arg(compile_cache()),
    );
    // Read on another thread: the embedded server runs on this test's one.
    // The rest of stdout is drained there too, so the host never writes to
    // a closed pipe.
    let stdout = child.stdout();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
        lines.for_each(drop);
    });
    let first = rx.await.unwrap();
    assert_eq!(first, format!("plugins: {name}\n").trim_end());
    (dir, child)
}

async fn stop(child: HostProcess) {
    let (status, stderr) = terminate(child).await;
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(!stderr.contains(" ERROR "), "{stderr}");
}

#[tokio::test]
async fn a_python_plugin_labels_configmaps_end_to_end() {
    labels_configmaps_end_to_end("python").await;
}

#[tokio::test]
async fn a_go_plugin_labels_configmaps_end_to_end() {
    labels_configmaps_end_to_end("go").await;
}

async fn labels_configmaps_end_to_end(language: &str) {
    let cluster = TestCluster::start().await;
    let ns = cluster.namespace(language).await;
    let (_dir, host) = run_host(
        &cluster,
        (language, "label-enforcer"),
        Some("required:\n  team: platform\nallowed:\n  env: [dev, prod]\n"),
        &format!("{{apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [{ns}]}}"),
    )
    .await;

    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "app", "labels": {"env": "qa"}}, "data": {"k": "v"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let labels = eventually(
        &format!("the {language} plugin's labels on the ConfigMap"),
        Duration::from_secs(60),
        async || {
            let labels = api.get("app").await.ok()?.metadata.labels?;
            (labels.get("team").map(String::as_str) == Some("platform")
                && labels.get("env").map(String::as_str) == Some("dev"))
            .then_some(labels)
        },
    )
    .await;
    assert_eq!(labels.len(), 2, "{labels:?}");
    stop(host).await;
}

#[tokio::test]
async fn a_javascript_plugin_replicates_and_cleans_up_end_to_end() {
    replicates_and_cleans_up_end_to_end("js").await;
}

#[tokio::test]
async fn a_go_plugin_replicates_and_cleans_up_end_to_end() {
    replicates_and_cleans_up_end_to_end("go").await;
}

async fn replicates_and_cleans_up_end_to_end(language: &str) {
    let cluster = TestCluster::start().await;
    let source_ns = cluster.namespace(&format!("{language}-src")).await;
    let target_ns = cluster.namespace(&format!("{language}-dst")).await;
    // On a shared cluster, copies go only to the test's namespace.
    let (_dir, host) = run_host(
        &cluster,
        (language, "replicator"),
        None,
        &format!(
            "{{apiVersion: v1, kind: ConfigMap, verbs: [apply, delete], namespaces: [{target_ns}]}}"
        ),
    )
    .await;

    // A name of the language's own: the languages' tests run at once, and
    // each host copies every labelled source, the other test's too.
    let name = format!("shared-{language}");
    let sources: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &source_ns);
    let copies: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &target_ns);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"informant.dev/replicate": "true"}},
        "data": {"greeting": "hello"},
    }))
    .unwrap();
    sources.create(&PostParams::default(), &cm).await.unwrap();
    let copy = eventually(
        &format!("the {language} plugin's copy"),
        Duration::from_secs(60),
        async || copies.get(&name).await.ok(),
    )
    .await;
    assert_eq!(copy.data.unwrap()["greeting"], "hello");
    let meta = copy.metadata;
    assert_eq!(
        meta.annotations.unwrap()["informant.dev/replicated-from"],
        format!("{source_ns}/{name}")
    );
    assert_eq!(meta.labels.unwrap()["informant.dev/replica"], "true");

    sources.delete(&name, &Default::default()).await.unwrap();
    eventually("the copy's removal", Duration::from_secs(60), async || {
        copies.get_opt(&name).await.unwrap().is_none().then_some(())
    })
    .await;
    stop(host).await;
}

#[test]
fn a_memory_cap_too_small_for_a_language_runtime_says_what_to_change() {
    // Python needs about 12 MiB to start, Go about 3.3 MiB.
    for (language, cap) in [("python", "4"), ("go", "3")] {
        let dir = fixture("replay/label-enforcer");
        let (code, _, stderr) = output(
            informant()
                .arg("replay")
                .arg("--compile-cache")
                .arg(compile_cache())
                .arg(guest_plugin(language, "label-enforcer"))
                .arg("--events")
                .arg(dir.join("events.jsonl"))
                .args(["--memory-mib", cap]),
        );
        assert_ne!(code, 0, "{language}");
        assert!(
            stderr.contains(&format!(
                "MiB of linear memory to start, over its {cap} MiB cap"
            )) && stderr.contains("resources.memory-mib"),
            "{language}: {stderr}"
        );
    }
}

/// The smallest cap the Go label enforcer handles its fixture under
/// (docs/BENCHMARKS.md): 5 MiB. At 4 MiB it starts, and its calls fail as
/// out of memory, saying so.
#[test]
fn a_go_plugin_runs_under_five_mib_and_says_when_four_is_too_little() {
    let dir = fixture("replay/label-enforcer");
    let run = |cap: &str| {
        output(
            informant()
                .arg("replay")
                .arg("--compile-cache")
                .arg(compile_cache())
                .arg(guest_plugin("go", "label-enforcer"))
                .arg("--events")
                .arg(dir.join("events.jsonl"))
                .arg("--objects")
                .arg(dir.join("objects.yaml"))
                .arg("--settings")
                .arg(format!("@{}", dir.join("settings.json").display()))
                .args(["--memory-mib", cap]),
        )
    };
    let (code, stdout, stderr) = run("5");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), expected("label-enforcer").len());
    let (code, _, stderr) = run("4");
    assert_ne!(code, 0);
    assert!(
        stderr.contains("(out_of_memory): the plugin ran out of memory (its cap is 4 MiB)"),
        "{stderr}"
    );
}

/// The sandbox holds for language runtimes too: a busy loop is stopped at
/// the deadline, a runaway allocation at the memory cap (Python's
/// MemoryError, SpiderMonkey's out-of-memory), and nothing is committed.
#[test]
fn runaway_guests_are_stopped_in_every_language() {
    for language in LANGUAGES {
        let plugin = guest_plugin(language, "sdk-tour");
        for (mode, expected) in [
            (
                "spin",
                "the call ran past its 100ms deadline and was stopped",
            ),
            ("hog", "the plugin ran out of memory (its cap is 48 MiB)"),
        ] {
            let settings = format!(r#"{{"mode": "{mode}"}}"#);
            let (code, actions, stderr) = replay(&plugin, "sdk-tour", Some(&settings));
            assert_eq!(code, 1, "{language} {mode}: {stderr}");
            assert!(actions.is_empty(), "{language} {mode}: {actions:?}");
            // Every event fails the same way: each call gets a fresh chance.
            assert_eq!(
                stderr.matches(expected).count(),
                5,
                "{language} {mode}: {stderr}"
            );
        }
    }
}

/// The first plugin in each SDK's README, built and replayed as a reader
/// would: documentation that stops working fails here.
#[test]
fn the_first_plugins_in_the_sdk_readmes_build_and_work() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    std::fs::write(
        &events,
        concat!(
            r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"x","resourceVersion":"1"}}}"#,
            "\n",
            r#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b","namespace":"x","resourceVersion":"2","labels":{"team":"t"}}}}"#,
            "\n",
        ),
    )
    .unwrap();
    for (language, fence, file) in [
        ("python", "```python\n", "team_label.py"),
        ("js", "```js\n", "team-label.js"),
        ("go", "```go\n", "team-label/main.go"),
    ] {
        let readme =
            std::fs::read_to_string(root.join(format!("guest-sdk/{language}/README.md"))).unwrap();
        let start = readme.find(fence).unwrap() + fence.len();
        let code = &readme[start..start + readme[start..].find("```").unwrap()];
        let source = dir.path().join(file);
        std::fs::create_dir_all(source.parent().unwrap()).unwrap();
        std::fs::write(&source, code).unwrap();
        let component = dir.path().join(format!("{language}.wasm"));
        build_guest(language, &source, &component);
        let (code, stdout, stderr) = output(
            informant()
                .arg("replay")
                .arg("--compile-cache")
                .arg(compile_cache())
                .arg(&component)
                .arg("--events")
                .arg(&events),
        );
        assert_eq!(code, 0, "{language}: {stderr}");
        let actions: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            actions,
            [json!({"event": 1, "type": "mergePatch",
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "x", "name": "a"},
                    "patch": {"metadata": {"labels": {"team": "unowned"}}}})],
            "{language}"
        );
    }
}

/// The TypeScript declarations describe the JavaScript SDK: a plugin written
/// in TypeScript against them type-checks with `tsc --strict`, and a misuse
/// (an event type that does not exist) does not.
#[test]
fn the_javascript_sdk_has_typescript_declarations_that_tsc_accepts() {
    // Installs the pinned JavaScript toolchain, typescript with it.
    guest_plugin("js", "label-enforcer");
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("guest-sdk/js");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tsconfig.json"),
        json!({
            "compilerOptions": {
                "strict": true, "noEmit": true, "target": "es2022", "module": "es2022",
                "moduleResolution": "bundler", "skipLibCheck": false,
                "paths": {"informant": [sdk.join("informant.d.ts").to_str().unwrap()]},
            },
            "include": ["*.ts"],
        })
        .to_string(),
    )
    .unwrap();
    let plugin = r#"
import { Event, InformantError, Manifest, Plugin, Subscription, action, cache, log } from "informant";

export default class TeamLabel extends Plugin {
  describe(): Manifest {
    return new Manifest("team-label", "0.1.0")
      .subscribe(new Subscription("v1", "ConfigMap", { events: ["added", "modified"], latestState: true }))
      .reads("v1", "Namespace")
      .writes("v1", "ConfigMap", ["patch"])
      .instances(1)
      .memory(32)
      .deadline(50);
  }

  handle(event: Event): void {
    const cm = event.object;
    if (event.merged > 0) log.info(`${event.merged} events merged into this one`);
    const ns = cache.get("v1", "Namespace", cm.namespace ?? "");
    if (ns?.label("frozen") === "true") throw new InformantError(`${ns.name} is frozen`, "forbidden");
    const image: unknown = cm.get("spec.containers.0.image");
    if (cm.label("team") === undefined && image === undefined) {
      action.mergePatch(cm, { metadata: { labels: { team: "unowned" } } });
      action.event(cm.ref(), "LabelAdded", "team: unowned", { warning: false });
    }
  }
}
"#;
    std::fs::write(dir.path().join("plugin.ts"), plugin).unwrap();
    let tsc = |dir: &Path| {
        let out = Command::new("node")
            .arg(sdk.join("node_modules/typescript/bin/tsc"))
            .arg("-p")
            .arg(dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, report) = tsc(dir.path());
    assert!(ok, "tsc refused a correct plugin:\n{report}");
    std::fs::write(
        dir.path().join("wrong.ts"),
        r#"import { Subscription } from "informant";
new Subscription("v1", "ConfigMap", { events: ["created"] });
"#,
    )
    .unwrap();
    let (ok, report) = tsc(dir.path());
    assert!(
        !ok && report.contains("\"created\""),
        "tsc accepted a misuse:\n{report}"
    );
}

/// The Python SDK is typed (it ships `py.typed`): the SDK passes
/// `mypy --strict`, a plugin with annotations written against it does too,
/// and a misuse (an event type that does not exist) does not.
#[test]
fn the_python_sdk_is_typed_and_mypy_strict_accepts_a_plugin() {
    let tools = python_tools();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("guest-sdk/python");
    assert!(
        sdk.join("informant/py.typed").is_file(),
        "the SDK does not say it is typed"
    );
    let mypy = |dir: &Path, target: &str| {
        let out = Command::new("python3")
            .args([
                "-m",
                "mypy",
                "--strict",
                "--no-incremental",
                "--cache-dir=/dev/null",
                target,
            ])
            .current_dir(dir)
            .env("PYTHONPATH", &tools)
            .env("MYPYPATH", &sdk)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, report) = mypy(&sdk, "informant");
    assert!(ok, "mypy --strict refused the SDK:\n{report}");

    let dir = tempfile::tempdir().unwrap();
    let plugin = r#"
from typing import Any, Optional

from informant import Error, Event, Manifest, Plugin, Subscription, action, cache, log


class TeamLabel(Plugin):
    def describe(self) -> Manifest:
        return (Manifest("team-label", "0.1.0")
                .subscribe(Subscription("v1", "ConfigMap", events=["added", "modified"], latest_state=True))
                .reads("v1", "Namespace")
                .writes("v1", "ConfigMap", ["patch"])
                .events()
                .instances(1)
                .memory(32)
                .deadline(50))

    def init(self, settings: Optional[Any]) -> None:
        self.team = settings.get("team", "unowned") if isinstance(settings, dict) else "unowned"

    def handle(self, event: Event) -> None:
        cm = event.object
        if event.merged > 0:
            log.info(f"{event.merged} events merged into this one")
        ns = cache.get("v1", "Namespace", cm.namespace or "")
        if ns is not None and ns.label("frozen") == "true":
            raise Error(f"{ns.name} is frozen", "forbidden")
        image: Any = cm.get("spec.containers.0.image")
        if cm.label("team") is None and image is None:
            action.merge_patch(cm, {"metadata": {"labels": {"team": self.team}}})
            action.event(cm.ref, "LabelAdded", f"team: {self.team}", warning=False)
"#;
    std::fs::write(dir.path().join("team_label.py"), plugin).unwrap();
    let (ok, report) = mypy(dir.path(), "team_label.py");
    assert!(ok, "mypy --strict refused a correct plugin:\n{report}");

    std::fs::write(
        dir.path().join("wrong.py"),
        "from informant import Subscription\n\nSubscription(\"v1\", \"ConfigMap\", events=[\"created\"])\n",
    )
    .unwrap();
    let (ok, report) = mypy(dir.path(), "wrong.py");
    assert!(
        !ok && report.contains("'created'"),
        "mypy accepted a misuse:\n{report}"
    );
}

/// The Rust SDK is a workspace of its own (guest code, kept out of the
/// host's build): its own unit tests and doctests pass, run as a user runs
/// them.
#[test]
fn the_rust_sdk_passes_its_own_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["test", "--locked", "--quiet", "--manifest-path"])
        .arg(root.join("guest-sdk/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/guest-sdk"));
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    let out = command.output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the SDK's tests failed:\n{report}");
    assert!(report.contains("test result: ok"), "{report}");
}

/// The Go SDK's own unit tests pass natively (outside a component the host
/// calls panic, saying so, and everything else works), `go vet` is clean on
/// both platforms, and a misuse (an event type that does not exist) does not
/// compile.
#[test]
fn the_go_sdk_passes_its_own_tests_and_vet() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("guest-sdk/go");
    let go = |dir: &Path, args: &[&str], wasm: bool| {
        let mut command = informant_testkit::go_command();
        command
            .args(args)
            .current_dir(dir)
            .env("GOTOOLCHAIN", "local")
            .env("GOWORK", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", "off");
        if wasm {
            command.env("GOOS", "wasip1").env("GOARCH", "wasm");
        }
        let out = command.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, report) = go(&sdk, &["test", "./..."], false);
    assert!(ok && report.contains("ok"), "go test failed:\n{report}");
    for wasm in [false, true] {
        let (ok, report) = go(&sdk, &["vet", "./..."], wasm);
        assert!(ok, "go vet (wasip1: {wasm}) failed:\n{report}");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("go.mod"),
        format!(
            "module wrong\n\ngo 1.24\n\nrequire github.com/informant-dev/informant/guest-sdk/go v0.0.0\n\nreplace github.com/informant-dev/informant/guest-sdk/go => {}\n",
            sdk.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.go"),
        "package main\n\nimport informant \"github.com/informant-dev/informant/guest-sdk/go\"\n\nfunc main() { informant.NewSubscription(\"v1\", \"ConfigMap\").Events(\"created\") }\n",
    )
    .unwrap();
    let (ok, report) = go(dir.path(), &["vet", "."], true);
    assert!(
        !ok && report.contains("\"created\""),
        "Go accepted a misuse:\n{report}"
    );
}
