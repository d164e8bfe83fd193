//! The lifecycle state of an endpoint, readable from any thread.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

use crate::error::EndpointFailure;

/// Flink's actor states. The order is the order an endpoint goes through
/// them; an endpoint never goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Lifecycle {
    /// Spawned but not started: asks fail with not-started, tells are
    /// dropped.
    Stopped = 0,
    /// Serving calls.
    Started = 1,
    /// `on-stop` is running; calls are still served.
    Terminating = 2,
    /// Gone: every call fails with unreachable (or endpoint-failed, if it
    /// failed).
    Terminated = 3,
}

impl Lifecycle {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => Lifecycle::Stopped,
            1 => Lifecycle::Started,
            2 => Lifecycle::Terminating,
            _ => Lifecycle::Terminated,
        }
    }
}

/// How an endpoint ended: `Ok` for a clean stop.
pub type Termination = Result<(), EndpointFailure>;

/// An endpoint's state, shared between its main loop (the only writer) and
/// everyone who calls it or waits for it.
#[derive(Debug)]
pub(crate) struct LifecycleCell {
    state: AtomicU8,
    termination: OnceLock<Termination>,
    changed: Notify,
}

impl LifecycleCell {
    pub(crate) fn new() -> Self {
        Self { state: AtomicU8::new(Lifecycle::Stopped as u8), termination: OnceLock::new(), changed: Notify::new() }
    }

    pub(crate) fn get(&self) -> Lifecycle {
        Lifecycle::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set(&self, state: Lifecycle) {
        self.state.store(state as u8, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Records how the endpoint ended, before it is `Terminated`: a call
    /// that finds it gone from then on learns the cause.
    pub(crate) fn record(&self, termination: Termination) {
        let _ = self.termination.set(termination);
    }

    /// Moves the endpoint to `Terminated`, waking whoever waits for it.
    /// Its cause was recorded before, so whoever sees `Terminated` sees it.
    pub(crate) fn terminate(&self) {
        self.set(Lifecycle::Terminated);
    }

    /// How the endpoint ended, once it has.
    pub(crate) fn termination(&self) -> Option<&Termination> {
        self.termination.get()
    }

    /// Waits until the endpoint has terminated, and says how.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future only stops the waiting.
    pub(crate) async fn terminated(&self) -> Termination {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.get() == Lifecycle::Terminated {
                return self.termination().cloned().unwrap_or(Ok(()));
            }
            changed.await;
        }
    }
}
