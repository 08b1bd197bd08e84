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
    /// Go, with the Go SDK, built by the pinned Go for `wasip1` as a reactor
    /// and made a component by wit-component (`informant-go`).
    Go,
}

impl Language {
    /// Every language, in the order help texts list them.
    pub const ALL: [Self; 4] = [Self::Rust, Self::Python, Self::Js, Self::Go];

    /// The name `--lang` and `informant.toml` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
            Self::Go => "go",
        }
    }

    /// The language's name in sentences.
    pub fn title(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Js => "JavaScript",
            Self::Go => "Go",
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
            "go" | "golang" => Ok(Self::Go),
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
        assert_eq!("golang".parse::<Language>(), Ok(Language::Go));
    }

    #[test]
    fn an_unknown_language_is_refused_with_the_choices() {
        let cobol = "cobol".parse::<Language>().unwrap_err();
        assert_eq!(
            cobol,
            "unknown language \"cobol\"; choose one of rust, python, js, go"
        );
        assert!("".parse::<Language>().is_err());
    }
}
