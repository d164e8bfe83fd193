//! Crossing of [`RpcError`] into and out of a guest as the WIT `rpc-error`.

use wasmtime::component::Val;

use super::shape::Shape;
use crate::error::RpcError;
use crate::fencing::FencingToken;

/// The shape of `weir:rpc/types.rpc-error`: what a client interface's error
/// type must be for the host to report failures into it.
pub(crate) fn rpc_error_shape() -> Shape {
    let uuid = || Shape::Record(vec![("high".into(), Shape::U64), ("low".into(), Shape::U64)]);
    let text = Some(Shape::String);
    Shape::Variant(vec![
        ("not-started".into(), text.clone()),
        ("unreachable".into(), text.clone()),
        ("timeout".into(), text.clone()),
        (
            "fencing-mismatch".into(),
            Some(Shape::Record(vec![
                ("expected".into(), Shape::Option(Box::new(uuid()))),
                ("received".into(), Shape::Option(Box::new(uuid()))),
            ])),
        ),
        (
            "frame-too-large".into(),
            Some(Shape::Record(vec![("size".into(), Shape::U64), ("limit".into(), Shape::U64)])),
        ),
        ("serialization".into(), text.clone()),
        ("handshake".into(), text.clone()),
        ("endpoint-failed".into(), text.clone()),
        ("unknown-endpoint".into(), text.clone()),
        ("unknown-function".into(), text),
    ])
}

/// The WIT `uuid` record of a fencing token.
pub(crate) fn token_to_val(token: FencingToken) -> Val {
    let (high, low) = token.as_u64_pair();
    Val::Record(vec![("high".into(), Val::U64(high)), ("low".into(), Val::U64(low))])
}

/// A fencing token from the WIT `uuid` record; `None` if `val` is not one.
pub(crate) fn token_from_val(val: &Val) -> Option<FencingToken> {
    let Val::Record(fields) = val else {
        return None;
    };
    match fields.as_slice() {
        [(_, Val::U64(high)), (_, Val::U64(low))] => Some(FencingToken::from_u64_pair(*high, *low)),
        _ => None,
    }
}

impl RpcError {
    /// The error as a value of the WIT `rpc-error` variant.
    pub(crate) fn to_val(&self) -> Val {
        let case = |name: &str, payload: Val| Val::Variant(name.to_owned(), Some(Box::new(payload)));
        let text = |name: &str| case(name, Val::String(self.to_string()));
        let optional_token = |token: Option<FencingToken>| Val::Option(token.map(|t| Box::new(token_to_val(t))));
        match self {
            RpcError::NotStarted { .. } => text("not-started"),
            RpcError::Unreachable { .. } => text("unreachable"),
            RpcError::Timeout { .. } => text("timeout"),
            RpcError::FencingMismatch { expected, received, .. } => case(
                "fencing-mismatch",
                Val::Record(vec![
                    ("expected".into(), optional_token(*expected)),
                    ("received".into(), optional_token(*received)),
                ]),
            ),
            RpcError::FrameTooLarge { size, limit } | RpcError::MessageTooLarge { size, limit } => case(
                "frame-too-large",
                Val::Record(vec![("size".into(), Val::U64(*size)), ("limit".into(), Val::U64(*limit))]),
            ),
            RpcError::Serialization(_) => text("serialization"),
            RpcError::Handshake(_) => text("handshake"),
            RpcError::EndpointFailed { .. } => text("endpoint-failed"),
            RpcError::UnknownEndpoint { .. } => text("unknown-endpoint"),
            RpcError::UnknownFunction { .. } => text("unknown-function"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_fits_the_wit_variant() {
        let token = FencingToken::from_u64_pair(1, 2);
        let errors = [
            RpcError::NotStarted { endpoint: "a".into() },
            RpcError::Unreachable { endpoint: "a".into(), reason: "gone".into() },
            RpcError::Timeout {
                endpoint: "a".into(),
                function: "f".into(),
                timeout: std::time::Duration::from_secs(1),
            },
            RpcError::FencingMismatch { endpoint: "a".into(), expected: Some(token), received: None },
            RpcError::FrameTooLarge { size: 2, limit: 1 },
            RpcError::MessageTooLarge { size: 2, limit: 1 },
            RpcError::Serialization("x".into()),
            RpcError::Handshake("x".into()),
            RpcError::EndpointFailed { endpoint: "a".into(), cause: "trap".into() },
            RpcError::UnknownEndpoint { address: "weir://local/a".into(), reason: "none".into() },
            RpcError::UnknownFunction { endpoint: "a".into(), detail: "no f".into() },
        ];
        let shape = rpc_error_shape();
        for error in &errors {
            shape.check(&error.to_val()).unwrap_or_else(|e| panic!("{error:?}: {e}"));
        }
    }

    #[test]
    fn tokens_round_trip_through_the_uuid_record() {
        let token = FencingToken::from_u64_pair(u64::MAX, 7);
        assert_eq!(token_from_val(&token_to_val(token)), Some(token));
    }
}
