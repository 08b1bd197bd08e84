//! What a plugin's manifest declares about its admission webhook: which
//! requests the API server sends it (rules, selectors, CEL match
//! conditions), whether it validates or mutates, and what happens when it
//! cannot answer (failure policy, timeout). Validated at load time the way
//! the API server validates a webhook configuration, so a bad declaration
//! fails the plugin's load with the field named, not its registration later.
//!
//! The same shapes, in the Kubernetes spelling, are what an operator writes
//! in the host's configuration to narrow or override a declaration
//! (`admission.plugins.NAME`, see [`crate::config`]).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::manifest::ManifestError;
use informant_k8s::selector::{self, LabelSelector};

/// The longest `timeoutSeconds` the API server accepts.
pub const MAX_TIMEOUT_SECONDS: u32 = 30;
/// The API server's default `timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 10;
/// The most match conditions a webhook may have.
const MAX_MATCH_CONDITIONS: usize = 64;
/// The most rules a webhook may have here.
const MAX_RULES: usize = 64;

/// Whether the webhook only judges requests or may also change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookKind {
    /// Allow or deny; a patch is an error.
    Validating,
    /// Allow (possibly with a JSON patch) or deny; called before every
    /// validating webhook.
    Mutating,
}

impl WebhookKind {
    /// `validating` or `mutating`, as logs, metrics and paths write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::Mutating => "mutating",
        }
    }
}

impl std::fmt::Display for WebhookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the API server does when the webhook cannot be called or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailurePolicy {
    /// The request is refused (the API server's default).
    Fail,
    /// The request goes on as if the webhook had allowed it.
    Ignore,
}

impl FailurePolicy {
    /// `Fail` or `Ignore`, as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "Fail",
            Self::Ignore => "Ignore",
        }
    }
}

/// An operation a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// `CREATE`.
    #[serde(rename = "CREATE")]
    Create,
    /// `UPDATE` (also patches, and server-side applies of existing objects).
    #[serde(rename = "UPDATE")]
    Update,
    /// `DELETE`.
    #[serde(rename = "DELETE")]
    Delete,
    /// `CONNECT` (exec, attach, port-forward, proxy).
    #[serde(rename = "CONNECT")]
    Connect,
    /// `*`: every operation.
    #[serde(rename = "*")]
    All,
}

impl Operation {
    /// As Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
            Self::All => "*",
        }
    }
}

/// Which objects a rule matches by scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Scope {
    /// `*`: namespaced and cluster-scoped objects.
    #[default]
    #[serde(rename = "*")]
    All,
    /// Only cluster-scoped objects.
    Cluster,
    /// Only namespaced objects.
    Namespaced,
}

impl Scope {
    /// As Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "*",
            Self::Cluster => "Cluster",
            Self::Namespaced => "Namespaced",
        }
    }
}

/// One rule: the operations on which resources the webhook is called for
/// (`admissionregistration.k8s.io/v1` `RuleWithOperations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `*`.
    pub operations: Vec<Operation>,
    /// API groups: `""` for the core group, `apps`, `*`.
    pub api_groups: Vec<String>,
    /// Versions: `v1`, `*`.
    pub api_versions: Vec<String>,
    /// Resources (plural) and subresources: `deployments`,
    /// `deployments/status`, `*`, `*/*`.
    pub resources: Vec<String>,
    /// Cluster-scoped, namespaced, or both.
    #[serde(default)]
    pub scope: Scope,
}

/// A CEL expression the API server evaluates before calling the webhook;
/// the host passes it through without evaluating it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchCondition {
    /// Unique within the webhook: a qualified name (`has-owner`,
    /// `example.com/has-owner`).
    pub name: String,
    /// The CEL expression: `object.metadata.namespace != 'kube-public'`.
    pub expression: String,
}

