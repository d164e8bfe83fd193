//! Endpoints that start endpoints (`weir:rpc/supervision`), through the
//! `supervisor` component: children from a component the host names, from
//! a component's bytes or from one loaded once and named by its digest,
//! each an ordinary endpoint in a store of its own; starts refused with
//! errors that say what was wrong; parents that learn how each child ended;
//! children that end with their parent; and files only in the directories
//! an endpoint is lent, which it may lend on.

use wasmtime::component::Val;
use weir::{EndpointOptions, GatewayClient, LentDirectory, RpcService};
use weir_tests::gateways::{ECHO, FAULT, SUPERVISOR};
use weir_tests::{artifacts, component, config, engine, eventually, text};

/// A host that names the echo and supervisor components by their names,
/// with a supervisor on it, lent `directories`.
async fn supervised_with(directories: Vec<LentDirectory>) -> (RpcService, GatewayClient) {
    let host = RpcService::builder(config(), engine().clone())
        .component("echo", component(artifacts::ECHO))
        .component("supervisor", component(artifacts::SUPERVISOR))
        .build()
        .expect("cannot create the host");
    let options = EndpointOptions { directories, ..EndpointOptions::default() };
    let parent = host.start("parent", &component(artifacts::SUPERVISOR), options).await.unwrap();
    let supervisor = parent.gateway(SUPERVISOR).unwrap();
    (host, supervisor)
}

async fn supervised() -> (RpcService, GatewayClient) {
    supervised_with(Vec::new()).await
}

/// The `ok` string of a `result<string, string>`, or the `err` text.
fn started(reply: Option<Val>) -> Result<String, String> {
    match reply {
        Some(Val::Result(Ok(Some(address)))) => match *address {
            Val::String(address) => Ok(address),
            other => panic!("expected an address, got {other:?}"),
        },
        Some(Val::Result(Err(Some(error)))) => match *error {
            Val::String(error) => Err(error),
            other => panic!("expected an error text, got {other:?}"),
        },
        other => panic!("expected a result, got {other:?}"),
    }
}

/// How the parent says child `id` ended, once it has.
async fn ended(supervisor: &GatewayClient, id: &str) -> Result<(), String> {
    eventually(&format!("the parent to learn that `{id}` ended"), || async {
        match supervisor.ask("ended", vec![text(id)]).await.unwrap() {
            Some(Val::Option(Some(outcome))) => match *outcome {
                Val::Result(Ok(None)) => Some(Ok(())),
                Val::Result(Err(Some(cause))) => match *cause {
                    Val::String(cause) => Some(Err(cause)),
                    other => panic!("expected a cause, got {other:?}"),
                },
                other => panic!("expected an outcome, got {other:?}"),
            },
            _ => None,
        }
    })
    .await
}

fn bytes_of(path: &str) -> Val {
    Val::List(std::fs::read(path).unwrap().into_iter().map(Val::U8).collect())
}

fn no_directories() -> Val {
    Val::List(Vec::new())
}

