//! The checkpoint coordinator (Flink's `CheckpointCoordinator`,
//! `flink-components.md` §10): every `checkpoint-interval-ms`, and on
//! request (`jobmaster-checkpointing`), it triggers a checkpoint at the
//! job's sources through their TaskExecutors; barriers flow with the
//! records; every task acknowledges its state (`jobmaster-checkpoints`).
//! Once all have, the checkpoint is complete: kept as the point to restart
//! from, written to the checkpoint directory if the JobMaster has one
//! (setting `checkpoint-directory`, inside a directory it is lent, and
//! created with the first checkpoint written), and confirmed to the tasks. A
//! decline, a failure or a task that finishes first aborts it.
//!
//! As Flink's (FLIP-147), it checkpoints after tasks finish: a checkpoint
//! then starts at each running task whose producers all finished, takes
//! the finished sources' input splits whole, and holds no state for the
//! finished tasks, which a restart from it runs again from nothing (they
//! get no split and no record). When the last tasks running have only
//! finished producers it takes a final checkpoint at once, which lets
//! sinks commit their output exactly once.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use serde::{Deserialize, Serialize};

use crate::exports::weir::flink::{jobmaster_checkpointing, jobmaster_checkpoints};
use crate::weir::flink::types::JobStatus;
use crate::{JobMaster, TASK_MANAGERS, control, inputs, job, tasks};
use weir_guest::{Uuid, UuidPair};

/// A completed checkpoint: what a run resumes from.
#[derive(Serialize, Deserialize)]
pub struct Completed {
    pub id: u64,
    /// Each task's state, by stage and subtask.
    states: BTreeMap<(u32, u32), Rc<Vec<u8>>>,
    /// The input splits handed out before it.
    pub splits: BTreeSet<usize>,
}

impl Completed {
    /// The state of subtask `subtask` of stage `stage`.
    pub fn state(&self, stage: u32, subtask: u32) -> Option<Vec<u8>> {
        self.states.get(&(stage, subtask)).map(|state| state.to_vec())
    }
}

/// A checkpoint waiting for acknowledgements.
struct Pending {
    id: u64,
    started: Instant,
    /// The tasks yet to acknowledge, with their stage and subtask.
    waiting: BTreeMap<UuidPair, (u32, u32)>,
    completed: Completed,
    /// Where to write it as a savepoint, if it is one.
    savepoint: Option<String>,
    /// Whether only the job's last tasks ran when it started: a final one.
    last: bool,
    /// Who waits for it: its id, or its savepoint's path, once complete.
    waiters: Vec<oneshot::Sender<Result<String, String>>>,
}

thread_local! {
    static NEXT: Cell<u64> = const { Cell::new(1) };
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
    static LATEST: RefCell<Option<Rc<Completed>>> = const { RefCell::new(None) };
    static COMPLETED: Cell<u64> = const { Cell::new(0) };
    /// Whether this run's final checkpoint completed: the tasks left only
    /// commit and finish, and take no more periodic checkpoints (one taken
    /// meanwhile would be retained in place of the one they committed on).
    static FINAL_COMPLETED: Cell<bool> = const { Cell::new(false) };
}

/// A new run of the job starts: it takes its own final checkpoint.
pub fn new_run() {
    FINAL_COMPLETED.set(false);
}

/// The last completed checkpoint.
pub fn latest() -> Option<Rc<Completed>> {
    LATEST.with(|latest| latest.borrow().clone())
}

/// How many checkpoints completed.
pub fn completed() -> u64 {
    COMPLETED.get()
}

/// How often the job checkpoints (`checkpoint-interval-ms`), if it does.
pub fn periodic() -> Option<Duration> {
    let interval = weir_guest::config("checkpoint-interval-ms")?.parse::<u64>().ok()?;
    Some(Duration::from_millis(interval.max(1)))
}

/// Triggers a checkpoint every `checkpoint-interval-ms`, if set.
pub fn start_periodic() {
    let Some(interval) = periodic() else { return };
    weir_guest::spawn(async move {
        loop {
            weir_guest::sleep(interval).await;
            if control::ended() {
                return;
            }
            // A checkpoint still pending, tasks not all running, or the
            // final one taken: skip.
            if !FINAL_COMPLETED.get() {
                let _ = trigger(None);
            }
        }
    });
}

