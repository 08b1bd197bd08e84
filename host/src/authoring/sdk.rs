//! The SDKs and the contract this binary carries, so that `informant new`
//! writes them into a project and no checkout of this repository is needed.
//!
//! They are the repository's own files, compiled in with `include_str!` from
//! `guest-sdk/` and `wit/plugin.wit`: nothing here is a second copy to keep
//! up to date by hand. The tests below check that the lists name every file
//! of each SDK package, and that each SDK is versioned with the contract.

use std::path::Path;

use super::{Error, Language, write_file};

/// One file of an SDK package: its path inside the package, its text.
#[derive(Debug, Clone, Copy)]
pub struct File {
    /// The path inside the package, `/`-separated.
    pub path: &'static str,
    /// The file's text.
    pub text: &'static str,
}

/// `File`s of `$package` (a directory of the repository), by path.
macro_rules! carried {
    ($package:literal; $($path:literal),* $(,)?) => {
        &[$(File {
            path: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../", $package, "/", $path)),
        }),*]
    };
}

/// The contract every plugin built by these SDKs speaks: `wit/plugin.wit`.
pub const CONTRACT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/plugin.wit"));

/// Where a package keeps its copy of the contract (the Rust SDK's bindings
/// and both build scripts read it there).
pub const CONTRACT_PATH: &str = "wit/plugin.wit";

const RUST: &[File] = carried!("guest-sdk";
    "Cargo.toml", "README.md",
    "src/action.rs", "src/admission.rs", "src/cache.rs", "src/error.rs", "src/event.rs", "src/head.rs", "src/lib.rs",
    "src/log.rs", "src/manifest.rs", "src/state.rs",
);

/// The Rust SDK's lock file: the versions of its dependencies it is tested
/// with, which a new project starts from.
pub const RUST_LOCK: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../guest-sdk/Cargo.lock"
));

const PYTHON: &[File] = carried!("guest-sdk/python";
    ".gitignore", "README.md", "build.py", "pyproject.toml",
    "informant/__init__.py", "informant/_bindings.py", "informant/action.py",
    "informant/admission.py", "informant/cache.py", "informant/error.py", "informant/event.py",
    "informant/log.py", "informant/manifest.py", "informant/plugin.py", "informant/py.typed",
    "informant/state.py",
);

const JS: &[File] = carried!("guest-sdk/js";
    "README.md", "build.mjs", "informant.d.ts", "informant.js", "package-lock.json", "package.json",
);

const GO: &[File] = carried!("guest-sdk/go";
    "README.md", "go.mod",
    "errors.go", "event.go", "informant.go", "manifest.go", "sdk_test.go", "settings.go",
    "action/action.go", "cache/cache.go", "log/log.go", "state/state.go",
    "internal/wit/abi_other.go", "internal/wit/abi_wasip1.go", "internal/wit/bindings.go",
);

/// The Go SDK's module path, which a project's `go.mod` requires (and
/// replaces with the copy `informant new` writes).
pub const GO_MODULE: &str = "github.com/informant-dev/informant/guest-sdk/go";

/// The files of a language's SDK package.
pub fn files(language: Language) -> &'static [File] {
    match language {
        Language::Rust => RUST,
        Language::Python => PYTHON,
        Language::Js => JS,
        Language::Go => GO,
    }
}

/// The contract's version, from the `package informant:plugin@X;` line of
/// [`CONTRACT`]: the one place it is written.
pub fn contract_version() -> &'static str {
    package_version(CONTRACT).unwrap_or("unknown")
}

fn package_version(wit: &str) -> Option<&str> {
    wit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .find_map(|l| l.strip_prefix("package "))?
        .trim_end_matches(';')
        .split_once('@')
        .map(|(_, version)| version.trim())
}

/// The version of a language's SDK package, from its own metadata
/// (`Cargo.toml`, `pyproject.toml`, `package.json`; a Go module has none
/// but its tags, so the Go SDK says it in `const Version` of
/// `informant.go`).
pub fn version(language: Language) -> Option<String> {
    let text = |path: &str| {
        files(language)
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.text)
    };
    match language {
        Language::Rust => {
            let manifest: toml::Table = text("Cargo.toml")?.parse().ok()?;
            Some(
                manifest
                    .get("package")?
                    .get("version")?
                    .as_str()?
                    .to_owned(),
            )
        }
        Language::Python => {
            let project: toml::Table = text("pyproject.toml")?.parse().ok()?;
            Some(project.get("project")?.get("version")?.as_str()?.to_owned())
        }
        Language::Js => {
            let package: serde_json::Value = serde_json::from_str(text("package.json")?).ok()?;
            Some(package.get("version")?.as_str()?.to_owned())
        }
        Language::Go => go_version(text("informant.go")?).map(str::to_owned),
    }
}

/// The value of `const Version = "X"` in Go source.
fn go_version(source: &str) -> Option<&str> {
    source
        .lines()
        .find_map(|l| l.trim().strip_prefix("const Version = "))?
        .trim()
        .strip_prefix('"')?
        .strip_suffix('"')
}

