//! Exports `weir:examples/echo@0.1.0` with its functions declared in the
//! opposite order to `echo`'s: callers must reach each function by name,
//! whatever its place in the exports.

weir_guest::generate!({
    world: "weir:examples/echo-reordered-endpoint",
    path: ["../../wit/rpc", "wit"],
});

use std::cell::Cell;

thread_local! {
    static NOTIFIED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn count(x: u64) {
    NOTIFIED.with(|n| n.set((n.get().0 + 1, n.get().1 + x)));
}

struct Reordered;

impl weir_guest::Endpoint for Reordered {}

use exports::weir::examples::echo::Chunk;

impl exports::weir::examples::echo::Guest for Reordered {
    fn echo_text(text: String) -> String {
        text
    }

    fn echo_words(words: Vec<u64>) -> Vec<u64> {
        words
    }

    fn echo_chunk(chunk: Chunk) -> Chunk {
        chunk
    }

    fn sink(payload: Vec<u8>) {
        count(payload.len() as u64);
    }

    async fn absorb_async(payload: Vec<u8>) -> u32 {
        payload.len() as u32
    }

    fn absorb(payload: Vec<u8>) -> u32 {
        payload.len() as u32
    }

    fn notified() -> (u64, u64) {
        NOTIFIED.with(Cell::get)
    }

    async fn notify_async(x: u64) {
        count(x);
    }

    fn notify(x: u64) {
        count(x);
    }

    fn echo(payload: Vec<u8>) -> Vec<u8> {
        payload
    }

    async fn ping_async(x: u64) -> u64 {
        x
    }

    fn ping(x: u64) -> u64 {
        x
    }
}

weir_guest::export!(Reordered);
