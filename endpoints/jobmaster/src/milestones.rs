//! Clients waiting for a point in the job's life (`await-job-details`):
//! a long poll, answered as the JobMaster learns that the job reached the
//! milestone the client named, or ended, or once the client's timeout
//! passed. A client polling `request-job-details` instead learns of the
//! change a poll later, and every poll meanwhile takes this JobMaster's
//! thread from the job.

use std::cell::RefCell;
use std::pin::pin;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::select;

use crate::weir::flink::types::{JobDetails, JobMilestone};
use crate::{checkpoints, control, tasks};

thread_local! {
    /// The clients waiting, each with its milestone.
    static WAITING: RefCell<Vec<(JobMilestone, oneshot::Sender<()>)>> = const { RefCell::new(Vec::new()) };
}

/// Whether the job is at or past `milestone`, or ended.
fn reached(milestone: &JobMilestone) -> bool {
    if control::ended() {
        return true;
    }
    let (tasks, running) = tasks::counts();
    (!milestone.all_tasks_running || (tasks > 0 && running == tasks))
        && checkpoints::completed() >= milestone.checkpoints
        && control::restarts() >= milestone.restarts
}

/// The job's details once it reaches `milestone` or ends, or once
/// `timeout` passed.
pub async fn details_at(milestone: JobMilestone, timeout: Duration) -> JobDetails {
    if !reached(&milestone) {
        let (sender, reached) = oneshot::channel();
        WAITING.with(|waiting| waiting.borrow_mut().push((milestone, sender)));
        select(reached, pin!(weir_guest::sleep(timeout))).await;
    }
    control::details()
}

/// What a milestone looks at changed (a task's state, the job's status,
/// a completed checkpoint): wakes the clients whose milestone the job
/// reached, and forgets those that gave up.
pub fn changed() {
    WAITING.with(|waiting| {
        let mut waiting = waiting.borrow_mut();
        if waiting.is_empty() {
            return;
        }
        let (woken, left): (Vec<_>, Vec<_>) = waiting
            .drain(..)
            .filter(|(_, sender)| !sender.is_canceled())
            .partition(|(milestone, _)| reached(milestone));
        *waiting = left;
        for (_, sender) in woken {
            // Answered as its call resumes, with the details of then.
            let _ = sender.send(());
        }
    });
}
