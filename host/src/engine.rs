//! The wasmtime engines and the epoch ticker behind the CPU deadline.
//!
//! A weir [`Engine`] holds two wasmtime engines. Components that use no
//! component-model async run on a plain engine, where a call is a direct
//! invocation on a fiber; the others run on an engine with concurrency
//! support, where calls are guest tasks interleaved at await points. Loading
//! picks the engine; callers never see the difference.

use std::path::Path;
use std::sync::{Arc, mpsc};

use wasmtime::{Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::component::EndpointComponent;
use crate::config::HostConfig;
use crate::error::LoadError;

/// Core instances a component may hold: its modules plus the shims and
/// adapters the component tooling adds.
const CORE_INSTANCES_PER_ENDPOINT: u32 = 16;
/// Linear memories a component may hold.
const MEMORIES_PER_ENDPOINT: u32 = 2;
/// Tables a component may hold.
const TABLES_PER_ENDPOINT: u32 = 4;
/// Fiber stacks beyond one per endpoint. A concurrent endpoint keeps one
/// stack for its guest tasks; a sync-only endpoint holds one only during a
/// call, so a few cover every call that can run at once. Each stack costs two
/// kernel mappings up front (stack and guard page), which counts against
/// `vm.max_map_count`.
const SPARE_STACKS: u32 = 1024;
/// Guard region after each linear memory in the pool.
const MEMORY_GUARD: u64 = 64 * 1024;

/// Compiles components and keeps time for their CPU deadlines. Cheap to
/// clone; components loaded by one engine run on every service built on it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Engines>,
}

struct Engines {
    sequential: wasmtime::Engine,
    concurrent: wasmtime::Engine,
    /// The largest memory cap an endpoint may have on these engines.
    memory_cap: u64,
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
    /// If wasmtime rejects the configuration (for example, an unsupported
    /// CPU) or cannot reserve the pools.
    pub fn new(config: &HostConfig) -> wasmtime::Result<Self> {
        config.validate()?;
        let sequential = wasmtime::Engine::new(&engine_config(config, false))?;
        let concurrent = wasmtime::Engine::new(&engine_config(config, true))?;
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
            .map_err(|e| wasmtime::format_err!("cannot start the epoch ticker: {e}"))?;
        Ok(Self { inner: Arc::new(Engines { sequential, concurrent, memory_cap: config.memory_cap, _ticker: stop }) })
    }

    /// Loads a component from a `.wasm` file; its name is the file stem.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not a component, or its world does not
    /// fit a weir endpoint.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<EndpointComponent, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
        let name = path.file_stem().map_or_else(|| "component".to_owned(), |s| s.to_string_lossy().into_owned());
        self.load_bytes(&name, &bytes)
    }

    /// Loads a component from its bytes.
    ///
    /// # Errors
    ///
    /// As [`Engine::load_file`].
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<EndpointComponent, LoadError> {
        EndpointComponent::compile(&self.inner.sequential, &self.inner.concurrent, name, bytes)
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
/// (not the 4 GiB that would spare bounds checks) so that pools for many
/// endpoints fit in the address space. Initial memory is copied rather than
/// mapped copy-on-write: endpoint components have small data segments, and
/// an `mmap` per instance (with the TLB shootdowns it causes on every other
/// thread) cost more than copying them (async endpoint start 95 → 40 µs).
fn engine_config(host: &HostConfig, concurrent: bool) -> Config {
    let memory_cap = usize::try_from(host.memory_cap).unwrap_or(usize::MAX);
    let endpoints = host.max_endpoints;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(endpoints)
        .total_core_instances(endpoints.saturating_mul(CORE_INSTANCES_PER_ENDPOINT))
        .total_memories(endpoints.saturating_mul(MEMORIES_PER_ENDPOINT))
        .total_tables(endpoints.saturating_mul(TABLES_PER_ENDPOINT))
        .total_stacks(if concurrent { endpoints.saturating_add(SPARE_STACKS) } else { SPARE_STACKS })
        .max_memory_size(memory_cap);
    let mut config = Config::new();
    config
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        .wasm_component_model(true)
        .concurrency_support(concurrent)
        .memory_reservation(host.memory_cap)
        .memory_guard_size(MEMORY_GUARD)
        .memory_init_cow(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
