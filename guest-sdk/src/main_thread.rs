//! Work on the endpoint's own main thread: Flink's `runAsync` and
//! `scheduleRunAsync`, background tasks, and a `sleep` built on them.
//!
//! A scheduled task is kept here under an id; the host puts a message with
//! the id into the endpoint's mailbox when it is due and calls the exported
//! `main-thread.run`, in order with every other message. A task that awaits
//! lets the endpoint serve other calls meanwhile. Tasks still pending when
//! the endpoint terminates are dropped.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::runtime;

type Task = Pin<Box<dyn Future<Output = ()>>>;

thread_local! {
    static TASKS: RefCell<HashMap<u64, Task>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Runs `task` on the main thread once the messages before it have been
/// handled (Flink's `runAsync`).
pub fn run_async(task: impl FnOnce() + 'static) {
    schedule(Duration::ZERO, async move { task() });
}

/// Runs `task` on the main thread after `delay` (Flink's
/// `scheduleRunAsync`), with millisecond resolution.
pub fn schedule_run_async(delay: Duration, task: impl FnOnce() + 'static) {
    schedule(delay, async move { task() });
}

/// Runs `future` on the main thread as a task of its own: the endpoint keeps
/// serving calls while it awaits. Use it from `on_start` for work that has
/// to wait, such as registering with another endpoint.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    schedule(Duration::ZERO, future);
}

fn schedule(delay: Duration, task: impl Future<Output = ()> + 'static) {
    let id = NEXT_ID.with(|next| next.replace(next.get() + 1));
    TASKS.with(|tasks| tasks.borrow_mut().insert(id, Box::pin(task)));
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    runtime::schedule_run_async(id, millis);
}

/// Runs the task scheduled under `id` to completion. Called by the
/// `main-thread.run` export that [`export!`](crate::export) generates.
#[doc(hidden)]
pub async fn run(id: u64) {
    let task = TASKS.with(|tasks| tasks.borrow_mut().remove(&id));
    if let Some(task) = task {
        task.await;
    }
}

/// Completes after `delay`, without blocking the main thread: other calls
/// are served meanwhile.
pub fn sleep(delay: Duration) -> Sleep {
    let state = Rc::new(SleepState { done: Cell::new(false), waker: RefCell::new(None) });
    let wake = state.clone();
    schedule_run_async(delay, move || {
        wake.done.set(true);
        if let Some(waker) = wake.waker.borrow_mut().take() {
            waker.wake();
        }
    });
    Sleep { state }
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
