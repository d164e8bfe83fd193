//! Heartbeats (`weir:rpc/heartbeats`): the host keeps the clock, counts
//! failed RPCs and declares targets lost; the endpoint sends heartbeats
//! through its peers' typed gateways when the host says one is due.
//!
//! An endpoint implements [`Heartbeats`] (how to send a heartbeat request
//! and a heartbeat, and what to do with a lost target), makes a manager,
//! and tells it about incoming heartbeats from its gateway functions:
//!
//! ```ignore
//! let manager = HeartbeatManager::sender("job-master-1", None, Pulse);
//! manager.monitor("task-executor-7");
//! // in the gateway function the target calls back:
//! manager.heartbeat_from(&from);
//! ```

use std::rc::Rc;

use crate::RpcError;

/// The generated bindings, which endpoint crates share through
/// [`generate!`](crate::generate).
#[doc(hidden)]
pub mod wit {
    pub use crate::bindings::weir::rpc::heartbeats::*;
}

pub use wit::HeartbeatSettings;

/// What an endpoint does for its heartbeat manager.
pub trait Heartbeats: 'static {
    /// Asks `target` for a heartbeat (a sender's interval is up).
    fn request(&self, target: String) -> impl Future<Output = Result<(), RpcError>>;
    /// Sends `target` a heartbeat, answering its request.
    fn answer(&self, target: String) -> impl Future<Output = Result<(), RpcError>>;
    /// `target` is lost: silent for the whole timeout (`timed_out`), or
    /// unreachable too often in a row. It is no longer monitored.
    fn lost(&self, target: String, timed_out: bool);
}

/// A heartbeat manager of this endpoint. It lives as long as the endpoint.
#[derive(Debug, Clone)]
pub struct HeartbeatManager {
    manager: Rc<wit::HeartbeatManager>,
}

impl HeartbeatManager {
    /// A sender: it asks every target for a heartbeat each interval. `id`
    /// is how its targets know this endpoint.
    pub fn sender(id: &str, settings: Option<HeartbeatSettings>, heartbeats: impl Heartbeats) -> Self {
        Self::start(id, true, settings, heartbeats)
    }

    /// A receiver: it only answers requests, and watches for heartbeats.
    pub fn receiver(id: &str, settings: Option<HeartbeatSettings>, heartbeats: impl Heartbeats) -> Self {
        Self::start(id, false, settings, heartbeats)
    }

    fn start(id: &str, sender: bool, settings: Option<HeartbeatSettings>, heartbeats: impl Heartbeats) -> Self {
        let manager = Rc::new(wit::HeartbeatManager::new(id, sender, settings));
        let (events, heartbeats) = (manager.clone(), Rc::new(heartbeats));
        crate::spawn(async move {
            loop {
                match events.next_event().await {
                    wit::HeartbeatEvent::Request(rpc) => rpc_task(&events, &heartbeats, rpc, true),
                    wit::HeartbeatEvent::Answer(rpc) => rpc_task(&events, &heartbeats, rpc, false),
                    wit::HeartbeatEvent::TimedOut(target) => heartbeats.lost(target, true),
                    wit::HeartbeatEvent::Unreachable(target) => heartbeats.lost(target, false),
                }
            }
        });
        Self { manager }
    }

    /// Starts watching `target`; its timeout starts now.
    pub fn monitor(&self, target: &str) {
        self.manager.monitor(target);
    }

    /// Stops watching `target`.
    pub fn unmonitor(&self, target: &str) {
        self.manager.unmonitor(target);
    }

    /// A heartbeat from `target` arrived.
    pub fn heartbeat_from(&self, target: &str) {
        self.manager.heartbeat_from(target);
    }

    /// `target` asked for a heartbeat: [`Heartbeats::answer`] follows.
    pub fn requested_by(&self, target: &str) {
        self.manager.requested_by(target);
    }
}

/// Makes one heartbeat RPC in a task of its own and reports how it went.
fn rpc_task(
    manager: &Rc<wit::HeartbeatManager>,
    heartbeats: &Rc<impl Heartbeats>,
    rpc: wit::HeartbeatRpc,
    request: bool,
) {
    let (manager, heartbeats) = (manager.clone(), heartbeats.clone());
    crate::spawn(async move {
        let outcome = if request { heartbeats.request(rpc.target).await } else { heartbeats.answer(rpc.target).await };
        manager.report(rpc.rpc, outcome.as_ref().copied());
    });
}
