//! The macros that wire an endpoint crate to the SDK.

/// Generates bindings for an endpoint's world, sharing the SDK's
/// `weir:rpc` bindings, so `RpcError` and friends are one type everywhere.
///
/// Takes the options of `wit_bindgen::generate!`; `world` and `path` are
/// required, and the world must include `weir:rpc/endpoint`. Invoke it at
/// the crate root.
#[macro_export]
macro_rules! generate {
    ({ $($options:tt)* }) => {
        $crate::wit_bindgen::generate!({
            runtime_path: "::weir_guest::wit_bindgen::rt",
            with: {
                "weir:rpc/types@0.1.0": ::weir_guest::types,
                "weir:rpc/runtime@0.1.0": ::weir_guest::runtime,
                "weir:rpc/leadership@0.1.0": ::weir_guest::leadership::wit,
                "weir:rpc/heartbeats@0.1.0": ::weir_guest::heartbeat::wit,
                "weir:rpc/registration@0.1.0": ::weir_guest::registration::wit,
            },
            generate_all,
            $($options)*
        });
    };
}

/// Exports an endpoint: its gateways, and the `weir:rpc` lifecycle and
/// main-thread hooks, implemented through its [`Endpoint`](crate::Endpoint)
/// impl and the SDK's task registry. The world must include
/// `weir:rpc/endpoint`.
#[macro_export]
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
                $crate::main_thread::run(task).await
            }
        }

        export!($endpoint);
    };
}

/// Logs at `trace` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::runtime::log($crate::LogLevel::Trace, &format!($($arg)*)) };
}

/// Logs at `debug` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::runtime::log($crate::LogLevel::Debug, &format!($($arg)*)) };
}

/// Logs at `info` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::runtime::log($crate::LogLevel::Info, &format!($($arg)*)) };
}

/// Logs at `warn` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::runtime::log($crate::LogLevel::Warn, &format!($($arg)*)) };
}

/// Logs at `error` level into the host's `tracing`, tagged with the endpoint.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::runtime::log($crate::LogLevel::Error, &format!($($arg)*)) };
}
