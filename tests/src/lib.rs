//! Fixtures for the integration tests: one engine per test process, each
//! component compiled once and shared, hosts with test-friendly settings,
//! polling with a deadline, and captured logs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::Val;
use weir::{EndpointComponent, Engine, FencingToken, HostConfig, RpcService};
pub use weir_test_artifacts as artifacts;

pub mod process;
pub mod proxy;
pub mod zookeeper;

/// The epoch tick of the tests' engine: fine enough for short CPU deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The longest any test waits for a condition before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The engine every test shares, so each component compiles once.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(&config()).expect("cannot create the engine"))
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
    let component = engine().load_file(path).unwrap_or_else(|e| panic!("cannot load {path}: {e}"));
    loaded.lock().unwrap().entry(path.to_owned()).or_insert(component).clone()
}

/// The tests' host configuration: the defaults, on two threads.
pub fn config() -> HostConfig {
    HostConfig { worker_threads: 2, epoch_tick: EPOCH_TICK, ..HostConfig::default() }
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
pub async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let polling = async {
        let mut interval = tokio::time::interval(Duration::from_millis(5));
        loop {
            interval.tick().await;
            if let Some(value) = check().await {
                return value;
            }
        }
    };
    tokio::time::timeout(PATIENCE, polling).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A directory of its own for one test (or a process it starts), named
/// `weir-{name}-…` in the system's temporary directory and removed when
/// dropped, even by a failing test.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("weir-{name}-")).tempdir().expect("cannot create a temporary directory")
}

/// [`eventually`] for a test that runs no async runtime: polls `check`
/// every 10 ms until it yields a value. After [`PATIENCE`] it fails the
/// test with what the last poll said was still missing.
pub fn eventually_blocking<T>(mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match check() {
            Ok(value) => return value,
            Err(missing) => assert!(Instant::now() < deadline, "{missing}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// Gateway names of the example components.
pub mod gateways {
    pub const ECHO: &str = "weir:examples/echo@0.1.0";
    pub const ECHO_SYNC: &str = "weir:examples/echo-sync@0.1.0";
    pub const COUNTER: &str = "weir:examples/counter@0.1.0";
    pub const CALLER: &str = "weir:examples/caller@0.1.0";
    pub const PROBE: &str = "weir:examples/probe@0.1.0";
    pub const FAULT: &str = "weir:examples/fault@0.1.0";
    pub const TICKER: &str = "weir:examples/ticker@0.1.0";
    pub const WRITER: &str = "weir:examples/writer@0.1.0";
    pub const KEEPER: &str = "weir:examples/keeper@0.1.0";
    pub const SUPERVISOR: &str = "weir:examples/supervisor@0.1.0";
    pub const RESOURCEMANAGER: &str = "weir:flink/resourcemanager@0.1.0";
    pub const TASKEXECUTOR: &str = "weir:flink/taskexecutor@0.1.0";
    pub const TASKEXECUTOR_SLOTS: &str = "weir:flink/taskexecutor-slots@0.1.0";
    pub const RESOURCEMANAGER_JOBS: &str = "weir:flink/resourcemanager-jobs@0.1.0";
    pub const JOBMASTER: &str = "weir:flink/jobmaster@0.1.0";
    pub const JOBMASTER_TASKS: &str = "weir:flink/jobmaster-tasks@0.1.0";
    pub const TASKEXECUTOR_TASKS: &str = "weir:flink/taskexecutor-tasks@0.1.0";
    pub const TASK: &str = "weir:flink/task@0.1.0";
    pub const DISPATCHER: &str = "weir:flink/dispatcher@0.1.0";
    pub const DISPATCHER_CHECKPOINTING: &str = "weir:flink/dispatcher-checkpointing@0.1.0";
    pub const JOBMASTER_INPUTS: &str = "weir:flink/jobmaster-inputs@0.1.0";
    pub const JOBMASTER_CHECKPOINTS: &str = "weir:flink/jobmaster-checkpoints@0.1.0";
    pub const JOBMASTER_CHECKPOINTING: &str = "weir:flink/jobmaster-checkpointing@0.1.0";
    pub const TASKEXECUTOR_CHECKPOINTS: &str = "weir:flink/taskexecutor-checkpoints@0.1.0";
    pub const TASK_INPUT: &str = "weir:flink/task-input@0.1.0";
    pub const TASK_CHECKPOINTS: &str = "weir:flink/task-checkpoints@0.1.0";
    pub const JOBMASTER_CONTROL: &str = "weir:flink/jobmaster-control@0.1.0";
}

/// Endpoint options with these settings.
pub fn with_config(settings: &[(&str, &str)]) -> weir::EndpointOptions {
    weir::EndpointOptions {
        config: settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..weir::EndpointOptions::default()
    }
}

/// The `ok` payload of a `result<T, rpc-error>` a guest returned.
///
/// # Panics
///
/// If the reply is anything else.
pub fn guest_ok(reply: Option<Val>) -> Option<Val> {
    match reply {
        Some(Val::Result(Ok(payload))) => payload.map(|v| *v),
        other => panic!("expected an ok result, got {other:?}"),
    }
}

/// The case and payload of the `rpc-error` in a guest's `result<T,
/// rpc-error>`.
///
/// # Panics
///
/// If the reply is anything else.
pub fn guest_error(reply: Option<Val>) -> (String, Val) {
    match reply {
        Some(Val::Result(Err(Some(error)))) => match *error {
            Val::Variant(case, Some(payload)) => (case, *payload),
            other => panic!("expected an rpc-error, got {other:?}"),
        },
        other => panic!("expected an error result, got {other:?}"),
    }
}

/// A string value.
pub fn text(s: &str) -> Val {
    Val::String(s.to_owned())
}

/// A UUID (a fencing token, a job id) as the `uuid` record gateways take.
pub fn uuid(id: FencingToken) -> Val {
    let (high, low) = id.as_u64_pair();
    Val::Record(vec![("high".into(), Val::U64(high)), ("low".into(), Val::U64(low))])
}

/// A fencing token as an `option<fencing-token>` argument.
pub fn token_val(token: FencingToken) -> Val {
    Val::Option(Some(Box::new(uuid(token))))
}

/// The `u64` inside a value.
///
/// # Panics
///
/// If it is not one.
pub fn as_u64(val: Option<Val>) -> u64 {
    match val {
        Some(Val::U64(x)) => x,
        other => panic!("expected a u64, got {other:?}"),
    }
}

/// The `u64`s of a `list<u64>` (or `list<u32>`).
///
/// # Panics
///
/// If it is not one.
pub fn as_list(val: Option<Val>) -> Vec<u64> {
    match val {
        Some(Val::List(items)) => items
            .into_iter()
            .map(|item| match item {
                Val::U64(x) => x,
                Val::U32(x) => u64::from(x),
                other => panic!("expected an integer, got {other:?}"),
            })
            .collect(),
        other => panic!("expected a list, got {other:?}"),
    }
}
