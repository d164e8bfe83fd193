//! Tasks (`taskexecutor-tasks`): a JobMaster deploys a task into an active
//! slot of its job; the TaskExecutor starts it as a child endpoint of its
//! own (`weir:rpc/supervision`) from the job's task component, which the
//! host holds under the digest the deployment names (fetched from the
//! JobMaster and loaded, once per job, where the host holds none), runs
//! it, and reports its states to the JobMaster: running, then finished,
//! failed (with the cause, a trap included) or canceled
//! (`flink-components.md` §8). It hands checkpoint triggers and
//! confirmations to its tasks (`taskexecutor-checkpoints`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::exports::weir::flink::taskexecutor_checkpoints;
use crate::exports::weir::flink::taskexecutor_tasks::{Guest, TaskDeployment};
use crate::weir::flink::jobmaster_tasks_client::JobmasterTasksGateway;
use crate::weir::flink::task_checkpoints_client::TaskCheckpointsGateway;
use crate::weir::flink::task_client::{TaskGateway, TaskInfo};
use crate::weir::flink::types::{ExecutionState, TaskExecutionState};
use crate::{TaskExecutor, jobs, slots};
use weir_guest::leadership::Leader;
use weir_guest::supervision::{Child, ChildDirectory, ChildOptions, StartError};
use weir_guest::{SharedTask, Uuid};

/// A task this TaskExecutor runs, from the moment it was submitted (so
/// that a cancellation during its start is not lost).
struct Running {
    /// Its job.
    job: Uuid,
    /// Its endpoint, and its checkpoint side, once started.
    child: Option<(Rc<Child>, Rc<TaskCheckpointsGateway>)>,
    /// Set when the JobMaster cancels it: its end is then not a failure.
    canceled: Rc<Cell<bool>>,
}

thread_local! {
    /// The running tasks, by attempt.
    static TASKS: RefCell<BTreeMap<(u64, u64), Running>> = const { RefCell::new(BTreeMap::new()) };
    /// The task components of jobs this TaskExecutor holds slots of, while
    /// they are fetched from their JobMasters and loaded, where the host
    /// did not hold them (Flink's BLOB cache): the tasks deployed meanwhile
    /// share the one fetch.
    static ARTIFACTS: RefCell<BTreeMap<(u64, u64), Artifact>> = const { RefCell::new(BTreeMap::new()) };
}

/// A job's task component, fetched or being fetched: the tasks deployed
/// while it is on its way all wait for the one fetch.
type Artifact = SharedTask<Result<Rc<Vec<u8>>, String>>;

fn key(id: Uuid) -> (u64, u64) {
    (id.high, id.low)
}

/// Drops the fetched task component of `job`: loaded on the host, or the
/// job's last slot here was freed.
pub fn forget(job: Uuid) {
    ARTIFACTS.with(|all| all.borrow_mut().remove(&key(job)));
}

/// The fetch of `job`'s task component, started now if none is under way
/// or done. A failed fetch is forgotten, so that the next task tries again.
fn fetching(job: Uuid, leader: &Leader) -> Artifact {
    if let Some(fetch) = ARTIFACTS.with(|all| all.borrow().get(&key(job)).cloned()) {
        return fetch;
    }
    let leader = leader.clone();
    let fetch = weir_guest::spawn_shared(async move {
        let fetched = fetch(job, &leader).await;
        if fetched.is_err() {
            ARTIFACTS.with(|all| all.borrow_mut().remove(&key(job)));
        }
        fetched
    });
    ARTIFACTS.with(|all| all.borrow_mut().insert(key(job), fetch.clone()));
    fetch
}

async fn fetch(job: Uuid, leader: &Leader) -> Result<Rc<Vec<u8>>, String> {
    match jobs::tasks_gateway(job, leader).await?.request_artifact().await {
        Ok(bytes) if bytes.is_empty() => Err(format!("the JobMaster of job {job} has no task component")),
        Ok(bytes) => Ok(Rc::new(bytes)),
        Err(error) => Err(format!("fetching the task component of job {job} failed: {error}")),
    }
}

/// Reports a task's state to its JobMaster.
async fn report(
    job_master: &JobmasterTasksGateway,
    job: Uuid,
    attempt: Uuid,
    state: ExecutionState,
    failure: Option<String>,
) {
    let why = failure.as_deref().map_or(String::new(), |failure| format!(": {failure}"));
    weir_guest::info!("task {attempt} of job {job} reported {state:?}{why}");
    let update = TaskExecutionState { job, attempt, state, failure };
    if let Err(error) = job_master.update_task_execution_state(update).await {
        weir_guest::warn!("cannot report task {attempt} to the JobMaster of job {job}: {error:?}");
    }
}

