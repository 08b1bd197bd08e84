//! What the Informant host and its embedded API server both know about
//! Kubernetes objects, written once: label and field selectors and the
//! name rules they check (`selector`), and reading objects from YAML and
//! JSON manifest files (`manifests`).
//!
//! It depends on nothing of either: the host (`informant`) and the embedded
//! API server (`informant-apiserver`) both depend on it.

pub mod manifests;
pub mod selector;
