//! Work on the endpoint's own main thread: Flink's `runAsync`,
//! `scheduleRunAsync` and `callAsync`, background tasks, and a `sleep`
//! built on them.
//!
//! A scheduled task is kept here under an id; the host puts a message with
//! the id into the endpoint's mailbox when it is due and calls the exported
//! `main-thread.run`, in order with every other message. A task that awaits
//! lets the endpoint serve other calls meanwhile. Tasks still pending when
//! the endpoint terminates are dropped.
//!
//! Ids are split in two: below [`CLOSURE_TASKS`] are the endpoint's own
//! numbered tasks ([`schedule_task`], run by [`crate::Endpoint::on_task`]),
//! which the host carries over when it swaps the component; from it up are
//! closures kept here, which only this instance can run. Closure ids carry
//! a random tag per instance, so a closure task an old instance left
//! waiting never runs a new instance's closure.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::{LocalBoxFuture, Shared};

use crate::runtime;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The first id of a closure task; ids below it are numbered tasks.
pub const CLOSURE_TASKS: u64 = 1 << 63;

thread_local! {
    static TASKS: RefCell<HashMap<u64, Task>> = RefCell::new(HashMap::new());
    /// The next closure task's id; 0 until the first is scheduled.
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Schedules the endpoint's own task `task` to run after `delay`, through
/// [`crate::Endpoint::on_task`]; scheduling a waiting task again moves it.
///
/// # Panics
///
/// If `task` is not below [`CLOSURE_TASKS`].
pub fn schedule_task(task: u64, delay: Duration) {
    assert!(task < CLOSURE_TASKS, "numbered tasks are below 2^63");
    runtime::schedule_run_async(task, u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
}

/// Cancels numbered task `task`; false if it was not waiting.
pub fn cancel_task(task: u64) -> bool {
    runtime::cancel_scheduled(task)
}

/// A fresh closure task id: [`CLOSURE_TASKS`], this instance's random tag
/// and a counter.
fn next_closure_id() -> u64 {
    NEXT_ID.with(|next| {
        let id = match next.get() {
            0 => CLOSURE_TASKS | ((runtime::new_uuid().low & 0x7fff_ffff) << 32),
            id => id,
        };
        next.set(id + 1);
        id
    })
}

/// Runs `task` on the main thread once the messages before it have been
/// handled (Flink's `runAsync`).
pub fn run_async(task: impl FnOnce() + 'static) {
    schedule(Duration::ZERO, async move { task() });
}

/// Runs `task` on the main thread after `delay` (Flink's
/// `scheduleRunAsync`), with millisecond resolution. Tasks due at the same
/// time run in the order they were scheduled. The returned handle cancels
/// it (Flink's `ScheduledFuture.cancel`); dropping the handle does not.
pub fn schedule_run_async(delay: Duration, task: impl FnOnce() + 'static) -> ScheduledTask {
    schedule(delay, async move { task() })
}

/// A task [`schedule_run_async`] scheduled.
#[derive(Debug)]
pub struct ScheduledTask {
    id: u64,
}

impl ScheduledTask {
    /// Cancels the task: it will not run. False if it has run already, or
    /// is running.
    pub fn cancel(&self) -> bool {
        let cancelled = runtime::cancel_scheduled(self.id);
        if cancelled {
            TASKS.with(|tasks| tasks.borrow_mut().remove(&self.id));
        }
        cancelled
    }
}

/// Runs `call` on the main thread as a task of its own and returns its
/// result (Flink's `callAsync`), or [`CallTimedOut`] if it has not finished
/// within `timeout`. A call that times out still runs to completion.
pub async fn call_async<T: 'static>(call: impl FnOnce() -> T + 'static, timeout: Duration) -> Result<T, CallTimedOut> {
    let slot = Rc::new(Slot { value: RefCell::new(None), waker: RefCell::new(None) });
    let filler = slot.clone();
    let deadline = runtime::monotonic_now().saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
    run_async(move || {
        let value = call();
        // Finished, but late: the caller has its timeout, as in Flink.
        if runtime::monotonic_now() <= deadline {
            *filler.value.borrow_mut() = Some(value);
        }
        if let Some(waker) = filler.waker.borrow_mut().take() {
            waker.wake();
        }
    });
    CallAsync { slot, timer: sleep(timeout) }.await
}

/// [`call_async`]'s call did not run within its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimedOut;

impl std::fmt::Display for CallTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call on the main thread did not finish within its timeout")
    }
}

