//! The hot swap's figure: how long an endpoint with 1 MiB of state
//! delivers no message while its component is swapped, next to the memcpy
//! floor of handing that state from one instance to the other.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use wasmtime::component::Val;
use weir::{EndpointOptions, Engine, HostConfig, RpcService, SwapOptions, Value};

use super::{Row, memcpy, micros, nanos};
use crate::Error;

const COUNTER: &str = "weir:examples/counter@0.1.0";
/// Swaps measured.
const SWAPS: u32 = 100;
/// The state: 1 MiB of history, eight bytes a value.
const VALUES: u64 = 1024 * 1024 / 8;

pub(super) async fn measure(components: &Path, only: &str, rows: &mut Vec<Row>) -> Result<(), Error> {
    let what = format!(
        "swap pause (no message delivered), counter-next with 1 MiB of state swapped for itself: p50 / p99 of {SWAPS} swaps"
    );
    if !what.contains(only) {
        return Ok(());
    }
    let config = HostConfig::default();
    let engine = Engine::new(&config)?;
    let next = engine.load_file(components.join("counter_next.wasm"))?;
    let host = RpcService::new(config, engine)?;
    let endpoint = host.start("swapped", &next, EndpointOptions::default()).await?;
    let gateway = endpoint.gateway(COUNTER)?;
    for value in 0..VALUES {
        gateway.tell_values("append", vec![Value::Val(Val::U64(value))]).await?;
    }
    gateway.ask("get", vec![]).await?;
    let mut pauses = Histogram::<u64>::new(3)?;
    for _ in 0..SWAPS {
        let report = endpoint.swap(&next, SwapOptions::default()).await?;
        pauses.record(nanos(report.pause))?;
        // Swaps are rare: each one measured alone, after the last one's old
        // instance has been freed (on a blocking thread).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Some(Val::List(history)) = gateway.ask("history", vec![]).await? else {
        return Err("the counter's history is not a list".into());
    };
    if history.len() as u64 != VALUES {
        return Err(format!("the swaps lost state: {} of {VALUES} values", history.len()).into());
    }
    host.shutdown().await?;
    let floor = memcpy(1024 * 1024, 100)?;
    rows.push(Row {
        what,
        weir: format!("{} / {}", micros(pauses.value_at_quantile(0.5) as f64), micros(pauses.value_at_quantile(0.99) as f64)),
        reference: format!(
            "target p50 ≤ 2 ms; floor: 4 memcpys of 1 MiB (out of the guest, into the new one, and each guest's own copy) = {}; Erlang, Golem, wasmCloud publish no figure",
            micros(4.0 * floor.as_nanos() as f64)
        ),
    });
    Ok(())
}
