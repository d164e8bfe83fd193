//! The errors callers branch on.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::ConfigError;
use crate::fencing::FencingToken;

/// Why an RPC failed. It mirrors the WIT `rpc-error` variant one case for one
/// case, so an endpoint sees exactly what host-side callers see. It travels
/// between hosts as it is, so a remote caller sees what a local one would.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum RpcError {
    /// The endpoint exists but has not been started (Flink's
    /// `EndpointNotStartedException`).
    #[error("discarded the message: endpoint `{endpoint}` has not been started yet")]
    NotStarted {
        /// The target endpoint.
        endpoint: String,
    },
    /// The endpoint has terminated or cannot be reached (Flink's
    /// `RecipientUnreachableException`).
    #[error("endpoint `{endpoint}` is unreachable: {reason}")]
    Unreachable {
        /// The target endpoint.
        endpoint: String,
        /// What happened to it.
        reason: String,
    },
    /// No reply arrived in time.
    #[error("ask of `{function}` at endpoint `{endpoint}` timed out after {timeout:?}")]
    Timeout {
        /// The target endpoint.
        endpoint: String,
        /// The gateway function asked, `gateway.function`.
        function: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The call's fencing token is not the endpoint's (Flink's
    /// `FencingTokenException`).
    #[error("fencing token mismatch at endpoint `{endpoint}`: expected {}, received {}", show_token(.expected), show_token(.received))]
    FencingMismatch {
        /// The target endpoint.
        endpoint: String,
        /// The endpoint's token; `None` if it is not fenced.
        expected: Option<FencingToken>,
        /// The call's token; `None` for an unfenced connection.
        received: Option<FencingToken>,
    },
    /// An encoded call or reply exceeds the maximum frame size.
    #[error(
        "message of {size} bytes exceeds the maximum frame size of {limit} bytes between hosts: send less per call, or raise `frame-size` on both hosts"
    )]
    FrameTooLarge {
        /// Encoded size in bytes.
        size: u64,
        /// The configured limit in bytes.
        limit: u64,
    },
    /// A call's arguments or result exceed the largest message one host
    /// passes between its endpoints. Guests see it as `frame-too-large`.
    #[error(
        "message of {size} bytes exceeds the largest message of {limit} bytes on this host: send less per call, or raise `max-message-size`"
    )]
    MessageTooLarge {
        /// Size in bytes.
        size: u64,
        /// The configured limit in bytes.
        limit: u64,
    },
    /// Arguments or results could not be encoded or decoded.
    #[error("serialization failed: {0}")]
    Serialization(String),
    /// `connect` failed: version mismatch, or the gateway is not exported
    /// with a compatible type.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The endpoint failed before or while handling the call.
    #[error("endpoint `{endpoint}` failed: {cause}")]
    EndpointFailed {
        /// The failed endpoint.
        endpoint: String,
        /// Why it failed.
        cause: String,
    },
    /// No endpoint lives at the address, or it is not an address.
    #[error("no endpoint at `{address}`: {reason}")]
    UnknownEndpoint {
        /// The address that was tried.
        address: String,
        /// Why nothing was found there.
        reason: String,
    },
    /// The endpoint has no such gateway function, or the arguments do not
    /// fit its type.
    #[error("endpoint `{endpoint}`: {detail}")]
    UnknownFunction {
        /// The target endpoint.
        endpoint: String,
        /// What was missing or mismatched.
        detail: String,
    },
}

/// Waits up to `timeout` for `exchange`; past it, fails with
/// [`RpcError::Timeout`] for the endpoint and function `name` gives (only
/// built then, keeping the call's path free of it).
pub(crate) async fn within<T>(
    timeout: Duration,
    exchange: impl Future<Output = Result<T, RpcError>>,
    name: impl FnOnce() -> (String, String),
) -> Result<T, RpcError> {
    tokio::time::timeout(timeout, exchange).await.unwrap_or_else(|_| {
        let (endpoint, function) = name();
        Err(RpcError::Timeout { endpoint, function, timeout })
    })
}

fn show_token(token: &Option<FencingToken>) -> String {
    token.map_or_else(|| "no token".to_owned(), |t| t.to_string())
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read component `{}`", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("`{name}` is not a valid WebAssembly component")]
    Invalid {
        /// The component's name.
        name: String,
        /// What wasmtime found wrong.
        #[source]
        source: wasmtime::Error,
    },
    /// The component is valid, but asks more than this host's engines
    /// allow an endpoint (more initial memory than `memory-cap`, say).
    #[error(
        "component `{name}` exceeds what this host allows an endpoint; raise `memory-cap` (now {memory_cap} bytes) if it needs more memory"
    )]
    ExceedsLimits {
        /// The component's name.
        name: String,
        /// The host's memory cap.
        memory_cap: u64,
        /// Which limit, as wasmtime says it.
        #[source]
        source: wasmtime::Error,
    },
    /// The component is valid, but its world is not one a weir host can run.
    #[error("component `{name}` does not fit a weir endpoint world: {reason}")]
    WrongWorld {
        /// The component's name.
        name: String,
        /// What does not fit.
        reason: String,
    },
}

