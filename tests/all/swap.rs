//! Hot swap: the component behind a running endpoint replaced, with its
//! state, mailbox, address and callers kept, or the swap refused and the
//! old component serving on as it was.

use std::time::Duration;

use tokio::task::JoinSet;
use wasmtime::component::Val;
use weir::{
    EndpointComponent, EndpointOptions, GatewayClient, Handover, HostEvent, RpcService, SwapError, SwapOptions,
};
use weir_tests::gateways::{COUNTER, ECHO, ECHO_SYNC, PROBE};
use weir_tests::{artifacts, component, eventually, host, with_config};

use crate::remote::listening_host;

/// Messages each caller sends: four callers, 10,000 messages in all.
const PER_CALLER: u64 = 2_500;

/// The values caller `caller` sends, in order: distinct across callers.
fn values(caller: u64) -> impl Iterator<Item = u64> {
    (0..PER_CALLER).map(move |i| caller * 1_000_000 + i)
}

/// Sends every value of `caller`, alternating asks (`push`, which answers
/// the history's length) and tells (`append`); returns each ask's value
/// and answer.
async fn stream(gateway: GatewayClient, caller: u64) -> Vec<(u64, u32)> {
    let mut answers = Vec::new();
    for value in values(caller) {
        if value % 2 == 0 {
            let Some(Val::U32(length)) = gateway.ask("push", vec![Val::U64(value)]).await.unwrap() else {
                panic!("push answers a length")
            };
            answers.push((value, length));
        } else {
            gateway.tell("append", vec![Val::U64(value)]).await.unwrap();
        }
    }
    // A tell is sent, not delivered, when it returns; an ask after it on
    // the same connection is served after it.
    gateway.ask("get", vec![]).await.unwrap();
    answers
}

async fn history(gateway: &GatewayClient) -> Vec<u64> {
    match gateway.ask("history", vec![]).await.unwrap() {
        Some(Val::List(values)) => values.into_iter().map(|v| if let Val::U64(v) = v { v } else { panic!() }).collect(),
        other => panic!("history is a list: {other:?}"),
    }
}

async fn total(gateway: &GatewayClient) -> i64 {
    let Some(Val::S64(total)) = gateway.ask("get", vec![]).await.unwrap() else { panic!("get answers the total") };
    total
}

fn counter() -> EndpointComponent {
    component(artifacts::COUNTER)
}

fn counter_next() -> EndpointComponent {
    component(artifacts::COUNTER_NEXT)
}

/// Three local callers and one on another host (over TCP) stream 10,000
/// asks and tells into a counter while its component is swapped for
/// another implementation. Every ask is answered once, with the length the
/// history had right after its value: nothing lost, duplicated or
/// reordered. The total and the history go on from where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_under_load_loses_duplicates_and_reorders_nothing() {
    let host = listening_host();
    let mut events = host.subscribe();
    let endpoint = host.start("swapped", &counter(), EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway(COUNTER).unwrap();
    gateway.ask("add", vec![Val::S64(40)]).await.unwrap();
    let remote_host = listening_host();
    let remote = remote_host.connect(endpoint.address(), COUNTER, None).await.unwrap();
    assert!(remote.is_remote());

    let mut callers = JoinSet::new();
    for caller in 0..3 {
        callers.spawn(stream(endpoint.gateway(COUNTER).unwrap(), caller));
    }
    callers.spawn(stream(remote, 3));
    eventually("the callers under way", || async {
        let served = endpoint.stats();
        (served.asks + served.tells >= 2_000).then_some(())
    })
    .await;
    let report = host.swap("swapped", &counter_next(), SwapOptions::default()).await.unwrap();
    gateway.ask("add", vec![Val::S64(2)]).await.unwrap();
    let mut answers = Vec::new();
    while let Some(done) = callers.join_next().await {
        answers.extend(done.unwrap());
    }

    assert_eq!(report.endpoint, "swapped");
    assert!(report.from.ends_with("counter.wasm") && report.to.ends_with("counter_next.wasm"), "{report:?}");
    assert!(matches!(report.handover, Handover::Carried { version: 1, .. }), "{report:?}");
    assert!(endpoint.component().name.ends_with("counter_next.wasm"));
    let served = endpoint.stats();
    assert!(served.asks + served.tells > 2_000, "calls went on after the swap");
    assert_eq!(total(&gateway).await, 42, "the total went on from the old component's");

    let history = history(&gateway).await;
    assert_eq!(history.len() as u64, 4 * PER_CALLER, "every message applied once");
    let mut sorted = history.clone();
    sorted.sort_unstable();
    let mut expected: Vec<u64> = (0..4).flat_map(values).collect();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "every value once, none other");
    for caller in 0..4 {
        let sent: Vec<u64> = history.iter().copied().filter(|v| v / 1_000_000 == caller).collect();
        assert_eq!(sent, values(caller).collect::<Vec<_>>(), "caller {caller}'s messages in the order sent");
    }
    assert_eq!(answers.len() as u64, 4 * PER_CALLER / 2);
    for (value, length) in answers {
        assert_eq!(history[length as usize - 1], value, "an ask answered with the history right after it");
    }

    // Sent before the swap answered.
    let swapped = std::iter::from_fn(|| events.try_recv().ok()).find_map(|event| match event {
        HostEvent::EndpointSwapped { id, carried, .. } => Some((id, carried)),
        _ => None,
    });
    assert_eq!(swapped, Some(("swapped".to_owned(), true)));
}