/// Starts a checkpoint (a savepoint into `savepoint`); the receiver gets
/// its outcome.
fn trigger(savepoint: Option<String>) -> Result<oneshot::Receiver<Result<String, String>>, String> {
    if control::status() != JobStatus::Running {
        return Err(format!("job {} is not running", job()));
    }
    if PENDING.with(|pending| pending.borrow().is_some()) {
        return Err("a checkpoint is in progress".into());
    }
    let (running, finished_sources) =
        tasks::checkpointable().ok_or("not all of the job's tasks are running (or finished)")?;
    let id = NEXT.replace(NEXT.get() + 1);
    let (waiter, outcome) = oneshot::channel();
    // A finished source read its splits whole: they are the checkpoint's.
    let splits = finished_sources.into_iter().flat_map(inputs::taken_by).collect();
    let last = running.iter().all(|task| task.first);
    let pending = Pending {
        id,
        started: Instant::now(),
        waiting: running.iter().map(|task| (task.attempt.pair(), (task.stage, task.subtask))).collect(),
        completed: Completed { id, states: BTreeMap::new(), splits },
        savepoint,
        last,
        waiters: vec![waiter],
    };
    PENDING.with(|slot| *slot.borrow_mut() = Some(pending));
    let timestamp = weir_guest::epoch_millis();
    for task in running.into_iter().filter(|task| task.first) {
        let (attempt, task_manager) = (task.attempt, task.task_manager);
        let Some(gateway) = checkpoints_gateway(&task_manager) else { continue };
        weir_guest::spawn(async move {
            let failed = match gateway.trigger_checkpoint(attempt, id, timestamp).await {
                Ok(Ok(())) => return,
                Ok(Err(why)) => why,
                Err(error) => error.to_string(),
            };
            abort(id, &format!("triggering it at task {attempt} failed: {failed}"));
        });
    }
    Ok(outcome)
}

fn checkpoints_gateway(
    task_manager: &str,
) -> Option<Rc<crate::weir::flink::taskexecutor_checkpoints_client::TaskexecutorCheckpointsGateway>> {
    TASK_MANAGERS.with(|all| all.borrow().get(task_manager).map(|tm| tm.checkpoints_gateway.clone()))
}

/// Aborts checkpoint `id` if it is pending.
pub fn abort(id: u64, why: &str) {
    let Some(pending) = PENDING.with(|pending| pending.borrow_mut().take_if(|pending| pending.id == id)) else {
        return;
    };
    weir_guest::warn!("checkpoint {id} of job {} aborted: {why}", job());
    for waiter in pending.waiters {
        let _ = waiter.send(Err(format!("checkpoint {id} was aborted: {why}")));
    }
}

/// Aborts the pending checkpoint, if any (the job fails over or ends).
pub fn abort_pending(why: &str) {
    if let Some(id) = PENDING.with(|pending| pending.borrow().as_ref().map(|pending| pending.id)) {
        abort(id, why);
    }
}

/// A task finished: a pending checkpoint it has not acknowledged cannot
/// complete. Once every task still running has only finished producers,
/// a job that checkpoints periodically takes its next checkpoint at once
/// (Flink's final checkpoint): tasks that commit their output on a
/// completed checkpoint wait for it.
pub fn task_finished(attempt: Uuid) {
    let waits = PENDING.with(|pending| {
        pending.borrow().as_ref().filter(|pending| pending.waiting.contains_key(&attempt.pair())).map(|p| p.id)
    });
    if let Some(id) = waits {
        abort(id, &format!("task {attempt} finished before it acknowledged"));
    }
    trigger_final_if_due();
}

/// Whether every task still running has only finished producers.
fn last_ones_run() -> bool {
    tasks::checkpointable().is_some_and(|(running, _)| running.iter().all(|task| task.first))
}

/// Takes the final checkpoint now if the job checkpoints periodically and
/// only its last tasks run (they wait for it to commit).
fn trigger_final_if_due() {
    if periodic().is_some() && last_ones_run() {
        match trigger(None) {
            Ok(_) => weir_guest::info!("job {}: a final checkpoint for the tasks still running", job()),
            Err(why) => weir_guest::debug!("no final checkpoint of job {} yet: {why}", job()),
        }
    }
}

