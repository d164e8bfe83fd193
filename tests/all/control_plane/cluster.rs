//! A whole control plane on one host, driven through its Dispatcher: a
//! leading ResourceManager, TaskExecutors, and a leading Dispatcher lent
//! a directory of its own for checkpoints, and
//! optionally a data directory that JobMasters read input from and tasks
//! read and write.

use std::path::{Path, PathBuf};

use wasmtime::component::Val;
use weir::{Endpoint, EndpointOptions, FencingToken, GatewayClient, LeadershipRunner, LentDirectory, RpcService};
use weir_tests::gateways::{DISPATCHER, DISPATCHER_CHECKPOINTING};
use weir_tests::{artifacts, capture_logs, component, eventually, uuid};

use super::{resource_manager, slots};

/// A job to submit.
pub struct Job<'a> {
    pub id: FencingToken,
    pub name: &'a str,
    pub parallelism: u32,
    pub arguments: &'a [&'a str],
    pub checkpoint_interval_ms: Option<u64>,
    pub component: &'a [u8],
}

impl<'a> Job<'a> {
    /// A job of `component` with a fresh id, no arguments and no
    /// checkpoints.
    pub fn new(name: &'a str, parallelism: u32, component: &'a [u8]) -> Self {
        Self { id: FencingToken::random(), name, parallelism, arguments: &[], checkpoint_interval_ms: None, component }
    }
}

pub struct Cluster {
    pub host: RpcService,
    pub resource_manager: LeadershipRunner,
    dispatcher: LeadershipRunner,
    /// Removed with the cluster, closed or not.
    blobs: tempfile::TempDir,
    data: Option<PathBuf>,
}

impl Cluster {
    /// A cluster on a host of its own with two TaskExecutors of one slot
    /// each and no data directory.
    pub async fn start(name: &str) -> Self {
        let host = super::cluster_host(weir_tests::config(), weir::HaConfig::Embedded);
        let cluster = Self::on(host, name, None);
        cluster.add_task_executors(&cluster.host, name, 2).await;
        cluster
    }

    /// A cluster on `host`, without TaskExecutors yet; `data`, if any, is
    /// lent to its JobMasters (read-only) and tasks (writable).
    pub fn on(host: RpcService, name: &str, data: Option<&Path>) -> Self {
        capture_logs();
        let resource_manager = resource_manager(&host);
        let blobs = weir_tests::temp_dir(&format!("blobs-{name}"));
        let mut directories =
            vec![LentDirectory { host: blobs.path().to_owned(), guest: "/blobs".into(), writable: true }];
        let mut settings = vec![("checkpoints".to_owned(), "/blobs/checkpoints".to_owned())];
        if let Some(data) = data {
            directories.push(LentDirectory::same_path(data, false));
            settings.push(("job-directories".to_owned(), data.display().to_string()));
        }
        let options =
            EndpointOptions { directories, config: settings.into_iter().collect(), ..EndpointOptions::default() };
        let election = host.ha().leader_election("dispatcher").unwrap();
        let component = component(artifacts::DISPATCHER);
        let dispatcher = LeadershipRunner::start(host.clone(), election, "dispatcher", component, options);
        let data = data.map(Path::to_owned);
        Self { host, resource_manager, dispatcher, blobs, data }
    }

    /// Starts `count` TaskExecutors of one slot on `host` (this cluster's or
    /// another), `<name>-1`..., lending tasks the data directory, and waits
    /// until they are registered.
    pub async fn add_task_executors(&self, host: &RpcService, name: &str, count: usize) -> Vec<Endpoint> {
        self.add_task_executors_with(host, name, count, &[]).await
    }

