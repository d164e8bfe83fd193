//! The state each endpoint's wasmtime [`Store`] carries, and the limits that
//! keep one endpoint from harming the others.

use std::sync::Arc;
use std::time::Duration;

use slab::Slab;
use tokio::sync::mpsc;
use wasmtime::component::ResourceTable;
use wasmtime::{CallHook, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::clients::Connection;
use super::stdio::GuestOutput;
use crate::fencing::FencingToken;
use crate::route::Connector;

/// A task the guest scheduled onto its own main thread.
#[derive(Debug)]
pub(crate) struct ScheduledTask {
    /// The guest's id for the task, handed back to `main-thread.run`.
    pub task: u64,
    /// How long to wait before running it.
    pub delay: Duration,
}

/// Who the endpoint is, for the `runtime` interface.
#[derive(Debug)]
pub(crate) struct Identity {
    pub id: Arc<str>,
    pub address: Arc<str>,
    pub token: Option<FencingToken>,
    /// The endpoint's settings, for `runtime.config`.
    pub config: Arc<[(String, String)]>,
}

/// Per-endpoint limits on guest execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Cap on linear memory, in bytes.
    pub memory_cap: u64,
    /// CPU deadline in epoch ticks.
    pub cpu_deadline_ticks: u64,
    /// The CPU deadline, for messages.
    pub cpu_deadline: Duration,
}

/// A deadline beyond any run, yet far from overflowing the epoch counter.
const MAX_DEADLINE_TICKS: u64 = u64::MAX / 2;

impl Limits {
    /// Limits for a memory cap and a CPU deadline checked every
    /// `epoch_tick`; the deadline is rounded up to whole ticks.
    pub(crate) fn new(memory_cap: u64, cpu_deadline: Duration, epoch_tick: Duration) -> Self {
        let ticks = cpu_deadline.as_nanos().div_ceil(epoch_tick.as_nanos().max(1));
        let cpu_deadline_ticks = u64::try_from(ticks).unwrap_or(u64::MAX).clamp(1, MAX_DEADLINE_TICKS);
        Self { memory_cap, cpu_deadline_ticks, cpu_deadline }
    }
}

/// The data of an endpoint's store.
pub(crate) struct StoreData {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub identity: Identity,
    /// Where run-async tasks go; the endpoint's main loop receives them.
    pub tasks: mpsc::UnboundedSender<ScheduledTask>,
    /// Client handles the guest holds; a handle's rep is its key.
    pub connections: Slab<Connection>,
    /// Resolves addresses when the guest connects.
    pub connector: Arc<Connector>,
    pub limits: Limits,
    /// Set when a limit ended the guest, to name the cause.
    pub exceeded: Option<LimitExceeded>,
}

/// Which limit stopped the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitExceeded {
    /// It ran past its CPU deadline.
    CpuDeadline,
    /// It tried to grow its memory to `wanted` bytes.
    Memory { wanted: u64 },
}

impl std::fmt::Debug for StoreData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreData").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Enforces the memory cap: growing past it traps, which ends the endpoint
/// with a clear cause instead of an allocation failure deep in the guest.
impl ResourceLimiter for StoreData {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let wanted = desired as u64;
        if wanted > self.limits.memory_cap {
            self.exceeded = Some(LimitExceeded::Memory { wanted });
            wasmtime::bail!("memory cap of {} bytes exceeded: wanted {wanted} bytes", self.limits.memory_cap);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Everything a new store needs besides the engine.
pub(crate) struct StoreParts {
    pub identity: Identity,
    pub tasks: mpsc::UnboundedSender<ScheduledTask>,
    pub connector: Arc<Connector>,
    pub limits: Limits,
}

/// Creates an endpoint's store with its WASI context, memory cap and CPU
/// deadline.
///
/// The CPU deadline works with epoch interruption: every time the host
/// enters guest code, the deadline is reset to `cpu_deadline_ticks` epochs
/// ahead; if guest code is still running when the epoch passes it, the guest
/// traps. Time spent in the host (awaiting a reply, say) does not count.
pub(crate) fn new_store(engine: &wasmtime::Engine, parts: StoreParts) -> Store<StoreData> {
    let StoreParts { identity, tasks, connector, limits } = parts;
    let wasi = WasiCtx::builder()
        .stdout(GuestOutput::stdout(identity.id.clone()))
        .stderr(GuestOutput::stderr(identity.id.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let data = StoreData {
        wasi,
        table: ResourceTable::new(),
        identity,
        tasks,
        connections: Slab::new(),
        connector,
        limits,
        exceeded: None,
    };
    let mut store = Store::new(engine, data);
    store.limiter(|data| data);
    store.set_epoch_deadline(limits.cpu_deadline_ticks);
    store.epoch_deadline_callback(|mut store| {
        store.data_mut().exceeded = Some(LimitExceeded::CpuDeadline);
        wasmtime::bail!("CPU deadline exceeded")
    });
    store.call_hook(|mut store, hook| {
        if matches!(hook, CallHook::CallingWasm) {
            let ticks = store.data().limits.cpu_deadline_ticks;
            store.set_epoch_deadline(ticks);
        }
        Ok(())
    });
    store
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_deadline_rounds_up_to_whole_ticks_without_overflow() {
        let tick = Duration::from_millis(10);
        assert_eq!(Limits::new(1, Duration::from_millis(25), tick).cpu_deadline_ticks, 3);
        assert_eq!(Limits::new(1, Duration::ZERO, tick).cpu_deadline_ticks, 1);
        assert_eq!(Limits::new(1, Duration::MAX, tick).cpu_deadline_ticks, MAX_DEADLINE_TICKS);
    }
}
