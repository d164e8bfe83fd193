//! Slots for jobs (`taskexecutor-slots`): the ResourceManager allocates
//! them, the TaskExecutor registers with each job's JobMaster (its job
//! leader, found through leader retrieval) and offers them; accepted slots
//! become active, declined and released ones go back to the
//! ResourceManager (`flink-components.md` §5.3, §7).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::exports::weir::flink::taskexecutor_slots::Guest;
use crate::weir::flink::jobmaster_client::{JobmasterGateway, TaskManagerHeartbeat, TaskManagerRegistration};
use crate::weir::flink::jobmaster_tasks_client::JobmasterTasksGateway;
use crate::weir::flink::types::{RegistrationOutcome, ResourceProfile, SlotId, SlotOffer, SlotRequestError};
use crate::{TaskExecutor, own_id, profile, resource_manager, slots};
use weir_guest::heartbeat::{HeartbeatManager, Heartbeats};
use weir_guest::leadership::Leader;
use weir_guest::registration::{Registrations, Response};
use weir_guest::{RpcError, Uuid};

/// This TaskExecutor's connection to one job's JobMaster.
#[derive(Default)]
struct Job {
    registrations: Registrations,
    /// The job's leader, once known.
    leader: Option<Leader>,
    /// The JobMaster's gateway and resource id, once registered.
    connected: Option<(Rc<JobmasterGateway>, String)>,
    /// Its gateway for the job's tasks (their states, the task component),
    /// connected when the first task is deployed and kept with the
    /// connection, as Flink's `JobTable.Connection` keeps its gateway: a
    /// connect per task cost each of a job's task starts a handshake.
    tasks: Option<Rc<JobmasterTasksGateway>>,
}

thread_local! {
    /// The jobs it holds slots for, by job id.
    static JOBS: RefCell<BTreeMap<(u64, u64), Job>> = const { RefCell::new(BTreeMap::new()) };
    /// Heartbeats with JobMasters, their side asking.
    static HEARTBEATS: RefCell<Option<HeartbeatManager>> = const { RefCell::new(None) };
    /// Tells this TaskExecutor's registrations from those of an earlier run.
    static SESSION: Uuid = weir_guest::new_uuid();
}

fn key(job: Uuid) -> (u64, u64) {
    (job.high, job.low)
}

fn heartbeats(act: impl FnOnce(&HeartbeatManager)) {
    HEARTBEATS.with(|manager| {
        if let Some(manager) = manager.borrow().as_ref() {
            act(manager);
        }
    });
}

pub fn start_heartbeats() {
    let manager = HeartbeatManager::receiver(&own_id(), None, Pulse);
    HEARTBEATS.with(|slot| *slot.borrow_mut() = Some(manager));
}

/// The registered JobMaster of `job`.
fn job_master(job: Uuid) -> Option<Rc<JobmasterGateway>> {
    JOBS.with(|jobs| jobs.borrow().get(&key(job)).and_then(|j| j.connected.as_ref().map(|(g, _)| g.clone())))
}

/// Where the registered JobMaster of `job` is, and its leader session.
pub fn connected_leader(job: Uuid) -> Option<Leader> {
    JOBS.with(|jobs| jobs.borrow().get(&key(job)).filter(|j| j.connected.is_some()).and_then(|j| j.leader.clone()))
}

/// The gateway the tasks of `job` use to reach its registered JobMaster
/// `leader`: the connection's, connected on first use.
///
/// # Errors
///
/// The JobMaster cannot be reached.
pub async fn tasks_gateway(job: Uuid, leader: &Leader) -> Result<Rc<JobmasterTasksGateway>, String> {
    let kept = JOBS.with(|jobs| jobs.borrow().get(&key(job)).and_then(|j| j.tasks.clone()));
    if let Some(gateway) = kept {
        return Ok(gateway);
    }
    let gateway = JobmasterTasksGateway::connect(leader.address.clone(), Some(leader.session))
        .await
        .map_err(|error| format!("cannot reach the JobMaster of job {job}: {error:?}"))?;
    let gateway = Rc::new(gateway);
    JOBS.with(|jobs| {
        // Kept only while the connection it was made for lasts.
        let current =
            |j: &&mut Job| j.connected.is_some() && j.leader.as_ref().is_some_and(|l| l.session == leader.session);
        if let Some(entry) = jobs.borrow_mut().get_mut(&key(job)).filter(current) {
            entry.tasks = Some(gateway.clone());
        }
    });
    Ok(gateway)
}

