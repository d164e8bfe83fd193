//! Serves the `keeper` gateway: an endpoint that uses the host's cluster
//! capabilities through the guest SDK. It contends for leadership and
//! follows leaders, heartbeats other keepers through their typed gateways,
//! and registers with a counter on the host's retry schedule.

weir_guest::generate!({
    world: "weir:examples/keeper-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::RefCell;
use std::time::Duration;

use exports::weir::examples::keeper::{Guest, Leader};
use weir::examples::counter_client::CounterGateway;
use weir::examples::keeper_client::KeeperGateway;
use weir_guest::heartbeat::{HeartbeatManager, HeartbeatSettings, Heartbeats};
use weir_guest::leadership::{Contender, Follower, LeadershipChange};
use weir_guest::registration::{RegistrationSettings, Response};
use weir_guest::{RpcError, Uuid};

thread_local! {
    static CONTENDER: RefCell<Option<std::rc::Rc<Contender>>> = const { RefCell::new(None) };
    static LEADERSHIP: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static MANAGER: RefCell<Option<HeartbeatManager>> = const { RefCell::new(None) };
    static HEARTBEATS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Notes what heartbeats brought, each kind once per peer.
fn note(line: String) {
    HEARTBEATS.with(|h| {
        let mut heartbeats = h.borrow_mut();
        if !heartbeats.contains(&line) {
            heartbeats.push(line);
        }
    });
}

fn with_manager(act: impl FnOnce(&HeartbeatManager)) {
    MANAGER.with(|m| {
        if let Some(manager) = m.borrow().as_ref() {
            act(manager);
        }
    });
}

/// Heartbeats go to other keepers, known by their addresses.
struct Pulse;

impl Heartbeats for Pulse {
    // Heartbeats are tells; a peer that is gone fails the connect.
    async fn request(&self, peer: String) -> Result<(), RpcError> {
        KeeperGateway::connect(peer, None).await?.heartbeat_request(weir_guest::self_address()).await;
        Ok(())
    }

    async fn answer(&self, peer: String) -> Result<(), RpcError> {
        KeeperGateway::connect(peer, None).await?.heartbeat(weir_guest::self_address()).await;
        Ok(())
    }

    fn lost(&self, peer: String, timed_out: bool) {
        note(format!("lost {peer} ({})", if timed_out { "timed out" } else { "unreachable" }));
    }
}

struct Keeper;

impl weir_guest::Endpoint for Keeper {}

impl Guest for Keeper {
    fn contend(name: String) -> Result<(), String> {
        let contender = std::rc::Rc::new(Contender::enter(&name)?);
        CONTENDER.with(|c| *c.borrow_mut() = Some(contender.clone()));
        weir_guest::spawn(async move {
            while let Some(change) = contender.next().await {
                let line = match change {
                    LeadershipChange::Granted(session) => {
                        contender.confirm(session, &weir_guest::self_address());
                        format!("granted {session}")
                    }
                    LeadershipChange::Revoked => "revoked".to_owned(),
                };
                LEADERSHIP.with(|l| l.borrow_mut().push(line));
            }
        });
        Ok(())
    }

    fn resign() {
        if let Some(contender) = CONTENDER.with(|c| c.borrow_mut().take()) {
            contender.leave();
        }
    }

    fn leadership() -> Vec<String> {
        LEADERSHIP.with(|l| l.borrow().clone())
    }

    async fn next_leader(name: String, previous: Option<Uuid>) -> Result<Option<Leader>, String> {
        Ok(Follower::follow(&name)?.next_leader(previous).await)
    }

    fn watch(peer: String, sender: bool, interval_ms: u64, timeout_ms: u64) {
        let settings = HeartbeatSettings { interval_ms, timeout_ms, rpc_failure_threshold: 2 };
        let own = weir_guest::self_address();
        let manager = if sender {
            HeartbeatManager::sender(&own, Some(settings), Pulse)
        } else {
            HeartbeatManager::receiver(&own, Some(settings), Pulse)
        };
        manager.monitor(&peer);
        MANAGER.with(|m| *m.borrow_mut() = Some(manager));
    }

    fn heartbeat_request(peer: String) {
        with_manager(|manager| manager.requested_by(&peer));
    }

    fn heartbeat(peer: String) {
        note(format!("heartbeat {peer}"));
        with_manager(|manager| manager.heartbeat_from(&peer));
    }

    fn heartbeats() -> Vec<String> {
        HEARTBEATS.with(|h| h.borrow().clone())
    }

    async fn register(
        target: String,
        accept_at: u32,
        refused_delay_ms: u64,
        error_delay_ms: u64,
    ) -> Result<u32, String> {
        let settings =
            RegistrationSettings { initial_timeout_ms: 100, max_timeout_ms: 1000, error_delay_ms, refused_delay_ms };
        weir_guest::registration::register(Some(settings), async |timeout: Duration| {
            let counter = CounterGateway::connect(target.clone(), None).await?;
            counter.set_timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
            let held = counter.push(1).await?;
            Ok(if held >= accept_at {
                Response::Accepted(held)
            } else {
                Response::Declined(format!("{held} < {accept_at}"))
            })
        })
        .await
        .map_err(|rejection: String| rejection)
    }
}

weir_guest::export!(Keeper);
