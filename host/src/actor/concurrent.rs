//! The main loop of a component that uses component-model async.
//!
//! Everything runs inside one `run_concurrent` of the endpoint's store. Each
//! call starts a guest task; a task that awaits (a reply from another
//! endpoint, say) yields the instance, and the loop starts the next call. The
//! guest still never runs on two threads, nor two tasks at once: Flink's
//! main-thread guarantee, with futures.

use std::future::poll_fn;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::oneshot;
use tokio_util::time::DelayQueue;
use wasmtime::component::{Accessor, Func, Val};

use super::machine::{self, Action, During};
use super::{Actor, BATCH, Inbox, take_result};
use crate::component::{InstanceFuncs, StoreData};
use crate::endpoint::{ActorRef, Termination};
use crate::error::EndpointFailure;

/// A guest task the loop is waiting for.
#[derive(Clone, Copy, Debug)]
enum Job {
    /// An ask; its reply is `pending[key]`.
    Ask { key: usize, during: During },
    /// A tell or a scheduled task: nobody waits for it.
    Fire(During),
    /// `on-stop`: when it returns, the endpoint terminates.
    OnStop,
}

impl Job {
    fn during(self) -> During {
        match self {
            Job::Ask { during, .. } | Job::Fire(during) => during,
            Job::OnStop => During::OnStop,
        }
    }
}

pub(super) async fn drive(actor: Actor) -> (Termination, Option<Inbox>) {
    let Actor { actor_ref, mut store, funcs, mut inbox } = actor;
    let result = store.run_concurrent(async |accessor| serve(accessor, &actor_ref, &funcs, &mut inbox).await).await;
    let termination = result.unwrap_or_else(|error| {
        // The event loop itself failed: a trap surfaced outside any one call.
        Err(machine::failure(&actor_ref, store.data(), During::Unknown, &error))
    });
    (termination, Some(inbox))
}

async fn serve(
    accessor: &Accessor<StoreData>,
    actor: &ActorRef,
    funcs: &InstanceFuncs,
    inbox: &mut Inbox,
) -> Termination {
    let fail = |during: During, error: wasmtime::Error| -> EndpointFailure {
        accessor.with(|mut access| machine::failure(actor, access.data_mut(), during, &error))
    };
    let mut running = FuturesUnordered::new();
    let mut delayed = DelayQueue::new();
    let (mut control_open, mut mailbox_open) = (true, true);
    loop {
        tokio::select! {
            biased;
            command = inbox.control.recv(), if control_open => {
                control_open = command.is_some();
                match machine::on_control(actor, command, funcs.on_stop.is_some()) {
                    Action::Start(done) => start(accessor, funcs, done, fail).await?,
                    Action::Stop => {
                        if let Some(on_stop) = funcs.on_stop {
                            running.push(execute(accessor, on_stop, Vec::new(), true, Job::OnStop));
                        }
                    }
                    Action::Finish => return Ok(()),
                    Action::Nothing => {}
                }
            }
            Some((job, result)) = running.next() => match (job, result) {
                (Job::Ask { key, .. }, Ok(value)) => {
                    actor.stats.ask();
                    inbox.pending.remove(key).send(Ok(value));
                }
                (Job::Fire(During::Task(_)), Ok(_)) => actor.stats.task(),
                (Job::Fire(_), Ok(_)) => actor.stats.tell(),
                (Job::OnStop, Ok(value)) => return machine::hook_outcome(value, EndpointFailure::StopFailed),
                (job, Err(error)) => return Err(fail(job.during(), error)),
            },
            Some(scheduled) = inbox.tasks.recv() => {
                if scheduled.delay.is_zero() {
                    let (run, args, job) = task_call(funcs, scheduled.task);
                    running.push(execute(accessor, run, args, false, job));
                } else {
                    delayed.insert(scheduled.task, scheduled.delay);
                }
            }
            Some(expired) = poll_fn(|cx| delayed.poll_expired(cx)), if !delayed.is_empty() => {
                let (run, args, job) = task_call(funcs, expired.into_inner());
                running.push(execute(accessor, run, args, false, job));
            }
            received = inbox.mailbox.recv_many(&mut inbox.batch, BATCH), if mailbox_open => {
                mailbox_open = received > 0;
                for call in inbox.batch.drain(..) {
                    let Some(call) = machine::admit(actor, call) else { continue };
                    let func = funcs.gateway[call.function.0 as usize];
                    let has_result = actor.component.function(call.function).signature.is_ask();
                    let during = During::Function(call.function);
                    let job = match call.reply {
                        Some(reply) => Job::Ask { key: inbox.pending.insert(reply), during },
                        None => Job::Fire(during),
                    };
                    running.push(execute(accessor, func, call.args, has_result, job));
                }
            }
        }
    }
}

/// Runs `on-start` (if exported) before anything else, and reports how it
/// went to whoever started the endpoint.
async fn start(
    accessor: &Accessor<StoreData>,
    funcs: &InstanceFuncs,
    done: oneshot::Sender<Result<(), EndpointFailure>>,
    fail: impl Fn(During, wasmtime::Error) -> EndpointFailure,
) -> Termination {
    let outcome = match funcs.on_start {
        Some(on_start) => match execute(accessor, on_start, Vec::new(), true, Job::Fire(During::OnStart)).await.1 {
            Ok(value) => machine::hook_outcome(value, EndpointFailure::StartFailed),
            Err(error) => Err(fail(During::OnStart, error)),
        },
        None => Ok(()),
    };
    let _ = done.send(outcome.clone());
    outcome
}

/// The function, arguments and job of scheduled task `task`.
fn task_call(funcs: &InstanceFuncs, task: u64) -> (Func, Vec<Val>, Job) {
    // Loading refuses components that schedule tasks without `main-thread`.
    let run = funcs.run_task.expect("component loaded without main-thread export scheduled a task");
    (run, vec![Val::U64(task)], Job::Fire(During::Task(task)))
}

/// Starts a guest task for `func` and waits for its result.
async fn execute(
    accessor: &Accessor<StoreData>,
    func: Func,
    args: Vec<Val>,
    has_result: bool,
    job: Job,
) -> (Job, wasmtime::Result<Option<Val>>) {
    let mut results = [Val::Bool(false)];
    let results = &mut results[..usize::from(has_result)];
    let outcome = func.call_concurrent(accessor, &args, results).await;
    (job, outcome.map(|()| take_result(results)))
}
