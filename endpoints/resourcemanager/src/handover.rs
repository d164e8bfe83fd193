//! What the ResourceManager hands to the component that replaces it when
//! it is swapped: its registered TaskExecutors (with their slots and the
//! grants not yet confirmed) and JobMasters (with what their jobs need).
//! Slot requests still on their way are handed over as grants to confirm:
//! the TaskExecutor's next reports say whether they took.
//!
//! Client handles cannot cross instances: the new component connects to
//! each TaskExecutor and JobMaster again before it serves any call, and
//! watches their heartbeats from then on.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use weir_guest::{Uuid, UuidPair};

use crate::weir::flink::taskexecutor_client::TaskexecutorGateway;
use crate::weir::flink::taskexecutor_slots_client::TaskexecutorSlotsGateway;
use crate::weir::flink::types::{ResourceProfile, SlotId, SlotStatus};
use crate::{Registered, TASK_EXECUTORS, Unconfirmed, heartbeats, jobs};

/// The layout of the state below.
const LAYOUT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct State {
    task_executors: Vec<TaskExecutor>,
    job_masters: Vec<jobs::Handed>,
}

#[derive(Serialize, Deserialize)]
struct TaskExecutor {
    resource_id: String,
    instance: UuidPair,
    address: String,
    last_heartbeat_ms: u64,
    /// Each slot: its profile's memory, and the allocation and job holding it.
    slots: Vec<(u32, Option<(UuidPair, UuidPair)>)>,
    /// Grants not yet confirmed: slot, allocation, job, free reports since.
    unconfirmed: Vec<(u32, UuidPair, UuidPair, u8)>,
}

impl TaskExecutor {
    fn of(resource_id: &str, te: &Registered) -> Self {
        let allocation =
            |status: &SlotStatus| status.allocation.map(|(allocation, job)| (allocation.pair(), job.pair()));
        Self {
            resource_id: resource_id.to_owned(),
            instance: te.instance.pair(),
            address: te.address.clone(),
            last_heartbeat_ms: te.last_heartbeat_ms,
            slots: te.slots.iter().map(|status| (status.profile.memory_mib, allocation(status))).collect(),
            unconfirmed: te
                .unconfirmed
                .iter()
                .map(|u| (u.index, u.allocation.0.pair(), u.allocation.1.pair(), u.free_reports))
                .collect(),
        }
    }

    /// Connects to the TaskExecutor again and registers it as it was.
    async fn take_up(self) {
        let address = self.address.clone();
        let connected = async {
            let gateway = TaskexecutorGateway::connect(address.clone(), None).await?;
            let slots_gateway = TaskexecutorSlotsGateway::connect(address.clone(), None).await?;
            Ok::<_, weir_guest::RpcError>((Rc::new(gateway), Rc::new(slots_gateway)))
        };
        let (gateway, slots_gateway) = match connected.await {
            Ok(gateways) => gateways,
            Err(error) => {
                return weir_guest::warn!("dropped TaskExecutor {}: cannot reach it again: {error}", self.resource_id);
            }
        };
        let owner = self.resource_id.clone();
        let slots = self.slots.into_iter().enumerate().map(|(index, (memory_mib, allocation))| SlotStatus {
            slot: SlotId { owner: owner.clone(), index: index as u32 },
            profile: ResourceProfile { memory_mib },
            allocation: allocation.map(|(allocation, job)| (Uuid::from_pair(allocation), Uuid::from_pair(job))),
        });
        let unconfirmed = self.unconfirmed.into_iter().map(|(index, allocation, job, free_reports)| Unconfirmed {
            index,
            allocation: (Uuid::from_pair(allocation), Uuid::from_pair(job)),
            free_reports,
        });
        let registered = Registered {
            instance: Uuid::from_pair(self.instance),
            address: self.address,
            last_heartbeat_ms: self.last_heartbeat_ms,
            gateway,
            slots_gateway,
            slots: slots.collect(),
            unconfirmed: unconfirmed.collect(),
        };
        TASK_EXECUTORS.with(|all| all.borrow_mut().insert(owner.clone(), registered));
        heartbeats(|manager| manager.monitor(&owner));
    }
}

/// The state to hand over.
pub fn snapshot() -> Result<Option<weir_guest::State>, String> {
    let task_executors =
        TASK_EXECUTORS.with(|all| all.borrow().iter().map(|(id, te)| TaskExecutor::of(id, te)).collect());
    let mut state = State { task_executors, job_masters: jobs::hand_over() };
    jobs::pending_as_unconfirmed(&mut |owner, index, allocation, job| {
        if let Some(te) = state.task_executors.iter_mut().find(|te| te.resource_id == owner) {
            te.unconfirmed.push((index, allocation.pair(), job.pair(), 0));
            if let Some(slot) = te.slots.get_mut(index as usize) {
                slot.1 = Some((allocation.pair(), job.pair()));
            }
        }
    });
    weir_guest::State::encode(LAYOUT, &state).map(Some)
}

/// Takes up what an older instance handed over: heartbeats as `on-start`
/// starts them, then each TaskExecutor and JobMaster again, before the new
/// instance serves any call.
pub async fn restore(state: weir_guest::State) -> Result<(), String> {
    let state: State = state.decode(LAYOUT, "a ResourceManager's")?;
    crate::start_heartbeats();
    let (task_executors, job_masters) = (state.task_executors.len(), state.job_masters.len());
    weir_guest::info!("taking over {task_executors} TaskExecutor(s) and {job_masters} JobMaster(s)");
    for task_executor in state.task_executors {
        task_executor.take_up().await;
    }
    for job_master in state.job_masters {
        jobs::take_up(job_master).await;
    }
    jobs::check_requirements();
    Ok(())
}
