//! Informant: a WebAssembly-extensible event-processing host for Kubernetes.
pub mod action;
pub mod cache;
pub mod plugin;
pub mod selector;
