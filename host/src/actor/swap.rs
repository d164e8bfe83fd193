//! The actor's side of a hot swap (see [`crate::swap`]): admitting a swap,
//! and the new component taking over once the old one has drained and
//! handed over its state.
//!
//! Both drive loops stop taking messages when they admit a swap, wait for
//! the calls in flight, call `snapshot` and return a [`Handoff`]; the loop
//! around them calls [`take_over`], and resumes either the new instance or,
//! if it failed, the old one, whose store nothing has touched meanwhile.

use tokio::sync::oneshot;
use tokio::time::Instant;
use wasmtime::Store;
use wasmtime::component::Accessor;

use super::machine::{self, During};
use crate::capability::{StoreData, StoreParts, TASK_BYTES, Timers, new_store};
use crate::component::{ComponentInfo, ExecutionMode};
use crate::endpoint::{ActorRef, Lifecycle, SwapOrder};
use crate::engine::{EndpointComponent, Engine, HandedState, InstanceFuncs, SnapshotFunc};
use crate::events::{Events, HostEvent};
use crate::swap::{Handover, SwapError, SwapOptions, SwapReport};

/// A swap as the service asks it of an endpoint.
pub(crate) struct SwapRequest {
    pub component: EndpointComponent,
    pub options: SwapOptions,
    pub done: oneshot::Sender<Result<SwapReport, SwapError>>,
}

impl SwapRequest {
    /// The request as the endpoint's control channel carries it.
    pub(crate) fn into_order(self) -> SwapOrder {
        SwapOrder(Box::new(self))
    }

    fn answer(self, outcome: Result<SwapReport, SwapError>) {
        let _ = self.done.send(outcome);
    }
}

/// A swap under way, from the moment the loop stopped taking messages.
pub(super) struct Draining {
    request: SwapRequest,
    /// When the mailbox stopped.
    began: Instant,
    /// Calls that were in flight then.
    in_flight: usize,
}

impl Draining {
    /// A swap that begins now, with `in_flight` calls to wait for.
    pub fn new(request: SwapRequest, in_flight: usize) -> Self {
        Self { request, began: Instant::now(), in_flight }
    }

    /// When the drain times out.
    pub fn deadline(&self) -> Instant {
        self.began + self.request.options.drain_timeout
    }

    /// The calls did not finish in time: the old component goes on.
    pub fn time_out(self, actor: &ActorRef, current: &ComponentInfo, in_flight: usize, events: &Events) {
        let error = SwapError::DrainTimeout {
            endpoint: actor.id.to_string(),
            current: current.name.clone(),
            deadline: self.request.options.drain_timeout,
            in_flight,
        };
        refuse(actor, self.request, error, events);
    }

    /// Everything has drained: asks the old instance for its state (calling
    /// its `snapshot` export through `snapshot`, as its drive loop calls
    /// guest functions) and hands the swap on, or refuses it if the
    /// instance would not hand its state over. A trap ends the endpoint
    /// (the caller's error).
    pub async fn hand_off(
        self,
        actor: &ActorRef,
        funcs: &InstanceFuncs,
        snapshot: impl AsyncFnOnce(&SnapshotFunc) -> Snapshot,
        tasks_running: usize,
        events: &Events,
    ) -> Result<Option<Handoff>, wasmtime::Error> {
        let state = match &funcs.snapshot {
            Some(export) => match snapshot(export).await? {
                Ok(Some(state)) => Ok(state),
                Ok(None) => Err("the old component had no state to hand over"),
                Err(reason) => {
                    let error = SwapError::SnapshotRefused {
                        endpoint: actor.id.to_string(),
                        current: funcs.info.name.clone(),
                        reason,
                    };
                    refuse(actor, self.request, error, events);
                    return Ok(None);
                }
            },
            None => Err(NO_SNAPSHOT),
        };
        Ok(Some(self.into_handoff(tasks_running, state)))
    }

    /// Everything has drained, and the old instance has no state to hand
    /// over: a sync-only component cannot export `weir:rpc/handover`, whose
    /// `restore` is async.
    pub fn hand_off_stateless(self) -> Handoff {
        self.into_handoff(0, Err(NO_SNAPSHOT))
    }

    fn into_handoff(self, tasks_ended: usize, state: Result<HandedState, &'static str>) -> Handoff {
        let Draining { request, began, in_flight } = self;
        Handoff { request, began, drained: in_flight, tasks_ended, state }
    }
}

