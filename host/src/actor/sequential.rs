//! The main loop of a sync-only component: each call runs to completion
//! before the next one starts, on an engine without concurrency support,
//! where a call costs a fraction of a concurrent one.
//!
//! Such a component has no hooks and schedules no tasks: `on-stop` and
//! `main-thread.run` are async functions, which it cannot export.

use super::machine::{self, Action, During};
use super::swap::{self, Draining};
use super::{Actor, BATCH, Served, reply_outcome, target};
use crate::error::EndpointFailure;
use crate::events::Events;

/// Serves calls one at a time until the endpoint terminates or a swap
/// takes it over. A swap has nothing to wait for: no call is in flight
/// between two calls.
pub(super) async fn serve(actor: &mut Actor, events: &Events) -> Result<Served, EndpointFailure> {
    let Actor { actor_ref: actor, store, funcs, inbox, .. } = actor;
    debug_assert!(funcs.on_start.is_none() && funcs.on_stop.is_none() && funcs.run_task.is_none());
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
                    Action::Finish | Action::Stop => return Ok(Served::Ended),
                    Action::Swap(order) => {
                        if let Some(request) = swap::admit(actor, &funcs.info, order, events) {
                            return Ok(Served::Swap(Draining::new(request, 0).hand_off_stateless()));
                        }
                    }
                    Action::Nothing => {}
                }
            }
            received = inbox.mailbox.recv_many(&mut inbox.batch, BATCH), if mailbox_open => {
                mailbox_open = received > 0;
                crate::endpoint::serving_here();
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