/// Follows the leader of `job`'s JobMaster, registering with each; once.
fn follow(job: Uuid) {
    let new = JOBS.with(|jobs| {
        let mut jobs = jobs.borrow_mut();
        let fresh = !jobs.contains_key(&key(job));
        jobs.entry(key(job)).or_default();
        fresh
    });
    if !new {
        return;
    }
    let followed = weir_guest::leadership::on_each_leader(&format!("job-{job}"), move |leader| {
        JOBS.with(|jobs| {
            if let Some(entry) = jobs.borrow_mut().get_mut(&key(job)) {
                entry.leader = Some(leader);
            }
        });
        reconnect(job, "a new JobMaster leads");
    });
    if let Err(error) = followed {
        weir_guest::error!("cannot follow the JobMaster of job {job}: {error}");
    }
}

/// Drops the connection to `job`'s JobMaster, if any (its slots become
/// inactive, its tasks are cancelled), and registers with its leader anew.
fn reconnect(job: Uuid, cause: &str) {
    let (registrations, leader, old) = JOBS
        .with(|jobs| {
            let mut jobs = jobs.borrow_mut();
            let entry = jobs.get_mut(&key(job))?;
            entry.tasks = None;
            Some((entry.registrations.clone(), entry.leader.clone(), entry.connected.take()))
        })
        .unwrap_or_default();
    if let Some((_, job_master)) = old {
        heartbeats(|manager| manager.unmonitor(&job_master));
        slots::deactivate(job);
        crate::tasks::cancel_job(job, cause);
        weir_guest::info!("closed the connection to the JobMaster {job_master} of job {job}: {cause}");
    }
    if let Some(leader) = leader {
        weir_guest::spawn(register(job, leader, registrations));
    }
}

/// Registers with the JobMaster `leader` of `job`, then offers its slots.
async fn register(job: Uuid, leader: Leader, registrations: Registrations) {
    let generation = registrations.start();
    let registration =
        TaskManagerRegistration { address: own_id(), resource_id: own_id(), session: SESSION.with(|s| *s) };
    let registered = generation
        .register(None, async |timeout: Duration| {
            let gateway = JobmasterGateway::connect(leader.address.clone(), Some(leader.session)).await?;
            gateway.set_timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
            let (outcome, job_master) = gateway.register_task_manager(job, registration.clone()).await?;
            Ok(match outcome {
                RegistrationOutcome::Success => Response::Accepted((gateway, job_master)),
                RegistrationOutcome::Rejection(why) | RegistrationOutcome::Failure(why) => Response::Declined(why),
            })
        })
        .await;
    let Some((gateway, job_master)) = registered else { return };
    let gateway = Rc::new(gateway);
    heartbeats(|manager| manager.monitor(&job_master));
    weir_guest::info!("registered at the JobMaster {job_master} of job {job}");
    JOBS.with(|jobs| {
        if let Some(entry) = jobs.borrow_mut().get_mut(&key(job)) {
            entry.connected = Some((gateway.clone(), job_master));
        }
    });
    offer(job, &gateway).await;
}

/// Offers the slots of `job` not yet taken; those it declines are freed.
async fn offer(job: Uuid, gateway: &JobmasterGateway) {
    let offers: Vec<SlotOffer> = slots::of_job(job)
        .into_iter()
        .filter(|(_, allocation)| !allocation.active)
        .map(|(index, allocation)| SlotOffer { allocation: allocation.id, index, profile: profile() })
        .collect();
    if offers.is_empty() {
        return;
    }
    let accepted = match gateway.offer_slots(own_id(), offers.clone()).await {
        Ok(Ok(accepted)) => accepted,
        Ok(Err(why)) => {
            weir_guest::warn!("the JobMaster of job {job} refused the offer: {why}");
            Vec::new()
        }
        Err(error) => {
            weir_guest::warn!("offering slots to the JobMaster of job {job} failed: {error:?}");
            Vec::new()
        }
    };
    for offered in offers {
        if accepted.iter().any(|a| a.allocation == offered.allocation) {
            slots::activate(offered.allocation);
        } else {
            release(offered.allocation);
        }
    }
}

