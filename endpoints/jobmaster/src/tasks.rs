//! The job's tasks (`jobmaster-tasks`): once the JobMaster holds all its
//! slots it deploys every subtask of every stage (`submit-task`), the
//! last stage first so that each task knows where its consumers are,
//! resuming from the last completed checkpoint after a failure; it names
//! the job's task component by its digest on the host (Flink's blob key),
//! which TaskExecutors on this host start tasks from, and serves its bytes
//! to TaskExecutors on others (`request-artifact`),
//! follows the tasks' states ([`control`](crate::control) decides what
//! they mean for the job) and cancels them (`flink-components.md` §8).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use crate::exports::weir::flink::jobmaster_tasks::Guest;
use crate::handover::{self, spawn_busy};
use crate::weir::flink::taskexecutor_tasks_client::{TaskDeployment, TaskexecutorTasksGateway};
use crate::weir::flink::types::{ExecutionState, JobStatus, TaskExecutionState, VertexDetails};
use crate::{JobMaster, TASK_MANAGERS, checkpoints, control, inputs, job, milestones, plan, taken};
use weir_guest::{RpcError, SharedTask, Uuid, UuidPair};

/// One attempt of one subtask.
#[derive(Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// Its stage's index and its subtask index.
    stage: u32,
    subtask: u32,
    #[serde(with = "handover::execution_state")]
    state: ExecutionState,
    /// The TaskExecutor it was deployed to.
    task_manager: String,
}

thread_local! {
    /// The tasks of the job's current run, by attempt.
    static ATTEMPTS: RefCell<BTreeMap<UuidPair, Attempt>> = const { RefCell::new(BTreeMap::new()) };
    /// The job's task component, fetched once, when first needed.
    static COMPONENT: RefCell<Option<Fetch>> = const { RefCell::new(None) };
    /// The digest of the job's task component, loaded here once when its
    /// Dispatcher did not name one (`artifact-digest`).
    static LOADED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The tasks gateway of TaskExecutor `task_manager`, while registered.
fn gateway(task_manager: &str) -> Option<Rc<TaskexecutorTasksGateway>> {
    TASK_MANAGERS.with(|all| all.borrow().get(task_manager).map(|tm| tm.tasks_gateway.clone()))
}

/// Deploys the job's tasks, once it holds all its slots and none of an
/// earlier run is left, if the job names a task component and is created
/// or restarting.
pub async fn deploy() {
    let ready = matches!(control::status(), JobStatus::Created | JobStatus::Restarting)
        && live() == 0
        && taken() >= plan::slots();
    if !names_component() || !ready {
        return;
    }
    control::switch(JobStatus::Running);
    let artifact = match digest().await {
        Ok(digest) => digest,
        Err(why) => {
            control::fail(format!("its task component cannot be loaded: {why}"));
            control::check_end();
            return;
        }
    };
    ATTEMPTS.with(|all| all.borrow_mut().clear());
    checkpoints::new_run();
    let restored = checkpoints::latest();
    inputs::reset(restored.as_deref());
    let arguments = plan::lines("arguments");
    let slots: Vec<(String, Uuid)> = TASK_MANAGERS.with(|all| {
        all.borrow()
            .iter()
            .flat_map(|(id, tm)| tm.slots.iter().map(move |slot| (id.clone(), slot.allocation)))
            .collect()
    });
    let token = weir_guest::fencing_token().expect("checked in on-start");
    let checkpointing = checkpoints::periodic().is_some();
    // Every attempt is known before any task runs, so that the first to
    // finish does not look like the last.
    let stages = plan::stages();
    let mut deployments: Vec<Vec<(String, TaskDeployment)>> = Vec::new();
    for (index, stage) in stages.iter().enumerate() {
        let producers = index.checked_sub(1).map_or(0, |before| stages[before].parallelism);
        let of_stage = (0..stage.parallelism).map(|subtask| {
            let (task_manager, allocation) = slots[subtask as usize].clone();
            let attempt = weir_guest::new_uuid();
            let entry = Attempt {
                stage: index as u32,
                subtask,
                state: ExecutionState::Deploying,
                task_manager: task_manager.clone(),
            };
            ATTEMPTS.with(|all| all.borrow_mut().insert(attempt.pair(), entry));
            let deployment = TaskDeployment {
                job: job(),
                attempt,
                allocation,
                stage: stage.name.clone(),
                subtask,
                parallelism: stage.parallelism,
                arguments: arguments.clone(),
                restore: restored.as_ref().and_then(|checkpoint| checkpoint.state(index as u32, subtask)),
                consumers: Vec::new(),
                producers,
                checkpointing,
                artifact: artifact.clone(),
            };
            (task_manager, deployment)
        });
        deployments.push(of_stage.collect());
    }
    // The last stage first: each task is given its consumers' addresses.
    let mut consumers = Vec::new();
    for of_stage in deployments.into_iter().rev() {
        let submitted = of_stage.into_iter().map(|(task_manager, mut deployment)| {
            deployment.consumers = consumers.clone();
            submit(task_manager, deployment, token)
        });
        consumers = join_all(submitted).await.into_iter().flatten().collect();
    }
}

/// Submits one task; its address if it runs.
async fn submit(task_manager: String, deployment: TaskDeployment, token: Uuid) -> Option<String> {
    let attempt = deployment.attempt;
    if control::status() != JobStatus::Running {
        // Cancelled, failing or restarting while deploying: it never runs.
        record(attempt, ExecutionState::Canceled, None);
        return None;
    }
    let failure = match gateway(&task_manager) {
        Some(gateway) => match gateway.submit_task(deployment, token).await {
            Ok(Ok(address)) => return Some(address),
            Ok(Err(why)) => why,
            Err(error @ RpcError::Unreachable(_)) => {
                // Gone for good: its slots are of no use to the restart.
                let cause = format!("TaskExecutor {task_manager} is unreachable: {error}");
                record(attempt, ExecutionState::Failed, Some(format!("deploying it failed: {error}")));
                crate::disconnect(&task_manager, &cause, false);
                return None;
            }
            Err(error) => error.to_string(),
        },
        None => format!("TaskExecutor {task_manager} is gone"),
    };
    record(attempt, ExecutionState::Failed, Some(format!("deploying it failed: {failure}")));
    None
}

/// The tasks of the job's current run, as a JobMaster hands them over.
pub fn hand_over() -> BTreeMap<UuidPair, Attempt> {
    ATTEMPTS.with(|all| all.borrow().clone())
}

pub fn take_up(attempts: BTreeMap<UuidPair, Attempt>) {
    ATTEMPTS.with(|all| *all.borrow_mut() = attempts);
}

/// How a state reads in the log.
fn name(state: ExecutionState) -> &'static str {
    match state {
        ExecutionState::Created => "created",
        ExecutionState::Scheduled => "scheduled",
        ExecutionState::Deploying => "deploying",
        ExecutionState::Initializing => "initializing",
        ExecutionState::Running => "running",
        ExecutionState::Finished => "finished",
        ExecutionState::Canceling => "canceling",
        ExecutionState::Canceled => "canceled",
        ExecutionState::Failed => "failed",
    }
}