/// Why a swap carries no state over from a component without `snapshot`.
const NO_SNAPSHOT: &str = "the old component does not export weir:rpc/handover.snapshot";

/// What `snapshot` returned, or how the guest failed.
pub(super) type Snapshot = wasmtime::Result<Result<Option<HandedState>, String>>;

/// A drained endpoint's swap, with the old instance's state.
pub(super) struct Handoff {
    request: SwapRequest,
    began: Instant,
    drained: usize,
    tasks_ended: usize,
    /// The old instance's state, or why there is none.
    state: Result<HandedState, &'static str>,
}

/// The swap a control command asked for, if it may begin: the endpoint is
/// started and the new component serves everything the current one does.
/// Otherwise it is refused here.
pub(super) fn admit(
    actor: &ActorRef,
    current: &ComponentInfo,
    order: SwapOrder,
    events: &Events,
) -> Option<SwapRequest> {
    let Ok(request) = order.0.downcast::<SwapRequest>() else {
        unreachable!("the control channel carries only swap requests as swap orders")
    };
    let request = *request;
    let endpoint = actor.id.to_string();
    let state = actor.lifecycle.get();
    if state != Lifecycle::Started {
        refuse(actor, request, SwapError::NotStarted { endpoint, state: format!("{state:?}").to_lowercase() }, events);
        return None;
    }
    let new = request.component.info();
    if let Err(differences) = current.can_be_replaced_by(new) {
        let error = SwapError::Incompatible {
            endpoint,
            current: current.name.clone(),
            component: new.name.clone(),
            differences,
        };
        refuse(actor, request, error, events);
        return None;
    }
    Some(request)
}

fn refuse(actor: &ActorRef, request: SwapRequest, error: SwapError, events: &Events) {
    tracing::warn!(endpoint = %actor.id, component = %request.component.info().name, %error, "swap refused");
    events.send(HostEvent::SwapRefused {
        id: actor.id.to_string(),
        component: request.component.info().name.clone(),
        reason: error.to_string(),
    });
    request.answer(Err(error));
}

/// Starts the new component of `handoff` as the endpoint, with the
/// identity, limits and waiting tasks of the instance it runs now (`store`
/// and `funcs`), and its state, and puts it in that instance's place; or,
/// if it failed, refuses the swap and leaves the instance as it was.
pub(super) async fn take_over(
    actor: &ActorRef,
    engine: &Engine,
    store: &mut Store<StoreData>,
    funcs: &mut InstanceFuncs,
    handoff: Handoff,
    events: &Events,
) {
    let Handoff { request, began, drained, tasks_ended, state } = handoff;
    let parts = store.data().parts(request.component.capability_states(engine.capabilities()));
    let started = instance(actor, parts, store, &request.component, state).await;
    // Nothing leaves the old store until the new instance is sure to stay.
    let taken = started.map_err(Unfit::Failed).and_then(|(mut next, next_funcs, handover)| {
        let children = next.data().children.unadopted();
        if !children.is_empty() {
            return Err(Unfit::Unadopted(children));
        }
        let carried = carry_tasks(store, &mut next).map_err(Unfit::Failed)?;
        Ok((next, next_funcs, handover, carried))
    });
    let (mut next, next_funcs, handover, tasks_carried) = match taken {
        Ok(taken) => taken,
        Err(unfit) => {
            let (endpoint, current) = (actor.id.to_string(), funcs.info.name.clone());
            let component = request.component.info().name.clone();
            let error = match unfit {
                Unfit::Failed(cause) => SwapError::TakeOver { endpoint, current, component, cause },
                Unfit::Unadopted(children) => SwapError::Unadopted { endpoint, current, component, children },
            };
            return refuse(actor, request, error, events);
        }
    };
    let children_adopted = next.data_mut().children.settle();
    actor.replace_component(next_funcs.info.clone());
    let to = next_funcs.info.name.clone();
    let retired = (std::mem::replace(store, next), std::mem::replace(funcs, next_funcs));
    let from = retired.1.info.name.clone();
    let pause = began.elapsed();
    // Freeing the old instance's memory and handles need not hold up the
    // mailbox: it happens on a blocking thread while the new one serves.
    tokio::task::spawn_blocking(move || drop(retired));
    let report = SwapReport {
        endpoint: actor.id.to_string(),
        from,
        to,
        handover,
        drained,
        tasks_ended,
        tasks_carried,
        children_adopted,
        pause,
    };
    tracing::info!(
        endpoint = %actor.id, from = %report.from, to = %report.to, handover = ?report.handover, ?pause,
        "endpoint swapped"
    );
    events.send(HostEvent::EndpointSwapped {
        id: report.endpoint.clone(),
        from: report.from.clone(),
        to: report.to.clone(),
        carried: matches!(report.handover, Handover::Carried { .. }),
        pause,
    });
    request.answer(Ok(report));
}

