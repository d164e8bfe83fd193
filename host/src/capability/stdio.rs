//! Guest stdout and stderr, routed into `tracing` under the endpoint's id.
//!
//! Output is split into lines; each line becomes one event with target
//! `weir::guest` (stdout at `info`, stderr at `warn`). A line longer than
//! [`MAX_LINE`] is emitted in pieces, so a guest cannot make the host buffer
//! without bound.
//!
//! The last few lines of stderr are kept: a guest that panics writes its
//! panic message there just before it traps, and [`GuestOutput::panic`]
//! finds it for the endpoint's termination cause, as Flink's callers get the
//! exception's message.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is emitted anyway.
pub const MAX_LINE: usize = 16 * 1024;
/// How much a guest may write in one go.
const WRITE_BUDGET: usize = 64 * 1024;
/// Recent stderr lines kept, and the longest part of each kept.
const RECENT_LINES: usize = 8;
const RECENT_LINE_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    Stdout,
    Stderr,
}

/// The stdout or stderr of one endpoint.
#[derive(Clone, Debug)]
pub(crate) struct GuestOutput {
    endpoint: Arc<str>,
    channel: Channel,
    /// The last lines written (stderr only).
    recent: Option<Arc<Mutex<VecDeque<String>>>>,
}

impl GuestOutput {
    pub(crate) fn stdout(endpoint: Arc<str>) -> Self {
        Self { endpoint, channel: Channel::Stdout, recent: None }
    }

    pub(crate) fn stderr(endpoint: Arc<str>) -> Self {
        Self { endpoint, channel: Channel::Stderr, recent: Some(Arc::default()) }
    }

    fn writer(&self) -> LineWriter {
        LineWriter { output: self.clone(), line: Vec::new() }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        match self.channel {
            Channel::Stdout => {
                tracing::info!(target: "weir::guest", endpoint = %self.endpoint, "{text}")
            }
            Channel::Stderr => {
                tracing::warn!(target: "weir::guest", endpoint = %self.endpoint, stream = "stderr", "{text}")
            }
        }
        if let Some(recent) = &self.recent {
            let mut recent = recent.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            let end = text.floor_char_boundary(RECENT_LINE_BYTES);
            recent.push_back(text[..end].to_owned());
        }
    }

    /// The message of the panic the guest reported last, with where it
    /// happened: `deliberate trap (at src/lib.rs:25:14)`. Rust guests write
    /// `thread '...' panicked at <place>:` and then the message to stderr.
    pub(crate) fn panic(&self) -> Option<String> {
        let recent = self.recent.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
        let start = recent.iter().rposition(|line| line.contains(" panicked at "))?;
        let place = recent[start].split_once(" panicked at ")?.1.trim_end_matches(':');
        let message: Vec<&str> =
            recent.iter().skip(start + 1).map(String::as_str).take_while(|line| !line.starts_with("note: ")).collect();
        let message = message.join("\n");
        Some(if message.is_empty() { format!("panicked at {place}") } else { format!("{message} (at {place})") })
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

/// Buffers a partial line until its newline arrives.
struct LineWriter {
    output: GuestOutput,
    line: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&bytes[..end]);
            self.output.emit(&self.line);
            self.line.clear();
            bytes = &bytes[end + 1..];
        }
        self.line.extend_from_slice(bytes);
        while self.line.len() >= MAX_LINE {
            let rest = self.line.split_off(MAX_LINE);
            self.output.emit(&self.line);
            self.line = rest;
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.output.emit(&self.line);
        }
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
