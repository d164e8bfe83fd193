//! Serves the `fault` gateway and misbehaves on purpose. Setting `fault` =
//! `trap` | `loop` | `allocate` | `schedule` | `connect` picks how;
//! `fault-in` = `on-start` | `on-stop` | `task` makes it happen there
//! instead of in `trigger`.

weir_guest::generate!({
    world: "weir:examples/fault-endpoint",
    path: ["../../wit/rpc", "../../wit/examples"],
});

use std::time::Duration;

use exports::weir::examples::fault::Guest;
use weir::examples::fault_client::FaultGateway;

/// Misbehaves as configured. Never returns.
fn misbehave() -> u64 {
    match weir_guest::config("fault").as_deref() {
        // Straight to the host, so that the host, not the guest, holds
        // ever more: tasks due in an hour, under ever new ids.
        Some("schedule") => {
            let mut task = 0u64;
            loop {
                task += 1;
                weir_guest::runtime::schedule_run_async(task << 32, 3_600_000);
            }
        }
        Some("loop") => loop {
            std::hint::spin_loop();
        },
        Some("allocate") => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        _ => panic!("deliberate trap"),
    }
}

fn fault_in(place: &str) -> bool {
    weir_guest::config("fault-in").as_deref() == Some(place)
}

struct Faulty;

impl weir_guest::Endpoint for Faulty {
    fn on_start() -> Result<(), String> {
        if fault_in("on-start") {
            misbehave();
        }
        if fault_in("task") {
            weir_guest::schedule_run_async(Duration::from_millis(1), || {
                misbehave();
            });
        }
        Ok(())
    }

    async fn on_stop() -> Result<(), String> {
        if fault_in("on-stop") {
            misbehave();
        }
        Ok(())
    }
}

impl Guest for Faulty {
    fn ping() -> u64 {
        1
    }

    fn trigger() -> u64 {
        misbehave()
    }

    fn spin(ms: u64) -> u64 {
        weir_guest::info!("spinning for {ms} ms");
        let until = weir_guest::monotonic_now() + ms * 1_000_000;
        while weir_guest::monotonic_now() < until {
            std::hint::spin_loop();
        }
        ms
    }

    async fn trigger_async() -> u64 {
        weir_guest::sleep(Duration::from_millis(1)).await;
        if weir_guest::config("fault").as_deref() == Some("connect") {
            // Handles cost the guest a few bytes each, the host far more.
            let mut handles = Vec::new();
            loop {
                handles.push(FaultGateway::connect(weir_guest::self_address(), None).await);
            }
        }
        misbehave()
    }
}

weir_guest::export!(Faulty);
