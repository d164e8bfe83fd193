//! Host processes: the project's own `weir` binary, started from a config
//! file, for tests that need hosts in other processes.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use crate::PATIENCE;

/// The `weir` binary, built (once per test process) if it is not current.
///
/// # Panics
///
/// If it cannot be built.
pub fn weir_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "weir-cli", "--bin", "weir"]).current_dir(root);
        if std::env::var_os("CI").is_some() {
            build.arg("--locked");
        }
        let status = build.status().expect("cannot run cargo to build the weir binary");
        assert!(status.success(), "building the weir binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        target.join("debug").join("weir")
    })
}

/// A host's config file, built up key by key.
#[derive(Clone, Debug)]
pub struct HostSpec {
    host: Vec<String>,
    ha: Vec<String>,
    endpoints: String,
    env: Vec<(String, String)>,
}

impl Default for HostSpec {
    fn default() -> Self {
        Self::new()
    }
}

impl HostSpec {
    /// A host listening on a free loopback port, on two threads.
    pub fn new() -> Self {
        Self {
            host: vec!["listen = \"127.0.0.1:0\"".into(), "worker-threads = 2".into()],
            ha: Vec::new(),
            endpoints: String::new(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable of the process.
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a line to the `[host]` table, e.g. `frame-size = 65536`; a key
    /// given twice keeps the last value.
    #[must_use]
    pub fn host(mut self, line: &str) -> Self {
        let key = line.split('=').next().unwrap_or_default().trim();
        self.host.retain(|existing| existing.split('=').next().unwrap_or_default().trim() != key);
        self.host.push(line.to_owned());
        self
    }

    /// Adds a line to the `[ha]` table, e.g. `mode = "zookeeper"`.
    #[must_use]
    pub fn ha(mut self, line: &str) -> Self {
        self.ha.push(line.to_owned());
        self
    }

    /// Adds an endpoint from the component at `path`, with more keys of
    /// its `[[endpoint]]` table (`start = false`, `config = { ... }`).
    #[must_use]
    pub fn endpoint(mut self, id: &str, path: &str, extra: &str) -> Self {
        self.endpoints += &format!("\n[[endpoint]]\nid = {id:?}\ncomponent = {path:?}\n{extra}\n");
        self
    }

    fn toml(&self) -> String {
        let ha = if self.ha.is_empty() { String::new() } else { format!("[ha]\n{}\n", self.ha.join("\n")) };
        format!("[host]\n{}\n{ha}{}", self.host.join("\n"), self.endpoints)
    }
}

/// A running `weir host` process. Killed when dropped; it also ends by
/// itself when the test process does, as its standard input closes.
#[derive(Debug)]
pub struct HostProcess {
    child: Child,
    /// Held open: the host runs until it closes.
    _stdin: ChildStdin,
    authority: String,
    logs: Arc<Mutex<String>>,
    /// Holds its config file; removed with it.
    _dir: tempfile::TempDir,
}

impl HostProcess {
    /// Starts a host from `spec` and waits until it listens.
    ///
    /// # Panics
    ///
    /// If it does not start listening within [`PATIENCE`].
    pub fn start(spec: &HostSpec) -> Self {
        let dir = crate::temp_dir("test");
        let config = dir.path().join("host.toml");
        std::fs::write(&config, spec.toml()).expect("cannot write the config");
        let mut child = Command::new(weir_binary())
            .args(["host", "--until-stdin-closes"])
            .arg(&config)
            .env("RUST_LOG", "info,weir=debug")
            .env("NO_COLOR", "1")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the weir binary");
        let logs = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().expect("piped"), logs.clone());
        let (listening, authority) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let out = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(authority) = line.strip_prefix("listening at ") {
                    let _ = listening.send(authority.to_owned());
                }
                out.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let stdin = child.stdin.take().expect("piped");
        let Ok(authority) = authority.recv_timeout(PATIENCE) else {
            let _ = child.kill();
            panic!("the host did not start listening:\n{}", logs.lock().unwrap());
        };
        Self { child, _stdin: stdin, authority, logs, _dir: dir }
    }

    /// The `host:port` it listens on.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The address endpoint `id` has on it.
    pub fn address(&self, id: &str) -> String {
        format!("weir://{}/{id}", self.authority)
    }

    /// What it has printed and logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes it (SIGSTOP), as a long garbage-collection pause or a hung
    /// machine would: it keeps its sockets but does nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen host go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "cannot send SIG{signal} to the host");
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Appends everything `from` says to `logs`, on a thread of its own.
fn collect(mut from: impl Read + Send + 'static, logs: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buffer = [0; 4096];
        while let Ok(n @ 1..) = from.read(&mut buffer) {
            logs.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
}
