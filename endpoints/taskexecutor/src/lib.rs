//! Flink's TaskExecutor: it follows the leading ResourceManager (leader
//! retrieval), registers with it on the host's retry schedule, sends its
//! slot report and answers its heartbeats; it allocates the slots the
//! ResourceManager requests for a job, registers with that job's JobMaster
//! (found through the job's leader retrieval) and offers them ([`jobs`]),
//! and runs the tasks the JobMaster deploys into them, each a child
//! endpoint in a store of its own ([`tasks`]).
//!
//! Settings: `slots` (default 1), `slot-memory-mib` (default 0: any),
//! `task-cpu-deadline-ms` (the longest a task may run guest code without
//! returning to the host; default the host's) and `task-directories`, the
//! directories it lends its tasks.
//! Its resource id is its address.

weir_guest::generate!({
    world: "weir:flink/taskexecutor-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

mod jobs;
mod slots;
mod tasks;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use exports::weir::flink::taskexecutor::Guest;
use weir::flink::resourcemanager_client::{ResourcemanagerGateway, TaskExecutorRegistration};
use weir::flink::types::{RegistrationOutcome, ResourceProfile};
use weir_guest::heartbeat::{HeartbeatManager, Heartbeats};
use weir_guest::leadership::Leader;
use weir_guest::registration::{Registrations, Response};
use weir_guest::{RpcError, Uuid};

/// The role the ResourceManager is elected for.
const RESOURCE_MANAGER: &str = "resource-manager";

/// An established connection to a ResourceManager.
struct Connection {
    gateway: Rc<ResourcemanagerGateway>,
    /// The ResourceManager's resource id and leader session.
    resource_manager: String,
    session: Uuid,
    /// This TaskExecutor's registration there.
    instance: Uuid,
}

thread_local! {
    /// The leader this TaskExecutor registers with.
    static LEADER: RefCell<Option<Leader>> = const { RefCell::new(None) };
    static REGISTRATIONS: Registrations = Registrations::default();
    static CONNECTION: RefCell<Option<Connection>> = const { RefCell::new(None) };
    /// Heartbeats with the ResourceManager, that side asking.
    static HEARTBEATS: RefCell<Option<HeartbeatManager>> = const { RefCell::new(None) };
}

fn own_id() -> String {
    weir_guest::self_address()
}

fn setting(key: &str, default: u32) -> u32 {
    weir_guest::config(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn profile() -> ResourceProfile {
    ResourceProfile { memory_mib: setting("slot-memory-mib", 0) }
}

fn heartbeats(act: impl FnOnce(&HeartbeatManager)) {
    HEARTBEATS.with(|manager| {
        if let Some(manager) = manager.borrow().as_ref() {
            act(manager);
        }
    });
}

/// The ResourceManager connection's gateway, session and this TaskExecutor's
/// instance there, if connected.
fn resource_manager() -> Option<(Rc<ResourcemanagerGateway>, Uuid, Uuid)> {
    CONNECTION.with(|c| c.borrow().as_ref().map(|c| (c.gateway.clone(), c.session, c.instance)))
}

/// Drops the connection, if any, and registers with the leader anew.
fn reconnect(cause: &str) {
    if let Some(old) = CONNECTION.with(|connection| connection.borrow_mut().take()) {
        heartbeats(|manager| manager.unmonitor(&old.resource_manager));
        weir_guest::info!("closed the connection to the ResourceManager {}: {cause}", old.resource_manager);
    }
    let Some(leader) = LEADER.with(|current| current.borrow().clone()) else { return };
    weir_guest::spawn(register(leader));
}

/// Registers with `leader` until accepted, unless a newer registration
/// starts; then sends the slot report and watches its heartbeats.
async fn register(leader: Leader) {
    let generation = REGISTRATIONS.with(Registrations::start);
    let registration = TaskExecutorRegistration {
        address: own_id(),
        resource_id: own_id(),
        slots: slots::count(),
        default_slot_profile: profile(),
    };
    let registered = generation
        .register(None, async |timeout: Duration| {
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
    let Some((gateway, resource_manager, instance)) = registered else { return };
    let gateway = Rc::new(gateway);
    if let Err(error) = gateway.send_slot_report(own_id(), instance, slots::report()).await {
        return reconnect(&format!("the slot report failed: {error:?}"));
    }
    heartbeats(|manager| manager.monitor(&resource_manager));
    weir_guest::info!("registered at the ResourceManager {resource_manager} as instance {instance}");
    let connection = Connection { gateway, resource_manager, session: leader.session, instance };
    CONNECTION.with(|current| *current.borrow_mut() = Some(connection));
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
        gateway.heartbeat_from_task_manager(own_id(), slots::report()).await;
        Ok(())
    }

    fn lost(&self, target: String, timed_out: bool) {
        let why = if timed_out { "its heartbeat timed out" } else { "it is unreachable" };
        reconnect(&format!("the ResourceManager {target} is lost: {why}"));
    }
}

struct TaskExecutor;

/// A TaskExecutor does not hand its slots over yet. It refuses a swap
/// while a slot is allocated to a job; with none, the new component starts
/// fresh and registers with the ResourceManager again.
impl weir_guest::Handover for TaskExecutor {
    fn snapshot() -> Result<Option<weir_guest::State>, String> {
        let allocated = slots::report().iter().filter(|slot| slot.allocation.is_some()).count();
        if allocated > 0 {
            return Err(format!("{allocated} of its slots are allocated, which a TaskExecutor cannot hand over yet"));
        }
        Ok(None)
    }

    async fn restore(_: weir_guest::State) -> Result<(), String> {
        Err("a TaskExecutor takes over no state".into())
    }
}

impl weir_guest::Endpoint for TaskExecutor {
    fn on_start() -> Result<(), String> {
        let manager = HeartbeatManager::receiver(&own_id(), None, Pulse);
        HEARTBEATS.with(|slot| *slot.borrow_mut() = Some(manager));
        jobs::start_heartbeats();
        weir_guest::leadership::on_each_leader(RESOURCE_MANAGER, |leader| {
            weir_guest::info!("the ResourceManager leads at {} under session {}", leader.address, leader.session);
            LEADER.with(|current| *current.borrow_mut() = Some(leader));
            reconnect("a new ResourceManager leads");
        })
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
    fn heartbeat_from_resource_manager(resource_manager: String) -> Result<(), String> {
        heartbeats(|manager| manager.requested_by(&resource_manager));
        Ok(())
    }

    fn disconnect_resource_manager(cause: String) {
        reconnect(&format!("the ResourceManager closed the connection: {cause}"));
    }
}

weir_guest::export!(TaskExecutor, handover);
