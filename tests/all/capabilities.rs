//! The host's capabilities, used from a wasm endpoint: leader election and
//! retrieval, heartbeats and registration, through the `keeper` component
//! and the guest SDK.

use std::time::Duration;

use tokio::runtime::Handle;
use wasmtime::component::Val;
use weir::{EndpointOptions, HostEvent, RpcService};
use weir_tests::gateways::KEEPER;
use weir_tests::{artifacts, component, config, engine, eventually, guest_ok, host, text};

/// The strings a keeper function returned.
fn strings(reply: Option<Val>) -> Vec<String> {
    match reply {
        Some(Val::List(items)) => items
            .into_iter()
            .map(|item| match item {
                Val::String(s) => s,
                other => panic!("expected a string, got {other:?}"),
            })
            .collect(),
        other => panic!("expected a list, got {other:?}"),
    }
}

/// The `session` and `address` of a `leader` record.
fn leader(value: Val) -> (Val, String) {
    let Val::Record(fields) = value else { panic!("expected a leader, got {value:?}") };
    let mut fields = fields.into_iter();
    let (Some((_, session)), Some((_, Val::String(address)))) = (fields.next(), fields.next()) else {
        panic!("expected session and address")
    };
    (session, address)
}

/// The text a keeper records for a grant of `session` (a `uuid` record).
fn granted(session: &Val) -> String {
    let Val::Record(halves) = session else { panic!("expected a uuid, got {session:?}") };
    let [(_, Val::U64(high)), (_, Val::U64(low))] = halves.as_slice() else { panic!("expected a uuid") };
    format!("granted {}", weir::FencingToken::from_u64_pair(*high, *low))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_contends_for_leadership_and_follows_the_leader() {
    let host = host();
    let mut events = host.subscribe();
    let keeper = component(artifacts::KEEPER);
    let start = |id: &'static str| host.start(id, &keeper, EndpointOptions::default());
    let (first, second, follower) =
        (start("keeper-1").await.unwrap(), start("keeper-2").await.unwrap(), start("keeper-3").await.unwrap());
    let (one, two, three) =
        (first.gateway(KEEPER).unwrap(), second.gateway(KEEPER).unwrap(), follower.gateway(KEEPER).unwrap());

    guest_ok(one.ask("contend", vec![text("keeper-test")]).await.unwrap());
    guest_ok(two.ask("contend", vec![text("keeper-test")]).await.unwrap());
    let next = |previous: Option<Val>| {
        three.ask("next-leader", vec![text("keeper-test"), Val::Option(previous.map(Box::new))])
    };
    let Some(Val::Option(Some(leads))) = guest_ok(next(None).await.unwrap()) else { panic!("no leader") };
    let (session, address) = leader(*leads);
    assert_eq!(address, first.address(), "the first contender leads, and confirmed its own address");
    assert_eq!(strings(one.ask("leadership", vec![]).await.unwrap()), [granted(&session)]);
    assert!(strings(two.ask("leadership", vec![]).await.unwrap()).is_empty(), "the second waits its turn");

    one.tell("resign", vec![]).await.unwrap();
    let Some(Val::Option(Some(leads))) = guest_ok(next(Some(session.clone())).await.unwrap()) else {
        panic!("no leader")
    };
    let (new_session, address) = leader(*leads);
    assert_eq!(address, second.address(), "the second contender takes over once the first resigns");
    assert_ne!(new_session, session, "under a new session");
    assert_eq!(strings(two.ask("leadership", vec![]).await.unwrap()), [granted(&new_session)]);

    // The host reported both grants in its event stream.
    let mut grants = Vec::new();
    while grants.len() < 2 {
        if let HostEvent::LeadershipChanged { name, session: Some(session) } = events.recv().await.unwrap() {
            assert_eq!(name, "keeper-test");
            grants.push(format!("granted {session}"));
        }
    }
    assert_eq!(grants, [granted(&session), granted(&new_session)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_heartbeat_each_other_and_notice_a_lost_peer() {
    let host = host();
    let keeper = component(artifacts::KEEPER);
    let start = |id: &'static str| host.start(id, &keeper, EndpointOptions::default());
    let (sender, receiver, silent) =
        (start("pulse-a").await.unwrap(), start("pulse-b").await.unwrap(), start("pulse-c").await.unwrap());
    let (a, b, c) =
        (sender.gateway(KEEPER).unwrap(), receiver.gateway(KEEPER).unwrap(), silent.gateway(KEEPER).unwrap());
    let watch = |peer: &str, sender: bool, timeout_ms: u64| {
        vec![text(peer), Val::Bool(sender), Val::U64(20), Val::U64(timeout_ms)]
    };
    a.tell("watch", watch(receiver.address(), true, 60_000)).await.unwrap();
    b.tell("watch", watch(sender.address(), false, 60_000)).await.unwrap();
    // `c` asks `a` for heartbeats, but `a` does not monitor it, so it never
    // answers: `c` declares it lost when its timeout is up.
    c.tell("watch", watch(sender.address(), true, 300)).await.unwrap();

    let heartbeat = format!("heartbeat {}", receiver.address());
    eventually("a heartbeat from b to reach a", || async {
        strings(a.ask("heartbeats", vec![]).await.unwrap()).contains(&heartbeat).then_some(())
    })
    .await;
    let timed_out = format!("lost {} (timed out)", sender.address());
    eventually("c to declare a silent a lost", || async {
        strings(c.ask("heartbeats", vec![]).await.unwrap()).contains(&timed_out).then_some(())
    })
    .await;

    // Once b is gone, a's heartbeat requests find it unreachable.
    receiver.close().await.unwrap();
    let unreachable = format!("lost {} (unreachable)", receiver.address());
    eventually("a to declare the stopped b unreachable", || async {
        strings(a.ask("heartbeats", vec![]).await.unwrap()).contains(&unreachable).then_some(())
    })
    .await;
    let seen = strings(a.ask("heartbeats", vec![]).await.unwrap());
    assert!(!seen.iter().any(|line| line.contains("timed out")), "a heard from b until b stopped: {seen:?}");
}

/// A keeper and a counter on the test's paused clock: registration delays
/// are exact.
async fn paused_host() -> RpcService {
    RpcService::on_runtime(config(), engine().clone(), Handle::current()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_component_registers_on_the_hosts_schedule() {
    let host = paused_host().await;
    let keeper = host.start("registrant", &component(artifacts::KEEPER), EndpointOptions::default()).await.unwrap();
    let keeper = keeper.gateway(KEEPER).unwrap();

    // Declined twice (the counter holds 1, then 2 values), accepted at 3:
    // two refused delays of 1 s.
    let counter = host.start("registry", &component(artifacts::COUNTER), EndpointOptions::default()).await.unwrap();
    let started = tokio::time::Instant::now();
    let args = vec![text(counter.address()), Val::U32(3), Val::U64(1000), Val::U64(250)];
    assert_eq!(guest_ok(keeper.ask("register", args).await.unwrap()), Some(Val::U32(3)));
    let took = started.elapsed();
    assert!((Duration::from_millis(2000)..Duration::from_millis(2010)).contains(&took), "{took:?}");

    // A target that is not started fails each attempt: retried after the
    // error delay (250 ms) until it starts, 600 ms in.
    let late = host.spawn("late-registry", &component(artifacts::COUNTER), EndpointOptions::default()).await.unwrap();
    let started = tokio::time::Instant::now();
    let args = vec![text(late.address()), Val::U32(1), Val::U64(1000), Val::U64(250)];
    let registering = keeper.ask("register", args);
    let starting = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        late.start().await.unwrap();
    };
    let (registered, ()) = tokio::join!(registering, starting);
    assert_eq!(guest_ok(registered.unwrap()), Some(Val::U32(1)));
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(750)..Duration::from_millis(760)).contains(&took),
        "attempts at 0, 250, 500, 750 ms: {took:?}"
    );
}
