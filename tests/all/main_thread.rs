//! The main thread: one message at a time, and an endpoint that awaits a
//! reply keeps serving others.

use futures::FutureExt;
use wasmtime::component::Val;
use weir::EndpointOptions;
use weir_tests::gateways::{CALLER, PROBE};
use weir_tests::{artifacts, as_list, component, eventually, guest_ok, host, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_awaiting_a_reply_keeps_serving() {
    let host = host();
    let echo = host.start("echo-serving", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let probe = host.start("probe-serving", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let caller = host.start("caller-serving", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let gateway = caller.gateway(CALLER).unwrap();

    // The caller asks the probe to stall for an hour and waits for it.
    let mut stalled =
        Box::pin(gateway.ask("stall", vec![text(probe.address()), Val::U64(3_600_000), Val::U64(7_200_000)]));
    assert!(stalled.as_mut().now_or_never().is_none());
    // Meanwhile it serves another call, which itself asks the echo.
    let reply = gateway.ask("call-ping", vec![text(echo.address()), Val::U64(11)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U64(11)));
    assert!(stalled.as_mut().now_or_never().is_none(), "the stalled ask is still pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_asking_each_other_back_and_forth_do_not_deadlock() {
    let host = host();
    let a = host.start("bouncer-a", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let b = host.start("bouncer-b", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let gateway = a.gateway(CALLER).unwrap();
    for depth in [10u32, 64] {
        let reply = gateway.ask("bounce", vec![text(b.address()), Val::U32(depth)]).await.unwrap();
        assert_eq!(guest_ok(reply), Some(Val::U32(depth)), "A → B → A … {depth} hops");
    }
    // Through its own address: the self gateway, re-entered while it waits.
    let reply = gateway.ask("bounce", vec![text(a.address()), Val::U32(10)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U32(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_async_tasks_run_on_the_main_thread_in_order() {
    let host = host();
    let probe = host.start("probe-tasks", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    let delays = [0u64, 0, 0, 600, 200, 400].map(Val::U64).to_vec();
    gateway.tell("schedule", vec![Val::List(delays)]).await.unwrap();
    let ran = eventually("all six tasks to run", || async {
        let ran = as_list(gateway.ask("ran", vec![]).await.unwrap());
        (ran.len() == 6).then_some(ran)
    })
    .await;
    assert_eq!(ran, [0, 1, 2, 4, 5, 3], "immediate tasks first in order, then by due time");
    assert_eq!(probe.stats().tasks, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_tasks_never_overlap_on_the_main_thread() {
    let host = host();
    let probe = host.start("probe-exclusive", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    // Flink's stress test: a few calls racing 10,000 run-async tasks.
    let calls: Vec<_> = (0..3).map(|_| gateway.ask("exclusive", vec![Val::U32(200_000)])).collect();
    let schedule = gateway.tell("exclusive-tasks", vec![Val::U32(10_000), Val::U32(100)]);
    let more: Vec<_> = (0..3).map(|_| gateway.ask("exclusive", vec![Val::U32(200_000)])).collect();
    for reply in futures::future::join_all(calls.into_iter().chain(more)).await {
        reply.unwrap();
    }
    schedule.await.unwrap();
    eventually("the 10,000 tasks to run", || async { (probe.stats().tasks >= 10_000).then_some(()) }).await;
    assert_eq!(gateway.ask("overlaps", vec![]).await.unwrap(), Some(Val::U32(0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_due_at_the_same_time_run_in_the_order_they_were_scheduled() {
    let host = host();
    let probe = host.start("probe-fifo", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    gateway.tell("schedule", vec![Val::List([20u64; 5].map(Val::U64).to_vec())]).await.unwrap();
    let ran = eventually("all five tasks to run", || async {
        let ran = as_list(gateway.ask("ran", vec![]).await.unwrap());
        (ran.len() == 5).then_some(ran)
    })
    .await;
    assert_eq!(ran, [0, 1, 2, 3, 4], "first scheduled, first run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_never_runs() {
    let host = host();
    let probe = host.start("probe-cancel", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    let delays = Val::List([50u64, 30, 10, 40].map(Val::U64).to_vec());
    let cancel = Val::List([1u32, 3, 1].map(Val::U32).to_vec());
    let cancelled = gateway.ask("schedule-and-cancel", vec![delays, cancel]).await.unwrap();
    assert_eq!(
        cancelled,
        Some(Val::List(vec![Val::Bool(true), Val::Bool(true), Val::Bool(false)])),
        "a task is cancelled once"
    );
    let ran = eventually("the other two tasks to run", || async {
        let ran = as_list(gateway.ask("ran", vec![]).await.unwrap());
        (ran.len() >= 2).then_some(ran)
    })
    .await;
    assert_eq!(ran, [2, 0]);
    // Later than every cancelled task was due: none of them ran.
    gateway.tell("schedule", vec![Val::List(vec![Val::U64(60)])]).await.unwrap();
    let ran = eventually("a later task to run", || async {
        let ran = as_list(gateway.ask("ran", vec![]).await.unwrap());
        (ran.len() >= 3).then_some(ran)
    })
    .await;
    assert_eq!(ran, [2, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_async_returns_the_result_or_times_out() {
    let host = host();
    let probe = host.start("probe-call-async", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    let reply = gateway.ask("call-async", vec![Val::U64(0), Val::U64(10_000)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U32(42)));
    let reply = gateway.ask("call-async", vec![Val::U64(200), Val::U64(20)]).await.unwrap();
    let Some(Val::Result(Err(Some(message)))) = reply else { panic!("expected a timeout, got {reply:?}") };
    assert_eq!(*message, text("the call on the main thread did not finish within its timeout"));
}
