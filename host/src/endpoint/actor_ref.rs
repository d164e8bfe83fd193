//! [`ActorRef`]: the caller's side of an endpoint, shared by everyone who
//! calls it. Local callers and the network transport deliver calls through
//! it, so every call passes the same checks in the same order.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::lifecycle::{Lifecycle, LifecycleCell};
use super::mailbox::{Call, Control, Outcome, Reply};
use super::stats::Counters;
use crate::component::ComponentInfo;
use crate::error::{RpcError, within};
use crate::fencing::{self, FencingToken};
use crate::gateway::{FunctionId, GatewaySignature, Value};

/// A reference to a running (or finished) endpoint: its identity, state
/// and mailbox.
#[derive(Debug)]
pub(crate) struct ActorRef {
    pub id: Arc<str>,
    pub address: Arc<str>,
    /// Tells this endpoint from others that had or will have its id: a
    /// gateway reaches only the endpoint it connected to.
    pub incarnation: u64,
    pub token: Option<FencingToken>,
    /// What the component behind the endpoint exports: read by every
    /// handshake, replaced when the component is swapped.
    component: ArcSwap<ComponentInfo>,
    pub lifecycle: LifecycleCell,
    pub stats: Counters,
    /// The largest message (arguments or result) a call on this host may
    /// carry, in bytes (`max-message-size`).
    pub message_limit: usize,
    mailbox: mpsc::Sender<Call>,
    control: mpsc::UnboundedSender<Control>,
}

/// The sending ends of an endpoint's channels.
pub(crate) struct Channels {
    pub mailbox: mpsc::Sender<Call>,
    pub control: mpsc::UnboundedSender<Control>,
}

impl ActorRef {
    pub(crate) fn new(
        id: Arc<str>,
        address: Arc<str>,
        token: Option<FencingToken>,
        component: Arc<ComponentInfo>,
        memory: Arc<super::stats::MemoryUse>,
        message_limit: usize,
        channels: Channels,
    ) -> Self {
        Self {
            id,
            address,
            incarnation: rand_u64(),
            token,
            component: ArcSwap::new(component),
            lifecycle: LifecycleCell::new(),
            stats: Counters::new(memory),
            message_limit,
            mailbox: channels.mailbox,
            control: channels.control,
        }
    }

    /// The component the endpoint runs now.
    pub(crate) fn component(&self) -> Guard<Arc<ComponentInfo>> {
        self.component.load()
    }

    /// Puts `component` behind the endpoint: a swap has taken place.
    pub(crate) fn replace_component(&self, component: Arc<ComponentInfo>) {
        self.component.store(component);
    }

    /// Whether a call carrying `token` may enter the mailbox now. As in
    /// Flink, the not-started check comes before the fencing check.
    ///
    /// # Errors
    ///
    /// Not started, gone, or a fencing mismatch.
    pub(crate) fn admit(&self, token: Option<FencingToken>) -> Result<(), RpcError> {
        match self.lifecycle.get() {
            Lifecycle::Stopped => {
                return Err(RpcError::NotStarted { endpoint: self.id.to_string() });
            }
            Lifecycle::Terminated => return Err(self.gone()),
            Lifecycle::Started | Lifecycle::Terminating => {}
        }
        if fencing::admits(self.token, token) {
            Ok(())
        } else {
            Err(RpcError::FencingMismatch { endpoint: self.id.to_string(), expected: self.token, received: token })
        }
    }

    /// Asks `function` and waits up to `timeout` for its result. The timeout
    /// covers waiting for room in a full mailbox too.
    ///
    /// # Errors
    ///
    /// Any [`RpcError`] except the handshake kinds; message-too-large for
    /// arguments over `max-message-size`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the ask; the call may still run.
    pub(crate) async fn ask(
        &self,
        function: FunctionId,
        args: Vec<Value>,
        token: Option<FencingToken>,
        timeout: Duration,
    ) -> Outcome {
        self.admit(token)?;
        self.fits(&args)?;
        let (reply, response) = oneshot::channel();
        // Most asks find room in the mailbox and go in at once; only a full
        // mailbox's wait (boxed, so that it does not weigh on every ask's
        // future) is awaited, within the timeout as the answer is.
        let waiting = match self.mailbox.try_send(Call::new(function, args, Some(Reply::local(reply)))) {
            Ok(()) => None,
            Err(TrySendError::Full(call)) => Some(call),
            Err(TrySendError::Closed(_)) => return Err(self.gone()),
        };
        let exchange = async {
            if let Some(call) = waiting {
                Box::pin(self.mailbox.send(call)).await.map_err(|_| self.gone())?;
            }
            response.await.map_err(|_| self.gone())?
        };
        within(timeout, exchange, || (self.id.to_string(), self.component().qualified_name(function))).await
    }

    /// Tells `function`: waits for room in the mailbox, then returns. As in
    /// Flink, nothing is reported back; a tell that cannot be delivered is
    /// logged as a dead letter.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it returns may or may not deliver the tell.
    pub(crate) async fn tell(&self, function: FunctionId, args: Vec<Value>, token: Option<FencingToken>) {
        if let Err(error) = self.fits(&args) {
            return self.dead_letter(function, &error);
        }
        self.deliver(Call::new(function, args, None), token).await;
    }

