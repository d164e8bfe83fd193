//! Serves the `probe` gateway: shows the endpoint's lifecycle and main
//! thread. Settings: `on-start` = `ok` | `fail`; `on-stop` = `ok` | `fail` |
//! `slow:<ms>` | `wait-for-ping` (returns once a `ping` arrives after it
//! began); `witness` = a counter's address, told `append(2)` when `on-stop`
//! begins and `append(3)` when it ends.

weir_guest::generate!({
    world: "weir:examples/probe-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::cell::{Cell, RefCell};
use std::time::Duration;

use exports::weir::examples::probe::{Guest, Identity};
use weir::examples::counter_client::CounterGateway;

thread_local! {
    static PINGS: Cell<u64> = const { Cell::new(0) };
    static RAN: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
    static OVERLAPS: Cell<u32> = const { Cell::new(0) };
    static POKES: Cell<u64> = const { Cell::new(0) };
}

/// Marks the main thread busy for `work` steps, counting any overlap.
fn exclusive_work(work: u32) -> u32 {
    if BUSY.with(|busy| busy.replace(true)) {
        OVERLAPS.with(|o| o.set(o.get() + 1));
    }
    let mut acc = 0u32;
    for step in 0..work {
        acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(step));
    }
    BUSY.with(|busy| busy.set(false));
    acc
}

async fn tell_witness(witness: Option<&CounterGateway>, value: u64) {
    if let Some(witness) = witness {
        witness.append(value).await;
    }
}

/// Schedules task `i` after `delays_ms[i]`; each records `i` when it runs.
fn schedule_recorded(delays_ms: Vec<u64>) -> Vec<weir_guest::ScheduledTask> {
    (0u32..)
        .zip(delays_ms)
        .map(|(task, delay)| {
            weir_guest::schedule_run_async(Duration::from_millis(delay), move || {
                RAN.with(|ran| ran.borrow_mut().push(task));
            })
        })
        .collect()
}

struct Probe;

impl weir_guest::Endpoint for Probe {
    fn on_start() -> Result<(), String> {
        match weir_guest::config("on-start").as_deref() {
            Some("fail") => Err("on-start configured to fail".into()),
            _ => Ok(()),
        }
    }

    async fn on_stop() -> Result<(), String> {
        let witness = match weir_guest::config("witness") {
            Some(address) => Some(CounterGateway::connect(address, None).await.map_err(|e| e.to_string())?),
            None => None,
        };
        tell_witness(witness.as_ref(), 2).await;
        let behaviour = weir_guest::config("on-stop").unwrap_or_default();
        if let Some(ms) = behaviour.strip_prefix("slow:") {
            let ms = ms.parse().map_err(|_| format!("bad on-stop setting `{behaviour}`"))?;
            weir_guest::sleep(Duration::from_millis(ms)).await;
        }
        if behaviour == "wait-for-ping" {
            let pings = PINGS.with(Cell::get);
            while PINGS.with(Cell::get) == pings {
                weir_guest::sleep(Duration::from_millis(2)).await;
            }
        }
        tell_witness(witness.as_ref(), 3).await;
        match behaviour.as_str() {
            "fail" => Err("on-stop configured to fail".into()),
            _ => Ok(()),
        }
    }
}

impl Guest for Probe {
    fn ping() -> u64 {
        PINGS.with(|p| {
            p.set(p.get() + 1);
            p.get()
        })
    }

    async fn stall(ms: u64) -> u64 {
        weir_guest::sleep(Duration::from_millis(ms)).await;
        ms
    }

    fn spin(ms: u64) -> u64 {
        weir_guest::info!("spinning for {ms} ms");
        let until = weir_guest::monotonic_now() + ms * 1_000_000;
        while weir_guest::monotonic_now() < until {
            std::hint::spin_loop();
        }
        ms
    }

    fn schedule(delays_ms: Vec<u64>) {
        schedule_recorded(delays_ms);
    }

    fn schedule_and_cancel(delays_ms: Vec<u64>, cancel: Vec<u32>) -> Vec<bool> {
        let tasks = schedule_recorded(delays_ms);
        cancel.into_iter().map(|task| tasks[task as usize].cancel()).collect()
    }

    async fn call_async(work_ms: u64, timeout_ms: u64) -> Result<u32, String> {
        let work = move || {
            Self::spin(work_ms);
            42
        };
        weir_guest::call_async(work, Duration::from_millis(timeout_ms)).await.map_err(|e| e.to_string())
    }

    fn ran() -> Vec<u32> {
        RAN.with(|ran| ran.borrow().clone())
    }

    fn exclusive(work: u32) -> u32 {
        exclusive_work(work)
    }

    fn exclusive_tasks(count: u32, work: u32) {
        for _ in 0..count {
            weir_guest::run_async(move || {
                exclusive_work(work);
            });
        }
    }

    fn overlaps() -> u32 {
        OVERLAPS.with(Cell::get)
    }

    fn poke() {
        POKES.with(|p| p.set(p.get() + 1));
    }

    fn fill(size: u32) -> Vec<u8> {
        vec![7; size as usize]
    }

    fn pokes() -> u64 {
        POKES.with(Cell::get)
    }

    fn say(text: String) -> u32 {
        println!("{text}");
        eprintln!("{text}");
        u32::try_from(text.len()).unwrap_or(u32::MAX)
    }

    fn who() -> Identity {
        Identity {
            id: weir_guest::self_id(),
            address: weir_guest::self_address(),
            fencing_token: weir_guest::fencing_token(),
            fresh: weir_guest::new_uuid(),
            wall_clock_ms: weir_guest::runtime::wall_clock_now(),
        }
    }

    fn ambient() -> Vec<String> {
        let outcome = |what: &str, result: Result<String, std::io::Error>| match result {
            Ok(detail) => format!("{what}: reachable ({detail})"),
            Err(error) => format!("{what}: denied ({error})"),
        };
        vec![
            format!("environment: {} variables", std::env::vars().count()),
            format!("arguments: {}", std::env::args().count()),
            outcome("read /etc/passwd", std::fs::read_to_string("/etc/passwd").map(|t| format!("{} bytes", t.len()))),
            outcome("list /", std::fs::read_dir("/").map(|d| format!("{} entries", d.count()))),
            outcome("write /tmp/weir-probe", std::fs::write("/tmp/weir-probe", b"x").map(|()| "written".into())),
            outcome(
                "connect 127.0.0.1:22",
                std::net::TcpStream::connect("127.0.0.1:22").map(|s| format!("{:?}", s.peer_addr())),
            ),
        ]
    }
}

weir_guest::export!(Probe);
