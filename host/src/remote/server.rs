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
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wasmtime::component::Val;

use super::Settings;
use super::io::{self, Frames, Writer};
use super::values::ArgsSeed;
use super::wire::{self, Frame, FrameBuilder, Target};
use crate::component::{ComponentInfo, FunctionId};
use crate::endpoint::{ActorRef, Call, Directory, Reply};
use crate::error::RpcError;
use crate::fencing::FencingToken;

/// The pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until `stop` is cancelled.
pub(crate) async fn accept(
    listener: TcpListener,
    directory: Arc<Directory>,
    settings: Arc<Settings>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let connection = Connection { peer, directory: directory.clone(), settings: settings.clone() };
                settings.executor.spawn(connection.serve(stream, stop.clone()));
            }
            Err(error) => {
                // Out of file descriptors, typically: give the host a moment
                // instead of spinning on the same error.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
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
    async fn serve(self, stream: TcpStream, stop: CancellationToken) {
        let reason = tokio::select! {
            reason = self.run(stream) => reason,
            () = stop.cancelled() => "the host is shutting down".to_owned(),
        };
        tracing::info!(peer = %self.peer, %reason, "connection from host closed");
    }

    async fn run(&self, stream: TcpStream) -> String {
        let (frames, writer, reply_limit) =
            match tokio::time::timeout(self.settings.ask_timeout, self.open(stream)).await {
                Ok(Ok(opened)) => opened,
                Ok(Err(reason)) => return reason,
                Err(_) => return format!("no hello within {:?}", self.settings.ask_timeout),
            };
        tracing::debug!(peer = %self.peer, "accepted connection from host");
        let (outbox, queue) = mpsc::unbounded_channel();
        let replies = ReplyChannel { outbox, frame_limit: reply_limit };
        let closed = CancellationToken::new();
        let _closing = closed.clone().drop_guard();
        let writing = closed.clone();
        self.settings.executor.spawn(async move {
            // A failed write shows up as a failed read soon after.
            let _ = io::write_frames(writer, queue, writing).await;
        });
        self.read_calls(frames, &replies).await
    }

    /// TLS if configured, then the hello exchange. Also returns the largest
    /// reply the peer accepts.
    async fn open(&self, stream: TcpStream) -> Result<(Frames, Writer, usize), String> {
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (reader, mut writer) = match &self.settings.tls {
            Some(tls) => tls.accept(stream).await.map_err(|e| format!("TLS handshake failed: {e}"))?,
            None => super::tls::plain(stream),
        };
        let mut frames = io::frames(reader, self.settings.frame_limit);
        let body = io::next_frame(&mut frames).await?;
        let Frame::Hello { magic, version, frame_limit } = wire::decode_header(&body)?.0 else {
            return Err("the first frame is not a hello".to_owned());
        };
        if let Err(reason) = wire::check_hello(magic, version) {
            let _ = io::write_one(&mut writer, &Frame::Refused { reason: reason.clone() }).await;
            return Err(reason);
        }
        io::write_one(&mut writer, &wire::hello(self.settings.frame_limit)).await.map_err(|e| e.to_string())?;
        Ok((frames, writer, self.settings.frame_limit.min(frame_limit as usize)))
    }

    /// Serves frames until the connection ends or a frame makes no sense.
    async fn read_calls(&self, mut frames: Frames, replies: &ReplyChannel) -> String {
        loop {
            let body = match io::next_frame(&mut frames).await {
                Ok(body) => body,
                Err(reason) => return reason,
            };
            if let Err(reason) = self.handle(&body, replies).await {
                return reason;
            }
        }
    }

    async fn handle(&self, body: &[u8], replies: &ReplyChannel) -> Result<(), String> {
        let (header, payload_start) = wire::decode_header(body)?;
        let payload = &body[payload_start..];
        match header {
            Frame::Connect { request, endpoint, gateway } => {
                let result = self.directory.describe(endpoint, gateway);
                replies.send(wire::control_frame(&Frame::Connected { request, result }));
            }
            Frame::Ask { request, target, token } => {
                let reply = RemoteReply { request, result: None, channel: replies.clone() };
                self.call(target, token, payload, reply).await;
            }
            Frame::Tell { target, token } => self.tell(target, token, payload).await,
            other => return Err(format!("unexpected frame from the peer: {}", wire::kind(&other))),
        }
        Ok(())
    }

    /// An ask: decode, check, deliver; every failure is answered.
    async fn call(&self, target: Target<'_>, token: Option<FencingToken>, payload: &[u8], mut reply: RemoteReply) {
        match self.resolve(target, payload) {
            Ok((actor, function, args)) => {
                reply.result = Some((actor.component.clone(), function));
                actor.deliver(Call { function, args, reply: Some(Reply::Remote(reply)) }, token).await;
            }
            Err(error) => reply.send(Err(error)),
        }
    }

    /// A tell: as an ask, but failures become dead letters.
    async fn tell(&self, target: Target<'_>, token: Option<FencingToken>, payload: &[u8]) {
        match self.resolve(target, payload) {
            Ok((actor, function, args)) => actor.deliver(Call { function, args, reply: None }, token).await,
            Err(error) => {
                tracing::debug!(target: "weir::dead_letters", peer = %self.peer, endpoint = target.endpoint, %error, "dead letter");
            }
        }
    }

    /// The endpoint incarnation a call is for, the function, and its
    /// arguments decoded with the function's parameter types.
    fn resolve(&self, target: Target<'_>, payload: &[u8]) -> Result<(Arc<ActorRef>, FunctionId, Vec<Val>), RpcError> {
        let actor = self.directory.incarnation(target.endpoint, target.incarnation)?;
        let function = FunctionId(target.function);
        let export = actor.component.functions.get(function.0 as usize).ok_or_else(|| RpcError::UnknownFunction {
            endpoint: actor.id.to_string(),
            detail: format!("the component has no function #{}", function.0),
        })?;
        let args = wire::decode_payload(ArgsSeed(&export.signature.params), payload).map_err(|e| {
            let name = actor.component.qualified_name(function);
            RpcError::Serialization(format!("cannot decode the arguments of {name}: {e}"))
        })?;
        Ok((actor, function, args))
    }
}

