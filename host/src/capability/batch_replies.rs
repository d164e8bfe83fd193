//! `weir:rpc/batch-replies`: how a guest answers the asks of an async
//! batch (`weir:rpc/batch.deliver-async`) one by one, as each returns. The
//! outcomes wait here, in the endpoint's store, until its main loop takes
//! them and answers the callers.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{HasSelf, Linker};

use super::bindings::batch_replies;
use super::store::StoreData;
use super::{Capability, ComponentInfo};

/// The interface, as components import it.
pub(crate) const INTERFACE: &str = "weir:rpc/batch-replies@0.1.0";

/// Lends `weir:rpc/batch-replies`.
#[derive(Debug)]
pub(crate) struct BatchReplies;

impl Capability for BatchReplies {
    fn describe(&self) -> &'static str {
        INTERFACE
    }

    fn lends(&self, name: &str) -> bool {
        name == INTERFACE
    }

    fn link(&self, linker: &mut Linker<StoreData>, _component: &ComponentInfo) -> wasmtime::Result<()> {
        batch_replies::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
    }

    fn state(&self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(Outcomes::default()))
    }
}

/// Outcomes the guest has given and the main loop has not taken yet.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    ready: VecDeque<(u32, Vec<u8>)>,
    waker: Option<Waker>,
}

impl Outcomes {
    /// The next outcome: the ask's slot, and its status and encoded result.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<(u32, Vec<u8>)> {
        match self.ready.pop_front() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl batch_replies::Host for StoreData {
    fn reply(&mut self, slot: u32, outcome: Vec<u8>) {
        if let Some(outcomes) = self.state::<Outcomes>() {
            outcomes.ready.push_back((slot, outcome));
            if let Some(waker) = outcomes.waker.take() {
                waker.wake();
            }
        }
    }
}
