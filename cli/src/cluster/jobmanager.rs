//! The jobmanager role (Flink's JobManager process): a ResourceManager and
//! a Dispatcher, each under leader election on a host, the Dispatcher
//! starting a JobMaster per job from the component the host is given
//! under `jobmaster`; and a client of them, which submits jobs and
//! follows them (what the REST API and the embedded cluster's own job
//! use). It runs in `weir cluster` beside TaskExecutors on the same host,
//! or alone in `weir jobmanager`, its TaskExecutors in other processes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::Val;
use weir::{
    EndpointComponent, EndpointOptions, FencingToken, GatewayClient, KindSwapError, LeadershipRunner, LentDirectory,
    RpcService, SwapError, SwapOptions, SwapReport, Value,
};

use super::embedded::ControlPlane;
use super::settings::Settings;
use crate::Error;

const DISPATCHER: &str = "weir:flink/dispatcher@0.1.0";
const CHECKPOINTING: &str = "weir:flink/dispatcher-checkpointing@0.1.0";

pub struct JobManager {
    host: RpcService,
    resource_manager: LeadershipRunner,
    dispatcher: LeadershipRunner,
    /// Where checkpoints are kept while it runs, unless
    /// `state.checkpoints.dir` says; removed at its end.
    work: PathBuf,
    /// Where the jobs' checkpoints and savepoints are: a directory per job.
    checkpoints: PathBuf,
}

/// A job's progress.
pub struct Details {
    pub status: String,
    pub tasks: u32,
    pub running: u32,
    pub checkpoints: u64,
    pub restarts: u64,
    pub input_bytes: u64,
    pub input_assigned: u64,
    pub records_read: u64,
    pub vertices: Vec<Vertex>,
    /// When the job entered each status it reached, in milliseconds since
    /// the epoch, in the order last reached.
    pub timestamps: Vec<(String, u64)>,
}

impl Details {
    /// Whether every task of the job's current run runs.
    pub fn all_running(&self) -> bool {
        self.tasks > 0 && self.running == self.tasks
    }

    /// The details a Dispatcher answered, as record fields.
    fn from_fields(fields: &[(String, Val)]) -> Self {
        Self {
            status: field_text(fields, "status"),
            tasks: field_number(fields, "tasks") as u32,
            running: field_number(fields, "running") as u32,
            checkpoints: field_number(fields, "checkpoints"),
            restarts: field_number(fields, "restarts"),
            input_bytes: field_number(fields, "input-bytes"),
            input_assigned: field_number(fields, "input-assigned"),
            records_read: field_number(fields, "records-read"),
            vertices: field_list(fields, "vertices").iter().filter_map(vertex).collect(),
            timestamps: field_list(fields, "timestamps").iter().filter_map(counted).collect(),
        }
    }
}

/// A point in a job's life to wait for ([`JobManager::await_job`]): reached
/// once all that it names holds.
#[derive(Clone, Copy, Default)]
pub struct Milestone {
    /// Every task of the job's current run runs.
    pub all_tasks_running: bool,
    /// At least this many checkpoints completed.
    pub checkpoints: u64,
    /// At least this many restarts after failures.
    pub restarts: u64,
}

impl Milestone {
    /// Whether a job with `details` is at or past it.
    pub fn reached_by(&self, details: &Details) -> bool {
        (!self.all_tasks_running || details.all_running())
            && details.checkpoints >= self.checkpoints
            && details.restarts >= self.restarts
    }
}

/// A stage of a job (Flink's job vertex): how many of its subtasks are in
/// each state.
pub struct Vertex {
    pub name: String,
    pub parallelism: u32,
    pub tasks: Vec<(String, u32)>,
}

/// A TaskExecutor the ResourceManager knows.
pub struct TaskManager {
    pub id: String,
    pub address: String,
    pub slots: u32,
    /// Its slots held for a job: the slot's index and the job.
    pub allocated: Vec<(u32, FencingToken)>,
    /// When its last heartbeat came, in milliseconds since the epoch.
    pub last_heartbeat_ms: u64,
}

impl TaskManager {
    pub fn free(&self) -> u32 {
        self.slots.saturating_sub(self.allocated.len() as u32)
    }
}

/// Whether a job in `status` has ended: finished, failed or canceled.
pub fn ended(status: &str) -> bool {
    ["finished", "failed", "canceled"].contains(&status)
}

