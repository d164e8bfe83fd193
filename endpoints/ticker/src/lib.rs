//! The demo's driver. On start it spawns a loop on its main thread that
//! ticks every `interval-ms` (default 100) for `ticks` ticks (default 10):
//! each tick asks the counter at `counter` to add the tick number, asks the
//! echo at `echo` to ping it, tells the echo a notification, and logs what
//! came back and how long each ask took.

weir_guest::generate!({
    world: "weir:examples/ticker-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::Cell;
use std::time::Duration;

use exports::weir::examples::ticker::Guest;
use weir::examples::counter_client::CounterGateway;
use weir::examples::echo_client::EchoGateway;
use weir_guest::RpcError;

thread_local! {
    static TICKS: Cell<u32> = const { Cell::new(0) };
    static DONE: Cell<bool> = const { Cell::new(false) };
}

fn setting(key: &str, default: u64) -> u64 {
    weir_guest::config(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn run(ticks: u32, interval: Duration) -> Result<(), RpcError> {
    let counter = CounterGateway::connect(weir_guest::config("counter").unwrap_or_default(), None).await?;
    let echo = EchoGateway::connect(weir_guest::config("echo").unwrap_or_default(), None).await?;
    for tick in 1..=ticks {
        weir_guest::sleep(interval).await;
        let sent = weir_guest::monotonic_now();
        let total = counter.add(i64::from(tick)).await?;
        let added = weir_guest::monotonic_now();
        let pong = echo.ping(u64::from(tick)).await?;
        let pinged = weir_guest::monotonic_now();
        echo.notify(u64::from(tick)).await;
        TICKS.with(|t| t.set(tick));
        let micros = |nanos: u64| nanos as f64 / 1e3;
        weir_guest::info!(
            "tick {tick}: counter total {total} (ask took {:.1} µs), echo answered {pong} (ask took {:.1} µs)",
            micros(added - sent),
            micros(pinged - added)
        );
    }
    Ok(())
}

struct Ticker;

impl weir_guest::Endpoint for Ticker {
    fn on_start() -> Result<(), String> {
        let ticks = u32::try_from(setting("ticks", 10)).map_err(|e| e.to_string())?;
        let interval = Duration::from_millis(setting("interval-ms", 100));
        weir_guest::spawn(async move {
            match run(ticks, interval).await {
                Ok(()) => weir_guest::info!("all {ticks} ticks done"),
                Err(error) => weir_guest::error!("ticking stopped: {error}"),
            }
            DONE.with(|d| d.set(true));
        });
        Ok(())
    }
}

impl Guest for Ticker {
    fn progress() -> (u32, bool) {
        (TICKS.with(Cell::get), DONE.with(Cell::get))
    }
}

weir_guest::export!(Ticker);
