//! Heartbeats (Flink's `HeartbeatManager`): how two components that depend
//! on each other (a coordinator and its workers, in both directions)
//! notice that the other is gone.
//!
//! Each side monitors its targets. The sender side asks every target for a
//! heartbeat each interval, with a payload; a receiver that is asked
//! answers with a heartbeat and its own payload. Every heartbeat from a
//! target resets its timeout; a target silent for the whole timeout is
//! reported lost. A target whose heartbeat RPCs find it unreachable
//! several times in a row is reported at once, without waiting for the
//! timeout.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::HeartbeatConfig;
use crate::error::RpcError;

/// Names a heartbeat participant (Flink's `ResourceID`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub String);

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The component's side of heartbeats: what it learns and what it sends.
/// `I` is the payload it receives, `O` the payload it sends.
pub trait HeartbeatListener<I, O>: Send + Sync + 'static {
    /// `target` sent nothing for the whole heartbeat timeout.
    fn notify_heartbeat_timeout(&self, target: &ResourceId);
    /// Heartbeat RPCs to `target` found it unreachable too many times in a
    /// row.
    fn notify_target_unreachable(&self, target: &ResourceId);
    /// A heartbeat from `target` carried `payload`.
    fn report_payload(&self, target: &ResourceId, payload: I);
    /// The payload to send to `target` with the next heartbeat.
    fn retrieve_payload(&self, target: &ResourceId) -> O;
}

/// How heartbeats reach a target: usually two gateway functions of the
/// target's endpoint (Flink's `HeartbeatTarget`). An error from either
/// counts as a failed heartbeat RPC if it says the target is unreachable.
pub trait HeartbeatTarget<O>: Send + Sync + 'static {
    /// Sends a heartbeat to the target.
    fn receive_heartbeat(&self, from: &ResourceId, payload: O) -> BoxFuture<'static, Result<(), RpcError>>;
    /// Asks the target to answer with a heartbeat of its own.
    fn request_heartbeat(&self, from: &ResourceId, payload: O) -> BoxFuture<'static, Result<(), RpcError>>;
}

/// Monitors heartbeat targets. The sender side (made with
/// [`HeartbeatManager::sender`]) also asks them for heartbeats each
/// interval. Dropping the manager stops all of it.
pub struct HeartbeatManager<I, O> {
    inner: Arc<Inner<I, O>>,
    _stop: DropGuard,
}

struct Inner<I, O> {
    own: ResourceId,
    config: HeartbeatConfig,
    /// Where its timers and RPCs run.
    runtime: Handle,
    listener: Arc<dyn HeartbeatListener<I, O>>,
    monitors: Mutex<HashMap<ResourceId, Monitor<O>>>,
    stop: CancellationToken,
}

struct Monitor<O> {
    target: Arc<dyn HeartbeatTarget<O>>,
    last_heartbeat: Instant,
    /// Heartbeat RPCs in a row that found the target unreachable.
    failed_rpcs: u32,
    /// Tells this monitor from a later one for the same target.
    generation: u64,
}

impl<I, O> fmt::Debug for HeartbeatManager<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeartbeatManager")
            .field("own", &self.inner.own)
            .field("config", &self.inner.config)
            .field("targets", &self.inner.lock().len())
            .finish()
    }
}

impl<I: Send + 'static, O: Send + 'static> HeartbeatManager<I, O> {
    /// A receiver side: it answers heartbeat requests and watches for
    /// heartbeats, but asks for none. Its timers run on `runtime`.
    pub fn receiver(
        own: ResourceId,
        config: HeartbeatConfig,
        listener: Arc<dyn HeartbeatListener<I, O>>,
        runtime: &Handle,
    ) -> Self {
        let stop = CancellationToken::new();
        let runtime = runtime.clone();
        let inner = Arc::new(Inner { own, config, runtime, listener, monitors: Mutex::default(), stop: stop.clone() });
        Self { inner, _stop: stop.drop_guard() }
    }

    /// A sender side: a receiver side that also asks every target for a
    /// heartbeat each interval. Its timers run on `runtime`.
    pub fn sender(
        own: ResourceId,
        config: HeartbeatConfig,
        listener: Arc<dyn HeartbeatListener<I, O>>,
        runtime: &Handle,
    ) -> Self {
        let manager = Self::receiver(own, config, listener, runtime);
        manager.inner.runtime.spawn(request_heartbeats(manager.inner.clone()));
        manager
    }

    /// Starts watching `target`; its timeout starts now. Monitoring a
    /// target again replaces the old monitor.
    pub fn monitor_target(&self, id: ResourceId, target: Arc<dyn HeartbeatTarget<O>>) {
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let generation = GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let monitor = Monitor { target, last_heartbeat: Instant::now(), failed_rpcs: 0, generation };
        self.inner.lock().insert(id.clone(), monitor);
        self.inner.runtime.spawn(watch_timeout(self.inner.clone(), id, generation));
    }

    /// Stops watching `target`.
    pub fn unmonitor_target(&self, target: &ResourceId) {
        self.inner.lock().remove(target);
    }

