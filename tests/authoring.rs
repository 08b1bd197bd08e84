//! `informant new`, `build` and `test` as a plugin author outside this
//! repository runs them: in a temporary directory, with nothing from the
//! checkout but the binary, for each language. The plugin is then loaded
//! by `informant dev --plugins` (against a real cluster, `informant run`)
//! and labels a ConfigMap.
//!
//! Two caches are shared with the rest of the suite, and only caches: the
//! pinned Python tools and Go with its build cache (`--toolchains`, where
//! the other Python and Go tests install them) and, for Rust, the plugins
//! workspace's target directory as `CARGO_TARGET_DIR`, where the SDK's
//! dependencies are already built. Python needs python3, JavaScript node
//! and npm, and Go python3 with pip (it installs the pinned Go when it is
//! missing), as in `guests.rs`; without them those tests fail saying what
//! is missing.

// Tests fail loudly: unwrapping is the point.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use informant_testkit::{
    HostProcess, TestCluster, eventually, guest_toolchains, host_command, terminate,
    wasm_target_dir,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{Api, api::PostParams};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_informant");

/// The binary, run in `dir` as a user would run it: the environment the
/// suite runs in says nothing about the project, or how to build it.
fn informant(dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .arg("--log=warn")
        .env("INFORMANT_TOOLCHAINS", guest_toolchains())
        .env("CARGO_TARGET_DIR", wasm_target_dir());
    for var in [
        "INFORMANT_LOG",
        "INFORMANT_PROJECT",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MANIFEST_DIR",
    ] {
        command.env_remove(var);
    }
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

/// `informant new NAME --lang LANG`, `build` and `test` in a temporary
/// directory; then a case whose expected actions are wrong fails with a
/// diff. Returns the directory and the project in it.
fn author(language: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(
        !dir.path().starts_with(repo.canonicalize().unwrap()),
        "the project must be outside the repository"
    );

    let (code, stdout, stderr) =
        output(informant(dir.path()).args(["new", name, "--lang", language]));
    assert_eq!(code, 0, "new: {stderr}");
    assert!(stdout.contains("created the "), "{stdout}");
    let project = dir.path().join(name);
    assert!(project.join("informant-sdk/wit/plugin.wit").is_file());

    let (code, stdout, stderr) = output(informant(&project).arg("build"));
    assert_eq!(code, 0, "{language} build:\n{stderr}");
    assert_eq!(
        stdout.trim_end(),
        format!("target/plugins/{name}.wasm"),
        "build ends with the component's path; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "loads as informant run would load it: {name} 0.1.0 (informant:plugin@"
        )),
        "build says what check says:\n{stderr}"
    );

    let (code, stdout, stderr) = output(informant(&project).arg("test"));
    assert_eq!(code, 0, "{language} test:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("case example ... ok (2 action(s))")
            && stdout.contains("test result: ok. 1 passed; 0 failed"),
        "{stdout}"
    );

    // A wrong expectation fails the case with a readable difference.
    let expected = project.join("tests/example/expected.jsonl");
    let right = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(&expected, right.replace("\"payments\"", "\"web\"")).unwrap();
    let (code, stdout, _) = output(informant(&project).args(["test", "--no-build"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("case example ... FAILED")
            && stdout.contains("/patch/metadata/labels/team: expected \"web\", got \"payments\"")
            && stdout.contains("test result: FAILED. 0 passed; 1 failed"),
        "{stdout}"
    );
    std::fs::write(&expected, right).unwrap();
    (dir, project)
}

/// The built plugin, run by the binary from the project's plugin
/// directory, labels a new ConfigMap: `informant dev --plugins` on the
/// embedded server, `informant run` on a real cluster (in a namespace of its
/// own, the only one the plugin may write to there).
async fn runs_and_acts(project: &Path, name: &str) {
    let work = tempfile::tempdir().unwrap();
    let plugins = project.join("target/plugins");
    let compile_cache = project.join("target/compile-cache");
    let real = std::env::var_os("INFORMANT_TEST_KUBECONFIG").is_some();
    let cluster = if real {
        Some(TestCluster::start().await)
    } else {
        None
    };
    let namespace = TestCluster::unique_name("authored");
    let config = work.path().join("informant.yaml");
    std::fs::write(
        &config,
        format!(
            "allow:\n  {name}:\n{}  - {{apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [{namespace}]}}\n",
            informant_testkit::READS_EVERYTHING_YAML
        ),
    )
    .unwrap();
    let mut command = match &cluster {
        Some(cluster) => {
            let mut command = host_command(BIN, "run");
            command.arg("--kubeconfig").arg(&cluster.kubeconfig);
            command
        }
        None => {
            let manifests = work.path().join("manifests");
            std::fs::create_dir(&manifests).unwrap();
            let mut command = host_command(BIN, "dev");
            command
                .args(["--port", "0", "--kubeconfig"])
                .arg(work.path().join("kubeconfig"))
                .arg("--manifests")
                .arg(&manifests);
            command
        }
    };
    command
        .arg("--plugins")
        .arg(&plugins)
        .arg("--config")
        .arg(&config)
        .arg("--compile-cache")
        .arg(&compile_cache);
    let mut host = HostProcess::spawn(&mut command);
    // Read on another thread until the plugin is loaded; the rest of stdout
    // is drained there, so the host never writes to a closed pipe.
    let stdout = host.stdout();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let mut url = None;
        let mut loaded = None;
        for line in lines.by_ref() {
            if let Some(u) = line.strip_prefix("embedded API server at ") {
                url = Some(u.to_owned());
            }
            if let Some(names) = line.strip_prefix("plugins: ") {
                loaded = Some(names.to_owned());
                break;
            }
        }
        let _ = tx.send((url, loaded));
        lines.for_each(drop);
    });
    let (url, loaded) = rx.await.unwrap();
    assert_eq!(loaded.as_deref(), Some(name), "the host loaded the plugin");
    informant::tls::install_crypto_provider();
    let client = match &cluster {
        Some(cluster) => cluster.client.clone(),
        None => kube::Client::try_from(kube::Config::new(url.unwrap().parse().unwrap())).unwrap(),
    };

    let namespaces: Api<Namespace> = Api::all(client.clone());
    if let Some(cluster) = &cluster {
        cluster.track("namespace", &namespace);
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"k": "v"}}))
            .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    eventually(
        &format!("{name}'s team label on the ConfigMap"),
        Duration::from_secs(60),
        async || {
            let labels = configmaps.get("settings").await.ok()?.metadata.labels?;
            (labels.get("team").map(String::as_str) == Some("unowned")).then_some(())
        },
    )
    .await;
    let (status, stderr) = terminate(host).await;
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(!stderr.contains(" ERROR "), "{stderr}");
}

