//! `weir cluster`: an embedded cluster in this process (Flink's
//! MiniCluster): a Dispatcher, a ResourceManager and TaskExecutors, every
//! one a wasm component on one host ([`embedded`]). Given a job's task
//! component it submits the job, shows its progress while it runs (tasks
//! running, input read, completed checkpoints), prints its result and how
//! long each phase took, and shuts the cluster down. Settings are Flink's
//! keys ([`settings`]).

pub mod embedded;
mod report;
pub mod settings;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir::FencingToken;

use crate::Error;
use embedded::{EmbeddedCluster, JobSpec};

/// What to run, and how.
#[derive(Debug, clap::Args)]
#[command(after_help = settings::help())]
pub struct ClusterArgs {
    /// The job's task component (world `weir:flink/task-endpoint`).
    job: PathBuf,
    /// The job's arguments, e.g. `--input PATH --output PATH`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    arguments: Vec<String>,
    /// The job's parallelism (`parallelism.default` otherwise).
    #[arg(short, long)]
    parallelism: Option<u32>,
    /// A config file (TOML) of Flink's keys.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Sets a config key, over the file: `-D key=value`.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    define: Vec<String>,
    /// The directory of the control plane's components (`dispatcher.wasm`,
    /// `jobmaster.wasm`, `resourcemanager.wasm`, `taskexecutor.wasm`);
    /// by default where the endpoints' build puts them, beside this
    /// binary's target directory.
    #[arg(long)]
    components: Option<PathBuf>,
}

/// Where the endpoints' build puts the components, beside this binary's
/// target directory.
pub fn default_components() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe.parent().and_then(Path::parent).unwrap_or(Path::new("target"));
    target.join("wasm-endpoints/wasm32-wasip2/release")
}

pub fn cluster(args: &ClusterArgs) -> Result<(), Error> {
    let settings = settings::read(args.config.as_deref(), &args.define)?;
    let component = std::fs::read(&args.job).map_err(|e| format!("cannot read the job {}: {e}", args.job.display()))?;
    crate::init_logging("warn");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(args, &settings, &component))
}

async fn run(args: &ClusterArgs, settings: &settings::Settings, component: &[u8]) -> Result<(), Error> {
    let parallelism = args.parallelism.unwrap_or(settings.parallelism);
    let slots = settings.slots.unwrap_or(parallelism);
    let components = args.components.clone().unwrap_or_else(default_components);
    let mut phases = report::Phases::default();

    let started = Instant::now();
    let control_plane = embedded::ControlPlane::load(&components, settings.compile_cache.as_deref())?;
    let cluster = EmbeddedCluster::start(settings, &control_plane, slots).await?;
    phases.add("cluster start", started.elapsed());
    println!(
        "cluster: {} TaskExecutor(s) of {slots} slot(s), started in {}",
        settings.task_managers,
        report::duration(started.elapsed())
    );

    let id = FencingToken::random();
    let name = args.job.file_stem().map_or_else(|| "job".into(), |stem| stem.to_string_lossy().into_owned());
    let interval = settings.checkpoint_interval.map(|interval| u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
    let uploaded = Instant::now();
    let key = cluster.upload(component).await?;
    phases.add("upload", uploaded.elapsed());
    let job = JobSpec { name: &name, parallelism, arguments: &args.arguments, checkpoint_interval_ms: interval };
    let submitted = Instant::now();
    cluster.submit(id, &job, key).await?;
    phases.add("submission", submitted.elapsed());
    println!("job {id} ({name}) submitted, parallelism {parallelism}");

    let outcome = follow(&cluster, id, submitted, &mut phases).await;
    let shutdown = Instant::now();
    let closed = cluster.shutdown().await;
    phases.add("shutdown", shutdown.elapsed());
    let outcome = outcome?;
    report::result(&outcome, &args.arguments);
    phases.print();
    closed?;
    match outcome.status.as_str() {
        "finished" => Ok(()),
        status => Err(format!("job {id} ended {status}: {}", outcome.failure.unwrap_or_default()).into()),
    }
}

/// Shows the job's progress until it ends; its outcome.
async fn follow(
    cluster: &EmbeddedCluster,
    id: FencingToken,
    submitted: Instant,
    phases: &mut report::Phases,
) -> Result<embedded::Outcome, Error> {
    let ending = cluster.outcome(id);
    tokio::pin!(ending);
    let mut progress = report::Progress::new();
    let mut all_running = None;
    let mut poll = tokio::time::interval(Duration::from_millis(2));
    loop {
        tokio::select! {
            outcome = &mut ending => {
                progress.finish();
                let running_for = all_running.map_or(submitted.elapsed(), |at: Instant| at.elapsed());
                phases.add("job run", running_for);
                return outcome;
            }
            _ = poll.tick() => {
                let Ok(details) = cluster.details(id).await else { continue };
                if all_running.is_none() && details.tasks > 0 && details.running == details.tasks {
                    all_running = Some(Instant::now());
                    phases.add("to all tasks running", submitted.elapsed());
                    // Found: poll for progress less often.
                    poll = tokio::time::interval(Duration::from_millis(250));
                }
                progress.show(&details, submitted.elapsed());
            }
        }
    }
}