/// A job's end.
pub struct Outcome {
    pub status: String,
    pub failure: Option<String>,
    pub checkpoints: u64,
    pub restarts: u64,
}

pub(super) fn options(settings: Vec<(&str, String)>, directories: Vec<LentDirectory>) -> EndpointOptions {
    let config = settings.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
    EndpointOptions { config, directories, ..EndpointOptions::default() }
}

/// A job as submitted: its name, parallelism, arguments and checkpoint
/// interval.
#[derive(Debug)]
pub struct JobSpec<'a> {
    pub name: &'a str,
    pub parallelism: u32,
    pub arguments: &'a [String],
    pub checkpoint_interval_ms: Option<u64>,
}

/// Runs `component` as endpoint `id` on `host` while the host leads
/// `role`, a new instance for each grant.
fn lead(
    host: &RpcService,
    role: &str,
    id: &str,
    component: &EndpointComponent,
    options: EndpointOptions,
) -> Result<LeadershipRunner, Error> {
    let election = host.ha().leader_election(role)?;
    Ok(LeadershipRunner::start(host.clone(), election, id, component.clone(), options))
}

impl JobManager {
    /// Starts a ResourceManager and a Dispatcher of `components` on
    /// `host`, each contending for its leadership; they lead once elected.
    pub fn start(host: RpcService, settings: &Settings, components: &ControlPlane) -> Result<Self, Error> {
        let resource_manager =
            lead(&host, "resource-manager", "resourcemanager", &components.resource_manager, options(vec![], vec![]))?;
        // One per jobmanager, not per process: closing one cluster must not
        // remove the directory of another the same process runs.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let started = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let work = settings.tmp_dir.join(format!("weir-cluster-{}-{started}", std::process::id()));
        // Where jobs outlive this jobmanager, if anywhere: their checkpoints
        // too, unless `state.checkpoints.dir` says.
        let storage = settings.storage_dir.as_ref();
        let checkpoints = settings.checkpoint_dir.clone().unwrap_or_else(|| match storage {
            Some(storage) => storage.join("checkpoints"),
            None => work.join("checkpoints"),
        });
        let created =
            |dir: &Path| std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()));
        created(&checkpoints)?;
        let mut lent = vec![LentDirectory { host: checkpoints.clone(), guest: "/checkpoints".into(), writable: true }];
        lent.extend(settings.data_dirs.iter().map(|dir| LentDirectory::same_path(dir, false)));
        let data: Vec<String> = settings.data_dirs.iter().map(|dir| dir.display().to_string()).collect();
        let mut dispatcher_settings =
            vec![("job-directories", data.join("\n")), ("checkpoints", "/checkpoints".to_owned())];
        if let Some(attempts) = settings.restart_attempts {
            dispatcher_settings.push(("restart-attempts", attempts.to_string()));
        }
        dispatcher_settings.push(("restart-delay-ms", settings.restart_delay.as_millis().to_string()));
        if let Some(storage) = storage {
            let jobs = storage.join("jobs");
            created(&jobs)?;
            lent.push(LentDirectory { host: jobs, guest: "/jobs".into(), writable: true });
            dispatcher_settings.push(("job-store", "/jobs".to_owned()));
        }
        let dispatcher_options = options(dispatcher_settings, lent);
        let dispatcher = lead(&host, "dispatcher", "dispatcher", &components.dispatcher, dispatcher_options)?;
        Ok(Self { host, resource_manager, dispatcher, work, checkpoints })
    }

    /// The host it runs on.
    pub fn host(&self) -> &RpcService {
        &self.host
    }

    /// Swaps the component behind endpoint `id` of its host; the
    /// ResourceManager and the Dispatcher through their leadership
    /// runners, so that the next leader session starts the new component
    /// too.
    pub async fn swap(
        &self,
        id: &str,
        component: &EndpointComponent,
        options: SwapOptions,
    ) -> Result<SwapReport, SwapError> {
        for runner in [&self.resource_manager, &self.dispatcher] {
            if runner.leader().is_some_and(|leader| leader.id() == id) {
                return runner.swap(component, options).await;
            }
        }
        self.host.swap(id, component, options).await
    }

    /// Swaps every endpoint of its host that runs the component named
    /// `running` (a kind of endpoint at once: all JobMasters, say), one
    /// after another in the order of their ids, through [`JobManager::swap`];
    /// stops at the first refusal.
    pub async fn swap_all(
        &self,
        running: &str,
        component: &EndpointComponent,
        options: SwapOptions,
    ) -> Result<Vec<SwapReport>, KindSwapError> {
        let ids = self.host.endpoints_running(running);
        weir::swap::one_after_another(running, ids, |id| async move { self.swap(&id, component, options).await }).await
    }

    /// Whether its Dispatcher leads (a standby jobmanager's does not).
    pub fn leads(&self) -> bool {
        self.dispatcher.leader().is_some()
    }

    /// The leading Dispatcher's address, as the HA services know it.
    pub fn leader_address(&self) -> Option<String> {
        let retrieval = self.host.ha().leader_retrieval("dispatcher").ok()?;
        retrieval.current().map(|leader| leader.address)
    }

    /// How many TaskExecutors the ResourceManager knows.
    pub async fn registered(&self) -> usize {
        self.task_managers().await.map_or(0, |all| all.len())
    }

    /// Every job the Dispatcher knows, in submission order: its id, name
    /// and status.
    pub async fn jobs(&self) -> Result<Vec<(FencingToken, String, String)>, Error> {
        let Some(Val::List(jobs)) = self.gateway()?.ask("list-jobs", vec![]).await? else {
            return Err("list-jobs answered no list".into());
        };
        let overview = |job: Val| match job {
            Val::Record(fields) => {
                let id = token(&field(&fields, "id")?)?;
                Some((id, field_text(&fields, "name"), field_text(&fields, "status")))
            }
            _ => None,
        };
        jobs.into_iter()
            .map(|job| overview(job).ok_or_else(|| "list-jobs answered a job of another shape".into()))
            .collect()
    }

    /// Cancels job `id`; returns once the cancellation began.
    pub async fn cancel(&self, id: FencingToken) -> Result<(), Error> {
        self.ask_about("cancel-job", id, None).await.map(drop)
    }

    /// The TaskExecutors the ResourceManager knows: each one's id, address,
    /// slots, the slots held for jobs, and its last heartbeat.
    pub async fn task_managers(&self) -> Result<Vec<TaskManager>, Error> {
        let leader = self.resource_manager.leader().ok_or("no ResourceManager leads")?;
        let gateway = leader.fenced_gateway("weir:flink/resourcemanager@0.1.0", leader.fencing_token())?;
        let Some(Val::List(all)) = gateway.ask("request-task-managers", vec![]).await? else {
            return Err("request-task-managers answered no list".into());
        };
        // A slot's index and the job it is held for, if it is.
        let allocated = |slot: &Val| {
            let Val::Record(fields) = slot else { return None };
            let Some(Val::Option(Some(allocation))) = field(fields, "allocation") else { return None };
            let Val::Tuple(pair) = *allocation else { return None };
            let index = match field(fields, "slot") {
                Some(Val::Record(slot)) => field_number(&slot, "index") as u32,
                _ => 0,
            };
            Some((index, token(pair.get(1)?)?))
        };
        let task_manager = |entry: Val| {
            let Val::Record(fields) = entry else { return None };
            let slots = field_list(&fields, "slots");
            Some(TaskManager {
                id: field_text(&fields, "resource-id"),
                address: field_text(&fields, "address"),
                slots: slots.len() as u32,
                allocated: slots.iter().filter_map(allocated).collect(),
                last_heartbeat_ms: field_number(&fields, "last-heartbeat-ms"),
            })
        };
        all.into_iter()
            .map(|entry| task_manager(entry).ok_or_else(|| "request-task-managers answered another shape".into()))
            .collect()
    }

    /// The leading Dispatcher's gateway `interface`.
    fn gateway_of(&self, interface: &str) -> Result<GatewayClient, Error> {
        let leader = self.dispatcher.leader().ok_or("the Dispatcher does not lead")?;
        Ok(leader.fenced_gateway(interface, leader.fencing_token())?)
    }

    fn gateway(&self) -> Result<GatewayClient, Error> {
        self.gateway_of(DISPATCHER)
    }

    /// Uploads a job's task component (Flink's BlobServer upload, in one
    /// copy), which the Dispatcher checks; the key a submission names it by.
    pub async fn upload(&self, component: &[u8]) -> Result<u64, Error> {
        let gateway = self.gateway()?.with_timeout(Duration::from_secs(60));
        let uploaded = gateway.ask_values("upload-component", vec![Value::Bytes(component.to_vec().into())]).await?;
        match uploaded.map(Value::into_val) {
            Some(Val::Result(Ok(Some(key)))) => match *key {
                Val::U64(key) => Ok(key),
                other => Err(format!("unexpected key from upload-component: {other:?}").into()),
            },
            Some(Val::Result(Err(Some(why)))) => Err(format!("the job's component was refused: {}", text(&why)).into()),
            other => Err(format!("unexpected answer to upload-component: {other:?}").into()),
        }
    }

    /// Submits a job whose component was uploaded under `component`;
    /// returns once the Dispatcher accepted it.
    pub async fn submit(&self, id: FencingToken, job: &JobSpec<'_>, component: u64) -> Result<(), Error> {
        let arguments: Vec<String> = job.arguments.iter().map(|argument| format!("{argument:?}")).collect();
        let interval = job.checkpoint_interval_ms.map_or("none".to_owned(), |ms| format!("some({ms})"));
        let description = format!(
            "{{id: {}, name: {:?}, parallelism: {}, arguments: [{}], checkpoint-interval-ms: {interval}}}",
            job_id(id),
            job.name,
            job.parallelism,
            arguments.join(", ")
        );
        let gateway = self.gateway()?.with_timeout(Duration::from_secs(60));
        let args = gateway.parse_args("submit-job", &[&description, &component.to_string()])?;
        match gateway.ask("submit-job", args).await? {
            Some(Val::Result(Ok(_))) => Ok(()),
            Some(Val::Result(Err(Some(error)))) => match *error {
                Val::Variant(case, Some(why)) => Err(format!("the job was refused ({case}): {}", text(&why)).into()),
                other => Err(format!("the job was refused: {other:?}").into()),
            },
            other => Err(format!("unexpected answer to submit-job: {other:?}").into()),
        }
    }

    /// Uploads `component`, then submits the job.
    pub async fn upload_and_submit(&self, id: FencingToken, job: &JobSpec<'_>, component: &[u8]) -> Result<(), Error> {
        let key = self.upload(component).await?;
        self.submit(id, job, key).await
    }

    /// Asks `function` about job `id`, waiting up to `timeout` (the host's
    /// ask timeout if none); its `ok` value, if it has one, or the
    /// Dispatcher's reason as the error.
    async fn ask_about(
        &self,
        function: &str,
        id: FencingToken,
        timeout: Option<Duration>,
    ) -> Result<Option<Val>, Error> {
        self.ask_dispatcher(DISPATCHER, function, &[&job_id(id)], timeout).await
    }

    /// Asks `function` of the Dispatcher's gateway `interface` with `args`
    /// (WAVE), waiting up to `timeout` (the host's ask timeout if none);
    /// its `ok` value, if it has one, or the Dispatcher's reason as the
    /// error.
    async fn ask_dispatcher(
        &self,
        interface: &str,
        function: &str,
        args: &[&str],
        timeout: Option<Duration>,
    ) -> Result<Option<Val>, Error> {
        let gateway = self.gateway_of(interface)?;
        let gateway = match timeout {
            Some(timeout) => gateway.with_timeout(timeout),
            None => gateway,
        };
        let args = gateway.parse_args(function, args)?;
        match gateway.ask(function, args).await? {
            Some(Val::Result(Ok(value))) => Ok(value.map(|value| *value)),
            Some(Val::Result(Err(Some(why)))) => Err(text(&why).into()),
            other => Err(format!("{function} answered {other:?}").into()),
        }
    }

    /// Takes a savepoint of job `id` into its checkpoint directory (and
    /// cancels the job if `cancel_job`); where it is, on this host.
    pub async fn trigger_savepoint(&self, id: FencingToken, cancel_job: bool) -> Result<PathBuf, Error> {
        let args = [job_id(id), "none".to_owned(), cancel_job.to_string()];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let taken = self.ask_dispatcher(CHECKPOINTING, "trigger-savepoint", &args, Some(Duration::MAX)).await?;
        let location = taken.map(|location| text(&location)).unwrap_or_default();
        // The JobMaster sees the checkpoint directory as `/checkpoints`.
        Ok(match location.strip_prefix("/checkpoints/") {
            Some(inside) => self.checkpoints.join(inside),
            None => PathBuf::from(location),
        })
    }

    /// Asks `function` about job `id`, however long it takes to answer;
    /// the `ok` value's record fields.
    async fn ask_job(&self, function: &str, id: FencingToken) -> Result<Vec<(String, Val)>, Error> {
        match self.ask_about(function, id, Some(Duration::MAX)).await? {
            Some(Val::Record(fields)) => Ok(fields),
            other => Err(format!("{function} answered {other:?}").into()),
        }
    }

    /// Where job `id` is.
    pub async fn details(&self, id: FencingToken) -> Result<Details, Error> {
        let fields = self.ask_job("request-job", id).await?;
        Ok(Details::from_fields(&fields))
    }

    /// Where job `id` is once it reaches `milestone` or ends, or once
    /// `timeout` passed: one long poll (`await-job`), answered as the
    /// JobMaster learns of the change.
    pub async fn await_job(&self, id: FencingToken, milestone: Milestone, timeout: Duration) -> Result<Details, Error> {
        let Milestone { all_tasks_running, checkpoints, restarts } = milestone;
        let milestone =
            format!("{{all-tasks-running: {all_tasks_running}, checkpoints: {checkpoints}, restarts: {restarts}}}");
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).to_string();
        // The Dispatcher answers by the timeout; the ask waits as long.
        let args = [job_id(id), milestone, timeout_ms];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match self.ask_dispatcher(DISPATCHER, "await-job", &args, Some(Duration::MAX)).await? {
            Some(Val::Record(fields)) => Ok(Details::from_fields(&fields)),
            other => Err(format!("await-job answered {other:?}").into()),
        }
    }

    /// Job `id`'s end: waits for it.
    pub async fn outcome(&self, id: FencingToken) -> Result<Outcome, Error> {
        let fields = self.ask_job("request-job-result", id).await?;
        let failure = fields.iter().find(|(name, _)| name == "failure").and_then(|(_, value)| match value {
            Val::Option(Some(why)) => Some(text(why)),
            _ => None,
        });
        Ok(Outcome {
            status: field_text(&fields, "status"),
            failure,
            checkpoints: field_number(&fields, "checkpoints"),
            restarts: field_number(&fields, "restarts"),
        })
    }

    /// Stops the Dispatcher and the ResourceManager, and removes its
    /// working directory. JobMasters still stopping (freeing their slots)
    /// may finish first, for up to a second.
    pub async fn close(self) {
        let job_masters_gone = async {
            while self.host.endpoints().iter().any(|endpoint| endpoint.id.starts_with("jobmaster-")) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), job_masters_gone).await;
        self.dispatcher.close().await;
        self.resource_manager.close().await;
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Job `id` as a `job-id` record, in WAVE.
fn job_id(id: FencingToken) -> String {
    let (high, low) = id.as_u64_pair();
    format!("{{high: {high}, low: {low}}}")
}

