//! Flink's control plane as wasm endpoints, first protocols: TaskExecutors
//! find the leading ResourceManager through leader retrieval, register with
//! the retrying registration, report their slots and answer its heartbeats
//! (`flink-components.md` §5.1, §9); the ResourceManager drops one that
//! says goodbye or is lost, and a new leader gets them all back.

use std::collections::BTreeMap;
use std::time::Duration;

use wasmtime::component::Val;
use weir::{Endpoint, EndpointOptions, HaConfig, HeartbeatConfig, HostConfig, LeadershipRunner, RpcService};
use weir_tests::gateways::RESOURCEMANAGER;
use weir_tests::{artifacts, component, config, eventually, with_config};

/// The role the ResourceManager is elected for.
const ROLE: &str = "resource-manager";

/// Quick heartbeats: a silent peer is lost after two seconds.
fn heartbeat() -> HeartbeatConfig {
    HeartbeatConfig { interval: Duration::from_millis(50), timeout: Duration::from_secs(2), rpc_failure_threshold: 2 }
}

fn cluster_host(config: HostConfig, ha: HaConfig) -> RpcService {
    RpcService::builder(config, weir_tests::engine().clone())
        .ha(ha)
        .heartbeat(heartbeat())
        .build()
        .expect("cannot create the host")
}

/// Runs the ResourceManager under leader election on `host`.
fn resource_manager(host: &RpcService) -> LeadershipRunner {
    let election = host.ha().leader_election(ROLE).unwrap();
    let component = component(artifacts::RESOURCEMANAGER);
    LeadershipRunner::start(host.clone(), election, "resourcemanager", component, EndpointOptions::default())
}

async fn task_executor(host: &RpcService, id: &str, slots: u32) -> Endpoint {
    let options = with_config(&[("slots", &slots.to_string())]);
    host.start(id, &component(artifacts::TASKEXECUTOR), options).await.unwrap()
}

/// The TaskExecutors the leading ResourceManager knows, with their slot
/// count, once its endpoint runs.
async fn registered(runner: &LeadershipRunner) -> BTreeMap<String, usize> {
    let Some(leader) = runner.leader() else { return BTreeMap::new() };
    let Ok(gateway) = leader.fenced_gateway(RESOURCEMANAGER, leader.fencing_token()) else { return BTreeMap::new() };
    let Ok(Some(Val::List(all))) = gateway.ask("request-task-managers", vec![]).await else { return BTreeMap::new() };
    all.into_iter()
        .map(|entry| {
            let Val::Tuple(parts) = entry else { panic!("a (resource-id, slots) pair") };
            let [Val::String(id), Val::List(slots)] = parts.as_slice() else { panic!("a (resource-id, slots) pair") };
            for (index, slot) in slots.iter().enumerate() {
                let Val::Record(fields) = slot else { panic!("a slot-status") };
                let Val::Record(slot_id) = &fields[0].1 else { panic!("a slot-id") };
                assert_eq!(slot_id[0].1, Val::String(id.clone()), "owned by its TaskExecutor");
                assert_eq!(slot_id[1].1, Val::U32(index as u32), "numbered from 0");
                assert_eq!(fields[2].1, Val::Option(None), "not allocated");
            }
            (id.clone(), slots.len())
        })
        .collect()
}

/// Waits until the ResourceManager knows exactly `expected`.
async fn wait_for(runner: &LeadershipRunner, expected: &[(&Endpoint, usize)], what: &str) {
    let expected: BTreeMap<String, usize> = expected.iter().map(|(te, n)| (te.address().to_owned(), *n)).collect();
    eventually(what, || async { (registered(runner).await == expected).then_some(()) }).await;
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
    let (asked, answered) = (one.stats().tells, leader.stats().tells);
    eventually("ten more heartbeat requests and answers", || async {
        (one.stats().tells >= asked + 10 && leader.stats().tells >= answered + 10).then_some(())
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

/// A free loopback port, for a host whose address others must know before
/// it starts (standalone HA names its leaders' addresses).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_executor_whose_host_dies_is_dropped_after_the_heartbeat_timeout() {
    let port = free_port();
    let leaders = BTreeMap::from([(ROLE.to_owned(), format!("weir://127.0.0.1:{port}/resourcemanager"))]);
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
    drop(doomed);
    wait_for(&rm, &[(&local, 1)], "the TaskExecutor of the dead host dropped").await;
    rm.close().await;
}