    /// When `target`'s last heartbeat arrived (or its monitoring began).
    pub fn last_heartbeat_from(&self, target: &ResourceId) -> Option<Instant> {
        self.inner.lock().get(target).map(|monitor| monitor.last_heartbeat)
    }

    /// A heartbeat from `from` with `payload` (what a `receive-heartbeat`
    /// gateway function hands the manager). Ignored unless `from` is
    /// monitored.
    pub fn receive_heartbeat(&self, from: &ResourceId, payload: I) {
        if self.inner.heard_from(from).is_some() {
            self.inner.listener.report_payload(from, payload);
        }
    }

    /// A request for a heartbeat from `from` with `payload`: counts as a
    /// heartbeat from it, and is answered with one. Ignored unless `from` is
    /// monitored.
    pub fn request_heartbeat(&self, from: &ResourceId, payload: I) {
        if let Some(target) = self.inner.heard_from(from) {
            self.inner.listener.report_payload(from, payload);
            let answer = self.inner.listener.retrieve_payload(from);
            let sent = target.receive_heartbeat(&self.inner.own, answer);
            self.inner.runtime.spawn(report_rpc(self.inner.clone(), from.clone(), sent));
        }
    }
}

impl<I, O> Inner<I, O> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceId, Monitor<O>>> {
        self.monitors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resets `from`'s timeout; its target if it is monitored.
    fn heard_from(&self, from: &ResourceId) -> Option<Arc<dyn HeartbeatTarget<O>>> {
        let mut monitors = self.lock();
        let monitor = monitors.get_mut(from)?;
        monitor.last_heartbeat = Instant::now();
        Some(monitor.target.clone())
    }

    /// Stops monitoring `id` if `lost` says so, then tells the listener
    /// with `notify` (outside the lock, so it may call the manager).
    fn declare_lost(&self, id: &ResourceId, lost: impl FnOnce(&mut Monitor<O>) -> bool, notify: impl FnOnce()) {
        let is_lost = {
            let mut monitors = self.lock();
            let is_lost = monitors.get_mut(id).is_some_and(lost);
            if is_lost {
                monitors.remove(id);
            }
            is_lost
        };
        if is_lost {
            notify();
        }
    }
}

/// Declares `target` lost once it has been silent for the timeout.
async fn watch_timeout<I: Send + 'static, O: Send + 'static>(
    inner: Arc<Inner<I, O>>,
    target: ResourceId,
    generation: u64,
) {
    let timeout = inner.config.timeout;
    loop {
        let due = match inner.lock().get(&target) {
            Some(monitor) if monitor.generation == generation => monitor.last_heartbeat + timeout,
            _ => return,
        };
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = inner.stop.cancelled() => return,
        }
        let mut timed_out = false;
        inner.declare_lost(
            &target,
            |monitor| {
                timed_out = monitor.generation == generation && monitor.last_heartbeat + timeout <= Instant::now();
                timed_out
            },
            || {
                tracing::info!(target = %target, ?timeout, "heartbeat timed out");
                inner.listener.notify_heartbeat_timeout(&target);
            },
        );
        if timed_out {
            return;
        }
    }
}

/// The sender side's loop: a heartbeat request to every target each
/// interval.
async fn request_heartbeats<I: Send + 'static, O: Send + 'static>(inner: Arc<Inner<I, O>>) {
    let mut interval = tokio::time::interval(inner.config.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = inner.stop.cancelled() => return,
        }
        let targets: Vec<_> = inner.lock().iter().map(|(id, monitor)| (id.clone(), monitor.target.clone())).collect();
        for (id, target) in targets {
            let payload = inner.listener.retrieve_payload(&id);
            let sent = target.request_heartbeat(&inner.own, payload);
            inner.runtime.spawn(report_rpc(inner.clone(), id, sent));
        }
    }
}

/// Counts a heartbeat RPC's outcome against its target.
async fn report_rpc<I: Send + 'static, O: Send + 'static>(
    inner: Arc<Inner<I, O>>,
    id: ResourceId,
    rpc: BoxFuture<'static, Result<(), RpcError>>,
) {
    let outcome = tokio::select! {
        outcome = rpc => outcome,
        () = inner.stop.cancelled() => return,
    };
    let threshold = inner.config.rpc_failure_threshold;
    match outcome {
        Err(
            error @ (RpcError::Unreachable { .. } | RpcError::EndpointFailed { .. } | RpcError::UnknownEndpoint { .. }),
        ) => {
            tracing::debug!(target = %id, %error, "heartbeat RPC failed");
            inner.declare_lost(
                &id,
                |monitor| {
                    monitor.failed_rpcs += 1;
                    threshold > 0 && monitor.failed_rpcs >= threshold
                },
                || {
                    tracing::info!(target = %id, failures = threshold, "heartbeat target unreachable");
                    inner.listener.notify_target_unreachable(&id);
                },
            );
        }
        // A slow answer is the timeout's business, not a failed RPC.
        Err(_) => {}
        Ok(()) => {
            if let Some(monitor) = inner.lock().get_mut(&id) {
                monitor.failed_rpcs = 0;
            }
        }
    }
}
