//! Logging into the host's log, tagged with the plugin's name.

use std::{
    cell::{Cell, RefCell},
    fmt,
};

use crate::bindings::informant::plugin::log as wit;

pub use wit::Level;

/// Write one log line, unless the host records no line of its level.
pub fn log(level: Level, message: &str) {
    if enabled(level) {
        wit::log(level, message);
    }
}

/// Whether the host records lines of `level`: the macros format nothing
/// when it does not, and a plugin can skip work done only for a line.
///
/// The host says, in the plugin's environment (`INFORMANT_LOG_LEVEL`), the
/// most verbose level its log keeps when the instance starts (`trace` ...
/// `error`, or `off`). Without it (another host) every line is sent.
pub fn enabled(level: Level) -> bool {
    rank(level) >= recorded()
}

/// Levels from the most verbose up; `OFF` is above them all.
fn rank(level: Level) -> u8 {
    match level {
        Level::Trace => 0,
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
    }
}

const OFF: u8 = 5;
const UNREAD: u8 = u8::MAX;

thread_local! {
    /// The line the macros format into, kept between lines.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    /// The rank of the most verbose level the host records, read from the
    /// environment on the first line.
    static RECORDED: Cell<u8> = const { Cell::new(UNREAD) };
}

fn recorded() -> u8 {
    RECORDED.with(|recorded| {
        if recorded.get() == UNREAD {
            let var = std::env::var("INFORMANT_LOG_LEVEL").ok();
            recorded.set(parse_recorded(var.as_deref()));
        }
        recorded.get()
    })
}

/// The rank the variable names; every line when it is missing or unknown.
fn parse_recorded(var: Option<&str>) -> u8 {
    match var.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("off") => OFF,
        Some(v) if v.eq_ignore_ascii_case("error") => rank(Level::Error),
        Some(v) if v.eq_ignore_ascii_case("warn") => rank(Level::Warn),
        Some(v) if v.eq_ignore_ascii_case("info") => rank(Level::Info),
        Some(v) if v.eq_ignore_ascii_case("debug") => rank(Level::Debug),
        _ => rank(Level::Trace),
    }
}

/// A line the buffer stops keeping once written: a plugin that logs a huge
/// line once does not hold its size for good.
const KEPT_LINE: usize = 4096;

/// Write one line formatted from `args`: what the macros call. Nothing is
/// formatted for a level the host does not record (see [`enabled`]). A constant
/// message goes as it is; any other is formatted into one buffer kept for
/// the instance, so a line costs no allocation once the buffer has grown.
pub fn log_fmt(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_level_skips_only_lines_below_it() {
        let info = parse_recorded(Some("info"));
        assert!(rank(Level::Debug) < info);
        assert!(rank(Level::Info) >= info);
        assert!(rank(Level::Error) >= info);
        let off = parse_recorded(Some("off"));
        assert!(rank(Level::Error) < off);
        assert_eq!(parse_recorded(Some(" WARN ")), rank(Level::Warn));
        // Another host, or a value this SDK does not know: every line.
        for every in [None, Some(""), Some("verbose")] {
            assert_eq!(parse_recorded(every), rank(Level::Trace), "{every:?}");
        }
    }
}
