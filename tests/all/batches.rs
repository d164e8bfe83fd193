//! Calls that wait in an endpoint's mailbox reach its guest in batches
//! (`weir:rpc/batch`): one guest task for many calls, in the order they
//! were sent, each answered as if it had run alone.

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use tokio::task::JoinHandle;
use wasmtime::component::Val;
use weir::{Endpoint, EndpointFailure, EndpointOptions, GatewayClient, RpcError};
use weir_tests::gateways::{FAULT, PROBE};
use weir_tests::{artifacts, as_u64, capture_logs, component, eventually, host, logs, with_config};

/// Asks `spin` for a second and waits until the endpoint says it spins:
/// its main thread is busy, and calls sent next queue up behind it.
async fn block(endpoint: &Endpoint, gateway: &GatewayClient) -> JoinHandle<Option<Val>> {
    capture_logs();
    let spin = tokio::spawn({
        let gateway = gateway.clone();
        async move { gateway.ask("spin", vec![Val::U64(1_000)]).await.ok().flatten() }
    });
    eventually("the endpoint to spin", || async {
        logs().lines().any(|line| line.contains("spinning for 1000 ms") && line.contains(endpoint.id())).then_some(())
    })
    .await;
    spin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_calls_run_in_batches_in_order_and_each_is_answered() {
    let host = host();
    let probe = host.start("probe-batches", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    let spin = block(&probe, &gateway).await;

    // Tells and asks interleaved: each `pokes` must see exactly the pokes
    // sent before it, and the `ping`s count up. Each ask is polled once to
    // put it in the mailbox before the next call is sent, outside tokio's
    // cooperative budget, which could otherwise hold one back.
    let replies = tokio::task::unconstrained(async {
        let mut replies = FuturesOrdered::new();
        for i in 1..=200u64 {
            gateway.tell("poke", vec![]).await.unwrap();
            for function in ["pokes", "ping"] {
                let mut ask = Box::pin(gateway.ask(function, vec![]));
                assert!(ask.as_mut().now_or_never().is_none(), "answered while the endpoint is blocked");
                replies.push_back(async move { (i, function, ask.await) });
            }
        }
        replies
    })
    .await;
    assert_eq!(spin.await.unwrap(), Some(Val::U64(1_000)));
    let replies: Vec<_> = replies.collect().await;
    for (i, function, reply) in replies {
        // `pokes` sees exactly the pokes sent before it; `ping` counts up.
        assert_eq!(as_u64(reply.unwrap()), i, "{function} number {i}");
    }
    let stats = probe.stats();
    assert!(stats.batches > 0 && stats.batched >= 2 * stats.batches, "calls went in batches: {stats:?}");
    assert_eq!((stats.tells, stats.asks), (200, 401), "every call counted once: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_pipelined_from_another_thread_run_in_order_and_each_is_answered() {
    // The test's threads run no endpoint: while the endpoint serves, its
    // next asks arrive, and the endpoint's loop lets them join the batch it
    // is about to start (`top_up`). Joined or not, they run in the order
    // they were sent.
    let host = host();
    let probe = host.start("probe-streaming", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    const ASKS: u64 = 5_000;
    let mut replies = FuturesOrdered::new();
    let (mut sent, mut answered) = (0, 0);
    while answered < ASKS {
        // 64 in flight at a time, refilled one by one as answers come.
        while sent < ASKS && replies.len() < 64 {
            sent += 1;
            let i = sent;
            replies.push_back(gateway.ask("ping", vec![]).map(move |reply| (i, reply)));
        }
        let (i, reply) = replies.next().await.expect("an ask in flight");
        assert_eq!(as_u64(reply.unwrap()), i, "ping number {i}");
        answered += 1;
    }
    assert_eq!(probe.stats().asks, ASKS, "every ask counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_inside_a_batch_ends_the_endpoint_and_answers_every_call() {
    let host = host();
    let options = with_config(&[("fault", "trap")]);
    let faulty = host.start("faulty-batch", &component(artifacts::FAULTY), options).await.unwrap();
    let gateway = faulty.gateway(FAULT).unwrap();
    let spin = block(&faulty, &gateway).await;

    let replies = tokio::task::unconstrained(async {
        let mut replies = FuturesOrdered::new();
        for function in ["ping", "ping", "trigger", "ping"] {
            let mut ask = Box::pin(gateway.ask(function, vec![]));
            assert!(ask.as_mut().now_or_never().is_none(), "answered while the endpoint is blocked");
            replies.push_back(ask);
        }
        replies
    })
    .await;
    assert_eq!(spin.await.unwrap(), Some(Val::U64(1_000)));
    // The batch never returned: none of its calls has a result to give,
    // not even those that ran before the trap.
    let outcomes: Vec<_> = replies.collect().await;
    for outcome in outcomes {
        let error = outcome.unwrap_err();
        assert!(matches!(error, RpcError::EndpointFailed { .. }), "{error}");
    }
    let Err(EndpointFailure::Panicked { during, .. }) = faulty.terminated().await else {
        panic!("expected a panic as the cause")
    };
    assert_eq!(during, "a batch of queued calls");
    let stats = faulty.stats();
    assert_eq!((stats.batches, stats.batched), (1, 4), "the four calls went in one batch: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_in_a_batch_are_answered_as_each_returns() {
    let host = host();
    let probe =
        host.start("probe-async-batch", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap().with_timeout(std::time::Duration::from_secs(3600));
    let spin = block(&probe, &gateway).await;

    // An hour-long stall first, then quick ones, all async and batched
    // together: the quick ones must not wait for the first.
    let (slow, quick) = tokio::task::unconstrained(async {
        let mut slow = Box::pin(gateway.ask("stall", vec![Val::U64(3_600_000)]));
        assert!(slow.as_mut().now_or_never().is_none(), "answered while the endpoint is blocked");
        let mut quick = FuturesOrdered::new();
        for _ in 0..50 {
            let mut ask = Box::pin(gateway.ask("stall", vec![Val::U64(0)]));
            assert!(ask.as_mut().now_or_never().is_none(), "answered while the endpoint is blocked");
            quick.push_back(ask);
        }
        (slow, quick)
    })
    .await;
    assert_eq!(spin.await.unwrap(), Some(Val::U64(1_000)));
    let quick: Vec<_> = quick.collect().await;
    assert!(quick.into_iter().all(|reply| reply.unwrap() == Some(Val::U64(0))), "each quick stall answered");
    let mut slow = slow;
    assert!(slow.as_mut().now_or_never().is_none(), "the hour-long stall is still running");
    let stats = probe.stats();
    assert_eq!(stats.asks, 51, "the spin and the quick stalls: {stats:?}");
    assert_eq!((stats.batches, stats.batched), (1, 51), "the slow and the quick stalls in one batch: {stats:?}");
    // The endpoint still serves, the long stall still pending.
    assert!(gateway.ask("ping", vec![]).await.is_ok());
}
