//! The state each endpoint's wasmtime [`Store`] carries, and the limits that
//! keep one endpoint from harming the others.
//!
//! The memory cap covers what the host holds for a guest as well as the
//! guest's linear memory: waiting scheduled tasks, open handles and the
//! like are charged through [`StoreData::charge`], so a guest cannot grow
//! the host without bound by asking it to keep things.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{CallHook, ResourceLimiter, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::HostContext;
use super::stdio::GuestOutput;
use super::supervision::Children;
use crate::config::LentDirectory;
use crate::endpoint::MemoryUse;
use crate::error::SpawnError;
use crate::fencing::FencingToken;

/// Who the endpoint is, for the `runtime` interface and for messages, and
/// where its memory use is reported.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub id: Arc<str>,
    /// Where the store reports the memory the endpoint holds.
    pub memory_use: Arc<MemoryUse>,
    pub address: Arc<str>,
    pub token: Option<FencingToken>,
    /// The endpoint's settings, for `runtime.config`.
    pub config: Arc<[(String, String)]>,
    /// The host directories it may use, which it may lend its children.
    pub directories: Arc<[LentDirectory]>,
}

/// Per-endpoint limits on guest execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Cap on linear memory plus what the host holds for the guest, in bytes.
    pub memory_cap: u64,
    /// CPU deadline in epoch ticks.
    pub cpu_deadline_ticks: u64,
    /// The CPU deadline, for messages.
    pub cpu_deadline: Duration,
    /// Wasmtime's budget for one crossing of values out of the guest (its
    /// "hostcall fuel"): enough for any message up to `max-message-size`.
    pub hostcall_fuel: usize,
}

/// A deadline beyond any run, yet far from overflowing the epoch counter.
const MAX_DEADLINE_TICKS: u64 = u64::MAX / 2;

impl Limits {
    /// Limits for a memory cap, a CPU deadline checked every `epoch_tick`
    /// (rounded up to whole ticks) and messages up to `message_limit` bytes.
    pub(crate) fn new(memory_cap: u64, cpu_deadline: Duration, epoch_tick: Duration, message_limit: usize) -> Self {
        let ticks = cpu_deadline.as_nanos().div_ceil(epoch_tick.as_nanos().max(1));
        let cpu_deadline_ticks = u64::try_from(ticks).unwrap_or(u64::MAX).clamp(1, MAX_DEADLINE_TICKS);
        Self { memory_cap, cpu_deadline_ticks, cpu_deadline, hostcall_fuel: hostcall_fuel(message_limit) }
    }
}

/// Hostcall fuel for messages up to `message_limit` bytes. Wasmtime charges
/// the size of the host's copy: a byte per byte for a byte list or string
/// passed whole, but a whole `Val` (32 bytes) per element of a list lifted
/// as dynamic values, a nested `list<u8>` included. The default budget (128
/// MiB) let a 5 MiB byte list trap the endpoint that returned it; this one
/// lets every message within the limit through, and the host refuses larger
/// ones itself, with an error for the caller instead of a trap.
fn hostcall_fuel(message_limit: usize) -> usize {
    const HEADROOM: usize = 1 << 20;
    message_limit.saturating_mul(size_of::<wasmtime::component::Val>()).saturating_add(HEADROOM)
}

/// Which limit stopped the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitExceeded {
    /// It ran past its CPU deadline.
    CpuDeadline,
    /// Its linear memory plus what the host holds for it would have grown
    /// to `wanted` bytes, `held` of them the host's.
    Memory { wanted: u64, held: u64 },
}

/// The data of an endpoint's store.
pub(crate) struct StoreData {
    pub wasi: WasiCtx,
    /// Resources the guest holds handles to: WASI's and the capabilities'.
    pub table: ResourceTable,
    pub identity: Identity,
    /// What the service lends every endpoint.
    pub host: Arc<HostContext>,
    pub limits: Limits,
    /// Set when a limit ended the guest, to name the cause.
    pub exceeded: Option<LimitExceeded>,
    /// Bytes of linear memory the guest has.
    memory: u64,
    /// Bytes the host holds on the guest's behalf.
    held: u64,
    /// The state each capability the component uses keeps per endpoint.
    states: Vec<Box<dyn Any + Send>>,
    /// Recent lines of the guest's stderr, where a guest's panic message
    /// lands, for the termination cause.
    pub stderr: GuestOutput,
    /// The endpoints it started (`weir:rpc/supervision`), and those of the
    /// instance it replaced, which it is to adopt.
    pub children: Children,
}

