//! The jobs a Dispatcher knows, running and finished (Flink's running
//! `JobManagerRunner`s and its execution graph store), and their results,
//! which `request-job-result` waits for.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use futures::channel::oneshot;

use crate::weir::flink::jobmaster_checkpointing_client::JobmasterCheckpointingGateway;
use crate::weir::flink::jobmaster_control_client::JobmasterControlGateway;
use crate::weir::flink::types::{JobDescription, JobDetails, JobResult, JobStatus};
use weir_guest::Uuid;
use weir_guest::leadership::Contender;

/// What the Dispatcher calls at a job's JobMaster.
pub struct JobMasterGateways {
    /// The leader session it runs under.
    pub session: Uuid,
    pub control: JobmasterControlGateway,
    pub checkpointing: JobmasterCheckpointingGateway,
}

/// One submitted job.
pub struct Job {
    pub description: JobDescription,
    /// The key its component is held under while it runs.
    pub component: u64,
    /// The order it was submitted in, for `list-jobs`.
    pub sequence: u64,
    pub submitted: Instant,
    /// When it was submitted, in milliseconds since the epoch; not known
    /// for a job that ended before this Dispatcher started.
    pub submitted_ms: Option<u64>,
    /// Its place in the job's leader election, while it runs.
    pub contender: Option<Rc<Contender>>,
    /// Its running JobMaster's gateways, once started.
    pub job_master: Option<Rc<JobMasterGateways>>,
    /// How it ended, once it did, and its JobMaster's last details.
    pub result: Option<JobResult>,
    pub last: Option<JobDetails>,
    /// Callers of `request-job-result` waiting for its end.
    pub waiters: Vec<oneshot::Sender<JobResult>>,
    /// Callers of `await-job` waiting for its JobMaster to start; dropped
    /// when it ends first.
    pub starting: Vec<oneshot::Sender<()>>,
}

thread_local! {
    static JOBS: RefCell<BTreeMap<(u64, u64), Job>> = const { RefCell::new(BTreeMap::new()) };
    static SUBMITTED: Cell<u64> = const { Cell::new(0) };
}

fn key(id: Uuid) -> (u64, u64) {
    (id.high, id.low)
}

/// Adds a job just submitted, whose component is held under `component`;
/// its status is `initializing` until its JobMaster runs.
pub fn add(description: JobDescription, component: u64) {
    let sequence = SUBMITTED.replace(SUBMITTED.get() + 1);
    let job = Job {
        description,
        component,
        sequence,
        submitted: Instant::now(),
        submitted_ms: Some(weir_guest::epoch_millis()),
        contender: None,
        job_master: None,
        result: None,
        last: None,
        waiters: Vec::new(),
        starting: Vec::new(),
    };
    JOBS.with(|jobs| jobs.borrow_mut().insert(key(job.description.id), job));
}

/// Adds a job that ended before this Dispatcher started (the job store
/// holds its result).
pub fn add_ended(description: JobDescription, result: JobResult) {
    let id = description.id;
    add(description, 0);
    with(id, |job| (job.result, job.submitted_ms) = (Some(result), None));
}

/// Reads or changes the job `id`, if known.
pub fn with<T>(id: Uuid, act: impl FnOnce(&mut Job) -> T) -> Option<T> {
    JOBS.with(|jobs| jobs.borrow_mut().get_mut(&key(id)).map(act))
}

/// Every job's id, in submission order.
pub fn ids() -> Vec<Uuid> {
    JOBS.with(|jobs| {
        let jobs = jobs.borrow();
        let mut all: Vec<_> = jobs.values().map(|job| (job.sequence, job.description.id)).collect();
        all.sort_unstable_by_key(|(sequence, _)| *sequence);
        all.into_iter().map(|(_, id)| id).collect()
    })
}

/// The job's details: its JobMaster's, the last ones once it ended (in
/// short, from its result, if it ended before this Dispatcher started).
pub async fn details(id: Uuid) -> Result<JobDetails, String> {
    let job_master = match recorded(id)? {
        Recorded::Details(details) => return Ok(details),
        Recorded::AtJobMaster(job_master) => job_master,
    };
    match job_master.control.request_job_details().await {
        Ok(details) => Ok(with_submission(id, details)),
        // The job may have ended while its JobMaster was asked: the
        // Dispatcher then stopped it, and has its last details.
        Err(error) => match recorded(id)? {
            Recorded::Details(details) => Ok(details),
            Recorded::AtJobMaster(_) => Err(format!("cannot reach the JobMaster of job {id}: {error}")),
        },
    }
}

