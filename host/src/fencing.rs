//! Fencing tokens: the guard against split brain (Flink's `FencedRpcEndpoint`).
//!
//! A fenced endpoint runs under one token for its whole life: the leader
//! session id it was started for. Every call to it carries the token its
//! caller connected with, and the host compares the two before the message
//! reaches the guest. A new leader session starts a new endpoint with a new
//! token, so an old leader's calls are refused however late they arrive.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A fencing token: a leader session id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FencingToken(pub Uuid);

impl FencingToken {
    /// A fresh random token.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The token as the two big-endian halves of the WIT `uuid` record.
    pub fn as_u64_pair(self) -> (u64, u64) {
        self.0.as_u64_pair()
    }

    /// The token of the WIT `uuid` record `{ high, low }`.
    pub fn from_u64_pair(high: u64, low: u64) -> Self {
        Self(Uuid::from_u64_pair(high, low))
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The host-side fencing check: a call carrying `received` may reach an
/// endpoint running under `expected` only if the two are equal. An
/// unfenced endpoint (`None`) accepts only unfenced calls.
pub fn admits(expected: Option<FencingToken>, received: Option<FencingToken>) -> bool {
    expected == received
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_passes() {
        let leader = FencingToken::random();
        let stale = FencingToken::random();
        assert!(admits(Some(leader), Some(leader)));
        assert!(admits(None, None));
        for (expected, received) in [(Some(leader), Some(stale)), (Some(leader), None), (None, Some(stale))] {
            assert!(!admits(expected, received), "{expected:?} admitted {received:?}");
        }
    }
}
