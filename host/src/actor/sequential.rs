//! The main loop of a sync-only component: each call runs to completion
//! before the next one starts, on an engine without concurrency support,
//! where a call costs a fraction of a concurrent one.
//!
//! Such a component has no hooks and schedules no tasks: `on-stop` and
//! `main-thread.run` are async functions, which it cannot export.

use wasmtime::Store;

use super::machine::{self, Action, During};
use super::{Actor, BATCH, Inbox, reply_outcome, target};
use crate::capability::StoreData;
use crate::endpoint::{ActorRef, Termination};
use crate::engine::InstanceFuncs;
use crate::events::Events;

pub(super) async fn drive(actor: Actor, events: &Events) -> (Termination, Option<Inbox>) {
    let Actor { actor_ref, mut store, funcs, mut inbox, .. } = actor;
    debug_assert!(funcs.on_start.is_none() && funcs.on_stop.is_none() && funcs.run_task.is_none());
    let termination = serve(&actor_ref, &mut store, &funcs, &mut inbox, events).await;
    (termination, Some(inbox))
}

async fn serve(
    actor: &ActorRef,
    store: &mut Store<StoreData>,
    funcs: &InstanceFuncs,
    inbox: &mut Inbox,
    events: &Events,
) -> Termination {
    let (mut control_open, mut mailbox_open) = (true, true);
    loop {
        tokio::select! {
            biased;
            command = inbox.control.recv(), if control_open => {
                control_open = command.is_some();
                match machine::on_control(actor, command, false) {
                    Action::Start(done) => {
                        machine::started(actor, events);
                        let _ = done.send(Ok(()));
                    }
                    Action::Finish | Action::Stop => return Ok(()),
                    Action::Nothing => {}
                }
            }
            received = inbox.mailbox.recv_many(&mut inbox.batch, BATCH), if mailbox_open => {
                mailbox_open = received > 0;
                // Taken in order from the back; on a trap the calls not yet
                // run stay in the batch, in order, for `finish` to answer.
                inbox.batch.reverse();
                while let Some(call) = inbox.batch.pop() {
                    let Some(call) = machine::admit(actor, call) else { continue };
                    let Some((call, func, has_result)) = target(actor, funcs, call) else { continue };
                    let key = call.reply.map(|reply| inbox.pending.insert(reply));
                    match func.call(store, call.args, has_result).await {
                        Ok(value) => match key {
                            Some(key) => {
                                actor.stats.ask();
                                inbox.pending.remove(key).send(reply_outcome(actor, value));
                            }
                            None => actor.stats.tell(),
                        },
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
