//! What the host learned about a component when it loaded it.

use wasmtime::component::ComponentExportIndex;

use crate::gateway::{ClientInterface, FunctionSignature, GatewaySignature};

/// A gateway function of a component: the index of its signature in
/// [`ComponentInfo::functions`]. Ids are only meaningful with the component
/// they came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FunctionId(pub u32);

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
    pub functions: std::ops::Range<u32>,
}

/// One exported gateway function.
#[derive(Clone, Debug)]
pub struct FunctionExport {
    /// Its signature.
    pub signature: FunctionSignature,
    /// Which gateway it belongs to (index into [`ComponentInfo::gateways`]).
    pub gateway: usize,
    /// Where wasmtime finds it in an instance.
    pub(crate) index: ComponentExportIndex,
}

/// The optional hooks a component exports.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub(crate) on_start: Option<ComponentExportIndex>,
    pub(crate) on_stop: Option<ComponentExportIndex>,
    pub(crate) run_task: Option<ComponentExportIndex>,
}

/// Everything the host needs to know about a component's world.
#[derive(Clone, Debug)]
pub struct ComponentInfo {
    /// A name for messages, usually the file stem.
    pub name: String,
    /// How calls into it are driven.
    pub mode: ExecutionMode,
    /// Exported gateway interfaces.
    pub gateways: Vec<GatewayExport>,
    /// All gateway functions, grouped by gateway.
    pub functions: Vec<FunctionExport>,
    /// Imported client interfaces.
    pub clients: Vec<ClientInterface>,
    /// Lifecycle and main-thread hooks.
    pub hooks: Hooks,
}

impl ComponentInfo {
    /// The gateway exported under `name`.
    pub fn gateway(&self, name: &str) -> Option<(usize, &GatewayExport)> {
        self.gateways.iter().enumerate().find(|(_, g)| g.name == name)
    }

    /// The functions of a gateway, with their ids.
    pub fn gateway_functions(&self, gateway: usize) -> impl Iterator<Item = (FunctionId, &FunctionSignature)> + Clone {
        let range = self.gateways[gateway].functions.clone();
        range.map(move |i| (FunctionId(i), &self.functions[i as usize].signature))
    }

    /// The gateway at `index` as callers see it.
    pub fn gateway_signature(&self, index: usize) -> GatewaySignature {
        GatewaySignature {
            name: self.gateways[index].name.clone(),
            functions: self.gateway_functions(index).map(|(id, f)| (id, f.clone())).collect(),
        }
    }

    /// The function `id`.
    pub fn function(&self, id: FunctionId) -> &FunctionExport {
        &self.functions[id.0 as usize]
    }

    /// `gateway.function`, for messages.
    pub fn qualified_name(&self, id: FunctionId) -> String {
        let function = self.function(id);
        format!("{}.{}", self.gateways[function.gateway].name, function.signature.name)
    }

    /// Whether the component exports `on-stop`.
    pub fn has_on_stop(&self) -> bool {
        self.hooks.on_stop.is_some()
    }
}
