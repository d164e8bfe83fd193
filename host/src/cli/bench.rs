//! `weir bench`: the RPC figures of one endpoint on this machine, next to
//! the wasmtime floor and Flink 2.3's figures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use wasmtime::component::Val;
use weir::component::floor;
use weir::{EndpointComponent, EndpointOptions, Engine, GatewayClient, HostConfig, RpcService};

use super::Error;

const ECHO: &str = "weir:examples/echo@0.1.0";
const ECHO_SYNC: &str = "weir:examples/echo-sync@0.1.0";
const CALLER: &str = "weir:examples/caller@0.1.0";

/// What to measure, and how much.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The target directory the endpoint components were built into.
    #[arg(long, default_value = "target/wasm-endpoints")]
    components: PathBuf,
    /// Asks per latency measurement.
    #[arg(long, default_value_t = 20_000)]
    asks: u32,
    /// Calls per throughput measurement.
    #[arg(long, default_value_t = 200_000)]
    calls: u32,
    /// Asks in flight at once when pipelining.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Endpoints started for the start-time and memory figures.
    #[arg(long, default_value_t = 1000)]
    endpoints: u32,
    /// Threads that drive the endpoints.
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
    /// Only run the measurements whose name contains this text.
    #[arg(long, default_value = "")]
    only: String,
}

/// One row of the table.
struct Row {
    what: String,
    weir: String,
    reference: String,
}

pub fn bench(args: &BenchArgs) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

/// Runs `work` on the endpoints' threads, as a host-side caller that wants
/// its conversation to stay there does.
async fn on_host<T: Send + 'static>(
    host: &RpcService,
    work: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    host.runtime().spawn(work).await?
}

