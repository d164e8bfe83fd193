//! Reading and writing frames on a connection, plain or TLS.

use std::io;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::wire::{self, Frame};

/// The read half of a connection; boxed so TLS and plain TCP look alike.
pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a connection.
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;
/// Frame bodies as they arrive.
pub(crate) type Frames = FramedRead<Reader, LengthDelimitedCodec>;

/// Socket buffer sizes: large enough that a 100 KiB message is a few
/// system calls, not dozens.
const BUFFER_BYTES: usize = 256 * 1024;
/// Frames written per batch before the writer looks at the queue again.
const BATCH: usize = 64;

/// The frames arriving on `reader`; a frame whose body exceeds `limit`
/// ends the stream with an error.
pub(crate) fn frames(reader: Reader, limit: usize) -> Frames {
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
/// or the socket fails. Frames queued together go out in one write, and the
/// socket is flushed only when the queue runs dry, so pipelined calls share
/// system calls.
pub(crate) async fn write_frames(
    writer: Writer,
    mut queue: impl Outgoing,
    closed: CancellationToken,
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

/// Reads the next frame body, or why there is none.
pub(crate) async fn next_frame(frames: &mut Frames) -> Result<Bytes, String> {
    match frames.next().await {
        Some(Ok(body)) => Ok(body.freeze()),
        // What the codec says when the stream ends with a partial frame
        // still buffered (socket errors have kinds of their own).
        Some(Err(error)) if error.kind() == io::ErrorKind::Other && !frames.read_buffer().is_empty() => {
            Err("the connection ended inside a frame".to_owned())
        }
        Some(Err(error)) if error.kind() == io::ErrorKind::InvalidData => Err(format!("invalid frame: {error}")),
        Some(Err(error)) => Err(error.to_string()),
        None => Err("the peer closed the connection".to_owned()),
    }
}
