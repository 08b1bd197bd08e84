//! Building the plugins workspace (`plugins/`) for wasm32-wasip2 from a build
//! script, shared by the two that do it: the host's (the example plugins
//! `informant dev` carries) and the test kit's (the test fixtures). Included
//! with `#[path]`, so each build script stays one file with no build
//! dependencies.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// The plugins workspace's target directory: `wasm-plugins` in the
/// workspace's target directory, shared by both build scripts.
pub fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("wasm-plugins")
}

/// Rebuild when the contract, the Rust SDK or any plugin source changes.
pub fn watch_inputs(root: &Path) {
    for watched in [
        root.join("wit"),
        root.join("guest-sdk/src"),
        root.join("guest-sdk/Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    watch_sources(&root.join("plugins"));
}

/// `cargo build --release --locked --target wasm32-wasip2` in the plugins
/// workspace, into `target_dir`, with `extra` arguments.
pub fn build_wasm(plugins: &Path, target_dir: &Path, extra: &[&str]) -> std::process::Output {
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
pub fn ensure_wasm_target() {
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
pub fn watch_sources(dir: &Path) {
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
