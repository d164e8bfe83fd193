//! `weir call`: calls one gateway function of an endpoint on a running host
//! and prints the result, as `weir host`'s `[[call]]` does inside a host.
//!
//! ```text
//! weir call weir://10.0.0.7:6123/echo weir:examples/echo@0.1.0 ping 7
//! ```
//!
//! Arguments are WAVE text, read with the function's WIT types. The caller
//! is a host of its own that does not listen; `--config` gives it the
//! `[host]` settings of a config file (TLS, frame size, timeouts) to reach
//! hosts that need them.

use std::path::PathBuf;
use std::time::Duration;

use weir::{Engine, FencingToken, HostConfig, RpcService};

use crate::Error;

/// What to call, and where.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The endpoint's address, `weir://host:port/endpoint-id`.
    address: String,
    /// The gateway interface, e.g. `weir:examples/echo@0.1.0`.
    gateway: String,
    /// The function.
    function: String,
    /// Its arguments, each a WAVE value (`7`, `"text"`, `[1, 2]`,
    /// `{ high: 1, low: 2 }`).
    args: Vec<String>,
    /// The fencing token to call a fenced endpoint with (a UUID).
    #[arg(long)]
    token: Option<uuid::Uuid>,
    /// How long to wait for the reply of an ask.
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// A config file whose `[host]` settings the caller uses (TLS, frame
    /// size, connect timeout); other tables are ignored.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn call(args: &CallArgs) -> Result<(), Error> {
    let host: HostConfig = match &args.config {
        Some(path) => match crate::config::read::<toml::Table>(path)?.remove("host") {
            Some(host) => host.try_into().map_err(|e| format!("{}: [host]: {e}", path.display()))?,
            None => HostConfig::default(),
        },
        None => HostConfig::default(),
    };
    // A caller only: no listener, one thread, room for no endpoint to speak of.
    let config = HostConfig { listen: None, worker_threads: 1, max_endpoints: 1, ..host };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let engine = Engine::new(&config)?;
        let caller = RpcService::new(config, engine)?;
        let mut client = caller.connect(&args.address, &args.gateway, args.token.map(FencingToken)).await?;
        if let Some(timeout) = args.timeout {
            client = client.with_timeout(timeout);
        }
        let texts: Vec<&str> = args.args.iter().map(String::as_str).collect();
        let values = client.parse_args(&args.function, &texts)?;
        let outcome = crate::invoke::invoke(&client, &args.function, values).await?;
        println!("{}", outcome.text);
        if outcome.is_err { Err(format!("{} returned {}", args.function, outcome.text).into()) } else { Ok(()) }
    })
}
