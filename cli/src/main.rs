//! The `weir` command: runs an embedded host from a config file, an
//! embedded cluster, or a cluster's jobmanager and taskmanager processes;
//! submits jobs to a cluster and talks to it through its REST API; calls
//! an endpoint of a running host, benchmarks the RPC layer, and derives
//! client WIT from gateway WIT.
//!
//! The host itself is the `weir` library; this crate is only its command
//! line, so a program that embeds a host does not carry the CLI's weight.

mod allocator;
mod bench;
mod call;
mod client;
mod cluster;
mod config;
mod host;
mod invoke;
mod new;
mod wit;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: allocator::SplitBySize = allocator::SplitBySize;

/// weir: Flink's RPC layer with WebAssembly endpoints.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs an embedded host with the endpoints a config file lists.
    Host(host::HostArgs),
    /// Submits a job to a cluster through its REST API and follows it to
    /// its end.
    Run(client::RunArgs),
    /// Runs an embedded cluster and a job on it, to its result.
    Cluster(cluster::ClusterArgs),
    /// Runs a jobmanager: a Dispatcher and a ResourceManager under leader
    /// election, and the REST API while it leads.
    Jobmanager(cluster::process::RoleArgs),
    /// Runs a taskmanager: a TaskExecutor that registers with the leading
    /// ResourceManager.
    Taskmanager(cluster::process::RoleArgs),
    /// A cluster's overview, through its REST API.
    Info(client::Target),
    /// The jobs of a cluster, through its REST API.
    List(client::Target),
    /// Cancels a job of a cluster, through its REST API.
    Cancel(client::CancelArgs),
    /// Takes a savepoint of a running job, through its REST API.
    Savepoint(client::SavepointArgs),
    /// Swaps the component behind an endpoint of a cluster's jobmanager
    /// while it runs, through its REST API.
    Swap(client::SwapArgs),
    /// Calls one gateway function of an endpoint on a running host.
    Call(call::CallArgs),
    /// Measures the RPC layer on this machine and prints a table.
    Bench(bench::BenchArgs),
    /// The other process of `weir bench`'s remote figures.
    #[command(hide = true)]
    BenchPeer(bench::remote::PeerArgs),
    /// Work with WIT packages.
    #[command(subcommand)]
    Wit(WitCommand),
    /// Create something new.
    #[command(subcommand)]
    New(NewCommand),
}

#[derive(Debug, Subcommand)]
enum NewCommand {
    /// A crate for a new endpoint, that builds into a component.
    Endpoint(new::NewEndpointArgs),
}

#[derive(Debug, Subcommand)]
enum WitCommand {
    /// Writes `<gateway>-client.wit` for every gateway interface of a package.
    Clients {
        /// The package directory, e.g. `wit/examples`.
        package: PathBuf,
        /// Packages it depends on; `wit/rpc` by default.
        #[arg(long = "dep", default_value = "wit/rpc")]
        deps: Vec<PathBuf>,
        /// Only check that the committed files are current.
        #[arg(long)]
        check: bool,
    },
}

/// A command's failure, shown to the user with its whole chain of causes.
type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Host(args) => host::host(&args),
        Command::Run(args) => client::run(&args),
        Command::Cluster(args) => cluster::cluster(&args),
        Command::Jobmanager(args) => cluster::process::jobmanager(&args),
        Command::Taskmanager(args) => cluster::process::taskmanager(&args),
        Command::Info(target) => client::info(&target),
        Command::List(target) => client::list(&target),
        Command::Cancel(args) => client::cancel(&args),
        Command::Savepoint(args) => client::savepoint(&args),
        Command::Swap(args) => client::swap(&args),
        Command::Call(args) => call::call(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::BenchPeer(args) => bench::remote::peer(&args),
        Command::Wit(WitCommand::Clients { package, deps, check }) => wit::clients(&package, &deps, check),
        Command::New(NewCommand::Endpoint(args)) => new::endpoint(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", weir::error::chain(&*error));
            ExitCode::FAILURE
        }
    }
}

/// Returns once standard input reaches its end (or fails): how a host
/// started by another process ends with it.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0; 64];
    while tokio::io::AsyncReadExt::read(&mut stdin, &mut buffer).await.is_ok_and(|n| n > 0) {}
}

/// Whether the process was told to stop, once [`listen_for_stop`] listens.
static STOP: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> = std::sync::OnceLock::new();

/// Listens for Ctrl-C (SIGINT) and SIGTERM (systemd, Docker and
/// Kubernetes) from now on, so that both shut down the same orderly way,
/// even one that comes before anything waits in [`stopped`] (it would
/// otherwise end the process at once). Call it first in a runtime.
fn listen_for_stop() -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    if STOP.get().is_some() {
        return Ok(());
    }
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    let (told, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => tracing::info!("received SIGTERM; shutting down"),
        }
        let _ = told.send(true);
    });
    let _ = STOP.set(stop);
    Ok(())
}

/// Returns once the process is told to stop, by Ctrl-C or SIGTERM (see
/// [`listen_for_stop`]).
async fn stopped() -> Result<(), Error> {
    listen_for_stop()?;
    let mut stop = STOP.get().ok_or("not listening for signals")?.clone();
    // An error means the listener ended with its runtime: stop too.
    let _ = stop.wait_for(|told| *told).await;
    Ok(())
}

/// How long a command that serves runs: until Ctrl-C or SIGTERM, and, if
/// asked, until its standard input closes.
#[derive(Debug, clap::Args)]
struct Lifetime {
    /// Also stop when standard input closes: a process started by another
    /// (a test, a benchmark) ends with it, even when that one is killed and
    /// has no chance to stop it.
    #[arg(long)]
    until_stdin_closes: bool,
}

impl Lifetime {
    /// Returns once standard input closes, if asked to watch it; never
    /// otherwise.
    async fn orphaned(&self) {
        if self.until_stdin_closes {
            stdin_closed().await;
        } else {
            std::future::pending().await
        }
    }

    /// Returns once the process is told to stop, or is orphaned.
    async fn over(&self) -> Result<(), Error> {
        tokio::select! {
            stopped = stopped() => stopped,
            () = self.orphaned() => {
                tracing::info!("standard input closed; shutting down");
                Ok(())
            }
        }
    }
}

/// Logs to stderr, at `level` unless `RUST_LOG` says otherwise; colours
/// only on a terminal, so files and pipes get plain text.
fn init_logging(level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
