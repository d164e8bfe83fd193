//! Flink's Dispatcher: it takes jobs, checks each job's task component
//! (the host must start it as an endpoint that serves `weir:flink/task`),
//! keeps it in the job's own directory, starts a JobMaster per job under
//! the job's leader election ([`runner`]) and answers for the jobs it knows
//! ([`jobs`]): their list, status, cancellation and result
//! (`flink-components.md` §1, §6).
//!
//! It runs fenced under its own leader session. It needs a writable
//! directory lent at `/blobs` (setting `blobs` to change that), where each
//! job gets a directory `job-<id>` holding its task component, lent
//! read-only to that job's JobMaster; and the host must know the
//! JobMaster's component under the name `jobmaster`.

weir_guest::generate!({
    world: "weir:flink/dispatcher-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

mod jobs;
mod runner;

use std::rc::Rc;

use futures::channel::oneshot;

use exports::weir::flink::dispatcher::{Guest, JobOverview};
use weir::flink::task_client::TaskGateway;
use weir::flink::types::{JobDescription, JobResult, JobStatus, SubmissionError};
use weir_guest::Uuid;
use weir_guest::leadership::Contender;
use weir_guest::supervision::{Child, ChildOptions, ComponentSource};

/// The file a job's task component is kept in, in the job's directory.
const TASK_COMPONENT: &str = "task.wasm";

/// The directory job artifacts are kept in.
fn blobs() -> String {
    weir_guest::config("blobs").unwrap_or_else(|| "/blobs".to_owned())
}

/// The directory of job `id`.
fn job_directory(id: Uuid) -> String {
    format!("{}/job-{id}", blobs())
}

/// How a status reads in messages.
fn name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Initializing => "initializing",
        JobStatus::Created => "created",
        JobStatus::Running => "running",
        JobStatus::Failing => "failing",
        JobStatus::Failed => "failed",
        JobStatus::Cancelling => "cancelling",
        JobStatus::Canceled => "canceled",
        JobStatus::Finished => "finished",
        JobStatus::Restarting => "restarting",
        JobStatus::Suspended => "suspended",
    }
}

/// Keeps the job's task component in the job's directory.
fn keep(id: Uuid, component: &[u8]) -> Result<(), String> {
    let directory = job_directory(id);
    std::fs::create_dir_all(&directory)
        .and_then(|()| std::fs::write(format!("{directory}/{TASK_COMPONENT}"), component))
        .map_err(|error| format!("cannot keep the job's component in `{directory}`: {error}"))
}

/// Checks that `component` is a task component: the host starts it as an
/// endpoint, and it serves `weir:flink/task`.
async fn check(id: Uuid, component: Vec<u8>) -> Result<(), String> {
    let child = Child::start(ComponentSource::Bytes(component), ChildOptions::new(format!("check-{id}")))
        .await
        .map_err(|error| format!("the job's component does not start as an endpoint: {error}"))?;
    let served = TaskGateway::connect(child.address(), None).await;
    let stopped = child.stop().await;
    served.map_err(|error| {
        format!("the job's component is not a task component (world `weir:flink/task-endpoint`): {error}")
    })?;
    stopped.map_err(|why| format!("the job's component failed when stopped: {why}"))
}

/// Checks and keeps a job just added, then enters its leader election and
/// waits for its first JobMaster.
async fn run(description: JobDescription, component: Vec<u8>) -> Result<(), SubmissionError> {
    let id = description.id;
    keep(id, &component).map_err(SubmissionError::Failed)?;
    check(id, component).await.map_err(SubmissionError::InvalidJob)?;
    let contender = Contender::enter(&format!("job-{id}"))
        .map_err(|why| SubmissionError::Failed(format!("cannot enter the election of job {id}: {why}")))?;
    let contender = Rc::new(contender);
    jobs::with(id, |job| job.contender = Some(contender.clone()));
    let (ready, started) = oneshot::channel();
    weir_guest::spawn(runner::lead(description, contender, ready));
    match started.await {
        Ok(outcome) => outcome.map_err(SubmissionError::Failed),
        Err(_) => Err(SubmissionError::Failed(format!("the election of job {id} ended before its JobMaster started"))),
    }
}

