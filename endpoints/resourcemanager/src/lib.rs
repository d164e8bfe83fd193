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

mod handover;
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
    /// Allocations granted here that its reports have not shown yet.
    unconfirmed: Vec<Unconfirmed>,
}

/// An allocation granted at a TaskExecutor, not yet in its reports (as
/// Flink's slot manager keeps pending slots): a report taken before the
/// grant reached it shows the slot free, and must not free it here, or the
/// slot would be requested again and refused as occupied.
struct Unconfirmed {
    index: u32,
    allocation: (Uuid, Uuid),
    /// Reports since the grant that showed the slot free.
    free_reports: u8,
}

/// Reports that may show a granted slot free before one shows the grant:
/// those in flight when it was granted. A slot still reported free after
/// them was freed without word reaching here, and is free.
const STALE_REPORTS: u8 = 2;

impl Registered {
    /// Takes a slot report of the TaskExecutor's, keeping the allocations
    /// granted since it may have been taken; whether a slot held in this
    /// side's view is free in it (jobs waiting for slots may take it).
    fn report(&mut self, mut slots: Vec<SlotStatus>) -> bool {
        self.unconfirmed.retain_mut(|granted| {
            let Some(status) = slots.get_mut(granted.index as usize) else { return false };
            // Reported held: by the grant (confirmed), or by another (the
            // report wins).
            if status.allocation.is_some() {
                return false;
            }
            granted.free_reports += 1;
            if granted.free_reports > STALE_REPORTS {
                return false;
            }
            status.allocation = Some(granted.allocation);
            true
        });
        let held = |status: &SlotStatus| status.allocation.is_some();
        let freed = self.slots.iter().zip(&slots).any(|(before, now)| held(before) && !held(now));
        self.slots = slots;
        freed
    }

    /// Frees slot `index` if `allocation` holds it; whether it did.
    fn freed(&mut self, index: u32, allocation: Uuid) -> bool {
        self.unconfirmed.retain(|granted| granted.allocation.0 != allocation);
        let Some(status) = self.slots.get_mut(index as usize) else { return false };
        let held = status.allocation.is_some_and(|(id, _)| id == allocation);
        if held {
            status.allocation = None;
        }
        held
    }

    /// Notes that slot `index` was granted to `allocation` of `job`.
    fn granted(&mut self, index: u32, allocation: Uuid, job: Uuid) {
        if let Some(status) = self.slots.get_mut(index as usize) {
            status.allocation = Some((allocation, job));
            self.unconfirmed.push(Unconfirmed { index, allocation: (allocation, job), free_reports: 0 });
        }
    }
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

/// Starts asking for heartbeats: what an instance does first, whether it
/// starts fresh or takes over from another.
fn start_heartbeats() {
    let manager = HeartbeatManager::sender(&own_id(), None, Pulse);
    HEARTBEATS.with(|slot| *slot.borrow_mut() = Some(manager));
    let session = weir_guest::fencing_token().map_or_else(|| "none".to_owned(), |token| token.to_string());
    weir_guest::info!("ResourceManager started under leader session {session}");
}

impl weir_guest::Endpoint for ResourceManager {
    fn on_start() -> Result<(), String> {
        start_heartbeats();
        Ok(())
    }
}

impl weir_guest::Handover for ResourceManager {
    fn snapshot() -> Result<Option<weir_guest::State>, String> {
        handover::snapshot()
    }

    async fn restore(state: weir_guest::State) -> Result<(), String> {
        handover::restore(state).await
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
        let registered = Registered {
            instance,
            address: registration.address,
            last_heartbeat_ms,
            gateway,
            slots_gateway,
            slots,
            unconfirmed: Vec::new(),
        };
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
        let freed = TASK_EXECUTORS.with(|all| match all.borrow_mut().get_mut(&task_executor) {
            Some(registered)
                if (registered.instance.high, registered.instance.low) == (instance.high, instance.low) =>
            {
                Ok(registered.report(slots))
            }
            Some(_) => {
                Err(format!("instance {instance} of TaskExecutor {task_executor} is not its current registration"))
            }
            None => Err(format!("TaskExecutor {task_executor} is not registered")),
        })?;
        if freed {
            jobs::check_requirements();
        }
        Ok(())
    }

    fn heartbeat_from_task_manager(task_executor: String, slots: Vec<SlotStatus>) {
        heartbeats(|manager| manager.heartbeat_from(&task_executor));
        let freed = TASK_EXECUTORS.with(|all| {
            let mut all = all.borrow_mut();
            let registered = all.get_mut(&task_executor)?;
            registered.last_heartbeat_ms = weir_guest::epoch_millis();
            Some(registered.report(slots))
        });
        if freed == Some(true) {
            jobs::check_requirements();
        }
    }

    fn disconnect_task_manager(task_executor: String, cause: String) {
        close(&task_executor, &cause, false);
    }

    fn notify_slot_available(instance: Uuid, slot: SlotId, old_allocation: Uuid) {
        let freed = TASK_EXECUTORS.with(|all| {
            let mut all = all.borrow_mut();
            let registered = all.get_mut(&slot.owner).filter(|te| te.instance == instance)?;
            registered.freed(slot.index, old_allocation).then_some(())
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

weir_guest::export!(ResourceManager, handover);
