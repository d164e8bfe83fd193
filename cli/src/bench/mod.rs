//! `weir bench`: the RPC figures of one endpoint on this machine, next to
//! the wasmtime floor and Flink 2.3's figures, then the control plane's
//! ([`cluster`]).
//!
//! Virtual machines make single runs noisy (the same measurement can differ
//! by half between runs), so every figure is measured in several rounds and
//! the median round is reported, with the spread of the rounds.

mod cluster;
mod floor;
mod processes;
pub mod remote;
mod swap;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use wasmtime::component::Val;
use weir::component::ExecutionMode;
use weir::{EndpointComponent, EndpointOptions, Engine, GatewayClient, HostConfig, RpcService, Value};

use crate::Error;

const ECHO: &str = "weir:examples/echo@0.1.0";
const ECHO_SYNC: &str = "weir:examples/echo-sync@0.1.0";
const CALLER: &str = "weir:examples/caller@0.1.0";

/// What to measure, and how much.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The target directory the endpoint components were built into.
    #[arg(long, default_value = "target/wasm-endpoints")]
    components: PathBuf,
    /// Asks per round of a latency measurement.
    #[arg(long, default_value_t = 20_000)]
    asks: u32,
    /// Calls per round of a throughput measurement.
    #[arg(long, default_value_t = 200_000)]
    calls: u32,
    /// Rounds of each measurement; the median round is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Asks in flight at once when pipelining.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Endpoints started for the start-time and memory figures (10,000
    /// sync-only ones need `vm.max_map_count` raised: `scripts/bench` does).
    #[arg(long, default_value_t = 10_000)]
    endpoints: u32,
    /// Threads that drive the endpoints.
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
    /// Only run the measurements whose name contains this text.
    #[arg(long, default_value = "")]
    only: String,
    /// A directory with `ca.pem`, `host.pem` and `host.key` (a certificate
    /// for 127.0.0.1): the remote figures are measured with mutual TLS too.
    #[arg(long)]
    tls: Option<PathBuf>,
    /// A ZooKeeper (`host:port`) for the jobmanager failover figure, which
    /// is not measured without one (`scripts/bench` starts one).
    #[arg(long)]
    zookeeper: Option<String>,
    /// Only measure the resident memory per idle endpoint of this
    /// component file, and print it in bytes: the bench runs each memory
    /// figure in a fresh process of its own, so that no memory freed by
    /// earlier measurements is handed out again.
    #[arg(long, hide = true)]
    resident_of: Option<PathBuf>,
}

/// One row of the table.
struct Row {
    what: String,
    weir: String,
    reference: String,
}

/// Where the host-side caller runs.
#[derive(Clone, Copy, Debug)]
enum Placement {
    /// On the bench's own thread: every call and reply wakes another thread.
    Across,
    /// On the endpoints' threads, as a host-side caller that wants its
    /// conversation to stay there does.
    Same,
}

const PLACEMENTS: [Placement; 2] = [Placement::Across, Placement::Same];

impl Placement {
    async fn run<T: Send + 'static>(
        self,
        host: &RpcService,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        match self {
            Placement::Across => work.await,
            Placement::Same => host.runtime().spawn(work).await?,
        }
    }

    /// Where a client of the cluster runs, in these words.
    fn client(self) -> &'static str {
        match self {
            Placement::Across => "client on a thread of its own",
            Placement::Same => "client on the cluster's threads",
        }
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Placement::Across => "caller on another thread",
            Placement::Same => "caller on the endpoint's thread",
        })
    }
}

/// The p50 and p99 of one round, in nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Latency {
    p50: u64,
    p99: u64,
}

