//! Admission: a plugin that also validates or mutates requests before the
//! API server stores them. Declare the webhook in the manifest with
//! [`Webhook`], implement [`Admission`], and export with
//! `export_plugin!(MyPlugin, admission)`:
//!
//! ```no_run
//! use informant_sdk::{admission::{Admission, Request, Response, Rule, Webhook}, prelude::*};
//!
//! struct NoLatest;
//!
//! impl Plugin for NoLatest {
//!     fn describe() -> Manifest {
//!         Manifest::new("no-latest", "0.1.0")
//!             .webhook(Webhook::validating().rule(Rule::new("apps", "v1", "deployments")))
//!     }
//!     fn init(_settings: Settings) -> Result<Self> { Ok(NoLatest) }
//!     fn handle(&mut self, _event: Event) -> Result<()> { Ok(()) }
//! }
//!
//! impl Admission for NoLatest {
//!     fn review(&mut self, request: Request) -> Result<Response> {
//!         let containers = request
//!             .object
//!             .as_ref()
//!             .and_then(|o| o.get("spec.template.spec.containers"))
//!             .map(|c| c.to_string())
//!             .unwrap_or_default();
//!         if containers.contains(":latest") {
//!             return Ok(Response::deny(format!("{}: images must not use the :latest tag", request.describe())));
//!         }
//!         Ok(Response::allow())
//!     }
//! }
//!
//! informant_sdk::export_plugin!(NoLatest, admission);
//! ```
//!
//! A review reads the cache as `handle` does; it cannot enqueue actions
//! (an admission call has no side effects), and a refused read makes the
//! host answer with the webhook's failure policy.

use serde_json::Value;

use crate::{
    Object, Result, bindings::informant::plugin::types as wit,
    bindings::with_admission::exports::informant::plugin::admission as api,
};

/// An operation a webhook is called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// An object is created.
    Create,
    /// An object is updated (also by a patch or an apply).
    Update,
    /// An object is deleted.
    Delete,
    /// A connection: exec, attach, port-forward, proxy.
    Connect,
}

impl From<Operation> for wit::Operation {
    fn from(o: Operation) -> Self {
        match o {
            Operation::Create => Self::Create,
            Operation::Update => Self::Update,
            Operation::Delete => Self::Delete,
            Operation::Connect => Self::Connect,
        }
    }
}

impl From<wit::Operation> for Operation {
    fn from(o: wit::Operation) -> Self {
        match o {
            wit::Operation::Create => Self::Create,
            wit::Operation::Update => Self::Update,
            wit::Operation::Delete => Self::Delete,
            wit::Operation::Connect => Self::Connect,
        }
    }
}

/// One rule: the requests a webhook is called for.
#[derive(Debug, Clone)]
#[must_use]
pub struct Rule(wit::WebhookRule);

impl Rule {
    /// Creates and updates of `resource` (plural: `deployments`, or with a
    /// subresource: `deployments/status`) in `group` (`""` for the core
    /// group) and `version`, namespaced or not.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self(wit::WebhookRule {
            operations: vec![wit::Operation::Create, wit::Operation::Update],
            api_groups: vec![group.into()],
            api_versions: vec![version.into()],
            resources: vec![resource.into()],
            scope: wit::RuleScope::All,
        })
    }

    /// These operations instead of create and update; none: all of them.
    pub fn operations(mut self, operations: impl IntoIterator<Item = Operation>) -> Self {
        self.0.operations = operations.into_iter().map(Into::into).collect();
        self
    }

    /// Another resource of the same group and version.
    pub fn resource(mut self, resource: &str) -> Self {
        self.0.resources.push(resource.into());
        self
    }

    /// Only namespaced objects.
    pub fn namespaced(mut self) -> Self {
        self.0.scope = wit::RuleScope::Namespaced;
        self
    }

    /// Only cluster-scoped objects.
    pub fn cluster_scoped(mut self) -> Self {
        self.0.scope = wit::RuleScope::Cluster;
        self
    }
}

/// The admission webhook a plugin serves, for [`crate::Manifest::webhook`].
/// The operator's configuration may narrow or override any of it.
#[derive(Debug, Clone)]
#[must_use]
pub struct Webhook(wit::Webhook);

impl Webhook {
    fn new(mode: wit::AdmissionMode) -> Self {
        Self(wit::Webhook {
            mode,
            rules: Vec::new(),
            namespace_selector: None,
            object_selector: None,
            match_conditions: Vec::new(),
            failure_policy: wit::FailurePolicy::Fail,
            timeout_seconds: None,
        })
    }

    /// A webhook that allows or denies.
    pub fn validating() -> Self {
        Self::new(wit::AdmissionMode::Validating)
    }

    /// A webhook that may also change the object with a JSON patch; mutating
    /// webhooks run before every validating one.
    pub fn mutating() -> Self {
        Self::new(wit::AdmissionMode::Mutating)
    }