fn text(value: &Val) -> String {
    match value {
        Val::String(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

fn field(fields: &[(String, Val)], name: &str) -> Option<Val> {
    fields.iter().find(|(field, _)| field == name).map(|(_, value)| value.clone())
}

fn field_text(fields: &[(String, Val)], name: &str) -> String {
    match field(fields, name) {
        Some(Val::Enum(case)) => case,
        Some(other) => text(&other),
        None => String::new(),
    }
}

/// A `job-id` record's token.
fn token(id: &Val) -> Option<FencingToken> {
    let Val::Record(id) = id else { return None };
    Some(FencingToken::from_u64_pair(field_number(id, "high"), field_number(id, "low")))
}

/// A `vertex-details` record.
fn vertex(value: &Val) -> Option<Vertex> {
    let Val::Record(fields) = value else { return None };
    Some(Vertex {
        name: field_text(fields, "name"),
        parallelism: field_number(fields, "parallelism") as u32,
        tasks: field_list(fields, "tasks").iter().filter_map(counted).map(|(state, n)| (state, n as u32)).collect(),
    })
}

/// A tuple of an enum case and a number: a state and its count or time.
fn counted(value: &Val) -> Option<(String, u64)> {
    let Val::Tuple(pair) = value else { return None };
    let [Val::Enum(case), count] = pair.as_slice() else { return None };
    Some((case.clone(), number(count)?))
}

fn field_list(fields: &[(String, Val)], name: &str) -> Vec<Val> {
    match field(fields, name) {
        Some(Val::List(all)) => all,
        _ => Vec::new(),
    }
}

fn field_number(fields: &[(String, Val)], name: &str) -> u64 {
    field(fields, name).as_ref().and_then(number).unwrap_or(0)
}

/// An unsigned number, widened.
fn number(value: &Val) -> Option<u64> {
    match value {
        Val::U64(n) => Some(*n),
        Val::U32(n) => Some(u64::from(*n)),
        _ => None,
    }
}
