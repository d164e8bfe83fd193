//! Where a gateway's calls go: an endpoint on this host, reached through
//! its mailbox with the values as they are, or one on another host,
//! reached over a link with the values encoded. Everything above this
//! module (guest handles, host-side clients) is the same code for both.

use std::sync::Arc;
use std::time::Duration;

use crate::address::{AddressError, EndpointAddress, LOCAL_AUTHORITY};
use crate::endpoint::{ActorRef, Directory, Outcome};
use crate::error::{RpcError, within};
use crate::fencing::FencingToken;
use crate::gateway::{FunctionId, GatewaySignature, Value};
use crate::remote::{Network, RemoteGateway, Settings};

/// The target of a connected gateway.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// An endpoint of this host.
    Local(Arc<ActorRef>),
    /// An endpoint of another host.
    Remote(Arc<RemoteGateway>),
}

impl Route {
    /// The target's address.
    pub(crate) fn address(&self) -> &str {
        match self {
            Route::Local(actor) => &actor.address,
            Route::Remote(gateway) => &gateway.address,
        }
    }

    /// The target's endpoint id.
    pub(crate) fn endpoint(&self) -> &str {
        match self {
            Route::Local(actor) => &actor.id,
            Route::Remote(gateway) => gateway.endpoint(),
        }
    }

    /// Asks `function` and waits up to `timeout` for its result.
    ///
    /// # Errors
    ///
    /// Any [`RpcError`] except the handshake kinds.
    pub(crate) async fn ask(
        &self,
        function: FunctionId,
        args: Vec<Value>,
        token: Option<FencingToken>,
        timeout: Duration,
    ) -> Outcome {
        match self {
            Route::Local(actor) => actor.ask(function, args, token, timeout).await,
            // Boxed: the remote exchange's state is large, and a local ask,
            // the one that must be cheap, would carry its size (moved on
            // every poll-free step of the caller's futures) otherwise.
            Route::Remote(gateway) => {
                Box::pin(within(timeout, gateway.ask(function, &args, token), || {
                    (gateway.endpoint().to_owned(), gateway.signature.qualified_name(function))
                }))
                .await
            }
        }
    }

    /// Tells `function`. Nothing is reported back, as in Flink: a tell that
    /// cannot be delivered is logged as a dead letter.
    pub(crate) async fn tell(&self, function: FunctionId, args: Vec<Value>, token: Option<FencingToken>) {
        match self {
            Route::Local(actor) => actor.tell(function, args, token).await,
            Route::Remote(gateway) => {
                if let Err(error) = gateway.tell(function, &args, token).await {
                    let function = gateway.signature.qualified_name(function);
                    tracing::debug!(target: "weir::dead_letters", endpoint = %gateway.address, %function, %error, "dead letter");
                }
            }
        }
    }
}

/// Resolves addresses to gateways, on this host or another (Flink's
/// `RpcService.connect`).
#[derive(Debug)]
pub(crate) struct Connector {
    directory: Arc<Directory>,
    network: Network,
}

impl Connector {
    pub(crate) fn new(directory: Arc<Directory>, settings: Arc<Settings>) -> Self {
        Self { directory, network: Network::new(settings) }
    }

    /// The default ask timeout; it also bounds a remote handshake, as
    /// Flink's bounds its.
    pub(crate) fn ask_timeout(&self) -> Duration {
        self.network.settings().ask_timeout
    }

    /// Connects to `gateway` of the endpoint at `address`. A local address
    /// (`local`, or this host's own `host:port`) never touches a socket.
    ///
    /// # Errors
    ///
    /// A malformed address, an unknown or unreachable endpoint, or a
    /// handshake failure.
    pub(crate) async fn connect(
        &self,
        address: &str,
        gateway: &str,
    ) -> Result<(Route, Arc<GatewaySignature>), RpcError> {
        let parsed: EndpointAddress = address.parse().map_err(|e: AddressError| RpcError::UnknownEndpoint {
            address: address.to_owned(),
            reason: e.reason().to_owned(),
        })?;
        if parsed.authority() == LOCAL_AUTHORITY || parsed.authority() == self.directory.authority() {
            let (actor, signature) = self.directory.connect(&parsed, gateway)?;
            return Ok((Route::Local(actor), signature));
        }
        let peer = self.network.peer(parsed.authority());
        let handshake = RemoteGateway::connect(peer, &parsed, gateway);
        let ask_timeout = self.ask_timeout();
        let remote =
            within(ask_timeout, handshake, || (address.to_owned(), format!("the handshake for `{gateway}`"))).await?;
        let signature = remote.signature.clone();
        Ok((Route::Remote(Arc::new(remote)), signature))
    }
}
