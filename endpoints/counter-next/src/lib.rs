//! A second implementation of the `counter` gateway, to swap in for
//! `counter` while it runs. It keeps its state in one record, reads the
//! state `counter` hands over (layout 1) as well as its own (layout 2: the
//! number of swaps it has been through, the total, the history), and
//! counts the swaps.
//!
//! The tests' ways of making a swap fail: it refuses to hand over a
//! negative total (`snapshot` returns an error), traps in `snapshot` when
//! the total is `i64::MAX`, and traps in `restore` when the history holds
//! `u64::MAX`.

weir_guest::generate!({ world: "weir:examples/counter-endpoint", path: ["../../wit/rpc", "../../wit/examples"] });

use std::cell::RefCell;

use exports::weir::examples::counter::Guest;

/// What the counter holds.
#[derive(Default)]
struct Tally {
    /// Swaps this state has been handed through.
    swaps: u32,
    total: i64,
    history: Vec<u64>,
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::default();
}

fn with<R>(act: impl FnOnce(&mut Tally) -> R) -> R {
    TALLY.with(|tally| act(&mut tally.borrow_mut()))
}

/// `counter`'s layout: the total, then the history.
const COUNTER_LAYOUT: u32 = 1;
/// This component's layout: swaps, total, history length, history.
const LAYOUT: u32 = 2;

/// Reads little-endian numbers off the front of a state.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or_else(|| format!("the state ends before {what}"))?;
        self.0 = rest;
        Ok(*head)
    }

    /// The last `count` values: the rest of the state.
    fn values(self, count: usize) -> Result<Vec<u64>, String> {
        if self.0.len() != count * 8 {
            return Err(format!("the history takes {} bytes, not {}", self.0.len(), count * 8));
        }
        let values = self.0.chunks_exact(8).map(|value| u64::from_le_bytes(value.try_into().expect("8 bytes")));
        Ok(values.collect())
    }
}

fn read(state: &weir_guest::State) -> Result<Tally, String> {
    let mut reader = Reader(&state.bytes);
    match state.version {
        COUNTER_LAYOUT => {
            let total = i64::from_le_bytes(reader.take("the total")?);
            let count = reader.0.len() / 8;
            Ok(Tally { swaps: 0, total, history: reader.values(count)? })
        }
        LAYOUT => {
            let swaps = u32::from_le_bytes(reader.take("the swap count")?);
            let total = i64::from_le_bytes(reader.take("the total")?);
            let count = u32::from_le_bytes(reader.take("the history's length")?) as usize;
            Ok(Tally { swaps, total, history: reader.values(count)? })
        }
        other => Err(format!("cannot read layout {other} of a counter's state, only {COUNTER_LAYOUT} and {LAYOUT}")),
    }
}

struct CounterNext;

impl weir_guest::Endpoint for CounterNext {
    fn on_task(value: u64) {
        with(|tally| tally.history.push(value));
    }
}

impl weir_guest::Handover for CounterNext {
    fn snapshot() -> Result<Option<weir_guest::State>, String> {
        with(|tally| {
            assert!(tally.total != i64::MAX, "refusing to hand over a total of i64::MAX");
            if tally.total < 0 {
                return Err(format!("a negative total ({}) is not handed over", tally.total));
            }
            let length = u32::try_from(tally.history.len()).map_err(|_| "the history is too long to hand over")?;
            let mut bytes = Vec::with_capacity(16 + 8 * tally.history.len());
            bytes.extend(tally.swaps.to_le_bytes());
            bytes.extend(tally.total.to_le_bytes());
            bytes.extend(length.to_le_bytes());
            bytes.extend(tally.history.iter().flat_map(|value| value.to_le_bytes()));
            Ok(Some(weir_guest::State { version: LAYOUT, bytes }))
        })
    }

    async fn restore(state: weir_guest::State) -> Result<(), String> {
        let mut tally = read(&state)?;
        assert!(!tally.history.contains(&u64::MAX), "refusing a history that holds u64::MAX");
        tally.swaps += 1;
        weir_guest::info!("took over a counter at {} (swap {})", weir_guest::self_address(), tally.swaps);
        TALLY.with(|cell| *cell.borrow_mut() = tally);
        Ok(())
    }
}

impl Guest for CounterNext {
    fn add(delta: i64) -> i64 {
        with(|tally| {
            tally.total = tally.total.wrapping_add(delta);
            tally.total
        })
    }

    async fn get() -> i64 {
        with(|tally| tally.total)
    }

    fn append(value: u64) {
        with(|tally| tally.history.push(value));
    }

    fn push(value: u64) -> u32 {
        with(|tally| {
            tally.history.push(value);
            u32::try_from(tally.history.len()).unwrap_or(u32::MAX)
        })
    }

    fn history() -> Vec<u64> {
        with(|tally| tally.history.clone())
    }

    fn reset() {
        with(|tally| *tally = Tally { swaps: tally.swaps, ..Tally::default() });
    }

    fn append_later(value: u64, delay_ms: u64) {
        weir_guest::schedule_task(value, std::time::Duration::from_millis(delay_ms));
    }
}

weir_guest::export!(CounterNext, handover);
