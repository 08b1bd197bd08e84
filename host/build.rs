//! With the `examples` feature (on by default), build the six example
//! plugins for wasm32-wasip2 so that `informant dev` carries them: the demo
//! is the binary alone, with no plugin directory to prepare. Builds without
//! the feature (`--no-default-features`) need no wasm toolchain.

#[path = "../build-support/wasm_plugins.rs"]
mod wasm_plugins;

use std::{env, path::PathBuf};

/// The example plugins: their packages in `plugins/` and the names they
/// are built under.
const EXAMPLES: [(&str, &str); 6] = [
    ("label-enforcer", "label_enforcer"),
    ("replicator", "replicator"),
    ("restarter", "restarter"),
    ("tenant-namespaces", "tenant_namespaces"),
    ("owner-required", "owner_required"),
    ("default-requests", "default_requests"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var_os("CARGO_FEATURE_EXAMPLES").is_none() {
        return;
    }
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = wasm_plugins::target_dir(&root);
    wasm_plugins::watch_inputs(&root);
    wasm_plugins::ensure_wasm_target();

    let packages: Vec<&str> = EXAMPLES.iter().flat_map(|(p, _)| ["-p", *p]).collect();
    let output = wasm_plugins::build_wasm(&root.join("plugins"), &target_dir, &packages);
    if !output.status.success() {
        panic!(
            "building the example plugins that `informant dev` carries failed.\n\
             The wasm32-wasip2 target comes from rust-toolchain.toml; with rustup it installs itself. \
             To build the host without them, use --no-default-features.\n\
             --- cargo stderr ---\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let built = target_dir.join("wasm32-wasip2").join("release");
    for (package, file) in EXAMPLES {
        let from = built.join(format!("{file}.wasm"));
        let to = out_dir.join(format!("{package}.wasm"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    }
}
