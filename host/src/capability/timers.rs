//! The tasks an endpoint scheduled onto its own main thread, waiting until
//! they are due (Flink's `scheduleRunAsync`).
//!
//! Tasks run when due, and tasks due at the same instant in the order they
//! were scheduled: entries are ordered by (due time, sequence number). The
//! actor's main loop polls [`Timers::poll_due`]; scheduling wakes it, so a
//! new task due before the others is not held up by a timer armed for them.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// What one waiting task costs the host, charged against the endpoint's
/// memory cap: its place in both maps.
pub(crate) const TASK_BYTES: u64 = 96;

/// Scheduled tasks by when they are due.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Task ids by (due, sequence).
    queue: BTreeMap<(Instant, u64), u64>,
    /// Each waiting task's key in `queue`, for cancelling.
    keys: HashMap<u64, (Instant, u64)>,
    sequence: u64,
    /// Armed for the earliest task.
    alarm: Option<Pin<Box<Sleep>>>,
    /// The main loop, waiting for the next task.
    waiting: Option<Waker>,
}

impl Timers {
    /// Schedules `task` to run after `delay`. Returns whether it is new:
    /// scheduling a waiting task again moves it.
    pub(crate) fn schedule(&mut self, task: u64, delay: Duration) -> bool {
        let replaced = self.cancel(task);
        self.enqueue(task, Instant::now() + delay);
        self.wake();
        !replaced
    }

    /// Queues `task` at `due`, after the tasks due then already.
    fn enqueue(&mut self, task: u64, due: Instant) {
        let key = (due, self.sequence);
        self.sequence += 1;
        self.queue.insert(key, task);
        self.keys.insert(task, key);
    }

    /// Wakes the main loop, if it waits: the earliest task may have changed.
    fn wake(&self) {
        if let Some(waker) = &self.waiting {
            waker.wake_by_ref();
        }
    }

    /// Removes `task` if it is waiting; whether it was.
    pub(crate) fn cancel(&mut self, task: u64) -> bool {
        match self.keys.remove(&task) {
            Some(key) => {
                self.queue.remove(&key);
                true
            }
            None => false,
        }
    }

    /// How many tasks wait.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Takes on the tasks waiting in `other`, each due when it was, in
    /// their order; a task waiting here already keeps its time here.
    pub(crate) fn absorb(&mut self, other: Timers) {
        for ((due, _), task) in other.queue {
            if !self.keys.contains_key(&task) {
                self.enqueue(task, due);
            }
        }
        self.wake();
    }

    /// The next task that is due, taken out of the queue.
    pub(crate) fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<u64> {
        loop {
            let Some((&(due, sequence), &task)) = self.queue.first_key_value() else {
                self.wait(cx);
                return Poll::Pending;
            };
            if due <= Instant::now() {
                self.queue.remove(&(due, sequence));
                self.keys.remove(&task);
                return Poll::Ready(task);
            }
            let alarm = self.alarm.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if alarm.deadline() != due {
                alarm.as_mut().reset(due);
            }
            if alarm.as_mut().poll(cx).is_pending() {
                self.wait(cx);
                return Poll::Pending;
            }
        }
    }

    /// Remembers who to wake when a task is scheduled; the main loop polls
    /// on every turn, so the waker is kept unless it changed.
    fn wait(&mut self, cx: &Context<'_>) {
        if !self.waiting.as_ref().is_some_and(|waiting| waiting.will_wake(cx.waker())) {
            self.waiting = Some(cx.waker().clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    async fn next(timers: &mut Timers) -> u64 {
        poll_fn(|cx| timers.poll_due(cx)).await
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_run_when_due_and_in_order_when_due_together() {
        let mut timers = Timers::default();
        for task in 0..5 {
            timers.schedule(task, Duration::from_millis(20));
        }
        timers.schedule(9, Duration::from_millis(10));
        timers.schedule(7, Duration::ZERO);
        let mut ran = Vec::new();
        for _ in 0..7 {
            ran.push(next(&mut timers).await);
        }
        assert_eq!(ran, [7, 9, 0, 1, 2, 3, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn absorbed_tasks_keep_their_times_and_order_and_yield_to_waiting_ones() {
        let (mut old, mut new) = (Timers::default(), Timers::default());
        old.schedule(1, Duration::from_millis(30));
        old.schedule(2, Duration::from_millis(10));
        old.schedule(3, Duration::from_millis(10));
        old.schedule(4, Duration::from_millis(50));
        new.schedule(4, Duration::from_millis(5));
        new.schedule(5, Duration::from_millis(20));
        new.absorb(old);
        assert_eq!(new.len(), 5, "task 4 waits once, at the new one's time");
        let started = Instant::now();
        let mut ran = Vec::new();
        for _ in 0..5 {
            ran.push((next(&mut new).await, started.elapsed().as_millis()));
        }
        assert_eq!(ran, [(4, 5), (2, 10), (3, 10), (5, 20), (1, 30)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_task_never_runs_and_scheduling_again_replaces() {
        let mut timers = Timers::default();
        timers.schedule(1, Duration::from_secs(60));
        timers.schedule(2, Duration::from_secs(30));
        assert!(timers.cancel(2));
        assert!(!timers.cancel(2), "a task is cancelled once");
        let started = Instant::now();
        let waiting = tokio::spawn(async move {
            let task = next(&mut timers).await;
            (task, timers)
        });
        tokio::task::yield_now().await;
        let (task, mut timers) = waiting.await.unwrap();
        assert_eq!((task, started.elapsed()), (1, Duration::from_secs(60)));
        assert!(timers.queue.is_empty());
        timers.schedule(3, Duration::from_secs(5));
        assert!(!timers.schedule(3, Duration::from_secs(1)), "scheduling again replaces");
        assert_eq!(timers.queue.len(), 1);
        let started = Instant::now();
        assert_eq!(next(&mut timers).await, 3);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
