//! `weir host`: a host from a config file. It loads the endpoints the file
//! lists from their `.wasm` files, starts them, makes the host-side calls it
//! lists, runs until a condition holds (or for a while, or until Ctrl-C, or
//! until its standard input closes), then prints what every endpoint served
//! and shuts down. Ctrl-C and SIGTERM shut it down the same way: `on-stop`
//! runs and leaders step down first. With `listen` set in `[host]`, other
//! hosts call its endpoints over TCP; it prints `listening at <host:port>`
//! once they can. An endpoint with `leader-election = true` runs only while
//! this host leads it, through the HA services of the `[ha]` table.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wasmtime::component::Val;
use weir::{
    Endpoint, EndpointOptions, Engine, FencingToken, GatewayClient, HaConfig, HeartbeatConfig, HostConfig,
    LeadershipRunner, LentDirectory, RegistrationConfig, RpcService,
};

use crate::Error;

/// Which config file, and for how long.
#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// The host's config file (TOML).
    config: PathBuf,
    /// Stop after this long instead of waiting for the `until` condition or
    /// Ctrl-C, e.g. `5s`.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    run_for: Option<Duration>,
    #[command(flatten)]
    lifetime: crate::Lifetime,
}

/// The config file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RunFile {
    /// The host's settings.
    #[serde(default)]
    host: HostConfig,
    /// How leaders are elected and found.
    #[serde(default)]
    ha: HaConfig,
    /// Heartbeat timing for endpoints that bring none.
    #[serde(default)]
    heartbeat: HeartbeatConfig,
    /// Registration timing for endpoints that bring none.
    #[serde(default)]
    registration: RegistrationConfig,
    /// Components endpoints may start children from, by name
    /// (`weir:rpc/supervision`): `.wasm` files, relative to the config file.
    #[serde(default)]
    components: BTreeMap<String, PathBuf>,
    /// The endpoints, started in this order.
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<EndpointSpec>,
    /// Host-side calls, made once all endpoints have started or at the end.
    #[serde(default, rename = "call")]
    calls: Vec<CallSpec>,
    /// Runs until this ask returns the given value.
    until: Option<UntilSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct EndpointSpec {
    id: String,
    /// The `.wasm` file, relative to the config file.
    component: PathBuf,
    /// Settings the endpoint reads through `runtime.config`.
    #[serde(default)]
    config: BTreeMap<String, String>,
    /// Host directories it may use (`[[endpoint.directory]]`, with `host`
    /// relative to the config file, `guest` and `writable`).
    #[serde(default, rename = "directory")]
    directories: Vec<LentDirectory>,
    /// Runs the endpoint fenced under this token.
    fencing_token: Option<uuid::Uuid>,
    /// Starts the endpoint (the default); if false it is only created, so
    /// it answers handshakes but no calls (Flink's endpoint before `start`).
    #[serde(default = "yes")]
    start: bool,
    /// Contends for leadership of a component named like the endpoint, and
    /// runs the endpoint only while leading, fenced under the leader
    /// session: a new instance for each session.
    #[serde(default)]
    leader_election: bool,
}

fn yes() -> bool {
    true
}

/// A call of a gateway function by name, with WAVE-encoded arguments: an
/// ask or a tell, as the function's signature says.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct CallSpec {
    endpoint: String,
    gateway: String,
    function: String,
    #[serde(default)]
    args: Vec<String>,
    /// When to make the call.
    #[serde(default)]
    at: CallTime,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum CallTime {
    /// Once every endpoint has started.
    #[default]
    Start,
    /// Once the run is over, before the shutdown.
    End,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct UntilSpec {
    #[serde(flatten)]
    call: CallSpec,
    /// The WAVE text of the result that ends the run.
    equals: String,
    /// How long to wait for it.
    #[serde(with = "humantime_serde", default = "default_until_timeout")]
    timeout: Duration,
}

fn default_until_timeout() -> Duration {
    Duration::from_secs(60)
}

pub fn host(args: &HostArgs) -> Result<(), Error> {
    let file: RunFile = crate::config::read(&args.config)?;
    let base = args.config.parent().unwrap_or(Path::new("."));
    crate::init_logging("info");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        crate::listen_for_stop()?;
        run_file(file, base, args).await
    })
}

