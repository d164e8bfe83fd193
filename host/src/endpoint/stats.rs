//! What an endpoint has served and what memory it holds: counters its
//! main loop and its store bump, read by anyone (the CLI's report, tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What an endpoint has served, counted by its main loop, and the memory
/// its store reports.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    asks: AtomicU64,
    tells: AtomicU64,
    tasks: AtomicU64,
    batches: AtomicU64,
    batched: AtomicU64,
    /// Shared with the store, which keeps it current.
    memory: Arc<MemoryUse>,
}

/// The memory an endpoint holds against its memory cap, as its store
/// last reported it.
#[derive(Debug, Default)]
pub(crate) struct MemoryUse {
    linear: AtomicU64,
    held: AtomicU64,
}

impl MemoryUse {
    /// The guest's linear memory is `bytes` now.
    pub(crate) fn linear(&self, bytes: u64) {
        self.linear.store(bytes, Ordering::Relaxed);
    }

    /// The host holds `bytes` for the guest now.
    pub(crate) fn held(&self, bytes: u64) {
        self.held.store(bytes, Ordering::Relaxed);
    }
}

/// A snapshot of what an endpoint has served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Asks answered.
    pub asks: u64,
    /// Tells handled.
    pub tells: u64,
    /// Scheduled main-thread tasks run.
    pub tasks: u64,
    /// Batches of queued calls handed to the guest, one guest task each.
    pub batches: u64,
    /// Asks and tells handed over in those batches.
    pub batched: u64,
    /// Bytes of linear memory the guest has.
    pub linear_memory: u64,
    /// Bytes the host holds for it (waiting tasks, handles), counted
    /// against its memory cap with its linear memory.
    pub host_held: u64,
}

impl Counters {
    /// Counters from zero, with the memory use the endpoint's store reports.
    pub(crate) fn new(memory: Arc<MemoryUse>) -> Self {
        Self { memory, ..Self::default() }
    }

    pub(crate) fn ask(&self) {
        self.asks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn tell(&self) {
        self.tells.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn task(&self) {
        self.tasks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn batch(&self, calls: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched.fetch_add(calls as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> EndpointStats {
        EndpointStats {
            asks: self.asks.load(Ordering::Relaxed),
            tells: self.tells.load(Ordering::Relaxed),
            tasks: self.tasks.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batched: self.batched.load(Ordering::Relaxed),
            linear_memory: self.memory.linear.load(Ordering::Relaxed),
            host_held: self.memory.held.load(Ordering::Relaxed),
        }
    }
}
