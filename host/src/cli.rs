//! The command line: `informant run`, `informant dev`, `informant check`,
//! `informant replay`; for plugin authors `informant new`, `build` and
//! `test`; for plugins in registries `push`, `pull`, `sign` and `keygen`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Informant: react to Kubernetes changes with small sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "informant", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Logging options shared by every command.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "INFORMANT_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter, in `RUST_LOG` syntax (e.g. `info,informant=debug`).
    #[arg(long, global = true, default_value = "info", env = "INFORMANT_LOG")]
    pub log: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that a file is a valid Informant plugin and print its manifest as JSON.
    ///
    /// Compiles the component, links it against the contract it was built for
    /// (informant:plugin@0.3.0, 0.2.0 or 0.1.0), calls `describe` and `init` and
    /// validates the manifest against the limits `--config` sets, as `run`
    /// does. Prints what the manifest asks for beyond the defaults on stderr.
    /// Exits 0 if the plugin would load, non-zero with the reason otherwise.
    Check(CheckArgs),

    /// Run a plugin offline against recorded events and print its actions,
    /// or against AdmissionReviews and print its webhook's answers.
    ///
    /// The cache is seeded from the --objects files; then each line of the
    /// events file (JSON Lines, as `kubectl get -w -o json
    /// --output-watch-events` prints) updates the cache and goes to the
    /// plugin's matching subscriptions. Every committed action is printed to
    /// stdout as one JSON line; failed calls are reported on stderr, and make
    /// the exit status non-zero. With --reviews, each AdmissionReview goes to
    /// the plugin's webhook and the host's answer is printed; a review the
    /// plugin could not decide is reported on stderr and makes the exit
    /// status non-zero.
    Replay(ReplayArgs),

    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Publish a plugin to an OCI registry, in the CNCF Wasm artifact
    /// layout (config application/vnd.wasm.config.v0+json, one
    /// application/wasm layer), and print its digest.
    ///
    /// The same component gives the same digest. Credentials come from
    /// --docker-config, $DOCKER_CONFIG/config.json or ~/.docker/config.json.
    Push(PushArgs),

    /// Download a plugin from an OCI registry (by tag or digest) and print
    /// the digest it resolved to.
    Pull(PullArgs),

    /// Sign a plugin in a registry with a private key, as cosign signs: the
    /// signature goes to the `sha256-<digest>.sig` tag of its repository.
    ///
    /// The key is an ECDSA P-256 private key in PEM (`informant keygen`
    /// makes one; cosign's encrypted keys work with their password in
    /// $COSIGN_PASSWORD).
    Sign(SignArgs),

    /// Make a key pair for `informant sign`: NAME.key (private, PEM) and
    /// NAME.pub (public, PEM, what the host's signature policy lists).
    Keygen(KeygenArgs),

    /// Create a plugin project in Rust, Python, JavaScript or Go, ready to
    /// build and test.
    ///
    /// Writes a minimal plugin, its build configuration, a README, a test
    /// case, and the SDK and contract this binary carries: no checkout of
    /// Informant is needed. Then, inside it: `informant build`, `informant
    /// test`.
    New(NewArgs),

    /// Build the plugin project into a component, and check it.
    ///
    /// Builds with the language's pinned toolchain, installed on first use.
    /// Rust: cargo build --release --target wasm32-wasip2. Python:
    /// componentize-py. JavaScript: esbuild and componentize-js. Go: go build
    /// for wasip1 as a reactor, then wit-component. The component goes to
    /// target/plugins/NAME.wasm, a directory `informant dev --plugins` can
    /// run; its path is printed on stdout, and what `informant check` says
    /// about it on stderr.
    Build(BuildArgs),

    /// Build the plugin project and replay its test cases against their
    /// expected actions.
    ///
    /// Each directory under tests/ with an events.jsonl (and optionally
    /// objects.yaml and settings.json) must produce the actions of its
    /// expected.jsonl. A case fails with a diff when they differ, or when a
    /// call fails.
    Test(TestArgs),

    /// Read plugins' stores (the state interface) through a running host's
    /// admin API: list a plugin's keys, read one.
    ///
    /// In a cluster, run it in the host's Pod:
    /// `kubectl exec -n informant-system deploy/informant -- informant state keys restarter`.
    State(StateArgs),

    /// Run the host against a cluster: watch what the plugins in --plugins
    /// subscribe to, call them with each event, execute their actions.
    ///
    /// Connects with the kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config)
    /// or, inside a Pod, with its service account.
    Run(RunArgs),

    /// Run an embedded Kubernetes-compatible API server on 127.0.0.1, and
    /// the host with the plugins in --plugins against it: Informant without
    /// a cluster, for trying it and developing plugins.
    ///
    /// Writes a kubeconfig and prints how to point kubectl at it.
    Dev(DevArgs),
}

