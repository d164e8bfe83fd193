//! Registration with retries (Flink's `RetryingRegistration`): how a
//! component signs up with a leader (a TaskExecutor with the
//! ResourceManager, a JobMaster with it too) and keeps trying until it is
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
    let mut timeout = config.initial_timeout;
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        match registration.attempt(timeout).await {
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
                timeout = config.initial_timeout;
                tokio::time::sleep(config.refused_delay).await;
            }
            Err(RpcError::Timeout { .. }) => {
                timeout = (timeout * 2).min(config.max_timeout);
                tracing::debug!(attempt, next_timeout = ?timeout, "registration attempt timed out");
            }
            Err(error) => {
                tracing::info!(attempt, %error, delay = ?config.error_delay, "registration attempt failed; retrying later");
                timeout = config.initial_timeout;
                tokio::time::sleep(config.error_delay).await;
            }
        }
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