async fn run_file(file: RunFile, base: &Path, args: &HostArgs) -> Result<(), Error> {
    let engine = Engine::new(&file.host)?;
    let mut builder = RpcService::builder(file.host.clone(), engine.clone())
        .ha(file.ha.clone())
        .heartbeat(file.heartbeat)
        .registration(file.registration);
    for (name, path) in &file.components {
        builder = builder.component(name, engine.load_file(base.join(path))?);
    }
    let host = builder.build()?;
    host.ha().ready().await?;
    let started = Instant::now();
    let (endpoints, runners) = start_endpoints(&host, &engine, base, &file).await?;
    if let Some(until) = &file.until {
        check_until(&host, until)?;
    }
    println!("started {} endpoint(s) in {:.1?}", endpoints.len(), started.elapsed());
    if file.host.listen.is_some() {
        println!("listening at {}", host.authority());
    }

    make_calls(&host, &file.calls, CallTime::Start).await?;

    let running = Instant::now();
    let waiting = async {
        match (&file.until, args.run_for) {
            (_, Some(duration)) => wait_or_stopped(duration).await,
            (Some(until), None) => wait_until(&host, until).await,
            (None, None) => wait_or_stopped(Duration::MAX).await,
        }
    };
    tokio::select! {
        waited = waiting => waited?,
        () = args.lifetime.orphaned() => {}
    }
    let leaders = runners.iter().filter_map(LeadershipRunner::leader);
    report(&endpoints.iter().cloned().chain(leaders).collect::<Vec<_>>(), running.elapsed());
    make_calls(&host, &file.calls, CallTime::End).await?;
    futures::future::join_all(runners.into_iter().map(LeadershipRunner::close)).await;

    let shutdown = host.shutdown().await;
    println!(
        "shut down: {}",
        shutdown.as_ref().map_or_else(ToString::to_string, |()| "all endpoints stopped cleanly".into())
    );
    Ok(shutdown?)
}

/// Spawns the endpoints, then starts them; endpoints under leader election
/// get a runner instead.
async fn start_endpoints(
    host: &RpcService,
    engine: &Engine,
    base: &Path,
    file: &RunFile,
) -> Result<(Vec<Endpoint>, Vec<LeadershipRunner>), Error> {
    let specs = &file.endpoints;
    let mut components = HashMap::new();
    let mut endpoints = Vec::new();
    let mut runners = Vec::new();
    for spec in specs {
        if spec.component.as_os_str().is_empty() {
            return Err(format!("endpoint `{}`: `component` is empty; give the path of its .wasm file", spec.id).into());
        }
        let path = base.join(&spec.component);
        let component = match components.get(&path) {
            Some(component) => Clone::clone(component),
            None => {
                let component = engine.load_file(&path)?;
                components.insert(path, component.clone());
                component
            }
        };
        let options = EndpointOptions {
            fencing_token: spec.fencing_token.map(FencingToken),
            config: spec.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            directories: spec
                .directories
                .iter()
                .map(|directory| LentDirectory { host: base.join(&directory.host), ..directory.clone() })
                .collect(),
            ..EndpointOptions::default()
        };
        if spec.leader_election {
            let election = host.ha().leader_election(&spec.id)?;
            runners.push(LeadershipRunner::start(host.clone(), election, &spec.id, component, options));
        } else {
            endpoints.push((host.spawn(&spec.id, &component, options).await?, spec.start));
        }
    }
    // Like Flink's endpoints, all exist before any starts: they may connect
    // to each other in on-start.
    for (endpoint, _) in endpoints.iter().filter(|(_, start)| *start) {
        endpoint.start().await.map_err(|e| format!("endpoint `{}` failed to start: {e}", endpoint.id()))?;
    }
    Ok((endpoints.into_iter().map(|(endpoint, _)| endpoint).collect(), runners))
}

