//! The frames hosts exchange, and how they are laid out.
//!
//! Every frame is a 4-byte big-endian length, then a bincode [`Frame`]
//! header, then, for calls and replies, the bincode payload of the values
//! (see [`super::values`]). The header and payload are written into one
//! buffer, so a frame costs one allocation and no copies after encoding.

use crate::error::RpcError;
use crate::fencing::FencingToken;
use crate::gateway::encoding::{self as values, Args, TypedValue};
use crate::gateway::{FunctionId, FunctionSignature, Shape, Value};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The version of weir's wire protocol. Hosts with different versions
/// refuse each other in the first exchange (Flink's handshake version).
pub const PROTOCOL_VERSION: u32 = 3;

/// The first bytes of a weir connection after the length.
pub(crate) const MAGIC: [u8; 4] = *b"weir";

/// The most a frame header may claim to hold. Headers are small; the limit
/// makes a lying length in one fail before anything is allocated for it.
const HEADER_LIMIT: usize = 1 << 20;

/// Bytes of the length prefix.
pub(crate) const LENGTH_BYTES: usize = 4;

/// One frame's header.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Frame<'a> {
    /// The first frame each side sends, with the largest frame body it
    /// accepts (the other side sends nothing larger, and fails such a call
    /// with frame-too-large instead) and how long it lets a connection go
    /// without a frame (the other side sends a `Ping` well before).
    Hello { magic: [u8; 4], version: u32, frame_limit: u32, idle_timeout_ms: u64 },
    /// Instead of `Hello`, from a host that will not talk to the caller.
    Refused { reason: String },
    /// Instead of `Hello`, from a host that cannot take another connection
    /// now; the caller may try again later.
    Busy { reason: String },
    /// Keeps an idle connection open; nothing answers it.
    Ping,
    /// Flink's handshake: does `endpoint` export `gateway`?
    Connect { request: u64, endpoint: &'a str, gateway: &'a str },
    /// The answer to `Connect`.
    Connected { request: u64, result: Result<GatewayDescription, RpcError> },
    /// An ask, followed by its arguments.
    Ask { request: u64, target: Target<'a>, token: Option<FencingToken> },
    /// A tell, followed by its arguments.
    Tell { target: Target<'a>, token: Option<FencingToken> },
    /// The outcome of an ask, followed by the result value if there is one.
    Reply { request: u64, result: Result<(), RpcError> },
}

/// The function a call is for, on one incarnation of an endpoint.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Target<'a> {
    /// The endpoint id.
    pub endpoint: &'a str,
    /// Which endpoint of that id: a gateway reaches only the endpoint it
    /// connected to, as a local one does, never a successor of the same id.
    pub incarnation: u64,
    /// The function, by its stable id.
    pub function: FunctionId,
}

/// What a successful handshake tells the caller about the gateway.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GatewayDescription {
    /// The endpoint's address, as its host names it.
    pub address: String,
    /// Which endpoint of that id answered.
    pub incarnation: u64,
    /// The gateway's functions; each side derives their ids from the names.
    pub functions: Vec<FunctionSignature>,
}

/// A frame being written: the length is filled in by [`FrameBuilder::finish`].
pub(crate) struct FrameBuilder {
    buffer: Vec<u8>,
}

impl FrameBuilder {
    /// Starts a frame with `header`.
    pub(crate) fn new(header: &Frame<'_>) -> Self {
        let mut buffer = Vec::with_capacity(64);
        buffer.extend_from_slice(&[0; LENGTH_BYTES]);
        values::encode_into(header, &mut buffer).expect("frame headers always encode");
        Self { buffer }
    }

    /// Appends a call's arguments.
    pub(crate) fn args(mut self, params: &[(String, Shape)], args: &[Value]) -> Result<Self, RpcError> {
        values::encode_into(Args { params, values: args }, &mut self.buffer)
            .map_err(|e| RpcError::Serialization(format!("cannot encode the arguments: {e}")))?;
        Ok(self)
    }

    /// Appends a result value.
    pub(crate) fn value(mut self, shape: &Shape, value: &Value) -> Result<Self, RpcError> {
        values::encode_into(TypedValue { shape, value }, &mut self.buffer)
            .map_err(|e| RpcError::Serialization(format!("cannot encode the result: {e}")))?;
        Ok(self)
    }

