//! What a gateway function looks like from outside its component.

use serde::{Deserialize, Serialize};
use wasmtime::component::types::ComponentFunc;

use super::shape::{Shape, UnsupportedType};

/// A gateway function's identity: a 64-bit FNV-1a hash of
/// `<interface>#<function>` (`weir:examples/echo@0.1.0#ping`).
///
/// It depends on names alone, never on where a function sits in one
/// component's exports, so every build of every component that exports the
/// gateway knows the function by the same id: a caller's handle, a frame on
/// the wire and a rebuilt or swapped endpoint all agree. The interface name
/// carries its version, so ids never match across versions of a gateway.
/// Loading refuses a component two of whose functions collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FunctionId(pub u64);

impl FunctionId {
    /// The id of `function` of the gateway `interface`.
    pub fn of(interface: &str, function: &str) -> Self {
        use std::hash::Hasher;
        let mut hasher = fnv::FnvHasher::default();
        hasher.write(interface.as_bytes());
        hasher.write(b"#");
        hasher.write(function.as_bytes());
        Self(hasher.finish())
    }
}

/// The signature of one gateway function: its parameters and, for an ask,
/// its result. A function without a result is a tell (fire and forget),
/// decided by the gateway as in Flink (`void` versus a future).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSignature {
    /// The function's name within its interface, e.g. `ping`.
    pub name: String,
    /// Parameter names and shapes, in order.
    pub params: Vec<(String, Shape)>,
    /// The result's shape; `None` for a tell.
    pub result: Option<Shape>,
    /// Whether the function is an `async func`. Callers cannot tell the
    /// difference; the host uses it to pick how to invoke the function.
    pub is_async: bool,
}

/// A function whose signature cannot be a gateway function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("function `{function}`, {position}: {source}")]
pub struct SignatureError {
    /// The offending function.
    pub function: String,
    /// Which parameter, or the result.
    pub position: String,
    /// Why its type cannot cross endpoints.
    #[source]
    pub source: UnsupportedType,
}

impl FunctionSignature {
    /// Reads the signature of an exported gateway function.
    ///
    /// # Errors
    ///
    /// A parameter or result whose type cannot travel between endpoints
    /// (resources, streams, futures), or more than one result.
    pub fn of(name: &str, func: &ComponentFunc) -> Result<Self, SignatureError> {
        let error = |position: String, source| SignatureError { function: name.to_owned(), position, source };
        let params = func
            .params()
            .map(|(param, ty)| {
                Shape::of(&ty)
                    .map(|shape| (param.to_owned(), shape))
                    .map_err(|e| error(format!("parameter `{param}`"), e))
            })
            .collect::<Result<_, _>>()?;
        let result =
            func.results().next().map(|ty| Shape::of(&ty).map_err(|e| error("result".to_owned(), e))).transpose()?;
        Ok(Self { name: name.to_owned(), params, result, is_async: func.async_() })
    }

    /// Whether a call expects a reply.
    pub fn is_ask(&self) -> bool {
        self.result.is_some()
    }
}

/// A gateway as its callers see it: its name, and its functions with their
/// ids. Local and remote gateways alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySignature {
    /// The interface name, e.g. `weir:examples/echo@0.1.0`.
    pub name: String,
    /// Its functions.
    pub functions: Vec<(FunctionId, FunctionSignature)>,
}

impl GatewaySignature {
    /// The gateway `name` with these functions, each under its id.
    pub fn new(name: &str, functions: impl IntoIterator<Item = FunctionSignature>) -> Self {
        let functions = functions.into_iter().map(|f| (FunctionId::of(name, &f.name), f)).collect();
        Self { name: name.to_owned(), functions }
    }

    /// The signature of function `id`.
    pub fn function(&self, id: FunctionId) -> Option<&FunctionSignature> {
        self.functions.iter().find_map(|(i, f)| (*i == id).then_some(f))
    }

    /// `gateway.function`, for messages.
    pub fn qualified_name(&self, id: FunctionId) -> String {
        let name = self.function(id).map_or("?", |f| f.name.as_str());
        format!("{}.{name}", self.name)
    }

    /// The functions with their ids, as [`super::routes`] takes them.
    pub fn iter(&self) -> impl Iterator<Item = (FunctionId, &FunctionSignature)> + Clone {
        self.functions.iter().map(|(id, f)| (*id, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_ids_depend_on_names_only_and_never_change() {
        // Pinned: a different value would break every running cluster's
        // peers and every client handle built by an older host.
        assert_eq!(FunctionId::of("weir:examples/echo@0.1.0", "ping"), FunctionId(0xe757_bcb6_bf98_7c1b));
        assert_ne!(
            FunctionId::of("weir:examples/echo@0.1.0", "ping"),
            FunctionId::of("weir:examples/echo@0.2.0", "ping")
        );
    }
}
