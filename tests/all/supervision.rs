//! Supervision: a trap ends that endpoint only. Its termination reports the
//! cause, its callers get endpoint-failed, and every other endpoint keeps
//! serving (unlike Flink, whose supervisor stops the whole actor system).

use wasmtime::component::Val;
use weir::{EndpointFailure, EndpointOptions, RpcError};
use weir_tests::gateways::{ECHO, FAULT};
use weir_tests::{artifacts, capture_logs, component, eventually, host, logs, with_config};

const TRIGGER: &str = "`weir:examples/fault@0.1.0.trigger`";

/// Where the guest panicked; the faulty endpoint panics with "deliberate
/// trap", which its callers and its termination cause must carry.
fn trapped_in(failure: &EndpointFailure) -> &str {
    match failure {
        EndpointFailure::Panicked { during, message } => {
            assert!(message.starts_with("deliberate trap (at faulty/src/lib.rs:"), "{message}");
            during
        }
        other => panic!("expected a panic, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_in_a_call_ends_that_endpoint_only() {
    let host = host();
    let echo = host.start("echo-bystander", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let trapper =
        host.start("trapper", &component(artifacts::FAULTY), with_config(&[("fault", "trap")])).await.unwrap();
    let faults = trapper.gateway(FAULT).unwrap();

    let error = faults.ask("trigger", vec![]).await.unwrap_err();
    let RpcError::EndpointFailed { endpoint, cause } = &error else { panic!("expected endpoint-failed, got {error}") };
    assert_eq!(endpoint, "trapper");
    assert!(cause.contains(TRIGGER) && cause.contains("panicked") && cause.contains("deliberate trap"), "{cause}");
    let failure = trapper.terminated().await.unwrap_err();
    assert_eq!(trapped_in(&failure), TRIGGER);

    // Later calls learn why; everybody else keeps serving.
    let error = faults.ask("ping", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::EndpointFailed { .. }), "{error}");
    assert_eq!(echo.gateway(ECHO).unwrap().ask("ping", vec![Val::U64(5)]).await.unwrap(), Some(Val::U64(5)));
    eventually("the failed endpoint to leave the directory", || async {
        host.endpoint("trapper").is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_queued_behind_a_trap_fail_with_endpoint_failed_not_a_timeout() {
    let host = host();
    let trapper =
        host.start("trapper-queue", &component(artifacts::FAULTY), with_config(&[("fault", "trap")])).await.unwrap();
    let faults = trapper.gateway(FAULT).unwrap();
    let trigger = faults.ask("trigger", vec![]);
    let pings: Vec<_> = (0..50).map(|_| faults.ask("ping", vec![])).collect();
    let (trigger, pings) = futures::join!(trigger, futures::future::join_all(pings));
    assert!(matches!(trigger, Err(RpcError::EndpointFailed { .. })), "{trigger:?}");
    for ping in pings {
        match ping {
            Ok(_) | Err(RpcError::EndpointFailed { .. }) => {}
            Err(other) => panic!("a call behind the trap got {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_after_an_await_ends_the_endpoint() {
    let host = host();
    let trapper =
        host.start("trapper-async", &component(artifacts::FAULTY), with_config(&[("fault", "trap")])).await.unwrap();
    let error = trapper.gateway(FAULT).unwrap().ask("trigger-async", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::EndpointFailed { .. }), "{error}");
    let failure = trapper.terminated().await.unwrap_err();
    assert_eq!(trapped_in(&failure), "`weir:examples/fault@0.1.0.trigger-async`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_in_hooks_and_tasks_are_reported_where_they_happened() {
    let host = host();
    let faulty = component(artifacts::FAULTY);

    let on_start = host
        .spawn("trap-on-start", &faulty, with_config(&[("fault", "trap"), ("fault-in", "on-start")]))
        .await
        .unwrap();
    let failure = on_start.start().await.unwrap_err();
    assert_eq!(trapped_in(&failure), "on-start");

    let on_stop =
        host.start("trap-on-stop", &faulty, with_config(&[("fault", "trap"), ("fault-in", "on-stop")])).await.unwrap();
    let failure = on_stop.close().await.unwrap_err();
    assert_eq!(trapped_in(&failure), "on-stop");

    let task =
        host.start("trap-in-task", &faulty, with_config(&[("fault", "trap"), ("fault-in", "task")])).await.unwrap();
    let failure = task.terminated().await.unwrap_err();
    assert!(trapped_in(&failure).contains("main-thread task"), "{failure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_undeliverable_messages_are_logged() {
    capture_logs();
    let host = host();
    let trapper =
        host.start("trapper-logged", &component(artifacts::FAULTY), with_config(&[("fault", "trap")])).await.unwrap();
    assert!(trapper.gateway(FAULT).unwrap().ask("trigger", vec![]).await.is_err());

    let echo = host.spawn("echo-dead-letters", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let gateway = echo.gateway(ECHO).unwrap();
    gateway.tell("notify", vec![Val::U64(1)]).await.unwrap(); // not started yet
    echo.start().await.unwrap();
    echo.close().await.unwrap();
    gateway.tell("notify", vec![Val::U64(2)]).await.unwrap(); // terminated

    let logs = logs();
    let logged = |words: &[&str]| logs.lines().any(|line| words.iter().all(|w| line.contains(w)));
    assert!(logged(&["endpoint failed", "trapper-logged", "trigger"]), "no failure log");
    assert!(logged(&["discarded tell", "echo-dead-letters"]), "no log of the tell before start");
    assert!(logged(&["dead letter", "echo-dead-letters", "notify"]), "no dead letter for the tell after termination");
}
