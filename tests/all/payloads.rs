//! Large values: every type that can be large goes through a local and a
//! remote ask whole, just below the default frame size; a call over the
//! host's message limit is refused to its caller, and the endpoint keeps
//! serving.

use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::Val;
use weir::{EndpointOptions, GatewayClient, HostConfig, RpcError, Value};
use weir_tests::gateways::ECHO;
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{artifacts, capture_logs, component, config, host, host_with};

use crate::remote::listening_host;

/// 9 MiB: under the default frame size (10 MiB), and far over the
/// 5 MiB at which a byte list used to trap the endpoint that returned it.
const LARGE: usize = 9 * 1024 * 1024;

/// Large values take a while through dynamic values on a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(600);

/// `len` bytes that are not all alike, so that a shifted or truncated copy
/// does not compare equal.
fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
}

/// Each large type, echoed by `gateway`, comes back equal to what was sent.
async fn every_large_type_comes_back_whole(gateway: &GatewayClient) {
    let gateway = gateway.clone().with_timeout(TIMEOUT);
    // A byte list on its own: passed as bytes.
    let bytes = pattern(LARGE);
    let back = gateway.ask_values("echo", vec![Value::Bytes(bytes.clone())]).await.unwrap().unwrap();
    assert!(back.as_bytes().is_some(), "a byte-list result comes back as bytes");
    assert!(back == Value::Bytes(bytes), "the 9 MiB byte list came back changed");

    // A one-way payload: only its length comes back.
    let length = gateway.ask_values("absorb", vec![pattern(LARGE).into()]).await.unwrap();
    assert_eq!(length, Some(Value::Val(Val::U32(LARGE as u32))));

    // A byte list inside a record: dynamic values, one per byte.
    let data = pattern(LARGE - 64);
    let chunk = Val::Record(vec![("sequence".into(), Val::U64(7)), ("data".into(), Value::Bytes(data).into_val())]);
    let back = gateway.ask("echo-chunk", vec![chunk.clone()]).await.unwrap();
    assert!(back.as_ref() == Some(&chunk), "the record with a 9 MiB byte list came back changed");
    drop((chunk, back));

    // 9 MiB of u64s.
    let words = Val::List((0..(LARGE / 8) as u64).map(|i| Val::U64(i * 3)).collect());
    let back = gateway.ask("echo-words", vec![words.clone()]).await.unwrap();
    assert!(back.as_ref() == Some(&words), "the 9 MiB list of u64 came back changed");

    // A 9 MiB string.
    let text: String = (0..LARGE).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let back = gateway.ask("echo-text", vec![Val::String(text.clone())]).await.unwrap();
    assert_eq!(back, Some(Val::String(text)));

    assert_eq!(gateway.ask("ping", vec![Val::U64(1)]).await.unwrap(), Some(Val::U64(1)), "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_large_type_goes_through_a_local_ask_whole() {
    let host = host();
    let echo = host.start("echo-large", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    every_large_type_comes_back_whole(&echo.gateway(ECHO).unwrap()).await;
    assert_eq!(echo.state(), weir::Lifecycle::Started, "the endpoint is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_large_type_goes_through_a_remote_ask_whole() {
    capture_logs();
    let host = listening_host();
    let remote = HostProcess::start(&HostSpec::new().endpoint("echo", artifacts::ECHO, ""));
    let gateway = host.connect(&remote.address("echo"), ECHO, None).await.unwrap();
    every_large_type_comes_back_whole(&gateway).await;
    assert!(!remote.logs().contains("failed"), "{}", remote.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_message_limit_is_refused_and_the_endpoint_keeps_serving() {
    let limit = 1024 * 1024;
    let host = host_with(HostConfig { frame_size: limit, max_message_size: limit, ..config() });
    let echo = host.start("echo-limit", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let gateway = echo.gateway(ECHO).unwrap();

    for function in ["echo", "absorb"] {
        let error = gateway.ask_values(function, vec![pattern(limit as usize + 1).into()]).await.unwrap_err();
        let RpcError::MessageTooLarge { size, limit: reported } = &error else {
            panic!("expected message-too-large, got {error}")
        };
        assert_eq!((*size, *reported), (limit + 1, limit));
        assert!(error.to_string().contains("max-message-size"), "the error names the setting: {error}");
    }
    // Nested, in dynamic values, counted the same way.
    let chunk = Val::Record(vec![
        ("sequence".into(), Val::U64(1)),
        ("data".into(), Value::Bytes(pattern(limit as usize)).into_val()),
    ]);
    let error = gateway.ask("echo-chunk", vec![chunk]).await.unwrap_err();
    assert!(matches!(error, RpcError::MessageTooLarge { .. }), "{error}");
    // A tell over the limit is dropped as a dead letter, never delivered.
    gateway.tell_values("sink", vec![pattern(limit as usize + 1).into()]).await.unwrap();

    // Just at the limit, and after all that, it serves.
    let bytes = pattern(limit as usize);
    let back = gateway.ask_values("echo", vec![bytes.clone().into()]).await.unwrap();
    assert!(back == Some(Value::Bytes(bytes)));
    let notified = gateway.ask("notified", vec![]).await.unwrap();
    assert_eq!(notified, Some(Val::Tuple(vec![Val::U64(0), Val::U64(0)])), "the oversized tell never arrived");
    assert_eq!(echo.state(), weir::Lifecycle::Started, "the endpoint is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_lists_in_either_form_reach_typed_and_dynamic_functions() {
    let host = host();
    let echo = host.start("echo-forms", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let gateway = echo.gateway(ECHO).unwrap();
    let bytes = pattern(1000);
    // A dynamic list to a typed function, bytes to a dynamic one.
    let as_val = Value::Bytes(bytes.clone()).into_val();
    assert_eq!(gateway.ask("echo", vec![as_val.clone()]).await.unwrap(), Some(as_val.clone()));
    let chunk = Val::Record(vec![("sequence".into(), Val::U64(9)), ("data".into(), as_val)]);
    assert_eq!(gateway.ask("echo-chunk", vec![chunk.clone()]).await.unwrap(), Some(chunk));
    // The wrong type is the caller's error, in either form.
    let error = gateway.ask_values("ping", vec![Value::Bytes(bytes)]).await.unwrap_err();
    assert!(error.to_string().contains("expected u64, found list<u8>"), "{error}");
    // Tells with bytes arrive.
    gateway.tell_values("sink", vec![pattern(300).into()]).await.unwrap();
    weir_tests::eventually("the tell to arrive", || async {
        let notified = gateway.ask("notified", vec![]).await.unwrap();
        (notified == Some(Val::Tuple(vec![Val::U64(1), Val::U64(300)]))).then_some(())
    })
    .await;
}

/// An endpoint sends byte lists to another through its typed client, up to
/// 9 MiB each way, locally and to another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_pass_large_byte_lists_to_each_other() {
    let host = listening_host();
    let caller = host.start("caller-bytes", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let echo = host.start("echo-bytes", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let remote = HostProcess::start(&HostSpec::new().endpoint("echo", artifacts::ECHO, ""));
    let caller = caller.gateway(weir_tests::gateways::CALLER).unwrap().with_timeout(TIMEOUT);
    let expected = |size: usize| (0..size).map(|i| (i % 251) as u64).sum::<u64>() + size as u64;
    for target in [echo.address().to_owned(), remote.address("echo")] {
        for size in [0, 1000, LARGE] {
            let reply = caller.ask("relay", vec![weir_tests::text(&target), Val::U32(size as u32)]).await.unwrap();
            let sum = weir_tests::as_u64(weir_tests::guest_ok(reply));
            assert_eq!(sum, expected(size), "relay of {size} bytes to {target}");
        }
    }
    // The local echo got its three tells of bytes.
    let notified = echo.gateway(ECHO).unwrap().ask("notified", vec![]).await.unwrap();
    assert_eq!(notified, Some(Val::Tuple(vec![Val::U64(3), Val::U64((1000 + LARGE) as u64)])));
}
