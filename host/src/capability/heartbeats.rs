//! `weir:rpc/heartbeats`: the host's [`HeartbeatManager`] for endpoints.
//!
//! The manager keeps the clock and the failure counts as it does for host
//! code; its targets and listener are the guest: each heartbeat RPC due
//! becomes an event the guest takes with `next-event`, makes through its
//! typed gateway, and reports back. So payloads keep their WIT types and
//! never pass through the host.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{Mutex, mpsc, oneshot};
use wasmtime::component::{Accessor, HasSelf, Linker, Resource};

use super::bindings::heartbeats::{self, HeartbeatEvent, HeartbeatRpc, HeartbeatSettings};
use super::bindings::types::RpcError as WitRpcError;
use super::store::StoreData;
use crate::config::HeartbeatConfig;
use crate::error::RpcError;
use crate::heartbeat::{HeartbeatListener, HeartbeatManager, HeartbeatTarget, ResourceId};

/// The interface, as components import it.
pub(crate) const INTERFACE: &str = "weir:rpc/heartbeats@0.1.0";

/// Defines the interface in a linker.
pub(crate) fn link(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    heartbeats::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
}
/// What a manager costs the host, and each target it monitors, charged
/// against the endpoint's memory cap.
const MANAGER_BYTES: u64 = 1024;
const TARGET_BYTES: u64 = 256;
/// Heartbeat RPCs the guest may owe reports for at once; past it, a due
/// RPC is skipped (a target that stays silent still times out).
const MAX_PENDING_RPCS: usize = 1024;

/// A manager handle.
pub struct Manager {
    manager: HeartbeatManager<(), ()>,
    guest: Arc<Guest>,
    events: Arc<Mutex<mpsc::UnboundedReceiver<HeartbeatEvent>>>,
    /// Targets monitored, each charged against the memory cap.
    targets: u64,
}

/// The guest, as the manager's listener and as every target's transport.
struct Guest {
    events: mpsc::UnboundedSender<HeartbeatEvent>,
    /// RPCs handed to the guest, waiting for its report.
    pending: SyncMutex<HashMap<u64, oneshot::Sender<Result<(), RpcError>>>>,
    next_rpc: AtomicU64,
    /// How long an RPC may wait for its report: the heartbeat timeout.
    patience: Duration,
}

impl Guest {
    /// Asks the guest to make an RPC to `target`; completes with the
    /// guest's report.
    fn rpc(
        self: &Arc<Self>,
        target: &ResourceId,
        event: fn(HeartbeatRpc) -> HeartbeatEvent,
    ) -> BoxFuture<'static, Result<(), RpcError>> {
        let (report, reported) = oneshot::channel();
        let rpc = self.next_rpc.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.len() >= MAX_PENDING_RPCS {
                return futures::future::ready(Ok(())).boxed();
            }
            pending.insert(rpc, report);
        }
        let _ = self.events.send(event(HeartbeatRpc { target: target.0.clone(), rpc }));
        let guest = self.clone();
        async move {
            let outcome = tokio::time::timeout(guest.patience, reported).await;
            guest.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&rpc);
            // An RPC the guest never reports on is the timeout's business.
            outcome.ok().and_then(Result::ok).unwrap_or(Ok(()))
        }
        .boxed()
    }
}

impl HeartbeatListener<(), ()> for Guest {
    fn notify_heartbeat_timeout(&self, target: &ResourceId) {
        let _ = self.events.send(HeartbeatEvent::TimedOut(target.0.clone()));
    }

    fn notify_target_unreachable(&self, target: &ResourceId) {
        let _ = self.events.send(HeartbeatEvent::Unreachable(target.0.clone()));
    }

    fn report_payload(&self, _target: &ResourceId, _payload: ()) {}

    fn retrieve_payload(&self, _target: &ResourceId) {}
}

/// One target, reached through the guest.
struct Target {
    id: ResourceId,
    guest: Arc<Guest>,
}

impl HeartbeatTarget<()> for Target {
    fn receive_heartbeat(&self, _from: &ResourceId, _payload: ()) -> BoxFuture<'static, Result<(), RpcError>> {
        self.guest.rpc(&self.id, HeartbeatEvent::Answer)
    }

    fn request_heartbeat(&self, _from: &ResourceId, _payload: ()) -> BoxFuture<'static, Result<(), RpcError>> {
        self.guest.rpc(&self.id, HeartbeatEvent::Request)
    }
}

