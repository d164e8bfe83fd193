//! Flink's control plane as wasm endpoints. TaskExecutors find the leading
//! ResourceManager through leader retrieval, register with the retrying
//! registration, report their slots and answer its heartbeats
//! (`flink-components.md` §5.1, §9); the ResourceManager drops one that
//! says goodbye or is lost, and a new leader gets them all back. A
//! JobMaster registers, declares the slots its job needs, and gets them
//! from TaskExecutors, again after one leaves (§5.2, §5.3, §7), then
//! deploys the job's tasks into them, each a child endpoint of its
//! TaskExecutor, and follows them to the job's end (§8): [`protocols`].
//! The Dispatcher takes jobs, refuses bad ones, starts a JobMaster for
//! each and answers for them (§6): [`dispatcher`]. `weir cluster` runs
//! them all ([`command`]) and serves Flink's REST API ([`rest`]); `weir
//! jobmanager` and `weir taskmanager` run them in processes of their own,
//! on ZooKeeper ([`processes`]).

mod cluster;
mod command;
mod dispatcher;
mod processes;
mod protocols;
mod rest;
mod wordcount;

use std::collections::BTreeMap;
use std::time::Duration;

use wasmtime::component::Val;
use weir::{
    Endpoint, EndpointOptions, FencingToken, HaConfig, HeartbeatConfig, HostConfig, LeadershipRunner,
    RegistrationConfig, RpcService,
};
use weir_tests::gateways::RESOURCEMANAGER;
use weir_tests::{artifacts, capture_logs, component, config, eventually, with_config};

/// The role the ResourceManager is elected for.
const ROLE: &str = "resource-manager";

/// Quick heartbeats: a silent peer is lost after two seconds.
fn heartbeat() -> HeartbeatConfig {
    HeartbeatConfig { interval: Duration::from_millis(50), timeout: Duration::from_secs(2), rpc_failure_threshold: 2 }
}

/// Quick retries: a JobMaster may register before its leadership is
/// confirmed, and is refused until it is.
fn registration() -> RegistrationConfig {
    let quick = Duration::from_millis(50);
    RegistrationConfig {
        initial_timeout: Duration::from_millis(500),
        max_timeout: Duration::from_secs(2),
        error_delay: quick,
        refused_delay: quick,
    }
}

/// A host for the control plane: quick heartbeats and retries, and the
/// JobMaster's component under the name a Dispatcher starts it by.
fn cluster_host(config: HostConfig, ha: HaConfig) -> RpcService {
    RpcService::builder(config, weir_tests::engine().clone())
        .component("jobmaster", component(artifacts::JOBMASTER))
        .ha(ha)
        .heartbeat(heartbeat())
        .registration(registration())
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

/// The slots of each TaskExecutor the leading ResourceManager knows, once
/// its endpoint runs: the job each slot is allocated to, if any.
async fn slots(runner: &LeadershipRunner) -> BTreeMap<String, Vec<Option<String>>> {
    let Some(leader) = runner.leader() else { return BTreeMap::new() };
    let Ok(gateway) = leader.fenced_gateway(RESOURCEMANAGER, leader.fencing_token()) else { return BTreeMap::new() };
    let Ok(Some(Val::List(all))) = gateway.ask("request-task-managers", vec![]).await else { return BTreeMap::new() };
    all.into_iter()
        .map(|entry| {
            let Val::Record(info) = entry else { panic!("a task-manager-info") };
            let [(_, Val::String(id)), (_, Val::String(_address)), (_, Val::List(slots)), (_, Val::U64(_heartbeat))] =
                info.as_slice()
            else {
                panic!("a task-manager-info: resource id, address, slots, last heartbeat")
            };
            let jobs = slots.iter().enumerate().map(|(index, slot)| {
                let Val::Record(fields) = slot else { panic!("a slot-status") };
                let Val::Record(slot_id) = &fields[0].1 else { panic!("a slot-id") };
                assert_eq!(slot_id[0].1, Val::String(id.clone()), "owned by its TaskExecutor");
                assert_eq!(slot_id[1].1, Val::U32(index as u32), "numbered from 0");
                match &fields[2].1 {
                    Val::Option(None) => None,
                    Val::Option(Some(held)) => {
                        let Val::Tuple(held) = held.as_ref() else { panic!("(allocation, job)") };
                        Some(uuid(&held[1]))
                    }
                    other => panic!("an allocation, got {other:?}"),
                }
            });
            (id.clone(), jobs.collect())
        })
        .collect()
}

/// A `uuid` record as text.
fn uuid(value: &Val) -> String {
    let Val::Record(halves) = value else { panic!("a uuid, got {value:?}") };
    let [(_, Val::U64(high)), (_, Val::U64(low))] = halves.as_slice() else { panic!("a uuid") };
    FencingToken::from_u64_pair(*high, *low).to_string()
}

/// The TaskExecutors the leading ResourceManager knows, with their slot
/// count.
async fn registered(runner: &LeadershipRunner) -> BTreeMap<String, usize> {
    slots(runner).await.into_iter().map(|(id, slots)| (id, slots.len())).collect()
}

/// Waits until the ResourceManager knows exactly `expected`.
async fn wait_for(runner: &LeadershipRunner, expected: &[(&Endpoint, usize)], what: &str) {
    let expected: BTreeMap<String, usize> = expected.iter().map(|(te, n)| (te.address().to_owned(), *n)).collect();
    eventually(what, || async { (registered(runner).await == expected).then_some(()) }).await;
}

/// A free loopback port, for a host whose address others must know before
/// it starts (standalone HA names its leaders' addresses).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A host with a ResourceManager and two TaskExecutors of one slot each
/// (`<name>-1`, `<name>-2`), registered.
async fn two_slot_cluster(name: &str) -> (RpcService, LeadershipRunner, [Endpoint; 2]) {
    capture_logs();
    let host = cluster_host(config(), HaConfig::Embedded);
    let rm = resource_manager(&host);
    let one = task_executor(&host, &format!("{name}-1"), 1).await;
    let two = task_executor(&host, &format!("{name}-2"), 1).await;
    wait_for(&rm, &[(&one, 1), (&two, 1)], "both TaskExecutors registered").await;
    (host, rm, [one, two])
}
