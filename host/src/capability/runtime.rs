//! `weir:rpc/runtime`: what the host lends every endpoint. Its per-endpoint
//! state is the endpoint's [`Timers`].

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasSelf, Linker};

use super::bindings::runtime;
use super::bindings::types::{self, LogLevel, Uuid};
use super::store::StoreData;
use super::timers::{TASK_BYTES, Timers};
use super::{Capability, ComponentInfo};

/// The interface, as components import it.
pub(crate) const INTERFACE: &str = "weir:rpc/runtime@0.1.0";

/// Lends `weir:rpc/runtime` (and its types).
#[derive(Debug)]
pub(crate) struct Runtime;

impl Capability for Runtime {
    fn describe(&self) -> &'static str {
        INTERFACE
    }

    fn lends(&self, name: &str) -> bool {
        name == INTERFACE || name == "weir:rpc/types@0.1.0"
    }

    fn link(&self, linker: &mut Linker<StoreData>, _component: &ComponentInfo) -> wasmtime::Result<()> {
        runtime::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
        types::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
    }

    fn state(&self) -> Option<Box<dyn std::any::Any + Send>> {
        Some(Box::new(Timers::default()))
    }
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

    fn log_enabled(&mut self, level: LogLevel) -> bool {
        match level {
            LogLevel::Trace => tracing::enabled!(target: "weir::guest", tracing::Level::TRACE),
            LogLevel::Debug => tracing::enabled!(target: "weir::guest", tracing::Level::DEBUG),
            LogLevel::Info => tracing::enabled!(target: "weir::guest", tracing::Level::INFO),
            LogLevel::Warn => tracing::enabled!(target: "weir::guest", tracing::Level::WARN),
            LogLevel::Error => tracing::enabled!(target: "weir::guest", tracing::Level::ERROR),
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

    fn schedule_run_async(&mut self, task: u64, delay_ms: u64) -> wasmtime::Result<()> {
        let delay = Duration::from_millis(delay_ms);
        let timers = self.state::<Timers>().expect("the runtime's state exists where it is linked");
        if timers.schedule(task, delay) {
            self.charge(TASK_BYTES)?;
        }
        Ok(())
    }

    fn cancel_scheduled(&mut self, task: u64) -> bool {
        let cancelled = self.state::<Timers>().is_some_and(|timers| timers.cancel(task));
        if cancelled {
            self.refund(TASK_BYTES);
        }
        cancelled
    }
}
