//! What one connection from another host may have waiting on this host:
//! replies not yet written and calls waiting for room in a full mailbox,
//! counted in bytes. Past the limit the host stops reading the connection,
//! so a peer that does not read its replies, or floods an endpoint that
//! cannot keep up, holds up only itself (TCP pushes back on it), and the
//! host's memory stays bounded.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Bytes a connection has waiting, against its limit.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicUsize,
    limit: usize,
    freed: Notify,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self { used: AtomicUsize::new(0), limit, freed: Notify::new() }
    }

    /// `bytes` more are waiting.
    pub(crate) fn take(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// `bytes` no longer are.
    pub(crate) fn give(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.freed.notify_one();
    }

    /// Waits until less than the limit is waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub(crate) async fn below_limit(&self) {
        loop {
            let freed = self.freed.notified();
            if self.used.load(Ordering::Acquire) < self.limit {
                return;
            }
            freed.await;
        }
    }
}
