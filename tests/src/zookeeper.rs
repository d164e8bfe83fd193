//! A real ZooKeeper server (Debian's `zookeeper` package, which
//! `scripts/setup` installs), started once per test process on a free
//! loopback port. It ends with the test process: a watchdog shell kills it
//! when the test process's end closes its standard input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Where Debian's package puts the server's start script.
const SERVER_SCRIPT: &str = "/usr/share/zookeeper/bin/zkServer.sh";

/// ZooKeeper's tick: sessions may last from 2 to 20 ticks, so tests can use
/// sessions of a few seconds.
const TICK_MS: u32 = 250;

/// The session timeout the HA tests use: short, so takeovers happen within
/// seconds, but many heartbeats long, so a loaded machine keeps its
/// sessions.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// The running server.
#[derive(Debug)]
pub struct ZooKeeperServer {
    address: String,
    /// The watchdog, and its standard input, held open: it kills the server
    /// once that closes.
    _watchdog: Mutex<(Child, ChildStdin)>,
}

impl ZooKeeperServer {
    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// The test process's ZooKeeper server, started on first use.
///
/// # Panics
///
/// If ZooKeeper is not installed or does not start within [`PATIENCE`].
pub fn zookeeper() -> &'static ZooKeeperServer {
    static SERVER: OnceLock<ZooKeeperServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> ZooKeeperServer {
    assert!(
        Path::new(SERVER_SCRIPT).exists(),
        "ZooKeeper is not installed: run scripts/setup (it installs Debian's `zookeeper`)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("no free port").port();
    let dir = std::env::temp_dir().join(format!("weir-zookeeper-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).expect("cannot create ZooKeeper's directory");
    let config = dir.join("zoo.cfg");
    std::fs::write(
        &config,
        format!(
            "tickTime={TICK_MS}\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\nmaxSessionTimeout={}\n",
            dir.join("data").display(),
            TICK_MS * 20,
        ),
    )
    .expect("cannot write zoo.cfg");
    // The server runs in its own process group, which the watchdog kills
    // when its standard input (held by this process) closes. The watchdog
    // ignores the signals that end the test run (Ctrl-C, `timeout`), so it
    // outlives the run and cleans up after it; it starts ignoring them only
    // after starting the server, which must not inherit that.
    let watchdog = format!(
        "setsid {SERVER_SCRIPT} start-foreground {config} >{log} 2>&1 & server=$!; trap '' INT TERM HUP; \
         cat >/dev/null; kill -- -$server; rm -rf {dir}",
        config = config.display(),
        log = dir.join("server.log").display(),
        dir = dir.display(),
    );
    let mut child = Command::new("sh")
        .args(["-c", &watchdog])
        .env("ZOO_LOG_DIR", &dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("cannot start ZooKeeper");
    let stdin = child.stdin.take().expect("piped");
    let address = format!("127.0.0.1:{port}");
    crate::eventually_blocking(|| {
        serves(&address)
            .then_some(())
            .ok_or_else(|| format!("ZooKeeper did not start; see {}", dir.join("server.log").display()))
    });
    ZooKeeperServer { address, _watchdog: Mutex::new((child, stdin)) }
}

/// Whether the server answers ZooKeeper's `srvr` command (allowed by default)
/// within a moment: a server still starting may take the connection and
/// never answer it.
fn serves(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else { return false };
    let patience = Some(Duration::from_secs(2));
    if stream.set_read_timeout(patience).is_err() || stream.set_write_timeout(patience).is_err() {
        return false;
    }
    let mut answer = String::new();
    stream.write_all(b"srvr").is_ok() && stream.read_to_string(&mut answer).is_ok() && answer.contains("Mode:")
}
