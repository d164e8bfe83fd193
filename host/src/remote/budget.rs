//! What one connection from another host may have waiting on this host:
//! replies not yet written and calls waiting for room in a full mailbox,
//! counted in bytes. Past the limit the host stops reading the connection,
//! so a peer that does not read its replies, or floods an endpoint that
//! cannot keep up, holds up only itself (TCP pushes back on it).
//!
//! Asks read before the limit was reached still reply; a peer that reads
//! none of them would let those replies pile up without end. Past
//! [`OVERFLOW`] times the limit the connection is closed, and what waited
//! on it is dropped: the host's memory stays bounded whatever the peer does.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many times its limit a connection may have waiting before it is
/// closed.
pub(crate) const OVERFLOW: usize = 4;

/// Bytes a connection has waiting, against its limit.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicUsize,
    limit: usize,
    freed: Notify,
    /// Cancelled once more than [`OVERFLOW`] times the limit waits.
    overflowed: CancellationToken,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self { used: AtomicUsize::new(0), limit, freed: Notify::new(), overflowed: CancellationToken::new() }
    }

    /// `bytes` more are waiting.
    pub(crate) fn take(&self, bytes: usize) {
        let used = self.used.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if used > self.limit.saturating_mul(OVERFLOW) {
            self.overflowed.cancel();
        }
    }

    /// Completes once the connection has more waiting than it may ever
    /// have: it must close.
    pub(crate) async fn overflowed(&self) -> usize {
        self.overflowed.cancelled().await;
        self.used.load(Ordering::Acquire)
    }

    /// `bytes` no longer are.
    pub(crate) fn give(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        // Only the reader waits, and only at the limit.
        if before >= self.limit && before - bytes < self.limit {
            self.freed.notify_one();
        }
    }

    /// Waits until less than the limit is waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub(crate) async fn below_limit(&self) {
        while self.used.load(Ordering::Acquire) >= self.limit {
            let freed = self.freed.notified();
            // Checked again once the waiter exists, so a release between
            // the two checks is not missed.
            if self.used.load(Ordering::Acquire) < self.limit {
                return;
            }
            freed.await;
        }
    }
}
