//! The wasmtime engines, the epoch ticker behind the CPU deadline, and
//! loading components onto them.
//!
//! A weir [`Engine`] holds two wasmtime engines. Components that use no
//! component-model async run on a plain engine, where a call is a direct
//! invocation on a fiber; the others run on an engine with concurrency
//! support, where calls are guest tasks interleaved at await points. Loading
//! picks the engine; callers never see the difference.
//!
//! The concurrent engine takes its instances from a pool reserved for
//! `max-endpoints` of them, so starting an endpoint maps nothing new. The
//! plain engine allocates on demand: a sync-only instance keeps a fiber
//! stack between calls, and a pool of stacks reserved for `max-endpoints`
//! would cost two kernel mappings per slot up front, whether or not any
//! sync-only endpoint ever runs.

mod loaded;
mod typed;

use std::path::Path;
use std::sync::{Arc, mpsc};

use wasmtime::{Config, Enabled, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

pub use self::loaded::EndpointComponent;
pub(crate) use self::loaded::InstanceFuncs;
pub(crate) use self::typed::{
    BatchAsyncFunc, BatchFunc, Called, Delivered, GatewayFunc, HandedState, Queued, SnapshotFunc,
};
use crate::capability::Capabilities;
use crate::component::{self, CompileCache};
use crate::config::HostConfig;
use crate::error::{EngineError, LoadError};

/// Core instances a component may hold: its modules plus the shims and
/// adapters the component tooling adds.
const CORE_INSTANCES_PER_ENDPOINT: u32 = 16;
/// Linear memories a component may hold.
const MEMORIES_PER_ENDPOINT: u32 = 2;
/// Tables a component may hold.
const TABLES_PER_ENDPOINT: u32 = 4;
/// Instances (and their fiber stacks) beyond one per endpoint, for
/// instances being set up or torn down while others take their place: a
/// swap runs the new component's instance next to the old one until it has
/// taken over. Each stack in the pool costs two kernel mappings up front
/// (stack and guard page), which count against `vm.max_map_count`.
const SPARE_INSTANCES: u32 = 64;
/// Guard region after each linear memory in the pool.
const MEMORY_GUARD: u64 = 64 * 1024;
/// Bytes of a pooled linear memory kept resident when its instance ends:
/// the pages it wrote are reset in place instead of returned to the
/// kernel, up to this much, so that the next instance in the slot takes no
/// page fault on them. Endpoints started again and again from one
/// component (a coordinator per job, a job's tasks) write a few hundred KiB
/// as they start; faulting those pages in was a sixth of the CPU spent
/// starting a job's tasks (BENCHMARKS.md, seventh session on issue 11).
/// The reset happens as an instance ends, off the path of the next start.
/// The `PAGEMAP_SCAN` ioctl (Linux 6.7 on) finds the written pages, so a
/// slot keeps at most what its last instance had resident. The cost: when
/// endpoints end, the process keeps what they wrote (up to 1 MiB a slot)
/// until others take their slots, so its resident memory stays near its
/// high-water mark instead of falling. Without the ioctl the first MiB of
/// every slot would be zeroed whole and kept (a reused echo endpoint then
/// started in 45 µs instead of 27), so pools keep nothing resident on
/// older kernels.
const MEMORY_KEPT_RESIDENT: usize = 1 << 20;
/// Bytes of a pooled table kept resident when its instance ends, as for
/// memories.
const TABLE_KEPT_RESIDENT: usize = 64 << 10;

/// Compiles components and keeps time for their CPU deadlines. Cheap to
/// clone; components loaded by one engine run on every service built on it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Engines>,
}

