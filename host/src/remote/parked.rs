//! Calls from one connection that found their endpoint's mailbox full.
//!
//! The connection's reader never waits for room in one mailbox: a call that
//! does not fit is parked in a queue for its endpoint, and the reader moves
//! the queue into the mailbox as room appears, between reading frames.
//! Later calls from the connection to the same endpoint queue behind it, so
//! each sender's order holds; calls to every other endpoint, heartbeats
//! among them, go straight on. Parked calls count against the connection's
//! [`Budget`], with what a call costs the host beyond its frame.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc::OwnedPermit;

use super::budget::Budget;
use crate::endpoint::{ActorRef, Call};
use crate::fencing::FencingToken;

/// What a parked call costs the host beyond its frame: the call and its
/// decoded arguments.
const PARKED_CALL_BYTES: usize = 256;

/// The parked calls of one connection, a queue per endpoint incarnation.
pub(crate) struct Parked {
    /// Only queues with calls in them.
    queues: HashMap<u64, Queue>,
    /// Room in the mailbox of each parked endpoint, as it appears.
    rooms: FuturesUnordered<BoxFuture<'static, (u64, Option<OwnedPermit<Call>>)>>,
    budget: Arc<Budget>,
}

struct Queue {
    actor: Arc<ActorRef>,
    /// Each call, with what it counts against the budget.
    calls: VecDeque<(Call, usize)>,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked").field("endpoints", &self.queues.len()).finish_non_exhaustive()
    }
}

impl Parked {
    pub(crate) fn new(budget: Arc<Budget>) -> Self {
        Self { queues: HashMap::new(), rooms: FuturesUnordered::new(), budget }
    }

    /// Delivers `call` (`bytes` on the wire) to `actor` without waiting: into
    /// its mailbox if there is room and no earlier call of this connection
    /// waits for it, else into its queue.
    pub(crate) fn deliver(&mut self, actor: &Arc<ActorRef>, call: Call, token: Option<FencingToken>, bytes: usize) {
        let cost = bytes + PARKED_CALL_BYTES;
        if let Some(queue) = self.queues.get_mut(&actor.incarnation) {
            match actor.admit(token) {
                Ok(()) => {
                    self.budget.take(cost);
                    queue.calls.push_back((call, cost));
                }
                Err(error) => actor.refuse(call, error),
            }
            return;
        }
        if let Err(call) = actor.try_deliver(call, token) {
            self.budget.take(cost);
            let queue = Queue { actor: actor.clone(), calls: VecDeque::from([(call, cost)]) };
            self.queues.insert(actor.incarnation, queue);
            self.wait_for_room(actor);
        }
    }

    /// Whether no call is parked.
    pub(crate) fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    fn wait_for_room(&mut self, actor: &ActorRef) {
        let (incarnation, room) = (actor.incarnation, actor.room());
        self.rooms.push(Box::pin(async move { (incarnation, room.await) }));
    }

    /// Waits until a parked endpoint has room, and moves as much of its
    /// queue into its mailbox as fits. Never completes while nothing is
    /// parked.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a permit is used as soon as it is granted.
    pub(crate) async fn moved(&mut self) {
        let Some((incarnation, permit)) = self.rooms.next().await else {
            return std::future::pending().await;
        };
        let Some(mut queue) = self.queues.remove(&incarnation) else { return };
        let Some(permit) = permit else {
            // The endpoint has terminated: every parked call learns why.
            for (call, cost) in queue.calls {
                queue.actor.refuse(call, queue.actor.gone());
                self.budget.give(cost);
            }
            return;
        };
        let (call, cost) = queue.calls.pop_front().expect("only queues with calls are kept");
        permit.send(call);
        self.budget.give(cost);
        while let Some((call, cost)) = queue.calls.pop_front() {
            match queue.actor.try_enqueue(call) {
                Ok(()) => self.budget.give(cost),
                Err(call) => {
                    queue.calls.push_front((call, cost));
                    self.wait_for_room(&queue.actor);
                    self.queues.insert(incarnation, queue);
                    return;
                }
            }
        }
    }

    /// Moves every parked call into its mailbox, waiting for room as long
    /// as it takes: what a peer sent before it closed the connection still
    /// arrives.
    pub(crate) async fn flush(&mut self) {
        while !self.queues.is_empty() {
            self.moved().await;
        }
    }
}
