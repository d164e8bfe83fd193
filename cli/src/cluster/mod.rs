//! `weir cluster`: an embedded cluster in this process (Flink's
//! MiniCluster): a Dispatcher, a ResourceManager and TaskExecutors, every
//! one a wasm component on one host ([`embedded`]). Given a job's task
//! component it submits the job, shows its progress while it runs (tasks
//! running, input read, completed checkpoints), prints its result and how
//! long each phase took, and shuts the cluster down. While it runs it
//! serves Flink's REST API ([`rest`]); `--keep-running` keeps it up after
//! the job, or without one, as a session cluster. Settings are Flink's
//! keys ([`settings`]).

pub mod embedded;
pub mod jobmanager;
pub mod process;
pub mod report;
mod rest;
pub mod settings;
mod taskmanager;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir::FencingToken;

use crate::Error;
use embedded::EmbeddedCluster;
use jobmanager::{JobManager, JobSpec, Milestone, Outcome};

/// What to run, and how.
#[derive(Debug, clap::Args)]
#[command(after_help = settings::help())]
pub struct ClusterArgs {
    /// The job's task component (world `weir:flink/task-endpoint`);
    /// none for a session cluster (`--keep-running`).
    job: Option<PathBuf>,
    /// The job's arguments, e.g. `--input PATH --output PATH`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    arguments: Vec<String>,
    /// The job's parallelism (`parallelism.default` otherwise).
    #[arg(short, long)]
    parallelism: Option<u32>,
    /// Keeps the cluster running after its job (or without one) until
    /// Ctrl-C or SIGTERM: a session cluster to submit jobs to through its
    /// REST API.
    #[arg(long)]
    keep_running: bool,
    #[command(flatten)]
    setup: Setup,
    #[command(flatten)]
    lifetime: crate::Lifetime,
}

/// Where a cluster role's settings and components come from.
#[derive(Debug, clap::Args)]
pub struct Setup {
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

impl Setup {
    fn settings(&self) -> Result<settings::Settings, Error> {
        settings::read(self.config.as_deref(), &self.define)
    }

    fn components(&self) -> PathBuf {
        self.components.clone().unwrap_or_else(default_components)
    }
}

/// Where the endpoints' build puts the components, beside this binary's
/// target directory.
pub fn default_components() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe.parent().and_then(Path::parent).unwrap_or(Path::new("target"));
    target.join("wasm-endpoints/wasm32-wasip2/release")
}

pub fn cluster(args: &ClusterArgs) -> Result<(), Error> {
    if args.lifetime.until_stdin_closes && !args.keep_running {
        return Err("--until-stdin-closes is for a session cluster: add --keep-running (a cluster that runs \
                    one job ends with it)"
            .into());
    }
    let settings = args.setup.settings()?;
    let job = match &args.job {
        Some(path) => {
            let component = std::fs::read(path).map_err(|e| format!("cannot read the job {}: {e}", path.display()))?;
            let name = path.file_stem().map_or_else(|| "job".into(), |stem| stem.to_string_lossy().into_owned());
            Some((name, component))
        }
        None if args.keep_running => None,
        None => return Err("name a job (`weir cluster JOB.wasm`), or run a session cluster with --keep-running".into()),
    };
    crate::init_logging("warn");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        // A session cluster stops in order on a signal; one running a job
        // alone ends with it, as any command.
        if args.keep_running {
            crate::listen_for_stop()?;
        }
        run(args, &settings, job).await
    })
}

async fn run(args: &ClusterArgs, settings: &settings::Settings, job: Option<(String, Vec<u8>)>) -> Result<(), Error> {
    let parallelism = args.parallelism.unwrap_or(settings.parallelism);
    let slots = settings.slots.unwrap_or(parallelism);
    let components = args.setup.components();
    let mut phases = report::Phases::default();

    let started = Instant::now();
    let control_plane =
        embedded::ControlPlane::load(&components, settings.compile_cache.as_deref(), &settings.implementations)?;
    let cluster = EmbeddedCluster::start(settings, &control_plane, slots).await?;
    phases.add("cluster start", started.elapsed());
    println!(
        "cluster: {} TaskExecutor(s) of {slots} slot(s), started in {}",
        settings.task_managers,
        report::duration(started.elapsed())
    );
    let (rest, address) = rest::Server::start(cluster.job_manager(), settings).await?;
    println!("REST API at {address}");

    let ran = match job {
        Some((name, component)) => Some(run_job(&cluster, args, settings, &name, &component, &mut phases).await),
        None => None,
    };
    if args.keep_running {
        println!("a session cluster: submit jobs to its REST API; Ctrl-C stops it");
        args.lifetime.over().await?;
    }
    rest.stop().await?;
    let shutdown = Instant::now();
    let closed = cluster.shutdown().await;
    phases.add("shutdown", shutdown.elapsed());
    let Some(ran) = ran else { return closed };
    let (id, outcome) = ran?;
    report::result(&outcome, &args.arguments);
    phases.print();
    closed?;
    match outcome.status.as_str() {
        "finished" => Ok(()),
        status => Err(format!("job {id} ended {status}: {}", outcome.failure.unwrap_or_default()).into()),
    }
}

/// Submits the job given on the command line and follows it to its end.
async fn run_job(
    cluster: &JobManager,
    args: &ClusterArgs,
    settings: &settings::Settings,
    name: &str,
    component: &[u8],
    phases: &mut report::Phases,
) -> Result<(FencingToken, Outcome), Error> {
    let parallelism = args.parallelism.unwrap_or(settings.parallelism);
    let id = FencingToken::random();
    let interval = settings.checkpoint_interval.map(|interval| u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
    let uploaded = Instant::now();
    let key = cluster.upload(component).await?;
    phases.add("upload", uploaded.elapsed());
    let job = JobSpec { name, parallelism, arguments: &args.arguments, checkpoint_interval_ms: interval };
    let submitted = Instant::now();
    cluster.submit(id, &job, key).await?;
    phases.add("submission", submitted.elapsed());
    println!("job {id} ({name}) submitted, parallelism {parallelism}");
    let outcome = follow(cluster, id, submitted, phases).await?;
    Ok((id, outcome))
}

/// How often the progress of a running job is shown, at least.
const PROGRESS_REFRESH: Duration = Duration::from_millis(250);

/// Shows the job's progress until it ends; its outcome.
async fn follow(
    cluster: &JobManager,
    id: FencingToken,
    submitted: Instant,
    phases: &mut report::Phases,
) -> Result<Outcome, Error> {
    let ending = cluster.outcome(id);
    tokio::pin!(ending);
    let mut progress = report::Progress::new();
    let mut all_running = None;
    // Each wait ends as the job gets there or at the next refresh of the
    // progress shown: first all tasks running, then the next checkpoint.
    let mut milestone = Milestone { all_tasks_running: true, ..Milestone::default() };
    loop {
        tokio::select! {
            outcome = &mut ending => {
                progress.finish();
                let running_for = all_running.map_or(submitted.elapsed(), |at: Instant| at.elapsed());
                phases.add("job run", running_for);
                return outcome;
            }
            details = cluster.await_job(id, milestone, PROGRESS_REFRESH) => {
                let Ok(details) = details else {
                    tokio::time::sleep(PROGRESS_REFRESH).await;
                    continue;
                };
                if all_running.is_none() && details.all_running() {
                    all_running = Some(Instant::now());
                    phases.add("to all tasks running", submitted.elapsed());
                }
                if all_running.is_some() {
                    milestone = Milestone { checkpoints: details.checkpoints + 1, ..Milestone::default() };
                }
                progress.show(&details, submitted.elapsed());
            }
        }
    }
}