pub fn bench(args: &BenchArgs) -> Result<(), Error> {
    crate::init_logging("warn");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: &BenchArgs) -> Result<(), Error> {
    // Room for the endpoints it starts, and the warm-up one beside them.
    let max_endpoints = (args.endpoints + 1).max(weir::config::DEFAULT_MAX_ENDPOINTS);
    let config = HostConfig { worker_threads: args.worker_threads, max_endpoints, ..HostConfig::default() };
    let engine = Engine::new(&config)?;
    let path = |target: &str, file: &str| args.components.join(target).join("release").join(file);
    let (echo_path, echo_sync_path) = (path("wasm32-wasip2", "echo.wasm"), path("wasm32-wasip1", "echo_sync.wasm"));
    let echo = engine.load_file(&echo_path)?;
    let caller = engine.load_file(path("wasm32-wasip2", "caller.wasm"))?;
    let echo_sync = engine.load_file(&echo_sync_path)?;
    if let Some(path) = &args.resident_of {
        let starts = start_many(&engine, &config, &engine.load_file(path)?, args.endpoints).await?;
        println!("{}", starts.resident);
        return Ok(());
    }
    let mut rows = Vec::new();

    for (what, component, path) in [
        ("echo-sync (sync-only component)", &echo_sync, &echo_sync_path),
        ("echo (async component)", &echo, &echo_path),
    ] {
        let start_row = format!("start an endpoint, {what}");
        if start_row.contains(&args.only) {
            let starts = start_many(&engine, &config, component, args.endpoints).await?;
            let reference = "Flink 2.3: 240 µs; target ≤ 20 µs, > 20,000 starts/s";
            let fresh = format!("{start_row}, fresh pool slots: p50 / mean (starts per second)");
            rows.push(Row { what: fresh, weir: starts.fresh, reference: reference.into() });
            let reused = format!("{start_row}, reused pool slots: p50 / mean (starts per second)");
            rows.push(Row { what: reused, weir: starts.reused, reference: reference.into() });
        }
        let memory_row = format!("resident memory per idle endpoint, {what}, {} started alone", args.endpoints);
        if memory_row.contains(&args.only) {
            let resident = resident_alone(args, path)?;
            let per_gib = (1u64 << 30) / resident.max(1);
            let weir = format!("{:.1} KiB ({per_gib} endpoints per GiB)", resident as f64 / 1024.0);
            let reference = "target: 10,000 idle endpoints within 1 GiB (≤ 104 KiB each)";
            rows.push(Row { what: memory_row, weir, reference: reference.into() });
        }
    }

    let host = RpcService::new(config.clone(), engine.clone())?;

    let sync_endpoint = host.start("echo-sync", &echo_sync, EndpointOptions::default()).await?;
    let echo_endpoint = host.start("echo", &echo, EndpointOptions::default()).await?;
    let caller_endpoint = host.start("caller", &caller, EndpointOptions::default()).await?;
    let sync_gateway = sync_endpoint.gateway(ECHO_SYNC)?;
    let echo_gateway = echo_endpoint.gateway(ECHO)?;

    for (what, gateway, function, floor_of) in [
        ("sync function, sync-only component", &sync_gateway, "ping", (&echo_sync, &echo_sync_path, ECHO_SYNC)),
        ("sync function, async component", &echo_gateway, "ping", (&echo, &echo_path, ECHO)),
        ("async function", &echo_gateway, "ping-async", (&echo, &echo_path, ECHO)),
    ] {
        let mut floor = None;
        for placement in PLACEMENTS {
            let what = format!("host → endpoint ask, {what}, {placement}: p50 / p99");
            if !what.contains(&args.only) {
                continue;
            }
            let floor_time = match floor {
                Some(time) => time,
                None => {
                    let (component, path, gateway) = floor_of;
                    let concurrent = component.info().mode == ExecutionMode::Concurrent;
                    let rounds = rounds(args.rounds, || {
                        floor::mean_call(path, concurrent, gateway, function, &[Val::U64(1)], args.asks)
                    })
                    .await?;
                    *floor.insert(median(&rounds, |d| d.as_nanos() as f64))
                }
            };
            let rounds = rounds(args.rounds, || {
                placement.run(&host, ask_latency(gateway.clone(), function, args.asks, counting))
            })
            .await?;
            rows.push(Row {
                what,
                weir: latencies(&rounds),
                reference: match placement {
                    // Flink's local ask is a plain thread calling an endpoint.
                    Placement::Across => format!(
                        "floor {} (raw wasmtime call); Flink 2.3 local ask (a thread calling an endpoint): 14.5 µs / 76-94 µs",
                        micros(floor_time)
                    ),
                    Placement::Same => format!("floor {} (raw wasmtime call)", micros(floor_time)),
                },
            });
        }
    }

    payload_rows(args, &host, &echo_gateway, &mut rows).await?;

    let what = "endpoint → endpoint ask (caller → echo.ping): p50 / p99".to_owned();
    if what.contains(&args.only) {
        let caller_gateway = caller_endpoint.gateway(CALLER)?;
        let rounds =
            rounds(args.rounds, || endpoint_latency(&caller_gateway, echo_endpoint.address(), args.asks)).await?;
        rows.push(Row {
            what,
            weir: latencies(&rounds),
            reference: "target p50 ≤ 3 µs (Flink has no like figure: its local ask is a plain thread calling)".into(),
        });
    }

    for (what, gateway, function, target) in [
        ("sync function, sync-only component", &sync_gateway, "ping", "target ≥ 1M/s"),
        ("sync function, async component", &echo_gateway, "ping", "target ≥ 1M/s"),
        ("async function", &echo_gateway, "ping-async", "target ≥ 1M/s"),
    ] {
        for placement in PLACEMENTS {
            let what = format!("pipelined asks, {what}, {placement}");
            if what.contains(&args.only) {
                let work =
                    || placement.run(&host, pipelined(gateway.clone(), function, args.calls, args.in_flight, counting));
                let rates = rounds(args.rounds, work).await?;
                rows.push(Row {
                    what,
                    weir: rates_text(&rates),
                    reference: format!("Flink 2.3: 260k-320k/s; {target}"),
                });
            }
        }
        for placement in PLACEMENTS {
            let what = format!("asks from {} concurrent callers, {what}, {placement}", args.in_flight);
            if what.contains(&args.only) {
                let work =
                    || placement.run(&host, concurrent_callers(gateway.clone(), function, args.calls, args.in_flight));
                let rates = rounds(args.rounds, work).await?;
                rows.push(Row {
                    what,
                    weir: rates_text(&rates),
                    reference: format!("as many asks in flight as the row above, from tasks of their own; {target}"),
                });
            }
        }
    }
    for (what, gateway, function) in
        [("sync-only component", &sync_gateway, "notify"), ("async component", &echo_gateway, "notify")]
    {
        for placement in PLACEMENTS {
            let what = format!("tells, {what}, {placement}");
            if what.contains(&args.only) {
                let work = || placement.run(&host, tells(gateway.clone(), function, args.calls, counting));
                let rates = rounds(args.rounds, work).await?;
                rows.push(Row {
                    what,
                    weir: rates_text(&rates),
                    reference: "Flink 2.3: 1.2M-1.5M/s; target ≥ 2M/s".into(),
                });
            }
        }
    }
    host.shutdown().await?;

    let remote = remote::RemoteArgs {
        components: &args.components,
        worker_threads: args.worker_threads,
        asks: args.asks / 10,
        calls: args.calls / 4,
        in_flight: args.in_flight,
        rounds: args.rounds,
        only: &args.only,
        tls: args.tls.as_deref(),
    };
    remote::measure(&remote, &engine, &mut rows).await?;
    let components = args.components.join("wasm32-wasip2/release");
    swap::measure(&components, &args.only, &mut rows).await?;
    cluster::measure(&components, &args.only, &mut rows).await?;
    processes::measure(&components, &args.only, args.zookeeper.as_deref(), &mut rows).await?;

    println!("| measurement | weir | reference |\n| --- | --- | --- |");
    for row in rows {
        println!("| {} | {} | {} |", row.what, row.weir, row.reference);
    }
    Ok(())
}

