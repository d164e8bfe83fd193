//! Calls delivered to the guest in batches (`weir:rpc/batch`).
//!
//! A guest task costs wasmtime about a microsecond and a half, more than a
//! small call itself. When several calls of batchable functions wait in the
//! mailbox one after the other, the loop hands them to the guest at once:
//! their arguments encoded as on the wire, run in order inside one task (the
//! guest SDK's batch entry decodes them and calls the gateway functions).
//! Order and the main-thread guarantee are those of single calls: the batch
//! starts where its first call would have. Sync functions run to completion
//! one after the other (`deliver`); async ones start in order, each running
//! until it awaits before the next starts, and each ask is answered as soon
//! as it returns (`deliver-async`, answers through `batch-replies`), not
//! when the whole batch has. A batch holds calls of one kind; a lone call
//! goes on its own, as before, so nothing changes for an endpoint that is
//! not busy.

use bytes::Bytes;
use slab::Slab;

use crate::endpoint::{ActorRef, Call, Reply};
use crate::engine::InstanceFuncs;
use crate::error::RpcError;
use crate::gateway::FunctionId;
use crate::gateway::encoding::{self, Args, ValueSeed};

/// Outcome status of a call that ran (see `weir:rpc/batch`).
const DONE: u8 = 0;
/// Outcome status of an async call still running when its batch returned.
const RUNNING: u8 = 2;
/// The slot of a tell in `deliver-async`: nobody waits for its outcome.
const NO_REPLY: u32 = u32::MAX;

/// Which entry of `weir:rpc/batch` a batch goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `deliver`: sync functions.
    Sync,
    /// `deliver-async`: async functions.
    Async,
}

/// Consecutive batchable calls of one kind taken from the mailbox, not
/// yet started.
#[derive(Debug, Default)]
pub(super) struct Pending {
    calls: Vec<Call>,
    kind: Option<Kind>,
}

/// One call of a started batch.
#[derive(Debug)]
pub(super) struct Member {
    pub function: FunctionId,
    /// The key of its reply in the loop's pending replies, for an ask.
    pub reply: Option<usize>,
}

/// A batch ready to start: who to answer, and what to hand the guest.
pub(super) struct Encoded {
    pub kind: Kind,
    pub members: Vec<Member>,
    pub functions: Vec<u64>,
    pub args: Bytes,
    pub ends: Vec<u32>,
}

impl Encoded {
    /// The slot of each call in `deliver-async`: its reply's key, or
    /// [`NO_REPLY`] for a tell.
    pub(super) fn slots(&self) -> Vec<u32> {
        let slot = |m: &Member| m.reply.map_or(NO_REPLY, |key| u32::try_from(key).unwrap_or(NO_REPLY));
        self.members.iter().map(slot).collect()
    }
}

impl Pending {
    /// Which batch `call` may join, if any: its function is batchable and
    /// the component delivers batches of its kind.
    pub(super) fn kind_of(funcs: &InstanceFuncs, call: &Call) -> Option<Kind> {
        let function = funcs.info.function(call.function).filter(|f| f.batched)?;
        match function.signature.is_async {
            false => funcs.batch.is_some().then_some(Kind::Sync),
            true => funcs.batch_async.is_some().then_some(Kind::Async),
        }
    }

    /// Whether a call of `kind` may join the calls waiting.
    pub(super) fn accepts(&self, kind: Kind) -> bool {
        self.kind.is_none_or(|waiting| waiting == kind)
    }

    pub(super) fn push(&mut self, call: Call, kind: Kind) {
        self.calls.push(call);
        self.kind = Some(kind);
    }

    /// The waiting calls: none, one to run on its own, or a batch encoded
    /// for the guest (its replies registered in `pending`).
    pub(super) fn take(&mut self, actor: &ActorRef, pending: &mut Slab<Reply>) -> Taken {
        let Some(kind) = self.kind.take() else { return Taken::Nothing };
        match self.calls.len() {
            0 => Taken::Nothing,
            1 => Taken::One(self.calls.pop().expect("one call")),
            _ => Taken::Batch(encode(actor, kind, self.calls.drain(..), pending)),
        }
    }
}

/// What [`Pending::take`] found.
pub(super) enum Taken {
    Nothing,
    One(Call),
    Batch(Encoded),
}

