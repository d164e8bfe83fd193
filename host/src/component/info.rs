//! What the host learned about a component when it loaded it.

use std::sync::Arc;

use wasmtime::component::ComponentExportIndex;

use crate::gateway::{ClientInterface, FunctionId, FunctionSignature, GatewaySignature, Passing};

/// How the host drives a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionMode {
    /// The component uses no component-model async: every call runs to
    /// completion, one after the other, on a plain engine (cheaper calls).
    Sequential,
    /// The component has async functions or calls other endpoints: calls run
    /// as concurrent guest tasks, interleaved at their await points.
    Concurrent,
}

/// One exported gateway interface.
#[derive(Clone, Debug)]
pub struct GatewayExport {
    /// The interface name, e.g. `weir:examples/echo@0.1.0`.
    pub name: String,
    /// Its functions: a range of [`ComponentInfo::functions`].
    pub functions: std::ops::Range<usize>,
}

/// One exported gateway function.
#[derive(Clone, Debug)]
pub struct FunctionExport {
    /// Its stable id: the same in every component that exports the gateway.
    pub id: FunctionId,
    /// Its signature.
    pub signature: FunctionSignature,
    /// Which gateway it belongs to (index into [`ComponentInfo::gateways`]).
    pub gateway: usize,
    /// How the host passes its values to the guest.
    pub(crate) passing: Passing,
    /// Whether queued calls of it go to the guest in batches.
    pub(crate) batched: bool,
    /// Where wasmtime finds it in an instance.
    pub(crate) index: ComponentExportIndex,
}

/// The optional hooks a component exports.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub(crate) on_start: Option<ComponentExportIndex>,
    pub(crate) on_stop: Option<ComponentExportIndex>,
    pub(crate) run_task: Option<ComponentExportIndex>,
    /// `weir:rpc/batch.deliver`.
    pub(crate) batch: Option<ComponentExportIndex>,
    /// `weir:rpc/batch.deliver-async`.
    pub(crate) batch_async: Option<ComponentExportIndex>,
    /// `weir:rpc/handover.snapshot`.
    pub(crate) snapshot: Option<ComponentExportIndex>,
    /// `weir:rpc/handover.restore`.
    pub(crate) restore: Option<ComponentExportIndex>,
}

/// Everything the host needs to know about a component's world.
#[derive(Clone, Debug)]
pub struct ComponentInfo {
    /// A name for messages: the file it was loaded from, or the name it
    /// was loaded under.
    pub name: String,
    /// How calls into it are driven.
    pub mode: ExecutionMode,
    /// Exported gateway interfaces.
    pub gateways: Vec<GatewayExport>,
    /// All gateway functions, grouped by gateway.
    pub functions: Vec<FunctionExport>,
    /// Imported client interfaces.
    pub clients: Vec<ClientInterface>,
    /// Every interface the component imports, clients included.
    pub imports: Vec<String>,
    /// Lifecycle and main-thread hooks.
    pub hooks: Hooks,
    /// Positions in [`ComponentInfo::functions`], sorted by id, for the
    /// lookup every call makes.
    by_id: Box<[(FunctionId, usize)]>,
    /// Each gateway as callers see it, made once: every connect hands one
    /// out, and a deep copy per connect showed in the control plane's
    /// profile.
    signatures: Box<[Arc<GatewaySignature>]>,
}

impl ComponentInfo {
    /// Assembles what inspection found, indexing the functions by id.
    ///
    /// # Errors
    ///
    /// Two functions whose ids collide.
    pub(crate) fn new(
        name: String,
        mode: ExecutionMode,
        gateways: Vec<GatewayExport>,
        functions: Vec<FunctionExport>,
        clients: Vec<ClientInterface>,
        imports: Vec<String>,
        hooks: Hooks,
    ) -> Result<Self, String> {
        let mut by_id: Vec<(FunctionId, usize)> = functions.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        by_id.sort_unstable();
        if let Some(pair) = by_id.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            let name = |i: usize| format!("{}.{}", gateways[functions[i].gateway].name, functions[i].signature.name);
            return Err(format!("functions {} and {} have the same id; rename one", name(pair[0].1), name(pair[1].1)));
        }
        let mut info = Self {
            name,
            mode,
            gateways,
            functions,
            clients,
            imports,
            hooks,
            by_id: by_id.into(),
            signatures: Box::default(),
        };
        info.signatures = (0..info.gateways.len())
            .map(|index| {
                let functions = info.gateway_functions(index).map(|(id, f)| (id, f.clone())).collect();
                Arc::new(GatewaySignature { name: info.gateways[index].name.clone(), functions })
            })
            .collect();
        Ok(info)
    }

    /// The gateway exported under `name`.
    pub fn gateway(&self, name: &str) -> Option<(usize, &GatewayExport)> {
        self.gateways.iter().enumerate().find(|(_, g)| g.name == name)
    }

    /// The functions of a gateway, with their ids.
    pub fn gateway_functions(&self, gateway: usize) -> impl Iterator<Item = (FunctionId, &FunctionSignature)> + Clone {
        self.functions[self.gateways[gateway].functions.clone()].iter().map(|f| (f.id, &f.signature))
    }

    /// The gateway at `index` as callers see it.
    pub fn gateway_signature(&self, index: usize) -> Arc<GatewaySignature> {
        self.signatures[index].clone()
    }

    /// Where function `id` sits in [`ComponentInfo::functions`], if the
    /// component exports it.
    pub fn position(&self, id: FunctionId) -> Option<usize> {
        self.by_id.binary_search_by_key(&id, |(id, _)| *id).ok().map(|i| self.by_id[i].1)
    }

    /// The function `id`, if the component exports it.
    pub fn function(&self, id: FunctionId) -> Option<&FunctionExport> {
        self.position(id).map(|i| &self.functions[i])
    }

    /// `gateway.function`, for messages.
    pub fn qualified_name(&self, id: FunctionId) -> String {
        match self.function(id) {
            Some(function) => format!("{}.{}", self.gateways[function.gateway].name, function.signature.name),
            None => format!("function #{:016x}", id.0),
        }
    }

    /// Whether the component exports `on-stop`.
    pub fn has_on_stop(&self) -> bool {
        self.hooks.on_stop.is_some()
    }
}
