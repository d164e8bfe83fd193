//! Three `weir` processes, with endpoints calling across all of them; the
//! test's own host only drives them.

use wasmtime::component::Val;
use weir_tests::gateways::{CALLER, COUNTER};
use weir_tests::process::{HostProcess, HostSpec};
use weir_tests::{artifacts, as_list, eventually, guest_ok, text};

use super::listening_host;

fn member() -> HostProcess {
    HostProcess::start(
        &HostSpec::new().endpoint("caller", artifacts::CALLER, "").endpoint("echo", artifacts::ECHO, "").endpoint(
            "counter",
            artifacts::COUNTER,
            "",
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_call_each_other_in_a_ring_and_across() {
    let driver = listening_host();
    let (a, b, c) = (member(), member(), member());
    let callers = [a.address("caller"), b.address("caller"), c.address("caller")];
    let echoes = [a.address("echo"), b.address("echo"), c.address("echo")];

    // a → b, b → c, c → a.
    for (i, caller) in callers.iter().enumerate() {
        let gateway = driver.connect(caller, CALLER, None).await.unwrap();
        let target = &echoes[(i + 1) % 3];
        let reply = gateway.ask("call-ping", vec![text(target), Val::U64(i as u64)]).await.unwrap();
        assert_eq!(guest_ok(reply), Some(Val::U64(i as u64)), "{caller} → {target}");
    }
    // b and c ask each other, 6 deep, each serving while it waits.
    let b_caller = driver.connect(&callers[1], CALLER, None).await.unwrap();
    let reply = b_caller.ask("bounce", vec![text(&callers[2]), Val::U32(6)]).await.unwrap();
    assert_eq!(guest_ok(reply), Some(Val::U32(6)));
    // Values told from b reach c's counter in order. The driver reads the
    // history over its own connection, which is not ordered with b's tells.
    let values: Vec<u64> = (1..=100).collect();
    let told = Val::List(values.iter().copied().map(Val::U64).collect());
    let reply = b_caller.ask("append-all", vec![text(&c.address("counter")), told]).await.unwrap();
    assert_eq!(guest_ok(reply), None);
    let counter = driver.connect(&c.address("counter"), COUNTER, None).await.unwrap();
    let history = eventually("all 100 values applied", || async {
        Some(as_list(counter.ask("history", vec![]).await.unwrap())).filter(|history| history.len() >= values.len())
    })
    .await;
    assert_eq!(history, values);
}
