//! The host's directory of live endpoints: id to [`ActorRef`], and address
//! resolution for `connect`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::actor_ref::ActorRef;
use super::lifecycle::Lifecycle;
use crate::address::{AddressError, EndpointAddress};
use crate::error::{RpcError, SpawnError};

/// Live endpoints by id. Lookups happen on connect, not on every call.
#[derive(Debug)]
pub(crate) struct Directory {
    authority: String,
    endpoints: RwLock<HashMap<Arc<str>, Arc<ActorRef>>>,
}

impl Directory {
    pub(crate) fn new(authority: String) -> Self {
        Self { authority, endpoints: RwLock::new(HashMap::new()) }
    }

    /// The address endpoint `id` has on this host.
    pub(crate) fn address_of(&self, id: &str) -> EndpointAddress {
        EndpointAddress::new(&self.authority, id)
    }

    /// Registers a new endpoint. Its id may reuse that of a terminated one.
    ///
    /// # Errors
    ///
    /// [`SpawnError::DuplicateId`] if an endpoint with the id is alive.
    pub(crate) fn register(&self, actor: Arc<ActorRef>) -> Result<(), SpawnError> {
        let mut endpoints = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        if endpoints.get(&actor.id).is_some_and(|existing| is_alive(existing)) {
            return Err(SpawnError::DuplicateId(actor.id.to_string()));
        }
        endpoints.insert(actor.id.clone(), actor);
        Ok(())
    }

    /// Whether an endpoint with this id is alive, so another cannot take it.
    pub(crate) fn is_taken(&self, id: &str) -> bool {
        self.get(id).is_some_and(|existing| is_alive(&existing))
    }

    /// Removes `actor`, unless its id has been taken over by a newer one.
    pub(crate) fn unregister(&self, actor: &Arc<ActorRef>) {
        let mut endpoints = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        if endpoints.get(&actor.id).is_some_and(|current| Arc::ptr_eq(current, actor)) {
            endpoints.remove(&actor.id);
        }
    }

    /// The endpoint with this id, if it is alive.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<ActorRef>> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Every registered endpoint.
    pub(crate) fn all(&self) -> Vec<Arc<ActorRef>> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Finds the endpoint an address names.
    ///
    /// # Errors
    ///
    /// [`RpcError::UnknownEndpoint`] for a malformed address or no such
    /// endpoint; [`RpcError::Unreachable`] for another host's address, which
    /// this host cannot reach without a network transport.
    pub(crate) fn resolve(&self, address: &str) -> Result<Arc<ActorRef>, RpcError> {
        let parsed: EndpointAddress = address.parse().map_err(|e: AddressError| RpcError::UnknownEndpoint {
            address: address.to_owned(),
            reason: e.reason().to_owned(),
        })?;
        if parsed.authority() != self.authority {
            return Err(RpcError::Unreachable {
                endpoint: address.to_owned(),
                reason: format!(
                    "this host ({}) has no network transport to reach {}",
                    self.authority,
                    parsed.authority()
                ),
            });
        }
        self.get(parsed.id()).ok_or_else(|| RpcError::UnknownEndpoint {
            address: address.to_owned(),
            reason: "no endpoint with that id is running on this host".into(),
        })
    }

    /// Flink's `connect` handshake, on this host: finds the endpoint at
    /// `address` and the index of `gateway` among its exports. As in Flink,
    /// an endpoint answers it in any state, started or not.
    ///
    /// # Errors
    ///
    /// As [`Directory::resolve`], or [`RpcError::Handshake`] if the endpoint
    /// does not export the gateway.
    pub(crate) fn connect(&self, address: &str, gateway: &str) -> Result<(Arc<ActorRef>, usize), RpcError> {
        let target = self.resolve(address)?;
        let index = target.gateway(gateway)?;
        Ok((target, index))
    }
}

fn is_alive(actor: &ActorRef) -> bool {
    actor.lifecycle.get() != Lifecycle::Terminated
}
