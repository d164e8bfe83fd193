//! Embedded and standalone HA in one process, with leader endpoints run by
//! a `LeadershipRunner`.

use std::collections::BTreeMap;

use wasmtime::component::Val;
use weir::LeadershipRunner;
use weir::ha::{self, DEFAULT_LEADER_ID, HaContext, HaError, HaServices, Leadership};
use weir::{EndpointOptions, RpcError};
use weir_tests::gateways::COUNTER;
use weir_tests::{artifacts, component, host};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_contenders_take_turns_and_listeners_follow() {
    let services = ha::Embedded::new(HaContext::current());
    let mut listener = services.leader_retrieval("rm").unwrap();
    let mut first = services.leader_election("rm").unwrap();
    let mut second = services.leader_election("rm").unwrap();
    let Some(Leadership::Granted(session)) = first.next().await else { panic!("the first contender leads") };
    first.confirm(session, "weir://a:1/rm");
    let leader = listener.next_leader(None).await.unwrap();
    assert_eq!((leader.session, leader.address.as_str()), (session, "weir://a:1/rm"));

    drop(first);
    let Some(Leadership::Granted(next)) = second.next().await else { panic!("the second contender takes over") };
    assert_ne!(next, session, "a new leader session");
    assert_eq!(listener.current(), None, "no leader until the new one confirms");
    second.confirm(session, "weir://stale:1/rm");
    second.confirm(next, "weir://b:1/rm");
    let leader = listener.next_leader(Some(session)).await.unwrap();
    assert_eq!((leader.session, leader.address.as_str()), (next, "weir://b:1/rm"), "stale confirmations are ignored");
}

/// Each grant starts a new endpoint instance fenced under the new session;
/// the old session's token is refused by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_leader_session_runs_its_own_fenced_endpoint() {
    let host = host();
    let services = ha::Embedded::new(HaContext::current());
    let mut listener = services.leader_retrieval("ledger").unwrap();
    let counter = component(artifacts::COUNTER);
    let run = |services: &ha::Embedded| {
        let election = services.leader_election("ledger").unwrap();
        LeadershipRunner::start(host.clone(), election, "ledger", counter.clone(), EndpointOptions::default())
    };
    let first = run(&services);
    let leader = listener.next_leader(None).await.unwrap();
    let client = host.connect(&leader.address, COUNTER, Some(leader.session)).await.unwrap();
    assert_eq!(client.ask("add", vec![Val::S64(5)]).await.unwrap(), Some(Val::S64(5)));
    assert_eq!(first.leader().unwrap().fencing_token(), Some(leader.session));

    let waiting = run(&services);
    first.close().await;
    let next = listener.next_leader(Some(leader.session)).await.unwrap();
    let stale = host.connect(&next.address, COUNTER, Some(leader.session)).await.unwrap();
    let refused = stale.ask("add", vec![Val::S64(1)]).await.unwrap_err();
    assert!(
        matches!(refused, RpcError::FencingMismatch { expected, received, .. }
            if expected == Some(next.session) && received == Some(leader.session)),
        "{refused:?}"
    );
    let current = host.connect(&next.address, COUNTER, Some(next.session)).await.unwrap();
    assert_eq!(current.ask("get", vec![]).await.unwrap(), Some(Val::S64(0)), "a new instance, not the old one's state");
    waiting.close().await;
    let stopped = current.ask("get", vec![]).await.unwrap_err();
    assert!(matches!(stopped, RpcError::Unreachable { .. }), "closing the runner stops its endpoint: {stopped:?}");
}

#[tokio::test]
async fn standalone_leaders_are_fixed_under_the_default_leader_id() {
    let services =
        ha::Standalone::new(BTreeMap::from([("rm".to_owned(), "weir://h:1/rm".to_owned())]), HaContext::current());
    let mut election = services.leader_election("rm").unwrap();
    assert_eq!(election.next().await, Some(Leadership::Granted(DEFAULT_LEADER_ID)));
    let later = tokio::time::timeout(std::time::Duration::from_millis(50), election.next()).await;
    assert!(later.is_err(), "leadership lasts as long as the election: {later:?}");
    let leader = services.leader_retrieval("rm").unwrap().current().unwrap();
    assert_eq!((leader.session, leader.address.as_str()), (DEFAULT_LEADER_ID, "weir://h:1/rm"));
    assert_eq!(services.leader_retrieval("jm").unwrap_err(), HaError::NoConfiguredLeader("jm".into()));
    assert_eq!(services.leader_retrieval("a/b").unwrap_err(), HaError::InvalidComponent("a/b".into()));

    // Patterns: the longest that matches gives the address, with the rest
    // of the name in place of its `*`.
    let leaders =
        [("job-*", "weir://h:1/jobmaster-*"), ("job-special-*", "weir://h:2/special-*"), ("job-7", "weir://h:3/seven")];
    let services = ha::Standalone::new(
        leaders.iter().map(|(name, address)| (name.to_string(), address.to_string())).collect(),
        HaContext::current(),
    );
    let address = |name: &str| services.leader_retrieval(name).map(|retrieval| retrieval.current().unwrap().address);
    assert_eq!(address("job-42").unwrap(), "weir://h:1/jobmaster-42");
    assert_eq!(address("job-special-1").unwrap(), "weir://h:2/special-1");
    assert_eq!(address("job-7").unwrap(), "weir://h:3/seven", "a name's own entry wins");
    assert_eq!(address("jobs").unwrap_err(), HaError::NoConfiguredLeader("jobs".into()));
}
