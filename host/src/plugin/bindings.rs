//! Host bindings generated from the WIT contract: the current version in
//! `wit/` and every older one the host still loads (`wit/0.1.0/`).
// The generated code lowers and lifts values with `unsafe`; it is audited upstream.
#![allow(unsafe_code, missing_docs, unused_variables)]

/// `informant:plugin@0.2.0`, the current contract.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        additional_derives: [serde::Deserialize],
    });
}

/// `informant:plugin@0.1.0`: no `merged` count on events, no `instances`
/// in manifests.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "plugin",
        additional_derives: [serde::Serialize],
    });
}

pub use v0_2::informant::plugin::types;
