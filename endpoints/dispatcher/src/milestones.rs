//! Clients waiting for a point in a job's life (`await-job`): the
//! Dispatcher hands the long poll to the job's JobMaster
//! (`await-job-details`), which answers as it learns of the change. A job
//! still initializing is waited for until its JobMaster runs; one that
//! ended is answered at once, with its last details.

use std::pin::pin;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{Either, select};

use crate::jobs;
use crate::weir::flink::jobmaster_control_client::JobmasterControlGateway;
use crate::weir::flink::types::{JobDetails, JobMilestone};
use weir_guest::Uuid;

/// How much longer than the wait it asks for the Dispatcher gives a
/// JobMaster to answer (Flink's default ask timeout).
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

/// What the Dispatcher knows of a job while a client waits on it.
enum Stage {
    Ended,
    /// Its JobMaster runs at this address, with this leader session.
    Running(String, Uuid),
    /// Its JobMaster has not started yet: the receiver hears when it has.
    Initializing(oneshot::Receiver<()>),
}

fn stage(id: Uuid) -> Result<Stage, String> {
    let stage = jobs::with(id, |job| match (&job.result, &job.job_master) {
        (Some(_), _) => Stage::Ended,
        (None, Some(job_master)) => Stage::Running(job_master.control.address(), job_master.session),
        (None, None) => {
            let (started, waiter) = oneshot::channel();
            job.starting.push(started);
            Stage::Initializing(waiter)
        }
    });
    stage.ok_or_else(|| jobs::unknown(id))
}

/// Job `id`'s details once it reaches `milestone` or ends, or once
/// `timeout` passed.
pub async fn details_at(id: Uuid, milestone: JobMilestone, timeout: Duration) -> Result<JobDetails, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match stage(id)? {
            Stage::Ended => break,
            Stage::Initializing(started) => {
                if let Either::Right(_) = select(started, pin!(weir_guest::sleep(left))).await {
                    break;
                }
            }
            Stage::Running(address, session) => {
                // A handle of its own: the wait may outlast the ask timeout
                // the Dispatcher's other calls to the JobMaster keep.
                let job_master = JobmasterControlGateway::connect(address, Some(session)).await;
                let answered = match job_master {
                    Ok(job_master) => {
                        let waited = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                        let allowed = left.saturating_add(ANSWER_MARGIN);
                        job_master.set_timeout(u64::try_from(allowed.as_millis()).unwrap_or(u64::MAX));
                        job_master.await_job_details(milestone, waited).await.ok()
                    }
                    Err(_) => None,
                };
                match answered {
                    Some(details) => return Ok(jobs::with_submission(id, details)),
                    // Gone: the details say where the job is now.
                    None => break,
                }
            }
        }
    }
    jobs::details(id).await
}
