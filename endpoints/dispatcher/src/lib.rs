//! Flink's Dispatcher: it takes jobs, checks each job's task component as
//! it is uploaded (the host must start it as an endpoint that serves
//! `weir:flink/task`: [`uploads`]) and has it plan the job at submission,
//! holds it in memory while the job runs (its JobMaster fetches it:
//! `request-component`), starts a JobMaster per job under the job's
//! leader election ([`runner`]) and answers for the jobs it knows
//! ([`jobs`]): their list, status, cancellation and result
//! (`flink-components.md` §1, §6).
//!
//! It runs fenced under its own leader session. The host must know the
//! JobMaster's component under the name `jobmaster`. Settings
//! `job-directories` (one per line: directories it lends each JobMaster
//! read-only at the same path, where jobs' inputs are) and `checkpoints`
//! (a writable directory it is lent: each job gets `job-<id>` in it for
//! its checkpoints), `restart-attempts` and `restart-delay-ms` (the
//! JobMasters' restart strategy) and `job-store` (a writable directory it
//! is lent, where jobs outlive it: [`store`]) are optional.

weir_guest::generate!({
    world: "weir:flink/dispatcher-endpoint",
    path: ["../../wit/rpc", "../../wit/flink"],
});

mod jobs;
mod milestones;
mod runner;
mod store;
mod uploads;

use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;

use exports::weir::flink::dispatcher::{Guest, JobOverview};
use exports::weir::flink::dispatcher_checkpointing;
use weir::flink::task_client::{JobPlan, TaskGateway};
use weir::flink::types::{JobDescription, JobDetails, JobMilestone, JobResult, JobStatus, SubmissionError};
use weir_guest::Uuid;
use weir_guest::leadership::Contender;

