//! Registering with another endpoint, with retries (Flink's
//! `RetryingRegistration`): the host keeps the schedule
//! (`weir:rpc/registration`), the endpoint makes each attempt.
//!
//! ```ignore
//! let outcome = weir_guest::registration::register(None, async |timeout| {
//!     let manager = ResourceManagerGateway::connect(&address, token).await?;
//!     manager.set_timeout(timeout.as_millis() as u64);
//!     Ok(match manager.register_task_executor(me.clone()).await? {
//!         Answer::Accepted(id) => Response::Accepted(id),
//!         Answer::NotNow(why) => Response::Declined(why),
//!         Answer::Never(why) => Response::Rejected(why),
//!     })
//! })
//! .await;
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::RpcError;

/// The generated bindings, which endpoint crates share through
/// [`generate!`](crate::generate).
#[doc(hidden)]
pub mod wit {
    pub use crate::bindings::weir::rpc::registration::*;
}

pub use wit::RegistrationSettings;

/// The target's answer to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<S, R> {
    /// Registered.
    Accepted(S),
    /// Not now: try again after the refused delay.
    Declined(String),
    /// Never: stop trying.
    Rejected(R),
}

/// Makes attempts on the host's schedule until one is accepted or
/// rejected. Each attempt gets its timeout; an attempt whose RPC fails with
/// `timeout` is retried at once with twice the timeout, any other failure
/// after the error delay, a declined one after the refused delay. Settings
/// default to the host's.
///
/// # Errors
///
/// The rejection that ended it.
pub async fn register<S, R: std::fmt::Display>(
    settings: Option<RegistrationSettings>,
    mut attempt: impl AsyncFnMut(Duration) -> Result<Response<S, R>, RpcError>,
) -> Result<S, R> {
    let schedule = wit::RetrySchedule::new(settings);
    loop {
        let timeout = schedule.next_attempt().await.expect("an unfinished schedule always has a next attempt");
        match attempt(Duration::from_millis(timeout)).await {
            Ok(Response::Accepted(success)) => {
                schedule.report(&wit::AttemptOutcome::Accepted);
                return Ok(success);
            }
            Ok(Response::Rejected(rejection)) => {
                schedule.report(&wit::AttemptOutcome::Rejected(rejection.to_string()));
                return Err(rejection);
            }
            Ok(Response::Declined(reason)) => schedule.report(&wit::AttemptOutcome::Declined(reason)),
            Err(error) => schedule.report(&wit::AttemptOutcome::Failed(error)),
        }
    }
}

/// Successive registrations of one kind, each superseding the one before
/// (Flink's `RegisteredRpcConnection`, renewed when the target's leader
/// changes or the connection is lost). Cheap to clone: clones share the
/// count.
#[derive(Debug, Clone, Default)]
pub struct Registrations {
    latest: Rc<Cell<u64>>,
}

/// One registration of [`Registrations`]: current until a newer one starts.
#[derive(Debug, Clone)]
pub struct Generation {
    latest: Rc<Cell<u64>>,
    mine: u64,
}

impl Registrations {
    /// Starts a registration, superseding every earlier one.
    pub fn start(&self) -> Generation {
        self.latest.set(self.latest.get() + 1);
        Generation { latest: self.latest.clone(), mine: self.latest.get() }
    }
}

impl Generation {
    /// Whether no newer registration has started.
    pub fn is_current(&self) -> bool {
        self.latest.get() == self.mine
    }

    /// [`register`] while this registration is current: `None` once a newer
    /// one has started (checked before each attempt and after the last).
    /// Declined and failed attempts are retried on the host's schedule.
    pub async fn register<S>(
        &self,
        settings: Option<RegistrationSettings>,
        mut attempt: impl AsyncFnMut(Duration) -> Result<Response<S, Superseded>, RpcError>,
    ) -> Option<S> {
        let registered = register(settings, async |timeout| match self.is_current() {
            true => attempt(timeout).await,
            false => Ok(Response::Rejected(Superseded)),
        })
        .await;
        registered.ok().filter(|_| self.is_current())
    }
}

/// Why a registration stopped: a newer one took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superseded;

impl std::fmt::Display for Superseded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a newer registration took over")
    }
}
