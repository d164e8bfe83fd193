//! The main loop of a component that uses component-model async.
//!
//! Everything runs inside one `run_concurrent` of the endpoint's store. Each
//! call starts a guest task; a task that awaits (a reply from another
//! endpoint, say) yields the instance, and the loop starts the next call. The
//! guest still never runs on two threads, nor two tasks at once: Flink's
//! main-thread guarantee, with futures. Calls that wait in the mailbox
//! together go to the guest in batches where they can ([`super::batch`]).

use std::future::poll_fn;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::oneshot;
use wasmtime::component::Accessor;

use super::batch::{self, Encoded, Kind, Member, Pending, RunningAsks, Taken};
use super::machine::{self, Action, During};
use super::swap::{self, Draining};
use super::{Actor, BATCH, Inbox, Served, reply_outcome, target};
use crate::capability::{Outcomes, StoreData, TASK_BYTES, Timers};
use crate::endpoint::{ActorRef, Call, Termination};
use crate::engine::{BatchAsyncFunc, BatchFunc, Called, Delivered, GatewayFunc, InstanceFuncs, Queued, SnapshotFunc};
use crate::error::EndpointFailure;
use crate::events::Events;
use crate::gateway::Value;

/// A guest task the loop is waiting for.
#[derive(Debug)]
enum Job {
    /// An ask; its reply is `pending[key]`.
    Ask { key: usize, during: During },
    /// A tell or a scheduled task: nobody waits for it.
    Fire(During),
    /// `on-stop`: when it returns, the endpoint terminates.
    OnStop,
    /// A batch of calls, in order. If an async function awaits, the
    /// batch's asks are answered through `batch-replies` instead, each as
    /// soon as it returns, and the batch returns when all have.
    Batch(Vec<Member>),
}

impl Job {
    /// How many calls the task holds, against `max-in-flight`.
    fn calls(&self) -> usize {
        match self {
            Job::Batch(members) => members.len(),
            _ => 1,
        }
    }

    /// What it counts for in flight: its calls, and whether it is a task
    /// the endpoint scheduled rather than a call.
    fn weight(&self) -> Weight {
        Weight { calls: self.calls(), task: matches!(self, Job::Fire(During::Task(_))) }
    }

    fn during(&self) -> During {
        match self {
            Job::Ask { during, .. } | Job::Fire(during) => *during,
            Job::OnStop => During::OnStop,
            Job::Batch(_) => During::Batch,
        }
    }
}

/// What a guest task counts for in flight.
#[derive(Clone, Copy)]
struct Weight {
    calls: usize,
    task: bool,
}

/// The guest tasks the loop is waiting for, how many calls they hold, and
/// how many of them are the endpoint's scheduled tasks.
struct InFlight<F> {
    futures: FuturesUnordered<F>,
    calls: usize,
    tasks: usize,
}

impl<F: Future<Output = (Job, R)>, R> InFlight<F> {
    fn new() -> Self {
        Self { futures: FuturesUnordered::new(), calls: 0, tasks: 0 }
    }

    fn push(&mut self, weight: Weight, task: F) {
        self.calls += weight.calls;
        self.tasks += usize::from(weight.task);
        self.futures.push(task);
    }

    async fn next(&mut self) -> Option<(Job, R)> {
        let (job, result) = self.futures.next().await?;
        let weight = job.weight();
        self.calls -= weight.calls;
        self.tasks -= usize::from(weight.task);
        Some((job, result))
    }

    /// Calls in flight, scheduled tasks aside: what a swap waits for.
    fn calls_only(&self) -> usize {
        self.calls - self.tasks
    }
}