/// Local asks carrying byte lists, next to the memcpy of the same bytes:
/// echoes (the payload both ways) and one-way asks (the payload in, its
/// length back, as Flink's sized asks).
async fn payload_rows(
    args: &BenchArgs,
    host: &RpcService,
    echo: &GatewayClient,
    rows: &mut Vec<Row>,
) -> Result<(), Error> {
    for (size_name, size, asks) in [("100 KiB", 100 * 1024, args.asks / 10), ("9 MiB", 9 * 1024 * 1024, 50)] {
        let name = |kind: &str, function: &str, placement: Placement| {
            format!("local ask, {size_name} {kind} (echo.{function}), {placement}: p50 / p99")
        };
        let kinds = [("echo", "echo"), ("one way", "absorb")];
        let chosen = kinds.iter().any(|(k, f)| PLACEMENTS.iter().any(|p| name(k, f, *p).contains(&args.only)));
        if !chosen {
            continue;
        }
        let floor = rounds(args.rounds, || async { memcpy(size, asks) }).await?;
        let floor = format!("memcpy of {size_name}: {}", micros(median(&floor, |d: Duration| d.as_nanos() as f64)));
        for (kind, function, target) in
            [("echo", "echo", "target ≤ 40 µs for 100 KiB, ≤ 5 ms for 9 MiB"), ("one way", "absorb", "")]
        {
            for placement in PLACEMENTS {
                let what = name(kind, function, placement);
                if !what.contains(&args.only) {
                    continue;
                }
                let work = || placement.run(host, ask_latency(echo.clone(), function, asks, move |_| payload(size)));
                let measured = rounds(args.rounds, work).await?;
                let reference = [floor.as_str(), target].iter().filter(|t| !t.is_empty()).copied().collect::<Vec<_>>();
                rows.push(Row { what, weir: latencies(&measured), reference: reference.join("; ") });
            }
        }
    }
    // A byte list inside a record crosses as one dynamic value per byte.
    let what =
        "local ask, 100 KiB in a record (echo.echo-chunk), caller on the endpoint's thread: p50 / p99".to_owned();
    if what.contains(&args.only) {
        let chunk = |_| {
            let data = payload(100 * 1024).into_val();
            Value::Val(Val::Record(vec![("sequence".into(), Val::U64(1)), ("data".into(), data)]))
        };
        let work = || Placement::Same.run(host, ask_latency(echo.clone(), "echo-chunk", args.asks / 100, chunk));
        let measured = rounds(args.rounds, work).await?;
        let reference = "dynamic values: what a byte list nested in a record, variant, option or result costs".into();
        rows.push(Row { what, weir: latencies(&measured), reference });
    }
    Ok(())
}

