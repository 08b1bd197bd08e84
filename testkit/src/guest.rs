//! Python and JavaScript plugins, built by their SDKs' build scripts with
//! pinned toolchains (componentize-py from PyPI, componentize-js and esbuild
//! from npm), installed on first use.
//!
//! They are built by the first test that asks for one, not by `build.rs`, so
//! that the demo needs neither language, and a missing toolchain fails only
//! the tests that need it, with the reason. A lock file makes concurrent test
//! processes build once; sources older than the outputs are not rebuilt.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::SystemTime,
};

/// The pinned componentize-py; its version is in `guest-sdk/python/build.py`
/// and `pyproject.toml` too.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The pinned type checker the SDK's types are checked with (the
/// `typecheck` extra in `guest-sdk/python/pyproject.toml`).
const MYPY: &str = "mypy==2.4.1";

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

pub(crate) static LANGUAGES: [Guest; 2] = [
    Guest {
        language: "python",
        source: "main.py",
        plugins: &[
            ("label-enforcer", "python/label-enforcer"),
            ("replicator", "python/replicator"),
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
];

/// What to run a build script with.
struct Toolchain {
    program: &'static str,
    script: PathBuf,
    env: Vec<(&'static str, PathBuf)>,
}

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
        let mut toolchain = None;
        for (name, dir) in self.plugins {
            let source = root.join("plugins").join(dir).join(self.source);
            let output = out.join(format!("{name}.wasm"));
            if is_fresh(
                &output,
                &[&sdk, source.parent().unwrap_or(&source), &root.join("wit")],
            ) {
                continue;
            }
            if toolchain.is_none() {
                toolchain = Some(self.toolchain(&sdk, toolchains)?);
            }
            let Some(toolchain) = &toolchain else {
                unreachable!("set just above")
            };
            toolchain.build(&source, &output)?;
        }
        Ok(())
    }

    /// Build one plugin file of this language into `output`, with the
    /// toolchain `build_all` installed.
    pub(crate) fn build_file(
        &self,
        root: &Path,
        toolchains: &Path,
        source: &Path,
        output: &Path,
    ) -> Result<(), String> {
        self.toolchain(&root.join(self.sdk), toolchains)?
            .build(source, output)
    }

    /// Install the language's pinned tools when they are missing.
    pub(crate) fn install(&self, root: &Path, toolchains: &Path) -> Result<(), String> {
        self.toolchain(&root.join(self.sdk), toolchains).map(|_| ())
    }

    /// Find the language's tools, installing the pinned build toolchain
    /// when it is missing.
    fn toolchain(&self, sdk: &Path, toolchains: &Path) -> Result<Toolchain, String> {
        match self.language {
            "python" => {
                require("python3", "--version", "Python 3 with pip (python3)")?;
                let site = toolchains.join("python");
                std::fs::create_dir_all(toolchains)
                    .map_err(|e| format!("creating {}: {e}", toolchains.display()))?;
                // Concurrent test processes install once.
                let lock = std::fs::File::create(toolchains.join(".python.lock")).map_err(|e| {
                    format!("creating the install lock in {}: {e}", toolchains.display())
                })?;
                lock.lock()
                    .map_err(|e| format!("locking {}: {e}", toolchains.display()))?;
                let installed = [COMPONENTIZE_PY, MYPY].iter().all(|pin| {
                    let (name, version) = pin.split_once("==").unwrap_or((pin, ""));
                    site.join(format!("{}-{version}.dist-info", name.replace('-', "_")))
                        .is_dir()
                });
                if !installed {
                    let result = run(Command::new("python3")
                        .args([
                            "-m",
                            "pip",
                            "install",
                            "--quiet",
                            "--disable-pip-version-check",
                        ])
                        .args(["--no-warn-script-location", "--upgrade", "--target"])
                        .arg(&site)
                        .args([COMPONENTIZE_PY, MYPY]))?;
                    if !result.status.success() {
                        return Err(format!(
                            "installing {COMPONENTIZE_PY} and {MYPY} from PyPI into {} failed; install them yourself \
                             (python3 -m pip install {COMPONENTIZE_PY} {MYPY}) or give this machine access to PyPI:\n{}",
                            site.display(),
                            String::from_utf8_lossy(&result.stderr)
                        ));
                    }
                }
                Ok(Toolchain {
                    program: "python3",
                    script: sdk.join("build.py"),
                    env: vec![("PYTHONPATH", site)],
                })
            }
            _ => {
                require("node", "--version", "Node.js 20 or newer (node)")?;
                let installed = ["@bytecodealliance/componentize-js", "esbuild", "typescript"]
                    .iter()
                    .all(|p| {
                        sdk.join("node_modules")
                            .join(p)
                            .join("package.json")
                            .is_file()
                    });
                // A lockfile newer than the install means the pins moved.
                let stale = !is_fresh(
                    &sdk.join("node_modules/.package-lock.json"),
                    &[&sdk.join("package-lock.json")],
                );
                if !installed || stale {
                    require("npm", "--version", "npm (it comes with Node.js)")?;
                    // `install --no-save` installs what the lockfile pins and
                    // leaves it as it is. Not `ci`: the lockfile cannot list
                    // optional per-platform packages that were never
                    // published, and `ci` refuses it for that.
                    let result = run(Command::new("npm")
                        .args([
                            "install",
                            "--no-save",
                            "--no-audit",
                            "--no-fund",
                            "--loglevel=error",
                            "--prefix",
                        ])
                        .arg(sdk))?;
                    if !result.status.success() {
                        return Err(format!(
                            "installing the JavaScript toolchain with `npm install --prefix {}` failed; \
                             run it yourself or give this machine access to the npm registry:\n{}",
                            sdk.display(),
                            String::from_utf8_lossy(&result.stderr)
                        ));
                    }
                }
                Ok(Toolchain {
                    program: "node",
                    script: sdk.join("build.mjs"),
                    env: Vec::new(),
                })
            }
        }
    }
}

impl Toolchain {
    /// Run the SDK's build script: `source` into the component `output`.
    fn build(&self, source: &Path, output: &Path) -> Result<(), String> {
        let mut command = Command::new(self.program);
        command.arg(&self.script).arg(source).arg("-o").arg(output);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let result = run(&mut command)?;
        if !result.status.success() {
            return Err(format!(
                "building {} failed:\n{}{}",
                source.display(),
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            ));
        }
        Ok(())
    }
}

/// Fail with what is missing if `program` does not run.
fn require(program: &str, arg: &str, what: &str) -> Result<(), String> {
    match Command::new(program).arg(arg).output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(format!(
            "{what} is not installed; the tests of plugins in this language need it"
        )),
    }
}

