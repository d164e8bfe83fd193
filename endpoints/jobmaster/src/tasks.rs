//! The job's tasks (`jobmaster-tasks`): once the JobMaster holds all its
//! slots it deploys one task into each (`submit-task`), serves the job's
//! task component to the TaskExecutors (`request-artifact`), and follows
//! the tasks' states ([`control`](crate::control) decides the job's end
//! from them: finished when every task finished, failed once one failed
//! and the others are canceled), and cancels them (`flink-components.md`
//! §8). Restarts are not built yet: a failed job stays failed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::exports::weir::flink::jobmaster_tasks::Guest;
use crate::weir::flink::taskexecutor_tasks_client::{TaskDeployment, TaskexecutorTasksGateway};
use crate::weir::flink::types::{ExecutionState, JobStatus, TaskExecutionState};
use crate::{JobMaster, TASK_MANAGERS, control, job, required};
use weir_guest::Uuid;

/// The key under which the job's task component is served.
const ARTIFACT: &str = "job";

/// One attempt of one subtask.
struct Attempt {
    subtask: u32,
    state: ExecutionState,
    /// The TaskExecutor it was deployed to.
    gateway: Rc<TaskexecutorTasksGateway>,
}

thread_local! {
    /// The job's tasks, by attempt.
    static ATTEMPTS: RefCell<BTreeMap<(u64, u64), Attempt>> = const { RefCell::new(BTreeMap::new()) };
    /// The job's task component, read once.
    static COMPONENT: RefCell<Option<Rc<Vec<u8>>>> = const { RefCell::new(None) };
}

fn key(id: Uuid) -> (u64, u64) {
    (id.high, id.low)
}

/// Deploys one task into each slot held, if the job names a task
/// component and its tasks were not deployed yet.
pub async fn deploy() {
    if weir_guest::config("artifact").is_none() || control::status() != JobStatus::Created {
        return;
    }
    control::switch(JobStatus::Running);
    let arguments: Vec<String> = weir_guest::config("arguments")
        .map(|all| all.lines().map(str::to_owned).filter(|a| !a.is_empty()).collect())
        .unwrap_or_default();
    let slots: Vec<_> = TASK_MANAGERS.with(|all| {
        all.borrow()
            .values()
            .flat_map(|tm| tm.slots.iter().map(|slot| (tm.tasks_gateway.clone(), slot.allocation)))
            .collect()
    });
    let token = weir_guest::fencing_token().expect("checked in on-start");
    // Every attempt is known before any task runs, so that the first to
    // finish does not look like the last.
    let deployments: Vec<_> = (0..)
        .zip(slots)
        .map(|(subtask, (gateway, allocation))| {
            let attempt = weir_guest::new_uuid();
            let entry = Attempt { subtask, state: ExecutionState::Deploying, gateway: gateway.clone() };
            ATTEMPTS.with(|all| all.borrow_mut().insert(key(attempt), entry));
            let deployment = TaskDeployment {
                job: job(),
                attempt,
                allocation,
                stage: "task".into(),
                subtask,
                parallelism: required(),
                artifact: ARTIFACT.into(),
                arguments: arguments.clone(),
                restore: None,
                consumers: Vec::new(),
            };
            (gateway, deployment)
        })
        .collect();
    for (gateway, deployment) in deployments {
        let attempt = deployment.attempt;
        if control::status() != JobStatus::Running {
            // Cancelled or failing while deploying: the rest never runs.
            record(attempt, ExecutionState::Canceled, None);
            continue;
        }
        let failure = match gateway.submit_task(deployment, token).await {
            Ok(Ok(())) => continue,
            Ok(Err(why)) => why,
            Err(error) => format!("{error:?}"),
        };
        record(attempt, ExecutionState::Failed, Some(format!("deploying it failed: {failure}")));
    }
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
            .map(|(&(high, low), attempt)| (Uuid { high, low }, attempt.gateway.clone()))
            .collect()
    });
    for (attempt, gateway) in live {
        weir_guest::spawn(async move {
            let refused = match gateway.cancel_task(attempt).await {
                Ok(Ok(())) => return,
                Ok(Err(why)) => why,
                Err(error) => error.to_string(),
            };
            weir_guest::warn!("cannot cancel task {attempt}: {refused}; it counts as canceled");
            record(attempt, ExecutionState::Canceled, None);
        });
    }
}

/// Fails the tasks deployed through `gateway`, whose TaskExecutor is gone.
pub fn lost(gateway: &Rc<TaskexecutorTasksGateway>, cause: &str) {
    let gone: Vec<Uuid> = ATTEMPTS.with(|all| {
        all.borrow()
            .iter()
            .filter(|(_, attempt)| !is_terminal(attempt.state) && Rc::ptr_eq(&attempt.gateway, gateway))
            .map(|(&(high, low), _)| Uuid { high, low })
            .collect()
    });
    for attempt in gone {
        record(attempt, ExecutionState::Failed, Some(cause.to_owned()));
    }
}

/// Notes a task's new state; the job may end with it. A task that has
/// ended stays so.
fn record(attempt: Uuid, state: ExecutionState, failure: Option<String>) {
    let Some(subtask) = ATTEMPTS.with(|all| {
        let mut all = all.borrow_mut();
        let entry = all.get_mut(&key(attempt))?;
        if !is_terminal(entry.state) {
            entry.state = state;
        }
        Some(entry.subtask)
    }) else {
        weir_guest::warn!("a state for unknown task {attempt}: {state:?}");
        return;
    };
    weir_guest::info!("subtask {subtask} of job {} is {}", job(), name(state));
    if state == ExecutionState::Failed {
        control::fail(format!("subtask {subtask} failed: {}", failure.unwrap_or_default()));
    }
    control::check_end();
}

/// The job's task component, from the file the `artifact` setting names.
fn component() -> Result<Rc<Vec<u8>>, String> {
    if let Some(bytes) = COMPONENT.with(|c| c.borrow().clone()) {
        return Ok(bytes);
    }
    let path = weir_guest::config("artifact").ok_or("the job names no task component (`artifact`)")?;
    let bytes = Rc::new(std::fs::read(&path).map_err(|error| format!("cannot read `{path}`: {error}"))?);
    COMPONENT.with(|c| *c.borrow_mut() = Some(bytes.clone()));
    Ok(bytes)
}

impl Guest for JobMaster {
    async fn update_task_execution_state(state: TaskExecutionState) -> Result<(), String> {
        if state.job != job() {
            return Err(format!("this JobMaster runs job {}, not {}", job(), state.job));
        }
        record(state.attempt, state.state, state.failure);
        Ok(())
    }

    async fn request_artifact(key: String) -> Result<Vec<u8>, String> {
        match key.as_str() {
            ARTIFACT => component().map(|bytes| bytes.to_vec()),
            other => Err(format!("no artifact `{other}`; this job has `{ARTIFACT}`")),
        }
    }
}
