//! A task's side of checkpoints: triggers wait here for a source's next
//! record boundary (or a sink's commit), confirmations for the sink, and
//! every task acknowledges its state to its JobMaster.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures::channel::oneshot;

use crate::exports::weir::flink::task::TaskInfo;
use crate::weir::flink::jobmaster_checkpoints_client::JobmasterCheckpointsGateway;

thread_local! {
    static TRIGGERS: RefCell<VecDeque<u64>> = const { RefCell::new(VecDeque::new()) };
    /// The latest checkpoint the JobMaster confirmed complete.
    static COMPLETED: Cell<u64> = const { Cell::new(0) };
    /// A task waiting for a trigger or a confirmation.
    static WAITING: RefCell<Option<oneshot::Sender<()>>> = const { RefCell::new(None) };
    /// The JobMaster's checkpoint side, connected at the first
    /// acknowledgement (a task has one JobMaster for its life).
    static JOB_MASTER: RefCell<Option<Rc<JobmasterCheckpointsGateway>>> = const { RefCell::new(None) };
}

/// Notes a trigger, for the source to act on at its next record boundary
/// (or a sink waiting to commit, at once).
pub fn triggered(checkpoint: u64) {
    TRIGGERS.with(|triggers| triggers.borrow_mut().push_back(checkpoint));
    wake();
}

/// Notes that checkpoint `checkpoint` completed.
pub fn completed(checkpoint: u64) {
    COMPLETED.set(COMPLETED.get().max(checkpoint));
    wake();
}

fn wake() {
    if let Some(waiting) = WAITING.take() {
        let _ = waiting.send(());
    }
}

/// Acknowledges `state` at every checkpoint triggered from now on, until
/// one of them completes; its id. A task whose input ended commits its
/// output then (the JobMaster triggers such a task directly: no barrier
/// reaches it any more).
///
/// # Errors
///
/// If the JobMaster cannot be reached.
pub async fn until_completed(info: &TaskInfo, state: &[u8]) -> Result<u64, String> {
    let mut first = None;
    loop {
        if let Some(id) = next_trigger() {
            acknowledge(info, id, state.to_vec()).await?;
            first.get_or_insert(id);
            continue;
        }
        if first.is_some_and(|first| COMPLETED.get() >= first) {
            return Ok(COMPLETED.get());
        }
        let (waiting, woken) = oneshot::channel();
        WAITING.set(Some(waiting));
        let _ = woken.await;
    }
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
