//! Calls from one connection that found their endpoint's mailbox full.
//!
//! The connection's reader never waits for room in a mailbox: a call that
//! does not fit is parked here, in a queue of its own for that endpoint,
//! and a task moves the queue into the mailbox as room appears. Later calls
//! from the connection to the same endpoint queue behind it, so each
//! sender's order holds; calls to every other endpoint, heartbeats among
//! them, go straight on. Parked calls count against the connection's
//! [`Budget`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::budget::Budget;
use crate::endpoint::{ActorRef, Call};
use crate::fencing::FencingToken;

/// The parked calls of one connection, a queue per endpoint incarnation.
#[derive(Debug)]
pub(crate) struct Parked {
    queues: HashMap<u64, Queue>,
    budget: Arc<Budget>,
    executor: Handle,
}

#[derive(Debug)]
struct Queue {
    calls: mpsc::UnboundedSender<(Call, usize)>,
    /// Calls in the queue, not yet in the mailbox.
    waiting: Arc<AtomicUsize>,
}

impl Parked {
    pub(crate) fn new(budget: Arc<Budget>, executor: Handle) -> Self {
        Self { queues: HashMap::new(), budget, executor }
    }

    /// Delivers `call` (`bytes` on the wire) to `actor` without waiting: into
    /// its mailbox if there is room and no earlier call of this connection
    /// waits for it, else into its queue.
    pub(crate) fn deliver(&mut self, actor: &Arc<ActorRef>, call: Call, token: Option<FencingToken>, bytes: usize) {
        let behind = self.queues.get(&actor.incarnation).filter(|queue| queue.waiting.load(Ordering::Acquire) > 0);
        let call = match behind {
            Some(_) => match actor.admit(token) {
                Ok(()) => call,
                Err(error) => return actor.refuse(call, error),
            },
            None => match actor.try_deliver(call, token) {
                Ok(()) => return,
                Err(full) => full,
            },
        };
        let queue = self.queues.entry(actor.incarnation).or_insert_with(|| start(actor, &self.budget, &self.executor));
        queue.waiting.fetch_add(1, Ordering::AcqRel);
        self.budget.take(bytes);
        let _ = queue.calls.send((call, bytes));
    }
}

/// A queue for `actor`, and the task that moves it into the mailbox.
fn start(actor: &Arc<ActorRef>, budget: &Arc<Budget>, executor: &Handle) -> Queue {
    let (calls, mut queued) = mpsc::unbounded_channel::<(Call, usize)>();
    let waiting = Arc::new(AtomicUsize::new(0));
    let (actor, budget, moved) = (actor.clone(), budget.clone(), waiting.clone());
    executor.spawn(async move {
        while let Some((call, bytes)) = queued.recv().await {
            actor.enqueue(call).await;
            moved.fetch_sub(1, Ordering::AcqRel);
            budget.give(bytes);
        }
    });
    Queue { calls, waiting }
}
