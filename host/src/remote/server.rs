//! The serving side: connections from other hosts, and the calls on them.
//!
//! A call from another host passes exactly the checks a local call passes
//! ([`ActorRef::deliver`]), in the same order; only its reply differs: it is
//! encoded and written back on the connection it came from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Settings;
use super::budget::Budget;
use super::io::{self, FrameReader, Patience, Writer};
use super::parked::Parked;
use super::wire::{self, Frame, FrameBuilder, GatewayDescription, Target};
use crate::component::ComponentInfo;
use crate::endpoint::{ActorRef, Call, Directory, Outcome, Reply, ReplyTo};
use crate::error::RpcError;
use crate::events::HostEvent;
use crate::gateway::encoding::ArgsSeed;
use crate::gateway::{FunctionId, Value};

/// The pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often refused connections are logged while refusals go on.
const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(10);

/// Accepts connections until `stop` is cancelled, serving at most
/// `max-connections` at once.
pub(crate) async fn accept(
    listener: TcpListener,
    directory: Arc<Directory>,
    settings: Arc<Settings>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut refusals = Refusals::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let connection = Connection { peer, directory: directory.clone(), settings: settings.clone() };
                    settings.executor.spawn(connection.serve(stream, stop.clone(), slot));
                }
                Err(_) => {
                    refusals.count(settings.max_connections);
                    settings.executor.spawn(refuse(stream, settings.clone()));
                }
            },
            Err(error) => {
                // Out of file descriptors, typically: give the host a moment
                // instead of spinning on the same error.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Connections refused for want of a slot, logged once per burst rather
/// than once each.
#[derive(Debug, Default)]
struct Refusals {
    /// Refused since the last log line, and when that was.
    unlogged: u64,
    logged: Option<Instant>,
}

impl Refusals {
    fn count(&mut self, limit: usize) {
        self.unlogged += 1;
        if self.logged.is_some_and(|at| at.elapsed() < REFUSALS_LOGGED_EVERY) {
            return;
        }
        tracing::warn!(
            refused = self.unlogged,
            limit,
            "refusing connections from other hosts: this host serves at most `max-connections` at once"
        );
        self.unlogged = 0;
        self.logged = Some(Instant::now());
    }
}

/// Tells a caller beyond the connection limit that the host is busy, and
/// closes. Over TLS it only closes: a handshake per refusal would make
/// refusing as costly as serving.
async fn refuse(stream: TcpStream, settings: Arc<Settings>) {
    if settings.tls.is_some() {
        return;
    }
    let (_reader, mut writer) = super::tls::plain(stream);
    let reason = format!("it serves at most {} connections at once (`max-connections`)", settings.max_connections);
    let _ = tokio::time::timeout(settings.connect_timeout, io::write_one(&mut writer, &Frame::Busy { reason })).await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection from another host.
struct Connection {
    peer: SocketAddr,
    directory: Arc<Directory>,
    settings: Arc<Settings>,
}

impl Connection {
    /// Serves the connection until it ends, then logs why.
    async fn serve(self, stream: TcpStream, stop: CancellationToken, _slot: OwnedSemaphorePermit) {
        let reason = tokio::select! {
            reason = self.run(stream) => reason,
            () = stop.cancelled() => "the host is shutting down".to_owned(),
        };
        tracing::debug!(peer = %self.peer, %reason, "connection from host closed");
    }

    async fn run(&self, stream: TcpStream) -> String {
        let (frames, writer, reply_limit) =
            match tokio::time::timeout(self.settings.ask_timeout, self.open(stream)).await {
                Ok(Ok(opened)) => opened,
                Ok(Err(reason)) => return reason,
                Err(_) => return format!("no hello within {:?}", self.settings.ask_timeout),
            };
        tracing::debug!(peer = %self.peer, "accepted connection from host");
        let events = &self.settings.events;
        events.send(HostEvent::ConnectionOpened { peer: self.peer.to_string(), inbound: true });
        let (outbox, queue) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::new(self.settings.reply_buffer));
        let replies = ReplyChannel { outbox, frame_limit: reply_limit, budget: budget.clone() };
        // The writer ends with the connection, even blocked on a peer that
        // reads nothing: aborting it drops the socket and what waited.
        let writing = self.settings.executor.spawn(async move {
            // A failed write shows up as a failed read soon after.
            let _ = io::write_frames(writer, queue, CancellationToken::new(), |bytes| budget.give(bytes)).await;
        });
        let _abort = AbortOnDrop(writing);
        let reason = self.read_calls(frames, &replies).await;
        events.send(HostEvent::ConnectionClosed { peer: self.peer.to_string(), inbound: true, reason: reason.clone() });
        reason
    }

    /// TLS if configured, then the hello exchange. Also returns the largest
    /// reply the peer accepts.
    async fn open(&self, stream: TcpStream) -> Result<(FrameReader, Writer, usize), String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (reader, mut writer) = match &self.settings.tls {
            Some(tls) => tls
                .accept(stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e} (does the peer have `[host] tls` configured too?)"))?,
            None => super::tls::plain(stream),
        };
        let mut frames = FrameReader::new(reader, self.settings.frame_limit, self.patience());
        let body = frames.next().await?;
        let Frame::Hello { magic, version, frame_limit, .. } = wire::decode_header(&body)?.0 else {
            return Err("the first frame is not a hello".to_owned());
        };
        if let Err(reason) = wire::check_hello(magic, version) {
            let _ = io::write_one(&mut writer, &Frame::Refused { reason: reason.clone() }).await;
            return Err(reason);
        }
        let hello = wire::hello(self.settings.frame_limit, self.settings.idle_timeout);
        io::write_one(&mut writer, &hello).await.map_err(|e| e.to_string())?;
        Ok((frames, writer, self.settings.frame_limit.min(frame_limit as usize)))
    }

    /// A peer sends a frame at least every idle timeout (keepalives when it
    /// has nothing else to say), and each frame whole within the frame
    /// timeout.
    fn patience(&self) -> Patience {
        Patience { idle: Some(self.settings.idle_timeout), frame: self.settings.frame_timeout }
    }

    /// Serves frames until the connection ends or a frame makes no sense.
    /// While the connection has more than its budget waiting on the host,
    /// nothing more is read from it.
    async fn read_calls(&self, mut frames: FrameReader, replies: &ReplyChannel) -> String {
        let budget = &replies.budget;
        let reading = async {
            let mut parked = Parked::new(budget.clone());
            loop {
                // Parked calls move into their mailboxes while the reader
                // waits for budget, and while it waits for a frame.
                let read = if parked.is_empty() {
                    budget.below_limit().await;
                    frames.next().await
                } else {
                    tokio::select! {
                        biased;
                        () = parked.moved() => continue,
                        () = budget.below_limit() => tokio::select! {
                            biased;
                            () = parked.moved() => continue,
                            read = frames.next() => read,
                        },
                    }
                };
                match read {
                    Ok(body) => self.handle(&body, replies, &mut parked)?,
                    Err(reason) => {
                        parked.flush().await;
                        return Err::<(), String>(reason);
                    }
                }
            }
        };
        tokio::select! {
            Err(reason) = reading => reason,
            waiting = budget.overflowed() => format!(
                "the peer does not read its replies: {waiting} bytes wait for it, more than {} times `reply-buffer`",
                super::budget::OVERFLOW
            ),
        }
    }

    fn handle(&self, body: &Bytes, replies: &ReplyChannel, parked: &mut Parked) -> Result<(), String> {
        let (header, payload_start) = wire::decode_header(body)?;
        let payload = &body[payload_start..];
        match header {
            Frame::Connect { request, endpoint, gateway } => {
                let result = describe(&self.directory, endpoint, gateway);
                replies.send(wire::control_frame(&Frame::Connected { request, result }));
            }
            Frame::Ask { request, target, token } => {
                let reply = RemoteReply { request, result: None, channel: replies.clone() };
                match self.resolve(target, body, payload) {
                    Ok((actor, function, args)) => {
                        let reply = RemoteReply { result: Some((Arc::clone(&actor.component()), function)), ..reply };
                        let call = Call::new(function, args, Some(Reply::Transport(Box::new(reply))));
                        parked.deliver(&actor, call, token, body.len());
                    }
                    Err(error) => Box::new(reply).send(Err(error)),
                }
            }
            Frame::Tell { target, token } => match self.resolve(target, body, payload) {
                Ok((actor, function, args)) => {
                    parked.deliver(&actor, Call::new(function, args, None), token, body.len())
                }
                Err(error) => {
                    tracing::debug!(target: "weir::dead_letters", peer = %self.peer, endpoint = target.endpoint, %error, "dead letter");
                }
            },
            Frame::Ping => {}
            other => return Err(format!("unexpected frame from the peer: {}", wire::kind(&other))),
        }
        Ok(())
    }

    /// The endpoint incarnation a call is for, the function, and its
    /// arguments decoded with the function's parameter types.
    fn resolve(
        &self,
        target: Target<'_>,
        frame: &Bytes,
        payload: &[u8],
    ) -> Result<(Arc<ActorRef>, FunctionId, Vec<Value>), RpcError> {
        let actor = self.directory.incarnation(target.endpoint, target.incarnation)?;
        let function = target.function;
        let component = actor.component();
        let export = component.function(function).ok_or_else(|| RpcError::UnknownFunction {
            endpoint: actor.id.to_string(),
            detail: format!("its component exports no function #{:016x}", function.0),
        })?;
        let seed = ArgsSeed { params: &export.signature.params, frame };
        let args = wire::decode_payload(seed, payload).map_err(|e| {
            let name = component.qualified_name(function);
            RpcError::Serialization(format!("cannot decode the arguments of {name}: {e}"))
        })?;
        Ok((actor, function, args))
    }
}

