//! Field paths into JSON objects, the keys of the cache's indexes.
//!
//! `spec.nodeName`, `metadata.ownerReferences[*].uid`, `spec.containers[0].image`
//! and `metadata.labels["app.kubernetes.io/name"]` are all paths.

use std::fmt;

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Field(String),
    Element(usize),
    Every,
}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    steps: Vec<Step>,
}

/// A field path that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid field path {path:?}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldPath {
    /// Parse a path.
    ///
    /// # Errors
    /// [`PathError`] naming the problem.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let err = |reason: &str| PathError {
            path: text.into(),
            reason: reason.into(),
        };
        let mut steps = Vec::new();
        let mut rest = text;
        let mut expect_field = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']').ok_or_else(|| err("missing ']'"))?;
                let inner = &after[..close];
                let step = if inner == "*" {
                    Step::Every
                } else if let Some(quoted) =
                    inner.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
                {
                    Step::Field(quoted.to_string())
                } else if let Some(quoted) =
                    inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                {
                    Step::Field(quoted.to_string())
                } else {
                    Step::Element(
                        inner
                            .parse()
                            .map_err(|_| err("brackets take *, a number or a quoted name"))?,
                    )
                };
                steps.push(step);
                rest = &after[close + 1..];
                expect_field = false;
            } else if let Some(after) = rest.strip_prefix('.') {
                if expect_field {
                    return Err(err("empty field name"));
                }
                rest = after;
                expect_field = true;
                if rest.is_empty() {
                    return Err(err("ends with '.'"));
                }
            } else {
                if !expect_field {
                    return Err(err("expected '.' or '[' between steps"));
                }
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                steps.push(Step::Field(rest[..end].to_string()));
                rest = &rest[end..];
                expect_field = false;
            }
        }
        if steps.is_empty() {
            return Err(err("empty path"));
        }
        Ok(Self {
            text: text.to_string(),
            steps,
        })
    }

    /// The steps, in order.
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Append every scalar found at this path in `value` to `out`, as strings.
    pub fn collect(&self, value: &Value, out: &mut Vec<String>) {
        collect(&self.steps, value, out);
    }
}

fn collect(steps: &[Step], value: &Value, out: &mut Vec<String>) {
    let Some((step, rest)) = steps.split_first() else {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Bool(b) => out.push(b.to_string()),
            // A list at the end of a path contributes each of its scalars.
            Value::Array(items) => items.iter().for_each(|i| collect(&[], i, out)),
            Value::Null | Value::Object(_) => {}
        }
        return;
    };
    match (step, value) {
        (Step::Field(name), Value::Object(map)) => {
            if let Some(v) = map.get(name) {
                collect(rest, v, out);
            }
        }
        (Step::Element(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                collect(rest, v, out);
            }
        }
        (Step::Every, Value::Array(items)) => items.iter().for_each(|v| collect(rest, v, out)),
        (Step::Every, Value::Object(map)) => map.values().for_each(|v| collect(rest, v, out)),
        _ => {}
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(path: &str, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        FieldPath::parse(path).unwrap().collect(v, &mut out);
        out
    }

    #[test]
    fn paths_reach_fields_lists_and_dotted_keys() {
        let pod = json!({
            "metadata": {
                "labels": {"app": "web", "app.kubernetes.io/name": "shop"},
                "ownerReferences": [{"uid": "u1"}, {"uid": "u2"}]
            },
            "spec": {"nodeName": "n1", "replicas": 3, "containers": [{"image": "a"}, {"image": "b"}]}
        });
        assert_eq!(values("spec.nodeName", &pod), ["n1"]);
        assert_eq!(values("spec.replicas", &pod), ["3"]);
        assert_eq!(values("metadata.labels.app", &pod), ["web"]);
        assert_eq!(
            values("metadata.labels[\"app.kubernetes.io/name\"]", &pod),
            ["shop"]
        );
        assert_eq!(
            values("metadata.ownerReferences[*].uid", &pod),
            ["u1", "u2"]
        );
        assert_eq!(values("spec.containers[1].image", &pod), ["b"]);
        assert!(values("spec.missing.deeper", &pod).is_empty());
    }

    #[test]
    fn malformed_paths_are_rejected() {
        for p in ["", ".a", "a.", "a..b", "a[", "a[x]", "a[0]b"] {
            assert!(FieldPath::parse(p).is_err(), "{p:?} should be rejected");
        }
    }
}
