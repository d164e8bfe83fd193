//! What travels through an endpoint's mailbox and control channel.

use std::fmt;

use crate::error::{EndpointFailure, RpcError};
use crate::gateway::{FunctionId, Value};
use tokio::sync::oneshot;

/// How an ask ended: its result value, if the function has one, or why
/// there is none.
pub(crate) type Outcome = Result<Option<Value>, RpcError>;

/// Where an ask's outcome goes.
#[derive(Debug)]
pub(crate) enum Reply {
    /// To a caller on this host, as it is.
    Local(oneshot::Sender<Outcome>),
    /// To a caller the transport serves (on another host): it encodes the
    /// outcome and sends it back.
    Transport(Box<dyn ReplyTo>),
}

/// The transport's side of a reply.
pub(crate) trait ReplyTo: Send + fmt::Debug {
    /// Delivers the outcome; a caller that stopped waiting misses it.
    fn send(self: Box<Self>, outcome: Outcome);
}

impl Reply {
    /// Delivers the outcome. A caller that stopped waiting misses it.
    pub(crate) fn send(self, outcome: Outcome) {
        match self {
            Reply::Local(sender) => {
                let _ = sender.send(outcome);
            }
            Reply::Transport(reply) => reply.send(outcome),
        }
    }
}

/// A gateway call: an ask if it carries a reply, a tell otherwise.
#[derive(Debug)]
pub(crate) struct Call {
    pub function: FunctionId,
    pub args: Vec<Value>,
    pub reply: Option<Reply>,
    /// Sent from a thread that runs no endpoint: its sender goes on
    /// while the endpoint serves, and its next calls may arrive at once.
    pub from_elsewhere: bool,
}

thread_local! {
    /// Whether this thread has served an endpoint.
    static SERVES_ENDPOINTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Call {
    /// A call of `function`, noting where it was sent from.
    pub(crate) fn new(function: FunctionId, args: Vec<Value>, reply: Option<Reply>) -> Self {
        Self { function, args, reply, from_elsewhere: !SERVES_ENDPOINTS.get() }
    }
}

/// Notes that this thread serves endpoints: calls sent from it come from
/// code that takes turns with the endpoints, not from alongside them.
pub(crate) fn serving_here() {
    SERVES_ENDPOINTS.set(true);
}

/// Lifecycle commands, handled before any queued call.
#[derive(Debug)]
pub(crate) enum Control {
    /// Flink's `START`: run `on-start`, then serve. `done` learns when
    /// `on-start` has returned, or why the endpoint failed instead.
    Start { done: oneshot::Sender<Result<(), EndpointFailure>> },
    /// Flink's `TERMINATE`: run `on-stop`, then terminate.
    Terminate,
    /// Replace the component behind the endpoint (a hot swap).
    Swap(SwapOrder),
}

/// A swap as the endpoint's control channel carries it. What it holds (the
/// new component, and where the outcome goes) belongs to the layers that
/// load and drive components; this layer only delivers it, in order with
/// the other lifecycle commands.
pub(crate) struct SwapOrder(pub Box<dyn std::any::Any + Send>);

impl fmt::Debug for SwapOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SwapOrder")
    }
}
