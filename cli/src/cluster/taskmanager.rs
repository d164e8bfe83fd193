//! The taskmanager role (Flink's TaskManager process): one TaskExecutor
//! with its slots, lent the data directories. It finds the
//! ResourceManager through the host's HA services and registers there.

use weir::{Endpoint, EndpointComponent, LentDirectory, RpcService};

use super::jobmanager::options;
use super::settings::Settings;
use crate::Error;

/// Starts a TaskExecutor `id` of `component` with `slots` slots on
/// `host`, lent the data directories (`cluster.data-dirs`) to read and
/// write, which it lends its tasks.
pub async fn start(
    host: &RpcService,
    component: &EndpointComponent,
    id: &str,
    slots: u32,
    settings: &Settings,
) -> Result<Endpoint, Error> {
    let lent = settings.data_dirs.iter().map(|dir| LentDirectory::same_path(dir, true)).collect();
    let task_directories: Vec<String> =
        settings.data_dirs.iter().map(|dir| format!("{} writable", dir.display())).collect();
    let settings = vec![("slots", slots.to_string()), ("task-directories", task_directories.join("\n"))];
    Ok(host.start(id, component, options(settings, lent)).await?)
}
