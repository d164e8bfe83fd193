//! `weir new endpoint NAME`: a crate for a new endpoint, anywhere on disk,
//! that builds into a component with `cargo build --target wasm32-wasip2`.
//!
//! The crate holds its own WIT package (a gateway and a world), the
//! `weir:rpc` package it builds against (from the guest SDK) under
//! `wit/deps/`, an endpoint that implements the gateway, and a README that
//! says how to build it, derive client interfaces and run it.

use std::path::{Path, PathBuf};

use crate::Error;

/// Where the guest SDK of this weir lives, for the new crate's dependency.
const SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// What to create.
#[derive(Debug, clap::Args)]
pub struct NewEndpointArgs {
    /// The endpoint's name: lower-case letters, digits and `-`, starting
    /// with a letter; the crate, its gateway and its world are named after it.
    name: String,
    /// The directory to create (default: `./NAME`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The guest SDK (`weir-guest`) to depend on, by path (default: the one
    /// this `weir` was built with).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

pub fn endpoint(args: &NewEndpointArgs) -> Result<(), Error> {
    let name = &args.name;
    check_name(name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        return Err(format!("{} exists already; choose another name or `--dir`", dir.display()).into());
    }
    let sdk = match &args.sdk {
        Some(sdk) => sdk.clone(),
        None => Path::new(SDK).canonicalize().map_err(|e| format!("the guest SDK at {SDK}: {e}; pass `--sdk`"))?,
    };
    let snake = name.replace('-', "_");
    let camel: String = name.split('-').map(|word| word[..1].to_uppercase() + &word[1..]).collect();
    let files = [
        ("Cargo.toml".to_owned(), cargo_toml(name, &sdk)),
        ("README.md".to_owned(), readme(name)),
        ("src/lib.rs".to_owned(), lib_rs(name, &snake, &camel)),
        (format!("wit/{name}.wit"), gateway_wit(name)),
    ];
    let rpc = weir_guest::RPC_WIT.iter().map(|(file, text)| (format!("wit/deps/weir-rpc/{file}"), (*text).to_owned()));
    for (path, text) in files.into_iter().chain(rpc) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("every file is in the crate's directory"))?;
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("created endpoint `{name}` in {}", dir.display());
    println!("build it:  cd {} && cargo build --release --target wasm32-wasip2", dir.display());
    println!("component: target/wasm32-wasip2/release/{snake}.wasm");
    Ok(())
}

/// A name that works as a crate, a WIT interface and a Rust module.
fn check_name(name: &str) -> Result<(), Error> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .split('-')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(format!("`{name}` cannot name an endpoint: use lower-case letters and digits in words joined by `-`, starting with a letter").into())
    }
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A component: `cargo build --release --target wasm32-wasip2`.
[lib]
crate-type = ["cdylib"]

[dependencies]
weir-guest = {{ path = {sdk:?} }}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"

# A workspace of its own, wherever it sits.
[workspace]
"#,
        sdk = sdk.display().to_string(),
    )
}

fn gateway_wit(name: &str) -> String {
    format!(
        r#"package local:{name}@0.1.0;

/// The `{name}` gateway: what other endpoints (and hosts) call.
interface {name} {{
    /// Answers with a greeting for `who`.
    greet: func(who: string) -> string;
    /// A tell: counts a visit.
    visit: func();
    /// How many visits were told.
    visits: async func() -> u64;
}}

/// The `{name}` endpoint: it serves `{name}`. To call other gateways, put
/// their packages under `wit/deps/`, derive their clients with
/// `weir wit clients`, and `import <gateway>-client;` here.
world {name}-endpoint {{
    include weir:rpc/endpoint@0.1.0;
    export {name};
}}
"#
    )
}

fn lib_rs(name: &str, snake: &str, camel: &str) -> String {
    format!(
        r#"//! The `{name}` endpoint.

weir_guest::generate!({{ world: "local:{name}/{name}-endpoint", path: "wit" }});

use std::cell::Cell;

use exports::local::{snake}::{snake}::Guest;

thread_local! {{
    // An instance has one thread: state lives in thread-locals.
    static VISITS: Cell<u64> = const {{ Cell::new(0) }};
}}

struct {camel};

impl weir_guest::Endpoint for {camel} {{
    fn on_start() -> Result<(), String> {{
        weir_guest::info!("{name} serving at {{}}", weir_guest::self_address());
        Ok(())
    }}
}}

impl Guest for {camel} {{
    fn greet(who: String) -> String {{
        format!("hello, {{who}}, from {{}}", weir_guest::self_id())
    }}

    fn visit() {{
        VISITS.with(|v| v.set(v.get() + 1));
    }}

    async fn visits() -> u64 {{
        VISITS.with(Cell::get)
    }}
}}

weir_guest::export!({camel});
"#
    )
}

fn readme(name: &str) -> String {
    format!(
        r#"# {name}

A weir endpoint. Its gateway and world are in `wit/{name}.wit`; the
`weir:rpc` package it builds against is in `wit/deps/weir-rpc/`.

```sh
cargo build --release --target wasm32-wasip2      # -> target/wasm32-wasip2/release/{snake}.wasm
```

Run it in a host with `weir host host.toml`, where `host.toml` lists it:

```toml
[[endpoint]]
id = "{name}"
component = "target/wasm32-wasip2/release/{snake}.wasm"
```

and call it from anywhere with
`weir call weir://HOST:PORT/{name} local:{name}/{name}@0.1.0 greet '"you"'`.

To call another endpoint's gateway, copy its WIT package under `wit/deps/`,
write its client interface with `weir wit clients wit/deps/<package> --dep
wit/deps/weir-rpc`, and import `<gateway>-client` in the world.

`cargo component build` cannot build this crate: cargo-component 0.21 does
not understand the component-model `async` functions of `weir:rpc/endpoint`.
"#,
        snake = name.replace('-', "_"),
    )
}
