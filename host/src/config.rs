//! The host's configuration, resolved once: the flags (each `None` where
//! the command line says nothing) over the file (YAML or JSON, camelCase
//! keys, unknown keys rejected) over the defaults, validated into the
//! settings the runtime and the commands use.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    action::{Allowlist, QueueConfig, Rule},
    dispatch,
    plugin::Limits,
    shard,
    state::{self, Quota, Tier},
};

/// Why a configuration file is not valid.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with the key and line.
        reason: String,
    },
    /// A value is out of range.
    #[error("{path}: {key}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The key, dotted.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct File {
    /// Where plugins are loaded from.
    #[serde(default)]
    pub plugin_dir: Option<std::path::PathBuf>,
    /// A directory the host owns for compiled plugins, so a restart does
    /// not compile again (never the plugin directory).
    #[serde(default)]
    pub compile_cache_dir: Option<std::path::PathBuf>,
    /// Limits for every plugin, and the most a manifest may ask for.
    #[serde(default)]
    pub limits: LimitsFile,
    /// What each plugin may write, narrowing what it declares.
    #[serde(default)]
    pub allow: HashMap<String, Vec<Rule>>,
    /// The action queue.
    #[serde(default)]
    pub actions: ActionsFile,
    /// Event dispatch.
    #[serde(default)]
    pub dispatch: DispatchFile,
    /// Leader election.
    #[serde(default)]
    pub leader_election: LeaderFile,
    /// Periodic resync.
    #[serde(default)]
    pub resync: ResyncFile,
    /// Where the host listens.
    #[serde(default)]
    pub http: HttpFile,
    /// Registries: insecure ones, limits, credentials, signatures.
    #[serde(default)]
    pub oci: crate::oci::OciFile,
    /// Plugin objects.
    #[serde(default)]
    pub plugin_objects: crate::catalog::File,
    /// Admission webhooks: serving, registration, the operator's changes.
    #[serde(default)]
    pub admission: AdmissionFile,
    /// Plugins' stores.
    #[serde(default)]
    pub state: StateFile,
    /// Share the work between replicas on bucket Leases (sharded mode).
    #[serde(default)]
    pub sharding: Option<ShardingFile>,
}

/// `admission:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionFile {
    /// Serve admission webhooks over HTTPS here (as `--webhook-addr`);
    /// without it, admission is off (`dev` turns it on).
    pub addr: Option<SocketAddr>,
    /// A directory with `tls.crt`, `tls.key` and (optionally) `ca.crt`, as
    /// a cert-manager Secret mounts them (as `--webhook-cert-dir`).
    pub cert_dir: Option<PathBuf>,
    /// Generate a CA and certificate at start (as `--webhook-generate-cert`;
    /// `dev` and tests, one replica only).
    pub generate_certificate: Option<bool>,
    /// The Service the API server calls in a cluster.
    pub service: Option<ServiceFile>,
    /// The base URL the API server calls instead (as `--webhook-url`).
    pub url: Option<String>,
    /// The name of the two webhook configurations (`informant`).
    pub configuration_name: Option<String>,
    /// Webhooks are named `<plugin>.<group>` (`informant.dev`).
    pub group: Option<String>,
    /// Namespaces no webhook is called for, beyond the host's own and
    /// `kube-system`.
    #[serde(default)]
    pub exclude_namespaces: Vec<String>,
    /// Register the configurations (true); false when they are managed
    /// elsewhere.
    pub register: Option<bool>,
    /// A plugin's webhook, narrowed or overridden.
    #[serde(default)]
    pub plugins: HashMap<String, WebhookFile>,
}

/// `admission.service:`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceFile {
    /// The Service's name.
    pub name: String,
    /// Its namespace: the host's own by default.
    pub namespace: Option<String>,
    /// Its port (443).
    pub port: Option<u16>,
}

/// `admission.plugins.NAME:` what the operator changes about a plugin's
/// webhook. Fields override the plugin's; selectors narrow it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookFile {
    /// False: not registered, not served.
    pub enabled: Option<bool>,
    /// Replaces the plugin's rules.
    pub rules: Option<Vec<crate::plugin::webhook::RuleSpec>>,
    /// Required as well as the plugin's (`matchLabels`, `matchExpressions`).
    pub namespace_selector: Option<serde_json::Value>,
    /// Required as well as the plugin's.
    pub object_selector: Option<serde_json::Value>,
    /// Replaces the plugin's CEL match conditions.
    pub match_conditions: Option<Vec<crate::plugin::webhook::MatchCondition>>,
    /// `Fail` or `Ignore`.
    pub failure_policy: Option<crate::plugin::webhook::FailurePolicy>,
    /// 1 to 30.
    pub timeout_seconds: Option<u32>,
}

/// `state:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateFile {
    /// Where the durable tier's objects live (default: the host's namespace).
    pub namespace: Option<String>,
    /// The most any plugin gets: `memory` keeps every store in memory.
    pub max_tier: Option<Tier>,
    /// Every plugin's default quotas.
    #[serde(default)]
    pub quota: QuotaFile,
    /// The most a manifest may ask for.
    #[serde(default)]
    pub max: QuotaFile,
    /// One plugin's tier cap and quotas, by name.
    #[serde(default)]
    pub plugins: HashMap<String, PluginStateFile>,
}

/// `state.quota:` and `state.max:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaFile {
    /// The most keys.
    pub max_keys: Option<u64>,
    /// The largest value, in bytes.
    pub max_value_bytes: Option<u64>,
    /// The most bytes of keys and values.
    pub max_total_bytes: Option<u64>,
}

