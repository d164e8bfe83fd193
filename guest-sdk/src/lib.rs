//! The weir guest SDK: what an endpoint author writes against.
//!
//! An endpoint is one struct. It implements [`Endpoint`] for its lifecycle
//! hooks and the generated `Guest` trait of each gateway it exports; it
//! calls other endpoints through the typed clients generated from the
//! gateways' `*-client` interfaces, and `.await`s their replies while the
//! host keeps delivering other calls to it. No endpoint serializes anything.
//!
//! ```ignore
//! weir_guest::generate!({ world: "weir:examples/counter-endpoint", path: ["../../wit/rpc", "../../wit/examples"] });
//!
//! use std::cell::Cell;
//! use exports::weir::examples::counter::Guest;
//!
//! thread_local! { static TOTAL: Cell<i64> = const { Cell::new(0) }; }
//!
//! struct Counter;
//!
//! impl weir_guest::Endpoint for Counter {
//!     fn on_start() -> Result<(), String> {
//!         weir_guest::info!("counting from zero at {}", weir_guest::self_address());
//!         Ok(())
//!     }
//! }
//!
//! impl Guest for Counter {
//!     fn add(delta: i64) -> i64 {
//!         TOTAL.with(|t| { t.set(t.get() + delta); t.get() })
//!     }
//!     /* ...the other gateway functions... */
//! }
//!
//! weir_guest::export!(Counter);
//! ```
//!
//! State lives in `thread_local!` cells: a component instance has exactly
//! one thread, and its code never runs on two at once.

pub mod batch;
mod macros;
pub mod main_thread;

use std::fmt;

/// Generates bindings for an endpoint's world, sharing the SDK's
/// `weir:rpc` bindings, so `RpcError` and friends are one type everywhere,
/// and the dispatcher that runs batches of the world's gateway calls
/// (see [`batch`]).
///
/// Takes the options of `wit_bindgen::generate!`; `world` and `path` are
/// required (string literals), and the world must include
/// `weir:rpc/endpoint`. Invoke it at the crate root.
pub use weir_guest_macros::generate;
pub use wit_bindgen;

#[doc(hidden)]
#[allow(unsafe_code, reason = "generated bindings")]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/rpc",
        world: "weir:rpc/host",
        runtime_path: "wit_bindgen::rt",
        generate_unused_types: true,
    });
}

pub mod heartbeat;
pub mod leadership;
pub mod registration;
pub mod supervision;

/// The `weir:rpc` WIT package this SDK builds against, file by file (name,
/// text): what an endpoint crate's `wit/deps/weir-rpc/` must hold for its
/// world to include `weir:rpc/endpoint`. `weir new endpoint` writes it.
pub const RPC_WIT: &[(&str, &str)] = &[
    ("batch.wit", include_str!("../../wit/rpc/batch.wit")),
    ("ha-store.wit", include_str!("../../wit/rpc/ha-store.wit")),
    ("handover.wit", include_str!("../../wit/rpc/handover.wit")),
    ("heartbeats.wit", include_str!("../../wit/rpc/heartbeats.wit")),
    ("leadership.wit", include_str!("../../wit/rpc/leadership.wit")),
    ("lifecycle.wit", include_str!("../../wit/rpc/lifecycle.wit")),
    ("registration.wit", include_str!("../../wit/rpc/registration.wit")),
    ("runtime.wit", include_str!("../../wit/rpc/runtime.wit")),
    ("supervision.wit", include_str!("../../wit/rpc/supervision.wit")),
    ("types.wit", include_str!("../../wit/rpc/types.wit")),
    ("worlds.wit", include_str!("../../wit/rpc/worlds.wit")),
];

pub use bindings::weir::rpc::{ha_store, runtime, types};
pub use main_thread::{
    CallTimedOut, ScheduledTask, SharedTask, call_async, cancel_task, run_async, schedule_run_async, schedule_task,
    sleep, spawn, spawn_shared,
};
pub use types::{FencingMismatch, FrameTooLarge, LogLevel, RpcError, Uuid};

/// An endpoint's lifecycle hooks (Flink's `onStart` and `onStop`), and
/// the tasks it schedules by number. All default to doing nothing.
pub trait Endpoint {
    /// Runs before the endpoint serves any call. An error terminates the
    /// endpoint, without `on_stop`.
    fn on_start() -> Result<(), String> {
        Ok(())
    }

    /// Runs once when the endpoint is stopped; calls are still served while
    /// it is pending.
    fn on_stop() -> impl Future<Output = Result<(), String>> {
        async { Ok(()) }
    }

    /// Runs the task [`schedule_task`] scheduled under `task`, when it is
    /// due. Unlike a closure, a numbered task outlives a swap of the
    /// component: if it falls due while the swap runs, the new component
    /// runs it.
    fn on_task(task: u64) {
        let _ = task;
    }
}

/// What an endpoint hands to the component that replaces it when its
/// component is swapped (`weir:rpc/handover`): export it with
/// `export!(Endpoint, handover)`, in a world that includes
/// `weir:rpc/stateful-endpoint`.
pub trait Handover {
    /// The endpoint's state, or `None` if it has none to hand over. Called
    /// while no call is in flight; an error refuses the swap.
    fn snapshot() -> Result<Option<State>, String>;

    /// Takes up what an older component (this one, or another
    /// implementation of the same gateways) handed over. It runs in place
    /// of [`Endpoint::on_start`], and no call reaches the endpoint until it
    /// returns: it may wait, for example to connect to its peers again. An
    /// error, or a panic, refuses the swap and the old component resumes.
    fn restore(state: State) -> impl Future<Output = Result<(), String>>;
}

