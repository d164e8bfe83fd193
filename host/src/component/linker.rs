//! Assembling what a component imports: WASI (without files, sockets or
//! environment), `weir:rpc/runtime`, and its client interfaces.

use wasmtime::Engine;
use wasmtime::component::Linker;

use super::info::ComponentInfo;
use super::store::StoreData;
use super::{clients, runtime_api};

/// A linker with everything `info`'s component imports.
pub(crate) fn build(engine: &Engine, info: &ComponentInfo) -> wasmtime::Result<Linker<StoreData>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    runtime_api::add_to_linker(&mut linker)?;
    for (index, client) in info.clients.iter().enumerate() {
        clients::define(&mut linker, u32::try_from(index)?, client)?;
    }
    Ok(linker)
}
