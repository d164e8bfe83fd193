//! A link: this host's connection to one peer host, shared by every call
//! to it. Requests carry ids, so many asks are in flight on one link at
//! once and their replies may come back in any order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Settings;
use super::io::{self, FrameReader, Patience};
use super::wire::{self, Frame, GatewayDescription};
use crate::error::RpcError;
use crate::events::HostEvent;

/// Frames a link queues before callers wait for the writer: enough to keep
/// the socket busy, few enough to push back on a caller that outruns it.
const OUTBOX_FRAMES: usize = 1024;

/// What came back for a request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// An ask's outcome; on success the result value is the frame body
    /// from `payload` on.
    Reply { result: Result<(), RpcError>, body: Bytes, payload: usize },
    /// A handshake's outcome.
    Connected(Result<GatewayDescription, RpcError>),
}

/// A live connection to a peer host.
#[derive(Debug)]
pub(crate) struct Link {
    authority: Arc<str>,
    settings: Arc<Settings>,
    /// The largest frame body both ends accept.
    frame_limit: usize,
    outbox: mpsc::Sender<Bytes>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_request: AtomicU64,
    closed: CancellationToken,
    close_reason: OnceLock<String>,
}

/// Why a link could not be opened.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The peer could not be reached.
    Unreachable(String),
    /// The peer answered but refused to talk (protocol version, not weir).
    Refused(String),
}

impl DialError {
    /// The error a caller of `address` sees.
    pub(crate) fn for_caller(self, address: &str) -> RpcError {
        match self {
            DialError::Unreachable(reason) => RpcError::Unreachable { endpoint: address.to_owned(), reason },
            DialError::Refused(reason) => RpcError::Handshake(reason),
        }
    }
}

impl Link {
    /// Opens a link to `authority` (`host:port`): TCP, TLS if configured,
    /// then the protocol hello. Bounded by the connect timeout.
    pub(crate) async fn dial(authority: Arc<str>, settings: Arc<Settings>) -> Result<Arc<Link>, DialError> {
        let unreachable = |reason: String| DialError::Unreachable(format!("cannot connect to {authority}: {reason}"));
        // The connect timeout bounds the whole opening, hello included; after
        // it the peer answers when it answers, and only a frame it has begun
        // must arrive whole in time.
        let patience = Patience { idle: None, frame: settings.frame_timeout };
        let opening = async {
            let stream = TcpStream::connect(&*authority).await.map_err(|e| unreachable(e.to_string()))?;
            stream.set_nodelay(true).map_err(|e| unreachable(e.to_string()))?;
            let (reader, mut writer) = match &settings.tls {
                Some(tls) => tls.connect(host_of(&authority), stream).await.map_err(|e| {
                    unreachable(format!("TLS handshake failed: {e} (does the peer have `[host] tls` configured too?)"))
                })?,
                None => super::tls::plain(stream),
            };
            io::write_one(&mut writer, &wire::hello(settings.frame_limit, settings.idle_timeout))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let mut frames = FrameReader::new(reader, settings.frame_limit, patience);
            let body = frames.next().await.map_err(unreachable)?;
            let accepted = match wire::decode_header(&body).map_err(unreachable)?.0 {
                Frame::Hello { magic, version, frame_limit, idle_timeout_ms } => {
                    wire::check_hello(magic, version).map_err(DialError::Refused)?;
                    (frame_limit as usize, Duration::from_millis(idle_timeout_ms))
                }
                Frame::Refused { reason } => return Err(DialError::Refused(format!("{authority} refused: {reason}"))),
                Frame::Busy { reason } => return Err(unreachable(format!("the host is busy: {reason}"))),
                _ => return Err(unreachable("the peer did not answer the hello".to_owned())),
            };
            Ok((frames, writer, accepted))
        };
        let (frames, writer, (frame_limit, peer_idle_timeout)) =
            tokio::time::timeout(settings.connect_timeout, opening).await.map_err(|_| {
                unreachable(format!("no answer within the connect timeout of {:?}", settings.connect_timeout))
            })??;

        let (outbox, queue) = mpsc::channel(OUTBOX_FRAMES);
        let link = Arc::new(Link {
            authority: authority.clone(),
            settings: settings.clone(),
            frame_limit: settings.frame_limit.min(frame_limit),
            outbox,
            waiting: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(0),
            closed: CancellationToken::new(),
            close_reason: OnceLock::new(),
        });
        let writing = link.clone();
        settings.executor.spawn(async move {
            if let Err(error) = io::write_frames(writer, queue, writing.closed.clone(), |_| {}).await {
                writing.close(&format!("cannot write: {error}"));
            }
        });
        settings.executor.spawn(read_answers(link.clone(), frames));
        let every = (peer_idle_timeout / KEEPALIVES_PER_IDLE_TIMEOUT).max(MIN_KEEPALIVE_INTERVAL);
        settings.executor.spawn(keep_alive(link.clone(), every));
        tracing::info!(peer = %authority, "connected to host");
        settings.events.send(HostEvent::ConnectionOpened { peer: authority.to_string(), inbound: false });
        Ok(link)
    }

