//! Build the example plugins (the `plugins/` workspace) for wasm32-wasip2, so
//! that every test runs real compiled components. Nothing prebuilt is
//! committed; this is the only place they are built. (The Python and
//! JavaScript examples are built by the tests that use them, so that the
//! demo needs neither language: see `src/guest.rs`.)

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf();
    let plugins = root.join("plugins");
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("wasm-plugins");

    for watched in [
        root.join("wit"),
        root.join("guest-sdk/src"),
        root.join("guest-sdk/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    watch_sources(&plugins);
    ensure_wasm_target();

    // First the feature builds: other versions of a fixture, under other
    // names (the sequencer with other watches for the reload tests, the
    // reader's latest-state and one-instance builds). Into the same target
    // directory, so they share every dependency; the full build after them
    // rebuilds the plain fixtures over them.
    let out = target_dir.join("wasm32-wasip2").join("release");
    for (package, feature, copy) in [
        ("sequencer", "wide", "sequencer_wide"),
        ("reader", "latest", "reader_latest"),
        ("reader", "single", "reader_single"),
    ] {
        let output = build_wasm(
            &plugins,
            &target_dir,
            &["-p", package, "--features", feature],
        );
        if !output.status.success() {
            panic!(
                "building {package} with {feature} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let to = out.join(format!("{copy}.wasm"));
        std::fs::copy(out.join(format!("{package}.wasm")), &to)
            .unwrap_or_else(|e| panic!("copying {package} to {}: {e}", to.display()));
    }

    let output = build_wasm(&plugins, &target_dir, &[]);
    if !output.status.success() {
        panic!(
            "building the example plugins in {} failed.\n\
             The wasm32-wasip2 target comes from rust-toolchain.toml; with rustup it installs itself.\n\
             --- cargo stderr ---\n{}",
            plugins.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("cargo:rustc-env=INFORMANT_TEST_PLUGINS={}", out.display());

    // The demo's plugin directory: the example plugins only (not the test
    // fixtures), under the names users would give them.
    let examples = target_dir.join("examples");
    std::fs::create_dir_all(&examples)
        .unwrap_or_else(|e| panic!("creating {}: {e}", examples.display()));
    for (built, name) in [
        ("label_enforcer", "label-enforcer"),
        ("replicator", "replicator"),
        ("restarter", "restarter"),
        ("tenant_namespaces", "tenant-namespaces"),
    ] {
        let from = out.join(format!("{built}.wasm"));
        let to = examples.join(format!("{name}.wasm"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
    }
}

/// `cargo build --release --locked --target wasm32-wasip2` in the plugins
/// workspace, into `target_dir`, with `extra` arguments.
fn build_wasm(plugins: &Path, target_dir: &Path, extra: &[&str]) -> std::process::Output {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(plugins)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .args(extra)
        .arg("--target-dir")
        .arg(target_dir);
    // This script's environment describes the host build; none of it applies
    // to the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo to build the plugins: {e}"))
}

/// Make sure the wasm32-wasip2 standard library is installed. rustup adds
/// the targets of `rust-toolchain.toml` when it installs the toolchain, but
/// not to a toolchain that was already there (rustup 1.28 and later): add it
/// then, as a user would, so a fresh clone needs no extra step.
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let installed = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| dir.is_dir());
    if installed {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .output();
    match added {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the wasm32-wasip2 target is missing and `rustup target add wasm32-wasip2` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "the wasm32-wasip2 target is missing and rustup could not be run ({e}); install the \
             target for your toolchain (with rustup: rustup target add wasm32-wasip2)"
        ),
    }
}

/// Rebuild when any plugin source changes, without watching build output.
fn watch_sources(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target"
            || name == "node_modules"
            || name == "__pycache__"
            || name.to_string_lossy().starts_with('.')
        {
            continue;
        }
        if path.is_dir() {
            watch_sources(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
