//! The operator's allowlist: what each plugin may read and write, whatever it
//! declares.
//!
//! A plugin declares what it subscribes to, reads and writes in its
//! manifest, and the runtime refuses anything else. The allowlist is the
//! second check, owned by the operator rather than the plugin author: it can
//! only narrow. A plugin with no entry keeps what it declared; a plugin with
//! an entry may subscribe to and read only the kinds a `read` rule grants
//! (checked when it loads), and write only what a rule's verbs allow, in
//! the rule's namespaces (checked for every action). An empty entry allows
//! nothing. A wildcard kind never grants Secrets: they are granted by name
//! or not at all.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Action;
use crate::vocabulary::{KindKey, Verb};

/// One thing a plugin is allowed to do: read a kind, write it with some
/// verbs, or both. Written `{apiVersion, kind, verbs: [read, patch, ...],
/// namespaces}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RuleText", into = "RuleText")]
pub struct Rule {
    /// `v1`, `apps/v1`, or `*` for any.
    pub api_version: String,
    /// The kind, or `*` for any kind of that apiVersion (never Secrets).
    pub kind: String,
    /// The write verbs allowed.
    pub verbs: Vec<Verb>,
    /// Whether the plugin may subscribe to and read the kind.
    pub read: bool,
    /// Writes only to objects in these namespaces; absent means any
    /// namespace, and cluster-scoped objects. Reads are of whole kinds.
    pub namespaces: Option<Vec<String>>,
}

/// A rule as written: `read` is one of the verbs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleText {
    api_version: String,
    kind: String,
    verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespaces: Option<Vec<String>>,
}

impl TryFrom<RuleText> for Rule {
    type Error = String;

    fn try_from(text: RuleText) -> Result<Self, String> {
        let mut rule = Rule {
            api_version: text.api_version,
            kind: text.kind,
            verbs: Vec::new(),
            read: false,
            namespaces: text.namespaces,
        };
        for verb in text.verbs {
            if verb == "read" {
                rule.read = true;
                continue;
            }
            let parsed: Verb = serde_json::from_value(serde_json::Value::String(verb.clone()))
                .map_err(|_| {
                    format!(
                        "unknown verb {verb:?}: read, apply, create, patch, patchStatus or delete"
                    )
                })?;
            rule.verbs.push(parsed);
        }
        if rule.read && rule.namespaces.is_some() {
            return Err(format!(
                "{} {}: `read` grants the whole kind and cannot be narrowed to namespaces; give it in a rule of its own",
                rule.api_version, rule.kind
            ));
        }
        Ok(rule)
    }
}

impl From<Rule> for RuleText {
    fn from(rule: Rule) -> Self {
        let mut verbs: Vec<String> = rule.read.then(|| "read".to_string()).into_iter().collect();
        verbs.extend(rule.verbs.iter().map(|v| {
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }));
        RuleText {
            api_version: rule.api_version,
            kind: rule.kind,
            verbs,
            namespaces: rule.namespaces,
        }
    }
}

impl Rule {
    /// Whether the rule names `kind`. A wildcard kind never names Secrets.
    fn names(&self, api_version: &str, kind: &str) -> bool {
        let wild = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        let secret = api_version == "v1" && kind == "Secret";
        wild(&self.api_version, api_version) && (self.kind == kind || (self.kind == "*" && !secret))
    }

