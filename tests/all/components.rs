//! One test per component in `endpoints/`: it loads, and the host reads its
//! world right. A new component without a test of its name here does not
//! compile.

use wasmtime::component::Val;
use weir::component::ExecutionMode;
use weir::{EndpointOptions, FencingToken};
use weir_tests::gateways::{
    COUNTER, DISPATCHER, DISPATCHER_CHECKPOINTING, ECHO, ECHO_SYNC, FAULT, JOBMASTER, JOBMASTER_CHECKPOINTING,
    JOBMASTER_CHECKPOINTS, JOBMASTER_CONTROL, JOBMASTER_INPUTS, JOBMASTER_TASKS, KEEPER, PROBE, RESOURCEMANAGER,
    RESOURCEMANAGER_JOBS, SUPERVISOR, TASK, TASK_CHECKPOINTS, TASK_INPUT, TASKEXECUTOR, TASKEXECUTOR_CHECKPOINTS,
    TASKEXECUTOR_SLOTS, TASKEXECUTOR_TASKS, TICKER, WRITER,
};
use weir_tests::{artifacts, component, eventually, host, with_config};

fn assert_world(path: &str, mode: ExecutionMode, gateways: &[&str], clients: &[&str]) {
    let component = component(path);
    let info = component.info();
    assert_eq!(info.mode, mode, "{}", info.name);
    assert_eq!(info.gateways.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), gateways);
    let mut imported: Vec<&str> = info.clients.iter().map(|c| c.gateway.as_str()).collect();
    imported.sort_unstable();
    assert_eq!(imported, clients, "{}", info.name);
}

#[test]
fn echo() {
    assert_world(artifacts::ECHO, ExecutionMode::Concurrent, &[ECHO], &[]);
}

#[test]
fn counter() {
    assert_world(artifacts::COUNTER, ExecutionMode::Concurrent, &[COUNTER], &[]);
}

/// Another implementation of the same gateway, with the same world.
#[test]
fn counter_next() {
    assert_world(artifacts::COUNTER_NEXT, ExecutionMode::Concurrent, &[COUNTER], &[]);
    let (counter, next) = (component(artifacts::COUNTER), component(artifacts::COUNTER_NEXT));
    assert_eq!(counter.info().can_be_replaced_by(next.info()), Ok(()));
}

/// The same source built with another slot placement: the same world,
/// each able to replace the other.
#[test]
fn resourcemanager_spread() {
    let (fill, spread) = (component(artifacts::RESOURCEMANAGER), component(artifacts::RESOURCEMANAGER_SPREAD));
    assert_eq!(fill.info().can_be_replaced_by(spread.info()), Ok(()));
    assert_eq!(spread.info().can_be_replaced_by(fill.info()), Ok(()));
}

