//! The embedded cluster: one host running a ResourceManager and a
//! Dispatcher, each under leader election, and TaskExecutors, all from
//! the control plane's components; the Dispatcher starts a JobMaster per
//! job from the component the host is given under `jobmaster`. A client
//! of its Dispatcher submits jobs and follows them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::Val;
use weir::{
    Endpoint, EndpointComponent, EndpointOptions, Engine, FencingToken, GatewayClient, HaConfig, HostConfig,
    LeadershipRunner, LentDirectory, RpcService, Value,
};

use super::settings::Settings;
use crate::Error;

const DISPATCHER: &str = "weir:flink/dispatcher@0.1.0";

pub struct EmbeddedCluster {
    host: RpcService,
    resource_manager: LeadershipRunner,
    dispatcher: LeadershipRunner,
    task_executors: Vec<Endpoint>,
    /// Where checkpoints are kept while it runs, unless
    /// `state.checkpoints.dir` says; removed at its end.
    work: PathBuf,
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
}

/// A job's end.
pub struct Outcome {
    pub status: String,
    pub failure: Option<String>,
    pub checkpoints: u64,
    pub restarts: u64,
}

fn options(settings: Vec<(&str, String)>, directories: Vec<LentDirectory>) -> EndpointOptions {
    let config = settings.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
    EndpointOptions { config, directories, ..EndpointOptions::default() }
}

/// The control plane's components, compiled.
pub struct ControlPlane {
    engine: Engine,
    dispatcher: EndpointComponent,
    job_master: EndpointComponent,
    resource_manager: EndpointComponent,
    task_executor: EndpointComponent,
}

impl ControlPlane {
    /// Compiles the components in `directory`, or maps them compiled from
    /// `compile_cache`.
    pub fn load(directory: &Path, compile_cache: Option<&Path>) -> Result<Self, Error> {
        let engine =
            Engine::new(&HostConfig { compile_cache: compile_cache.map(Path::to_owned), ..HostConfig::default() })?;
        let load = |name: &str| -> Result<EndpointComponent, Error> {
            let path = directory.join(format!("{name}.wasm"));
            if !path.exists() {
                return Err(format!(
                    "the control plane's component {} is missing: build the endpoints (`scripts/demo` does) \
                     or point `--components` at them",
                    path.display()
                )
                .into());
            }
            Ok(engine.load_file(&path)?)
        };
        Ok(Self {
            dispatcher: load("dispatcher")?,
            job_master: load("jobmaster")?,
            resource_manager: load("resourcemanager")?,
            task_executor: load("taskexecutor")?,
            engine,
        })
    }
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

impl EmbeddedCluster {
    /// Starts a cluster of `components` whose TaskExecutors have `slots`
    /// slots each, and waits until they are registered and the Dispatcher
    /// leads.
    pub async fn start(settings: &Settings, components: &ControlPlane, slots: u32) -> Result<Self, Error> {
        let host = RpcService::builder(HostConfig::default(), components.engine.clone())
            .ha(HaConfig::Embedded)
            .heartbeat(settings.heartbeat)
            .component("jobmaster", components.job_master.clone())
            .build()?;
        host.ha().ready().await?;

        let election = host.ha().leader_election("resource-manager")?;
        let resource_manager = components.resource_manager.clone();
        let resource_manager = LeadershipRunner::start(
            host.clone(),
            election,
            "resourcemanager",
            resource_manager,
            options(vec![], vec![]),
        );

        let data: Vec<String> = settings.data_dirs.iter().map(|dir| dir.display().to_string()).collect();
        let mut task_executors = Vec::new();
        for index in 1..=settings.task_managers {
            let lent = settings.data_dirs.iter().map(|dir| LentDirectory::same_path(dir, true)).collect();
            let task_directories = data.iter().map(|dir| format!("{dir} writable")).collect::<Vec<_>>().join("\n");
            let settings = vec![("slots", slots.to_string()), ("task-directories", task_directories)];
            let id = format!("taskmanager-{index}");
            task_executors.push(host.start(&id, &components.task_executor, options(settings, lent)).await?);
        }

        let work = settings.tmp_dir.join(format!("weir-cluster-{}", std::process::id()));
        let checkpoints = settings.checkpoint_dir.clone().unwrap_or_else(|| work.join("checkpoints"));
        std::fs::create_dir_all(&checkpoints).map_err(|e| format!("cannot create {}: {e}", checkpoints.display()))?;
        let mut lent = vec![LentDirectory { host: checkpoints, guest: "/checkpoints".into(), writable: true }];
        lent.extend(settings.data_dirs.iter().map(|dir| LentDirectory::same_path(dir, false)));
        let mut dispatcher_settings =
            vec![("job-directories", data.join("\n")), ("checkpoints", "/checkpoints".to_owned())];
        if let Some(attempts) = settings.restart_attempts {
            dispatcher_settings.push(("restart-attempts", attempts.to_string()));
        }
        dispatcher_settings.push(("restart-delay-ms", settings.restart_delay.as_millis().to_string()));
        let election = host.ha().leader_election("dispatcher")?;
        let dispatcher = LeadershipRunner::start(
            host.clone(),
            election,
            "dispatcher",
            components.dispatcher.clone(),
            options(dispatcher_settings, lent),
        );
        let cluster = Self { host, resource_manager, dispatcher, task_executors, work };
        cluster.wait_until_ready(settings.task_managers).await?;
        Ok(cluster)
    }

