//! Flink's ResourceManager: it registers TaskExecutors (a new instance id
//! for each registration, replacing an older one of the same TaskExecutor),
//! keeps their slot reports, asks each for a heartbeat every interval, and
//! drops one that is lost or says goodbye; it registers JobMasters and
//! matches the slots they declare to free slots ([`jobs`]).
//!
//! It runs fenced under its leader session (the host starts an instance
//! per session); TaskExecutors and JobMasters find it through leader
//! retrieval. Resource ids are addresses.

weir_guest::generate!({
    world: "weir:flink/resourcemanager-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

mod jobs;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use exports::weir::flink::resourcemanager::{Guest, TaskExecutorRegistered, TaskExecutorRegistration, TaskManagerInfo};
use weir::flink::taskexecutor_client::TaskexecutorGateway;
use weir::flink::taskexecutor_slots_client::TaskexecutorSlotsGateway;
use weir::flink::types::{RegistrationOutcome, SlotId, SlotStatus};
use weir_guest::heartbeat::{HeartbeatManager, Heartbeats};
use weir_guest::{RpcError, Uuid};

/// A registered TaskExecutor.
struct Registered {
    instance: Uuid,
    address: String,
    /// When its last heartbeat came, in milliseconds since the epoch.
    last_heartbeat_ms: u64,
    gateway: Rc<TaskexecutorGateway>,
    /// Its slot side, where slots are requested.
    slots_gateway: Rc<TaskexecutorSlotsGateway>,
    slots: Vec<SlotStatus>,
}

thread_local! {
    /// The registered TaskExecutors, by resource id.
    static TASK_EXECUTORS: RefCell<BTreeMap<String, Registered>> = const { RefCell::new(BTreeMap::new()) };
    /// Heartbeats with them, this side asking.
    static HEARTBEATS: RefCell<Option<HeartbeatManager>> = const { RefCell::new(None) };
}

fn heartbeats(act: impl FnOnce(&HeartbeatManager)) {
    HEARTBEATS.with(|manager| {
        if let Some(manager) = manager.borrow().as_ref() {
            act(manager);
        }
    });
}

/// This ResourceManager's resource id.
fn own_id() -> String {
    weir_guest::self_address()
}

fn gateway_of(task_executor: &str) -> Option<Rc<TaskexecutorGateway>> {
    TASK_EXECUTORS.with(|all| all.borrow().get(task_executor).map(|te| te.gateway.clone()))
}

/// This ResourceManager's fencing token: its leader session.
fn session() -> Uuid {
    weir_guest::fencing_token().unwrap_or(Uuid { high: 0, low: 0 })
}

/// Forgets a TaskExecutor (Flink's `closeTaskManagerConnection`), and tells
/// it so unless it said goodbye itself.
fn close(task_executor: &str, cause: &str, tell_it: bool) {
    let Some(registered) = TASK_EXECUTORS.with(|all| all.borrow_mut().remove(task_executor)) else { return };
    heartbeats(|manager| manager.unmonitor(task_executor));
    weir_guest::info!("closed the connection to TaskExecutor {task_executor}: {cause}");
    jobs::task_executor_gone(task_executor, cause);
    if tell_it {
        let cause = cause.to_owned();
        weir_guest::spawn(async move { registered.gateway.disconnect_resource_manager(cause).await });
    }
}

/// Heartbeats go to the TaskExecutors through their gateways.
struct Pulse;

impl Heartbeats for Pulse {
    async fn request(&self, target: String) -> Result<(), RpcError> {
        match gateway_of(&target) {
            // Delivered is enough: the answer comes as a call of its own.
            Some(gateway) => gateway.heartbeat_from_resource_manager(own_id()).await.map(drop),
            None => jobs::request_heartbeat(target).await,
        }
    }

    async fn answer(&self, _target: String) -> Result<(), RpcError> {
        // A sender only asks.
        Ok(())
    }

    fn lost(&self, target: String, timed_out: bool) {
        let why = if timed_out { "its heartbeat timed out" } else { "it is unreachable" };
        if gateway_of(&target).is_some() {
            close(&target, &format!("TaskExecutor {target} is lost: {why}"), true);
        } else {
            jobs::job_master_lost(&target, why);
        }
    }
}

struct ResourceManager;

impl weir_guest::Endpoint for ResourceManager {
    fn on_start() -> Result<(), String> {
        let manager = HeartbeatManager::sender(&own_id(), None, Pulse);
        HEARTBEATS.with(|slot| *slot.borrow_mut() = Some(manager));
        let session = weir_guest::fencing_token().map_or_else(|| "none".to_owned(), |token| token.to_string());
        weir_guest::info!("ResourceManager started under leader session {session}");
        Ok(())
    }
}

impl Guest for ResourceManager {
    async fn register_task_executor(registration: TaskExecutorRegistration) -> TaskExecutorRegistered {
        let declined = |outcome| TaskExecutorRegistered { outcome, instance: None, resource_manager: own_id() };
        // Connect back first, as Flink does: a TaskExecutor this side cannot
        // reach is not registered.
        let connected = async {
            let gateway = TaskexecutorGateway::connect(registration.address.clone(), None).await?;
            let slots_gateway = TaskexecutorSlotsGateway::connect(registration.address.clone(), None).await?;
            Ok::<_, RpcError>((Rc::new(gateway), Rc::new(slots_gateway)))
        };
        let (gateway, slots_gateway) = match connected.await {
            Ok(gateways) => gateways,
            Err(error) => {
                let why = format!("cannot connect back to {}: {error:?}", registration.address);
                return declined(RegistrationOutcome::Failure(why));
            }
        };
        let id = registration.resource_id;
        if TASK_EXECUTORS.with(|all| all.borrow().contains_key(&id)) {
            close(&id, "it registered again", false);
        }
        let instance = weir_guest::new_uuid();
        let slots = (0..registration.slots)
            .map(|index| SlotStatus {
                slot: SlotId { owner: id.clone(), index },
                profile: registration.default_slot_profile,
                allocation: None,
            })
            .collect();
        let last_heartbeat_ms = weir_guest::epoch_millis();
        let registered =
            Registered { instance, address: registration.address, last_heartbeat_ms, gateway, slots_gateway, slots };
        TASK_EXECUTORS.with(|all| all.borrow_mut().insert(id.clone(), registered));
        heartbeats(|manager| manager.monitor(&id));
        weir_guest::info!("registered TaskExecutor {id} with {} slot(s), instance {instance}", registration.slots);
        jobs::check_requirements();
        TaskExecutorRegistered {
            outcome: RegistrationOutcome::Success,
            instance: Some(instance),
            resource_manager: own_id(),
        }
    }

    async fn send_slot_report(task_executor: String, instance: Uuid, slots: Vec<SlotStatus>) -> Result<(), String> {
        TASK_EXECUTORS.with(|all| match all.borrow_mut().get_mut(&task_executor) {
            Some(registered)
                if (registered.instance.high, registered.instance.low) == (instance.high, instance.low) =>
            {
                registered.slots = slots;
                Ok(())
            }
            Some(_) => {
                Err(format!("instance {instance} of TaskExecutor {task_executor} is not its current registration"))
            }
            None => Err(format!("TaskExecutor {task_executor} is not registered")),
        })
    }

    fn heartbeat_from_task_manager(task_executor: String, slots: Vec<SlotStatus>) {
        heartbeats(|manager| manager.heartbeat_from(&task_executor));
        TASK_EXECUTORS.with(|all| {
            if let Some(registered) = all.borrow_mut().get_mut(&task_executor) {
                registered.slots = slots;
                registered.last_heartbeat_ms = weir_guest::epoch_millis();
            }
        });
    }

    fn disconnect_task_manager(task_executor: String, cause: String) {
        close(&task_executor, &cause, false);
    }

    fn notify_slot_available(instance: Uuid, slot: SlotId, old_allocation: Uuid) {
        let freed = TASK_EXECUTORS.with(|all| {
            let mut all = all.borrow_mut();
            let registered = all.get_mut(&slot.owner).filter(|te| te.instance == instance)?;
            let status = registered.slots.get_mut(slot.index as usize)?;
            (status.allocation.map(|(id, _)| id) == Some(old_allocation)).then(|| status.allocation = None)
        });
        if freed.is_some() {
            weir_guest::info!("slot {} of TaskExecutor {} is free again", slot.index, slot.owner);
            jobs::check_requirements();
        }
    }

    fn request_task_managers() -> Vec<TaskManagerInfo> {
        let info = |(id, te): (&String, &Registered)| TaskManagerInfo {
            resource_id: id.clone(),
            address: te.address.clone(),
            slots: te.slots.clone(),
            last_heartbeat_ms: te.last_heartbeat_ms,
        };
        TASK_EXECUTORS.with(|all| all.borrow().iter().map(info).collect())
    }
}

weir_guest::export!(ResourceManager);