#[test]
fn caller() {
    let clients = ["weir:examples/caller@0.1.0", COUNTER, ECHO, "weir:examples/probe@0.1.0"];
    assert_world(artifacts::CALLER, ExecutionMode::Concurrent, &["weir:examples/caller@0.1.0"], &clients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe() {
    assert_world(artifacts::PROBE, ExecutionMode::Concurrent, &[PROBE], &[COUNTER]);
    let host = host();
    let probe = host.start("probe-identity", &component(artifacts::PROBE), EndpointOptions::default()).await.unwrap();
    let gateway = probe.gateway(PROBE).unwrap();
    let identity = |reply: Option<Val>| match reply {
        Some(Val::Record(fields)) => fields,
        other => panic!("no identity: {other:?}"),
    };
    let first = identity(gateway.ask("who", vec![]).await.unwrap());
    assert_eq!(first[0], ("id".to_owned(), Val::String("probe-identity".into())));
    assert_eq!(first[1], ("address".to_owned(), Val::String("weir://local/probe-identity".into())));
    assert_eq!(first[2], ("fencing-token".to_owned(), Val::Option(None)));
    let second = identity(gateway.ask("who", vec![]).await.unwrap());
    assert_ne!(first[3], second[3], "each UUID is fresh");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let Val::U64(wall_clock) = first[4].1 else { panic!("{:?}", first[4]) };
    assert!(now.abs_diff(wall_clock) < 60_000, "the guest's wall clock is the host's: {wall_clock} vs {now}");
}

#[test]
fn faulty() {
    assert_world(artifacts::FAULTY, ExecutionMode::Concurrent, &[FAULT], &[FAULT]);
}

/// The keeper uses the host's cluster capabilities; a component imports
/// only the capabilities it calls, though every endpoint world includes
/// them all. (Its behaviour is tested in `capabilities`.)
#[test]
fn keeper() {
    assert_world(artifacts::KEEPER, ExecutionMode::Concurrent, &[KEEPER], &[COUNTER, KEEPER]);
    let imports = |path| component(path).info().imports.clone();
    let capabilities = ["weir:rpc/leadership@0.1.0", "weir:rpc/heartbeats@0.1.0", "weir:rpc/registration@0.1.0"];
    let keeper = imports(artifacts::KEEPER);
    assert!(capabilities.iter().all(|c| keeper.iter().any(|i| i == c)), "{keeper:?}");
    let counter = imports(artifacts::COUNTER);
    assert!(!capabilities.iter().any(|c| counter.iter().any(|i| i == c)), "{counter:?}");
}

/// The control plane's components export their `weir:flink` gateways and
/// import the clients of their peers. (Their protocols are tested in
/// `control_plane`.)
#[test]
fn resourcemanager() {
    let (gateways, clients) = ([RESOURCEMANAGER, RESOURCEMANAGER_JOBS], [JOBMASTER, TASKEXECUTOR_SLOTS, TASKEXECUTOR]);
    assert_world(artifacts::RESOURCEMANAGER, ExecutionMode::Concurrent, &gateways, &clients);
}

#[test]
fn taskexecutor() {
    let gateways = [TASKEXECUTOR, TASKEXECUTOR_SLOTS, TASKEXECUTOR_TASKS, TASKEXECUTOR_CHECKPOINTS];
    let clients = [JOBMASTER_TASKS, JOBMASTER, RESOURCEMANAGER, TASK_CHECKPOINTS, TASK];
    assert_world(artifacts::TASKEXECUTOR, ExecutionMode::Concurrent, &gateways, &clients);
}

#[test]
fn jobmaster() {
    let gateways = [
        JOBMASTER,
        JOBMASTER_TASKS,
        JOBMASTER_CONTROL,
        JOBMASTER_INPUTS,
        JOBMASTER_CHECKPOINTS,
        JOBMASTER_CHECKPOINTING,
    ];
    let clients = [DISPATCHER, RESOURCEMANAGER_JOBS, TASKEXECUTOR_CHECKPOINTS, TASKEXECUTOR_SLOTS, TASKEXECUTOR_TASKS];
    assert_world(artifacts::JOBMASTER, ExecutionMode::Concurrent, &gateways, &clients);
}

#[test]
fn dispatcher() {
    let clients = [JOBMASTER_CHECKPOINTING, JOBMASTER_CONTROL, TASK];
    assert_world(artifacts::DISPATCHER, ExecutionMode::Concurrent, &[DISPATCHER, DISPATCHER_CHECKPOINTING], &clients);
}

/// A job's task component serves `task`, its input and its checkpoints;
/// the trivial one calls only its JobMaster's checkpoint side, word count
/// its consumers and its JobMaster's input side too.
#[test]
fn trivial_task() {
    let gateways = [TASK, TASK_INPUT, TASK_CHECKPOINTS];
    assert_world(artifacts::TRIVIAL_TASK, ExecutionMode::Concurrent, &gateways, &[JOBMASTER_CHECKPOINTS]);
}

#[test]
fn wordcount() {
    let gateways = [TASK, TASK_INPUT, TASK_CHECKPOINTS];
    let clients = [JOBMASTER_CHECKPOINTS, JOBMASTER_INPUTS, TASK_INPUT];
    assert_world(artifacts::WORDCOUNT, ExecutionMode::Concurrent, &gateways, &clients);
}

/// `supervisor` imports `weir:rpc/supervision` and no other capability of
/// the cluster's. (Its behaviour is tested in `children`.)
#[test]
fn supervisor() {
    assert_world(artifacts::SUPERVISOR, ExecutionMode::Concurrent, &[SUPERVISOR], &[]);
    let imports = component(artifacts::SUPERVISOR).info().imports.clone();
    assert!(imports.iter().any(|i| i == "weir:rpc/supervision@0.1.0"), "{imports:?}");
    assert!(!imports.iter().any(|i| i == "weir:rpc/leadership@0.1.0"), "{imports:?}");
}

/// The same gateway declared in another order: each function keeps its id
/// (derived from its name), so a caller reaches the same function in
/// either build, though it sits elsewhere in the exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_reordered() {
    assert_world(artifacts::ECHO_REORDERED, ExecutionMode::Concurrent, &[ECHO], &[]);
    let (echo, reordered) = (component(artifacts::ECHO), component(artifacts::ECHO_REORDERED));
    let (echo, reordered) = (echo.info(), reordered.info());
    for function in &echo.functions {
        let other = reordered.function(function.id).expect("the same id in both builds");
        assert_eq!(other.signature, function.signature);
        assert_eq!(weir::gateway::FunctionId::of(ECHO, &function.signature.name), function.id);
    }
    let positions =
        |info: &weir::ComponentInfo| info.functions.iter().map(|f| f.signature.name.clone()).collect::<Vec<_>>();
    assert_ne!(positions(echo), positions(reordered), "the exports really are in another order");

    let host = host();
    let endpoint =
        host.start("echo-reordered", &component(artifacts::ECHO_REORDERED), EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway(ECHO).unwrap();
    assert_eq!(gateway.ask("ping", vec![Val::U64(7)]).await.unwrap(), Some(Val::U64(7)));
    gateway.tell("notify", vec![Val::U64(5)]).await.unwrap();
    let notified = gateway.ask("notified", vec![]).await.unwrap();
    assert_eq!(notified, Some(Val::Tuple(vec![Val::U64(1), Val::U64(5)])));
}

#[test]
fn echo_skewed() {
    assert_world(artifacts::ECHO_SKEWED, ExecutionMode::Concurrent, &[ECHO], &[]);
    let skewed = component(artifacts::ECHO_SKEWED);
    assert_eq!(skewed.info().functions[0].signature.params[0].1.to_string(), "u32");
}

/// Built by `cargo component build`: a sync-only world, run on the plain
/// engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_sync() {
    assert_world(artifacts::ECHO_SYNC, ExecutionMode::Sequential, &[ECHO_SYNC], &[]);
    let host = host();
    let echo = host.start("echo-sync", &component(artifacts::ECHO_SYNC), EndpointOptions::default()).await.unwrap();
    let gateway = echo.gateway(ECHO_SYNC).unwrap();
    assert_eq!(gateway.ask("ping", vec![Val::U64(42)]).await.unwrap(), Some(Val::U64(42)));
    let payload = Val::List(vec![Val::U8(1), Val::U8(2)]);
    assert_eq!(gateway.ask("echo", vec![payload.clone()]).await.unwrap(), Some(payload));
    for x in 1..=3 {
        gateway.tell("notify", vec![Val::U64(x)]).await.unwrap();
    }
    assert_eq!(gateway.ask("notified", vec![]).await.unwrap(), Some(Val::Tuple(vec![Val::U64(3), Val::U64(6)])));
    assert_eq!(echo.close().await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker() {
    assert_world(artifacts::TICKER, ExecutionMode::Concurrent, &[TICKER], &[COUNTER, ECHO]);
    let host = host();
    let counter =
        host.start("ticker-counter", &component(artifacts::COUNTER), EndpointOptions::default()).await.unwrap();
    let echo = host.start("ticker-echo", &component(artifacts::ECHO), EndpointOptions::default()).await.unwrap();
    let settings = [("counter", counter.address()), ("echo", echo.address()), ("ticks", "5"), ("interval-ms", "10")];
    let ticker = host.start("ticker", &component(artifacts::TICKER), with_config(&settings)).await.unwrap();
    eventually("five ticks", || async {
        let progress = ticker.gateway(TICKER).unwrap().ask("progress", vec![]).await.unwrap();
        (progress == Some(Val::Tuple(vec![Val::U32(5), Val::Bool(true)]))).then_some(())
    })
    .await;
    assert_eq!(counter.gateway(COUNTER).unwrap().ask("get", vec![]).await.unwrap(), Some(Val::S64(15)));
    let notified = echo.gateway(ECHO).unwrap().ask("notified", vec![]).await.unwrap();
    assert_eq!(notified, Some(Val::Tuple(vec![Val::U64(5), Val::U64(15)])));
}

/// The writer continues a ledger's history under its own fencing token, and
/// a writer under another token gets nothing in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer() {
    assert_world(artifacts::WRITER, ExecutionMode::Concurrent, &[WRITER], &[COUNTER]);
    let host = host();
    let session = FencingToken::random();
    let fenced =
        |settings: &[(&str, &str)], token| EndpointOptions { fencing_token: Some(token), ..with_config(settings) };
    let ledger =
        host.start("ledger", &component(artifacts::COUNTER), fenced(&[("history", "1,2")], session)).await.unwrap();
    let settings = [("ledger", ledger.address()), ("interval-ms", "1")];
    let writer = host.start("writer", &component(artifacts::WRITER), fenced(&settings, session)).await.unwrap();
    let intruder =
        host.start("intruder", &component(artifacts::WRITER), fenced(&settings, FencingToken::random())).await.unwrap();
    let progress = |endpoint: weir::Endpoint| async move {
        let progress = endpoint.fenced_gateway(WRITER, endpoint.fencing_token()).unwrap().ask("progress", vec![]).await;
        let Some(Val::Record(fields)) = progress.unwrap() else { panic!("progress is a record") };
        fields
            .into_iter()
            .map(|(_, value)| if let Val::U64(n) = value { n } else { panic!("u64 fields") })
            .collect::<Vec<_>>()
    };
    eventually("ten numbers written and three refusals", || async {
        let written = progress(writer.clone()).await;
        let refused = progress(intruder.clone()).await;
        (written[0] >= 10 && refused[1] >= 3).then_some(())
    })
    .await;
    assert_eq!(progress(intruder.clone()).await[0], 0, "the intruder got nothing in");
    let history = ledger.fenced_gateway(COUNTER, Some(session)).unwrap().ask("history", vec![]).await.unwrap();
    let Some(Val::List(history)) = history else { panic!("history is a list") };
    let expected: Vec<Val> = (1..=history.len() as u64).map(Val::U64).collect();
    assert_eq!(history, expected, "the writer went on from the seeded history, one number at a time");
}

macro_rules! assert_endpoint_tested {
    ($name:ident) => {
        const _: fn() = $name;
    };
}
weir_test_artifacts::foreach_endpoint!(assert_endpoint_tested);

/// A host with a compile cache keeps each component it compiles there,
/// under the engine that runs it; the next engine maps it from there, and
/// an entry that is not a compiled component is compiled over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_kept_for_the_next_engine() {
    let dir = weir_tests::temp_dir("compile-cache");
    let cache = dir.path();
    let config = weir::HostConfig { compile_cache: Some(cache.to_owned()), max_endpoints: 8, ..weir_tests::config() };
    let entries = || {
        let mut names: Vec<String> =
            std::fs::read_dir(cache).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
        names.sort_unstable();
        names
    };
    let first = weir::Engine::new(&config).unwrap();
    first.load_file(artifacts::ECHO).unwrap();
    first.load_file(artifacts::ECHO_SYNC).unwrap();
    let kept = entries();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().any(|name| name.contains("-async-")) && kept.iter().any(|name| name.contains("-sync-")));

    // Garbage in the async entry: compiled again, and kept over it.
    let spoiled = cache.join(kept.iter().find(|name| name.contains("-async-")).unwrap());
    std::fs::write(&spoiled, b"not a compiled component").unwrap();
    for round in 0..2 {
        let engine = weir::Engine::new(&config).unwrap();
        let echo = engine.load_file(artifacts::ECHO).unwrap();
        let echo_sync = engine.load_file(artifacts::ECHO_SYNC).unwrap();
        assert_eq!(echo.info().mode, ExecutionMode::Concurrent);
        assert_eq!(echo_sync.info().mode, ExecutionMode::Sequential);
        let host = weir::RpcService::new(weir_tests::config(), engine).unwrap();
        for (id, component, gateway) in [("cached", &echo, ECHO), ("cached-sync", &echo_sync, ECHO_SYNC)] {
            let endpoint = host.start(id, component, EndpointOptions::default()).await.unwrap();
            let reply = endpoint.gateway(gateway).unwrap().ask("ping", vec![Val::U64(round)]).await.unwrap();
            assert_eq!(reply, Some(Val::U64(round)), "{id} answers");
        }
        host.shutdown().await.unwrap();
        assert_eq!(entries(), kept, "round {round}: the same entries");
        assert_ne!(std::fs::read(&spoiled).unwrap(), b"not a compiled component", "compiled over");
    }
}