/// Where the replies on one connection go, and the largest the peer takes.
#[derive(Clone, Debug)]
struct ReplyChannel {
    outbox: mpsc::UnboundedSender<Bytes>,
    frame_limit: usize,
}

impl ReplyChannel {
    /// Queues a frame; a closed connection has nobody left to tell.
    fn send(&self, frame: Bytes) {
        let _ = self.outbox.send(frame);
    }
}

/// Where the outcome of an ask from another host goes: back over its
/// connection, encoded with the function's result type.
#[derive(Debug)]
pub(crate) struct RemoteReply {
    request: u64,
    /// The component and function whose result this is, once known.
    result: Option<(Arc<ComponentInfo>, FunctionId)>,
    channel: ReplyChannel,
}

impl RemoteReply {
    /// Encodes and queues the outcome. A result too large for a frame is
    /// answered with frame-too-large instead (Flink: "The method's result
    /// size exceeds the maximum size").
    pub(crate) fn send(self, outcome: Result<Option<Val>, RpcError>) {
        let frame = self.encode(outcome).unwrap_or_else(|error| {
            tracing::warn!(request = self.request, %error, "cannot send a reply");
            wire::control_frame(&Frame::Reply { request: self.request, result: Err(error) })
        });
        self.channel.send(frame);
    }

    fn encode(&self, outcome: Result<Option<Val>, RpcError>) -> Result<Bytes, RpcError> {
        let value = match outcome {
            Ok(value) => value,
            Err(error) => return Ok(wire::control_frame(&Frame::Reply { request: self.request, result: Err(error) })),
        };
        let frame = FrameBuilder::new(&Frame::Reply { request: self.request, result: Ok(()) });
        let shape = self
            .result
            .as_ref()
            .and_then(|(component, function)| component.function(*function).signature.result.as_ref());
        let frame = match (shape, &value) {
            (Some(shape), Some(val)) => frame.value(shape, val)?,
            (None, None) => frame,
            _ => return Err(RpcError::Serialization("the result does not match the function's type".to_owned())),
        };
        frame.finish(self.channel.frame_limit)
    }
}
