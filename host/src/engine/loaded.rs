//! [`EndpointComponent`]: a component compiled and linked, ready to start
//! any number of endpoints.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::typed::{BatchAsyncFunc, BatchFunc, GatewayFunc, RestoreFunc, SnapshotFunc, TaskFunc};
use crate::gateway::Passing;

use crate::capability::{Capabilities, StoreData, Used};
use crate::component::ComponentInfo;

/// A loaded endpoint component: the compiled component, what the host
/// learned about its world ([`ComponentInfo`]), and a pre-instantiation with
/// every import resolved, so starting an endpoint only allocates its store
/// and instance. It is cheap to clone.
#[derive(Clone)]
pub struct EndpointComponent {
    inner: Arc<Loaded>,
}

struct Loaded {
    info: Arc<ComponentInfo>,
    pre: InstancePre<StoreData>,
    /// The capabilities it imports, whose state each of its stores gets.
    used: Used,
}

impl std::fmt::Debug for EndpointComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointComponent").field("name", &self.inner.info.name).finish_non_exhaustive()
    }
}

/// The functions of one instance, resolved once when it starts, and what
/// the host knows of its component. `on-start` and `on-stop` are called
/// with dynamic values.
#[derive(Debug)]
pub(crate) struct InstanceFuncs {
    /// The instance's component: where its functions sit, what it exports.
    pub info: Arc<ComponentInfo>,
    /// Gateway functions, in the order of [`ComponentInfo::functions`].
    pub gateway: Vec<GatewayFunc>,
    pub on_start: Option<GatewayFunc>,
    pub on_stop: Option<GatewayFunc>,
    /// `weir:rpc/main-thread.run`, if the component schedules tasks.
    pub run_task: Option<TaskFunc>,
    /// `weir:rpc/batch.deliver`, if the component exports it.
    pub batch: Option<BatchFunc>,
    /// `weir:rpc/batch.deliver-async`, if the component exports it.
    pub batch_async: Option<BatchAsyncFunc>,
    /// `weir:rpc/handover.snapshot`, if the component exports it.
    pub snapshot: Option<SnapshotFunc>,
    /// `weir:rpc/handover.restore`, if the component exports it.
    pub restore: Option<RestoreFunc>,
}

impl InstanceFuncs {
    /// Whether the component takes calls in batches of either kind.
    pub(crate) fn delivers_batches(&self) -> bool {
        self.batch.is_some() || self.batch_async.is_some()
    }
}

impl EndpointComponent {
    pub(crate) fn new(info: ComponentInfo, pre: InstancePre<StoreData>, used: Used) -> Self {
        Self { inner: Arc::new(Loaded { info: Arc::new(info), pre, used }) }
    }

    /// Whether `other` is this very component (not merely one loaded from
    /// the same bytes).
    pub(crate) fn same(&self, other: &EndpointComponent) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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

    /// The per-endpoint state of the capabilities it uses, for a new store.
    pub(crate) fn capability_states(&self, capabilities: &Capabilities) -> Vec<Box<dyn std::any::Any + Send>> {
        capabilities.states(&self.inner.used)
    }

    /// Instantiates the component into `store`; its functions are looked up
    /// on their first call.
    pub(crate) async fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<InstanceFuncs> {
        let instance = self.inner.pre.instantiate_async(&mut *store).await?;
        let info = &self.inner.info;
        let gateway = info.functions.iter().map(|f| GatewayFunc::new(instance, f.index, f.passing)).collect();
        let hooks = &info.hooks;
        let hook = |index: Option<_>| index.map(|index| GatewayFunc::new(instance, index, Passing::Dynamic));
        let (on_start, on_stop) = (hook(hooks.on_start), hook(hooks.on_stop));
        let run_task = hooks.run_task.map(|index| TaskFunc::new(instance, index));
        let batch = hooks.batch.map(|index| BatchFunc::new(instance, index));
        let batch_async = hooks.batch_async.map(|index| BatchAsyncFunc::new(instance, index));
        let snapshot = hooks.snapshot.map(|index| SnapshotFunc::new(instance, index));
        let restore = hooks.restore.map(|index| RestoreFunc::new(instance, index));
        Ok(InstanceFuncs {
            info: info.clone(),
            gateway,
            on_start,
            on_stop,
            run_task,
            batch,
            batch_async,
            snapshot,
            restore,
        })
    }
}
