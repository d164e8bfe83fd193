//! `weir:rpc/registration`: the host's [`RetrySchedule`] for endpoints.
//! The host keeps the time between attempts; the endpoint makes each one
//! through the target's typed gateway and reports how it went.

use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::{Accessor, HasSelf, Linker, Resource};

use super::bindings::registration::{self, AttemptOutcome, RegistrationSettings};
use super::bindings::types::RpcError as WitRpcError;
use super::store::StoreData;
use crate::config::RegistrationConfig;
use crate::registration::{Attempt, RetrySchedule};

/// The interface, as components import it.
pub(crate) const INTERFACE: &str = "weir:rpc/registration@0.1.0";

/// Defines the interface in a linker.
pub(crate) fn link(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    registration::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
}
/// What a schedule costs the host, charged against the memory cap.
const SCHEDULE_BYTES: u64 = 256;

/// A schedule handle: the schedule, and when its next attempt is due.
pub struct Schedule {
    schedule: RetrySchedule,
    due: Instant,
}

impl registration::Host for StoreData {}

impl registration::HostRetrySchedule for StoreData {
    fn new(&mut self, settings: Option<RegistrationSettings>) -> wasmtime::Result<Resource<Schedule>> {
        let config = settings.map_or(self.host.registration, |s| RegistrationConfig {
            initial_timeout: Duration::from_millis(s.initial_timeout_ms),
            max_timeout: Duration::from_millis(s.max_timeout_ms),
            error_delay: Duration::from_millis(s.error_delay_ms),
            refused_delay: Duration::from_millis(s.refused_delay_ms),
        });
        let schedule = Schedule { schedule: RetrySchedule::new(config), due: Instant::now() };
        self.hold(schedule, SCHEDULE_BYTES)
    }

    fn report(&mut self, schedule: Resource<Schedule>, outcome: AttemptOutcome) -> wasmtime::Result<()> {
        let attempt = match outcome {
            AttemptOutcome::Accepted => Attempt::Accepted,
            AttemptOutcome::Declined(_) => Attempt::Declined,
            AttemptOutcome::Rejected(_) => Attempt::Rejected,
            AttemptOutcome::Failed(WitRpcError::Timeout(_)) => Attempt::TimedOut,
            AttemptOutcome::Failed(_) => Attempt::Failed,
        };
        let schedule = self.table.get_mut(&schedule)?;
        if let Some(delay) = schedule.schedule.after(attempt) {
            schedule.due = Instant::now() + delay;
        }
        Ok(())
    }

    fn drop(&mut self, schedule: Resource<Schedule>) -> wasmtime::Result<()> {
        self.release(schedule, SCHEDULE_BYTES).map(|_| ())
    }
}

impl<T> registration::HostRetryScheduleWithStore<T> for HasSelf<StoreData> {
    async fn next_attempt(accessor: &Accessor<T, Self>, schedule: Resource<Schedule>) -> Option<u64> {
        let (due, timeout) = accessor.with(|mut access| {
            let Schedule { schedule, due } = access.get().table.get(&schedule).ok()?;
            (!schedule.is_done()).then(|| (*due, schedule.timeout()))
        })?;
        // A due attempt goes at once: tokio's timer would hold it until its
        // next tick, most of a millisecond on a registration's path.
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
    }
}
