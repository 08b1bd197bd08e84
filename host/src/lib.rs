//! Informant: a WebAssembly-extensible event-processing host for Kubernetes.
//!
//! The host watches what its plugins subscribe to, keeps it in an indexed
//! [`cache`], calls the sandboxed [`plugin`]s with each event, and executes
//! the [`action`]s they commit and keeps each plugin's [`state`].

pub mod action;
pub mod admission;
pub mod authoring;
pub mod cache;
pub mod catalog;
mod cli;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod dispatch;
mod examples;
pub mod http;
pub mod informer;
pub mod leader;
pub mod oci;
pub mod plugin;
pub mod reload;
mod replay;
pub mod runtime;
pub mod settings;
pub mod shard;
pub mod source;
pub mod state;
pub mod tls;
pub mod transport;
pub mod vocabulary;