async fn run(args: &BenchArgs) -> Result<(), Error> {
    let config = HostConfig { worker_threads: args.worker_threads, ..HostConfig::default() };
    let engine = Engine::new(&config)?;
    let load = |target: &str, file: &str| engine.load_file(args.components.join(target).join("release").join(file));
    let echo = load("wasm32-wasip2", "echo.wasm")?;
    let caller = load("wasm32-wasip2", "caller.wasm")?;
    let echo_sync = load("wasm32-wasip1", "echo_sync.wasm")?;
    let host = RpcService::new(config.clone(), engine.clone())?;
    let mut rows = Vec::new();

    let sync_endpoint = host.start("echo-sync", &echo_sync, EndpointOptions::default()).await?;
    let echo_endpoint = host.start("echo", &echo, EndpointOptions::default()).await?;
    let caller_endpoint = host.start("caller", &caller, EndpointOptions::default()).await?;
    let sync_gateway = sync_endpoint.gateway(ECHO_SYNC)?;
    let echo_gateway = echo_endpoint.gateway(ECHO)?;

    let floor_sync = floor::mean_call(&echo_sync, ECHO_SYNC, "ping", &[Val::U64(1)], args.asks).await?;
    let floor_concurrent = floor::mean_call(&echo, ECHO, "ping", &[Val::U64(1)], args.asks).await?;
    let floor_async = floor::mean_call(&echo, ECHO, "ping-async", &[Val::U64(1)], args.asks).await?;
    let floor = |d: Duration| format!("floor {} (raw wasmtime call)", micros(d));

    for (what, gateway, function, floor_time) in [
        ("sync function, sync-only component", &sync_gateway, "ping", floor_sync),
        ("sync function, async component", &echo_gateway, "ping", floor_concurrent),
        ("async function", &echo_gateway, "ping-async", floor_async),
    ] {
        if !format!("host → endpoint ask, {what}").contains(&args.only) {
            continue;
        }
        let across = ask_latency(gateway.clone(), function, args.asks).await?;
        let same = on_host(&host, ask_latency(gateway.clone(), function, args.asks)).await?;
        rows.push(Row {
            what: format!("host → endpoint ask, {what}: p50 / p99, caller on another thread"),
            weir: across,
            reference: floor(floor_time),
        });
        rows.push(Row {
            what: format!("host → endpoint ask, {what}: p50 / p99, caller on the endpoint's thread"),
            weir: same,
            reference: floor(floor_time),
        });
    }

    let caller_gateway = caller_endpoint.gateway(CALLER)?;
    if "endpoint → endpoint".contains(&args.only) {
        rows.push(Row {
            what: "endpoint → endpoint ask (caller → echo.ping): p50 / p99".into(),
            weir: endpoint_latency(&caller_gateway, echo_endpoint.address(), args.asks).await?,
            reference: "Flink 2.3 local ask: 14.5 µs / 76-94 µs; target p50 ≤ 3 µs".into(),
        });
    }

    for (what, gateway, function, target) in [
        ("sync function, sync-only component", &sync_gateway, "ping", "target ≥ 1M/s"),
        ("sync function, async component", &echo_gateway, "ping", "target ≥ 1M/s"),
        ("async function", &echo_gateway, "ping-async", "target ≥ 500k/s"),
    ] {
        if !format!("pipelined asks, {what}").contains(&args.only) {
            continue;
        }
        let across = pipelined(gateway.clone(), function, args.calls, args.in_flight).await?;
        let same = on_host(&host, pipelined(gateway.clone(), function, args.calls, args.in_flight)).await?;
        let reference = format!("Flink 2.3: 260k-320k/s; {target}");
        rows.push(Row {
            what: format!("pipelined asks, {what}, caller on another thread"),
            weir: per_second(across),
            reference: reference.clone(),
        });
        rows.push(Row {
            what: format!("pipelined asks, {what}, caller on the endpoint's thread"),
            weir: per_second(same),
            reference,
        });
    }
    for (what, gateway, function) in
        [("sync-only component", &sync_gateway, "notify"), ("async component", &echo_gateway, "notify")]
    {
        if !format!("tells, {what}").contains(&args.only) {
            continue;
        }
        let across = tells(gateway.clone(), function, args.calls).await?;
        let same = on_host(&host, tells(gateway.clone(), function, args.calls)).await?;
        let reference = "Flink 2.3: 1.2M-1.5M/s; target ≥ 2M/s";
        rows.push(Row {
            what: format!("tells, {what}, caller on another thread"),
            weir: per_second(across),
            reference: reference.into(),
        });
        rows.push(Row {
            what: format!("tells, {what}, caller on the endpoint's thread"),
            weir: per_second(same),
            reference: reference.into(),
        });
    }
    host.shutdown().await?;

    for (what, component) in [("echo (async component)", &echo), ("echo-sync (sync-only component)", &echo_sync)] {
        if !format!("start {what}").contains(&args.only) {
            continue;
        }
        let (start, resident) = start_many(&engine, &config, component, args.endpoints).await?;
        rows.push(Row {
            what: format!("start an endpoint, {what}: p50 / mean"),
            weir: start,
            reference: "Flink 2.3: 240 µs; target ≤ 20 µs".into(),
        });
        rows.push(Row {
            what: format!("resident memory per idle endpoint, {what}, {} started", args.endpoints),
            weir: resident,
            reference: "target ≤ 256 KiB".into(),
        });
    }

    println!("| measurement | weir | reference |\n| --- | --- | --- |");
    for row in rows {
        println!("| {} | {} | {} |", row.what, row.weir, row.reference);
    }
    Ok(())
}

async fn ask_latency(gateway: GatewayClient, function: &'static str, asks: u32) -> Result<String, Error> {
    let mut histogram = Histogram::<u64>::new(3)?;
    for i in 0..asks {
        let sent = Instant::now();
        gateway.ask(function, vec![Val::U64(u64::from(i))]).await?;
        histogram.record(nanos(sent.elapsed()))?;
    }
    Ok(percentiles(&histogram))
}

async fn endpoint_latency(caller: &GatewayClient, echo: &str, asks: u32) -> Result<String, Error> {
    let reply = caller.ask("ping-loop", vec![Val::String(echo.into()), Val::U32(asks)]).await?;
    let Some(Val::Result(Ok(Some(list)))) = reply else { return Err(format!("ping-loop failed: {reply:?}").into()) };
    let Val::List(round_trips) = *list else { return Err("ping-loop returned no list".into()) };
    let mut histogram = Histogram::<u64>::new(3)?;
    for round_trip in round_trips {
        if let Val::U64(nanos) = round_trip {
            histogram.record(nanos)?;
        }
    }
    Ok(percentiles(&histogram))
}

