//! The admission webhook a plugin declares in its manifest (contract
//! 0.3.0, `manifest.admission`), validated: what the host would register
//! with the API server on the plugin's behalf.

use serde::{Deserialize, Serialize};

use super::{bindings::types as wit, manifest::ManifestError};
use informant_k8s::selector::{self, LabelSelector};

/// The most rules and match conditions one webhook may have (the API
/// server's own limit for match conditions is 64).
const MAX_RULES: usize = 64;
const MAX_MATCH_CONDITIONS: usize = 64;
/// The longest CEL expression passed through.
const MAX_EXPRESSION: usize = 10 * 1024;
/// The API server waits 10 s for a webhook unless told otherwise, and at most 30 s.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 10;
/// The longest `timeoutSeconds` the API server accepts.
pub const MAX_TIMEOUT_SECONDS: u32 = 30;

/// What an admission request does to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// `CREATE`.
    Create,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `CONNECT`.
    Connect,
}

impl Operation {
    /// Every operation, as `*` stands for.
    pub const ALL: [Operation; 4] = [Self::Create, Self::Update, Self::Delete, Self::Connect];

    /// The name the API server uses: `CREATE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
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

/// Which objects a rule covers, by scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Both (`*`).
    #[serde(rename = "*")]
    All,
    /// Cluster-scoped objects.
    Cluster,
    /// Namespaced objects.
    Namespaced,
}

/// Validating or mutating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Allows or denies.
    Validating,
    /// Allows with a JSON patch, or denies.
    Mutating,
}

/// What the API server does when the webhook cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailurePolicy {
    /// Refuse the request.
    Fail,
    /// Let it through.
    Ignore,
}

impl Mode {
    /// `validating` or `mutating`, as logs, metrics and paths write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validating => "validating",
            Self::Mutating => "mutating",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

impl Scope {
    /// `*`, `Cluster` or `Namespaced`, as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "*",
            Self::Cluster => "Cluster",
            Self::Namespaced => "Namespaced",
        }
    }
}

/// One rule, as in a webhook configuration's `rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The operations covered (all four for `*`).
    pub operations: Vec<Operation>,
    /// API groups: `""` for core, `*` for all.
    pub api_groups: Vec<String>,
    /// API versions, `*` for all.
    pub api_versions: Vec<String>,
    /// Resources: `deployments`, `pods/status`, `*`, `*/scale`.
    pub resources: Vec<String>,
    /// The scope covered.
    pub scope: Scope,
}

/// A CEL condition, passed through to the API server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchCondition {
    /// Unique within the webhook; a qualified name.
    pub name: String,
    /// The CEL expression, not evaluated by the host.
    pub expression: String,
}

/// A validated webhook declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Validating or mutating.
    pub mode: Mode,
    /// At least one rule.
    pub rules: Vec<Rule>,
    /// Only namespaces matching this selector (empty: all).
    #[serde(
        serialize_with = "display",
        skip_serializing_if = "LabelSelector::is_empty"
    )]
    pub namespace_selector: LabelSelector,
    /// Only objects matching this selector (empty: all).
    #[serde(
        serialize_with = "display",
        skip_serializing_if = "LabelSelector::is_empty"
    )]
    pub object_selector: LabelSelector,
    /// CEL conditions, passed through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub match_conditions: Vec<MatchCondition>,
    /// What happens when the webhook cannot answer.
    pub failure_policy: FailurePolicy,
    /// How long the API server waits, 1-30 s.
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

/// Validate the `admission` field of a manifest.
///
/// # Errors
/// A [`ManifestError`] naming the field (`admission.rules[0].resources`).
pub(crate) fn webhook(w: wit::Webhook) -> Result<Webhook, ManifestError> {
    if w.rules.is_empty() {
        return Err(invalid(
            "admission.rules",
            "a webhook needs at least one rule",
        ));
    }
    if w.rules.len() > MAX_RULES {
        return Err(invalid("admission.rules", format!("more than {MAX_RULES}")));
    }
    let rules = w
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, r)| rule(&format!("admission.rules[{i}]"), r))
        .collect::<Result<Vec<_>, _>>()?;
    let selector = |field: &str, s: Option<String>| {
        LabelSelector::parse(s.as_deref().unwrap_or(""))
            .map_err(|e| invalid(format!("admission.{field}"), e.to_string()))
    };
    let namespace_selector = selector("namespaceSelector", w.namespace_selector)?;
    let object_selector = selector("objectSelector", w.object_selector)?;
    let match_conditions = match_conditions(
        "admission.matchConditions",
        w.match_conditions
            .into_iter()
            .map(|c| MatchCondition {
                name: c.name,
                expression: c.expression,
            })
            .collect(),
    )?;
    let timeout_seconds = match w.timeout_seconds {
        None => DEFAULT_TIMEOUT_SECONDS,
        Some(t @ 1..=30) => t,
        Some(t) => {
            return Err(invalid(
                "admission.timeoutSeconds",
                format!("{t} is outside 1-30 (the API server's range)"),
            ));
        }
    };
    Ok(Webhook {
        mode: match w.mode {
            wit::AdmissionMode::Validating => Mode::Validating,
            wit::AdmissionMode::Mutating => Mode::Mutating,
        },
        rules,
        namespace_selector,
        object_selector,
        match_conditions,
        failure_policy: match w.failure_policy {
            wit::FailurePolicy::Fail => FailurePolicy::Fail,
            wit::FailurePolicy::Ignore => FailurePolicy::Ignore,
        },
        timeout_seconds,
    })
}

