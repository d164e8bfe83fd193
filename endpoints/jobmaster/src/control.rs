//! The job's status, its restarts and its end (`jobmaster-control`):
//! created while the JobMaster gathers slots, running once its tasks are
//! deployed. A failed task restarts the job from its last completed
//! checkpoint (Flink's fixed-delay restart strategy: `restart-attempts`
//! times, default 10 with checkpointing and none without, after
//! `restart-delay-ms`, default 0): restarting while the other tasks are
//! canceled, then running again. Once out of attempts it is failing, and
//! failed when no task runs; cancelled likewise; finished when every task
//! finished. The end is reported to the Dispatcher that started the
//! JobMaster (settings `dispatcher`, its address, and `dispatcher-session`,
//! its leader session), as Flink's `JobManagerRunner` completes its result
//! future.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exports::weir::flink::jobmaster_control::Guest;
use crate::handover::{self, spawn_busy};
use crate::weir::flink::dispatcher_client::DispatcherGateway;
use crate::weir::flink::types::{JobDetails, JobMilestone, JobResult, JobStatus};
use crate::{JobMaster, checkpoints, inputs, job, milestones, tasks};
use weir_guest::Uuid;

thread_local! {
    static STATUS: Cell<JobStatus> = const { Cell::new(JobStatus::Created) };
    /// Why the job fails, once a task failed.
    static FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// When the JobMaster started the job, in milliseconds since the epoch.
    static STARTED: Cell<u64> = const { Cell::new(0) };
    static RESTARTS: Cell<u32> = const { Cell::new(0) };
    /// When the job entered each status it reached, in the order last
    /// reached.
    static TIMESTAMPS: RefCell<Vec<(JobStatus, u64)>> = const { RefCell::new(Vec::new()) };
}

/// The restarts a failed job may make.
fn restart_attempts() -> u32 {
    let default = if weir_guest::config("checkpoint-interval-ms").is_some() { 10 } else { 0 };
    weir_guest::config("restart-attempts").and_then(|attempts| attempts.parse().ok()).unwrap_or(default)
}

/// Starts the job's clock: it is created.
pub fn start() {
    STARTED.set(weir_guest::epoch_millis());
    stamp(status());
}

/// Notes that the job entered `status` now.
fn stamp(status: JobStatus) {
    TIMESTAMPS.with(|all| {
        let mut all = all.borrow_mut();
        all.retain(|(reached, _)| *reached != status);
        all.push((status, weir_guest::epoch_millis()));
    });
}

pub fn status() -> JobStatus {
    STATUS.get()
}

/// How many times the job restarted after failures.
pub fn restarts() -> u32 {
    RESTARTS.get()
}

/// Whether the job has ended.
pub fn ended() -> bool {
    matches!(status(), JobStatus::Finished | JobStatus::Failed | JobStatus::Canceled | JobStatus::Suspended)
}

/// How a status reads in the log.
pub fn name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Initializing => "INITIALIZING",
        JobStatus::Created => "CREATED",
        JobStatus::Running => "RUNNING",
        JobStatus::Failing => "FAILING",
        JobStatus::Failed => "FAILED",
        JobStatus::Cancelling => "CANCELLING",
        JobStatus::Canceled => "CANCELED",
        JobStatus::Finished => "FINISHED",
        JobStatus::Restarting => "RESTARTING",
        JobStatus::Suspended => "SUSPENDED",
    }
}

/// Moves the job to `to`, as Flink logs it.
pub fn switch(to: JobStatus) {
    let from = STATUS.replace(to);
    stamp(to);
    weir_guest::info!("job {} switched from {} to {}", job(), name(from), name(to));
    milestones::changed();
}

/// A task failed: the job restarts once its other tasks are canceled, or,
/// out of restarts, fails.
pub fn fail(cause: String) {
    if ended() || matches!(status(), JobStatus::Failing | JobStatus::Cancelling | JobStatus::Restarting) {
        return;
    }
    checkpoints::abort_pending("the job fails over");
    let restarts = RESTARTS.get();
    if restarts < restart_attempts() {
        RESTARTS.set(restarts + 1);
        let from = checkpoints::latest().map_or("its start".to_owned(), |c| format!("checkpoint {}", c.id));
        weir_guest::warn!("restarting job {} from {from} (restart {}): {cause}", job(), restarts + 1);
        switch(JobStatus::Restarting);
    } else {
        FAILURE.with(|failure| *failure.borrow_mut() = Some(cause));
        switch(JobStatus::Failing);
    }
    tasks::cancel_all();
}

