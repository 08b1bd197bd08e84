//! Guest stdout and stderr, captured line by line into the host log.
//!
//! Plugins get no real stdio. What a guest writes (panic messages, stray
//! prints) is split into lines and logged with the plugin's name, up to a
//! per-call budget; the rest is dropped and the drop is logged once.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use parking_lot::Mutex;
use wasmtime_wasi::{
    cli::{IsTerminal, StdoutStream},
    p2::{OutputStream, Pollable, StreamResult},
};

/// Which stream a line came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// The shared state of one captured stream of one instance.
#[derive(Debug)]
pub(crate) struct Capture {
    plugin: Arc<str>,
    stream: Stream,
    line: Vec<u8>,
    written: usize,
    budget: usize,
    dropped: bool,
    /// The start of what this call wrote, for the error of a call that
    /// traps (a Rust panic writes its message here just before).
    recent: String,
    /// The line being written is longer than a log line: the rest is cut.
    cut: usize,
}

/// How much of a call's output is kept for its error.
const RECENT: usize = 4096;

/// The longest line kept; longer lines are split.
const MAX_LINE: usize = 16 * 1024;

impl Capture {
    pub(crate) fn new(plugin: Arc<str>, stream: Stream, budget: usize) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            plugin,
            stream,
            line: Vec::new(),
            written: 0,
            budget,
            dropped: false,
            recent: String::new(),
            cut: 0,
        }))
    }

    fn write(&mut self, mut bytes: &[u8]) {
        let room = self.budget.saturating_sub(self.written);
        if bytes.len() > room {
            bytes = &bytes[..room];
            if !self.dropped {
                self.dropped = true;
                tracing::warn!(plugin.name = %self.plugin, stream = ?self.stream, budget = self.budget,
                    "guest output over its per-call budget; the rest of this call's output is dropped");
            }
        }
        self.written += bytes.len();
        if self.recent.len() < RECENT {
            let room = RECENT - self.recent.len();
            self.recent
                .push_str(&String::from_utf8_lossy(&bytes[..bytes.len().min(room)]));
        }
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let newline = chunk.ends_with(b"\n");
            let room = MAX_LINE.saturating_sub(self.line.len());
            if chunk.len() > room {
                // One log line holds at most MAX_LINE bytes; say what was cut.
                self.line.extend_from_slice(&chunk[..room]);
                self.cut += chunk.len() - room - usize::from(newline);
            } else {
                self.line.extend_from_slice(chunk);
            }
            if newline {
                self.emit();
            }
        }
    }

    /// What the current call wrote so far (its first few KiB).
    pub(crate) fn recent(&self) -> &str {
        &self.recent
    }

    fn emit(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\n', '\r']);
        // Blank lines (a Rust panic starts with one) say nothing.
        if !text.trim().is_empty() {
            let cut = std::mem::take(&mut self.cut);
            let mark = if cut > 0 {
                format!(" [... {cut} more bytes of this line cut]")
            } else {
                String::new()
            };
            match self.stream {
                Stream::Stdout => {
                    tracing::info!(plugin.name = %self.plugin, stream = "stdout", "{text}{mark}")
                }
                Stream::Stderr => {
                    tracing::warn!(plugin.name = %self.plugin, stream = "stderr", "{text}{mark}")
                }
            }
        }
        self.cut = 0;
        self.line.clear();
    }

    /// End of a call: flush a partial line and renew the budget. A call
    /// that wrote nothing (most do) leaves nothing to flush or renew.
    pub(crate) fn end_call(&mut self) {
        if self.written == 0 && self.line.is_empty() && !self.dropped {
            return;
        }
        self.emit();
        self.written = 0;
        self.dropped = false;
        self.recent.clear();
    }
}

/// A handle on a [`Capture`] that WASI uses as the guest's stdout or stderr.
#[derive(Clone)]
pub(crate) struct CapturedOutput(pub(crate) Arc<Mutex<Capture>>);

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.lock().write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always writable: what is over budget is dropped, not refused, so a
        // chatty guest never blocks or fails on a print.
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.lock().write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_too_long_for_the_log_is_cut_and_says_so() {
        let c = Capture::new("p".into(), Stream::Stderr, 1 << 30);
        let long = vec![b'x'; MAX_LINE + 100];
        c.lock().write(&long);
        c.lock().write(b"\n");
        assert_eq!(c.lock().cut, 0, "the mark went out with the line");
        assert!(c.lock().line.is_empty());
        assert!(c.lock().recent().starts_with("xxx"));
    }

    #[test]
    fn output_over_budget_is_dropped_and_the_budget_renews_per_call() {
        let c = Capture::new("p".into(), Stream::Stdout, 10);
        c.lock().write(b"hello\nworld, this is long");
        assert_eq!(c.lock().written, 10);
        assert!(c.lock().dropped);
        c.lock().end_call();
        assert_eq!(c.lock().written, 0);
        assert!(c.lock().line.is_empty());
    }

    #[test]
    fn a_zero_budget_still_renews_its_drop_notice_per_call() {
        let c = Capture::new("p".into(), Stream::Stdout, 0);
        c.lock().write(b"hello\n");
        assert_eq!(c.lock().written, 0);
        assert!(c.lock().dropped);
        c.lock().end_call();
        assert!(!c.lock().dropped, "the next call warns again");
        c.lock().end_call();
        assert!(c.lock().recent().is_empty());
    }
}
