//! Capabilities: what the host lends components, in one place.
//!
//! A capability is a WIT interface (or a family of them, as the client
//! interfaces) that the host implements for any endpoint that imports it:
//! its linker functions, and the state it keeps per endpoint. Every one is
//! registered in [`Capabilities::builtin`]; loading a component asks them
//! whether they lend each of its imports, links the ones it uses, and a new
//! endpoint's store gets their state. None of them knows any particular
//! endpoint: they are weir's platform, not a Flink component's.
//!
//! | capability | interfaces | per-endpoint state |
//! | --- | --- | --- |
//! | [`wasi::Wasi`] | WASI 0.2, without sockets or environment, files only in lent directories | WASI's context |
//! | [`runtime::Runtime`] | `weir:rpc/runtime`: identity, settings, logs, clocks, scheduled tasks | [`timers::Timers`] |
//! | [`batch_replies::BatchReplies`] | `weir:rpc/batch-replies`: answers to the asks of an async batch | [`batch_replies::Outcomes`] |
//! | [`clients::Clients`] | `<gateway>-client`: typed handles to other endpoints | [`clients::Connections`] |
//! | [`leadership`] | `weir:rpc/leadership`: leader election and retrieval | handles in the resource table |
//! | [`heartbeats`] | `weir:rpc/heartbeats`: heartbeat monitoring | handles in the resource table |
//! | [`registration`] | `weir:rpc/registration`: retry schedules | handles in the resource table |
//! | [`supervision`] | `weir:rpc/supervision`: starting endpoints, learning how they end | handles in the resource table |
//! | [`ha_store`] | `weir:rpc/ha-store`: small records that outlive their writers | none: the HA services keep them |
//!
//! The last five are each one typed interface, which an [`Interface`]
//! lends; the handles of the first four live in the store's resource
//! table.
//!
//! What the capabilities need from the service (its connector, HA services,
//! runtime and defaults) reaches them through the store's [`HostContext`].

mod batch_replies;
mod bindings;
mod clients;
mod ha_store;
mod heartbeats;
mod leadership;
mod registration;
mod runtime;
mod stdio;
mod store;
mod supervision;
mod timers;
mod typed_clients;
mod wasi;

use std::any::Any;
use std::sync::Arc;

use tokio::runtime::Handle;
use wasmtime::component::Linker;

pub(crate) use self::batch_replies::Outcomes;
pub(crate) use self::store::{Identity, LimitExceeded, Limits, StoreData, StoreParts, adopt, new_store};
pub(crate) use self::supervision::{ChildError, ChildSpec, Source, Spawner};
pub(crate) use self::timers::{TASK_BYTES, Timers};
use crate::component::{ComponentInfo, Lender};
use crate::config::{HeartbeatConfig, RegistrationConfig};
use crate::ha::HaServices;
use crate::route::Connector;

/// One thing the host lends components.
pub(crate) trait Capability: Send + Sync + std::fmt::Debug + 'static {
    /// What it lends, for the error that names an import nobody lends.
    fn describe(&self) -> &'static str;

    /// Whether it lends the interface a component imports as `name`.
    fn lends(&self, name: &str) -> bool;

    /// Defines what it lends in the linker of `component`, which imports
    /// something it lends.
    ///
    /// # Errors
    ///
    /// What wasmtime refuses.
    fn link(&self, linker: &mut Linker<StoreData>, component: &ComponentInfo) -> wasmtime::Result<()>;

    /// Its state in a new endpoint's store, if it keeps any; the host
    /// functions find it with [`StoreData::state`].
    fn state(&self) -> Option<Box<dyn Any + Send>> {
        None
    }
}

/// A capability that is one typed interface, with no per-endpoint state of
/// its own (its handles live in the store's resource table).
#[derive(Debug)]
struct Interface {
    /// The interface, as components import it.
    name: &'static str,
    /// Defines its functions, through its bindings.
    link: fn(&mut Linker<StoreData>) -> wasmtime::Result<()>,
}

impl Capability for Interface {
    fn describe(&self) -> &'static str {
        self.name
    }

    fn lends(&self, name: &str) -> bool {
        name == self.name
    }

    fn link(&self, linker: &mut Linker<StoreData>, _component: &ComponentInfo) -> wasmtime::Result<()> {
        (self.link)(linker)
    }
}

/// What the service lends every endpoint's capabilities.
#[derive(Debug)]
pub(crate) struct HostContext {
    /// Resolves addresses for client handles.
    pub connector: Arc<Connector>,
    /// Leader election and retrieval.
    pub ha: Arc<dyn HaServices>,
    /// Where background work for endpoints runs: the service's runtime.
    pub runtime: Handle,
    /// Heartbeat timing for managers that bring none.
    pub heartbeat: HeartbeatConfig,
    /// Registration timing for schedules that bring none.
    pub registration: RegistrationConfig,
    /// Starts the endpoints endpoints supervise.
    pub spawner: Arc<dyn Spawner>,
}

/// Every capability the host has.
#[derive(Debug)]
pub(crate) struct Capabilities {
    all: Vec<Box<dyn Capability>>,
}

/// The capabilities one component uses, by position in [`Capabilities`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Used(Vec<usize>);

impl Capabilities {
    /// The host's capabilities.
    pub(crate) fn builtin() -> Self {
        Self {
            all: vec![
                Box::new(wasi::Wasi),
                Box::new(runtime::Runtime),
                Box::new(batch_replies::BatchReplies),
                Box::new(clients::Clients),
                Box::new(Interface { name: leadership::INTERFACE, link: leadership::link }),
                Box::new(Interface { name: heartbeats::INTERFACE, link: heartbeats::link }),
                Box::new(Interface { name: registration::INTERFACE, link: registration::link }),
                Box::new(Interface { name: supervision::INTERFACE, link: supervision::link }),
                Box::new(Interface { name: ha_store::INTERFACE, link: ha_store::link }),
            ],
        }
    }

    /// A linker for `component` with everything it imports, and which
    /// capabilities it uses.
    ///
    /// # Errors
    ///
    /// What wasmtime refuses.
    pub(crate) fn link(
        &self,
        engine: &wasmtime::Engine,
        component: &ComponentInfo,
    ) -> wasmtime::Result<(Linker<StoreData>, Used)> {
        let mut linker = Linker::new(engine);
        let mut used = Vec::new();
        for (index, capability) in self.all.iter().enumerate() {
            if component.imports.iter().any(|import| capability.lends(import)) {
                capability.link(&mut linker, component)?;
                used.push(index);
            }
        }
        // What nobody lends, loading let through as imported for its types
        // only: an empty instance satisfies it.
        for import in component.imports.iter().filter(|import| !Lender::lends(self, import)) {
            linker.instance(import)?;
        }
        Ok((linker, Used(used)))
    }

    /// The per-endpoint state of the capabilities in `used`.
    pub(crate) fn states(&self, used: &Used) -> Vec<Box<dyn Any + Send>> {
        used.0.iter().filter_map(|&index| self.all[index].state()).collect()
    }
}

impl Lender for Capabilities {
    fn lends(&self, name: &str) -> bool {
        self.all.iter().any(|capability| capability.lends(name))
    }

    fn describe(&self) -> String {
        let all: Vec<&str> = self.all.iter().map(|capability| capability.describe()).collect();
        all.join(", ")
    }
}