impl std::error::Error for CallTimedOut {}

/// Where [`call_async`]'s result lands.
struct Slot<T> {
    value: RefCell<Option<T>>,
    waker: RefCell<Option<Waker>>,
}

/// [`call_async`]'s future: the result, or the timer.
struct CallAsync<T> {
    slot: Rc<Slot<T>>,
    timer: Sleep,
}

impl<T> Future for CallAsync<T> {
    type Output = Result<T, CallTimedOut>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(value) = self.slot.value.borrow_mut().take() {
            return Poll::Ready(Ok(value));
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        // Woken by a late call (no value), or by the timer.
        if Rc::strong_count(&self.slot) == 1 {
            return Poll::Ready(Err(CallTimedOut));
        }
        Pin::new(&mut self.timer).poll(cx).map(|()| Err(CallTimedOut))
    }
}

/// Runs `future` on the main thread as a task of its own: the endpoint keeps
/// serving calls while it awaits. Use it from `on_start` for work that has
/// to wait, such as registering with another endpoint.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    schedule(Duration::ZERO, future);
}

/// A task's output, for any number of awaiters: see [`spawn_shared`].
/// `None` if the task was dropped before it finished (the endpoint
/// terminated).
pub type SharedTask<T> = Shared<LocalBoxFuture<'static, Option<T>>>;

/// Runs `future` as a task of its own, as [`spawn`], and hands its output
/// to every clone of the returned handle, awaited from any task. A future
/// that calls other endpoints must not be polled from two tasks (each call
/// belongs to the task that made it: the runtime traps when its completion
/// is delivered to another), so the calls run in one task and the others
/// only wait for its output.
pub fn spawn_shared<T: Clone + 'static>(future: impl Future<Output = T> + 'static) -> SharedTask<T> {
    let (done, output) = oneshot::channel();
    spawn(async move {
        let _ = done.send(future.await);
    });
    output.map(Result::ok).boxed_local().shared()
}

fn schedule(delay: Duration, task: impl Future<Output = ()> + 'static) -> ScheduledTask {
    let id = next_closure_id();
    TASKS.with(|tasks| tasks.borrow_mut().insert(id, Box::pin(task)));
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    runtime::schedule_run_async(id, millis);
    ScheduledTask { id }
}

/// Runs the task scheduled under `id` to completion: a numbered task
/// through `numbered`, a closure from here (one another instance left is
/// not here, and nothing runs). Called by the `main-thread.run` export that
/// [`export!`](crate::export) generates.
#[doc(hidden)]
pub async fn run(id: u64, numbered: fn(u64)) {
    if id < CLOSURE_TASKS {
        return numbered(id);
    }
    let task = TASKS.with(|tasks| tasks.borrow_mut().remove(&id));
    if let Some(task) = task {
        task.await;
    }
}

/// Completes after `delay`, without blocking the main thread: other calls
/// are served meanwhile. Dropping it early cancels its timer.
pub fn sleep(delay: Duration) -> Sleep {
    let state = Rc::new(SleepState { done: Cell::new(false), waker: RefCell::new(None) });
    let wake = state.clone();
    let timer = schedule_run_async(delay, move || {
        wake.done.set(true);
        if let Some(waker) = wake.waker.borrow_mut().take() {
            waker.wake();
        }
    });
    Sleep { state, timer }
}

#[derive(Debug)]
struct SleepState {
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The future [`sleep`] returns.
#[derive(Debug)]
pub struct Sleep {
    state: Rc<SleepState>,
    timer: ScheduledTask,
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if !self.state.done.get() {
            self.timer.cancel();
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.done.get() {
            return Poll::Ready(());
        }
        *self.state.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
