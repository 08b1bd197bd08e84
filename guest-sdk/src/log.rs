//! Logging into the host's log, tagged with the plugin's name.

use std::{cell::RefCell, fmt};

use crate::bindings::informant::plugin::log as wit;

pub use wit::Level;

/// Write one log line.
pub fn log(level: Level, message: &str) {
    wit::log(level, message);
}

thread_local! {
    /// The line the macros format into, kept between lines.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A line the buffer stops keeping once written: a plugin that logs a huge
/// line once does not hold its size for good.
const KEPT_LINE: usize = 4096;

/// Write one line formatted from `args`: what the macros call. A constant
/// message goes as it is; any other is formatted into one buffer kept for
/// the instance, so a line costs no allocation once the buffer has grown.
pub fn log_fmt(level: Level, args: fmt::Arguments<'_>) {
    if let Some(message) = args.as_str() {
        return wit::log(level, message);
    }
    LINE.with(|line| match line.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            let _ = fmt::Write::write_fmt(&mut *line, args);
            wit::log(level, &line);
            if line.capacity() > KEPT_LINE {
                *line = String::new();
            }
        }
        // A value being formatted logs a line of its own.
        Err(_) => wit::log(level, &args.to_string()),
    });
}

/// Log at info: `info!("patched {}", name)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log_fmt($crate::log::Level::Info, format_args!($($arg)*)) };
}

/// Log at debug.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log_fmt($crate::log::Level::Debug, format_args!($($arg)*)) };
}

/// Log at trace.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::log_fmt($crate::log::Level::Trace, format_args!($($arg)*)) };
}

/// Log at warn.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log_fmt($crate::log::Level::Warn, format_args!($($arg)*)) };
}

/// Log at error.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log_fmt($crate::log::Level::Error, format_args!($($arg)*)) };
}
