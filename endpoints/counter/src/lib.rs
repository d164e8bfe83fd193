//! Serves the `counter` gateway: a total and a history of appended values.
//! Its state survives a swap of its component: it hands over version 1 of
//! its layout (the total, then the history, little-endian).

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

    /// A value `append-later` scheduled: it is its own task number.
    fn on_task(value: u64) {
        HISTORY.with(|history| history.borrow_mut().push(value));
    }
}

/// The layout this component hands over.
const LAYOUT: u32 = 1;

impl weir_guest::Handover for Counter {
    fn snapshot() -> Result<Option<weir_guest::State>, String> {
        let mut bytes = TOTAL.with(Cell::get).to_le_bytes().to_vec();
        HISTORY.with(|history| bytes.extend(history.borrow().iter().flat_map(|value| value.to_le_bytes())));
        Ok(Some(weir_guest::State { version: LAYOUT, bytes }))
    }

    async fn restore(state: weir_guest::State) -> Result<(), String> {
        if state.version != LAYOUT {
            return Err(format!("cannot read layout {} of a counter's state, only {LAYOUT}", state.version));
        }
        let (total, history) = state.bytes.split_first_chunk::<8>().ok_or("a counter's state starts with its total")?;
        if history.len() % 8 != 0 {
            return Err(format!("a counter's history is whole u64s, not {} bytes", history.len()));
        }
        TOTAL.with(|cell| cell.set(i64::from_le_bytes(*total)));
        let values = history.chunks_exact(8).map(|value| u64::from_le_bytes(value.try_into().expect("8 bytes")));
        HISTORY.with(|cell| *cell.borrow_mut() = values.collect());
        weir_guest::info!("counting on at {}", weir_guest::self_address());
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

    fn append_later(value: u64, delay_ms: u64) {
        weir_guest::schedule_task(value, std::time::Duration::from_millis(delay_ms));
    }
}

weir_guest::export!(Counter, handover);
