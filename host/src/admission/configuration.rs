//! What the API server is told: each plugin's webhook as the operator's
//! configuration narrows or overrides its declaration, and the
//! `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration` that
//! carry them, one webhook per plugin named `<plugin>.<group>`, pointing at
//! the host's Service in a cluster or at a URL in `dev` and tests, with the
//! CA bundle that verifies the host's certificate.
//!
//! The host's own namespace and `kube-system` are always excluded, whatever
//! a plugin or the operator says, so a broken host can never block its own
//! restart, nor the control plane's.

use std::{collections::BTreeMap, path::PathBuf};

use k8s_openapi::{
    ByteString,
    api::admissionregistration::v1::{
        MatchCondition as K8sMatchCondition, MutatingWebhook, MutatingWebhookConfiguration,
        RuleWithOperations, ServiceReference, ValidatingWebhook, ValidatingWebhookConfiguration,
        WebhookClientConfig,
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector as K8sLabelSelector, ObjectMeta},
};

use crate::plugin::webhook::{FailurePolicy, MatchCondition, Mode, Rule, Webhook};
use informant_k8s::selector::{LabelSelector, Operator, Requirement};

/// The label every namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The default name of the two configuration objects.
pub const DEFAULT_CONFIGURATION_NAME: &str = "informant";
/// The default suffix of webhook names: `<plugin>.informant.dev`.
pub const DEFAULT_GROUP: &str = "informant.dev";
/// The field manager the host applies the configurations as.
pub const FIELD_MANAGER: &str = "informant";

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files, as a cert-manager Secret mounts them (`tls.crt`,
    /// `tls.key`, `ca.crt`), reloaded when they change.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
        /// The CA that signed it, for the caBundle; without one, the chain's
        /// last certificate.
        ca: Option<PathBuf>,
    },
    /// A CA and a serving certificate generated at start, for `dev` and
    /// tests: every replica would make its own, so one replica only.
    Generate,
    /// Not said yet: the configuration is refused unless a flag says it.
    Unset,
}

impl CertSource {
    /// `tls.crt` and `tls.key` in `dir`, and `ca.crt` if it is there: the
    /// files of a `kubernetes.io/tls` Secret as cert-manager writes it.
    pub fn in_dir(dir: &std::path::Path) -> Self {
        let ca = dir.join("ca.crt");
        Self::Files {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            ca: ca.exists().then_some(ca),
        }
    }
}

/// How the API server reaches the webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// In a cluster: the host's Service.
    Service {
        /// The Service's name.
        name: String,
        /// Its namespace; none for the host's own.
        namespace: Option<String>,
        /// Its port.
        port: u16,
    },
    /// A base URL (`https://127.0.0.1:9443`): `dev`, tests, a host outside
    /// the cluster. None: the address the server bound, on loopback.
    Url(Option<String>),
}

/// What an operator changes about one plugin's webhook
/// (`admission.plugins.NAME`). Each field given overrides the plugin's;
/// selectors narrow it instead: both the plugin's and the operator's must
/// match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Override {
    /// False: the webhook is not registered and requests for it are not
    /// served.
    pub enabled: Option<bool>,
    /// Replace the rules.
    pub rules: Option<Vec<Rule>>,
    /// Required of the namespace as well as the plugin's selector.
    pub namespace_selector: Option<LabelSelector>,
    /// Required of the object as well as the plugin's selector.
    pub object_selector: Option<LabelSelector>,
    /// Replace the match conditions.
    pub match_conditions: Option<Vec<MatchCondition>>,
    /// Replace the failure policy.
    pub failure_policy: Option<FailurePolicy>,
    /// Replace the timeout.
    pub timeout_seconds: Option<u32>,
}

/// How the host serves and registers webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the HTTPS server listens.
    pub addr: std::net::SocketAddr,
    /// The serving certificate.
    pub certificates: CertSource,
    /// How the API server reaches it; none for the default (see
    /// [`Settings::endpoint`]).
    pub endpoint: Option<Endpoint>,
    /// The name of the two configuration objects.
    pub configuration_name: String,
    /// Webhook names are `<plugin>.<group>`.
    pub group: String,
    /// Namespaces no webhook is ever called for, beyond the host's own and
    /// `kube-system`.
    pub exclude_namespaces: Vec<String>,
    /// The operator's changes, by plugin.
    pub overrides: BTreeMap<String, Override>,
    /// Register the configurations (only one replica does, see
    /// [`super::registrar`]); false serves without registering, for a host
    /// whose configurations are managed elsewhere.
    pub register: bool,
}

