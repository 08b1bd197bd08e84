//! The languages a plugin project is written in. One variant each: adding a
//! language is a variant here, and the compiler then names every place that
//! must learn it (its templates, its SDK files, its build).

use std::{fmt, str::FromStr};

/// A language `informant new` writes projects in and `informant build`
/// builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Language {
    /// Rust, with the `informant-sdk` crate, built by cargo for wasm32-wasip2.
    Rust,
    /// Python, with the Python SDK, built by componentize-py.
    Python,
    /// JavaScript, with the JavaScript SDK, bundled by esbuild and built by
    /// componentize-js.
    Js,
}

impl Language {
    /// Every language, in the order help texts list them.
    pub const ALL: [Self; 3] = [Self::Rust, Self::Python, Self::Js];

    /// The name `--lang` and `informant.toml` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
        }
    }

    /// The language's name in sentences.
    pub fn title(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Js => "JavaScript",
        }
    }

    fn choices() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|l| l.as_str()).collect();
        names.join(", ")
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Language {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Self::Rust),
            "python" | "py" => Ok(Self::Python),
            "js" | "javascript" => Ok(Self::Js),
            "go" | "golang" => Err(format!(
                "Go plugins are not supported by this informant yet; it writes plugins in {}",
                Self::choices()
            )),
            _ => Err(format!(
                "unknown language {s:?}; choose one of {}",
                Self::choices()
            )),
        }
    }
}

impl TryFrom<String> for Language {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_parses_from_its_own_name() {
        for language in Language::ALL {
            assert_eq!(language.as_str().parse::<Language>(), Ok(language));
        }
        assert_eq!("JavaScript".parse::<Language>(), Ok(Language::Js));
    }

    #[test]
    fn go_and_unknown_languages_are_refused_with_the_choices() {
        let go = "go".parse::<Language>().unwrap_err();
        assert!(go.contains("Go plugins are not supported"), "{go}");
        assert!(go.ends_with("rust, python, js"), "{go}");
        let cobol = "cobol".parse::<Language>().unwrap_err();
        assert_eq!(
            cobol,
            "unknown language \"cobol\"; choose one of rust, python, js"
        );
    }
}
