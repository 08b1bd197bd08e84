//! The operator's allowlist: what each plugin may write, whatever it declares.
//!
//! A plugin declares the writes it needs in its manifest, and the runtime
//! refuses anything else. The allowlist is the second check, owned by the
//! operator rather than the plugin author: it can only narrow. A plugin with
//! no entry keeps what it declared; a plugin with an entry may do only what
//! one of its rules allows, and nothing at all with an empty list.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Action;
use crate::vocabulary::{KindKey, Verb};

/// One thing a plugin is allowed to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// `v1`, `apps/v1`, or `*` for any.
    pub api_version: String,
    /// The kind, or `*` for any kind of that apiVersion.
    pub kind: String,
    /// The verbs allowed.
    pub verbs: Vec<Verb>,
    /// Only objects in these namespaces; absent means any namespace, and
    /// cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
}

impl Rule {
    fn allows(&self, kind: &KindKey, verb: Verb, namespace: Option<&str>) -> bool {
        let wild = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        wild(&self.api_version, &kind.api_version)
            && wild(&self.kind, &kind.kind)
            && self.verbs.contains(&verb)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|allowed| namespace.is_some_and(|ns| allowed.iter().any(|a| a == ns)))
    }
}

/// Per-plugin rules, keyed by plugin name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Allowlist(HashMap<String, Vec<Rule>>);

impl Allowlist {
    /// An allowlist with these entries.
    pub fn new(entries: HashMap<String, Vec<Rule>>) -> Self {
        Self(entries)
    }

    /// How many plugins the operator narrowed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the allowlist narrows no plugin.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the operator narrowed this plugin at all.
    pub fn covers(&self, plugin: &str) -> bool {
        self.0.contains_key(plugin)
    }

    /// Check an action of `plugin`. Requeues write nothing and always pass.
    ///
    /// # Errors
    /// A message saying what the allowlist does not allow.
    pub fn check(&self, plugin: &str, action: &Action) -> Result<(), String> {
        let Some(rules) = self.0.get(plugin) else {
            return Ok(());
        };
        let Some((kind, verb)) = action.required_grant() else {
            return Ok(());
        };
        // An Event lands in the namespace of the object it is about.
        let namespace = action.target().namespace.as_deref();
        if rules.iter().any(|r| r.allows(&kind, verb, namespace)) {
            return Ok(());
        }
        Err(format!(
            "the operator's allowlist does not let plugin {plugin} {verb} {kind}{}",
            namespace
                .map(|ns| format!(" in namespace {ns}"))
                .unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::ObjectRef;
    use serde_json::json;

    fn patch(kind: &str, namespace: Option<&str>) -> Action {
        Action::MergePatch {
            target: ObjectRef {
                api_version: "v1".into(),
                kind: kind.into(),
                namespace: namespace.map(str::to_string),
                name: "x".into(),
            },
            patch: json!({}),
        }
    }

    fn list(yaml: &str) -> Allowlist {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn plugins_without_an_entry_keep_what_they_declared() {
        let allow = list("other: []");
        assert!(
            allow
                .check("enforcer", &patch("ConfigMap", Some("a")))
                .is_ok()
        );
    }

    #[test]
    fn an_entry_narrows_by_kind_verb_and_namespace() {
        let allow = list(
            "enforcer:\n- apiVersion: v1\n  kind: ConfigMap\n  verbs: [patch]\n  namespaces: [a]\n",
        );
        assert!(
            allow
                .check("enforcer", &patch("ConfigMap", Some("a")))
                .is_ok()
        );
        let err = allow
            .check("enforcer", &patch("ConfigMap", Some("b")))
            .unwrap_err();
        assert!(err.contains("namespace b"), "{err}");
        assert!(
            allow
                .check("enforcer", &patch("Secret", Some("a")))
                .is_err()
        );
        assert!(allow.check("enforcer", &patch("ConfigMap", None)).is_err());
    }

    #[test]
    fn an_empty_entry_allows_nothing_but_requeues() {
        let allow = list("enforcer: []");
        assert!(allow.check("enforcer", &patch("ConfigMap", None)).is_err());
        let requeue = Action::RequeueAfter {
            target: patch("ConfigMap", None).target().clone(),
            delay_ms: 1,
        };
        assert!(allow.check("enforcer", &requeue).is_ok());
    }

    #[test]
    fn wildcards_match_any_kind() {
        let allow = list("p:\n- apiVersion: '*'\n  kind: '*'\n  verbs: [patch]\n");
        assert!(allow.check("p", &patch("Anything", None)).is_ok());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_norway::from_str::<Allowlist>(
            "p:\n- apiVersion: v1\n  kind: X\n  verbs: [patch]\n  namspaces: [a]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("namspaces"), "{err}");
    }
}