/// Frees the slot of `allocation` and tells the ResourceManager it is
/// free. A job left without slots here is forgotten, its JobMaster
/// connection closed (Flink's `JobLeaderService.removeJob`).
fn release(allocation: Uuid) -> bool {
    let Some((index, job)) = slots::free(allocation) else { return false };
    weir_guest::info!("freed slot {index} (allocation {allocation})");
    if slots::of_job(job).is_empty() {
        forget(job);
    }
    if let Some((gateway, _, instance)) = resource_manager() {
        let slot = SlotId { owner: own_id(), index };
        weir_guest::spawn(async move { gateway.notify_slot_available(instance, slot, allocation).await });
    }
    true
}

/// Forgets `job`: no more registrations with its JobMasters, no
/// heartbeats with the connected one.
fn forget(job: Uuid) {
    let Some(gone) = JOBS.with(|jobs| jobs.borrow_mut().remove(&key(job))) else { return };
    // A registration in progress is superseded.
    gone.registrations.start();
    crate::tasks::forget(job);
    if let Some((_, job_master)) = gone.connected {
        heartbeats(|manager| manager.unmonitor(&job_master));
        weir_guest::info!("closed the connection to the JobMaster {job_master} of job {job}: no slot of it is left");
    }
}

/// Heartbeats go to the registered JobMasters.
struct Pulse;

impl Heartbeats for Pulse {
    async fn request(&self, _target: String) -> Result<(), RpcError> {
        // A receiver only answers.
        Ok(())
    }

    async fn answer(&self, target: String) -> Result<(), RpcError> {
        let gateway = JOBS.with(|jobs| {
            jobs.borrow()
                .values()
                .find_map(|j| j.connected.as_ref().filter(|(_, id)| *id == target).map(|(g, _)| g.clone()))
        });
        let gateway = gateway.ok_or(RpcError::UnknownEndpoint(target))?;
        gateway.heartbeat_from_task_manager(own_id(), TaskManagerHeartbeat { deployed: Vec::new() }).await;
        Ok(())
    }

    fn lost(&self, target: String, timed_out: bool) {
        let why = if timed_out { "its heartbeat timed out" } else { "it is unreachable" };
        for job in jobs_of(&target) {
            reconnect(job, &format!("the JobMaster {target} is lost: {why}"));
        }
    }
}

/// The jobs whose JobMaster is `job_master`.
fn jobs_of(job_master: &str) -> Vec<Uuid> {
    JOBS.with(|jobs| {
        jobs.borrow()
            .iter()
            .filter(|(_, j)| j.connected.as_ref().is_some_and(|(_, id)| id == job_master))
            .map(|(&(high, low), _)| Uuid { high, low })
            .collect()
    })
}

impl Guest for TaskExecutor {
    async fn request_slot(
        slot: SlotId,
        job: Uuid,
        allocation: Uuid,
        _profile: ResourceProfile,
        _target_address: String,
        resource_manager_id: Uuid,
    ) -> Result<(), SlotRequestError> {
        if resource_manager().is_none_or(|(_, session, _)| session != resource_manager_id) {
            return Err(SlotRequestError::NotConnected(format!(
                "TaskExecutor {} is not connected to the ResourceManager {resource_manager_id}",
                own_id()
            )));
        }
        slots::allocate(slot.index, allocation, job).map_err(|refused| match refused {
            slots::Refused::NoSuchSlot(index) => SlotRequestError::Failed(format!("there is no slot {index}")),
            slots::Refused::Occupied(held) => {
                SlotRequestError::Occupied(format!("slot {} holds allocation {held}", slot.index))
            }
        })?;
        weir_guest::info!("allocated slot {} to job {job} (allocation {allocation})", slot.index);
        match job_master(job) {
            Some(gateway) => weir_guest::spawn(async move { offer(job, &gateway).await }),
            None => follow(job),
        }
        Ok(())
    }

    fn free_inactive_slots(job: Uuid) {
        for (_, allocation) in slots::of_job(job).into_iter().filter(|(_, a)| !a.active) {
            release(allocation.id);
        }
    }

    fn heartbeat_from_job_manager(job_master: String, _allocated: Vec<Uuid>) -> Result<(), String> {
        heartbeats(|manager| manager.requested_by(&job_master));
        Ok(())
    }

    fn disconnect_job_manager(job: Uuid, cause: String) {
        reconnect(job, &format!("the JobMaster closed the connection: {cause}"));
    }

    async fn free_slot(allocation: Uuid, cause: String) -> Result<(), String> {
        weir_guest::info!("the JobMaster releases allocation {allocation}: {cause}");
        match release(allocation) {
            true => Ok(()),
            false => Err(format!("no slot holds allocation {allocation}")),
        }
    }
}
