//! Task components uploaded ahead of their jobs' submission (Flink's
//! BlobServer): kept in memory by key until a submission claims them; only
//! the last [`KEPT`] unclaimed ones, so uploads never submitted cannot
//! fill the Dispatcher.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

/// Unclaimed uploads kept at most.
const KEPT: usize = 16;

thread_local! {
    static UPLOADS: RefCell<VecDeque<(u64, Vec<u8>)>> = const { RefCell::new(VecDeque::new()) };
    static LAST_KEY: Cell<u64> = const { Cell::new(0) };
}

/// Keeps `component`; the key that claims it.
pub fn keep(component: Vec<u8>) -> u64 {
    let key = LAST_KEY.get() + 1;
    LAST_KEY.set(key);
    UPLOADS.with(|uploads| {
        let mut uploads = uploads.borrow_mut();
        if uploads.len() == KEPT {
            uploads.pop_front();
        }
        uploads.push_back((key, component));
    });
    key
}

/// Claims the component uploaded under `key`.
pub fn take(key: u64) -> Option<Vec<u8>> {
    UPLOADS.with(|uploads| {
        let mut uploads = uploads.borrow_mut();
        let index = uploads.iter().position(|(kept, _)| *kept == key)?;
        uploads.remove(index).map(|(_, component)| component)
    })
}
