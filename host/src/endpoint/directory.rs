//! The host's directory of live endpoints: id to [`ActorRef`], and the
//! lookups of `connect` and of calls from other hosts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use super::actor_ref::ActorRef;
use super::lifecycle::Lifecycle;
use crate::address::EndpointAddress;
use crate::error::{RpcError, SpawnError};
use crate::gateway::GatewaySignature;

/// Terminated endpoints remembered, so that a remote caller learns how its
/// target ended (endpoint-failed and why), as a local caller holding the
/// endpoint does. Older ones are forgotten; their callers get unreachable.
const REMEMBERED_TERMINATIONS: usize = 1024;

/// Live endpoints by id. Local lookups happen on connect, remote ones on
/// every call from another host.
#[derive(Debug)]
pub(crate) struct Directory {
    authority: String,
    /// The most endpoints alive at once (`max-endpoints`).
    capacity: usize,
    endpoints: RwLock<Endpoints>,
    ended: Mutex<VecDeque<Arc<ActorRef>>>,
}

#[derive(Debug, Default)]
struct Endpoints {
    by_id: HashMap<Arc<str>, Arc<ActorRef>>,
    /// Set by [`Directory::close`]: nothing registers any more.
    closed: bool,
}

impl Directory {
    pub(crate) fn new(authority: String, capacity: usize) -> Self {
        Self { authority, capacity, endpoints: RwLock::default(), ended: Mutex::new(VecDeque::new()) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Endpoints> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Endpoints> {
        self.endpoints.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The address endpoint `id` has on this host.
    pub(crate) fn address_of(&self, id: &str) -> EndpointAddress {
        EndpointAddress::new(&self.authority, id)
    }

    /// Registers a new endpoint. Its id may reuse that of a terminated one.
    ///
    /// # Errors
    ///
    /// [`SpawnError::ServiceStopped`] once the directory is closed,
    /// [`SpawnError::DuplicateId`] if an endpoint with the id is alive,
    /// [`SpawnError::TooManyEndpoints`] if `max-endpoints` are.
    pub(crate) fn register(&self, actor: Arc<ActorRef>) -> Result<(), SpawnError> {
        let mut endpoints = self.write();
        if endpoints.closed {
            return Err(SpawnError::ServiceStopped);
        }
        if endpoints.by_id.get(&actor.id).is_some_and(|existing| is_alive(existing)) {
            return Err(SpawnError::DuplicateId(actor.id.to_string()));
        }
        if endpoints.by_id.len() >= self.capacity && !endpoints.by_id.contains_key(&actor.id) {
            return Err(SpawnError::TooManyEndpoints(self.capacity));
        }
        endpoints.by_id.insert(actor.id.clone(), actor);
        Ok(())
    }

    /// Closes the directory, so no endpoint registers any more, and returns
    /// every registered one: a spawn racing a shutdown either registers
    /// first, and is stopped with the rest, or fails.
    pub(crate) fn close(&self) -> Vec<Arc<ActorRef>> {
        let mut endpoints = self.write();
        endpoints.closed = true;
        endpoints.by_id.values().cloned().collect()
    }

    /// Whether an endpoint with this id is alive, so another cannot take it.
    pub(crate) fn is_taken(&self, id: &str) -> bool {
        self.get(id).is_some_and(|existing| is_alive(&existing))
    }

    /// Removes a terminated `actor`, unless its id has been taken over by
    /// a newer one, and remembers how it ended for remote callers.
    pub(crate) fn unregister(&self, actor: &Arc<ActorRef>) {
        let mut endpoints = self.write();
        if endpoints.by_id.get(&actor.id).is_some_and(|current| Arc::ptr_eq(current, actor)) {
            endpoints.by_id.remove(&actor.id);
        }
        drop(endpoints);
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() == REMEMBERED_TERMINATIONS {
            ended.pop_front();
        }
        ended.push_back(actor.clone());
    }

    /// The endpoint with this id, if it is alive.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<ActorRef>> {
        self.read().by_id.get(id).cloned()
    }

    /// Every registered endpoint.
    pub(crate) fn all(&self) -> Vec<Arc<ActorRef>> {
        self.read().by_id.values().cloned().collect()
    }

    /// The `host:port` this host listens on, or `local`.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// Flink's `connect` handshake, on this host: finds the endpoint at
    /// `address` and its gateway `gateway` as callers see it. As in Flink,
    /// an endpoint answers it in any state, started or not.
    ///
    /// # Errors
    ///
    /// [`RpcError::UnknownEndpoint`] if no endpoint has the address's id,
    /// [`RpcError::Handshake`] if it does not export the gateway.
    pub(crate) fn connect(
        &self,
        address: &EndpointAddress,
        gateway: &str,
    ) -> Result<(Arc<ActorRef>, Arc<GatewaySignature>), RpcError> {
        let target = self.get(address.id()).ok_or_else(|| RpcError::UnknownEndpoint {
            address: address.to_string(),
            reason: "no endpoint with that id is running on this host".into(),
        })?;
        let signature = target.gateway(gateway)?;
        Ok((target, signature))
    }

    /// The endpoint a remote gateway connected to, or, if it is gone, the
    /// error a local handle to it would get.
    ///
    /// # Errors
    ///
    /// Endpoint-failed or unreachable, as [`ActorRef::gone`] says.
    pub(crate) fn incarnation(&self, id: &str, incarnation: u64) -> Result<Arc<ActorRef>, RpcError> {
        if let Some(actor) = self.get(id).filter(|actor| actor.incarnation == incarnation) {
            return Ok(actor);
        }
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        match ended.iter().find(|actor| *actor.id == *id && actor.incarnation == incarnation) {
            Some(actor) => Err(actor.gone()),
            None => {
                Err(RpcError::Unreachable { endpoint: id.to_owned(), reason: "the endpoint has terminated".into() })
            }
        }
    }
}

fn is_alive(actor: &ActorRef) -> bool {
    actor.lifecycle.get() != Lifecycle::Terminated
}
