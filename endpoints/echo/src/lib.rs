//! Serves the `echo` gateway: one function of each call kind.

weir_guest::generate!({
    world: "weir:examples/echo-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::Cell;

use exports::weir::examples::echo::Guest;

thread_local! {
    /// Notifications received, and the sum of their values.
    static NOTIFIED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn count(x: u64) {
    NOTIFIED.with(|n| {
        let (count, sum) = n.get();
        n.set((count + 1, sum.wrapping_add(x)));
    });
}

struct Echo;

impl weir_guest::Endpoint for Echo {}

impl Guest for Echo {
    fn ping(x: u64) -> u64 {
        x
    }

    async fn ping_async(x: u64) -> u64 {
        x
    }

    fn echo(payload: Vec<u8>) -> Vec<u8> {
        payload
    }

    fn notify(x: u64) {
        count(x);
    }

    async fn notify_async(x: u64) {
        count(x);
    }

    fn notified() -> (u64, u64) {
        NOTIFIED.with(Cell::get)
    }
}

weir_guest::export!(Echo);
