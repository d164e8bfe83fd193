//! Serves the `echo` gateway: one function of each call kind.

weir_guest::generate!({
    world: "weir:examples/echo-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::Cell;

use exports::weir::examples::echo::{Chunk, Guest};

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

    fn absorb(payload: Vec<u8>) -> u32 {
        length(&payload)
    }

    async fn absorb_async(payload: Vec<u8>) -> u32 {
        length(&payload)
    }

    fn sink(payload: Vec<u8>) {
        count(u64::from(length(&payload)));
    }

    fn echo_chunk(chunk: Chunk) -> Chunk {
        chunk
    }

    fn echo_words(words: Vec<u64>) -> Vec<u64> {
        words
    }

    fn echo_text(text: String) -> String {
        text
    }
}

/// A payload's length; guest memory is far below 4 GiB.
fn length(payload: &[u8]) -> u32 {
    u32::try_from(payload.len()).unwrap_or(u32::MAX)
}

weir_guest::export!(Echo);
