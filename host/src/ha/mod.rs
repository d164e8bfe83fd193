//! High availability (Flink's `HighAvailabilityServices`): leader election
//! and leader retrieval behind one interface, with three implementations.
//!
//! - [`Embedded`]: in memory, for the contenders and listeners of one
//!   process (Flink's `EmbeddedHaServices`).
//! - [`Standalone`]: fixed leader addresses from the configuration, always
//!   under [`DEFAULT_LEADER_ID`] (Flink's `StandaloneHaServices`).
//! - [`ZooKeeper`]: a leader latch and a leader node in ZooKeeper, so
//!   contenders in different processes elect one leader and everyone learns
//!   where it is (Flink's ZooKeeper HA services).
//!
//! A contender gets a [`LeaderElection`]: it is granted leadership with a
//! fresh session id, confirms it by publishing its address under that
//! session, and is told when it loses it. Listeners get a
//! [`LeaderRetrieval`] that always holds the latest confirmed leader, or none.
//! The session id is the fencing token of the leader's endpoints, so a
//! deposed leader's calls are refused wherever the new session is known.
//! [`LeadershipRunner`](crate::LeadershipRunner) ties the two together for
//! an endpoint: it runs the endpoint, fenced under the session, for as long
//! as its host leads.

mod embedded;
mod standalone;
mod store;
mod zookeeper;
mod zookeeper_store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

pub use self::embedded::Embedded;
pub use self::standalone::Standalone;
pub use self::store::{HaStore, MAX_VALUE_BYTES, MemoryStore};
pub use self::zookeeper::ZooKeeper;
use crate::config::HaConfig;
use crate::events::{Events, HostEvent};
use crate::fencing::FencingToken;

/// The session id of a leader that is never elected: standalone leaders run
/// under it (Flink's `HighAvailabilityServices.DEFAULT_LEADER_ID`, a UUID of
/// zeros).
pub const DEFAULT_LEADER_ID: FencingToken = FencingToken(uuid::Uuid::nil());

/// A confirmed leader: where it is and the session it leads under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInformation {
    /// The leader session id: the fencing token of the leader's endpoints.
    pub session: FencingToken,
    /// The address of the leader's endpoint.
    pub address: String,
}

impl LeaderInformation {
    /// The text stored for a leader: `<session> <address>`, readable with
    /// ZooKeeper's own tools.
    fn encode(&self) -> String {
        format!("{} {}", self.session, self.address)
    }

    fn decode(text: &str) -> Option<Self> {
        let (session, address) = text.split_once(' ')?;
        Some(Self { session: FencingToken(session.parse().ok()?), address: address.to_owned() })
    }
}

impl fmt::Display for LeaderInformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (session {})", self.address, self.session)
    }
}

/// What a contender is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// It leads now, under this session id, until revoked.
    Granted(FencingToken),
    /// It no longer leads: it must stop acting as leader at once.
    Revoked,
}

/// Why an HA service cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HaError {
    /// A component name must be usable as one ZooKeeper path segment.
    #[error("invalid HA component name `{0}`: it must be non-empty and contain no `/`")]
    InvalidComponent(String),
    /// A standalone cluster knows only the leaders its configuration names.
    #[error("no leader address is configured for `{0}` (standalone HA: add it to `[ha] leaders`)")]
    NoConfiguredLeader(String),
    /// A collection or key of the HA store must be one path segment.
    #[error("invalid HA store name `{0}`: a collection or key must be non-empty and contain no `/`")]
    InvalidStoreName(String),
    /// The HA store keeps small records.
    #[error(
        "a value of {size} bytes is over the HA store's limit of {limit} bytes (ZooKeeper's node limit): \
         keep the data in a file and store where it is"
    )]
    ValueTooLarge {
        /// The value's size.
        size: usize,
        /// [`MAX_VALUE_BYTES`].
        limit: usize,
    },
    /// ZooKeeper refused or failed an operation of the HA store.
    #[error("cannot {operation} `{path}` in ZooKeeper: {reason}")]
    Store {
        /// What was done: `write`, `read`, `list`, `remove`.
        operation: &'static str,
        /// The node.
        path: String,
        /// ZooKeeper's error.
        reason: String,
    },
    /// ZooKeeper could not be reached in time.
    #[error(
        "cannot reach ZooKeeper at `{quorum}` within {timeout:?} (`[ha] connection-timeout`): {reason}; \
         check `[ha] quorum` and that ZooKeeper runs"
    )]
    Unreachable {
        /// The quorum tried.
        quorum: String,
        /// How long it was tried.
        timeout: Duration,
        /// The last attempt's error.
        reason: String,
    },
}

/// Flink's `HighAvailabilityServices`: elections and retrievals by
/// role name (`coordinator`, `job-<id>`, ...).
///
/// Both calls spawn their background work on the runtime the services were
/// made with, and that work ends when the returned handle is dropped.
pub trait HaServices: Send + Sync + fmt::Debug {
    /// Waits until the services can be used (ZooKeeper: a session is
    /// established), for a host to check at startup.
    ///
    /// # Errors
    ///
    /// Why they cannot, once the configured connection timeout has passed.
    fn ready(&self) -> BoxFuture<'_, Result<(), HaError>> {
        Box::pin(async { Ok(()) })
    }

    /// Enters the election for `component` as a new contender.
    ///
    /// # Errors
    ///
    /// An invalid component name.
    fn leader_election(&self, component: &str) -> Result<LeaderElection, HaError>;

    /// Starts following the leader of `component`.
    ///
    /// # Errors
    ///
    /// An invalid component name, or a component a standalone cluster has no
    /// address for.
    fn leader_retrieval(&self, component: &str) -> Result<LeaderRetrieval, HaError>;

    /// The store of small records that outlive their writers (Flink's
    /// `StateHandleStore`): ZooKeeper's nodes, or the host's memory.
    fn store(&self) -> &dyn HaStore;
}

