//! Flink's JobMaster of one job: it follows the leading ResourceManager,
//! registers with it, declares the slots its job needs (retrying the
//! latest declaration until it goes through), takes the slots
//! TaskExecutors offer up to that need, and heartbeats both: it asks its
//! TaskExecutors and answers the ResourceManager. A lost TaskExecutor's
//! slots are released and its tasks failed; a lost ResourceManager is
//! registered with again (`flink-components.md` §5.2, §5.3, §7, §9). Once
//! it holds all its slots it deploys the job's tasks ([`tasks`], §8),
//! hands out input splits ([`inputs`]), coordinates checkpoints
//! ([`checkpoints`], §10), restarts the job from the last one when a task
//! fails, cancels it when asked, and reports its end to its Dispatcher
//! ([`control`]). Stopped, it leaves the ResourceManager and frees its
//! slots.
//!
//! It runs fenced under its job's leader session (election `job-<id>`).
//! Settings: `job-id` (a UUID); the job's shape ([`plan`]: `stages`,
//! `inputs`, `arguments`); the job's task component: `artifact-key`, the
//! key its Dispatcher holds it under, with `artifact-digest`, the digest
//! the Dispatcher loaded it under on the host, or `artifact`, its path in
//! a directory the JobMaster is lent; `checkpoint-interval-ms`,
//! `checkpoint-directory`, `restart-attempts` and `restart-delay-ms`;
//! `recover`, for a job run again by a new leader: it resumes from the
//! newest checkpoint in its checkpoint directory;
//! `dispatcher` and `dispatcher-session`, where to report the job's end.
//! Its resource id is its address.
//!
//! Swapped, it hands its job over to the new component, running or not
//! ([`handover`]).