/// A plugin's admission webhook, as its manifest declares it, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Validating or mutating.
    pub kind: WebhookKind,
    /// What the API server calls it for.
    pub rules: Vec<Rule>,
    /// Only objects in namespaces whose labels match (the empty selector
    /// matches every namespace).
    #[serde(serialize_with = "display")]
    pub namespace_selector: LabelSelector,
    /// Only objects whose labels match.
    #[serde(serialize_with = "display")]
    pub object_selector: LabelSelector,
    /// CEL conditions, all of which must hold (passed through).
    pub match_conditions: Vec<MatchCondition>,
    /// What happens when the plugin cannot answer.
    pub failure_policy: FailurePolicy,
    /// How long the API server waits for an answer, 1 to 30 seconds.
    pub timeout_seconds: u32,
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A list where `*` must stand alone, and no entry may be empty.
fn check_list(field: &str, values: &[String], what: &str) -> Result<(), ManifestError> {
    if values.is_empty() {
        return Err(invalid(field, format!("needs at least one {what}")));
    }
    if values.len() > 1 && values.iter().any(|v| v == "*") {
        return Err(invalid(
            field,
            "`*` matches every value and must be the only one",
        ));
    }
    Ok(())
}

impl Rule {
    /// Check a rule as the API server would.
    ///
    /// # Errors
    /// [`ManifestError`] naming the field under `field`.
    pub fn validate(&self, field: &str) -> Result<(), ManifestError> {
        if self.operations.is_empty() {
            return Err(invalid(
                format!("{field}.operations"),
                "needs at least one operation",
            ));
        }
        if self.operations.len() > 1 && self.operations.contains(&Operation::All) {
            return Err(invalid(
                format!("{field}.operations"),
                "`*` matches every operation and must be the only one",
            ));
        }
        check_list(&format!("{field}.apiGroups"), &self.api_groups, "group")?;
        for g in &self.api_groups {
            if g != "*" && !g.is_empty() && !selector::is_dns1123_subdomain(g) {
                return Err(invalid(
                    format!("{field}.apiGroups"),
                    format!("{g:?} is not an API group (\"\" for the core group, \"apps\", \"*\")"),
                ));
            }
        }
        check_list(
            &format!("{field}.apiVersions"),
            &self.api_versions,
            "version",
        )?;
        if self.api_versions.iter().any(String::is_empty) {
            return Err(invalid(
                format!("{field}.apiVersions"),
                "a version must not be empty",
            ));
        }
        let resources = format!("{field}.resources");
        if self.resources.is_empty() {
            return Err(invalid(&resources, "needs at least one resource"));
        }
        let mut seen = HashSet::new();
        for r in &self.resources {
            let (resource, sub) = match r.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (r.as_str(), None),
            };
            let name_ok = |s: &str| s == "*" || (!s.is_empty() && !s.contains('/'));
            if !name_ok(resource) || sub.is_some_and(|s| !name_ok(s)) {
                return Err(invalid(
                    &resources,
                    format!(
                        "{r:?} is not a resource: a plural (`deployments`), with a subresource (`deployments/status`), or `*`, `*/*`"
                    ),
                ));
            }
            if !seen.insert(r.as_str()) {
                return Err(invalid(&resources, format!("{r:?} is listed twice")));
            }
        }
        if self.resources.len() > 1 && self.resources.iter().any(|r| r == "*/*") {
            return Err(invalid(
                &resources,
                "`*/*` matches every resource and subresource and must be the only one",
            ));
        }
        Ok(())
    }
}

