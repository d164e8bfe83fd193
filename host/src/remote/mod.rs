//! Remote RPC: endpoints on different hosts calling each other over TCP
//! (Flink's Pekko remoting).
//!
//! A host listens on one TCP port. To call an endpoint on another host, it
//! opens one [`link`] to that host, shared by every call to it, and says
//! hello (protocol version). `connect` then asks the peer whether the
//! endpoint exports the gateway, and learns the gateway's functions and
//! types, which the caller checks as it checks a local gateway's. Calls
//! travel as [`wire`] frames with bincode payloads guided by the functions'
//! types ([`values`]), multiplexed by request id. The serving side
//! ([`server`]) hands each call to the endpoint's mailbox after the same
//! checks a local call passes.
//!
//! | limit | default | Flink |
//! | --- | --- | --- |
//! | frame size | 10 MiB | `pekko.framesize` |
//! | TCP connect timeout | 20 s | `pekko.tcp.timeout` |
//! | ask timeout | 10 s | `pekko.ask.timeout` |

mod budget;
mod gateway;
mod io;
mod link;
mod parked;
mod server;
mod tls;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;

pub(crate) use self::gateway::RemoteGateway;
use self::link::Link;
pub(crate) use self::server::accept;
pub(crate) use self::tls::Tls;
pub use self::tls::TlsError;
pub use self::wire::PROTOCOL_VERSION;
use crate::config::HostConfig;
use crate::error::RpcError;
use crate::events::Events;

/// What every connection of a host shares.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Largest frame body sent or accepted, in bytes.
    pub frame_limit: usize,
    /// How long dialling a peer may take.
    pub connect_timeout: Duration,
    /// How long a peer may take to say hello.
    pub ask_timeout: Duration,
    /// How long a connection may go without a frame.
    pub idle_timeout: Duration,
    /// How long a started frame may take to arrive whole.
    pub frame_timeout: Duration,
    /// Connections from other hosts served at once.
    pub max_connections: usize,
    /// Bytes of replies a connection may have waiting before its requests
    /// are no longer read.
    pub reply_buffer: usize,
    /// Mutual TLS, if configured.
    pub tls: Option<Tls>,
    /// Where connection tasks run: the service's runtime.
    pub executor: Handle,
    /// Where connections opening and closing are reported.
    pub events: Events,
}

impl Settings {
    /// The settings `config` asks for.
    pub(crate) fn new(config: &HostConfig, tls: Option<Tls>, executor: Handle, events: Events) -> Self {
        Self {
            frame_limit: usize::try_from(config.frame_size).unwrap_or(usize::MAX),
            connect_timeout: config.connect_timeout,
            ask_timeout: config.ask_timeout,
            idle_timeout: config.idle_timeout,
            frame_timeout: config.frame_timeout,
            max_connections: config.max_connections,
            reply_buffer: usize::try_from(config.reply_buffer).unwrap_or(usize::MAX),
            tls,
            executor,
            events,
        }
    }
}

/// The links of a host to its peers, one per peer host.
#[derive(Debug)]
pub(crate) struct Network {
    settings: Arc<Settings>,
    peers: Mutex<HashMap<Arc<str>, Arc<Peer>>>,
}

impl Network {
    pub(crate) fn new(settings: Arc<Settings>) -> Self {
        Self { settings, peers: Mutex::new(HashMap::new()) }
    }

    /// What every connection shares.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The peer host at `authority` (`host:port`).
    pub(crate) fn peer(&self, authority: &str) -> Arc<Peer> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(peer) = peers.get(authority) {
            return peer.clone();
        }
        let authority: Arc<str> = authority.into();
        let peer = Arc::new(Peer {
            authority: authority.clone(),
            settings: self.settings.clone(),
            current: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(()),
        });
        peers.insert(authority, peer.clone());
        peer
    }
}

/// Another host, and this host's live link to it if there is one. A link
/// that closes is replaced by dialling again on the next call, so a
/// restarted peer is reachable by the same address.
#[derive(Debug)]
pub(crate) struct Peer {
    authority: Arc<str>,
    settings: Arc<Settings>,
    current: Mutex<Option<Arc<Link>>>,
    /// One dial at a time: concurrent callers wait for it and share the link.
    dialing: tokio::sync::Mutex<()>,
}

impl Peer {
    /// The live link, dialled if there is none. `address` names the target
    /// in errors.
    pub(crate) async fn link(&self, address: &str) -> Result<Arc<Link>, RpcError> {
        if let Some(link) = self.live() {
            return Ok(link);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(link) = self.live() {
            return Ok(link);
        }
        // Dialled on the service's runtime, whatever runtime the caller is
        // on: the socket belongs to the reactor that runs the link's tasks,
        // so its wake-ups stay on the endpoints' threads, and the link
        // outlives the caller's runtime.
        let settings = self.settings.clone();
        let dialling = self.settings.executor.spawn(Link::dial(self.authority.clone(), settings));
        let link = dialling
            .await
            .map_err(|e| RpcError::Unreachable {
                endpoint: address.to_owned(),
                reason: format!("dialling failed: {e}"),
            })?
            .map_err(|e| e.for_caller(address))?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(link.clone());
        Ok(link)
    }

    fn live(&self) -> Option<Arc<Link>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|link| !link.is_closed()).cloned()
    }
}
