//! Capacity: one host runs 10,000 endpoints at once. A test process of its
//! own, since its engine reserves instance pools for all of them, and the
//! kernel's cap on mappings is per process.

use std::time::Duration;

use futures::StreamExt;
use wasmtime::component::Val;
use weir::service::ServiceError;
use weir::{EndpointOptions, Engine, HostConfig, RpcService, SpawnError, StartError};
use weir_tests::artifacts;
use weir_tests::gateways::ECHO;

const ENDPOINTS: u32 = 10_000;
const GIB: u64 = 1 << 30;

/// The process's resident memory, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// 10,000 endpoints start within 1 GiB of resident memory, each answers
/// one ask, one more is refused with a clear error, and all stop cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_endpoints_start_answer_and_stop() {
    let config = HostConfig {
        worker_threads: 2,
        max_endpoints: ENDPOINTS,
        ask_timeout: Duration::from_secs(60),
        ..HostConfig::default()
    };
    let engine = Engine::new(&config).unwrap();
    let echo = engine.load_file(artifacts::ECHO).unwrap();
    let host = RpcService::new(config, engine).unwrap();
    host.start("warm-up", &echo, EndpointOptions::default()).await.unwrap().close().await.unwrap();

    let before = resident();
    let mut endpoints = Vec::with_capacity(ENDPOINTS as usize);
    for i in 0..ENDPOINTS {
        endpoints.push(host.start(&format!("echo-{i}"), &echo, EndpointOptions::default()).await.unwrap());
    }
    let grown = resident().saturating_sub(before);
    assert!(grown < GIB, "10,000 idle endpoints hold {} MiB", grown >> 20);
    let held: u64 = host.endpoints().iter().map(|e| e.stats.linear_memory + e.stats.host_held).sum();
    assert!(held > 0 && held < u64::from(ENDPOINTS) * (16 << 20), "each reports what it holds: {held} bytes in all");

    let refused = host.start("one-too-many", &echo, EndpointOptions::default()).await.unwrap_err();
    assert!(matches!(refused, StartError::Spawn(SpawnError::TooManyEndpoints(10_000))), "{refused}");

    let answered = futures::stream::iter(endpoints.iter().enumerate())
        .map(|(i, endpoint)| async move {
            let gateway = endpoint.gateway(ECHO).unwrap();
            gateway.ask("ping", vec![Val::U64(i as u64)]).await.unwrap()
        })
        .buffered(256)
        .collect::<Vec<_>>()
        .await;
    let expected: Vec<Option<Val>> = (0..u64::from(ENDPOINTS)).map(|i| Some(Val::U64(i))).collect();
    assert_eq!(answered, expected, "each endpoint answered its own ask");

    host.shutdown().await.unwrap();
    assert!(host.endpoints().is_empty());
    for endpoint in endpoints {
        assert_eq!(endpoint.terminated().await, Ok(()));
    }
}

/// A host whose `max-endpoints` the kernel's cap on mappings cannot hold
/// is refused at start, naming the setting to raise.
#[test]
fn a_host_asking_more_mappings_than_the_kernel_allows_is_refused() {
    let engine = Engine::new(&HostConfig { max_endpoints: 10, ..HostConfig::default() }).unwrap();
    let config = HostConfig { max_endpoints: 1_500_000_000, ..HostConfig::default() };
    let error = RpcService::new(config, engine).unwrap_err();
    assert!(matches!(error, ServiceError::KernelMappings { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("vm.max_map_count") && message.contains("sysctl -w"), "{message}");
}
