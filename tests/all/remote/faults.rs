//! Hosts that die and come back: pending asks fail promptly with
//! unreachable, and a restarted host is reachable by the same address.

use std::time::Duration;

use wasmtime::component::Val;
use weir::RpcError;
use weir_tests::gateways::{CALLER, ECHO, PROBE};
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{artifacts, component, guest_error};

use super::listening_host;

fn probe_host(spec: HostSpec) -> HostProcess {
    HostProcess::start(&spec.endpoint("probe", artifacts::PROBE, "").endpoint("echo", artifacts::ECHO, ""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_host_fails_pending_asks_promptly_and_a_restarted_one_is_reachable_again() {
    let host = listening_host();
    let mut remote = probe_host(HostSpec::new());
    let address = remote.address("probe");
    // Timeouts far beyond the test's patience: the failures must not be them.
    let probe = host.connect(&address, PROBE, None).await.unwrap().with_timeout(Duration::from_secs(3600));
    let stalled = tokio::spawn({
        let probe = probe.clone();
        async move { probe.ask("stall", vec![Val::U64(3_600_000)]).await }
    });
    // An endpoint waiting on the dead host learns it too.
    let caller = host.start("caller", &component(artifacts::CALLER), Default::default()).await.unwrap();
    let waiting = tokio::spawn({
        let caller = caller.gateway(CALLER).unwrap();
        let address = address.clone();
        async move { caller.ask("stall", vec![Val::String(address), Val::U64(3_600_000), Val::U64(3_600_000)]).await }
    });
    assert!(probe.ask("ping", vec![]).await.is_ok());

    remote.kill();
    let error = stalled.await.unwrap().unwrap_err();
    assert!(matches!(error, RpcError::Unreachable { .. }), "{error}");
    let (case, _) = guest_error(waiting.await.unwrap().unwrap());
    assert_eq!(case, "unreachable");
    let error = probe.ask("ping", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::Unreachable { .. }), "while it is down: {error}");

    // Restarted on the same port: the address works again.
    let port = remote.authority().rsplit_once(':').unwrap().1.to_owned();
    let restarted = probe_host(HostSpec::new().host(&format!("listen = \"127.0.0.1:{port}\"")));
    assert_eq!(restarted.address("probe"), address);
    let probe_again = host.connect(&address, PROBE, None).await.unwrap();
    assert!(probe_again.ask("ping", vec![]).await.is_ok());
    // The old gateway was bound to the endpoint that died with its host, as
    // a local one is bound to the endpoint it connected to.
    let error = probe.ask("ping", vec![]).await.unwrap_err();
    assert!(
        matches!(&error, RpcError::Unreachable { reason, .. } if reason.contains("terminated")),
        "the old incarnation: {error}"
    );
    let echo = host.connect(&restarted.address("echo"), ECHO, None).await.unwrap();
    assert_eq!(echo.ask("ping", vec![Val::U64(4)]).await.unwrap(), Some(Val::U64(4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unreachable_at_once() {
    let host = listening_host();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let error = host.connect(&format!("weir://127.0.0.1:{port}/echo"), ECHO, None).await.unwrap_err();
    assert!(matches!(&error, RpcError::Unreachable { reason, .. } if reason.contains("refused")), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_is_given_up_after_the_connect_timeout() {
    // Accepts connections (the kernel does, into the backlog) and says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("weir://{}/echo", silent.local_addr().unwrap());
    let connect_timeout = Duration::from_millis(300);
    let config =
        weir::HostConfig { connect_timeout, ask_timeout: Duration::from_secs(3600), ..super::listening_config() };
    let host = weir_tests::host_with(config);
    let error = host.connect(&address, ECHO, None).await.unwrap_err();
    assert!(
        matches!(&error, RpcError::Unreachable { reason, .. } if reason.contains("connect timeout of 300ms")),
        "{error}"
    );
    drop(silent);
}
