//! [`RpcService`]: weir's Flink `RpcService`, and the host's composition
//! root. It owns the runtime its endpoints run on and everything spawned
//! there (endpoints, connections, HA services, heartbeats), spawns
//! endpoints from components, finds them by address, lists them, reports
//! what happens on the host as one stream of [`HostEvent`]s, and shuts it
//! all down.

mod children;
mod mappings;
mod runner;
mod warm;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::children::{ChildStarter, Components};
pub use self::runner::LeadershipRunner;
use self::warm::{Ready, Warm};
use crate::actor::{self, Actor, Inbox, SwapRequest};
use crate::address::{self, LOCAL_AUTHORITY};
use crate::capability::{HostContext, Identity, Limits, StoreParts, adopt, new_store};
use crate::client::GatewayClient;
use crate::component::ComponentInfo;
use crate::config::{ConfigError, HaConfig, HeartbeatConfig, HostConfig, LentDirectory, RegistrationConfig};
use crate::endpoint::{ActorRef, Channels, Control, Directory, EndpointStats, Lifecycle, MemoryUse, Termination};
use crate::engine::{EndpointComponent, Engine};
use crate::error::{EndpointFailure, RpcError, SpawnError};
use crate::events::{Events, HostEvent};
use crate::fencing::FencingToken;
use crate::ha::{self, HaContext, HaServices};
use crate::remote::{self, Settings, Tls, TlsError};
use crate::route::{Connector, Route};
use crate::swap::{self, KindSwapError, SwapError, SwapOptions, SwapReport};

/// Per-endpoint settings.
#[derive(Clone, Debug, Default)]
pub struct EndpointOptions {
    /// Runs the endpoint fenced under this token (its leader session id).
    pub fencing_token: Option<FencingToken>,
    /// Overrides the host's memory cap for this endpoint.
    pub memory_cap: Option<u64>,
    /// Overrides the host's CPU deadline for this endpoint.
    pub cpu_deadline: Option<Duration>,
    /// Settings the endpoint reads through `runtime.config` (what Flink
    /// passes to an endpoint's constructor).
    pub config: Vec<(String, String)>,
    /// The host directories it may use through WASI's filesystem (none by
    /// default: an endpoint sees no file of the host's).
    pub directories: Vec<LentDirectory>,
}

/// Endpoints that did not stop cleanly during a shutdown.
#[derive(Debug, thiserror::Error)]
#[error("{} endpoint(s) failed to stop cleanly: {}", failures.len(), describe(failures))]
pub struct ShutdownError {
    /// Each failed endpoint and why.
    pub failures: Vec<(String, EndpointFailure)>,
}

fn describe(failures: &[(String, EndpointFailure)]) -> String {
    failures.iter().map(|(id, f)| format!("{id}: {f}")).collect::<Vec<_>>().join("; ")
}