/// Why an [`Engine`](crate::Engine) could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The instance pools could not be reserved.
    #[error(
        "cannot reserve room for `max-endpoints` = {max_endpoints} endpoints of up to `memory-cap` = {memory_cap} \
         bytes: lower either, or raise the process's limits on address space and kernel mappings \
         (`ulimit -v`, `sysctl vm.max_map_count`)"
    )]
    Pools {
        /// The configured number of endpoints.
        max_endpoints: u32,
        /// The configured memory cap.
        memory_cap: u64,
        /// What failed.
        #[source]
        source: wasmtime::Error,
    },
    /// wasmtime refused the configuration, for example on this CPU.
    #[error("wasmtime refuses this engine configuration")]
    Wasmtime(#[source] wasmtime::Error),
    /// The epoch ticker thread could not be started.
    #[error("cannot start the epoch ticker thread")]
    Ticker(#[source] std::io::Error),
}

/// Why an endpoint could not be spawned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The service has been shut down (Flink: "RpcService is stopped").
    #[error("the RPC service is stopped")]
    ServiceStopped,
    /// An endpoint with this id is alive on the host.
    #[error("an endpoint with id `{0}` is already running")]
    DuplicateId(String),
    /// The host runs as many endpoints as it was configured for.
    #[error("the host already runs {0} endpoints, its `max-endpoints`; stop one or raise `max-endpoints`")]
    TooManyEndpoints(usize),
    /// The id cannot be part of an address.
    #[error("invalid endpoint id `{id}`: {reason}")]
    InvalidId {
        /// The rejected id.
        id: String,
        /// Why.
        reason: &'static str,
    },
    /// The endpoint asks for a larger memory cap than its host allows.
    #[error("memory cap of {wanted} bytes exceeds the host's {host} bytes")]
    MemoryCap {
        /// The endpoint's memory cap.
        wanted: u64,
        /// The host's.
        host: u64,
    },
    /// A directory to lend the endpoint cannot be opened.
    #[error("cannot lend directory `{}` to endpoint `{id}` as `{guest}`: {reason}; check that it exists and the host may read it", host.display())]
    Directory {
        /// The endpoint id.
        id: String,
        /// The directory on the host.
        host: PathBuf,
        /// Where the endpoint would see it.
        guest: String,
        /// Why it cannot be opened.
        reason: String,
    },
    /// The component was loaded by a different engine.
    #[error("component `{0}` was loaded by another engine than this service's")]
    ForeignComponent(String),
    /// Instantiation failed (for example, the memory cap is too small for
    /// the component's initial memory).
    #[error("cannot instantiate component `{component}` as endpoint `{id}`")]
    Instantiate {
        /// The endpoint id.
        id: String,
        /// The component.
        component: String,
        /// Wasmtime's error.
        #[source]
        source: wasmtime::Error,
    },
}

/// Why an endpoint terminated abnormally. Its termination future reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointFailure {
    /// `on-start` returned an error (Flink: "Could not start RpcEndpoint").
    #[error("could not start endpoint: on-start failed: {0}")]
    StartFailed(String),
    /// `on-stop` returned an error.
    #[error("on-stop failed: {0}")]
    StopFailed(String),
    /// The guest panicked (and trapped), reporting `message`.
    #[error("panicked in {during}: {message}")]
    Panicked {
        /// What was running: `on-start`, `on-stop`, a function, a task.
        during: String,
        /// The guest's panic message and where it happened.
        message: String,
    },
    /// The guest trapped.
    #[error("trapped in {during}: {message}")]
    Trapped {
        /// What was running: `on-start`, `on-stop`, a function, a task.
        during: String,
        /// The trap, as wasmtime reports it.
        message: String,
    },
    /// The guest ran past its CPU deadline without returning to the host.
    #[error("exceeded its CPU deadline of {deadline:?} in {during}")]
    CpuDeadlineExceeded {
        /// What was running.
        during: String,
        /// The deadline.
        deadline: Duration,
    },
    /// The guest's linear memory, plus what the host holds for it
    /// (scheduled tasks, open handles), would have grown past the cap.
    #[error(
        "exceeded its memory cap of {cap} bytes in {during} (wanted {wanted} bytes, {held} of them held by the host \
         for it: scheduled tasks, open handles)"
    )]
    MemoryCapExceeded {
        /// What was running.
        during: String,
        /// The cap in bytes.
        cap: u64,
        /// The size it would have grown to.
        wanted: u64,
        /// How much of that the host holds for the guest.
        held: u64,
    },
    /// A bug in the host itself; the endpoint is ended to keep the rest
    /// safe.
    #[error("host error in {during}: {message}")]
    Host {
        /// What was running.
        during: String,
        /// The error.
        message: String,
    },
}

/// An error and every cause under it, `outer: inner: innermost`, skipping a
/// cause whose text its parent already shows.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}