/// The mean time to copy `size` bytes into a fresh buffer, as the host
/// does into and out of guest memory.
fn memcpy(size: usize, times: u32) -> Result<Duration, Error> {
    let source = vec![0xa5u8; size];
    let started = Instant::now();
    for _ in 0..times {
        std::hint::black_box(std::hint::black_box(&source).clone());
    }
    Ok(started.elapsed() / times.max(1))
}

/// Runs `measure` `n` times, one after the other.
async fn rounds<T, F: Future<Output = Result<T, E>>, E: Into<Error>>(
    n: usize,
    mut measure: impl FnMut() -> F,
) -> Result<Vec<T>, Error> {
    let mut results = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        results.push(measure().await.map_err(Into::into)?);
    }
    Ok(results)
}

/// The median of `values` by `key`.
fn median<T: Copy>(values: &[T], key: impl Fn(T) -> f64) -> f64 {
    let mut keys: Vec<f64> = values.iter().map(|&v| key(v)).collect();
    keys.sort_by(f64::total_cmp);
    keys[keys.len() / 2]
}

/// Median p50 / median p99, and the spread of the p50s.
fn latencies(rounds: &[Latency]) -> String {
    let p50 = median(rounds, |l| l.p50 as f64);
    let p99 = median(rounds, |l| l.p99 as f64);
    let low = rounds.iter().map(|l| l.p50).min().unwrap_or(0) as f64;
    let high = rounds.iter().map(|l| l.p50).max().unwrap_or(0) as f64;
    format!("{} / {} (p50 of rounds: {}–{})", micros(p50), micros(p99), micros(low), micros(high))
}

