//! `weir new endpoint`: a crate made anywhere on disk builds into a
//! component that a host loads and calls.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmtime::component::Val;
use weir::{EndpointOptions, Engine, HostConfig, RpcService};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_endpoint_builds_loads_and_answers() {
    // Removed when dropped, even by a failing test.
    let dir = tempfile::Builder::new().prefix("weir-new-").tempdir().unwrap();
    let crate_dir = dir.path().join("hello-world");
    let created = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["new", "endpoint", "hello-world", "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let again = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["new", "endpoint", "hello-world", "--dir"])
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"), "it never overwrites");
    let bad = Command::new(env!("CARGO_BIN_EXE_weir")).args(["new", "endpoint", "Hello_World"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot name an endpoint"));

    // Built as a user would (the endpoints' lock file and target directory
    // only spare the test a cold build of the same dependencies).
    std::fs::copy(root().join("endpoints/Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let target = target.join("wasm-endpoints");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target);
    for variable in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER"] {
        build.env_remove(variable);
    }
    let built = build.output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));

    let config = HostConfig { max_endpoints: 4, ..HostConfig::default() };
    let engine = Engine::new(&config).unwrap();
    let component = engine.load_file(target.join("wasm32-wasip2/release/hello_world.wasm")).unwrap();
    let host = RpcService::new(config, engine).unwrap();
    let endpoint = host.start("greeter", &component, EndpointOptions::default()).await.unwrap();
    let gateway = endpoint.gateway("local:hello-world/hello-world@0.1.0").unwrap();
    let greeting = gateway.ask("greet", vec![Val::String("you".into())]).await.unwrap();
    assert_eq!(greeting, Some(Val::String("hello, you, from greeter".into())));
    gateway.tell("visit", vec![]).await.unwrap();
    assert_eq!(gateway.ask("visits", vec![]).await.unwrap(), Some(Val::U64(1)));
    host.shutdown().await.unwrap();
}