/// Check match conditions (under `field`): at most 64, unique qualified
/// names, expressions neither empty nor huge.
///
/// # Errors
/// A [`ManifestError`] naming the condition.
pub(crate) fn match_conditions(
    field: &str,
    conditions: Vec<MatchCondition>,
) -> Result<Vec<MatchCondition>, ManifestError> {
    if conditions.len() > MAX_MATCH_CONDITIONS {
        return Err(invalid(field, format!("more than {MAX_MATCH_CONDITIONS}")));
    }
    let mut names = std::collections::HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let field = format!("{field}[{i}]");
        selector::validate_key(&c.name).map_err(|e| {
            invalid(
                format!("{field}.name"),
                format!("{:?} is not a qualified name: {e}", c.name),
            )
        })?;
        if !names.insert(c.name.clone()) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{:?} is declared twice", c.name),
            ));
        }
        if c.expression.trim().is_empty() {
            return Err(invalid(format!("{field}.expression"), "must not be empty"));
        }
        if c.expression.len() > MAX_EXPRESSION {
            return Err(invalid(
                format!("{field}.expression"),
                format!("is longer than {MAX_EXPRESSION} bytes"),
            ));
        }
    }
    Ok(conditions)
}

/// A rule as an operator writes it in the host's configuration, in the
/// Kubernetes spelling (`operations: ["CREATE", "*"]`, `scope: Namespaced`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `*`.
    pub operations: Vec<String>,
    /// API groups.
    pub api_groups: Vec<String>,
    /// API versions.
    pub api_versions: Vec<String>,
    /// Resources.
    pub resources: Vec<String>,
    /// `*` (the default), `Cluster` or `Namespaced`.
    #[serde(default)]
    pub scope: Option<String>,
}

impl RuleSpec {
    /// The rule, checked as a manifest's would be (under `field`).
    ///
    /// # Errors
    /// A [`ManifestError`] naming the field.
    pub fn to_rule(&self, field: &str) -> Result<Rule, ManifestError> {
        let mut operations = Vec::new();
        for op in &self.operations {
            operations.extend(match op.as_str() {
                "*" => Operation::ALL.to_vec(),
                "CREATE" => vec![Operation::Create],
                "UPDATE" => vec![Operation::Update],
                "DELETE" => vec![Operation::Delete],
                "CONNECT" => vec![Operation::Connect],
                other => {
                    return Err(invalid(
                        format!("{field}.operations"),
                        format!("{other:?} is not CREATE, UPDATE, DELETE, CONNECT or *"),
                    ));
                }
            });
        }
        if operations.is_empty() {
            return Err(invalid(
                format!("{field}.operations"),
                "needs at least one operation (`*` for all)",
            ));
        }
        let scope = match self.scope.as_deref() {
            None | Some("*") => wit::RuleScope::All,
            Some("Cluster") => wit::RuleScope::Cluster,
            Some("Namespaced") => wit::RuleScope::Namespaced,
            Some(other) => {
                return Err(invalid(
                    format!("{field}.scope"),
                    format!("{other:?} is not *, Cluster or Namespaced"),
                ));
            }
        };
        let mut checked = rule(
            field,
            wit::WebhookRule {
                operations: Vec::new(),
                api_groups: self.api_groups.clone(),
                api_versions: self.api_versions.clone(),
                resources: self.resources.clone(),
                scope,
            },
        )?;
        operations.sort_unstable();
        operations.dedup();
        checked.operations = operations;
        Ok(checked)
    }
}