/// Makes the calls due `at`; a call whose result is `err(...)` fails the
/// run, after the others have been made.
async fn make_calls(host: &RpcService, calls: &[CallSpec], at: CallTime) -> Result<(), Error> {
    let mut failed = Vec::new();
    for call in calls.iter().filter(|c| c.at == at) {
        let (client, args) = prepare(host, call)?;
        let outcome = crate::invoke::invoke(&client, &call.function, args).await?;
        println!("{}.{}({}) -> {}", call.endpoint, call.function, call.args.join(", "), outcome.text);
        if outcome.is_err {
            failed.push(format!("{}.{} returned {}", call.endpoint, call.function, outcome.text));
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ").into()) }
}

fn prepare(host: &RpcService, call: &CallSpec) -> Result<(GatewayClient, Vec<Val>), Error> {
    let endpoint =
        host.endpoint(&call.endpoint).ok_or_else(|| format!("no endpoint `{}` is running", call.endpoint))?;
    let client = endpoint.fenced_gateway(&call.gateway, endpoint.fencing_token())?;
    let args: Vec<&str> = call.args.iter().map(String::as_str).collect();
    let args = client.parse_args(&call.function, &args)?;
    Ok((client, args))
}

/// Checks that the `until` call exists and that `equals` is a value of its
/// result type, before waiting for it.
fn check_until(host: &RpcService, until: &UntilSpec) -> Result<(), Error> {
    let (client, _) = prepare(host, &until.call)?;
    let call = &until.call;
    let result =
        client.functions().find(|f| f.name == call.function).and_then(|f| f.result.clone()).ok_or_else(|| {
            format!("[until] calls {}.{}, which returns nothing to compare", call.endpoint, call.function)
        })?;
    weir::gateway::wave::parse(&result, &until.equals)
        .map_err(|e| format!("[until] equals = {:?} is not a value of type {result}: {e}", until.equals))?;
    Ok(())
}

async fn wait_until(host: &RpcService, until: &UntilSpec) -> Result<(), Error> {
    let (client, args) = prepare(host, &until.call)?;
    let polling = async {
        let mut interval = tokio::time::interval(Duration::from_millis(50));
        loop {
            interval.tick().await;
            if crate::invoke::invoke(&client, &until.call.function, args.clone()).await?.text == until.equals {
                return Ok::<_, Error>(());
            }
        }
    };
    tokio::select! {
        done = tokio::time::timeout(until.timeout, polling) => done.map_err(|_| {
            format!("{}.{} did not return {} within {:?}", until.call.endpoint, until.call.function, until.equals, until.timeout)
        })?,
        stopped = crate::stopped() => stopped,
    }
}

/// Waits `duration`, or less if the process is told to stop.
async fn wait_or_stopped(duration: Duration) -> Result<(), Error> {
    tokio::time::timeout(duration, crate::stopped()).await.unwrap_or(Ok(()))
}

fn report(endpoints: &[Endpoint], elapsed: Duration) {
    println!("\nwhat the endpoints served in {elapsed:.1?}:");
    println!("{:<16} {:<12} {:<12} {:>8} {:>8} {:>8}", "endpoint", "component", "state", "asks", "tells", "tasks");
    let mut total = 0;
    for endpoint in endpoints {
        let stats = endpoint.stats();
        total += stats.asks + stats.tells + stats.tasks;
        println!(
            "{:<16} {:<12} {:<12} {:>8} {:>8} {:>8}",
            endpoint.id(),
            // The component is named by its path; the table shows its file.
            Path::new(&endpoint.component().name)
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            format!("{:?}", endpoint.state()),
            stats.asks,
            stats.tells,
            stats.tasks
        );
    }
    println!("{total} messages, {:.0} per second\n", total as f64 / elapsed.as_secs_f64().max(1e-9));
}
