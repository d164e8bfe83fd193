//! The caller's side of a gateway on another host.

use std::sync::Arc;

use super::Peer;
use super::link::Answer;
use super::wire::{self, Frame, FrameBuilder, Target};
use crate::address::EndpointAddress;
use crate::error::RpcError;
use crate::fencing::FencingToken;
use crate::gateway::encoding::ValueSeed;
use crate::gateway::{FunctionId, FunctionSignature, GatewaySignature, Value};

/// A connected gateway of an endpoint on another host: what `connect`
/// learned in the handshake, and the peer to send calls to.
#[derive(Debug)]
pub(crate) struct RemoteGateway {
    peer: Arc<Peer>,
    /// The endpoint id on its host.
    endpoint: Arc<str>,
    /// Its full address.
    pub address: Arc<str>,
    incarnation: u64,
    pub signature: Arc<GatewaySignature>,
}

impl RemoteGateway {
    /// Flink's `connect` to another host: asks the peer whether the
    /// endpoint exports `gateway`, and learns its functions.
    ///
    /// # Errors
    ///
    /// Unreachable peer, unknown endpoint, or a handshake failure.
    pub(crate) async fn connect(peer: Arc<Peer>, address: &EndpointAddress, gateway: &str) -> Result<Self, RpcError> {
        let text = address.to_string();
        let link = peer.link(&text).await?;
        let answer = link
            .request(&text, |request| {
                Ok(wire::control_frame(&Frame::Connect { request, endpoint: address.id(), gateway }))
            })
            .await?;
        let Answer::Connected(description) = answer else {
            return Err(RpcError::Handshake(format!("{text} answered the handshake with something else")));
        };
        let description = description?;
        Ok(Self {
            peer,
            endpoint: address.id().into(),
            address: description.address.into(),
            incarnation: description.incarnation,
            signature: Arc::new(GatewaySignature::new(gateway, description.functions)),
        })
    }

    /// The endpoint id on its host.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Asks `function`. The caller bounds it with its timeout.
    ///
    /// # Errors
    ///
    /// frame-too-large at once for arguments that do not fit a frame; else
    /// whatever the peer or the link ran into.
    pub(crate) async fn ask(
        &self,
        function: FunctionId,
        args: &[Value],
        token: Option<FencingToken>,
    ) -> Result<Option<Value>, RpcError> {
        let signature = self.function(function)?;
        let link = self.peer.link(&self.address).await?;
        let limit = link.frame_limit();
        let target = self.target(function);
        let answer = link
            .request(&self.endpoint, |request| {
                FrameBuilder::new(&Frame::Ask { request, target, token }).args(&signature.params, args)?.finish(limit)
            })
            .await?;
        let Answer::Reply { result, body, payload } = answer else {
            return Err(RpcError::Serialization(format!("{} answered an ask with a handshake", self.address)));
        };
        result?;
        match &signature.result {
            Some(shape) => wire::decode_payload(ValueSeed { shape, frame: &body }, &body[payload..])
                .map(Some)
                .map_err(|e| RpcError::Serialization(format!("cannot decode the result of `{}`: {e}", signature.name))),
            None => Ok(None),
        }
    }

    /// Tells `function`; a tell that cannot be sent is returned as the
    /// error, for the caller to log as a dead letter.
    pub(crate) async fn tell(
        &self,
        function: FunctionId,
        args: &[Value],
        token: Option<FencingToken>,
    ) -> Result<(), RpcError> {
        let signature = self.function(function)?;
        let link = self.peer.link(&self.address).await?;
        let frame = FrameBuilder::new(&Frame::Tell { target: self.target(function), token })
            .args(&signature.params, args)?
            .finish(link.frame_limit())?;
        link.send(&self.endpoint, frame).await
    }

    fn function(&self, function: FunctionId) -> Result<&FunctionSignature, RpcError> {
        self.signature.function(function).ok_or_else(|| RpcError::UnknownFunction {
            endpoint: self.endpoint.to_string(),
            detail: format!("gateway `{}` has no function #{:016x}", self.signature.name, function.0),
        })
    }

    fn target(&self, function: FunctionId) -> Target<'_> {
        Target { endpoint: &self.endpoint, incarnation: self.incarnation, function }
    }
}
