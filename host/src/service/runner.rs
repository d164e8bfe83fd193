//! [`LeadershipRunner`]: an endpoint that runs only while its host leads
//! (Flink's leadership runners of its fenced endpoints). Each grant starts a new instance of the endpoint, fenced under
//! the new leader session, and confirms leadership with its address; a
//! revocation stops it. An old leader's instance is never reused, so
//! nothing it did can leak into the next session.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Endpoint, EndpointOptions, RpcService, StartError};
use crate::engine::EndpointComponent;
use crate::fencing::FencingToken;
use crate::ha::{LeaderElection, Leadership};
use crate::swap::{SwapError, SwapOptions, SwapReport};

/// Runs an endpoint for as long as its contender leads. Dropping the runner
/// leaves the election and stops the endpoint.
#[derive(Debug)]
pub struct LeadershipRunner {
    id: String,
    /// What each grant starts: a swap replaces it.
    component: Shared,
    leader: watch::Receiver<Option<Endpoint>>,
    stop: CancellationToken,
    _stop_on_drop: tokio_util::sync::DropGuard,
}

/// The component a runner starts, shared by the runner and its task.
type Shared = Arc<Mutex<EndpointComponent>>;

/// What the runner starts on each grant.
#[derive(Debug)]
struct Blueprint {
    service: RpcService,
    id: String,
    component: Shared,
    options: EndpointOptions,
}

impl LeadershipRunner {
    /// Contends through `election`, starting endpoint `id` from `component`
    /// with `options` (its fencing token replaced by each leader session)
    /// whenever leadership is granted.
    pub fn start(
        service: RpcService,
        election: LeaderElection,
        id: &str,
        component: EndpointComponent,
        options: EndpointOptions,
    ) -> Self {
        let (current, leader) = watch::channel(None);
        let stop = CancellationToken::new();
        let runtime = service.runtime().clone();
        let component = Arc::new(Mutex::new(component));
        let blueprint = Blueprint { service, id: id.to_owned(), component: component.clone(), options };
        runtime.spawn(run(blueprint, election, current, stop.clone()));
        Self { id: id.to_owned(), component, leader, _stop_on_drop: stop.clone().drop_guard(), stop }
    }

    /// The component each grant starts.
    pub fn component(&self) -> EndpointComponent {
        self.component.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Swaps the component behind the leader endpoint (see
    /// [`Endpoint::swap`]), and starts `component` on every grant from now
    /// on: a swap outlives a change of leader session.
    ///
    /// # Errors
    ///
    /// Not leading here, or why the swap was refused; the runner then
    /// starts the component it started before.
    pub async fn swap(&self, component: &EndpointComponent, options: SwapOptions) -> Result<SwapReport, SwapError> {
        let Some(leader) = self.leader() else {
            let state = "not leading on this host".to_owned();
            return Err(SwapError::NotStarted { endpoint: self.id.clone(), state });
        };
        // Replaced first: a grant meanwhile starts what the swap installs.
        let before =
            std::mem::replace(&mut *self.component.lock().unwrap_or_else(PoisonError::into_inner), component.clone());
        let swapped = leader.swap(component, options).await;
        if swapped.is_err() {
            *self.component.lock().unwrap_or_else(PoisonError::into_inner) = before;
        }
        swapped
    }

    /// The endpoint while this host leads.
    pub fn leader(&self) -> Option<Endpoint> {
        self.leader.borrow().clone()
    }

    /// Leaves the election, and waits until the endpoint has stopped.
    pub async fn close(mut self) {
        self.stop.cancel();
        // The task drops the sender once the endpoint is gone.
        while self.leader.changed().await.is_ok() {}
    }
}

async fn run(
    blueprint: Blueprint,
    mut election: LeaderElection,
    current: watch::Sender<Option<Endpoint>>,
    stop: CancellationToken,
) {
    let id = blueprint.id.as_str();
    loop {
        let leading = current.borrow().clone();
        let failed = async move {
            match leading {
                Some(endpoint) => endpoint.terminated().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = election.next() => match event {
                Some(Leadership::Granted(session)) => {
                    step_down(&current).await;
                    match blueprint.start(session).await {
                        Ok(endpoint) => {
                            tracing::info!(endpoint = id, %session, address = endpoint.address(), "leader endpoint started");
                            // Known as this host's leader before anyone learns of it.
                            let address = endpoint.address().to_owned();
                            current.send_replace(Some(endpoint));
                            election.confirm(session, &address);
                        }
                        Err(error) => {
                            tracing::error!(endpoint = id, %session, %error, "cannot start the leader endpoint; leaving the election");
                            break;
                        }
                    }
                }
                Some(Leadership::Revoked) => step_down(&current).await,
                None => break,
            },
            termination = failed => {
                tracing::error!(endpoint = id, ?termination, "the leader endpoint ended by itself; leaving the election");
                current.send_replace(None);
                break;
            }
            () = stop.cancelled() => break,
        }
    }
    // Stop acting as leader before leaving the election, so no successor
    // is granted leadership while this endpoint still runs.
    step_down(&current).await;
    drop(election);
}

/// Stops the current leader endpoint, if any, and waits until it is gone.
async fn step_down(current: &watch::Sender<Option<Endpoint>>) {
    if let Some(endpoint) = current.send_replace(None) {
        let termination = endpoint.close().await;
        tracing::info!(endpoint = endpoint.id(), ?termination, "leader endpoint stopped");
    }
}

impl Blueprint {
    async fn start(&self, session: FencingToken) -> Result<Endpoint, StartError> {
        let options = EndpointOptions { fencing_token: Some(session), ..self.options.clone() };
        let component = self.component.lock().unwrap_or_else(PoisonError::into_inner).clone();
        self.service.start(&self.id, &component, options).await
    }
}