/// Whether a task in `state` has ended.
fn is_terminal(state: ExecutionState) -> bool {
    matches!(state, ExecutionState::Finished | ExecutionState::Canceled | ExecutionState::Failed)
}

/// The tasks that have not ended.
pub fn live() -> usize {
    ATTEMPTS.with(|all| all.borrow().values().filter(|attempt| !is_terminal(attempt.state)).count())
}

/// How many tasks the current run has, and how many of them run.
pub fn counts() -> (u32, u32) {
    ATTEMPTS.with(|all| {
        let all = all.borrow();
        let running = all.values().filter(|attempt| attempt.state == ExecutionState::Running).count();
        (all.len() as u32, running as u32)
    })
}

/// The job's stages, each with how many of its subtasks are in each
/// state; those of the current run not deployed yet count as created.
pub fn vertices() -> Vec<VertexDetails> {
    ATTEMPTS.with(|all| {
        let all = all.borrow();
        let vertex = |(index, stage): (usize, &plan::Stage)| {
            let mut tasks: Vec<(ExecutionState, u32)> = Vec::new();
            let mut count = |state, by| match tasks.iter_mut().find(|(known, _)| *known == state) {
                Some((_, counted)) => *counted += by,
                None => tasks.push((state, by)),
            };
            let deployed = all.values().filter(|attempt| attempt.stage as usize == index);
            let mut undeployed = stage.parallelism;
            for attempt in deployed {
                count(attempt.state, 1);
                undeployed = undeployed.saturating_sub(1);
            }
            if undeployed > 0 {
                count(ExecutionState::Created, undeployed);
            }
            VertexDetails { name: stage.name.clone(), parallelism: stage.parallelism, tasks }
        };
        plan::stages().iter().enumerate().map(vertex).collect()
    })
}