    /// Add a rule.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.0.rules.push(rule.0);
        self
    }

    /// Only objects in namespaces whose labels match: `team=web,!legacy`.
    pub fn namespace_selector(mut self, selector: &str) -> Self {
        self.0.namespace_selector = Some(selector.into());
        self
    }

    /// Only objects whose labels match.
    pub fn object_selector(mut self, selector: &str) -> Self {
        self.0.object_selector = Some(selector.into());
        self
    }

    /// A CEL condition the API server evaluates before calling the webhook.
    pub fn match_condition(mut self, name: &str, expression: &str) -> Self {
        self.0.match_conditions.push(wit::MatchCondition {
            name: name.into(),
            expression: expression.into(),
        });
        self
    }

    /// Let requests through when the plugin cannot answer (it traps, runs
    /// out of time, is not ready); by default they are refused.
    pub fn ignore_failures(mut self) -> Self {
        self.0.failure_policy = wit::FailurePolicy::Ignore;
        self
    }

    /// How long the API server waits, 1 to 30 seconds (10 by default). The
    /// host answers well within it.
    pub fn timeout_seconds(mut self, seconds: u32) -> Self {
        self.0.timeout_seconds = Some(seconds);
        self
    }

    pub(crate) fn into_wit(self) -> wit::Webhook {
        self.0
    }
}

/// Who sent a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// `jane`, `system:serviceaccount:ns:name`.
    pub username: String,
    /// The user's uid, if the authenticator gives one.
    pub uid: String,
    /// The user's groups.
    pub groups: Vec<String>,
    /// Whatever else the authenticator says.
    pub extra: Vec<(String, Vec<String>)>,
}

/// One admission request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request's uid (the host echoes it).
    pub uid: String,
    /// What the request does.
    pub operation: Operation,
    /// The object's group, version and kind: `("apps", "v1", "Deployment")`.
    pub kind: (String, String, String),
    /// The resource addressed: `("apps", "v1", "deployments")`.
    pub resource: (String, String, String),
    /// The subresource addressed (`status`), if any.
    pub sub_resource: Option<String>,
    /// The namespace, for a namespaced object.
    pub namespace: Option<String>,
    /// The name; none for a create whose name is generated.
    pub name: Option<String>,
    /// Who asks.
    pub user_info: UserInfo,
    /// The object as it would be stored; none for a delete.
    pub object: Option<Object>,
    /// The stored object, for updates and deletes.
    pub old_object: Option<Object>,
    /// Nothing will be stored.
    pub dry_run: bool,
    /// The operation's options (`CreateOptions`...).
    pub options: Option<Value>,
}

impl Request {
    pub(crate) fn from_wit(r: api::Request) -> Self {
        Self {
            uid: r.uid,
            operation: r.operation.into(),
            kind: (r.kind.group, r.kind.version, r.kind.kind),
            resource: (r.resource.group, r.resource.version, r.resource.resource),
            sub_resource: r.sub_resource,
            namespace: r.namespace,
            name: r.name,
            user_info: UserInfo {
                username: r.user_info.username,
                uid: r.user_info.uid,
                groups: r.user_info.groups,
                extra: r.user_info.extra,
            },
            object: r.object.map(Object::from_json),
            old_object: r.old_object.map(Object::from_json),
            dry_run: r.dry_run,
            options: r.options.and_then(|o| serde_json::from_str(&o).ok()),
        }
    }

    /// `Deployment shop/web`, for messages (`Deployment web` when
    /// cluster-scoped, `(generated name)` for a name to be generated).
    pub fn describe(&self) -> String {
        let name = self.name.as_deref().unwrap_or("(generated name)");
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{name}", self.kind.2),
            None => format!("{} {name}", self.kind.2),
        }
    }
}

/// A plugin's answer to one request.
#[derive(Debug, Clone)]
#[must_use]
pub struct Response {
    decision: api::Decision,
    warnings: Vec<String>,
}

impl Response {
    /// Let the request through.
    pub fn allow() -> Self {
        Self {
            decision: api::Decision::Allow,
            warnings: Vec::new(),
        }
    }

    /// Refuse it with 403 Forbidden: say what is wrong and how to fix it.
    pub fn deny(message: impl Into<String>) -> Self {
        Self::deny_with_code(message, 403)
    }

    /// Refuse it with another status code (400 to 599).
    pub fn deny_with_code(message: impl Into<String>, code: u16) -> Self {
        Self {
            decision: api::Decision::Deny(api::Denial {
                message: message.into(),
                code,
            }),
            warnings: Vec::new(),
        }
    }

    /// Let it through changed by a JSON patch (RFC 6902): an array of
    /// operations applied to the request's object. Only for a mutating
    /// webhook; an empty patch is the same as [`Response::allow`].
    pub fn patch(operations: Vec<Value>) -> Self {
        if operations.is_empty() {
            return Self::allow();
        }
        Self {
            decision: api::Decision::Patch(Value::Array(operations).to_string()),
            warnings: Vec::new(),
        }
    }

    /// Add a warning for the user (`kubectl` prints it), whatever the answer.
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Whether the request is allowed (with or without a patch).
    pub fn is_allowed(&self) -> bool {
        !matches!(self.decision, api::Decision::Deny(_))
    }

    pub(crate) fn into_wit(self) -> api::Response {
        api::Response {
            decision: self.decision,
            warnings: self.warnings,
        }
    }
}

/// What a plugin that serves an admission webhook implements, beside
/// [`crate::Plugin`]. Export it with `export_plugin!(MyPlugin, admission)`.
pub trait Admission: crate::Plugin {
    /// Answer one request. An error (or a panic) is answered by the
    /// webhook's failure policy.
    ///
    /// # Errors
    /// When the plugin cannot decide.
    fn review(&mut self, request: Request) -> Result<Response>;
}
