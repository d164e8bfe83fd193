//! Running one job (Flink's `JobMasterServiceLeadershipRunner`): the
//! Dispatcher contends for the job's leadership (election `job-<id>`) and,
//! for each grant, starts the job's JobMaster as a child endpoint fenced
//! by the grant's session, lent the jobs' input directories. A revocation
//! stops that JobMaster; leaving the election (the job ended) ends the
//! run; a JobMaster that fails fails its job.

use std::cell::Cell;
use std::rc::Rc;

use crate::jobs::{self, JobMasterGateways};
use crate::uploads::Artifact;
use crate::weir::flink::jobmaster_checkpointing_client::JobmasterCheckpointingGateway;
use crate::weir::flink::jobmaster_control_client::JobmasterControlGateway;
use crate::weir::flink::task_client::JobPlan;
use crate::weir::flink::types::JobDescription;
use weir_guest::Uuid;
use weir_guest::leadership::{Contender, LeadershipChange};
use weir_guest::supervision::{Child, ChildDirectory, ChildOptions, ComponentSource};

/// The name under which the host is given the JobMaster's component.
pub const JOB_MASTER_COMPONENT: &str = "jobmaster";
/// Where a JobMaster sees the cluster's checkpoint directory, which holds
/// one directory per job.
const CHECKPOINT_ROOT: &str = "/checkpoints";

/// Leads `description`'s job while `contender` is granted its leadership.
/// A JobMaster that does not start fails the job.
pub async fn lead(description: JobDescription, plan: JobPlan, artifact: Artifact, contender: Rc<Contender>) {
    let id = description.id;
    let mut running: Option<Running> = None;
    while let Some(change) = contender.next().await {
        if let Some(old) = running.take() {
            jobs::with(id, |job| job.job_master = None);
            stop(id, old).await;
        }
        let LeadershipChange::Granted(session) = change else {
            weir_guest::info!("the Dispatcher no longer leads job {id}");
            continue;
        };
        // Confirmed as soon as it runs, before the Dispatcher connects to
        // it: the ResourceManager registers the JobMaster (which registers
        // as it starts) only once its leadership is confirmed.
        let connected = async {
            let child = start(&description, &plan, &artifact, session).await?;
            contender.confirm(session, &child.address());
            let gateways = connect(&child, session).await?;
            Ok::<_, String>((child, gateways))
        };
        match connected.await {
            Ok((child, gateways)) => {
                weir_guest::info!("started the JobMaster of job {id} at {}", child.address());
                jobs::started(id, gateways);
                let started = Running { child: Rc::new(child), stopping: Rc::default() };
                weir_guest::spawn(watch(id, started.child.clone(), started.stopping.clone()));
                running = Some(started);
            }
            // A JobMaster that cannot be reached stops as its handle drops.
            Err(why) => {
                weir_guest::error!("cannot start the JobMaster of job {id}: {why}");
                jobs::fail(id, format!("its JobMaster did not start: {why}"));
            }
        }
    }
    if let Some(child) = running {
        stop(id, child).await;
    }
}

/// Starts the JobMaster of `description` (whose task component is
/// `artifact`) under `session`.
async fn start(
    description: &JobDescription,
    plan: &JobPlan,
    artifact: &Artifact,
    session: Uuid,
) -> Result<Child, String> {
    let id = description.id;
    let stages: Vec<String> = plan.stages.iter().map(|stage| format!("{} {}", stage.name, stage.parallelism)).collect();
    let mut settings = vec![
        ("job-id".to_owned(), id.to_string()),
        ("stages".to_owned(), stages.join("\n")),
        ("inputs".to_owned(), plan.inputs.join("\n")),
        ("artifact-key".to_owned(), artifact.key.to_string()),
        ("artifact-digest".to_owned(), artifact.digest.clone()),
        ("arguments".to_owned(), description.arguments.join("\n")),
        ("dispatcher".to_owned(), weir_guest::self_address()),
    ];
    if let Some(own) = weir_guest::fencing_token() {
        settings.push(("dispatcher-session".to_owned(), own.to_string()));
    }
    if crate::store::recovered(id) {
        settings.push(("recover".to_owned(), "true".to_owned()));
    }
    if let Some(interval) = description.checkpoint_interval_ms {
        settings.push(("checkpoint-interval-ms".to_owned(), interval.to_string()));
    }
    // The cluster's restart strategy, if it sets one.
    for key in ["restart-attempts", "restart-delay-ms"] {
        if let Some(value) = weir_guest::config(key) {
            settings.push((key.to_owned(), value));
        }
    }
    let mut directories = Vec::new();
    for path in crate::lines("job-directories") {
        directories.push(ChildDirectory { path: path.clone(), guest_path: path, writable: false });
    }
    if let Some(root) = weir_guest::config("checkpoints") {
        // The whole checkpoint root (created if missing), as Flink's
        // JobMaster sees all of its checkpoint storage: the JobMaster
        // creates its job's directory when it writes its first checkpoint,
        // so that a job that takes none costs no directory (creating one
        // took a quarter of a JobMaster's start) and leaves none behind.
        directories.push(ChildDirectory { path: root, guest_path: CHECKPOINT_ROOT.into(), writable: true });
        settings.push(("checkpoint-directory".to_owned(), format!("{CHECKPOINT_ROOT}/job-{id}")));
    }
    let mut options = ChildOptions::new(format!("jobmaster-{id}"));
    options.fencing_token = Some(session);
    options.settings = settings;
    options.directories = directories;
    Child::start(ComponentSource::Named(JOB_MASTER_COMPONENT.into()), options).await.map_err(|error| error.to_string())
}

/// Connects to the gateways the Dispatcher calls on JobMaster `child`.
async fn connect(child: &Child, session: Uuid) -> Result<JobMasterGateways, String> {
    let missing = |gateway: &str, error: weir_guest::RpcError| {
        format!("the `{JOB_MASTER_COMPONENT}` component does not serve `{gateway}`: {error}")
    };
    let control = JobmasterControlGateway::connect(child.address(), Some(session))
        .await
        .map_err(|error| missing("jobmaster-control", error))?;
    let checkpointing = JobmasterCheckpointingGateway::connect(child.address(), Some(session))
        .await
        .map_err(|error| missing("jobmaster-checkpointing", error))?;
    Ok(JobMasterGateways { session, control, checkpointing })
}

/// A started JobMaster.
struct Running {
    child: Rc<Child>,
    /// Set when the Dispatcher stops it: its end is then no failure.
    stopping: Rc<Cell<bool>>,
}

/// Stops a JobMaster of job `id`, waiting until it has.
async fn stop(id: Uuid, job_master: Running) {
    job_master.stopping.set(true);
    if let Err(cause) = job_master.child.stop().await {
        weir_guest::warn!("the JobMaster of job {id} failed: {cause}");
    }
}

/// Fails job `id` if its JobMaster ends before the Dispatcher stops it (a
/// trap, a limit): nobody would report the job's end.
async fn watch(id: Uuid, job_master: Rc<Child>, stopping: Rc<Cell<bool>>) {
    let outcome = job_master.terminated().await;
    if stopping.get() {
        return;
    }
    let cause = outcome.err().unwrap_or_else(|| "it stopped".to_owned());
    weir_guest::error!("the JobMaster of job {id} ended before its job: {cause}");
    jobs::fail(id, format!("its JobMaster ended: {cause}"));
}