fn config(settings: HeartbeatSettings) -> HeartbeatConfig {
    HeartbeatConfig {
        interval: Duration::from_millis(settings.interval_ms),
        timeout: Duration::from_millis(settings.timeout_ms),
        rpc_failure_threshold: settings.rpc_failure_threshold,
    }
}

impl heartbeats::Host for StoreData {}

impl heartbeats::HostHeartbeatManager for StoreData {
    fn new(
        &mut self,
        own: String,
        sender: bool,
        settings: Option<HeartbeatSettings>,
    ) -> wasmtime::Result<Resource<Manager>> {
        let config = settings.map_or(self.host.heartbeat, config);
        let (events, receiver) = mpsc::unbounded_channel();
        let guest = Arc::new(Guest {
            events,
            pending: SyncMutex::default(),
            next_rpc: AtomicU64::new(0),
            patience: config.timeout,
        });
        let (own, listener, runtime) = (ResourceId(own), guest.clone(), &self.host.runtime);
        let manager = if sender {
            HeartbeatManager::sender(own, config, listener, runtime)
        } else {
            HeartbeatManager::receiver(own, config, listener, runtime)
        };
        let manager = Manager { manager, guest, events: Arc::new(Mutex::new(receiver)), targets: 0 };
        self.hold(manager, MANAGER_BYTES)
    }

    fn monitor(&mut self, handle: Resource<Manager>, target: String) -> wasmtime::Result<()> {
        let Manager { manager, guest, .. } = self.table.get(&handle)?;
        let id = ResourceId(target);
        let new = manager.last_heartbeat_from(&id).is_none();
        manager.monitor_target(id.clone(), Arc::new(Target { id, guest: guest.clone() }));
        if new {
            self.charge(TARGET_BYTES)?;
            self.table.get_mut(&handle)?.targets += 1;
        }
        Ok(())
    }

    fn unmonitor(&mut self, handle: Resource<Manager>, target: String) -> wasmtime::Result<()> {
        let manager = self.table.get_mut(&handle)?;
        let id = ResourceId(target);
        if manager.manager.last_heartbeat_from(&id).is_some() {
            manager.manager.unmonitor_target(&id);
            manager.targets -= 1;
            self.refund(TARGET_BYTES);
        }
        Ok(())
    }

    fn heartbeat_from(&mut self, manager: Resource<Manager>, target: String) -> wasmtime::Result<()> {
        self.table.get(&manager)?.manager.receive_heartbeat(&ResourceId(target), ());
        Ok(())
    }

    fn requested_by(&mut self, manager: Resource<Manager>, target: String) -> wasmtime::Result<()> {
        self.table.get(&manager)?.manager.request_heartbeat(&ResourceId(target), ());
        Ok(())
    }

    fn report(
        &mut self,
        manager: Resource<Manager>,
        rpc: u64,
        outcome: Result<(), WitRpcError>,
    ) -> wasmtime::Result<()> {
        let guest = &self.table.get(&manager)?.guest;
        let waiting = guest.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&rpc);
        if let Some(waiting) = waiting {
            let _ = waiting.send(outcome.map_err(RpcError::from));
        }
        Ok(())
    }

    fn drop(&mut self, manager: Resource<Manager>) -> wasmtime::Result<()> {
        let manager = self.release(manager, MANAGER_BYTES)?;
        self.refund(manager.targets * TARGET_BYTES);
        Ok(())
    }
}

impl<T> heartbeats::HostHeartbeatManagerWithStore<T> for HasSelf<StoreData> {
    async fn next_event(accessor: &Accessor<T, Self>, manager: Resource<Manager>) -> HeartbeatEvent {
        let Some(events) = accessor.with(|mut access| Some(access.get().table.get(&manager).ok()?.events.clone()))
        else {
            return std::future::pending().await;
        };
        let Some(event) = events.lock().await.recv().await else { return std::future::pending().await };
        if matches!(event, HeartbeatEvent::TimedOut(_) | HeartbeatEvent::Unreachable(_)) {
            // The manager stopped monitoring the target: it holds no more for it.
            accessor.with(|mut access| {
                let data = access.get();
                if let Ok(manager) = data.table.get_mut(&manager) {
                    manager.targets -= 1;
                    data.refund(TARGET_BYTES);
                }
            });
        }
        event
    }
}
