//! The ResourceManager's JobMaster side (`resourcemanager-jobs`): it
//! registers a job's leading JobMaster, keeps the slots the job declares it
//! needs (totals, not increments), and requests free slots of registered
//! TaskExecutors for it, which then offer them to the JobMaster
//! (`flink-components.md` §5.2, §7).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::exports::weir::flink::resourcemanager_jobs::{Guest, JobMasterRegistered, ResourceRequirements};
use crate::weir::flink::jobmaster_client::JobmasterGateway;
use crate::weir::flink::types::{JobStatus, RegistrationOutcome, SlotId};
use crate::{ResourceManager, TASK_EXECUTORS, heartbeats, own_id, session};
use weir_guest::leadership::Follower;
use weir_guest::{RpcError, Uuid, UuidPair};

/// A registered JobMaster and what its job needs.
struct JobMaster {
    id: Uuid,
    resource_id: String,
    gateway: Rc<JobmasterGateway>,
    /// Where TaskExecutors offer the job's slots.
    target: String,
    /// Slots the job needs in all.
    required: u32,
}

/// A slot requested of a TaskExecutor, not yet granted.
struct Pending {
    allocation: Uuid,
    slot: SlotId,
    job: Uuid,
}

thread_local! {
    /// The registered JobMasters, by job.
    static JOB_MASTERS: RefCell<BTreeMap<UuidPair, JobMaster>> = const { RefCell::new(BTreeMap::new()) };
    static PENDING: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
}

/// A registered JobMaster as a swap hands it over: its job, id, resource
/// id, address, where its job's slots go, and how many it needs.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Handed {
    job: UuidPair,
    id: UuidPair,
    resource_id: String,
    address: String,
    target: String,
    required: u32,
}

/// The registered JobMasters, to hand over.
pub fn hand_over() -> Vec<Handed> {
    JOB_MASTERS.with(|all| {
        let all = all.borrow();
        let handed = |(&job, jm): (&UuidPair, &JobMaster)| Handed {
            job,
            id: jm.id.pair(),
            resource_id: jm.resource_id.clone(),
            address: jm.gateway.address(),
            target: jm.target.clone(),
            required: jm.required,
        };
        all.iter().map(handed).collect()
    })
}

/// Each slot requested but not yet granted: its TaskExecutor, index,
/// allocation and job.
pub fn pending_as_unconfirmed(each: &mut impl FnMut(&str, u32, Uuid, Uuid)) {
    PENDING.with(|pending| {
        for p in pending.borrow().iter() {
            each(&p.slot.owner, p.slot.index, p.allocation, p.job);
        }
    });
}

/// Connects to a handed-over JobMaster again and registers it as it was.
pub async fn take_up(handed: Handed) {
    let gateway = match JobmasterGateway::connect(handed.address.clone(), Some(Uuid::from_pair(handed.id))).await {
        Ok(gateway) => Rc::new(gateway),
        Err(error) => {
            return weir_guest::warn!("dropped JobMaster {}: cannot reach it again: {error}", handed.resource_id);
        }
    };
    let registered = JobMaster {
        id: Uuid::from_pair(handed.id),
        resource_id: handed.resource_id.clone(),
        gateway,
        target: handed.target,
        required: handed.required,
    };
    JOB_MASTERS.with(|all| all.borrow_mut().insert(handed.job, registered));
    heartbeats(|manager| manager.monitor(&handed.resource_id));
}

/// Asks the JobMaster `target` for a heartbeat.
pub async fn request_heartbeat(target: String) -> Result<(), RpcError> {
    let gateway =
        JOB_MASTERS.with(|all| all.borrow().values().find(|jm| jm.resource_id == target).map(|jm| jm.gateway.clone()));
    // Delivered is enough: the answer comes as a call of its own.
    let _ = gateway.ok_or(RpcError::UnknownEndpoint(target))?.heartbeat_from_resource_manager(own_id()).await?;
    Ok(())
}

