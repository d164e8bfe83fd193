//! The floor under every endpoint call: a direct wasmtime call of a
//! component's function, with no mailbox, actor or reply. The benchmark
//! reports it next to weir's figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wasmtime::component::Val;

use super::{EndpointComponent, ExecutionMode, Identity, Limits, StoreParts, new_store};
use crate::address::LOCAL_AUTHORITY;
use crate::config::HostConfig;
use crate::endpoint::Directory;
use crate::remote::Settings;
use crate::route::Connector;

/// Calls `function` of `gateway` `n` times in a row on a fresh instance
/// and returns the mean time per call.
///
/// # Errors
///
/// If the component has no such function or the call fails.
pub async fn mean_call(
    component: &EndpointComponent,
    gateway: &str,
    function: &str,
    args: &[Val],
    n: u32,
) -> wasmtime::Result<Duration> {
    let info = component.info();
    let (index, _) = info.gateway(gateway).ok_or_else(|| wasmtime::format_err!("no gateway {gateway}"))?;
    let (id, signature) = info
        .gateway_functions(index)
        .find(|(_, f)| f.name == function)
        .ok_or_else(|| wasmtime::format_err!("no function {function}"))?;
    let (tasks, _receiver) = mpsc::unbounded_channel();
    let mut store = new_store(
        component.engine(),
        StoreParts {
            identity: Identity {
                id: "floor".into(),
                address: "weir://local/floor".into(),
                token: None,
                config: Vec::new().into(),
            },
            tasks,
            connector: Arc::new(Connector::new(
                Arc::new(Directory::new(LOCAL_AUTHORITY.into())),
                Arc::new(Settings::new(&HostConfig::default(), None, tokio::runtime::Handle::current())),
            )),
            limits: Limits::new(u64::MAX, Duration::MAX, Duration::from_millis(10)),
        },
    );
    let (_instance, funcs) = component.instantiate(&mut store).await?;
    let func = funcs.gateway[id.0 as usize];
    let mut results = vec![Val::Bool(false); usize::from(signature.is_ask())];
    let started = Instant::now();
    match info.mode {
        ExecutionMode::Sequential => {
            for _ in 0..n {
                func.call_async(&mut store, args, &mut results).await?;
            }
        }
        ExecutionMode::Concurrent => {
            store
                .run_concurrent(async |accessor| -> wasmtime::Result<()> {
                    for _ in 0..n {
                        func.call_concurrent(accessor, args, &mut results).await?;
                    }
                    Ok(())
                })
                .await??;
        }
    }
    Ok(started.elapsed() / n)
}
