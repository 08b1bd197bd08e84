//! Kubernetes label and field selectors: parsing, validation and matching.
//!
//! The grammar follows `k8s.io/apimachinery/pkg/labels`: requirements separated
//! by commas, each one of `key`, `!key`, `key=value`, `key==value`,
//! `key!=value`, `key in (a,b)` or `key notin (a,b)`.

use std::fmt;

/// Errors from parsing a selector.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The selector text does not follow the grammar.
    #[error("invalid selector {selector:?}: {reason}")]
    Syntax {
        /// The selector as given.
        selector: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// A field selector names a field that cannot be selected on.
    #[error(
        "field selector {selector:?}: field {field:?} is not supported (use metadata.name or metadata.namespace)"
    )]
    UnsupportedField {
        /// The selector as given.
        selector: String,
        /// The field it names.
        field: String,
    },
}

/// The operator of one label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    /// `key=value` or `key==value`.
    Equals,
    /// `key!=value` (also matches objects without the key).
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)` (also matches objects without the key).
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the key's value is compared.
    pub operator: Operator,
    /// The values compared against; empty for `Exists` and `DoesNotExist`.
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether a set of labels, looked up by `get`, satisfies this requirement.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        let value = get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotEquals | Operator::NotIn => {
                !value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parse a selector such as `app=web,tier in (front,back),!legacy`.
    ///
    /// # Errors
    /// [`Error::Syntax`] naming the offending part.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let syntax = |reason: String| Error::Syntax {
            selector: text.to_string(),
            reason,
        };
        let mut requirements = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (req, after) = parse_requirement(rest).map_err(syntax)?;
            requirements.push(req);
            rest = after.trim_start();
            if let Some(after_comma) = rest.strip_prefix(',') {
                rest = after_comma.trim_start();
                if rest.is_empty() {
                    return Err(syntax("trailing comma".into()));
                }
            } else if !rest.is_empty() {
                return Err(syntax(format!("expected ',' before {rest:?}")));
            }
        }
        Ok(Self { requirements })
    }

    /// A selector of these requirements, all of which must hold.
    pub fn from_requirements(requirements: Vec<Requirement>) -> Self {
        Self { requirements }
    }

    /// The requirements, all of which must hold.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the selector has no requirement and so matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether labels given as (key, value) pairs satisfy every requirement.
    pub fn matches_pairs<K: AsRef<str>, V: AsRef<str>>(&self, labels: &[(K, V)]) -> bool {
        self.requirements.iter().all(|r| {
            r.matches(|key| {
                labels
                    .iter()
                    .find(|(k, _)| k.as_ref() == key)
                    .map(|(_, v)| v.as_ref())
            })
        })
    }

    /// Whether the labels of a JSON object (`metadata.labels`) satisfy the selector.
    pub fn matches_object(&self, object: &serde_json::Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(|l| l.as_object());
        self.requirements
            .iter()
            .all(|r| r.matches(|key| labels.and_then(|l| l.get(key)).and_then(|v| v.as_str())))
    }
}

/// The structured form Kubernetes objects carry (`metav1.LabelSelector`:
/// `matchLabels` and `matchExpressions`), as webhook configurations and
/// workloads write it. Both forms say the same: a requirement in one is a
/// requirement in the other.
impl LabelSelector {
    /// Read `{"matchLabels": {...}, "matchExpressions": [...]}`; null or
    /// `{}` is the empty selector, which matches everything.
    ///
    /// # Errors
    /// [`Error::Syntax`] naming what is wrong: an unknown operator, values
    /// where none belong (or none where some must be), a bad key or value.
    pub fn from_structured(value: &serde_json::Value) -> Result<Self, Error> {
        let syntax = |reason: String| Error::Syntax {
            selector: value.to_string(),
            reason,
        };
        let mut requirements = Vec::new();
        if value.is_null() {
            return Ok(Self { requirements });
        }
        let map = value
            .as_object()
            .ok_or_else(|| syntax("a label selector must be an object".into()))?;
        if let Some(labels) = map.get("matchLabels").filter(|v| !v.is_null()) {
            let labels = labels
                .as_object()
                .ok_or_else(|| syntax("matchLabels must be an object".into()))?;
            for (key, v) in labels {
                let v = v
                    .as_str()
                    .ok_or_else(|| syntax(format!("matchLabels.{key} must be a string")))?;
                validate_key(key).map_err(syntax)?;
                validate_value(v).map_err(syntax)?;
                requirements.push(Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: vec![v.to_string()],
                });
            }
        }
        if let Some(exprs) = map.get("matchExpressions").filter(|v| !v.is_null()) {
            let exprs = exprs
                .as_array()
                .ok_or_else(|| syntax("matchExpressions must be a list".into()))?;
            for (i, e) in exprs.iter().enumerate() {
                let key = e
                    .get("key")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| syntax(format!("matchExpressions[{i}].key is required")))?;
                validate_key(key).map_err(syntax)?;
                let values: Vec<String> = match e.get("values") {
                    None | Some(serde_json::Value::Null) => Vec::new(),
                    Some(serde_json::Value::Array(vs)) => vs
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                syntax(format!("matchExpressions[{i}].values must be strings"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    Some(_) => {
                        return Err(syntax(format!(
                            "matchExpressions[{i}].values must be a list"
                        )));
                    }
                };
                let operator = match e.get("operator").and_then(serde_json::Value::as_str) {
                    Some("In") => Operator::In,
                    Some("NotIn") => Operator::NotIn,
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    other => {
                        return Err(syntax(format!(
                            "matchExpressions[{i}].operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                        )));
                    }
                };
                let wants_values = matches!(operator, Operator::In | Operator::NotIn);
                if wants_values == values.is_empty() {
                    return Err(syntax(format!(
                        "matchExpressions[{i}]: {} values",
                        if wants_values {
                            "In and NotIn need"
                        } else {
                            "Exists and DoesNotExist take no"
                        }
                    )));
                }
                for v in &values {
                    validate_value(v).map_err(syntax)?;
                }
                requirements.push(Requirement {
                    key: key.to_string(),
                    operator,
                    values,
                });
            }
        }
        Ok(Self { requirements })
    }

    /// The structured form: equalities as `matchLabels` (when a key has
    /// only one), everything else as `matchExpressions` (`!=` becomes
    /// `NotIn` with one value, which means the same: it also matches objects
    /// without the key).
    pub fn to_structured(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut labels = Map::new();
        let mut exprs = Vec::new();
        for r in &self.requirements {
            let equality_once = r.operator == Operator::Equals
                && !labels.contains_key(&r.key)
                && self.requirements.iter().filter(|o| o.key == r.key).count() == 1;
            if equality_once {
                labels.insert(r.key.clone(), json!(r.values[0]));
                continue;
            }
            let (op, values) = match r.operator {
                Operator::Equals | Operator::In => ("In", Some(&r.values)),
                Operator::NotEquals | Operator::NotIn => ("NotIn", Some(&r.values)),
                Operator::Exists => ("Exists", None),
                Operator::DoesNotExist => ("DoesNotExist", None),
            };
            let mut e = json!({"key": r.key, "operator": op});
            if let Some(values) = values {
                e["values"] = json!(values);
            }
            exprs.push(e);
        }
        let mut out = Map::new();
        if !labels.is_empty() {
            out.insert("matchLabels".into(), Value::Object(labels));
        }
        if !exprs.is_empty() {
            out.insert("matchExpressions".into(), Value::Array(exprs));
        }
        Value::Object(out)
    }

    /// Both selectors at once: every requirement of each.
    #[must_use]
    pub fn and(mut self, other: &LabelSelector) -> Self {
        for r in &other.requirements {
            if !self.requirements.contains(r) {
                self.requirements.push(r.clone());
            }
        }
        self
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r.operator {
                Operator::Equals => write!(f, "{}={}", r.key, r.values[0])?,
                Operator::NotEquals => write!(f, "{}!={}", r.key, r.values[0])?,
                Operator::In => write!(f, "{} in ({})", r.key, r.values.join(","))?,
                Operator::NotIn => write!(f, "{} notin ({})", r.key, r.values.join(","))?,
                Operator::Exists => write!(f, "{}", r.key)?,
                Operator::DoesNotExist => write!(f, "!{}", r.key)?,
            }
        }
        Ok(())
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

fn take_word(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !is_key_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

fn parse_requirement(s: &str) -> Result<(Requirement, &str), String> {
    if let Some(after) = s.strip_prefix('!') {
        let (key, rest) = take_word(after.trim_start());
        validate_key(key)?;
        let req = Requirement {
            key: key.into(),
            operator: Operator::DoesNotExist,
            values: vec![],
        };
        return Ok((req, rest));
    }
    let (key, rest) = take_word(s);
    validate_key(key)?;
    let rest_trim = rest.trim_start();
    let (operator, after_op) = if let Some(r) = rest_trim.strip_prefix("==") {
        (Operator::Equals, r)
    } else if let Some(r) = rest_trim.strip_prefix("!=") {
        (Operator::NotEquals, r)
    } else if let Some(r) = rest_trim.strip_prefix('=') {
        (Operator::Equals, r)
    } else if let Some(r) = strip_keyword(rest_trim, "notin") {
        (Operator::NotIn, r)
    } else if let Some(r) = strip_keyword(rest_trim, "in") {
        (Operator::In, r)
    } else {
        let req = Requirement {
            key: key.into(),
            operator: Operator::Exists,
            values: vec![],
        };
        return Ok((req, rest));
    };
    match operator {
        Operator::In | Operator::NotIn => {
            let inner = after_op.trim_start();
            let inner = inner
                .strip_prefix('(')
                .ok_or_else(|| format!("expected '(' after {key:?}"))?;
            let close = inner
                .find(')')
                .ok_or_else(|| format!("missing ')' in the values of {key:?}"))?;
            let mut values = Vec::new();
            for v in inner[..close].split(',') {
                let v = v.trim();
                validate_value(v)?;
                values.push(v.to_string());
            }
            Ok((
                Requirement {
                    key: key.into(),
                    operator,
                    values,
                },
                &inner[close + 1..],
            ))
        }
        _ => {
            let (value, rest) = take_word(after_op.trim_start());
            validate_value(value)?;
            Ok((
                Requirement {
                    key: key.into(),
                    operator,
                    values: vec![value.into()],
                },
                rest,
            ))
        }
    }
}

fn strip_keyword<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(word)?;
    (rest.starts_with(|c: char| c.is_whitespace() || c == '(')).then_some(rest)
}

/// Check a label key: an optional DNS-1123 subdomain prefix and `/`, then a
/// name of at most 63 characters of alphanumerics, `-`, `_` and `.`, starting
/// and ending with an alphanumeric.
///
/// # Errors
/// A message saying what is wrong with the key.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("expected a label key".into());
    }
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Err(format!(
            "label key prefix {prefix:?} must be a DNS-1123 subdomain"
        ));
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "label key name {name:?} must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// Check a label value: empty, or at most 63 characters of alphanumerics,
/// `-`, `_` and `.`, starting and ending with an alphanumeric.
///
/// # Errors
/// A message saying what is wrong with the value.
pub fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} must be empty or 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        ))
    }
}

fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether `s` is a DNS-1123 label: at most 63 lowercase alphanumerics or
/// `-`, starting and ending with an alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether `s` is a DNS-1123 subdomain as Kubernetes checks it: at most 253
/// characters, dot-separated parts of lowercase alphanumerics or `-`, each
/// starting and ending with an alphanumeric. Unlike DNS, a part may be
/// longer than 63 characters (a ConfigMap may be named with 100 `a`s).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    let part = |p: &str| {
        p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    !s.is_empty() && s.len() <= 253 && s.split('.').all(part)
}

/// A field that a field selector can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `metadata.name`.
    Name,
    /// `metadata.namespace`.
    Namespace,
}

/// One requirement of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field compared.
    pub field: Field,
    /// True for `!=`.
    pub negated: bool,
    /// The value compared against.
    pub value: String,
}

/// A parsed field selector over `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parse a selector such as `metadata.name=foo,metadata.namespace!=kube-system`.
    ///
    /// # Errors
    /// [`Error::Syntax`] for bad grammar, [`Error::UnsupportedField`] for
    /// any other field.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, negated, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, false, v)
            } else {
                return Err(Error::Syntax {
                    selector: text.into(),
                    reason: format!("{part:?} is not of the form field=value or field!=value"),
                });
            };
            let field = match field.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => {
                    return Err(Error::UnsupportedField {
                        selector: text.into(),
                        field: other.into(),
                    });
                }
            };
            requirements.push(FieldRequirement {
                field,
                negated,
                value: value.trim().to_string(),
            });
        }
        Ok(Self { requirements })
    }

    /// The requirements, all of which must hold.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether an object with this namespace and name satisfies the selector.
    pub fn matches(&self, namespace: Option<&str>, name: &str) -> bool {
        self.requirements.iter().all(|r| {
            let actual = match r.field {
                Field::Name => name,
                Field::Namespace => namespace.unwrap_or(""),
            };
            (actual == r.value) != r.negated
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let field = match r.field {
                Field::Name => "metadata.name",
                Field::Namespace => "metadata.namespace",
            };
            write!(
                f,
                "{field}{}{}",
                if r.negated { "!=" } else { "=" },
                r.value
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_kubernetes_does() {
        let l = labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("app.kubernetes.io/name", "x"),
        ]);
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=db",
            "tier in (front, back)",
            "tier notin (back)",
            "missing notin (back)",
            "app",
            "!missing",
            "app=web,tier=front",
            "app.kubernetes.io/name=x",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches_pairs(&l),
                "{s} should match"
            );
        }
        let no = [
            "app=db",
            "app!=web",
            "tier in (back)",
            "tier notin (front)",
            "missing",
            "!app",
            "app=web,tier=back",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches_pairs(&l),
                "{s} should not match"
            );
        }
    }

    #[test]
    fn malformed_selectors_are_rejected_with_the_reason() {
        for s in [
            "app=",
            "=web",
            "app in front",
            "app in (a",
            "a,",
            "app=web tier=x",
            "-bad=x",
            "a=b$c",
        ] {
            let err = LabelSelector::parse(s);
            // `app=` is valid: an empty value.
            if s == "app=" {
                assert!(err.is_ok());
                continue;
            }
            assert!(
                matches!(err, Err(Error::Syntax { .. })),
                "{s} should fail, got {err:?}"
            );
        }
    }

    #[test]
    fn selectors_print_back_in_canonical_form() {
        let s = LabelSelector::parse("a == b, c in (x,y),!d").unwrap();
        assert_eq!(s.to_string(), "a=b,c in (x,y),!d");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn field_selectors_compare_name_and_namespace() {
        let s = FieldSelector::parse("metadata.name=a,metadata.namespace!=kube-system").unwrap();
        assert!(s.matches(Some("default"), "a"));
        assert!(!s.matches(Some("kube-system"), "a"));
        assert!(!s.matches(Some("default"), "b"));
        assert!(matches!(
            FieldSelector::parse("spec.nodeName=x"),
            Err(Error::UnsupportedField { .. })
        ));
        assert!(matches!(
            FieldSelector::parse("metadata.name"),
            Err(Error::Syntax { .. })
        ));
    }

    #[test]
    fn structured_selectors_mean_what_their_text_means() {
        use serde_json::json;
        let text = LabelSelector::parse("team=a,tier in (web,db),env!=prod,!legacy,owner").unwrap();
        let structured = text.to_structured();
        assert_eq!(
            structured,
            json!({"matchLabels": {"team": "a"}, "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "db"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "owner", "operator": "Exists"},
            ]})
        );
        let back = LabelSelector::from_structured(&structured).unwrap();
        for labels in [
            json!({"team": "a", "tier": "web", "owner": "x"}),
            json!({"team": "a", "tier": "web", "owner": "x", "env": "prod"}),
            json!({"team": "b", "tier": "db", "owner": "x"}),
            json!({"team": "a", "tier": "db", "owner": "x", "legacy": "1"}),
        ] {
            let object = json!({"metadata": {"labels": labels}});
            assert_eq!(
                text.matches_object(&object),
                back.matches_object(&object),
                "{labels}"
            );
        }
        assert!(
            LabelSelector::from_structured(&json!(null))
                .unwrap()
                .is_empty()
        );
        assert!(
            LabelSelector::from_structured(&json!({}))
                .unwrap()
                .is_empty()
        );
        for bad in [
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchLabels": {"a": 1}}),
            json!({"matchLabels": {"bad key!": "x"}}),
        ] {
            assert!(LabelSelector::from_structured(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_combine_by_requiring_both() {
        let both = LabelSelector::parse("a=1")
            .unwrap()
            .and(&LabelSelector::parse("b=2,a=1").unwrap());
        assert_eq!(both.to_string(), "a=1,b=2");
    }

    #[test]
    fn dns_names_follow_rfc_1123() {
        assert!(is_dns1123_label("my-plugin-2"));
        assert!(!is_dns1123_label("My-plugin"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("example.com"));
        assert!(!is_dns1123_subdomain("example..com"));
    }
}