/// Forgets the JobMaster `target`, lost, keeping nothing of its job, and
/// tells it so.
pub fn job_master_lost(target: &str, why: &str) {
    let gone = JOB_MASTERS.with(|all| {
        let mut all = all.borrow_mut();
        let job = *all.iter().find(|(_, jm)| jm.resource_id == target)?.0;
        all.remove(&job)
    });
    let Some(gone) = gone else { return };
    let cause = format!("JobMaster {target} is lost: {why}");
    weir_guest::info!("closed the connection to {cause}");
    weir_guest::spawn(async move { gone.gateway.disconnect_resource_manager(session(), cause).await });
}

/// Tells every JobMaster that a TaskExecutor is gone, and forgets the slots
/// requested of it.
pub fn task_executor_gone(task_executor: &str, cause: &str) {
    PENDING.with(|pending| pending.borrow_mut().retain(|p| p.slot.owner != task_executor));
    let gateways: Vec<_> = JOB_MASTERS.with(|all| all.borrow().values().map(|jm| jm.gateway.clone()).collect());
    for gateway in gateways {
        let (task_executor, cause) = (task_executor.to_owned(), cause.to_owned());
        weir_guest::spawn(async move { gateway.disconnect_task_manager(task_executor, cause).await });
    }
    check_requirements();
}

/// Requests free slots for every job that needs more than it has or was
/// promised (Flink's `SlotManager` matching requirements to resources).
pub fn check_requirements() {
    let needs: Vec<(Uuid, String, u32)> = JOB_MASTERS.with(|all| {
        all.borrow().iter().map(|(&(high, low), jm)| (Uuid { high, low }, jm.target.clone(), jm.required)).collect()
    });
    for (job, target, required) in needs {
        let mut have = held(job);
        while have < required {
            let Some(slot) = free_slot(job) else {
                weir_guest::info!("job {job} has {have} of {required} slot(s); waiting for free ones");
                return;
            };
            let allocation = weir_guest::new_uuid();
            PENDING.with(|pending| pending.borrow_mut().push(Pending { allocation, slot: slot.clone(), job }));
            weir_guest::spawn(request(slot, job, allocation, target.clone()));
            have += 1;
        }
    }
}

/// The slots `job` holds at TaskExecutors or was promised.
fn held(job: Uuid) -> u32 {
    let reported: usize = TASK_EXECUTORS.with(|all| {
        all.borrow()
            .values()
            .map(|te| te.slots.iter().filter(|s| s.allocation.is_some_and(|(_, j)| j == job)).count())
            .sum()
    });
    let pending = PENDING.with(|pending| pending.borrow().iter().filter(|p| p.job == job).count());
    (reported + pending) as u32
}

/// A slot for `job` that no allocation holds and none was requested of.
/// This implementation fills one TaskExecutor before the next; built with
/// the `spread` feature (`resourcemanager_spread.wasm`), it takes a slot of
/// the TaskExecutor that holds the fewest of the job's slots, as Flink's
/// `cluster.evenly-spread-out-slots` does.
fn free_slot(job: Uuid) -> Option<SlotId> {
    let pending: Vec<(String, u32, bool)> = PENDING
        .with(|pending| pending.borrow().iter().map(|p| (p.slot.owner.clone(), p.slot.index, p.job == job)).collect());
    let pending = &pending;
    TASK_EXECUTORS.with(|all| {
        let all = all.borrow();
        let mut free = all.iter().flat_map(|(owner, te)| {
            let held = te.slots.iter().filter(|s| s.allocation.is_some_and(|(_, j)| j == job)).count()
                + pending.iter().filter(|(o, _, for_job)| o == owner && *for_job).count();
            te.slots.iter().filter_map(move |status| {
                let requested =
                    pending.iter().any(|(o, index, _)| *o == status.slot.owner && *index == status.slot.index);
                (status.allocation.is_none() && !requested).then(|| (held, status.slot.clone()))
            })
        });
        let chosen = if cfg!(feature = "spread") { free.min_by_key(|(held, _)| *held) } else { free.next() };
        chosen.map(|(_, slot)| slot)
    })
}