/// What a guest task does.
enum Work<'a> {
    /// One function, called with these arguments.
    One { func: &'a GatewayFunc, args: Vec<Value>, has_result: bool },
    /// A batch, through `weir:rpc/batch.deliver`.
    Batch { deliver: &'a BatchFunc, functions: Vec<u64>, args: bytes::Bytes, ends: Vec<u32> },
    /// A batch of async calls, through `weir:rpc/batch.deliver-async`.
    BatchAsync { deliver: &'a BatchAsyncFunc, functions: Vec<u64>, args: bytes::Bytes, ends: Vec<u32>, slots: Vec<u32> },
    /// A scheduled task, through `weir:rpc/main-thread.run`, queued already.
    Task(Queued<(u64,), ()>),
}

/// What a guest task returned.
enum Done {
    One(Option<Value>),
    Batch(bytes::Bytes, Vec<u32>),
}

/// Serves in one `run_concurrent` of the store until the endpoint
/// terminates or a swap has drained it.
pub(super) async fn serve(actor: &mut Actor, events: &Events) -> Result<Served, EndpointFailure> {
    let Actor { actor_ref, store, funcs, inbox, max_in_flight, .. } = actor;
    let max_in_flight = *max_in_flight;
    let result = store
        .run_concurrent(async |accessor| serve_loop(accessor, actor_ref, funcs, inbox, max_in_flight, events).await)
        .await;
    result.unwrap_or_else(|error| {
        // The event loop itself failed: a trap surfaced outside any one call.
        Err(machine::failure(actor_ref, store.data(), During::Unknown, &error))
    })
}

async fn serve_loop(
    accessor: &Accessor<StoreData>,
    actor: &ActorRef,
    funcs: &InstanceFuncs,
    inbox: &mut Inbox,
    max_in_flight: usize,
    events: &Events,
) -> Result<Served, EndpointFailure> {
    let fail = |during: During, error: wasmtime::Error| -> EndpointFailure {
        accessor.with(|mut access| machine::failure(actor, access.data_mut(), during, &error))
    };
    let mut running = InFlight::new();
    // The function each ask of a running async batch called, by its slot.
    let mut batched_asks = RunningAsks::default();
    // Batchable calls taken from the mailbox, not yet started; kept across
    // wake-ups for its buffer.
    let mut waiting = Pending::default();
    let (mut control_open, mut mailbox_open) = (true, true);
    // A swap waiting for the calls in flight; nothing new starts meanwhile.
    let mut draining: Option<Draining> = None;
    loop {
        if draining.is_some() && running.calls_only() == 0 && batched_asks.is_empty() {
            let drained = draining.take().expect("a swap is draining");
            let snapshot =
                async |export: &SnapshotFunc| export.call_concurrent(accessor, ()).await.map(|(state,)| state);
            match drained.hand_off(actor, funcs, snapshot, running.tasks, events).await {
                Ok(Some(handoff)) => return Ok(Served::Swap(handoff)),
                Ok(None) => {}
                Err(error) => return Err(fail(During::Snapshot, error)),
            }
        }
        let room = max_in_flight.saturating_sub(running.calls);
        let serving = draining.is_none();
        let drain_deadline = draining.as_ref().map(Draining::deadline);
        tokio::select! {
            biased;
            command = inbox.control.recv(), if control_open && serving => {
                control_open = command.is_some();
                match machine::on_control(actor, command, funcs.on_stop.is_some()) {
                    Action::Start(done) => {
                        start(accessor, actor, funcs, done, fail, events).await?;
                        // Whoever waits for the start (a parent, say) was
                        // woken into this worker's LIFO slot, which no
                        // other worker takes: yielding runs it now, and
                        // leaves this endpoint's first work (what
                        // `on-start` spawned) to an idle worker, rather
                        // than making it wait for that work. Trivial job,
                        // p=4: 1.61 -> 1.52 ms, faster in 15 of 22 runs.
                        tokio::task::yield_now().await;
                    }
                    Action::Stop => {
                        if let Some(on_stop) = &funcs.on_stop {
                            running.push(Job::OnStop.weight(), execute(accessor, one(on_stop, Vec::new(), true), Job::OnStop));
                        }
                    }
                    Action::Finish => return Ok(Served::Ended),
                    Action::Swap(order) => {
                        draining = swap::admit(actor, &funcs.info, order, events)
                            .map(|request| Draining::new(request, running.calls_only()));
                    }
                    Action::Nothing => {}
                }
            }
            Some((job, result)) = running.next() => match (job, result) {
                (Job::Ask { key, .. }, Ok(Done::One(value))) => {
                    actor.stats.ask();
                    inbox.pending.remove(key).send(reply_outcome(actor, value));
                }
                (Job::Fire(During::Task(_)), Ok(_)) => actor.stats.task(),
                (Job::Fire(_), Ok(_)) => actor.stats.tell(),
                (Job::OnStop, Ok(Done::One(value))) => {
                    return machine::hook_outcome(value, EndpointFailure::StopFailed).map(|()| Served::Ended);
                }
                (Job::Batch(members), Ok(Done::Batch(outcomes, ends))) => {
                    let answers = &mut batch::Answers { pending: &mut inbox.pending, running: &mut batched_asks };
                    if let Err(message) = batch::complete(actor, members, &outcomes, &ends, answers) {
                        return Err(EndpointFailure::Host { during: "a batch".into(), message });
                    }
                }
                (job, Ok(_)) => unreachable!("{job:?} ends as it started"),
                (job, Err(error)) => return Err(fail(job.during(), error)),
            },
            (slot, outcome) = poll_fn(|cx| accessor.with(|mut access| batch_outcome(access.data_mut(), cx))),
                if !batched_asks.is_empty() => {
                batch::answer(actor, slot, outcome, &mut batched_asks, &mut inbox.pending);
            }
            () = until(drain_deadline), if !serving => {
                let drained = draining.take().expect("a swap is draining");
                drained.time_out(actor, &funcs.info, running.calls_only(), events);
            }
            task = poll_fn(|cx| accessor.with(|mut access| due_task(access.data_mut(), cx))), if serving => {
                // Loading refuses components that schedule tasks without `main-thread`.
                let run = funcs.run_task.as_ref().expect("a component that schedules tasks exports main-thread");
                // Queued in the store at once: a swap waits for calls, not
                // for tasks, and may hand off before the loop polls this
                // one again; a task taken from the timers but not queued
                // then would never run.
                let queued = accessor.with(|mut access| run.queue(&mut access, (task,)));
                let job = Job::Fire(During::Task(task));
                running.push(job.weight(), execute(accessor, Work::Task(queued), job));
            }
            received = inbox.mailbox.recv_many(&mut inbox.batch, BATCH.min(room).max(1)),
                if mailbox_open && room > 0 && serving => {
                mailbox_open = received > 0;
                crate::endpoint::serving_here();
                if received > 1 && funcs.delivers_batches() {
                    top_up(inbox, BATCH.min(room)).await;
                }
                for call in inbox.batch.drain(..) {
                    let Some(call) = machine::admit(actor, call) else { continue };
                    let kind = Pending::kind_of(funcs, &call);
                    if kind.is_none_or(|kind| !waiting.accepts(kind)) {
                        let flushed = flush(actor, funcs, &mut waiting, &mut inbox.pending, &mut batched_asks);
                        if let Some((work, job)) = flushed {
                            running.push(job.weight(), execute(accessor, work, job));
                        }
                    }
                    match kind {
                        Some(kind) => waiting.push(call, kind),
                        None => {
                            let single = single(actor, funcs, call, &mut inbox.pending);
                            if let Some((work, job)) = single {
                                running.push(job.weight(), execute(accessor, work, job));
                            }
                        }
                    }
                }
                let flushed = flush(actor, funcs, &mut waiting, &mut inbox.pending, &mut batched_asks);
                if let Some((work, job)) = flushed {
                    running.push(job.weight(), execute(accessor, work, job));
                }
            }
        }
    }
}

/// When asks stream in from a thread that runs no endpoint, lets the
/// runtime run once, then adds to `inbox.batch` (up to `limit`) the calls
/// that arrived meanwhile, without waiting for more.
///
/// A guest task costs about a microsecond and a half, more than a small
/// call. A sender of pipelined asks on another thread sends its next asks
/// as the replies reach it, alongside the endpoint, so the endpoint takes
/// them a few at a time, each few in a guest task of their own; after one
/// pass of the runtime, they join one batch. Pipelined asks into an async
/// function from another thread went from 0.54-0.86M/s (batches of 6-12
/// calls) to about 1.05M/s. A lone call never waits; tells wait for no
/// reply, so a sender faster than the endpoint fills the mailbox by
/// itself; and calls from the endpoints' own threads were all sent when
/// the endpoint runs. Waiting would only cost those.
async fn top_up(inbox: &mut Inbox, limit: usize) {
    let streaming = inbox.batch.last().is_some_and(|call| call.from_elsewhere && call.reply.is_some());
    if !streaming || inbox.batch.len() >= limit {
        return;
    }
    tokio::task::yield_now().await;
    // A lifecycle command that came meanwhile goes before later calls.
    while inbox.batch.len() < limit && inbox.control.is_empty() {
        match inbox.mailbox.try_recv() {
            Ok(call) => inbox.batch.push(call),
            Err(_) => break,
        }
    }
}

/// Completes at `deadline`; never without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The guest task for one call taken from the mailbox, unless the call is
/// refused (its function is unknown).
fn single<'a>(
    actor: &ActorRef,
    funcs: &'a InstanceFuncs,
    call: Call,
    pending: &mut slab::Slab<crate::endpoint::Reply>,
) -> Option<(Work<'a>, Job)> {
    let (call, func, has_result) = target(actor, funcs, call)?;
    let during = During::Function(call.function);
    let job = match call.reply {
        Some(reply) => Job::Ask { key: pending.insert(reply), during },
        None => Job::Fire(during),
    };
    Some((one(func, call.args, has_result), job))
}

/// The guest task for the batchable calls taken so far: one call on its
/// own, or a batch.
fn flush<'a>(
    actor: &ActorRef,
    funcs: &'a InstanceFuncs,
    waiting: &mut Pending,
    pending: &mut slab::Slab<crate::endpoint::Reply>,
    batched_asks: &mut RunningAsks,
) -> Option<(Work<'a>, Job)> {
    let batch = match waiting.take(actor, pending) {
        Taken::Nothing => return None,
        Taken::One(call) => return single(actor, funcs, call, pending),
        Taken::Batch(batch) => batch,
    };
    // Only a component that delivers batches of a kind gets them.
    match batch.kind {
        Kind::Sync => {
            let Encoded { members, functions, args, ends, .. } = batch;
            let deliver = funcs.batch.as_ref().expect("a component that delivers batches");
            Some((Work::Batch { deliver, functions, args, ends }, Job::Batch(members)))
        }
        Kind::Async => {
            let slots = batch.slots();
            let Encoded { members, functions, args, ends, .. } = batch;
            let deliver = funcs.batch_async.as_ref().expect("a component that delivers async batches");
            // Known before the batch starts: an answer may come before the
            // loop learns that the batch returned.
            batched_asks.extend(&members);
            Some((Work::BatchAsync { deliver, functions, args, ends, slots }, Job::Batch(members)))
        }
    }
}