fn encode(
    actor: &ActorRef,
    kind: Kind,
    calls: impl ExactSizeIterator<Item = Call>,
    pending: &mut Slab<Reply>,
) -> Encoded {
    let mut batch = Encoded {
        kind,
        members: Vec::with_capacity(calls.len()),
        functions: Vec::with_capacity(calls.len()),
        args: Bytes::new(),
        ends: Vec::with_capacity(calls.len()),
    };
    let mut args = Vec::with_capacity(calls.len() * 16);
    let component = actor.component();
    for call in calls {
        let export = component.function(call.function).expect("a batched call's function is exported");
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
    actor.stats.batch(batch.members.len());
    batch
}

/// The function of each ask of a running async batch, by its slot (the
/// key of its reply, so the slots are few and dense).
#[derive(Debug, Default)]
pub(super) struct RunningAsks {
    slots: Vec<Option<FunctionId>>,
    count: usize,
}

impl RunningAsks {
    /// Notes the asks of an async batch about to start.
    pub(super) fn extend(&mut self, members: &[Member]) {
        for member in members {
            let Some(key) = member.reply else { continue };
            if self.slots.len() <= key {
                self.slots.resize(key + 1, None);
            }
            if self.slots[key].replace(member.function).is_none() {
                self.count += 1;
            }
        }
    }

    /// Whether no ask of an async batch waits for its answer: the loop then
    /// need not look for one.
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn remove(&mut self, key: usize) -> Option<FunctionId> {
        let function = self.slots.get_mut(key).and_then(Option::take);
        self.count -= usize::from(function.is_some());
        function
    }
}

/// Where the answers of a batch go: the loop's pending replies, and the
/// function of each ask of a running async batch, for the answers the
/// guest gives later.
pub(super) struct Answers<'a> {
    pub pending: &'a mut Slab<Reply>,
    pub running: &'a mut RunningAsks,
}

/// Answers the calls of a batch that returned, from what the guest gave
/// back; an ask still running is answered when the guest says, through
/// [`answer`].
pub(super) fn complete(
    actor: &ActorRef,
    members: Vec<Member>,
    outcomes: &Bytes,
    ends: &[u32],
    answers: &mut Answers<'_>,
) -> Result<(), String> {
    if ends.len() != members.len() {
        return Err(format!("a batch of {} calls returned {} outcomes", members.len(), ends.len()));
    }
    let mut start = 0;
    for (member, &end) in members.into_iter().zip(ends) {
        let end = end as usize;
        let outcome = outcomes.get(start..end).ok_or("a batch returned an outcome out of bounds")?;
        start = end;
        let Some(key) = member.reply else {
            actor.stats.tell();
            continue;
        };
        if outcome.first() == Some(&RUNNING) {
            continue;
        }
        answers.running.remove(key);
        actor.stats.ask();
        answers.pending.remove(key).send(outcome_of(actor, member.function, outcomes, outcome));
    }
    Ok(())
}

/// Answers the ask of an async batch in `slot` (its reply's key) with the
/// outcome the guest gave; `functions` knows which function each slot of
/// a running async batch called.
pub(super) fn answer(
    actor: &ActorRef,
    slot: u32,
    outcome: Vec<u8>,
    functions: &mut RunningAsks,
    pending: &mut Slab<Reply>,
) {
    let key = slot as usize;
    let (Some(function), Some(reply)) = (functions.remove(key), pending.try_remove(key)) else {
        tracing::warn!(endpoint = %actor.id, slot, "an answer for no ask of a batch");
        return;
    };
    actor.stats.ask();
    let outcome = Bytes::from(outcome);
    reply.send(outcome_of(actor, function, &outcome, &outcome));
}

/// What the caller of `function` learns from `outcome`, a slice of
/// `outcomes`: a status byte, then the encoded result.
fn outcome_of(actor: &ActorRef, function: FunctionId, outcomes: &Bytes, outcome: &[u8]) -> crate::endpoint::Outcome {
    match outcome.split_first() {
        Some((&DONE, result)) => decode(actor, function, outcomes, result),
        _ => Err(RpcError::UnknownFunction {
            endpoint: actor.id.to_string(),
            detail: format!(
                "its component does not deliver {} in batches; rebuild it with the weir-guest of this host",
                actor.component().qualified_name(function)
            ),
        }),
    }
}

fn decode(
    actor: &ActorRef,
    function: FunctionId,
    outcomes: &Bytes,
    result: &[u8],
) -> Result<Option<crate::gateway::Value>, RpcError> {
    let component = actor.component();
    let Some(shape) = component.function(function).and_then(|f| f.signature.result.as_ref()) else {
        return Ok(None);
    };
    let seed = ValueSeed { shape, frame: outcomes };
    match encoding::decode(seed, result) {
        Ok((value, used)) if used == result.len() => super::reply_outcome(actor, Some(value)),
        _ => Err(RpcError::Serialization(format!(
            "the result of {} in a batch does not decode",
            actor.component().qualified_name(function)
        ))),
    }
}
