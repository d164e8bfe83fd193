//! The Dispatcher (`flink-components.md` §6): a job submitted with its task
//! component runs through its JobMaster, the ResourceManager and the
//! TaskExecutors to its result and frees its slots; a running job is
//! cancelled; a second submission of a job's id, a component that is no
//! task component and a job without parallelism are refused with a clear
//! error, and leave nothing behind.

use std::path::PathBuf;

use wasmtime::component::Val;
use weir::{Endpoint, EndpointOptions, FencingToken, GatewayClient, LeadershipRunner, LentDirectory, RpcService};
use weir_tests::gateways::DISPATCHER;
use weir_tests::{artifacts, component, eventually, guest_error};

use super::{slots, two_slot_cluster};

/// One host with a leading ResourceManager, two TaskExecutors of one slot
/// each and a leading Dispatcher, lent a directory of its own for job
/// artifacts.
struct Cluster {
    host: RpcService,
    resource_manager: LeadershipRunner,
    dispatcher: LeadershipRunner,
    blobs: PathBuf,
    _task_executors: [Endpoint; 2],
}

impl Cluster {
    async fn start(name: &str) -> Self {
        let (host, resource_manager, task_executors) = two_slot_cluster(name).await;
        let blobs = std::env::temp_dir().join(format!("weir-blobs-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&blobs).unwrap();
        let lent = LentDirectory { host: blobs.clone(), guest: "/blobs".into(), writable: true };
        let options = EndpointOptions { directories: vec![lent], ..EndpointOptions::default() };
        let election = host.ha().leader_election("dispatcher").unwrap();
        let component = component(artifacts::DISPATCHER);
        let dispatcher = LeadershipRunner::start(host.clone(), election, "dispatcher", component, options);
        Self { host, resource_manager, dispatcher, blobs, _task_executors: task_executors }
    }

    /// The leading Dispatcher's gateway.
    async fn dispatcher(&self) -> GatewayClient {
        let leader = eventually("the Dispatcher to lead", || async { self.dispatcher.leader() }).await;
        leader.fenced_gateway(DISPATCHER, leader.fencing_token()).unwrap()
    }

    /// Submits job `id` with `component` as its task component; the reply.
    async fn submit(&self, id: FencingToken, parallelism: u32, arguments: &[&str], component: &[u8]) -> Option<Val> {
        let (high, low) = id.as_u64_pair();
        let arguments: Vec<String> = arguments.iter().map(|argument| format!("{argument:?}")).collect();
        let description = format!(
            "{{id: {{high: {high}, low: {low}}}, name: \"trivial\", parallelism: {parallelism}, \
             arguments: [{}], checkpoint-interval-ms: none}}",
            arguments.join(", ")
        );
        let dispatcher = self.dispatcher().await;
        let mut args = dispatcher.parse_args("submit-job", &[&description, "[]"]).unwrap();
        args[1] = Val::List(component.iter().copied().map(Val::U8).collect());
        dispatcher.ask("submit-job", args).await.unwrap()
    }

    /// Asks `function` about job `id`; the reply.
    async fn ask(&self, function: &str, id: FencingToken) -> Option<Val> {
        let (high, low) = id.as_u64_pair();
        let dispatcher = self.dispatcher().await;
        let args = dispatcher.parse_args(function, &[&format!("{{high: {high}, low: {low}}}")]).unwrap();
        dispatcher.ask(function, args).await.unwrap()
    }

    /// Job `id`'s status, if the Dispatcher knows it.
    async fn status(&self, id: FencingToken) -> Result<String, String> {
        match self.ask("request-job-status", id).await {
            Some(Val::Result(Ok(Some(status)))) => Ok(enum_case(*status)),
            Some(Val::Result(Err(Some(why)))) => Err(text(*why)),
            other => panic!("a job status, got {other:?}"),
        }
    }

    /// Job `id`'s result, once it ended: its status and failure.
    async fn result(&self, id: FencingToken) -> (String, Option<String>) {
        let Some(Val::Result(Ok(Some(result)))) = self.ask("request-job-result", id).await else {
            panic!("no result for job {id}")
        };
        let Val::Record(fields) = *result else { panic!("a job-result") };
        let field = |name: &str| fields.iter().find(|(field, _)| field == name).unwrap().1.clone();
        assert_eq!(field("id"), uuid(id), "the result is the job's");
        let failure = match field("failure") {
            Val::Option(failure) => failure.map(|why| text(*why)),
            other => panic!("an optional failure, got {other:?}"),
        };
        (enum_case(field("status")), failure)
    }

    /// The jobs `list-jobs` shows: their ids and statuses.
    async fn jobs(&self) -> Vec<(Val, String)> {
        let Some(Val::List(jobs)) = self.dispatcher().await.ask("list-jobs", vec![]).await.unwrap() else {
            panic!("a list of jobs")
        };
        jobs.into_iter()
            .map(|job| {
                let Val::Record(fields) = job else { panic!("a job-overview") };
                assert_eq!(fields[1].1, Val::String("trivial".into()), "the job's name");
                (fields[0].1.clone(), enum_case(fields[2].1.clone()))
            })
            .collect()
    }

    /// Waits until no endpoint of the host has an id starting with `prefix`.
    async fn gone(&self, prefix: &str, what: &str) {
        eventually(what, || async {
            self.host.endpoints().iter().all(|endpoint| !endpoint.id.starts_with(prefix)).then_some(())
        })
        .await;
    }

    /// Waits until the ResourceManager sees every slot free.
    async fn slots_free(&self) {
        eventually("every slot free again", || async {
            let all = slots(&self.resource_manager).await;
            (all.len() == 2 && all.values().flatten().all(Option::is_none)).then_some(())
        })
        .await;
    }

    async fn close(self) {
        self.dispatcher.close().await;
        self.resource_manager.close().await;
        std::fs::remove_dir_all(&self.blobs).unwrap();
    }
}

fn trivial_task() -> Vec<u8> {
    std::fs::read(artifacts::TRIVIAL_TASK).unwrap()
}

fn uuid(id: FencingToken) -> Val {
    let (high, low) = id.as_u64_pair();
    Val::Record(vec![("high".into(), Val::U64(high)), ("low".into(), Val::U64(low))])
}

fn enum_case(value: Val) -> String {
    let Val::Enum(case) = value else { panic!("an enum, got {value:?}") };
    case
}

fn text(value: Val) -> String {
    let Val::String(text) = value else { panic!("a string, got {value:?}") };
    text
}

const SUBMITTED: Option<Val> = Some(Val::Result(Ok(None)));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_job_runs_to_its_result_and_frees_its_slots() {
    let cluster = Cluster::start("submit").await;
    let job = FencingToken::random();
    assert_eq!(cluster.submit(job, 2, &[], &trivial_task()).await, SUBMITTED);
    assert_eq!(cluster.result(job).await, ("finished".into(), None));
    assert_eq!(cluster.status(job).await, Ok("finished".into()));
    assert_eq!(cluster.jobs().await, [(uuid(job), "finished".into())]);
    // The job's JobMaster stopped with it, and gave its slots back.
    cluster.gone(&format!("jobmaster-{job}"), "the JobMaster stopped").await;
    cluster.slots_free().await;

    // So a second job gets both slots; its failure is its result's cause.
    let second = FencingToken::random();
    assert_eq!(cluster.submit(second, 2, &["--fail"], &trivial_task()).await, SUBMITTED);
    let (status, failure) = cluster.result(second).await;
    assert_eq!(status, "failed");
    assert!(failure.as_deref().is_some_and(|why| why.contains("was asked to fail")), "{failure:?}");
    let listed: Vec<_> = cluster.jobs().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, [uuid(job), uuid(second)], "both jobs, in submission order");
    cluster.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_cancelled_and_its_id_is_never_taken_twice() {
    let cluster = Cluster::start("cancel").await;
    let job = FencingToken::random();
    assert_eq!(cluster.submit(job, 2, &["--forever"], &trivial_task()).await, SUBMITTED);
    eventually("the job to run", || async { (cluster.status(job).await == Ok("running".into())).then_some(()) }).await;

    let (case, why) = guest_error(cluster.submit(job, 2, &[], &trivial_task()).await);
    assert_eq!(case, "duplicate");
    assert!(text(why).contains("submitted already and is still running"));

    assert_eq!(cluster.ask("cancel-job", job).await, SUBMITTED, "cancelled");
    assert_eq!(cluster.result(job).await, ("canceled".into(), None));
    cluster.gone("task-", "the job's tasks stopped").await;
    cluster.slots_free().await;
    let Some(Val::Result(Err(Some(why)))) = cluster.ask("cancel-job", job).await else { panic!("a refusal") };
    assert!(text(*why).contains("has ended already (canceled)"));
    // Its id stays taken once it ended.
    let (case, why) = guest_error(cluster.submit(job, 1, &[], &trivial_task()).await);
    assert_eq!((case.as_str(), text(why).contains("has ended (canceled)")), ("duplicate", true));
    cluster.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_the_cluster_cannot_run_are_refused_and_leave_nothing_behind() {
    let cluster = Cluster::start("refuse").await;
    let refusal = |reply| {
        let (case, why) = guest_error(reply);
        assert_eq!(case, "invalid-job");
        text(why)
    };
    let echo = std::fs::read(artifacts::ECHO).unwrap();
    let why = refusal(cluster.submit(FencingToken::random(), 1, &[], &echo).await);
    assert!(why.contains("not a task component (world `weir:flink/task-endpoint`)"), "{why}");
    let why = refusal(cluster.submit(FencingToken::random(), 1, &[], b"not a component").await);
    assert!(why.contains("does not start as an endpoint"), "{why}");
    let why = refusal(cluster.submit(FencingToken::random(), 0, &[], &trivial_task()).await);
    assert!(why.contains("parallelism 0; it needs at least 1"), "{why}");

    // Nothing of them is kept: no job, no artifact, no endpoint.
    assert_eq!(cluster.jobs().await, []);
    assert_eq!(std::fs::read_dir(&cluster.blobs).unwrap().count(), 0, "no artifact kept");
    cluster.gone("check-", "the checked components stopped").await;
    let unknown = FencingToken::random();
    let why = cluster.status(unknown).await.unwrap_err();
    assert!(why.contains(&format!("no job {unknown} was submitted")), "{why}");

    // And the cluster runs the next job.
    let job = FencingToken::random();
    assert_eq!(cluster.submit(job, 1, &[], &trivial_task()).await, SUBMITTED);
    assert_eq!(cluster.result(job).await, ("finished".into(), None));
    cluster.close().await;
}
