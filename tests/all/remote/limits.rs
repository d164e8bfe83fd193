//! What a peer can and cannot make a host do: a full mailbox holds up only
//! the calls to its endpoint, connections are bounded in number, in idle
//! time and in how long a frame may take, and a peer that does not read its
//! replies holds up only itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use wasmtime::component::Val;
use weir::{EndpointOptions, HostConfig, HostEvent, PROTOCOL_VERSION, RpcError};
use weir_guest::batch::{Wire, write_varint};
use weir_tests::gateways::{ECHO, KEEPER, PROBE};
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{PATIENCE, artifacts, capture_logs, component, eventually, host_with, text};

use super::{listening_config, listening_host};

/// A frame as bytes: a big-endian length, then the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// This protocol's hello (bincode: variant 0, the magic, version, a frame
/// limit of 2^20 and an idle timeout of 250 ms, as varints).
fn hello() -> Vec<u8> {
    let mut body = vec![0, b'w', b'e', b'i', b'r', u8::try_from(PROTOCOL_VERSION).unwrap()];
    body.extend_from_slice(&[252, 0, 0, 16, 0]);
    body.push(250);
    frame(&body)
}

/// A raw connection that said hello, and read the host's.
fn greeted(authority: &str) -> TcpStream {
    let mut socket = TcpStream::connect(authority).unwrap();
    socket.write_all(&hello()).unwrap();
    let mut length = [0; 4];
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.read_exact(&mut length).unwrap();
    let mut body = vec![0; u32::from_be_bytes(length) as usize];
    socket.read_exact(&mut body).unwrap();
    assert_eq!(body[0], 0, "the host answered with its hello");
    socket
}