impl Settings {
    /// Serve on `addr` with a generated certificate, at the URL the server
    /// binds: what `dev` and the tests use.
    pub fn generated(addr: std::net::SocketAddr) -> Self {
        Self {
            addr,
            certificates: CertSource::Generate,
            endpoint: None,
            configuration_name: DEFAULT_CONFIGURATION_NAME.into(),
            group: DEFAULT_GROUP.into(),
            exclude_namespaces: Vec::new(),
            overrides: BTreeMap::new(),
            register: true,
        }
    }

    /// Name the two configuration objects.
    #[must_use]
    pub fn configuration_name(mut self, name: &str) -> Self {
        self.configuration_name = name.into();
        self
    }

    /// Change one plugin's webhook.
    #[must_use]
    pub fn override_plugin(mut self, plugin: &str, change: Override) -> Self {
        self.overrides.insert(plugin.into(), change);
        self
    }

    /// The webhook `plugin` runs with: its declaration, as the operator
    /// changes it; none if the operator disabled it.
    pub fn effective(&self, plugin: &str, declared: &Webhook) -> Option<Webhook> {
        let Some(o) = self.overrides.get(plugin) else {
            return Some(declared.clone());
        };
        if o.enabled == Some(false) {
            return None;
        }
        let mut w = declared.clone();
        if let Some(rules) = &o.rules {
            w.rules.clone_from(rules);
        }
        if let Some(s) = &o.namespace_selector {
            w.namespace_selector = w.namespace_selector.and(s);
        }
        if let Some(s) = &o.object_selector {
            w.object_selector = w.object_selector.and(s);
        }
        if let Some(c) = &o.match_conditions {
            w.match_conditions.clone_from(c);
        }
        if let Some(p) = o.failure_policy {
            w.failure_policy = p;
        }
        if let Some(t) = o.timeout_seconds {
            w.timeout_seconds = t;
        }
        Some(w)
    }

    /// How the API server reaches the webhooks: as configured, else the
    /// server's own address with a generated certificate (`dev`, tests),
    /// else the Service `informant` on port 443 in the host's namespace.
    pub fn endpoint(&self) -> Endpoint {
        match (&self.endpoint, &self.certificates) {
            (Some(e), _) => e.clone(),
            (None, CertSource::Generate) => Endpoint::Url(None),
            (None, _) => Endpoint::Service {
                name: "informant".into(),
                namespace: None,
                port: 443,
            },
        }
    }

    /// The webhook's name: `<plugin>.<group>`.
    pub fn webhook_name(&self, plugin: &str) -> String {
        format!("{plugin}.{}", self.group)
    }
}

/// The path a plugin's webhook is served at: `/validate/NAME` or
/// `/mutate/NAME`.
pub fn path(kind: Mode, plugin: &str) -> String {
    match kind {
        Mode::Validating => format!("/validate/{plugin}"),
        Mode::Mutating => format!("/mutate/{plugin}"),
    }
}

/// Everything a registration needs besides the webhooks themselves.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Names and exclusions.
    pub settings: &'a Settings,
    /// Where the API server calls: a Service (namespace resolved) or a URL.
    pub client: Client,
    /// The host's own namespace, always excluded.
    pub own_namespace: &'a str,
    /// PEM of the CA that verifies the serving certificate.
    pub ca_bundle: &'a [u8],
}

/// Where the API server calls, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// A Service in the cluster.
    Service {
        /// Name.
        name: String,
        /// Namespace.
        namespace: String,
        /// Port.
        port: u16,
    },
    /// A base URL, without a trailing slash.
    Url(String),
}

