//! WASI 0.2, as far as an endpoint may use it: no sockets or environment,
//! and files only in the directories it is lent (`EndpointOptions::
//! directories`, set up with its store); stdout and stderr go to `tracing`
//! ([`super::stdio`]).

use wasmtime::component::Linker;

use super::store::StoreData;
use super::{Capability, ComponentInfo};

/// Lends WASI.
#[derive(Debug)]
pub(crate) struct Wasi;

impl Capability for Wasi {
    fn describe(&self) -> &'static str {
        "WASI 0.2 (without sockets or environment, files only in lent directories)"
    }

    fn lends(&self, name: &str) -> bool {
        name.starts_with("wasi:")
    }

    fn link(&self, linker: &mut Linker<StoreData>, _component: &ComponentInfo) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)
    }
}
