//! `informant-testkit`: what the host's end-to-end tests (`tests/`) and
//! benchmarks (`host/benches/`) share. A test cluster (the embedded API
//! server, or the real one `INFORMANT_TEST_KUBECONFIG` names), the compiled
//! plugins and fixtures (`build.rs` builds the plugins workspace), the
//! Python, JavaScript and Go toolchains, and small helpers. The tests run the
//! `informant` binary Cargo builds for them (`CARGO_BIN_EXE_informant`).

use std::path::PathBuf;

/// The directory holding the example plugins compiled by `build.rs`.
pub fn plugin_dir() -> PathBuf {
    PathBuf::from(env!("INFORMANT_TEST_PLUGINS"))
}

mod gate;
mod guest;
pub mod image;
pub mod widgets;

pub use gate::Gate;

/// A plain HTTP/1.0 GET of `path` from the host's HTTP server at `addr`:
/// the status and the body. (kube's client retries 503s by itself, which
/// would hide an unready `/readyz`.)
///
/// # Panics
/// If the server cannot be reached or answers something that is not HTTP.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the HTTP server is up");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: informant\r\n\r\n").as_bytes())
        .await
        .expect("the request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

/// A Python, JavaScript or Go example plugin, built on first use (after
/// installing the pinned toolchain if needed):
/// `guest_plugin("python", "label-enforcer")`.
///
/// # Panics
/// Saying why, if the language's toolchain cannot be installed or the build
/// fails.
pub fn guest_plugin(language: &str, name: &str) -> PathBuf {
    guest_toolchain(language);
    let path = wasm_dir().join(language).join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{}: no such {language} example",
        path.display()
    );
    path
}

/// Build a plugin file of `language` (`python`, `js` or `go`: for Go, the
/// package of the file) into `output` with its SDK's build, as a user would.
///
/// # Panics
/// Saying why, if the toolchain cannot be had or the build fails.
pub fn build_guest(language: &str, source: &std::path::Path, output: &std::path::Path) {
    let (guest, root, toolchains) = guest_toolchain(language);
    if let Err(why) = guest.build_file(&root, &toolchains, source, output) {
        panic!("{why}");
    }
}

