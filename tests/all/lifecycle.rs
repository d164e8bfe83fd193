//! Flink's endpoint lifecycle: STOPPED → STARTED → TERMINATING → TERMINATED,
//! and what a message gets in each state.

use futures::FutureExt;
use wasmtime::component::Val;
use weir::{Endpoint, EndpointFailure, EndpointOptions, Lifecycle, RpcError, SpawnError};
use weir_tests::gateways::{COUNTER, ECHO, PROBE};
use weir_tests::{artifacts, as_list, component, eventually, host, with_config};

async fn notified(gateway: &weir::GatewayClient) -> Val {
    gateway.ask("notified", Vec::new()).await.unwrap().unwrap()
}

/// A counter that a probe's `on-stop` tells when it begins (2) and ends (3).
async fn witness(host: &weir::RpcService, id: &str) -> Endpoint {
    host.start(id, &component(artifacts::COUNTER), EndpointOptions::default()).await.unwrap()
}

/// What the witness has been told.
async fn history(witness: &Endpoint) -> Vec<u64> {
    as_list(witness.gateway(COUNTER).unwrap().ask("history", vec![]).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_start_asks_fail_with_not_started_and_tells_are_dropped() {
    let host = host();
    let echo = host.spawn("unstarted", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    assert_eq!(echo.state(), Lifecycle::Stopped);
    let gateway = echo.gateway(ECHO).unwrap();

    let error = gateway.ask("ping", vec![Val::U64(1)]).await.unwrap_err();
    assert_eq!(error, RpcError::NotStarted { endpoint: "unstarted".into() });
    gateway.tell("notify", vec![Val::U64(5)]).await.unwrap();

    echo.start().await.unwrap();
    assert_eq!(echo.state(), Lifecycle::Started);
    assert_eq!(notified(&gateway).await, Val::Tuple(vec![Val::U64(0), Val::U64(0)]), "a tell before start is dropped");
    gateway.tell("notify", vec![Val::U64(5)]).await.unwrap();
    assert_eq!(notified(&gateway).await, Val::Tuple(vec![Val::U64(1), Val::U64(5)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_stop_runs_once_and_calls_are_served_while_it_is_pending() {
    let host = host();
    let witness = witness(&host, "witness-stop").await;
    let settings = [("on-stop", "wait-for-ping"), ("witness", witness.address())];
    let probe = host.start("probe-stop", &component(artifacts::PROBE), with_config(&settings)).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();

    probe.stop();
    eventually("the witness to hear that on-stop began", || async { (history(&witness).await == [2]).then_some(()) })
        .await;
    assert_eq!(probe.state(), Lifecycle::Terminating);
    probe.stop(); // a second stop does not run on-stop again
    probe.start().await.unwrap(); // nor does start revive it (Flink would fail its actor system here)
    assert_eq!(probe.state(), Lifecycle::Terminating);

    // TERMINATING still serves calls; this ping is what on-stop waits for.
    gateway.ask("ping", vec![]).await.unwrap();
    assert_eq!(probe.terminated().await, Ok(()));
    assert_eq!(probe.state(), Lifecycle::Terminated);
    assert_eq!(history(&witness).await, [2, 3], "on-stop ran exactly once, to its end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_termination_in_flight_and_new_asks_fail_with_unreachable() {
    let host = host();
    let probe = host.start("probe-end", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();

    // Put a stalled ask in flight, then prove it reached the endpoint: a
    // later ask from the same caller is answered after it has started.
    let mut stalled = Box::pin(gateway.ask("stall", vec![Val::U64(3_600_000)]));
    assert!(stalled.as_mut().now_or_never().is_none());
    gateway.ask("ping", vec![]).await.unwrap();

    assert_eq!(probe.close().await, Ok(()));
    let error = stalled.await.unwrap_err();
    assert!(matches!(error, RpcError::Unreachable { .. }), "in flight at termination: {error}");
    let error = gateway.ask("ping", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::Unreachable { .. }), "after termination: {error}");
    let error = eventually("the endpoint to leave the directory", || async {
        host.connect(probe.address(), PROBE, None).await.err()
    })
    .await;
    assert!(matches!(error, RpcError::UnknownEndpoint { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_on_start_terminates_the_endpoint_without_on_stop() {
    let host = host();
    let witness = witness(&host, "witness-fail").await;
    let settings = [("on-start", "fail"), ("witness", witness.address())];
    let probe = host.spawn("probe-fail", &component(artifacts::PROBE), with_config(&settings)).await.unwrap();

    let failure = EndpointFailure::StartFailed("on-start configured to fail".into());
    assert_eq!(probe.start().await, Err(failure.clone()));
    assert_eq!(probe.terminated().await, Err(failure));
    let error = probe.gateway(PROBE).unwrap().ask("ping", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::EndpointFailed { .. }), "{error}");
    let told = history(&witness).await;
    assert!(told.is_empty(), "on-stop must not run after a failed on-start: {told:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_on_stop_is_the_termination_cause() {
    let host = host();
    let probe =
        host.start("probe-stop-fail", &component(artifacts::PROBE), with_config(&[("on-stop", "fail")])).await.unwrap();
    assert_eq!(probe.close().await, Err(EndpointFailure::StopFailed("on-stop configured to fail".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_an_unstarted_endpoint_skips_on_stop() {
    let host = host();
    let witness = witness(&host, "witness-unstarted").await;
    let probe = host
        .spawn("probe-unstarted", &component(artifacts::PROBE), with_config(&[("witness", witness.address())]))
        .await
        .unwrap();
    assert_eq!(probe.close().await, Ok(()));
    let told = history(&witness).await;
    assert!(told.is_empty(), "{told:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_unique_while_alive_and_reusable_after() {
    let host = host();
    let echo = component(artifacts::ECHO);
    let first = host.start("twin", &echo, EndpointOptions::default()).await.unwrap();
    let error = host.spawn("twin", &echo, EndpointOptions::default()).await.unwrap_err();
    assert!(matches!(error, SpawnError::DuplicateId(ref id) if id == "twin"), "{error}");
    first.close().await.unwrap();
    let second = host.start("twin", &echo, EndpointOptions::default()).await.unwrap();
    assert_eq!(second.gateway(ECHO).unwrap().ask("ping", vec![Val::U64(3)]).await.unwrap(), Some(Val::U64(3)));

    for id in ["", "a/b", "white space", &"x".repeat(129)] {
        let error = host.spawn(id, &echo, EndpointOptions::default()).await.unwrap_err();
        assert!(matches!(error, SpawnError::InvalidId { .. }), "{id:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_endpoint_and_reports_the_failures() {
    let host = host();
    let echo = host.start("echo-shutdown", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    host.start("probe-shutdown", &component(artifacts::PROBE), with_config(&[("on-stop", "fail")])).await.unwrap();

    let error = host.shutdown().await.unwrap_err();
    assert_eq!(
        error.failures,
        vec![("probe-shutdown".to_owned(), EndpointFailure::StopFailed("on-stop configured to fail".into()))]
    );
    assert_eq!(echo.terminated().await, Ok(()));
    let error = host.spawn("late", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap_err();
    assert!(matches!(error, SpawnError::ServiceStopped), "{error}");
}