/// Whether every task finished.
pub fn all_finished() -> bool {
    ATTEMPTS.with(|all| all.borrow().values().all(|attempt| attempt.state == ExecutionState::Finished))
}

/// Cancels every task that has not ended; one whose TaskExecutor cannot
/// cancel it (gone, or the task never started there) counts as canceled.
pub fn cancel_all() {
    let live: Vec<_> = ATTEMPTS.with(|all| {
        all.borrow()
            .iter()
            .filter(|(_, attempt)| !is_terminal(attempt.state))
            .map(|(&id, attempt)| (Uuid::from_pair(id), attempt.task_manager.clone()))
            .collect()
    });
    for (attempt, task_manager) in live {
        spawn_busy("cancelling its tasks", async move {
            let refused = match gateway(&task_manager) {
                Some(gateway) => match gateway.cancel_task(attempt).await {
                    Ok(Ok(())) => return,
                    Ok(Err(why)) => why,
                    Err(error) => error.to_string(),
                },
                None => format!("TaskExecutor {task_manager} is gone"),
            };
            weir_guest::warn!("cannot cancel task {attempt}: {refused}; it counts as canceled");
            record(attempt, ExecutionState::Canceled, None);
        });
    }
}

/// Fails the tasks that run at TaskExecutor `task_manager`, which is gone.
pub fn lost(task_manager: &str, cause: &str) {
    let gone: Vec<Uuid> = ATTEMPTS.with(|all| {
        all.borrow()
            .iter()
            .filter(|(_, attempt)| !is_terminal(attempt.state) && attempt.task_manager == task_manager)
            .map(|(&id, _)| Uuid::from_pair(id))
            .collect()
    });
    for attempt in gone {
        record(attempt, ExecutionState::Failed, Some(cause.to_owned()));
    }
}

/// Where attempt `attempt` runs, while it has not ended: its stage's index
/// and its subtask index.
pub fn position(attempt: Uuid) -> Option<(u32, u32)> {
    ATTEMPTS.with(|all| {
        let all = all.borrow();
        let entry = all.get(&attempt.pair()).filter(|entry| !is_terminal(entry.state))?;
        Some((entry.stage, entry.subtask))
    })
}

/// A running task, as a checkpoint takes it.
pub struct Running {
    pub attempt: Uuid,
    pub stage: u32,
    pub subtask: u32,
    pub task_manager: String,
    /// Whether it is where a checkpoint starts: a source, or a task whose
    /// producers all finished (no barrier can reach it any more).
    pub first: bool,
}

/// What a checkpoint takes now, if every task of the current run runs or
/// has finished and one runs at least (Flink takes checkpoints after tasks
/// finish): the running tasks, and the subtasks of the first stage that
/// finished (whose input splits the checkpoint takes whole).
pub fn checkpointable() -> Option<(Vec<Running>, Vec<u32>)> {
    ATTEMPTS.with(|all| {
        let all = all.borrow();
        let ready = |state| matches!(state, ExecutionState::Running | ExecutionState::Finished);
        if !all.values().all(|entry| ready(entry.state)) {
            return None;
        }
        let stage_finished = |stage: u32| {
            all.values().filter(|entry| entry.stage == stage).all(|entry| entry.state == ExecutionState::Finished)
        };
        let running: Vec<Running> = all
            .iter()
            .filter(|(_, entry)| entry.state == ExecutionState::Running)
            .map(|(&id, entry)| Running {
                attempt: Uuid::from_pair(id),
                stage: entry.stage,
                subtask: entry.subtask,
                task_manager: entry.task_manager.clone(),
                first: entry.stage.checked_sub(1).is_none_or(stage_finished),
            })
            .collect();
        let finished_sources = all
            .values()
            .filter(|entry| entry.stage == 0 && entry.state == ExecutionState::Finished)
            .map(|entry| entry.subtask)
            .collect();
        (!running.is_empty()).then_some((running, finished_sources))
    })
}

