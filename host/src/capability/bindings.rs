//! Host bindings of the typed `weir:rpc` interfaces the host lends.

use std::time::Duration;

use crate::error::RpcError;
use crate::fencing::FencingToken;

wasmtime::component::bindgen!({
    path: "../wit/rpc",
    world: "weir:rpc/host",
    imports: {
        "weir:rpc/runtime.schedule-run-async": trappable,
        "weir:rpc/leadership.[static]contender.enter": trappable,
        "weir:rpc/leadership.[static]follower.follow": trappable,
        "weir:rpc/heartbeats.[constructor]heartbeat-manager": trappable,
        "weir:rpc/heartbeats.[method]heartbeat-manager.monitor": trappable,
        "weir:rpc/heartbeats.[method]heartbeat-manager.unmonitor": trappable,
        "weir:rpc/heartbeats.[method]heartbeat-manager.heartbeat-from": trappable,
        "weir:rpc/heartbeats.[method]heartbeat-manager.requested-by": trappable,
        "weir:rpc/heartbeats.[method]heartbeat-manager.report": trappable,
        "weir:rpc/registration.[method]retry-schedule.report": trappable,
        "weir:rpc/registration.[constructor]retry-schedule": trappable,
        "weir:rpc/supervision.[static]child.start": trappable,
        "weir:rpc/supervision.[static]child.start-loaded": trappable,
        "weir:rpc/supervision.[static]child.adopt": trappable,
        default: tracing,
    },
    with: {
        "weir:rpc/leadership.contender": super::leadership::Contender,
        "weir:rpc/leadership.follower": super::leadership::Follower,
        "weir:rpc/heartbeats.heartbeat-manager": super::heartbeats::Manager,
        "weir:rpc/registration.retry-schedule": super::registration::Schedule,
        "weir:rpc/supervision.child": super::supervision::Child,
    },
});

pub(crate) use self::weir::rpc::*;

/// An `rpc-error` a guest reports, as the host's [`RpcError`]. Its texts
/// are the guest's; names the guest did not give are left empty.
impl From<types::RpcError> for RpcError {
    fn from(error: types::RpcError) -> Self {
        use types::RpcError as Wit;
        let token = |uuid: Option<types::Uuid>| uuid.map(|u| FencingToken::from_u64_pair(u.high, u.low));
        match error {
            Wit::NotStarted(endpoint) => RpcError::NotStarted { endpoint },
            Wit::Unreachable(reason) => RpcError::Unreachable { endpoint: String::new(), reason },
            Wit::Timeout(function) => RpcError::Timeout { endpoint: String::new(), function, timeout: Duration::ZERO },
            Wit::FencingMismatch(m) => RpcError::FencingMismatch {
                endpoint: String::new(),
                expected: token(m.expected),
                received: token(m.received),
            },
            Wit::FrameTooLarge(f) => RpcError::FrameTooLarge { size: f.size, limit: f.limit },
            Wit::Serialization(detail) => RpcError::Serialization(detail),
            Wit::Handshake(detail) => RpcError::Handshake(detail),
            Wit::EndpointFailed(cause) => RpcError::EndpointFailed { endpoint: String::new(), cause },
            Wit::UnknownEndpoint(reason) => RpcError::UnknownEndpoint { address: String::new(), reason },
            Wit::UnknownFunction(detail) => RpcError::UnknownFunction { endpoint: String::new(), detail },
        }
    }
}

/// The host's [`RpcError`] as the WIT `rpc-error`, for typed client calls;
/// the same value [`RpcError::to_val`] gives dynamic ones.
impl From<&RpcError> for types::RpcError {
    fn from(error: &RpcError) -> Self {
        use types::RpcError as Wit;
        let uuid = |token: Option<FencingToken>| {
            token.map(|t| {
                let (high, low) = t.as_u64_pair();
                types::Uuid { high, low }
            })
        };
        let text = error.to_string();
        match error {
            RpcError::NotStarted { .. } => Wit::NotStarted(text),
            RpcError::Unreachable { .. } => Wit::Unreachable(text),
            RpcError::Timeout { .. } => Wit::Timeout(text),
            RpcError::FencingMismatch { expected, received, .. } => {
                Wit::FencingMismatch(types::FencingMismatch { expected: uuid(*expected), received: uuid(*received) })
            }
            RpcError::FrameTooLarge { size, limit } | RpcError::MessageTooLarge { size, limit } => {
                Wit::FrameTooLarge(types::FrameTooLarge { size: *size, limit: *limit })
            }
            RpcError::Serialization(_) => Wit::Serialization(text),
            RpcError::Handshake(_) => Wit::Handshake(text),
            RpcError::EndpointFailed { .. } => Wit::EndpointFailed(text),
            RpcError::UnknownEndpoint { .. } => Wit::UnknownEndpoint(text),
            RpcError::UnknownFunction { .. } => Wit::UnknownFunction(text),
        }
    }
}