/// What the HA services need from their host: where to run their
/// background work, and where to report leadership changes.
#[derive(Clone, Debug)]
pub struct HaContext {
    /// The runtime their tasks run on.
    pub runtime: Handle,
    /// Where grants and revocations are reported.
    pub events: Events,
}

impl HaContext {
    /// A context on the current runtime, reporting to nobody in particular.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn current() -> Self {
        Self { runtime: Handle::current(), events: Events::default() }
    }
}

/// The HA services a configuration asks for.
pub fn from_config(config: &HaConfig, context: HaContext) -> Arc<dyn HaServices> {
    match config {
        HaConfig::Embedded => Arc::new(Embedded::new(context)),
        HaConfig::Standalone { leaders } => Arc::new(Standalone::new(leaders.clone(), context)),
        HaConfig::Zookeeper(zookeeper) => Arc::new(ZooKeeper::new(zookeeper.clone(), context)),
    }
}

/// A contender's place in an election (Flink's `LeaderElection`). Dropping
/// it leaves the election, giving up leadership if it has it.
#[derive(Debug)]
pub struct LeaderElection {
    events: mpsc::UnboundedReceiver<Leadership>,
    confirmations: mpsc::UnboundedSender<LeaderInformation>,
}

/// The implementation's side of a [`LeaderElection`].
#[derive(Debug)]
struct Contender {
    grants: Grants,
    confirmations: mpsc::UnboundedReceiver<LeaderInformation>,
}

/// How the implementation tells a contender, and the host, that it leads.
#[derive(Debug)]
struct Grants {
    name: String,
    events: mpsc::UnboundedSender<Leadership>,
    host: Events,
}

impl LeaderElection {
    fn new(name: &str, host: Events) -> (Self, Contender) {
        let (events_sender, events) = mpsc::unbounded_channel();
        let (confirmations, confirmations_receiver) = mpsc::unbounded_channel();
        let grants = Grants { name: name.to_owned(), events: events_sender, host };
        (Self { events, confirmations }, Contender { grants, confirmations: confirmations_receiver })
    }

    /// The next grant or revocation; `None` once the HA service has gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn next(&mut self) -> Option<Leadership> {
        self.events.recv().await
    }

    /// Confirms leadership under `session` by publishing `address` to the
    /// listeners (Flink's `confirmLeadership`). A confirmation for a session
    /// that is no longer current is ignored.
    pub fn confirm(&self, session: FencingToken, address: &str) {
        self.confirmer().confirm(session, address);
    }

    /// A handle that confirms for this election, usable while another task
    /// waits in [`LeaderElection::next`].
    pub fn confirmer(&self) -> Confirmer {
        Confirmer(self.confirmations.clone())
    }
}

/// Confirms leadership for one [`LeaderElection`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct Confirmer(mpsc::UnboundedSender<LeaderInformation>);

impl Confirmer {
    /// As [`LeaderElection::confirm`].
    pub fn confirm(&self, session: FencingToken, address: &str) {
        let _ = self.0.send(LeaderInformation { session, address: address.to_owned() });
    }
}

impl Grants {
    fn grant(&self, session: FencingToken) {
        self.host.send(HostEvent::LeadershipChanged { name: self.name.clone(), session: Some(session) });
        let _ = self.events.send(Leadership::Granted(session));
    }

    fn revoke(&self) {
        self.host.send(HostEvent::LeadershipChanged { name: self.name.clone(), session: None });
        let _ = self.events.send(Leadership::Revoked);
    }

    /// Completes once the contender has left the election.
    async fn left(&self) {
        self.events.closed().await;
    }
}

/// A listener's view of a component's leader (Flink's
/// `LeaderRetrievalService` with its listener): the latest confirmed leader,
/// or `None` while there is none.
#[derive(Clone, Debug)]
pub struct LeaderRetrieval {
    leader: watch::Receiver<Option<LeaderInformation>>,
}

impl LeaderRetrieval {
    /// The leader as last learned.
    pub fn current(&self) -> Option<LeaderInformation> {
        self.leader.borrow().clone()
    }

    /// Waits for the next change and returns the leader then; `None` once
    /// the retrieval has ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn changed(&mut self) -> Option<Option<LeaderInformation>> {
        self.leader.changed().await.ok()?;
        Some(self.leader.borrow_and_update().clone())
    }

    /// Waits until a leader other than `previous` (any leader, if `None`)
    /// has been confirmed, and returns it; `None` once the retrieval has
    /// ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn next_leader(&mut self, previous: Option<FencingToken>) -> Option<LeaderInformation> {
        let leader = self
            .leader
            .wait_for(|leader| leader.as_ref().is_some_and(|leader| Some(leader.session) != previous))
            .await
            .ok()?;
        leader.clone()
    }
}

/// Checks that `component` can name a leader.
fn check_component(component: &str) -> Result<(), HaError> {
    if component.is_empty() || component.contains('/') {
        Err(HaError::InvalidComponent(component.to_owned()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_information_round_trips_as_text() {
        let leader = LeaderInformation { session: FencingToken::random(), address: "weir://h:1/rm".into() };
        assert_eq!(LeaderInformation::decode(&leader.encode()), Some(leader));
        assert_eq!(LeaderInformation::decode("not-a-uuid weir://h:1/rm"), None);
        assert_eq!(LeaderInformation::decode(""), None);
    }

    #[test]
    fn component_names_are_one_path_segment() {
        check_component("coordinator").unwrap();
        assert_eq!(check_component("a/b"), Err(HaError::InvalidComponent("a/b".into())));
        assert!(check_component("").is_err());
    }
}
