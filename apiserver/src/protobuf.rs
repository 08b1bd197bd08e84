//! Protobuf request bodies: `kubectl create namespace|configmap|secret|
//! serviceaccount|deployment` send `application/vnd.kubernetes.protobuf`
//! and do not fall back to JSON. The envelope is the `k8s\0` magic and a
//! `runtime.Unknown`; the object inside is decoded with the `k8s-pb` types
//! and mapped to the JSON the rest of the server works with. Responses stay
//! JSON, which kubectl also accepts.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_pb::{
    api::{
        apps::v1 as apps,
        core::v1::{self as core, Container, PodTemplateSpec},
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, runtime::Unknown},
};
use prost::Message;
use serde_json::{Map, Value, json};

/// The magic bytes before every Kubernetes protobuf message.
const MAGIC: [u8; 4] = [0x6b, 0x38, 0x73, 0x00];

/// Decode a protobuf body into JSON.
///
/// # Errors
/// A message for a 400 (malformed) or 415 (a kind this server cannot decode).
pub fn decode(bytes: &[u8]) -> Result<Value, (u16, String)> {
    let body = bytes
        .strip_prefix(&MAGIC)
        .ok_or((400, "protobuf body without the k8s\\0 prefix".to_string()))?;
    let unknown =
        Unknown::decode(body).map_err(|e| (400, format!("malformed protobuf envelope: {e}")))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let bad = |e: prost::DecodeError| (400, format!("malformed protobuf {kind}: {e}"));
    let mut object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => {
            let ns = core::Namespace::decode(raw.as_slice()).map_err(bad)?;
            json!({"metadata": meta(ns.metadata)})
        }
        ("v1", "ConfigMap") => {
            let cm = core::ConfigMap::decode(raw.as_slice()).map_err(bad)?;
            let mut v = json!({"metadata": meta(cm.metadata)});
            if !cm.data.is_empty() {
                v["data"] = json!(cm.data);
            }
            if !cm.binary_data.is_empty() {
                v["binaryData"] = bytes_map(&cm.binary_data);
            }
            if let Some(i) = cm.immutable {
                v["immutable"] = json!(i);
            }
            v
        }
        ("v1", "Secret") => {
            let s = core::Secret::decode(raw.as_slice()).map_err(bad)?;
            let mut v = json!({"metadata": meta(s.metadata)});
            if !s.data.is_empty() {
                v["data"] = bytes_map(&s.data);
            }
            if !s.string_data.is_empty() {
                v["stringData"] = json!(s.string_data);
            }
            if let Some(t) = s.r#type {
                v["type"] = json!(t);
            }
            if let Some(i) = s.immutable {
                v["immutable"] = json!(i);
            }
            v
        }
        ("v1", "ServiceAccount") => {
            let sa = core::ServiceAccount::decode(raw.as_slice()).map_err(bad)?;
            let mut v = json!({"metadata": meta(sa.metadata)});
            if let Some(a) = sa.automount_service_account_token {
                v["automountServiceAccountToken"] = json!(a);
            }
            v
        }
        ("apps/v1", "Deployment") => {
            let d = apps::Deployment::decode(raw.as_slice()).map_err(bad)?;
            let spec = d.spec.unwrap_or_default();
            let mut s = Map::new();
            if let Some(r) = spec.replicas {
                s.insert("replicas".into(), json!(r));
            }
            if let Some(sel) = spec.selector {
                s.insert("selector".into(), json!({"matchLabels": sel.match_labels}));
            }
            if let Some(t) = spec.template {
                s.insert("template".into(), template(t));
            }
            s.insert("strategy".into(), json!({}));
            json!({"metadata": meta(d.metadata), "spec": s})
        }
        _ => {
            return Err((
                415,
                format!(
                    "protobuf bodies are decoded for Namespace, ConfigMap, Secret, ServiceAccount and Deployment, not {api_version} {kind}; send JSON"
                ),
            ));
        }
    };
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

fn bytes_map(m: &BTreeMap<String, Vec<u8>>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), json!(engine.encode(v))))
            .collect(),
    )
}

fn meta(m: Option<ObjectMeta>) -> Value {
    let m = m.unwrap_or_default();
    let mut v = Map::new();
    if let Some(n) = m.name.filter(|n| !n.is_empty()) {
        v.insert("name".into(), json!(n));
    }
    if let Some(n) = m.generate_name.filter(|n| !n.is_empty()) {
        v.insert("generateName".into(), json!(n));
    }
    if let Some(n) = m.namespace.filter(|n| !n.is_empty()) {
        v.insert("namespace".into(), json!(n));
    }
    if !m.labels.is_empty() {
        v.insert("labels".into(), json!(m.labels));
    }
    if !m.annotations.is_empty() {
        v.insert("annotations".into(), json!(m.annotations));
    }
    if !m.finalizers.is_empty() {
        v.insert("finalizers".into(), json!(m.finalizers));
    }
    Value::Object(v)
}

fn template(t: PodTemplateSpec) -> Value {
    let spec = t.spec.unwrap_or_default();
    let containers: Vec<Value> = spec.containers.into_iter().map(container).collect();
    let mut s = json!({"containers": containers});
    s["restartPolicy"] = json!(
        spec.restart_policy
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "Always".into())
    );
    json!({"metadata": meta(t.metadata), "spec": s})
}

fn container(c: Container) -> Value {
    let mut v = json!({"name": c.name.unwrap_or_default(), "resources": {}});
    if let Some(i) = c.image.filter(|i| !i.is_empty()) {
        v["image"] = json!(i);
    }
    if !c.command.is_empty() {
        v["command"] = json!(c.command);
    }
    if !c.args.is_empty() {
        v["args"] = json!(c.args);
    }
    if !c.ports.is_empty() {
        let ports: Vec<Value> = c
            .ports
            .into_iter()
            .map(|p| {
                let mut port = json!({"containerPort": p.container_port.unwrap_or(0)});
                // Empty means unset; the API server defaults the protocol.
                port["protocol"] = json!(
                    p.protocol
                        .filter(|x| !x.is_empty())
                        .unwrap_or_else(|| "TCP".into())
                );
                if let Some(n) = p.name.filter(|n| !n.is_empty()) {
                    port["name"] = json!(n);
                }
                port
            })
            .collect();
        v["ports"] = json!(ports);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    #[test]
    fn a_configmap_from_kubectl_create_decodes_to_json() {
        let cm = core::ConfigMap {
            metadata: Some(ObjectMeta {
                name: Some("cfg".into()),
                ..Default::default()
            }),
            data: BTreeMap::from([("a".to_string(), "b".to_string())]),
            ..Default::default()
        };
        let v = decode(&envelope("v1", "ConfigMap", cm.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "b"}})
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_are_refused() {
        assert_eq!(decode(b"not protobuf").unwrap_err().0, 400);
        assert_eq!(decode(&envelope("v1", "Pod", vec![])).unwrap_err().0, 415);
    }
}
