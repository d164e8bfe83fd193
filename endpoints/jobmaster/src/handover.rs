//! What a JobMaster hands to the component that replaces it when it is
//! swapped, with its job running or not: the job's status and restarts,
//! its tasks, its checkpoints, its input splits and the TaskExecutors
//! holding its slots. The new component connects to those TaskExecutors
//! again before it serves any call (one it cannot reach is lost, and its
//! tasks fail over), registers with the ResourceManager anew, and goes on.
//!
//! Work the old component had begun and a new one could not pick up
//! halfway (deploying or cancelling tasks, restarting the job, reporting
//! its end) refuses the swap until it is done; work a new one redoes
//! without harm (heartbeats, registration, triggering and confirming
//! checkpoints) is simply started again.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_guest::{Uuid, UuidPair};

use crate::weir::flink::types::{ExecutionState, JobStatus, ResourceProfile, SlotOffer};
use crate::{TASK_MANAGERS, TaskManager, checkpoints, control, inputs, job, tasks};

/// The layout of the state below.
const LAYOUT: u32 = 1;

thread_local! {
    /// Work under way that a swap must not cut short, by what it is.
    static BUSY: RefCell<BTreeMap<&'static str, usize>> = const { RefCell::new(BTreeMap::new()) };
}

/// Work a swap waits for: while one lives, `snapshot` refuses.
struct Busy(&'static str);

impl Busy {
    fn new(what: &'static str) -> Self {
        BUSY.with(|busy| *busy.borrow_mut().entry(what).or_default() += 1);
        Self(what)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|busy| {
            let mut busy = busy.borrow_mut();
            if let Some(count) = busy.get_mut(self.0) {
                *count -= 1;
                if *count == 0 {
                    busy.remove(self.0);
                }
            }
        });
    }
}

/// Runs `future` as a task of its own (as [`weir_guest::spawn`]) that the
/// JobMaster's component cannot be swapped under: from now until it ends,
/// `snapshot` refuses, saying it is `what`.
pub fn spawn_busy(what: &'static str, future: impl Future<Output = ()> + 'static) {
    let busy = Busy::new(what);
    weir_guest::spawn(async move {
        future.await;
        drop(busy);
    });
}

#[derive(Serialize, Deserialize)]
struct State {
    task_managers: Vec<HandedTaskManager>,
    control: control::Handed,
    attempts: BTreeMap<UuidPair, tasks::Attempt>,
    checkpoints: checkpoints::Handed,
    inputs: inputs::Handed,
}

/// A TaskExecutor registered with the JobMaster.
#[derive(Serialize, Deserialize)]
struct HandedTaskManager {
    resource_id: String,
    address: String,
    session: UuidPair,
    /// The slots it holds for the job: allocation, index and memory.
    slots: Vec<(UuidPair, u32, u32)>,
}

impl HandedTaskManager {
    fn of(resource_id: &str, tm: &TaskManager) -> Self {
        Self {
            resource_id: resource_id.to_owned(),
            address: tm.address.clone(),
            session: tm.session.pair(),
            slots: tm.slots.iter().map(|slot| (slot.allocation.pair(), slot.index, slot.profile.memory_mib)).collect(),
        }
    }

    /// Connects to the TaskExecutor again and registers it as it was; why
    /// not, if it cannot be reached.
    async fn take_up(self) -> Result<(), String> {
        let slots = self.slots.into_iter().map(|(allocation, index, memory_mib)| SlotOffer {
            allocation: Uuid::from_pair(allocation),
            index,
            profile: ResourceProfile { memory_mib },
        });
        let connected =
            TaskManager::connect(self.address.clone(), Uuid::from_pair(self.session), slots.collect()).await;
        let tm = connected.map_err(|error| format!("cannot reach it again at {}: {error}", self.address))?;
        tm.add(self.resource_id);
        Ok(())
    }
}

/// The state to hand over; refused while work a new component could not
/// pick up is under way.
pub fn snapshot() -> Result<weir_guest::State, String> {
    let busy: Vec<&str> = BUSY.with(|busy| busy.borrow().keys().copied().collect());
    if !busy.is_empty() {
        return Err(format!("the JobMaster of job {} is {}: swap it once that is done", job(), busy.join(" and ")));
    }
    let task_managers = TASK_MANAGERS
        .with(|all| all.borrow().iter().map(|(resource_id, tm)| HandedTaskManager::of(resource_id, tm)).collect());
    let state = State {
        task_managers,
        control: control::hand_over(),
        attempts: tasks::hand_over(),
        checkpoints: checkpoints::hand_over(),
        inputs: inputs::hand_over(),
    };
    weir_guest::State::encode(LAYOUT, &state)
}

/// Takes the job up where an older component left it: the job's state
/// first, then what runs beside it (as `on-start` starts it), then each
/// TaskExecutor again; one that cannot be reached is lost.
pub async fn restore(state: weir_guest::State) -> Result<(), String> {
    let state: State = state.decode(LAYOUT, "a JobMaster's")?;
    control::take_up(state.control)?;
    tasks::take_up(state.attempts);
    checkpoints::take_up(state.checkpoints);
    inputs::take_up(state.inputs);
    crate::begin()?;
    let count = state.task_managers.len();
    weir_guest::info!(
        "taking over job {} ({}) with {count} TaskExecutor(s)",
        job(),
        control::name(control::status()).to_lowercase()
    );
    for tm in state.task_managers {
        let resource_id = tm.resource_id.clone();
        if let Err(why) = tm.take_up().await {
            weir_guest::warn!("lost TaskExecutor {resource_id} in the swap: {why}");
            tasks::lost(&resource_id, &format!("TaskExecutor {resource_id} is lost: {why}"));
        }
    }
    checkpoints::resume();
    Ok(())
}

/// The value of the WIT enum `all` lists whose position is `code`, as
/// handed over.
fn nth<T: Copy>(all: &[T], code: u8, what: &str) -> Result<T, String> {
    all.get(usize::from(code)).copied().ok_or_else(|| format!("no {what} has code {code}"))
}

/// Reads and writes an [`ExecutionState`] as its position in the WIT enum.
pub mod execution_state {
    use super::ExecutionState::{self, *};

    const ALL: [ExecutionState; 9] =
        [Created, Scheduled, Deploying, Initializing, Running, Finished, Canceling, Canceled, Failed];

    pub fn serialize<S: serde::Serializer>(state: &ExecutionState, to: S) -> Result<S::Ok, S::Error> {
        to.serialize_u8(*state as u8)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(from: D) -> Result<ExecutionState, D::Error> {
        let code = <u8 as serde::Deserialize>::deserialize(from)?;
        super::nth(&ALL, code, "execution state").map_err(serde::de::Error::custom)
    }
}

/// A [`JobStatus`] as handed over: its position in the WIT enum.
pub fn job_status(code: u8) -> Result<JobStatus, String> {
    use JobStatus::*;
    const ALL: [JobStatus; 10] =
        [Initializing, Created, Running, Failing, Failed, Cancelling, Canceled, Finished, Restarting, Suspended];
    nth(&ALL, code, "job status")
}
