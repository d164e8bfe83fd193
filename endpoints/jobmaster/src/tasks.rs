//! The job's tasks (`jobmaster-tasks`): once the JobMaster holds all its
//! slots it deploys one task into each (`submit-task`), serves the job's
//! task component to the TaskExecutors (`request-artifact`), and follows
//! the tasks' states to the job's end: finished when every task finished,
//! failed as soon as one fails (`flink-components.md` §8). Restarts are not
//! built yet: a failed job stays failed.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::exports::weir::flink::jobmaster_tasks::Guest;
use crate::weir::flink::taskexecutor_tasks_client::TaskDeployment;
use crate::weir::flink::types::{ExecutionState, TaskExecutionState};
use crate::{JobMaster, TASK_MANAGERS, job, required};
use weir_guest::Uuid;

/// The key under which the job's task component is served.
const ARTIFACT: &str = "job";

thread_local! {
    /// Each task's subtask index and last state, by attempt.
    static ATTEMPTS: RefCell<BTreeMap<(u64, u64), (u32, ExecutionState)>> = const { RefCell::new(BTreeMap::new()) };
    /// Whether the tasks were deployed (once: restarts are not built yet).
    static DEPLOYED: Cell<bool> = const { Cell::new(false) };
    /// The job's end, once it came.
    static ENDED: Cell<bool> = const { Cell::new(false) };
    /// The job's task component, read once.
    static COMPONENT: RefCell<Option<Rc<Vec<u8>>>> = const { RefCell::new(None) };
}

fn key(id: Uuid) -> (u64, u64) {
    (id.high, id.low)
}

/// Deploys one task into each slot held, if the job names a task
/// component and its tasks were not deployed yet.
pub async fn deploy() {
    if weir_guest::config("artifact").is_none() || DEPLOYED.replace(true) {
        return;
    }
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
            ATTEMPTS.with(|all| all.borrow_mut().insert(key(attempt), (subtask, ExecutionState::Deploying)));
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

/// Notes a task's new state, and the job's end when it comes.
fn record(attempt: Uuid, state: ExecutionState, failure: Option<String>) {
    let Some(subtask) = ATTEMPTS.with(|all| {
        let mut all = all.borrow_mut();
        let entry = all.get_mut(&key(attempt))?;
        entry.1 = state;
        Some(entry.0)
    }) else {
        weir_guest::warn!("a state for unknown task {attempt}: {state:?}");
        return;
    };
    weir_guest::info!("subtask {subtask} of job {} is {}", job(), name(state));
    if ENDED.get() {
        return;
    }
    if state == ExecutionState::Failed {
        ENDED.set(true);
        let why = failure.unwrap_or_default();
        weir_guest::error!("job {} failed: subtask {subtask} failed: {why}", job());
    } else if ATTEMPTS.with(|all| all.borrow().values().all(|(_, state)| *state == ExecutionState::Finished)) {
        ENDED.set(true);
        weir_guest::info!("job {} finished", job());
    }
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