    fn allows(&self, kind: &KindKey, verb: Verb, namespace: Option<&str>) -> bool {
        self.names(&kind.api_version, &kind.kind)
            && self.verbs.contains(&verb)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|allowed| namespace.is_some_and(|ns| allowed.iter().any(|a| a == ns)))
    }

    /// Whether everything `other` allows, this rule allows too.
    fn covers(&self, other: &Rule) -> bool {
        let names = (self.api_version == "*" || self.api_version == other.api_version)
            && (self.kind == other.kind || (self.kind == "*" && other.kind != "Secret"));
        names
            && (!other.read || self.read)
            && other.verbs.iter().all(|v| self.verbs.contains(v))
            && match (&self.namespaces, &other.namespaces) {
                (None, _) => true,
                (Some(_), None) => other.verbs.is_empty(),
                (Some(mine), Some(theirs)) => theirs.iter().all(|ns| mine.contains(ns)),
            }
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

    /// The rules of `plugin`, if it has an entry.
    pub fn rules(&self, plugin: &str) -> Option<&[Rule]> {
        self.0.get(plugin).map(Vec::as_slice)
    }

    /// Give `plugin` these rules, or no entry at all.
    pub fn set(&mut self, plugin: &str, rules: Option<Vec<Rule>>) {
        match rules {
            Some(rules) => {
                self.0.insert(plugin.to_string(), rules);
            }
            None => {
                self.0.remove(plugin);
            }
        }
    }

    /// Check that `plugin` may subscribe to and read every one of `kinds`
    /// (apiVersion, kind as the manifest names it).
    ///
    /// # Errors
    /// A message naming the first kind no rule grants, and the rule to add.
    pub fn check_reads<'a>(
        &self,
        plugin: &str,
        kinds: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), String> {
        let Some(rules) = self.0.get(plugin) else {
            return Ok(());
        };
        for (api_version, kind) in kinds {
            if !rules.iter().any(|r| r.read && r.names(api_version, kind)) {
                return Err(format!(
                    "plugin {plugin} may not read {api_version} {kind}: nothing grants it; add {{apiVersion: {api_version}, kind: {kind}, verbs: [read]}} to its rules"
                ));
            }
        }
        Ok(())
    }

    /// Check that `rules` (a Plugin object's own) stay within what the
    /// operator allows `plugin`, if the operator narrowed it.
    ///
    /// # Errors
    /// A message naming the first rule that goes beyond.
    pub fn check_within(&self, plugin: &str, rules: &[Rule]) -> Result<(), String> {
        let Some(ceiling) = self.0.get(plugin) else {
            return Ok(());
        };
        for rule in rules {
            if !ceiling.iter().any(|c| c.covers(rule)) {
                return Err(format!(
                    "{} {} ({}) goes beyond what the operator's allowlist (allow.{plugin}) grants",
                    rule.api_version,
                    rule.kind,
                    RuleText::from(rule.clone()).verbs.join(", ")
                ));
            }
        }
        Ok(())
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
            patch: json!({}).into(),
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
    fn reads_are_granted_by_kind_and_wildcards_never_grant_secrets() {
        let allow = list(
            "p:\n- {apiVersion: v1, kind: ConfigMap, verbs: [read, patch]}\n- {apiVersion: '*', kind: '*', verbs: [read]}\nq: []\n",
        );
        assert!(
            allow
                .check_reads("p", [("v1", "ConfigMap"), ("apps/v1", "Deployment")])
                .is_ok()
        );
        let err = allow.check_reads("p", [("v1", "Secret")]).unwrap_err();
        assert!(err.contains("may not read v1 Secret"), "{err}");
        assert!(err.contains("verbs: [read]"), "{err}");
        assert!(allow.check_reads("q", [("v1", "ConfigMap")]).is_err());
        assert!(allow.check_reads("unnamed", [("v1", "Secret")]).is_ok());
        let star = list("p:\n- {apiVersion: '*', kind: '*', verbs: [patch]}\n");
        assert!(star.check("p", &patch("Secret", None)).is_err());
        assert!(star.check("p", &patch("ConfigMap", None)).is_ok());
    }

    #[test]
    fn read_cannot_be_narrowed_to_namespaces() {
        let err = serde_norway::from_str::<Allowlist>(
            "p:\n- {apiVersion: v1, kind: ConfigMap, verbs: [read], namespaces: [a]}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot be narrowed"), "{err}");
        let err = serde_norway::from_str::<Allowlist>(
            "p:\n- {apiVersion: v1, kind: ConfigMap, verbs: [reed]}\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown verb"), "{err}");
    }

    #[test]
    fn a_plugin_object_stays_within_the_operator_entry() {
        let allow = list(
            "p:\n- {apiVersion: v1, kind: ConfigMap, verbs: [read]}\n- {apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [a, b]}\n",
        );
        let rules = |yaml: &str| -> Vec<Rule> { serde_norway::from_str(yaml).unwrap() };
        assert!(allow.check_within("p", &rules("- {apiVersion: v1, kind: ConfigMap, verbs: [read]}\n- {apiVersion: v1, kind: ConfigMap, verbs: [patch], namespaces: [a]}")).is_ok());
        assert!(
            allow
                .check_within(
                    "p",
                    &rules("- {apiVersion: v1, kind: ConfigMap, verbs: [patch]}")
                )
                .is_err()
        );
        assert!(
            allow
                .check_within(
                    "p",
                    &rules("- {apiVersion: v1, kind: Secret, verbs: [read]}")
                )
                .is_err()
        );
        assert!(
            allow
                .check_within(
                    "other",
                    &rules("- {apiVersion: v1, kind: Secret, verbs: [read]}")
                )
                .is_ok()
        );
        let round: Vec<Rule> = rules("- {apiVersion: v1, kind: ConfigMap, verbs: [read, patch]}");
        assert_eq!(
            serde_json::to_value(&round).unwrap()[0]["verbs"],
            serde_json::json!(["read", "patch"])
        );
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
