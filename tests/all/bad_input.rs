//! Bad input gets a clear error and leaves the host serving: files that are
//! not components, worlds a host cannot run, unknown endpoints and
//! functions, and gateways whose types differ.

use std::path::Path;

use wasmtime::component::Val;
use weir::{EndpointOptions, LoadError, RpcError};
use weir_tests::gateways::{CALLER, ECHO};
use weir_tests::{artifacts, component, engine, guest_error, host, text};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

/// A real component for `world` in `wit`, made by the component tooling
/// from a stub module (it traps if called, and is never called).
fn component_bytes(wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    resolve.push_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/rpc")).unwrap();
    let package = resolve.push_str("test.wit", wit).unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut module = wit_component::dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
    ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

fn wrong_world(wit: &str, world: &str) -> String {
    match engine().load_bytes(world, &component_bytes(wit, world)) {
        Err(LoadError::WrongWorld { reason, .. }) => reason,
        Err(other) => panic!("expected a wrong-world error, got {other}"),
        Ok(_) => panic!("world `{world}` was accepted"),
    }
}

#[test]
fn files_that_are_not_components_are_refused_clearly() {
    let missing = engine().load_file("/nonexistent/endpoint.wasm").unwrap_err();
    assert!(matches!(missing, LoadError::Io { .. }), "{missing}");
    assert!(missing.to_string().contains("/nonexistent/endpoint.wasm"), "{missing}");

    for (name, bytes) in [
        ("text", b"this is not wasm at all".to_vec()),
        ("core-module", b"\0asm\x01\0\0\0".to_vec()),
        ("truncated", std::fs::read(artifacts::ECHO).unwrap()[..100].to_vec()),
    ] {
        let error = engine().load_bytes(name, &bytes).unwrap_err();
        assert!(matches!(error, LoadError::Invalid { .. }), "{name}: {error}");
        assert_eq!(error.to_string(), format!("`{name}` is not a valid WebAssembly component"));
    }
}

#[test]
fn worlds_a_host_cannot_run_are_refused_with_what_does_not_fit() {
    let reason = wrong_world(
        "package test:w; interface thing { f: func(); } world w { import thing; export weir:rpc/lifecycle@0.1.0; }",
        "w",
    );
    assert!(reason.contains("imports `test:w/thing`, which a weir host does not lend"), "{reason}");
    assert!(reason.contains("weir:rpc/leadership@0.1.0"), "names what the host lends: {reason}");

    let reason = wrong_world("package test:bare; world bare { export run: func(); }", "bare");
    assert!(reason.contains("exports `run` outside an interface"), "{reason}");

    let reason = wrong_world(
        "package test:res; interface files { resource file; open: func() -> file; } world res { export files; }",
        "res",
    );
    assert!(reason.contains("a resource handle cannot be passed between endpoints"), "{reason}");

    let reason = wrong_world(
        "package test:client; interface echo { ping: func() -> u64; }\n\
         interface echo-client { resource echo-gateway { ping: func() -> u64; } }\n\
         world client { import echo-client; }",
        "client",
    );
    assert!(reason.contains("must be an `async func`"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_endpoints_and_addresses_get_clear_errors() {
    let host = host();
    for (address, expected) in
        [("weir://local/nobody", "no endpoint at `weir://local/nobody`"), ("nonsense", "does not start with `weir://`")]
    {
        let error = host.connect(address, ECHO, None).await.unwrap_err();
        assert!(matches!(error, RpcError::UnknownEndpoint { .. }) && error.to_string().contains(expected), "{error}");
    }
    // Nothing listens on a port just freed: refused at once, not timed out.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let error = host.connect(&format!("weir://127.0.0.1:{closed_port}/echo"), ECHO, None).await.unwrap_err();
    assert!(matches!(&error, RpcError::Unreachable { reason, .. } if reason.contains("cannot connect")), "{error}");

    // The same from inside an endpoint.
    let caller = host.start("caller-unknown", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let reply =
        caller.gateway(CALLER).unwrap().ask("call-ping", vec![text("weir://local/nobody"), Val::U64(1)]).await.unwrap();
    let (case, _) = guest_error(reply);
    assert_eq!(case, "unknown-endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_check_the_gateway_and_its_types() {
    let host = host();
    let counter =
        host.start("counter-not-echo", &component(artifacts::COUNTER), EndpointOptions::default()).await.unwrap();
    let skewed =
        host.start("echo-skewed", &component(artifacts::ECHO_SKEWED), EndpointOptions::default()).await.unwrap();
    let caller =
        host.start("caller-handshake", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let gateway = caller.gateway(CALLER).unwrap();

    let (case, message) = guest_error(gateway.ask("connect-echo", vec![text(counter.address())]).await.unwrap());
    assert_eq!(case, "handshake");
    assert_eq!(
        message,
        text(
            "handshake failed: endpoint `counter-not-echo` does not export gateway `weir:examples/echo@0.1.0` (it exports: weir:examples/counter@0.1.0)"
        )
    );
    let (case, message) = guest_error(gateway.ask("connect-echo", vec![text(skewed.address())]).await.unwrap());
    assert_eq!(case, "handshake");
    let Val::String(message) = message else { panic!("{message:?}") };
    assert!(message.contains("function `ping` parameter 0 (`x`): expected u32, found u64"), "{message}");

    // A matching gateway connects, and everyone kept serving.
    let echo = host.start("echo-matching", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let reply = gateway.ask("connect-echo", vec![text(echo.address())]).await.unwrap();
    assert_eq!(reply, Some(Val::Result(Ok(None))));
}

/// A listen address that cannot be bound is an error naming the key and
/// the cause, not a panic (creating a host from inside a runtime used to
/// panic on the way out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_address_that_cannot_be_bound_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let config = weir::HostConfig { listen: Some(listen.clone()), ..weir_tests::config() };
    let error = weir::RpcService::new(config, engine().clone()).unwrap_err();
    let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(
        text.contains(&format!("cannot listen on `{listen}` (`[host] listen`)")) && text.contains("in use"),
        "{text}"
    );
    let config = weir::HostConfig { listen: Some("127.0.0.1".into()), ..weir_tests::config() };
    let error = weir::RpcService::new(config, engine().clone()).unwrap_err().to_string();
    assert!(error.contains("listen = \"127.0.0.1\"") && error.contains("host:port"), "{error}");
}