    /// [`add_task_executors`](Self::add_task_executors) with more
    /// settings.
    pub async fn add_task_executors_with(
        &self,
        host: &RpcService,
        name: &str,
        count: usize,
        more: &[(&str, &str)],
    ) -> Vec<Endpoint> {
        let mut started = Vec::new();
        for index in 1..=count {
            let mut settings = vec![("slots".to_owned(), "1".to_owned())];
            settings.extend(more.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())));
            let mut directories = Vec::new();
            if let Some(data) = &self.data {
                directories.push(LentDirectory::same_path(data, true));
                settings.push(("task-directories".to_owned(), format!("{} writable", data.display())));
            }
            let options =
                EndpointOptions { directories, config: settings.into_iter().collect(), ..EndpointOptions::default() };
            let id = format!("{name}-{index}");
            let component = component(artifacts::TASKEXECUTOR);
            started.push(host.start(&id, &component, options).await.unwrap());
        }
        eventually("the TaskExecutors registered", || async {
            let known = slots(&self.resource_manager).await;
            started.iter().all(|te| known.contains_key(te.address())).then_some(())
        })
        .await;
        started
    }

    /// The leading Dispatcher's gateway.
    pub async fn dispatcher(&self) -> GatewayClient {
        let leader = eventually("the Dispatcher to lead", || async { self.dispatcher.leader() }).await;
        leader.fenced_gateway(DISPATCHER, leader.fencing_token()).unwrap()
    }

    /// Submits `job`; the reply.
    pub async fn submit(&self, job: &Job<'_>) -> Option<Val> {
        let arguments: Vec<String> = job.arguments.iter().map(|argument| format!("{argument:?}")).collect();
        let interval = job.checkpoint_interval_ms.map_or("none".to_owned(), |ms| format!("some({ms})"));
        let description = format!(
            "{{id: {}, name: {:?}, parallelism: {}, arguments: [{}], checkpoint-interval-ms: {interval}}}",
            job_id(job.id),
            job.name,
            job.parallelism,
            arguments.join(", ")
        );
        let dispatcher = self.dispatcher().await;
        let component = vec![Val::List(job.component.iter().copied().map(Val::U8).collect())];
        let key = match dispatcher.ask("upload-component", component).await.unwrap() {
            Some(Val::Result(Ok(Some(key)))) => key,
            // Refused as it arrived: the submission's refusal, as one
            // submission (Flink's REST `POST /jobs`) would answer.
            Some(Val::Result(Err(Some(why)))) => {
                return Some(Val::Result(Err(Some(Box::new(Val::Variant("invalid-job".into(), Some(why)))))));
            }
            other => panic!("an upload's key, got {other:?}"),
        };
        let Val::U64(key) = *key else { panic!("an upload's key, got {key:?}") };
        let args = dispatcher.parse_args("submit-job", &[&description, &key.to_string()]).unwrap();
        dispatcher.ask("submit-job", args).await.unwrap()
    }

    /// Asks `function` about job `id`; the reply.
    pub async fn ask(&self, function: &str, id: FencingToken) -> Option<Val> {
        let dispatcher = self.dispatcher().await;
        let args = dispatcher.parse_args(function, &[&job_id(id)]).unwrap();
        dispatcher.ask(function, args).await.unwrap()
    }

    /// Waits, through `await-job`, until job `id` reaches `milestone` (in
    /// WAVE) or ends, or `timeout_ms` passed; its details' fields, or the
    /// Dispatcher's refusal.
    pub async fn await_job(&self, id: FencingToken, milestone: &str, timeout_ms: u64) -> Result<Record, String> {
        let dispatcher = self.dispatcher().await;
        let args = dispatcher.parse_args("await-job", &[&job_id(id), milestone, &timeout_ms.to_string()]).unwrap();
        match dispatcher.ask("await-job", args).await.unwrap() {
            Some(Val::Result(Ok(Some(details)))) => Ok(Record::of(*details)),
            Some(Val::Result(Err(Some(why)))) => Err(text(*why)),
            other => panic!("a job's details, got {other:?}"),
        }
    }

    /// Triggers a checkpoint of job `id`; its number once it completed.
    pub async fn ask_checkpoint(&self, id: FencingToken) -> Result<u64, String> {
        let leader = eventually("the Dispatcher to lead", || async { self.dispatcher.leader() }).await;
        let checkpointing = leader.fenced_gateway(DISPATCHER_CHECKPOINTING, leader.fencing_token()).unwrap();
        let args = checkpointing.parse_args("trigger-checkpoint", &[&job_id(id)]).unwrap();
        match checkpointing.ask("trigger-checkpoint", args).await.unwrap() {
            Some(Val::Result(Ok(Some(checkpoint)))) => match *checkpoint {
                Val::U64(checkpoint) => Ok(checkpoint),
                other => panic!("a checkpoint id, got {other:?}"),
            },
            Some(Val::Result(Err(Some(why)))) => Err(text(*why)),
            other => panic!("a checkpoint's outcome, got {other:?}"),
        }
    }

    /// Job `id`'s status, if the Dispatcher knows it.
    pub async fn status(&self, id: FencingToken) -> Result<String, String> {
        match self.ask("request-job-status", id).await {
            Some(Val::Result(Ok(Some(status)))) => Ok(enum_case(*status)),
            Some(Val::Result(Err(Some(why)))) => Err(text(*why)),
            other => panic!("a job status, got {other:?}"),
        }
    }

    /// Job `id`'s result, once it ended.
    pub async fn result(&self, id: FencingToken) -> JobResult {
        let Some(Val::Result(Ok(Some(result)))) = self.ask("request-job-result", id).await else {
            panic!("no result for job {id}")
        };
        let result = Record::of(*result);
        assert_eq!(result.field("id"), &uuid(id), "the result is the job's");
        let failure = match result.field("failure") {
            Val::Option(failure) => failure.clone().map(|why| text(*why)),
            other => panic!("an optional failure, got {other:?}"),
        };
        JobResult {
            status: result.status(),
            failure,
            checkpoints: result.number("checkpoints"),
            restarts: result.number("restarts"),
        }
    }

    /// The jobs `list-jobs` shows: their ids, names and statuses.
    pub async fn jobs(&self) -> Vec<(Val, String, String)> {
        let Some(Val::List(jobs)) = self.dispatcher().await.ask("list-jobs", vec![]).await.unwrap() else {
            panic!("a list of jobs")
        };
        jobs.into_iter()
            .map(|job| {
                let Val::Record(fields) = job else { panic!("a job-overview") };
                (fields[0].1.clone(), text(fields[1].1.clone()), enum_case(fields[2].1.clone()))
            })
            .collect()
    }

    /// Waits until no endpoint of the host has an id starting with `prefix`.
    pub async fn gone(&self, prefix: &str, what: &str) {
        eventually(what, || async {
            self.host.endpoints().iter().all(|endpoint| !endpoint.id.starts_with(prefix)).then_some(())
        })
        .await;
    }

    /// Waits until the ResourceManager sees every slot free.
    pub async fn slots_free(&self) {
        eventually("every slot free again", || async {
            let all = slots(&self.resource_manager).await;
            all.values().flatten().all(Option::is_none).then_some(())
        })
        .await;
    }

    /// The Dispatcher's directory, where checkpoints are kept.
    pub fn blobs(&self) -> &Path {
        self.blobs.path()
    }

    pub async fn close(self) {
        self.dispatcher.close().await;
        self.resource_manager.close().await;
    }
}

