//! Registration with retries (Flink's `RetryingRegistration`): how a
//! component signs up with a leader (a worker with its coordinator) and
//! keeps trying until it is
//! accepted or rejected for good.
//!
//! - An attempt that times out is retried at once with twice the timeout,
//!   up to a maximum.
//! - An attempt that fails otherwise (the leader is unreachable, not
//!   started, ...) is retried after the error delay.
//! - A declined registration ("not now") is retried after the refused delay.
//! - A rejection ends the registration.
//! - A new leader cancels the attempt in progress: [`register_with_leader`].

use std::future::Future;
use std::time::Duration;

use crate::config::RegistrationConfig;
use crate::error::RpcError;
use crate::ha::{LeaderInformation, LeaderRetrieval};

/// The target's answer to one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationResponse<S, R> {
    /// Registered.
    Success(S),
    /// Not now; try again after the refused delay (Flink's `Failure`).
    Declined(String),
    /// Never; stop trying (Flink's `Rejection`).
    Rejected(R),
}

/// One kind of registration: how to make an attempt.
pub trait Registration: Send {
    /// What a successful registration yields.
    type Success: Send;
    /// What a final rejection says.
    type Rejection: Send;

    /// Makes one attempt, taking at most `timeout` (connecting included).
    /// A [`RpcError::Timeout`] doubles the next attempt's timeout; any other
    /// error waits for the error delay.
    fn attempt(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<RegistrationResponse<Self::Success, Self::Rejection>, RpcError>> + Send;
}

/// How an attempt went, as far as the schedule cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Registered: the schedule ends.
    Accepted,
    /// Refused for good: the schedule ends.
    Rejected,
    /// Not now: wait the refused delay.
    Declined,
    /// The attempt timed out: retry at once with twice the timeout.
    TimedOut,
    /// The attempt failed otherwise: wait the error delay.
    Failed,
}

/// Flink's retry policy, as a state machine with no clock of its own: after
/// each attempt, when the next one is due and how long it may take. The
/// host's [`register`] and the `weir:rpc/registration` capability both run
/// on it.
#[derive(Clone, Debug)]
pub struct RetrySchedule {
    config: RegistrationConfig,
    timeout: Duration,
    attempts: u64,
    done: bool,
}

impl RetrySchedule {
    /// A schedule whose first attempt is due now.
    pub fn new(config: RegistrationConfig) -> Self {
        Self { timeout: config.initial_timeout, config, attempts: 0, done: false }
    }

    /// The timeout of the next attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Attempts reported so far.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// Whether an attempt was accepted or rejected.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Records how an attempt went; returns how long to wait before the
    /// next one, or `None` once the schedule has ended.
    pub fn after(&mut self, attempt: Attempt) -> Option<Duration> {
        self.attempts += 1;
        let delay = match attempt {
            Attempt::Accepted | Attempt::Rejected => {
                self.done = true;
                return None;
            }
            Attempt::TimedOut => {
                self.timeout = (self.timeout * 2).min(self.config.max_timeout);
                return Some(Duration::ZERO);
            }
            Attempt::Declined => self.config.refused_delay,
            Attempt::Failed => self.config.error_delay,
        };
        self.timeout = self.config.initial_timeout;
        Some(delay)
    }
}

/// Attempts `registration` until it succeeds or is rejected.
///
/// # Errors
///
/// The rejection that ended it.
///
/// # Cancel safety
///
/// Dropping the future cancels the registration.
pub async fn register<R: Registration>(
    registration: &mut R,
    config: &RegistrationConfig,
) -> Result<R::Success, R::Rejection> {
    let mut schedule = RetrySchedule::new(*config);
    loop {
        let attempt = schedule.attempts() + 1;
        let kind = match registration.attempt(schedule.timeout()).await {
            Ok(RegistrationResponse::Success(success)) => {
                tracing::info!(attempt, "registration succeeded");
                return Ok(success);
            }
            Ok(RegistrationResponse::Rejected(rejection)) => {
                tracing::info!(attempt, "registration rejected");
                return Err(rejection);
            }
            Ok(RegistrationResponse::Declined(reason)) => {
                tracing::info!(attempt, %reason, delay = ?config.refused_delay, "registration declined; retrying later");
                Attempt::Declined
            }
            Err(RpcError::Timeout { .. }) => {
                tracing::debug!(attempt, "registration attempt timed out");
                Attempt::TimedOut
            }
            Err(error) => {
                tracing::info!(attempt, %error, delay = ?config.error_delay, "registration attempt failed; retrying later");
                Attempt::Failed
            }
        };
        // Declined, timed-out and failed attempts never end the schedule.
        let delay = schedule.after(kind).unwrap_or_default();
        tokio::time::sleep(delay).await;
    }
}

/// Registers with the leader `retrieval` finds, starting over with each new
/// leader: a new leader cancels the attempt in progress, as it makes the
/// old one's answer worthless. `registration_for` makes the registration
/// for a leader (typically connecting with its session as the fencing
/// token). Returns the leader it ended with and how; `None` if the
/// retrieval ends first.
///
/// # Cancel safety
///
/// Dropping the future cancels the registration.
pub async fn register_with_leader<R, F>(
    retrieval: &mut LeaderRetrieval,
    config: &RegistrationConfig,
    mut registration_for: F,
) -> Option<(LeaderInformation, Result<R::Success, R::Rejection>)>
where
    R: Registration,
    F: FnMut(&LeaderInformation) -> R,
{
    let mut leader = retrieval.next_leader(None).await?;
    loop {
        let mut registration = registration_for(&leader);
        tokio::select! {
            outcome = register(&mut registration, config) => return Some((leader, outcome)),
            next = retrieval.next_leader(Some(leader.session)) => {
                let next = next?;
                tracing::info!(old = %leader, new = %next, "new leader; registering with it instead");
                leader = next;
            }
        }
    }
}
