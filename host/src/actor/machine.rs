//! The lifecycle state machine both drive loops share (Flink's
//! `PekkoRpcActor` states), and how guest outcomes become terminations.

use wasmtime::component::Val;

use crate::capability::{LimitExceeded, StoreData};
use crate::endpoint::{ActorRef, Call, Control, Lifecycle};
use crate::error::{EndpointFailure, RpcError};
use crate::events::{Events, HostEvent};
use crate::gateway::{FunctionId, Value};

/// What the loop must do after a lifecycle command.
pub(super) enum Action {
    /// Run `on-start`, report to `done`, then serve.
    Start(tokio::sync::oneshot::Sender<Result<(), EndpointFailure>>),
    /// Run `on-stop` while still serving; terminate when it returns.
    Stop,
    /// Terminate now.
    Finish,
    /// Consider swapping the component.
    Swap(crate::endpoint::SwapOrder),
    /// Nothing to do.
    Nothing,
}

/// Applies a lifecycle command to the endpoint's state. A closed control
/// channel means nobody can reach the endpoint any more: it terminates.
pub(super) fn on_control(actor: &ActorRef, command: Option<Control>, has_on_stop: bool) -> Action {
    let state = actor.lifecycle.get();
    match (command, state) {
        (Some(Control::Swap(order)), _) => Action::Swap(order),
        (Some(Control::Start { done }), Lifecycle::Stopped) => {
            transition(actor, Lifecycle::Started);
            Action::Start(done)
        }
        (Some(Control::Start { done }), _) => {
            if state == Lifecycle::Terminating {
                // Flink fails the whole actor system here; weir ignores it.
                tracing::warn!(endpoint = %actor.id, "ignored start: the endpoint is terminating");
            }
            let _ = done.send(Ok(()));
            Action::Nothing
        }
        (Some(Control::Terminate) | None, Lifecycle::Stopped) => Action::Finish,
        (Some(Control::Terminate) | None, Lifecycle::Started) => {
            transition(actor, Lifecycle::Terminating);
            if has_on_stop { Action::Stop } else { Action::Finish }
        }
        (Some(Control::Terminate) | None, _) => Action::Nothing,
    }
}

fn transition(actor: &ActorRef, to: Lifecycle) {
    tracing::debug!(endpoint = %actor.id, from = ?actor.lifecycle.get(), ?to, "endpoint state changed");
    actor.lifecycle.set(to);
}

/// `on-start` has returned: the endpoint serves calls now.
pub(super) fn started(actor: &ActorRef, events: &Events) {
    tracing::info!(endpoint = %actor.id, component = %actor.component().name, address = %actor.address, "endpoint started");
    events.send(HostEvent::EndpointStarted {
        id: actor.id.to_string(),
        component: actor.component().name.clone(),
        address: actor.address.to_string(),
    });
}

/// A call taken from the mailbox, if the endpoint serves it in its current
/// state. Otherwise the call is answered (asks) or dropped (tells) here, as
/// Flink does for an endpoint that is not started.
pub(super) fn admit(actor: &ActorRef, call: Call) -> Option<Call> {
    if actor.lifecycle.get() != Lifecycle::Stopped {
        return Some(call);
    }
    actor.refuse(call, RpcError::NotStarted { endpoint: actor.id.to_string() });
    None
}

/// How a hook's `result<_, string>` turns into a termination cause.
pub(super) fn hook_outcome<E>(value: Option<Value>, failed: impl FnOnce(String) -> E) -> Result<(), E> {
    match value {
        Some(Value::Val(Val::Result(Err(Some(message))))) => match *message {
            Val::String(message) => Err(failed(message)),
            other => Err(failed(format!("{other:?}"))),
        },
        _ => Ok(()),
    }
}

/// What was running when a guest failed, for the termination cause.
#[derive(Clone, Copy, Debug)]
pub(super) enum During {
    OnStart,
    OnStop,
    /// `weir:rpc/handover.snapshot`, on the old component of a swap.
    Snapshot,
    /// `weir:rpc/handover.restore`, on the new component of a swap.
    Restore,
    Function(FunctionId),
    /// A batch of queued calls (`weir:rpc/batch`).
    Batch,
    Task(u64),
    AnyTask,
    Unknown,
}

impl During {
    pub(super) fn describe(self, actor: &ActorRef) -> String {
        match self {
            During::OnStart => "on-start".into(),
            During::OnStop => "on-stop".into(),
            During::Snapshot => "snapshot".into(),
            During::Restore => "restore".into(),
            During::Function(id) => format!("`{}`", actor.component().qualified_name(id)),
            During::Batch => "a batch of queued calls".into(),
            During::Task(task) => format!("main-thread task {task}"),
            During::AnyTask => "a main-thread task".into(),
            During::Unknown => "a guest task".into(),
        }
    }
}

impl During {
    /// What a trap's backtrace says was running, or `self` if it says
    /// nothing. In concurrent mode a trap ends the whole event loop rather
    /// than the call it happened in, so the backtrace is the witness: its
    /// outermost export frame is named `<interface>#<function>`.
    fn or_from_backtrace(self, actor: &ActorRef, error: &wasmtime::Error) -> During {
        let Some(backtrace) = error.downcast_ref::<wasmtime::WasmBacktrace>() else { return self };
        let Some((interface, function)) =
            backtrace.frames().iter().rev().filter_map(|frame| frame.func_name()?.rsplit_once('#')).next()
        else {
            return self;
        };
        // Export glue names may carry an ABI prefix, e.g. `[async-lift]`.
        let interface = interface.rsplit(']').next().unwrap_or(interface);
        match (interface, function) {
            ("weir:rpc/lifecycle@0.1.0", "on-start") => During::OnStart,
            ("weir:rpc/lifecycle@0.1.0", "on-stop") => During::OnStop,
            ("weir:rpc/main-thread@0.1.0", _) => During::AnyTask,
            ("weir:rpc/batch@0.1.0", _) => During::Batch,
            ("weir:rpc/handover@0.1.0", "snapshot") => During::Snapshot,
            ("weir:rpc/handover@0.1.0", "restore") => During::Restore,
            _ => {
                let component = actor.component();
                let found = component
                    .gateway(interface)
                    .and_then(|(index, _)| component.gateway_functions(index).find(|(_, f)| f.name == function));
                found.map_or(self, |(id, _)| During::Function(id))
            }
        }
    }
}

/// Turns a wasmtime error into the endpoint's termination cause, naming the
/// limit that stopped the guest if one did, or the guest's panic message if
/// it reported one before it trapped.
pub(super) fn failure(actor: &ActorRef, data: &StoreData, during: During, error: &wasmtime::Error) -> EndpointFailure {
    let during = during.or_from_backtrace(actor, error).describe(actor);
    match data.exceeded {
        Some(LimitExceeded::CpuDeadline) => {
            EndpointFailure::CpuDeadlineExceeded { during, deadline: data.limits.cpu_deadline }
        }
        Some(LimitExceeded::Memory { wanted, held }) => {
            EndpointFailure::MemoryCapExceeded { during, cap: data.limits.memory_cap, wanted, held }
        }
        None => match data.stderr.panic() {
            Some(message) => {
                tracing::debug!(endpoint = %actor.id, trap = %format!("{error:#}"), "the guest panicked");
                EndpointFailure::Panicked { during, message }
            }
            None => EndpointFailure::Trapped { during, message: format!("{error:#}") },
        },
    }
}