/// `state.plugins.NAME:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginStateFile {
    /// The most this plugin gets.
    pub max_tier: Option<Tier>,
    /// Its quotas (its defaults; they raise its ceiling).
    #[serde(flatten)]
    pub quota: QuotaFile,
}

/// `sharding:`. Present, the replicas share the work; `leaderElection`'s
/// Lease name, namespace and timing apply to the bucket Leases too.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardingFile {
    /// How many buckets the objects fall into (32 by default, at most 1024).
    pub buckets: Option<u16>,
    /// What a plugin's objects are bucketed by, by plugin name: `object`
    /// (namespace and name, the default), `namespace` or `owner` (the
    /// controller owner), so that related objects stay on one replica.
    #[serde(default)]
    pub keys: HashMap<String, shard::ShardKey>,
}

/// `resync:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResyncFile {
    /// Replay the cache to subscriptions that ask for no period of their own
    /// this often (none by default).
    pub default_seconds: Option<u64>,
}

/// `http:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpFile {
    /// Health, readiness and metrics (as `--http-addr`).
    pub addr: Option<std::net::SocketAddr>,
    /// The admin API (as `--admin-addr`).
    pub admin_addr: Option<std::net::SocketAddr>,
}

/// `leaderElection:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderFile {
    /// Elect a leader (as `--leader-elect`).
    pub enabled: Option<bool>,
    /// The Lease's name.
    pub lease_name: Option<String>,
    /// The Lease's namespace.
    pub lease_namespace: Option<String>,
    /// How long a Lease holds without renewal.
    pub lease_duration_seconds: Option<u64>,
    /// How long a leader tries to renew before giving up.
    pub renew_deadline_seconds: Option<u64>,
    /// How often to try.
    pub retry_period_seconds: Option<u64>,
}

/// `limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsFile {
    /// CPU deadline per call.
    pub deadline_ms: Option<u64>,
    /// Memory cap per instance.
    pub memory_mib: Option<usize>,
    /// The most a plugin's manifest may request.
    #[serde(default)]
    pub max: MaxLimitsFile,
    /// Limits for one plugin, by name: its defaults and its ceiling.
    #[serde(default)]
    pub plugins: HashMap<String, MaxLimitsFile>,
}

/// `limits.max:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaxLimitsFile {
    /// Longest deadline a manifest may ask for.
    pub deadline_ms: Option<u64>,
    /// Largest memory a manifest may ask for.
    pub memory_mib: Option<usize>,
}

/// `actions:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionsFile {
    /// Sustained requests per second.
    pub qps: Option<u32>,
    /// Burst above `qps`.
    pub burst: Option<u32>,
    /// Retries of a failing action.
    pub max_retries: Option<u32>,
    /// Concurrent executions.
    pub workers: Option<usize>,
    /// How long an action the API server refuses (403) is retried before it
    /// becomes a dead letter.
    pub forbidden_retry_seconds: Option<u64>,
    /// The longest delay between retries of a refused action: how soon a
    /// granted RBAC rule is noticed.
    pub forbidden_backoff_seconds: Option<u64>,
}

/// `dispatch:`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DispatchFile {
    /// Calls of one plugin at once.
    pub concurrency: Option<usize>,
    /// Pending events per plugin.
    pub queue_capacity: Option<usize>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where plugins are loaded from.
    pub plugin_dir: Option<std::path::PathBuf>,
    /// Where compiled plugins are kept across restarts.
    pub compile_cache_dir: Option<std::path::PathBuf>,
    /// Limits for every plugin.
    pub limits: Limits,
    /// The most a manifest may request.
    pub ceiling: Limits,
    /// The operator's allowlist.
    pub allowlist: Allowlist,
    /// The action queue.
    pub actions: QueueConfig,
    /// Dispatch.
    pub dispatch: dispatch::Config,
    /// Leader election from the file; flags enable it too.
    pub leader: Leader,
    /// Limits and ceilings for named plugins.
    pub plugin_limits: HashMap<String, (Limits, Limits)>,
    /// Health, readiness and metrics.
    pub http_addr: SocketAddr,
    /// The admin API.
    pub admin_addr: SocketAddr,
    /// Send every action with `dryRun=All`.
    pub dry_run: bool,
    /// How long running calls and pending actions get on shutdown.
    pub shutdown_grace: Duration,
    /// Registries.
    pub oci: crate::oci::Config,
    /// Plugin objects.
    pub plugin_objects: crate::catalog::Config,
    /// Admission webhooks, when served.
    pub admission: Option<crate::admission::Settings>,
    /// Plugins' stores: tiers and quotas.
    pub state: state::Config,
    /// Sharded mode, if configured.
    pub sharding: Option<shard::Config>,
}

/// How long running calls and pending actions get on shutdown unless told
/// otherwise: within Kubernetes' default 30 s termination grace period.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Where health, readiness and metrics are served unless told otherwise.
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);
/// Where the admin API is served unless told otherwise: localhost only.
pub const DEFAULT_ADMIN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);
/// The Lease's name unless told otherwise.
pub const DEFAULT_LEASE_NAME: &str = "informant";

