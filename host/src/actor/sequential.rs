//! The main loop of a sync-only component: each call runs to completion
//! before the next one starts, on an engine without concurrency support,
//! where a call costs a fraction of a concurrent one.

use std::future::poll_fn;

use tokio_util::time::DelayQueue;
use wasmtime::Store;
use wasmtime::component::{Func, Val};

use super::machine::{self, Action, During};
use super::{Actor, BATCH, Inbox};
use crate::component::{InstanceFuncs, StoreData};
use crate::endpoint::{ActorRef, Termination};
use crate::error::EndpointFailure;

pub(super) async fn drive(actor: Actor) -> (Termination, Option<Inbox>) {
    let Actor {
        actor_ref,
        mut store,
        funcs,
        mut inbox,
    } = actor;
    let termination = serve(&actor_ref, &mut store, &funcs, &mut inbox).await;
    (termination, Some(inbox))
}

async fn serve(
    actor: &ActorRef,
    store: &mut Store<StoreData>,
    funcs: &InstanceFuncs,
    inbox: &mut Inbox,
) -> Termination {
    // A sync-only component cannot export `on-stop`, which is async.
    debug_assert!(funcs.on_stop.is_none());
    let mut delayed = DelayQueue::new();
    let mut mailbox_open = true;
    loop {
        tokio::select! {
            biased;
            command = inbox.control.recv() => match machine::on_control(actor, command, false) {
                Action::Start(done) => {
                    let outcome = match funcs.on_start {
                        Some(on_start) => match invoke(store, on_start, &[], true).await {
                            Ok(value) => machine::hook_outcome(value, EndpointFailure::StartFailed),
                            Err(error) => Err(machine::failure(actor, store.data(), During::OnStart, &error)),
                        },
                        None => Ok(()),
                    };
                    let _ = done.send(outcome.clone());
                    outcome?;
                }
                Action::Finish | Action::Stop => return Ok(()),
                Action::Nothing => {}
            },
            Some(scheduled) = inbox.tasks.recv() => {
                if scheduled.delay.is_zero() {
                    run_task(actor, store, funcs, scheduled.task).await?;
                } else {
                    delayed.insert(scheduled.task, scheduled.delay);
                }
            }
            Some(expired) = poll_fn(|cx| delayed.poll_expired(cx)) => {
                run_task(actor, store, funcs, expired.into_inner()).await?;
            }
            received = inbox.mailbox.recv_many(&mut inbox.batch, BATCH), if mailbox_open => {
                mailbox_open = received > 0;
                // Taken in order from the back; on a trap the calls not yet
                // run stay in the batch, in order, for `finish` to answer.
                inbox.batch.reverse();
                while let Some(call) = inbox.batch.pop() {
                    let Some(call) = machine::admit(actor, call) else { continue };
                    let func = funcs.gateway[call.function.0 as usize];
                    let has_result = actor.component.function(call.function).signature.is_ask();
                    let key = call.reply.map(|reply| inbox.pending.insert(reply));
                    match invoke(store, func, &call.args, has_result).await {
                        Ok(value) => {
                            if let Some(key) = key {
                                let _ = inbox.pending.remove(key).send(Ok(value));
                            }
                        }
                        Err(error) => {
                            inbox.batch.reverse();
                            return Err(machine::failure(actor, store.data(), During::Function(call.function), &error));
                        }
                    }
                }
            }
        }
    }
}

async fn run_task(
    actor: &ActorRef,
    store: &mut Store<StoreData>,
    funcs: &InstanceFuncs,
    task: u64,
) -> Termination {
    let run = funcs
        .run_task
        .expect("component loaded without main-thread export scheduled a task");
    invoke(store, run, &[Val::U64(task)], false)
        .await
        .map(drop)
        .map_err(|error| machine::failure(actor, store.data(), During::Task(task), &error))
}

async fn invoke(
    store: &mut Store<StoreData>,
    func: Func,
    args: &[Val],
    has_result: bool,
) -> wasmtime::Result<Option<Val>> {
    let mut results = [Val::Bool(false)];
    let results = &mut results[..usize::from(has_result)];
    func.call_async(&mut *store, args, results).await?;
    Ok(results
        .first_mut()
        .map(|v| std::mem::replace(v, Val::Bool(false))))
}
