//! The caller's side of endpoints: state, mailbox messages, references and
//! the directory that finds them.

mod actor_ref;
mod directory;
mod lifecycle;
mod mailbox;
mod stats;

pub(crate) use self::actor_ref::{ActorRef, Channels};
pub(crate) use self::directory::Directory;
pub use self::lifecycle::{Lifecycle, Termination};
pub(crate) use self::mailbox::{Call, Control, Outcome, Reply, ReplyTo, SwapOrder, serving_here};
pub use self::stats::EndpointStats;
pub(crate) use self::stats::MemoryUse;
