//! `weir:rpc/ha-store`: the HA services' store of small records, for
//! endpoints (what Flink keeps its job graph store in).

use std::sync::Arc;

use wasmtime::component::{Accessor, HasSelf, Linker};

use super::bindings::ha_store;
use super::store::StoreData;
use crate::ha::HaServices;

/// The interface, as components import it.
pub(crate) const INTERFACE: &str = "weir:rpc/ha-store@0.1.0";

/// Defines the interface in a linker.
pub(crate) fn link(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    ha_store::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
}

impl ha_store::Host for StoreData {}

/// The endpoint's host's HA services, whose store the calls use.
fn services<T>(accessor: &Accessor<T, HasSelf<StoreData>>) -> Arc<dyn HaServices> {
    accessor.with(|mut access| access.get().host.ha.clone())
}

impl<T> ha_store::HostWithStore<T> for HasSelf<StoreData> {
    async fn put(accessor: &Accessor<T, Self>, collection: String, key: String, value: Vec<u8>) -> Result<(), String> {
        services(accessor).store().put(&collection, &key, value).await.map_err(|error| error.to_string())
    }

    async fn get(accessor: &Accessor<T, Self>, collection: String, key: String) -> Result<Option<Vec<u8>>, String> {
        services(accessor).store().get(&collection, &key).await.map_err(|error| error.to_string())
    }

    async fn keys(accessor: &Accessor<T, Self>, collection: String) -> Result<Vec<String>, String> {
        services(accessor).store().keys(&collection).await.map_err(|error| error.to_string())
    }

    async fn remove(accessor: &Accessor<T, Self>, collection: String, key: String) -> Result<(), String> {
        services(accessor).store().remove(&collection, &key).await.map_err(|error| error.to_string())
    }
}
