//! What travels through an endpoint's mailbox and control channel.

use tokio::sync::oneshot;
use wasmtime::component::Val;

use crate::component::FunctionId;
use crate::error::{EndpointFailure, RpcError};

/// Where an ask's outcome goes: the result value, if the function has one.
pub(crate) type Reply = oneshot::Sender<Result<Option<Val>, RpcError>>;

/// A gateway call: an ask if it carries a reply, a tell otherwise.
#[derive(Debug)]
pub(crate) struct Call {
    pub function: FunctionId,
    pub args: Vec<Val>,
    pub reply: Option<Reply>,
}

/// Lifecycle commands, handled before any queued call.
#[derive(Debug)]
pub(crate) enum Control {
    /// Flink's `START`: run `on-start`, then serve. `done` learns when
    /// `on-start` has returned, or why the endpoint failed instead.
    Start { done: oneshot::Sender<Result<(), EndpointFailure>> },
    /// Flink's `TERMINATE`: run `on-stop`, then terminate.
    Terminate,
}
