//! Leader election and retrieval through the host's HA services
//! (`weir:rpc/leadership`).
//!
//! ```ignore
//! let contender = Contender::enter("resource-manager")?;
//! weir_guest::spawn(async move {
//!     while let Some(change) = contender.next().await {
//!         if let LeadershipChange::Granted(session) = change {
//!             contender.confirm(session, &weir_guest::self_address());
//!         }
//!     }
//! });
//! ```

/// The generated bindings, which endpoint crates share through
/// [`generate!`](crate::generate).
#[doc(hidden)]
pub mod wit {
    pub use crate::bindings::weir::rpc::leadership::*;
}

pub use wit::{Contender, Follower, Leader, LeadershipChange};

/// Calls `on_leader` with each new confirmed leader of `role`, in order,
/// from a task of its own, for as long as the HA services last (Flink's
/// `LeaderRetrievalListener`).
///
/// # Errors
///
/// Why the host cannot follow `role`.
pub fn on_each_leader(role: &str, mut on_leader: impl FnMut(Leader) + 'static) -> Result<(), String> {
    let follower = Follower::follow(role)?;
    crate::spawn(async move {
        let mut previous = None;
        while let Some(leader) = follower.next_leader(previous).await {
            previous = Some(leader.session);
            on_leader(leader);
        }
    });
    Ok(())
}