    /// Waits until the Dispatcher leads and every TaskExecutor registered.
    async fn wait_until_ready(&self, task_managers: u32) -> Result<(), Error> {
        let ready = async {
            loop {
                if self.dispatcher.leader().is_some() && self.registered().await == task_managers as usize {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .map_err(|_| "the embedded cluster did not come up within 30 s".into())
    }

    /// How many TaskExecutors the ResourceManager knows.
    async fn registered(&self) -> usize {
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
                let id = match field(&fields, "id") {
                    Some(Val::Record(id)) => {
                        FencingToken::from_u64_pair(field_number(&id, "high"), field_number(&id, "low"))
                    }
                    _ => return None,
                };
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

    /// The TaskExecutors the ResourceManager knows: each one's id, its
    /// slots, and how many of them are free.
    pub async fn task_managers(&self) -> Result<Vec<(String, u32, u32)>, Error> {
        let leader = self.resource_manager.leader().ok_or("no ResourceManager leads")?;
        let gateway = leader.fenced_gateway("weir:flink/resourcemanager@0.1.0", leader.fencing_token())?;
        let Some(Val::List(all)) = gateway.ask("request-task-managers", vec![]).await? else {
            return Err("request-task-managers answered no list".into());
        };
        let task_manager = |entry: Val| match entry {
            Val::Tuple(mut pair) if pair.len() == 2 => {
                let Val::List(slots) = pair.pop()? else { return None };
                let free = slots
                    .iter()
                    .filter(|slot| matches!(slot, Val::Record(fields) if field(fields, "allocation") == Some(Val::Option(None))))
                    .count();
                Some((text(&pair.pop()?), slots.len() as u32, free as u32))
            }
            _ => None,
        };
        all.into_iter()
            .map(|entry| task_manager(entry).ok_or_else(|| "request-task-managers answered another shape".into()))
            .collect()
    }

    fn gateway(&self) -> Result<GatewayClient, Error> {
        let leader = self.dispatcher.leader().ok_or("the Dispatcher does not lead")?;
        Ok(leader.fenced_gateway(DISPATCHER, leader.fencing_token())?)
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
        let gateway = self.gateway()?;
        let gateway = match timeout {
            Some(timeout) => gateway.with_timeout(timeout),
            None => gateway,
        };
        let args = gateway.parse_args(function, &[&job_id(id)])?;
        match gateway.ask(function, args).await? {
            Some(Val::Result(Ok(value))) => Ok(value.map(|value| *value)),
            Some(Val::Result(Err(Some(why)))) => Err(text(&why).into()),
            other => Err(format!("{function} answered {other:?}").into()),
        }
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
        Ok(Details {
            status: field_text(&fields, "status"),
            tasks: field_number(&fields, "tasks") as u32,
            running: field_number(&fields, "running") as u32,
            checkpoints: field_number(&fields, "checkpoints"),
            restarts: field_number(&fields, "restarts"),
            input_bytes: field_number(&fields, "input-bytes"),
            input_assigned: field_number(&fields, "input-assigned"),
            records_read: field_number(&fields, "records-read"),
        })
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

    /// Stops TaskExecutor `index` (from 1), as if it failed: its tasks
    /// stop, and it leaves the ResourceManager.
    pub async fn stop_task_executor(&self, index: usize) -> Result<(), Error> {
        let task_executor = self.task_executors.get(index - 1).ok_or("no such TaskExecutor")?;
        task_executor.close().await.map_err(|failure| format!("{} failed: {failure}", task_executor.id()))?;
        Ok(())
    }

    /// Stops everything and removes its working directory. JobMasters still
    /// stopping (freeing their slots) may finish first, for up to a second.
    pub async fn shutdown(self) -> Result<(), Error> {
        let job_masters_gone = async {
            while self.host.endpoints().iter().any(|endpoint| endpoint.id.starts_with("jobmaster-")) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), job_masters_gone).await;
        self.dispatcher.close().await;
        for task_executor in &self.task_executors {
            if let Err(failure) = task_executor.close().await {
                tracing::warn!("{} failed: {failure}", task_executor.id());
            }
        }
        self.resource_manager.close().await;
        let stopped = self.host.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.work);
        Ok(stopped?)
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

fn field_number(fields: &[(String, Val)], name: &str) -> u64 {
    match field(fields, name) {
        Some(Val::U64(n)) => n,
        Some(Val::U32(n)) => u64::from(n),
        _ => 0,
    }
}
