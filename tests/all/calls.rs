//! Asks and tells: kinds, order, timeouts, back pressure, and host-side
//! invocation by name.

use std::pin::Pin;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use wasmtime::component::Val;
use weir::{EndpointOptions, HostConfig, RpcError, RpcService};
use weir_tests::gateways::{CALLER, COUNTER, ECHO, PROBE};
use weir_tests::{
    artifacts, as_list, as_u64, component, engine, eventually, guest_error, guest_ok, host, host_with, text,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_and_tells_reach_sync_and_async_functions() {
    let host = host();
    let echo = host.start("echo-kinds", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let gateway = echo.gateway(ECHO).unwrap();
    assert_eq!(gateway.ask("ping", vec![Val::U64(1)]).await.unwrap(), Some(Val::U64(1)));
    assert_eq!(gateway.ask("ping-async", vec![Val::U64(2)]).await.unwrap(), Some(Val::U64(2)));
    let payload: Vec<Val> = (0..1024u32).map(|i| Val::U8(i as u8)).collect();
    assert_eq!(gateway.ask("echo", vec![Val::List(payload.clone())]).await.unwrap(), Some(Val::List(payload)));

    gateway.tell("notify", vec![Val::U64(10)]).await.unwrap();
    gateway.tell("notify-async", vec![Val::U64(20)]).await.unwrap();
    eventually("both tells to be handled", || async {
        let notified = gateway.ask("notified", vec![]).await.unwrap();
        (notified == Some(Val::Tuple(vec![Val::U64(2), Val::U64(30)]))).then_some(())
    })
    .await;
    let stats = echo.stats();
    assert_eq!((stats.tells, stats.asks >= 3), (2, true), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_from_one_sender_arrive_in_order() {
    let host = host();
    let counter =
        host.start("counter-order", &component(artifacts::COUNTER), EndpointOptions::default()).await.unwrap();
    let gateway = counter.gateway(COUNTER).unwrap();
    for value in 1..=300u64 {
        gateway.tell("append", vec![Val::U64(value)]).await.unwrap();
    }
    assert_eq!(as_list(gateway.ask("history", vec![]).await.unwrap()), (1..=300).collect::<Vec<_>>());

    // The same from inside another endpoint, through its typed client.
    gateway.tell("reset", vec![]).await.unwrap();
    let caller = host.start("caller-order", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let values: Vec<Val> = (1..=300u64).map(Val::U64).collect();
    let reply = caller
        .gateway(CALLER)
        .unwrap()
        .ask("append-all", vec![text(counter.address()), Val::List(values)])
        .await
        .unwrap();
    assert_eq!(guest_ok(reply), None);
    assert_eq!(as_list(gateway.ask("history", vec![]).await.unwrap()), (1..=300).collect::<Vec<_>>());
}

/// Runs on the test's paused clock: the ten seconds pass at once.
#[tokio::test(start_paused = true)]
async fn the_default_ask_timeout_is_ten_seconds_and_names_endpoint_and_function() {
    let host =
        RpcService::on_runtime(weir_tests::config(), engine().clone(), tokio::runtime::Handle::current()).unwrap();
    assert_eq!(host.config().ask_timeout, Duration::from_secs(10));
    let probe = host.start("probe-timeout", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let error = probe.gateway(PROBE).unwrap().ask("stall", vec![Val::U64(3_600_000)]).await.unwrap_err();
    assert_eq!(
        error,
        RpcError::Timeout {
            endpoint: "probe-timeout".into(),
            function: "weir:examples/probe@0.1.0.stall".into(),
            timeout: Duration::from_secs(10),
        }
    );
    assert!(error.to_string().contains("probe-timeout") && error.to_string().contains("stall"), "{error}");
    host.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_can_set_its_own_timeout() {
    let host = host();
    let probe =
        host.start("probe-own-timeout", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let short = probe.gateway(PROBE).unwrap().with_timeout(Duration::from_millis(50));
    let error = short.ask("stall", vec![Val::U64(3_600_000)]).await.unwrap_err();
    assert!(matches!(error, RpcError::Timeout { timeout, .. } if timeout == Duration::from_millis(50)), "{error}");

    // An endpoint sets the timeout on its handle.
    let caller =
        host.start("caller-own-timeout", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let reply = caller
        .gateway(CALLER)
        .unwrap()
        .ask("stall", vec![text(probe.address()), Val::U64(3_600_000), Val::U64(50)])
        .await
        .unwrap();
    let (case, message) = guest_error(reply);
    assert_eq!(case, "timeout");
    let Val::String(message) = message else { panic!("{message:?}") };
    assert!(message.contains("probe-own-timeout") && message.contains("probe@0.1.0.stall"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_pushes_back_on_senders_and_loses_nothing() {
    let host = host_with(HostConfig { mailbox_capacity: 4, ..weir_tests::config() });
    let probe = host.start("probe-full", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();

    // Block the endpoint's main thread for a while.
    let spin = tokio::spawn({
        let gateway = gateway.clone();
        async move { gateway.ask("spin", vec![Val::U64(3_000)]).await }
    });
    // Tell until a tell has to wait: the mailbox holds 4, and the endpoint
    // takes at most one batch before its main thread blocks.
    let mut waiting = FuturesUnordered::new();
    let mut sent = 0u64;
    while waiting.is_empty() {
        assert!(sent < 10_000, "no tell ever waited for room");
        let mut tell: Pin<Box<_>> = Box::pin(gateway.tell("poke", vec![]));
        sent += 1;
        if tell.as_mut().now_or_never().is_none() {
            waiting.push(tell);
        }
    }
    // Everything waiting gets in once the endpoint drains its mailbox.
    for _ in 0..20 {
        waiting.push(Box::pin(gateway.tell("poke", vec![])));
        sent += 1;
    }
    while let Some(outcome) = waiting.next().await {
        outcome.unwrap();
    }
    spin.await.unwrap().unwrap();
    let pokes = eventually("every poke to be handled", || async {
        let pokes = as_u64(gateway.ask("pokes", vec![]).await.unwrap());
        (pokes == sent).then_some(pokes)
    })
    .await;
    assert_eq!(pokes, probe.stats().tells);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_side_calls_are_checked_by_name_and_type() {
    let host = host();
    let echo = host.start("echo-checked", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();

    let error = host.connect(echo.address(), "weir:examples/counter@0.1.0", None).await.unwrap_err();
    assert!(matches!(&error, RpcError::Handshake(m) if m.contains("it exports: weir:examples/echo@0.1.0")), "{error}");

    let gateway = echo.gateway(ECHO).unwrap();
    let unknown = |error: RpcError| match error {
        RpcError::UnknownFunction { detail, .. } => detail,
        other => panic!("expected unknown-function, got {other}"),
    };
    let detail = unknown(gateway.ask("pong", vec![]).await.unwrap_err());
    assert!(detail.contains("has no function `pong`"), "{detail}");
    let detail = unknown(gateway.ask("ping", vec![text("seven")]).await.unwrap_err());
    assert!(detail.contains("argument `x`: expected u64, found string"), "{detail}");
    let detail = unknown(gateway.ask("ping", vec![]).await.unwrap_err());
    assert!(detail.contains("takes 1 argument(s), got 0"), "{detail}");
    let detail = unknown(gateway.ask("notify", vec![Val::U64(1)]).await.unwrap_err());
    assert!(detail.contains("has no result: tell it"), "{detail}");
    let detail = unknown(gateway.tell("ping", vec![Val::U64(1)]).await.unwrap_err());
    assert!(detail.contains("has a result: ask it"), "{detail}");

    // Nothing of that reached the endpoint, which keeps serving.
    assert_eq!(gateway.ask("ping", vec![Val::U64(4)]).await.unwrap(), Some(Val::U64(4)));
    assert_eq!(echo.stats().asks, 1);
}