fn run(command: &mut Command) -> Result<std::process::Output, String> {
    command
        .output()
        .map_err(|e| format!("could not run {:?}: {e}", command.get_program()))
}

/// Whether `output` exists and is newer than every file under `inputs`.
fn is_fresh(output: &Path, inputs: &[&Path]) -> bool {
    let Some(built) = modified(output) else {
        return false;
    };
    inputs
        .iter()
        .all(|input| newest(input).is_none_or(|t| t <= built))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time under `path`, skipping installed packages
/// and caches.
fn newest(path: &Path) -> Option<SystemTime> {
    if !path.is_dir() {
        return modified(path);
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !(name == "node_modules" || name == "__pycache__" || name.starts_with('.'))
        })
        .filter_map(|e| newest(&e.path()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_what_needs_it() {
        let err = require(
            "informant-no-such-tool",
            "--version",
            "Node.js 20 or newer (node)",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "Node.js 20 or newer (node) is not installed; the tests of plugins in this language need it"
        );
        assert!(require("cargo", "--version", "cargo").is_ok());
    }

    #[test]
    fn outputs_are_fresh_only_when_newer_than_every_input() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let input = dir.path().join("src");
        std::fs::create_dir(&input).expect("a source directory");
        std::fs::write(input.join("main.py"), "x").expect("a source file");
        let output = dir.path().join("out.wasm");
        assert!(!is_fresh(&output, &[&input]), "a missing output is stale");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&output, "wasm").expect("an output");
        assert!(is_fresh(&output, &[&input]));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(input.join("main.py"), "y").expect("a changed source");
        assert!(
            !is_fresh(&output, &[&input]),
            "a newer source makes it stale"
        );
        // Installed packages and caches beside the sources do not count.
        std::fs::write(&output, "wasm again").expect("a rebuilt output");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::create_dir(input.join("__pycache__")).expect("a cache directory");
        std::fs::write(input.join("__pycache__/main.pyc"), "c").expect("a cache file");
        assert!(is_fresh(&output, &[&input]));
    }
}
