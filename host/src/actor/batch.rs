//! Calls delivered to the guest in batches (`weir:rpc/batch`).
//!
//! A guest task costs wasmtime about a microsecond and a half, more than a
//! small call itself. When several calls of batchable functions wait in the
//! mailbox one after the other, the loop hands them to the guest at once:
//! their arguments encoded as on the wire, run in order inside one task (the
//! guest SDK's dispatcher decodes them and calls the gateway functions).
//! Order and the main-thread guarantee are those of single calls: the batch
//! starts where its first call would have, and its calls are sync functions,
//! which run to completion one after the other. A lone call goes on its own,
//! as before, so nothing changes for an endpoint that is not busy.

use bytes::Bytes;
use slab::Slab;

use crate::endpoint::{ActorRef, Call, Reply};
use crate::engine::InstanceFuncs;
use crate::error::RpcError;
use crate::gateway::FunctionId;
use crate::gateway::encoding::{self, Args, ValueSeed};

/// Outcome status of a call that ran (see `weir:rpc/batch`).
const DONE: u8 = 0;

/// Consecutive batchable calls taken from the mailbox, not yet started.
#[derive(Debug, Default)]
pub(super) struct Pending {
    calls: Vec<Call>,
}

/// One call of a started batch.
#[derive(Debug)]
pub(super) struct Member {
    function: FunctionId,
    /// The key of its reply in the loop's pending replies, for an ask.
    reply: Option<usize>,
}

/// A batch ready to start: who to answer, and what to hand the guest.
pub(super) struct Encoded {
    pub members: Vec<Member>,
    pub functions: Vec<u64>,
    pub args: Bytes,
    pub ends: Vec<u32>,
}

impl Pending {
    /// Whether `call` may join a batch: its function is batchable and the
    /// component delivers batches.
    pub(super) fn takes(actor: &ActorRef, funcs: &InstanceFuncs, call: &Call) -> bool {
        funcs.batch.is_some() && actor.component.function(call.function).is_some_and(|f| f.batched)
    }

    pub(super) fn push(&mut self, call: Call) {
        self.calls.push(call);
    }

    /// The waiting calls: none, one to run on its own, or a batch encoded
    /// for the guest (its replies registered in `pending`).
    pub(super) fn take(&mut self, actor: &ActorRef, pending: &mut Slab<Reply>) -> Taken {
        match self.calls.len() {
            0 => Taken::Nothing,
            1 => Taken::One(self.calls.pop().expect("one call")),
            _ => Taken::Batch(encode(actor, self.calls.drain(..), pending)),
        }
    }
}

/// What [`Pending::take`] found.
pub(super) enum Taken {
    Nothing,
    One(Call),
    Batch(Encoded),
}

fn encode(actor: &ActorRef, calls: impl ExactSizeIterator<Item = Call>, pending: &mut Slab<Reply>) -> Encoded {
    let mut batch = Encoded {
        members: Vec::with_capacity(calls.len()),
        functions: Vec::with_capacity(calls.len()),
        args: Bytes::new(),
        ends: Vec::with_capacity(calls.len()),
    };
    let mut args = Vec::with_capacity(calls.len() * 16);
    for call in calls {
        let export = actor.component.function(call.function).expect("a batched call's function is exported");
        let params = &export.signature.params;
        if let Err(error) = encoding::encode_into(Args { params, values: &call.args }, &mut args) {
            // Callers checked the arguments against the signature.
            actor.refuse(call, RpcError::Serialization(format!("cannot encode the arguments: {error}")));
            continue;
        }
        batch.functions.push(call.function.0);
        batch.ends.push(u32::try_from(args.len()).unwrap_or(u32::MAX));
        batch.members.push(Member { function: call.function, reply: call.reply.map(|reply| pending.insert(reply)) });
    }
    batch.args = args.into();
    batch
}

/// Answers the calls of a batch that ran, from what the guest returned.
pub(super) fn complete(
    actor: &ActorRef,
    members: Vec<Member>,
    outcomes: &Bytes,
    ends: &[u32],
    pending: &mut Slab<Reply>,
) -> Result<(), String> {
    if ends.len() != members.len() {
        return Err(format!("a batch of {} calls returned {} outcomes", members.len(), ends.len()));
    }
    actor.stats.batch(members.len());
    let mut start = 0;
    for (member, &end) in members.into_iter().zip(ends) {
        let end = end as usize;
        let outcome = outcomes.get(start..end).ok_or("a batch returned an outcome out of bounds")?;
        start = end;
        let Some(key) = member.reply else {
            actor.stats.tell();
            continue;
        };
        actor.stats.ask();
        let reply = pending.remove(key);
        reply.send(match outcome.split_first() {
            Some((&DONE, result)) => decode(actor, member.function, outcomes, result),
            _ => Err(RpcError::UnknownFunction {
                endpoint: actor.id.to_string(),
                detail: format!(
                    "its component does not deliver {} in batches; rebuild it with the weir-guest of this host",
                    actor.component.qualified_name(member.function)
                ),
            }),
        });
    }
    Ok(())
}

fn decode(
    actor: &ActorRef,
    function: FunctionId,
    outcomes: &Bytes,
    result: &[u8],
) -> Result<Option<crate::gateway::Value>, RpcError> {
    let Some(shape) = actor.component.function(function).and_then(|f| f.signature.result.as_ref()) else {
        return Ok(None);
    };
    let seed = ValueSeed { shape, frame: outcomes };
    match encoding::decode(seed, result) {
        Ok((value, used)) if used == result.len() => super::reply_outcome(actor, Some(value)),
        _ => Err(RpcError::Serialization(format!(
            "the result of {} in a batch does not decode",
            actor.component.qualified_name(function)
        ))),
    }
}