/// The median rate, and the spread of the rounds.
fn rates_text(rates: &[f64]) -> String {
    let low = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let high = rates.iter().copied().fold(0.0, f64::max);
    format!("{} (rounds: {}–{})", per_second(median(rates, |r| r)), per_second(low), per_second(high))
}

/// The `i`-th call's argument of the local figures: `i`.
fn counting(i: u32) -> Value {
    Value::Val(Val::U64(u64::from(i)))
}

/// A byte list of `size` bytes, as the host carries it.
fn payload(size: usize) -> Value {
    Value::Bytes(vec![0xa5; size].into())
}

async fn ask_latency(
    gateway: GatewayClient,
    function: &'static str,
    asks: u32,
    argument: impl Fn(u32) -> Value,
) -> Result<Latency, Error> {
    let mut histogram = Histogram::<u64>::new(3)?;
    for i in 0..asks {
        let argument = argument(i);
        let sent = Instant::now();
        gateway.ask_values(function, vec![argument]).await?;
        histogram.record(nanos(sent.elapsed()))?;
    }
    Ok(Latency { p50: histogram.value_at_quantile(0.5), p99: histogram.value_at_quantile(0.99) })
}

/// The caller endpoint asks the echo `asks` times and times each round trip
/// itself, on the host's monotonic clock.
async fn endpoint_latency(caller: &GatewayClient, echo: &str, asks: u32) -> Result<Latency, Error> {
    let reply = caller.ask("ping-loop", vec![Val::String(echo.into()), Val::U32(asks)]).await?;
    let Some(Val::Result(Ok(Some(list)))) = reply else { return Err(format!("ping-loop failed: {reply:?}").into()) };
    let Val::List(round_trips) = *list else { return Err("ping-loop returned no list".into()) };
    let mut histogram = Histogram::<u64>::new(3)?;
    for round_trip in round_trips {
        if let Val::U64(nanos) = round_trip {
            histogram.record(nanos)?;
        }
    }
    Ok(Latency { p50: histogram.value_at_quantile(0.5), p99: histogram.value_at_quantile(0.99) })
}

async fn pipelined(
    gateway: GatewayClient,
    function: &'static str,
    calls: u32,
    in_flight: usize,
    argument: impl Fn(u32) -> Value,
) -> Result<f64, Error> {
    let gateway = &gateway;
    let started = Instant::now();
    let mut running = FuturesUnordered::new();
    let mut sent = 0u32;
    let mut done = 0u32;
    while done < calls {
        while sent < calls && running.len() < in_flight {
            running.push(gateway.ask_values(function, vec![argument(sent)]));
            sent += 1;
        }
        if let Some(reply) = running.next().await {
            reply?;
            done += 1;
        }
    }
    Ok(f64::from(calls) / started.elapsed().as_secs_f64())
}

/// `callers` tasks, each asking one call at a time until `calls` have
/// been made in all: as many asks in flight as [`pipelined`] keeps, each
/// caller a task of its own rather than one future among many of one task.
async fn concurrent_callers(
    gateway: GatewayClient,
    function: &'static str,
    calls: u32,
    callers: usize,
) -> Result<f64, Error> {
    let callers = u32::try_from(callers).unwrap_or(u32::MAX).clamp(1, calls.max(1));
    let each = calls / callers;
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let gateway = gateway.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    gateway.ask_values(function, vec![counting(i)]).await?;
                }
                Ok::<_, weir::RpcError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(f64::from(each * callers) / started.elapsed().as_secs_f64())
}

