//! The host's events: one stream of what happens to endpoints, connections
//! and leadership, for whoever watches the host (the CLI, the REST API, a
//! dashboard, tests).
//!
//! Subscribers get every event sent after they subscribed. The stream is a
//! bounded broadcast: a subscriber that falls more than [`CAPACITY`] events
//! behind loses the oldest ones and learns how many it missed, so a slow
//! watcher never holds the host up.

use std::fmt;

use tokio::sync::broadcast;

use crate::error::EndpointFailure;
use crate::fencing::FencingToken;

/// Events a subscriber may fall behind by before it misses some.
pub const CAPACITY: usize = 1024;

/// Something that happened on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent {
    /// An endpoint started: it serves calls now.
    EndpointStarted {
        /// Its id.
        id: String,
        /// Its component.
        component: String,
        /// Its address.
        address: String,
    },
    /// An endpoint terminated: cleanly (`failure` is `None`) or not.
    EndpointTerminated {
        /// Its id.
        id: String,
        /// Why it failed, if it did.
        failure: Option<EndpointFailure>,
    },
    /// An endpoint's component was swapped: it runs `to` now.
    EndpointSwapped {
        /// Its id.
        id: String,
        /// The component it ran.
        from: String,
        /// The component it runs now.
        to: String,
        /// Whether its state was carried over (or the new component
        /// started fresh).
        carried: bool,
        /// How long no message was delivered to it.
        pause: std::time::Duration,
    },
    /// A swap of an endpoint's component was refused; it runs on as it was
    /// (unless `reason` says it terminated).
    SwapRefused {
        /// Its id.
        id: String,
        /// The component refused.
        component: String,
        /// Why.
        reason: String,
    },
    /// A connection with another host opened.
    ConnectionOpened {
        /// The other host: `host:port` it listens on (outbound) or the
        /// socket address it called from (inbound).
        peer: String,
        /// Whether the other host opened it.
        inbound: bool,
    },
    /// A connection with another host closed.
    ConnectionClosed {
        /// The other host, as when it opened.
        peer: String,
        /// Whether the other host had opened it.
        inbound: bool,
        /// Why it closed.
        reason: String,
    },
    /// This host's contender for `name` was granted or lost leadership.
    LeadershipChanged {
        /// The role elected for.
        name: String,
        /// The session it now leads under; `None`: it no longer leads.
        session: Option<FencingToken>,
    },
}

impl fmt::Display for HostEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostEvent::EndpointStarted { id, component, address } => {
                write!(f, "endpoint `{id}` ({component}) started at {address}")
            }
            HostEvent::EndpointTerminated { id, failure: None } => write!(f, "endpoint `{id}` terminated"),
            HostEvent::EndpointTerminated { id, failure: Some(failure) } => {
                write!(f, "endpoint `{id}` failed: {failure}")
            }
            HostEvent::EndpointSwapped { id, from, to, carried, pause } => {
                let state = if *carried { "its state carried over" } else { "starting fresh" };
                write!(f, "endpoint `{id}` swapped from {from} to {to}, {state}, paused {pause:?}")
            }
            HostEvent::SwapRefused { id, component, reason } => {
                write!(f, "swap of endpoint `{id}` to {component} refused: {reason}")
            }
            HostEvent::ConnectionOpened { peer, inbound } => {
                write!(f, "connection {} {peer} opened", if *inbound { "from" } else { "to" })
            }
            HostEvent::ConnectionClosed { peer, inbound, reason } => {
                write!(f, "connection {} {peer} closed: {reason}", if *inbound { "from" } else { "to" })
            }
            HostEvent::LeadershipChanged { name, session: Some(session) } => {
                write!(f, "leads `{name}` under session {session}")
            }
            HostEvent::LeadershipChanged { name, session: None } => write!(f, "no longer leads `{name}`"),
        }
    }
}

/// The sending side of the stream; cheap to clone.
#[derive(Clone, Debug)]
pub struct Events {
    sender: broadcast::Sender<HostEvent>,
}

impl Default for Events {
    fn default() -> Self {
        Self { sender: broadcast::Sender::new(CAPACITY) }
    }
}

impl Events {
    /// Sends `event` to every subscriber; nobody listening is fine.
    pub fn send(&self, event: HostEvent) {
        let _ = self.sender.send(event);
    }

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HostEvent> {
        self.sender.subscribe()
    }
}