/// The two configuration objects for `webhooks` (plugin name and effective
/// webhook, in the order they should be called): none for a kind no plugin
/// has.
pub fn configurations(
    webhooks: &[(String, Webhook)],
    target: &Target<'_>,
) -> (
    Option<ValidatingWebhookConfiguration>,
    Option<MutatingWebhookConfiguration>,
) {
    let metadata = || ObjectMeta {
        name: Some(target.settings.configuration_name.clone()),
        labels: Some(
            [(
                "app.kubernetes.io/managed-by".to_string(),
                "informant".to_string(),
            )]
            .into(),
        ),
        ..ObjectMeta::default()
    };
    let mut validating = Vec::new();
    let mut mutating = Vec::new();
    for (plugin, w) in webhooks {
        let common = Common::of(plugin, w, target);
        match w.mode {
            Mode::Validating => validating.push(ValidatingWebhook {
                admission_review_versions: vec!["v1".into()],
                client_config: common.client_config,
                failure_policy: Some(w.failure_policy.as_str().into()),
                match_conditions: common.match_conditions,
                match_policy: Some("Equivalent".into()),
                name: common.name,
                namespace_selector: Some(common.namespace_selector),
                object_selector: common.object_selector,
                rules: Some(common.rules),
                side_effects: "None".into(),
                timeout_seconds: Some(common.timeout_seconds),
            }),
            Mode::Mutating => mutating.push(MutatingWebhook {
                admission_review_versions: vec!["v1".into()],
                client_config: common.client_config,
                failure_policy: Some(w.failure_policy.as_str().into()),
                match_conditions: common.match_conditions,
                match_policy: Some("Equivalent".into()),
                name: common.name,
                namespace_selector: Some(common.namespace_selector),
                object_selector: common.object_selector,
                reinvocation_policy: Some("Never".into()),
                rules: Some(common.rules),
                side_effects: "None".into(),
                timeout_seconds: Some(common.timeout_seconds),
            }),
        }
    }
    (
        (!validating.is_empty()).then(|| ValidatingWebhookConfiguration {
            metadata: metadata(),
            webhooks: Some(validating),
        }),
        (!mutating.is_empty()).then(|| MutatingWebhookConfiguration {
            metadata: metadata(),
            webhooks: Some(mutating),
        }),
    )
}

/// What validating and mutating webhooks share.
struct Common {
    name: String,
    client_config: WebhookClientConfig,
    namespace_selector: K8sLabelSelector,
    object_selector: Option<K8sLabelSelector>,
    match_conditions: Option<Vec<K8sMatchCondition>>,
    rules: Vec<RuleWithOperations>,
    timeout_seconds: i32,
}

impl Common {
    fn of(plugin: &str, w: &Webhook, target: &Target<'_>) -> Self {
        let path = path(w.mode, plugin);
        let client_config = match &target.client {
            Client::Service {
                name,
                namespace,
                port,
            } => WebhookClientConfig {
                ca_bundle: Some(ByteString(target.ca_bundle.to_vec())),
                service: Some(ServiceReference {
                    name: name.clone(),
                    namespace: namespace.clone(),
                    path: Some(path),
                    port: Some(i32::from(*port)),
                }),
                url: None,
            },
            Client::Url(base) => WebhookClientConfig {
                ca_bundle: Some(ByteString(target.ca_bundle.to_vec())),
                service: None,
                url: Some(format!("{base}{path}")),
            },
        };
        let mut excluded: Vec<String> =
            vec![target.own_namespace.to_string(), "kube-system".into()];
        for ns in &target.settings.exclude_namespaces {
            if !excluded.contains(ns) {
                excluded.push(ns.clone());
            }
        }
        let exclusion = LabelSelector::from_requirements(vec![Requirement {
            key: NAMESPACE_NAME_LABEL.into(),
            operator: Operator::NotIn,
            values: excluded,
        }]);
        let namespace_selector = structured(&w.namespace_selector.clone().and(&exclusion));
        let object_selector =
            (!w.object_selector.is_empty()).then(|| structured(&w.object_selector));
        Self {
            name: target.settings.webhook_name(plugin),
            client_config,
            namespace_selector,
            object_selector,
            match_conditions: (!w.match_conditions.is_empty()).then(|| {
                w.match_conditions
                    .iter()
                    .map(|c| K8sMatchCondition {
                        name: c.name.clone(),
                        expression: c.expression.clone(),
                    })
                    .collect()
            }),
            rules: w
                .rules
                .iter()
                .map(|r| RuleWithOperations {
                    api_groups: Some(r.api_groups.clone()),
                    api_versions: Some(r.api_versions.clone()),
                    operations: Some(r.operations.iter().map(|o| o.as_str().into()).collect()),
                    resources: Some(r.resources.clone()),
                    scope: Some(r.scope.as_str().into()),
                })
                .collect(),
            timeout_seconds: i32::try_from(w.timeout_seconds).unwrap_or(10),
        }
    }
}

