//! Flink's TaskExecutor, as far as its ResourceManager goes: it follows the
//! leading ResourceManager (leader retrieval), registers with it on the
//! host's retry schedule, sends its slot report, answers its heartbeats,
//! and registers again when the ResourceManager is lost, closes the
//! connection, or another one leads.
//!
//! Settings: `slots` (default 1) and `slot-memory-mib` (default 0: any).
//! Its resource id is its address.

weir_guest::generate!({
    world: "weir:flink/taskexecutor-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use exports::weir::flink::taskexecutor::Guest;
use weir::flink::resourcemanager_client::{ResourcemanagerGateway, TaskExecutorRegistration};
use weir::flink::types::{RegistrationOutcome, ResourceProfile, SlotId, SlotStatus};
use weir_guest::RpcError;
use weir_guest::heartbeat::{HeartbeatManager, Heartbeats};
use weir_guest::leadership::{Follower, Leader};
use weir_guest::registration::Response;

/// The role the ResourceManager is elected for.
const RESOURCE_MANAGER: &str = "resource-manager";

/// An established connection to a ResourceManager.
struct Connection {
    gateway: Rc<ResourcemanagerGateway>,
    /// The ResourceManager's resource id.
    resource_manager: String,
}

thread_local! {
    /// The leader this TaskExecutor registers with.
    static LEADER: RefCell<Option<Leader>> = const { RefCell::new(None) };
    /// Bumped whenever a registration starts: older ones give up.
    static ATTEMPT: Cell<u64> = const { Cell::new(0) };
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
    /// Heartbeats with the ResourceManager, that side asking.
    static HEARTBEATS: RefCell<Option<HeartbeatManager>> = const { RefCell::new(None) };
}

fn own_id() -> String {
    weir_guest::self_address()
}

fn heartbeats(act: impl FnOnce(&HeartbeatManager)) {
    HEARTBEATS.with(|manager| {
        if let Some(manager) = manager.borrow().as_ref() {
            act(manager);
        }
    });
}

/// This TaskExecutor's slots, none allocated yet.
fn slot_report() -> Vec<SlotStatus> {
    let count = setting("slots", 1);
    let profile = ResourceProfile { memory_mib: setting("slot-memory-mib", 0) };
    (0..count).map(|index| SlotStatus { slot: SlotId { owner: own_id(), index }, profile, allocation: None }).collect()
}

fn setting(key: &str, default: u32) -> u32 {
    weir_guest::config(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// Follows the leading ResourceManager, registering with each new one.
async fn follow_resource_managers() {
    let follower = match Follower::follow(RESOURCE_MANAGER) {
        Ok(follower) => follower,
        Err(error) => {
            weir_guest::error!("cannot follow the ResourceManager's leader: {error}");
            return;
        }
    };
    let mut previous = None;
    while let Some(leader) = follower.next_leader(previous).await {
        previous = Some(leader.session);
        weir_guest::info!("the ResourceManager leads at {} under session {}", leader.address, leader.session);
        LEADER.with(|current| *current.borrow_mut() = Some(leader));
        reconnect("a new ResourceManager leads");
    }
}

/// Drops the connection, if any, and registers with the leader anew.
fn reconnect(cause: &str) {
    if let Some(old) = CONNECTION.with(|connection| connection.borrow_mut().take()) {
        heartbeats(|manager| manager.unmonitor(&old.resource_manager));
        weir_guest::info!("closed the connection to the ResourceManager {}: {cause}", old.resource_manager);
    }
    let attempt = ATTEMPT.with(|attempt| attempt.replace(attempt.get() + 1) + 1);
    let Some(leader) = LEADER.with(|current| current.borrow().clone()) else { return };
    weir_guest::spawn(register(leader, attempt));
}

/// Why a registration stopped trying.
struct Superseded;

impl std::fmt::Display for Superseded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a newer registration took over")
    }
}

/// Registers with `leader` until accepted, unless a newer registration
/// starts; then sends the slot report and watches its heartbeats.
async fn register(leader: Leader, attempt: u64) {
    let current = || ATTEMPT.with(Cell::get) == attempt;
    let registration = TaskExecutorRegistration {
        address: own_id(),
        resource_id: own_id(),
        slots: setting("slots", 1),
        default_slot_profile: ResourceProfile { memory_mib: setting("slot-memory-mib", 0) },
    };
    let registered = weir_guest::registration::register(None, async |timeout: Duration| {
        if !current() {
            return Ok(Response::Rejected(Superseded));
        }
        let gateway = ResourcemanagerGateway::connect(leader.address.clone(), Some(leader.session)).await?;
        gateway.set_timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let answer = gateway.register_task_executor(registration.clone()).await?;
        Ok(match (answer.outcome, answer.instance) {
            (RegistrationOutcome::Success, Some(instance)) => {
                Response::Accepted((gateway, answer.resource_manager, instance))
            }
            (RegistrationOutcome::Success, None) => Response::Declined("accepted without an instance id".into()),
            (RegistrationOutcome::Rejection(why) | RegistrationOutcome::Failure(why), _) => Response::Declined(why),
        })
    })
    .await;
    let Ok((gateway, resource_manager, instance)) = registered else { return };
    if !current() {
        return;
    }
    let gateway = Rc::new(gateway);
    if let Err(error) = gateway.send_slot_report(own_id(), instance, slot_report()).await {
        return reconnect(&format!("the slot report failed: {error:?}"));
    }
    heartbeats(|manager| manager.monitor(&resource_manager));
    weir_guest::info!("registered at the ResourceManager {resource_manager} as instance {instance}");
    CONNECTION.with(|connection| *connection.borrow_mut() = Some(Connection { gateway, resource_manager }));
}

/// Heartbeats go to the connected ResourceManager.
struct Pulse;

impl Heartbeats for Pulse {
    async fn request(&self, _target: String) -> Result<(), RpcError> {
        // A receiver only answers.
        Ok(())
    }

    async fn answer(&self, target: String) -> Result<(), RpcError> {
        let gateway = CONNECTION.with(|connection| {
            connection.borrow().as_ref().filter(|c| c.resource_manager == target).map(|c| c.gateway.clone())
        });
        let gateway = gateway.ok_or(RpcError::UnknownEndpoint(target))?;
        gateway.heartbeat_from_task_manager(own_id(), slot_report()).await;
        Ok(())
    }

    fn lost(&self, target: String, timed_out: bool) {
        let why = if timed_out { "its heartbeat timed out" } else { "it is unreachable" };
        reconnect(&format!("the ResourceManager {target} is lost: {why}"));
    }
}

struct TaskExecutor;

impl weir_guest::Endpoint for TaskExecutor {
    fn on_start() -> Result<(), String> {
        let manager = HeartbeatManager::receiver(&own_id(), None, Pulse);
        HEARTBEATS.with(|slot| *slot.borrow_mut() = Some(manager));
        weir_guest::spawn(follow_resource_managers());
        Ok(())
    }

    async fn on_stop() -> Result<(), String> {
        // Say goodbye, so the ResourceManager need not wait for a timeout.
        if let Some(connection) = CONNECTION.with(|connection| connection.borrow_mut().take()) {
            connection.gateway.disconnect_task_manager(own_id(), "the TaskExecutor stopped".into()).await;
        }
        Ok(())
    }
}

impl Guest for TaskExecutor {
    fn heartbeat_from_resource_manager(resource_manager: String) {
        heartbeats(|manager| manager.requested_by(&resource_manager));
    }

    fn disconnect_resource_manager(cause: String) {
        reconnect(&format!("the ResourceManager closed the connection: {cause}"));
    }
}

weir_guest::export!(TaskExecutor);
