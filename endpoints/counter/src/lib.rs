//! Serves the `counter` gateway: a total and a history of appended values.

weir_guest::generate!({ world: "weir:examples/counter-endpoint", path: ["../../wit/rpc", "../../wit/examples"] });

use std::cell::{Cell, RefCell};

use exports::weir::examples::counter::Guest;

thread_local! {
    static TOTAL: Cell<i64> = const { Cell::new(0) };
    static HISTORY: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

struct Counter;

impl weir_guest::Endpoint for Counter {
    /// A counter may start from the history another one handed over, given
    /// as the setting `history = "1,2,3"`.
    fn on_start() -> Result<(), String> {
        if let Some(seed) = weir_guest::config("history").filter(|seed| !seed.is_empty()) {
            let values: Vec<u64> = seed
                .split(',')
                .map(|v| v.trim().parse().map_err(|e| format!("bad history `{v}`: {e}")))
                .collect::<Result<_, _>>()?;
            HISTORY.with(|history| *history.borrow_mut() = values);
        }
        weir_guest::info!("counting at {}", weir_guest::self_address());
        Ok(())
    }
}

impl Guest for Counter {
    fn add(delta: i64) -> i64 {
        TOTAL.with(|total| {
            total.set(total.get().wrapping_add(delta));
            total.get()
        })
    }

    async fn get() -> i64 {
        TOTAL.with(Cell::get)
    }

    fn append(value: u64) {
        HISTORY.with(|history| history.borrow_mut().push(value));
    }

    fn push(value: u64) -> u32 {
        HISTORY.with(|history| {
            let mut history = history.borrow_mut();
            history.push(value);
            u32::try_from(history.len()).unwrap_or(u32::MAX)
        })
    }

    fn history() -> Vec<u64> {
        HISTORY.with(|history| history.borrow().clone())
    }

    fn reset() {
        TOTAL.with(|total| total.set(0));
        HISTORY.with(|history| history.borrow_mut().clear());
    }
}

weir_guest::export!(Counter);