/// What the command line says; `None` (or `false`) where it says nothing,
/// so that the file's value, then the default, applies.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--plugins`.
    pub plugin_dir: Option<PathBuf>,
    /// `--compile-cache`.
    pub compile_cache_dir: Option<PathBuf>,
    /// `--http-addr`.
    pub http_addr: Option<SocketAddr>,
    /// `--admin-addr`.
    pub admin_addr: Option<SocketAddr>,
    /// `--leader-elect` (a flag turns it on; only the file can say off).
    pub leader_elect: bool,
    /// `--lease-name`.
    pub lease_name: Option<String>,
    /// `--lease-namespace`.
    pub lease_namespace: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--shutdown-grace`.
    pub shutdown_grace: Option<Duration>,
    /// `--webhook-addr`.
    pub webhook_addr: Option<SocketAddr>,
    /// `--webhook-cert-dir`.
    pub webhook_cert_dir: Option<PathBuf>,
    /// `--webhook-generate-cert`.
    pub webhook_generate_cert: bool,
    /// `--webhook-url`.
    pub webhook_url: Option<String>,
}

impl Config {
    /// The limits and the ceiling for plugin `name`.
    pub fn limits_for(&self, name: &str) -> (Limits, Limits) {
        self.plugin_limits
            .get(name)
            .cloned()
            .unwrap_or_else(|| (self.limits.clone(), self.ceiling.clone()))
    }
}

/// Leader election settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// Whether the file enables it.
    pub enabled: bool,
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace; none for the Pod's own.
    pub lease_namespace: Option<String>,
    /// Lease duration.
    pub lease_duration: Duration,
    /// Renew deadline.
    pub renew_deadline: Duration,
    /// Retry period.
    pub retry_period: Duration,
}

impl Default for Leader {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_name: DEFAULT_LEASE_NAME.into(),
            lease_namespace: None,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        // Parsing an empty file cannot fail validation.
        Self::from_file(File::default(), "<defaults>").unwrap_or_else(|_| Self {
            plugin_dir: None,
            compile_cache_dir: None,
            limits: Limits::default(),
            ceiling: Limits::default(),
            allowlist: Allowlist::default(),
            actions: QueueConfig::default(),
            dispatch: dispatch::Config::default(),
            leader: Leader::default(),
            plugin_limits: HashMap::new(),
            http_addr: DEFAULT_HTTP_ADDR,
            admin_addr: DEFAULT_ADMIN_ADDR,
            dry_run: false,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            oci: crate::oci::Config::default(),
            plugin_objects: crate::catalog::Config::default(),
            admission: None,
            state: state::Config::default(),
            sharding: None,
        })
    }
}

impl Config {
    /// The configuration the host runs with: `overrides` over the file (if
    /// any) over the defaults, validated as a whole.
    ///
    /// # Errors
    /// [`Error`] naming the file or flag, the key and the problem.
    pub fn resolve(file: Option<&Path>, overrides: Overrides) -> Result<Self, Error> {
        let mut config = match file {
            Some(path) => Self::load(path)?,
            None => Self::default(),
        };
        let shown = file.map_or_else(|| "<defaults>".to_string(), |p| p.display().to_string());
        // Named as the user wrote it: the flag, or the file's key.
        let invalid = |flag: Option<&str>, key: &str, reason: String| match flag {
            Some(flag) => Error::Invalid {
                path: "command line".into(),
                key: flag.into(),
                reason,
            },
            None => Error::Invalid {
                path: shown.clone(),
                key: key.into(),
                reason,
            },
        };
        let Overrides {
            plugin_dir,
            compile_cache_dir,
            http_addr,
            admin_addr,
            leader_elect,
            lease_name,
            lease_namespace,
            dry_run,
            shutdown_grace,
            webhook_addr,
            webhook_cert_dir,
            webhook_generate_cert,
            webhook_url,
        } = overrides;
        let flagged = webhook_addr.is_some()
            || webhook_cert_dir.is_some()
            || webhook_generate_cert
            || webhook_url.is_some();
        if flagged {
            let settings = config.admission.get_or_insert_with(|| {
                let mut s = crate::admission::Settings::generated(DEFAULT_WEBHOOK_ADDR);
                s.certificates = crate::admission::CertSource::Unset;
                s
            });
            if let Some(addr) = webhook_addr {
                settings.addr = addr;
            }
            if let Some(dir) = webhook_cert_dir {
                settings.certificates = crate::admission::CertSource::in_dir(&dir);
            } else if webhook_generate_cert {
                settings.certificates = crate::admission::CertSource::Generate;
            }
            if let Some(url) = webhook_url {
                settings.endpoint = Some(crate::admission::Endpoint::Url(Some(
                    check_url(&url).map_err(|reason| invalid(Some("--webhook-url"), "", reason))?,
                )));
            }
        }
        if let Some(a) = &config.admission
            && a.certificates == crate::admission::CertSource::Unset
        {
            return Err(invalid(
                None,
                "admission.certDir",
                "the webhook server needs a certificate: --webhook-cert-dir DIR (tls.crt and tls.key, as a cert-manager Secret mounts them), or --webhook-generate-cert for dev and tests (one replica)".into(),
            ));
        }
        config.dry_run |= dry_run;
        config.shutdown_grace = shutdown_grace.unwrap_or(config.shutdown_grace);
        let plugins_flag = plugin_dir.is_some().then_some("--plugins");
        let cache_flag = compile_cache_dir.is_some().then_some("--compile-cache");
        if plugin_dir.is_some() {
            config.plugin_dir = plugin_dir;
        }
        if compile_cache_dir.is_some() {
            config.compile_cache_dir = compile_cache_dir;
        }
        config.http_addr = http_addr.unwrap_or(config.http_addr);
        config.admin_addr = admin_addr.unwrap_or(config.admin_addr);
        config.leader.enabled |= leader_elect;
        if let Some(name) = lease_name {
            if config.sharding.is_some()
                && let Err(reason) = informant_k8s::selector::validate_value(&name)
            {
                return Err(invalid(
                    Some("--lease-name"),
                    "leaderElection.leaseName",
                    format!(
                        "names the bucket Leases in sharded mode, so it must be a valid label value: {reason}"
                    ),
                ));
            }
            config.leader.lease_name = name;
        }
        if lease_namespace.is_some() {
            config.leader.lease_namespace = lease_namespace;
        }
        if let Some(dir) = config.plugin_dir.as_ref().filter(|d| !d.is_dir()) {
            return Err(invalid(
                plugins_flag,
                "pluginDir",
                format!("{}: not a directory", dir.display()),
            ));
        }
        if config.compile_cache_dir.is_some() && config.compile_cache_dir == config.plugin_dir {
            return Err(invalid(
                cache_flag.or(plugins_flag),
                "compileCacheDir",
                "must not be the plugin directory: nothing precompiled is ever loaded from there"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// Read and validate a file.
    ///
    /// # Errors
    /// [`Error`] naming the file, the key and the problem.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parse and validate the text of a file named `path`.
    ///
    /// # Errors
    /// [`Error`] naming the key and the problem.
    pub fn parse(text: &str, path: &str) -> Result<Self, Error> {
        let file: File = serde_norway::from_str(text).map_err(|e| Error::Parse {
            path: path.into(),
            reason: e.to_string(),
        })?;
        Self::from_file(file, path)
    }

    fn from_file(file: File, path: &str) -> Result<Self, Error> {
        let invalid = |key: &str, reason: &str| Error::Invalid {
            path: path.into(),
            key: key.into(),
            reason: reason.into(),
        };
        let positive = |key: &str, v: Option<u64>| match v {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            _ => Ok(()),
        };
        let as_u64 = |v: Option<usize>| v.map(|v| v as u64);
        positive("limits.deadlineMs", file.limits.deadline_ms)?;
        positive("limits.memoryMib", as_u64(file.limits.memory_mib))?;
        positive("limits.max.deadlineMs", file.limits.max.deadline_ms)?;
        positive("limits.max.memoryMib", as_u64(file.limits.max.memory_mib))?;
        positive("actions.qps", file.actions.qps.map(u64::from))?;
        positive("actions.burst", file.actions.burst.map(u64::from))?;
        positive("actions.workers", as_u64(file.actions.workers))?;
        positive(
            "actions.forbiddenRetrySeconds",
            file.actions.forbidden_retry_seconds,
        )?;
        positive(
            "actions.forbiddenBackoffSeconds",
            file.actions.forbidden_backoff_seconds,
        )?;
        positive("dispatch.concurrency", as_u64(file.dispatch.concurrency))?;
        positive(
            "dispatch.queueCapacity",
            as_u64(file.dispatch.queue_capacity),
        )?;
        let le = &file.leader_election;
        positive(
            "leaderElection.leaseDurationSeconds",
            le.lease_duration_seconds,
        )?;
        positive(
            "leaderElection.renewDeadlineSeconds",
            le.renew_deadline_seconds,
        )?;
        positive("leaderElection.retryPeriodSeconds", le.retry_period_seconds)?;
        let mut leader = Leader {
            enabled: le.enabled.unwrap_or(false),
            lease_namespace: le.lease_namespace.clone(),
            ..Leader::default()
        };
        if let Some(name) = &le.lease_name {
            leader.lease_name.clone_from(name);
        }
        if let Some(s) = le.lease_duration_seconds {
            leader.lease_duration = Duration::from_secs(s);
        }
        if let Some(s) = le.renew_deadline_seconds {
            leader.renew_deadline = Duration::from_secs(s);
        }
        if let Some(s) = le.retry_period_seconds {
            leader.retry_period = Duration::from_secs(s);
        }
        if leader.renew_deadline >= leader.lease_duration {
            return Err(invalid(
                "leaderElection.renewDeadlineSeconds",
                "must be shorter than leaseDurationSeconds",
            ));
        }
        if leader.retry_period >= leader.renew_deadline {
            return Err(invalid(
                "leaderElection.retryPeriodSeconds",
                "must be shorter than renewDeadlineSeconds",
            ));
        }
        let sharding = match &file.sharding {
            None => None,
            Some(f) => {
                let buckets = f.buckets.unwrap_or(shard::DEFAULT_BUCKETS);
                if buckets == 0 || buckets > shard::MAX_BUCKETS {
                    return Err(invalid(
                        "sharding.buckets",
                        &format!("must be between 1 and {}", shard::MAX_BUCKETS),
                    ));
                }
                // The set's Leases are selected by a label with this value.
                if let Err(reason) = informant_k8s::selector::validate_value(&leader.lease_name) {
                    return Err(invalid(
                        "leaderElection.leaseName",
                        &format!(
                            "names the bucket Leases in sharded mode, so it must be a valid label value: {reason}"
                        ),
                    ));
                }
                Some(shard::Config {
                    buckets,
                    keys: f.keys.clone(),
                })
            }
        };

        let mut limits = Limits::default();
        if let Some(ms) = file.limits.deadline_ms {
            limits = limits.deadline(Duration::from_millis(ms));
        }
        if let Some(mib) = file.limits.memory_mib {
            limits = limits.memory_bytes(mib << 20);
        }
        let mut ceiling = limits.clone();
        if let Some(ms) = file.limits.max.deadline_ms {
            ceiling = ceiling.deadline(Duration::from_millis(ms));
        }
        if let Some(mib) = file.limits.max.memory_mib {
            ceiling = ceiling.memory_bytes(mib << 20);
        }
        if ceiling.deadline < limits.deadline {
            return Err(invalid(
                "limits.max.deadlineMs",
                "is below limits.deadlineMs",
            ));
        }
        if ceiling.memory_bytes < limits.memory_bytes {
            return Err(invalid("limits.max.memoryMib", "is below limits.memoryMib"));
        }
        let mut plugin_limits = HashMap::new();
        for (plugin, l) in &file.limits.plugins {
            let key = |k: &str| format!("limits.plugins.{plugin}.{k}");
            positive(&key("deadlineMs"), l.deadline_ms)?;
            positive(&key("memoryMib"), as_u64(l.memory_mib))?;
            let mut own = limits.clone();
            if let Some(ms) = l.deadline_ms {
                own = own.deadline(Duration::from_millis(ms));
            }
            if let Some(mib) = l.memory_mib {
                own = own.memory_bytes(mib << 20);
            }
            // What the operator grants one plugin raises its ceiling too.
            let own_ceiling = ceiling
                .clone()
                .deadline(ceiling.deadline.max(own.deadline))
                .memory_bytes(ceiling.memory_bytes.max(own.memory_bytes));
            plugin_limits.insert(plugin.clone(), (own, own_ceiling));
        }
        for (plugin, rules) in &file.allow {
            for (i, rule) in rules.iter().enumerate() {
                if rule.verbs.is_empty() && !rule.read {
                    return Err(invalid(
                        &format!("allow.{plugin}[{i}].verbs"),
                        "lists no verb; remove the rule, or use `allow: {plugin}: []` to allow nothing",
                    ));
                }
            }
        }

        let mut actions = QueueConfig::default();
        if file.actions.qps.is_some() || file.actions.burst.is_some() {
            let qps = file.actions.qps.unwrap_or(actions.qps.get());
            let burst = file.actions.burst.unwrap_or(actions.burst.get());
            actions = actions.rate(qps, burst);
        }
        if let Some(n) = file.actions.max_retries {
            actions = actions.max_retries(n);
        }
        if let Some(n) = file.actions.workers {
            actions = actions.workers(n);
        }
        if file.actions.forbidden_retry_seconds.is_some()
            || file.actions.forbidden_backoff_seconds.is_some()
        {
            let retry = actions.retry;
            actions = actions.forbidden(
                file.actions
                    .forbidden_backoff_seconds
                    .map_or(retry.forbidden_backoff, Duration::from_secs),
                file.actions
                    .forbidden_retry_seconds
                    .map_or(retry.forbidden_retry_for, Duration::from_secs),
            );
        }
        let mut dispatch = dispatch::Config::default();
        if let Some(n) = file.dispatch.concurrency {
            dispatch = dispatch.concurrency(n);
        }
        if let Some(n) = file.dispatch.queue_capacity {
            dispatch = dispatch.queue_capacity(n);
        }
        positive("resync.defaultSeconds", file.resync.default_seconds)?;
        let state = state_config(&file.state, &invalid)?;
        dispatch.default_resync = file.resync.default_seconds.map(Duration::from_secs);
        if let (Some(cache), Some(plugins)) = (&file.compile_cache_dir, &file.plugin_dir)
            && cache == plugins
        {
            return Err(invalid(
                "compileCacheDir",
                "must not be the plugin directory: nothing precompiled is ever loaded from there",
            ));
        }
        let oci = file.oci.resolve().map_err(|(key, reason)| Error::Invalid {
            path: path.into(),
            key,
            reason,
        })?;
        let plugin_objects =
            file.plugin_objects
                .resolve()
                .map_err(|(key, reason)| Error::Invalid {
                    path: path.into(),
                    key,
                    reason,
                })?;
        Ok(Self {
            oci,
            plugin_objects,
            plugin_dir: file.plugin_dir,
            compile_cache_dir: file.compile_cache_dir,
            limits,
            ceiling,
            allowlist: Allowlist::new(file.allow),
            actions,
            dispatch,
            leader,
            plugin_limits,
            http_addr: file.http.addr.unwrap_or(DEFAULT_HTTP_ADDR),
            admin_addr: file.http.admin_addr.unwrap_or(DEFAULT_ADMIN_ADDR),
            dry_run: false,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            admission: admission(&file.admission, path)?,
            state,
            sharding,
        })
    }
}

/// Where the webhook server listens when only a certificate or URL is given.
pub const DEFAULT_WEBHOOK_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9443);

/// An https URL without a trailing slash, query or fragment.
fn check_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url:?}: the API server calls webhooks over https:// only"))?;
    if rest.is_empty() || rest.contains(['?', '#', '@']) {
        return Err(format!(
            "{url:?}: a base URL like https://host:port (no query, fragment or user)"
        ));
    }
    Ok(trimmed.to_string())
}

/// The `admission:` section, validated; none without an address.
fn admission(
    file: &AdmissionFile,
    path: &str,
) -> Result<Option<crate::admission::Settings>, Error> {
    use crate::admission::{CertSource, Endpoint, Override, Settings};
    use informant_k8s::selector::{LabelSelector, is_dns1123_label, is_dns1123_subdomain};
    let invalid = |key: String, reason: String| Error::Invalid {
        path: path.into(),
        key,
        reason,
    };
    let Some(addr) = file.addr else {
        let stray = file.cert_dir.is_some()
            || file.service.is_some()
            || file.url.is_some()
            || !file.plugins.is_empty();
        if stray {
            return Err(invalid(
                "admission.addr".into(),
                "admission is off without an address to serve webhooks on (or --webhook-addr); the rest of admission: means nothing without it".into(),
            ));
        }
        return Ok(None);
    };
    let mut settings = Settings::generated(addr);
    settings.certificates = match (&file.cert_dir, file.generate_certificate) {
        (Some(_), Some(true)) => {
            return Err(invalid(
                "admission.generateCertificate".into(),
                "a certificate directory and a generated certificate exclude each other".into(),
            ));
        }
        (Some(dir), _) => CertSource::in_dir(dir),
        (None, Some(true)) => CertSource::Generate,
        (None, _) => CertSource::Unset,
    };
    settings.endpoint = match (&file.service, &file.url) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "admission.url".into(),
                "a Service and a URL exclude each other: the API server calls one".into(),
            ));
        }
        (Some(s), None) => {
            if !is_dns1123_label(&s.name) {
                return Err(invalid(
                    "admission.service.name".into(),
                    format!("{:?} is not a Service name", s.name),
                ));
            }
            Some(Endpoint::Service {
                name: s.name.clone(),
                namespace: s.namespace.clone(),
                port: s.port.unwrap_or(443),
            })
        }
        (None, Some(url)) => Some(Endpoint::Url(Some(
            check_url(url).map_err(|r| invalid("admission.url".into(), r))?,
        ))),
        (None, None) => None,
    };
    if let Some(name) = &file.configuration_name {
        if !is_dns1123_subdomain(name) {
            return Err(invalid(
                "admission.configurationName".into(),
                format!("{name:?} is not a valid object name"),
            ));
        }
        settings.configuration_name.clone_from(name);
    }
    if let Some(group) = &file.group {
        if !is_dns1123_subdomain(group) || !group.contains('.') {
            return Err(invalid(
                "admission.group".into(),
                format!(
                    "{group:?}: webhook names are <plugin>.<group> and need three parts, so a domain like example.com"
                ),
            ));
        }
        settings.group.clone_from(group);
    }
    for (i, ns) in file.exclude_namespaces.iter().enumerate() {
        if !is_dns1123_label(ns) {
            return Err(invalid(
                format!("admission.excludeNamespaces[{i}]"),
                format!("{ns:?} is not a namespace name"),
            ));
        }
    }
    settings
        .exclude_namespaces
        .clone_from(&file.exclude_namespaces);
    settings.register = file.register.unwrap_or(true);
    for (plugin, w) in &file.plugins {
        let key = |k: &str| format!("admission.plugins.{plugin}.{k}");
        let selector = |k: &str, v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| {
                    LabelSelector::from_structured(v).map_err(|e| invalid(key(k), e.to_string()))
                })
                .transpose()
        };
        let rules = match &w.rules {
            Some(rules) if rules.is_empty() => {
                return Err(invalid(
                    key("rules"),
                    "an empty list never matches; use enabled: false to turn the webhook off"
                        .into(),
                ));
            }
            Some(rules) => Some(
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| r.to_rule(&key(&format!("rules[{i}]"))))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(e.field, e.reason))?,
            ),
            None => None,
        };
        let match_conditions = w
            .match_conditions
            .clone()
            .map(|c| crate::plugin::webhook::match_conditions(&key("matchConditions"), c))
            .transpose()
            .map_err(|e| invalid(e.field, e.reason))?;
        if let Some(t) = w.timeout_seconds
            && !(1..=crate::plugin::webhook::MAX_TIMEOUT_SECONDS).contains(&t)
        {
            return Err(invalid(
                key("timeoutSeconds"),
                format!("{t} is not between 1 and 30 seconds"),
            ));
        }
        settings.overrides.insert(
            plugin.clone(),
            Override {
                enabled: w.enabled,
                rules,
                namespace_selector: selector("namespaceSelector", &w.namespace_selector)?,
                object_selector: selector("objectSelector", &w.object_selector)?,
                match_conditions,
                failure_policy: w.failure_policy,
                timeout_seconds: w.timeout_seconds,
            },
        );
    }
    Ok(Some(settings))
}

/// `state:`, validated: every quota above zero, the ceiling not below the
/// defaults, a namespace that can be one.
fn state_config(
    file: &StateFile,
    invalid: &dyn Fn(&str, &str) -> Error,
) -> Result<state::Config, Error> {
    let quota = |key: &str, q: &QuotaFile, base: Quota| -> Result<Quota, Error> {
        for (field, v) in [
            ("maxKeys", q.max_keys),
            ("maxValueBytes", q.max_value_bytes),
            ("maxTotalBytes", q.max_total_bytes),
        ] {
            if v == Some(0) {
                return Err(invalid(&format!("{key}.{field}"), "must be greater than 0"));
            }
        }
        Ok(Quota {
            max_keys: q.max_keys.unwrap_or(base.max_keys),
            max_value_bytes: q.max_value_bytes.unwrap_or(base.max_value_bytes),
            max_total_bytes: q.max_total_bytes.unwrap_or(base.max_total_bytes),
        })
    };
    let defaults = quota("state.quota", &file.quota, Quota::default())?;
    // A ceiling not given is at least the defaults.
    let ceiling = quota("state.max", &file.max, Quota::ceiling().max(defaults))?;
    for (field, below) in [
        ("maxKeys", ceiling.max_keys < defaults.max_keys),
        (
            "maxValueBytes",
            ceiling.max_value_bytes < defaults.max_value_bytes,
        ),
        (
            "maxTotalBytes",
            ceiling.max_total_bytes < defaults.max_total_bytes,
        ),
    ] {
        if below {
            return Err(invalid(
                &format!("state.max.{field}"),
                &format!("is below state.quota.{field}"),
            ));
        }
    }
    if let Some(ns) = &file.namespace
        && !informant_k8s::selector::is_dns1123_label(ns)
    {
        return Err(invalid("state.namespace", "is not a valid namespace name"));
    }
    let mut plugins = HashMap::new();
    for (name, p) in &file.plugins {
        let own = quota(&format!("state.plugins.{name}"), &p.quota, defaults)?;
        plugins.insert(
            name.clone(),
            state::PluginConfig {
                max_tier: p.max_tier,
                quota: own,
                // What the operator grants one plugin raises its ceiling too.
                ceiling: ceiling.max(own),
            },
        );
    }
    Ok(state::Config {
        namespace: file.namespace.clone(),
        max_tier: file.max_tier.unwrap_or(Tier::Durable),
        quota: defaults,
        ceiling,
        plugins,
    })
}

/// The namespace this Pod runs in (POD_NAMESPACE, or the service
/// account's), or `default` outside a cluster.
pub fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_is_read() {
        let c = Config::parse(
            "pluginDir: /plugins\nlimits: {deadlineMs: 50, memoryMib: 32, max: {memoryMib: 256}}\nallow:\n  enforcer:\n  - {apiVersion: v1, kind: ConfigMap, verbs: [patch]}\nactions: {qps: 5, burst: 10, maxRetries: 2}\ndispatch: {concurrency: 1, queueCapacity: 10}\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.limits.deadline, Duration::from_millis(50));
        assert_eq!(c.ceiling.memory_bytes, 256 << 20);
        assert_eq!(c.actions.qps.get(), 5);
        assert_eq!(c.actions.retry.max_retries, 2);
        assert_eq!(c.dispatch.queue_capacity, 10);
        assert!(c.allowlist.covers("enforcer"));
    }

    #[test]
    fn one_plugin_can_get_its_own_limits() {
        let c = Config::parse(
            "limits: {memoryMib: 64, plugins: {python-auditor: {memoryMib: 256, deadlineMs: 500}}}\nresync: {defaultSeconds: 600}\nhttp: {addr: '127.0.0.1:9090'}\n",
            "c.yaml",
        )
        .unwrap();
        let (own, ceiling) = c.limits_for("python-auditor");
        assert_eq!(own.memory_bytes, 256 << 20);
        assert!(ceiling.memory_bytes >= own.memory_bytes);
        assert_eq!(c.limits_for("other").0.memory_bytes, 64 << 20);
        assert_eq!(c.dispatch.default_resync, Some(Duration::from_secs(600)));
        assert_eq!(c.http_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(c.admin_addr, DEFAULT_ADMIN_ADDR);
    }

    #[test]
    fn leader_election_timing_is_checked() {
        let c = Config::parse(
            "leaderElection: {enabled: true, leaseDurationSeconds: 30, renewDeadlineSeconds: 20}\n",
            "c.yaml",
        )
        .unwrap();
        assert!(c.leader.enabled);
        assert_eq!(c.leader.lease_duration, Duration::from_secs(30));
        let err = Config::parse(
            "leaderElection: {leaseDurationSeconds: 5, renewDeadlineSeconds: 10}\n",
            "c.yaml",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("leaderElection.renewDeadlineSeconds"),
            "{err}"
        );
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("informant.yaml");
        std::fs::write(
            &file,
            "leaderElection: {leaseName: from-file, leaseNamespace: ops}\nhttp: {addr: '127.0.0.1:9090'}\n",
        )
        .unwrap();
        let from_file = Config::resolve(Some(&file), Overrides::default()).unwrap();
        assert_eq!(from_file.leader.lease_name, "from-file");
        assert_eq!(from_file.leader.lease_namespace.as_deref(), Some("ops"));
        assert!(!from_file.leader.enabled);
        assert_eq!(from_file.http_addr, "127.0.0.1:9090".parse().unwrap());
        // An explicit flag wins, even when it spells the default.
        let flags = Overrides {
            lease_name: Some(DEFAULT_LEASE_NAME.into()),
            leader_elect: true,
            admin_addr: Some("127.0.0.1:9999".parse().unwrap()),
            ..Overrides::default()
        };
        let resolved = Config::resolve(Some(&file), flags).unwrap();
        assert_eq!(resolved.leader.lease_name, DEFAULT_LEASE_NAME);
        assert_eq!(resolved.leader.lease_namespace.as_deref(), Some("ops"));
        assert!(resolved.leader.enabled);
        assert_eq!(resolved.admin_addr, "127.0.0.1:9999".parse().unwrap());
        let defaults = Config::resolve(None, Overrides::default()).unwrap();
        assert_eq!(defaults.leader.lease_name, DEFAULT_LEASE_NAME);
        assert_eq!(defaults.http_addr, DEFAULT_HTTP_ADDR);
    }

    #[test]
    fn flags_are_validated_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let same = Overrides {
            plugin_dir: Some(dir.path().to_path_buf()),
            compile_cache_dir: Some(dir.path().to_path_buf()),
            ..Overrides::default()
        };
        let err = Config::resolve(None, same).unwrap_err().to_string();
        assert!(
            err.contains("--compile-cache: must not be the plugin directory"),
            "{err}"
        );
        let missing = Overrides {
            plugin_dir: Some(dir.path().join("nope")),
            ..Overrides::default()
        };
        let err = Config::resolve(None, missing).unwrap_err().to_string();
        assert!(
            err.contains("--plugins") && err.contains("not a directory"),
            "{err}"
        );
    }

    #[test]
    fn admission_is_configured_in_the_file_and_by_flags() {
        use crate::admission::{CertSource, Endpoint};
        let c = Config::parse(
            "admission:\n  addr: '0.0.0.0:9443'\n  certDir: /certs\n  service: {name: informant-webhook, port: 8443}\n  configurationName: acme\n  group: acme.example.com\n  plugins:\n    owner-required:\n      failurePolicy: Ignore\n      timeoutSeconds: 3\n      namespaceSelector: {matchLabels: {team: a}}\n      rules: [{operations: [CREATE], apiGroups: [apps], apiVersions: [v1], resources: [deployments]}]\n",
            "c.yaml",
        )
        .unwrap();
        let a = c.admission.unwrap();
        assert_eq!(a.addr, "0.0.0.0:9443".parse().unwrap());
        assert!(
            matches!(&a.certificates, CertSource::Files { cert, .. } if cert.ends_with("tls.crt"))
        );
        assert_eq!(
            a.endpoint(),
            Endpoint::Service {
                name: "informant-webhook".into(),
                namespace: None,
                port: 8443
            }
        );
        assert_eq!(
            a.webhook_name("owner-required"),
            "owner-required.acme.example.com"
        );
        let o = &a.overrides["owner-required"];
        assert_eq!(o.timeout_seconds, Some(3));
        assert_eq!(o.namespace_selector.as_ref().unwrap().to_string(), "team=a");
        assert!(Config::parse("", "c.yaml").unwrap().admission.is_none());

        let flags = Overrides {
            webhook_addr: Some("127.0.0.1:0".parse().unwrap()),
            webhook_generate_cert: true,
            ..Overrides::default()
        };
        let a = Config::resolve(None, flags).unwrap().admission.unwrap();
        assert_eq!(a.certificates, CertSource::Generate);
        assert_eq!(a.endpoint(), Endpoint::Url(None));
        let no_cert = Overrides {
            webhook_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Overrides::default()
        };
        let err = Config::resolve(None, no_cert).unwrap_err().to_string();
        assert!(err.contains("needs a certificate"), "{err}");
    }

    #[test]
    fn bad_admission_settings_name_their_key() {
        let cases = [
            ("admission: {certDir: /certs}\n", "admission.addr"),
            (
                "admission: {addr: '0.0.0.0:1', certDir: /c, url: 'http://x'}\n",
                "admission.url",
            ),
            (
                "admission: {addr: '0.0.0.0:1', certDir: /c, group: nodots}\n",
                "admission.group",
            ),
            (
                "admission: {addr: '0.0.0.0:1', certDir: /c, plugins: {p: {timeoutSeconds: 60}}}\n",
                "admission.plugins.p.timeoutSeconds",
            ),
            (
                "admission: {addr: '0.0.0.0:1', certDir: /c, plugins: {p: {objectSelector: {matchExpressions: [{key: a, operator: Equals}]}}}}\n",
                "admission.plugins.p.objectSelector",
            ),
            (
                "admission: {addr: '0.0.0.0:1', certDir: /c, plugins: {p: {rules: [{operations: [], apiGroups: [''], apiVersions: [v1], resources: [pods]}]}}}\n",
                "admission.plugins.p.rules[0].operations",
            ),
        ];
        for (text, key) in cases {
            let err = Config::parse(text, "c.yaml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn state_tiers_and_quotas_are_read_and_checked() {
        let c = Config::parse(
            "state:\n  namespace: ops\n  maxTier: durable\n  quota: {maxKeys: 100}\n  max: {maxKeys: 1000}\n  plugins:\n    restarter: {maxTier: memory, maxKeys: 5000}\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.state.namespace.as_deref(), Some("ops"));
        assert_eq!(c.state.quota.max_keys, 100);
        assert_eq!(
            c.state.quota.max_value_bytes,
            Quota::default().max_value_bytes
        );
        let (tier, quota, ceiling) = c.state.for_plugin("restarter");
        assert_eq!(
            (tier, quota.max_keys, ceiling.max_keys),
            (Tier::Memory, 5000, 5000)
        );
        assert_eq!(c.state.for_plugin("other").0, Tier::Durable);
        let err = Config::parse(
            "state: {quota: {maxKeys: 10}, max: {maxKeys: 5}}\n",
            "c.yaml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("state.max.maxKeys"), "{err}");
        let err = Config::parse("state: {maxTier: disk}\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("disk"), "{err}");
        let err = Config::parse("state: {plugins: {p: {maxKeys: 0}}}\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("state.plugins.p.maxKeys"), "{err}");
    }

    #[test]
    fn sharding_is_off_unless_configured_and_its_values_are_checked() {
        assert_eq!(Config::parse("{}\n", "c.yaml").unwrap().sharding, None);
        let c = Config::parse(
            "sharding: {buckets: 64, keys: {restarter: owner, replicator: namespace}}\n",
            "c.yaml",
        )
        .unwrap();
        let s = c.sharding.unwrap();
        assert_eq!(s.buckets, 64);
        assert_eq!(s.keys["restarter"], shard::ShardKey::Owner);
        assert_eq!(s.keys["replicator"], shard::ShardKey::Namespace);
        let defaults = Config::parse("sharding: {}\n", "c.yaml").unwrap();
        assert_eq!(defaults.sharding.unwrap().buckets, shard::DEFAULT_BUCKETS);
        let err = Config::parse("sharding: {buckets: 0}\n", "c.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml: sharding.buckets: must be between 1 and 1024"
        );
        let err = Config::parse("sharding: {keys: {x: uid}}\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("uid"), "{err}");
        let err = Config::parse(
            &format!(
                "sharding: {{}}\nleaderElection: {{leaseName: {}}}\n",
                "a".repeat(64)
            ),
            "c.yaml",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("leaderElection.leaseName"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = Config::parse("actions: {qsp: 5}\n", "c.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("c.yaml") && msg.contains("qsp"), "{msg}");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = Config::parse("dispatch: {concurrency: 0}\n", "c.yaml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml: dispatch.concurrency: must be greater than 0"
        );
        let err =
            Config::parse("limits: {memoryMib: 64, max: {memoryMib: 32}}\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("limits.max.memoryMib"), "{err}");
    }
}
