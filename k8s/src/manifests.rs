//! Reading Kubernetes objects from YAML and JSON files, as `kubectl apply -f` does.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

/// A file that could not be read as Kubernetes objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not valid YAML or JSON.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said, with the line.
        reason: String,
    },
    /// A document is not a Kubernetes object.
    #[error("{path}: document {document}: {reason}")]
    NotAnObject {
        /// The file.
        path: String,
        /// Which document (1-based).
        document: usize,
        /// What is missing.
        reason: String,
    },
}

/// Read every object in a YAML (multi-document) or JSON file. `List` kinds
/// and JSON arrays are flattened; items of a typed list (`ConfigMapList`)
/// get the apiVersion and kind that list responses leave out.
///
/// # Errors
/// [`Error`] naming the file, and the line or document at fault.
pub fn read_objects(path: &Path) -> Result<Vec<Value>, Error> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|cause| Error::Io {
        path: display.clone(),
        cause,
    })?;
    parse_objects(&display, &text)
}

/// Parse objects from text; `name` is used in errors.
///
/// # Errors
/// As [`read_objects`].
pub fn parse_objects(name: &str, text: &str) -> Result<Vec<Value>, Error> {
    let mut documents = Vec::new();
    if text.trim_start().starts_with(['{', '[']) {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::Parse {
            path: name.into(),
            reason: e.to_string(),
        })?;
        documents.push(v);
    } else {
        for doc in serde_norway::Deserializer::from_str(text) {
            let v = Value::deserialize(doc).map_err(|e| Error::Parse {
                path: name.into(),
                reason: e.to_string(),
            })?;
            if !v.is_null() {
                documents.push(v);
            }
        }
    }
    let mut objects = Vec::new();
    for (i, doc) in documents.into_iter().enumerate() {
        flatten(name, i + 1, doc, &mut objects)?;
    }
    Ok(objects)
}

fn flatten(name: &str, document: usize, doc: Value, out: &mut Vec<Value>) -> Result<(), Error> {
    let not_object = |reason: &str| Error::NotAnObject {
        path: name.into(),
        document,
        reason: reason.into(),
    };
    match doc {
        Value::Array(items) => {
            for item in items {
                flatten(name, document, item, out)?;
            }
            Ok(())
        }
        Value::Object(mut map) => {
            let kind = map
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(Value::Array(items)) =
                map.remove("items").filter(|_| kind.ends_with("List"))
            {
                let api_version = map.get("apiVersion").cloned();
                let item_kind = kind
                    .strip_suffix("List")
                    .filter(|k| !k.is_empty())
                    .map(|k| Value::String(k.into()));
                for mut item in items {
                    if let Some(obj) = item.as_object_mut() {
                        if let (false, Some(av)) = (obj.contains_key("apiVersion"), &api_version) {
                            obj.insert("apiVersion".into(), av.clone());
                        }
                        if let (false, Some(k)) = (obj.contains_key("kind"), &item_kind) {
                            obj.insert("kind".into(), k.clone());
                        }
                    }
                    flatten(name, document, item, out)?;
                }
                return Ok(());
            }
            for field in ["apiVersion", "kind"] {
                if map
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(not_object(&format!("it has no {field}")));
                }
            }
            if map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(not_object("it has no metadata.name"));
            }
            out.push(Value::Object(map));
            Ok(())
        }
        _ => Err(not_object("it is not a mapping")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_and_lists_are_flattened() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: b}\n";
        let objects = parse_objects("x.yaml", text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1]["kind"], "ConfigMap");
        assert_eq!(objects[1]["apiVersion"], "v1");
    }

    #[test]
    fn errors_name_the_file_and_the_document() {
        let err = parse_objects("x.yaml", "kind: ConfigMap\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(err.to_string(), "x.yaml: document 1: it has no apiVersion");
        let err = parse_objects("y.yaml", "a: [\n").unwrap_err();
        assert!(err.to_string().starts_with("y.yaml: "), "{err}");
        assert!(err.to_string().contains("line"), "{err}");
    }
}
