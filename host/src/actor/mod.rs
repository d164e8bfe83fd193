//! The actor: an endpoint's main thread.
//!
//! One task owns the endpoint's store and drives it: it takes lifecycle
//! commands, scheduled tasks and calls from the mailbox, runs them in the
//! guest one at a time, and sends the replies. [`concurrent`] drives
//! components that use component-model async, where a call that awaits lets
//! the next one start, as a Flink endpoint keeps running while a future is
//! pending; [`sequential`] drives sync-only components, where each call runs
//! to completion. Both share the state machine in [`machine`].
//!
//! A loop also ends when a swap of the endpoint's component has drained
//! it; [`run`] then has the new component take over ([`swap`]) and drives
//! whichever instance serves on. When the loop ends for good, [`run`]
//! records how and unregisters the endpoint, and [`finish`] answers every
//! call still queued or in flight. A trap ends only this
//! endpoint; every other endpoint keeps running (a deliberate difference from
//! Flink, whose supervisor stops the whole actor system when one actor fails).

mod batch;
mod concurrent;
mod machine;
mod sequential;
mod swap;

use std::sync::Arc;

use futures::FutureExt;
use slab::Slab;
use tokio::sync::mpsc;
use wasmtime::Store;

use crate::capability::StoreData;
use crate::component::ExecutionMode;
use crate::endpoint::{ActorRef, Call, Control, Directory, Outcome, Reply, Termination};
use crate::engine::{Engine, GatewayFunc, InstanceFuncs};
use crate::error::{EndpointFailure, RpcError};
use crate::events::{Events, HostEvent};
use crate::gateway::Value;

pub(crate) use self::swap::SwapRequest;

/// Most calls taken from the mailbox per wake-up.
const BATCH: usize = 64;

/// Everything an endpoint's main loop owns.
pub(crate) struct Actor {
    pub actor_ref: Arc<ActorRef>,
    pub store: Store<StoreData>,
    pub funcs: InstanceFuncs,
    pub inbox: Inbox,
    /// Calls started but not finished at most, before the loop takes no
    /// more from the mailbox (`max-in-flight`).
    pub max_in_flight: usize,
    /// Makes the instance a swapped-in component runs as.
    pub engine: Engine,
}

/// Why a serving loop returned.
enum Served {
    /// The endpoint terminated cleanly.
    Ended,
    /// A swap drained the endpoint: the new component takes over.
    Swap(swap::Handoff),
}

/// The receiving ends of an endpoint's channels, and the replies it owes.
pub(crate) struct Inbox {
    pub mailbox: mpsc::Receiver<Call>,
    pub control: mpsc::UnboundedReceiver<Control>,
    /// Asks being served: their replies, keyed by the running job.
    pub pending: Slab<Reply>,
    /// Calls taken from the mailbox but not yet started.
    pub batch: Vec<Call>,
}

impl Inbox {
    pub(crate) fn new(mailbox: mpsc::Receiver<Call>, control: mpsc::UnboundedReceiver<Control>) -> Self {
        Self { mailbox, control, pending: Slab::new(), batch: Vec::with_capacity(BATCH) }
    }
}

/// The guest function that serves `call`, and whether it returns a result;
/// `None` (and the call refused) if the component does not export it.
fn target<'a>(actor: &ActorRef, funcs: &'a InstanceFuncs, call: Call) -> Option<(Call, &'a GatewayFunc, bool)> {
    match funcs.info.position(call.function) {
        Some(position) => {
            let has_result = funcs.info.functions[position].signature.is_ask();
            Some((call, &funcs.gateway[position], has_result))
        }
        None => {
            let detail = format!("its component exports no function #{:016x}", call.function.0);
            actor.refuse(call, RpcError::UnknownFunction { endpoint: actor.id.to_string(), detail });
            None
        }
    }
}

/// What the caller of an ask learns from a call that returned: its
/// result, or message-too-large for a result over `max-message-size`. The
/// endpoint keeps serving either way.
fn reply_outcome(actor: &ActorRef, result: Option<Value>) -> Outcome {
    if let Some(value) = &result {
        actor.fits(std::slice::from_ref(value))?;
    }
    Ok(result)
}

/// Runs an endpoint until it terminates, then cleans up after it.
pub(crate) async fn run(actor: Actor, directory: Arc<Directory>, events: Events) {
    let actor_ref = actor.actor_ref.clone();
    let outcome = std::panic::AssertUnwindSafe(drive(actor, &events)).catch_unwind().await;
    let (termination, inbox) = match outcome {
        Ok(done) => done,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            (Err(EndpointFailure::Host { during: "the main loop".into(), message }), None)
        }
    };
    let failure = termination.as_ref().err().cloned();
    match &termination {
        Ok(()) => tracing::info!(endpoint = %actor_ref.id, "endpoint terminated"),
        Err(failure) => tracing::error!(endpoint = %actor_ref.id, %failure, "endpoint failed"),
    }
    // Gone from the directory before anyone learns it terminated; the
    // cause is recorded first, for callers that find it gone meanwhile.
    actor_ref.lifecycle.record(termination);
    directory.unregister(&actor_ref);
    finish(&actor_ref, inbox);
    events.send(HostEvent::EndpointTerminated { id: actor_ref.id.to_string(), failure });
}

/// Serves with the loop the running component needs until the endpoint
/// terminates. After a swap drained it, the new component takes over, or,
/// if it cannot, the old one serves on as it was.
async fn drive(mut actor: Actor, events: &Events) -> (Termination, Option<Inbox>) {
    loop {
        let served = match actor.funcs.info.mode {
            ExecutionMode::Concurrent => concurrent::serve(&mut actor, events).await,
            ExecutionMode::Sequential => sequential::serve(&mut actor, events).await,
        };
        let handoff = match served {
            Ok(Served::Swap(handoff)) => handoff,
            Ok(Served::Ended) => return (Ok(()), Some(actor.inbox)),
            Err(failure) => return (Err(failure), Some(actor.inbox)),
        };
        let Actor { actor_ref, store, funcs, engine, .. } = &mut actor;
        swap::take_over(actor_ref, engine, store, funcs, handoff, events).await;
    }
}

/// Marks the endpoint terminated, then fails every call it can no longer
/// serve: in flight, taken but not started, or still queued.
fn finish(actor_ref: &ActorRef, inbox: Option<Inbox>) {
    actor_ref.lifecycle.terminate();
    let Some(mut inbox) = inbox else { return };
    inbox.mailbox.close();
    let error = actor_ref.gone();
    for reply in inbox.pending.drain() {
        reply.send(Err(error.clone()));
    }
    let queued = std::iter::from_fn(|| inbox.mailbox.try_recv().ok());
    for call in inbox.batch.drain(..).chain(queued) {
        actor_ref.refuse(call, error.clone());
    }
    inbox.control.close();
    while let Ok(command) = inbox.control.try_recv() {
        if let Control::Start { done } = command {
            let _ = done.send(actor_ref.lifecycle.termination().cloned().unwrap_or(Ok(())));
        }
    }
}