/// How a task reads in the log: its stage and subtask, as Flink names
/// them (`count (2/4)`).
fn describe(stage: u32, subtask: u32) -> String {
    let stages = plan::stages();
    let stage = &stages[stage as usize];
    format!("{} ({}/{})", stage.name, subtask + 1, stage.parallelism)
}

/// Notes a task's new state; the job may end or restart with it. A task
/// that has ended stays so.
fn record(attempt: Uuid, state: ExecutionState, failure: Option<String>) {
    let Some((stage, subtask)) = ATTEMPTS.with(|all| {
        let mut all = all.borrow_mut();
        let entry = all.get_mut(&attempt.pair())?;
        if is_terminal(entry.state) {
            return None;
        }
        entry.state = state;
        Some((entry.stage, entry.subtask))
    }) else {
        return;
    };
    let task = describe(stage, subtask);
    weir_guest::info!("{task} of job {} is {}", job(), name(state));
    match state {
        ExecutionState::Failed => control::fail(format!("{task} failed: {}", failure.unwrap_or_default())),
        ExecutionState::Finished => checkpoints::task_finished(attempt),
        _ => {}
    }
    control::check_end();
    milestones::changed();
}

/// Whether the job names its task component: `artifact-key`, the key its
/// Dispatcher holds it under, or `artifact`, a file.
fn names_component() -> bool {
    weir_guest::config("artifact-key").is_some() || weir_guest::config("artifact").is_some()
}

/// The job's task component, as fetched once and shared by all who ask.
type Fetch = SharedTask<Result<Rc<Vec<u8>>, String>>;

/// The digest the job's task component is loaded under on this host: the
/// one its Dispatcher loaded it under (`artifact-digest`), or, for a job
/// that names a file (`artifact`), that file's, loaded here once.
async fn digest() -> Result<String, String> {
    if let Some(digest) = weir_guest::config("artifact-digest").or_else(|| LOADED.with(|l| l.borrow().clone())) {
        return Ok(digest);
    }
    let bytes = component().await?;
    let loaded = weir_guest::supervision::load(bytes.to_vec()).await;
    let digest = loaded.map_err(|error| format!("the host cannot load it: {}", error.message()))?;
    LOADED.with(|l| *l.borrow_mut() = Some(digest.clone()));
    Ok(digest)
}

/// The job's task component, fetched once: from the Dispatcher's memory
/// (`artifact-key`), or read from the file `artifact` names.
async fn component() -> Result<Rc<Vec<u8>>, String> {
    fetching().await.unwrap_or_else(|| Err("the fetch of the job's task component was dropped".into()))
}

/// The fetch of the job's task component, started now if none is under
/// way or done. A failed fetch is forgotten: the next ask fetches again.
fn fetching() -> Fetch {
    let started = || {
        weir_guest::spawn_shared(async {
            let fetched = fetch().await;
            if let Err(why) = &fetched {
                weir_guest::warn!("cannot fetch the job's task component: {why}");
                COMPONENT.with(|c| c.borrow_mut().take());
            }
            fetched
        })
    };
    COMPONENT.with(|c| c.borrow_mut().get_or_insert_with(started).clone())
}

async fn fetch() -> Result<Rc<Vec<u8>>, String> {
    let bytes = match weir_guest::config("artifact-key").and_then(|key| key.parse::<u64>().ok()) {
        Some(key) => {
            let dispatcher = control::dispatcher().await?;
            let bytes = dispatcher.request_component(key).await.map_err(|error| error.to_string())?;
            if bytes.is_empty() {
                return Err(format!("the Dispatcher holds no component under key {key}"));
            }
            bytes
        }
        None => {
            let path = weir_guest::config("artifact").ok_or("the job names no task component (`artifact`)")?;
            std::fs::read(&path).map_err(|error| format!("cannot read `{path}`: {error}"))?
        }
    };
    Ok(Rc::new(bytes))
}

impl Guest for JobMaster {
    async fn update_task_execution_state(state: TaskExecutionState) -> Result<(), String> {
        if state.job != job() {
            return Err(format!("this JobMaster runs job {}, not {}", job(), state.job));
        }
        record(state.attempt, state.state, state.failure);
        Ok(())
    }

    async fn request_artifact() -> Vec<u8> {
        component().await.map(|bytes| bytes.to_vec()).unwrap_or_else(|why| {
            weir_guest::error!("cannot serve the job's task component: {why}");
            Vec::new()
        })
    }
}
