//! The `weir:rpc/runtime` interface: what the host lends every endpoint.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::store::{ScheduledTask, StoreData};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/rpc",
        world: "weir:rpc/imports",
    });
}

use bindings::weir::rpc::types::{LogLevel, Uuid};
use bindings::weir::rpc::{runtime, types};

/// Adds `weir:rpc/runtime` (and its types) to a linker.
pub(crate) fn add_to_linker(linker: &mut wasmtime::component::Linker<StoreData>) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<StoreData, wasmtime::component::HasSelf<StoreData>>(linker, |data| data)
}

impl types::Host for StoreData {}

impl runtime::Host for StoreData {
    fn self_id(&mut self) -> String {
        self.identity.id.to_string()
    }

    fn self_address(&mut self) -> String {
        self.identity.address.to_string()
    }

    fn self_fencing_token(&mut self) -> Option<Uuid> {
        self.identity.token.map(|token| {
            let (high, low) = token.as_u64_pair();
            Uuid { high, low }
        })
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.identity.config.to_vec()
    }

    fn log(&mut self, level: LogLevel, message: String) {
        let endpoint = &*self.identity.id;
        match level {
            LogLevel::Trace => tracing::trace!(target: "weir::guest", endpoint, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "weir::guest", endpoint, "{message}"),
            LogLevel::Info => tracing::info!(target: "weir::guest", endpoint, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "weir::guest", endpoint, "{message}"),
            LogLevel::Error => tracing::error!(target: "weir::guest", endpoint, "{message}"),
        }
    }

    fn monotonic_now(&mut self) -> u64 {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        let elapsed = ORIGIN.get_or_init(Instant::now).elapsed();
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }

    fn wall_clock_now(&mut self) -> u64 {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }

    fn new_uuid(&mut self) -> Uuid {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        Uuid { high, low }
    }

    fn schedule_run_async(&mut self, task: u64, delay_ms: u64) {
        // The receiver lives as long as the endpoint's main loop; a task
        // scheduled while it winds down is dropped, as Flink drops them.
        let _ = self.tasks.send(ScheduledTask { task, delay: Duration::from_millis(delay_ms) });
    }
}