/// The next answer of an async batch's ask: its slot and outcome.
fn batch_outcome(data: &mut StoreData, cx: &mut std::task::Context<'_>) -> std::task::Poll<(u32, Vec<u8>)> {
    match data.state::<Outcomes>() {
        Some(outcomes) => outcomes.poll_next(cx),
        None => std::task::Poll::Pending,
    }
}

/// The next scheduled task that is due, its charge returned.
fn due_task(data: &mut StoreData, cx: &mut std::task::Context<'_>) -> std::task::Poll<u64> {
    let Some(timers) = data.state::<Timers>() else { return std::task::Poll::Pending };
    let task = std::task::ready!(timers.poll_due(cx));
    data.refund(TASK_BYTES);
    std::task::Poll::Ready(task)
}

/// Runs `on-start` (if exported) before anything else, and reports how it
/// went to whoever started the endpoint.
async fn start(
    accessor: &Accessor<StoreData>,
    actor: &ActorRef,
    funcs: &InstanceFuncs,
    done: oneshot::Sender<Result<(), EndpointFailure>>,
    fail: impl Fn(During, wasmtime::Error) -> EndpointFailure,
    events: &Events,
) -> Termination {
    let outcome = match &funcs.on_start {
        Some(on_start) => {
            match execute(accessor, one(on_start, Vec::new(), true), Job::Fire(During::OnStart)).await.1 {
                Ok(Done::One(value)) => machine::hook_outcome(value, EndpointFailure::StartFailed),
                Ok(Done::Batch(..)) => unreachable!("on-start is one call"),
                Err(error) => Err(fail(During::OnStart, error)),
            }
        }
        None => Ok(()),
    };
    if outcome.is_ok() {
        machine::started(actor, events);
    }
    let _ = done.send(outcome.clone());
    outcome
}

fn one(func: &GatewayFunc, args: Vec<Value>, has_result: bool) -> Work<'_> {
    Work::One { func, args, has_result }
}

/// Starts a guest task for `work` (a scheduled task's is queued already)
/// and waits for its result.
async fn execute(accessor: &Accessor<StoreData>, work: Work<'_>, job: Job) -> (Job, wasmtime::Result<Done>) {
    let done = match work {
        Work::One { func, args, has_result } => {
            let called: Called = func.call_concurrent(accessor, args, has_result).await;
            called.map(Done::One)
        }
        Work::Batch { deliver, functions, args, ends } => {
            let delivered: Delivered = deliver.call_concurrent(accessor, (functions, args, ends)).await.map(|(d,)| d);
            delivered.map(|(outcomes, ends)| Done::Batch(outcomes, ends))
        }
        Work::BatchAsync { deliver, functions, args, ends, slots } => {
            let delivered: Delivered =
                deliver.call_concurrent(accessor, (functions, args, ends, slots)).await.map(|(d,)| d);
            delivered.map(|(outcomes, ends)| Done::Batch(outcomes, ends))
        }
        Work::Task(queued) => queued.result(accessor).await.map(|()| Done::One(None)),
    };
    (job, done)
}