    /// The largest call this link carries: the smaller of the two hosts'
    /// frame sizes.
    pub(crate) fn frame_limit(&self) -> usize {
        self.frame_limit
    }

    /// Whether the link has closed; the next call dials a new one.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Sends the frame `build` makes for a fresh request id and waits for
    /// the answer. `endpoint` names the target in errors. A frame that
    /// cannot be built fails at once, before anything is sent.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future forgets the request; a late answer is ignored.
    pub(crate) async fn request(
        &self,
        endpoint: &str,
        build: impl FnOnce(u64) -> Result<Bytes, RpcError>,
    ) -> Result<Answer, RpcError> {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let frame = build(request)?;
        let (answer, answered) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(request, answer);
        let _forget = Forget { link: self, request };
        // `close` cancels before it takes the waiters: a request inserted
        // after that sees the cancellation here.
        if self.is_closed() || self.outbox.send(frame).await.is_err() {
            return Err(self.lost(endpoint));
        }
        answered.await.map_err(|_| self.lost(endpoint))
    }

    /// Sends a frame that expects no answer: a tell.
    ///
    /// # Errors
    ///
    /// Unreachable if the link has closed.
    pub(crate) async fn send(&self, endpoint: &str, frame: Bytes) -> Result<(), RpcError> {
        self.outbox.send(frame).await.map_err(|_| self.lost(endpoint))
    }

    /// The error for a call whose link closed under it.
    fn lost(&self, endpoint: &str) -> RpcError {
        let reason = self.close_reason.get().map_or("closed", String::as_str);
        RpcError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: format!("the connection to {} was lost: {reason}", self.authority),
        }
    }

    /// Hands an answer to whoever waits for it.
    fn answer(&self, body: Bytes) -> Result<(), String> {
        let (header, payload) = wire::decode_header(&body)?;
        let (request, answer) = match header {
            Frame::Reply { request, result } => (request, Answer::Reply { result, body: body.clone(), payload }),
            Frame::Connected { request, result } => (request, Answer::Connected(result)),
            other => return Err(format!("unexpected frame from the peer: {}", wire::kind(&other))),
        };
        let waiter = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&request);
        // Nobody waits for an answer whose ask timed out.
        if let Some(waiter) = waiter {
            let _ = waiter.send(answer);
        }
        Ok(())
    }

    /// Closes the link: every waiting request fails with unreachable.
    fn close(&self, reason: &str) {
        if self.close_reason.set(reason.to_owned()).is_ok() {
            tracing::info!(peer = %self.authority, %reason, "connection to host closed");
            let peer = self.authority.to_string();
            self.settings.events.send(HostEvent::ConnectionClosed { peer, inbound: false, reason: reason.to_owned() });
        }
        self.closed.cancel();
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        drop(waiting);
    }
}

/// Removes a request's waiter when its caller stops waiting.
struct Forget<'a> {
    link: &'a Link,
    request: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.link.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.request);
    }
}

/// Keepalives sent per idle timeout of the peer: a few, so one late
/// keepalive does not get the link closed.
const KEEPALIVES_PER_IDLE_TIMEOUT: u32 = 4;
/// The most often a link sends keepalives, whatever the peer says.
const MIN_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(10);

/// Sends a keepalive every `every` until the link closes, so the peer does
/// not close it for being idle while this host still wants it.
async fn keep_alive(link: Arc<Link>, every: Duration) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = link.closed.cancelled() => return,
        }
        // A full outbox means frames are flowing anyway.
        let _ = link.outbox.try_send(wire::control_frame(&Frame::Ping));
    }
}

/// Reads answers until the connection ends, then closes the link.
async fn read_answers(link: Arc<Link>, mut frames: FrameReader) {
    let reason = loop {
        match frames.next().await {
            Ok(body) => {
                if let Err(reason) = link.answer(body) {
                    break reason;
                }
            }
            Err(reason) => break reason,
        }
    };
    link.close(&reason);
}

/// The host part of `host:port`, brackets and all for IPv6.
fn host_of(authority: &str) -> &str {
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}
