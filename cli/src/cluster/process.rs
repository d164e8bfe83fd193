//! `weir jobmanager` and `weir taskmanager`: the cluster's roles in
//! processes of their own (Flink's JobManager and TaskManager processes).
//! With ZooKeeper (`high-availability.type = zookeeper`) they find each
//! other through it: the jobmanagers contend for the ResourceManager's and
//! the Dispatcher's leadership (one leads, the others stand by), and every
//! taskmanager follows the leading ResourceManager, registers there, and
//! again with each new leader. Without (`none`, Flink's standalone mode)
//! there is one jobmanager, at `jobmanager.rpc.address`:`port`, where every
//! role finds the ResourceManager, the Dispatcher and each job's JobMaster.
//! The leading jobmanager serves the REST API; a standby one answers 503.
//! Both run until Ctrl-C or SIGTERM (or, with `--until-stdin-closes`,
//! until their standard input closes).

use std::sync::Arc;

use weir::{HaConfig, HostConfig, RpcService};

use super::embedded::{self, ControlPlane};
use super::jobmanager::JobManager;
use super::settings::Settings;
use super::{Setup, rest, settings, taskmanager};
use crate::Error;

/// A role's command line: its settings and components.
#[derive(Debug, clap::Args)]
#[command(after_help = settings::help())]
pub struct RoleArgs {
    #[command(flatten)]
    setup: Setup,
    #[command(flatten)]
    lifetime: crate::Lifetime,
}

/// How the roles find each other: through ZooKeeper, or at the one
/// jobmanager's fixed address.
fn ha(settings: &Settings) -> Result<HaConfig, Error> {
    if let Some(zookeeper) = &settings.zookeeper {
        return Ok(HaConfig::Zookeeper(zookeeper.clone()));
    }
    if settings.jobmanager_rpc.ends_with(":0") {
        return Err("with `high-availability.type = none` every role finds the jobmanager at \
                    `jobmanager.rpc.address`:`jobmanager.rpc.port`: give a port, not 0"
            .into());
    }
    let at = |id: &str| format!("weir://{}/{id}", settings.jobmanager_rpc);
    let leaders =
        [("resource-manager", at("resourcemanager")), ("dispatcher", at("dispatcher")), ("job-*", at("jobmaster-*"))];
    Ok(HaConfig::Standalone {
        leaders: leaders.into_iter().map(|(name, address)| (name.to_owned(), address)).collect(),
    })
}

/// A host listening at `listen`, its HA services ready.
async fn host(
    engine: weir::Engine,
    listen: &str,
    settings: &Settings,
    components: &[(&str, &weir::EndpointComponent)],
) -> Result<RpcService, Error> {
    let config = HostConfig { listen: Some(listen.to_owned()), ..HostConfig::default() };
    let mut builder = RpcService::builder(config, engine).ha(ha(settings)?).heartbeat(settings.heartbeat);
    for &(name, component) in components {
        builder = builder.component(name, component.clone());
    }
    let host = builder.build()?;
    host.ha().ready().await?;
    Ok(host)
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    crate::init_logging("info");
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

pub fn jobmanager(args: &RoleArgs) -> Result<(), Error> {
    let settings = args.setup.settings()?;
    runtime()?.block_on(async {
        crate::listen_for_stop()?;
        let directory = args.setup.components();
        let components = ControlPlane::load(&directory, settings.compile_cache.as_deref(), &settings.implementations)?;
        let job_master = [("jobmaster", &components.job_master)];
        let host = host(components.engine.clone(), &settings.jobmanager_rpc, &settings, &job_master).await?;
        let job_manager = Arc::new(JobManager::start(host.clone(), &settings, &components)?);
        println!("jobmanager: RPC at {}", host.authority());
        let (rest, address) = rest::Server::start(job_manager.clone(), &settings).await?;
        println!("REST API at {address}");
        args.lifetime.over().await?;
        rest.stop().await?;
        let job_manager = rest::released(job_manager).await?;
        job_manager.close().await;
        Ok(host.shutdown().await?)
    })
}

pub fn taskmanager(args: &RoleArgs) -> Result<(), Error> {
    let settings = args.setup.settings()?;
    runtime()?.block_on(async {
        crate::listen_for_stop()?;
        let engine = embedded::engine(settings.compile_cache.as_deref())?;
        let component = embedded::load(&engine, &args.setup.components(), "taskexecutor", &settings.implementations)?;
        let host = host(engine, &settings.taskmanager_rpc, &settings, &[]).await?;
        let slots = settings.slots.unwrap_or(1);
        let task_executor = taskmanager::start(&host, &component, "taskmanager", slots, &settings).await?;
        println!("taskmanager: {} with {slots} slot(s)", task_executor.address());
        args.lifetime.over().await?;
        if let Err(failure) = task_executor.close().await {
            tracing::warn!("the TaskExecutor failed: {failure}");
        }
        Ok(host.shutdown().await?)
    })
}
