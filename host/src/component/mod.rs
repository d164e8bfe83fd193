//! Components: compiled once, instantiated once per endpoint.
//!
//! [`EndpointComponent`] is what [`Engine::load_file`](crate::Engine::load_file)
//! returns: the compiled component, what the host learned about its world
//! ([`ComponentInfo`]), and a pre-instantiation with every import resolved,
//! so starting an endpoint only allocates its store and instance. It is cheap
//! to clone and can start any number of endpoints.

mod clients;
#[doc(hidden)]
pub mod floor;
mod info;
mod inspect;
mod linker;
mod runtime_api;
mod stdio;
mod store;

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Component, Func, Instance, InstancePre};

pub use self::info::{ComponentInfo, ExecutionMode, FunctionExport, FunctionId, GatewayExport};
pub use self::stdio::MAX_LINE;
pub(crate) use self::store::{Identity, LimitExceeded, Limits, ScheduledTask, StoreData, StoreParts, new_store};
use crate::error::LoadError;

/// A loaded endpoint component.
#[derive(Clone)]
pub struct EndpointComponent {
    inner: Arc<Loaded>,
}

struct Loaded {
    info: Arc<ComponentInfo>,
    pre: InstancePre<StoreData>,
}

impl std::fmt::Debug for EndpointComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointComponent").field("name", &self.inner.info.name).finish_non_exhaustive()
    }
}

/// The functions of one instance, resolved once when it starts.
#[derive(Debug)]
pub(crate) struct InstanceFuncs {
    pub gateway: Vec<Func>,
    pub on_start: Option<Func>,
    pub on_stop: Option<Func>,
    pub run_task: Option<Func>,
}

impl EndpointComponent {
    /// Compiles `bytes` on whichever engine fits and reads its world.
    pub(crate) fn compile(
        sequential: &wasmtime::Engine,
        concurrent: &wasmtime::Engine,
        name: &str,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        // A component without component-model async validates on the plain
        // engine, where calls are cheaper; anything else needs concurrency.
        let (engine, component, mode) = match Component::new(sequential, bytes) {
            Ok(component) => (sequential, component, ExecutionMode::Sequential),
            Err(_) => match Component::new(concurrent, bytes) {
                Ok(component) => (concurrent, component, ExecutionMode::Concurrent),
                Err(source) => {
                    return Err(LoadError::Invalid { name: name.to_owned(), source });
                }
            },
        };
        let wrong_world = |reason: String| LoadError::WrongWorld { name: name.to_owned(), reason };
        let info = inspect::inspect(engine, &component, name, mode).map_err(wrong_world)?;
        let linker = linker::build(engine, &info).map_err(|e| wrong_world(format!("{e:#}")))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| wrong_world(format!("{e:#}")))?;
        tracing::debug!(
            component = name,
            ?mode,
            gateways = info.gateways.len(),
            clients = info.clients.len(),
            "component loaded"
        );
        Ok(Self { inner: Arc::new(Loaded { info: Arc::new(info), pre }) })
    }

    /// What the host learned about the component.
    pub fn info(&self) -> &ComponentInfo {
        &self.inner.info
    }

    pub(crate) fn shared_info(&self) -> Arc<ComponentInfo> {
        self.inner.info.clone()
    }

    /// The engine the component was compiled for.
    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        self.inner.pre.engine()
    }

    /// Instantiates the component into `store` and resolves its functions.
    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<StoreData>,
    ) -> wasmtime::Result<(Instance, InstanceFuncs)> {
        let instance = self.inner.pre.instantiate_async(&mut *store).await?;
        let info = &self.inner.info;
        let mut func = |index| {
            instance
                .get_func(&mut *store, index)
                .ok_or_else(|| wasmtime::format_err!("component `{}` lost an export", info.name))
        };
        let gateway = info.functions.iter().map(|f| func(f.index)).collect::<wasmtime::Result<_>>()?;
        let hooks = &info.hooks;
        let funcs = InstanceFuncs {
            gateway,
            on_start: hooks.on_start.map(&mut func).transpose()?,
            on_stop: hooks.on_stop.map(&mut func).transpose()?,
            run_task: hooks.run_task.map(&mut func).transpose()?,
        };
        Ok((instance, funcs))
    }
}