struct Dispatcher;

impl weir_guest::Endpoint for Dispatcher {
    fn on_start() -> Result<(), String> {
        let blobs = blobs();
        std::fs::metadata(&blobs).map_err(|error| {
            format!("the Dispatcher keeps job artifacts in `{blobs}`, a writable directory it must be lent: {error}")
        })?;
        weir_guest::info!("Dispatcher started at {}", weir_guest::self_address());
        Ok(())
    }
}

impl Guest for Dispatcher {
    async fn submit_job(job: JobDescription, component: Vec<u8>) -> Result<(), SubmissionError> {
        let id = job.id;
        if let Some(status) = jobs::with(id, |known| known.result.as_ref().map(|result| result.status)) {
            let now = status.map_or("is still running".to_owned(), |status| format!("has ended ({})", name(status)));
            return Err(SubmissionError::Duplicate(format!(
                "job {id} was submitted already and {now}; submit the job under a new id"
            )));
        }
        if job.parallelism == 0 {
            return Err(SubmissionError::InvalidJob(format!("job {id} has parallelism 0; it needs at least 1")));
        }
        weir_guest::info!("received job {id} ({}), parallelism {}", job.name, job.parallelism);
        // Known from now on, so that a second submission is a duplicate.
        jobs::add(job.clone());
        let submitted = run(job, component).await;
        // A job refused before it ran leaves nothing behind; one whose
        // JobMaster did not start is kept, failed, with its cause.
        let ran = jobs::with(id, |job| job.result.is_some()).unwrap_or(false);
        if let (Err(refused), false) = (&submitted, ran) {
            weir_guest::warn!("job {id} was refused: {refused:?}");
            jobs::remove(id);
            let _ = std::fs::remove_dir_all(job_directory(id));
        }
        submitted
    }

    async fn list_jobs() -> Vec<JobOverview> {
        let mut overviews = Vec::new();
        for id in jobs::ids() {
            let status = jobs::status(id).await.unwrap_or_else(|why| {
                weir_guest::warn!("{why}");
                JobStatus::Suspended
            });
            let name = jobs::with(id, |job| job.description.name.clone()).unwrap_or_default();
            overviews.push(JobOverview { id, name, status });
        }
        overviews
    }

    async fn cancel_job(id: Uuid) -> Result<(), String> {
        let known = jobs::with(id, |job| (job.result.as_ref().map(|result| result.status), job.job_master.clone()));
        match known.ok_or_else(|| jobs::unknown(id))? {
            (Some(status), _) => Err(format!("job {id} has ended already ({})", name(status))),
            (None, None) => Err(format!("job {id} is initializing; cancel it once its JobMaster runs")),
            (None, Some(job_master)) => {
                weir_guest::info!("cancelling job {id}");
                job_master.cancel().await.map_err(|error| format!("cannot reach the JobMaster of job {id}: {error}"))?
            }
        }
    }

    async fn request_job_status(id: Uuid) -> Result<JobStatus, String> {
        jobs::status(id).await
    }

    async fn request_job_result(id: Uuid) -> Result<JobResult, String> {
        let known = jobs::with(id, |job| match &job.result {
            Some(result) => Ok(result.clone()),
            None => {
                let (waiter, result) = oneshot::channel();
                job.waiters.push(waiter);
                Err(result)
            }
        });
        match known.ok_or_else(|| jobs::unknown(id))? {
            Ok(result) => Ok(result),
            Err(result) => result.await.map_err(|_| format!("job {id} was dropped before it ended")),
        }
    }

    fn job_reached_terminal_state(outcome: JobResult) {
        jobs::finish(outcome);
    }
}

weir_guest::export!(Dispatcher);
