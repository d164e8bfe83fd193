//! Isolation: an endpoint reaches nothing the host does not lend it, and a
//! runaway or greedy guest is ended without harming the others.

use std::time::Duration;

use wasmtime::component::Val;
use weir::{EndpointFailure, EndpointOptions, RpcError};
use weir_tests::gateways::{ECHO, FAULT, PROBE};
use weir_tests::{artifacts, capture_logs, component, host, logs, text, with_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_loops_forever_is_ended_at_its_cpu_deadline() {
    let host = host();
    let echo = host.start("echo-beside-looper", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    for (id, function) in [("looper", "trigger"), ("looper-async", "trigger-async")] {
        let options =
            EndpointOptions { cpu_deadline: Some(Duration::from_millis(300)), ..with_config(&[("fault", "loop")]) };
        let looper = host.start(id, &component(artifacts::FAULTY), options).await.unwrap();
        let (faults, echoes) = (looper.gateway(FAULT).unwrap(), echo.gateway(ECHO).unwrap());
        // Others are served while it loops, and after.
        let (looping, echoed) = futures::join!(faults.ask(function, vec![]), echoes.ask("ping", vec![Val::U64(1)]));
        assert_eq!(echoed.unwrap(), Some(Val::U64(1)));
        assert!(matches!(looping, Err(RpcError::EndpointFailed { .. })), "{looping:?}");
        match looper.terminated().await {
            Err(EndpointFailure::CpuDeadlineExceeded { deadline, during }) => {
                assert_eq!(deadline, Duration::from_millis(300));
                assert!(during.contains(function), "{during}");
            }
            other => panic!("expected the CPU deadline, got {other:?}"),
        }
    }
    assert_eq!(echo.gateway(ECHO).unwrap().ask("ping", vec![Val::U64(2)]).await.unwrap(), Some(Val::U64(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_allocates_without_end_is_ended_at_its_memory_cap() {
    let host = host();
    let cap = 32 * 1024 * 1024;
    let options = EndpointOptions { memory_cap: Some(cap), ..with_config(&[("fault", "allocate")]) };
    let hog = host.start("hog", &component(artifacts::FAULTY), options).await.unwrap();
    let error = hog.gateway(FAULT).unwrap().ask("trigger", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::EndpointFailed { .. }), "{error}");
    match hog.terminated().await {
        Err(EndpointFailure::MemoryCapExceeded { cap: reported, wanted, .. }) => {
            assert_eq!(reported, cap);
            assert!(wanted > cap, "{wanted}");
        }
        other => panic!("expected the memory cap, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_reach_no_files_network_or_environment() {
    let host = host();
    let probe = host.start("probe-ambient", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let Some(Val::List(lines)) = probe.gateway(PROBE).unwrap().ask("ambient", vec![]).await.unwrap() else {
        panic!("ambient returned no list");
    };
    let lines: Vec<String> =
        lines.into_iter().map(|l| if let Val::String(s) = l { s } else { panic!("{l:?}") }).collect();
    assert_eq!(lines[0], "environment: 0 variables");
    assert_eq!(lines[1], "arguments: 0");
    for attempt in &lines[2..] {
        assert!(attempt.contains(": denied"), "{attempt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_stdout_and_stderr_go_to_tracing_under_the_endpoint_id() {
    capture_logs();
    let host = host();
    let probe = host.start("probe-says", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let said = "a line from inside the guest";
    probe.gateway(PROBE).unwrap().ask("say", vec![text(said)]).await.unwrap();
    let logs = logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(said)).collect();
    assert_eq!(lines.len(), 2, "one line from stdout, one from stderr: {lines:?}");
    assert!(lines.iter().all(|l| l.contains("weir::guest") && l.contains("probe-says")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("INFO")) && lines.iter().any(|l| l.contains("WARN") && l.contains("stderr"))
    );
}

/// What the host holds for a guest counts against its memory cap: a guest
/// that schedules tasks, or opens handles, without end fails cleanly at the
/// cap, most of it held by the host, while the others keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_host_holds_for_a_guest_counts_against_its_memory_cap() {
    let host = host();
    let echo =
        host.start("echo-beside-hoarders", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let cap = 8 * 1024 * 1024;
    for (fault, function) in [("schedule", "trigger"), ("connect", "trigger-async")] {
        let options = EndpointOptions { memory_cap: Some(cap), ..with_config(&[("fault", fault)]) };
        let hoarder = host.start(&format!("hoarder-{fault}"), &component(artifacts::FAULTY), options).await.unwrap();
        let error = hoarder.gateway(FAULT).unwrap().ask(function, vec![]).await.unwrap_err();
        assert!(matches!(error, RpcError::EndpointFailed { .. }), "{fault}: {error}");
        match hoarder.terminated().await {
            Err(EndpointFailure::MemoryCapExceeded { cap: reported, wanted, held, .. }) => {
                assert_eq!(reported, cap);
                assert!(wanted > cap && held > cap / 2, "{fault}: the host held {held} of {wanted} bytes");
            }
            other => panic!("{fault}: expected the memory cap, got {other:?}"),
        }
    }
    assert_eq!(echo.gateway(ECHO).unwrap().ask("ping", vec![Val::U64(3)]).await.unwrap(), Some(Val::U64(3)));
}