/// Why a service could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration asks more of the engine than it was built for.
    #[error(
        "memory-cap {wanted} exceeds the engine's memory cap of {engine} bytes; load the components on an engine made with this config"
    )]
    MemoryCap {
        /// The service's memory cap.
        wanted: u64,
        /// The engine's.
        engine: u64,
    },
    /// The kernel would refuse the memory mappings `max-endpoints` need.
    #[error(
        "`max-endpoints` = {max_endpoints}, but the kernel lets this process map only enough for {fit} \
         endpoints (vm.max_map_count = {limit}, {used} mapped already); raise it \
         (`sysctl -w vm.max_map_count={needed}`) or lower `max-endpoints`"
    )]
    KernelMappings {
        /// The configured number of endpoints.
        max_endpoints: u32,
        /// How many fit.
        fit: u64,
        /// `vm.max_map_count`.
        limit: u64,
        /// Mappings the process holds already (the instance pools among them).
        used: u64,
        /// The `vm.max_map_count` that would do.
        needed: u64,
    },
    /// The endpoint threads could not be started.
    #[error("cannot start the endpoint threads (`worker-threads`)")]
    Threads(#[source] std::io::Error),
    /// The listen address cannot be bound.
    #[error("cannot listen on `{address}` (`[host] listen`)")]
    Listen {
        /// The configured address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// What an endpoint is and has done, as [`RpcService::endpoints`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointInfo {
    /// Its id.
    pub id: String,
    /// Its address.
    pub address: String,
    /// Its component's name.
    pub component: String,
    /// Its lifecycle state.
    pub state: Lifecycle,
    /// The fencing token it runs under, if fenced.
    pub fencing_token: Option<FencingToken>,
    /// What it has served.
    pub stats: EndpointStats,
    /// Calls waiting in its mailbox.
    pub queued: usize,
}

/// Builds an [`RpcService`]: its host configuration and engine, and
/// optionally the runtime it runs on and the cluster services it lends.
#[derive(Debug)]
pub struct ServiceBuilder {
    config: HostConfig,
    engine: Engine,
    runtime: Option<Handle>,
    ha: HaConfig,
    heartbeat: HeartbeatConfig,
    registration: RegistrationConfig,
    components: BTreeMap<String, EndpointComponent>,
}

impl ServiceBuilder {
    /// Lets endpoints start children from `component` under `name`
    /// (`weir:rpc/supervision`'s `named` source).
    #[must_use]
    pub fn component(mut self, name: impl Into<String>, component: EndpointComponent) -> Self {
        self.components.insert(name.into(), component);
        self
    }

    /// Runs the service's endpoints on `runtime` (for example a test's, to
    /// share its paused clock) instead of `worker-threads` threads of its own.
    #[must_use]
    pub fn runtime(mut self, runtime: Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Elects leaders and finds them through these HA services (default:
    /// embedded, in this process).
    #[must_use]
    pub fn ha(mut self, ha: HaConfig) -> Self {
        self.ha = ha;
        self
    }

    /// Heartbeat timing for endpoints that bring none (default: Flink's).
    #[must_use]
    pub fn heartbeat(mut self, heartbeat: HeartbeatConfig) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Registration timing for endpoints that bring none (default: Flink's).
    #[must_use]
    pub fn registration(mut self, registration: RegistrationConfig) -> Self {
        self.registration = registration;
        self
    }

    /// Creates the service, listening on `listen` if set.
    ///
    /// # Errors
    ///
    /// An invalid configuration, threads that cannot be started, an address
    /// that cannot be bound, or unusable TLS files.
    pub fn build(self) -> Result<RpcService, ServiceError> {
        check(&self.config, &self.engine)?;
        let (runtime, own_runtime) = match self.runtime.clone() {
            Some(runtime) => (runtime, None),
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(self.config.worker_threads)
                    .thread_name("weir-endpoint")
                    .enable_all()
                    .build()
                    .map_err(ServiceError::Threads)?;
                (runtime.handle().clone(), Some(runtime))
            }
        };
        let starter = Arc::new(ChildStarter::default());
        match self.assemble(runtime, starter.clone()) {
            Ok(mut inner) => {
                inner.own_runtime = own_runtime;
                let inner = Arc::new(inner);
                starter.serve(&inner);
                Ok(RpcService { inner })
            }
            Err(error) => {
                // Dropping a runtime blocks, which a caller on another
                // runtime may not do; let it wind down in the background.
                if let Some(runtime) = own_runtime {
                    runtime.shutdown_background();
                }
                Err(error)
            }
        }
    }

    fn assemble(self, runtime: Handle, starter: Arc<ChildStarter>) -> Result<ServiceInner, ServiceError> {
        let config = self.config;
        let tls = config.tls.as_ref().map(Tls::new).transpose()?;
        let listener = config.listen.as_deref().map(|address| listen(address, &runtime)).transpose()?;
        let authority = match &listener {
            Some((_, local)) => {
                let host = config.advertised_host.clone().unwrap_or_else(|| local.ip().to_string());
                authority(&host, local.port())
            }
            None => LOCAL_AUTHORITY.to_owned(),
        };
        let events = Events::default();
        let settings = Arc::new(Settings::new(&config, tls, runtime.clone(), events.clone()));
        let capacity = usize::try_from(config.max_endpoints).unwrap_or(usize::MAX);
        let directory = Arc::new(Directory::new(authority, capacity));
        let listening = CancellationToken::new();
        if let Some((listener, local)) = listener {
            tracing::info!(address = %local, authority = directory.authority(), "listening for other hosts");
            runtime.spawn(remote::accept(listener, directory.clone(), settings.clone(), listening.clone()));
        }
        let connector = Arc::new(Connector::new(directory.clone(), settings));
        let ha = ha::from_config(&self.ha, HaContext { runtime: runtime.clone(), events: events.clone() });
        let host = Arc::new(HostContext {
            connector: connector.clone(),
            ha,
            runtime: runtime.clone(),
            heartbeat: self.heartbeat,
            registration: self.registration,
            spawner: starter,
        });
        Ok(ServiceInner {
            config,
            engine: self.engine,
            components: Components::new(self.components),
            warm: Arc::default(),
            directory,
            connector,
            host,
            runtime,
            events,
            listening,
            own_runtime: None,
        })
    }
}

/// A host's RPC service: every endpoint of the host lives in one.
#[derive(Clone, Debug)]
pub struct RpcService {
    inner: Arc<ServiceInner>,
}

#[derive(Debug)]
struct ServiceInner {
    config: HostConfig,
    engine: Engine,
    /// What endpoints start children from.
    components: Components,
    /// Instances made ahead for the children they start.
    warm: Arc<Warm>,
    directory: Arc<Directory>,
    connector: Arc<Connector>,
    /// What every endpoint's capabilities get from the service.
    host: Arc<HostContext>,
    runtime: Handle,
    events: Events,
    /// Stops the listener and the connections it accepted.
    listening: CancellationToken,
    /// The runtime the service created, if it did not borrow one.
    own_runtime: Option<Runtime>,
}

impl Drop for ServiceInner {
    fn drop(&mut self) {
        self.listening.cancel();
        if let Some(runtime) = self.own_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl RpcService {
    /// A builder for a service with `config`, whose components `engine`
    /// loads.
    pub fn builder(config: HostConfig, engine: Engine) -> ServiceBuilder {
        ServiceBuilder {
            config,
            engine,
            runtime: None,
            ha: HaConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            registration: RegistrationConfig::default(),
            components: BTreeMap::new(),
        }
    }

    /// Creates a service whose endpoints run on `config.worker_threads`
    /// threads of its own, listening on `config.listen` if set, with
    /// embedded HA services.
    ///
    /// # Errors
    ///
    /// As [`ServiceBuilder::build`].
    pub fn new(config: HostConfig, engine: Engine) -> Result<Self, ServiceError> {
        Self::builder(config, engine).build()
    }

    /// Creates a service whose endpoints run on the given runtime (for
    /// example a test's, to share its paused clock).
    ///
    /// # Errors
    ///
    /// As [`ServiceBuilder::build`], but for the threads.
    pub fn on_runtime(config: HostConfig, engine: Engine, runtime: Handle) -> Result<Self, ServiceError> {
        Self::builder(config, engine).runtime(runtime).build()
    }

    /// The `host:port` other hosts reach this one by, or `local` if it does
    /// not listen.
    pub fn authority(&self) -> &str {
        self.inner.directory.authority()
    }

    /// The service's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The runtime the endpoints run on, and everything else the service
    /// spawns. Host-side code that talks to endpoints a lot can run here
    /// too, so its conversations stay on the endpoints' threads instead of
    /// waking them from another one.
    pub fn runtime(&self) -> &Handle {
        &self.inner.runtime
    }

    /// The engine that compiles components for this service.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The HA services the service elects and finds leaders with.
    pub fn ha(&self) -> &Arc<dyn HaServices> {
        &self.inner.host.ha
    }

    /// Every event on the host from now on: endpoints started and
    /// terminated, connections opened and closed, leadership gained and
    /// lost. See [`crate::events`] for what a slow subscriber misses.
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.inner.events.subscribe()
    }

    /// Every endpoint on the host, with its state and what it has served.
    pub fn endpoints(&self) -> Vec<EndpointInfo> {
        let mut endpoints: Vec<EndpointInfo> = self.inner.directory.all().iter().map(|a| info(a)).collect();
        endpoints.sort_by(|a, b| a.id.cmp(&b.id));
        endpoints
    }

    /// The address endpoint `id` has (or would have) on this host.
    pub fn address_of(&self, id: &str) -> String {
        self.inner.directory.address_of(id).to_string()
    }

    /// Creates an endpoint from `component` under `id`, in state STOPPED
    /// (Flink's endpoint constructor): it answers handshakes but no calls
    /// until [`Endpoint::start`]. An instance of `component` made ahead for
    /// the children endpoints start is taken if one is ready and its memory
    /// fits the endpoint's cap.
    ///
    /// # Errors
    ///
    /// A stopped service, an invalid or taken id, a full host, a component
    /// from another engine, or a failed instantiation.
    pub async fn spawn(
        &self,
        id: &str,
        component: &EndpointComponent,
        options: EndpointOptions,
    ) -> Result<Endpoint, SpawnError> {
        let inner = &self.inner;
        address::validate_id(id).map_err(|reason| SpawnError::InvalidId { id: id.to_owned(), reason })?;
        if !inner.engine.owns(component) {
            return Err(SpawnError::ForeignComponent(component.info().name.clone()));
        }
        // Checked again when registering; this spares an instantiation.
        if inner.directory.is_taken(id) {
            return Err(SpawnError::DuplicateId(id.to_owned()));
        }
        let config = &inner.config;
        let memory_cap = options.memory_cap.unwrap_or(config.memory_cap);
        if memory_cap > config.memory_cap {
            return Err(SpawnError::MemoryCap { wanted: memory_cap, host: config.memory_cap });
        }
        let id: Arc<str> = id.into();
        let address: Arc<str> = inner.directory.address_of(&id).to_string().into();
        let (mailbox_sender, mailbox) = mpsc::channel(config.mailbox_capacity);
        let (control_sender, control) = mpsc::unbounded_channel();
        let cpu_deadline = options.cpu_deadline.unwrap_or(config.cpu_deadline);
        let message_limit = usize::try_from(config.max_message_size).unwrap_or(usize::MAX);
        let memory_use = Arc::new(MemoryUse::default());
        let parts = StoreParts {
            identity: Identity {
                id: id.clone(),
                memory_use: memory_use.clone(),
                address: address.clone(),
                token: options.fencing_token,
                config: options.config.into(),
                directories: options.directories.into(),
            },
            host: inner.host.clone(),
            limits: Limits::new(memory_cap, cpu_deadline, config.epoch_tick, message_limit),
            states: component.capability_states(inner.engine.capabilities()),
        };
        // An instance made ahead whose memory fits the cap, else a new one.
        let made_ahead = inner.warm.take(component).filter(|ready| ready.store.data().linear_memory() <= memory_cap);
        let (store, funcs) = match made_ahead {
            Some(Ready { mut store, funcs }) => {
                adopt(&mut store, parts)?;
                (store, funcs)
            }
            None => {
                let mut store = new_store(component.engine(), parts)?;
                let funcs = component.instantiate(&mut store).await.map_err(|source| SpawnError::Instantiate {
                    id: id.to_string(),
                    component: component.info().name.clone(),
                    source,
                })?;
                (store, funcs)
            }
        };
        let actor_ref = Arc::new(ActorRef::new(
            id,
            address,
            options.fencing_token,
            component.shared_info(),
            memory_use,
            message_limit,
            Channels { mailbox: mailbox_sender, control: control_sender },
        ));
        // A closed directory refuses it: a spawn racing a shutdown never
        // leaves an endpoint running.
        inner.directory.register(actor_ref.clone())?;
        let actor = Actor {
            actor_ref: actor_ref.clone(),
            store,
            funcs,
            inbox: Inbox::new(mailbox, control),
            max_in_flight: config.max_in_flight,
            engine: inner.engine.clone(),
        };
        inner.runtime.spawn(actor::run(actor, inner.directory.clone(), inner.events.clone()));
        Ok(self.handle(actor_ref))
    }

    /// Makes one more instance of `component` in the background for its
    /// next start, unless enough are kept: see [`warm`]. Children call it
    /// after each start.
    fn make_ahead(&self, component: &EndpointComponent) {
        let inner = &self.inner;
        let config = &inner.config;
        let message_limit = usize::try_from(config.max_message_size).unwrap_or(usize::MAX);
        // Who it is, its limits and its capabilities' states are given when
        // it is taken; no guest code runs before.
        let parts = StoreParts {
            identity: Identity {
                id: "made-ahead".into(),
                memory_use: Arc::default(),
                address: "".into(),
                token: None,
                config: Arc::new([]),
                directories: Arc::new([]),
            },
            host: inner.host.clone(),
            limits: Limits::new(config.memory_cap, config.cpu_deadline, config.epoch_tick, message_limit),
            states: Vec::new(),
        };
        let (made, runtime) = (component.clone(), inner.runtime.clone());
        inner.warm.make_ahead(component, move || {
            let mut store = new_store(made.engine(), parts).ok()?;
            let funcs = runtime.block_on(made.instantiate(&mut store)).ok()?;
            Some(Ready { store, funcs })
        });
    }

    /// How many instances the host has made ahead for the next starts of
    /// the components endpoints start as children: see
    /// [`RpcService::spawn`].
    pub fn instances_made_ahead(&self) -> usize {
        self.inner.warm.ready()
    }

    /// [`RpcService::spawn`], then [`Endpoint::start`].
    ///
    /// # Errors
    ///
    /// As [`RpcService::spawn`], or why `on-start` failed (the endpoint has
    /// then terminated).
    pub async fn start(
        &self,
        id: &str,
        component: &EndpointComponent,
        options: EndpointOptions,
    ) -> Result<Endpoint, StartError> {
        let endpoint = self.spawn(id, component, options).await?;
        endpoint.start().await?;
        Ok(endpoint)
    }

    /// The live endpoint with this id.
    pub fn endpoint(&self, id: &str) -> Option<Endpoint> {
        Some(self.handle(self.inner.directory.get(id)?))
    }

    fn handle(&self, actor: Arc<ActorRef>) -> Endpoint {
        Endpoint { actor, ask_timeout: self.inner.config.ask_timeout, engine: self.inner.engine.clone() }
    }

    /// Swaps the component behind endpoint `id` for `component` while it
    /// runs: see [`Endpoint::swap`].
    ///
    /// # Errors
    ///
    /// An unknown endpoint, or why the swap was refused.
    pub async fn swap(
        &self,
        id: &str,
        component: &EndpointComponent,
        options: SwapOptions,
    ) -> Result<SwapReport, SwapError> {
        let endpoint = self.endpoint(id).ok_or_else(|| SwapError::UnknownEndpoint(id.to_owned()))?;
        endpoint.swap(component, options).await
    }

    /// Swaps every endpoint that runs the component named `running` for
    /// `component`, one after another in the order of their ids, stopping
    /// at the first refusal (a kind of endpoint at once: every instance of
    /// one component).
    ///
    /// # Errors
    ///
    /// The swaps done, and the refusal that stopped the rest.
    pub async fn swap_all(
        &self,
        running: &str,
        component: &EndpointComponent,
        options: SwapOptions,
    ) -> Result<Vec<SwapReport>, KindSwapError> {
        let ids = self.endpoints_running(running);
        swap::one_after_another(running, ids, |id| async move { self.swap(&id, component, options).await }).await
    }

    /// The ids of the endpoints that run the component named `name`, in
    /// order: one kind of endpoint.
    pub fn endpoints_running(&self, name: &str) -> Vec<String> {
        self.endpoints().into_iter().filter(|info| info.component == name).map(|info| info.id).collect()
    }

    /// Connects to the gateway `gateway` of the endpoint at `address`, on
    /// this host or another (Flink's `RpcService.connect`), for host-side
    /// calls.
    ///
    /// # Errors
    ///
    /// Unknown or unreachable endpoint, or a handshake failure if it does
    /// not export the gateway.
    pub async fn connect(
        &self,
        address: &str,
        gateway: &str,
        token: Option<FencingToken>,
    ) -> Result<GatewayClient, RpcError> {
        let (target, signature) = self.inner.connector.connect(address, gateway).await?;
        Ok(GatewayClient::new(target, signature, token, self.inner.config.ask_timeout))
    }

    /// Stops every endpoint and waits for all of them (Flink's
    /// `closeAsync`). Later spawns fail. Calling it again waits again.
    ///
    /// # Errors
    ///
    /// Every endpoint that did not stop cleanly, with its cause.
    pub async fn shutdown(&self) -> Result<(), ShutdownError> {
        self.inner.listening.cancel();
        self.inner.warm.close();
        let endpoints = self.inner.directory.close();
        for endpoint in &endpoints {
            endpoint.control(Control::Terminate);
        }
        let terminations = futures::future::join_all(endpoints.iter().map(|e| e.lifecycle.terminated())).await;
        let failures: Vec<_> = endpoints
            .iter()
            .zip(terminations)
            .filter_map(|(endpoint, termination)| termination.err().map(|f| (endpoint.id.to_string(), f)))
            .collect();
        tracing::info!(endpoints = endpoints.len(), failed = failures.len(), "RPC service shut down");
        if failures.is_empty() { Ok(()) } else { Err(ShutdownError { failures }) }
    }
}

fn info(actor: &ActorRef) -> EndpointInfo {
    EndpointInfo {
        id: actor.id.to_string(),
        address: actor.address.to_string(),
        component: actor.component().name.clone(),
        state: actor.lifecycle.get(),
        fencing_token: actor.token,
        stats: actor.stats.snapshot(),
        queued: actor.queued(),
    }
}

/// Binds the listen address; the listener is registered with `runtime`'s
/// reactor.
fn listen(address: &str, runtime: &Handle) -> Result<(tokio::net::TcpListener, SocketAddr), ServiceError> {
    let failed = |source| ServiceError::Listen { address: address.to_owned(), source };
    let listener = std::net::TcpListener::bind(address).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    let _context = runtime.enter();
    Ok((tokio::net::TcpListener::from_std(listener).map_err(failed)?, local))
}

/// `host:port`, with brackets around an IPv6 host.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Checks a service's configuration against itself, its engine and the
/// kernel's cap on memory mappings.
fn check(config: &HostConfig, engine: &Engine) -> Result<(), ServiceError> {
    config.validate()?;
    if config.memory_cap > engine.memory_cap() {
        return Err(ServiceError::MemoryCap { wanted: config.memory_cap, engine: engine.memory_cap() });
    }
    let Some(mappings) = mappings::Mappings::read() else { return Ok(()) };
    let endpoints = u64::from(config.max_endpoints);
    match mappings.check(endpoints) {
        Ok(None) => Ok(()),
        Ok(Some(sync_only)) => {
            tracing::info!(
                max_endpoints = config.max_endpoints,
                vm.max_map_count = mappings.limit,
                "the kernel's cap on memory mappings allows {sync_only} sync-only endpoints (async ones fit); \
                 raise it (`sysctl -w vm.max_map_count={}`) to run {endpoints} of them",
                mappings.needed(endpoints)
            );
            Ok(())
        }
        Err(fit) => Err(ServiceError::KernelMappings {
            max_endpoints: config.max_endpoints,
            fit,
            limit: mappings.limit,
            used: mappings.used,
            needed: mappings.needed(endpoints),
        }),
    }
}

/// Why [`RpcService::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The endpoint could not be spawned.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The endpoint was spawned but failed to start.
    #[error(transparent)]
    Failed(#[from] EndpointFailure),
}

/// A handle to an endpoint (Flink's `RpcEndpoint` seen from its owner).
#[derive(Clone, Debug)]
pub struct Endpoint {
    actor: Arc<ActorRef>,
    ask_timeout: Duration,
    /// The host's engine, which a swapped-in component must come from.
    engine: Engine,
}

impl Endpoint {
    /// The id it was spawned under.
    pub fn id(&self) -> &str {
        &self.actor.id
    }

    /// Its address.
    pub fn address(&self) -> &str {
        &self.actor.address
    }

    /// The fencing token it runs under, if fenced.
    pub fn fencing_token(&self) -> Option<FencingToken> {
        self.actor.token
    }

    /// What the host knows about the component it runs now.
    pub fn component(&self) -> Arc<ComponentInfo> {
        self.actor.component().clone()
    }

    /// What it has served so far.
    pub fn stats(&self) -> EndpointStats {
        self.actor.stats.snapshot()
    }

    /// Its current lifecycle state.
    pub fn state(&self) -> Lifecycle {
        self.actor.lifecycle.get()
    }

    /// Starts the endpoint (Flink's `start()`): runs `on-start`, after which
    /// it serves calls. Starting a started endpoint does nothing.
    ///
    /// # Errors
    ///
    /// Why the endpoint failed to start; it has then terminated.
    pub async fn start(&self) -> Result<(), EndpointFailure> {
        let (done, started) = oneshot::channel();
        self.actor.control(Control::Start { done });
        match started.await {
            Ok(outcome) => outcome,
            // The endpoint ended before it got to the command.
            Err(_) => self.terminated().await,
        }
    }

    /// Asks the endpoint to stop (Flink's `closeAsync`): `on-stop` runs,
    /// then it terminates. Returns at once; see [`Endpoint::terminated`].
    pub fn stop(&self) {
        self.actor.control(Control::Terminate);
    }

    /// Waits until the endpoint has terminated, and says how (Flink's
    /// termination future).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn terminated(&self) -> Termination {
        self.actor.lifecycle.terminated().await
    }

    /// [`Endpoint::stop`], then [`Endpoint::terminated`].
    pub async fn close(&self) -> Termination {
        self.stop();
        self.terminated().await
    }

    /// Replaces the component behind the endpoint with `component` while it
    /// runs (see [`crate::swap`]): same id, address, fencing token and
    /// mailbox; its state carried over through `weir:rpc/handover` if both
    /// components take part. Callers see no error and lose no message.
    ///
    /// # Errors
    ///
    /// Why the swap was refused; the endpoint then serves on with its old
    /// component, unless it terminated.
    pub async fn swap(&self, component: &EndpointComponent, options: SwapOptions) -> Result<SwapReport, SwapError> {
        if !self.engine.owns(component) {
            return Err(SwapError::ForeignComponent(component.info().name.clone()));
        }
        let (done, outcome) = oneshot::channel();
        self.actor.control(Control::Swap(SwapRequest { component: component.clone(), options, done }.into_order()));
        match outcome.await {
            Ok(outcome) => outcome,
            // The endpoint ended before it answered.
            Err(_) => {
                let cause = match self.terminated().await {
                    Ok(()) => "it was stopped".to_owned(),
                    Err(failure) => failure.to_string(),
                };
                Err(SwapError::Terminated { endpoint: self.id().to_owned(), cause })
            }
        }
    }

    /// A client for one of its gateways, unfenced, with the service's ask
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`RpcError::Handshake`] if the endpoint does not export it.
    pub fn gateway(&self, gateway: &str) -> Result<GatewayClient, RpcError> {
        self.fenced_gateway(gateway, None)
    }

    /// A client for one of its gateways that carries `token`.
    ///
    /// # Errors
    ///
    /// [`RpcError::Handshake`] if the endpoint does not export it.
    pub fn fenced_gateway(&self, gateway: &str, token: Option<FencingToken>) -> Result<GatewayClient, RpcError> {
        let signature = self.actor.gateway(gateway)?;
        Ok(GatewayClient::new(Route::Local(self.actor.clone()), signature, token, self.ask_timeout))
    }
}
