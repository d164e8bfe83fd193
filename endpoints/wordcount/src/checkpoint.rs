//! A task's side of checkpoints: triggers wait here for a source's next
//! record boundary, and every task acknowledges its state to its
//! JobMaster.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::exports::weir::flink::task::TaskInfo;
use crate::weir::flink::jobmaster_checkpoints_client::JobmasterCheckpointsGateway;

thread_local! {
    static TRIGGERS: RefCell<VecDeque<u64>> = const { RefCell::new(VecDeque::new()) };
    /// The JobMaster's checkpoint side, connected at the first
    /// acknowledgement (a task has one JobMaster for its life).
    static JOB_MASTER: RefCell<Option<Rc<JobmasterCheckpointsGateway>>> = const { RefCell::new(None) };
}

/// Notes a trigger, for the source to act on at its next record boundary.
pub fn triggered(checkpoint: u64) {
    TRIGGERS.with(|triggers| triggers.borrow_mut().push_back(checkpoint));
}

/// The next checkpoint triggered and not yet taken.
pub fn next_trigger() -> Option<u64> {
    TRIGGERS.with(|triggers| triggers.borrow_mut().pop_front())
}

/// Acknowledges checkpoint `checkpoint` with `state` to the JobMaster.
///
/// # Errors
///
/// If the JobMaster cannot be reached.
pub async fn acknowledge(info: &TaskInfo, checkpoint: u64, state: Vec<u8>) -> Result<(), String> {
    let job_master = match JOB_MASTER.with(|connected| connected.borrow().clone()) {
        Some(job_master) => job_master,
        None => {
            let connected =
                JobmasterCheckpointsGateway::connect(info.job_master.clone(), Some(info.job_master_session))
                    .await
                    .map_err(|error| format!("cannot reach the JobMaster: {error}"))?;
            let connected = Rc::new(connected);
            JOB_MASTER.with(|slot| *slot.borrow_mut() = Some(connected.clone()));
            connected
        }
    };
    job_master.acknowledge_checkpoint(info.job, info.attempt, checkpoint, state).await;
    Ok(())
}