/// Completes the pending checkpoint once every task acknowledged it.
fn complete_if_done() {
    let done = PENDING.with(|pending| pending.borrow_mut().take_if(|pending| pending.waiting.is_empty()));
    let Some(pending) = done else { return };
    let Pending { id, started, completed, savepoint, last, waiters, .. } = pending;
    let bytes: usize = completed.states.values().map(|state| state.len()).sum();
    let written = match &savepoint {
        Some(directory) => write(&completed, directory).map(|()| directory.clone()),
        None => store(&completed).map(|()| id.to_string()),
    };
    let outcome = match written {
        Ok(outcome) => outcome,
        Err(why) => {
            weir_guest::warn!("checkpoint {id} of job {} failed: {why}", job());
            for waiter in waiters {
                let _ = waiter.send(Err(why.clone()));
            }
            return;
        }
    };
    let kind = if savepoint.is_some() { "savepoint" } else { "checkpoint" };
    weir_guest::info!(
        "completed {kind} {id} of job {} ({} states, {bytes} bytes, {} ms)",
        job(),
        completed.states.len(),
        started.elapsed().as_millis()
    );
    COMPLETED.set(COMPLETED.get() + 1);
    crate::milestones::changed();
    FINAL_COMPLETED.set(last && savepoint.is_none());
    LATEST.with(|latest| *latest.borrow_mut() = Some(Rc::new(completed)));
    for waiter in waiters {
        let _ = waiter.send(Ok(outcome.clone()));
    }
    confirm(id);
    // The last tasks may have come to wait for a final checkpoint while
    // this one was pending, too early for them.
    if !last {
        trigger_final_if_due();
    }
}

/// Tells every running task that checkpoint `id` completed.
fn confirm(id: u64) {
    let timestamp = weir_guest::epoch_millis();
    for task in tasks::checkpointable().map(|(running, _)| running).unwrap_or_default() {
        let (attempt, task_manager) = (task.attempt, task.task_manager);
        let Some(gateway) = checkpoints_gateway(&task_manager) else { continue };
        weir_guest::spawn(async move {
            if let Ok(Err(why)) = gateway.confirm_checkpoint(attempt, id, timestamp).await {
                weir_guest::warn!("cannot confirm checkpoint {id} to task {attempt}: {why}");
            }
        });
    }
}

/// Writes a completed checkpoint into `directory`: one file per task
/// state (`<stage>-<subtask>.state`) and `_metadata`, the splits it took.
fn write(checkpoint: &Completed, directory: &str) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("cannot write checkpoint {} to `{directory}`: {error}", checkpoint.id);
    std::fs::create_dir_all(directory).map_err(failed)?;
    for ((stage, subtask), state) in &checkpoint.states {
        std::fs::write(format!("{directory}/{stage}-{subtask}.state"), state.as_slice()).map_err(failed)?;
    }
    let splits: Vec<String> = checkpoint.splits.iter().map(usize::to_string).collect();
    std::fs::write(
        format!("{directory}/_metadata"),
        format!("checkpoint {}\nsplits {}\n", checkpoint.id, splits.join(",")),
    )
    .map_err(failed)
}

/// Takes up the newest complete checkpoint in the checkpoint directory as
/// the point to resume from, for a job run again by a new leader (setting
/// `recover`): Flink's completed checkpoint store, recovered. One without
/// `_metadata` (written last) was not complete.
pub fn recover() {
    let Some(root) = weir_guest::config("checkpoint-directory").filter(|_| weir_guest::config("recover").is_some())
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&root) else { return };
    let mut kept: Vec<u64> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
        .filter(|id| std::path::Path::new(&format!("{root}/chk-{id}/_metadata")).exists())
        .collect();
    kept.sort_unstable();
    let Some(&id) = kept.last() else {
        weir_guest::info!("job {}: no completed checkpoint to resume from; it starts over", job());
        return;
    };
    match read(&format!("{root}/chk-{id}"), id) {
        Ok(checkpoint) => {
            weir_guest::info!("job {}: resuming from checkpoint {id}", job());
            NEXT.set(id + 1);
            LATEST.with(|latest| *latest.borrow_mut() = Some(Rc::new(checkpoint)));
        }
        Err(why) => weir_guest::warn!("job {}: cannot resume from checkpoint {id}: {why}; it starts over", job()),
    }
}

/// The checkpoint `id` [`write`] wrote into `directory`.
fn read(directory: &str, id: u64) -> Result<Completed, String> {
    let failed = |error: std::io::Error| format!("cannot read `{directory}`: {error}");
    let metadata = std::fs::read_to_string(format!("{directory}/_metadata")).map_err(failed)?;
    let splits = metadata.lines().find_map(|line| line.strip_prefix("splits ")).unwrap_or_default();
    let splits = splits.split(',').filter(|split| !split.is_empty()).map(str::parse).collect::<Result<_, _>>();
    let splits = splits.map_err(|_| format!("`{directory}/_metadata` names splits that are no numbers"))?;
    let mut states = BTreeMap::new();
    for entry in std::fs::read_dir(directory).map_err(failed)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((stage, subtask)) = name.strip_suffix(".state").and_then(|task| task.split_once('-')) else {
            continue;
        };
        let (Ok(stage), Ok(subtask)) = (stage.parse(), subtask.parse()) else { continue };
        states.insert((stage, subtask), Rc::new(std::fs::read(entry.path()).map_err(failed)?));
    }
    Ok(Completed { id, states, splits })
}

