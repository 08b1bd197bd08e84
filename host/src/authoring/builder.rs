//! Building a plugin into a component with its language's toolchain: cargo
//! for Rust, the SDK's build script for Python (componentize-py) and
//! JavaScript (esbuild, then componentize-js), and `informant-go`'s build
//! for Go (go build for wasip1, then wit-component).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::SystemTime,
};

use super::{Error, Language, Project, Say, toolchain, toolchain::Toolchains};

/// Where a build tool's own output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// To this process's stderr as the tool prints it (`informant build`).
    Shown,
    /// Captured, and part of the error if the tool fails (the tests).
    Captured,
}

/// Build the project's component into [`Project::component`], with its
/// settings file beside it. Python, JavaScript and Go components newer than
/// every file of the project (but its `target/` and `tests/`) are not built
/// again; cargo decides that for Rust. Returns whether anything was built.
///
/// # Errors
/// A toolchain that is missing or cannot be installed, or a failed build.
pub fn build(project: &Project, toolchains: &Toolchains, say: Say<'_>) -> Result<bool, Error> {
    let output = project.component();
    // Built beside the plugin directory and moved in whole:
    // `informant dev --plugins target/plugins` may be watching it, and
    // loads what appears there.
    let partial = project
        .root
        .join("target")
        .join("build")
        .join(format!("{}.wasm", project.name));
    for dir in [
        project.plugin_dir(),
        project.root.join("target").join("build"),
    ] {
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
    }
    let fresh = project.language != Language::Rust && is_fresh_all(&output, &inputs(project)?);
    let built = match project.language {
        Language::Rust => {
            let artifact = rust(project, say)?;
            let same = std::fs::read(&artifact).ok() == std::fs::read(&output).ok();
            if !same {
                std::fs::copy(&artifact, &partial).map_err(Error::io(&partial))?;
            }
            !same
        }
        Language::Python | Language::Js | Language::Go if fresh => false,
        Language::Python => {
            say(&format!(
                "building {} with componentize-py",
                project.show(&project.source)
            ));
            python(
                toolchains,
                &project.sdk(),
                &project.wit(),
                &project.source,
                &partial,
                Output::Shown,
                say,
            )?;
            true
        }
        Language::Js => {
            say(&format!(
                "building {} with esbuild and componentize-js",
                project.show(&project.source)
            ));
            js(
                &project.sdk(),
                &project.wit(),
                &project.source,
                &partial,
                false,
                Output::Shown,
                say,
            )?;
            true
        }
        Language::Go => {
            say(&format!(
                "building the package of {} with go build (wasip1, reactor) and wit-component",
                project.show(&project.source)
            ));
            let package = project.source.parent().unwrap_or(&project.root);
            go(
                toolchains,
                &project.sdk(),
                &project.wit(),
                package,
                &partial,
                say,
            )?;
            true
        }
    };
    if built {
        std::fs::rename(&partial, &output).map_err(Error::io(&output))?;
    }
    settings_beside(project)?;
    Ok(built)
}

/// The project's settings file beside its component, as `NAME.<ext>`, so
/// that `informant check` and `informant dev --plugins target/plugins` load
/// the plugin with them; a settings file no longer named is removed.
fn settings_beside(project: &Project) -> Result<(), Error> {
    let component = project.component();
    let wanted = project.settings.as_ref().map(|s| {
        let ext = s.extension().and_then(|e| e.to_str()).unwrap_or("yaml");
        (s, component.with_extension(ext))
    });
    for ext in ["json", "yaml", "yml", "toml"] {
        let path = component.with_extension(ext);
        if path.is_file() && wanted.as_ref().is_none_or(|(_, w)| *w != path) {
            std::fs::remove_file(&path).map_err(Error::io(&path))?;
        }
    }
    if let Some((from, to)) = wanted {
        let text = std::fs::read(from).map_err(Error::io(from))?;
        // An unchanged file is left alone: a watching `informant dev` would
        // run the plugin's `init` again for a rewrite.
        if std::fs::read(&to).ok().as_ref() != Some(&text) {
            std::fs::write(&to, text).map_err(Error::io(&to))?;
        }
    }
    Ok(())
}

/// What a Python, JavaScript or Go build reads: every entry of the project but
/// its `target/` and `tests/`.
fn inputs(project: &Project) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(&project.root).map_err(Error::io(&project.root))?;
    Ok(entries
        .flatten()
        .filter(|e| !["target", "tests"].contains(&e.file_name().to_string_lossy().as_ref()))
        .map(|e| e.path())
        .collect())
}

/// `cargo build --release --target wasm32-wasip2` in the project, its
/// progress shown; the path of the component cargo wrote.
fn rust(project: &Project, say: Say<'_>) -> Result<PathBuf, Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let purpose = "Rust plugins are built with it";
    let found = Command::new(&cargo).arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        return Err(Error::Missing {
            what: "Rust (rustc and cargo; https://rustup.rs)".into(),
            purpose: purpose.into(),
        });
    }
    toolchain::wasm_target(&project.root, say)?;
    say("building with cargo build --release --target wasm32-wasip2");
    let out = Command::new(&cargo)
        .current_dir(&project.root)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Tool {
            step: "running cargo".into(),
            output: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Tool {
            step: "cargo build --release --target wasm32-wasip2".into(),
            output: String::new(),
        });
    }
    let manifest = project.root.join("Cargo.toml");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| {
            let files = m["filenames"].as_array().cloned().unwrap_or_default();
            files
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| Error::Project {
            path: manifest,
            reason: "the package builds no component: a plugin is a library with \
                     crate-type = [\"cdylib\"] under [lib]"
                .into(),
        })
}