/// A selector in the typed structured form.
fn structured(selector: &LabelSelector) -> K8sLabelSelector {
    serde_json::from_value(selector.to_structured()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::webhook::{Operation, Scope};

    fn owner_required() -> Webhook {
        Webhook {
            mode: Mode::Validating,
            rules: vec![Rule {
                operations: vec![Operation::Create, Operation::Update],
                api_groups: vec!["apps".into()],
                api_versions: vec!["v1".into()],
                resources: vec!["deployments".into()],
                scope: Scope::Namespaced,
            }],
            namespace_selector: LabelSelector::parse("informant.dev/owner-required=true").unwrap(),
            object_selector: LabelSelector::default(),
            match_conditions: vec![],
            failure_policy: FailurePolicy::Fail,
            timeout_seconds: 5,
        }
    }

    #[test]
    fn the_operator_overrides_fields_and_narrows_selectors() {
        let settings = Settings::generated("127.0.0.1:0".parse().unwrap()).override_plugin(
            "owner-required",
            Override {
                failure_policy: Some(FailurePolicy::Ignore),
                timeout_seconds: Some(2),
                namespace_selector: Some(LabelSelector::parse("team=a").unwrap()),
                ..Override::default()
            },
        );
        let w = settings
            .effective("owner-required", &owner_required())
            .unwrap();
        assert_eq!(w.failure_policy, FailurePolicy::Ignore);
        assert_eq!(w.timeout_seconds, 2);
        assert_eq!(
            w.namespace_selector.to_string(),
            "informant.dev/owner-required=true,team=a"
        );
        assert_eq!(w.rules, owner_required().rules);
        assert_eq!(
            settings.effective("other", &owner_required()),
            Some(owner_required())
        );
        let off = settings.override_plugin(
            "owner-required",
            Override {
                enabled: Some(false),
                ..Override::default()
            },
        );
        assert_eq!(off.effective("owner-required", &owner_required()), None);
    }

    #[test]
    fn configurations_name_each_webhook_and_exclude_the_hosts_namespace() {
        let settings = Settings::generated("127.0.0.1:0".parse().unwrap());
        let mut mutating = owner_required();
        mutating.mode = Mode::Mutating;
        let target = Target {
            settings: &settings,
            client: Client::Url("https://127.0.0.1:9443".into()),
            own_namespace: "informant-system",
            ca_bundle: b"PEM",
        };
        let (v, m) = configurations(
            &[
                ("owner-required".into(), owner_required()),
                ("default-requests".into(), mutating),
            ],
            &target,
        );
        let v = serde_json::to_value(v.unwrap()).unwrap();
        assert_eq!(v["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(v["kind"], "ValidatingWebhookConfiguration");
        assert_eq!(v["metadata"]["name"], "informant");
        let hook = &v["webhooks"][0];
        assert_eq!(hook["name"], "owner-required.informant.dev");
        assert_eq!(
            hook["clientConfig"]["url"],
            "https://127.0.0.1:9443/validate/owner-required"
        );
        assert_eq!(hook["clientConfig"]["caBundle"], "UEVN");
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 5);
        assert_eq!(
            hook["namespaceSelector"],
            serde_json::json!({
                "matchLabels": {"informant.dev/owner-required": "true"},
                "matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": ["informant-system", "kube-system"]}]
            })
        );
        assert_eq!(
            hook["rules"][0]["operations"],
            serde_json::json!(["CREATE", "UPDATE"])
        );
        assert!(hook.get("objectSelector").is_none());
        let m = serde_json::to_value(m.unwrap()).unwrap();
        assert_eq!(
            m["webhooks"][0]["clientConfig"]["url"],
            "https://127.0.0.1:9443/mutate/default-requests"
        );
        assert_eq!(m["webhooks"][0]["reinvocationPolicy"], "Never");
        let service = Target {
            client: Client::Service {
                name: "informant".into(),
                namespace: "informant-system".into(),
                port: 443,
            },
            ..target
        };
        let (v, m) = configurations(&[("owner-required".into(), owner_required())], &service);
        assert!(m.is_none());
        let v = serde_json::to_value(v.unwrap()).unwrap();
        assert_eq!(
            v["webhooks"][0]["clientConfig"]["service"],
            serde_json::json!({"name": "informant", "namespace": "informant-system", "path": "/validate/owner-required", "port": 443})
        );
    }
}
