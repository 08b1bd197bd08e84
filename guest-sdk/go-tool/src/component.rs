//! A Go reactor module (`GOOS=wasip1 GOARCH=wasm -buildmode=c-shared`) into
//! a plugin component: the contract's world embedded as the component-type
//! metadata, then `wit-component` with the WASI preview1 reactor adapter.
//!
//! The adapter is the one of the wasmtime the host runs (48.0.8), so its
//! WASI imports are exactly what the host links. Its state is allocated
//! through the module's `cabi_realloc_adapter` export, a static arena in
//! the Go glue: the adapter first needs it while Go's runtime is still
//! starting (its first clock or random read), when Go cannot allocate, and
//! growing linear memory behind Go's allocator would hand the same pages
//! to both.

use std::path::Path;

use anyhow::{Context, Result};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};

/// The world every plugin targets.
pub const WORLD: &str = "plugin";

/// Wrap the core module `core` into a component of the contract in
/// `wit_dir` (the built-in one when none).
///
/// # Errors
/// If the contract does not load, or the module does not match the world
/// (an export missing or of the wrong type, which means glue generated
/// from another contract).
pub fn componentize(core: &[u8], wit_dir: Option<&Path>) -> Result<Vec<u8>> {
    let (resolve, world) = crate::bindings::load(wit_dir, WORLD)?;
    let mut module = core.to_vec();
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .context("embedding the contract's world into the module")?;
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .context("reading the Go module")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("adding the WASI preview1 reactor adapter")?
        .encode()
        .context(
            "the Go module does not fit the contract's world (is guest-sdk/go/internal/wit \
             generated from this contract? `cargo run -p informant-go -- bindings`)",
        )
}
