//! Fencing at the host: a fenced endpoint serves only calls that carry its
//! token, checked before the guest sees them, locally and from endpoints.

use wasmtime::component::Val;
use weir::{EndpointOptions, FencingToken, RpcError};
use weir_tests::gateways::{CALLER, COUNTER, PROBE};
use weir_tests::{artifacts, as_list, component, eventually, guest_error, guest_ok, host, text, token_val};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_endpoint_serves_only_its_own_token() {
    let host = host();
    let leader = FencingToken::random();
    let stale = FencingToken::random();
    let fenced = EndpointOptions { fencing_token: Some(leader), ..EndpointOptions::default() };
    let counter = host.start("counter-fenced", &component(artifacts::COUNTER), fenced).await.unwrap();
    assert_eq!(counter.fencing_token(), Some(leader));

    let add = |token: Option<FencingToken>| {
        let gateway = counter.fenced_gateway(COUNTER, token).unwrap();
        async move { gateway.ask("add", vec![Val::S64(1)]).await }
    };
    assert_eq!(add(Some(leader)).await.unwrap(), Some(Val::S64(1)));
    for received in [Some(stale), None] {
        let error = add(received).await.unwrap_err();
        assert_eq!(
            error,
            RpcError::FencingMismatch { endpoint: "counter-fenced".into(), expected: Some(leader), received }
        );
    }

    // From another endpoint, through its typed client.
    let caller = host.start("caller-fenced", &component(artifacts::CALLER), EndpointOptions::default()).await.unwrap();
    let gateway = caller.gateway(CALLER).unwrap();
    let reply = gateway.ask("add", vec![text(counter.address()), token_val(leader), Val::S64(10)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::S64(11)));
    let reply = gateway.ask("add", vec![text(counter.address()), token_val(stale), Val::S64(100)]).await.unwrap();
    let (case, mismatch) = guest_error(reply);
    assert_eq!(case, "fencing-mismatch");
    let expected = Val::Record(vec![("expected".into(), token_val(leader)), ("received".into(), token_val(stale))]);
    assert_eq!(mismatch, expected);

    // None of the refused calls reached the counter.
    let total = counter.fenced_gateway(COUNTER, Some(leader)).unwrap().ask("get", vec![]).await.unwrap();
    assert_eq!(total, Some(Val::S64(11)));
    // An unfenced endpoint refuses fenced calls too.
    let probe = host.start("probe-unfenced", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let error = probe.fenced_gateway(PROBE, Some(leader)).unwrap().ask("ping", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::FencingMismatch { expected: None, .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_started_fenced_endpoint_says_so_whatever_the_token() {
    let host = host();
    let fenced = EndpointOptions { fencing_token: Some(FencingToken::random()), ..EndpointOptions::default() };
    let counter = host.spawn("counter-fenced-early", &component(artifacts::COUNTER), fenced).await.unwrap();
    let error =
        counter.fenced_gateway(COUNTER, Some(FencingToken::random())).unwrap().ask("get", vec![]).await.unwrap_err();
    assert!(matches!(error, RpcError::NotStarted { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_endpoints_own_tasks_are_never_fenced_out() {
    let host = host();
    let token = FencingToken::random();
    let fenced = EndpointOptions { fencing_token: Some(token), ..EndpointOptions::default() };
    let probe = host.start("probe-fenced", &component(artifacts::PROBE), fenced).await.unwrap();
    let gateway = probe.fenced_gateway(PROBE, Some(token)).unwrap();
    // The endpoint knows its token.
    let Some(Val::Record(identity)) = gateway.ask("who", vec![]).await.unwrap() else { panic!("no identity") };
    assert_eq!(identity[2], ("fencing-token".to_owned(), token_val(token)));
    gateway.tell("schedule", vec![Val::List(vec![Val::U64(0), Val::U64(5)])]).await.unwrap();
    let ran = eventually("the tasks to run", || async {
        let ran = as_list(gateway.ask("ran", vec![]).await.unwrap());
        (ran.len() == 2).then_some(ran)
    })
    .await;
    assert_eq!(ran, [0, 1]);
}
