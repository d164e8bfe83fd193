//! HA through ZooKeeper, as Flink's ZooKeeper HA services (a Curator leader
//! latch plus a leader node), in the layout
//! `<root>/<cluster-id>/leader/<component>/`:
//!
//! - `latch/latch-<sequence>`: one ephemeral sequential node per contender.
//!   The lowest sequence leads; every other contender watches the node just
//!   before its own, so a leader's departure wakes exactly one successor.
//! - `connection_info`: the leader's `<session> <address>`, an ephemeral
//!   node written only while the writer's latch node still exists (one
//!   ZooKeeper transaction), so a deposed leader can never overwrite it.
//!
//! Ephemeral nodes die with their ZooKeeper session, so a leader that
//! crashes, hangs, or is cut off loses its latch node after the session
//! timeout and the next contender takes over. A contender whose session
//! is lost (or, by default, merely disconnected) is revoked and enters
//! again with a new session. The HA store's nodes live beside, under
//! `<root>/<cluster-id>/store/` ([`ZooKeeperStore`]).

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use zookeeper_client as zk;

use super::zookeeper_store::ZooKeeperStore;
use super::{
    Contender, HaContext, HaError, HaServices, HaStore, LeaderElection, LeaderInformation, LeaderRetrieval,
    check_component,
};
use crate::config::ZooKeeperConfig;
use crate::fencing::FencingToken;

/// The pause before trying ZooKeeper again after a failure; it doubles
/// with each failure in a row, up to [`MAX_RETRY_PAUSE`].
const RETRY_PAUSE: Duration = Duration::from_millis(250);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// ZooKeeper-backed leader election and retrieval.
#[derive(Debug)]
pub struct ZooKeeper {
    config: ZooKeeperConfig,
    context: HaContext,
    store: ZooKeeperStore,
}

impl ZooKeeper {
    /// HA services on the quorum `config` names, their tasks on `context`'s
    /// runtime.
    pub fn new(config: ZooKeeperConfig, context: HaContext) -> Self {
        let store = ZooKeeperStore::new(config.clone());
        Self { config, context, store }
    }

    fn paths(&self, component: &str) -> Paths {
        let base = format!("{}/leader/{component}", cluster_node(&self.config));
        Paths { latch: format!("{base}/latch"), info: format!("{base}/connection_info"), component: component.into() }
    }
}

/// The cluster's node, `<root>/<cluster-id>`, under which its elections and
/// its store live.
pub(super) fn cluster_node(config: &ZooKeeperConfig) -> String {
    let root = config.root.trim_end_matches('/');
    let cluster = config.cluster_id.trim_matches('/');
    format!("{}{root}/{cluster}", if root.starts_with('/') { "" } else { "/" })
}

impl HaServices for ZooKeeper {
    fn leader_election(&self, component: &str) -> Result<LeaderElection, HaError> {
        check_component(component)?;
        let (election, contender) = LeaderElection::new(component, self.context.events.clone());
        self.context.runtime.spawn(contend(self.config.clone(), self.paths(component), contender));
        Ok(election)
    }

    fn leader_retrieval(&self, component: &str) -> Result<LeaderRetrieval, HaError> {
        check_component(component)?;
        let (leader, receiver) = watch::channel(None);
        self.context.runtime.spawn(follow(self.config.clone(), self.paths(component), leader));
        Ok(LeaderRetrieval { leader: receiver })
    }

    fn store(&self) -> &dyn HaStore {
        &self.store
    }

    /// Establishes one session within the connection timeout, logging each
    /// attempt, then closes it.
    fn ready(&self) -> BoxFuture<'_, Result<(), HaError>> {
        let config = &self.config;
        Box::pin(async move {
            let mut last_error = String::from("no attempt finished");
            let connecting = async {
                let mut retry = Retry::default();
                loop {
                    match attempt(config, "startup", retry.attempts + 1).await {
                        Ok(_client) => return,
                        Err(error) => last_error = error,
                    }
                    retry.pause().await;
                }
            };
            if tokio::time::timeout(config.connection_timeout, connecting).await.is_ok() {
                return Ok(());
            }
            Err(HaError::Unreachable {
                quorum: config.quorum.clone(),
                timeout: config.connection_timeout,
                reason: last_error,
            })
        })
    }
}

/// Where one component's election lives.
#[derive(Clone, Debug)]
struct Paths {
    component: String,
    latch: String,
    info: String,
}

/// How a session of a contender ended.
enum Outcome {
    /// The contender left the election.
    Left,
    /// The session was lost; the contender enters again with a new one.
    SessionLost,
}