/// Tasks the endpoint scheduled by number, still waiting when the swap
/// begins, run on the new component when due: each once, in due order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_tasks_due_during_a_swap_run_after_it() {
    let host = host();
    let endpoint = host.start("scheduling", &counter(), EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway(COUNTER).unwrap();
    // Some fall due around the swap; the last ones surely after it.
    let delays: Vec<(u64, u64)> = (1..=20).map(|v| (v, v * 2)).chain((21..=30).map(|v| (v, 3_000 + v))).collect();
    for (value, delay) in &delays {
        gateway.tell("append-later", vec![Val::U64(*value), Val::U64(*delay)]).await.unwrap();
    }
    // Lifecycle commands overtake queued calls: the tells are served first.
    total(&gateway).await;
    let report = endpoint.swap(&counter_next(), SwapOptions::default()).await.unwrap();
    assert!(report.tasks_carried >= 10, "the late tasks wait for the new component: {report:?}");
    let expected: Vec<u64> = delays.iter().map(|(value, _)| *value).collect();
    eventually("every task run", || async { (history(&gateway).await.len() >= expected.len()).then_some(()) }).await;
    assert_eq!(history(&gateway).await, expected);
}

/// A refused swap leaves the old component serving, its state and mailbox
/// as they were; calls sent meanwhile are answered by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_swaps_leave_the_old_component_serving_with_its_state() {
    let host = host();
    let mut events = host.subscribe();
    let endpoint = host.start("kept", &counter(), EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway(COUNTER).unwrap();
    gateway.ask("add", vec![Val::S64(7)]).await.unwrap();
    for value in [1, 2, u64::MAX] {
        gateway.tell("append", vec![Val::U64(value)]).await.unwrap();
    }
    // Lifecycle commands overtake queued calls: the tells are served first.
    total(&gateway).await;

    // Another world: it does not serve what the counter's callers call.
    let error = endpoint.swap(&component(artifacts::ECHO), SwapOptions::default()).await.unwrap_err();
    let SwapError::Incompatible { differences, .. } = &error else { panic!("{error}") };
    assert!(differences.contains("`weir:examples/counter@0.1.0` is not exported"), "{error}");

    // A component that traps in `restore`, while calls keep coming.
    let asks = (0..50).map(|i| gateway.ask("push", vec![Val::U64(100 + i)]));
    let next = counter_next();
    let (swap, answers) = tokio::join!(endpoint.swap(&next, SwapOptions::default()), futures::future::join_all(asks));
    let error = swap.unwrap_err();
    let SwapError::TakeOver { cause, .. } = &error else { panic!("{error}") };
    assert!(cause.contains("restore") && cause.contains("refusing a history that holds u64::MAX"), "{error}");
    let lengths: Vec<u32> =
        answers.into_iter().map(|a| if let Some(Val::U32(n)) = a.unwrap() { n } else { panic!() }).collect();
    assert_eq!(lengths, (4..54).collect::<Vec<_>>(), "every call meanwhile answered once, in order");

    assert!(endpoint.component().name.ends_with("counter.wasm"));
    assert_eq!(total(&gateway).await, 7);
    let expected: Vec<u64> = [1, 2, u64::MAX].into_iter().chain(100..150).collect();
    assert_eq!(history(&gateway).await, expected);

    let mut refusals = 0;
    while let Ok(event) = events.try_recv() {
        refusals += usize::from(matches!(event, HostEvent::SwapRefused { .. }));
    }
    assert_eq!(refusals, 2);
}

