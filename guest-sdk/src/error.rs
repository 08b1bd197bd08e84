//! The error type plugins return and the host's errors arrive as.

use std::fmt;

use crate::bindings::informant::plugin::types as wit;

/// The category of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed input: bad JSON, a bad selector, a missing field.
    Invalid,
    /// Not granted by the manifest.
    Forbidden,
    /// A per-call limit was reached.
    LimitExceeded,
    /// Something named does not exist.
    NotFound,
    /// The plugin failed.
    Failed,
}

/// An error with a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The category.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A plugin failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Failed, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::new(ErrorCode::Invalid, e.to_string())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self::failed(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::failed(message)
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        let code = match e.code {
            wit::ErrorCode::Invalid => ErrorCode::Invalid,
            wit::ErrorCode::Forbidden => ErrorCode::Forbidden,
            wit::ErrorCode::LimitExceeded => ErrorCode::LimitExceeded,
            wit::ErrorCode::NotFound => ErrorCode::NotFound,
            wit::ErrorCode::Failed => ErrorCode::Failed,
        };
        Self {
            code,
            message: e.message,
        }
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        let code = match e.code {
            ErrorCode::Invalid => wit::ErrorCode::Invalid,
            ErrorCode::Forbidden => wit::ErrorCode::Forbidden,
            ErrorCode::LimitExceeded => wit::ErrorCode::LimitExceeded,
            ErrorCode::NotFound => wit::ErrorCode::NotFound,
            ErrorCode::Failed => wit::ErrorCode::Failed,
        };
        Self {
            code,
            message: e.message,
        }
    }
}