/// Flink's `connect` handshake for a caller on another host: the gateway's
/// functions, and which incarnation of the endpoint answered. As in Flink,
/// an endpoint answers it in any state, started or not.
///
/// # Errors
///
/// As [`Directory::connect`].
fn describe(directory: &Directory, id: &str, gateway: &str) -> Result<GatewayDescription, RpcError> {
    let (target, signature) = directory.connect(&directory.address_of(id), gateway)?;
    let functions = signature.functions.iter().map(|(_, f)| f.clone()).collect();
    Ok(GatewayDescription { address: target.address.to_string(), incarnation: target.incarnation, functions })
}

/// Where the replies on one connection go, the largest the peer takes, and
/// the budget they count against until written.
#[derive(Clone, Debug)]
struct ReplyChannel {
    outbox: mpsc::UnboundedSender<Bytes>,
    frame_limit: usize,
    budget: Arc<Budget>,
}

impl ReplyChannel {
    /// Queues a frame; a closed connection has nobody left to tell.
    fn send(&self, frame: Bytes) {
        // Counted before it can be written, and so given back.
        let bytes = frame.len();
        self.budget.take(bytes);
        if self.outbox.send(frame).is_err() {
            self.budget.give(bytes);
        }
    }
}

/// Where the outcome of an ask from another host goes: back over its
/// connection, encoded with the function's result type.
#[derive(Debug)]
struct RemoteReply {
    request: u64,
    /// The component and function whose result this is, once known.
    result: Option<(Arc<ComponentInfo>, FunctionId)>,
    channel: ReplyChannel,
}