/// A pinned build tool of the Python SDK, `name==version`, from the
/// optional dependencies of its `pyproject.toml` (`build` for
/// componentize-py, `typecheck` for mypy): the pins live there only.
pub fn python_pin(extra: &str, name: &str) -> Option<String> {
    let pyproject = PYTHON.iter().find(|f| f.path == "pyproject.toml")?;
    let project: toml::Table = pyproject.text.parse().ok()?;
    project
        .get("project")?
        .get("optional-dependencies")?
        .get(extra)?
        .as_array()?
        .iter()
        .filter_map(toml::Value::as_str)
        .find(|pin| pin.split_once("==").is_some_and(|(n, _)| n.trim() == name))
        .map(str::to_owned)
}

/// Write a language's SDK package into `dir`, with its copy of the contract
/// in `wit/plugin.wit`.
///
/// # Errors
/// [`Error::Io`] if a file cannot be written.
pub fn write(language: Language, dir: &Path) -> Result<(), Error> {
    for file in files(language) {
        write_file(&dir.join(file.path), file.text)?;
    }
    write_file(&dir.join(CONTRACT_PATH), CONTRACT)
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, path::PathBuf};

    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every file under `dir`, as `/`-separated paths, leaving out what
    /// installs and builds leave there.
    fn walk(dir: &Path, prefix: &str, skip: &[&str], out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}{name}");
            if skip.contains(&path.as_str())
                || ["node_modules", "__pycache__", "build", "target"].contains(&name.as_str())
                || name.ends_with(".egg-info")
            {
                continue;
            }
            if entry.path().is_dir() {
                walk(&entry.path(), &format!("{path}/"), skip, out);
            } else {
                out.insert(path);
            }
        }
    }

    fn carried(language: Language) -> BTreeSet<String> {
        files(language).iter().map(|f| f.path.to_owned()).collect()
    }

    #[test]
    fn the_binary_carries_every_file_of_each_sdk_package() {
        // The Rust crate: its top-level files and src/ (the other SDKs live
        // beside it; its wit/ is the contract, carried on its own).
        let mut rust = BTreeSet::new();
        let root = repo().join("guest-sdk");
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            if entry.path().is_file() {
                rust.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        walk(&root.join("src"), "src/", &[], &mut rust);
        rust.remove("Cargo.lock");
        assert_eq!(carried(Language::Rust), rust, "update RUST in sdk.rs");

        let mut python = BTreeSet::new();
        walk(&repo().join("guest-sdk/python"), "", &["wit"], &mut python);
        assert_eq!(carried(Language::Python), python, "update PYTHON in sdk.rs");

        let mut js = BTreeSet::new();
        walk(&repo().join("guest-sdk/js"), "", &["wit"], &mut js);
        assert_eq!(carried(Language::Js), js, "update JS in sdk.rs");

        let mut go = BTreeSet::new();
        walk(&repo().join("guest-sdk/go"), "", &["wit"], &mut go);
        assert_eq!(carried(Language::Go), go, "update GO in sdk.rs");
        let module = files(Language::Go)
            .iter()
            .find(|f| f.path == "go.mod")
            .unwrap();
        assert!(
            module.text.starts_with(&format!("module {GO_MODULE}\n")),
            "{}",
            module.text
        );
    }

    #[test]
    fn each_sdk_is_versioned_with_the_contract() {
        let contract = contract_version();
        let major_minor = |v: &str| v.rsplit_once('.').map(|(mm, _)| mm.to_owned());
        assert!(
            major_minor(contract).is_some(),
            "contract version {contract}"
        );
        for language in Language::ALL {
            let sdk = version(language).unwrap();
            assert_eq!(
                major_minor(&sdk),
                major_minor(contract),
                "the {language} SDK is {sdk}, the contract informant:plugin@{contract}: \
                 an SDK's major.minor are its contract's"
            );
        }
    }

    #[test]
    fn the_contract_version_is_read_from_its_package_line() {
        assert_eq!(
            package_version("/// docs\n// package a:b@9.9.9;\npackage informant:plugin@1.2.3;\n"),
            Some("1.2.3")
        );
        assert_eq!(package_version("world w {}"), None);
        assert_ne!(contract_version(), "unknown");
    }

    #[test]
    fn the_go_sdk_readme_shows_the_version_a_project_requires() {
        let readme = files(Language::Go)
            .iter()
            .find(|f| f.path == "README.md")
            .unwrap();
        let version = version(Language::Go).unwrap();
        assert!(
            readme
                .text
                .contains(&format!("require {GO_MODULE} v{version}\n")),
            "guest-sdk/go/README.md: its go.mod example must require v{version}"
        );
    }

    #[test]
    fn the_go_sdk_version_is_read_from_its_constant() {
        assert_eq!(
            go_version("package informant\n\n// Version is ...\nconst Version = \"1.2.3\"\n"),
            Some("1.2.3")
        );
        assert_eq!(go_version("const Version = 3"), None);
        assert_eq!(go_version("package informant"), None);
    }

    #[test]
    fn the_python_build_tools_are_pinned_in_the_sdk_metadata() {
        let pin = python_pin("build", "componentize-py").unwrap();
        assert!(pin.starts_with("componentize-py=="), "{pin}");
        assert!(python_pin("typecheck", "mypy").is_some());
        assert_eq!(python_pin("build", "nothing"), None);
    }
}