struct Engines {
    sequential: wasmtime::Engine,
    concurrent: wasmtime::Engine,
    /// What the host lends the components loaded here.
    capabilities: Capabilities,
    /// The largest memory cap an endpoint may have on these engines.
    memory_cap: u64,
    /// Where compiled components are kept across processes, if anywhere.
    cache: Option<CompileCache>,
    /// Dropping it stops the ticker thread at once.
    _ticker: mpsc::Sender<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Creates the engines, with instance pools sized for
    /// `config.max_endpoints` endpoints of up to `config.memory_cap` bytes,
    /// and starts a ticker that advances their epoch every
    /// `config.epoch_tick`.
    ///
    /// # Errors
    ///
    /// An invalid configuration, one wasmtime rejects (for example on an
    /// unsupported CPU), or pools that cannot be reserved.
    pub fn new(config: &HostConfig) -> Result<Self, EngineError> {
        config.validate()?;
        let sequential = wasmtime::Engine::new(&engine_config(config, false)).map_err(EngineError::Wasmtime)?;
        let concurrent = wasmtime::Engine::new(&engine_config(config, true)).map_err(|source| EngineError::Pools {
            max_endpoints: config.max_endpoints,
            memory_cap: config.memory_cap,
            source,
        })?;
        let epoch_tick = config.epoch_tick;
        let (stop, stopped) = mpsc::channel::<()>();
        let engines = [sequential.weak(), concurrent.weak()];
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                // Ticks until the engine is dropped, which disconnects `stopped`.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(epoch_tick) {
                    for engine in &engines {
                        if let Some(engine) = engine.upgrade() {
                            engine.increment_epoch();
                        }
                    }
                }
            })
            .map_err(EngineError::Ticker)?;
        Ok(Self {
            inner: Arc::new(Engines {
                sequential,
                concurrent,
                capabilities: Capabilities::builtin(),
                memory_cap: config.memory_cap,
                cache: config.compile_cache.as_deref().map(CompileCache::new),
                _ticker: stop,
            }),
        })
    }

    /// Loads a component from a `.wasm` file; messages name it by its path.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not a component, or its world does not
    /// fit a weir endpoint.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<EndpointComponent, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// Loads a component from its bytes; messages name it `name`.
    ///
    /// # Errors
    ///
    /// As [`Engine::load_file`].
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<EndpointComponent, LoadError> {
        let Engines { sequential, concurrent, capabilities, cache, .. } = &*self.inner;
        let engines = [sequential, concurrent];
        let (component, info) =
            component::compile(engines, cache.as_ref(), name, bytes, capabilities).map_err(|error| match error {
                LoadError::Invalid { name, source } if component::is_valid(bytes) => {
                    LoadError::ExceedsLimits { name, memory_cap: self.inner.memory_cap, source }
                }
                error => error,
            })?;
        let wrong_world = |reason: String| LoadError::WrongWorld { name: name.to_owned(), reason };
        let (linker, used) = capabilities.link(component.engine(), &info).map_err(|e| wrong_world(format!("{e:#}")))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| wrong_world(format!("{e:#}")))?;
        tracing::debug!(component = name, mode = ?info.mode, gateways = info.gateways.len(), "component loaded");
        Ok(EndpointComponent::new(info, pre, used))
    }

    /// What the host lends components loaded here.
    pub(crate) fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    /// Whether `component` was compiled by this engine.
    pub(crate) fn owns(&self, component: &EndpointComponent) -> bool {
        let engine = component.engine();
        wasmtime::Engine::same(engine, &self.inner.sequential) || wasmtime::Engine::same(engine, &self.inner.concurrent)
    }

    /// The largest memory cap an endpoint may have on this engine.
    pub fn memory_cap(&self) -> u64 {
        self.inner.memory_cap
    }
}

/// Both engines' configuration. Memories are reserved at the memory cap
/// (not the 4 GiB that would spare bounds checks) so that many endpoints
/// fit in the address space. Initial memory is copied rather than mapped
/// copy-on-write: endpoint components have small data segments, and an
/// `mmap` per instance (with the TLB shootdowns it causes on every other
/// thread) cost more than copying them (async endpoint start 95 → 40 µs).
fn engine_config(host: &HostConfig, concurrent: bool) -> Config {
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .wasm_component_model(true)
        .concurrency_support(concurrent)
        .memory_reservation(host.memory_cap)
        .memory_guard_size(MEMORY_GUARD)
        .memory_init_cow(false);
    if concurrent {
        let endpoints = host.max_endpoints.saturating_add(SPARE_INSTANCES);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(endpoints)
            .total_core_instances(endpoints.saturating_mul(CORE_INSTANCES_PER_ENDPOINT))
            .total_memories(endpoints.saturating_mul(MEMORIES_PER_ENDPOINT))
            .total_tables(endpoints.saturating_mul(TABLES_PER_ENDPOINT))
            .total_stacks(endpoints)
            .max_memory_size(usize::try_from(host.memory_cap).unwrap_or(usize::MAX));
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.linear_memory_keep_resident(MEMORY_KEPT_RESIDENT)
                .table_keep_resident(TABLE_KEPT_RESIDENT)
                .pagemap_scan(Enabled::Yes);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}
