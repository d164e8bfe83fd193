//! The embedded cluster (Flink's MiniCluster): the jobmanager role and
//! TaskExecutors, all on one host in this process, with in-memory HA.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weir::{Endpoint, EndpointComponent, Engine, HaConfig, HostConfig, RpcService};

use super::jobmanager::JobManager;
use super::settings::{Implementations, Settings};
use super::taskmanager;
use crate::Error;

/// The control plane's components, compiled.
pub struct ControlPlane {
    pub(super) engine: Engine,
    pub(super) dispatcher: EndpointComponent,
    pub(super) job_master: EndpointComponent,
    pub(super) resource_manager: EndpointComponent,
    pub(super) task_executor: EndpointComponent,
}

impl ControlPlane {
    /// Compiles the implementations `implementations` chooses from
    /// `directory`, or maps them compiled from `compile_cache`.
    pub fn load(
        directory: &Path,
        compile_cache: Option<&Path>,
        implementations: &Implementations,
    ) -> Result<Self, Error> {
        let engine = engine(compile_cache)?;
        let load = |kind| load(&engine, directory, kind, implementations);
        Ok(Self {
            dispatcher: load("dispatcher")?,
            job_master: load("jobmaster")?,
            resource_manager: load("resourcemanager")?,
            task_executor: load("taskexecutor")?,
            engine,
        })
    }
}

/// An engine that keeps compiled components in `compile_cache`, if set.
pub(super) fn engine(compile_cache: Option<&Path>) -> Result<Engine, Error> {
    Ok(Engine::new(&HostConfig { compile_cache: compile_cache.map(Path::to_owned), ..HostConfig::default() })?)
}

/// The implementation of `kind` to run: the first of its preferences
/// installed in `directory` (or given as a path), as Flink's service
/// loader takes the implementation of highest priority it finds.
pub(super) fn load(
    engine: &Engine,
    directory: &Path,
    kind: &str,
    implementations: &Implementations,
) -> Result<EndpointComponent, Error> {
    let preferences = implementations.of(kind);
    let candidates: Vec<PathBuf> = preferences.iter().map(|name| installed(directory, kind, name)).collect();
    let Some(path) = candidates.iter().find(|path| path.exists()) else {
        let tried: Vec<String> = candidates.iter().map(|path| path.display().to_string()).collect();
        return Err(format!(
            "no implementation of the {kind} is installed: tried {}; build the endpoints (`scripts/demo` does), \
             point `--components` at them, or name another in `{kind}.implementations`",
            tried.join(", ")
        )
        .into());
    };
    tracing::info!(kind, implementation = %path.display(), "chose the implementation");
    Ok(engine.load_file(path)?)
}

/// Where implementation `name` of `kind` is: `default` is `<kind>.wasm`,
/// another name `<kind>_<name>.wasm`, a path itself.
fn installed(directory: &Path, kind: &str, name: &str) -> PathBuf {
    match name {
        "default" => directory.join(format!("{kind}.wasm")),
        path if path.contains('/') || path.ends_with(".wasm") => PathBuf::from(path),
        name => directory.join(format!("{kind}_{}.wasm", name.replace('-', "_"))),
    }
}

/// A jobmanager and its TaskExecutors on one host. It derefs to its
/// [`JobManager`], the client of its jobs.
pub struct EmbeddedCluster {
    job_manager: Arc<JobManager>,
    task_executors: Vec<Endpoint>,
}

impl Deref for EmbeddedCluster {
    type Target = JobManager;

    fn deref(&self) -> &JobManager {
        &self.job_manager
    }
}

impl EmbeddedCluster {
    /// Starts a cluster of `components` whose TaskExecutors have `slots`
    /// slots each, and waits until they are registered and the Dispatcher
    /// leads.
    pub async fn start(settings: &Settings, components: &ControlPlane, slots: u32) -> Result<Self, Error> {
        let host = RpcService::builder(HostConfig::default(), components.engine.clone())
            .ha(HaConfig::Embedded)
            .heartbeat(settings.heartbeat)
            .component("jobmaster", components.job_master.clone())
            .build()?;
        host.ha().ready().await?;
        let job_manager = JobManager::start(host.clone(), settings, components)?;
        let mut task_executors = Vec::new();
        for index in 1..=settings.task_managers {
            let id = format!("taskmanager-{index}");
            task_executors.push(taskmanager::start(&host, &components.task_executor, &id, slots, settings).await?);
        }
        let cluster = Self { job_manager: Arc::new(job_manager), task_executors };
        cluster.wait_until_ready(settings.task_managers).await?;
        Ok(cluster)
    }

    /// Waits until the Dispatcher leads and every TaskExecutor registered.
    async fn wait_until_ready(&self, task_managers: u32) -> Result<(), Error> {
        let ready = async {
            loop {
                if self.leads() && self.registered().await == task_managers as usize {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .map_err(|_| "the embedded cluster did not come up within 30 s".into())
    }

    /// Its jobmanager, shared (with the REST API).
    pub fn job_manager(&self) -> Arc<JobManager> {
        self.job_manager.clone()
    }

    /// Stops TaskExecutor `index` (from 1), as if it failed: its tasks
    /// stop, and it leaves the ResourceManager.
    pub async fn stop_task_executor(&self, index: usize) -> Result<(), Error> {
        let task_executor = self.task_executors.get(index - 1).ok_or("no such TaskExecutor")?;
        task_executor.close().await.map_err(|failure| format!("{} failed: {failure}", task_executor.id()))?;
        Ok(())
    }

    /// Stops everything; fails if its jobmanager is still shared.
    pub async fn shutdown(self) -> Result<(), Error> {
        let job_manager = super::rest::released(self.job_manager).await?;
        let host = job_manager.host().clone();
        job_manager.close().await;
        for task_executor in &self.task_executors {
            if let Err(failure) = task_executor.close().await {
                tracing::warn!("{} failed: {failure}", task_executor.id());
            }
        }
        Ok(host.shutdown().await?)
    }
}
