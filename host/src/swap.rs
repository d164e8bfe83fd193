//! Hot swap: replacing the component behind a running endpoint, and what a
//! swap reports.
//!
//! A swap keeps the endpoint: its id, address, incarnation, fencing token,
//! mailbox and every caller's handle stay as they were. The host checks the
//! new component against the gateways callers use, stops delivering
//! messages (they wait in the mailbox), lets the calls in flight finish,
//! takes the old component's state (`weir:rpc/handover.snapshot`), starts
//! the new component with it (`restore`, or `on-start` if there is no state
//! to hand over), hands it the scheduled tasks still waiting, and resumes
//! the mailbox. A swap is a lifecycle command: like `start` and `stop`, it
//! overtakes the calls waiting in the mailbox, which the new component
//! then serves, in order. Until the new component has taken over, nothing of the old
//! one is touched: a swap that fails anywhere leaves the old component
//! serving with its state and mailbox as they were.
//!
//! Tasks the old component was running (a background loop awaiting
//! heartbeats, say) end with it; what they stood for belongs in its
//! snapshot, and `restore` starts them again. Endpoints it started
//! (`weir:rpc/supervision`) pass to the new instance, which adopts each
//! (`child.adopt`) before it serves; one it leaves would be stopped, so
//! the swap is then refused.

use std::time::Duration;

/// How a swap goes about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapOptions {
    /// How long the calls in flight may take to finish before the swap is
    /// refused (and the old component goes on).
    pub drain_timeout: Duration,
}

impl Default for SwapOptions {
    /// Ten seconds to drain, Flink's default ask timeout.
    fn default() -> Self {
        Self { drain_timeout: Duration::from_secs(10) }
    }
}

/// What happened to the endpoint's state in a swap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handover {
    /// The new component restored the state the old one handed over.
    Carried {
        /// The layout version of the state.
        version: u32,
        /// Its size.
        bytes: usize,
    },
    /// The new component started fresh, through `on-start`.
    Fresh {
        /// Why nothing was carried over.
        reason: String,
    },
}

/// A swap that took place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapReport {
    /// The endpoint.
    pub endpoint: String,
    /// The component it ran.
    pub from: String,
    /// The component it runs now.
    pub to: String,
    /// What became of its state.
    pub handover: Handover,
    /// Calls that were in flight when the swap began, which it waited for.
    pub drained: usize,
    /// Tasks the old component was running, which ended with it.
    pub tasks_ended: usize,
    /// Scheduled tasks still waiting, which the new component runs when
    /// they are due.
    pub tasks_carried: usize,
    /// Endpoints the old component had started, which the new one adopted.
    pub children_adopted: usize,
    /// How long no message was delivered: from when the swap stopped the
    /// mailbox until the new component served.
    pub pause: Duration,
}

/// Why a swap was refused. Every refusal but [`SwapError::Terminated`]
/// leaves the endpoint serving with its old component, state and mailbox.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwapError {
    /// No endpoint with this id runs on the host.
    #[error("no endpoint `{0}` runs on this host")]
    UnknownEndpoint(String),
    /// The component was loaded by another engine than the host's.
    #[error("component `{0}` was loaded by another engine than this host's; load it through the host's engine")]
    ForeignComponent(String),
    /// Only a started endpoint swaps.
    #[error("endpoint `{endpoint}` is {state}; only a started endpoint can swap its component")]
    NotStarted {
        /// The endpoint.
        endpoint: String,
        /// Its lifecycle state.
        state: String,
    },
    /// The new instance did not adopt every child the old one held
    /// (`weir:rpc/supervision`), which the swap would have stopped.
    #[error(
        "`{component}` did not adopt the running children of endpoint `{endpoint}` ({}), which the swap would stop; it goes on with `{current}` and its children (a component takes its predecessor's children over with `child.adopt(id)` in `restore`)",
        children.join(", ")
    )]
    Unadopted {
        /// The endpoint.
        endpoint: String,
        /// The component it goes on with.
        current: String,
        /// The component refused.
        component: String,
        /// The ids of the children it left.
        children: Vec<String>,
    },
    /// The new component does not serve what callers of the old one call.
    #[error(
        "`{component}` cannot replace `{current}` behind endpoint `{endpoint}`: it must export the same gateways with the same types, and:\n{differences}"
    )]
    Incompatible {
        /// The endpoint.
        endpoint: String,
        /// The component it runs.
        current: String,
        /// The component refused.
        component: String,
        /// What differs, one line each.
        differences: String,
    },
    /// Calls in flight did not finish in time.
    #[error(
        "endpoint `{endpoint}` still had {in_flight} call(s) in flight after {deadline:?}; the swap is refused and it goes on with `{current}` (retry, or allow a longer drain)"
    )]
    DrainTimeout {
        /// The endpoint.
        endpoint: String,
        /// The component it goes on with.
        current: String,
        /// The drain timeout.
        deadline: Duration,
        /// Calls still running.
        in_flight: usize,
    },
    /// The old component refused to hand over its state.
    #[error("endpoint `{endpoint}`'s component `{current}` refused to hand over its state: {reason}")]
    SnapshotRefused {
        /// The endpoint.
        endpoint: String,
        /// The component it goes on with.
        current: String,
        /// What `snapshot` said.
        reason: String,
    },
    /// The new component could not be instantiated or failed to take over.
    #[error(
        "`{component}` could not take over endpoint `{endpoint}`: {cause}; it goes on with `{current}` and its state"
    )]
    TakeOver {
        /// The endpoint.
        endpoint: String,
        /// The component it goes on with.
        current: String,
        /// The component refused.
        component: String,
        /// What went wrong: instantiation, `restore` or `on-start`.
        cause: String,
    },
    /// The endpoint terminated before the swap could finish (it was
    /// stopped, or its old component trapped in `snapshot`).
    #[error("endpoint `{endpoint}` terminated before the swap finished: {cause}")]
    Terminated {
        /// The endpoint.
        endpoint: String,
        /// How it ended.
        cause: String,
    },
}

/// A swap of every endpoint that runs one component stopped at a refusal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("swapped {} endpoint(s) running `{running}`, then stopped: {error}", swapped.len())]
pub struct KindSwapError {
    /// The component the endpoints ran.
    pub running: String,
    /// The swaps that took place before the refusal.
    pub swapped: Vec<SwapReport>,
    /// The refusal.
    pub error: SwapError,
}

/// Swaps the endpoints `ids`, which run the component named `running`, one
/// after another with `swap`, stopping at the first refusal: how a whole
/// kind of endpoint is swapped, whatever swaps each one.
///
/// # Errors
///
/// The swaps done, and the refusal that stopped the rest.
pub async fn one_after_another<Swapped>(
    running: &str,
    ids: Vec<String>,
    mut swap: impl FnMut(String) -> Swapped,
) -> Result<Vec<SwapReport>, KindSwapError>
where
    Swapped: Future<Output = Result<SwapReport, SwapError>>,
{
    let mut swapped = Vec::new();
    for id in ids {
        match swap(id).await {
            Ok(report) => swapped.push(report),
            Err(error) => return Err(KindSwapError { running: running.to_owned(), swapped, error }),
        }
    }
    Ok(swapped)
}
