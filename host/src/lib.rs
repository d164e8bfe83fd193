//! weir: Apache Flink's RPC layer rebuilt in Rust, with every endpoint a
//! WebAssembly component.
//!
//! A host runs endpoints (Flink's `RpcEndpoint`s) from components built
//! against WIT gateway interfaces. Each endpoint is an actor: its own
//! wasmtime store, a bounded mailbox and one task that drives it, so its code
//! never runs on two threads at once. Endpoints call each other through typed
//! gateway clients; the host routes calls by gateway and function, learned
//! from the components it loads, and checks fencing tokens before a message
//! reaches the guest.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use weir::{Engine, EndpointOptions, HostConfig, RpcService};
//! use wasmtime::component::Val;
//!
//! let config = HostConfig::default();
//! let engine = Engine::new(&config)?;
//! let service = RpcService::new(config, engine.clone())?;
//! let echo = engine.load_file("echo.wasm")?;
//! let endpoint = service.start("echo", &echo, EndpointOptions::default()).await?;
//! let gateway = endpoint.gateway("weir:examples/echo@0.1.0")?;
//! let reply = gateway.ask("ping", vec![Val::U64(7)]).await?;
//! assert_eq!(reply, Some(Val::U64(7)));
//! service.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Layers, from the bottom up; each module uses only those above it in
//! this table (`tests/layers.rs` checks it).
//!
//! | module | owns |
//! | --- | --- |
//! | [`address`], [`fencing`], [`error`], [`config`], [`events`] | addresses, tokens against split brain, errors, every knob, the host's event stream |
//! | [`swap`] | what a hot swap of an endpoint's component promises, reports and refuses |
//! | [`gateway`] | the structural model of gateway types: function ids, signatures, client convention, checks, host values and their encoding |
//! | [`component`] | what a component is: compiled once, its world read |
//! | [`ha`], [`heartbeat`], [`registration`] | leader election and retrieval; noticing a lost peer; signing up with retries |
//! | `endpoint` | the caller's side of an endpoint: state, mailbox messages, directory |
//! | `remote` | TCP between hosts: links, handshake, wire format, TLS, the serving side |
//! | `route` | where a gateway's calls go: this host's mailbox or another host |
//! | [`client`] | host-side calls by gateway and function name |
//! | `capability` | what the host lends components: WASI, runtime, clients, leadership, heartbeats, registration |
//! | [`engine`] | the wasmtime engines and the epoch ticker; loading = compiling and linking |
//! | `actor` | an endpoint's main thread: the loops that drive the guest |
//! | [`service`] | Flink's `RpcService` and the composition root: spawn, connect, list, events, shut down |

mod actor;
pub mod address;
mod capability;
pub mod client;
pub mod component;
pub mod config;
mod endpoint;
pub mod engine;
pub mod error;
pub mod events;
pub mod fencing;
pub mod gateway;
pub mod ha;
pub mod heartbeat;
pub mod registration;
mod remote;
mod route;
pub mod service;
pub mod swap;

pub use self::client::GatewayClient;
pub use self::component::ComponentInfo;
pub use self::config::{
    HaConfig, HeartbeatConfig, HostConfig, LentDirectory, RegistrationConfig, TlsConfig, ZooKeeperConfig,
};
pub use self::endpoint::{EndpointStats, Lifecycle, Termination};
pub use self::engine::{EndpointComponent, Engine};
pub use self::error::{EndpointFailure, EngineError, LoadError, RpcError, SpawnError};
pub use self::events::HostEvent;
pub use self::fencing::FencingToken;
pub use self::gateway::Value;
pub use self::remote::{PROTOCOL_VERSION, TlsError};
pub use self::service::{
    Endpoint, EndpointInfo, EndpointOptions, LeadershipRunner, RpcService, ServiceBuilder, ServiceError, ShutdownError,
    StartError,
};
pub use self::swap::{Handover, KindSwapError, SwapError, SwapOptions, SwapReport};