/// An endpoint's state as [`Handover`] hands it over: bytes in a layout the
/// component defines, tagged with the layout's version. With the feature
/// `serde`, `State::encode` and `State::decode` write and read any serde
/// value as bincode and check the version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The layout's version.
    pub version: u32,
    /// The state.
    pub bytes: Vec<u8>,
}

#[cfg(feature = "serde")]
impl State {
    /// `value` in layout `version`, encoded with bincode (feature `serde`).
    ///
    /// # Errors
    ///
    /// A value serde cannot encode, as text.
    pub fn encode<T: serde::Serialize>(version: u32, value: &T) -> Result<State, String> {
        let bytes = bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())?;
        Ok(State { version, bytes })
    }

    /// The value [`State::encode`] encoded, if the state is in layout
    /// `version`; `whose` names the state in the error ("a supervisor's").
    ///
    /// # Errors
    ///
    /// Another layout, or bytes that do not decode, saying which.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, version: u32, whose: &str) -> Result<T, String> {
        if self.version != version {
            return Err(format!("cannot read layout {} of {whose} state, only {version}", self.version));
        }
        bincode::serde::decode_from_slice(&self.bytes, bincode::config::standard())
            .map(|(value, _)| value)
            .map_err(|error| format!("{whose} state does not decode: {error}"))
    }
}

/// What the host fixed for this endpoint's lifetime, read once: endpoints
/// ask for their settings and address at every turn, and each host call
/// would copy all of them into fresh guest strings again.
struct Identity {
    id: String,
    address: String,
    token: Option<Uuid>,
    settings: Vec<(String, String)>,
}

thread_local! {
    static IDENTITY: std::cell::OnceCell<Identity> = const { std::cell::OnceCell::new() };
}

fn identity<R>(read: impl FnOnce(&Identity) -> R) -> R {
    IDENTITY.with(|identity| {
        read(identity.get_or_init(|| Identity {
            id: runtime::self_id(),
            address: runtime::self_address(),
            token: runtime::self_fencing_token(),
            settings: runtime::config(),
        }))
    })
}

/// The id this endpoint was started under.
pub fn self_id() -> String {
    identity(|identity| identity.id.clone())
}

/// This endpoint's own address: connect a client to it for the self gateway.
pub fn self_address() -> String {
    identity(|identity| identity.address.clone())
}

/// The fencing token this endpoint runs under, if it is fenced.
pub fn fencing_token() -> Option<Uuid> {
    identity(|identity| identity.token)
}

/// The value of setting `key` the endpoint was started with.
pub fn config(key: &str) -> Option<String> {
    identity(|identity| identity.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
}

/// Writes a record at `level` if the host would keep it: the log macros'
/// body, which formats nothing for a filtered-out record.
#[doc(hidden)]
pub fn log(level: LogLevel, message: fmt::Arguments<'_>) {
    if runtime::log_enabled(level) {
        match message.as_str() {
            Some(text) => runtime::log(level, text),
            None => runtime::log(level, &message.to_string()),
        }
    }
}

/// Nanoseconds on the host's monotonic clock.
pub fn monotonic_now() -> u64 {
    runtime::monotonic_now()
}

/// Milliseconds since the Unix epoch on the wall clock (WASI's), as
/// timestamps meant for people and other processes are written; 0 if the
/// clock reads before the epoch.
pub fn epoch_millis() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// A fresh random UUID.
pub fn new_uuid() -> Uuid {
    runtime::new_uuid()
}

/// A UUID as its two halves, high and low: a key for ordered maps, and a
/// form serde can carry (a component's handed-over state, say).
pub type UuidPair = (u64, u64);

impl Uuid {
    /// The UUID as its two halves.
    pub fn pair(self) -> UuidPair {
        (self.high, self.low)
    }

    /// The UUID of two halves.
    pub fn from_pair((high, low): UuidPair) -> Self {
        Self { high, low }
    }

    /// Reads a UUID in its usual text form (hex digits, hyphens optional).
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        if digits.len() != 32 {
            return None;
        }
        let value = u128::from_str_radix(&digits, 16).ok()?;
        Some(Self { high: (value >> 64) as u64, low: value as u64 })
    }
}

impl PartialEq for Uuid {
    fn eq(&self, other: &Self) -> bool {
        (self.high, self.low) == (other.high, other.low)
    }
}

impl Eq for Uuid {}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, l) = (self.high, self.low);
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xffff,
            l >> 48,
            l & 0xffff_ffff_ffff
        )
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpcError::NotStarted(m)
            | RpcError::Unreachable(m)
            | RpcError::Timeout(m)
            | RpcError::Serialization(m)
            | RpcError::Handshake(m)
            | RpcError::EndpointFailed(m)
            | RpcError::UnknownEndpoint(m)
            | RpcError::UnknownFunction(m) => f.write_str(m),
            RpcError::FencingMismatch(m) => {
                let show = |t: &Option<Uuid>| t.as_ref().map_or_else(|| "no token".to_owned(), Uuid::to_string);
                write!(f, "fencing token mismatch: expected {}, received {}", show(&m.expected), show(&m.received))
            }
            RpcError::FrameTooLarge(m) => {
                write!(f, "message of {} bytes exceeds the frame limit of {} bytes", m.size, m.limit)
            }
        }
    }
}

impl std::error::Error for RpcError {}

#[cfg(test)]
mod tests {
    #[test]
    fn the_carried_wit_is_all_of_weir_rpc() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/rpc");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let carried: Vec<&str> = super::RPC_WIT.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, carried, "RPC_WIT must list every file of wit/rpc, sorted");
    }
}
