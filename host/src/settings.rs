//! A plugin's settings, read one way wherever they come from: the file
//! beside the plugin (`NAME.json`, `NAME.yaml`, `NAME.yml` or `NAME.toml`),
//! a file named on the command line (`--settings @FILE`), or JSON text
//! (`--settings '{...}'`). Whatever the format, the plugin gets JSON.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Settings that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: invalid settings: {reason}")]
pub struct SettingsError {
    /// The settings file, or `--settings`.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// The settings beside a plugin file, or null if there are none.
///
/// # Errors
/// A file that does not parse, or more than one.
pub fn beside(plugin: &Path) -> Result<Value, SettingsError> {
    let candidates: Vec<PathBuf> = ["json", "yaml", "yml", "toml"]
        .iter()
        .map(|ext| plugin.with_extension(ext))
        .filter(|p| p.is_file())
        .collect();
    match candidates.as_slice() {
        [] => Ok(Value::Null),
        [one] => read(one),
        [first, second, ..] => Err(SettingsError {
            path: first.clone(),
            reason: format!(
                "{} also exists; keep one settings file per plugin",
                second.display()
            ),
        }),
    }
}

/// Settings from a file: JSON (`.json`), TOML (`.toml`), or YAML (anything
/// else).
///
/// # Errors
/// The file cannot be read or does not parse.
pub fn read(path: &Path) -> Result<Value, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|e| SettingsError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("toml") => Format::Toml,
        _ => Format::Yaml,
    };
    parse(&text, format).map_err(|reason| SettingsError {
        path: path.to_path_buf(),
        reason,
    })
}

/// Settings from the command line: JSON text, or `@FILE` read as [`read`]
/// does.
///
/// # Errors
/// The text is not JSON, or the file cannot be read.
pub fn from_arg(arg: &str) -> Result<Value, SettingsError> {
    match arg.strip_prefix('@') {
        Some(path) => read(Path::new(path)),
        None => parse(arg, Format::Json).map_err(|reason| SettingsError {
            path: "--settings".into(),
            reason: format!("{reason} (not JSON; use @FILE to read a file)"),
        }),
    }
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Yaml,
    Toml,
}

/// The one parser: text in `format` to JSON.
fn parse(text: &str, format: Format) -> Result<Value, String> {
    match format {
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
        Format::Toml => toml::from_str(text).map_err(|e| e.to_string()),
        Format::Yaml => serde_norway::from_str(text).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_format_reads_into_the_same_json() {
        let dir = tempfile::tempdir().unwrap();
        let expected = json!({"required": {"team": "platform"}, "n": 2});
        for (ext, text) in [
            ("json", r#"{"required": {"team": "platform"}, "n": 2}"#),
            ("yaml", "required:\n  team: platform\nn: 2\n"),
            ("toml", "n = 2\n[required]\nteam = \"platform\"\n"),
        ] {
            let plugin = dir.path().join(format!("p-{ext}.wasm"));
            std::fs::write(plugin.with_extension(ext), text).unwrap();
            assert_eq!(beside(&plugin).unwrap(), expected, "{ext}");
            assert_eq!(
                from_arg(&format!("@{}", plugin.with_extension(ext).display())).unwrap(),
                expected,
                "{ext}"
            );
        }
        assert_eq!(from_arg(r#"{"n": 2}"#).unwrap(), json!({"n": 2}));
    }

    #[test]
    fn problems_name_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("p.wasm");
        assert_eq!(beside(&plugin).unwrap(), Value::Null);
        std::fs::write(plugin.with_extension("json"), "{}").unwrap();
        std::fs::write(plugin.with_extension("yaml"), "{}").unwrap();
        let err = beside(&plugin).unwrap_err().to_string();
        assert!(
            err.contains("p.json") && err.contains("p.yaml also exists"),
            "{err}"
        );
        std::fs::remove_file(plugin.with_extension("yaml")).unwrap();
        std::fs::write(plugin.with_extension("json"), "{not json").unwrap();
        let err = beside(&plugin).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: invalid settings:",
                plugin.with_extension("json").display()
            )),
            "{err}"
        );
        let err = from_arg("{nope").unwrap_err().to_string();
        assert!(
            err.starts_with("--settings: invalid settings:") && err.contains("use @FILE"),
            "{err}"
        );
    }
}