impl std::fmt::Debug for StoreData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreData").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl StoreData {
    /// The data of a store made for the endpoint `parts` describe.
    fn new(parts: StoreParts) -> Result<Self, SpawnError> {
        let StoreParts { identity, host, limits, states } = parts;
        let stderr = GuestOutput::stderr(identity.id.clone());
        let mut wasi = WasiCtx::builder();
        wasi.stdout(GuestOutput::stdout(identity.id.clone()))
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for directory in identity.directories.iter() {
            let perms = if directory.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            wasi.preopened_dir(&directory.host, &directory.guest, perms).map_err(|error| SpawnError::Directory {
                id: identity.id.to_string(),
                host: directory.host.clone(),
                guest: directory.guest.clone(),
                reason: format!("{error:#}"),
            })?;
        }
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            identity,
            host,
            limits,
            exceeded: None,
            memory: 0,
            held: 0,
            states,
            stderr,
            children: Children::default(),
        })
    }

    /// Bytes of linear memory the guest has.
    pub(crate) fn linear_memory(&self) -> u64 {
        self.memory
    }

    /// The state of the capability that keeps a `T`, if the component uses
    /// it.
    pub(crate) fn state<T: Any>(&mut self) -> Option<&mut T> {
        self.states.iter_mut().find_map(|state| state.downcast_mut())
    }

    /// Takes the state of the capability that keeps a `T` out of the store,
    /// to hand it to another (a swap hands the scheduled tasks on).
    pub(crate) fn take_state<T: Any>(&mut self) -> Option<Box<T>> {
        let position = self.states.iter().position(|state| state.is::<T>())?;
        self.states.swap_remove(position).downcast().ok()
    }

    /// What another instance of the endpoint (after a swap) is made with:
    /// who it is, what the service lends it and its limits, with `states`
    /// for the capabilities the new component uses.
    pub(crate) fn parts(&self, states: Vec<Box<dyn Any + Send>>) -> StoreParts {
        StoreParts { identity: self.identity.clone(), host: self.host.clone(), limits: self.limits, states }
    }

    /// Charges `bytes` the host is about to hold for the guest against its
    /// memory cap.
    ///
    /// # Errors
    ///
    /// Past the cap: the guest traps, ending the endpoint with
    /// memory-cap-exceeded.
    pub(crate) fn charge(&mut self, bytes: u64) -> wasmtime::Result<()> {
        let held = self.held.saturating_add(bytes);
        let wanted = self.memory.saturating_add(held);
        if wanted > self.limits.memory_cap {
            self.exceeded = Some(LimitExceeded::Memory { wanted, held });
            wasmtime::bail!(
                "memory cap of {} bytes exceeded: the host would hold {held} bytes for the guest",
                self.limits.memory_cap
            );
        }
        self.held = held;
        self.identity.memory_use.held(held);
        Ok(())
    }

    /// Returns `bytes` charged earlier: the host no longer holds them.
    pub(crate) fn refund(&mut self, bytes: u64) {
        self.held = self.held.saturating_sub(bytes);
        self.identity.memory_use.held(self.held);
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
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let memory = self.memory + (desired - current) as u64;
        let wanted = memory.saturating_add(self.held);
        if wanted > self.limits.memory_cap {
            self.exceeded = Some(LimitExceeded::Memory { wanted, held: self.held });
            wasmtime::bail!("memory cap of {} bytes exceeded: wanted {wanted} bytes", self.limits.memory_cap);
        }
        self.memory = memory;
        self.identity.memory_use.linear(memory);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Everything a new store needs besides the engine.
pub(crate) struct StoreParts {
    pub identity: Identity,
    pub host: Arc<HostContext>,
    pub limits: Limits,
    /// The per-endpoint states of the capabilities the component uses.
    pub states: Vec<Box<dyn Any + Send>>,
}

/// Creates an endpoint's store with its WASI context, memory cap and CPU
/// deadline.
///
/// The CPU deadline works with epoch interruption: every time the host
/// enters guest code, the deadline is reset to `cpu_deadline_ticks` epochs
/// ahead; if guest code is still running when the epoch passes it, the guest
/// traps. Time spent in the host (awaiting a reply, say) does not count.
///
/// # Errors
///
/// A directory to lend that cannot be opened.
pub(crate) fn new_store(engine: &wasmtime::Engine, parts: StoreParts) -> Result<Store<StoreData>, SpawnError> {
    let data = StoreData::new(parts)?;
    let mut store = Store::new(engine, data);
    apply_limits(&mut store);
    store.limiter(|data| data);
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
    Ok(store)
}

/// Gives a store whose instance was made ahead of its endpoint (and has
/// run no guest code) the endpoint `parts` describe, as if it had been made
/// for it: its identity, WASI context, limits and capability states. The
/// linear memory the instance has counts against the new memory cap.
///
/// # Errors
///
/// A directory to lend that cannot be opened.
pub(crate) fn adopt(store: &mut Store<StoreData>, parts: StoreParts) -> Result<(), SpawnError> {
    let mut data = StoreData::new(parts)?;
    data.memory = store.data().memory;
    data.identity.memory_use.linear(data.memory);
    *store.data_mut() = data;
    apply_limits(store);
    Ok(())
}

/// Sets what the store itself keeps of its data's limits: the fuel of a
/// host call and the first CPU deadline. The limiter and the hooks read
/// the limits from the data at each use.
fn apply_limits(store: &mut Store<StoreData>) {
    let limits = store.data().limits;
    store.set_hostcall_fuel(limits.hostcall_fuel);
    store.set_epoch_deadline(limits.cpu_deadline_ticks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_deadline_rounds_up_to_whole_ticks_without_overflow() {
        let tick = Duration::from_millis(10);
        assert_eq!(Limits::new(1, Duration::from_millis(25), tick, 1).cpu_deadline_ticks, 3);
        assert_eq!(Limits::new(1, Duration::ZERO, tick, 1).cpu_deadline_ticks, 1);
        assert_eq!(Limits::new(1, Duration::MAX, tick, 1).cpu_deadline_ticks, MAX_DEADLINE_TICKS);
    }
}
