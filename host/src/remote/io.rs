//! Reading and writing frames on a connection, plain or TLS.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::wire::{self, Frame};

/// The read half of a connection; boxed so TLS and plain TCP look alike.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;
/// Frame bodies as they arrive.
type Frames = FramedRead<Reader, LengthDelimitedCodec>;

/// Socket buffer sizes: large enough that a 100 KiB message is a few
/// system calls, not dozens.
const BUFFER_BYTES: usize = 256 * 1024;
/// Frames written per batch before the writer looks at the queue again.
const BATCH: usize = 64;

/// The frames arriving on `reader`; a frame whose body exceeds `limit`
/// ends the stream with an error.
fn frames(reader: Reader, limit: usize) -> Frames {
    let codec =
        LengthDelimitedCodec::builder().length_field_length(wire::LENGTH_BYTES).max_frame_length(limit).new_codec();
    FramedRead::with_capacity(reader, codec, BUFFER_BYTES)
}

/// Where frames wait to be written: a bounded queue for callers, who wait
/// for room, or an unbounded one for replies, which an endpoint sends
/// without waiting.
pub(crate) trait Outgoing: Send {
    /// Moves up to `limit` queued frames into `batch`; 0 once every sender
    /// is gone.
    fn recv_many(&mut self, batch: &mut Vec<Bytes>, limit: usize) -> impl Future<Output = usize> + Send;
    /// Whether no frame is queued right now.
    fn is_empty(&self) -> bool;
}

impl Outgoing for mpsc::Receiver<Bytes> {
    fn recv_many(&mut self, batch: &mut Vec<Bytes>, limit: usize) -> impl Future<Output = usize> + Send {
        mpsc::Receiver::recv_many(self, batch, limit)
    }

    fn is_empty(&self) -> bool {
        mpsc::Receiver::is_empty(self)
    }
}

impl Outgoing for mpsc::UnboundedReceiver<Bytes> {
    fn recv_many(&mut self, batch: &mut Vec<Bytes>, limit: usize) -> impl Future<Output = usize> + Send {
        mpsc::UnboundedReceiver::recv_many(self, batch, limit)
    }

    fn is_empty(&self) -> bool {
        mpsc::UnboundedReceiver::is_empty(self)
    }
}

/// Writes queued frames until every sender is gone, `closed` is cancelled
/// or the socket fails, telling `written` the size of each frame once it is
/// written. Frames queued together go out in one write, and the socket is
/// flushed only when the queue runs dry, so pipelined calls share system
/// calls.
pub(crate) async fn write_frames(
    writer: Writer,
    mut queue: impl Outgoing,
    closed: CancellationToken,
    mut written: impl FnMut(usize) + Send,
) -> io::Result<()> {
    let mut writer = BufWriter::with_capacity(BUFFER_BYTES, writer);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            biased;
            received = queue.recv_many(&mut batch, BATCH) => received,
            () = closed.cancelled() => 0,
        };
        if received == 0 {
            writer.flush().await?;
            return writer.shutdown().await;
        }
        for frame in batch.drain(..) {
            writer.write_all(&frame).await?;
            written(frame.len());
        }
        if queue.is_empty() {
            writer.flush().await?;
        }
    }
}

/// Writes one frame and flushes it: for the first exchange, before the
/// writer task runs.
pub(crate) async fn write_one(writer: &mut Writer, header: &Frame<'_>) -> io::Result<()> {
    writer.write_all(&wire::control_frame(header)).await?;
    writer.flush().await
}

/// How long a connection may wait for frames.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience {
    /// Between frames; `None`: forever.
    pub idle: Option<Duration>,
    /// From a frame's first byte to its last.
    pub frame: Duration,
}

/// The frames arriving on a connection, and the one timer that bounds how
/// long it may be silent and how long a frame it began may take.
///
/// The timer is made once per connection, not per frame: a frame that is
/// already buffered costs no timer at all, and the idle deadline is moved
/// only when it passes (a connection is closed between one and two idle
/// timeouts after its last frame), so a busy connection never touches it.
pub(crate) struct FrameReader {
    frames: Frames,
    patience: Patience,
    timer: Pin<Box<Sleep>>,
    /// What the timer is set for.
    armed: Armed,
    /// Frames read so far, and how many had been when the idle deadline
    /// was set: a frame since means the connection was not idle.
    read: u64,
    read_when_armed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Armed {
    /// The idle deadline (far away if there is none).
    Idle,
    /// The deadline of the partial frame in the buffer.
    Frame,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader").field("patience", &self.patience).finish_non_exhaustive()
    }
}