impl ReplyTo for RemoteReply {
    /// Encodes and queues the outcome. A result too large for a frame is
    /// answered with frame-too-large instead (Flink: "The method's result
    /// size exceeds the maximum size").
    fn send(self: Box<Self>, outcome: Outcome) {
        let frame = self.encode(outcome).unwrap_or_else(|error| {
            tracing::warn!(request = self.request, %error, "cannot send a reply");
            wire::control_frame(&Frame::Reply { request: self.request, result: Err(error) })
        });
        self.channel.send(frame);
    }
}

impl RemoteReply {
    fn encode(&self, outcome: Outcome) -> Result<Bytes, RpcError> {
        let value = match outcome {
            Ok(value) => value,
            Err(error) => return Ok(wire::control_frame(&Frame::Reply { request: self.request, result: Err(error) })),
        };
        let frame = FrameBuilder::new(&Frame::Reply { request: self.request, result: Ok(()) });
        let shape = self
            .result
            .as_ref()
            .and_then(|(component, function)| component.function(*function)?.signature.result.as_ref());
        let frame = match (shape, &value) {
            (Some(shape), Some(val)) => frame.value(shape, val)?,
            (None, None) => frame,
            _ => return Err(RpcError::Serialization("the result does not match the function's type".to_owned())),
        };
        frame.finish(self.channel.frame_limit)
    }
}