/// Runs a started task to its end, then reports how it ended.
async fn run(child: Rc<Child>, canceled: Rc<Cell<bool>>, info: TaskInfo, job_master: Rc<JobmasterTasksGateway>) {
    let (job, attempt) = (info.job, info.attempt);
    let outcome = match TaskGateway::connect(child.address(), None).await {
        Ok(task) => {
            // A task runs as long as its job needs: no ask timeout.
            task.set_timeout(u64::MAX);
            task.run(info).await
        }
        Err(error) => Err(error),
    };
    TASKS.with(|tasks| tasks.borrow_mut().remove(&key(attempt)));
    let (state, failure) = match outcome {
        _ if canceled.get() => (ExecutionState::Canceled, None),
        Ok(Ok(())) => (ExecutionState::Finished, None),
        Ok(Err(why)) => (ExecutionState::Failed, Some(why)),
        // The task's endpoint failed (a trap, a limit): its cause says how.
        Err(error) => (ExecutionState::Failed, Some(child.terminated().await.err().unwrap_or(format!("{error:?}")))),
    };
    drop(child);
    report(&job_master, job, attempt, state, failure).await;
}

/// Starts attempt `attempt` of `job` as a child endpoint from the task
/// component the host holds under `digest`, with this TaskExecutor's slot
/// memory cap and task CPU deadline. If the host holds none, the
/// component is fetched from the job's JobMaster `leader` and loaded first.
async fn start(
    job: Uuid,
    attempt: Uuid,
    digest: &str,
    leader: &Leader,
) -> Result<(Child, Rc<JobmasterTasksGateway>), String> {
    let job_master = jobs::tasks_gateway(job, leader).await?;
    let options = || {
        let mut options = ChildOptions::new(format!("task-{attempt}"));
        let memory_mib = crate::profile().memory_mib;
        options.memory_cap = (memory_mib > 0).then(|| u64::from(memory_mib) << 20);
        options.directories = lent_directories();
        options.cpu_deadline_ms = weir_guest::config("task-cpu-deadline-ms").and_then(|ms| ms.parse().ok());
        options
    };
    let started = match Child::start_loaded(digest.to_owned(), options()).await {
        Err(StartError::UnknownComponent(_)) => {
            load(job, digest, leader).await?;
            Child::start_loaded(digest.to_owned(), options()).await
        }
        started => started,
    };
    let child = started.map_err(|error| format!("cannot start task {attempt}: {}", error.message()))?;
    Ok((child, job_master))
}

/// Fetches the task component of `job` from its JobMaster `leader` and
/// loads it on this host, checking that it is the one named `digest`.
async fn load(job: Uuid, digest: &str, leader: &Leader) -> Result<(), String> {
    let bytes =
        fetching(job, leader).await.unwrap_or_else(|| Err("the fetch of the task component was dropped".into()))?;
    let loaded = weir_guest::supervision::load(bytes.to_vec()).await;
    // Loaded, the host holds it; refused or not the one deployed, the next
    // task fetches it again.
    forget(job);
    match loaded.map_err(|error| format!("cannot load the task component of job {job}: {}", error.message()))? {
        fetched if fetched == digest => Ok(()),
        fetched => Err(format!(
            "the JobMaster of job {job} served a task component whose digest is {fetched}, not {digest} as deployed"
        )),
    }
}

/// The directories its tasks are lent, at the paths this TaskExecutor
/// sees them (setting `task-directories`: one path per line, followed by
/// ` writable` where tasks may write).
fn lent_directories() -> Vec<ChildDirectory> {
    let lines = weir_guest::config("task-directories").unwrap_or_default();
    lines
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (path, writable) = match line.strip_suffix(" writable") {
                Some(path) => (path.trim(), true),
                None => (line, false),
            };
            ChildDirectory { path: path.to_owned(), guest_path: path.to_owned(), writable }
        })
        .collect()
}