#[tokio::test]
async fn a_rust_plugin_is_created_built_tested_and_run_outside_the_repository() {
    let (_dir, project) = author("rust", "authored-rust");
    // The lock file starts from the versions the SDK is tested with.
    assert!(project.join("Cargo.lock").is_file());
    runs_and_acts(&project, "authored-rust").await;
}

#[tokio::test]
async fn a_python_plugin_is_created_built_tested_and_run_outside_the_repository() {
    let (_dir, project) = author("python", "authored-python");
    runs_and_acts(&project, "authored-python").await;
}

#[tokio::test]
async fn a_javascript_plugin_is_created_built_tested_and_run_outside_the_repository() {
    let (_dir, project) = author("js", "authored-js");
    runs_and_acts(&project, "authored-js").await;
}

#[tokio::test]
async fn a_go_plugin_is_created_built_tested_and_run_outside_the_repository() {
    let (_dir, project) = author("go", "authored-go");
    // The module uses the SDK written beside it, at the version it carries.
    let module = std::fs::read_to_string(project.join("go.mod")).unwrap();
    assert!(
        module.contains(
            "\nreplace github.com/informant-dev/informant/guest-sdk/go => ./informant-sdk\n"
        ),
        "{module}"
    );
    assert!(project.join("informant-sdk/go.mod").is_file());
    // A second build with nothing changed builds nothing.
    let (code, stdout, stderr) = output(informant(&project).arg("build"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim_end(), "target/plugins/authored-go.wasm");
    assert!(stderr.contains("is up to date"), "{stderr}");
    // A Go compile error fails the build with what Go said, where.
    let main = project.join("main.go");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        source.replace("team := \"unowned\"", "team := unowned"),
    )
    .unwrap();
    let (code, _, stderr) = output(informant(&project).arg("build"));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("go build failed")
            && stderr.contains("main.go:")
            && stderr.contains("undefined: unowned"),
        "{stderr}"
    );
    // The component built before is still there, whole.
    assert!(project.join("target/plugins/authored-go.wasm").is_file());
    assert!(!project.join("target/build/authored-go.wasm").exists());
    std::fs::write(&main, source).unwrap();
    let (code, _, stderr) = output(informant(&project).arg("build"));
    assert_eq!(code, 0, "{stderr}");
    runs_and_acts(&project, "authored-go").await;
}

/// What a user gets wrong is said plainly: a language it does not know, a
/// name that cannot name a plugin, a directory in use, `build` outside a
/// project.
#[test]
fn new_and_build_explain_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = output(informant(dir.path()).args(["new", "x", "--lang", "cobol"]));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("unknown language \"cobol\"; choose one of rust, python, js, go"),
        "{stderr}"
    );
    assert!(!dir.path().join("x").exists());

    let (code, _, stderr) =
        output(informant(dir.path()).args(["new", "My_Plugin", "--lang", "rust"]));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("\"My_Plugin\" cannot name a plugin"),
        "{stderr}"
    );

    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/notes.txt"), "mine").unwrap();
    let (code, _, stderr) =
        output(informant(dir.path()).args(["new", "taken", "--lang", "python"]));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("taken")).unwrap().count(),
        1
    );

    let (code, stdout, _) = output(informant(dir.path()).arg("--help"));
    assert_eq!(code, 0);
    for command in ["new", "build", "test"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "--help lists {command}: {stdout}"
        );
    }

    let (code, _, stderr) = output(informant(dir.path()).arg("build"));
    assert_ne!(code, 0);
    assert!(
        stderr.contains("not in a plugin project") && stderr.contains("informant new NAME"),
        "{stderr}"
    );
}
