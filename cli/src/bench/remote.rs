//! Remote figures: asks and tells between two host processes over loopback,
//! next to the floor, a raw TCP ping-pong between the same two processes.
//!
//! The bench starts a peer process (`weir bench-peer`, this binary) that
//! runs an echo endpoint and a raw TCP echo server, and calls both from
//! the bench's own host.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir::{EndpointOptions, Engine, HostConfig, RpcService, TlsConfig};

use super::{
    ECHO, ECHO_SYNC, Error, Latency, Placement, Row, ask_latency, latencies, micros, nanos, payload, pipelined,
    rates_text, rounds, tells,
};

/// The peer process's side.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The target directory the endpoint components were built into.
    #[arg(long, default_value = "target/wasm-endpoints")]
    components: PathBuf,
    /// Threads that drive the endpoints.
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
    /// A directory with `ca.pem`, `host.pem` and `host.key`: mutual TLS.
    #[arg(long)]
    tls: Option<PathBuf>,
}

/// Payload sizes of the measured asks.
const SIZES: [(&str, usize); 3] = [("100 B", 100), ("1 KiB", 1024), ("100 KiB", 100 * 1024)];

fn tls_config(dir: &Path) -> TlsConfig {
    TlsConfig { ca: dir.join("ca.pem"), certificate: dir.join("host.pem"), key: dir.join("host.key") }
}

fn host_config(worker_threads: usize, tls: Option<&Path>) -> HostConfig {
    HostConfig { worker_threads, listen: Some("127.0.0.1:0".into()), tls: tls.map(tls_config), ..HostConfig::default() }
}

/// Runs the peer: an echo endpoint, a raw TCP echo server and a raw TCP
/// sink, until stdin closes. Prints `listening at <authority>`,
/// `floor at <address>` and `sink at <address>`.
pub fn peer(args: &PeerArgs) -> Result<(), Error> {
    let config = host_config(args.worker_threads, args.tls.as_deref());
    let engine = Engine::new(&config)?;
    let host = RpcService::new(config, engine.clone())?;
    let echo = engine.load_file(args.components.join("wasm32-wasip2/release/echo.wasm"))?;
    let echo_sync = engine.load_file(args.components.join("wasm32-wasip1/release/echo_sync.wasm"))?;
    host.runtime().block_on(async {
        host.start("echo", &echo, EndpointOptions::default()).await?;
        host.start("echo-sync", &echo_sync, EndpointOptions::default()).await?;
        let floor = TcpListener::bind("127.0.0.1:0").await?;
        println!("listening at {}", host.authority());
        println!("floor at {}", floor.local_addr()?);
        let sink = TcpListener::bind("127.0.0.1:0").await?;
        println!("sink at {}", sink.local_addr()?);
        tokio::spawn(serve_sink(sink));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = floor.accept().await {
                tokio::spawn(async move {
                    let _ = socket.set_nodelay(true);
                    let mut buffer = [0; 100];
                    while socket.read_exact(&mut buffer).await.is_ok() && socket.write_all(&buffer).await.is_ok() {}
                });
            }
        });
        crate::stdin_closed().await;
        Ok::<_, Error>(())
    })
}