/// `informant config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file without starting anything: exits 0 if
    /// the host would accept it, non-zero naming the key and the problem.
    Check {
        /// The file (YAML or JSON).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Arguments of `informant new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project's directory, created; its name is the plugin's name
    /// (lowercase letters, digits and '-', starting with a letter).
    #[arg(value_name = "NAME")]
    pub path: PathBuf,

    /// The plugin's language: rust, python, js or go.
    #[arg(long, value_name = "LANG", value_parser = parse_language)]
    pub lang: crate::authoring::Language,
}

fn parse_language(s: &str) -> Result<crate::authoring::Language, String> {
    s.parse()
}

/// Which project, and where its toolchains are, for `build` and `test`.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// The project's directory [default: the nearest directory with an
    /// informant.toml, from the current one up].
    #[arg(long, value_name = "DIR", env = "INFORMANT_PROJECT")]
    pub project: Option<PathBuf>,

    /// Where pinned build tools (componentize-py, Go) are installed [default:
    /// informant/toolchains in the user's cache directory].
    #[arg(long, value_name = "DIR", env = "INFORMANT_TOOLCHAINS")]
    pub toolchains: Option<PathBuf>,
}

/// Arguments of `informant build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `informant test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The project.
    #[command(flatten)]
    pub project: ProjectArgs,

    /// Only the cases whose name contains this.
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,

    /// Test the component as it is, without building it first.
    #[arg(long)]
    pub no_build: bool,

    /// Record the actions the plugin takes as each case's expected.jsonl
    /// instead of comparing them (a case whose calls fail is not recorded).
    #[arg(long)]
    pub update: bool,
}

/// Arguments of `informant state`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// What to read.
    #[command(subcommand)]
    pub command: StateCommand,

    /// The host's admin API.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8081",
        env = "INFORMANT_ADMIN_ADDR",
        global = true
    )]
    pub admin_addr: std::net::SocketAddr,
}

/// `informant state ...`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List a plugin's keys, one per line, in order.
    Keys {
        /// The plugin.
        plugin: String,
        /// Only keys that start with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print one key's value, version and expiry as JSON.
    Get {
        /// The plugin.
        plugin: String,
        /// The key.
        key: String,
    },
    /// Print every plugin's store: tier, usage, quotas, operations, commits.
    Usage,
}

/// What the host runs with, for `run` and `dev`.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// Directory of plugins: `NAME.wasm`, with optional settings in
    /// `NAME.json` or `NAME.yaml` beside it.
    #[arg(long, value_name = "DIR", env = "INFORMANT_PLUGINS")]
    pub plugins: Option<PathBuf>,

    /// Configuration file (YAML): limits, allowlist, action rate, dispatch.
    #[arg(long, value_name = "FILE", env = "INFORMANT_CONFIG")]
    pub config: Option<PathBuf>,

    /// Send every action with dryRun=All: the API server validates it and
    /// changes nothing; the log says what would have happened.
    #[arg(long, env = "INFORMANT_DRY_RUN")]
    pub dry_run: bool,

    /// Where health (`/healthz`), readiness (`/readyz`) and metrics
    /// (`/metrics`) are served [default: the file's `http.addr`, else
    /// 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR", env = "INFORMANT_HTTP_ADDR")]
    pub http_addr: Option<std::net::SocketAddr>,

    /// Where the admin API (`/api/v1/plugins`, `/api/v1/subscriptions`,
    /// `/api/v1/dead-letters`) is served [default: the file's
    /// `http.adminAddr`, else 127.0.0.1:8081, localhost only].
    #[arg(long, value_name = "ADDR", env = "INFORMANT_ADMIN_ADDR")]
    pub admin_addr: Option<std::net::SocketAddr>,

    /// Elect a leader among replicas on a coordination.k8s.io/v1 Lease; only
    /// the leader executes actions, the others keep their caches and plugins
    /// warm.
    #[arg(long, env = "INFORMANT_LEADER_ELECT")]
    pub leader_elect: bool,

    /// The Lease's name [default: the file's `leaderElection.leaseName`,
    /// else informant].
    #[arg(long, value_name = "NAME", env = "INFORMANT_LEASE_NAME")]
    pub lease_name: Option<String>,

    /// The Lease's namespace; by default the Pod's own (POD_NAMESPACE or the
    /// service account's), else `default`.
    #[arg(long, value_name = "NAMESPACE", env = "INFORMANT_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// How long pending actions may take to finish on shutdown, in seconds
    /// [default: 20].
    #[arg(long, value_name = "SECONDS", env = "INFORMANT_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,

    /// Where compiled plugins are kept between runs.
    #[command(flatten)]
    pub compile_cache: CompileCacheArgs,

    /// Admission webhooks.
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Serving plugins' admission webhooks.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// Serve the plugins' admission webhooks over HTTPS here; every replica
    /// serves them [default: the file's `admission.addr`; `dev`:
    /// 127.0.0.1 on a free port; otherwise admission is off].
    #[arg(long, value_name = "ADDR", env = "INFORMANT_WEBHOOK_ADDR")]
    pub webhook_addr: Option<std::net::SocketAddr>,

    /// The webhook server's certificate: `tls.crt`, `tls.key` and
    /// optionally `ca.crt` in DIR, as a cert-manager Secret is mounted;
    /// reloaded when they change.
    #[arg(long, value_name = "DIR", env = "INFORMANT_WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,

    /// Generate a CA and a certificate at start instead (for dev and tests:
    /// each replica would make its own, so one replica only).
    #[arg(
        long,
        env = "INFORMANT_WEBHOOK_GENERATE_CERT",
        conflicts_with = "webhook_cert_dir"
    )]
    pub webhook_generate_cert: bool,

    /// The base URL the API server calls the webhooks at
    /// (`https://host:port`) instead of the `informant` Service: for a host
    /// outside the cluster [default with a generated certificate: the
    /// server's own address].
    #[arg(long, value_name = "URL", env = "INFORMANT_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
}