/// The directories of the pinned Python tools (componentize-py, mypy),
/// installed when missing, as a `PYTHONPATH`.
///
/// # Panics
/// Saying why, if they cannot be installed.
pub fn python_tools() -> std::ffi::OsString {
    use informant::authoring::toolchain::{self, Toolchains};
    let (_, _, toolchains) = guest_toolchain("python");
    let tools = Toolchains::at(toolchains);
    let dirs: Vec<PathBuf> = [("build", "componentize-py"), ("typecheck", "mypy")]
        .iter()
        .map(|(extra, name)| {
            toolchain::pin(extra, name)
                .and_then(|pin| tools.python_package(&pin, &|_| {}))
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    std::env::join_paths(dirs).expect("tool directories without the path separator")
}

/// A `go` command of the pinned Go the Go examples are built with
/// (installed, and the examples built, if needed).
///
/// # Panics
/// Saying why, if Go cannot be had.
pub fn go_command() -> std::process::Command {
    let (_, _, toolchains) = guest_toolchain("go");
    match informant_go::toolchain::go(&toolchains) {
        Ok(go) => go.command(),
        Err(why) => panic!("{why:#}"),
    }
}

/// The language's guest, with its examples built (and so its toolchain
/// installed) once per process; the workspace root; the toolchains' directory.
fn guest_toolchain(language: &str) -> (&'static guest::Guest, PathBuf, PathBuf) {
    use std::sync::OnceLock;
    static BUILT: [OnceLock<Result<(), String>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let (index, guest) = guest::LANGUAGES
        .iter()
        .enumerate()
        .find(|(_, g)| g.language == language)
        .unwrap_or_else(|| panic!("no guest language {language}"));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(std::path::Path::to_path_buf)
        .expect("the test kit lives in tests/support of the workspace");
    let toolchains = guest_toolchains();
    if let Err(why) = BUILT[index].get_or_init(|| guest.build_all(&root, &wasm_dir(), &toolchains))
    {
        panic!("the {language} example plugins could not be built: {why}");
    }
    (guest, root, toolchains)
}

/// Where the tests install the pinned Python tools
/// (`<target>/guest-toolchains`): what `informant build --toolchains`
/// gets in the tests that run it, so that they install once.
pub fn guest_toolchains() -> PathBuf {
    wasm_dir()
        .parent()
        .map(|p| p.join("guest-toolchains"))
        .expect("the wasm directory is inside the target directory")
}

/// The plugins workspace's target directory (`<target>/wasm-plugins`),
/// where every dependency of a Rust plugin is already built: a test that
/// builds a Rust plugin project gives it as `CARGO_TARGET_DIR`.
pub fn wasm_target_dir() -> PathBuf {
    wasm_dir()
}

/// The compile cache the tests share (wasmtime's, under the target
/// directory), so each large Python or JavaScript component compiles once.
pub fn compile_cache() -> PathBuf {
    wasm_dir().join("compile-cache")
}

/// Rules that let a plugin subscribe to and read every kind, Secrets
/// included (a wildcard does not grant them): what a test adds to a
/// plugin's allowlist entry when it narrows only writes.
pub fn reads_everything() -> Vec<informant::action::Rule> {
    ["*", "Secret"]
        .into_iter()
        .map(|kind| informant::action::Rule {
            api_version: if kind == "*" { "*" } else { "v1" }.into(),
            kind: kind.into(),
            verbs: Vec::new(),
            read: true,
            namespaces: None,
        })
        .collect()
}

/// [`reads_everything`] as lines of a YAML allowlist entry.
pub const READS_EVERYTHING_YAML: &str = "  - {apiVersion: '*', kind: '*', verbs: [read]}\n  - {apiVersion: v1, kind: Secret, verbs: [read]}\n";

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    wasm_dir()
        .parent()
        .map(std::path::Path::to_path_buf)
        .expect("the wasm directory is inside the target directory")
}

/// The plugins workspace's target directory, `<target>/wasm-plugins`.
fn wasm_dir() -> PathBuf {
    plugin_dir()
        .ancestors()
        .nth(2)
        .map(std::path::Path::to_path_buf)
        .expect("the plugin directory is <target>/wasm-plugins/wasm32-wasip2/release")
}

/// The `informant` binary (`env!("CARGO_BIN_EXE_informant")`, which only
/// tests and benchmarks see) with `subcommand` (`run` or `dev`), its HTTP
/// servers on free ports, the log level left to its default, and stdout and
/// stderr piped for the test to read.
pub fn host_command(binary: &str, subcommand: &str) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .arg(subcommand)
        .args(["--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env_remove("INFORMANT_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// A host process started by a test. Its stderr is read as it is written,
/// on a thread of its own, and kept for [`terminate`]: a pipe nobody reads
/// fills at 64 KiB and then stalls the host's logging, and with it the host
/// (on a shared cluster, other tests' objects can make a plugin talkative).
pub struct HostProcess {
    child: std::process::Child,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl HostProcess {
    /// Spawn `command` (from [`host_command`]).
    ///
    /// # Panics
    /// If the binary cannot be started.
    pub fn spawn(command: &mut std::process::Command) -> Self {
        use std::io::Read;
        let mut child = command.spawn().expect("the informant binary starts");
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        });
        Self { child, stderr }
    }

    /// The host's stdout, for the test to read.
    ///
    /// # Panics
    /// If it was taken before or not piped.
    pub fn stdout(&mut self) -> std::process::ChildStdout {
        self.child.stdout.take().expect("stdout is piped, once")
    }

    /// Kill the host with SIGKILL, as a node that dies does: no shutdown,
    /// no Lease released. Returns everything it wrote to stderr.
    ///
    /// # Panics
    /// If the process cannot be killed or waited for.
    pub fn kill(mut self) -> String {
        self.child.kill().expect("the host can be killed");
        self.child.wait().expect("the host can be waited for");
        self.stderr()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

/// A host whose test panicked before it was terminated is killed, so no
/// host outlives its test (one serving webhooks would keep answering).
impl Drop for HostProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Send SIGTERM, as Kubernetes does, and wait up to 30 s for the exit;
/// returns the exit status and everything the host wrote to stderr.
///
/// # Panics
/// If the signal cannot be sent or the host does not exit in time (it is
/// then killed, and the panic shows the last lines it wrote).
pub async fn terminate(mut host: HostProcess) -> (std::process::ExitStatus, String) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &host.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM failed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = host.child.try_wait().expect("the host can be waited for") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = host.child.kill();
            let _ = host.child.wait();
            let stderr = host.stderr();
            let mut tail: Vec<&str> = stderr.lines().rev().take(60).collect();
            tail.reverse();
            panic!(
                "no exit within 30 s of SIGTERM; the last lines it wrote:\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    (status, host.stderr())
}

/// The path of a compiled plugin: `plugin_path("label_enforcer")`.
pub fn plugin_path(name: &str) -> PathBuf {
    plugin_dir().join(format!("{name}.wasm"))
}

/// The bytes of a compiled plugin.
///
/// # Panics
/// If the plugin was not built, which means `build.rs` did not run.
pub fn plugin_bytes(name: &str) -> Vec<u8> {
    let path = plugin_path(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build.rs should have built it", path.display()))
}

/// A file under `tests/fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

use informant_apiserver::{self as dev, ApiServer};

/// Where the end-to-end tests run: the embedded API server (default), or
/// the cluster named by `INFORMANT_TEST_KUBECONFIG`.
///
/// On a real cluster, which other tests and other runs share, every
/// namespace a test makes with [`Self::namespace`] and every cluster-scoped
/// object it [`Self::track`]s is deleted when the `TestCluster` drops (on a
/// panic too), so a run leaves nothing behind. The embedded server goes
/// away with the test anyway.
pub struct TestCluster {
    /// The embedded server, when the tests run against it.
    pub server: Option<ApiServer>,
    /// A kube client for the cluster.
    pub client: kube::Client,
    /// A kubeconfig file for kubectl.
    pub kubeconfig: std::path::PathBuf,
    /// Cluster-scoped objects to delete at the end: (kubectl resource, name).
    created: std::sync::Mutex<Vec<(String, String)>>,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Start the embedded server (with 1 s bookmarks, so tests need not
    /// wait a minute), or connect to `INFORMANT_TEST_KUBECONFIG`; either
    /// way with the PluginState CRD of the durable state tier installed, as
    /// a cluster running Informant has it.
    ///
    /// # Panics
    /// If neither can be had: the tests cannot run.
    pub async fn start() -> Self {
        informant::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("a temporary directory");
        if let Some(path) = std::env::var_os("INFORMANT_TEST_KUBECONFIG") {
            let path = std::path::PathBuf::from(path);
            let kc = kube::config::Kubeconfig::read_from(&path)
                .expect("INFORMANT_TEST_KUBECONFIG is a kubeconfig");
            let config = kube::Config::from_custom_kubeconfig(
                kc,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .expect("the kubeconfig has a usable context");
            let client = kube::Client::try_from(config).expect("a client");
            let cluster = Self {
                server: None,
                client,
                kubeconfig: path,
                created: std::sync::Mutex::default(),
                _dir: dir,
            };
            cluster.install_state_crd().await;
            return cluster;
        }
        let config = dev::Config::default().bookmark_interval(std::time::Duration::from_secs(1));
        let server = ApiServer::start(config)
            .await
            .expect("the embedded API server starts");
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig)
            .expect("the kubeconfig is written");
        let config = kube::Config::new(server.url().parse().expect("the server URL parses"));
        let client = kube::Client::try_from(config).expect("a client");
        let cluster = Self {
            server: Some(server),
            client,
            kubeconfig,
            created: std::sync::Mutex::default(),
            _dir: dir,
        };
        cluster.install_state_crd().await;
        cluster
    }

    /// Whether the tests run against a real cluster
    /// (`INFORMANT_TEST_KUBECONFIG`).
    pub fn is_real(&self) -> bool {
        self.server.is_none()
    }

    /// The embedded server, for fault injection; none against a real
    /// cluster, where the calling test should say it skips and return.
    pub fn embedded(&self, test: &str) -> Option<&ApiServer> {
        if self.server.is_none() {
            eprintln!(
                "{test}: skipped: fault injection needs the embedded API server (INFORMANT_TEST_KUBECONFIG is set)"
            );
        }
        self.server.as_ref()
    }

    /// A name no other test, run or replica of this suite uses:
    /// `prefix-` and five random lowercase letters and digits.
    pub fn unique_name(prefix: &str) -> String {
        let suffix: String = (0..5)
            .map(|_| {
                let i = fastrand::usize(..36);
                char::from_digit(u32::try_from(i).unwrap_or(0), 36).unwrap_or('x')
            })
            .collect();
        format!("{prefix}-{suffix}")
    }

    /// Create a namespace with a unique name, deleted again when the
    /// cluster handle drops (on a real cluster).
    ///
    /// # Panics
    /// If the namespace cannot be created.
    pub async fn namespace(&self, prefix: &str) -> String {
        use k8s_openapi::api::core::v1::Namespace;
        let name = Self::unique_name(prefix);
        let api: kube::Api<Namespace> = kube::Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .expect("a namespace");
        self.track("namespace", &name);
        api.create(&kube::api::PostParams::default(), &ns)
            .await
            .expect("the test namespace is created");
        name
    }

    /// Delete the cluster-scoped object `resource/name` (as kubectl names
    /// them: `namespace`, `crd`...) when the cluster handle drops, on a real
    /// cluster.
    ///
    /// # Panics
    /// If another thread panicked while tracking.
    pub fn track(&self, resource: &str, name: &str) {
        self.created
            .lock()
            .expect("the list of created objects")
            .push((resource.into(), name.into()));
    }
}

impl TestCluster {
    /// Install the CRD of the durable state tier
    /// (deploy/base/crd-pluginstate.yaml) with server-side apply, and wait until
    /// it is served. It stays: on a shared cluster other tests use it at
    /// the same time, as a host's installation would.
    ///
    /// # Panics
    /// If the server refuses it, or does not serve it within 30 s.
    pub async fn install_state_crd(&self) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let text = include_str!("../../../deploy/base/crd-pluginstate.yaml");
        let crd: CustomResourceDefinition =
            serde_norway::from_str(text).expect("deploy/base/crd-pluginstate.yaml is a CRD");
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(self.client.clone());
        let name = "pluginstates.informant.dev";
        api.patch(
            name,
            &kube::api::PatchParams::apply("informant-tests").force(),
            &kube::api::Patch::Apply(&crd),
        )
        .await
        .expect("the PluginState CRD is applied");
        eventually(
            "the PluginState CRD to be established",
            std::time::Duration::from_secs(30),
            || async {
                let crd = api.get(name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            },
        )
        .await;
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if !self.is_real() {
            return;
        }
        let created = std::mem::take(self.created.get_mut().unwrap_or_else(|e| e.into_inner()));
        // kubectl, synchronously: the test's async runtime may be gone by now.
        // Without waiting: the controller manager empties namespaces later.
        for (resource, name) in created {
            let out = std::process::Command::new("kubectl")
                .env("KUBECONFIG", &self.kubeconfig)
                .args([
                    "delete",
                    &resource,
                    &name,
                    "--ignore-not-found",
                    "--wait=false",
                ])
                .output();
            match out {
                Ok(out) if out.status.success() => {}
                Ok(out) => eprintln!(
                    "cleanup: kubectl delete {resource} {name}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => eprintln!("cleanup: kubectl delete {resource} {name}: {e}"),
            }
        }
    }
}

/// The same component with a custom section appended: new bytes (another
/// digest), the same code, as a rebuilt plugin would be.
pub fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"informant-test";
    let mut payload = vec![u8::try_from(name.len()).expect("a short name")];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // a custom section
    let mut len = payload.len();
    loop {
        let byte = u8::try_from(len & 0x7f).expect("seven bits");
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    out
}

/// Every log line of this process with the instant it was written, for
/// tests and benchmarks that read what plugins log (the sequencer fixture
/// reports through its log).
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, String)>>>);

static GLOBAL_LOGS: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();

/// Poll `check` every 10 ms until it returns `Some`. After `timeout`, print
/// the last log lines (if a [`LogCapture`] is installed) and fail.
///
/// # Panics
/// On timeout, naming `what` was awaited.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if std::time::Instant::now() >= deadline {
            if let Some(logs) = GLOBAL_LOGS.get() {
                let text = logs.text();
                let tail: Vec<_> = text.lines().rev().take(60).collect();
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

impl LogCapture {
    /// The process's capture, installed as the global subscriber on first
    /// use with `RUST_LOG`, or `default_filter` without it.
    ///
    /// # Panics
    /// If another global subscriber was installed first.
    pub fn global(default_filter: &str) -> Self {
        GLOBAL_LOGS
            .get_or_init(|| {
                let capture = Self::default();
                let sink = capture.clone();
                tracing_subscriber::fmt()
                    .with_ansi(false)
                    .with_env_filter(
                        tracing_subscriber::EnvFilter::try_from_default_env()
                            .unwrap_or_else(|_| default_filter.into()),
                    )
                    .with_writer(move || sink.clone())
                    .init();
                capture
            })
            .clone()
    }

    /// The lines so far, with when each was written.
    ///
    /// # Panics
    /// If a writer panicked while holding the buffer.
    pub fn lines(&self) -> Vec<(std::time::Instant, String)> {
        self.0.lock().expect("the log buffer").clone()
    }

    /// The lines so far, as text.
    pub fn text(&self) -> String {
        self.lines().into_iter().map(|(_, l)| l).collect()
    }

    /// Forget the lines so far.
    ///
    /// # Panics
    /// If a writer panicked while holding the buffer.
    pub fn clear(&self) {
        self.0.lock().expect("the log buffer").clear();
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf).into_owned();
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("the log buffer is poisoned"))?
            .push((std::time::Instant::now(), line));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Create a ConfigMap with these labels and data.
///
/// # Panics
/// If the server refuses it.
pub async fn create_cm(
    api: &kube::Api<k8s_openapi::api::core::v1::ConfigMap>,
    name: &str,
    labels: serde_json::Value,
    data: serde_json::Value,
) {
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(
        serde_json::json!({"metadata": {"name": name, "labels": labels}, "data": data}),
    )
    .expect("a ConfigMap");
    api.create(&kube::api::PostParams::default(), &cm)
        .await
        .expect("the ConfigMap is created");
}

/// Synthetic ConfigMaps to push straight into a plugin's lane, as the
/// informers would: the in-process dispatch path without a server.
pub struct SyntheticLoad {
    kind: informant::vocabulary::KindKey,
    objects: Vec<(
        std::sync::Arc<informant::vocabulary::ObjectKey>,
        std::sync::Arc<informant::cache::CachedObject>,
    )>,
}

impl SyntheticLoad {
    /// `n` ConfigMaps in namespace `bench`, labelled `owner: me` (so the
    /// label-enforcer only reads them), with `payload` bytes of data.
    pub fn new(n: usize, payload: usize) -> Self {
        let store = informant::cache::Store::default();
        let objects = (0..n)
            .map(|i| {
                let name = format!("cm-{i}");
                let object = store.prepare(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": "bench", "resourceVersion": "1", "labels": {"owner": "me"}},
                    "data": {"payload": "x".repeat(payload)}}));
                (
                    std::sync::Arc::new(informant::vocabulary::ObjectKey::new(Some("bench"), &name)),
                    std::sync::Arc::new(object),
                )
            })
            .collect();
        Self {
            kind: informant::vocabulary::KindKey::new("v1", "ConfigMap"),
            objects,
        }
    }

    /// Push a `modified` event for object `i` (modulo their number) with
    /// every-event semantics: no coalescing, so every push is a call.
    pub fn push(&self, lane: &std::sync::Arc<informant::dispatch::Lane>, i: usize) {
        let (key, object) = &self.objects[i % self.objects.len()];
        let event = informant::plugin::Event {
            event_type: informant::vocabulary::EventType::Modified,
            subscription: 0,
            initial: false,
            final_state_unknown: false,
            object: Some(object.clone()),
            old_object: None,
            merged: 0,
        };
        let key = informant::dispatch::Key::Object(self.kind.clone(), key.clone());
        lane.push(
            informant::dispatch::Job::new(key, 0, event),
            informant::plugin::manifest::Delivery::EveryEvent,
        );
    }
}
