//! A task's input from the stage before (`task-input`), merged into one
//! stream with Flink's aligned barriers: once a producer's barrier for a
//! checkpoint arrives, what it sends next waits (unanswered, so the
//! producer waits too) until every producer's barrier has arrived, and the
//! task takes its checkpoint in between. A delivery is answered once the
//! task takes it: a busy task holds its producers back.
//!
//! As Flink's barrier handler, it aligns one checkpoint at a time: a
//! barrier of a newer checkpoint abandons the alignment under way (that
//! checkpoint was aborted: some producer never got its trigger) and
//! starts the new one, and a barrier of an older one is dropped, so that
//! no checkpoint mixes records from before and after another's barrier.

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};

/// What a producer sends.
pub enum Event {
    Records(Vec<u8>),
    Barrier(u64),
    End,
}

/// One delivery, answered once taken.
struct Delivery {
    producer: u32,
    event: Event,
    taken: oneshot::Sender<()>,
}

thread_local! {
    static QUEUE: (mpsc::UnboundedSender<Delivery>, RefCell<Option<mpsc::UnboundedReceiver<Delivery>>>) = {
        let (sender, receiver) = mpsc::unbounded();
        (sender, RefCell::new(Some(receiver)))
    };
}

/// Delivers `event` from `producer`, returning once the task took it.
pub async fn deliver(producer: u32, event: Event) -> Result<(), String> {
    let (taken, answer) = oneshot::channel();
    QUEUE
        .with(|(sender, _)| sender.unbounded_send(Delivery { producer, event, taken }))
        .map_err(|_| "the task takes no more input".to_owned())?;
    answer.await.map_err(|_| "the task ended before it took the input".to_owned())
}

/// What the task reads next.
pub enum Next {
    /// Records from a producer.
    Records(Vec<u8>),
    /// Every producer's barrier for this checkpoint arrived: take it.
    Checkpoint(u64),
    /// Every producer ended.
    End,
}

/// The task's input.
pub struct Input {
    receiver: mpsc::UnboundedReceiver<Delivery>,
    producers: u32,
    ended: BTreeSet<u32>,
    /// The checkpoint being aligned, and the producers whose barrier for
    /// it arrived.
    aligning: Option<(u64, BTreeSet<u32>)>,
    /// The newest checkpoint whose alignment began.
    newest: u64,
    /// Deliveries from those producers, waiting for the alignment's end.
    held: VecDeque<Delivery>,
}

impl Input {
    /// The input of a task fed by `producers` subtasks.
    ///
    /// # Errors
    ///
    /// If it was taken already.
    pub fn take(producers: u32) -> Result<Self, String> {
        let receiver = QUEUE.with(|(_, receiver)| receiver.borrow_mut().take()).ok_or("the input is taken")?;
        Ok(Self { receiver, producers, ended: BTreeSet::new(), aligning: None, newest: 0, held: VecDeque::new() })
    }

    /// Whether every producer has its barrier in or has ended.
    fn aligned(&self) -> bool {
        self.aligning.as_ref().is_some_and(|(_, arrived)| arrived.union(&self.ended).count() == self.producers as usize)
    }

    /// Whether `producer`'s deliveries wait for the alignment's end.
    fn blocked(&self, producer: u32) -> bool {
        self.aligning.as_ref().is_some_and(|(_, arrived)| arrived.contains(&producer))
    }

    /// The first held delivery whose producer no alignment blocks now.
    fn unblocked(&mut self) -> Option<Delivery> {
        let index = self.held.iter().position(|delivery| !self.blocked(delivery.producer))?;
        self.held.remove(index)
    }

    /// Notes `producer`'s barrier for `checkpoint`.
    fn barrier(&mut self, producer: u32, checkpoint: u64) {
        match &mut self.aligning {
            Some((aligning, arrived)) if *aligning == checkpoint => {
                arrived.insert(producer);
            }
            // Older than the newest: its checkpoint was abandoned.
            _ if checkpoint <= self.newest => {}
            _ => {
                if let Some((abandoned, _)) = &self.aligning {
                    weir_guest::warn!(
                        "checkpoint {abandoned} abandoned: a barrier of checkpoint {checkpoint} came first"
                    );
                }
                self.newest = checkpoint;
                self.aligning = Some((checkpoint, BTreeSet::from([producer])));
            }
        }
    }

    /// The next thing to act on.
    ///
    /// # Errors
    ///
    /// If the producers' calls stopped before every producer ended.
    pub async fn next(&mut self) -> Result<Next, String> {
        loop {
            if self.aligning.is_none() && self.ended.len() == self.producers as usize && self.held.is_empty() {
                return Ok(Next::End);
            }
            let delivery = match self.unblocked() {
                Some(held) => held,
                None => self.receiver.next().await.ok_or("the task's input closed")?,
            };
            if self.blocked(delivery.producer) {
                self.held.push_back(delivery);
                continue;
            }
            let Delivery { producer, event, taken } = delivery;
            // The producer may send the next.
            let _ = taken.send(());
            match event {
                Event::Records(records) => return Ok(Next::Records(records)),
                Event::Barrier(checkpoint) => self.barrier(producer, checkpoint),
                Event::End => {
                    self.ended.insert(producer);
                }
            }
            if self.aligned() {
                let (checkpoint, _) = self.aligning.take().expect("aligning");
                return Ok(Next::Checkpoint(checkpoint));
            }
        }
    }
}
