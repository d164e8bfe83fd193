//! Serves the `caller` gateway by calling other endpoints through typed
//! clients: echo, counter, probe, and other callers.

weir_guest::generate!({
    world: "weir:examples/caller-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use exports::weir::examples::caller::Guest;
use weir::examples::caller_client::CallerGateway;
use weir::examples::counter_client::CounterGateway;
use weir::examples::echo_client::EchoGateway;
use weir::examples::probe_client::ProbeGateway;
use weir_guest::{RpcError, Uuid};

struct Caller;

impl weir_guest::Endpoint for Caller {}

impl Guest for Caller {
    async fn call_ping(target: String, x: u64) -> Result<u64, RpcError> {
        EchoGateway::connect(target, None).await?.ping(x).await
    }

    async fn ping_loop(target: String, n: u32) -> Result<Vec<u64>, RpcError> {
        let echo = EchoGateway::connect(target, None).await?;
        let mut round_trips = Vec::with_capacity(n as usize);
        for i in 0..u64::from(n) {
            let sent = weir_guest::monotonic_now();
            let answer = echo.ping(i).await?;
            round_trips.push(weir_guest::monotonic_now() - sent);
            assert_eq!(answer, i, "echo answered another value");
        }
        Ok(round_trips)
    }

    async fn bounce(peer: String, depth: u32) -> Result<u32, RpcError> {
        if depth == 0 {
            return Ok(0);
        }
        let peer = CallerGateway::connect(peer, None).await?;
        let hops = peer.bounce(weir_guest::self_address(), depth - 1).await??;
        Ok(hops + 1)
    }

    async fn stall(target: String, stall_ms: u64, timeout_ms: u64) -> Result<u64, RpcError> {
        let probe = ProbeGateway::connect(target, None).await?;
        probe.set_timeout(timeout_ms);
        probe.stall(stall_ms).await
    }

    async fn add(target: String, token: Option<Uuid>, delta: i64) -> Result<i64, RpcError> {
        CounterGateway::connect(target, token).await?.add(delta).await
    }

    async fn append_all(target: String, values: Vec<u64>) -> Result<(), RpcError> {
        let counter = CounterGateway::connect(target, None).await?;
        for value in values {
            counter.append(value).await;
        }
        Ok(())
    }

    async fn connect_echo(target: String) -> Result<(), RpcError> {
        EchoGateway::connect(target, None).await.map(drop)
    }

    async fn relay(target: String, size: u32) -> Result<u64, RpcError> {
        let echo = EchoGateway::connect(target, None).await?;
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let back = echo.echo(payload.clone()).await?;
        if back != payload {
            return Err(RpcError::Serialization("the echo came back changed".into()));
        }
        let length = echo.absorb(payload.clone()).await?;
        echo.sink(payload).await;
        Ok(back.iter().map(|b| u64::from(*b)).sum::<u64>() + u64::from(length))
    }
}

weir_guest::export!(Caller);