/// A record the Dispatcher answered (`job-details`, `job-result`), as a
/// test reads it.
#[derive(Debug)]
pub struct Record(Vec<(String, Val)>);

impl Record {
    fn of(value: Val) -> Self {
        match value {
            Val::Record(fields) => Self(fields),
            other => panic!("a record, got {other:?}"),
        }
    }

    fn field(&self, name: &str) -> &Val {
        &self.0.iter().find(|(field, _)| field == name).unwrap_or_else(|| panic!("no field {name}")).1
    }

    /// Its `status` field's case.
    pub fn status(&self) -> String {
        enum_case(self.field("status").clone())
    }

    /// A number field's value.
    pub fn number(&self, name: &str) -> u64 {
        match self.field(name) {
            Val::U64(n) => *n,
            Val::U32(n) => u64::from(*n),
            other => panic!("a number, got {other:?}"),
        }
    }
}

/// A job's result as a test reads it.
#[derive(Debug, PartialEq)]
pub struct JobResult {
    pub status: String,
    pub failure: Option<String>,
    pub checkpoints: u64,
    pub restarts: u64,
}

pub fn trivial_task() -> Vec<u8> {
    std::fs::read(artifacts::TRIVIAL_TASK).unwrap()
}

/// Job `id` as a `job-id` argument, in WAVE.
pub fn job_id(id: FencingToken) -> String {
    let (high, low) = id.as_u64_pair();
    format!("{{high: {high}, low: {low}}}")
}

fn enum_case(value: Val) -> String {
    let Val::Enum(case) = value else { panic!("an enum, got {value:?}") };
    case
}

pub fn text(value: Val) -> String {
    let Val::String(text) = value else { panic!("a string, got {value:?}") };
    text
}