fn rule(field: &str, r: wit::WebhookRule) -> Result<Rule, ManifestError> {
    let mut operations: Vec<Operation> = r.operations.into_iter().map(Operation::from).collect();
    if operations.is_empty() {
        operations = Operation::ALL.to_vec();
    }
    operations.sort_unstable();
    operations.dedup();
    let list = |name: &str, items: &[String], check: &dyn Fn(&str) -> Result<(), String>| {
        if items.is_empty() {
            return Err(invalid(
                format!("{field}.{name}"),
                "needs at least one entry (`*` for all)",
            ));
        }
        if items.len() > 1 && items.iter().any(|i| i == "*") {
            return Err(invalid(
                format!("{field}.{name}"),
                "`*` covers everything: list nothing else beside it",
            ));
        }
        for item in items {
            check(item).map_err(|reason| invalid(format!("{field}.{name}"), reason))?;
        }
        Ok(())
    };
    list("apiGroups", &r.api_groups, &|g| {
        if g.is_empty() || g == "*" || selector::is_dns1123_subdomain(g) {
            Ok(())
        } else {
            Err(format!(
                "{g:?} is not an API group (\"\" for the core group, \"apps\", \"*\")"
            ))
        }
    })?;
    list("apiVersions", &r.api_versions, &|v| {
        if v == "*" || selector::is_dns1123_label(v) {
            Ok(())
        } else {
            Err(format!("{v:?} is not an API version (\"v1\", \"*\")"))
        }
    })?;
    list("resources", &r.resources, &|res| {
        let (resource, sub) = match res.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (res, None),
        };
        let part = |p: &str| p == "*" || selector::is_dns1123_subdomain(p);
        if part(resource) && sub.is_none_or(part) {
            Ok(())
        } else {
            Err(format!(
                "{res:?} is not a resource (\"deployments\", \"pods/status\", \"*\", \"*/scale\")"
            ))
        }
    })?;
    Ok(Rule {
        operations,
        api_groups: r.api_groups,
        api_versions: r.api_versions,
        resources: r.resources,
        scope: match r.scope {
            wit::RuleScope::All => Scope::All,
            wit::RuleScope::Cluster => Scope::Cluster,
            wit::RuleScope::Namespaced => Scope::Namespaced,
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn wit_webhook() -> wit::Webhook {
        wit::Webhook {
            mode: wit::AdmissionMode::Validating,
            rules: vec![wit::WebhookRule {
                operations: vec![wit::Operation::Create, wit::Operation::Update],
                api_groups: vec!["apps".into()],
                api_versions: vec!["v1".into()],
                resources: vec!["deployments".into()],
                scope: wit::RuleScope::Namespaced,
            }],
            namespace_selector: Some("informant.dev/owner-required=true".into()),
            object_selector: None,
            match_conditions: vec![wit::MatchCondition {
                name: "not-admin".into(),
                expression: "request.userInfo.username != 'admin'".into(),
            }],
            failure_policy: wit::FailurePolicy::Fail,
            timeout_seconds: None,
        }
    }

    #[test]
    fn a_valid_webhook_keeps_what_it_declares() {
        let w = webhook(wit_webhook()).unwrap();
        assert_eq!(w.mode, Mode::Validating);
        assert_eq!(
            w.rules[0].operations,
            [Operation::Create, Operation::Update]
        );
        assert_eq!(w.timeout_seconds, DEFAULT_TIMEOUT_SECONDS);
        assert_eq!(
            w.namespace_selector.to_string(),
            "informant.dev/owner-required=true"
        );
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["rules"][0]["scope"], "Namespaced");
        assert_eq!(json["rules"][0]["operations"][0], "CREATE");
        assert_eq!(json["failurePolicy"], "Fail");
    }

    #[test]
    fn no_operations_means_all_of_them() {
        let mut w = wit_webhook();
        w.rules[0].operations.clear();
        assert_eq!(webhook(w).unwrap().rules[0].operations, Operation::ALL);
    }

    #[test]
    fn invalid_fields_are_named() {
        type Mutation = Box<dyn Fn(&mut wit::Webhook)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|w| w.rules.clear()), "admission.rules"),
            (
                Box::new(|w| w.rules[0].resources = vec!["Deployments!".into()]),
                "admission.rules[0].resources",
            ),
            (
                Box::new(|w| w.rules[0].resources = vec!["*".into(), "pods".into()]),
                "admission.rules[0].resources",
            ),
            (
                Box::new(|w| w.rules[0].api_versions.clear()),
                "admission.rules[0].apiVersions",
            ),
            (
                Box::new(|w| w.rules[0].api_groups = vec!["not a group".into()]),
                "admission.rules[0].apiGroups",
            ),
            (
                Box::new(|w| w.namespace_selector = Some("a in b".into())),
                "admission.namespaceSelector",
            ),
            (
                Box::new(|w| w.match_conditions[0].expression = " ".into()),
                "admission.matchConditions[0].expression",
            ),
            (
                Box::new(|w| {
                    let again = w.match_conditions[0].clone();
                    w.match_conditions.push(again);
                }),
                "admission.matchConditions[1].name",
            ),
            (
                Box::new(|w| w.timeout_seconds = Some(31)),
                "admission.timeoutSeconds",
            ),
        ];
        for (mutate, field) in cases {
            let mut w = wit_webhook();
            mutate(&mut w);
            let err = webhook(w).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn subresources_and_wildcards_are_resources() {
        let mut w = wit_webhook();
        w.rules[0].resources = vec!["pods/status".into(), "*/scale".into()];
        w.rules[0].api_groups = vec!["".into()];
        assert!(webhook(w).is_ok());
    }
}
