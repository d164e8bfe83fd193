//! What travels through an endpoint's mailbox and control channel.

use std::fmt;
use std::time::{Duration, Instant};

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
    /// To a caller on this host on a thread that runs no endpoint (a
    /// client): once the outcome is sent, the endpoint's thread yields its
    /// core, unless it answered clients moments ago. A client that sent its
    /// call and was preempted by the thread it woke waits on that core's
    /// run queue, runnable, and no wake-up moves it to an idle core;
    /// without the yield it took its answer only when the endpoint's thread
    /// next parked: a submission's acknowledgement came 0.3-0.45 ms after
    /// the call instead of 0.11 (BENCHMARKS.md, eighth session on issue 11).
    Elsewhere(oneshot::Sender<Outcome>),
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
    /// The reply to a caller on this host, on this thread.
    pub(crate) fn local(sender: oneshot::Sender<Outcome>) -> Self {
        if SERVES_ENDPOINTS.get() { Reply::Local(sender) } else { Reply::Elsewhere(sender) }
    }

    /// Delivers the outcome. A caller that stopped waiting misses it.
    pub(crate) fn send(self, outcome: Outcome) {
        match self {
            Reply::Local(sender) => {
                let _ = sender.send(outcome);
            }
            Reply::Elsewhere(sender) => {
                if sender.send(outcome).is_ok() {
                    yield_to_waiters();
                }
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

/// How long a thread's replies to clients must have paused for the next
/// one to yield: a client that calls once in a while gets its answer at
/// once, and a stream of replies (a client's pipelined asks) costs no
/// yield; a yield per reply took those from 1.4M/s to 0.6M/s.
const QUIET_BEFORE_YIELD: Duration = Duration::from_micros(50);

thread_local! {
    /// Whether this thread has served an endpoint.
    static SERVES_ENDPOINTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// When this thread last answered a client.
    static LAST_ANSWER: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Yields this thread's core to a client just answered, unless this
/// thread answered clients moments ago too.
fn yield_to_waiters() {
    if answered_after_quiet(Instant::now()) {
        std::thread::yield_now();
    }
}

/// Notes that this thread answered a client at `now`; whether its answers
/// to clients had paused for [`QUIET_BEFORE_YIELD`] before.
fn answered_after_quiet(now: Instant) -> bool {
    LAST_ANSWER.replace(Some(now)).is_none_or(|last| now.saturating_duration_since(last) >= QUIET_BEFORE_YIELD)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answer_after_a_pause_yields() {
        let start = Instant::now();
        assert!(answered_after_quiet(start), "the first answer yields");
        let streaming = start + QUIET_BEFORE_YIELD / 2;
        assert!(!answered_after_quiet(streaming), "one soon after does not");
        assert!(!answered_after_quiet(streaming + QUIET_BEFORE_YIELD / 2), "each answer restarts the pause");
        assert!(answered_after_quiet(streaming + QUIET_BEFORE_YIELD * 2), "one after a pause yields again");
    }
}