/// Why a new instance cannot take the endpoint over.
enum Unfit {
    /// It failed: to instantiate, in `restore` or `on-start`, or to take
    /// the scheduled tasks.
    Failed(String),
    /// It left these running children unadopted.
    Unadopted(Vec<String>),
}

/// Moves the scheduled tasks waiting in `from` to `to`, charged there;
/// how many it took on. A component without scheduled tasks takes none.
fn carry_tasks(from: &mut Store<StoreData>, to: &mut Store<StoreData>) -> Result<usize, String> {
    let waiting = from.data_mut().state::<Timers>().map_or(0, |timers| timers.len());
    if waiting == 0 || to.data_mut().state::<Timers>().is_none() {
        return Ok(0);
    }
    let charge = waiting as u64 * TASK_BYTES;
    to.data_mut().charge(charge).map_err(|error| format!("its scheduled tasks do not fit: {error:#}"))?;
    let tasks = from.data_mut().take_state::<Timers>().expect("tasks wait there");
    let timers = to.data_mut().state::<Timers>().expect("it keeps tasks");
    let before = timers.len();
    timers.absorb(*tasks);
    let carried = timers.len() - before;
    to.data_mut().refund((waiting - carried) as u64 * TASK_BYTES);
    Ok(carried)
}

/// Instantiates `component` as the endpoint `parts` describe, offers it
/// the children of the instance it replaces (`predecessor`) to adopt, and
/// starts it: `restore` with `state` if there is state and it takes it,
/// `on-start` otherwise. The error names what failed.
async fn instance(
    actor: &ActorRef,
    parts: StoreParts,
    predecessor: &mut Store<StoreData>,
    component: &EndpointComponent,
    state: Result<HandedState, &'static str>,
) -> Result<(Store<StoreData>, InstanceFuncs, Handover), String> {
    let mut store = new_store(component.engine(), parts).map_err(|error| error.to_string())?;
    predecessor.data_mut().children.bequeath(&mut store.data_mut().children);
    let funcs = component.instantiate(&mut store).await.map_err(|error| format!("cannot instantiate it: {error:#}"))?;
    let (begin, handover) = match state {
        Ok(state) if funcs.restore.is_some() => {
            let handover = Handover::Carried { version: state.version, bytes: state.bytes.len() };
            (Begin::Restore(state), handover)
        }
        Ok(_) => (Begin::OnStart, fresh("the new component does not export weir:rpc/handover.restore")),
        Err(reason) => (Begin::OnStart, fresh(reason)),
    };
    let during = begin.during();
    let begun = match funcs.info.mode {
        ExecutionMode::Concurrent => {
            let funcs = &funcs;
            store.run_concurrent(async |accessor| begin.concurrently(accessor, funcs).await).await.and_then(|r| r)
        }
        // A sync-only component has neither `on-start` nor `restore`: both
        // are async functions, which it cannot export.
        ExecutionMode::Sequential => Ok(Ok(())),
    };
    match begun {
        Ok(Ok(())) => Ok((store, funcs, handover)),
        Ok(Err(message)) => Err(format!("{} failed: {message}", during.describe(actor))),
        Err(error) => Err(machine::failure(actor, store.data(), during, &error).to_string()),
    }
}

fn fresh(reason: &str) -> Handover {
    Handover::Fresh { reason: reason.to_owned() }
}

/// How the new instance begins.
enum Begin {
    Restore(HandedState),
    OnStart,
}

impl Begin {
    fn during(&self) -> During {
        match self {
            Begin::Restore(_) => During::Restore,
            Begin::OnStart => During::OnStart,
        }
    }

    async fn concurrently(
        self,
        accessor: &Accessor<StoreData>,
        funcs: &InstanceFuncs,
    ) -> wasmtime::Result<Result<(), String>> {
        match (self, &funcs.restore, &funcs.on_start) {
            (Begin::Restore(state), Some(restore), _) => Ok(restore.call_concurrent(accessor, (state,)).await?.0),
            (Begin::OnStart, _, Some(on_start)) => {
                Ok(machine::hook_outcome(on_start.call_concurrent(accessor, Vec::new(), true).await?, |m| m))
            }
            _ => Ok(Ok(())),
        }
    }
}
