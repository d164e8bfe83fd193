//! Leader election and retrieval through a real ZooKeeper, between real
//! `weir` processes that contend for leadership of a `counter` endpoint.

use std::time::{Duration, Instant};

use wasmtime::component::Val;
use weir::ha::{self, HaContext, HaServices, LeaderElection, LeaderInformation, LeaderRetrieval, Leadership};
use weir::{FencingToken, RpcError, ZooKeeperConfig};
use weir_tests::gateways::COUNTER;
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::proxy::Proxy;
use weir_tests::zookeeper::{SESSION_TIMEOUT, zookeeper};
use weir_tests::{PATIENCE, artifacts, capture_logs, eventually, host};
use zookeeper_client as zk;

/// How long after its cause a takeover may come: the session timeout, plus
/// room for a loaded machine to notice and start the new leader.
pub const TAKEOVER_BOUND: Duration = Duration::from_secs(SESSION_TIMEOUT.as_secs() * 2 + 5);

/// HA settings for the test's own listeners, in their own cluster.
pub fn settings(cluster: &str) -> ZooKeeperConfig {
    ZooKeeperConfig {
        cluster_id: cluster.to_owned(),
        session_timeout: SESSION_TIMEOUT,
        ..ZooKeeperConfig::new(zookeeper().address())
    }
}

/// A `weir` host that contends, through ZooKeeper at `quorum`, for
/// leadership of endpoint `id` from `component`, with more keys for the
/// endpoint (`endpoint`) and the `[ha]` table (`ha`).
pub fn contender(cluster: &str, quorum: &str, (id, component, endpoint): (&str, &str, &str), ha: &str) -> HostProcess {
    let spec = HostSpec::new()
        .ha("mode = \"zookeeper\"")
        .ha(&format!("quorum = {quorum:?}"))
        .ha(&format!("cluster-id = {cluster:?}"))
        .ha(&format!("session-timeout = \"{}s\"", SESSION_TIMEOUT.as_secs()))
        .ha(ha)
        .endpoint(id, component, &format!("leader-election = true\n{endpoint}"));
    HostProcess::start(&spec)
}

/// [`contender`] for the `counter` endpoint `rm`.
fn counter_contender(cluster: &str, quorum: &str) -> HostProcess {
    contender(cluster, quorum, ("rm", artifacts::COUNTER, ""), "")
}

/// Listeners in the test process.
pub fn listeners(cluster: &str, component: &str, count: usize) -> Vec<LeaderRetrieval> {
    let services = ha::ZooKeeper::new(settings(cluster), HaContext::current());
    (0..count).map(|_| services.leader_retrieval(component).unwrap()).collect()
}

/// Waits until every listener knows a leader other than `previous`, checks
/// that they agree and that it is on `host`, and returns it.
pub async fn all_learn(
    listeners: &mut [LeaderRetrieval],
    previous: Option<FencingToken>,
    host: &HostProcess,
) -> LeaderInformation {
    let mut learned = Vec::new();
    for listener in listeners.iter_mut() {
        let leader = tokio::time::timeout(PATIENCE, listener.next_leader(previous)).await;
        learned.push(leader.expect("no new leader in time").expect("the retrieval ended"));
    }
    assert!(learned.windows(2).all(|pair| pair[0] == pair[1]), "listeners disagree: {learned:?}");
    let leader = learned.remove(0);
    assert!(
        leader.address.starts_with(&format!("weir://{}/", host.authority())),
        "{leader} is not on {}",
        host.authority()
    );
    leader
}