impl HostArgs {
    /// What these flags say about the configuration, for
    /// [`crate::config::Config::resolve`].
    pub fn overrides(&self) -> crate::config::Overrides {
        crate::config::Overrides {
            plugin_dir: self.plugins.clone(),
            compile_cache_dir: self.compile_cache.dir.clone(),
            http_addr: self.http_addr,
            admin_addr: self.admin_addr,
            leader_elect: self.leader_elect,
            lease_name: self.lease_name.clone(),
            lease_namespace: self.lease_namespace.clone(),
            dry_run: self.dry_run,
            shutdown_grace: self.shutdown_grace.map(std::time::Duration::from_secs),
            webhook_addr: self.webhooks.webhook_addr,
            webhook_cert_dir: self.webhooks.webhook_cert_dir.clone(),
            webhook_generate_cert: self.webhooks.webhook_generate_cert,
            webhook_url: self.webhooks.webhook_url.clone(),
        }
    }
}

/// Arguments of `informant run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plugins, configuration, dry run.
    #[command(flatten)]
    pub host: HostArgs,

    /// Kubeconfig to use instead of $KUBECONFIG or ~/.kube/config.
    #[arg(long, value_name = "FILE", env = "INFORMANT_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME", env = "INFORMANT_CONTEXT")]
    pub context: Option<String>,
}

/// Arguments of `informant dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port to listen on (127.0.0.1 only); 0 picks a free port.
    #[arg(long, default_value_t = 8443, env = "INFORMANT_DEV_PORT")]
    pub port: u16,

    /// Where to write the kubeconfig.
    #[arg(long, value_name = "FILE", env = "INFORMANT_DEV_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Seed objects from the YAML/JSON manifests in this directory and keep
    /// them in sync with the files. Without it, sample objects are seeded.
    #[arg(long, value_name = "DIR", env = "INFORMANT_DEV_MANIFESTS")]
    pub manifests: Option<PathBuf>,

    /// Serve the fault-injection endpoint `POST /informant/faults` (for tests).
    #[arg(long, env = "INFORMANT_DEV_FAULTS")]
    pub faults: bool,

    /// Run only the API server: no host, no plugins.
    #[arg(long, env = "INFORMANT_DEV_SERVER_ONLY", conflicts_with = "plugins")]
    pub server_only: bool,

    /// Plugins, configuration, dry run. Without --plugins (or a plugin
    /// directory in the configuration), the example plugins this binary
    /// carries run from a directory of their own, where more can be dropped.
    #[command(flatten)]
    pub host: HostArgs,
}

