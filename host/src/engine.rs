//! The wasmtime engines and the epoch ticker behind the CPU deadline.
//!
//! A weir [`Engine`] holds two wasmtime engines. Components that use no
//! component-model async run on a plain engine, where a call is a direct
//! invocation on a fiber; the others run on an engine with concurrency
//! support, where calls are guest tasks interleaved at await points. Loading
//! picks the engine; callers never see the difference.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use wasmtime::{Config, OptLevel};

use crate::component::{EndpointComponent, ExecutionMode};
use crate::error::LoadError;

/// Compiles components and keeps time for their CPU deadlines. Cheap to
/// clone; components loaded by one engine run on every service built on it.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Engines>,
}

struct Engines {
    sequential: wasmtime::Engine,
    concurrent: wasmtime::Engine,
    /// Dropping it stops the ticker thread at once.
    _ticker: mpsc::Sender<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Creates the engines and starts a ticker that advances their epoch
    /// every `epoch_tick`.
    ///
    /// # Errors
    ///
    /// If wasmtime rejects the configuration (for example, an unsupported
    /// CPU).
    pub fn new(epoch_tick: Duration) -> wasmtime::Result<Self> {
        let sequential = wasmtime::Engine::new(&config(false))?;
        let concurrent = wasmtime::Engine::new(&config(true))?;
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
        Ok(Self {
            inner: Arc::new(Engines {
                sequential,
                concurrent,
                _ticker: stop,
            }),
        })
    }

    /// Loads a component from a `.wasm` file; its name is the file stem.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not a component, or its world does not
    /// fit a weir endpoint.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<EndpointComponent, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let name = path.file_stem().map_or_else(
            || "component".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        );
        self.load_bytes(&name, &bytes)
    }

    /// Loads a component from its bytes.
    ///
    /// # Errors
    ///
    /// As [`Engine::load_file`].
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<EndpointComponent, LoadError> {
        EndpointComponent::compile(
            [
                (&self.inner.sequential, ExecutionMode::Sequential),
                (&self.inner.concurrent, ExecutionMode::Concurrent),
            ],
            name,
            bytes,
        )
    }

    /// Whether `component` was compiled by this engine.
    pub(crate) fn owns(&self, component: &EndpointComponent) -> bool {
        let engine = component.engine();
        wasmtime::Engine::same(engine, &self.inner.sequential)
            || wasmtime::Engine::same(engine, &self.inner.concurrent)
    }
}

fn config(concurrent: bool) -> Config {
    let mut config = Config::new();
    config.cranelift_opt_level(OptLevel::Speed);
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.concurrency_support(concurrent);
    config
}