/// A contender's life: one ZooKeeper session after another until it leaves.
async fn contend(config: ZooKeeperConfig, paths: Paths, mut contender: Contender) {
    loop {
        let client = tokio::select! {
            client = connect(&config, &paths.component) => client,
            () = contender.grants.left() => return,
        };
        match contend_in_session(&client, &config, &paths, &mut contender).await {
            Ok(Outcome::Left) => return,
            Ok(Outcome::SessionLost) => {}
            Err(error) => tracing::warn!(component = %paths.component, %error, "leader election failed; retrying"),
        }
        drop(client);
        Retry::default().pause().await;
    }
}

/// Enters the latch and waits for leadership, then leads, within one
/// session.
async fn contend_in_session(
    client: &zk::Client,
    config: &ZooKeeperConfig,
    paths: &Paths,
    contender: &mut Contender,
) -> Result<Outcome, zk::Error> {
    let mut state = client.state_watcher();
    client.mkdir(&paths.latch, &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await?;
    let (_, sequence) = client
        .create(
            &format!("{}/latch-", paths.latch),
            b"",
            &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all()),
        )
        .await?;
    let mine = format!("latch-{sequence}");
    tracing::info!(component = %paths.component, latch = %mine, "contending for leadership");
    loop {
        let mut line = client.list_children(&paths.latch).await?;
        line.sort_by_key(|name| sequence_of(name));
        let Some(position) = line.iter().position(|name| *name == mine) else {
            tracing::warn!(component = %paths.component, "the latch node is gone; entering again");
            return Ok(Outcome::SessionLost);
        };
        if position == 0 {
            let latch = format!("{}/{mine}", paths.latch);
            return lead(client, config, paths, &latch, contender, &mut state).await;
        }
        let ahead = format!("{}/{}", paths.latch, line[position - 1]);
        let (stat, watcher) = client.check_and_watch_stat(&ahead).await?;
        if stat.is_none() {
            continue;
        }
        tokio::select! {
            _ = watcher.changed() => {}
            () = session_lost(&mut state, config.tolerate_suspended_connections, &paths.component) => {
                return Ok(Outcome::SessionLost);
            }
            () = contender.grants.left() => return Ok(Outcome::Left),
        }
    }
}

/// Leads until the session is lost or the contender leaves. However
/// leading ends, short of the contender leaving, the contender is revoked:
/// a leader that cannot publish itself must not go on acting as one.
async fn lead(
    client: &zk::Client,
    config: &ZooKeeperConfig,
    paths: &Paths,
    latch: &str,
    contender: &mut Contender,
    state: &mut zk::StateWatcher,
) -> Result<Outcome, zk::Error> {
    let session = FencingToken::random();
    tracing::info!(component = %paths.component, %session, "granted leadership");
    contender.grants.grant(session);
    let leading = async {
        loop {
            tokio::select! {
                confirmed = contender.confirmations.recv() => match confirmed {
                    Some(leader) if leader.session == session => publish(client, paths, latch, &leader).await?,
                    Some(stale) => tracing::debug!(component = %paths.component, %stale, "ignored a confirmation of an old session"),
                    None => return Ok(Outcome::Left),
                },
                () = session_lost(state, config.tolerate_suspended_connections, &paths.component) => {
                    return Ok(Outcome::SessionLost);
                }
            }
        }
    };
    let outcome = leading.await;
    match &outcome {
        Ok(Outcome::Left) => {}
        Ok(Outcome::SessionLost) => {
            tracing::warn!(component = %paths.component, %session, "leadership revoked: lost the ZooKeeper session");
            contender.grants.revoke();
        }
        Err(error) => {
            tracing::warn!(component = %paths.component, %session, %error, "leadership revoked: cannot publish the leader");
            contender.grants.revoke();
        }
    }
    outcome
}

/// Writes the leader node, in one transaction with a check that this
/// contender's latch node still exists.
async fn publish(client: &zk::Client, paths: &Paths, latch: &str, leader: &LeaderInformation) -> Result<(), zk::Error> {
    let data = leader.encode();
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let mut create = client.new_multi_writer();
    create.add_check_version(latch, -1)?;
    create.add_create(&paths.info, data.as_bytes(), &ephemeral)?;
    match create.commit().await {
        Err(zk::MultiWriteError::OperationFailed { index: 1, source: zk::Error::NodeExists }) => {
            let mut update = client.new_multi_writer();
            update.add_check_version(latch, -1)?;
            update.add_set_data(&paths.info, data.as_bytes(), None)?;
            update.commit().await?;
        }
        result => {
            result?;
        }
    }
    tracing::info!(component = %paths.component, %leader, "leadership confirmed");
    Ok(())
}