/// Whether the host closes `socket` (reads reach the end) before PATIENCE.
fn closed_by_host(mut socket: TcpStream) -> bool {
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut sink = Vec::new();
    match socket.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

async fn on_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mailbox_holds_up_only_the_calls_to_its_endpoint() {
    // `stuck` runs at most 2 calls and queues 4; `free` and `peer` are on
    // the same host, reached over the same connection.
    let remote = HostProcess::start(
        &HostSpec::new()
            .host("mailbox-capacity = 4")
            .host("max-in-flight = 2")
            .endpoint("stuck", artifacts::PROBE, "")
            .endpoint("free", artifacts::ECHO, "")
            .endpoint("peer", artifacts::KEEPER, ""),
    );
    let host = listening_host();
    let stuck = host.connect(&remote.address("stuck"), PROBE, None).await.unwrap().with_timeout(PATIENCE * 4);
    let free = host.connect(&remote.address("free"), ECHO, None).await.unwrap();

    // Two calls stall for an hour, four more fill the mailbox, and three
    // more have no room: before, they stopped the connection's reader.
    let stalled: Vec<_> = (0..9)
        .map(|_| {
            tokio::spawn({
                let stuck = stuck.clone();
                async move { stuck.ask("stall", vec![Val::U64(3_600_000)]).await }
            })
        })
        .collect();
    eventually("the stuck endpoint's mailbox to fill", || async {
        // Each stall is its own frame on the one connection, in order; a
        // ping to `free` behind them shows they have all been read.
        free.ask("ping", vec![Val::U64(1)]).await.ok().map(|_| ())
    })
    .await;
    for x in 0..20 {
        assert_eq!(free.ask("ping", vec![Val::U64(x)]).await.unwrap(), Some(Val::U64(x)), "other endpoints are served");
    }

    // Heartbeats cross the same connection: a keeper here asks the one
    // there, which answers over its own connection back.
    let watcher = host.start("watcher", &component(artifacts::KEEPER), EndpointOptions::default()).await.unwrap();
    let peer = host.connect(&remote.address("peer"), KEEPER, None).await.unwrap();
    let watch = |peer: &str, sender: bool| vec![text(peer), Val::Bool(sender), Val::U64(20), Val::U64(60_000)];
    peer.tell("watch", watch(watcher.address(), false)).await.unwrap();
    let watcher_gateway = watcher.gateway(KEEPER).unwrap();
    watcher_gateway.tell("watch", watch(&remote.address("peer"), true)).await.unwrap();
    let heartbeat = format!("heartbeat {}", remote.address("peer"));
    eventually("a heartbeat through the jammed connection", || async {
        let Some(Val::List(seen)) = watcher_gateway.ask("heartbeats", vec![]).await.unwrap() else { panic!("a list") };
        seen.contains(&Val::String(heartbeat.clone())).then_some(())
    })
    .await;
    assert!(stalled.iter().all(|call| !call.is_finished()), "the stalled calls still wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_or_trickles_a_frame_is_closed() {
    capture_logs();
    let remote =
        HostProcess::start(&HostSpec::new().host("idle-timeout = \"1s\"").host("frame-timeout = \"1s\"").endpoint(
            "echo",
            artifacts::ECHO,
            "",
        ));
    // Silent after the hello.
    let silent = greeted(remote.authority());
    assert!(on_blocking(move || closed_by_host(silent)).await, "a silent connection is closed");
    // Half a frame, then nothing.
    let mut half = greeted(remote.authority());
    half.write_all(&[0, 0, 1]).unwrap();
    assert!(on_blocking(move || closed_by_host(half)).await, "a half frame is not waited for forever");
    // A frame a byte every 200 ms: never idle, never whole.
    let mut trickle = tokio::net::TcpStream::from_std({
        let socket = greeted(remote.authority());
        socket.set_nonblocking(true).unwrap();
        socket
    })
    .unwrap();
    let mut pace = tokio::time::interval(Duration::from_millis(200));
    let mut cut_off = false;
    for byte in frame(&[9; 1000]) {
        pace.tick().await;
        if tokio::io::AsyncWriteExt::write_all(&mut trickle, &[byte]).await.is_err() {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a trickled frame is cut off at the frame timeout");
    eventually("the host to log why", || async {
        let logs = remote.logs();
        let closed = |why: &str| logs.lines().any(|l| l.contains("connection from host closed") && l.contains(why));
        (closed("`idle-timeout`") && closed("`frame-timeout`")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weir_link_stays_open_while_idle_thanks_to_keepalives() {
    let idle_timeout = Duration::from_millis(300);
    let serving = host_with(HostConfig { idle_timeout, ..listening_config() });
    let mut events = serving.subscribe();
    serving.start("idle-echo", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let caller = listening_host();
    let echo = caller.connect(&serving.address_of("idle-echo"), ECHO, None).await.unwrap();
    assert_eq!(echo.ask("ping", vec![Val::U64(1)]).await.unwrap(), Some(Val::U64(1)));
    // Nothing is asked for several idle timeouts: the link must not close.
    let closed = tokio::time::timeout(idle_timeout * 5, async {
        loop {
            match events.recv().await {
                Ok(HostEvent::ConnectionClosed { reason, .. }) => return reason,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => std::future::pending().await,
            }
        }
    })
    .await;
    assert!(closed.is_err(), "the link was closed: {closed:?}");
    assert_eq!(echo.ask("ping", vec![Val::U64(2)]).await.unwrap(), Some(Val::U64(2)), "and still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_and_logged_once_per_burst() {
    capture_logs();
    let remote = HostProcess::start(&HostSpec::new().host("max-connections = 3").endpoint("echo", artifacts::ECHO, ""));
    let hoarded: Vec<TcpStream> = (0..3).map(|_| greeted(remote.authority())).collect();
    let host = listening_host();
    let error = host.connect(&remote.address("echo"), ECHO, None).await.unwrap_err();
    let RpcError::Unreachable { reason, .. } = &error else { panic!("expected unreachable, got {error}") };
    assert!(reason.contains("busy") && reason.contains("at most 3 connections"), "{reason}");
    // A burst of refusals is one line in the log.
    let refused: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(remote.authority()).unwrap()).collect();
    on_blocking(move || refused.into_iter().all(closed_by_host)).await;
    eventually("the refusals to be logged", || async { remote.logs().contains("refusing connections").then_some(()) })
        .await;
    assert_eq!(remote.logs().matches("refusing connections").count(), 1, "{}", remote.logs());
    // Once the hoarders go, callers get in again.
    drop(hoarded);
    let echo =
        eventually("a slot to free up", || async { host.connect(&remote.address("echo"), ECHO, None).await.ok() })
            .await;
    assert_eq!(echo.ask("ping", vec![Val::U64(5)]).await.unwrap(), Some(Val::U64(5)));
}

/// A string as the wire writes it (the guest SDK's encoder speaks the
/// wire's encoding).
fn string(text: &str, out: &mut Vec<u8>) {
    text.to_owned().encode(out);
}

/// Reads a frame body from `socket`.
fn read_frame(socket: &mut TcpStream) -> Vec<u8> {
    let mut length = [0; 4];
    socket.read_exact(&mut length).unwrap();
    let mut body = vec![0; u32::from_be_bytes(length) as usize];
    socket.read_exact(&mut body).unwrap();
    body
}

/// Resident memory of process `pid`, in bytes.
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Asks of 200 KB replies the raw peer makes.
const ASKS: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_read_its_replies_holds_up_only_itself() {
    capture_logs();
    // Large blocks (from 64 KiB: the `weir` binary leaves them to the C
    // library's allocator) go straight back to the system when freed, so
    // resident memory shows what the host holds, not what the allocator
    // kept.
    let remote = HostProcess::start(
        &HostSpec::new()
            .host("frame-size = 1048576")
            .host("reply-buffer = 1048576")
            .env("MALLOC_MMAP_THRESHOLD_", "65536")
            .endpoint("probe", artifacts::PROBE, ""),
    );
    let host = listening_host();
    let probe = host.connect(&remote.address("probe"), PROBE, None).await.unwrap();
    let pokes = || async { weir_tests::as_u64(probe.ask("pokes", vec![]).await.unwrap()) };
    // Warmed up by a few large replies that are read, so the baseline has
    // what any such reply costs the process once.
    for _ in 0..4 {
        probe.ask("fill", vec![Val::U32(200_000)]).await.unwrap();
    }
    let before = resident(remote.pid());

    // A raw peer connects to the probe, then asks for 200 KB at a time,
    // telling a poke after each ask, and never reads a reply.
    let mut socket = greeted(remote.authority());
    let mut connect = vec![4, 0];
    string("probe", &mut connect);
    string(PROBE, &mut connect);
    socket.write_all(&frame(&connect)).unwrap();
    let connected = read_frame(&mut socket);
    assert_eq!(&connected[..3], &[5, 0, 0], "connected, ok");
    // The address (a one-byte length here), then the incarnation, a
    // random u64: a full eight-byte varint.
    let rest = &connected[4 + connected[3] as usize..];
    assert_eq!(rest[0], 253, "an eight-byte incarnation");
    let incarnation = rest[..9].to_vec();
    let target = |function: &str, out: &mut Vec<u8>| {
        string("probe", out);
        out.extend_from_slice(&incarnation);
        write_varint(weir::gateway::FunctionId::of(PROBE, function).0, out);
        out.push(0); // no fencing token
    };
    let mut calls = Vec::new();
    for request in 1..=ASKS {
        let mut ask = vec![6];
        write_varint(request, &mut ask);
        target("fill", &mut ask);
        write_varint(200_000, &mut ask);
        calls.extend_from_slice(&frame(&ask));
        let mut tell = vec![7];
        target("poke", &mut tell);
        calls.extend_from_slice(&frame(&tell));
    }
    // It blocks once the host stops reading; the socket closes with the test.
    let writing = tokio::task::spawn_blocking(move || {
        let _ = socket.write_all(&calls);
        socket
    });

    // The host stops reading once 1 MiB of replies waits; the asks it had
    // read still reply, until more than four times that waits: then it
    // closes the connection and drops what waited. Once every ask has run
    // (100 MB of replies in all), it has grown by a fraction of that.
    eventually("the host to give up on the connection", || async {
        remote.logs().contains("the peer does not read its replies").then_some(())
    })
    .await;
    eventually("every ask read to have run", || async { (pokes().await == ASKS).then_some(()) }).await;
    // Replies made just before may still be on their way to being
    // dropped: what counts is that the host does not keep them. It settles
    // at a few MB of the 100 MB asked for.
    eventually("the host to hold a fifth at most of what it was asked for", || async {
        (resident(remote.pid()).saturating_sub(before) < 20 * 1024 * 1024).then_some(())
    })
    .await;
    assert_eq!(probe.ask("ping", vec![]).await.unwrap(), Some(Val::U64(1)), "other connections are served");
    // The peer finds its connection closed once it reads what was sent.
    let socket = writing.await.unwrap();
    assert!(on_blocking(move || closed_by_host(socket)).await, "the connection was closed");
}