/// Requests `slot` for `job` of its TaskExecutor; granted, the slot is
/// held in this side's view until the TaskExecutor reports otherwise.
async fn request(slot: SlotId, job: Uuid, allocation: Uuid, target: String) {
    let found = TASK_EXECUTORS.with(|all| {
        let all = all.borrow();
        let te = all.get(&slot.owner)?;
        Some((te.slots_gateway.clone(), te.slots.get(slot.index as usize)?.profile))
    });
    let outcome = match found {
        Some((gateway, profile)) => {
            match gateway.request_slot(slot.clone(), job, allocation, profile, target, session()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(refused)) => Err(format!("{refused:?}")),
                Err(error) => Err(format!("{error:?}")),
            }
        }
        None => Err("the TaskExecutor is gone".to_owned()),
    };
    PENDING.with(|pending| pending.borrow_mut().retain(|p| p.allocation != allocation));
    match outcome {
        Ok(()) => {
            weir_guest::info!("slot {} of TaskExecutor {} allocated to job {job}", slot.index, slot.owner);
            TASK_EXECUTORS.with(|all| {
                let mut all = all.borrow_mut();
                if let Some(te) = all.get_mut(&slot.owner) {
                    te.granted(slot.index, allocation, job);
                }
            });
        }
        Err(why) => {
            weir_guest::warn!("slot {} of TaskExecutor {} refused for job {job}: {why}", slot.index, slot.owner);
            // Try elsewhere, after the requirement-check delay.
            weir_guest::spawn(async {
                weir_guest::sleep(std::time::Duration::from_millis(50)).await;
                check_requirements();
            });
        }
    }
}

impl Guest for ResourceManager {
    async fn register_job_master(
        job_master_id: Uuid,
        job_master: String,
        address: String,
        job: Uuid,
    ) -> JobMasterRegistered {
        let answer =
            |outcome| JobMasterRegistered { outcome, resource_manager_id: Some(session()), resource_manager: own_id() };
        let failed = |why: String| JobMasterRegistered {
            outcome: RegistrationOutcome::Failure(why),
            resource_manager_id: None,
            resource_manager: own_id(),
        };
        // Only the job's current leader registers (Flink's job leader id
        // service), once its leadership is confirmed: a JobMaster may
        // register the moment it starts, before its leader confirms it.
        let leader = match Follower::follow(&format!("job-{job}")) {
            Ok(follower) => follower.next_leader(None).await,
            Err(why) => return failed(format!("cannot follow the leader of job {job}: {why}")),
        };
        if leader.is_none_or(|leader| leader.session != job_master_id) {
            return failed(format!("{job_master_id} is not the leader of job {job}"));
        }
        let gateway = match JobmasterGateway::connect(address.clone(), Some(job_master_id)).await {
            Ok(gateway) => Rc::new(gateway),
            Err(error) => return failed(format!("cannot connect back to {address}: {error:?}")),
        };
        let registered =
            JobMaster { id: job_master_id, resource_id: job_master.clone(), gateway, target: address, required: 0 };
        if let Some(old) = JOB_MASTERS.with(|all| all.borrow_mut().insert(job.pair(), registered)) {
            heartbeats(|manager| manager.unmonitor(&old.resource_id));
        }
        heartbeats(|manager| manager.monitor(&job_master));
        weir_guest::info!("registered JobMaster {job_master} of job {job}");
        answer(RegistrationOutcome::Success)
    }

    async fn declare_required_resources(job_master_id: Uuid, requirements: ResourceRequirements) -> Result<(), String> {
        let job = requirements.job;
        let required: u32 = requirements.requirements.iter().map(|r| r.slots).sum();
        JOB_MASTERS.with(|all| match all.borrow_mut().get_mut(&job.pair()) {
            Some(jm) if jm.id == job_master_id => {
                jm.required = required;
                jm.target = requirements.target_address;
                Ok(())
            }
            Some(_) => Err(format!("JobMaster {job_master_id} is not the registered one of job {job}")),
            None => Err(format!("Could not find registered job manager for job {job}")),
        })?;
        weir_guest::info!("job {job} needs {required} slot(s)");
        check_requirements();
        Ok(())
    }

    fn heartbeat_from_job_manager(job_master: String) {
        heartbeats(|manager| manager.heartbeat_from(&job_master));
    }

    fn disconnect_job_manager(job: Uuid, status: JobStatus, cause: String) {
        if let Some(gone) = JOB_MASTERS.with(|all| all.borrow_mut().remove(&job.pair())) {
            heartbeats(|manager| manager.unmonitor(&gone.resource_id));
            weir_guest::info!("JobMaster of job {job} disconnected ({status:?}): {cause}");
        }
    }
}
