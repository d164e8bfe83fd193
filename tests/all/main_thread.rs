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
