//! Calls that wait in an endpoint's mailbox reach its guest in batches
//! (`weir:rpc/batch`): one guest task for many calls, in the order they
//! were sent, each answered as if it had run alone.

use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};
use tokio::task::JoinHandle;
use wasmtime::component::Val;
use weir::{Endpoint, EndpointFailure, EndpointOptions, GatewayClient, RpcError, RpcService};
use weir_tests::gateways::{FAULT, PROBE};
use weir_tests::{artifacts, as_u64, component, eventually, host, with_config};

/// Asks `spin` for a second and waits until the endpoint has taken it from
/// its mailbox: calls sent next queue up behind it.
async fn block(host: &RpcService, endpoint: &Endpoint, gateway: &GatewayClient) -> JoinHandle<Option<Val>> {
    let spin = tokio::spawn({
        let gateway = gateway.clone();
        async move { gateway.ask("spin", vec![Val::U64(1_000)]).await.ok().flatten() }
    });
    eventually("the spin to leave the mailbox", || async {
        let info = host.endpoints().into_iter().find(|info| info.id == endpoint.id())?;
        (info.queued == 0).then_some(())
    })
    .await;
    spin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_calls_run_in_batches_in_order_and_each_is_answered() {
    let host = host();
    let probe = host.start("probe-batches", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    let spin = block(&host, &probe, &gateway).await;

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
async fn a_trap_inside_a_batch_ends_the_endpoint_and_answers_every_call() {
    let host = host();
    let options = with_config(&[("fault", "trap")]);
    let faulty = host.start("faulty-batch", &component(artifacts::FAULTY), options).await.unwrap();
    let gateway = faulty.gateway(FAULT).unwrap();
    let spin = block(&host, &faulty, &gateway).await;

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
    assert_eq!(stats.batches, 0, "the batch did not complete: {stats:?}");
}
