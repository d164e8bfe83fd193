//! What an endpoint has served: counters its main loop bumps, read by
//! anyone (the CLI's report, tests).

use std::sync::atomic::{AtomicU64, Ordering};

/// What an endpoint has served, counted by its main loop.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    asks: AtomicU64,
    tells: AtomicU64,
    tasks: AtomicU64,
    batches: AtomicU64,
    batched: AtomicU64,
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
}

impl Counters {
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
        }
    }
}
