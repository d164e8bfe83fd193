//! The protocols between the components, each JobMaster run under its
//! election by the test: registration, slots, heartbeats and losses,
//! deployment and a task that traps.

use std::collections::BTreeMap;

use wasmtime::component::Val;
use weir::{EndpointOptions, FencingToken, HaConfig, HostConfig, LeadershipRunner, LentDirectory, RpcService};
use weir_tests::gateways::JOBMASTER;
use weir_tests::{artifacts, capture_logs, component, config, eventually, logs, with_config};

use super::cluster::job_id;
use super::{ROLE, cluster_host, free_port, resource_manager, slots, task_executor, two_slot_cluster, wait_for};

/// Runs the JobMaster of `job`, which needs `slots`, under the job's
/// leader election on `host`.
fn job_master(host: &RpcService, job: FencingToken, slots: u32) -> LeadershipRunner {
    let election = host.ha().leader_election(&format!("job-{job}")).unwrap();
    let options = with_config(&[("job-id", &job.to_string()), ("slots", &slots.to_string())]);
    LeadershipRunner::start(host.clone(), election, "jobmaster", component(artifacts::JOBMASTER), options)
}

/// Runs the JobMaster of `job` with `slots` slots and the trivial task
/// component as its job, started with `arguments`.
fn job_master_of_trivial_job(host: &RpcService, job: FencingToken, slots: u32, arguments: &[&str]) -> LeadershipRunner {
    let election = host.ha().leader_election(&format!("job-{job}")).unwrap();
    let artifact = std::path::Path::new(artifacts::TRIVIAL_TASK);
    let settings = [
        ("job-id", job.to_string()),
        ("slots", slots.to_string()),
        ("artifact", format!("/job/{}", artifact.file_name().unwrap().to_str().unwrap())),
        ("arguments", arguments.join("\n")),
    ];
    let directory =
        LentDirectory { host: artifact.parent().unwrap().to_owned(), guest: "/job".into(), writable: false };
    let options = EndpointOptions {
        config: settings.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        directories: vec![directory],
        ..EndpointOptions::default()
    };
    LeadershipRunner::start(host.clone(), election, "jobmaster", component(artifacts::JOBMASTER), options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_executors_register_report_slots_heartbeat_and_say_goodbye() {
    let host = cluster_host(config(), HaConfig::Embedded);
    let rm = resource_manager(&host);
    let (one, two) = (task_executor(&host, "te-1", 2).await, task_executor(&host, "te-2", 3).await);
    wait_for(&rm, &[(&one, 2), (&two, 3)], "both TaskExecutors registered with their slots").await;

    // Heartbeats flow both ways: requests reach the TaskExecutors, answers
    // the ResourceManager.
    let leader = rm.leader().unwrap();
    let (asked, answered) = (one.stats().asks, leader.stats().tells);
    eventually("ten more heartbeat requests and answers", || async {
        (one.stats().asks >= asked + 10 && leader.stats().tells >= answered + 10).then_some(())
    })
    .await;

    // A TaskExecutor that stops says goodbye: no wait for a timeout.
    two.close().await.unwrap();
    wait_for(&rm, &[(&one, 2)], "the stopped TaskExecutor gone at once").await;
    rm.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_executors_register_again_with_a_new_leader() {
    let host = cluster_host(config(), HaConfig::Embedded);
    let first = resource_manager(&host);
    let (one, two) = (task_executor(&host, "te-a", 1).await, task_executor(&host, "te-b", 4).await);
    wait_for(&first, &[(&one, 1), (&two, 4)], "both registered with the first leader").await;
    let old_session = first.leader().unwrap().fencing_token();

    // The first leader steps down; the waiting contender takes over, under
    // a new session, with nothing registered until the TaskExecutors
    // follow the new leader and register again.
    let second = resource_manager(&host);
    first.close().await;
    wait_for(&second, &[(&one, 1), (&two, 4)], "both registered with the new leader").await;
    assert_ne!(second.leader().unwrap().fencing_token(), old_session, "a new leader session");
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_master_gets_the_slots_it_declares_again_after_a_task_executor_leaves() {
    capture_logs();
    let host = cluster_host(config(), HaConfig::Embedded);
    let rm = resource_manager(&host);
    let (one, two) = (task_executor(&host, "slots-1", 2).await, task_executor(&host, "slots-2", 2).await);
    wait_for(&rm, &[(&one, 2), (&two, 2)], "both TaskExecutors registered").await;

    let job = FencingToken::random();
    let jm = job_master(&host, job, 3);
    let complete = format!("job {job} has all 3 slot(s)");
    let times_complete = || logs().matches(&complete).count();
    eventually("the JobMaster to hold all three slots", || async { (times_complete() == 1).then_some(()) }).await;
    let held = |slots: BTreeMap<String, Vec<Option<String>>>| {
        slots.values().flatten().filter(|held| held.as_deref() == Some(job.to_string().as_str())).count()
    };
    eventually("the ResourceManager to see three slots allocated to the job", || async {
        (held(slots(&rm).await) == 3).then_some(())
    })
    .await;

    // The TaskExecutor with two of them leaves; a new one comes, and the
    // ResourceManager requests its slots for the job, which has all three
    // again.
    let leaving = slots(&rm).await.into_iter().max_by_key(|(_, slots)| slots.iter().flatten().count()).unwrap().0;
    let (leaving, staying) = if leaving == one.address() { (one, two) } else { (two, one) };
    leaving.close().await.unwrap();
    let three = task_executor(&host, "slots-3", 2).await;
    eventually("the JobMaster to hold all three slots again", || async { (times_complete() == 2).then_some(()) }).await;
    eventually("the ResourceManager to see it", || async {
        let now = slots(&rm).await;
        (held(now.clone()) == 3 && !now.contains_key(leaving.address()) && now.contains_key(three.address()))
            .then_some(())
    })
    .await;
    assert!(slots(&rm).await.contains_key(staying.address()));
    jm.close().await;
    rm.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_master_deploys_its_tasks_into_its_slots_and_the_job_finishes() {
    capture_logs();
    let (host, rm, _task_executors) = two_slot_cluster("run").await;
    let job = FencingToken::random();
    let jm = job_master_of_trivial_job(&host, job, 2, &[]);
    let finished = format!("job {job} finished");
    eventually("the job to finish", || async { logs().contains(&finished).then_some(()) }).await;
    let logs = logs();
    for subtask in 0..2 {
        let task = format!("task ({}/2) of job {job}", subtask + 1);
        assert!(logs.contains(&format!("{task} is running")), "subtask {subtask} ran");
        assert!(logs.contains(&format!("subtask {subtask} of 2 of job {job} runs")), "in its own task endpoint");
        assert!(logs.contains(&format!("{task} is finished")), "subtask {subtask} finished");
    }
    // Each task was a child endpoint of a TaskExecutor, stopped once it
    // ended (its report may overtake its termination).
    eventually("the tasks' endpoints to end", || async {
        host.endpoints().iter().all(|endpoint| !endpoint.id.starts_with("task-")).then_some(())
    })
    .await;
    jm.close().await;
    rm.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_traps_fails_its_job_and_nothing_else() {
    capture_logs();
    let (host, rm, [one, two]) = two_slot_cluster("trap").await;
    let job = FencingToken::random();
    let jm = job_master_of_trivial_job(&host, job, 2, &["--trap"]);
    let failed = format!("job {job} failed: task (");
    let line = eventually("the job to fail", || async {
        logs().lines().find(|line| line.contains(&failed)).map(str::to_owned)
    })
    .await;
    assert!(line.contains("deliberate trap in subtask"), "the task's trap is the job's cause: {line}");
    // The trap ended the task only: the TaskExecutors, the ResourceManager
    // and the JobMaster go on.
    for endpoint in [&one, &two] {
        assert_eq!(endpoint.state(), weir::Lifecycle::Started, "{} still runs", endpoint.id());
    }
    wait_for(&rm, &[(&one, 1), (&two, 1)], "both TaskExecutors still registered").await;
    assert!(jm.leader().is_some_and(|leader| leader.state() == weir::Lifecycle::Started));
    jm.close().await;
    rm.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_executor_whose_host_dies_is_dropped_and_its_slots_released() {
    capture_logs();
    let port = free_port();
    let job = FencingToken::random();
    let leaders = BTreeMap::from([
        (ROLE.to_owned(), format!("weir://127.0.0.1:{port}/resourcemanager")),
        (format!("job-{job}"), format!("weir://127.0.0.1:{port}/jobmaster")),
    ]);
    let ha = HaConfig::Standalone { leaders };
    let listen = |port: u16| HostConfig { listen: Some(format!("127.0.0.1:{port}")), ..config() };
    let cluster = cluster_host(listen(port), ha.clone());
    let rm = resource_manager(&cluster);
    let local = task_executor(&cluster, "te-here", 1).await;

    // The other TaskExecutor runs on a host of its own, which then dies
    // without stopping anything: its endpoints vanish, its socket closes.
    let doomed = cluster_host(listen(0), ha);
    let remote = task_executor(&doomed, "te-there", 2).await;
    wait_for(&rm, &[(&local, 1), (&remote, 2)], "both registered, one across hosts").await;
    let jm = job_master(&cluster, job, 3);
    let complete = format!("job {job} has all 3 slot(s)");
    eventually("the JobMaster to hold all three slots", || async { logs().contains(&complete).then_some(()) }).await;

    drop(doomed);
    wait_for(&rm, &[(&local, 1)], "the TaskExecutor of the dead host dropped").await;
    let released = format!("released 2 slot(s) of TaskExecutor {}", remote.address());
    eventually("the JobMaster to release the dead TaskExecutor's slots", || async {
        logs().contains(&released).then_some(())
    })
    .await;
    jm.close().await;
    rm.close().await;
}

/// Two offers of the same slot that cross (a TaskExecutor offers when it
/// registers at the JobMaster and again when a slot is allocated) are both
/// accepted, the slot counted once, as in Flink: declined, the
/// TaskExecutor would free a slot the JobMaster then deploys into (seen as
/// "no slot of job ... holds allocation" and a job restarting in a loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_offered_twice_is_accepted_both_times_and_counted_once() {
    let host = cluster_host(config(), HaConfig::Embedded);
    let te = task_executor(&host, "te-1", 2).await;
    let job = FencingToken::random();
    let jm = job_master(&host, job, 2);
    let leader = eventually("the JobMaster leads", || async { jm.leader() }).await;
    let gateway = leader.fenced_gateway(JOBMASTER, leader.fencing_token()).unwrap();
    let job_id = job_id(job);
    let registration = format!("{{address: {:?}, resource-id: \"te-1\", session: {{high: 1, low: 2}}}}", te.address());
    let args = gateway.parse_args("register-task-manager", &[&job_id, &registration]).unwrap();
    let Some(Val::Tuple(answer)) = gateway.ask("register-task-manager", args).await.unwrap() else { panic!() };
    assert!(matches!(&answer[0], Val::Variant(case, _) if case == "success"), "{answer:?}");

    let offer = |allocation: u64| {
        format!("{{allocation: {{high: 7, low: {allocation}}}, index: {allocation}, profile: {{memory-mib: 64}}}}")
    };
    let accepted = async |allocations: &[u64]| {
        let offers: Vec<String> = allocations.iter().map(|&allocation| offer(allocation)).collect();
        let args = gateway.parse_args("offer-slots", &["\"te-1\"", &format!("[{}]", offers.join(", "))]).unwrap();
        let Some(Val::Result(Ok(Some(list)))) = gateway.ask("offer-slots", args).await.unwrap() else { panic!() };
        let Val::List(list) = *list else { panic!("{list:?}") };
        let index = |offer: &Val| match offer {
            Val::Record(fields) => fields.iter().find_map(|(name, value)| match (name.as_str(), value) {
                ("index", Val::U32(index)) => Some(u64::from(*index)),
                _ => None,
            }),
            _ => None,
        };
        list.iter().filter_map(index).collect::<Vec<u64>>()
    };
    assert_eq!(accepted(&[1]).await, [1]);
    assert_eq!(accepted(&[1, 2]).await, [1, 2], "the slot offered again is accepted again, the new one too");
    assert_eq!(accepted(&[3]).await, Vec::<u64>::new(), "the job has its two slots: slot 1 counted once");
    jm.close().await;
}