/// Where a job's details are.
enum Recorded {
    /// With the Dispatcher: the job ended, or its JobMaster has not started.
    Details(JobDetails),
    /// With its running JobMaster.
    AtJobMaster(Rc<JobMasterGateways>),
}

/// Where job `id`'s details are.
fn recorded(id: Uuid) -> Result<Recorded, String> {
    let known = with(id, |job| (job.result.clone(), job.last.clone(), job.job_master.clone(), job.submitted_ms));
    let (result, last, job_master, submitted_ms) = known.ok_or_else(|| unknown(id))?;
    let ended = |status, checkpoints, restarts| JobDetails {
        status,
        tasks: 0,
        running: 0,
        checkpoints,
        restarts,
        input_bytes: 0,
        input_assigned: 0,
        records_read: 0,
        vertices: Vec::new(),
        timestamps: Vec::new(),
    };
    let details = match (result, last, job_master) {
        (Some(_), Some(last), _) => last,
        (Some(result), None, _) => ended(result.status, result.checkpoints, result.restarts),
        (None, _, None) => ended(JobStatus::Initializing, 0, 0),
        (None, _, Some(job_master)) => return Ok(Recorded::AtJobMaster(job_master)),
    };
    Ok(Recorded::Details(stamp(details, submitted_ms)))
}

/// `details` of job `id` from its JobMaster, with when the job was
/// submitted.
pub fn with_submission(id: Uuid, details: JobDetails) -> JobDetails {
    let submitted_ms = with(id, |job| job.submitted_ms).flatten();
    stamp(details, submitted_ms)
}

/// The JobMaster knows its job from when it was created; the Dispatcher
/// adds when it was submitted.
fn stamp(mut details: JobDetails, submitted_ms: Option<u64>) -> JobDetails {
    if let Some(submitted) = submitted_ms {
        details.timestamps.insert(0, (JobStatus::Initializing, submitted));
    }
    details
}

/// Job `id`'s JobMaster started: wakes the callers of `await-job` that
/// waited for it.
pub fn started(id: Uuid, gateways: JobMasterGateways) {
    let starting = with(id, |job| {
        job.job_master = Some(Rc::new(gateways));
        std::mem::take(&mut job.starting)
    });
    for waiter in starting.into_iter().flatten() {
        let _ = waiter.send(());
    }
}

/// The JobMaster of job `id`, while it runs.
pub fn job_master(id: Uuid) -> Result<Rc<JobMasterGateways>, String> {
    let known = with(id, |job| (job.result.as_ref().map(|result| result.status), job.job_master.clone()));
    match known.ok_or_else(|| unknown(id))? {
        (Some(status), _) => Err(format!("job {id} has ended already ({})", crate::name(status))),
        (None, None) => Err(format!("job {id} is initializing; its JobMaster has not started yet")),
        (None, Some(job_master)) => Ok(job_master),
    }
}

/// The job's status: its result's if it ended, else its JobMaster's.
pub async fn status(id: Uuid) -> Result<JobStatus, String> {
    details(id).await.map(|details| details.status)
}

/// The error for a job this Dispatcher does not know.
pub fn unknown(id: Uuid) -> String {
    format!("no job {id} was submitted to this Dispatcher")
}

/// Records that job `id` failed for `cause` (its JobMaster did not report
/// it: it did not start, or it failed).
pub fn fail(id: Uuid, cause: String) {
    finish(
        JobResult { id, status: JobStatus::Failed, failure: Some(cause), runtime_ms: 0, checkpoints: 0, restarts: 0 },
        None,
    );
}

/// Records how the job ended, once, and its JobMaster's `last` details:
/// wakes those waiting for its result and leaves its leader election,
/// which stops its JobMaster.
pub fn finish(mut result: JobResult, last: Option<JobDetails>) {
    let id = result.id;
    let ended = with(id, |job| {
        if job.result.is_some() {
            return None;
        }
        result.runtime_ms = u64::try_from(job.submitted.elapsed().as_millis()).unwrap_or(u64::MAX);
        job.result = Some(result.clone());
        job.last = last;
        job.job_master = None;
        job.starting.clear();
        crate::uploads::release(job.component);
        Some((std::mem::take(&mut job.waiters), job.contender.take(), job.description.clone()))
    });
    let Some(Some((waiters, contender, description))) = ended else { return };
    weir_guest::info!("job {id} reached its end: {} after {} ms", crate::name(result.status), result.runtime_ms);
    crate::store::record(&description, &result);
    for waiter in waiters {
        // A waiter whose caller gave up is gone; nothing to tell.
        let _ = waiter.send(result.clone());
    }
    if let Some(contender) = contender {
        contender.leave();
    }
}
