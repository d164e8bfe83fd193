//! The Dispatcher (`flink-components.md` §6): a job submitted with its task
//! component runs through its JobMaster, the ResourceManager and the
//! TaskExecutors to its result and frees its slots; a running job is
//! cancelled; a second submission of a job's id, a component that is no
//! task component and a job without parallelism are refused with a clear
//! error, and leave nothing behind; a task that never returns to the host
//! is ended by its CPU deadline and fails its job only. A client waiting
//! for a point in a job's life (`await-job`) is answered once the job gets
//! there, ends, or the wait's time is up.

use wasmtime::component::Val;
use weir::FencingToken;
use weir_tests::{artifacts, eventually, guest_error, uuid};

use super::cluster::{Cluster, Job, JobResult, text, trivial_task};

const SUBMITTED: Option<Val> = Some(Val::Result(Ok(None)));

/// A trivial job's result: finished, or how it ended.
fn ended(status: &str, failure: Option<String>) -> JobResult {
    JobResult { status: status.into(), failure, checkpoints: 0, restarts: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_job_runs_to_its_result_and_frees_its_slots() {
    let cluster = Cluster::start("submit").await;
    let component = trivial_task();
    let job = Job::new("trivial", 2, &component);
    assert_eq!(cluster.submit(&job).await, SUBMITTED);
    assert_eq!(cluster.result(job.id).await, ended("finished", None));
    assert_eq!(cluster.status(job.id).await, Ok("finished".into()));
    assert_eq!(cluster.jobs().await, [(uuid(job.id), "trivial".into(), "finished".into())]);
    // The job's JobMaster stopped with it, and gave its slots back; it
    // took no checkpoint, so it left no checkpoint directory behind.
    cluster.gone(&format!("jobmaster-{}", job.id), "the JobMaster stopped").await;
    cluster.slots_free().await;
    let checkpoints = cluster.blobs().join("checkpoints");
    let left: Vec<_> = std::fs::read_dir(&checkpoints).map(|dir| dir.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "no job directory in {}: {left:?}", checkpoints.display());

    // So a second job gets both slots; its failure is its result's cause.
    let second = Job { arguments: &["--fail"], ..Job::new("failing", 2, &component) };
    assert_eq!(cluster.submit(&second).await, SUBMITTED);
    let result = cluster.result(second.id).await;
    assert_eq!(result.status, "failed");
    assert!(result.failure.as_deref().is_some_and(|why| why.contains("was asked to fail")), "{result:?}");
    let listed: Vec<_> = cluster.jobs().await.into_iter().map(|(id, name, _)| (id, name)).collect();
    let expected = [(uuid(job.id), "trivial".to_owned()), (uuid(second.id), "failing".to_owned())];
    assert_eq!(listed, expected, "both jobs, in submission order");
    cluster.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_cancelled_and_its_id_is_never_taken_twice() {
    let cluster = Cluster::start("cancel").await;
    let component = trivial_task();
    let job = Job { arguments: &["--forever"], ..Job::new("endless", 2, &component) };
    assert_eq!(cluster.submit(&job).await, SUBMITTED);
    let id = job.id;
    eventually("the job to run", || async { (cluster.status(id).await == Ok("running".into())).then_some(()) }).await;

    let (case, why) = guest_error(cluster.submit(&Job { arguments: &[], ..job }).await);
    assert_eq!(case, "duplicate");
    assert!(text(why).contains("submitted already and is still running"));

    assert_eq!(cluster.ask("cancel-job", id).await, SUBMITTED, "cancelled");
    assert_eq!(cluster.result(id).await, ended("canceled", None));
    cluster.gone("task-", "the job's tasks stopped").await;
    cluster.slots_free().await;
    let Some(Val::Result(Err(Some(why)))) = cluster.ask("cancel-job", id).await else { panic!("a refusal") };
    assert!(text(*why).contains("has ended already (canceled)"));
    // Its id stays taken once it ended.
    let (case, why) = guest_error(cluster.submit(&Job { id, ..Job::new("again", 1, &component) }).await);
    assert_eq!((case.as_str(), text(why).contains("has ended (canceled)")), ("duplicate", true));
    cluster.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_awaiting_a_milestone_is_answered_when_the_job_gets_there_ends_or_its_time_is_up() {
    const ALL_RUNNING: &str = "{all-tasks-running: true, checkpoints: 0, restarts: 0}";
    const A_CHECKPOINT: &str = "{all-tasks-running: false, checkpoints: 1, restarts: 0}";
    let cluster = Cluster::start("await").await;
    let component = trivial_task();
    let job = Job { arguments: &["--forever"], ..Job::new("endless", 2, &component) };
    assert_eq!(cluster.submit(&job).await, SUBMITTED);
    // Asked as the job starts, answered once both its tasks run: no answer
    // before then, and none later than the long timeout.
    let running = cluster.await_job(job.id, ALL_RUNNING, 60_000).await.unwrap();
    assert_eq!(running.status(), "running");
    assert_eq!((running.number("tasks"), running.number("running")), (2, 2), "answered with both tasks running");

    // A milestone it never reaches (it takes no checkpoints): answered as
    // the time is up, with where the job is.
    let waited = cluster.await_job(job.id, A_CHECKPOINT, 50).await.unwrap();
    assert_eq!((waited.status(), waited.number("checkpoints")), ("running".into(), 0));

    // One still waiting, even for ever, is answered as the job ends.
    let waiting = cluster.await_job(job.id, A_CHECKPOINT, u64::MAX);
    let cancelled = async {
        assert_eq!(cluster.ask("cancel-job", job.id).await, SUBMITTED, "cancelled");
    };
    let (ended, ()) = tokio::join!(waiting, cancelled);
    assert_eq!(ended.unwrap().status(), "canceled");
    // Once it ended, at once; an unknown job is refused.
    let after = cluster.await_job(job.id, A_CHECKPOINT, 60_000).await.unwrap();
    assert_eq!(after.status(), "canceled");
    let unknown = FencingToken::random();
    let why = cluster.await_job(unknown, ALL_RUNNING, 60_000).await.unwrap_err();
    assert!(why.contains(&format!("no job {unknown} was submitted")), "{why}");
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
    let why = refusal(cluster.submit(&Job::new("echo", 1, &echo)).await);
    assert!(why.contains("not a task component (world `weir:flink/task-endpoint`)"), "{why}");
    let why = refusal(cluster.submit(&Job::new("garbage", 1, b"not a component")).await);
    assert!(why.contains("does not start as an endpoint"), "{why}");
    let component = trivial_task();
    let why = refusal(cluster.submit(&Job::new("empty", 0, &component)).await);
    assert!(why.contains("parallelism 0; it needs at least 1"), "{why}");
    let wordcount = std::fs::read(artifacts::WORDCOUNT).unwrap();
    let why = refusal(cluster.submit(&Job::new("no input", 1, &wordcount)).await);
    assert!(why.contains("the job's arguments are wrong: word count needs `--input PATH`"), "{why}");

    // Nothing of them is kept: no job, no file, no endpoint.
    assert_eq!(cluster.jobs().await, []);
    assert_eq!(std::fs::read_dir(cluster.blobs()).unwrap().count(), 0, "no file kept");
    cluster.gone("check-", "the checked components stopped").await;
    let unknown = FencingToken::random();
    let why = cluster.status(unknown).await.unwrap_err();
    assert!(why.contains(&format!("no job {unknown} was submitted")), "{why}");

    // And the cluster runs the next job.
    let job = Job::new("trivial", 1, &component);
    assert_eq!(cluster.submit(&job).await, SUBMITTED);
    assert_eq!(cluster.result(job.id).await, ended("finished", None));
    cluster.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_never_returns_to_the_host_fails_its_job_and_nothing_else() {
    let host = super::cluster_host(weir_tests::config(), weir::HaConfig::Embedded);
    let cluster = Cluster::on(host, "spin", None);
    let deadline = [("task-cpu-deadline-ms", "200")];
    let task_executors = cluster.add_task_executors_with(&cluster.host, "spin", 2, &deadline).await;
    let component = trivial_task();
    let job = Job { arguments: &["--spin"], ..Job::new("spinning", 2, &component) };
    assert_eq!(cluster.submit(&job).await, SUBMITTED);
    let result = cluster.result(job.id).await;
    assert_eq!(result.status, "failed");
    let failure = result.failure.unwrap_or_default();
    assert!(failure.contains("exceeded its CPU deadline of 200ms"), "{failure}");
    // Its TaskExecutors, the ResourceManager and the Dispatcher go on: the
    // next job runs.
    for task_executor in &task_executors {
        assert_eq!(task_executor.state(), weir::Lifecycle::Started, "{} still runs", task_executor.id());
    }
    let next = Job::new("trivial", 2, &component);
    assert_eq!(cluster.submit(&next).await, SUBMITTED);
    assert_eq!(cluster.result(next.id).await, ended("finished", None));
    cluster.close().await;
}
