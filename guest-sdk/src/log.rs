//! Logging into the host's log, tagged with the plugin's name.

use crate::bindings::informant::plugin::log as wit;

pub use wit::Level;

/// Write one log line.
pub fn log(level: Level, message: &str) {
    wit::log(level, message);
}

/// Log at info: `info!("patched {}", name)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &format!($($arg)*)) };
}

/// Log at debug.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &format!($($arg)*)) };
}

/// Log at trace.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Trace, &format!($($arg)*)) };
}

/// Log at warn.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &format!($($arg)*)) };
}

/// Log at error.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &format!($($arg)*)) };
}