    /// Whether a message of `values` is within `max-message-size`.
    ///
    /// # Errors
    ///
    /// [`RpcError::MessageTooLarge`] naming both sizes.
    pub(crate) fn fits(&self, values: &[Value]) -> Result<(), RpcError> {
        let size: usize = values.iter().map(Value::size).sum();
        if size > self.message_limit {
            return Err(RpcError::MessageTooLarge { size: size as u64, limit: self.message_limit as u64 });
        }
        Ok(())
    }

    /// Checks `call` as any call is checked, then waits for room in the
    /// mailbox. A call that cannot be delivered is answered with why, or
    /// logged as a dead letter if it is a tell. Calls from other hosts
    /// arrive here.
    pub(crate) async fn deliver(&self, call: Call, token: Option<FencingToken>) {
        match self.admit(token) {
            Ok(()) => self.enqueue(call).await,
            Err(error) => self.refuse(call, error),
        }
    }

    /// [`ActorRef::deliver`] without waiting: a call that finds the mailbox
    /// full is handed back, for the caller to queue while it waits for
    /// room, so that one full mailbox holds up nothing else.
    pub(crate) fn try_deliver(&self, call: Call, token: Option<FencingToken>) -> Result<(), Call> {
        match self.admit(token) {
            Ok(()) => self.try_enqueue(call),
            Err(error) => {
                self.refuse(call, error);
                Ok(())
            }
        }
    }

    /// Waits for room in the mailbox and puts `call` there, with no checks:
    /// for a call [`ActorRef::try_deliver`] handed back, checked already.
    pub(crate) async fn enqueue(&self, call: Call) {
        if let Err(unsent) = self.mailbox.send(call).await {
            self.refuse(unsent.0, self.gone());
        }
    }

    /// Puts `call` into the mailbox if there is room, with no checks (for
    /// a call checked when it was handed back); else hands it back again.
    /// A call for a terminated endpoint is refused.
    pub(crate) fn try_enqueue(&self, call: Call) -> Result<(), Call> {
        match self.mailbox.try_send(call) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(call)) => Err(call),
            Err(TrySendError::Closed(call)) => {
                self.refuse(call, self.gone());
                Ok(())
            }
        }
    }

    /// Completes once the mailbox has room for one call, which the permit
    /// holds; `None` once the endpoint has terminated.
    pub(crate) fn room(&self) -> impl Future<Output = Option<mpsc::OwnedPermit<Call>>> + Send + 'static {
        let mailbox = self.mailbox.clone();
        async move { mailbox.reserve_owned().await.ok() }
    }

    /// Messages waiting in the mailbox.
    pub(crate) fn queued(&self) -> usize {
        self.mailbox.max_capacity() - self.mailbox.capacity()
    }

    /// Answers a call that will not be served with `error`, or logs it as
    /// a dead letter if it is a tell.
    pub(crate) fn refuse(&self, call: Call, error: RpcError) {
        match call.reply {
            Some(reply) => reply.send(Err(error)),
            None => self.dead_letter(call.function, &error),
        }
    }

    /// Logs a message that could not be delivered (Flink's dead letters).
    pub(crate) fn dead_letter(&self, function: FunctionId, error: &RpcError) {
        let function = self.component().qualified_name(function);
        match error {
            RpcError::NotStarted { .. } => {
                tracing::info!(endpoint = %self.id, %function, "discarded tell: the endpoint has not been started");
            }
            RpcError::MessageTooLarge { .. } => {
                tracing::warn!(endpoint = %self.id, %function, %error, "discarded tell");
            }
            _ => {
                tracing::debug!(target: "weir::dead_letters", endpoint = %self.id, %function, %error, "dead letter")
            }
        }
    }

    /// The error for a call that found the endpoint gone: endpoint-failed if
    /// it failed, unreachable otherwise.
    pub(crate) fn gone(&self) -> RpcError {
        match self.lifecycle.termination() {
            Some(Err(failure)) => {
                RpcError::EndpointFailed { endpoint: self.id.to_string(), cause: failure.to_string() }
            }
            _ => RpcError::Unreachable { endpoint: self.id.to_string(), reason: "the endpoint has terminated".into() },
        }
    }

    /// The exported gateway `name` as callers see it: the check of Flink's
    /// connect handshake.
    ///
    /// # Errors
    ///
    /// [`RpcError::Handshake`] naming what the endpoint exports instead.
    pub(crate) fn gateway(&self, name: &str) -> Result<Arc<GatewaySignature>, RpcError> {
        let component = self.component();
        match component.gateway(name) {
            Some((index, _)) => Ok(component.gateway_signature(index)),
            None => {
                let exported: Vec<&str> = component.gateways.iter().map(|g| g.name.as_str()).collect();
                Err(RpcError::Handshake(format!(
                    "endpoint `{}` does not export gateway `{name}` (it exports: {})",
                    self.id,
                    if exported.is_empty() { "nothing".to_owned() } else { exported.join(", ") }
                )))
            }
        }
    }

    /// Sends a lifecycle command; ignored once the endpoint has terminated.
    pub(crate) fn control(&self, command: Control) {
        let _ = self.control.send(command);
    }
}

/// A random number: incarnations must differ across host restarts too, so
/// a counter would not do.
fn rand_u64() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}