async fn add(leader: &LeaderInformation, token: FencingToken, delta: i64) -> Result<Option<Val>, RpcError> {
    host().connect(&leader.address, COUNTER, Some(token)).await?.ask("add", vec![Val::S64(delta)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_every_listener_learns_it() {
    let quorum = zookeeper().address();
    let mut listeners = listeners("killed", "rm", 2);
    let mut first = counter_contender("killed", quorum);
    let leader = all_learn(&mut listeners, None, &first).await;
    let second = counter_contender("killed", quorum);
    assert_eq!(add(&leader, leader.session, 2).await.unwrap(), Some(Val::S64(2)), "the leader serves its session");
    let stranger = FencingToken::random();
    let refused = add(&leader, stranger, 1).await.unwrap_err();
    assert!(matches!(refused, RpcError::FencingMismatch { received: Some(t), .. } if t == stranger), "{refused:?}");

    first.kill();
    let killed = Instant::now();
    let next = all_learn(&mut listeners, Some(leader.session), &second).await;
    let took = killed.elapsed();
    eprintln!("takeover after the leader was killed: {took:.1?} (session timeout {SESSION_TIMEOUT:?})");
    assert!(took < TAKEOVER_BOUND, "took {took:?}");
    assert_ne!(next.session, leader.session);
    assert_eq!(add(&next, next.session, 3).await.unwrap(), Some(Val::S64(3)), "a new endpoint instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_session_is_revoked_and_replaced() {
    capture_logs();
    let quorum = zookeeper().address();
    let mut listeners = listeners("partitioned", "rm", 2);
    let path = Proxy::start(quorum).await;
    let first = counter_contender("partitioned", &path.address());
    let leader = all_learn(&mut listeners, None, &first).await;
    let second = counter_contender("partitioned", quorum);

    path.cut();
    let cut = Instant::now();
    let next = all_learn(&mut listeners, Some(leader.session), &second).await;
    let took = cut.elapsed();
    eprintln!("takeover after the leader lost ZooKeeper: {took:.1?} (session timeout {SESSION_TIMEOUT:?})");
    assert!(took < TAKEOVER_BOUND, "took {took:?}");
    eventually("the old leader stops its endpoint", || async {
        let logs = first.logs();
        (logs.contains("leadership revoked") && logs.contains("leader endpoint stopped")).then_some(())
    })
    .await;
    let gone = add(&leader, leader.session, 1).await.unwrap_err();
    assert!(matches!(gone, RpcError::UnknownEndpoint { .. } | RpcError::Unreachable { .. }), "{gone:?}");

    path.heal();
    eventually("the old leader contends again", || async {
        (first.logs().matches("contending for leadership").count() >= 2).then_some(())
    })
    .await;
    assert_eq!(listeners[0].current(), Some(next.clone()), "the new leader stays");
    assert_eq!(add(&next, next.session, 4).await.unwrap(), Some(Val::S64(4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_gone_with_nobody_waiting_leaves_every_listener_with_no_leader() {
    let mut listeners = listeners("abandoned", "rm", 2);
    let mut only = counter_contender("abandoned", zookeeper().address());
    all_learn(&mut listeners, None, &only).await;

    only.kill();
    for listener in &mut listeners {
        let learned = tokio::time::timeout(PATIENCE, listener.changed()).await.expect("nothing learned in time");
        assert_eq!(learned, Some(None), "no leader once the leader's session has expired");
    }
}

/// The next grant or revocation of `election`, within [`PATIENCE`].
async fn next_event(election: &mut LeaderElection) -> Leadership {
    let event = tokio::time::timeout(PATIENCE, election.next()).await.expect("no leadership event in time");
    event.expect("the election ended")
}

/// A leader whose latch node has gone cannot publish itself (the write is
/// checked against the latch node): it is revoked rather than left acting
/// as leader, contends again, and only its next session is ever published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_publish_itself_is_revoked_and_contends_again() {
    let config = settings("unpublished");
    let services = ha::ZooKeeper::new(config.clone(), HaContext::current());
    let mut listener = services.leader_retrieval("rm").unwrap();
    let mut election = services.leader_election("rm").unwrap();
    let Leadership::Granted(session) = next_event(&mut election).await else { panic!("the only contender leads") };

    let admin = zk::Client::connect(&config.quorum).await.unwrap();
    let latch = "/weir/unpublished/leader/rm/latch";
    for node in admin.list_children(latch).await.unwrap() {
        admin.delete(&format!("{latch}/{node}"), None).await.unwrap();
    }
    election.confirm(session, "weir://h:1/rm");
    assert_eq!(next_event(&mut election).await, Leadership::Revoked);

    let Leadership::Granted(again) = next_event(&mut election).await else { panic!("it leads again") };
    assert_ne!(again, session, "a new leader session");
    election.confirm(again, "weir://h:2/rm");
    let leader = tokio::time::timeout(PATIENCE, listener.next_leader(None)).await.unwrap().unwrap();
    assert_eq!(leader, LeaderInformation { session: again, address: "weir://h:2/rm".into() });
}

/// The HA store keeps its values in ZooKeeper nodes under
/// `<root>/<cluster-id>/store`: another process's services of the same
/// cluster read them, another cluster's do not; a value over ZooKeeper's
/// node limit is refused with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ha_store_keeps_records_in_zookeeper_for_every_process_of_the_cluster() {
    let cluster = format!("store-{}", FencingToken::random());
    let writer = ha::ZooKeeper::new(settings(&cluster), HaContext::current());
    let store = writer.store();
    store.put("jobs", "b", b"second".to_vec()).await.unwrap();
    store.put("jobs", "a", b"first".to_vec()).await.unwrap();
    store.put("jobs", "a", b"first, again".to_vec()).await.unwrap();

    let reader = ha::ZooKeeper::new(settings(&cluster), HaContext::current());
    assert_eq!(reader.store().keys("jobs").await.unwrap(), ["a", "b"]);
    assert_eq!(reader.store().get("jobs", "a").await.unwrap(), Some(b"first, again".to_vec()));
    assert_eq!(reader.store().keys("results").await.unwrap(), Vec::<String>::new());
    let stranger = ha::ZooKeeper::new(settings(&format!("{cluster}-other")), HaContext::current());
    assert_eq!(stranger.store().get("jobs", "a").await.unwrap(), None);

    // ZooKeeper's own tools see the nodes.
    let client = zk::Client::connect(zookeeper().address()).await.unwrap();
    let (value, _) = client.get_data(&format!("/weir/{cluster}/store/jobs/b")).await.unwrap();
    assert_eq!(value, b"second");

    reader.store().remove("jobs", "a").await.unwrap();
    reader.store().remove("jobs", "a").await.unwrap();
    assert_eq!(store.get("jobs", "a").await.unwrap(), None);
    let huge = vec![0; ha::MAX_VALUE_BYTES + 1];
    let refused = store.put("jobs", "huge", huge).await.unwrap_err().to_string();
    assert!(refused.contains("over the HA store's limit") && refused.contains("keep the data in a file"), "{refused}");
}