/// The streaming floor's server: reads a length, that many bytes, and
/// answers with one byte.
async fn serve_sink(sink: TcpListener) {
    while let Ok((mut socket, _)) = sink.accept().await {
        tokio::spawn(async move {
            let mut buffer = vec![0; 256 * 1024];
            while let Ok(mut left) = socket.read_u64().await {
                while left > 0 {
                    let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    match socket.read(&mut buffer[..want]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => left -= n as u64,
                    }
                }
                if socket.write_u8(1).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The peer process, killed when dropped.
struct Peer {
    child: Child,
    authority: String,
    sink: String,
    floor: String,
}

impl Peer {
    fn start(components: &Path, worker_threads: usize, tls: Option<&Path>) -> Result<Self, Error> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args(["bench-peer", "--worker-threads", &worker_threads.to_string(), "--components"])
            .arg(components)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(tls) = tls {
            command.arg("--tls").arg(tls);
        }
        let mut child = command.spawn()?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let mut next = |prefix: &str| -> Result<String, Error> {
            let line = lines.next().ok_or("the peer ended early")??;
            Ok(line.strip_prefix(prefix).ok_or_else(|| format!("unexpected peer output: {line}"))?.to_owned())
        };
        let authority = next("listening at ")?;
        let floor = next("floor at ")?;
        let sink = next("sink at ")?;
        Ok(Self { child, authority, floor, sink })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the remote measurements need from the bench's arguments.
pub(super) struct RemoteArgs<'a> {
    pub components: &'a Path,
    pub worker_threads: usize,
    pub asks: u32,
    pub calls: u32,
    pub in_flight: usize,
    pub rounds: usize,
    pub only: &'a str,
    pub tls: Option<&'a Path>,
}

/// Measures everything remote, plain and (if a TLS directory is given)
/// with mutual TLS.
pub(super) async fn measure(args: &RemoteArgs<'_>, engine: &Engine, rows: &mut Vec<Row>) -> Result<(), Error> {
    let floor = "remote floor: raw TCP ping-pong of 100 B between the two processes: p50 / p99".to_owned();
    let mut floor_p50 = None;
    let plain = [(None, "")];
    let with_tls = args.tls.map(|dir| (Some(dir), ", mTLS"));
    for (tls, label) in plain.into_iter().chain(with_tls) {
        let peer = Peer::start(args.components, args.worker_threads, tls)?;
        let host = RpcService::new(host_config(args.worker_threads, tls), engine.clone())?;
        let echo = host.connect(&format!("weir://{}/echo", peer.authority), ECHO, None).await?;
        if tls.is_none() && floor.contains(args.only) {
            let address = peer.floor.clone();
            let measured =
                rounds(args.rounds, || Placement::Same.run(&host, ping_pong(address.clone(), args.asks))).await?;
            floor_p50 = Some(super::median(&measured, |l| l.p50 as f64));
            rows.push(Row {
                what: floor.clone(), weir: latencies(&measured), reference: "≈80 µs on two CPUs".into()
            });
        }
        let floor_text = floor_p50.map_or_else(String::new, |p50| format!("floor {}; ", micros(p50)));
        if tls.is_none() {
            let what = "remote streaming floor: raw TCP, 100 KiB writes between the two processes".to_owned();
            if what.contains(args.only) {
                let address = peer.sink.clone();
                let rates = rounds(args.rounds, || Placement::Same.run(&host, stream(address.clone(), 4096))).await?;
                let weir = megabytes(&rates, 100 * 1024);
                rows.push(Row { what, weir, reference: "the ceiling of the rows below".into() });
            }
        }
        for (size_name, size) in SIZES {
            let sized = |calls: u32| if size > 10_000 { calls / 10 } else { calls };
            for (kind, function) in [("echo", "echo"), ("one way", "absorb")] {
                let what = format!("remote ask, {size_name} {kind} (echo.{function}){label}: p50 / p99");
                if what.contains(args.only) {
                    let asks = sized(args.asks);
                    let measured = rounds(args.rounds, || {
                        Placement::Same.run(&host, ask_latency(echo.clone(), function, asks, move |_| payload(size)))
                    })
                    .await?;
                    let reference = format!("{floor_text}Flink 2.3: 400-430 µs (100 B), 0.66 ms (100 KiB one way)");
                    rows.push(Row { what, weir: latencies(&measured), reference });
                }
                let what =
                    format!("remote pipelined asks on one connection, {size_name} {kind} (echo.{function}){label}");
                if what.contains(args.only) {
                    let calls = sized(args.calls);
                    let work = || {
                        let asks = pipelined(echo.clone(), function, calls, args.in_flight, move |_| payload(size));
                        Placement::Same.run(&host, asks)
                    };
                    let rates = rounds(args.rounds, work).await?;
                    let reference = match size_name {
                        "100 B" => "target ≥ 250k/s; Flink 2.3: 18k-20k/s",
                        "1 KiB" => "target ≥ 200k/s; Flink 2.3: 19k-21k/s",
                        _ => "target ≥ 1 GB/s; Flink 2.3: ≈120/s (12 MB/s)",
                    };
                    rows.push(Row { what, weir: megabytes(&rates, size), reference: reference.into() });
                }
            }
        }
        let what = format!("remote tells, 100 KiB (echo.sink), async component{label}");
        if what.contains(args.only) {
            let size = 100 * 1024;
            let work =
                || Placement::Same.run(&host, tells(echo.clone(), "sink", args.calls / 10, move |_| payload(size)));
            let rates = rounds(args.rounds, work).await?;
            rows.push(Row { what, weir: megabytes(&rates, size), reference: String::new() });
        }
        // A `u64` instead of a byte list: the transport without the cost of
        // a list's per-element values.
        let what = format!("remote ask, echo.ping(u64){label}: p50 / p99");
        if what.contains(args.only) {
            let work = || Placement::Same.run(&host, ask_latency(echo.clone(), "ping", args.asks, super::counting));
            let measured = rounds(args.rounds, work).await?;
            rows.push(Row {
                what, weir: latencies(&measured), reference: format!("{floor_text}target ≤ 1.5 × floor")
            });
        }
        let what = format!("remote pipelined asks on one connection, echo.ping(u64){label}");
        if what.contains(args.only) {
            let work = || {
                Placement::Same.run(&host, pipelined(echo.clone(), "ping", args.calls, args.in_flight, super::counting))
            };
            let rates = rounds(args.rounds, work).await?;
            rows.push(Row { what, weir: rates_text(&rates), reference: "target ≥ 200k/s".into() });
        }
        let echo_sync = host.connect(&format!("weir://{}/echo-sync", peer.authority), ECHO_SYNC, None).await?;
        // An async component serves about 500k tells/s even locally; a
        // sync-only one shows what the transport carries.
        for (component, gateway) in [("async component", &echo), ("sync-only component", &echo_sync)] {
            let what = format!("remote tells, {component}{label}");
            if what.contains(args.only) {
                let work = || Placement::Same.run(&host, tells(gateway.clone(), "notify", args.calls, super::counting));
                let rates = rounds(args.rounds, work).await?;
                let reference = "Flink 2.3: 31k/s; target ≥ 500k/s".into();
                rows.push(Row { what, weir: rates_text(&rates), reference });
            }
        }
        host.shutdown().await?;
    }
    Ok(())
}

/// Rates, and the bytes per second they carry when `size` is large.
fn megabytes(rates: &[f64], size: usize) -> String {
    let text = rates_text(rates);
    if size < 10_000 {
        return text;
    }
    let rate = super::median(rates, |r| r);
    format!("{text} = {:.0} MB/s", rate * size as f64 / 1e6)
}

/// The streaming floor: `writes` writes of 100 KiB on a plain socket, then
/// the sink's acknowledgement; writes per second.
async fn stream(address: String, writes: u32) -> Result<f64, Error> {
    let mut socket = TcpStream::connect(address).await?;
    socket.set_nodelay(true)?;
    let chunk = vec![0xa5u8; 100 * 1024];
    let started = Instant::now();
    socket.write_u64(chunk.len() as u64 * u64::from(writes)).await?;
    for _ in 0..writes {
        socket.write_all(&chunk).await?;
    }
    socket.read_u8().await?;
    Ok(f64::from(writes) / started.elapsed().as_secs_f64())
}

/// The floor: 100 B back and forth on a plain socket.
async fn ping_pong(address: String, rounds: u32) -> Result<Latency, Error> {
    let mut socket = TcpStream::connect(address).await?;
    socket.set_nodelay(true)?;
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut buffer = [0x5a; 100];
    for _ in 0..rounds {
        let sent = Instant::now();
        socket.write_all(&buffer).await?;
        socket.read_exact(&mut buffer).await?;
        histogram.record(nanos(sent.elapsed()))?;
    }
    Ok(Latency { p50: histogram.value_at_quantile(0.5), p99: histogram.value_at_quantile(0.99) })
}
