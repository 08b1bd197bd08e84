//! Host bindings generated from the WIT contract: the current version in
//! `wit/` and every older one the host still loads (`wit/0.2.0/`,
//! `wit/0.1.0/`).
// The generated code lowers and lifts values with `unsafe`; it is audited upstream.
#![allow(unsafe_code, missing_docs, unused_variables)]

/// `informant:plugin@0.3.0`, the current contract: the `plugin` world.
pub mod v0_3 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        additional_derives: [serde::Deserialize],
        ownership: Borrowing { duplicate_if_necessary: true },
    });

    /// The `plugin-with-admission` world: the same imports (the types are
    /// the ones above), and the `admission` export, which a component of
    /// the `plugin` world does not have.
    pub mod with_admission {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "plugin-with-admission",
            ownership: Borrowing { duplicate_if_necessary: true },
            with: {
                "informant:plugin/types": super::informant::plugin::types,
                "informant:plugin/cache": super::informant::plugin::cache,
                "informant:plugin/actions": super::informant::plugin::actions,
                "informant:plugin/log": super::informant::plugin::log,
                "informant:plugin/state": super::informant::plugin::state,
            },
        });
    }
}

/// `informant:plugin@0.2.0`: no state store, no admission.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/0.2.0",
        world: "plugin",
        additional_derives: [serde::Serialize],
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

/// `informant:plugin@0.1.0`: no `merged` count on events, no `instances`
/// in manifests.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.0",
        world: "plugin",
        additional_derives: [serde::Serialize],
        ownership: Borrowing { duplicate_if_necessary: true },
    });
}

pub use v0_3::informant::plugin::types;