/// Build the Python plugin `source` into the component `output` with the
/// SDK in `sdk` against the contract in `wit`, installing the pinned
/// componentize-py in `toolchains` first if needed.
///
/// # Errors
/// A missing python3, a failed install, a failed build.
pub fn python(
    toolchains: &Toolchains,
    sdk: &Path,
    wit: &Path,
    source: &Path,
    output: &Path,
    shown: Output,
    say: Say<'_>,
) -> Result<(), Error> {
    let site = toolchains.componentize_py(say)?;
    let mut command = Command::new("python3");
    command
        .arg(sdk.join("build.py"))
        .arg(source)
        .arg("-o")
        .arg(output)
        .arg("--wit")
        .arg(wit)
        .env("PYTHONPATH", &site);
    script(command, shown, source)
}

/// Build the JavaScript plugin `source` into the component `output` with
/// the SDK in `sdk` against the contract in `wit`, installing its npm
/// toolchain first if needed (with its devDependencies if `dev`).
///
/// # Errors
/// A missing node or npm, a failed install, a failed build.
pub fn js(
    sdk: &Path,
    wit: &Path,
    source: &Path,
    output: &Path,
    dev: bool,
    shown: Output,
    say: Say<'_>,
) -> Result<(), Error> {
    toolchain::node_modules(sdk, dev, say)?;
    let mut command = Command::new("node");
    command
        .arg(sdk.join("build.mjs"))
        .arg(source)
        .arg("-o")
        .arg(output)
        .arg("--wit")
        .arg(wit);
    script(command, shown, source)
}

/// Build the Go package main in `package` into the component `output`
/// against the contract in `wit`, with `informant-go`'s build: installing
/// the pinned Go in `toolchains` first if needed (`INFORMANT_GO` names a Go
/// of the user's instead), `go build` for `wasip1` as a reactor, then
/// wit-component with the WASI preview1 adapter. A package in a module (a
/// `go.mod` in its directory or above) builds as the module says; one
/// without is built against the SDK in `sdk`.
///
/// # Errors
/// Go missing and not installable (saying what to do), or a failed build
/// with what Go said.
pub fn go(
    toolchains: &Toolchains,
    sdk: &Path,
    wit: &Path,
    package: &Path,
    output: &Path,
    say: Say<'_>,
) -> Result<(), Error> {
    informant_go::toolchain::go_saying(toolchains.dir(), say).map_err(|e| Error::Tool {
        step: "installing the pinned Go".into(),
        output: format!("{e:#}"),
    })?;
    informant_go::build(&informant_go::Build {
        package: package.to_path_buf(),
        output: output.to_path_buf(),
        wit: Some(wit.to_path_buf()),
        sdk: Some(sdk.to_path_buf()),
        toolchains: toolchains.dir().to_path_buf(),
    })
    .map(drop)
    .map_err(|e| Error::Tool {
        step: format!("building the Go package in {}", package.display()),
        output: format!("{e:#}"),
    })
}

/// Run an SDK's build script.
fn script(mut command: Command, shown: Output, source: &Path) -> Result<(), Error> {
    let step = format!("building {}", source.display());
    let (status, output) = match shown {
        Output::Shown => {
            // The script's own lines go to stderr: stdout is for results.
            let status = command
                .stdout(std::io::stderr())
                .stderr(Stdio::inherit())
                .status()
                .map_err(|e| Error::Tool {
                    step: step.clone(),
                    output: e.to_string(),
                })?;
            (status, String::new())
        }
        Output::Captured => {
            let out = toolchain::run(&mut command)?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status, text.trim().to_owned())
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(Error::Tool { step, output })
    }
}

/// Whether `output` exists and is newer than every file under `inputs`
/// (installed packages, caches and dotfiles aside).
pub fn is_fresh(output: &Path, inputs: &[&Path]) -> bool {
    let Some(built) = modified(output) else {
        return false;
    };
    inputs
        .iter()
        .all(|input| newest(input).is_none_or(|t| t <= built))
}

/// [`is_fresh`] for owned paths.
fn is_fresh_all(output: &Path, inputs: &[PathBuf]) -> bool {
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    is_fresh(output, &inputs)
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
    fn the_settings_file_goes_beside_the_component_and_leaves_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("settings.yml"), "team: web\n").unwrap();
        let mut project = Project {
            root: root.clone(),
            name: "p".into(),
            language: Language::Python,
            source: root.join("plugin.py"),
            settings: Some(root.join("settings.yml")),
        };
        std::fs::create_dir_all(project.plugin_dir()).unwrap();
        let beside = project.plugin_dir().join("p.yml");
        std::fs::write(project.plugin_dir().join("p.json"), "{}").unwrap();
        settings_beside(&project).unwrap();
        assert_eq!(std::fs::read_to_string(&beside).unwrap(), "team: web\n");
        assert!(
            !project.plugin_dir().join("p.json").exists(),
            "another settings file is gone"
        );
        project.settings = None;
        settings_beside(&project).unwrap();
        assert!(!beside.exists());
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