fn settings(pairs: &[(&str, &str)]) -> Val {
    Val::List(pairs.iter().map(|(k, v)| Val::Tuple(vec![text(k), text(v)])).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_starts_a_child_from_a_named_component_and_stops_it() {
    let (host, supervisor) = supervised().await;
    let address =
        started(supervisor.ask("start-named", vec![text("echo"), text("kid"), no_directories()]).await.unwrap())
            .unwrap();
    assert_eq!(address, host.address_of("kid"));

    // The child is an ordinary endpoint: anyone calls it at its address.
    let echo = host.connect(&address, ECHO, None).await.unwrap();
    assert_eq!(echo.ask("ping", vec![Val::U64(7)]).await.unwrap(), Some(Val::U64(7)));

    assert_eq!(supervisor.ask("stop", vec![text("kid")]).await.unwrap(), Some(Val::Result(Ok(None))));
    assert!(host.endpoint("kid").is_none(), "a stopped child leaves the host");
    assert_eq!(ended(&supervisor, "kid").await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_from_bytes_runs_in_a_store_of_its_own_and_its_trap_ends_it_only() {
    let (host, supervisor) = supervised().await;
    let faulty = bytes_of(artifacts::FAULTY);
    let start = |id: &str, fault: &str, memory_cap: u64| {
        supervisor
            .ask("start-bytes", vec![faulty.clone(), text(id), settings(&[("fault", fault)]), Val::U64(memory_cap)])
    };
    let trapper = started(start("trapper", "trap", 0).await.unwrap()).unwrap();
    let hog = started(start("hog", "allocate", 4 << 20).await.unwrap()).unwrap();

    let trigger = async |address: &str| {
        let fault = host.connect(address, FAULT, None).await.unwrap();
        fault.ask("trigger", vec![]).await.unwrap_err()
    };
    trigger(&trapper).await;
    let cause = ended(&supervisor, "trapper").await.unwrap_err();
    assert!(cause.contains("deliberate trap"), "the parent learns the trap: {cause}");

    // The hog's own memory cap stops it, well below the host's.
    trigger(&hog).await;
    let cause = ended(&supervisor, "hog").await.unwrap_err();
    assert!(cause.contains("memory cap"), "the parent learns the cap: {cause}");

    // The parent keeps serving, and starts the same bytes again.
    let again = started(start("trapper-2", "trap", 0).await.unwrap()).unwrap();
    assert_eq!(again, host.address_of("trapper-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_cannot_succeed_says_why() {
    let (host, supervisor) = supervised().await;
    let named = |name: &str, id: &str| supervisor.ask("start-named", vec![text(name), text(id), no_directories()]);

    let error = started(named("jobmaster", "kid").await.unwrap()).unwrap_err();
    assert!(error.contains("no component is named `jobmaster`") && error.contains("named: echo"), "{error}");
    assert!(error.contains("`[components]`"), "says how to fix it: {error}");

    let garbage = Val::List(b"not a component".iter().copied().map(Val::U8).collect());
    let reply = supervisor.ask("start-bytes", vec![garbage, text("kid"), settings(&[]), Val::U64(0)]).await.unwrap();
    let error = started(reply).unwrap_err();
    assert!(error.contains("15 bytes"), "names the component: {error}");

    started(named("echo", "kid").await.unwrap()).unwrap();
    let error = started(named("echo", "kid").await.unwrap()).unwrap_err();
    assert!(error.contains("`kid` is already running"), "{error}");
    let error = started(named("echo", "no/slash").await.unwrap()).unwrap_err();
    assert!(error.contains("invalid endpoint id `no/slash`"), "{error}");
    let reply = supervisor
        .ask("start-bytes", vec![bytes_of(artifacts::ECHO), text("big"), settings(&[]), Val::U64(u64::MAX)])
        .await
        .unwrap();
    let error = started(reply).unwrap_err();
    assert!(error.contains("exceeds the host's"), "{error}");

    // Nothing was left behind, and the parent still serves.
    assert!(host.endpoint("big").is_none());
    assert!(host.endpoint("kid").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_loaded_once_starts_by_its_digest() {
    use sha2::{Digest, Sha256};
    let (host, supervisor) = supervised().await;
    let load = async |bytes: Val| started(supervisor.ask("load", vec![bytes]).await.unwrap());
    let digest = load(bytes_of(artifacts::ECHO)).await.unwrap();
    assert_eq!(digest, format!("{:x}", Sha256::digest(std::fs::read(artifacts::ECHO).unwrap())));
    assert_eq!(load(bytes_of(artifacts::ECHO)).await, Ok(digest.clone()), "the same bytes, the same component");

    let start = async |digest: &str, id: &str| {
        started(supervisor.ask("start-loaded", vec![text(digest), text(id)]).await.unwrap())
    };
    for id in ["first", "second"] {
        let address = start(&digest, id).await.unwrap();
        let echo = host.connect(&address, ECHO, None).await.unwrap();
        assert_eq!(echo.ask("ping", vec![Val::U64(7)]).await.unwrap(), Some(Val::U64(7)));
    }

    // A digest the host holds nothing under says so, and how to go on.
    let unknown = "0".repeat(64);
    let error = start(&unknown, "third").await.unwrap_err();
    assert!(error.contains(&format!("no component loaded under digest {unknown}")), "{error}");
    assert!(error.contains("load its bytes on this host, then start it"), "{error}");
    assert!(host.endpoint("third").is_none());
    // Bytes that are no component are refused when loaded.
    let error = load(Val::List(b"not a component".iter().copied().map(Val::U8).collect())).await.unwrap_err();
    assert!(error.contains("15 bytes"), "names the component: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_end_with_their_parent() {
    let (host, supervisor) = supervised().await;
    for id in ["kid-1", "kid-2"] {
        started(supervisor.ask("start-named", vec![text("echo"), text(id), no_directories()]).await.unwrap()).unwrap();
    }
    let parent = host.endpoint("parent").unwrap();
    parent.close().await.unwrap();
    for id in ["kid-1", "kid-2"] {
        eventually(&format!("`{id}` to end with its parent"), || async { host.endpoint(id).is_none().then_some(()) })
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_sees_only_the_directories_it_is_lent_and_lends_them_on() {
    let dir = weir_tests::temp_dir("lent");
    let root = dir.path();
    std::fs::create_dir_all(root.join("data/input")).unwrap();
    std::fs::create_dir_all(root.join("secret")).unwrap();
    std::fs::write(root.join("data/input/words.txt"), "to be or not to be").unwrap();
    std::fs::write(root.join("secret/key"), "hidden").unwrap();
    let lent = |host: &str, guest: &str, writable: bool| LentDirectory {
        host: root.join(host),
        guest: guest.into(),
        writable,
    };
    let (host, parent) = supervised_with(vec![lent("data", "/data", true), lent("secret", "/secret", false)]).await;
    let read = |gateway: &GatewayClient, path: &str| {
        let (gateway, path) = (gateway.clone(), path.to_owned());
        async move { started(gateway.ask("read-file", vec![text(&path)]).await.unwrap()) }
    };
    let write = |gateway: &GatewayClient, path: &str| {
        let (gateway, path) = (gateway.clone(), path.to_owned());
        async move { gateway.ask("write-file", vec![text(&path), text("written")]).await.unwrap() }
    };

    // The parent reads and writes where it was lent, and nowhere else.
    assert_eq!(read(&parent, "/data/input/words.txt").await.unwrap(), "to be or not to be");
    assert_eq!(write(&parent, "/data/out.txt").await, Some(Val::Result(Ok(None))));
    assert_eq!(std::fs::read_to_string(root.join("data/out.txt")).unwrap(), "written");
    assert!(read(&parent, "/etc/hostname").await.is_err(), "no file outside the lent directories");
    assert!(matches!(write(&parent, "/secret/key").await, Some(Val::Result(Err(_)))), "read-only stays read-only");

    // It lends a part of its own to a child, read-only, under another name.
    let lend = |path: &str, guest: &str, writable: bool| Val::Tuple(vec![text(path), text(guest), Val::Bool(writable)]);
    let ask = |id: &str, directories: Vec<Val>| {
        parent.ask("start-named", vec![text("supervisor"), text(id), Val::List(directories)])
    };
    let child = started(ask("reader", vec![lend("/data/input", "/input", false)]).await.unwrap()).unwrap();
    let child = host.connect(&child, SUPERVISOR, None).await.unwrap();
    assert_eq!(read(&child, "/input/words.txt").await.unwrap(), "to be or not to be");
    assert!(matches!(write(&child, "/input/new.txt").await, Some(Val::Result(Err(_)))), "lent read-only");
    assert!(read(&child, "/data/out.txt").await.is_err(), "the child sees only what it was lent");

    // What the parent does not hold, or may only read, it cannot lend.
    let error = started(ask("greedy", vec![lend("/etc", "/etc", false)]).await.unwrap()).unwrap_err();
    assert!(error.contains("cannot lend `/etc`") && error.contains("/data, /secret"), "{error}");
    let error = started(ask("greedy", vec![lend("/secret", "/secret", true)]).await.unwrap()).unwrap_err();
    assert!(error.contains("the parent may only read `/secret`"), "{error}");
    let error = started(ask("greedy", vec![lend("/data/../secret", "/s", false)]).await.unwrap()).unwrap_err();
    assert!(error.contains("cannot lend `/data/../secret`"), "no way out through `..`: {error}");
    assert!(host.endpoint("greedy").is_none());

    // A writable directory that is not there yet is created for the child,
    // but not through a link that leads out of what the parent holds.
    let child = started(ask("writer", vec![lend("/data/jobs/one", "/work", true)]).await.unwrap()).unwrap();
    let child = host.connect(&child, SUPERVISOR, None).await.unwrap();
    assert_eq!(write(&child, "/work/state").await, Some(Val::Result(Ok(None))));
    assert_eq!(std::fs::read_to_string(root.join("data/jobs/one/state")).unwrap(), "written");
    std::os::unix::fs::symlink(root.join("secret"), root.join("data/link")).unwrap();
    let error = started(ask("escaper", vec![lend("/data/link/new", "/work", true)]).await.unwrap()).unwrap_err();
    assert!(error.contains("leads outside the directory the parent holds"), "{error}");
    assert!(host.endpoint("escaper").is_none());
    assert!(!root.join("secret/new").exists(), "nothing is created outside");
}

/// After a child starts, the host makes another instance of its component
/// ahead of the next start; the child started from it is the child asked
/// for: at its own address, with the directories it was lent (none of the
/// instance made ahead, none of the child before), under its own memory cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_from_an_instance_made_ahead_is_the_child_asked_for() {
    let dir = weir_tests::temp_dir("ahead");
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("data/words.txt"), "made ahead").unwrap();
    let lent = LentDirectory { host: root.join("data"), guest: "/data".into(), writable: false };
    let (host, parent) = supervised_with(vec![lent]).await;
    let made_ahead = async |count: usize| {
        eventually(&format!("{count} instance(s) made ahead"), || async {
            (host.instances_made_ahead() == count).then_some(())
        })
        .await;
    };
    assert_eq!(host.instances_made_ahead(), 0, "nothing is made before a child starts");
    let lend = |guest: &str| Val::List(vec![Val::Tuple(vec![text("/data"), text(guest), Val::Bool(false)])]);
    let start = async |id: &str, guest: &str| {
        let address =
            started(parent.ask("start-named", vec![text("supervisor"), text(id), lend(guest)]).await.unwrap());
        host.connect(&address.unwrap(), SUPERVISOR, None).await.unwrap()
    };
    let read =
        async |child: &GatewayClient, path: &str| started(child.ask("read-file", vec![text(path)]).await.unwrap());

    let first = start("first", "/first").await;
    made_ahead(1).await;
    let second = start("second", "/second").await;
    assert_eq!(read(&second, "/second/words.txt").await.unwrap(), "made ahead");
    assert!(read(&second, "/first/words.txt").await.is_err(), "not the directories of the child before");
    assert_eq!(read(&first, "/first/words.txt").await.unwrap(), "made ahead");
    made_ahead(1).await;

    // A child from bytes gets its own memory cap, well below the host's.
    let faulty = bytes_of(artifacts::FAULTY);
    let start_faulty = |id: &str, memory_cap: u64| {
        parent.ask(
            "start-bytes",
            vec![faulty.clone(), text(id), settings(&[("fault", "allocate")]), Val::U64(memory_cap)],
        )
    };
    started(start_faulty("roomy", 0).await.unwrap()).unwrap();
    made_ahead(2).await;
    let hog = started(start_faulty("hog", 4 << 20).await.unwrap()).unwrap();
    let fault = host.connect(&hog, FAULT, None).await.unwrap();
    fault.ask("trigger", vec![]).await.unwrap_err();
    let cause = ended(&parent, "hog").await.unwrap_err();
    assert!(cause.contains("memory cap of 4194304 bytes"), "the cap it was given stops it: {cause}");
}

/// A swapped parent's new instance adopts the children the old one runs:
/// they run on, untouched, and the new instance stops them and learns how
/// they end. One that leaves a running child unadopted is refused (the
/// swap would stop the child), and the old instance goes on with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_supervisor_adopts_its_children() {
    let (host, supervisor) = supervised().await;
    let started_child = supervisor.ask("start-named", vec![text("echo"), text("ward"), no_directories()]).await;
    let address = started(started_child.unwrap()).unwrap();
    let echo = host.connect(&address, ECHO, None).await.unwrap();
    let parent = host.endpoint("parent").unwrap();
    let report = parent.swap(&component(artifacts::SUPERVISOR), weir::SwapOptions::default()).await.unwrap();
    assert_eq!(report.children_adopted, 1, "{report:?}");
    assert_eq!(echo.ask("ping", vec![Val::U64(1)]).await.unwrap(), Some(Val::U64(1)), "the child runs on");

    // The old instance's handle went with it; the new one's stops the child.
    assert_eq!(supervisor.ask("stop", vec![text("ward")]).await.unwrap(), Some(Val::Result(Ok(None))));
    assert_eq!(ended(&supervisor, "ward").await, Ok(()));
    assert!(host.endpoint("ward").is_none());

    let started_child = supervisor.ask("start-named", vec![text("echo"), text("unadoptable"), no_directories()]).await;
    let address = started(started_child.unwrap()).unwrap();
    let error = parent.swap(&component(artifacts::SUPERVISOR), weir::SwapOptions::default()).await.unwrap_err();
    assert!(
        matches!(&error, weir::SwapError::Unadopted { children, .. } if children == &["unadoptable".to_owned()]),
        "{error}"
    );
    assert!(error.to_string().contains("child.adopt(id)"), "{error}");
    let echo = host.connect(&address, ECHO, None).await.unwrap();
    assert_eq!(echo.ask("ping", vec![Val::U64(2)]).await.unwrap(), Some(Val::U64(2)), "the child runs on");
    assert_eq!(supervisor.ask("stop", vec![text("unadoptable")]).await.unwrap(), Some(Val::Result(Ok(None))));
    assert_eq!(ended(&supervisor, "unadoptable").await, Ok(()));
}