weir_guest::generate!({
    world: "weir:flink/jobmaster-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

mod checkpoints;
mod control;
mod handover;
mod inputs;
mod milestones;
mod plan;
mod tasks;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use exports::weir::flink::jobmaster::{Guest, TaskManagerHeartbeat, TaskManagerRegistration};
use weir::flink::resourcemanager_jobs_client::{ResourceRequirements, ResourcemanagerJobsGateway};
use weir::flink::taskexecutor_checkpoints_client::TaskexecutorCheckpointsGateway;
use weir::flink::taskexecutor_slots_client::TaskexecutorSlotsGateway;
use weir::flink::taskexecutor_tasks_client::TaskexecutorTasksGateway;
use weir::flink::types::{RegistrationOutcome, ResourceProfile, ResourceRequirement, SlotOffer};
use weir_guest::heartbeat::{HeartbeatManager, Heartbeats};
use weir_guest::leadership::Leader;
use weir_guest::registration::{Registrations, Response};
use weir_guest::{RpcError, Uuid};

/// The role the ResourceManager is elected for.
const RESOURCE_MANAGER: &str = "resource-manager";

/// A registered TaskExecutor.
struct TaskManager {
    /// Where it runs.
    address: String,
    gateway: Rc<TaskexecutorSlotsGateway>,
    /// Its task side, where tasks are deployed.
    tasks_gateway: Rc<TaskexecutorTasksGateway>,
    /// Its checkpoint side, which hands checkpoints to its tasks.
    checkpoints_gateway: Rc<TaskexecutorCheckpointsGateway>,
    session: Uuid,
    /// The slots it offered that this JobMaster took.
    slots: Vec<SlotOffer>,
}

impl TaskManager {
    /// Connects to the TaskExecutor at `address`, of instance `session`,
    /// holding `slots` for this JobMaster.
    async fn connect(address: String, session: Uuid, slots: Vec<SlotOffer>) -> Result<Self, RpcError> {
        let gateway = Rc::new(TaskexecutorSlotsGateway::connect(address.clone(), None).await?);
        let tasks_gateway = Rc::new(TaskexecutorTasksGateway::connect(address.clone(), None).await?);
        let checkpoints_gateway = Rc::new(TaskexecutorCheckpointsGateway::connect(address.clone(), None).await?);
        Ok(Self { address, gateway, tasks_gateway, checkpoints_gateway, session, slots })
    }

    /// Registers it as `resource_id`, and watches its heartbeats.
    fn add(self, resource_id: String) {
        TASK_MANAGERS.with(|all| all.borrow_mut().insert(resource_id.clone(), self));
        with(&TM_HEARTBEATS, |manager| manager.monitor(&resource_id));
    }
}

thread_local! {
    static RM_LEADER: RefCell<Option<Leader>> = const { RefCell::new(None) };
    static RM_REGISTRATIONS: Registrations = Registrations::default();
    /// The ResourceManager's gateway and resource id, once registered.
    static RESOURCE_MANAGER_CONNECTION: RefCell<Option<(Rc<ResourcemanagerJobsGateway>, String)>> =
        const { RefCell::new(None) };
    static TASK_MANAGERS: RefCell<BTreeMap<String, TaskManager>> = const { RefCell::new(BTreeMap::new()) };
    /// Heartbeats with TaskExecutors, this side asking.
    static TM_HEARTBEATS: RefCell<Option<HeartbeatManager>> = const { RefCell::new(None) };
    /// Heartbeats with the ResourceManager, that side asking.
    static RM_HEARTBEATS: RefCell<Option<HeartbeatManager>> = const { RefCell::new(None) };
    /// Set once `on-stop` began: the JobMaster registers with no
    /// ResourceManager again.
    static STOPPING: Cell<bool> = const { Cell::new(false) };
}

fn own_id() -> String {
    weir_guest::self_address()
}

/// The job this JobMaster runs.
fn job() -> Uuid {
    weir_guest::config("job-id").and_then(|id| Uuid::parse(&id)).expect("checked in on-start")
}

fn required() -> u32 {
    plan::slots()
}

/// The slots taken so far.
pub fn taken() -> u32 {
    TASK_MANAGERS.with(|all| all.borrow().values().map(|tm| tm.slots.len() as u32).sum())
}

fn with(
    manager: &'static std::thread::LocalKey<RefCell<Option<HeartbeatManager>>>,
    act: impl FnOnce(&HeartbeatManager),
) {
    manager.with(|manager| {
        if let Some(manager) = manager.borrow().as_ref() {
            act(manager);
        }
    });
}

/// Drops the ResourceManager connection, if any, and registers anew.
fn reconnect_resource_manager(cause: &str) {
    if let Some((_, resource_manager)) = RESOURCE_MANAGER_CONNECTION.with(|c| c.borrow_mut().take()) {
        with(&RM_HEARTBEATS, |manager| manager.unmonitor(&resource_manager));
        weir_guest::info!("closed the connection to the ResourceManager {resource_manager}: {cause}");
    }
    let Some(leader) = RM_LEADER.with(|current| current.borrow().clone()) else { return };
    if STOPPING.get() {
        return;
    }
    weir_guest::spawn(register(leader));
}

/// Registers with the ResourceManager `leader`, then declares the slots
/// the job needs.
async fn register(leader: Leader) {
    let generation = RM_REGISTRATIONS.with(Registrations::start);
    let token = weir_guest::fencing_token().expect("checked in on-start");
    let registered = generation
        .register(None, async |timeout: Duration| {
            let gateway = ResourcemanagerJobsGateway::connect(leader.address.clone(), Some(leader.session)).await?;
            gateway.set_timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
            let answer = gateway.register_job_master(token, own_id(), own_id(), job()).await?;
            Ok(match answer.outcome {
                RegistrationOutcome::Success => Response::Accepted((gateway, answer.resource_manager)),
                RegistrationOutcome::Rejection(why) | RegistrationOutcome::Failure(why) => Response::Declined(why),
            })
        })
        .await;
    let Some((gateway, resource_manager)) = registered else { return };
    let gateway = Rc::new(gateway);
    with(&RM_HEARTBEATS, |manager| manager.monitor(&resource_manager));
    weir_guest::info!("registered at the ResourceManager {resource_manager} for job {}", job());
    RESOURCE_MANAGER_CONNECTION.with(|c| *c.borrow_mut() = Some((gateway.clone(), resource_manager)));
    declare(&gateway, &generation).await;
}

/// Declares the slots the job needs, retrying with backoff from 1 ms to
/// 10 s until it goes through or the connection is renewed (Flink's slot
/// pool retries the latest declaration forever).
async fn declare(gateway: &ResourcemanagerJobsGateway, generation: &weir_guest::registration::Generation) {
    let token = weir_guest::fencing_token().expect("checked in on-start");
    let requirements = ResourceRequirements {
        job: job(),
        target_address: own_id(),
        requirements: vec![ResourceRequirement { profile: ResourceProfile { memory_mib: 0 }, slots: required() }],
    };
    let mut delay = Duration::from_millis(1);
    while generation.is_current() {
        match gateway.declare_required_resources(token, requirements.clone()).await {
            Ok(Ok(())) => {
                weir_guest::info!("declared {} slot(s) for job {}", required(), job());
                return;
            }
            Ok(Err(why)) => weir_guest::warn!("declaring the job's slots failed: {why}"),
            Err(error) => weir_guest::warn!("declaring the job's slots failed: {error:?}"),
        }
        weir_guest::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// Forgets a TaskExecutor and releases its slots (Flink's
/// `disconnectTaskManager`), telling it so if asked.
fn disconnect(task_manager: &str, cause: &str, tell_it: bool) {
    let Some(gone) = TASK_MANAGERS.with(|all| all.borrow_mut().remove(task_manager)) else { return };
    with(&TM_HEARTBEATS, |manager| manager.unmonitor(task_manager));
    tasks::lost(task_manager, cause);
    weir_guest::info!(
        "released {} slot(s) of TaskExecutor {task_manager}: {cause}; {} of {} left",
        gone.slots.len(),
        taken(),
        required()
    );
    if tell_it {
        let cause = cause.to_owned();
        weir_guest::spawn(async move { gone.gateway.disconnect_job_manager(job(), cause).await });
    }
}

/// Heartbeats: this side asks TaskExecutors and answers the ResourceManager.
struct Pulse;

impl Heartbeats for Pulse {
    async fn request(&self, target: String) -> Result<(), RpcError> {
        let known = TASK_MANAGERS.with(|all| {
            let all = all.borrow();
            let tm = all.get(&target)?;
            Some((tm.gateway.clone(), tm.slots.iter().map(|s| s.allocation).collect::<Vec<_>>()))
        });
        let (gateway, allocated) = known.ok_or(RpcError::UnknownEndpoint(target))?;
        // Delivered is enough: the answer comes as a call of its own.
        let _ = gateway.heartbeat_from_job_manager(own_id(), allocated).await?;
        Ok(())
    }

    async fn answer(&self, target: String) -> Result<(), RpcError> {
        let gateway = RESOURCE_MANAGER_CONNECTION
            .with(|c| c.borrow().as_ref().filter(|(_, id)| *id == target).map(|(g, _)| g.clone()));
        let gateway = gateway.ok_or(RpcError::UnknownEndpoint(target))?;
        gateway.heartbeat_from_job_manager(own_id()).await;
        Ok(())
    }

    fn lost(&self, target: String, timed_out: bool) {
        let why = if timed_out { "its heartbeat timed out" } else { "it is unreachable" };
        if TASK_MANAGERS.with(|all| all.borrow().contains_key(&target)) {
            disconnect(&target, &format!("TaskExecutor {target} is lost: {why}"), true);
        } else {
            reconnect_resource_manager(&format!("the ResourceManager {target} is lost: {why}"));
        }
    }
}

struct JobMaster;

impl weir_guest::Handover for JobMaster {
    fn snapshot() -> Result<Option<weir_guest::State>, String> {
        handover::snapshot().map(Some)
    }

    async fn restore(state: weir_guest::State) -> Result<(), String> {
        handover::restore(state).await
    }
}

/// Starts what runs beside the job's own work, in a new JobMaster and in
/// one that took a job over: heartbeats with TaskExecutors and the
/// ResourceManager, periodic checkpoints, and registration with each
/// ResourceManager that leads.
fn begin() -> Result<(), String> {
    TM_HEARTBEATS.with(|slot| *slot.borrow_mut() = Some(HeartbeatManager::sender(&own_id(), None, Pulse)));
    RM_HEARTBEATS.with(|slot| *slot.borrow_mut() = Some(HeartbeatManager::receiver(&own_id(), None, Pulse)));
    checkpoints::start_periodic();
    weir_guest::leadership::on_each_leader(RESOURCE_MANAGER, |leader| {
        RM_LEADER.with(|current| *current.borrow_mut() = Some(leader));
        reconnect_resource_manager("a new ResourceManager leads");
    })
}

impl weir_guest::Endpoint for JobMaster {
    fn on_start() -> Result<(), String> {
        let id = weir_guest::config("job-id").ok_or("the `job-id` setting is missing")?;
        let job = Uuid::parse(&id).ok_or_else(|| format!("the `job-id` setting `{id}` is not a UUID"))?;
        weir_guest::fencing_token().ok_or("a JobMaster runs fenced by its job's leader session")?;
        plan::check()?;
        control::start();
        checkpoints::recover();
        weir_guest::info!("JobMaster of job {job} started; it needs {} slot(s)", required());
        begin()
    }

    /// Leaves the ResourceManager, so that it requests no more slots for
    /// the job, then frees the job's slots at their TaskExecutors, as
    /// Flink's JobMaster does when it closes.
    async fn on_stop() -> Result<(), String> {
        // Heartbeats and ResourceManager registrations end first, as
        // Flink's JobMaster stops its heartbeat services first: the
        // ResourceManager's heartbeat, unanswered once the connection is
        // left below, would otherwise count it lost, and the JobMaster
        // would register again and declare its slots anew for a job that
        // has ended. The ResourceManager then held a slot for it forever.
        STOPPING.set(true);
        TM_HEARTBEATS.with(|slot| slot.borrow_mut().take());
        RM_HEARTBEATS.with(|slot| slot.borrow_mut().take());
        RM_REGISTRATIONS.with(Registrations::start);
        let status = control::status();
        let cause = format!("the JobMaster of job {} stopped ({})", job(), control::name(status).to_lowercase());
        if let Some((gateway, _)) = RESOURCE_MANAGER_CONNECTION.with(|c| c.borrow_mut().take()) {
            gateway.disconnect_job_manager(job(), status, cause.clone()).await;
        }
        let task_managers = TASK_MANAGERS.with(|all| std::mem::take(&mut *all.borrow_mut()));
        for tm in task_managers.into_values() {
            for slot in &tm.slots {
                if let Err(error) = tm.gateway.free_slot(slot.allocation, cause.clone()).await {
                    weir_guest::warn!("cannot free allocation {}: {error}", slot.allocation);
                }
            }
        }
        Ok(())
    }
}

impl Guest for JobMaster {
    async fn register_task_manager(
        job_id: Uuid,
        registration: TaskManagerRegistration,
    ) -> (RegistrationOutcome, String) {
        if job_id != job() {
            let why = format!("this JobMaster runs job {}, not {job_id}", job());
            return (RegistrationOutcome::Rejection(why), own_id());
        }
        let id = registration.resource_id;
        let known = TASK_MANAGERS.with(|all| all.borrow().get(&id).map(|tm| tm.session));
        match known {
            Some(session) if session == registration.session => return (RegistrationOutcome::Success, own_id()),
            Some(_) => disconnect(&id, "it registered again after a restart", false),
            None => {}
        }
        let tm = match TaskManager::connect(registration.address.clone(), registration.session, Vec::new()).await {
            Ok(tm) => tm,
            Err(error) => {
                let why = format!("cannot connect back to {}: {error:?}", registration.address);
                return (RegistrationOutcome::Failure(why), own_id());
            }
        };
        tm.add(id.clone());
        weir_guest::info!("registered TaskExecutor {id}");
        (RegistrationOutcome::Success, own_id())
    }

    async fn offer_slots(task_manager: String, offers: Vec<SlotOffer>) -> Result<Vec<SlotOffer>, String> {
        let room = required().saturating_sub(taken()) as usize;
        // A slot offered again (two offers crossed) is accepted again, as
        // in Flink, and not counted twice: declined, the TaskExecutor would
        // free a slot this side holds.
        let (mut accepted, fresh) = TASK_MANAGERS
            .with(|all| {
                let mut all = all.borrow_mut();
                let tm = all.get_mut(&task_manager)?;
                let (again, new): (Vec<SlotOffer>, Vec<SlotOffer>) = offers
                    .into_iter()
                    .partition(|offer| tm.slots.iter().any(|slot| slot.allocation == offer.allocation));
                let fresh: Vec<SlotOffer> = new.into_iter().take(room).collect();
                tm.slots.extend(fresh.iter().copied());
                Some((again, fresh))
            })
            .ok_or_else(|| format!("TaskExecutor {task_manager} is not registered with this JobMaster"))?;
        let (taken, required) = (taken(), required());
        weir_guest::info!("took {} slot(s) of TaskExecutor {task_manager}; {taken} of {required}", fresh.len());
        if !fresh.is_empty() && taken == required {
            weir_guest::info!("job {} has all {required} slot(s)", job());
            handover::spawn_busy("deploying its tasks", tasks::deploy());
        }
        accepted.extend(fresh);
        Ok(accepted)
    }

    fn fail_slot(task_manager: String, allocation: Uuid, cause: String) {
        TASK_MANAGERS.with(|all| {
            if let Some(tm) = all.borrow_mut().get_mut(&task_manager) {
                tm.slots.retain(|slot| slot.allocation != allocation);
            }
        });
        weir_guest::warn!("TaskExecutor {task_manager} lost allocation {allocation}: {cause}");
    }

    fn heartbeat_from_task_manager(task_manager: String, _payload: TaskManagerHeartbeat) {
        with(&TM_HEARTBEATS, |manager| manager.heartbeat_from(&task_manager));
    }

    fn disconnect_task_manager(task_manager: String, cause: String) {
        disconnect(&task_manager, &cause, false);
    }

    fn heartbeat_from_resource_manager(resource_manager: String) -> Result<(), String> {
        with(&RM_HEARTBEATS, |manager| manager.requested_by(&resource_manager));
        Ok(())
    }

    fn disconnect_resource_manager(_resource_manager: Uuid, cause: String) {
        reconnect_resource_manager(&format!("the ResourceManager closed the connection: {cause}"));
    }

    fn notify_not_enough_resources_available(acquired: Vec<ResourceRequirement>) {
        let slots: u32 = acquired.iter().map(|r| r.slots).sum();
        weir_guest::warn!("not enough resources for job {}: {slots} of {} slot(s) acquired", job(), required());
    }
}

weir_guest::export!(JobMaster, handover);
