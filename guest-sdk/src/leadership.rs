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