impl FrameReader {
    /// Frames from `reader`, none larger than `limit`, read with `patience`.
    pub(crate) fn new(reader: Reader, limit: usize, patience: Patience) -> Self {
        Self {
            frames: frames(reader, limit),
            patience,
            timer: Box::pin(tokio::time::sleep_until(idle_deadline(patience))),
            armed: Armed::Idle,
            read: 0,
            read_when_armed: 0,
        }
    }

    /// The next frame body, or why there is none: the connection ended, a
    /// frame made no sense, the connection was silent for too long, or a
    /// frame that began did not arrive whole in time.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a frame partly read stays buffered.
    pub(crate) async fn next(&mut self) -> Result<Bytes, String> {
        let outcome = poll_fn(|cx| {
            loop {
                if let Poll::Ready(next) = self.frames.poll_next_unpin(cx) {
                    self.read += 1;
                    if self.armed == Armed::Frame {
                        self.arm_idle();
                    }
                    return Poll::Ready(Ok(next));
                }
                if self.armed == Armed::Idle && !self.frames.read_buffer().is_empty() {
                    self.armed = Armed::Frame;
                    self.timer.as_mut().reset(Instant::now() + self.patience.frame);
                }
                if self.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                match self.armed {
                    Armed::Frame => {
                        return Poll::Ready(Err(format!(
                            "a frame did not arrive whole within {:?} of its first byte (`frame-timeout`)",
                            self.patience.frame
                        )));
                    }
                    Armed::Idle if self.read == self.read_when_armed => {
                        return Poll::Ready(Err(format!(
                            "no frame for {:?} (`idle-timeout`)",
                            self.patience.idle.unwrap_or_default()
                        )));
                    }
                    // Frames came since the deadline was set: not idle.
                    Armed::Idle => self.arm_idle(),
                }
            }
        })
        .await;
        outcome.and_then(|next| frame_or_reason(&self.frames, next))
    }

    fn arm_idle(&mut self) {
        self.armed = Armed::Idle;
        self.read_when_armed = self.read;
        self.timer.as_mut().reset(idle_deadline(self.patience));
    }
}

/// When a connection idle from now on is closed; far away without one.
fn idle_deadline(patience: Patience) -> Instant {
    Instant::now() + patience.idle.unwrap_or(Duration::from_secs(365 * 24 * 3600))
}

/// The frame body the stream yielded, or why it yielded none.
fn frame_or_reason(frames: &Frames, next: Option<io::Result<bytes::BytesMut>>) -> Result<Bytes, String> {
    match next {
        Some(Ok(body)) => Ok(body.freeze()),
        // What the codec says when the stream ends with a partial frame
        // still buffered (socket errors have kinds of their own).
        Some(Err(error)) if error.kind() == io::ErrorKind::Other && !frames.read_buffer().is_empty() => {
            Err("the connection ended inside a frame".to_owned())
        }
        Some(Err(error)) if error.kind() == io::ErrorKind::InvalidData => {
            Err(tls_hint(frames.read_buffer()).map_or_else(|| format!("invalid frame: {error}"), str::to_owned))
        }
        Some(Err(error)) => Err(error.to_string()),
        None => Err(tls_hint(frames.read_buffer()).unwrap_or("the peer closed the connection").to_owned()),
    }
}

/// What to tell a user when the bytes a peer sent look like TLS where weir
/// frames were expected: one side has `tls` configured and the other not.
fn tls_hint(received: &[u8]) -> Option<&'static str> {
    // A TLS record: content type (handshake 22, alert 21), version 3.x.
    match received {
        [22 | 21, 3, ..] => {
            Some("the peer speaks TLS and this host does not: configure `[host] tls` on both hosts, or on neither")
        }
        _ => None,
    }
}
