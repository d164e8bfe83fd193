//! What a component is: compiled once, with what the host learned of its
//! world ([`ComponentInfo`]): the gateways it exports, the clients and
//! other interfaces it imports, its hooks.
//!
//! This layer knows nothing of stores or of what the host lends; whether
//! the host can satisfy a component's imports is asked of a `Lender`,
//! which the layer that links components implements.

mod cache;
mod info;
mod inspect;
mod replacement;

use wasmtime::component::Component;

pub(crate) use self::cache::CompileCache;
pub use self::info::{ComponentInfo, ExecutionMode, FunctionExport, GatewayExport};
pub use self::inspect::{RPC_PACKAGE, RPC_VERSION};
use crate::error::LoadError;

/// What the host lends components, as loading needs to know it.
pub(crate) trait Lender {
    /// Whether the host lends the interface a component imports as `name`.
    fn lends(&self, name: &str) -> bool;
    /// What it lends, for the error that names an import it does not.
    fn describe(&self) -> String;
}

/// Compiles `bytes` on whichever engine fits (or maps them compiled from
/// `cache`) and reads its world. A component without component-model async
/// validates on the plain engine, where calls are cheaper; anything else
/// needs the concurrent one.
///
/// # Errors
///
/// Bytes that are not a component either engine accepts, or a world that
/// does not fit a weir endpoint.
pub(crate) fn compile(
    engines: [&wasmtime::Engine; 2],
    cache: Option<&CompileCache>,
    name: &str,
    bytes: &[u8],
    lender: &dyn Lender,
) -> Result<(Component, ComponentInfo), LoadError> {
    let [sequential, concurrent] = engines;
    let modes = [(sequential, ExecutionMode::Sequential), (concurrent, ExecutionMode::Concurrent)];
    let entries = cache.map(|cache| {
        let digest = CompileCache::digest(bytes);
        modes.map(|(engine, mode)| cache.entry(engine, mode, &digest))
    });
    let cached = entries
        .iter()
        .flat_map(|entries| modes.iter().zip(entries))
        .find_map(|(&(engine, mode), entry)| Some((engine, mode, entry.read(engine)?)));
    let (engine, mode, component) = match cached {
        Some(found) => found,
        None => {
            let (index, component) = match Component::new(sequential, bytes) {
                Ok(component) => (0, component),
                Err(_) => match Component::new(concurrent, bytes) {
                    Ok(component) => (1, component),
                    Err(source) => return Err(LoadError::Invalid { name: name.to_owned(), source }),
                },
            };
            if let Some(entries) = &entries {
                entries[index].write(&component);
            }
            let (engine, mode) = modes[index];
            (engine, mode, component)
        }
    };
    let info = inspect::inspect(engine, &component, name, mode, lender)
        .map_err(|reason| LoadError::WrongWorld { name: name.to_owned(), reason })?;
    Ok((component, info))
}

/// Whether `bytes` are a component some engine without this host's limits
/// accepts: tells a component that is invalid from one that asks more than
/// the host allows. Only asked after a failed load, so its cost (a second
/// compilation) is paid only then.
pub(crate) fn is_valid(bytes: &[u8]) -> bool {
    let mut config = wasmtime::Config::new();
    config.concurrency_support(true);
    wasmtime::Engine::new(&config).is_ok_and(|engine| Component::new(&engine, bytes).is_ok())
}
