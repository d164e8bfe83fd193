//! Fixtures for the integration tests: one engine per test process, each
//! component compiled once and shared, hosts with test-friendly settings,
//! polling with a deadline, and captured logs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use weir::{EndpointComponent, Engine, HostConfig, RpcService};
pub use weir_test_artifacts as artifacts;

/// The epoch tick of the tests' engine: fine enough for short CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The longest any test waits for a condition before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The engine every test shares, so each component compiles once.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EPOCH_TICK).expect("cannot create the engine"))
}

/// The component at `path` (one of [`artifacts`]' constants), compiled once
/// per test process.
pub fn component(path: &str) -> EndpointComponent {
    static LOADED: OnceLock<Mutex<HashMap<String, EndpointComponent>>> = OnceLock::new();
    let loaded = LOADED.get_or_init(Default::default);
    if let Some(component) = loaded.lock().unwrap().get(path) {
        return component.clone();
    }
    // Compile outside the lock so tests compile different components at once.
    let component = engine()
        .load_file(path)
        .unwrap_or_else(|e| panic!("cannot load {path}: {e}"));
    loaded
        .lock()
        .unwrap()
        .entry(path.to_owned())
        .or_insert(component)
        .clone()
}

/// The tests' host configuration: the defaults, on two threads.
pub fn config() -> HostConfig {
    HostConfig {
        worker_threads: 2,
        epoch_tick: EPOCH_TICK,
        ..HostConfig::default()
    }
}

/// A host with [`config`].
pub fn host() -> RpcService {
    host_with(config())
}

/// A host with its own threads and `config`.
pub fn host_with(config: HostConfig) -> RpcService {
    RpcService::new(config, engine().clone()).expect("cannot create the host")
}

/// Polls `check` until it yields a value, failing the test after
/// [`PATIENCE`].
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let polling = async {
        let mut interval = tokio::time::interval(Duration::from_millis(5));
        loop {
            interval.tick().await;
            if let Some(value) = check().await {
                return value;
            }
        }
    };
    tokio::time::timeout(PATIENCE, polling)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Everything logged through `tracing` in this process, for tests that
/// check what the host logs. Installs the subscriber on first use.
pub fn logs() -> String {
    let buffer = log_buffer();
    let bytes = buffer.lock().unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("info,weir=debug,weir::dead_letters=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        buffer
    })
}

/// Starts capturing logs (call before the code whose logs a test checks).
pub fn capture_logs() {
    let _ = log_buffer();
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
