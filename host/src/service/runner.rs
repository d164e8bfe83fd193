//! [`LeadershipRunner`]: an endpoint that runs only while its host leads
//! (Flink's leadership runners of its fenced endpoints). Each grant starts a new instance of the endpoint, fenced under
//! the new leader session, and confirms leadership with its address; a
//! revocation stops it. An old leader's instance is never reused, so
//! nothing it did can leak into the next session.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Endpoint, EndpointOptions, RpcService, StartError};
use crate::engine::EndpointComponent;
use crate::fencing::FencingToken;
use crate::ha::{LeaderElection, Leadership};

/// Runs an endpoint for as long as its contender leads. Dropping the runner
/// leaves the election and stops the endpoint.
#[derive(Debug)]
pub struct LeadershipRunner {
    leader: watch::Receiver<Option<Endpoint>>,
    stop: CancellationToken,
    _stop_on_drop: tokio_util::sync::DropGuard,
}

/// What the runner starts on each grant.
#[derive(Debug)]
struct Blueprint {
    service: RpcService,
    id: String,
    component: EndpointComponent,
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
        let blueprint = Blueprint { service, id: id.to_owned(), component, options };
        runtime.spawn(run(blueprint, election, current, stop.clone()));
        Self { leader, _stop_on_drop: stop.clone().drop_guard(), stop }
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
        self.service.start(&self.id, &self.component, options).await
    }
}