async fn pipelined(gateway: GatewayClient, function: &'static str, calls: u32, in_flight: usize) -> Result<f64, Error> {
    let gateway = &gateway;
    let started = Instant::now();
    let mut running = FuturesUnordered::new();
    let mut sent = 0u32;
    let mut done = 0u32;
    while done < calls {
        while sent < calls && running.len() < in_flight {
            running.push(gateway.ask(function, vec![Val::U64(u64::from(sent))]));
            sent += 1;
        }
        if let Some(reply) = running.next().await {
            reply?;
            done += 1;
        }
    }
    Ok(f64::from(calls) / started.elapsed().as_secs_f64())
}

async fn tells(gateway: GatewayClient, function: &'static str, calls: u32) -> Result<f64, Error> {
    let gateway = &gateway;
    let (before, _) = notified(gateway).await?;
    let started = Instant::now();
    for i in 0..calls {
        gateway.tell(function, vec![Val::U64(u64::from(i))]).await?;
    }
    // Done when the endpoint has handled every tell.
    while notified(gateway).await?.0 < before + u64::from(calls) {}
    Ok(f64::from(calls) / started.elapsed().as_secs_f64())
}

async fn notified(gateway: &GatewayClient) -> Result<(u64, u64), Error> {
    match gateway.ask("notified", Vec::new()).await? {
        Some(Val::Tuple(values)) => match values.as_slice() {
            [Val::U64(count), Val::U64(sum)] => Ok((*count, *sum)),
            _ => Err("notified returned another tuple".into()),
        },
        other => Err(format!("notified returned {other:?}").into()),
    }
}

/// Starts `count` endpoints on a fresh host: the start time per endpoint,
/// and the resident memory each adds.
async fn start_many(
    engine: &Engine,
    config: &HostConfig,
    component: &EndpointComponent,
    count: u32,
) -> Result<(String, String), Error> {
    let host = RpcService::new(config.clone(), engine.clone())?;
    let (start, resident) = on_host(&host, start_idle(host.clone(), component.clone(), count)).await?;
    host.shutdown().await?;
    Ok((start, resident))
}

/// Starts `count` endpoints, each after the previous one has started.
async fn start_idle(host: RpcService, component: EndpointComponent, count: u32) -> Result<(String, String), Error> {
    let component = &component;
    // Warm up: the first instance of a component touches its code pages.
    host.start("warm-up", component, EndpointOptions::default()).await?;
    let resident_before = resident_bytes()?;
    let mut histogram = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for i in 0..count {
        let one = Instant::now();
        host.start(&format!("idle-{i}"), component, EndpointOptions::default()).await?;
        histogram.record(nanos(one.elapsed()))?;
    }
    let mean = started.elapsed() / count;
    let per_endpoint = resident_bytes()?.saturating_sub(resident_before) / u64::from(count);
    Ok((
        format!("{} / {}", micros(Duration::from_nanos(histogram.value_at_quantile(0.5))), micros(mean)),
        format!("{:.1} KiB", per_endpoint as f64 / 1024.0),
    ))
}

/// The process's resident set size, from `/proc/self/statm`.
fn resident_bytes() -> Result<u64, Error> {
    let statm = std::fs::read_to_string(Path::new("/proc/self/statm"))?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("bad statm")?.parse()?;
    Ok(pages * 4096)
}

fn percentiles(histogram: &Histogram<u64>) -> String {
    let at = |q| micros(Duration::from_nanos(histogram.value_at_quantile(q)));
    format!("{} / {}", at(0.5), at(0.99))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn micros(duration: Duration) -> String {
    format!("{:.2} µs", duration.as_secs_f64() * 1e6)
}

fn per_second(rate: f64) -> String {
    if rate >= 1e6 { format!("{:.2}M/s", rate / 1e6) } else { format!("{:.0}k/s", rate / 1e3) }
}