/// Acts once no task of the job runs: a failing or cancelling job ends, a
/// restarting one deploys its tasks again; a running one ends once all
/// its tasks finished.
pub fn check_end() {
    if ended() || tasks::live() > 0 {
        return;
    }
    match status() {
        JobStatus::Failing => end(JobStatus::Failed),
        JobStatus::Cancelling => end(JobStatus::Canceled),
        JobStatus::Restarting => spawn_busy("restarting the job", async {
            let delay = weir_guest::config("restart-delay-ms").and_then(|ms| ms.parse().ok()).unwrap_or(0);
            if delay > 0 {
                weir_guest::sleep(Duration::from_millis(delay)).await;
            }
            tasks::deploy().await;
        }),
        JobStatus::Running if tasks::all_finished() => end(JobStatus::Finished),
        _ => {}
    }
}

/// Cancels the job: its tasks are canceled, and it ends canceled.
pub fn cancel() -> Result<(), String> {
    match status() {
        _ if ended() => return Err(format!("job {} is already {}", job(), name(status()).to_lowercase())),
        JobStatus::Cancelling => return Ok(()),
        _ => {}
    }
    weir_guest::info!("cancelling job {}", job());
    checkpoints::abort_pending("the job is cancelled");
    switch(JobStatus::Cancelling);
    tasks::cancel_all();
    check_end();
    Ok(())
}

/// The job ended: says so and tells the Dispatcher.
fn end(status: JobStatus) {
    checkpoints::abort_pending("the job ended");
    switch(status);
    let failure = FAILURE.with(|failure| failure.borrow().clone());
    match (&failure, status) {
        (Some(why), JobStatus::Failed) => weir_guest::error!("job {} failed: {why}", job()),
        _ => weir_guest::info!("job {} {}", job(), name(status).to_lowercase()),
    }
    let runtime_ms = weir_guest::epoch_millis().saturating_sub(STARTED.get());
    let (checkpoints, restarts) = (checkpoints::completed(), RESTARTS.get());
    let result = JobResult { id: job(), status, failure, runtime_ms, checkpoints, restarts };
    spawn_busy("reporting the job's end to its Dispatcher", report(result, details()));
}

/// Where the job is.
pub fn details() -> JobDetails {
    let (tasks, running) = tasks::counts();
    let (input_bytes, input_assigned) = inputs::progress();
    JobDetails {
        status: status(),
        tasks,
        running,
        checkpoints: checkpoints::completed(),
        restarts: RESTARTS.get(),
        input_bytes,
        input_assigned,
        records_read: inputs::records_read(),
        vertices: tasks::vertices(),
        timestamps: TIMESTAMPS.with(|all| all.borrow().clone()),
    }
}

/// The Dispatcher that started this JobMaster (settings `dispatcher` and
/// `dispatcher-session`), connected.
pub async fn dispatcher() -> Result<DispatcherGateway, String> {
    let address = weir_guest::config("dispatcher").ok_or("no Dispatcher started this JobMaster")?;
    let session = weir_guest::config("dispatcher-session").and_then(|id| Uuid::parse(&id));
    DispatcherGateway::connect(address.clone(), session)
        .await
        .map_err(|error| format!("cannot reach the Dispatcher {address}: {error}"))
}

/// Tells the Dispatcher how the job ended, and its `last` details, if a
/// Dispatcher started it.
async fn report(result: JobResult, last: JobDetails) {
    if weir_guest::config("dispatcher").is_none() {
        return;
    }
    match dispatcher().await {
        Ok(dispatcher) => dispatcher.job_reached_terminal_state(result, last).await,
        Err(why) => weir_guest::warn!("cannot tell how job {} ended: {why}", job()),
    }
}

/// The job's status and history, as a JobMaster hands them over.
#[derive(Serialize, Deserialize)]
pub struct Handed {
    status: u8,
    failure: Option<String>,
    started_ms: u64,
    restarts: u32,
    timestamps: Vec<(u8, u64)>,
}

pub fn hand_over() -> Handed {
    Handed {
        status: status() as u8,
        failure: FAILURE.with(|failure| failure.borrow().clone()),
        started_ms: STARTED.get(),
        restarts: RESTARTS.get(),
        timestamps: TIMESTAMPS.with(|all| all.borrow().iter().map(|&(status, at)| (status as u8, at)).collect()),
    }
}

pub fn take_up(handed: Handed) -> Result<(), String> {
    let timestamps = handed.timestamps.into_iter().map(|(status, at)| Ok((handover::job_status(status)?, at)));
    let timestamps = timestamps.collect::<Result<_, String>>()?;
    STATUS.set(handover::job_status(handed.status)?);
    FAILURE.with(|failure| *failure.borrow_mut() = handed.failure);
    STARTED.set(handed.started_ms);
    RESTARTS.set(handed.restarts);
    TIMESTAMPS.with(|all| *all.borrow_mut() = timestamps);
    Ok(())
}

impl Guest for JobMaster {
    async fn cancel() -> Result<(), String> {
        cancel()
    }

    fn request_job_status() -> JobStatus {
        status()
    }

    fn request_job_details() -> JobDetails {
        details()
    }

    async fn await_job_details(milestone: JobMilestone, timeout_ms: u64) -> JobDetails {
        milestones::details_at(milestone, Duration::from_millis(timeout_ms)).await
    }
}