/// The setting `name`'s non-empty lines.
fn lines(name: &str) -> Vec<String> {
    let all = weir_guest::config(name).unwrap_or_default();
    all.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect()
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

/// Asks the job's checked task component for the job's plan.
async fn plan(description: &JobDescription, task: &TaskGateway) -> Result<JobPlan, String> {
    let plan = task.plan(description.arguments.clone(), description.parallelism).await;
    let plan = plan
        .map_err(|error| format!("the job's component failed to plan the job: {error}"))?
        .map_err(|why| format!("the job's arguments are wrong: {why}"))?;
    if plan.stages.is_empty() || plan.stages.iter().any(|stage| stage.parallelism == 0) {
        return Err("the job's plan needs at least one stage, each of parallelism 1 or more".into());
    }
    Ok(plan)
}

/// Takes a planned job whose component was uploaded under `key`: known
/// from now on, so that a second submission is a duplicate; `initializing`
/// until its JobMaster runs (Flink acknowledges a job before its JobMaster
/// starts, too). Its component stays in memory while it runs, for its
/// JobMaster.
fn accept(job: JobDescription, plan: JobPlan, key: u64, retired: uploads::Retired) {
    uploads::hold(key, retired.component);
    jobs::add(job.clone(), key);
    weir_guest::spawn(run(job, plan, uploads::Artifact { key, digest: retired.digest }));
}

/// Takes up what the job store holds (a new leader's start): the results
/// of the jobs that ended, and the jobs that did not, which run again from
/// their last completed checkpoint.
async fn recover() {
    for stored in store::stored().await {
        match stored {
            store::Stored::Ended(job, result) => jobs::add_ended(job, result),
            store::Stored::Running(job, component) => {
                let id = job.id;
                weir_guest::info!("recovering job {id} ({}) from the job store", job.name);
                store::recovering(id);
                let recovered = async {
                    let key = uploads::keep(component).await?;
                    let upload = uploads::take(key).ok_or("its checked component was dropped")?;
                    let planned = plan(&job, &upload.task).await;
                    let retired = upload.retire();
                    Ok::<_, String>((planned?, key, retired))
                };
                match recovered.await {
                    Ok((plan, key, retired)) => accept(job, plan, key, retired),
                    Err(why) => {
                        weir_guest::error!("cannot recover job {id}: {why}");
                        jobs::add(job, 0);
                        jobs::fail(id, format!("it could not be recovered: {why}"));
                    }
                }
            }
        }
    }
}

/// Enters an accepted job's leader election and leads it; a job whose
/// first JobMaster does not start fails, with the cause.
async fn run(description: JobDescription, plan: JobPlan, artifact: uploads::Artifact) {
    let id = description.id;
    match Contender::enter(&format!("job-{id}")) {
        Ok(contender) => {
            let contender = Rc::new(contender);
            jobs::with(id, |job| job.contender = Some(contender.clone()));
            runner::lead(description, plan, artifact, contender).await;
        }
        Err(why) => {
            weir_guest::error!("job {id} cannot run: {why}");
            jobs::fail(id, format!("cannot enter the election of job {id}: {why}"));
        }
    }
}

struct Dispatcher;

/// A Dispatcher does not hand its jobs over yet (their records, results
/// and uploads would have to pass to the new component). Rather than
/// start fresh and forget them, it refuses a swap while it knows a job or
/// holds an upload; with neither, the new component starts fresh.
impl weir_guest::Handover for Dispatcher {
    fn snapshot() -> Result<Option<weir_guest::State>, String> {
        let (jobs, uploads) = (jobs::ids().len(), uploads::pending());
        if jobs + uploads > 0 {
            return Err(format!(
                "it knows {jobs} job(s) and holds {uploads} upload(s), which a Dispatcher cannot hand over yet"
            ));
        }
        Ok(None)
    }

    async fn restore(_: weir_guest::State) -> Result<(), String> {
        Err("a Dispatcher takes over no state".into())
    }
}

impl weir_guest::Endpoint for Dispatcher {
    fn on_start() -> Result<(), String> {
        weir_guest::info!("Dispatcher started at {}", weir_guest::self_address());
        weir_guest::spawn(recover());
        Ok(())
    }
}

impl Guest for Dispatcher {
    async fn upload_component(component: Vec<u8>) -> Result<u64, String> {
        uploads::keep(component).await
    }

    async fn submit_job(job: JobDescription, key: u64) -> Result<(), SubmissionError> {
        let id = job.id;
        let upload = uploads::take(key).ok_or_else(|| {
            SubmissionError::InvalidJob(format!(
                "no task component was uploaded under key {key} (or it was dropped for newer uploads): \
                 upload it with upload-component, then submit"
            ))
        })?;
        let refused = if let Some(status) = jobs::with(id, |known| known.result.as_ref().map(|result| result.status)) {
            let now = status.map_or("is still running".to_owned(), |status| format!("has ended ({})", name(status)));
            Some(SubmissionError::Duplicate(format!(
                "job {id} was submitted already and {now}; submit the job under a new id"
            )))
        } else if job.parallelism == 0 {
            Some(SubmissionError::InvalidJob(format!("job {id} has parallelism 0; it needs at least 1")))
        } else {
            None
        };
        let planned = match refused {
            Some(refused) => Err(refused),
            None => plan(&job, &upload.task).await.map_err(SubmissionError::InvalidJob),
        };
        let retired = upload.retire();
        let plan = planned.inspect_err(|refused| weir_guest::warn!("job {id} was refused: {refused:?}"))?;
        // Kept before it is acknowledged: a new leader runs it, if this
        // Dispatcher does not.
        store::persist(&job, &retired.component).await.map_err(SubmissionError::Failed)?;
        weir_guest::info!("received job {id} ({}), parallelism {}", job.name, job.parallelism);
        accept(job, plan, key, retired);
        Ok(())
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
        let job_master = jobs::job_master(id)?;
        weir_guest::info!("cancelling job {id}");
        let cancelled = job_master.control.cancel().await;
        cancelled.map_err(|error| format!("cannot reach the JobMaster of job {id}: {error}"))?
    }

    async fn request_job_status(id: Uuid) -> Result<JobStatus, String> {
        jobs::status(id).await
    }

    async fn request_job(id: Uuid) -> Result<JobDetails, String> {
        jobs::details(id).await
    }

    async fn await_job(id: Uuid, milestone: JobMilestone, timeout_ms: u64) -> Result<JobDetails, String> {
        milestones::details_at(id, milestone, Duration::from_millis(timeout_ms)).await
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

    fn job_reached_terminal_state(outcome: JobResult, last: JobDetails) {
        jobs::finish(outcome, Some(last));
    }

    fn request_component(key: u64) -> Vec<u8> {
        uploads::held(key).map(|component| component.to_vec()).unwrap_or_default()
    }
}

impl dispatcher_checkpointing::Guest for Dispatcher {
    async fn trigger_checkpoint(id: Uuid) -> Result<u64, String> {
        let triggered = jobs::job_master(id)?.checkpointing.trigger_checkpoint().await;
        triggered.map_err(|error| format!("cannot reach the JobMaster of job {id}: {error}"))?
    }

    async fn trigger_savepoint(id: Uuid, directory: Option<String>, cancel_job: bool) -> Result<String, String> {
        let triggered = jobs::job_master(id)?.checkpointing.trigger_savepoint(directory, cancel_job).await;
        triggered.map_err(|error| format!("cannot reach the JobMaster of job {id}: {error}"))?
    }
}

weir_guest::export!(Dispatcher, handover);
