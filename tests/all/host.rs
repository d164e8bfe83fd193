//! The host as a whole: the service is the composition root. It lists its
//! endpoints with their state and what they served, reports what happens
//! as one stream of events, and a shutdown leaves nothing running, however
//! it races with spawns.

use tokio::sync::broadcast;
use wasmtime::component::Val;
use weir::{EndpointFailure, EndpointOptions, HostEvent, Lifecycle, RpcService, SpawnError};
use weir_tests::gateways::{ECHO, FAULT};
use weir_tests::{PATIENCE, artifacts, component, host, with_config};

use crate::remote::listening_host;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_lists_its_endpoints_with_their_state_and_what_they_served() {
    let host = host();
    let echo = component(artifacts::ECHO);
    host.spawn("listed-idle", &echo, EndpointOptions::default()).await.unwrap();
    let busy = host.start("listed-busy", &echo, EndpointOptions::default()).await.unwrap();
    let gateway = busy.gateway(ECHO).unwrap();
    gateway.ask("ping", vec![Val::U64(1)]).await.unwrap();
    gateway.ask("ping", vec![Val::U64(2)]).await.unwrap();
    gateway.tell("notify", vec![Val::U64(3)]).await.unwrap();
    gateway.ask("notified", vec![]).await.unwrap();

    let endpoints = host.endpoints();
    let ids: Vec<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["listed-busy", "listed-idle"], "sorted by id");
    let (busy, idle) = (&endpoints[0], &endpoints[1]);
    assert_eq!((busy.state, idle.state), (Lifecycle::Started, Lifecycle::Stopped));
    assert_eq!((busy.stats.asks, busy.stats.tells), (3, 1));
    assert_eq!(busy.address, host.address_of("listed-busy"));
    assert!(busy.component.ends_with("echo.wasm"), "{}", busy.component);
    assert_eq!(busy.queued, 0);
}

/// The next event `matches` picks, skipping others; fails after PATIENCE.
async fn next_event<T>(
    events: &mut broadcast::Receiver<HostEvent>,
    mut matches: impl FnMut(HostEvent) -> Option<T>,
) -> T {
    let waiting = async {
        loop {
            if let Some(found) = matches(events.recv().await.unwrap()) {
                return found;
            }
        }
    };
    tokio::time::timeout(PATIENCE, waiting).await.expect("the event never came")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_reports_endpoints_and_connections() {
    let host = listening_host();
    let mut events = host.subscribe();
    let echo = host.start("evented", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let started = next_event(&mut events, |event| match event {
        HostEvent::EndpointStarted { id, component, address } if id == "evented" => Some((component, address)),
        _ => None,
    })
    .await;
    assert!(started.0.ends_with("echo.wasm") && started.1 == echo.address(), "{started:?}");

    let trapper =
        host.start("evented-trapper", &component(artifacts::FAULTY), with_config(&[("fault", "trap")])).await.unwrap();
    assert!(trapper.gateway(FAULT).unwrap().ask("trigger", vec![]).await.is_err());
    let failure = next_event(&mut events, |event| match event {
        HostEvent::EndpointTerminated { id, failure } if id == "evented-trapper" => Some(failure),
        _ => None,
    })
    .await;
    assert!(matches!(failure, Some(EndpointFailure::Panicked { .. })), "{failure:?}");
    echo.close().await.unwrap();
    let clean = next_event(&mut events, |event| match event {
        HostEvent::EndpointTerminated { id, failure } if id == "evented" => Some(failure),
        _ => None,
    })
    .await;
    assert_eq!(clean, None, "a clean stop has no cause");

    // Another host connects: both see the connection open, and close.
    let other = listening_host();
    let mut other_events = other.subscribe();
    host.start("evented-echo", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    other.connect(&host.address_of("evented-echo"), ECHO, None).await.unwrap();
    let inbound = |open: bool| {
        move |event| match event {
            HostEvent::ConnectionOpened { peer, inbound: true } if open => Some(peer),
            HostEvent::ConnectionClosed { peer, inbound: true, .. } if !open => Some(peer),
            _ => None,
        }
    };
    let peer = next_event(&mut events, inbound(true)).await;
    let dialled = next_event(&mut other_events, |event| match event {
        HostEvent::ConnectionOpened { peer, inbound: false } => Some(peer),
        _ => None,
    })
    .await;
    assert_eq!(dialled, host.authority());
    other.shutdown().await.unwrap();
    drop(other);
    assert_eq!(next_event(&mut events, inbound(false)).await, peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_racing_a_shutdown_never_leaves_an_endpoint_running() {
    let echo = component(artifacts::ECHO);
    for round in 0..5 {
        let host: RpcService = host();
        let spawns: Vec<_> = (0..40)
            .map(|i| {
                let (host, echo) = (host.clone(), echo.clone());
                tokio::spawn(async move { host.start(&format!("racer-{i}"), &echo, EndpointOptions::default()).await })
            })
            .collect();
        tokio::task::yield_now().await;
        host.shutdown().await.unwrap();
        for spawn in spawns {
            match spawn.await.unwrap() {
                Ok(endpoint) => {
                    let stopped = tokio::time::timeout(PATIENCE, endpoint.terminated()).await;
                    assert!(stopped.is_ok(), "round {round}: `{}` outlived the shutdown", endpoint.id());
                }
                Err(weir::StartError::Spawn(SpawnError::ServiceStopped)) => {}
                Err(other) => panic!("round {round}: {other}"),
            }
        }
        assert!(host.endpoints().is_empty(), "round {round}: {:?}", host.endpoints());
        let late = host.spawn("too-late", &echo, EndpointOptions::default()).await;
        assert!(matches!(late, Err(SpawnError::ServiceStopped)), "{late:?}");
    }
}

/// A host runs as many sync-only endpoints as `max-endpoints` allows, not
/// as many as a pool of fiber stacks happened to hold (1,024).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_sync_only_endpoints_run_at_once() {
    let host = host();
    let echo = component(artifacts::ECHO_SYNC);
    let mut endpoints = Vec::new();
    for i in 0..2000 {
        endpoints.push(host.start(&format!("sync-{i}"), &echo, EndpointOptions::default()).await.unwrap());
    }
    for (i, endpoint) in endpoints.iter().enumerate() {
        let x = Val::U64(i as u64);
        assert_eq!(
            endpoint.gateway(weir_tests::gateways::ECHO_SYNC).unwrap().ask("ping", vec![x.clone()]).await.unwrap(),
            Some(x)
        );
    }
    assert_eq!(host.endpoints().len(), 2000);
    host.shutdown().await.unwrap();
}

/// The host stays generic: no file of `host/src` names a component of
/// Flink's control plane, not even in a comment. What those components
/// need from the host is a capability any endpoint could use.
#[test]
fn the_host_names_no_component_of_the_control_plane() {
    const NAMES: [&str; 9] = [
        "dispatcher",
        "jobmaster",
        "job master",
        "resourcemanager",
        "resource manager",
        "resource-manager",
        "taskexecutor",
        "task executor",
        "taskmanager",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src");
    let mut pending = vec![root];
    let mut named = Vec::new();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
        for (number, line) in (1..).zip(text.lines()) {
            if let Some(name) = NAMES.iter().find(|name| line.contains(*name)) {
                named.push(format!("{}:{number} names `{name}`", path.display()));
            }
        }
    }
    assert!(named.is_empty(), "the host must stay generic:\n{}", named.join("\n"));
}