/// How the plugin commands reach a registry.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to the reference's registry (a local test registry);
    /// HTTPS otherwise.
    #[arg(long, env = "INFORMANT_PLAIN_HTTP")]
    pub plain_http: bool,

    /// A docker config file with the registry's credentials. Default:
    /// $DOCKER_CONFIG/config.json, then ~/.docker/config.json, if present.
    #[arg(long, value_name = "FILE", env = "INFORMANT_DOCKER_CONFIG")]
    pub docker_config: Option<PathBuf>,
}

/// Arguments of `informant push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The plugin: a WebAssembly component (`.wasm`).
    #[arg(value_name = "PLUGIN.wasm")]
    pub plugin: PathBuf,

    /// Where to: `registry/repository:tag`.
    #[arg(value_name = "REF")]
    pub reference: String,

    /// The registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `informant pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// What: `registry/repository:tag` or `registry/repository@sha256:...`.
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Where to write the component. Default: the repository's last part,
    /// with `.wasm`, in the current directory.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `informant sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// What to sign: `registry/repository:tag` (the digest it resolves to is
    /// signed) or `@sha256:...`.
    #[arg(value_name = "REF")]
    pub reference: String,

    /// The private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,

    /// The registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `informant keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Writes NAME.key and NAME.pub; refuses to overwrite either.
    #[arg(value_name = "NAME", default_value = "cosign")]
    pub name: PathBuf,
}

/// Arguments of `informant check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugin: a WebAssembly component (`.wasm`), or an OCI reference
    /// (`registry/repository:tag` or `@sha256:...`), which is resolved,
    /// verified as the configuration's signature policy requires, pulled
    /// and checked.
    #[arg(value_name = "PLUGIN.wasm|REF")]
    pub plugin: PathBuf,

    /// For a reference: how to reach its registry.
    #[command(flatten)]
    pub registry: RegistryArgs,

    /// The host's configuration file, to check the plugin against the
    /// limits it sets, as `informant run --config` would load it.
    #[arg(long, value_name = "FILE", env = "INFORMANT_CONFIG")]
    pub config: Option<PathBuf>,

    /// The plugin's settings: JSON text, or @FILE for a JSON, YAML or TOML
    /// file. Default: the settings file beside the plugin, as `run` reads it.
    #[arg(long, value_name = "JSON|@FILE")]
    pub settings: Option<String>,

    /// Where compiled plugins are kept between runs.
    #[command(flatten)]
    pub compile_cache: CompileCacheArgs,
}

/// Arguments of `informant replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The plugin: a WebAssembly component (`.wasm`).
    #[arg(value_name = "PLUGIN.wasm")]
    pub plugin: PathBuf,

    /// The events, one JSON watch event per line (`-` for stdin).
    #[arg(
        long,
        value_name = "EVENTS.jsonl",
        required_unless_present = "reviews",
        conflicts_with = "reviews"
    )]
    pub events: Option<PathBuf>,

    /// AdmissionReviews for the plugin's webhook instead (`-` for stdin):
    /// one per line, or pretty-printed one after the other, as the API
    /// server posts them. Each answer the host would send is printed as a
    /// JSON line (its decision, status, warnings and patch).
    #[arg(long, value_name = "REVIEWS.json")]
    pub reviews: Option<PathBuf>,

    /// Objects to put in the cache first: YAML (multi-document) or JSON,
    /// single objects or lists. Repeat for several files.
    #[arg(long = "objects", value_name = "FILE")]
    pub objects: Vec<PathBuf>,

    /// The plugin's settings: JSON text, or @FILE for a JSON or YAML file.
    #[arg(long, value_name = "JSON|@FILE")]
    pub settings: Option<String>,

    /// CPU deadline per call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub deadline_ms: u64,

    /// Memory cap per instance, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub memory_mib: usize,

    /// Where compiled plugins are kept between runs.
    #[command(flatten)]
    pub compile_cache: CompileCacheArgs,
}

/// The on-disk compile cache, for `run`, `dev`, `check` and `replay`.
#[derive(Debug, Args)]
pub struct CompileCacheArgs {
    /// Keep compiled plugins in this directory (wasmtime's cache, keyed by
    /// the bytes and the engine), so that a later run skips compiling: large
    /// Python and JavaScript plugins take seconds to compile. For `run` and
    /// `dev`, the configuration file's `compileCacheDir` is the default.
    #[arg(
        long = "compile-cache",
        value_name = "DIR",
        env = "INFORMANT_COMPILE_CACHE"
    )]
    pub dir: Option<PathBuf>,
}