/// Keeps a completed checkpoint in the checkpoint directory, if any,
/// replacing the one before (Flink retains one by default).
fn store(checkpoint: &Completed) -> Result<(), String> {
    let Some(root) = weir_guest::config("checkpoint-directory") else { return Ok(()) };
    write(checkpoint, &format!("{root}/chk-{}", checkpoint.id))?;
    if let Some(previous) = latest() {
        let _ = std::fs::remove_dir_all(format!("{root}/chk-{}", previous.id));
    }
    Ok(())
}

/// The coordinator's state, as a JobMaster hands it over. A checkpoint
/// pending then is handed over by its id only, to be aborted: triggers and
/// confirmations the old component had not sent yet went with it.
#[derive(Serialize, Deserialize)]
pub struct Handed {
    next: u64,
    latest: Option<Rc<Completed>>,
    completed: u64,
    final_completed: bool,
    pending: Option<u64>,
}

pub fn hand_over() -> Handed {
    Handed {
        next: NEXT.get(),
        latest: latest(),
        completed: COMPLETED.get(),
        final_completed: FINAL_COMPLETED.get(),
        pending: PENDING.with(|pending| pending.borrow().as_ref().map(|pending| pending.id)),
    }
}

pub fn take_up(handed: Handed) {
    NEXT.set(handed.next);
    LATEST.with(|latest| *latest.borrow_mut() = handed.latest);
    COMPLETED.set(handed.completed);
    FINAL_COMPLETED.set(handed.final_completed);
    if let Some(id) = handed.pending {
        weir_guest::warn!("checkpoint {id} of job {} aborted: the JobMaster's component was swapped", job());
    }
}

/// Goes on where a JobMaster that handed its job over left off: confirms
/// the last completed checkpoint to the running tasks again (the old
/// component may not have sent every confirmation; tasks take one twice
/// in their stride, as Flink's do), and takes the final checkpoint if it
/// is due.
pub fn resume() {
    if let Some(latest) = latest() {
        confirm(latest.id);
    }
    trigger_final_if_due();
}

/// Waits for a triggered checkpoint's outcome.
async fn outcome(trigger: Result<oneshot::Receiver<Result<String, String>>, String>) -> Result<String, String> {
    trigger?.await.unwrap_or_else(|_| Err("the checkpoint was dropped".into()))
}

impl jobmaster_checkpoints::Guest for JobMaster {
    fn acknowledge_checkpoint(job_id: Uuid, attempt: Uuid, checkpoint: u64, state: Vec<u8>) {
        if job_id != job() {
            return;
        }
        let acknowledged = PENDING.with(|pending| {
            let mut pending = pending.borrow_mut();
            let pending = pending.as_mut().filter(|pending| pending.id == checkpoint)?;
            let (stage, subtask) = pending.waiting.remove(&attempt.pair())?;
            pending.completed.states.insert((stage, subtask), Rc::new(state));
            if stage == 0 {
                pending.completed.splits.extend(inputs::taken_by(subtask));
            }
            Some(())
        });
        if acknowledged.is_some() {
            complete_if_done();
        }
    }

    fn decline_checkpoint(job_id: Uuid, attempt: Uuid, checkpoint: u64, reason: String) {
        if job_id == job() {
            abort(checkpoint, &format!("task {attempt} declined it: {reason}"));
        }
    }
}

impl jobmaster_checkpointing::Guest for JobMaster {
    async fn trigger_checkpoint() -> Result<u64, String> {
        let id = outcome(trigger(None)).await?;
        id.parse().map_err(|_| format!("checkpoint `{id}` has no number"))
    }

    async fn trigger_savepoint(directory: Option<String>, cancel_job: bool) -> Result<String, String> {
        let directory = match directory {
            Some(directory) => directory,
            None => {
                let root = weir_guest::config("checkpoint-directory")
                    .ok_or("name a savepoint directory: this JobMaster has no checkpoint directory")?;
                format!("{root}/savepoint-{}", NEXT.get())
            }
        };
        let path = outcome(trigger(Some(directory))).await?;
        if cancel_job {
            control::cancel()?;
        }
        Ok(path)
    }
}