async fn tells(
    gateway: GatewayClient,
    function: &'static str,
    calls: u32,
    argument: impl Fn(u32) -> Value,
) -> Result<f64, Error> {
    let gateway = &gateway;
    let (before, _) = notified(gateway).await?;
    let started = Instant::now();
    for i in 0..calls {
        gateway.tell_values(function, vec![argument(i)]).await?;
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

/// Starts `count` endpoints on a fresh host: the start time per endpoint in
/// fresh pool slots and, after stopping them all, in reused ones; and the
/// resident memory each idle endpoint adds.
async fn start_many(
    engine: &Engine,
    config: &HostConfig,
    component: &EndpointComponent,
    count: u32,
) -> Result<Starts, Error> {
    let host = RpcService::new(config.clone(), engine.clone())?;
    let starts = Placement::Same.run(&host, start_idle(host.clone(), component.clone(), count)).await?;
    host.shutdown().await?;
    Ok(starts)
}

/// What [`start_many`] measured.
struct Starts {
    fresh: String,
    reused: String,
    /// Resident bytes per idle endpoint.
    resident: u64,
}

/// The resident bytes per idle endpoint of the component at `path`,
/// measured by this binary in a fresh process.
fn resident_alone(args: &BenchArgs, path: &Path) -> Result<u64, Error> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg("bench")
        .arg("--components")
        .arg(&args.components)
        .args(["--endpoints", &args.endpoints.to_string(), "--worker-threads", &args.worker_threads.to_string()])
        .arg("--resident-of")
        .arg(path)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(format!("measuring memory alone failed: {}", output.status).into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.trim().parse()?)
}

/// Starts `count` endpoints, each after the previous one has started; then
/// stops them and starts `count` more in the slots they left.
async fn start_idle(host: RpcService, component: EndpointComponent, count: u32) -> Result<Starts, Error> {
    let component = &component;
    // Warm up: the first instance of a component touches its code pages.
    host.start("warm-up", component, EndpointOptions::default()).await?;
    let resident_before = resident_bytes()?;
    let (fresh, endpoints) = start_all(&host, component, "fresh", count).await?;
    let per_endpoint = resident_bytes()?.saturating_sub(resident_before) / u64::from(count);
    for endpoint in endpoints {
        endpoint.close().await?;
    }
    let (reused, _) = start_all(&host, component, "reused", count).await?;
    Ok(Starts { fresh, reused, resident: per_endpoint })
}

/// Starts `count` endpoints one after the other: p50 / mean start time.
async fn start_all(
    host: &RpcService,
    component: &EndpointComponent,
    prefix: &str,
    count: u32,
) -> Result<(String, Vec<weir::Endpoint>), Error> {
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut endpoints = Vec::with_capacity(count as usize);
    let started = Instant::now();
    for i in 0..count {
        let one = Instant::now();
        endpoints.push(host.start(&format!("{prefix}-{i}"), component, EndpointOptions::default()).await?);
        histogram.record(nanos(one.elapsed()))?;
    }
    let mean = started.elapsed() / count;
    let rate = per_second(1.0 / mean.as_secs_f64());
    let p50 = micros(histogram.value_at_quantile(0.5) as f64);
    let text = format!("{p50} / {} ({rate})", micros(mean.as_nanos() as f64));
    Ok((text, endpoints))
}

/// The process's resident set size, from `/proc/self/statm`.
fn resident_bytes() -> Result<u64, Error> {
    let statm = std::fs::read_to_string(Path::new("/proc/self/statm"))?;
    let pages: u64 = statm.split_whitespace().nth(1).ok_or("bad statm")?.parse()?;
    Ok(pages * 4096)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn micros(nanos: f64) -> String {
    format!("{:.2} µs", nanos / 1e3)
}

fn per_second(rate: f64) -> String {
    match rate {
        r if r >= 1e6 => format!("{:.2}M/s", r / 1e6),
        r if r >= 1e4 => format!("{:.0}k/s", r / 1e3),
        r => format!("{r:.0}/s"),
    }
}
