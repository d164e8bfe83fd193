//! Guest stdout and stderr, routed into `tracing` under the endpoint's id.
//!
//! Output is split into lines; each line becomes one event with target
//! `weir::guest` (stdout at `info`, stderr at `warn`). A line longer than
//! [`MAX_LINE`] is emitted in pieces, so a guest cannot make the host buffer
//! without bound.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept before it is emitted anyway.
pub const MAX_LINE: usize = 16 * 1024;
/// How much a guest may write in one go.
const WRITE_BUDGET: usize = 64 * 1024;

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
}

impl GuestOutput {
    pub(crate) fn stdout(endpoint: Arc<str>) -> Self {
        Self { endpoint, channel: Channel::Stdout }
    }

    pub(crate) fn stderr(endpoint: Arc<str>) -> Self {
        Self { endpoint, channel: Channel::Stderr }
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