impl Guest for TaskExecutor {
    async fn submit_task(deployment: TaskDeployment, job_master_id: Uuid) -> Result<String, String> {
        let (job, attempt) = (deployment.job, deployment.attempt);
        let leader = jobs::connected_leader(job)
            .filter(|leader| leader.session == job_master_id)
            .ok_or_else(|| format!("no JobMaster {job_master_id} of job {job} is connected to this TaskExecutor"))?;
        if !slots::try_mark_active(deployment.allocation, job) {
            return Err(format!("no slot of job {job} holds allocation {}", deployment.allocation));
        }
        let canceled = Rc::new(Cell::new(false));
        let running = Running { job, child: None, canceled: canceled.clone() };
        TASKS.with(|tasks| tasks.borrow_mut().insert(key(attempt), running));
        let started = start(job, attempt, &deployment.artifact, &leader).await;
        let (child, job_master) = match started {
            Ok(started) => started,
            Err(why) => {
                TASKS.with(|tasks| tasks.borrow_mut().remove(&key(attempt)));
                return Err(why);
            }
        };
        let address = child.address();
        let checkpoints = TaskCheckpointsGateway::connect(address.clone(), None).await;
        if canceled.get() {
            // Cancelled while it started: it never runs.
            TASKS.with(|tasks| tasks.borrow_mut().remove(&key(attempt)));
            drop(child);
            report(&job_master, job, attempt, ExecutionState::Canceled, None).await;
            return Ok(address);
        }
        let checkpoints = match checkpoints {
            Ok(checkpoints) => Rc::new(checkpoints),
            Err(error) => {
                TASKS.with(|tasks| tasks.borrow_mut().remove(&key(attempt)));
                return Err(format!("task {attempt} takes no checkpoints: {error}"));
            }
        };
        let child = Rc::new(child);
        TASKS.with(|tasks| {
            if let Some(task) = tasks.borrow_mut().get_mut(&key(attempt)) {
                task.child = Some((child.clone(), checkpoints));
            }
        });
        report(&job_master, job, attempt, ExecutionState::Running, None).await;
        let info = TaskInfo {
            job,
            attempt,
            stage: deployment.stage,
            subtask: deployment.subtask,
            parallelism: deployment.parallelism,
            arguments: deployment.arguments,
            restore: deployment.restore,
            consumers: deployment.consumers,
            producers: deployment.producers,
            job_master: leader.address,
            job_master_session: leader.session,
            checkpointing: deployment.checkpointing,
        };
        weir_guest::spawn(run(child, canceled, info, job_master));
        Ok(address)
    }

    async fn cancel_task(attempt: Uuid) -> Result<(), String> {
        let running = TASKS
            .with(|tasks| tasks.borrow().get(&key(attempt)).map(|task| (task.child.clone(), task.canceled.clone())));
        let (child, canceled) = running.ok_or_else(|| format!("no task {attempt} runs here"))?;
        canceled.set(true);
        // Its run then ends, and reports it canceled; one still starting
        // is stopped once started.
        match child {
            Some((child, _)) => child.stop().await,
            None => Ok(()),
        }
    }
}

/// Cancels every task of `job`: its JobMaster is gone, and a new one will
/// deploy the job again (Flink's TaskExecutor fails a job's tasks when its
/// JobMaster connection closes). Those still starting stop once started.
pub fn cancel_job(job: Uuid, cause: &str) {
    let of_job: Vec<_> = TASKS.with(|tasks| {
        let tasks = tasks.borrow();
        tasks.values().filter(|task| task.job == job).map(|task| (task.child.clone(), task.canceled.clone())).collect()
    });
    if of_job.is_empty() {
        return;
    }
    weir_guest::info!("cancelling {} task(s) of job {job}: {cause}", of_job.len());
    for (child, canceled) in of_job {
        canceled.set(true);
        if let Some((child, _)) = child {
            // Its run then ends, and reports it canceled.
            weir_guest::spawn(async move { drop(child.stop().await) });
        }
    }
}

/// The checkpoint side of running task `attempt`.
fn checkpoints_of(attempt: Uuid) -> Result<Rc<TaskCheckpointsGateway>, String> {
    let found = TASKS.with(|tasks| tasks.borrow().get(&key(attempt)).and_then(|task| task.child.clone()));
    found.map(|(_, checkpoints)| checkpoints).ok_or_else(|| format!("no task {attempt} runs here"))
}

/// Checkpoints go to the tasks, which snapshot their state and
/// acknowledge it to their JobMaster themselves.
impl taskexecutor_checkpoints::Guest for TaskExecutor {
    async fn trigger_checkpoint(attempt: Uuid, checkpoint: u64, _timestamp: u64) -> Result<(), String> {
        checkpoints_of(attempt)?.trigger_checkpoint(checkpoint).await;
        Ok(())
    }

    async fn confirm_checkpoint(attempt: Uuid, checkpoint: u64, _timestamp: u64) -> Result<(), String> {
        checkpoints_of(attempt)?.notify_checkpoint_complete(checkpoint).await;
        Ok(())
    }
}