/// The same gateway with another type for a parameter is refused, naming
/// the function, the parameter and both types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_whose_types_changed_is_refused() {
    let host = host();
    let endpoint = host.start("typed", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let error = endpoint.swap(&component(artifacts::ECHO_SKEWED), SwapOptions::default()).await.unwrap_err();
    let SwapError::Incompatible { differences, .. } = &error else { panic!("{error}") };
    assert!(differences.contains("`weir:examples/echo@0.1.0.ping` parameter `x`: expected u64, found u32"), "{error}");
    let pinged = endpoint.gateway(ECHO).unwrap().ask("ping", vec![Val::U64(3)]).await.unwrap();
    assert_eq!(pinged, Some(Val::U64(3)));
}

/// A newer implementation reads an older one's state; the older one
/// refuses the newer layout, and the newer component serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_component_refuses_a_newer_state_layout() {
    let host = host();
    let endpoint = host.start("layouts", &counter(), EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway(COUNTER).unwrap();
    gateway.tell("append", vec![Val::U64(9)]).await.unwrap();
    endpoint.swap(&counter_next(), SwapOptions::default()).await.unwrap();
    let error = endpoint.swap(&counter(), SwapOptions::default()).await.unwrap_err();
    assert!(error.to_string().contains("cannot read layout 2 of a counter's state, only 1"), "{error}");
    assert_eq!(history(&gateway).await, [9]);
    // The same component again: its own layout.
    let report = endpoint.swap(&counter_next(), SwapOptions::default()).await.unwrap();
    assert!(matches!(report.handover, Handover::Carried { version: 2, .. }), "{report:?}");
    assert_eq!(history(&gateway).await, [9]);
}

/// A call that does not finish within the drain timeout refuses the swap;
/// nothing is killed: the call still returns, and calls sent during the
/// drain are answered by the old component.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_that_cannot_drain_in_time_is_refused_and_kills_nothing() {
    let host = host();
    let probe = host.start("draining", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    // Sent first (its first poll puts it in the mailbox), then a ping: once
    // the ping is answered, the stall has started and awaits.
    let mut stalled = Box::pin(gateway.ask("stall", vec![Val::U64(1_500)]));
    assert!(futures::poll!(&mut stalled).is_pending());
    gateway.ask("ping", vec![]).await.unwrap();
    let options = SwapOptions { drain_timeout: Duration::from_millis(200) };
    let same = component(artifacts::PROBE);
    let (swap, ping) = tokio::join!(probe.swap(&same, options), gateway.ask("ping", vec![]));
    let error = swap.unwrap_err();
    assert!(matches!(error, SwapError::DrainTimeout { in_flight: 1, .. }), "{error}");
    assert!(ping.is_ok(), "a call sent during the drain is answered");
    assert_eq!(stalled.await.unwrap(), Some(Val::U64(1_500)), "the call in flight still returns");
}

/// A sync-only component swaps too; without `weir:rpc/handover` the new
/// instance starts fresh, and the report says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_without_handover_starts_fresh() {
    let host = host();
    let echo = component(artifacts::ECHO_SYNC);
    let endpoint = host.start("fresh", &echo, EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway(ECHO_SYNC).unwrap();
    gateway.tell("notify", vec![Val::U64(5)]).await.unwrap();
    let notified = gateway.ask("notified", vec![]).await.unwrap();
    assert_eq!(notified, Some(Val::Tuple(vec![Val::U64(1), Val::U64(5)])));
    let report = endpoint.swap(&echo, SwapOptions::default()).await.unwrap();
    let Handover::Fresh { reason } = &report.handover else { panic!("{report:?}") };
    assert!(reason.contains("does not export weir:rpc/handover.snapshot"), "{reason}");
    let notified = gateway.ask("notified", vec![]).await.unwrap();
    assert_eq!(notified, Some(Val::Tuple(vec![Val::U64(0), Val::U64(0)])), "a fresh instance");
}

