//! Task components uploaded ahead of their jobs' submission (Flink's
//! BlobServer), each checked as it arrives: the host must load it and
//! start it as an endpoint, and it must serve `weir:flink/task`. Loaded,
//! it is known on this host by its digest (Flink's blob key), which the
//! job's TaskExecutors start its tasks from without the bytes travelling.
//! A checked component's endpoint keeps running until a submission claims
//! it, so that a submission only asks it for the job's plan. Only the last
//! [`KEPT`] unclaimed uploads are kept (their endpoints stopped as they
//! go), so uploads never submitted cannot fill the Dispatcher. A submitted
//! job's component is held in memory while the job runs, for its
//! JobMaster to fetch ([`held`]) for TaskExecutors on other hosts.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use crate::weir::flink::task_client::TaskGateway;
use weir_guest::supervision::{self, Child, ChildOptions};

/// Unclaimed uploads kept at most.
const KEPT: usize = 16;

/// A checked task component, running until its job is submitted.
pub struct Upload {
    pub component: Vec<u8>,
    /// Its digest on this host (`weir:rpc/supervision`'s `load`).
    pub digest: String,
    /// Its running instance's `task` gateway.
    pub task: TaskGateway,
    instance: Child,
}

impl Upload {
    /// Stops the checked instance (the job's tasks run in instances of
    /// their own): dropping its handle has the host stop it in the
    /// background, and log it should it fail. No task of the Dispatcher's
    /// waits for it on the submission's path.
    pub fn retire(self) -> Retired {
        let Upload { component, digest, task, instance } = self;
        drop((task, instance));
        Retired { component, digest }
    }
}

/// A submitted job's component, its checked instance stopped.
pub struct Retired {
    pub component: Vec<u8>,
    pub digest: String,
}

/// Where a job's JobMaster finds its task component: the key the
/// Dispatcher holds its bytes under (for TaskExecutors on other hosts),
/// and its digest on this host.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub key: u64,
    pub digest: String,
}

thread_local! {
    static UPLOADS: RefCell<VecDeque<(u64, Upload)>> = const { RefCell::new(VecDeque::new()) };
    static LAST_KEY: Cell<u64> = const { Cell::new(0) };
    /// The components of the jobs that run, by key, for their JobMasters.
    static CLAIMED: RefCell<BTreeMap<u64, Rc<Vec<u8>>>> = const { RefCell::new(BTreeMap::new()) };
}

/// Checks `component` and keeps it; the key that claims it, or why it is
/// no task component.
pub async fn keep(component: Vec<u8>) -> Result<u64, String> {
    let key = LAST_KEY.get() + 1;
    LAST_KEY.set(key);
    let not_endpoint =
        |error: supervision::StartError| format!("the component does not start as an endpoint: {}", error.message());
    let digest = supervision::load(component.clone()).await.map_err(not_endpoint)?;
    let options = ChildOptions::new(format!("check-{}", weir_guest::new_uuid()));
    let instance = Child::start_loaded(digest.clone(), options).await.map_err(not_endpoint)?;
    let task = match TaskGateway::connect(instance.address(), None).await {
        Ok(task) => task,
        Err(error) => {
            let _ = instance.stop().await;
            return Err(format!("the component is not a task component (world `weir:flink/task-endpoint`): {error}"));
        }
    };
    let evicted = UPLOADS.with(|uploads| {
        let mut uploads = uploads.borrow_mut();
        let evicted = if uploads.len() == KEPT { uploads.pop_front() } else { None };
        uploads.push_back((key, Upload { component, digest, task, instance }));
        evicted
    });
    if let Some((_, upload)) = evicted {
        upload.retire();
    }
    Ok(key)
}

/// Uploads not yet submitted, and components held for running jobs.
pub fn pending() -> usize {
    UPLOADS.with(|uploads| uploads.borrow().len()) + CLAIMED.with(|claimed| claimed.borrow().len())
}

/// Claims the component uploaded under `key`.
pub fn take(key: u64) -> Option<Upload> {
    UPLOADS.with(|uploads| {
        let mut uploads = uploads.borrow_mut();
        let index = uploads.iter().position(|(kept, _)| *kept == key)?;
        uploads.remove(index).map(|(_, upload)| upload)
    })
}

/// Keeps the component of a job that runs under `key`, until [`release`].
pub fn hold(key: u64, component: Vec<u8>) {
    CLAIMED.with(|claimed| claimed.borrow_mut().insert(key, Rc::new(component)));
}

/// The component a running job holds under `key`.
pub fn held(key: u64) -> Option<Rc<Vec<u8>>> {
    CLAIMED.with(|claimed| claimed.borrow().get(&key).cloned())
}

/// Drops the component held under `key`: its job ended.
pub fn release(key: u64) {
    CLAIMED.with(|claimed| claimed.borrow_mut().remove(&key));
}
