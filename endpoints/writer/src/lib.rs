//! A leader's work, for the split-brain test. Every `interval-ms` (default
//! 20) it pushes the next number into the ledger at `ledger`, connected with
//! its own fencing token: the leader session it runs under. On (re)connecting
//! it reads the ledger's history and goes on after its last number, so
//! numbers continue across leaders. Refusals and failures are counted; a
//! failed call is retried with a new connection on the next tick.

weir_guest::generate!({
    world: "weir:examples/writer-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::Cell;
use std::time::Duration;

use exports::weir::examples::writer::{Guest, WriterProgress};
use weir::examples::counter_client::CounterGateway;
use weir_guest::RpcError;

thread_local! {
    static ACCEPTED: Cell<u64> = const { Cell::new(0) };
    static REFUSED: Cell<u64> = const { Cell::new(0) };
    static FAILED: Cell<u64> = const { Cell::new(0) };
    static LAST: Cell<u64> = const { Cell::new(0) };
}

/// A connection to the ledger and the next number to push.
struct Ledger {
    gateway: CounterGateway,
    next: u64,
}

async fn open(address: &str) -> Result<Ledger, RpcError> {
    let gateway = CounterGateway::connect(address.to_owned(), weir_guest::fencing_token()).await?;
    let next = gateway.history().await?.last().map_or(1, |last| last + 1);
    Ok(Ledger { gateway, next })
}

async fn tick(ledger: &mut Option<Ledger>, address: &str) -> Result<(), RpcError> {
    if ledger.is_none() {
        *ledger = Some(open(address).await?);
    }
    let Some(open) = ledger.as_mut() else { return Ok(()) };
    open.gateway.push(open.next).await?;
    LAST.with(|last| last.set(open.next));
    ACCEPTED.with(|accepted| accepted.set(accepted.get() + 1));
    open.next += 1;
    Ok(())
}

async fn run(address: String, interval: Duration) {
    let mut ledger = None;
    loop {
        weir_guest::sleep(interval).await;
        if let Err(error) = tick(&mut ledger, &address).await {
            ledger = None;
            let counter = if matches!(error, RpcError::FencingMismatch(_)) { &REFUSED } else { &FAILED };
            counter.with(|count| count.set(count.get() + 1));
            weir_guest::warn!("the ledger did not take the next number: {error}");
        }
    }
}

struct Writer;

impl weir_guest::Endpoint for Writer {
    fn on_start() -> Result<(), String> {
        let address = weir_guest::config("ledger").ok_or("the `ledger` setting is missing")?;
        let interval = weir_guest::config("interval-ms").and_then(|v| v.parse().ok()).unwrap_or(20);
        weir_guest::spawn(run(address, Duration::from_millis(interval)));
        Ok(())
    }
}

impl Guest for Writer {
    fn progress() -> WriterProgress {
        WriterProgress {
            accepted: ACCEPTED.with(Cell::get),
            refused: REFUSED.with(Cell::get),
            failed: FAILED.with(Cell::get),
            last: LAST.with(Cell::get),
        }
    }
}

weir_guest::export!(Writer);
