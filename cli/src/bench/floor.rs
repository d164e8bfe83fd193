//! The floor under every endpoint call: a direct wasmtime call of a
//! component's function on a bare instance, with no mailbox, actor, reply or
//! weir host at all. The benchmark reports it next to weir's figures.
//!
//! The instance gets WASI and nothing else: imports from `weir:rpc` trap if
//! called, which the measured functions never do.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// What a bare instance's store holds: WASI's state.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Calls `function` of `gateway` `n` times in a row on a fresh instance of
/// the component in `path` and returns the mean time per call. `concurrent`
/// says whether the component uses component-model async, so its calls are
/// guest tasks.
///
/// # Errors
///
/// If the component cannot be instantiated, has no such function, or the
/// call fails.
pub async fn mean_call(
    path: &Path,
    concurrent: bool,
    gateway: &str,
    function: &str,
    args: &[Val],
    n: u32,
) -> wasmtime::Result<Duration> {
    let mut config = Config::new();
    config.concurrency_support(concurrent);
    let engine = Engine::new(&config)?;
    let component = Component::from_file(&engine, path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    linker.define_unknown_imports_as_traps(&component)?;
    let mut store = Store::new(&engine, Bare { wasi: WasiCtx::builder().build(), table: ResourceTable::new() });
    let instance = linker.instantiate_async(&mut store, &component).await?;
    let interface = instance
        .get_export_index(&mut store, None, gateway)
        .ok_or_else(|| wasmtime::format_err!("no gateway {gateway}"))?;
    let func = instance
        .get_export_index(&mut store, Some(&interface), function)
        .and_then(|index| instance.get_func(&mut store, index))
        .ok_or_else(|| wasmtime::format_err!("no function {function}"))?;
    let mut results = vec![Val::Bool(false); func.ty(&store).results().len()];
    let started = Instant::now();
    if concurrent {
        store
            .run_concurrent(async |accessor| -> wasmtime::Result<()> {
                for _ in 0..n {
                    func.call_concurrent(accessor, args, &mut results).await?;
                }
                Ok(())
            })
            .await??;
    } else {
        for _ in 0..n {
            func.call_async(&mut store, args, &mut results).await?;
        }
    }
    Ok(started.elapsed() / n)
}
