use wasmtime::component::Val;
use weir::EndpointOptions;
use weir_tests::{artifacts, component, host};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_answers() {
    let host = host();
    let echo = host
        .start(
            "echo",
            &component(artifacts::ECHO),
            EndpointOptions::default(),
        )
        .await
        .unwrap();
    let gateway = echo.gateway("weir:examples/echo@0.1.0").unwrap();
    assert_eq!(
        gateway.ask("ping", vec![Val::U64(7)]).await.unwrap(),
        Some(Val::U64(7))
    );
    assert_eq!(
        gateway.ask("ping-async", vec![Val::U64(8)]).await.unwrap(),
        Some(Val::U64(8))
    );
    let caller = host
        .start(
            "caller",
            &component(artifacts::CALLER),
            EndpointOptions::default(),
        )
        .await
        .unwrap();
    let caller = caller.gateway("weir:examples/caller@0.1.0").unwrap();
    let answer = caller
        .ask(
            "call-ping",
            vec![Val::String(echo.address().into()), Val::U64(9)],
        )
        .await
        .unwrap();
    assert_eq!(answer, Some(Val::Result(Ok(Some(Box::new(Val::U64(9)))))));
    let sync = host
        .start(
            "echo-sync",
            &component(artifacts::ECHO_SYNC),
            EndpointOptions::default(),
        )
        .await
        .unwrap();
    let sync = sync.gateway("weir:examples/echo-sync@0.1.0").unwrap();
    assert_eq!(
        sync.ask("ping", vec![Val::U64(10)]).await.unwrap(),
        Some(Val::U64(10))
    );
    host.shutdown().await.unwrap();
}
