//! Host bindings generated from the WIT contract in `wit/`.
// The generated code lowers and lifts values with `unsafe`; it is audited upstream.
#![allow(unsafe_code, missing_docs, unused_variables)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
});

pub use self::informant::plugin::{actions, cache, log, types};
