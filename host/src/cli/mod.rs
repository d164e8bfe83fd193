//! Command-line interface of the `weir` binary.

mod bench;
mod run;
mod wit;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// weir: Flink's RPC layer with WebAssembly endpoints.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs an embedded host with the endpoints a config file lists.
    Run(run::RunArgs),
    /// Measures the RPC layer on this machine and prints a table.
    Bench(bench::BenchArgs),
    /// The other process of `weir bench`'s remote figures.
    #[command(hide = true)]
    BenchPeer(bench::remote::PeerArgs),
    /// Work with WIT packages.
    #[command(subcommand)]
    Wit(WitCommand),
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

/// A command's failure, shown to the user.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the command.
///
/// # Errors
///
/// Whatever the command ran into, for the user.
pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::BenchPeer(args) => bench::remote::peer(&args),
        Command::Wit(WitCommand::Clients { package, deps, check }) => wit::clients(&package, &deps, check),
    }
}

/// Returns once standard input reaches its end (or fails): how a host
/// started by another process ends with it.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0; 64];
    while tokio::io::AsyncReadExt::read(&mut stdin, &mut buffer).await.is_ok_and(|n| n > 0) {}
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