/// A listener's life: watches the leader node, session after session,
/// until every [`LeaderRetrieval`] is dropped.
async fn follow(config: ZooKeeperConfig, paths: Paths, leader: watch::Sender<Option<LeaderInformation>>) {
    loop {
        let client = tokio::select! {
            client = connect(&config, &paths.component) => client,
            () = leader.closed() => return,
        };
        let watching = watch_leader(&client, &paths, &leader);
        tokio::select! {
            error = watching => tracing::warn!(component = %paths.component, %error, "lost track of the leader"),
            () = leader.closed() => return,
        }
        // Without a session nobody can tell who leads (Flink's "no leader"
        // on a suspended connection).
        announce(&leader, None, &paths.component);
        drop(client);
        Retry::default().pause().await;
    }
}

/// Follows the leader node within one session; returns why it stopped.
async fn watch_leader(
    client: &zk::Client,
    paths: &Paths,
    leader: &watch::Sender<Option<LeaderInformation>>,
) -> zk::Error {
    let mut state = client.state_watcher();
    loop {
        let (current, watcher) = match client.get_and_watch_data(&paths.info).await {
            Ok((data, _, watcher)) => (LeaderInformation::decode(&String::from_utf8_lossy(&data)), watcher),
            Err(zk::Error::NoNode) => match client.check_and_watch_stat(&paths.info).await {
                Ok((None, watcher)) => (None, watcher),
                Ok((Some(_), _)) => continue,
                Err(error) => return error,
            },
            Err(error) => return error,
        };
        announce(leader, current, &paths.component);
        tokio::select! {
            _ = watcher.changed() => {}
            () = session_lost(&mut state, false, &paths.component) => return zk::Error::ConnectionLoss,
        }
    }
}

/// Tells the listeners about `current` if it differs from what they know.
fn announce(leader: &watch::Sender<Option<LeaderInformation>>, current: Option<LeaderInformation>, component: &str) {
    leader.send_if_modified(|known| {
        if *known == current {
            return false;
        }
        match &current {
            Some(new) => tracing::info!(component, leader = %new, "new leader"),
            None => tracing::info!(component, "no leader"),
        }
        *known = current;
        true
    });
}

/// Waits until the session is lost: expired or closed, or also just
/// disconnected unless that is tolerated.
async fn session_lost(state: &mut zk::StateWatcher, tolerate_disconnection: bool, component: &str) {
    loop {
        let now = state.changed().await;
        tracing::info!(component, state = ?now, "ZooKeeper connection state changed");
        if now.is_terminated() || (now == zk::SessionState::Disconnected && !tolerate_disconnection) {
            return;
        }
    }
}

/// Connects a new session, trying again until it succeeds, with pauses
/// that grow while it fails.
async fn connect(config: &ZooKeeperConfig, component: &str) -> zk::Client {
    let mut retry = Retry::default();
    loop {
        if let Ok(client) = attempt(config, component, retry.attempts + 1).await {
            return client;
        }
        retry.pause().await;
    }
}

/// One attempt to establish a session: every server of the quorum tried
/// once, bounded by the connection timeout. Each attempt is logged, at warn
/// when it fails.
pub(super) async fn attempt(config: &ZooKeeperConfig, component: &str, number: u32) -> Result<zk::Client, String> {
    tracing::debug!(component, quorum = %config.quorum, attempt = number, "connecting to ZooKeeper");
    let connecting = zk::Client::connector()
        .with_session_timeout(config.session_timeout)
        .with_connection_timeout(config.connection_timeout)
        .with_fail_eagerly()
        .connect(&config.quorum);
    let error = match tokio::time::timeout(config.connection_timeout, connecting).await {
        Ok(Ok(client)) => {
            tracing::info!(component, quorum = %config.quorum, attempt = number, "connected to ZooKeeper");
            return Ok(client);
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no session within {:?}", config.connection_timeout),
    };
    tracing::warn!(component, quorum = %config.quorum, attempt = number, %error, "cannot reach ZooKeeper; retrying");
    Err(error)
}

/// Attempts in a row, and the pause before the next.
#[derive(Debug)]
struct Retry {
    attempts: u32,
    pause: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 0, pause: RETRY_PAUSE }
    }
}

impl Retry {
    async fn pause(&mut self) {
        self.attempts += 1;
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(MAX_RETRY_PAUSE);
    }
}

/// The sequence number of a latch node, `latch-0000000042` → 42.
fn sequence_of(name: &str) -> i64 {
    name.rsplit('-').next().and_then(|digits| digits.parse().ok()).unwrap_or(i64::MAX)
}
