//! Serves `echo-sync`: a world without any async, so `cargo component` can
//! build it and the host runs it on its plain engine.

#[allow(warnings)]
mod bindings;

use std::cell::Cell;

use bindings::exports::weir::examples::echo_sync::Guest;

thread_local! {
    /// Notifications received, and the sum of their values.
    static NOTIFIED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

struct EchoSync;

impl Guest for EchoSync {
    fn ping(x: u64) -> u64 {
        x
    }

    fn echo(payload: Vec<u8>) -> Vec<u8> {
        payload
    }

    fn notify(x: u64) {
        NOTIFIED.with(|n| {
            let (count, sum) = n.get();
            n.set((count + 1, sum.wrapping_add(x)));
        });
    }

    fn notified() -> (u64, u64) {
        NOTIFIED.with(Cell::get)
    }
}

bindings::export!(EchoSync with_types_in bindings);
