//! The macros that wire an endpoint crate to the SDK.

/// Exports an endpoint: its gateways, the `weir:rpc` lifecycle and
/// main-thread hooks (implemented through its [`Endpoint`](crate::Endpoint)
/// impl and the SDK's task registry), and batch delivery through the
/// dispatcher [`generate!`](crate::generate) wrote. The world must include
/// `weir:rpc/endpoint`.
///
/// `export!(Endpoint, handover)` also exports `weir:rpc/handover` through
/// the endpoint's [`Handover`](crate::Handover) impl, for a world that
/// includes `weir:rpc/stateful-endpoint`: its state then survives a swap of
/// its component.
#[macro_export]
#[allow(clippy::crate_in_macro_def, reason = "the dispatcher is generated into the endpoint's crate")]
macro_rules! export {
    ($endpoint:ident) => {
        impl exports::weir::rpc::lifecycle::Guest for $endpoint {
            fn on_start() -> Result<(), String> {
                <$endpoint as $crate::Endpoint>::on_start()
            }

            async fn on_stop() -> Result<(), String> {
                <$endpoint as $crate::Endpoint>::on_stop().await
            }
        }

        impl exports::weir::rpc::main_thread::Guest for $endpoint {
            async fn run(task: u64) {
                $crate::main_thread::run(task, <$endpoint as $crate::Endpoint>::on_task).await
            }
        }

        impl exports::weir::rpc::batch::Guest for $endpoint {
            fn deliver(functions: Vec<u64>, args: Vec<u8>, ends: Vec<u32>) -> (Vec<u8>, Vec<u32>) {
                $crate::batch::deliver(&functions, &args, &ends, crate::__weir_dispatch::<$endpoint>)
            }

            async fn deliver_async(
                functions: Vec<u64>,
                args: Vec<u8>,
                ends: Vec<u32>,
                slots: Vec<u32>,
            ) -> (Vec<u8>, Vec<u32>) {
                let dispatch = crate::__weir_dispatch_async::<$endpoint>;
                $crate::batch::deliver_async(&functions, &args, &ends, &slots, dispatch).await
            }
        }

        export!($endpoint);
    };
    ($endpoint:ident, handover) => {
        impl exports::weir::rpc::handover::Guest for $endpoint {
            fn snapshot() -> Result<Option<exports::weir::rpc::handover::State>, String> {
                let state = <$endpoint as $crate::Handover>::snapshot()?;
                Ok(state
                    .map(|state| exports::weir::rpc::handover::State { version: state.version, bytes: state.bytes }))
            }

            async fn restore(state: exports::weir::rpc::handover::State) -> Result<(), String> {
                let state = $crate::State { version: state.version, bytes: state.bytes };
                <$endpoint as $crate::Handover>::restore(state).await
            }
        }

        $crate::export!($endpoint);
    };
}

/// Logs at `trace` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log($crate::LogLevel::Trace, format_args!($($arg)*)) };
}

/// Logs at `debug` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::LogLevel::Debug, format_args!($($arg)*)) };
}

/// Logs at `info` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::LogLevel::Info, format_args!($($arg)*)) };
}

/// Logs at `warn` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::LogLevel::Warn, format_args!($($arg)*)) };
}

/// Logs at `error` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log($crate::LogLevel::Error, format_args!($($arg)*)) };
}