impl Webhook {
    /// Check the whole declaration as the API server would check the
    /// webhook it becomes (CEL expressions excepted: the API server compiles
    /// them when the host registers the webhook).
    ///
    /// # Errors
    /// [`ManifestError`] naming the field under `field`.
    pub fn validate(&self, field: &str) -> Result<(), ManifestError> {
        if self.rules.is_empty() {
            return Err(invalid(
                format!("{field}.rules"),
                "needs at least one rule: without one the API server never calls the webhook",
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(invalid(
                format!("{field}.rules"),
                format!("more than {MAX_RULES}"),
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            r.validate(&format!("{field}.rules[{i}]"))?;
        }
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&self.timeout_seconds) {
            return Err(invalid(
                format!("{field}.timeoutSeconds"),
                format!(
                    "{} is not between 1 and {MAX_TIMEOUT_SECONDS} seconds",
                    self.timeout_seconds
                ),
            ));
        }
        check_conditions(&format!("{field}.matchConditions"), &self.match_conditions)
    }
}

/// Match conditions: at most 64, unique qualified names, non-empty
/// expressions.
///
/// # Errors
/// [`ManifestError`] naming the condition.
pub fn check_conditions(field: &str, conditions: &[MatchCondition]) -> Result<(), ManifestError> {
    if conditions.len() > MAX_MATCH_CONDITIONS {
        return Err(invalid(field, format!("more than {MAX_MATCH_CONDITIONS}")));
    }
    let mut names = HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        if let Err(reason) = selector::validate_key(&c.name) {
            return Err(invalid(
                format!("{field}[{i}].name"),
                format!("{:?} is not a qualified name: {reason}", c.name),
            ));
        }
        if !names.insert(c.name.as_str()) {
            return Err(invalid(
                format!("{field}[{i}].name"),
                format!("{:?} is used twice", c.name),
            ));
        }
        if c.expression.trim().is_empty() {
            return Err(invalid(
                format!("{field}[{i}].expression"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> Rule {
        Rule {
            operations: vec![Operation::Create, Operation::Update],
            api_groups: vec!["apps".into()],
            api_versions: vec!["v1".into()],
            resources: vec!["deployments".into()],
            scope: Scope::Namespaced,
        }
    }

    fn webhook() -> Webhook {
        Webhook {
            kind: WebhookKind::Validating,
            rules: vec![deployments()],
            namespace_selector: LabelSelector::default(),
            object_selector: LabelSelector::default(),
            match_conditions: vec![],
            failure_policy: FailurePolicy::Fail,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
        }
    }

    #[test]
    fn a_valid_declaration_passes() {
        webhook().validate("webhook").unwrap();
        let mut all = webhook();
        all.rules[0].resources = vec!["*/*".into()];
        all.rules[0].api_groups = vec!["*".into()];
        all.rules[0].operations = vec![Operation::All];
        all.validate("webhook").unwrap();
        let mut core = webhook();
        core.rules[0].api_groups = vec![String::new()];
        core.rules[0].resources = vec!["pods".into(), "pods/status".into()];
        core.validate("webhook").unwrap();
    }

    #[test]
    fn bad_declarations_name_their_field() {
        type Mutation = Box<dyn Fn(&mut Webhook)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|w| w.rules.clear()), "webhook.rules"),
            (
                Box::new(|w| w.rules[0].operations.clear()),
                "webhook.rules[0].operations",
            ),
            (
                Box::new(|w| w.rules[0].operations.push(Operation::All)),
                "webhook.rules[0].operations",
            ),
            (
                Box::new(|w| w.rules[0].api_groups = vec!["*".into(), "apps".into()]),
                "webhook.rules[0].apiGroups",
            ),
            (
                Box::new(|w| w.rules[0].api_groups = vec!["Not A Group".into()]),
                "webhook.rules[0].apiGroups",
            ),
            (
                Box::new(|w| w.rules[0].api_versions.clear()),
                "webhook.rules[0].apiVersions",
            ),
            (
                Box::new(|w| w.rules[0].resources = vec!["a/b/c".into()]),
                "webhook.rules[0].resources",
            ),
            (
                Box::new(|w| w.rules[0].resources = vec!["*/*".into(), "pods".into()]),
                "webhook.rules[0].resources",
            ),
            (
                Box::new(|w| w.timeout_seconds = 0),
                "webhook.timeoutSeconds",
            ),
            (
                Box::new(|w| w.timeout_seconds = 31),
                "webhook.timeoutSeconds",
            ),
            (
                Box::new(|w| {
                    w.match_conditions = vec![
                        MatchCondition {
                            name: "a".into(),
                            expression: "true".into(),
                        },
                        MatchCondition {
                            name: "a".into(),
                            expression: "true".into(),
                        },
                    ]
                }),
                "webhook.matchConditions[1].name",
            ),
            (
                Box::new(|w| {
                    w.match_conditions = vec![MatchCondition {
                        name: "a".into(),
                        expression: " ".into(),
                    }]
                }),
                "webhook.matchConditions[0].expression",
            ),
        ];
        for (mutate, field) in cases {
            let mut w = webhook();
            mutate(&mut w);
            let err = w.validate("webhook").unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn rules_read_as_kubernetes_writes_them() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "operations": ["CREATE", "*"], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": ["configmaps"], "scope": "Namespaced"
        }))
        .unwrap();
        assert_eq!(rule.operations, [Operation::Create, Operation::All]);
        assert_eq!(rule.scope, Scope::Namespaced);
        let default_scope: Rule = serde_json::from_value(serde_json::json!({
            "operations": ["DELETE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]
        }))
        .unwrap();
        assert_eq!(default_scope.scope, Scope::All);
    }
}
