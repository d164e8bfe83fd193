//! The job's status and its end (`jobmaster-control`): created while the
//! JobMaster gathers slots, running once its tasks are deployed, failing
//! or cancelling while their tasks are canceled, then finished, failed or
//! canceled. The end is reported to the Dispatcher that started the
//! JobMaster (settings `dispatcher`, its address, and `dispatcher-session`,
//! its leader session), as Flink's `JobManagerRunner` completes its result
//! future.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use crate::exports::weir::flink::jobmaster_control::Guest;
use crate::weir::flink::dispatcher_client::DispatcherGateway;
use crate::weir::flink::types::{JobResult, JobStatus};
use crate::{JobMaster, job, tasks};
use weir_guest::Uuid;

thread_local! {
    static STATUS: Cell<JobStatus> = const { Cell::new(JobStatus::Created) };
    /// Why the job fails, once a task failed.
    static FAILURE: RefCell<Option<String>> = const { RefCell::new(None) };
    static STARTED: Instant = Instant::now();
}

/// Starts the job's clock.
pub fn start() {
    STARTED.with(|_| ());
}

pub fn status() -> JobStatus {
    STATUS.get()
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
    weir_guest::info!("job {} switched from {} to {}", job(), name(from), name(to));
}

/// A task failed: the job fails once its other tasks are canceled.
pub fn fail(cause: String) {
    if ended() || status() == JobStatus::Failing {
        return;
    }
    FAILURE.with(|failure| *failure.borrow_mut() = Some(cause));
    switch(JobStatus::Failing);
    tasks::cancel_all();
}

/// Ends a failing or cancelling job once none of its tasks runs, and a
/// running one once all its tasks finished.
pub fn check_end() {
    if ended() || tasks::live() > 0 {
        return;
    }
    match status() {
        JobStatus::Failing => end(JobStatus::Failed),
        JobStatus::Cancelling => end(JobStatus::Canceled),
        JobStatus::Running if tasks::all_finished() => end(JobStatus::Finished),
        _ => {}
    }
}

/// The job ended: says so and tells the Dispatcher.
fn end(status: JobStatus) {
    switch(status);
    let failure = FAILURE.with(|failure| failure.borrow().clone());
    match (&failure, status) {
        (Some(why), JobStatus::Failed) => weir_guest::error!("job {} failed: {why}", job()),
        _ => weir_guest::info!("job {} {}", job(), name(status).to_lowercase()),
    }
    let runtime_ms = STARTED.with(|started| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    let result = JobResult { id: job(), status, failure, runtime_ms, checkpoints: 0, restarts: 0 };
    weir_guest::spawn(report(result));
}

/// Tells the Dispatcher how the job ended, if a Dispatcher started it.
async fn report(result: JobResult) {
    let Some(address) = weir_guest::config("dispatcher") else { return };
    let session = weir_guest::config("dispatcher-session").and_then(|id| Uuid::parse(&id));
    match DispatcherGateway::connect(address.clone(), session).await {
        Ok(dispatcher) => dispatcher.job_reached_terminal_state(result).await,
        Err(error) => weir_guest::warn!("cannot tell the Dispatcher {address} how job {} ended: {error}", job()),
    }
}

impl Guest for JobMaster {
    async fn cancel() -> Result<(), String> {
        match status() {
            _ if ended() => return Err(format!("job {} is already {}", job(), name(status()).to_lowercase())),
            JobStatus::Cancelling => return Ok(()),
            _ => {}
        }
        weir_guest::info!("cancelling job {}", job());
        switch(JobStatus::Cancelling);
        tasks::cancel_all();
        check_end();
        Ok(())
    }

    fn request_job_status() -> JobStatus {
        status()
    }
}
