//! The wire: one multiplexed connection per pair of hosts, frame limits,
//! and what a host does with bytes that are not weir frames.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use wasmtime::component::Val;
use weir::{GatewayClient, HostConfig, PROTOCOL_VERSION, RpcError};
use weir_tests::gateways::{COUNTER, ECHO, PROBE};
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{artifacts, as_u64, capture_logs, eventually, host_with, logs};

use super::{listening_config, listening_host};

fn echo_host(spec: HostSpec) -> HostProcess {
    HostProcess::start(&spec.endpoint("echo", artifacts::ECHO, "").endpoint("probe", artifacts::PROBE, "").endpoint(
        "counter",
        artifacts::COUNTER,
        "",
    ))
}

/// A frame as bytes: a big-endian length, then the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// A hello frame with this protocol version (bincode: variant 0, the magic,
/// then the version, a frame limit of 250 bytes and an idle timeout of 250
/// ms, one-byte varints).
fn hello(version: u32) -> Vec<u8> {
    frame(&[0, b'w', b'e', b'i', b'r', u8::try_from(version).unwrap(), 250, 250])
}

/// Reads until the peer closes the connection (or resets it, having left
/// bytes unread); what it sent before that.
fn read_to_close(mut socket: TcpStream) -> Vec<u8> {
    socket.set_read_timeout(Some(weir_tests::PATIENCE)).unwrap();
    let mut received = Vec::new();
    match socket.read_to_end(&mut received) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the host should close the connection, not leave it open: {error}"),
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_name_the_host_and_port() {
    let host = listening_host();
    let authority = host.authority().to_owned();
    assert!(authority.starts_with("127.0.0.1:") && !authority.ends_with(":0"), "{authority}");
    assert_eq!(host.address_of("echo"), format!("weir://{authority}/echo"));

    let remote = echo_host(HostSpec::new());
    let probe = host.connect(&remote.address("probe"), PROBE, None).await.unwrap();
    let Some(Val::Record(identity)) = probe.ask("who", vec![]).await.unwrap() else { panic!("expected a record") };
    assert_eq!(identity[1], ("address".to_owned(), Val::String(remote.address("probe"))), "the endpoint's own view");
    // A host's own host:port is local: no socket is involved.
    let local = host.start("echo", &weir_tests::component(artifacts::ECHO), Default::default()).await.unwrap();
    assert!(!host.connect(local.address(), ECHO, None).await.unwrap().is_remote());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_share_one_connection_and_replies_come_back_out_of_order() {
    capture_logs();
    let host = listening_host();
    let since = logs().len();
    let remote = echo_host(HostSpec::new());
    let probe = host.connect(&remote.address("probe"), PROBE, None).await.unwrap();
    let echo = host.connect(&remote.address("echo"), ECHO, None).await.unwrap();

    let ask = |gateway: GatewayClient, function: &'static str, x: u64| async move {
        (function, gateway.ask(function, vec![Val::U64(x)]).await)
    };
    let mut calls = FuturesUnordered::new();
    calls.push(ask(probe, "stall", 60_000));
    // Faster asks, sent after the slow one on the same connection, overtake it.
    let fast = 200;
    for x in 0..fast {
        calls.push(ask(echo.clone(), "ping", x));
    }
    for _ in 0..fast {
        let (function, outcome) = calls.next().await.unwrap();
        assert_eq!(function, "ping");
        as_u64(outcome.unwrap());
    }
    assert_eq!(connections_to(&remote, since), 1, "every call went over one connection:\n{}", logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_fails_at_the_caller_at_once() {
    let limit = 64 * 1024;
    let host = host_with(HostConfig { frame_size: limit, ..listening_config() });
    let remote = echo_host(HostSpec::new());
    // A timeout far beyond the test's patience: the failure must not be one.
    let echo = host.connect(&remote.address("echo"), ECHO, None).await.unwrap().with_timeout(Duration::from_secs(3600));
    let payload = Val::List(vec![Val::U8(7); 100 * 1024]);
    let error = echo.ask("echo", vec![payload]).await.unwrap_err();
    let RpcError::FrameTooLarge { size, limit: reported } = error else {
        panic!("expected frame-too-large, got {error}")
    };
    assert_eq!(reported, limit);
    assert!(size > 100 * 1024, "{size}");
    // Local calls are bounded by `max-message-size`, not by the frame size.
    let local = host.start("echo", &weir_tests::component(artifacts::ECHO), Default::default()).await.unwrap();
    let payload = Val::List(vec![Val::U8(7); 100 * 1024]);
    assert_eq!(local.gateway(ECHO).unwrap().ask("echo", vec![payload.clone()]).await.unwrap(), Some(payload));
    // The connection is still good.
    assert!(echo.ask("ping", vec![Val::U64(1)]).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_peers_smaller_limit_fails_at_the_caller_too() {
    capture_logs();
    let host = listening_host();
    let since = logs().len();
    let remote = echo_host(HostSpec::new().host("frame-size = 65536"));
    let echo = host.connect(&remote.address("echo"), ECHO, None).await.unwrap().with_timeout(Duration::from_secs(3600));
    let error = echo.ask("echo", vec![Val::List(vec![Val::U8(7); 100 * 1024])]).await.unwrap_err();
    assert!(matches!(error, RpcError::FrameTooLarge { limit: 65536, .. }), "the peer's limit applies: {error}");
    assert!(echo.ask("ping", vec![Val::U64(1)]).await.is_ok(), "the connection is still good");
    assert_eq!(connections_to(&remote, since), 1, "{}", logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_fails_with_frame_too_large() {
    let host = listening_host();
    let remote = echo_host(HostSpec::new().host("frame-size = 65536"));
    let counter = host.connect(&remote.address("counter"), COUNTER, None).await.unwrap();
    // 10,000 values of 9 bytes each: small calls, a 90 kB history.
    for value in 0..10_000u64 {
        counter.tell("append", vec![Val::U64(u64::MAX - value)]).await.unwrap();
    }
    let error = counter.ask("history", vec![]).await.unwrap_err();
    let RpcError::FrameTooLarge { size, limit } = error else { panic!("expected frame-too-large, got {error}") };
    assert_eq!(limit, 65536);
    assert!(size > 90_000, "{size}");
    assert!(counter.ask("add", vec![Val::S64(1)]).await.is_ok(), "the connection is still good");
}

/// Sends `bytes` on a fresh connection and checks that the host closes it
/// with `reason` in its log, while serving everyone else.
async fn closes_only_that_connection(bytes: &[u8], reason: &str) {
    let host = listening_host();
    let remote = echo_host(HostSpec::new());
    let echo = host.connect(&remote.address("echo"), ECHO, None).await.unwrap();

    let mut socket = TcpStream::connect(remote.authority()).unwrap();
    socket.write_all(bytes).unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    tokio::task::spawn_blocking(move || read_to_close(socket)).await.unwrap();
    eventually("the host to log why it closed the connection", || async {
        remote
            .logs()
            .lines()
            .any(|line| line.contains("connection from host closed") && line.contains(reason))
            .then_some(())
    })
    .await;
    assert_eq!(echo.ask("ping", vec![Val::U64(3)]).await.unwrap(), Some(Val::U64(3)), "others are still served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_only_that_connection() {
    closes_only_that_connection(b"GET / HTTP/1.1\r\nHost: weir\r\n\r\n", "frame").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_only_that_connection() {
    let mut bytes = hello(PROTOCOL_VERSION);
    bytes.extend_from_slice(&(1u32 << 30).to_be_bytes());
    closes_only_that_connection(&bytes, "invalid frame").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_closes_only_that_connection() {
    let mut bytes = hello(PROTOCOL_VERSION);
    bytes.extend_from_slice(&100u32.to_be_bytes());
    bytes.extend_from_slice(&[4; 10]);
    closes_only_that_connection(&bytes, "ended inside a frame").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_frame_after_the_hello_closes_only_that_connection() {
    let mut bytes = hello(PROTOCOL_VERSION);
    bytes.extend_from_slice(&frame(&[200, 1, 2, 3]));
    closes_only_that_connection(&bytes, "undecodable frame header").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_protocol_version_is_refused_with_a_reason() {
    let remote = echo_host(HostSpec::new());
    let mut socket = TcpStream::connect(remote.authority()).unwrap();
    socket.write_all(&hello(99)).unwrap();
    let received = tokio::task::spawn_blocking(move || read_to_close(socket)).await.unwrap();
    // A `refused` frame (variant 1) with the reason.
    assert_eq!(received.get(4), Some(&1), "{received:?}");
    let reason = String::from_utf8_lossy(&received);
    let expected =
        format!("protocol version mismatch: this host speaks version {PROTOCOL_VERSION}, the peer version 99");
    assert!(reason.contains(&expected), "{reason}");
}

#[test]
fn a_connection_outlives_the_runtime_of_the_caller_that_opened_it() {
    capture_logs();
    let since = logs().len();
    let remote = echo_host(HostSpec::new());
    let host = listening_host();
    let ping = |runtime: &tokio::runtime::Runtime| {
        runtime.block_on(async {
            let echo = host.connect(&remote.address("echo"), ECHO, None).await.unwrap();
            echo.ask("ping", vec![Val::U64(1)]).await.unwrap()
        })
    };
    let first = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(ping(&first), Some(Val::U64(1)));
    drop(first);
    let second = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(ping(&second), Some(Val::U64(1)));
    assert_eq!(connections_to(&remote, since), 1, "the link opened from the first runtime kept serving:\n{}", logs());
}

/// How many connections this process opened to `remote`'s host since
/// `since` (the length of this process's logs before the remote started):
/// it logs each before its first call goes out (the remote's own log, read
/// from its output by another thread, may not have the line yet). Earlier
/// lines may name the same port, which a host of an earlier test had.
fn connections_to(remote: &HostProcess, since: usize) -> usize {
    let peer = format!("peer={}", remote.authority());
    logs()[since..].lines().filter(|line| line.contains("connected to host") && line.contains(&peer)).count()
}