/// Every endpoint running one component, swapped one after another; the
/// first refusal stops the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_kind_swaps_until_the_first_refusal() {
    let host = host();
    let running = counter().info().name.clone();
    let mut endpoints = Vec::new();
    for id in ["kind-a", "kind-b", "kind-c"] {
        let endpoint = host.start(id, &counter(), with_config(&[("history", "")])).await.unwrap();
        endpoint.gateway(COUNTER).unwrap().tell("append", vec![Val::U64(1)]).await.unwrap();
        endpoints.push(endpoint);
    }
    endpoints[2].gateway(COUNTER).unwrap().tell("append", vec![Val::U64(u64::MAX)]).await.unwrap();
    // Lifecycle commands overtake queued calls: each tell is served first.
    for endpoint in &endpoints {
        total(&endpoint.gateway(COUNTER).unwrap()).await;
    }
    let stopped = host.swap_all(&running, &counter_next(), SwapOptions::default()).await.unwrap_err();
    let swapped: Vec<&str> = stopped.swapped.iter().map(|r| r.endpoint.as_str()).collect();
    assert_eq!(swapped, ["kind-a", "kind-b"]);
    assert!(matches!(stopped.error, SwapError::TakeOver { .. }), "{stopped}");
    assert!(endpoints[2].component().name.ends_with("counter.wasm"));

    let gateway = endpoints[2].gateway(COUNTER).unwrap();
    gateway.tell("reset", vec![]).await.unwrap();
    total(&gateway).await;
    let reports = host.swap_all(&running, &counter_next(), SwapOptions::default()).await.unwrap();
    assert_eq!(reports.len(), 1);
    for endpoint in &endpoints {
        assert!(endpoint.component().name.ends_with("counter_next.wasm"));
    }
}

/// What cannot be swapped is refused up front: an unknown endpoint, an
/// endpoint not yet started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_started_endpoint_swaps() {
    let host: RpcService = host();
    let error = host.swap("nobody", &counter(), SwapOptions::default()).await.unwrap_err();
    assert_eq!(error, SwapError::UnknownEndpoint("nobody".into()));
    let spawned = host.spawn("not-started", &counter(), EndpointOptions::default()).await.unwrap();
    let error = spawned.swap(&counter_next(), SwapOptions::default()).await.unwrap_err();
    assert!(matches!(error, SwapError::NotStarted { .. }), "{error}");
    assert!(error.to_string().contains("stopped"), "{error}");
}

/// A component that refuses to hand its state over keeps serving; one
/// that traps while it does ends the endpoint, and the swap says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_refused_keeps_the_endpoint_and_a_trap_in_it_ends_it() {
    let host = host();
    let endpoint = host.start("snapshots", &counter_next(), EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway(COUNTER).unwrap();
    gateway.ask("add", vec![Val::S64(-3)]).await.unwrap();
    let error = endpoint.swap(&counter(), SwapOptions::default()).await.unwrap_err();
    let SwapError::SnapshotRefused { reason, .. } = &error else { panic!("{error}") };
    assert_eq!(reason, "a negative total (-3) is not handed over");
    assert_eq!(total(&gateway).await, -3, "it serves on");

    gateway.tell("reset", vec![]).await.unwrap();
    gateway.ask("add", vec![Val::S64(i64::MAX)]).await.unwrap();
    assert_eq!(total(&gateway).await, i64::MAX);
    let error = endpoint.swap(&counter(), SwapOptions::default()).await.unwrap_err();
    let SwapError::Terminated { cause, .. } = &error else { panic!("{error}") };
    assert!(cause.contains("snapshot") && cause.contains("refusing to hand over a total of i64::MAX"), "{error}");
    assert!(endpoint.terminated().await.is_err(), "the trap ended the endpoint");
}