    /// The finished frame, or frame-too-large if its body exceeds `limit`.
    pub(crate) fn finish(mut self, limit: usize) -> Result<Bytes, RpcError> {
        let size = self.buffer.len() - LENGTH_BYTES;
        if size > limit {
            return Err(RpcError::FrameTooLarge { size: size as u64, limit: limit as u64 });
        }
        let length = u32::try_from(size).expect("the frame limit fits a u32");
        self.buffer[..LENGTH_BYTES].copy_from_slice(&length.to_be_bytes());
        Ok(Bytes::from(self.buffer))
    }
}

/// Decodes a frame body's header; the payload starts at the returned offset.
///
/// # Errors
///
/// Bytes that are not a frame header.
pub(crate) fn decode_header(body: &[u8]) -> Result<(Frame<'_>, usize), String> {
    bincode::serde::borrow_decode_from_slice(body, values::BINCODE.with_limit::<HEADER_LIMIT>())
        .map_err(|e| format!("undecodable frame header: {e}"))
}

/// Decodes a payload that must be exactly one value of the seed's type.
pub(crate) fn decode_payload<'de, T: serde::de::DeserializeSeed<'de>>(
    seed: T,
    payload: &'de [u8],
) -> Result<T::Value, String> {
    let (value, used) = values::decode(seed, payload).map_err(|e| e.to_string())?;
    if used != payload.len() {
        return Err(format!("{} unexpected byte(s) after the value", payload.len() - used));
    }
    Ok(value)
}

/// A frame without payload: handshakes and errors, which are small.
pub(crate) fn control_frame(header: &Frame<'_>) -> Bytes {
    FrameBuilder::new(header).finish(u32::MAX as usize).expect("a control frame fits a u32 length")
}

/// This host's hello, for a host that accepts frames up to `frame_limit`
/// and closes connections silent for `idle_timeout`.
pub(crate) fn hello(frame_limit: usize, idle_timeout: std::time::Duration) -> Frame<'static> {
    Frame::Hello {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        frame_limit: u32::try_from(frame_limit).unwrap_or(u32::MAX),
        idle_timeout_ms: u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

/// Checks a peer's hello.
///
/// # Errors
///
/// Why the peer is not a weir host this one can talk to.
pub(crate) fn check_hello(magic: [u8; 4], version: u32) -> Result<(), String> {
    if magic != MAGIC {
        return Err("the peer is not a weir host".to_owned());
    }
    if version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version mismatch: this host speaks version {PROTOCOL_VERSION}, the peer version {version}"
        ));
    }
    Ok(())
}

/// The kind of a frame, for messages.
pub(crate) fn kind(frame: &Frame<'_>) -> &'static str {
    match frame {
        Frame::Hello { .. } => "hello",
        Frame::Refused { .. } => "refused",
        Frame::Busy { .. } => "busy",
        Frame::Ping => "ping",
        Frame::Connect { .. } => "connect",
        Frame::Connected { .. } => "connected",
        Frame::Ask { .. } => "ask",
        Frame::Tell { .. } => "tell",
        Frame::Reply { .. } => "reply",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_claiming_a_huge_string_fails_without_allocating_it() {
        // `refused`, then a string length of 2^64 - 1 as a u64 varint.
        let mut body = vec![1, 253];
        body.extend_from_slice(&[0xff; 8]);
        let error = decode_header(&body).unwrap_err();
        assert!(error.starts_with("undecodable frame header"), "{error}");
    }

    #[test]
    fn frames_carry_their_body_length_and_respect_the_limit() {
        let frame = control_frame(&hello(1024, std::time::Duration::from_secs(1)));
        let length = u32::from_be_bytes(frame[..LENGTH_BYTES].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - LENGTH_BYTES);
        assert!(matches!(
            decode_header(&frame[LENGTH_BYTES..]).unwrap().0,
            Frame::Hello { version: PROTOCOL_VERSION, .. }
        ));
        let error = FrameBuilder::new(&hello(1024, std::time::Duration::from_secs(1))).finish(2).unwrap_err();
        assert_eq!(error, RpcError::FrameTooLarge { size: length as u64, limit: 2 });
    }
}
